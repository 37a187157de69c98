/* log — see log.h.  One write(2) per line so lines from different processes
 * sharing stderr never interleave (a pipe write of <= PIPE_BUF is atomic). */
#include "shared/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024

static struct {
    char role[16];
    int id;
    int pid;
    enum log_level level;
    uint64_t dropped;
    /* token bucket, refilled LOG_RATE per second up to LOG_BURST */
    double tokens;
    struct timespec last;
    uint64_t suppressed;
} g_log = {.role = "sluice", .id = -1, .level = LOG_INFO, .tokens = LOG_BURST};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *role, int id, enum log_level level)
{
    snprintf(g_log.role, sizeof g_log.role, "%s", role);
    g_log.id = id;
    g_log.pid = (int)getpid();
    g_log.level = level;
    g_log.tokens = LOG_BURST;
    g_log.suppressed = 0;
    clock_gettime(CLOCK_MONOTONIC, &g_log.last);
    int fl = fcntl(STDERR_FILENO, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        (void)fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
}

void log_set_level(enum log_level level)
{
    g_log.level = level;
}

enum log_level log_get_level(void)
{
    return g_log.level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

uint64_t log_dropped(void)
{
    return g_log.dropped + g_log.suppressed;
}

static int take_token(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt =
        (double)(now.tv_sec - g_log.last.tv_sec) + (double)(now.tv_nsec - g_log.last.tv_nsec) / 1e9;
    g_log.last = now;
    g_log.tokens += dt * LOG_RATE;
    if (g_log.tokens > LOG_BURST)
        g_log.tokens = LOG_BURST;
    if (g_log.tokens < 1.0)
        return 0;
    g_log.tokens -= 1.0;
    return 1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > g_log.level)
        return;
    /* Errors about the process itself (start, exit) must never be lost to
     * the rate limit; the limit exists for per-request noise. */
    if (level != LOG_ERROR && !take_token()) {
        g_log.suppressed++;
        return;
    }
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    char who[40];
    if (g_log.id >= 0)
        snprintf(who, sizeof who, "%s %d/%d", g_log.role, g_log.id, g_log.pid);
    else
        snprintf(who, sizeof who, "%s/%d", g_log.role, g_log.pid ? g_log.pid : (int)getpid());
    n += snprintf(line + n, sizeof line - (size_t)n,
                  ".%03ldZ sluice[%s] %s: ", ts.tv_nsec / 1000000, who, log_level_name(level));
    if (g_log.suppressed && n < (int)sizeof line) {
        n += snprintf(line + n, sizeof line - (size_t)n, "(%llu lines suppressed) ",
                      (unsigned long long)g_log.suppressed);
        g_log.suppressed = 0;
    }
    if (n < (int)sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    if (w != n)
        g_log.dropped++;
}
