/*
 * Unit tests for shared/shm and shared/hist: slot claim/release, counters
 * folded into `retired` so totals never go down (checked over every 64-bit
 * counter of struct shm_counters, so a counter missing from the fold is
 * caught), gauges of a released slot, TTFT label tables and their "other"
 * overflow, status code indices, histogram buckets, and a forked writer
 * and reader racing a fold.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/hist.h"
#include "shared/shm.h"

/* struct shm_counters is nothing but 64-bit counters (histograms included). */
#define NCOUNTERS (sizeof(struct shm_counters) / sizeof(_Atomic uint64_t))
_Static_assert(sizeof(struct shm_counters) % sizeof(_Atomic uint64_t) == 0, "counters layout");

static _Atomic uint64_t *counter_words(struct shm_counters *c)
{
    return (_Atomic uint64_t *)(void *)c;
}

static bool live(const struct shm *s, unsigned i)
{
    return atomic_load(&s->seg->hdr[i].state) == SHM_SLOT_LIVE;
}

/* Sum of counter word <k> over retired and live slots. */
static uint64_t total_word(const struct shm *s, size_t k)
{
    uint64_t v = counter_words(&s->seg->retired.c)[k];
    for (unsigned i = 0; i < s->seg->nslots; i++)
        if (live(s, i))
            v += counter_words(&shm_slot(s, i)->c)[k];
    return v;
}

static void make(struct shm *s, unsigned n)
{
    cr_assert_eq(shm_create(s, n), 0);
    cr_assert_eq(s->seg->magic, SHM_MAGIC);
    cr_assert_eq(s->seg->version, SHM_VERSION);
    cr_assert_eq(s->seg->nslots, n);
}

Test(shm, create_layout)
{
    struct shm s;
    make(&s, 5);
    cr_assert_geq(s.size, sizeof(struct shm_segment));
    for (unsigned i = 0; i < 5; i++) {
        char *a = (char *)shm_slot(&s, i);
        cr_assert_geq(a, (char *)&s.seg->hdr[5], "slot %u after the headers", i);
        cr_assert_leq(a + sizeof(struct shm_slot), (char *)s.seg + s.size, "slot %u inside", i);
        if (i)
            cr_assert_eq(a - (char *)shm_slot(&s, i - 1), (ptrdiff_t)sizeof(struct shm_slot));
        cr_assert_eq(atomic_load(&s.seg->hdr[i].state), SHM_SLOT_FREE);
    }
    shm_destroy(&s);
    cr_assert_null(s.seg);
}

Test(shm, claim_and_release)
{
    struct shm s;
    make(&s, 3);
    int a = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 1);
    int b = shm_slot_claim(&s, 1, SHM_ROLE_WORKER, 1);
    int c = shm_slot_claim(&s, 0, SHM_ROLE_CONTROL, 1);
    cr_assert(a >= 0 && b >= 0 && c >= 0);
    cr_assert(a != b && b != c && a != c);
    cr_assert_eq(shm_slot_claim(&s, 2, SHM_ROLE_WORKER, 1), -ENOSPC);
    cr_assert(live(&s, (unsigned)b));
    cr_assert_eq(s.seg->hdr[b].worker, 1);
    cr_assert_eq(s.seg->hdr[c].role, SHM_ROLE_CONTROL);
    /* a child writes, dies, is released; its replacement starts from zero */
    struct shm_slot *sl = shm_slot(&s, (unsigned)b);
    shm_add(&sl->c.tokens, 99);
    shm_gauge_add(&sl->g.streams_active, 3);
    hist_record(shm_ttft_hist(sl, "t", "b", "m"), &hist_ttft_bounds, 1234);
    atomic_store(&s.seg->hdr[b].pid, 4242);
    shm_slot_release(&s, (unsigned)b);
    cr_assert(!live(&s, (unsigned)b));
    cr_assert_eq(atomic_load(&s.seg->hdr[b].pid), 0);
    int d = shm_slot_claim(&s, 1, SHM_ROLE_WORKER, 2);
    cr_assert_eq(d, b, "the only free slot");
    cr_assert_eq(s.seg->hdr[d].generation, 2);
    sl = shm_slot(&s, (unsigned)d);
    for (size_t k = 0; k < NCOUNTERS; k++)
        cr_assert_eq(counter_words(&sl->c)[k], 0, "counter word %zu", k);
    cr_assert_eq(atomic_load(&sl->g.streams_active), 0);
    cr_assert_eq(atomic_load(&sl->ttft[0].used), 0);
    cr_assert_eq(atomic_load(&s.seg->retired.c.tokens), 99);
    shm_destroy(&s);
}

Test(shm, fold_keeps_every_total)
{
    struct shm s;
    make(&s, 4);
    int idx[4];
    for (int i = 0; i < 4; i++)
        idx[i] = shm_slot_claim(&s, (unsigned)i, SHM_ROLE_WORKER, 1);
    /* distinct values in every counter word of every slot */
    for (int i = 0; i < 4; i++) {
        _Atomic uint64_t *w = counter_words(&shm_slot(&s, (unsigned)idx[i])->c);
        for (size_t k = 0; k < NCOUNTERS; k++)
            shm_add(&w[k], (uint64_t)(i + 1) * 1000 + k);
    }
    uint64_t before[NCOUNTERS];
    for (size_t k = 0; k < NCOUNTERS; k++)
        before[k] = total_word(&s, k);
    static const int order[] = {2, 0, 3, 1};
    for (int r = 0; r < 4; r++) {
        shm_slot_release(&s, (unsigned)idx[order[r]]);
        for (size_t k = 0; k < NCOUNTERS; k++)
            cr_assert_eq(total_word(&s, k), before[k],
                         "counter word %zu of %zu changed by release %d", k, NCOUNTERS, r);
    }
    /* and again with slots claimed anew over the same indices */
    int n = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 2);
    shm_add(&shm_slot(&s, (unsigned)n)->c.requests[SHM_CODE_200], 5);
    shm_slot_release(&s, (unsigned)n);
    size_t k200 =
        (offsetof(struct shm_counters, requests) + SHM_CODE_200 * sizeof(_Atomic uint64_t)) /
        sizeof(_Atomic uint64_t);
    cr_assert_eq(total_word(&s, k200), before[k200] + 5);
    cr_assert_eq(atomic_load(&s.seg->retired.c.requests[SHM_CODE_200]), before[k200] + 5);
    shm_destroy(&s);
}

Test(shm, gauges_of_released_slot_vanish)
{
    struct shm s;
    make(&s, 2);
    int a = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 1);
    int b = shm_slot_claim(&s, 1, SHM_ROLE_WORKER, 1);
    shm_gauge_add(&shm_slot(&s, (unsigned)a)->g.streams_active, 7);
    shm_gauge_add(&shm_slot(&s, (unsigned)b)->g.streams_active, 5);
    shm_gauge_add(&shm_slot(&s, (unsigned)b)->g.streams_active, -2);
    shm_gauge_add(&shm_slot(&s, (unsigned)b)->g.connections, 11);
    int64_t sum = 0;
    for (unsigned i = 0; i < 2; i++)
        if (live(&s, i))
            sum += atomic_load(&shm_slot(&s, i)->g.streams_active);
    cr_assert_eq(sum, 10);
    shm_slot_release(&s, (unsigned)b);
    sum = 0;
    for (unsigned i = 0; i < 2; i++)
        if (live(&s, i))
            sum += atomic_load(&shm_slot(&s, i)->g.streams_active);
    cr_assert_eq(sum, 7, "the dead worker's streams are gone");
    cr_assert_eq(atomic_load(&s.seg->retired.g.streams_active), 0, "gauges are not folded");
    cr_assert_eq(atomic_load(&s.seg->retired.g.connections), 0);
    cr_assert_eq(atomic_load(&shm_slot(&s, (unsigned)b)->g.connections), 0);
    shm_destroy(&s);
}

static const struct shm_ttft_label *find_label(const struct shm_ttft_label *t, const char *tenant,
                                               const char *backend, const char *model)
{
    for (unsigned i = 0; i < SHM_TTFT_LABELS && atomic_load(&t[i].used); i++)
        if (!strcmp(t[i].tenant, tenant) && !strcmp(t[i].backend, backend) &&
            !strcmp(t[i].model, model))
            return &t[i];
    return NULL;
}

Test(shm, ttft_labels_merge_on_fold)
{
    struct shm s;
    make(&s, 2);
    int a = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 1);
    int b = shm_slot_claim(&s, 1, SHM_ROLE_WORKER, 1);
    struct shm_slot *sa = shm_slot(&s, (unsigned)a), *sb = shm_slot(&s, (unsigned)b);
    struct hist *h1 = shm_ttft_hist(sa, "default", "vllm", "m1");
    cr_assert_eq(shm_ttft_hist(sa, "default", "vllm", "m1"), h1, "found again");
    cr_assert_neq(shm_ttft_hist(sa, "default", "ollama", "m1"), h1, "backend is part of it");
    cr_assert_neq(shm_ttft_hist(sa, "acme", "vllm", "m1"), h1, "tenant is part of it");
    hist_record(h1, &hist_ttft_bounds, 7000);
    hist_record(shm_ttft_hist(sa, "default", "vllm", "m2"), &hist_ttft_bounds, 20000);
    hist_record(shm_ttft_hist(sb, "default", "vllm", "m2"), &hist_ttft_bounds, 30000);
    hist_record(shm_ttft_hist(sb, "default", "vllm", "m2"), &hist_ttft_bounds, 40000);
    hist_record(shm_ttft_hist(sb, "default", "vllm", "m3"), &hist_ttft_bounds, 1);
    shm_slot_release(&s, (unsigned)a);
    shm_slot_release(&s, (unsigned)b);
    const struct shm_ttft_label *t = s.seg->retired.ttft;
    const struct shm_ttft_label *l1 = find_label(t, "default", "vllm", "m1");
    const struct shm_ttft_label *l2 = find_label(t, "default", "vllm", "m2");
    const struct shm_ttft_label *l3 = find_label(t, "default", "vllm", "m3");
    cr_assert(l1 && l2 && l3);
    cr_assert_eq(atomic_load(&l1->h.count), 1);
    cr_assert_eq(atomic_load(&l2->h.count), 3, "merged by label");
    cr_assert_eq(atomic_load(&l2->h.sum_us), 90000);
    cr_assert_eq(atomic_load(&l2->h.bucket[2]), 1, "20 ms in (10 ms, 25 ms]");
    cr_assert_eq(atomic_load(&l2->h.bucket[3]), 2, "30, 40 ms in (25 ms, 50 ms]");
    cr_assert_eq(atomic_load(&l3->h.bucket[0]), 1);
    unsigned used = 0;
    while (used < SHM_TTFT_LABELS && atomic_load(&t[used].used))
        used++;
    cr_assert_eq(used, 5, "m1 m2 m3 plus the two created by lookups");
    shm_destroy(&s);
}

Test(shm, ttft_overflow_is_other)
{
    struct shm s;
    make(&s, 1);
    struct shm_slot *sl = shm_slot(&s, (unsigned)shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 1));
    struct hist *hs[SHM_TTFT_LABELS + 8];
    for (unsigned i = 0; i < SHM_TTFT_LABELS + 8; i++) {
        char model[16];
        snprintf(model, sizeof model, "model-%u", i);
        hs[i] = shm_ttft_hist(sl, "default", "vllm", model);
        for (unsigned k = 0; k < i && i < SHM_TTFT_LABELS - 1; k++)
            cr_assert_neq(hs[i], hs[k], "model %u has its own histogram", i);
    }
    struct hist *other = &sl->ttft[SHM_TTFT_LABELS - 1].h;
    for (unsigned i = SHM_TTFT_LABELS - 1; i < SHM_TTFT_LABELS + 8; i++)
        cr_assert_eq(hs[i], other, "model-%u shares the overflow entry", i);
    cr_assert_str_eq(sl->ttft[SHM_TTFT_LABELS - 1].model, "other");
    cr_assert_eq(shm_ttft_hist(sl, "default", "vllm", "model-3"), hs[3], "earlier ones kept");
    shm_destroy(&s);
}

Test(shm, fold_overflows_into_other_without_loss)
{
    struct shm s;
    make(&s, 1);
    uint64_t recorded = 0;
    for (unsigned gen = 0; gen < 4; gen++) {
        int idx = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, gen);
        struct shm_slot *sl = shm_slot(&s, (unsigned)idx);
        for (unsigned i = 0; i < 20; i++) {
            char model[16];
            snprintf(model, sizeof model, "g%u-m%u", gen, i);
            hist_record(shm_ttft_hist(sl, "default", "vllm", model), &hist_ttft_bounds, 100);
            recorded++;
        }
        shm_slot_release(&s, (unsigned)idx);
    }
    uint64_t count = 0;
    for (unsigned i = 0; i < SHM_TTFT_LABELS; i++) {
        cr_assert(atomic_load(&s.seg->retired.ttft[i].used), "retired table full");
        count += atomic_load(&s.seg->retired.ttft[i].h.count);
    }
    cr_assert_eq(count, recorded, "every sample kept");
    cr_assert_str_eq(s.seg->retired.ttft[SHM_TTFT_LABELS - 1].model, "other");
    cr_assert_eq(atomic_load(&s.seg->retired.ttft[SHM_TTFT_LABELS - 1].h.count),
                 recorded - (SHM_TTFT_LABELS - 1));
    shm_destroy(&s);
}

Test(shm, code_index_round_trip)
{
    for (int i = 0; i < SHM_CODE_OTHER; i++) {
        int st = shm_code_status((enum shm_code)i);
        cr_assert(st >= 100 && st <= 599, "index %d: status %d", i, st);
        cr_assert_eq(shm_code_index(st), (enum shm_code)i, "status %d", st);
    }
    cr_assert_eq(shm_code_status(SHM_CODE_OTHER), 0);
    cr_assert_eq(shm_code_status(SHM_N_CODES), 0);
    cr_assert_eq(shm_code_index(200), SHM_CODE_200);
    cr_assert_eq(shm_code_index(499), SHM_CODE_499);
    cr_assert_eq(shm_code_index(504), SHM_CODE_504);
    static const int others[] = {0, 100, 201, 206, 302, 418, 422, 498, 506, 599, -1, 1000};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        cr_assert_eq(shm_code_index(others[i]), SHM_CODE_OTHER, "status %d", others[i]);
}

/* ---- hist ------------------------------------------------------------------- */

static void check_bounds(const struct hist_bounds *b)
{
    cr_assert_gt(b->n, 0);
    cr_assert_leq(b->n, HIST_MAX_BOUNDS);
    for (unsigned i = 1; i < b->n; i++)
        cr_assert_gt(b->le_us[i], b->le_us[i - 1], "increasing");
    for (unsigned i = 0; i < b->n; i++) {
        uint64_t v[3] = {b->le_us[i] - 1, b->le_us[i], b->le_us[i] + 1};
        unsigned want[3] = {i, i, i + 1};
        if (i > 0 && b->le_us[i] - 1 == b->le_us[i - 1])
            want[0] = i - 1;
        for (int k = 0; k < 3; k++) {
            struct hist h;
            memset(&h, 0, sizeof h);
            hist_record(&h, b, v[k]);
            for (unsigned j = 0; j <= HIST_MAX_BOUNDS; j++)
                cr_assert_eq(atomic_load(&h.bucket[j]), j == want[k], "value %llu, bucket %u",
                             (unsigned long long)v[k], j);
            cr_assert_eq(atomic_load(&h.count), 1);
            cr_assert_eq(atomic_load(&h.sum_us), v[k]);
        }
    }
    struct hist h;
    memset(&h, 0, sizeof h);
    hist_record(&h, b, 0);
    hist_record(&h, b, UINT64_MAX / 4);
    cr_assert_eq(atomic_load(&h.bucket[0]), 1, "zero in the first bucket");
    cr_assert_eq(atomic_load(&h.bucket[b->n]), 1, "above the last bound: +Inf");
}

Test(hist, bucket_boundaries)
{
    check_bounds(&hist_ttft_bounds);
    check_bounds(&hist_itl_bounds);
    cr_assert_eq(hist_ttft_bounds.le_us[0], 5000, "5 ms");
    cr_assert_eq(hist_ttft_bounds.le_us[hist_ttft_bounds.n - 1], 60000000, "60 s");
    cr_assert_eq(hist_itl_bounds.le_us[0], 1000, "1 ms");
    cr_assert_eq(hist_itl_bounds.le_us[hist_itl_bounds.n - 1], 10000000, "10 s");
}

Test(hist, snap_add_and_fold)
{
    struct hist a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    static const uint64_t va[] = {1, 1000, 1001, 20000, 99999999};
    static const uint64_t vb[] = {2500, 2500, 0};
    for (size_t i = 0; i < 5; i++)
        hist_record(&a, &hist_itl_bounds, va[i]);
    for (size_t i = 0; i < 3; i++)
        hist_record(&b, &hist_itl_bounds, vb[i]);
    struct hist_snap s;
    memset(&s, 0, sizeof s);
    hist_snap_add(&s, &a);
    hist_snap_add(&s, &b);
    cr_assert_eq(s.count, 8);
    cr_assert_eq(s.sum_us, 1 + 1000 + 1001 + 20000 + 99999999ull + 5000);
    cr_assert_eq(s.bucket[0], 3, "1, 1000, 0");
    cr_assert_eq(s.bucket[1], 3, "1001, 2500, 2500");
    cr_assert_eq(s.bucket[4], 1, "20000");
    cr_assert_eq(s.bucket[hist_itl_bounds.n], 1, "+Inf");
    uint64_t total = 0;
    for (unsigned i = 0; i <= HIST_MAX_BOUNDS; i++)
        total += s.bucket[i];
    cr_assert_eq(total, s.count);
    struct hist f;
    memset(&f, 0, sizeof f);
    hist_fold(&f, &s);
    hist_fold(&f, &s);
    struct hist_snap s2;
    memset(&s2, 0, sizeof s2);
    hist_snap_add(&s2, &f);
    cr_assert_eq(s2.count, 16);
    cr_assert_eq(s2.sum_us, 2 * s.sum_us);
    for (unsigned i = 0; i <= HIST_MAX_BOUNDS; i++)
        cr_assert_eq(s2.bucket[i], 2 * s.bucket[i]);
}

/* ---- a real writer process, a reader process, and the fold ---------------- */

/* tokens over retired + live slots, read under the fold sequence */
static uint64_t read_tokens(const struct shm *s)
{
    for (;;) {
        uint32_t tok = shm_read_begin(s);
        uint64_t v = atomic_load_explicit(&s->seg->retired.c.tokens, memory_order_relaxed);
        for (unsigned i = 0; i < s->seg->nslots; i++)
            if (atomic_load_explicit(&s->seg->hdr[i].state, memory_order_acquire) == SHM_SLOT_LIVE)
                v += atomic_load_explicit(&shm_slot(s, i)->c.tokens, memory_order_relaxed);
        if (!shm_read_retry(s, tok))
            return v;
    }
}

#define WRITES 3000000ull
#define CYCLES 20000ull /* short-lived slots folded while the reader reads */
#define FINAL  (1000 + WRITES + 7 * CYCLES)

static bool any_live(const struct shm *s)
{
    for (unsigned i = 0; i < s->seg->nslots; i++)
        if (live(s, i))
            return true;
    return false;
}

Test(shm, forked_writer_reader_and_fold, .timeout = 60)
{
    struct shm s;
    make(&s, 4);
    /* history: a worker that already died */
    int old = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 1);
    shm_add(&shm_slot(&s, (unsigned)old)->c.tokens, 1000);
    shm_slot_release(&s, (unsigned)old);
    int idx = shm_slot_claim(&s, 0, SHM_ROLE_WORKER, 2);
    cr_assert_geq(idx, 0);
    /* the reader: totals it sees must never go down; it stops once the
     * writer's slot is folded and everything is accounted for */
    pid_t parent = getpid();
    pid_t reader = fork();
    cr_assert_geq(reader, 0);
    if (reader == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(4);
        uint64_t last = 0;
        for (;;) {
            uint64_t v = read_tokens(&s);
            if (v < last)
                _exit(1);
            if (v > FINAL)
                _exit(2);
            last = v;
            if (v == FINAL && !any_live(&s))
                _exit(0);
        }
    }
    pid_t writer = fork();
    cr_assert_geq(writer, 0);
    if (writer == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(4);
        struct shm_slot *sl = shm_slot(&s, (unsigned)idx);
        for (uint64_t i = 0; i < WRITES; i++) {
            shm_add(&sl->c.tokens, 1);
            if ((i & 1023) == 0)
                hist_record(&sl->c.itl, &hist_itl_bounds, i & 0xffff);
        }
        _exit(0);
    }
    /* the parent reads while the writer runs */
    uint64_t last = 0;
    int st;
    for (;;) {
        uint64_t v = read_tokens(&s);
        cr_assert_geq(v, last, "total went down: %llu after %llu", (unsigned long long)v,
                      (unsigned long long)last);
        last = v;
        pid_t p = waitpid(writer, &st, WNOHANG);
        cr_assert_geq(p, 0);
        if (p == writer)
            break;
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(read_tokens(&s), 1000 + WRITES, "all writes visible after the child exits");
    uint64_t itl = atomic_load(&shm_slot(&s, (unsigned)idx)->c.itl.count);
    cr_assert_eq(itl, (WRITES + 1023) / 1024);
    shm_slot_release(&s, (unsigned)idx); /* the supervisor reaped it */
    cr_assert_eq(read_tokens(&s), 1000 + WRITES, "fold neither lost nor doubled it");
    cr_assert_eq(atomic_load(&s.seg->retired.c.itl.count), itl);
    for (uint64_t i = 0; i < CYCLES; i++) {
        int k = shm_slot_claim(&s, 1, SHM_ROLE_WORKER, 3);
        cr_assert_geq(k, 0);
        shm_add(&shm_slot(&s, (unsigned)k)->c.tokens, 7);
        shm_slot_release(&s, (unsigned)k);
    }
    cr_assert_eq(read_tokens(&s), FINAL);
    cr_assert_eq(waitpid(reader, &st, 0), reader);
    cr_assert(WIFEXITED(st), "reader died by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "reader saw a bad total (code %d)", WEXITSTATUS(st));
    shm_destroy(&s);
}
