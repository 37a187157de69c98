/*
 * Unit tests for shared/shm_ring: capacity checks, the layout, empty and
 * full edges with the drop counter, batch pops, byte-exact records with
 * zero-filled tails, wrap-around of the free-running 32-bit indices, one
 * ring seen through two mappings at different addresses; then forked
 * producer and consumer processes on different CPUs moving 10,000,000
 * checksummed records: without loss when the producer retries, with an
 * exact drop count when the consumer is stopped, with drops while both run,
 * and with the consumer process replaced part way.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/shm_ring.h"

/* ---- helpers ---------------------------------------------------------------- */

static void *map_shared(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap %zu: %s", len, strerror(errno));
    return p;
}

static struct shm_ring *ring_new(uint32_t capacity)
{
    size_t len = shm_ring_bytes(capacity);
    cr_assert_gt(len, 0);
    struct shm_ring *r = map_shared(len);
    memset(r, 0xa5, len); /* init must not rely on fresh zero pages */
    cr_assert_eq(shm_ring_init(r, capacity), 0);
    return r;
}

static struct shm_ring *ring_new_at(uint32_t capacity, uint32_t start)
{
    struct shm_ring *r = map_shared(shm_ring_bytes(capacity));
    shm_ring_init_at(r, capacity, start);
    return r;
}

static void ring_free(struct shm_ring *r)
{
    munmap(r, shm_ring_bytes(r->capacity));
}

/* A test record: a sequence number, body words derived from it and a
 * checksum, so a record torn between two writes or delivered from the wrong
 * slot fails the check. */
struct trec {
    uint64_t seq;
    uint64_t body[6];
    uint64_t sum;
};
_Static_assert(sizeof(struct trec) == SHM_RING_REC_SIZE, "a test record fills a slot");

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t trec_sum(const struct trec *t)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = (h ^ t->seq) * 0x100000001b3ULL;
    for (int k = 0; k < 6; k++)
        h = (h ^ t->body[k]) * 0x100000001b3ULL;
    return h;
}

static void trec_fill(struct trec *t, uint64_t seq)
{
    t->seq = seq;
    for (int k = 0; k < 6; k++)
        t->body[k] = mix(seq * 8 + (uint64_t)k);
    t->sum = trec_sum(t);
}

static bool trec_ok(const struct trec *t)
{
    if (t->sum != trec_sum(t))
        return false;
    for (int k = 0; k < 6; k++)
        if (t->body[k] != mix(t->seq * 8 + (uint64_t)k))
            return false;
    return true;
}

static int push_seq(struct shm_ring *r, uint64_t seq)
{
    struct trec t;
    trec_fill(&t, seq);
    return shm_ring_push(r, &t, sizeof t);
}

/* ---- unit tests --------------------------------------------------------------- */

Test(shm_ring, init_rejects_bad_capacity)
{
    static const uint32_t bad[] = {0, 3, 6, 1000, 1u << 25, 0x80000000u, UINT32_MAX};
    unsigned char buf[sizeof(struct shm_ring) + 4 * SHM_RING_REC_SIZE] __attribute__((aligned(64)));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(buf, 0x5a, sizeof buf);
        cr_assert_eq(shm_ring_init((struct shm_ring *)buf, bad[i]), -EINVAL, "capacity %u", bad[i]);
        cr_assert_eq(buf[0], 0x5a, "capacity %u: nothing written", bad[i]);
        cr_assert_eq(shm_ring_bytes(bad[i]), 0, "capacity %u", bad[i]);
    }
    static const uint32_t good[] = {1, 2, 4, 1024, 1u << 24};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_eq(shm_ring_bytes(good[i]),
                     sizeof(struct shm_ring) + (size_t)good[i] * SHM_RING_REC_SIZE);
    cr_assert_eq(shm_ring_init((struct shm_ring *)buf, 4), 0);
    cr_assert_eq(shm_ring_capacity((struct shm_ring *)buf), 4);
}

Test(shm_ring, layout)
{
    /* the two indices and the records each start a cache line of their own */
    cr_assert_eq(offsetof(struct shm_ring, tail) % 64, 0);
    cr_assert_eq(offsetof(struct shm_ring, head) % 64, 0);
    cr_assert_geq(offsetof(struct shm_ring, head), offsetof(struct shm_ring, tail) + 64);
    cr_assert_lt(offsetof(struct shm_ring, head_cache), offsetof(struct shm_ring, tail) + 64);
    cr_assert_lt(offsetof(struct shm_ring, dropped), offsetof(struct shm_ring, tail) + 64);
    cr_assert_lt(offsetof(struct shm_ring, tail_cache), offsetof(struct shm_ring, head) + 64);
    cr_assert_geq(offsetof(struct shm_ring, rec), offsetof(struct shm_ring, head) + 64);
    cr_assert_eq(offsetof(struct shm_ring, rec) % 64, 0);
    cr_assert_eq(sizeof(struct shm_ring), 192);
}

Test(shm_ring, init_zeroes)
{
    struct shm_ring *r = ring_new(16);
    cr_assert_eq(shm_ring_capacity(r), 16);
    cr_assert_eq(shm_ring_count(r), 0);
    cr_assert_eq(shm_ring_dropped(r), 0);
    const unsigned char *b = (const unsigned char *)r->rec;
    for (size_t i = 0; i < 16 * SHM_RING_REC_SIZE; i++)
        cr_assert_eq(b[i], 0, "record byte %zu", i);
    ring_free(r);
}

Test(shm_ring, empty_pop_returns_zero)
{
    struct shm_ring *r = ring_new(8);
    struct trec out[8];
    cr_assert_eq(shm_ring_pop(r, out, 8), 0);
    cr_assert_eq(shm_ring_pop(r, out, 1), 0);
    cr_assert_eq(shm_ring_pop(r, NULL, 0), 0);
    cr_assert_eq(push_seq(r, 1), 0);
    cr_assert_eq(shm_ring_pop(r, out, 0), 0, "max 0 takes nothing");
    cr_assert_eq(shm_ring_count(r), 1);
    cr_assert_eq(shm_ring_pop(r, out, 8), 1);
    cr_assert_eq(shm_ring_pop(r, out, 8), 0, "empty again");
    cr_assert_eq(shm_ring_count(r), 0);
    ring_free(r);
}

Test(shm_ring, push_pop_one)
{
    struct shm_ring *r = ring_new(8);
    cr_assert_eq(push_seq(r, 42), 0);
    cr_assert_eq(shm_ring_count(r), 1);
    struct trec out;
    cr_assert_eq(shm_ring_pop(r, &out, 1), 1);
    cr_assert_eq(out.seq, 42);
    cr_assert(trec_ok(&out));
    cr_assert_eq(shm_ring_count(r), 0);
    cr_assert_eq(shm_ring_dropped(r), 0);
    ring_free(r);
}

Test(shm_ring, push_rejects_oversize)
{
    struct shm_ring *r = ring_new(4);
    unsigned char big[SHM_RING_REC_SIZE + 1];
    memset(big, 1, sizeof big);
    cr_assert_eq(shm_ring_push(r, big, sizeof big), -EINVAL);
    cr_assert_eq(shm_ring_push(r, big, SIZE_MAX), -EINVAL);
    cr_assert_eq(shm_ring_count(r), 0, "nothing queued");
    cr_assert_eq(shm_ring_dropped(r), 0, "an invalid record is not a drop");
    cr_assert_eq(shm_ring_push(r, NULL, 0), 0, "an empty record is all zeros");
    unsigned char out[SHM_RING_REC_SIZE];
    memset(out, 0xff, sizeof out);
    cr_assert_eq(shm_ring_pop(r, out, 1), 1);
    for (size_t i = 0; i < sizeof out; i++)
        cr_assert_eq(out[i], 0);
    ring_free(r);
}

Test(shm_ring, full_drops_and_counts)
{
    struct shm_ring *r = ring_new(8);
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(push_seq(r, i), 0, "push %llu of 8", (unsigned long long)i);
    cr_assert_eq(shm_ring_count(r), 8);
    cr_assert_eq(push_seq(r, 8), -ENOBUFS);
    cr_assert_eq(shm_ring_dropped(r), 1);
    cr_assert_eq(shm_ring_count(r), 8, "a drop queues nothing");
    struct trec out[8];
    cr_assert_eq(shm_ring_pop(r, out, 1), 1);
    cr_assert_eq(out[0].seq, 0);
    cr_assert_eq(push_seq(r, 9), 0, "popping one frees one slot");
    cr_assert_eq(push_seq(r, 10), -ENOBUFS);
    cr_assert_eq(push_seq(r, 11), -ENOBUFS);
    cr_assert_eq(shm_ring_dropped(r), 3);
    /* the consumer knew of 0..7 when it popped 0: the first pop stops at
     * those, the next one looks at tail again and finds 9 */
    cr_assert_eq(shm_ring_pop(r, out, 8), 7);
    cr_assert_eq(shm_ring_pop(r, out + 7, 1), 1);
    static const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 9};
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(out[i].seq, want[i], "record %d", i);
        cr_assert(trec_ok(&out[i]));
    }
    cr_assert_eq(shm_ring_count(r), 0);
    cr_assert_eq(shm_ring_dropped(r), 3, "pop does not touch the drop count");
    ring_free(r);
}

Test(shm_ring, batch_pop)
{
    struct shm_ring *r = ring_new(16);
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(push_seq(r, i), 0);
    struct trec out[32];
    memset(out, 0xee, sizeof out);
    cr_assert_eq(shm_ring_pop(r, out, 3), 3, "max smaller than count");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(out[i].seq, (uint64_t)i);
    cr_assert_eq(out[3].seq, 0xeeeeeeeeeeeeeeeeULL, "nothing written past max");
    cr_assert_eq(shm_ring_count(r), 7);
    cr_assert_eq(shm_ring_pop(r, out, 32), 7, "max larger than count");
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(out[i].seq, (uint64_t)i + 3);
        cr_assert(trec_ok(&out[i]));
    }
    cr_assert_eq(out[7].seq, 0xeeeeeeeeeeeeeeeeULL, "nothing written past the records");
    /* a batch that runs over the end of the array: slots 10..15 then 0..3 */
    for (uint64_t i = 10; i < 20; i++)
        cr_assert_eq(push_seq(r, i), 0);
    cr_assert_eq(shm_ring_pop(r, out, 32), 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(out[i].seq, (uint64_t)i + 10);
        cr_assert(trec_ok(&out[i]));
    }
    ring_free(r);
}

Test(shm_ring, byte_exact_and_zero_filled)
{
    struct shm_ring *r = ring_new(4);
    unsigned char src[SHM_RING_REC_SIZE], out[4][SHM_RING_REC_SIZE];
    for (unsigned round = 0; round < 3; round++) {
        /* dirty every slot with full-size records first */
        memset(src, 0xff, sizeof src);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(shm_ring_push(r, src, sizeof src), 0);
        cr_assert_eq(shm_ring_pop(r, out, 4), 4);
        /* then every length 0..64 through the same slots */
        for (size_t len = 0; len <= SHM_RING_REC_SIZE; len++) {
            for (size_t i = 0; i < sizeof src; i++)
                src[i] = (unsigned char)(len * 31 + i * 7 + round + 1);
            cr_assert_eq(shm_ring_push(r, src, len), 0);
            cr_assert_eq(shm_ring_pop(r, out, 4), 1);
            cr_assert_eq(memcmp(out[0], src, len), 0, "length %zu: payload", len);
            for (size_t i = len; i < SHM_RING_REC_SIZE; i++)
                cr_assert_eq(out[0][i], 0, "length %zu: byte %zu not zero", len, i);
        }
    }
    ring_free(r);
}

Test(shm_ring, wrap_at_uint32_max_edges)
{
    /* start 4 below the wrap: slot 4, the index crosses 0 after 4 pushes */
    struct shm_ring *r = ring_new_at(8, UINT32_MAX - 3);
    cr_assert_eq(shm_ring_count(r), 0);
    struct trec out[8];
    cr_assert_eq(shm_ring_pop(r, out, 8), 0);
    for (uint64_t i = 0; i < 8; i++) {
        cr_assert_eq(push_seq(r, i), 0, "push %llu", (unsigned long long)i);
        cr_assert_eq(shm_ring_count(r), i + 1);
    }
    cr_assert_eq(atomic_load(&r->tail), 4, "tail wrapped");
    cr_assert_eq(push_seq(r, 8), -ENOBUFS, "full across the wrap");
    cr_assert_eq(shm_ring_dropped(r), 1);
    cr_assert_eq(shm_ring_pop(r, out, 8), 8, "one batch over both wraps");
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(out[i].seq, (uint64_t)i);
        cr_assert(trec_ok(&out[i]));
    }
    cr_assert_eq(shm_ring_count(r), 0);
    cr_assert_eq(shm_ring_pop(r, out, 8), 0, "empty across the wrap");
    cr_assert_eq(atomic_load(&r->head), 4);
    ring_free(r);
}

Test(shm_ring, wrap_at_uint32_max_many)
{
    struct shm_ring *r = ring_new_at(8, UINT32_MAX - 3);
    /* random bursts of pushes and pops checked against a model queue; the
     * indices cross UINT32_MAX early on, then keep running past it */
    uint64_t model[8], seq = 0, drops = 0, popped = 0, full_hits = 0, empty_hits = 0;
    unsigned mhead = 0, mcount = 0;
    uint64_t rng = 12345;
    struct trec out[16];
    for (int step = 0; step < 20000; step++) {
        rng = mix(rng);
        unsigned pushes = (unsigned)(rng % 11), max = (unsigned)((rng >> 8) % 12);
        for (unsigned i = 0; i < pushes; i++, seq++) {
            int rc = push_seq(r, seq);
            if (mcount == 8) {
                cr_assert_eq(rc, -ENOBUFS, "step %d: full", step);
                drops++;
                full_hits++;
            } else {
                cr_assert_eq(rc, 0, "step %d: %u queued", step, mcount);
                model[(mhead + mcount++) % 8] = seq;
            }
        }
        cr_assert_eq(shm_ring_count(r), mcount, "step %d", step);
        cr_assert_eq(shm_ring_dropped(r), drops, "step %d", step);
        unsigned most = mcount < max ? mcount : max;
        if (mcount == 0 && max > 0)
            empty_hits++;
        /* a pop may stop at the records it already knew of, but takes at
         * least one when any is there */
        unsigned got = shm_ring_pop(r, out, max);
        cr_assert_leq(got, most, "step %d: pop %u of %u", step, max, mcount);
        cr_assert(got > 0 || most == 0, "step %d: pop %u of %u got none", step, max, mcount);
        for (unsigned i = 0; i < got; i++) {
            cr_assert_eq(out[i].seq, model[mhead], "step %d: record %u", step, i);
            cr_assert(trec_ok(&out[i]));
            mhead = (mhead + 1) % 8;
            mcount--;
            popped++;
        }
        cr_assert_eq(shm_ring_count(r), mcount, "step %d", step);
    }
    cr_assert_eq(popped + mcount + drops, seq, "every record popped, queued or dropped");
    cr_assert_gt(full_hits, 100, "the full edge was exercised");
    cr_assert_gt(empty_hits, 100, "the empty edge was exercised");
    uint32_t tail = atomic_load(&r->tail);
    cr_assert_eq(tail, (uint32_t)(UINT32_MAX - 3 + (seq - drops)), "tail ran past the wrap");
    cr_assert_lt(tail, UINT32_MAX - 3);
    ring_free(r);
}

/* A ring must not depend on where it is mapped: push through one mapping,
 * pop through another of the same memory at a different address. */
Test(shm_ring, two_mappings)
{
    size_t len = shm_ring_bytes(64);
    int fd = memfd_create("shm-ring-test", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)len), 0);
    struct shm_ring *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    struct shm_ring *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert(a != MAP_FAILED && b != MAP_FAILED && a != b);
    cr_assert_eq(shm_ring_init(a, 64), 0);
    struct trec out[64];
    uint64_t seq = 0, got = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 50; i++)
            cr_assert_eq(push_seq(a, seq++), 0);
        cr_assert_eq(shm_ring_count(b), 50);
        cr_assert_eq(shm_ring_pop(b, out, 64), 50);
        for (int i = 0; i < 50; i++) {
            cr_assert_eq(out[i].seq, got++);
            cr_assert(trec_ok(&out[i]));
        }
    }
    munmap(a, len);
    munmap(b, len);
    close(fd);
}

/* ---- producer and consumer processes ------------------------------------------ */

#define STRESS_N 10000000ull
/* A wedged child dies rather than hang the run, and so the test process
 * waiting for it returns.  (No criterion .timeout: with tests running in
 * parallel, criterion 2.4 leaks a timer entry that LeakSanitizer reports.) */
#define CHILD_ALARM_S 60

/* What the test process sets up for its children and what they report back;
 * in a MAP_SHARED mapping, one cache line per writer. */
struct stress {
    uint64_t n;        /* records the producer pushes: sequence 0..n-1 */
    bool retry;        /* producer retries a full push instead of dropping */
    bool exact;        /* consumer expects from..to-1 with no gap */
    unsigned work;     /* busy work per record in the consumer */
    uint64_t from, to; /* consumer's range when exact */

    _Atomic uint32_t done __attribute__((aligned(64))); /* producer pushed all n */
    uint64_t pushed;
    uint64_t nobufs;
    uint64_t full_waits;
    uint64_t other_errors;
    uint64_t first_nobufs; /* sequence of the first drop, UINT64_MAX if none */

    uint64_t received __attribute__((aligned(64)));
    uint64_t bad_order;
    uint64_t bad_sum;
    uint64_t first_bad; /* sequence of the first bad record */
    uint64_t last_seq;
    uint64_t empty_waits;
};

static int cpus[2] = {-1, -1};

/* The first two CPUs this process may run on, so producer and consumer do
 * not take turns on one; with a single CPU nobody is pinned. */
static void pick_cpus(void)
{
    cpu_set_t set;
    cpus[0] = cpus[1] = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int k = 0;
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &set))
            cpus[k++] = c;
    if (k < 2)
        cpus[0] = cpus[1] = -1;
}

static void pin(int which)
{
    if (cpus[which] < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[which], &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

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

/* Waiting is only for the tests: spin a little, then let the peer have the
 * CPU in case it shares ours. */
static void wait_a_bit(uint64_t *spins)
{
    if (++*spins % 64)
        cpu_relax();
    else
        sched_yield();
}

static int producer(struct shm_ring *r, struct stress *s)
{
    uint64_t spins = 0;
    s->first_nobufs = UINT64_MAX;
    for (uint64_t seq = 0; seq < s->n; seq++) {
        struct trec t;
        trec_fill(&t, seq);
        int rc;
        while ((rc = shm_ring_push(r, &t, sizeof t)) == -ENOBUFS && s->retry) {
            s->full_waits++;
            wait_a_bit(&spins);
        }
        if (rc == 0) {
            s->pushed++;
        } else if (rc == -ENOBUFS) {
            if (!s->nobufs++)
                s->first_nobufs = seq;
        } else {
            s->other_errors++;
        }
    }
    atomic_store_explicit(&s->done, 1, memory_order_release);
    return s->other_errors ? 1 : 0;
}

static volatile uint64_t work_sink;

static void note_bad(struct stress *s, uint64_t seq)
{
    if (!s->bad_order && !s->bad_sum)
        s->first_bad = seq;
}

static int consumer(struct shm_ring *r, struct stress *s)
{
    struct trec buf[37];
    uint64_t expect = s->from, last = 0, spins = 0, round = 0;
    bool any = false;
    for (;;) {
        unsigned max = 1 + (unsigned)(round++ % 37); /* every batch size, wrapping or not */
        bool done = false;
        if (s->exact) {
            if (expect == s->to)
                break;
            if (max > s->to - expect)
                max = (unsigned)(s->to - expect);
        } else {
            /* read before popping: a pop that then finds the ring empty
             * has seen every record pushed before done */
            done = atomic_load_explicit(&s->done, memory_order_acquire);
        }
        unsigned n = shm_ring_pop(r, buf, max);
        if (n == 0) {
            if (done)
                break;
            s->empty_waits++;
            wait_a_bit(&spins);
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            const struct trec *t = &buf[i];
            if (!trec_ok(t)) {
                note_bad(s, t->seq);
                s->bad_sum++;
            }
            if (s->exact ? t->seq != expect : (any && t->seq <= last)) {
                note_bad(s, t->seq);
                s->bad_order++;
            }
            expect = t->seq + 1;
            last = t->seq;
            any = true;
            uint64_t w = t->seq;
            for (unsigned k = 0; k < s->work; k++)
                w = mix(w);
            if (s->work)
                work_sink = w;
        }
        s->received += n;
    }
    s->last_seq = last;
    return s->bad_order || s->bad_sum ? 1 : 0;
}

static pid_t spawn(int (*fn)(struct shm_ring *, struct stress *), struct shm_ring *r,
                   struct stress *s, int cpu)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* dies with the test process, whatever ends it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(90);
        alarm(CHILD_ALARM_S);
        pin(cpu);
        _exit(fn(r, s));
    }
    return pid;
}

static void reap(pid_t pid, const char *who, const struct stress *s)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "%s died by signal %d", who, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0,
                 "%s failed (code %d): %llu out of order, %llu bad checksums, first at seq %llu, "
                 "%llu push errors",
                 who, WEXITSTATUS(st), (unsigned long long)s->bad_order,
                 (unsigned long long)s->bad_sum, (unsigned long long)s->first_bad,
                 (unsigned long long)s->other_errors);
}

static struct stress *stress_new(void)
{
    struct stress *s = map_shared(sizeof *s);
    memset(s, 0, sizeof *s);
    pick_cpus();
    return s;
}

/* (a) The producer retries while full, so every record must arrive once,
 * in order and whole.  The indices start half way before the wrap. */
Test(shm_ring_proc, no_loss_when_not_full)
{
    struct shm_ring *r = ring_new_at(1024, (uint32_t)(UINT32_MAX - STRESS_N / 2));
    struct stress *s = stress_new();
    s->n = STRESS_N;
    s->retry = true;
    s->exact = true;
    s->from = 0;
    s->to = STRESS_N;
    pid_t c = spawn(consumer, r, s, 1);
    pid_t p = spawn(producer, r, s, 0);
    reap(p, "producer", s);
    reap(c, "consumer", s);
    cr_assert_eq(s->pushed, STRESS_N);
    cr_assert_eq(s->nobufs, 0);
    cr_assert_eq(s->received, STRESS_N);
    cr_assert_eq(s->bad_order + s->bad_sum, 0);
    cr_assert_eq(s->last_seq, STRESS_N - 1);
    cr_assert_eq(shm_ring_count(r), 0, "nothing left over");
    /* the ring cannot tell a retry from a drop: it counts every -ENOBUFS */
    cr_assert_eq(shm_ring_dropped(r), s->full_waits);
    cr_log_info("no_loss: %llu full waits, %llu empty waits, CPUs %d/%d",
                (unsigned long long)s->full_waits, (unsigned long long)s->empty_waits, cpus[0],
                cpus[1]);
    munmap(s, sizeof *s);
    ring_free(r);
}

/* (b) With the consumer not running, a producer pushing capacity + K
 * records fills the ring and drops exactly the last K; a consumer process
 * started afterwards gets 0..capacity-1 in order. */
Test(shm_ring_proc, exact_drop_count_when_full)
{
    enum { CAP = 1024, K = 333 };
    struct shm_ring *r = ring_new(CAP);
    struct stress *s = stress_new();
    s->n = CAP + K;
    s->retry = false;
    reap(spawn(producer, r, s, 0), "producer", s);
    cr_assert_eq(s->pushed, CAP);
    cr_assert_eq(s->nobufs, K);
    cr_assert_eq(s->first_nobufs, CAP, "the first drop is the first record that did not fit");
    cr_assert_eq(shm_ring_dropped(r), K);
    cr_assert_eq(shm_ring_count(r), CAP);
    s->exact = true;
    s->from = 0;
    s->to = CAP;
    reap(spawn(consumer, r, s, 1), "consumer", s);
    cr_assert_eq(s->received, CAP);
    cr_assert_eq(s->last_seq, CAP - 1);
    cr_assert_eq(shm_ring_count(r), 0);
    struct trec out;
    cr_assert_eq(shm_ring_pop(r, &out, 1), 0, "nothing beyond capacity arrived");
    /* the producer's state is in the ring too: a new producer (this
     * process) carries on where the dead one stopped */
    cr_assert_eq(push_seq(r, 7), 0);
    cr_assert_eq(shm_ring_pop(r, &out, 1), 1);
    cr_assert_eq(out.seq, 7);
    cr_assert_eq(shm_ring_dropped(r), K, "the count survives");
    munmap(s, sizeof *s);
    ring_free(r);
}

/* (c) Producer never retries and the consumer is slower: what arrives is
 * strictly increasing and whole, and arrived + dropped is everything. */
Test(shm_ring_proc, concurrent_drops)
{
    struct shm_ring *r = ring_new_at(1024, (uint32_t)(UINT32_MAX - STRESS_N / 4));
    struct stress *s = stress_new();
    s->n = STRESS_N;
    s->retry = false;
    s->exact = false;
    s->work = 24;
    pid_t c = spawn(consumer, r, s, 1);
    pid_t p = spawn(producer, r, s, 0);
    reap(p, "producer", s);
    reap(c, "consumer", s);
    cr_assert_eq(s->bad_order + s->bad_sum, 0);
    cr_assert_eq(s->received + s->nobufs, STRESS_N, "received %llu + dropped %llu",
                 (unsigned long long)s->received, (unsigned long long)s->nobufs);
    cr_assert_eq(s->received, s->pushed, "everything pushed arrived");
    cr_assert_eq(shm_ring_dropped(r), s->nobufs, "the ring counted each drop");
    cr_assert_eq(shm_ring_count(r), 0);
    cr_assert_gt(s->nobufs, 0, "a slower consumer makes the producer drop");
    cr_assert_gt(s->received, 0);
    cr_log_info("concurrent_drops: %llu received, %llu dropped, CPUs %d/%d",
                (unsigned long long)s->received, (unsigned long long)s->nobufs, cpus[0], cpus[1]);
    munmap(s, sizeof *s);
    ring_free(r);
}

/* A consumer process exits a third of the way through and a new one takes
 * over with nothing but the ring: no record lost or repeated. */
Test(shm_ring_proc, consumer_replaced)
{
    enum { N = 1000000 };
    struct shm_ring *r = ring_new(256);
    struct stress *s = stress_new();
    s->n = N;
    s->retry = true;
    s->exact = true;
    s->from = 0;
    s->to = N / 3;
    pid_t p = spawn(producer, r, s, 0);
    reap(spawn(consumer, r, s, 1), "first consumer", s);
    cr_assert_eq(s->received, N / 3);
    cr_assert_eq(s->last_seq, N / 3 - 1);
    s->from = N / 3;
    s->to = N;
    reap(spawn(consumer, r, s, 1), "second consumer", s);
    reap(p, "producer", s);
    cr_assert_eq(s->received, N);
    cr_assert_eq(s->last_seq, N - 1);
    cr_assert_eq(shm_ring_count(r), 0);
    munmap(s, sizeof *s);
    ring_free(r);
}
