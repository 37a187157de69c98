/*
 * view — the control plane's picture of the node, rebuilt from the shared
 * segment: it drains every live worker's event ring, keeps the time to
 * first token of the streams that started since the governor's last
 * interval, a short history for the operator's views, and samples the
 * node-wide gauges.
 *
 * Nothing here is authoritative: counts and gauges live in the workers'
 * slots, limits and flags in the tables.  A restarted control plane starts
 * with an empty view and has it back within one interval; events lost to a
 * full ring cost samples, never counts.  Owned by the control-plane process.
 */
#ifndef SLUICE_VIEW_H
#define SLUICE_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/events.h"
#include "shared/shm.h"

#define VIEW_TTFT_MAX 65536 /* TTFT samples kept per governor interval */
#define VIEW_HISTORY  64    /* one-second rows kept for `top` */

/* One second of the node, for `sluicectl top` and /status. */
struct view_second {
    uint64_t t_ms;
    uint32_t first_tokens;
    uint32_t ended;
    uint32_t rejected;
    uint64_t tokens; /* from the counters: exact */
    uint32_t ttft_p50_ms, ttft_p95_ms;
    uint32_t admitted; /* gauge at the end of the second */
    uint32_t queued;
    uint32_t limit;
};

struct view {
    struct shm *shm;
    /* Every stream event is also handed here (the QoS windows), if set. */
    void (*sink)(void *ctx, const struct ev_rec *ev);
    void *sink_ctx;
    uint64_t overdue_us; /* the value an overdue stream counts as */
    /* the governor's current interval: backend TTFT (admission to first
     * token) of the streams whose first token came in it, and of those
     * reported overdue in it */
    uint32_t *ttft_us;
    unsigned n_ttft;
    unsigned inflight_peak;
    unsigned overdue_rank; /* fewest streams on the node among this interval's overdue, 0 = none */
    /* the current second */
    uint32_t *sec_ttft_us;
    unsigned n_sec_ttft;
    struct view_second cur;
    uint64_t tokens_at_sec_start;
    bool have_base; /* tokens_at_sec_start is set */
    struct view_second hist[VIEW_HISTORY];
    unsigned nhist; /* rows filled, newest at hist[(head - 1) % VIEW_HISTORY] */
    unsigned head;
    /* totals since this control plane started */
    uint64_t events[EV_TYPE_COUNT];
    uint64_t pings_sent, pongs;
    uint64_t last_pong_ms[SHM_MAX_SLOTS];
};

/* <target_ms>: the governor's TTFT target; a stream reported overdue
 * counts as a sample of twice it (its real TTFT is unknown yet, but
 * certainly past the target). */
int view_init(struct view *v, struct shm *shm, uint32_t target_ms);
void view_free(struct view *v);

/* Drains every live worker's event ring and samples the gauges. */
void view_poll(struct view *v, uint64_t now_ms);

/* Takes the governor's interval: TTFT percentiles of the first tokens seen
 * since the last call, the in-flight peak, the queue now.  Resets. */
void view_take_interval(struct view *v, unsigned *n, double *p50_ms, double *p90_ms, double *p95_ms,
                        unsigned *inflight_peak, unsigned *overdue_rank);

/* Closes the current second (call once a second). */
void view_tick_second(struct view *v, uint64_t now_ms, uint32_t limit);

/* The i-th newest complete second (0 = newest), or NULL. */
const struct view_second *view_second_at(const struct view *v, unsigned i);

/* Sends CMD_PING to every live worker. */
void view_ping(struct view *v, uint64_t now_ms);

/* Sends a command to every live worker; returns how many took it. */
unsigned view_broadcast(struct view *v, const struct cmd_rec *cmd);

/* Node-wide sum of the token counters (live slots and retired). */
uint64_t view_tokens_total(const struct view *v);

#endif
