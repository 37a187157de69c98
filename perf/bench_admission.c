/*
 * bench_admission — the node-wide admission limit: sluice's sum of per-worker
 * single-writer gauges, one shared atomic counter, and the sum published
 * before the check (fence).
 *
 * W forked workers share a real sluice segment (shm_create, one claimed
 * worker slot each) and, for a bounded time, each loops on admission
 * attempts against a node limit L:
 *
 *   sum     room = shm_node_admitted() < L (the live-worker bitmap walk of
 *           node_has_room()); admit = own gauge + 1 (shm_gauge_add, relaxed
 *           load and store, as admit() does); release = own gauge - 1.
 *   atomic  one _Atomic int64_t in a page of its own: fetch_add(1); if the
 *           old value was >= L, fetch_sub(1) and refuse; release fetch_sub(1).
 *   fence   the sum, published first: own gauge + 1, a seq_cst fence, then
 *           the walk; if the total is over L, own gauge - 1 and refuse.  Of
 *           two workers racing for the last slot at least one sees the
 *           other (Dekker), so it never goes over L, and a dead worker's
 *           streams still vanish with its slot; the price is the fence and
 *           that racing workers may both back off.
 *
 * An admitted stream is held for a random number (--hold MIN,MAX) of the
 * worker's later attempts and then released, so every worker holds many
 * streams at once and W * mean hold is well above L: the limit binds, and
 * most attempts are refused, which is the case where the designs differ (a
 * refusal costs sum one walk, atomic two contended read-modify-writes,
 * fence two gauge stores, a fence and a walk).
 * --gap-ns spins between the check and the gauge store, standing in for
 * what admit() does there (tenant bucket CAS, tenant gauges); --pace-ns
 * spins before every attempt, to see how overshoot falls with the rate.
 *
 * Probe runs (the "+probe" rows) measure overshoot, at the cost of speed:
 * after each admit the admitting worker (a) walks the gauges again, as the
 * limit check does ("sampled": not a snapshot, so it can read high or low
 * by streams moving during the walk) and (b) does fetch_add on a separate
 * exact counter that it increments after the gauge store and decrements
 * before the gauge store of a release ("exact": a linearizable count of a
 * subset of the admitted streams, so a value above L is a real overshoot
 * and its maximum is a lower bound of the real one).  The atomic design
 * keeps the same gauges and exact counter inside its admission, so its
 * exact excess must be 0, as must fence's; the run fails if it is not.
 * The locked add of the exact counter drains the store buffer, so the
 * probe shortens the window it measures: plain "sum" may overshoot
 * somewhat more often.
 *
 * Every worker stops by itself (the parent's stop flag, its own deadline,
 * and --max-attempts), releases what it holds and exits; the parent checks
 * that every gauge and counter is back to 0, kills children that do not
 * exit, and releases the slots.  --scan also times one shm_node_admitted()
 * call alone for several live-slot counts, hot (nobody else writing) and
 * dirty (another process storing into every gauge meanwhile).
 *
 * usage: bench_admission [--workers 2,4,8,16] [--designs sum,atomic,fence]
 *                        [--limit 64] [--hold 32,224]
 *                        [--secs 2] [--warmup 0.2] [--reps 1] [--gap-ns 0]
 *                        [--pace-ns 0]
 *                        [--scan 1,2,4,8,16,64,256] [--max-attempts N]
 *                        [--cpus 0,1] [--json FILE]
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
#include "shared/shm.h"

#define MAX_LIST    8
#define MAX_W       64
#define MAX_REPS    15
#define MAX_CPUS    64
#define WHEEL       256 /* holds are counted in attempts, at most WHEEL - 1 */
#define CHECK_EVERY 256 /* attempts between looks at the phase and the clock */
#define EXIT_GRACE  10.0

enum phase {
    PHASE_WARMUP = 0,
    PHASE_MEASURE = 1,
    PHASE_STOP = 2,
};

enum design {
    D_SUM = 0,
    D_ATOMIC = 1,
    D_FENCE = 2,
    D_COUNT,
};

static const char *const design_name[D_COUNT] = {"sum", "atomic", "fence"};

/* What one worker reports, on a line of its own. */
struct wres {
    uint64_t attempts, admits; /* inside the window */
    uint64_t ns, cpu_ns;
    uint64_t over_sampled, over_exact; /* admits that saw the total above L */
    int64_t max_sampled, max_exact;    /* most above L */
    uint64_t stopped_by;               /* 0 flag, 1 deadline, 2 max attempts */
} __attribute__((aligned(64)));

struct ctl {
    _Atomic uint32_t phase __attribute__((aligned(64)));
    _Atomic uint32_t ready;
    _Atomic int64_t exact __attribute__((aligned(64))); /* probe runs only */
    struct wres w[MAX_W];
};

struct opts {
    unsigned workers[MAX_LIST], nworkers;
    unsigned designs; /* bit per enum design */
    unsigned scan[MAX_LIST], nscan;
    unsigned cpus[MAX_CPUS], ncpus;
    int64_t limit;
    unsigned hold_min, hold_max;
    double secs, warmup;
    unsigned reps;
    uint64_t gap_ns, pace_ns;
    uint64_t max_attempts;
    const char *json;
};

struct cell {
    enum design d;
    bool probe;
    unsigned w;
    double att_s[MAX_REPS];  /* all workers together */
    double cpu_ns[MAX_REPS]; /* CPU time per attempt */
    double admit_frac[MAX_REPS];
    double over_sampled[MAX_REPS], over_exact[MAX_REPS]; /* fraction of admits */
    double max_sampled[MAX_REPS], max_exact[MAX_REPS];
};

struct scan_res {
    unsigned n;
    double ns[MAX_REPS], ns_dirty[MAX_REPS];
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
    fprintf(stderr, "usage: bench_admission [--workers 2,4,8,16] [--designs sum,atomic,fence]\n"
                    "                       [--limit 64] [--hold 32,224]\n"
                    "                       [--secs 2] [--warmup 0.2] [--reps 1] [--gap-ns 0]\n"
                    "                       [--pace-ns 0]\n"
                    "                       [--scan 1,2,4,8,16,64,256] [--max-attempts N]\n"
                    "                       [--cpus 0,1] [--json FILE]\n");
    exit(2);
}

static uint64_t parse_u64(const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        usage();
    return (uint64_t)v;
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

/* "a,b,c" into at most <cap> numbers. */
static unsigned parse_list(const char *s, unsigned *out, unsigned cap, unsigned long max)
{
    char tmp[256];
    size_t len = strlen(s);
    if (len >= sizeof tmp)
        usage();
    memcpy(tmp, s, len + 1);
    unsigned n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == cap)
            usage();
        out[n++] = (unsigned)parse_u64(tok, max);
    }
    if (!n)
        usage();
    return n;
}

/* "sum,atomic" into a bit per design. */
static unsigned parse_designs(const char *s)
{
    unsigned bits = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        unsigned d = 0;
        while (d < D_COUNT && (strlen(design_name[d]) != len || strncmp(s, design_name[d], len)))
            d++;
        if (d == D_COUNT)
            usage();
        bits |= 1u << d;
        s += len;
        if (*s == ',')
            s++;
    }
    if (!bits)
        usage();
    return bits;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){
        .workers = {2, 4, 8, 16},
        .nworkers = 4,
        .designs = (1u << D_COUNT) - 1,
        .scan = {1, 2, 4, 8, 16, 64, 256},
        .nscan = 7,
        .limit = 64,
        .hold_min = 32,
        .hold_max = 224,
        .secs = 2.0,
        .warmup = 0.2,
        .reps = 1,
        .max_attempts = 1ULL << 36,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--workers")) {
            o->nworkers = parse_list(v, o->workers, MAX_LIST, MAX_W);
            for (unsigned k = 0; k < o->nworkers; k++)
                if (!o->workers[k])
                    usage();
        } else if (!strcmp(a, "--designs")) {
            o->designs = parse_designs(v);
        } else if (!strcmp(a, "--scan")) {
            o->nscan = parse_list(v, o->scan, MAX_LIST, SHM_MAX_SLOTS);
            for (unsigned k = 0; k < o->nscan; k++)
                if (!o->scan[k])
                    o->nscan = 0; /* --scan 0: skip it */
        } else if (!strcmp(a, "--cpus")) {
            o->ncpus = parse_list(v, o->cpus, MAX_CPUS, CPU_SETSIZE - 1);
        } else if (!strcmp(a, "--limit")) {
            o->limit = (int64_t)parse_u64(v, 1u << 20);
            if (!o->limit)
                usage();
        } else if (!strcmp(a, "--hold")) {
            unsigned h[2];
            if (parse_list(v, h, 2, WHEEL - 1) != 2 || !h[0] || h[0] > h[1])
                usage();
            o->hold_min = h[0];
            o->hold_max = h[1];
        } else if (!strcmp(a, "--secs")) {
            o->secs = parse_secs(v);
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = parse_secs(v);
        } else if (!strcmp(a, "--reps")) {
            o->reps = (unsigned)parse_u64(v, MAX_REPS);
            if (!o->reps)
                usage();
        } else if (!strcmp(a, "--gap-ns")) {
            o->gap_ns = parse_u64(v, 1000000);
        } else if (!strcmp(a, "--pace-ns")) {
            o->pace_ns = parse_u64(v, 1000000);
        } else if (!strcmp(a, "--max-attempts")) {
            o->max_attempts = parse_u64(v, UINT64_MAX);
            if (!o->max_attempts)
                usage();
        } else if (!strcmp(a, "--json")) {
            o->json = v;
        } else {
            usage();
        }
    }
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t cpu_ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* One worker's state for the loop. */
struct wk {
    const struct opts *o;
    struct shm *shm;
    _Atomic int64_t *gauge;   /* own slot's g.admitted */
    _Atomic int64_t *counter; /* the atomic design's counter */
    _Atomic int64_t *exact;
    enum design d;
    bool probe;
    uint32_t wheel[WHEEL]; /* streams to release, by attempt number mod WHEEL */
    uint64_t tick, rng;
    uint64_t attempts, admits, over_sampled, over_exact;
    int64_t max_sampled, max_exact;
};

static void release_one(struct wk *k)
{
    if (k->probe)
        atomic_fetch_sub_explicit(k->exact, 1, memory_order_relaxed);
    if (k->d != D_ATOMIC) {
        shm_gauge_add(k->gauge, -1);
    } else {
        if (k->probe)
            shm_gauge_add(k->gauge, -1);
        atomic_fetch_sub_explicit(k->counter, 1, memory_order_relaxed);
    }
}

static void gap(uint64_t ns)
{
    uint64_t until = clock_mono_ns() + ns;
    while (clock_mono_ns() < until)
        cpu_relax();
}

static inline void attempt(struct wk *k)
{
    int64_t lim = k->o->limit;
    if (k->o->pace_ns)
        gap(k->o->pace_ns);
    uint32_t *due = &k->wheel[k->tick % WHEEL];
    for (; *due; (*due)--)
        release_one(k);
    bool ok;
    if (k->d == D_SUM) {
        ok = shm_node_admitted(k->shm) < lim;
        if (ok) {
            if (k->o->gap_ns)
                gap(k->o->gap_ns);
            shm_gauge_add(k->gauge, 1);
        }
    } else if (k->d == D_FENCE) {
        /* Dekker: of two workers publishing at once, at least one sees the
         * other's +1, so the node never goes over; both may back off. */
        shm_gauge_add(k->gauge, 1);
        atomic_thread_fence(memory_order_seq_cst);
        ok = shm_node_admitted(k->shm) <= lim;
        if (!ok)
            shm_gauge_add(k->gauge, -1);
        else if (k->o->gap_ns)
            gap(k->o->gap_ns);
    } else {
        ok = atomic_fetch_add_explicit(k->counter, 1, memory_order_relaxed) < lim;
        if (!ok)
            atomic_fetch_sub_explicit(k->counter, 1, memory_order_relaxed);
        else if (k->probe)
            shm_gauge_add(k->gauge, 1);
    }
    k->attempts++;
    if (ok) {
        k->admits++;
        unsigned span = k->o->hold_max - k->o->hold_min + 1;
        unsigned hold = k->o->hold_min + (unsigned)(xorshift(&k->rng) % span);
        k->wheel[(k->tick + hold) % WHEEL]++;
        if (k->probe) {
            int64_t s = shm_node_admitted(k->shm) - lim;
            int64_t e = atomic_fetch_add_explicit(k->exact, 1, memory_order_relaxed) + 1 - lim;
            if (s > 0) {
                k->over_sampled++;
                k->max_sampled = s > k->max_sampled ? s : k->max_sampled;
            }
            if (e > 0) {
                k->over_exact++;
                k->max_exact = e > k->max_exact ? e : k->max_exact;
            }
        }
    }
    k->tick++;
}

static void worker(struct wk *k, struct ctl *c, unsigned me)
{
    const struct opts *o = k->o;
    uint64_t deadline = clock_mono_ns() + (uint64_t)((o->warmup + o->secs + EXIT_GRACE) * 1e9);
    uint64_t t0 = 0, cpu0 = 0, att0 = 0, adm0 = 0, os0 = 0, oe0 = 0;
    uint32_t phase = PHASE_WARMUP;
    uint64_t stopped_by = 0;
    atomic_fetch_add(&c->ready, 1);
    for (;;) {
        for (unsigned i = 0; i < CHECK_EVERY; i++)
            attempt(k);
        uint32_t p = atomic_load_explicit(&c->phase, memory_order_acquire);
        if (p == PHASE_MEASURE && phase == PHASE_WARMUP) {
            t0 = clock_mono_ns();
            cpu0 = cpu_ns_now();
            att0 = k->attempts;
            adm0 = k->admits;
            os0 = k->over_sampled;
            oe0 = k->over_exact;
            /* overshoot maxima count inside the window only */
            k->max_sampled = k->max_exact = 0;
        }
        if (p == PHASE_STOP && phase == PHASE_WARMUP)
            t0 = 0; /* stopped before the window opened: report nothing */
        phase = p;
        if (p == PHASE_STOP)
            break;
        if (clock_mono_ns() > deadline) {
            stopped_by = 1;
            break;
        }
        if (k->attempts >= o->max_attempts) {
            stopped_by = 2;
            break;
        }
    }
    struct wres *r = &c->w[me];
    if (t0) {
        r->ns = clock_mono_ns() - t0;
        r->cpu_ns = cpu_ns_now() - cpu0;
    }
    r->attempts = k->attempts - att0;
    r->admits = k->admits - adm0;
    r->over_sampled = k->over_sampled - os0;
    r->over_exact = k->over_exact - oe0;
    r->max_sampled = k->max_sampled;
    r->max_exact = k->max_exact;
    r->stopped_by = stopped_by;
    /* give back what is still held */
    for (unsigned i = 0; i < WHEEL; i++)
        for (; k->wheel[i]; k->wheel[i]--)
            release_one(k);
}

static void pin_or_die(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "bench_admission: cannot pin to CPU %u: %s\n", cpu, strerror(errno));
        _exit(3);
    }
}

static pid_t spawn_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(4);
    return pid;
}

/* Waits for the children, killing those still there after the grace time.
 * Returns how many did not exit with status 0. */
static unsigned reap(pid_t *pids, unsigned n, double grace)
{
    unsigned bad = 0, left = 0;
    for (unsigned i = 0; i < n; i++)
        left += pids[i] > 0;
    uint64_t until = clock_mono_ns() + (uint64_t)(grace * 1e9);
    while (left) {
        bool late = clock_mono_ns() > until;
        for (unsigned i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            if (late)
                kill(pids[i], SIGKILL);
            int st;
            pid_t r = waitpid(pids[i], &st, late ? 0 : WNOHANG);
            if (r == 0)
                continue;
            if (r != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                bad++;
            pids[i] = 0;
            left--;
        }
        if (left && !late)
            sleep_s(0.002);
    }
    return bad;
}

static double max_d(double a, double b)
{
    return a > b ? a : b;
}

/* One timed run of <ce> into its slot <rep>; 0 or -1. */
static int run_cell(const struct opts *o, struct cell *ce, unsigned rep)
{
    int rc = -1;
    struct shm shm;
    int ret = shm_create(&shm, ce->w);
    if (ret < 0) {
        fprintf(stderr, "bench_admission: shm_create: %s\n", strerror(-ret));
        return -1;
    }
    _Atomic int64_t *counter =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct ctl *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counter == MAP_FAILED || c == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(c, 0, sizeof *c);
    atomic_store(counter, 0);

    int idx[MAX_W];
    pid_t pids[MAX_W] = {0};
    for (unsigned i = 0; i < ce->w; i++) {
        idx[i] = shm_slot_claim(&shm, i, SHM_ROLE_WORKER, 1);
        if (idx[i] < 0) {
            fprintf(stderr, "bench_admission: shm_slot_claim: %s\n", strerror(-idx[i]));
            exit(1);
        }
    }
    static struct wk k; /* the child's copy; big because of the wheel */
    for (unsigned i = 0; i < ce->w; i++) {
        pids[i] = spawn_child();
        if (pids[i] < 0) {
            atomic_store(&c->phase, PHASE_STOP);
            pids[i] = 0;
            goto join;
        }
        if (pids[i] == 0) {
            if (o->ncpus)
                pin_or_die(o->cpus[i % o->ncpus]);
            k = (struct wk){
                .o = o,
                .shm = &shm,
                .gauge = &shm_slot(&shm, (unsigned)idx[i])->g.admitted,
                .counter = counter,
                .exact = &c->exact,
                .d = ce->d,
                .probe = ce->probe,
                .rng = 0x9e3779b97f4a7c15ULL * (i + 1) + rep,
            };
            worker(&k, c, i);
            _exit(0);
        }
    }
    for (uint64_t until = clock_mono_ns() + 5000000000ULL;
         atomic_load(&c->ready) < ce->w && clock_mono_ns() < until;)
        sleep_s(0.001);
    if (atomic_load(&c->ready) < ce->w) {
        fprintf(stderr, "bench_admission: workers did not start\n");
        atomic_store(&c->phase, PHASE_STOP);
        goto join;
    }
    sleep_s(o->warmup);
    atomic_store(&c->phase, PHASE_MEASURE);
    sleep_s(o->secs);
    atomic_store(&c->phase, PHASE_STOP);
    rc = 0;
join:
    if (reap(pids, ce->w, EXIT_GRACE) != 0) {
        fprintf(stderr, "bench_admission: a worker failed\n");
        rc = -1;
    }
    int64_t left = shm_node_admitted(&shm);
    if (rc == 0 && (left || atomic_load(counter) || atomic_load(&c->exact))) {
        fprintf(stderr,
                "bench_admission: counts not back to 0: gauges %" PRId64 ", counter %" PRId64
                ", exact %" PRId64 "\n",
                left, atomic_load(counter), atomic_load(&c->exact));
        rc = -1;
    }
    if (rc == 0) {
        double att = 0, adm = 0, cpu = 0, os = 0, oe = 0, ms = 0, me = 0;
        for (unsigned i = 0; i < ce->w; i++) {
            const struct wres *r = &c->w[i];
            if (!r->ns || r->stopped_by) {
                fprintf(stderr, "bench_admission: worker %u stopped by %s\n", i,
                        r->stopped_by == 1   ? "its deadline"
                        : r->stopped_by == 2 ? "--max-attempts"
                                             : "the flag before the window");
                rc = -1;
                break;
            }
            att += (double)r->attempts * 1e9 / (double)r->ns;
            adm += (double)r->admits;
            cpu += (double)r->cpu_ns;
            os += (double)r->over_sampled;
            oe += (double)r->over_exact;
            ms = max_d(ms, (double)r->max_sampled);
            me = max_d(me, (double)r->max_exact);
        }
        double total = 0;
        for (unsigned i = 0; i < ce->w; i++)
            total += (double)c->w[i].attempts;
        ce->att_s[rep] = att;
        ce->cpu_ns[rep] = total ? cpu / total : 0;
        ce->admit_frac[rep] = total ? adm / total : 0;
        ce->over_sampled[rep] = adm ? os / adm : 0;
        ce->over_exact[rep] = adm ? oe / adm : 0;
        ce->max_sampled[rep] = ms;
        ce->max_exact[rep] = me;
        if (rc == 0 && ce->d != D_SUM && me > 0) {
            fprintf(stderr, "bench_admission: %s overshot by %.0f\n", design_name[ce->d], me);
            rc = -1;
        }
    }
    for (unsigned i = 0; i < ce->w; i++)
        shm_slot_release(&shm, (unsigned)idx[i]);
    munmap(c, sizeof *c);
    munmap(counter, 4096);
    shm_destroy(&shm);
    return rc;
}

/* ns per shm_node_admitted() call with <live> slots, each holding 1; the
 * loop runs in blocks until 0.1 s have passed.  -1 if a sum was wrong. */
static double time_scan(const struct shm *shm, unsigned live)
{
    volatile int64_t sink = 0;
    uint64_t calls = 0, t0 = clock_mono_ns(), t;
    do {
        int64_t s = 0;
        for (unsigned j = 0; j < 1000; j++)
            s += shm_node_admitted(shm);
        sink = sink + s;
        calls += 1000;
        t = clock_mono_ns();
    } while (t - t0 < 100000000ULL);
    if (sink != (int64_t)calls * live) {
        fprintf(stderr, "bench_admission: scan sum wrong\n");
        return -1;
    }
    return (double)(t - t0) / (double)calls;
}

/* Times shm_node_admitted() with each count of live worker slots: "hot"
 * alone (the lines stay in this core's cache), and "dirty" while another
 * process keeps storing into every gauge (each read is a cache-line
 * transfer, as when the other workers admit and release all the time). */
static int run_scan(const struct opts *o, struct scan_res *sr, unsigned nres, unsigned rep)
{
    unsigned most = 0;
    for (unsigned i = 0; i < nres; i++)
        most = sr[i].n > most ? sr[i].n : most;
    struct shm shm;
    int ret = shm_create(&shm, most);
    if (ret < 0) {
        fprintf(stderr, "bench_admission: shm_create: %s\n", strerror(-ret));
        return -1;
    }
    _Atomic uint32_t *stop =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stop == MAP_FAILED) {
        shm_destroy(&shm);
        return -1;
    }
    if (o->ncpus)
        pin_or_die(o->cpus[0]);
    int rc = 0;
    unsigned live = 0;
    for (unsigned i = 0; i < nres && rc == 0; i++) {
        while (live < sr[i].n) {
            int idx = shm_slot_claim(&shm, live, SHM_ROLE_WORKER, 1);
            if (idx < 0 || (unsigned)idx != live) {
                rc = -1;
                break;
            }
            atomic_store(&shm_slot(&shm, live)->g.admitted, 1);
            live++;
        }
        if (rc != 0 || (sr[i].ns[rep] = time_scan(&shm, live)) < 0) {
            rc = -1;
            break;
        }
        atomic_store(stop, 0);
        pid_t pid = spawn_child();
        if (pid < 0) {
            rc = -1;
            break;
        }
        if (pid == 0) {
            if (o->ncpus)
                pin_or_die(o->cpus[1 % o->ncpus]);
            /* a store of the same value still takes the line exclusive */
            uint64_t deadline = clock_mono_ns() + 10000000000ULL;
            while (!atomic_load_explicit(stop, memory_order_relaxed) && clock_mono_ns() < deadline)
                for (unsigned j = 0; j < live; j++)
                    atomic_store_explicit(&shm_slot(&shm, j)->g.admitted, 1, memory_order_relaxed);
            _exit(0);
        }
        sleep_s(0.01);
        sr[i].ns_dirty[rep] = time_scan(&shm, live);
        atomic_store(stop, 1);
        if (reap(&pid, 1, EXIT_GRACE) != 0 || sr[i].ns_dirty[rep] < 0)
            rc = -1;
    }
    munmap(stop, 4096);
    shm_destroy(&shm);
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

static double max_of(const double *v, unsigned n)
{
    double m = v[0];
    for (unsigned i = 1; i < n; i++)
        m = max_d(m, v[i]);
    return m;
}

static const char *cell_name(const struct cell *ce)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "%s%s", design_name[ce->d], ce->probe ? "+probe" : "");
    return buf;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(&o, argc, argv);
    static struct cell cells[MAX_LIST * 2 * D_COUNT];
    unsigned ncells = 0;
    for (unsigned i = 0; i < o.nworkers; i++)
        for (unsigned probe = 0; probe < 2; probe++)
            for (unsigned d = 0; d < D_COUNT; d++)
                if (o.designs & (1u << d))
                    cells[ncells++] =
                        (struct cell){.d = (enum design)d, .probe = probe, .w = o.workers[i]};
    /* shared, so the timing child (which may be pinned) can fill it in */
    struct scan_res *scans = mmap(NULL, sizeof(struct scan_res) * MAX_LIST, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (scans == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (unsigned i = 0; i < o.nscan; i++)
        scans[i].n = o.scan[i];
    /* keep the scan list ascending: slots are claimed as it goes */
    for (unsigned i = 1; i < o.nscan; i++)
        if (scans[i].n < scans[i - 1].n)
            usage();

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* repetitions outermost, so a noisy second hits one run of every cell
     * rather than every run of one */
    for (unsigned rep = 0; rep < o.reps; rep++) {
        for (unsigned i = 0; i < ncells; i++)
            if (run_cell(&o, &cells[i], rep) != 0) {
                fprintf(stderr, "bench_admission: %s W=%u failed\n", cell_name(&cells[i]),
                        cells[i].w);
                return 1;
            }
        if (o.nscan) {
            pid_t pid = spawn_child(); /* pinning, if any, stays in the child */
            if (pid == 0)
                _exit(run_scan(&o, scans, o.nscan, rep) == 0 ? 0 : 1);
            if (pid < 0 || reap(&pid, 1, 60) != 0) {
                fprintf(stderr, "bench_admission: the scan timing failed\n");
                return 1;
            }
        }
    }
    printf("bench_admission: %ld online CPUs; limit L=%" PRId64 "; hold %u..%u attempts; "
           "gap %" PRIu64 " ns; pace %" PRIu64
           " ns; %.2f s window (+%.2f s warm-up); %s; median of %u\n",
           ncpu, o.limit, o.hold_min, o.hold_max, o.gap_ns, o.pace_ns, o.secs, o.warmup,
           o.ncpus ? "workers pinned round-robin to --cpus" : "not pinned", o.reps);
    printf("%-14s %3s %13s %13s %10s %10s %7s %11s %8s %11s %8s\n", "design", "W", "attempts/s",
           "per worker", "ns/att", "cpu ns/att", "admit%", "over%smpl", "max smpl", "over%exact",
           "max exct");
    for (unsigned i = 0; i < ncells; i++) {
        const struct cell *ce = &cells[i];
        double a = median(ce->att_s, o.reps);
        char os[16] = "-", ms[16] = "-", oe[16] = "-", me[16] = "-";
        if (ce->probe) {
            snprintf(os, sizeof os, "%.4f", 100 * median(ce->over_sampled, o.reps));
            snprintf(ms, sizeof ms, "%.0f", max_of(ce->max_sampled, o.reps));
            snprintf(oe, sizeof oe, "%.4f", 100 * median(ce->over_exact, o.reps));
            snprintf(me, sizeof me, "%.0f", max_of(ce->max_exact, o.reps));
        }
        printf("%-14s %3u %13.0f %13.0f %10.1f %10.1f %7.2f %11s %8s %11s %8s\n", cell_name(ce),
               ce->w, a, a / ce->w, 1e9 * ce->w / a, median(ce->cpu_ns, o.reps),
               100 * median(ce->admit_frac, o.reps), os, ms, oe, me);
    }
    if (o.nscan) {
        printf("shm_node_admitted() alone: 'hot' with nobody else writing, 'dirty' while "
               "another process keeps storing into every gauge\n%-10s %12s %12s %14s %14s\n",
               "live slots", "hot ns/call", "hot ns/slot", "dirty ns/call", "dirty ns/slot");
        for (unsigned i = 0; i < o.nscan; i++) {
            double m = median(scans[i].ns, o.reps), d = median(scans[i].ns_dirty, o.reps);
            printf("%-10u %12.1f %12.2f %14.1f %14.2f\n", scans[i].n, m, m / scans[i].n, d,
                   d / scans[i].n);
        }
    }

    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (!f) {
            fprintf(stderr, "bench_admission: %s: %s\n", o.json, strerror(errno));
            return 1;
        }
        fprintf(f,
                "{\"bench\":\"admission\",\"cpus_online\":%ld,\"limit\":%" PRId64
                ",\"hold_min\":%u,\"hold_max\":%u,\"gap_ns\":%" PRIu64 ",\"pace_ns\":%" PRIu64
                ",\"secs\":%g,\"warmup\":%g,\"reps\":%u,\"pinned\":%s,\"cells\":[",
                ncpu, o.limit, o.hold_min, o.hold_max, o.gap_ns, o.pace_ns, o.secs, o.warmup,
                o.reps, o.ncpus ? "true" : "false");
        for (unsigned i = 0; i < ncells; i++) {
            const struct cell *ce = &cells[i];
            double a = median(ce->att_s, o.reps);
            fprintf(f,
                    "%s{\"design\":\"%s\",\"workers\":%u,\"attempts_per_s\":%.0f,"
                    "\"attempts_per_s_per_worker\":%.0f,\"ns_per_attempt\":%.2f,"
                    "\"cpu_ns_per_attempt\":%.2f,\"admit_frac\":%.6f",
                    i ? "," : "", cell_name(ce), ce->w, a, a / ce->w, 1e9 * ce->w / a,
                    median(ce->cpu_ns, o.reps), median(ce->admit_frac, o.reps));
            if (ce->probe)
                fprintf(f,
                        ",\"over_frac_sampled\":%.8f,\"max_excess_sampled\":%.0f,"
                        "\"over_frac_exact\":%.8f,\"max_excess_exact\":%.0f",
                        median(ce->over_sampled, o.reps), max_of(ce->max_sampled, o.reps),
                        median(ce->over_exact, o.reps), max_of(ce->max_exact, o.reps));
            fprintf(f, ",\"runs_attempts_per_s\":[");
            for (unsigned k = 0; k < o.reps; k++)
                fprintf(f, "%s%.0f", k ? "," : "", ce->att_s[k]);
            fprintf(f, "]}");
        }
        fprintf(f, "],\"scan\":[");
        for (unsigned i = 0; i < o.nscan; i++)
            fprintf(f, "%s{\"live_slots\":%u,\"ns_per_call\":%.2f,\"ns_per_call_dirty\":%.2f}",
                    i ? "," : "", scans[i].n, median(scans[i].ns, o.reps),
                    median(scans[i].ns_dirty, o.reps));
        fprintf(f, "]}\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "bench_admission: %s: %s\n", o.json, strerror(errno));
            return 1;
        }
    }
    return 0;
}
