/*
 * bench_sketch — costs of shared/sketch on one CPU.
 *
 *   record        ns per sketch_record into one window, epoch unchanged
 *                 (the per-sample cost a worker pays), values from a
 *                 precomputed table of 64 Ki latencies 1 us .. ~60 s
 *   record+switch the same with a new epoch every 10,000 samples
 *                 (the switch clears the re-used slot)
 *   switch        ns per sketch_advance that clears a slot with samples
 *                 spread over the whole range (the worst clear)
 *   collect+merge ns per round of 16 workers: sketch_collect of each
 *                 worker's completed epoch into a snapshot, sketch_merge
 *                 into one total (what the control plane does per window),
 *                 for samples spread over 1 ms .. 10 s and over 1 us .. 60 s
 *   quantile      ns per sketch_quantile(p99) on the merged total
 *
 * Each figure is the median of --reps runs (default 5).
 * usage: bench_sketch [--reps R] [--records N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/clock.h"
#include "shared/sketch.h"

#define NVAL    (1u << 16)
#define WORKERS 16
#define MAXREPS 31

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* 1 us .. 60 s, roughly log-uniform */
static uint64_t wide(uint64_t h)
{
    return 1 + ((h >> 8) % SKETCH_MAX_US >> (h % 26));
}

/* 1 ms .. 10 s, roughly log-uniform */
static uint64_t typical(uint64_t h)
{
    return 1000 + ((h >> 8) % 10000000 >> (h % 14));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

static void *alloc64(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, len) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, 0, len);
    return p;
}

static volatile uint64_t sink;

static double bench_record(const uint64_t *val, uint64_t n, uint64_t switch_every)
{
    struct sketch_win *w = alloc64(sizeof *w);
    uint64_t epoch = 1, left = switch_every ? switch_every : UINT64_MAX;
    uint64_t t0 = clock_mono_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (--left == 0) { /* a countdown: a division here would cost more than the record */
            epoch++;
            left = switch_every;
        }
        sketch_record(w, epoch, val[i & (NVAL - 1)]);
    }
    uint64_t t1 = clock_mono_ns();
    sink += sketch_epoch(w);
    free(w);
    return (double)(t1 - t0) / (double)n;
}

static double bench_switch(const uint64_t *val, unsigned rounds)
{
    struct sketch_win *w = alloc64(sizeof *w);
    uint64_t total = 0;
    for (unsigned r = 0; r < rounds; r++) {
        /* fill both slots over the whole range, then time the switch */
        for (unsigned i = 0; i < 4096; i++)
            sketch_record(w, 2 * r + 1, val[i]);
        for (unsigned i = 0; i < 4096; i++)
            sketch_record(w, 2 * r + 2, val[i]);
        uint64_t t0 = clock_mono_ns();
        sketch_advance(w, 2 * r + 3);
        total += clock_mono_ns() - t0;
    }
    free(w);
    return (double)total / rounds;
}

/* ns per round of 16 collects + merges; *q_ns: ns per p99 query */
static double bench_collect(uint64_t (*gen)(uint64_t), unsigned rounds, double *q_ns)
{
    struct sketch_win *w = alloc64(WORKERS * sizeof *w);
    struct sketch_snap *tmp = alloc64(sizeof *tmp), *total = alloc64(sizeof *total);
    for (unsigned k = 0; k < WORKERS; k++) {
        for (unsigned i = 0; i < 20000; i++)
            sketch_record(&w[k], 5, gen(mix(k * 100000 + i)));
        sketch_advance(&w[k], 6);
    }
    uint64_t t0 = clock_mono_ns();
    for (unsigned r = 0; r < rounds; r++) {
        memset(total, 0, sizeof *total);
        for (unsigned k = 0; k < WORKERS; k++) {
            if (sketch_collect(&w[k], 5, tmp) != 0) {
                fprintf(stderr, "collect failed\n");
                exit(1);
            }
            sketch_merge(total, tmp);
        }
    }
    uint64_t t1 = clock_mono_ns();
    if (total->count != WORKERS * 20000ull) {
        fprintf(stderr, "merged count %" PRIu64 "\n", total->count);
        exit(1);
    }
    uint64_t q0 = clock_mono_ns(), acc = 0;
    for (unsigned r = 0; r < rounds * 10; r++)
        acc += sketch_quantile(total, 0.99 - (r & 1) * 0.01);
    *q_ns = (double)(clock_mono_ns() - q0) / (rounds * 10);
    sink += acc;
    free(w);
    free(tmp);
    free(total);
    return (double)(t1 - t0) / rounds;
}

int main(int argc, char **argv)
{
    int reps = 5;
    uint64_t records = 200000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--records") && i + 1 < argc)
            records = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_sketch [--reps R] [--records N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > MAXREPS || records < 1000) {
        fprintf(stderr, "reps 1..%d, records >= 1000\n", MAXREPS);
        return 2;
    }
    uint64_t *val = malloc(NVAL * sizeof *val);
    if (!val)
        return 1;
    for (unsigned i = 0; i < NVAL; i++)
        val[i] = wide(mix(i));

    double rec[MAXREPS], recsw[MAXREPS], sw[MAXREPS], cm_t[MAXREPS], cm_w[MAXREPS], q_t[MAXREPS],
        q_w[MAXREPS];
    for (int r = 0; r < reps; r++) {
        rec[r] = bench_record(val, records, 0);
        recsw[r] = bench_record(val, records, 10000);
        sw[r] = bench_switch(val, 2000);
        cm_t[r] = bench_collect(typical, 2000, &q_t[r]);
        cm_w[r] = bench_collect(wide, 2000, &q_w[r]);
    }
    printf("sketch layout: %u buckets; slot %zu B, window (2 slots) %zu B, snapshot %zu B\n",
           SKETCH_NBUCKETS, sizeof(struct sketch_slot), sizeof(struct sketch_win),
           sizeof(struct sketch_snap));
    printf("median of %d runs, %" PRIu64 " records per record run\n", reps, records);
    printf("record                          %8.2f ns/sample\n", median(rec, reps));
    printf("record, new epoch every 10000   %8.2f ns/sample\n", median(recsw, reps));
    printf("switch (clear a full-range slot)%8.0f ns\n", median(sw, reps));
    printf("collect+merge 16 workers, 1 ms..10 s  %8.0f ns/round (%.0f ns/worker)\n",
           median(cm_t, reps), median(cm_t, reps) / WORKERS);
    printf("collect+merge 16 workers, 1 us..60 s  %8.0f ns/round (%.0f ns/worker)\n",
           median(cm_w, reps), median(cm_w, reps) / WORKERS);
    printf("quantile p99 on the merge, 1 ms..10 s %8.0f ns\n", median(q_t, reps));
    printf("quantile p99 on the merge, 1 us..60 s %8.0f ns\n", median(q_w, reps));
    free(val);
    return sink == 42 ? 1 : 0;
}
