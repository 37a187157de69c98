/*
 * bench_ring — records per second through a shared/shm_ring between two
 * processes on two CPUs.
 *
 * The ring lives in an anonymous MAP_SHARED mapping; a forked producer
 * pushes 64-byte records carrying a sequence number, retrying while the
 * ring is full (so what is measured is delivery, not drops), and a forked
 * consumer pops them in batches of up to B and checks the sequence.  Each
 * cell (consumer mode x capacity x batch) runs a warm-up and then a timed
 * window; the consumer counts what it received inside the window.  With
 * --reps R every cell runs R times, cells interleaved, and the median is
 * printed.
 *
 * Consumer modes (--idle-us): 0 spins on an empty ring, which is the worst
 * case for the producer (the consumer keeps pulling the tail and record
 * lines, so each push pays a cross-core transfer); N > 0 sleeps N us
 * whenever the ring is empty, as a control plane polling on a timer would,
 * so the producer mostly writes lines it already owns.
 *
 * usage: bench_ring [--caps 1024,16384] [--batches 1,32] [--idle-us 0,50]
 *                   [--secs 0.5] [--warmup 0.1] [--reps 1] [--cpus 0,1]
 *                   [--json FILE]
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/clock.h"
#include "shared/shm_ring.h"

#define MAX_LIST  8
#define MAX_REPS  15
#define MAX_BATCH 1024

enum phase {
    PHASE_WARMUP = 0,
    PHASE_MEASURE = 1,
    PHASE_STOP = 2,
};

/* The parent drives the phases; each child writes only its own line. */
struct ctl {
    _Atomic uint32_t phase __attribute__((aligned(64)));
    _Atomic uint32_t ready;

    uint64_t full_waits __attribute__((aligned(64))); /* producer: pushes that found it full */
    uint64_t full_waits_measured;

    uint64_t received __attribute__((aligned(64))); /* consumer, inside the window */
    uint64_t pops;                                  /* pop calls that returned records */
    uint64_t ns;
    uint64_t bad;
};

struct opts {
    unsigned caps[MAX_LIST], ncaps;
    unsigned batches[MAX_LIST], nbatches;
    unsigned idles[MAX_LIST], nidles; /* consumer sleep when empty, us; 0 spins */
    double secs, warmup;
    unsigned reps;
    int cpu_prod, cpu_cons;
    const char *json;
};

struct cell {
    unsigned cap, batch, idle_us;
    double rps[MAX_REPS];
    double full_per_rec[MAX_REPS];
    double recs_per_pop[MAX_REPS];
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_ring [--caps 1024,16384] [--batches 1,32] [--idle-us 0,50]\n"
                    "                  [--secs 0.5] [--warmup 0.1] [--reps 1] [--cpus 0,1]\n"
                    "                  [--json FILE]\n");
    exit(2);
}

static unsigned parse_uint(const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        usage();
    return (unsigned)v;
}

static double parse_secs(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0 && v < 60))
        usage();
    return v;
}

/* "a,b,c" into at most MAX_LIST numbers. */
static unsigned parse_list(const char *s, unsigned *out, unsigned long max)
{
    char tmp[128];
    size_t len = strlen(s);
    if (len >= sizeof tmp)
        usage();
    memcpy(tmp, s, len + 1);
    unsigned n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LIST)
            usage();
        out[n++] = parse_uint(tok, max);
    }
    if (!n)
        usage();
    return n;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){
        .caps = {1024, 16384},
        .ncaps = 2,
        .batches = {1, 32},
        .nbatches = 2,
        .idles = {0, 50},
        .nidles = 2,
        .secs = 0.5,
        .warmup = 0.1,
        .reps = 1,
        .cpu_prod = 0,
        .cpu_cons = 1,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--caps")) {
            o->ncaps = parse_list(v, o->caps, SHM_RING_MAX_CAPACITY);
            for (unsigned k = 0; k < o->ncaps; k++)
                if (!shm_ring_bytes(o->caps[k]))
                    usage();
        } else if (!strcmp(a, "--batches")) {
            o->nbatches = parse_list(v, o->batches, MAX_BATCH);
            for (unsigned k = 0; k < o->nbatches; k++)
                if (!o->batches[k])
                    usage();
        } else if (!strcmp(a, "--idle-us")) {
            o->nidles = parse_list(v, o->idles, 100000);
        } else if (!strcmp(a, "--secs")) {
            o->secs = parse_secs(v);
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = parse_secs(v);
        } else if (!strcmp(a, "--reps")) {
            o->reps = parse_uint(v, MAX_REPS);
            if (!o->reps)
                usage();
        } else if (!strcmp(a, "--cpus")) {
            unsigned c[MAX_LIST];
            if (parse_list(v, c, CPU_SETSIZE - 1) != 2)
                usage();
            o->cpu_prod = (int)c[0];
            o->cpu_cons = (int)c[1];
        } else if (!strcmp(a, "--json")) {
            o->json = v;
        } else {
            usage();
        }
    }
}

static void pin_or_die(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "bench_ring: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
        _exit(3);
    }
}

static void producer(struct shm_ring *r, struct ctl *c)
{
    unsigned char rec[SHM_RING_REC_SIZE];
    memset(rec, 0x5a, sizeof rec);
    uint64_t seq = 0, full = 0, full_at_start = 0;
    uint32_t phase = PHASE_WARMUP;
    atomic_fetch_add(&c->ready, 1);
    while (phase != PHASE_STOP) {
        /* the phase line is read-mostly; checking it every 256 records
         * keeps it out of the measurement */
        for (unsigned i = 0; i < 256; i++) {
            memcpy(rec, &seq, sizeof seq);
            while (shm_ring_push(r, rec, sizeof rec) != 0) {
                /* a consumer that has stopped never frees a slot */
                if (++full % 1024 == 0 &&
                    atomic_load_explicit(&c->phase, memory_order_relaxed) == PHASE_STOP)
                    goto out;
                cpu_relax();
            }
            seq++;
        }
        uint32_t p = atomic_load_explicit(&c->phase, memory_order_acquire);
        if (p == PHASE_MEASURE && phase == PHASE_WARMUP)
            full_at_start = full;
        phase = p;
    }
out:
    c->full_waits = full;
    c->full_waits_measured = full - full_at_start;
}

static void sleep_s(double s);

static void consumer(struct shm_ring *r, struct ctl *c, unsigned batch, unsigned idle_us)
{
    static unsigned char buf[MAX_BATCH][SHM_RING_REC_SIZE];
    uint64_t expect = 0, got = 0, pops = 0, bad = 0, t0 = 0;
    uint64_t got0 = 0, pops0 = 0;
    uint32_t phase = PHASE_WARMUP;
    unsigned idle = 0;
    atomic_fetch_add(&c->ready, 1);
    for (;;) {
        unsigned n = shm_ring_pop(r, buf, batch);
        if (n) {
            uint64_t seq;
            memcpy(&seq, buf[0], sizeof seq);
            bad += seq != expect;
            memcpy(&seq, buf[n - 1], sizeof seq);
            expect = seq + 1;
            got += n;
            pops++;
        } else if (idle_us) {
            sleep_s(idle_us * 1e-6);
        } else {
            cpu_relax();
        }
        /* the phase check costs a shared load; do it every 64 calls */
        if (++idle % 64)
            continue;
        uint32_t p = atomic_load_explicit(&c->phase, memory_order_acquire);
        if (p == phase)
            continue;
        if (p == PHASE_MEASURE) {
            t0 = clock_mono_ns();
            got0 = got;
            pops0 = pops;
        } else if (p == PHASE_STOP) {
            c->ns = clock_mono_ns() - t0;
            c->received = got - got0;
            c->pops = pops - pops0;
            c->bad = bad;
            return;
        }
        phase = p;
    }
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static pid_t spawn_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(4);
    return pid;
}

static bool wait_ok(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* One timed run of <ce> into its slot <rep>; 0 or -1. */
static int run_cell(const struct opts *o, struct cell *ce, unsigned rep)
{
    size_t rbytes = shm_ring_bytes(ce->cap);
    struct shm_ring *r =
        mmap(NULL, rbytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct ctl *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED || c == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    if (shm_ring_init(r, ce->cap) != 0)
        exit(1);
    memset(c, 0, sizeof *c);

    pid_t cons = spawn_child();
    if (cons == 0) {
        pin_or_die(o->cpu_cons);
        consumer(r, c, ce->batch, ce->idle_us);
        _exit(0);
    }
    pid_t prod = spawn_child();
    if (prod == 0) {
        pin_or_die(o->cpu_prod);
        producer(r, c);
        _exit(0);
    }
    while (atomic_load(&c->ready) < 2)
        sleep_s(0.001);
    sleep_s(o->warmup);
    atomic_store(&c->phase, PHASE_MEASURE);
    sleep_s(o->secs);
    atomic_store(&c->phase, PHASE_STOP);
    bool ok = wait_ok(cons);
    ok = wait_ok(prod) && ok;
    int rc = 0;
    if (!ok || c->bad || !c->ns) {
        fprintf(stderr,
                "bench_ring: cap %u batch %u idle %u us: %s (%" PRIu64 " out of sequence)\n",
                ce->cap, ce->batch, ce->idle_us, ok ? "bad records" : "a child failed", c->bad);
        rc = -1;
    } else {
        ce->rps[rep] = (double)c->received * 1e9 / (double)c->ns;
        ce->full_per_rec[rep] =
            c->received ? (double)c->full_waits_measured / (double)c->received : 0;
        ce->recs_per_pop[rep] = c->pops ? (double)c->received / (double)c->pops : 0;
    }
    munmap(c, sizeof *c);
    munmap(r, rbytes);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
    double s[MAX_REPS];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(&o, argc, argv);
    static struct cell cells[MAX_LIST * MAX_LIST * MAX_LIST];
    unsigned ncells = 0;
    for (unsigned k = 0; k < o.nidles; k++)
        for (unsigned i = 0; i < o.ncaps; i++)
            for (unsigned j = 0; j < o.nbatches; j++)
                cells[ncells++] =
                    (struct cell){.cap = o.caps[i], .batch = o.batches[j], .idle_us = o.idles[k]};

    /* repetitions outermost, so a noisy second hits one run of every cell
     * rather than every run of one */
    for (unsigned rep = 0; rep < o.reps; rep++)
        for (unsigned i = 0; i < ncells; i++)
            if (run_cell(&o, &cells[i], rep) != 0)
                return 1;

    printf("bench_ring: producer CPU %d, consumer CPU %d, %d-byte records, %.2f s window "
           "(+%.2f s warm-up), median of %u\n",
           o.cpu_prod, o.cpu_cons, SHM_RING_REC_SIZE, o.secs, o.warmup, o.reps);
    printf("%-13s %9s %6s %14s %10s %12s %12s %14s %14s\n", "consumer", "capacity", "batch",
           "records/s", "ns/record", "full/record", "records/pop", "min records/s",
           "max records/s");
    for (unsigned i = 0; i < ncells; i++) {
        const struct cell *ce = &cells[i];
        double m = median(ce->rps, o.reps), lo = ce->rps[0], hi = ce->rps[0];
        for (unsigned k = 1; k < o.reps; k++) {
            lo = ce->rps[k] < lo ? ce->rps[k] : lo;
            hi = ce->rps[k] > hi ? ce->rps[k] : hi;
        }
        char mode[32];
        if (ce->idle_us)
            snprintf(mode, sizeof mode, "sleep %uus", ce->idle_us);
        else
            snprintf(mode, sizeof mode, "spin");
        printf("%-13s %9u %6u %14.0f %10.2f %12.3f %12.2f %14.0f %14.0f\n", mode, ce->cap,
               ce->batch, m, 1e9 / m, median(ce->full_per_rec, o.reps),
               median(ce->recs_per_pop, o.reps), lo, hi);
    }

    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (!f) {
            fprintf(stderr, "bench_ring: %s: %s\n", o.json, strerror(errno));
            return 1;
        }
        fprintf(f,
                "{\"bench\":\"ring\",\"record_size\":%d,\"cpu_producer\":%d,\"cpu_consumer\":%d,"
                "\"secs\":%g,\"warmup\":%g,\"reps\":%u,\"cells\":[",
                SHM_RING_REC_SIZE, o.cpu_prod, o.cpu_cons, o.secs, o.warmup, o.reps);
        for (unsigned i = 0; i < ncells; i++) {
            const struct cell *ce = &cells[i];
            fprintf(f,
                    "%s{\"idle_us\":%u,\"capacity\":%u,\"batch\":%u,\"records_per_s\":%.0f,"
                    "\"full_per_record\":%.4f,\"records_per_pop\":%.2f,\"runs\":[",
                    i ? "," : "", ce->idle_us, ce->cap, ce->batch, median(ce->rps, o.reps),
                    median(ce->full_per_rec, o.reps), median(ce->recs_per_pop, o.reps));
            for (unsigned k = 0; k < o.reps; k++)
                fprintf(f, "%s%.0f", k ? "," : "", ce->rps[k]);
            fprintf(f, "]}");
        }
        fprintf(f, "]}\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "bench_ring: %s: %s\n", o.json, strerror(errno));
            return 1;
        }
    }
    return 0;
}
