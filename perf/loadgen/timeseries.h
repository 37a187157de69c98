/*
 * timeseries — llmload's view of a run second by second (--timeseries), and
 * the offered-load schedule it is usually read against (--schedule).
 *
 * Schedule: "T:C,T:C,...": from T seconds after the start of the run, C
 * connections (closed-loop clients) are wanted, until the next point.  A step
 * function; before the first point none are wanted.  Times strictly
 * increase.  The loop starts wanted connections at once and lets unwanted
 * ones finish their stream and then park (see loop.h).
 *
 * Series: one bucket per second since the run's start (t0), filled as things
 * happen:
 *  - started: streams that started in that second;
 *  - completed / failed by reason (and by status code for non-200 answers):
 *    streams that ended in it;
 *  - tokens: content events received in it; tokens_slo: those of streams
 *    whose TTFT was at most --slo-ttft (the goodput);
 *  - ttft: the TTFT samples of the streams whose first token came in it, so
 *    a stream refused before any token (a 503) is a failure, never a TTFT;
 *  - inflight_max: the most streams in flight (all loops) seen in it.
 * Buckets live in an array that grows by doubling (about 120 bytes plus 4
 * per TTFT sample each); one series per loop, merged at the end.  On a
 * failed allocation the event is counted in `dropped` and the run goes on.
 */
#ifndef LLMLOAD_TIMESERIES_H
#define LLMLOAD_TIMESERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/loadgen/stats.h"

#define TS_STATUS_SLOTS 6 /* distinct failure status codes kept per second */

struct ts_point {
    int64_t t_ns;  /* since the start of the run */
    uint32_t conc; /* connections wanted from then on */
};

struct ts_schedule {
    struct ts_point *v;
    size_t n;
    uint32_t max_conc;
};

/* Parses "T:C,...".  Returns 0, or -EINVAL/-ENOMEM with a message in err. */
int ts_schedule_parse(const char *s, struct ts_schedule *out, char *err, size_t errlen);
void ts_schedule_free(struct ts_schedule *s);
/* Connections wanted at <t_ns> since the start. */
uint32_t ts_schedule_at(const struct ts_schedule *s, int64_t t_ns);
/* The first change after <t_ns> (since the start), or INT64_MAX. */
int64_t ts_schedule_next(const struct ts_schedule *s, int64_t t_ns);

struct ts_status_count {
    uint16_t code;
    uint32_t n;
};

struct ts_bucket {
    uint64_t started;
    uint64_t ended[STATS_OUTCOME_COUNT];
    struct ts_status_count status[TS_STATUS_SLOTS]; /* STATS_STATUS failures by code */
    uint64_t status_other;                          /* codes past the slots */
    uint64_t tokens, tokens_slo;
    uint64_t first_tokens_slo; /* first tokens within the SLO */
    uint64_t inflight_max;
    struct stats_samples ttft;
};

struct ts_series {
    int64_t t0; /* run start, CLOCK_MONOTONIC ns */
    struct ts_bucket *b;
    size_t n, cap;
    uint64_t dropped; /* events lost to a failed allocation */
};

void ts_init(struct ts_series *ts, int64_t t0);
void ts_free(struct ts_series *ts);

/* The bucket of <now>, or NULL (counted in dropped) without memory. */
struct ts_bucket *ts_at(struct ts_series *ts, int64_t now);

void ts_started(struct ts_series *ts, int64_t now);
void ts_ended(struct ts_series *ts, int64_t now, enum stats_outcome o, unsigned status);
/* One content event; <first> with its stream's TTFT in <ttft_ns>. */
void ts_token(struct ts_series *ts, int64_t now, bool first, int64_t ttft_ns, bool slo_ok);
void ts_inflight(struct ts_series *ts, int64_t now, long long inflight);

/* Adds <from> to <into> (same t0).  Returns 0 or -ENOMEM. */
int ts_merge(struct ts_series *into, const struct ts_series *from);

struct ts_report {
    const struct ts_schedule *schedule; /* NULL: a constant `concurrency` */
    uint32_t concurrency;
    int64_t slo_ttft_ns; /* < 0: none */
    bool samples;        /* also every TTFT sample of each second */
};

/* Writes the series as JSON (see README.md; "-": stdout).  Sorts the
 * samples in place.  Returns 0 or -errno. */
int ts_write_json(const char *path, struct ts_series *ts, const struct ts_report *r);

#endif
