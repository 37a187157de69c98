/* sketch — see sketch.h (layout, error bound, window protocol). */
#include "shared/sketch.h"

#include <string.h>

_Static_assert(sizeof(struct sketch_slot) == 5376, "a slot is 48 + 1331 * 4 bytes, in cache lines");
_Static_assert(sizeof(struct sketch_win) == 64 + 2 * 5376, "a window is a line and two slots");
_Static_assert(sizeof(struct sketch_snap) == 5 * 8 + SKETCH_NBUCKETS * 8, "a snapshot");

#define RLX memory_order_relaxed

void sketch_switch(struct sketch_win *w, uint64_t now_epoch)
{
    uint64_t cur = atomic_load_explicit(&w->epoch, RLX);
    if (now_epoch <= cur)
        return;
    unsigned next = (atomic_load_explicit(&w->active, RLX) & 1) ^ 1;
    struct sketch_slot *s = &w->slot[next];

    /* 1. mark the slot busy before touching its contents: a reader that
     * sees any store below also sees this tag on its second load */
    atomic_store_explicit(&s->tag, now_epoch << 1 | SKETCH_BUSY, RLX);
    atomic_thread_fence(memory_order_release);

    /* 2. only buckets within [min, max] can be non-zero; counters first,
     * min and max after, so a switch cut short is redone in full */
    uint64_t mn = ~atomic_load_explicit(&s->nmin_us, RLX);
    uint64_t mx = atomic_load_explicit(&s->max_us, RLX);
    if (mn <= mx) {
        unsigned hi = sketch_index(mx);
        for (unsigned i = sketch_index(mn); i <= hi; i++)
            atomic_store_explicit(&s->count[i], 0, RLX);
    }
    atomic_store_explicit(&s->sum_us, 0, RLX);
    atomic_store_explicit(&s->clamped, 0, RLX);
    atomic_store_explicit(&s->nmin_us, 0, RLX);
    atomic_store_explicit(&s->max_us, 0, RLX);
    atomic_store_explicit(&s->prev, cur, RLX);

    /* 3. publish: the slot is now <now_epoch>, then the epoch itself (which
     * also publishes every sample of <cur>) */
    atomic_store_explicit(&s->tag, now_epoch << 1, memory_order_release);
    atomic_store_explicit(&w->active, next, RLX);
    atomic_store_explicit(&w->epoch, now_epoch, memory_order_release);
}

void sketch_win_init(struct sketch_win *w)
{
    atomic_store_explicit(&w->epoch, 0, RLX);
    atomic_store_explicit(&w->active, 0, RLX);
    for (unsigned k = 0; k < 2; k++) {
        struct sketch_slot *s = &w->slot[k];
        atomic_store_explicit(&s->tag, 0, RLX);
        atomic_store_explicit(&s->prev, 0, RLX);
        atomic_store_explicit(&s->sum_us, 0, RLX);
        atomic_store_explicit(&s->max_us, 0, RLX);
        atomic_store_explicit(&s->nmin_us, 0, RLX);
        atomic_store_explicit(&s->clamped, 0, RLX);
        for (unsigned i = 0; i < SKETCH_NBUCKETS; i++)
            atomic_store_explicit(&s->count[i], 0, RLX);
    }
}

/* Copy slot <s> (tag t1 read with acquire) into <out>; 0 if the tag still
 * reads t1 afterwards, else SKETCH_MISSED with <out> emptied. */
static int copy_slot(const struct sketch_slot *s, uint64_t t1, struct sketch_snap *out)
{
    uint64_t mn = ~atomic_load_explicit(&s->nmin_us, RLX);
    uint64_t mx = atomic_load_explicit(&s->max_us, RLX);
    uint64_t n = 0;
    if (mn <= mx) {
        unsigned hi = sketch_index(mx);
        for (unsigned i = sketch_index(mn); i <= hi; i++) {
            uint32_t c = atomic_load_explicit(&s->count[i], RLX);
            out->bucket[i] = c;
            n += c;
        }
        out->min_us = mn;
        out->max_us = mx;
        out->sum_us = atomic_load_explicit(&s->sum_us, RLX);
        out->clamped = atomic_load_explicit(&s->clamped, RLX);
    }
    out->count = n;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->tag, RLX) != t1) {
        memset(out, 0, sizeof *out);
        return SKETCH_MISSED;
    }
    return 0;
}

int sketch_collect(const struct sketch_win *w, uint64_t epoch, struct sketch_snap *out)
{
    memset(out, 0, sizeof *out);
    /* acquire: every sample the writer recorded before leaving <epoch> */
    if (epoch >= atomic_load_explicit(&w->epoch, memory_order_acquire))
        return SKETCH_PENDING;
    for (unsigned k = 0; k < 2; k++) {
        const struct sketch_slot *s = &w->slot[k];
        uint64_t t1 = atomic_load_explicit(&s->tag, memory_order_acquire);
        if (t1 & SKETCH_BUSY)
            continue;
        if (t1 >> 1 == epoch)
            return copy_slot(s, t1, out);
        uint64_t prev = atomic_load_explicit(&s->prev, RLX);
        atomic_thread_fence(memory_order_acquire);
        /* the writer went from prev straight to the tag's epoch */
        if (atomic_load_explicit(&s->tag, RLX) == t1 && prev < epoch && epoch < t1 >> 1)
            return 0;
    }
    return SKETCH_MISSED;
}

void sketch_snap_record(struct sketch_snap *snap, uint64_t us)
{
    if (snap->count == 0 || us < snap->min_us)
        snap->min_us = us;
    if (snap->count == 0 || us > snap->max_us)
        snap->max_us = us;
    snap->bucket[sketch_index(us)]++;
    snap->count++;
    snap->sum_us += us;
    if (us > SKETCH_MAX_US)
        snap->clamped++;
}

void sketch_merge(struct sketch_snap *dst, const struct sketch_snap *src)
{
    if (src->count == 0)
        return;
    unsigned hi = sketch_index(src->max_us);
    for (unsigned i = sketch_index(src->min_us); i <= hi; i++)
        dst->bucket[i] += src->bucket[i];
    if (dst->count == 0 || src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (dst->count == 0 || src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    dst->clamped += src->clamped;
}

uint64_t sketch_rank(uint64_t n, double q)
{
    if (n == 0)
        return 0;
    if (!(q > 0)) /* also NaN */
        return 1;
    if (q >= 1)
        return n;
    double x = q * (double)n;
    uint64_t r = (uint64_t)x;
    if ((double)r < x)
        r++;
    return r < 1 ? 1 : r > n ? n : r;
}

uint64_t sketch_quantile(const struct sketch_snap *snap, double q)
{
    uint64_t r = sketch_rank(snap->count, q);
    if (r == 0)
        return 0;
    if (r == 1) /* the first and last ranks are known exactly */
        return snap->min_us;
    if (r == snap->count)
        return snap->max_us;
    uint64_t cum = 0;
    unsigned i = sketch_index(snap->min_us), hi = sketch_index(snap->max_us);
    for (; i < hi; i++) {
        cum += snap->bucket[i];
        if (cum >= r)
            break;
    }
    uint64_t v = sketch_bucket_mid(i);
    if (v < snap->min_us)
        v = snap->min_us;
    if (v > snap->max_us)
        v = snap->max_us;
    return v;
}

double sketch_mean(const struct sketch_snap *snap)
{
    return snap->count ? (double)snap->sum_us / (double)snap->count : 0.0;
}
