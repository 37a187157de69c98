/*
 * log — one line per message on stderr, shared by every sluice process.
 *
 * Lines look like `2026-11-23T18:40:01.123Z sluice[worker 0/4711] warn: text`.
 * Writing never blocks: stderr is switched to O_NONBLOCK and a line that does
 * not fit in the pipe is dropped and counted, so a stalled log reader cannot
 * stall a worker.  Lines are rate limited (a burst of LOG_BURST, then
 * LOG_RATE per second; the suppressed count is reported on the next line) so
 * a flood of bad requests cannot turn into a flood of log writes.
 *
 * The log is the one piece of per-process state that is not passed around:
 * every function in every module may need to log.  log_init() sets it once
 * per process (again after fork); it is not thread-safe, and sluice runs no
 * threads.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdint.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
};

#define LOG_BURST 200
#define LOG_RATE  50

/* <role> is "supervisor", "worker", "control"; <id> is the worker slot or -1. */
void log_init(const char *role, int id, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lines dropped because stderr was full, and suppressed by the rate limit. */
uint64_t log_dropped(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
