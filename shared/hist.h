/*
 * hist — fixed-bound latency histograms that live in shared memory.
 *
 * Each bucket counts the samples that fall in (le[i-1], le[i]] microseconds,
 * the last one everything above the top bound, so a Prometheus histogram
 * (cumulative `le` buckets, `_sum`, `_count`) is exact, not approximated from
 * a sketch.  One process writes a struct hist (single writer: relaxed
 * load+store, no locked instruction on the per-token path); any process may
 * read it at any time with relaxed loads and sees each counter whole, though
 * not all counters from the same instant (fine for monitoring).
 */
#ifndef SLUICE_HIST_H
#define SLUICE_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_MAX_BOUNDS 16

struct hist_bounds {
    unsigned n;                      /* finite bounds; bucket n is +Inf */
    uint64_t le_us[HIST_MAX_BOUNDS]; /* increasing */
};

/* Time to first token: 5 ms .. 60 s.  Inter-token gaps: 1 ms .. 10 s. */
extern const struct hist_bounds hist_ttft_bounds;
extern const struct hist_bounds hist_itl_bounds;

struct hist {
    _Atomic uint64_t bucket[HIST_MAX_BOUNDS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

/* A plain copy for summing and printing. */
struct hist_snap {
    uint64_t bucket[HIST_MAX_BOUNDS + 1];
    uint64_t count;
    uint64_t sum_us;
};

static inline void hist_bump(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Single writer only. */
static inline void hist_record(struct hist *h, const struct hist_bounds *b, uint64_t us)
{
    unsigned i = 0;
    while (i < b->n && us > b->le_us[i])
        i++;
    hist_bump(&h->bucket[i], 1);
    hist_bump(&h->count, 1);
    hist_bump(&h->sum_us, us);
}

/* snap += h (relaxed reads). */
void hist_snap_add(struct hist_snap *snap, const struct hist *h);
/* h += snap; only when no one else writes <h> (folding a dead process). */
void hist_fold(struct hist *h, const struct hist_snap *snap);

#endif
