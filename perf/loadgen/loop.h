/*
 * loop — one epoll event loop of llmload driving a share of the connections
 * (all of them with -t 1): non-blocking connects (at most connect_cap in
 * flight, starts spread over --ramp), one request after another on each
 * kept-alive connection, reconnects, --timeout, the -d deadline, the -n
 * budget and --once, and the grace time after the deadline.
 *
 * With --schedule the number of connections wanted changes over time:
 * connection i is wanted while i < the schedule's value.  A wanted
 * connection that is parked starts its next stream at once; one that is no
 * longer wanted finishes its stream, then parks (keeping an idle
 * kept-alive socket).  With --retry-after a connection whose answer carried
 * Retry-After (a 429 or 503) waits that long before its next request.
 * With --timeseries each loop fills its own per-second series.
 *
 * Edge-triggered epoll; each socket is registered once for reading and
 * writing.  Reads go into the loop's own buffer and the time is taken right
 * after each read returns; the bytes are handed to conn_feed() at once, so
 * nothing but partial heads and events outlives a read (see conn.h).
 *
 * A loop owns its connections, its stats and its verify state; several loops
 * (-t) share only struct loop_shared, whose fields are atomics or written
 * before the loops start.
 */
#ifndef LLMLOAD_LOOP_H
#define LLMLOAD_LOOP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "perf/loadgen/conn.h"
#include "perf/loadgen/stats.h"
#include "perf/loadgen/timeseries.h"
#include "perf/loadgen/verify.h"

struct loop_config {
    struct sockaddr_storage addr; /* the server */
    socklen_t addr_len;
    const struct sockaddr_storage *sources; /* --source: local addresses, round-robin */
    size_t n_sources;
    const char *req; /* the request bytes, shared read-only */
    size_t req_len;
    uint32_t concurrency; /* connections of the whole run */
    int64_t duration_ns;  /* -d; < 0: no deadline */
    int64_t ramp_ns;      /* --ramp; 0: as fast as the connect cap allows */
    int64_t timeout_ns;   /* --timeout, per stream */
    int64_t grace_ns;     /* --grace */
    bool once;            /* one request per connection */
    bool stream;
    bool verify;
    int64_t expect_tokens;              /* -1: any */
    uint32_t connect_cap;               /* connects in flight, per loop */
    const struct ts_schedule *schedule; /* --schedule, or NULL */
    bool retry_after;                   /* --retry-after */
    bool timeseries;                    /* --timeseries: keep a per-second series */
    int64_t slo_ttft_ns;                /* --slo-ttft; < 0: none */
};

struct loop_shared {
    int64_t t0;                         /* run start (CLOCK_MONOTONIC ns) */
    bool limited;                       /* -n given */
    atomic_llong remaining;             /* -n budget left */
    atomic_uint verify_printed;         /* violations described so far */
    atomic_llong inflight;              /* streams started and not yet ended */
    atomic_llong peak_inflight;         /* the most there were at once */
    volatile sig_atomic_t *interrupted; /* SIGINT count, or NULL */
};

struct loop;

/*
 * Creates a loop for the connections first, first + step, ... below
 * cfg->concurrency.  Returns NULL (with errno) on failure.
 */
struct loop *loop_new(const struct loop_config *cfg, struct loop_shared *sh, uint32_t first,
                      uint32_t step);

/* Runs until every connection is done.  Returns 0 or a negative errno. */
int loop_run(struct loop *l);

struct stats *loop_stats(struct loop *l);
/* The loop's per-second series (NULL without cfg->timeseries). */
struct ts_series *loop_timeseries(struct loop *l);
const struct verify_ctx *loop_verify(const struct loop *l);
int64_t loop_end_time(const struct loop *l);
/* errno of the first failed connect, 0 if none. */
int loop_connect_errno(const struct loop *l);

void loop_free(struct loop *l);

#endif
