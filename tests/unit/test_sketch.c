/*
 * Unit tests for shared/sketch: the bucket layout and its error bound over
 * every bucket; percentiles against exact ones from sorted samples
 * (uniform, log-normal, bimodal, constant, small exact values): relative
 * value error within 1/128 and rank error within the bucket's count; count,
 * min, max, mean exact; merging 4 partial sketches equals one sketch of all
 * samples bucket for bucket; clamping above 60 s; empty sketches; windows
 * rotated in one process against a model of what each epoch must give
 * (data, empty, pending, missed); then a forked writer and reader over
 * tens of thousands of epochs, checking every sample lands in exactly one
 * collected epoch, and that a lagging reader gets "missed", never wrong data.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/sketch.h"

/* ---- helpers ---------------------------------------------------------------- */

#define BOUND (1.0 / 128) /* the error bound sketch.h states */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix(r->s);
}

/* uniform in (0, 1) */
static double rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(struct rng *r)
{
    return sqrt(-2.0 * log(rng_unit(r))) * cos(6.283185307179586 * rng_unit(r));
}

static uint64_t clamp_us(double v)
{
    if (v < 1)
        return 1;
    if (v > (double)SKETCH_MAX_US)
        return SKETCH_MAX_US;
    return (uint64_t)v;
}

static void *map_shared(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap %zu: %s", len, strerror(errno));
    return p;
}

static struct sketch_snap *snap_new(void)
{
    struct sketch_snap *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    return s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* samples < v and samples <= v in sorted[0..n) */
static size_t count_below(const uint64_t *sorted, size_t n, uint64_t v, bool or_equal)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < v || (or_equal && sorted[mid] == v))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const double qs[] = {0.5, 0.95, 0.99, 0.999};
#define NQ (sizeof qs / sizeof qs[0])

/* Checks a sketch of v[0..n) against the sorted samples: value error,
 * rank error, count/min/max/mean; records the worst value error per
 * quantile in worst[] and prints them. */
static void check_against_exact(const char *name, uint64_t *v, size_t n)
{
    struct sketch_snap *s = snap_new();
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sketch_snap_record(s, v[i]);
        sum += v[i];
    }
    /* the same samples through a window and collect give the same snapshot */
    struct sketch_win *w = map_shared(sizeof *w);
    for (size_t i = 0; i < n; i++)
        sketch_record(w, 7, v[i]);
    sketch_advance(w, 8);
    struct sketch_snap *c = snap_new();
    cr_assert_eq(sketch_collect(w, 7, c), 0);
    cr_assert(memcmp(c, s, sizeof *s) == 0, "%s: collected == recorded", name);
    munmap(w, sizeof *w);
    free(c);

    qsort(v, n, sizeof v[0], cmp_u64);
    cr_assert_eq(s->count, n);
    cr_assert_eq(s->sum_us, sum);
    cr_assert_eq(s->min_us, v[0]);
    cr_assert_eq(s->max_us, v[n - 1]);
    cr_assert_float_eq(sketch_mean(s), (double)sum / (double)n, 1e-9 * (double)sum / (double)n);

    char line[256];
    int len = snprintf(line, sizeof line, "sketch %-9s n=%zu", name, n);
    for (size_t k = 0; k < NQ; k++) {
        uint64_t r = sketch_rank(n, qs[k]);
        uint64_t exact = v[r - 1];
        uint64_t got = sketch_quantile(s, qs[k]);
        double err = exact ? fabs((double)got - (double)exact) / (double)exact : (double)(got != 0);
        cr_assert_leq(err, BOUND, "%s p%g: got %llu, exact %llu, error %.5f", name, qs[k] * 100,
                      (unsigned long long)got, (unsigned long long)exact, err);
        /* the returned value's rank among the samples vs ceil(q n) */
        size_t below = count_below(v, n, got, false), upto = count_below(v, n, got, true);
        uint64_t rank_err = r <= below ? below + 1 - r : r > upto ? r - upto : 0;
        uint64_t share = s->bucket[sketch_index(got)];
        cr_assert_leq(rank_err, share, "%s p%g: rank error %llu > bucket count %llu", name,
                      qs[k] * 100, (unsigned long long)rank_err, (unsigned long long)share);
        if (len > 0 && (size_t)len < sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len, "  p%g %.3f%% (rank %.3f%%)",
                            qs[k] * 100, err * 100, 100.0 * (double)rank_err / (double)n);
    }
    fprintf(stderr, "%s\n", line);
    /* ranks 1 and n are min and max exactly */
    cr_assert_eq(sketch_quantile(s, 0), v[0]);
    cr_assert_eq(sketch_quantile(s, 1), v[n - 1]);
    free(s);
}

#define NS 200000

/* ---- layout ------------------------------------------------------------------- */

Test(sketch, layout_and_size)
{
    cr_assert_eq(SKETCH_NBUCKETS, 1331);
    cr_assert_eq(sizeof(struct sketch_slot), 5376);
    cr_assert_eq(sizeof(struct sketch_win), 10816);
    cr_assert_eq(sizeof(struct sketch_snap), 10688);
    cr_assert_eq(offsetof(struct sketch_win, slot) % 64, 0);
    cr_assert_eq(sketch_index(0), 0);
    cr_assert_eq(sketch_index(127), 127);
    cr_assert_eq(sketch_index(128), 128);
    cr_assert_eq(sketch_index(SKETCH_MAX_US), SKETCH_NBUCKETS - 1);
    cr_assert_eq(sketch_index(SKETCH_MAX_US + 1), SKETCH_NBUCKETS - 1);
    cr_assert_eq(sketch_index(UINT64_MAX), SKETCH_NBUCKETS - 1);
    cr_assert_lt(sketch_index(SKETCH_MAX_US - sketch_bucket_width(SKETCH_NBUCKETS - 1)),
                 SKETCH_NBUCKETS - 1);
}

/* Buckets tile 0 .. 60 s without gap; every value maps into its bucket; the
 * midpoint's error is within 1/128 at both ends of every bucket (so for
 * every value in it). */
Test(sketch, buckets_tile_and_bound_holds_everywhere)
{
    double worst = 0;
    for (unsigned i = 0; i < SKETCH_NBUCKETS; i++) {
        uint64_t lo = sketch_bucket_lo(i), wd = sketch_bucket_width(i), hi = lo + wd - 1;
        uint64_t mid = sketch_bucket_mid(i);
        if (i + 1 < SKETCH_NBUCKETS)
            cr_assert_eq(sketch_bucket_lo(i + 1), lo + wd, "bucket %u", i);
        cr_assert_eq(sketch_index(lo), i);
        cr_assert_eq(sketch_index(hi), i);
        cr_assert(mid >= lo && mid <= hi);
        if (lo > 0) {
            double e = fmax((double)(mid - lo) / (double)lo, (double)(hi - mid) / (double)hi);
            worst = fmax(worst, e);
            cr_assert_leq(e, BOUND, "bucket %u [%llu, %llu]: %.6f", i, (unsigned long long)lo,
                          (unsigned long long)hi, e);
        }
    }
    cr_assert_geq(sketch_bucket_lo(SKETCH_NBUCKETS - 1) + sketch_bucket_width(SKETCH_NBUCKETS - 1),
                  SKETCH_MAX_US + 1, "60 s is inside the top bucket");
    for (uint64_t v = 0; v < (1u << 20); v++) {
        unsigned i = sketch_index(v);
        cr_assert(v >= sketch_bucket_lo(i) && v < sketch_bucket_lo(i) + sketch_bucket_width(i));
    }
    struct rng r = {1};
    for (int k = 0; k < 1000000; k++) {
        uint64_t v = rng_next(&r) % (SKETCH_MAX_US + 1);
        unsigned i = sketch_index(v);
        cr_assert(v >= sketch_bucket_lo(i) && v < sketch_bucket_lo(i) + sketch_bucket_width(i));
    }
    fprintf(stderr, "sketch bucket midpoint worst-case relative error %.4f%% (bound %.4f%%)\n",
            worst * 100, BOUND * 100);
}

/* ---- accuracy against sorted samples -------------------------------------------- */

Test(sketch, uniform)
{
    uint64_t *v = malloc(NS * sizeof *v);
    struct rng r = {11};
    for (size_t i = 0; i < NS; i++)
        v[i] = 1 + rng_next(&r) % 5000000; /* 1 us .. 5 s */
    check_against_exact("uniform", v, NS);
    free(v);
}

Test(sketch, lognormal)
{
    uint64_t *v = malloc(NS * sizeof *v);
    struct rng r = {22};
    for (size_t i = 0; i < NS; i++) /* median 50 ms, sigma 1.2: long right tail */
        v[i] = clamp_us(exp(log(50000.0) + 1.2 * rng_normal(&r)));
    check_against_exact("lognormal", v, NS);
    free(v);
}

Test(sketch, bimodal)
{
    uint64_t *v = malloc(NS * sizeof *v);
    struct rng r = {33};
    for (size_t i = 0; i < NS; i++) {
        if (rng_next(&r) % 10) /* 90 % around 20 ms, 10 % around 2 s */
            v[i] = clamp_us(20000.0 + 3000.0 * rng_normal(&r));
        else
            v[i] = clamp_us(2000000.0 + 300000.0 * rng_normal(&r));
    }
    check_against_exact("bimodal", v, NS);
    free(v);
}

Test(sketch, constant)
{
    uint64_t *v = malloc(NS * sizeof *v);
    for (size_t i = 0; i < NS; i++)
        v[i] = 12345;
    check_against_exact("constant", v, NS);
    struct sketch_snap *s = snap_new();
    for (int i = 0; i < 1000; i++)
        sketch_snap_record(s, 12345);
    for (size_t k = 0; k < NQ; k++) /* min == max: exact */
        cr_assert_eq(sketch_quantile(s, qs[k]), 12345);
    free(s);
    free(v);
}

Test(sketch, small_values_are_exact)
{
    uint64_t *v = malloc(NS * sizeof *v);
    struct rng r = {44};
    for (size_t i = 0; i < NS; i++)
        v[i] = rng_next(&r) % 128; /* includes 0 */
    check_against_exact("0..127", v, NS);
    struct sketch_snap *s = snap_new();
    for (size_t i = 0; i < NS; i++)
        sketch_snap_record(s, v[i]);
    for (size_t k = 0; k < NQ; k++)
        cr_assert_eq(sketch_quantile(s, qs[k]), v[sketch_rank(NS, qs[k]) - 1]);
    free(s);
    free(v);
}

Test(sketch, rank)
{
    cr_assert_eq(sketch_rank(0, 0.5), 0);
    cr_assert_eq(sketch_rank(10, 0), 1);
    cr_assert_eq(sketch_rank(10, -1), 1);
    cr_assert_eq(sketch_rank(10, NAN), 1);
    cr_assert_eq(sketch_rank(10, 0.5), 5);
    cr_assert_eq(sketch_rank(10, 0.51), 6);
    cr_assert_eq(sketch_rank(10, 1), 10);
    cr_assert_eq(sketch_rank(10, 7), 10);
    cr_assert_eq(sketch_rank(1000, 0.999), 999);
}

/* ---- merging ----------------------------------------------------------------- */

Test(sketch, merge_of_four_equals_one)
{
    struct rng r = {55};
    struct sketch_snap *all = snap_new(), *part[4], *m = snap_new();
    for (int k = 0; k < 4; k++)
        part[k] = snap_new();
    for (size_t i = 0; i < NS; i++) {
        /* each part its own range, so min/max and bucket spans differ */
        unsigned k = (unsigned)(rng_next(&r) % 4);
        uint64_t v = (rng_next(&r) % 1000000) >> (3 * k);
        if (i % 9999 == 0)
            v = SKETCH_MAX_US + i; /* some clamped */
        sketch_snap_record(all, v);
        sketch_snap_record(part[k], v);
    }
    struct sketch_snap *empty = snap_new();
    sketch_merge(m, empty);
    for (int k = 0; k < 4; k++) {
        sketch_merge(m, part[k]);
        sketch_merge(m, empty);
    }
    cr_assert(memcmp(m, all, sizeof *m) == 0, "bucket for bucket, count, sum, min, max, clamped");
    cr_assert_gt(all->clamped, 0);
    /* the same through four windows in shared memory */
    struct sketch_win *w = map_shared(4 * sizeof *w);
    r.s = 55;
    for (size_t i = 0; i < NS; i++) {
        unsigned k = (unsigned)(rng_next(&r) % 4);
        uint64_t v = (rng_next(&r) % 1000000) >> (3 * k);
        if (i % 9999 == 0)
            v = SKETCH_MAX_US + i;
        sketch_record(&w[k], 3, v);
    }
    memset(m, 0, sizeof *m);
    for (int k = 0; k < 4; k++) {
        sketch_advance(&w[k], 4);
        cr_assert_eq(sketch_collect(&w[k], 3, part[k]), 0);
        sketch_merge(m, part[k]);
    }
    cr_assert(memcmp(m, all, sizeof *m) == 0);
    munmap(w, 4 * sizeof *w);
    for (int k = 0; k < 4; k++)
        free(part[k]);
    free(all);
    free(m);
    free(empty);
}

/* ---- clamping and empty ------------------------------------------------------------ */

Test(sketch, clamping)
{
    struct sketch_snap *s = snap_new();
    const uint64_t in[] = {59900000, SKETCH_MAX_US, SKETCH_MAX_US + 1, 90000000, 3600000000ull};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        sketch_snap_record(s, in[i]);
        sum += in[i];
    }
    cr_assert_eq(s->count, 5);
    cr_assert_eq(s->clamped, 3);
    cr_assert_eq(s->bucket[SKETCH_NBUCKETS - 1], 5, "all in the top bucket");
    cr_assert_eq(s->max_us, 3600000000ull, "max is the real value");
    cr_assert_eq(s->sum_us, sum, "so is the sum");
    uint64_t top = sketch_bucket_mid(SKETCH_NBUCKETS - 1);
    cr_assert_eq(sketch_quantile(s, 0.5), top, "the top bucket's midpoint");
    cr_assert_eq(sketch_quantile(s, 0.79), top);
    cr_assert_eq(sketch_quantile(s, 0), 59900000, "rank 1 is the min");
    cr_assert_eq(sketch_quantile(s, 1), 3600000000ull, "rank n is the max");
    /* a window counts them the same way */
    struct sketch_win *w = map_shared(sizeof *w);
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        sketch_record(w, 0, in[i]);
    sketch_advance(w, 1);
    struct sketch_snap *c = snap_new();
    cr_assert_eq(sketch_collect(w, 0, c), 0);
    cr_assert(memcmp(c, s, sizeof *s) == 0);
    munmap(w, sizeof *w);
    free(c);
    free(s);
}

Test(sketch, empty)
{
    struct sketch_snap *s = snap_new(), *t = snap_new();
    cr_assert_eq(sketch_quantile(s, 0.5), 0);
    cr_assert_eq(sketch_quantile(s, 1), 0);
    cr_assert_eq(sketch_mean(s), 0.0);
    sketch_merge(s, t);
    cr_assert(memcmp(s, t, sizeof *s) == 0, "empty + empty is empty");
    sketch_snap_record(t, 0);
    sketch_merge(s, t);
    cr_assert_eq(s->count, 1);
    cr_assert_eq(s->min_us, 0);
    cr_assert_eq(s->max_us, 0);
    cr_assert_eq(sketch_quantile(s, 0.5), 0);

    /* fresh zero memory is a window in epoch 0 */
    struct sketch_win *w = map_shared(sizeof *w);
    memset(s, 0xa5, sizeof *s);
    cr_assert_eq(sketch_collect(w, 0, s), SKETCH_PENDING);
    struct sketch_snap *zero = snap_new();
    cr_assert(memcmp(s, zero, sizeof *s) == 0, "out emptied");
    free(zero);
    cr_assert_eq(sketch_collect(w, 5, s), SKETCH_PENDING);
    sketch_advance(w, 10);
    cr_assert_eq(sketch_epoch(w), 10);
    for (uint64_t e = 0; e < 10; e++) {
        memset(s, 0xa5, sizeof *s);
        cr_assert_eq(sketch_collect(w, e, s), 0, "epoch %llu never written", (unsigned long long)e);
        cr_assert_eq(s->count, 0);
        cr_assert_eq(sketch_quantile(s, 0.5), 0);
    }
    cr_assert_eq(sketch_collect(w, 10, s), SKETCH_PENDING);
    /* init after garbage gives the same empty window */
    memset(w, 0x5a, sizeof *w);
    sketch_win_init(w);
    sketch_advance(w, 3);
    cr_assert_eq(sketch_collect(w, 0, s), 0);
    cr_assert_eq(sketch_collect(w, 2, s), 0);
    cr_assert_eq(s->count, 0);
    munmap(w, sizeof *w);
    free(s);
    free(t);
}

/* ---- windows in one process -------------------------------------------------------- */

/* What collect must say of epoch e, from the writer's history of epochs
 * (h[0] = 0, h[1..n-1] the epochs it switched to): the last two it was in
 * hold data, epochs skipped between the last three are empty, others are
 * missed (the slot was re-used). */
static int model(const uint64_t *h, size_t n, uint64_t e)
{
    uint64_t cur = h[n - 1];
    if (e >= cur)
        return SKETCH_PENDING;
    uint64_t prev = h[n - 2], prev2 = n >= 3 ? h[n - 3] : 0;
    if (e >= prev)
        return 0; /* prev's data, or skipped between prev and cur */
    if (n >= 3 && e > prev2)
        return 0; /* skipped between prev2 and prev */
    return SKETCH_MISSED;
}

struct wtest {
    struct sketch_win *w;
    struct sketch_snap **exp; /* per epoch: what was recorded, NULL if nothing */
    struct sketch_snap *got;
    uint64_t *h;
    size_t nh;
    uint64_t next_collect, collected, lost, n_data, n_empty, n_missed;
};

/* Collect every epoch from next_collect up to the writer's, in order, as
 * the control plane does; each one must be what the model says, and exact. */
static void collect_in_order(struct wtest *t)
{
    uint64_t cur = t->h[t->nh - 1];
    for (; t->next_collect < cur; t->next_collect++) {
        uint64_t e = t->next_collect;
        int rc = sketch_collect(t->w, e, t->got);
        cr_assert_eq(rc, model(t->h, t->nh, e), "epoch %llu", (unsigned long long)e);
        const struct sketch_snap *want = t->exp[e];
        if (rc == SKETCH_MISSED) {
            t->lost += want ? want->count : 0;
            t->n_missed++;
            cr_assert_eq(t->got->count, 0);
        } else if (want) {
            cr_assert(memcmp(t->got, want, sizeof *want) == 0, "epoch %llu exact",
                      (unsigned long long)e);
        } else {
            cr_assert_eq(t->got->count, 0);
        }
        if (rc == 0) {
            t->collected += t->got->count;
            t->n_data += t->got->count > 0;
            t->n_empty += t->got->count == 0;
        }
    }
}

static void record_both(struct wtest *t, uint64_t at, uint64_t into, uint64_t v)
{
    sketch_record(t->w, at, v);
    if (!t->exp[into])
        t->exp[into] = snap_new();
    sketch_snap_record(t->exp[into], v);
}

Test(sketch, windows_single_process)
{
    enum { STEPS = 3000, MAXE = 4 * STEPS + 8 };
    struct wtest t = {
        .w = map_shared(sizeof(struct sketch_win)),
        .exp = calloc(MAXE, sizeof(struct sketch_snap *)),
        .got = snap_new(),
        .h = calloc(STEPS + 2, sizeof(uint64_t)),
        .nh = 1,
    };
    struct rng r = {66};
    uint64_t cur = 0, recorded = 0, probes[4] = {0};
    for (int step = 0; step < STEPS; step++) {
        /* record into <cur>, sometimes with a stale epoch (lands in cur) */
        unsigned n = (unsigned)(rng_next(&r) % 6 ? rng_next(&r) % 300 : 0);
        for (unsigned j = 0; j < n; j++) {
            uint64_t v = rng_next(&r) % 70000000 >> (rng_next(&r) % 24);
            record_both(&t, cur > 0 && j % 7 == 3 ? cur - 1 : cur, cur, v);
            recorded++;
        }
        /* the reader keeps up, except now and then */
        if (rng_next(&r) % 10)
            collect_in_order(&t);
        /* ask about epochs around the writer's: the model says what comes back */
        for (int k = 0; k < 4; k++) {
            uint64_t e = cur + 2 >= 8 ? cur + 2 - rng_next(&r) % 8 : rng_next(&r) % (cur + 3);
            int want = model(t.h, t.nh, e);
            int rc = sketch_collect(t.w, e, t.got);
            cr_assert_eq(rc, want, "epoch %llu at %llu", (unsigned long long)e,
                         (unsigned long long)cur);
            if (rc == 0 && t.exp[e])
                cr_assert(memcmp(t.got, t.exp[e], sizeof *t.got) == 0);
            else
                cr_assert_eq(t.got->count, 0);
            probes[rc == SKETCH_PENDING ? 3 : rc == SKETCH_MISSED ? 2 : t.got->count ? 0 : 1]++;
        }
        /* advance by 1 .. 4, by a tick or by the next epoch's first sample */
        uint64_t next = cur + 1 + (rng_next(&r) % 4 == 0 ? rng_next(&r) % 4 : 0);
        if (rng_next(&r) % 2) {
            sketch_advance(t.w, next);
        } else {
            record_both(&t, next, next, rng_next(&r) % 1000);
            recorded++;
        }
        t.h[t.nh++] = cur = next;
        cr_assert_eq(sketch_epoch(t.w), cur);
    }
    sketch_advance(t.w, cur + 1);
    t.h[t.nh++] = cur + 1;
    collect_in_order(&t);
    cr_assert_eq(t.collected + t.lost, recorded, "every sample collected once or reported lost");
    cr_assert_gt(t.lost, 0, "the lazy reader lost some");
    cr_assert_gt(t.n_missed, 0);
    for (int k = 0; k < 4; k++)
        cr_assert_gt(probes[k], 0, "probe kind %d seen", k);
    fprintf(stderr,
            "sketch windows: %d switches, %llu samples: %llu collected in order, %llu in %llu "
            "missed epochs; %llu with data, %llu empty; probes %llu data, %llu empty, %llu "
            "missed, %llu pending\n",
            STEPS, (unsigned long long)recorded, (unsigned long long)t.collected,
            (unsigned long long)t.lost, (unsigned long long)t.n_missed,
            (unsigned long long)t.n_data, (unsigned long long)t.n_empty,
            (unsigned long long)probes[0], (unsigned long long)probes[1],
            (unsigned long long)probes[2], (unsigned long long)probes[3]);
    for (size_t e = 0; e < MAXE; e++)
        free(t.exp[e]);
    free(t.exp);
    free(t.h);
    free(t.got);
    munmap(t.w, sizeof *t.w);
}

/* Without lazy steps nothing is missed: every sample in exactly one epoch. */
Test(sketch, windows_single_process_keeping_up)
{
    enum { STEPS = 2000, MAXE = 4 * STEPS + 8 };
    struct wtest t = {
        .w = map_shared(sizeof(struct sketch_win)),
        .exp = calloc(MAXE, sizeof(struct sketch_snap *)),
        .got = snap_new(),
        .h = calloc(STEPS + 2, sizeof(uint64_t)),
        .nh = 1,
    };
    struct rng r = {67};
    uint64_t cur = 0, recorded = 0;
    for (int step = 0; step < STEPS; step++) {
        unsigned n = (unsigned)(rng_next(&r) % 4 ? rng_next(&r) % 100 : 0);
        for (unsigned j = 0; j < n; j++, recorded++)
            record_both(&t, cur, cur, rng_next(&r) % 3000000);
        collect_in_order(&t);
        uint64_t next = cur + 1 + rng_next(&r) % 3;
        sketch_advance(t.w, next);
        t.h[t.nh++] = cur = next;
    }
    collect_in_order(&t);
    sketch_advance(t.w, cur + 1);
    t.h[t.nh++] = cur + 1;
    collect_in_order(&t);
    cr_assert_eq(t.n_missed, 0);
    cr_assert_eq(t.collected, recorded);
    cr_assert_eq(t.next_collect, cur + 1);
    for (size_t e = 0; e < MAXE; e++)
        free(t.exp[e]);
    free(t.exp);
    free(t.h);
    free(t.got);
    munmap(t.w, sizeof *t.w);
}

/* ---- a writer process and a reader process ------------------------------------------ */

#define CHILD_ALARM_S 30

/* The writer's epochs and samples are a function of the epoch number, so
 * the reader can rebuild what any epoch must hold. */
static uint64_t next_epoch(uint64_t e)
{
    uint64_t h = mix(e ^ 0x51);
    return e + 1 + ((h & 7) == 0 ? 1 + (h >> 8) % 3 : 0);
}

static unsigned samples_in(uint64_t e)
{
    uint64_t h = mix(e ^ 0x52);
    return h % 5 == 0 ? 0 : (unsigned)((h >> 8) % 400);
}

static uint64_t sample(uint64_t e, unsigned j)
{
    uint64_t h = mix(e * 4096 + j);
    if (h % 997 == 0)
        return SKETCH_MAX_US + h % 1000000; /* clamped */
    return (h >> 20) % 60000000 >> (h % 23);
}

struct duo {
    bool throttle;             /* the writer waits for the reader before re-using a slot */
    bool hammer;               /* no pacing, every epoch; reader takes the newest complete */
    double secs;               /* how long the writer writes */
    _Atomic uint64_t final;    /* the epoch the writer ends in (set before done) */
    _Atomic uint32_t done;     /* the writer has finished */
    uint64_t w_samples, w_sum; /* what the writer recorded */
    uint64_t w_epochs;

    _Atomic uint64_t r_upto __attribute__((aligned(64))); /* reader finished epochs < this */
    uint64_t r_ok, r_empty, r_missed, r_pending, r_bad;
    uint64_t r_samples, r_sum;    /* collected */
    uint64_t r_lost, r_first_bad; /* samples of missed epochs; first wrong epoch */
    uint64_t r_epochs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void relax(uint64_t *spins)
{
    if (++*spins % 64)
        atomic_signal_fence(memory_order_seq_cst);
    else
        sched_yield();
}

/* Throttled: before a switch (which re-uses the slot of the epoch before
 * the current one) wait until the reader has finished every epoch below the
 * current one. */
static void wait_reader(struct sketch_win *w, struct duo *d, uint64_t *spins)
{
    uint64_t cur = atomic_load_explicit(&w->epoch, memory_order_relaxed);
    while (d->throttle && atomic_load_explicit(&d->r_upto, memory_order_acquire) < cur)
        relax(spins);
}

static int writer(struct sketch_win *w, struct duo *d)
{
    double end = now_s() + d->secs, t = now_s();
    uint64_t e = 0, spins = 0;
    for (;;) {
        unsigned n = samples_in(e);
        wait_reader(w, d, &spins);
        for (unsigned j = 0; j < n; j++) { /* j = 0 switches; some later ones are stale */
            uint64_t v = sample(e, j);
            sketch_record(w, j % 5 == 4 && e > 0 ? e - 1 : e, v);
            d->w_samples++;
            d->w_sum += v;
        }
        d->w_epochs++;
        if ((t = now_s()) > end)
            break;
        uint64_t next = d->hammer ? e + 1 : next_epoch(e);
        if (n % 2) { /* half the epochs begin with a tick, half with their first sample */
            wait_reader(w, d, &spins);
            sketch_advance(w, next);
        }
        /* lagging mode: ~20 us an epoch, so the reader is sometimes late */
        while (!d->throttle && !d->hammer && now_s() < t + 20e-6)
            relax(&spins);
        e = next;
    }
    wait_reader(w, d, &spins);
    sketch_advance(w, e + 1);
    atomic_store_explicit(&d->final, e + 1, memory_order_relaxed);
    atomic_store_explicit(&d->done, 1, memory_order_release);
    return 0;
}

static int reader(struct sketch_win *w, struct duo *d)
{
    struct sketch_snap *got = calloc(1, sizeof *got), *want = calloc(1, sizeof *want);
    if (!got || !want)
        return 2;
    uint64_t visit = 0, spins = 0; /* the next epoch the writer goes through */
    struct rng r = {77};
    for (uint64_t e = 0;; e++) {
        int rc;
        while ((rc = sketch_collect(w, e, got)) == SKETCH_PENDING) {
            if (atomic_load_explicit(&d->done, memory_order_acquire) &&
                e >= atomic_load_explicit(&d->final, memory_order_relaxed))
                goto out;
            d->r_pending++;
            relax(&spins);
        }
        bool visited = e == visit;
        if (visited)
            visit = next_epoch(e);
        if (rc == SKETCH_MISSED) {
            d->r_missed++;
            d->r_lost += visited ? samples_in(e) : 0;
        } else {
            memset(want, 0, sizeof *want);
            for (unsigned j = 0, n = visited ? samples_in(e) : 0; j < n; j++)
                sketch_snap_record(want, sample(e, j));
            if (rc != 0 || memcmp(got, want, sizeof *got) != 0) {
                if (!d->r_bad++)
                    d->r_first_bad = e;
            } else {
                d->r_ok += got->count > 0;
                d->r_empty += got->count == 0;
                d->r_samples += got->count;
                d->r_sum += got->sum_us;
            }
        }
        d->r_epochs++;
        atomic_store_explicit(&d->r_upto, e + 1, memory_order_release);
        if (!d->throttle && rng_next(&r) % 8 == 0) { /* lag now and then, up to ~100 us */
            double until = now_s() + (double)(rng_next(&r) % 100) * 1e-6;
            while (now_s() < until)
                relax(&spins);
        }
    }
out:
    free(got);
    free(want);
    return d->r_bad ? 1 : 0;
}

/* Hammer: always collect the newest complete epoch, which the writer is
 * about to re-use (two switches later), so copies race with clears. */
static int hammer_reader(struct sketch_win *w, struct duo *d)
{
    struct sketch_snap *got = calloc(1, sizeof *got), *want = calloc(1, sizeof *want);
    if (!got || !want)
        return 2;
    while (!atomic_load_explicit(&d->done, memory_order_acquire)) {
        uint64_t cur = sketch_epoch(w);
        if (cur == 0)
            continue;
        uint64_t e = cur - 1;
        int rc = sketch_collect(w, e, got);
        if (rc == SKETCH_MISSED) {
            d->r_missed++;
            continue;
        }
        memset(want, 0, sizeof *want);
        for (unsigned j = 0, n = samples_in(e); j < n; j++)
            sketch_snap_record(want, sample(e, j));
        if (rc != 0 || memcmp(got, want, sizeof *got) != 0) {
            if (!d->r_bad++)
                d->r_first_bad = e;
        } else {
            d->r_ok += got->count > 0;
            d->r_empty += got->count == 0;
        }
        d->r_epochs++;
    }
    free(got);
    free(want);
    return d->r_bad ? 1 : 0;
}

static pid_t spawn(int (*fn)(struct sketch_win *, struct duo *), struct sketch_win *w,
                   struct duo *d)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(90);
        alarm(CHILD_ALARM_S);
        _exit(fn(w, d));
    }
    return pid;
}

static void reap(pid_t pid, const char *who, const struct duo *d)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "%s died by signal %d", who, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "%s failed (code %d): %llu wrong epochs, first %llu", who,
                 WEXITSTATUS(st), (unsigned long long)d->r_bad, (unsigned long long)d->r_first_bad);
}

static struct duo *run_duo(bool throttle, bool hammer, double secs, struct sketch_win **wp)
{
    struct sketch_win *w = map_shared(sizeof *w);
    struct duo *d = map_shared(sizeof *d);
    d->throttle = throttle;
    d->hammer = hammer;
    d->secs = secs;
    pid_t rd = spawn(hammer ? hammer_reader : reader, w, d);
    pid_t wr = spawn(writer, w, d);
    reap(wr, "writer", d);
    reap(rd, "reader", d);
    fprintf(stderr,
            "sketch %s: %llu epochs written (%llu samples), %llu read: %llu with data, %llu "
            "empty, %llu missed (%llu samples), %llu pending polls, %llu wrong\n",
            throttle ? "writer+reader"
            : hammer ? "hammering reader"
                     : "lagging reader",
            (unsigned long long)d->w_epochs, (unsigned long long)d->w_samples,
            (unsigned long long)d->r_epochs, (unsigned long long)d->r_ok,
            (unsigned long long)d->r_empty, (unsigned long long)d->r_missed,
            (unsigned long long)d->r_lost, (unsigned long long)d->r_pending,
            (unsigned long long)d->r_bad);
    *wp = w;
    return d;
}

/* Every sample the writer recorded is in exactly one collected epoch. */
Test(sketch_proc, every_sample_in_exactly_one_epoch)
{
    struct sketch_win *w;
    struct duo *d = run_duo(true, false, 0.8, &w);
    cr_assert_eq(d->r_bad, 0);
    cr_assert_eq(d->r_missed, 0, "a reader that keeps up misses nothing");
    cr_assert_eq(d->r_samples, d->w_samples);
    cr_assert_eq(d->r_sum, d->w_sum);
    cr_assert_eq(d->r_epochs, atomic_load(&d->final));
    cr_assert_gt(d->w_epochs, 1000);
    cr_assert_gt(d->r_empty, 0);
    munmap(w, sizeof *w);
    munmap(d, sizeof *d);
}

/* A reader that falls behind gets "missed" for what was overwritten and
 * exact data for the rest; together they account for every sample. */
Test(sketch_proc, lagging_reader_misses_never_mixes)
{
    struct sketch_win *w;
    struct duo *d = run_duo(false, false, 0.6, &w);
    cr_assert_eq(d->r_bad, 0);
    cr_assert_eq(d->r_samples + d->r_lost, d->w_samples);
    cr_assert_gt(d->r_ok, 0);
    munmap(w, sizeof *w);
    munmap(d, sizeof *d);
}

/* A reader racing the writer's clears of the slot it copies: every result
 * is exact data or "missed". */
Test(sketch_proc, racing_reader_gets_exact_or_missed)
{
    struct sketch_win *w;
    struct duo *d = run_duo(false, true, 0.5, &w);
    cr_assert_eq(d->r_bad, 0);
    cr_assert_gt(d->r_ok, 0);
    munmap(w, sizeof *w);
    munmap(d, sizeof *d);
}
