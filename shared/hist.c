/* hist — see hist.h. */
#include "shared/hist.h"

const struct hist_bounds hist_ttft_bounds = {
    .n = 14,
    .le_us = {5000, 10000, 25000, 50000, 100000, 250000, 500000, 750000, 1000000, 2500000, 5000000,
              10000000, 30000000, 60000000},
};

const struct hist_bounds hist_itl_bounds = {
    .n = 13,
    .le_us = {1000, 2500, 5000, 10000, 20000, 50000, 100000, 250000, 500000, 1000000, 2500000,
              5000000, 10000000},
};

void hist_snap_add(struct hist_snap *snap, const struct hist *h)
{
    for (unsigned i = 0; i <= HIST_MAX_BOUNDS; i++)
        snap->bucket[i] += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    snap->count += atomic_load_explicit(&h->count, memory_order_relaxed);
    snap->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

void hist_fold(struct hist *h, const struct hist_snap *snap)
{
    for (unsigned i = 0; i <= HIST_MAX_BOUNDS; i++)
        hist_bump(&h->bucket[i], snap->bucket[i]);
    hist_bump(&h->count, snap->count);
    hist_bump(&h->sum_us, snap->sum_us);
}
