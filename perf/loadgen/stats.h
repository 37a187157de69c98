/*
 * stats — what llmload measured: how streams ended (completed, or failed and
 * why), token and event counts, and the raw TTFT and ITL samples from which
 * exact percentiles are computed once the run is over.
 *
 * Samples are kept, in microseconds as uint32 (range 71 minutes), in arrays
 * that grow by doubling: recording one is amortised O(1) and allocates only
 * when its array doubles, so the run length bounds the memory (4 bytes per
 * token).  Means are computed from exact nanosecond sums.  Percentiles are
 * nearest-rank over the sorted samples (radix sort, so tens of millions of
 * samples sort in well under a second).
 *
 * One struct stats per event loop, touched only by that loop's thread;
 * stats_merge() folds them together at the end.  If memory runs out a sample
 * is dropped and counted in `dropped`, the run goes on.
 */
#ifndef LLMLOAD_STATS_H
#define LLMLOAD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* How a stream ended. */
enum stats_outcome {
    STATS_OK = 0,    /* completed */
    STATS_CONNECT,   /* the TCP connection could not be made (or took too long) */
    STATS_STATUS,    /* the status was not 200 (counted per status code) */
    STATS_SSE_ERROR, /* an `event: error` arrived */
    STATS_EOF,       /* the connection closed before the response ended */
    STATS_TIMEOUT,   /* --timeout, or still running when the grace time ran out */
    STATS_PROTOCOL,  /* bad HTTP, bad chunking, or a stream that ended without [DONE] */
    STATS_OUTCOME_COUNT,
};

#define STATS_STATUS_SLOTS 600 /* status codes 0..599 are counted one by one */

struct stats_samples {
    uint32_t *v; /* microseconds */
    size_t n;
    size_t cap;
    uint64_t sum_ns;  /* exact, for the mean */
    uint64_t max_ns;  /* exact */
    uint64_t dropped; /* samples lost to a failed allocation */
};

struct stats {
    uint64_t started;
    uint64_t by_outcome[STATS_OUTCOME_COUNT];
    uint64_t by_status[STATS_STATUS_SLOTS]; /* STATS_STATUS failures by code */
    uint64_t tokens;                        /* content events */
    uint64_t events;                        /* all SSE events */
    uint64_t bytes_in;                      /* bytes read from sockets */
    uint64_t connects;                      /* TCP connections established */
    uint64_t retries; /* requests resent because a kept-alive connection was stale */
    struct stats_samples ttft;
    struct stats_samples itl;
};

/* A summary of one sample set, in milliseconds; all 0 when count is 0. */
struct stats_summary {
    double p50, p90, p95, p99, max, mean;
    uint64_t count;
};

void stats_init(struct stats *s);
void stats_free(struct stats *s);

/* Records how one stream ended; <status> is the HTTP status (0 when none). */
void stats_record(struct stats *s, enum stats_outcome o, unsigned status);

uint64_t stats_failed(const struct stats *s);

/* Slow path of stats_add(): grows the array.  Returns 0 or -ENOMEM. */
int stats_grow(struct stats_samples *ss);

/* Adds one duration sample of <ns> nanoseconds (negative counts as 0). */
static inline void stats_add(struct stats_samples *ss, int64_t ns)
{
    uint64_t u = ns > 0 ? (uint64_t)ns : 0;
    ss->sum_ns += u;
    if (u > ss->max_ns)
        ss->max_ns = u;
    if (ss->n == ss->cap && stats_grow(ss) < 0) {
        ss->dropped++; /* still in the mean and max, not in the percentiles */
        return;
    }
    uint64_t us = (u + 500) / 1000;
    ss->v[ss->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Adds everything in <from> to <into>.  Returns 0 or -ENOMEM. */
int stats_merge(struct stats *into, const struct stats *from);

/* Adds the samples of <from> to <into>.  Returns 0 or -ENOMEM (counted in
 * into->dropped). */
int stats_samples_merge(struct stats_samples *into, const struct stats_samples *from);

/* Sorts the samples in place and fills <out>. */
void stats_summarize(struct stats_samples *ss, struct stats_summary *out);

/* Name of an outcome as used in reports ("connect", "timeout"...). */
const char *stats_outcome_name(enum stats_outcome o);

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t stats_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
