/*
 * sketch — log-linear latency histograms (HdrHistogram layout) in shared
 * memory, windowed by epoch, mergeable exactly, with percentiles.
 *
 * Layout.  Values are microseconds.  Bucket 0 of the HdrHistogram scheme
 * holds 0..127 one by one (exact); above that every power of two
 * [2^k, 2^(k+1)), k >= 7, is split into 64 linear sub-buckets of width
 * 2^(k-6).  That is HdrHistogram with sub_bucket_count 128 (half 64): one
 * power of two coarser than its "2 significant digits" setting (256), which
 * is enough because a percentile is reported as the bucket's MIDPOINT,
 * not its highest equivalent value:
 *
 *     |midpoint - v| <= width / 2   and   v >= 64 * width
 *     =>  |returned - exact| / exact <= 1/128 = 0.78 %   for 0 <= v <= 60 s.
 *
 * (HdrHistogram's 2-digit layout with highest-equivalent values has the same
 * 1/128 bound with twice the counters.)  The range ends at SKETCH_MAX_US =
 * 60 s: bucket 1330 is [59.77 s, 60.29 s); a larger value is counted there
 * and in `clamped`.  1331 buckets; a writer slot holds them as 32-bit
 * counters (5,376 bytes per slot, 10,816 per two-slot window; the research
 * note's 2-digit, 64-bit layout is 20 KiB per slot), a snapshot as 64-bit
 * (10,688 bytes).  Sum, min and max are kept exactly from the real values
 * (a clamped 90 s sample adds 90 s to the sum and may be the max); returned
 * percentiles are also kept inside [min, max], which only moves them closer
 * to the exact value.
 *
 * A 32-bit bucket counter wraps after 2^32 samples of one bucket in ONE
 * epoch of one window: 71 minutes at a million samples a second, so epochs
 * of seconds are far from it.
 *
 * Window protocol.  A struct sketch_win has one writer (a worker; relaxed
 * load+store, no locked instruction, like hist.h) and any number of readers
 * (the control plane).  `epoch` is the writer's current epoch; `slot[active]`
 * holds it.  Epochs only grow (a stale now_epoch is recorded into the
 * current one) and stay below 2^63.  On the first record/advance with
 * now_epoch > epoch the writer switches to the OTHER slot, which holds the
 * epoch before the one just completed:
 *     1. other.tag = now<<1 | BUSY (relaxed); release fence;
 *     2. zero its counters, sum, min, max, clamped; other.prev = epoch;
 *     3. other.tag = now<<1 (release); active = other; epoch = now (release).
 * So the epoch just completed stays intact until the writer switches again,
 * however many epochs it skipped, and each slot says which epoch it holds
 * (tag) and the writer's epoch before that (prev: epochs strictly between
 * prev and tag were never written).  sketch_collect(w, E) reads epoch
 * (acquire) first: E >= epoch is not complete (SKETCH_PENDING).  Otherwise
 * every record of E happens-before what it reads next.  A slot whose tag
 * (acquire) is E is copied, then an acquire fence and a second tag load must
 * find the same tag (a seqlock): if the writer began re-using the slot the
 * copy is thrown away and the result is SKETCH_MISSED.  If no slot holds E
 * but a slot's (prev, tag) brackets E, E was skipped: an empty window,
 * exactly.  Otherwise the data is gone (the reader is more than one switch
 * late): SKETCH_MISSED, never partial or mixed counts.  A writer that
 * neither records nor calls sketch_advance leaves its epoch pending, so a
 * worker ticks its windows from its timer.
 *
 * All-zero memory is a valid, empty window in epoch 0 (a fresh shm
 * segment needs no init).  A writer that dies and is replaced can go on
 * with the same struct: a half-done switch is redone by the next one.
 */
#ifndef SLUICE_SKETCH_H
#define SLUICE_SKETCH_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#define SKETCH_SUB_BITS  6                       /* 64 sub-buckets per power of two */
#define SKETCH_SUB_HALF  (1u << SKETCH_SUB_BITS) /* 64 */
#define SKETCH_SUB_COUNT (2u * SKETCH_SUB_HALF)  /* 128: 0..127 are exact */
#define SKETCH_MAX_US    60000000ull             /* 60 s; above clamps */
#define SKETCH_TOP_SHIFT 19u                     /* 60 s in [2^25, 2^26): width 2^19 */
#define SKETCH_NBUCKETS                                                                            \
    ((unsigned)(SKETCH_TOP_SHIFT * SKETCH_SUB_HALF + (SKETCH_MAX_US >> SKETCH_TOP_SHIFT)) + 1u)

_Static_assert((SKETCH_MAX_US >> SKETCH_TOP_SHIFT) >= SKETCH_SUB_HALF &&
                   (SKETCH_MAX_US >> SKETCH_TOP_SHIFT) < SKETCH_SUB_COUNT,
               "SKETCH_TOP_SHIFT is the shift of SKETCH_MAX_US");
_Static_assert(SKETCH_NBUCKETS == 1331, "1 us .. 60 s");

/* sketch_collect results besides 0 */
#define SKETCH_PENDING (-EAGAIN) /* the writer has not left that epoch yet */
#define SKETCH_MISSED  (-ESTALE) /* that epoch's slot was re-used: data gone */

#define SKETCH_BUSY 1u /* low bit of a slot tag: being cleared */

struct sketch_slot {
    _Alignas(64) _Atomic uint64_t tag; /* epoch << 1, | SKETCH_BUSY while switching */
    _Atomic uint64_t prev;             /* the writer's epoch before <tag> */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t max_us;
    _Atomic uint64_t nmin_us; /* ~min: zero memory means "no sample" */
    _Atomic uint64_t clamped; /* samples above SKETCH_MAX_US */
    _Atomic uint32_t count[SKETCH_NBUCKETS];
};

struct sketch_win {
    _Alignas(64) _Atomic uint64_t epoch; /* writer's current epoch */
    _Atomic uint32_t active;             /* slot holding it (writer-private) */
    struct sketch_slot slot[2];
};

/* A plain copy: collected from a window, merged, queried.  All zero is
 * empty; min_us and max_us mean something only when count > 0, and no
 * bucket outside [sketch_index(min_us), sketch_index(max_us)] is non-zero. */
struct sketch_snap {
    uint64_t count;
    uint64_t sum_us;
    uint64_t min_us;
    uint64_t max_us;
    uint64_t clamped;
    uint64_t bucket[SKETCH_NBUCKETS];
};

/* Bucket of a value: 0..SKETCH_NBUCKETS-1; above SKETCH_MAX_US -> the top. */
static inline unsigned sketch_index(uint64_t us)
{
    if (us > SKETCH_MAX_US)
        us = SKETCH_MAX_US;
    if (us < SKETCH_SUB_COUNT)
        return (unsigned)us;
    unsigned shift = (unsigned)(63 - __builtin_clzll(us)) - SKETCH_SUB_BITS;
    return shift * SKETCH_SUB_HALF + (unsigned)(us >> shift);
}

/* Lowest value of bucket i, and its width (values lo .. lo+width-1). */
static inline uint64_t sketch_bucket_lo(unsigned i)
{
    if (i < SKETCH_SUB_COUNT)
        return i;
    unsigned shift = i / SKETCH_SUB_HALF - 1;
    return (uint64_t)(i - shift * SKETCH_SUB_HALF) << shift;
}

static inline uint64_t sketch_bucket_width(unsigned i)
{
    return i < SKETCH_SUB_COUNT ? 1 : 1ull << (i / SKETCH_SUB_HALF - 1);
}

/* The value a percentile in bucket i reports: its midpoint (rounded down). */
static inline uint64_t sketch_bucket_mid(unsigned i)
{
    return sketch_bucket_lo(i) + (sketch_bucket_width(i) - 1) / 2;
}

static inline void sketch_bump32(_Atomic uint32_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void sketch_bump64(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Writer only: the slow path of a new epoch (see the protocol above). */
void sketch_switch(struct sketch_win *w, uint64_t now_epoch);

/* Writer only: move to now_epoch if it is later, recording nothing.  Call
 * it from the worker's timer so an idle window's epochs complete. */
static inline void sketch_advance(struct sketch_win *w, uint64_t now_epoch)
{
    if (now_epoch > atomic_load_explicit(&w->epoch, memory_order_relaxed))
        sketch_switch(w, now_epoch);
}

/* Writer only: one sample of <us> microseconds in epoch now_epoch (or the
 * current epoch if now_epoch is older). */
static inline void sketch_record(struct sketch_win *w, uint64_t now_epoch, uint64_t us)
{
    sketch_advance(w, now_epoch);
    struct sketch_slot *s = &w->slot[atomic_load_explicit(&w->active, memory_order_relaxed) & 1];
    sketch_bump32(&s->count[sketch_index(us)]);
    sketch_bump64(&s->sum_us, us);
    if (us > atomic_load_explicit(&s->max_us, memory_order_relaxed))
        atomic_store_explicit(&s->max_us, us, memory_order_relaxed);
    if (~us > atomic_load_explicit(&s->nmin_us, memory_order_relaxed))
        atomic_store_explicit(&s->nmin_us, ~us, memory_order_relaxed);
    if (us > SKETCH_MAX_US)
        sketch_bump64(&s->clamped, 1);
}

/* Zero a window (epoch 0, empty); only while no one writes it. */
void sketch_win_init(struct sketch_win *w);

/* The writer's current epoch (acquire): every epoch below it is complete. */
static inline uint64_t sketch_epoch(const struct sketch_win *w)
{
    return atomic_load_explicit(&w->epoch, memory_order_acquire);
}

/* Any process: copy epoch <epoch> of <w> into <out> (overwritten).  0: out
 * holds exactly that epoch's samples (empty if none were recorded in it);
 * SKETCH_PENDING: the writer is still in that epoch or before it;
 * SKETCH_MISSED: the slot has been re-used.  out is empty unless 0.  After
 * PENDING ask again later (the writer may still add samples to that epoch;
 * dropping it loses them); MISSED is final. */
int sketch_collect(const struct sketch_win *w, uint64_t epoch, struct sketch_snap *out);

/* A plain record into a snapshot (tests, single-process use). */
void sketch_snap_record(struct sketch_snap *snap, uint64_t us);

/* dst += src, exactly: bucket-wise sums, count, sum, clamped, min, max. */
void sketch_merge(struct sketch_snap *dst, const struct sketch_snap *src);

/* The 1-based rank a quantile q of n samples refers to: ceil(q * n),
 * within [1, n] (0 when n is 0); q is clamped to [0, 1]. */
uint64_t sketch_rank(uint64_t n, double q);

/* The value at rank ceil(q * count) (at least 1) as its bucket's midpoint,
 * kept within [min, max]; rank 1 is min and rank count is max, exactly.  q
 * is clamped to [0, 1].  0 when empty. */
uint64_t sketch_quantile(const struct sketch_snap *snap, double q);

/* sum / count as a double; 0 when empty. */
double sketch_mean(const struct sketch_snap *snap);

#endif
