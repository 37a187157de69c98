/*
 * Unit tests for dataplane/admit_queue: shortest-first order, first come
 * first served among equal costs, aging (the exact moment a big request
 * overtakes small ones, and the bound it puts on starvation under a stream
 * of small requests that never ends), TTL drops at exactly ttl_ms, CoDel
 * (a standing queue is shed down to the slough timeout and the overloaded
 * flag turns on and off; a queue that drains sheds nothing before the TTL;
 * an interval without pops is judged by the oldest entry's age), removal
 * of any entry, capacity, aq_next_deadline_ms, time going backwards, keys
 * rebased far from the epoch, empty-queue cases, and randomized runs
 * against a reference model with the heap and list invariants checked
 * after every operation.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/admit_queue.h"

/* cr_assert formats eagerly enough to be slow in long loops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

#define ULL(x) ((unsigned long long)(x))

struct req {
    struct aq_entry e;
    int id;
};

static int id_of(const struct aq_entry *e)
{
    return e ? container_of(e, struct req, e)->id : -1;
}

static struct req *reqs_new(int n)
{
    struct req *r = calloc((size_t)n, sizeof *r);
    cr_assert_not_null(r);
    for (int i = 0; i < n; i++)
        r[i].id = i;
    return r;
}

/* CoDel off, TTL out of the way, aging as given. */
static struct aq_params plain(uint32_t capacity, double aging)
{
    struct aq_params p = {
        .capacity = capacity,
        .ttl_ms = UINT32_MAX,
        .codel_target_ms = 0,
        .codel_interval_ms = 0,
        .aging_per_ms = aging,
    };
    return p;
}

static void init(struct admit_queue *q, struct aq_params p)
{
    cr_assert_eq(aq_init(q, &p), 0);
}

static void push_ok(struct admit_queue *q, struct req *r, uint32_t cost, uint64_t now)
{
    int rc = aq_push(q, &r->e, cost, now);
    CHECK(rc == 0, "push %d at %llu: %d", r->id, ULL(now), rc);
}

static bool entry_before(const struct aq_entry *a, const struct aq_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

/* The heap is a valid min-heap on (key, seq) whose entries know their
 * slots, and the arrival list holds the same entries in arrival order. */
static void check_invariants(const struct admit_queue *q)
{
    for (uint32_t i = 1; i <= q->n; i++) {
        const struct aq_entry *e = q->heap[i];
        CHECK(e != NULL, "heap slot %u empty (n %u)", i, q->n);
        CHECK(e->heap_idx == i, "entry in slot %u thinks it is in %u", i, e->heap_idx);
        CHECK(aq_queued(e), "entry in slot %u not queued", i);
        if (i > 1)
            CHECK(!entry_before(e, q->heap[i / 2]), "heap order broken at slot %u", i);
        CHECK(e->key < (UINT64_C(1) << 63), "key too large in slot %u", i);
    }
    uint32_t count = 0;
    const struct aq_entry *prev = NULL;
    for (const struct list_node *n = q->by_age.next; n != &q->by_age; n = n->next) {
        const struct aq_entry *e = container_of(n, struct aq_entry, age_node);
        CHECK(e->heap_idx >= 1 && e->heap_idx <= q->n && q->heap[e->heap_idx] == e,
              "listed entry not in the heap");
        if (prev) {
            CHECK(prev->enq_ms <= e->enq_ms, "arrival list out of time order");
            CHECK(prev->seq < e->seq, "arrival list out of arrival order");
        }
        prev = e;
        count++;
    }
    CHECK(count == q->n, "arrival list holds %u entries, heap %u", count, q->n);
}

/* ---- basics -------------------------------------------------------------- */

Test(admit_queue, defaults)
{
    struct aq_params p;
    aq_params_default(&p);
    cr_assert_eq(p.capacity, 1024);
    cr_assert_eq(p.ttl_ms, 800);
    cr_assert_eq(p.codel_target_ms, 100);
    cr_assert_eq(p.codel_interval_ms, 200);
    cr_assert(p.aging_per_ms == 32.0);
    struct admit_queue q;
    cr_assert_eq(aq_init(&q, &p), 0);
    cr_assert_eq(q.aging_fp, UINT64_C(32) << AQ_AGING_SHIFT);
    aq_destroy(&q);
}

Test(admit_queue, init_rejects_bad_params)
{
    struct aq_params good;
    aq_params_default(&good);
    struct admit_queue q;
    struct aq_params p;

    p = good;
    p.capacity = 0;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.capacity = UINT32_MAX;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.ttl_ms = 0;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.aging_per_ms = -1.0;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.aging_per_ms = AQ_AGING_MAX * 2;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.aging_per_ms = __builtin_nan("");
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    p = good;
    p.codel_interval_ms = 0;
    cr_assert_eq(aq_init(&q, &p), -EINVAL);
    /* A failed init leaves nothing to free, and destroy is still safe. */
    aq_destroy(&q);

    /* Interval 0 is fine with CoDel off; aging 0 is plain shortest-first. */
    p = good;
    p.codel_target_ms = 0;
    p.codel_interval_ms = 0;
    p.aging_per_ms = 0.0;
    cr_assert_eq(aq_init(&q, &p), 0);
    aq_destroy(&q);
}

Test(admit_queue, empty_queue)
{
    struct admit_queue q;
    struct aq_params p;
    aq_params_default(&p);
    init(&q, p);
    struct req r = {.id = 1};
    cr_assert(!aq_queued(&r.e), "a zeroed entry is not queued");

    cr_assert_eq(aq_len(&q), 0);
    cr_assert_null(aq_peek(&q));
    cr_assert_null(aq_pop(&q, 1000));
    enum aq_drop_reason why = (enum aq_drop_reason)77;
    cr_assert_null(aq_expire(&q, 1000, &why));
    cr_assert_eq(why, 77, "why untouched when nothing is dropped");
    cr_assert_null(aq_expire(&q, 5000, NULL));
    cr_assert_eq(aq_next_deadline_ms(&q, 5000), UINT64_MAX);
    cr_assert(!aq_overloaded(&q));
    aq_remove(&q, &r.e); /* not queued: left alone */
    cr_assert(!aq_queued(&r.e));
    check_invariants(&q);

    /* Emptied by pop, the queue is as new. */
    push_ok(&q, &r, 10, 6000);
    cr_assert_eq(aq_len(&q), 1);
    cr_assert_eq(aq_peek(&q), &r.e);
    cr_assert_eq(aq_pop(&q, 6001), &r.e);
    cr_assert(!aq_queued(&r.e));
    cr_assert_null(aq_pop(&q, 6002));
    cr_assert_eq(aq_next_deadline_ms(&q, 6002), UINT64_MAX);
    check_invariants(&q);

    aq_destroy(&q);
    aq_destroy(&q);
    struct admit_queue z;
    memset(&z, 0, sizeof z);
    aq_destroy(&z);
}

Test(admit_queue, destroy_detaches_entries)
{
    struct admit_queue q;
    init(&q, plain(8, 0));
    struct req *r = reqs_new(3);
    for (int i = 0; i < 3; i++)
        push_ok(&q, &r[i], 5, 100);
    aq_destroy(&q);
    for (int i = 0; i < 3; i++)
        cr_assert(!aq_queued(&r[i].e));
    /* The entries are the caller's: they can go into another queue. */
    init(&q, plain(8, 0));
    push_ok(&q, &r[2], 1, 200);
    cr_assert_eq(aq_pop(&q, 200), &r[2].e);
    aq_destroy(&q);
    free(r);
}

/* ---- order ---------------------------------------------------------------- */

Test(admit_queue, shortest_first)
{
    static const uint32_t cost[] = {700, 30, 5000, 1, 30000, 250, 0, 999, 64, 4096, 12, 80000};
    enum { N = sizeof cost / sizeof cost[0] };
    struct admit_queue q;
    struct aq_params p;
    aq_params_default(&p); /* aging on: all pushed at the same ms, so it cancels */
    init(&q, p);
    struct req *r = reqs_new(N);
    for (int i = 0; i < N; i++)
        push_ok(&q, &r[i], cost[i], 1000);
    check_invariants(&q);
    uint32_t last = 0;
    for (int i = 0; i < N; i++) {
        struct aq_entry *e = aq_pop(&q, 1000);
        cr_assert_not_null(e);
        cr_assert_geq(e->cost, last, "pop %d: cost %u after %u", i, e->cost, last);
        last = e->cost;
        check_invariants(&q);
    }
    cr_assert_eq(last, 80000);
    cr_assert_null(aq_pop(&q, 1000));
    aq_destroy(&q);
    free(r);
}

Test(admit_queue, fifo_among_equal_costs)
{
    enum { N = 200 };
    struct admit_queue q;
    init(&q, plain(N, 0));
    struct req *r = reqs_new(N);
    /* Two costs, interleaved, all at the same ms: each cost class comes
     * out in push order, the cheaper class first. */
    for (int i = 0; i < N; i++)
        push_ok(&q, &r[i], (i % 3) ? 7 : 5, 50);
    int prev5 = -1, prev7 = -1;
    bool seen7 = false;
    for (int i = 0; i < N; i++) {
        struct aq_entry *e = aq_pop(&q, 60);
        int id = id_of(e);
        cr_assert_geq(id, 0);
        if (e->cost == 5) {
            cr_assert(!seen7, "cost 5 entry %d after a cost 7 one", id);
            cr_assert_gt(id, prev5, "cost 5: %d after %d", id, prev5);
            prev5 = id;
        } else {
            seen7 = true;
            cr_assert_gt(id, prev7, "cost 7: %d after %d", id, prev7);
            prev7 = id;
        }
    }
    /* Equal costs at different times, no aging: still first come first
     * served. */
    for (int i = 0; i < 20; i++)
        push_ok(&q, &r[i], 9, 100 + (uint64_t)i * 3);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(id_of(aq_pop(&q, 500)), i);
    aq_destroy(&q);
    free(r);
}

/* Big request of cost C at t0 against a small one of cost c pushed at t0
 * + dt, aging a per ms: the big one goes first iff C + a*t0 <= c + a*(t0 +
 * dt), ties to the earlier arrival, i.e. iff dt >= (C - c) / a. */
static int first_of_two(double aging, uint32_t big, uint32_t small, uint64_t dt)
{
    struct admit_queue q;
    struct aq_params p = plain(4, aging);
    init(&q, p);
    struct req r[2] = {{.id = 0}, {.id = 1}};
    const uint64_t t0 = 5000;
    push_ok(&q, &r[0], big, t0);
    push_ok(&q, &r[1], small, t0 + dt);
    int first = id_of(aq_pop(&q, t0 + dt));
    check_invariants(&q);
    aq_destroy(&q);
    return first;
}

Test(admit_queue, aging_overtakes_at_the_exact_ms)
{
    /* (10000 - 1000) / 10 = 900 ms. */
    cr_assert_eq(first_of_two(10.0, 10000, 1000, 0), 1);
    cr_assert_eq(first_of_two(10.0, 10000, 1000, 899), 1, "small arrived 1 ms before");
    cr_assert_eq(first_of_two(10.0, 10000, 1000, 900), 0, "tie: the earlier arrival");
    cr_assert_eq(first_of_two(10.0, 10000, 1000, 901), 0);
    cr_assert_eq(first_of_two(10.0, 10000, 1000, 100000), 0);
    /* A fractional rate: (10000 - 1000) / 2.5 = 3600 ms. */
    cr_assert_eq(first_of_two(2.5, 10000, 1000, 3599), 1);
    cr_assert_eq(first_of_two(2.5, 10000, 1000, 3600), 0);
    /* The default, 32 per ms: a 32 KB prompt against a 0-byte one,
     * 1024 ms. */
    cr_assert_eq(first_of_two(32.0, 32768, 0, 1023), 1);
    cr_assert_eq(first_of_two(32.0, 32768, 0, 1024), 0);
    /* No aging: the small one always wins. */
    cr_assert_eq(first_of_two(0.0, 10000, 1000, 1000000), 1);
}

/*
 * A big request (cost C) at t0 among small ones (cost c) arriving every ms
 * forever, while a slot frees only every P = 2 ms: the queue grows without
 * end, so plain shortest-first would never serve the big one.  With aging
 * a, the smalls that can go before it are those that arrived before t0 +
 * (C - c)/a, (C - c)/a of them at one per ms, so it is served by the
 * ((C - c)/a + 1)-th pop: here (10100 - 100)/10 = 1000 smalls, and the big
 * one is popped at exactly t0 + P * 1001.
 */
static uint64_t starve_run(double aging, uint64_t until, int *npops)
{
    const uint64_t t0 = 1000;
    int n = (int)(until - t0) + 2;
    struct req *r = reqs_new(n);
    struct admit_queue q;
    init(&q, plain((uint32_t)n, aging));
    struct req *big = &r[n - 1];
    push_ok(&q, big, 10100, t0);
    uint64_t served = 0;
    int pops = 0;
    int i = 0;
    for (uint64_t t = t0; t <= until && !served; t++) {
        push_ok(&q, &r[i++], 100, t);
        if (t > t0 && (t - t0) % 2 == 0) {
            struct aq_entry *e = aq_pop(&q, t);
            cr_assert_not_null(e);
            pops++;
            if (e == &big->e)
                served = t;
            else
                CHECK(e->cost == 100, "unexpected entry popped");
        }
    }
    if (!served)
        cr_assert(aq_queued(&big->e));
    check_invariants(&q);
    aq_destroy(&q);
    free(r);
    *npops = pops;
    return served;
}

Test(admit_queue, aging_bounds_starvation)
{
    int pops;
    uint64_t served = starve_run(10.0, 20000, &pops);
    cr_assert_eq(served, 1000 + 2 * 1001, "big one served at %llu", ULL(served));
    cr_assert_eq(pops, 1001);
    /* Without aging it is still waiting after 9000 ms and 4500 pops. */
    served = starve_run(0.0, 10000, &pops);
    cr_assert_eq(served, 0);
    cr_assert_eq(pops, 4500);
}

/* ---- TTL ------------------------------------------------------------------ */

Test(admit_queue, ttl_drops_exactly_at_ttl)
{
    struct admit_queue q;
    struct aq_params p = plain(8, 32.0);
    p.ttl_ms = 800;
    init(&q, p);
    struct req *r = reqs_new(3);
    /* Costs chosen so the heap order differs from arrival order: drops go
     * by age regardless. */
    push_ok(&q, &r[0], 90000, 1000);
    push_ok(&q, &r[1], 10, 1100);
    push_ok(&q, &r[2], 50, 1100);
    cr_assert_eq(aq_next_deadline_ms(&q, 1100), 1800);

    enum aq_drop_reason why = AQ_DROP_CODEL;
    for (uint64_t t = 1100; t < 1800; t++)
        CHECK(aq_expire(&q, t, &why) == NULL, "dropped at %llu, before its TTL", ULL(t));
    cr_assert_eq(aq_len(&q), 3);
    cr_assert_eq(aq_expire(&q, 1800, &why), &r[0].e);
    cr_assert_eq(why, AQ_DROP_TTL);
    cr_assert(!aq_queued(&r[0].e));
    cr_assert_null(aq_expire(&q, 1800, &why));
    cr_assert_eq(aq_next_deadline_ms(&q, 1800), 1900);
    check_invariants(&q);

    cr_assert_null(aq_expire(&q, 1899, &why));
    /* Both of 1100 go at 1900, oldest (first pushed) first. */
    cr_assert_eq(aq_expire(&q, 1900, &why), &r[1].e);
    cr_assert_eq(why, AQ_DROP_TTL);
    cr_assert_eq(aq_expire(&q, 1900, NULL), &r[2].e);
    cr_assert_null(aq_expire(&q, 1900, &why));
    cr_assert_eq(aq_len(&q), 0);
    cr_assert_eq(aq_next_deadline_ms(&q, 1900), UINT64_MAX);
    aq_destroy(&q);
    free(r);
}

Test(admit_queue, ttl_late_call_drops_everything_due)
{
    struct admit_queue q;
    struct aq_params p = plain(64, 1.0);
    p.ttl_ms = 100;
    init(&q, p);
    struct req *r = reqs_new(40);
    for (int i = 0; i < 40; i++)
        push_ok(&q, &r[i], (uint32_t)(40 - i), 1000 + (uint64_t)i * 5);
    /* At 1250 the entries pushed at 1000..1150 (31 of them) are due. */
    int n = 0;
    struct aq_entry *e;
    while ((e = aq_expire(&q, 1250, NULL)) != NULL) {
        cr_assert_eq(id_of(e), n, "drop %d is entry %d", n, id_of(e));
        n++;
        check_invariants(&q);
    }
    cr_assert_eq(n, 31);
    cr_assert_eq(aq_len(&q), 9);
    cr_assert_eq(aq_next_deadline_ms(&q, 1250), 1255);
    aq_destroy(&q);
    free(r);
}

/* ---- CoDel ---------------------------------------------------------------- */

/* Target 10 ms (slough 20), interval 100 ms, TTL 1000, no aging: the
 * queue is first come first served, so the sojourns are easy to follow. */
static struct aq_params codel_params(void)
{
    struct aq_params p = {
        .capacity = 1024,
        .ttl_ms = 1000,
        .codel_target_ms = 10,
        .codel_interval_ms = 100,
        .aging_per_ms = 0,
    };
    return p;
}

/*
 * One push per ms for t < 150, one pop per ms from t = 50: a queue that
 * stands at ~50 entries, sojourn 50 ms on every pop of the first interval
 * [0, 100).  At 100 the interval is judged overloaded and everything older
 * than 20 ms (entries 50..79) is shed at once; after that each pop waits
 * exactly 20 ms, still above target, so [100, 200) is overloaded too.  The
 * queue is empty from 170 with no pop in [200, 300), so the flag goes off
 * at 300.
 */
Test(admit_queue, codel_sheds_a_standing_queue)
{
    struct admit_queue q;
    init(&q, codel_params());
    struct req *r = reqs_new(150);
    int dropped = 0, popped = 0;
    uint64_t max_sojourn_late = 0;
    for (uint64_t t = 0; t < 400; t++) {
        enum aq_drop_reason why;
        struct aq_entry *e;
        while ((e = aq_expire(&q, t, &why)) != NULL) {
            int id = id_of(e);
            CHECK(t == 100, "entry %d dropped at %llu", id, ULL(t));
            CHECK(why == AQ_DROP_CODEL, "entry %d dropped for TTL", id);
            CHECK(id == 50 + dropped, "drop %d is entry %d", dropped, id);
            CHECK(t - e->enq_ms > 20, "entry %d shed after only %llu ms", id, ULL(t - e->enq_ms));
            dropped++;
        }
        bool want = t >= 100 && t < 300;
        CHECK(aq_overloaded(&q) == want, "overloaded %d at %llu", aq_overloaded(&q), ULL(t));
        if (t < 150)
            push_ok(&q, &r[t], 1, t);
        if (t >= 50 && (e = aq_pop(&q, t)) != NULL) {
            popped++;
            if (t >= 100 && t - e->enq_ms > max_sojourn_late)
                max_sojourn_late = t - e->enq_ms;
            if (t >= 100)
                CHECK(aq_next_deadline_ms(&q, t) == (aq_len(&q) ? t + 2 : UINT64_MAX),
                      "deadline %llu at %llu", ULL(aq_next_deadline_ms(&q, t)), ULL(t));
        }
        check_invariants(&q);
    }
    cr_assert_eq(dropped, 30);
    cr_assert_eq(popped, 120);
    cr_assert_eq(max_sojourn_late, 20, "once shedding, nobody waits past the slough");
    aq_destroy(&q);
    free(r);
}

/*
 * A queue that drains now and then: small requests pushed every 10 ms and
 * popped 1 ms later (sojourn 1 ms < target), plus one huge request that
 * shortest-first keeps at the back.  It waits far past the slough timeout
 * but the queue is not overloaded, so only the TTL drops it, at exactly
 * 1000 ms.
 */
Test(admit_queue, codel_short_queue_sheds_nothing_before_ttl)
{
    struct admit_queue q;
    init(&q, codel_params());
    struct req *r = reqs_new(200);
    struct req *big = &r[199];
    push_ok(&q, big, 1000000, 0);
    int i = 0;
    uint64_t dropped_at = 0;
    for (uint64_t t = 0; t <= 1500; t++) {
        enum aq_drop_reason why;
        struct aq_entry *e;
        while ((e = aq_expire(&q, t, &why)) != NULL) {
            CHECK(e == &big->e, "a small one (%d) dropped at %llu", id_of(e), ULL(t));
            CHECK(why == AQ_DROP_TTL, "big one shed by CoDel at %llu", ULL(t));
            dropped_at = t;
        }
        CHECK(!aq_overloaded(&q), "overloaded at %llu", ULL(t));
        if (t % 10 == 0)
            push_ok(&q, &r[i++], 100, t);
        if (t % 10 == 1) {
            e = aq_pop(&q, t);
            CHECK(e && e != &big->e && t - e->enq_ms == 1, "pop at %llu", ULL(t));
        }
        if (!dropped_at)
            CHECK(aq_next_deadline_ms(&q, t) >= t + 1, "deadline due at %llu", ULL(t));
    }
    cr_assert_eq(dropped_at, 1000);
    aq_destroy(&q);
    free(r);
}

/* With no pop in an interval the oldest entry's age at the boundary is
 * the sample. */
Test(admit_queue, codel_idle_interval_judged_by_oldest_age)
{
    struct admit_queue q;
    enum aq_drop_reason why;
    struct req r[2] = {{.id = 0}, {.id = 1}};

    /* Waiting since 0, nothing served: 100 ms at the boundary > 10. */
    init(&q, codel_params());
    push_ok(&q, &r[0], 5, 0);
    cr_assert_eq(aq_next_deadline_ms(&q, 0), 100, "first boundary");
    cr_assert_null(aq_expire(&q, 99, &why));
    cr_assert(!aq_overloaded(&q));
    cr_assert_eq(aq_expire(&q, 100, &why), &r[0].e);
    cr_assert_eq(why, AQ_DROP_CODEL);
    cr_assert(aq_overloaded(&q));
    aq_destroy(&q);

    /* Arrived 5 ms before the boundary: 5 <= 10, not overloaded. */
    init(&q, codel_params());
    cr_assert_null(aq_expire(&q, 0, &why)); /* starts the intervals at 0 */
    push_ok(&q, &r[0], 5, 95);
    cr_assert_eq(aq_next_deadline_ms(&q, 95), 116, "slough passes after the boundary");
    cr_assert_null(aq_expire(&q, 100, &why));
    cr_assert(!aq_overloaded(&q));
    /* The next boundary, 200: age 105, overloaded, shed there. */
    cr_assert_eq(aq_next_deadline_ms(&q, 100), 200);
    cr_assert_null(aq_expire(&q, 199, &why));
    cr_assert_eq(aq_expire(&q, 200, &why), &r[0].e);
    cr_assert_eq(why, AQ_DROP_CODEL);
    aq_destroy(&q);

    /* Exactly at target is not above it: push at 90, boundary at 100. */
    init(&q, codel_params());
    cr_assert_null(aq_expire(&q, 0, &why));
    push_ok(&q, &r[0], 5, 90);
    cr_assert_null(aq_expire(&q, 100, &why));
    cr_assert(!aq_overloaded(&q));
    aq_destroy(&q);

    /* A late call judges the last boundary passed, from the queue as it
     * was: push at 0, first call after at 350 (boundaries 100, 200, 300). */
    init(&q, codel_params());
    push_ok(&q, &r[0], 5, 0);
    push_ok(&q, &r[1], 5, 345); /* boundary 300 is judged now: r0 was 300 ms old */
    cr_assert(aq_overloaded(&q));
    cr_assert_eq(aq_expire(&q, 350, &why), &r[0].e);
    cr_assert_eq(why, AQ_DROP_CODEL);
    cr_assert_null(aq_expire(&q, 350, &why), "5 ms old");
    aq_destroy(&q);

    /* A slow pop in [0, 100), then silence until 1050: only the last
     * boundary passed (1000, no pop before it, queue empty) counts, and
     * intervals stay aligned to the first call. */
    init(&q, codel_params());
    push_ok(&q, &r[0], 5, 0);
    cr_assert_eq(aq_pop(&q, 60), &r[0].e); /* sojourn 60 */
    push_ok(&q, &r[0], 5, 1050);
    cr_assert(!aq_overloaded(&q));
    cr_assert_eq(q.interval_end_ms, 1100);
    aq_destroy(&q);

    /* Overloaded, then idle and empty for several intervals: off again. */
    init(&q, codel_params());
    push_ok(&q, &r[0], 5, 0);
    cr_assert_eq(aq_pop(&q, 60), &r[0].e); /* sojourn 60 */
    cr_assert_null(aq_expire(&q, 100, &why));
    cr_assert(aq_overloaded(&q));
    push_ok(&q, &r[0], 5, 1000);
    cr_assert(!aq_overloaded(&q));
    aq_destroy(&q);
}

/* A pop with a short sojourn during the interval keeps it healthy even if
 * another entry is old at the boundary. */
Test(admit_queue, codel_min_sojourn_not_the_max)
{
    struct admit_queue q;
    enum aq_drop_reason why;
    struct req *r = reqs_new(3);
    init(&q, codel_params());
    push_ok(&q, &r[0], 900, 0); /* stays: big */
    push_ok(&q, &r[1], 1, 50);  /* served at 52: sojourn 2 */
    cr_assert_eq(aq_pop(&q, 52), &r[1].e);
    push_ok(&q, &r[2], 1, 60); /* served at 99: sojourn 39 */
    cr_assert_eq(aq_pop(&q, 99), &r[2].e);
    cr_assert_null(aq_expire(&q, 100, &why));
    cr_assert(!aq_overloaded(&q), "min 2 <= 10");
    cr_assert(aq_queued(&r[0].e));
    /* [100, 200): no pop, r0 is 200 ms old at 200: overloaded and shed. */
    cr_assert_eq(aq_next_deadline_ms(&q, 100), 200);
    cr_assert_eq(aq_expire(&q, 200, &why), &r[0].e);
    cr_assert_eq(why, AQ_DROP_CODEL);
    aq_destroy(&q);
    free(r);
}

/* A dropped entry was dequeued too (as in folly): an interval whose only
 * departures were drops, with the queue empty at its end, is overloaded. */
Test(admit_queue, codel_drops_are_samples)
{
    struct admit_queue q;
    struct aq_params p = codel_params();
    p.ttl_ms = 50;
    init(&q, p);
    struct req r = {.id = 0};
    enum aq_drop_reason why;
    push_ok(&q, &r, 1, 0);
    cr_assert_eq(aq_expire(&q, 50, &why), &r.e);
    cr_assert_eq(why, AQ_DROP_TTL);
    cr_assert_null(aq_expire(&q, 100, &why));
    cr_assert(aq_overloaded(&q), "the drop's 50 ms is the interval's sample");
    /* Removal (client gone) is not a sample: [100, 200) had none, and the
     * queue is empty at 200. */
    push_ok(&q, &r, 1, 110);
    aq_remove(&q, &r.e);
    cr_assert_null(aq_expire(&q, 200, &why));
    cr_assert(!aq_overloaded(&q));
    aq_destroy(&q);
}

Test(admit_queue, ttl_wins_over_codel)
{
    struct admit_queue q;
    struct aq_params p = codel_params();
    p.ttl_ms = 15; /* below the slough timeout */
    init(&q, p);
    struct req r = {.id = 0};
    enum aq_drop_reason why = AQ_DROP_CODEL;
    push_ok(&q, &r, 1, 0);
    cr_assert_eq(aq_next_deadline_ms(&q, 0), 15);
    cr_assert_null(aq_expire(&q, 14, &why));
    cr_assert_eq(aq_expire(&q, 15, &why), &r.e);
    cr_assert_eq(why, AQ_DROP_TTL);
    aq_destroy(&q);
}

/* ---- removal, capacity, time ---------------------------------------------- */

Test(admit_queue, remove_head_middle_last)
{
    enum { N = 31 };
    struct admit_queue q;
    init(&q, plain(N, 0));
    struct req *r = reqs_new(N);
    /* Costs in a scrambled order so the heap is not trivially sorted. */
    for (int i = 0; i < N; i++)
        push_ok(&q, &r[i], (uint32_t)((i * 17) % N), 10);
    check_invariants(&q);

    struct aq_entry *head = aq_peek(&q);
    aq_remove(&q, head);
    cr_assert(!aq_queued(head));
    check_invariants(&q);

    struct aq_entry *last = q.heap[q.n];
    aq_remove(&q, last);
    cr_assert(!aq_queued(last));
    check_invariants(&q);

    struct aq_entry *mid = q.heap[q.n / 2];
    aq_remove(&q, mid);
    check_invariants(&q);

    /* The oldest (head of the arrival list) too. */
    struct aq_entry *old = container_of(q.by_age.next, struct aq_entry, age_node);
    aq_remove(&q, old);
    aq_remove(&q, old); /* twice: no-op */
    check_invariants(&q);

    cr_assert_eq(aq_len(&q), N - 4);
    uint32_t prev = 0;
    uint32_t n = aq_len(&q);
    for (uint32_t i = 0; i < n; i++) {
        struct aq_entry *e = aq_pop(&q, 10);
        cr_assert(e != head && e != last && e != mid && e != old);
        cr_assert_geq(e->cost, prev);
        prev = e->cost;
    }
    cr_assert_null(aq_pop(&q, 10));
    aq_destroy(&q);
    free(r);
}

Test(admit_queue, capacity_and_double_push)
{
    struct admit_queue q;
    init(&q, plain(3, 0));
    struct req *r = reqs_new(5);
    push_ok(&q, &r[0], 3, 1);
    push_ok(&q, &r[1], 2, 1);
    push_ok(&q, &r[2], 1, 1);
    cr_assert_eq(aq_push(&q, &r[3].e, 0, 2), -ENOSPC);
    cr_assert(!aq_queued(&r[3].e));
    cr_assert_eq(aq_len(&q), 3);
    cr_assert_eq(aq_push(&q, &r[1].e, 2, 2), -EBUSY, "already queued");
    check_invariants(&q);

    cr_assert_eq(aq_pop(&q, 3), &r[2].e);
    push_ok(&q, &r[3], 0, 3);
    cr_assert_eq(aq_pop(&q, 3), &r[3].e);
    /* A popped entry can be pushed again. */
    push_ok(&q, &r[2], 1, 4);
    cr_assert_eq(aq_len(&q), 3);
    cr_assert_eq(aq_push(&q, &r[4].e, 0, 4), -ENOSPC);
    check_invariants(&q);
    aq_destroy(&q);
    free(r);
}

Test(admit_queue, time_never_goes_backwards)
{
    struct admit_queue q;
    struct aq_params p = plain(4, 1.0);
    p.ttl_ms = 100;
    init(&q, p);
    struct req r[2] = {{.id = 0}, {.id = 1}};
    push_ok(&q, &r[0], 50, 1000);
    push_ok(&q, &r[1], 10, 900); /* counts as 1000 */
    cr_assert_eq(r[1].e.enq_ms, 1000);
    check_invariants(&q);
    cr_assert_null(aq_expire(&q, 50, NULL));
    cr_assert_eq(aq_next_deadline_ms(&q, 0), 1100);
    cr_assert_eq(aq_pop(&q, 10), &r[1].e);
    cr_assert_null(aq_expire(&q, 1099, NULL));
    cr_assert_eq(aq_expire(&q, 1100, NULL), &r[0].e);
    aq_destroy(&q);
}

Test(admit_queue, next_deadline)
{
    struct admit_queue q;
    struct aq_params p = plain(8, 0);
    p.ttl_ms = 800;
    init(&q, p);
    struct req *r = reqs_new(3);
    cr_assert_eq(aq_next_deadline_ms(&q, 0), UINT64_MAX);
    push_ok(&q, &r[0], 9, 1000);
    push_ok(&q, &r[1], 1, 1500);
    cr_assert_eq(aq_next_deadline_ms(&q, 1500), 1800);
    cr_assert_eq(aq_next_deadline_ms(&q, 2500), 1800, "<= now when overdue");
    /* Popping the cheap one leaves the oldest. */
    cr_assert_eq(aq_pop(&q, 1501), &r[1].e);
    cr_assert_eq(aq_next_deadline_ms(&q, 1501), 1800);
    push_ok(&q, &r[1], 1, 1600);
    aq_remove(&q, &r[0].e);
    cr_assert_eq(aq_next_deadline_ms(&q, 1600), 2400);
    aq_remove(&q, &r[1].e);
    cr_assert_eq(aq_next_deadline_ms(&q, 1600), UINT64_MAX);
    aq_destroy(&q);

    /* CoDel on, not overloaded: the next boundary or the slough timeout,
     * whichever is later, unless the TTL comes first. */
    p = codel_params();
    init(&q, p);
    push_ok(&q, &r[0], 1, 0); /* intervals start at 0 */
    cr_assert_eq(aq_next_deadline_ms(&q, 0), 100);
    /* At 150 boundary 100 has passed unjudged: the view judges it (age 100,
     * overloaded), so the entry is due for shedding already. */
    cr_assert_eq(aq_next_deadline_ms(&q, 150), 21);
    cr_assert(!aq_overloaded(&q), "the view does not change the queue");
    aq_remove(&q, &r[0].e);
    push_ok(&q, &r[0], 1, 90);
    cr_assert_eq(aq_next_deadline_ms(&q, 90), 111);
    aq_destroy(&q);
    free(r);
}

/* Far from the epoch the aging term would overflow; the queue moves its
 * epoch up to the oldest entry, and order stays exact. */
Test(admit_queue, keys_rebased_far_from_the_epoch)
{
    struct admit_queue q;
    init(&q, plain(8, AQ_AGING_MAX)); /* 2^30 fixed point: limit 2^32 ms */
    struct req *r = reqs_new(6);
    const uint64_t T = UINT64_C(1) << 40;
    push_ok(&q, &r[0], 0, 0);
    cr_assert_eq(aq_pop(&q, 1), &r[0].e);
    push_ok(&q, &r[1], 1000, T); /* empty: epoch T */
    cr_assert_eq(q.epoch_ms, T);
    cr_assert_eq(r[1].e.key, UINT64_C(1000) << 16);
    push_ok(&q, &r[2], 0, T + (UINT64_C(1) << 31));
    cr_assert_eq(r[2].e.key, UINT64_C(1) << 61);
    cr_assert_eq(aq_pop(&q, T + (UINT64_C(1) << 31) + 1), &r[1].e, "waited 2^31 ms");
    /* 2^32 + 5 ms after the epoch: rebased to r2. */
    uint64_t t = T + (UINT64_C(1) << 32) + 5;
    push_ok(&q, &r[3], 7, t);
    cr_assert_eq(q.epoch_ms, T + (UINT64_C(1) << 31));
    cr_assert_eq(r[2].e.key, 0);
    cr_assert_eq(r[3].e.key, (UINT64_C(7) << 16) + (((UINT64_C(1) << 31) + 5) << 30));
    push_ok(&q, &r[4], 6, t);
    check_invariants(&q);
    cr_assert_eq(aq_pop(&q, t), &r[2].e);
    cr_assert_eq(aq_pop(&q, t), &r[4].e);
    cr_assert_eq(aq_pop(&q, t), &r[3].e);
    aq_destroy(&q);

    /* Nobody calls aq_expire and the oldest stays queued 2^33 ms: keys are
     * clamped, still ordered by arrival, still below 2^63. */
    init(&q, plain(8, AQ_AGING_MAX));
    push_ok(&q, &r[0], 0, 0);
    push_ok(&q, &r[1], 0, UINT64_C(1) << 33);
    push_ok(&q, &r[2], 0, UINT64_C(1) << 34);
    check_invariants(&q);
    cr_assert_eq(aq_pop(&q, UINT64_C(1) << 34), &r[0].e);
    cr_assert_eq(aq_pop(&q, UINT64_C(1) << 34), &r[1].e);
    cr_assert_eq(aq_pop(&q, UINT64_C(1) << 34), &r[2].e);
    aq_destroy(&q);
    free(r);
}

/* ---- randomized ----------------------------------------------------------- */

static uint64_t rs;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#define RN   600
#define RCAP 256
#define RAGE 3 /* integer aging, so the model's priority is exact */

struct mreq {
    struct aq_entry e;
    int id;
    bool in;
    uint32_t cost;
    uint64_t enq;
    uint64_t order; /* arrival number */
};

/* The model's best entry: least cost + RAGE * enq, then earliest. */
static struct mreq *model_best(struct mreq *m)
{
    struct mreq *best = NULL;
    for (int i = 0; i < RN; i++) {
        if (!m[i].in)
            continue;
        if (!best)
            best = &m[i];
        else {
            uint64_t a = m[i].cost + RAGE * m[i].enq, b = best->cost + RAGE * best->enq;
            if (a < b || (a == b && m[i].order < best->order))
                best = &m[i];
        }
    }
    return best;
}

static struct mreq *model_oldest(struct mreq *m)
{
    struct mreq *o = NULL;
    for (int i = 0; i < RN; i++)
        if (m[i].in && (!o || m[i].order < o->order))
            o = &m[i];
    return o;
}

static void run_model(uint64_t seed, int ops)
{
    rs = seed;
    struct mreq *m = calloc(RN, sizeof *m);
    cr_assert_not_null(m);
    for (int i = 0; i < RN; i++)
        m[i].id = i;
    struct admit_queue q;
    struct aq_params p = plain(RCAP, RAGE);
    p.ttl_ms = 300;
    init(&q, p);
    uint64_t now = 1000, order = 0;
    uint32_t count = 0;
    for (int op = 0; op < ops; op++) {
        now += rnd() % 4;
        if (rnd() % 200 == 0)
            now += rnd() % 400;
        unsigned k = (unsigned)(rnd() % 10);
        if (k < 4) { /* push */
            struct mreq *x = &m[rnd() % RN];
            uint32_t cost = (uint32_t)(rnd() % 8) * 100;
            int rc = aq_push(&q, &x->e, cost, now);
            if (x->in) {
                CHECK(rc == -EBUSY, "op %d: push of a queued entry: %d", op, rc);
            } else if (count == RCAP) {
                CHECK(rc == -ENOSPC, "op %d: push on full: %d", op, rc);
                CHECK(!aq_queued(&x->e), "op %d: refused entry queued", op);
            } else {
                CHECK(rc == 0, "op %d: push: %d", op, rc);
                x->in = true;
                x->cost = cost;
                x->enq = now;
                x->order = order++;
                count++;
            }
        } else if (k < 6) { /* pop */
            struct mreq *want = model_best(m);
            struct aq_entry *got = aq_pop(&q, now);
            CHECK(got == (want ? &want->e : NULL), "op %d: popped %d, model says %d", op,
                  id_of(got), want ? want->id : -1);
            if (want) {
                want->in = false;
                count--;
            }
        } else if (k < 8) { /* remove any entry, queued or not */
            struct mreq *x = &m[rnd() % RN];
            aq_remove(&q, &x->e);
            if (x->in) {
                x->in = false;
                count--;
            }
            CHECK(!aq_queued(&x->e), "op %d: removed entry still queued", op);
        } else { /* drain expired */
            for (;;) {
                struct mreq *o = model_oldest(m);
                struct mreq *want = o && now - o->enq >= p.ttl_ms ? o : NULL;
                enum aq_drop_reason why = AQ_DROP_CODEL;
                struct aq_entry *got = aq_expire(&q, now, &why);
                CHECK(got == (want ? &want->e : NULL), "op %d: expired %d, model says %d", op,
                      id_of(got), want ? want->id : -1);
                if (!want)
                    break;
                CHECK(why == AQ_DROP_TTL, "op %d: reason %d", op, why);
                want->in = false;
                count--;
            }
            struct mreq *o = model_oldest(m);
            CHECK(aq_next_deadline_ms(&q, now) == (o ? o->enq + p.ttl_ms : UINT64_MAX),
                  "op %d: deadline", op);
        }
        CHECK(aq_len(&q) == count, "op %d: len %u, model %u", op, aq_len(&q), count);
        struct mreq *best = model_best(m);
        CHECK(aq_peek(&q) == (best ? &best->e : NULL), "op %d: peek", op);
        check_invariants(&q);
    }
    aq_destroy(&q);
    free(m);
}

Test(admit_queue, randomized_against_model)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_model(seed * 0x9e3779b97f4a7c15ull, 5000);
}

/*
 * CoDel on, the clock stepped 1 ms at a time with bursts of arrivals and
 * uneven service: every drop is justified (TTL reached, or overloaded and
 * past the slough timeout), the oldest goes first, and the deadline given
 * after each step is never late: nothing is dropped before it, and
 * something is dropped at it unless the flag could have turned off.
 */
Test(admit_queue, randomized_codel_deadlines)
{
    enum { M = 400 };
    rs = 0x2545f4914f6cdd1dull;
    struct req *r = reqs_new(M);
    struct admit_queue q;
    struct aq_params p = {
        .capacity = 128,
        .ttl_ms = 300,
        .codel_target_ms = 15,
        .codel_interval_ms = 60,
        .aging_per_ms = 4.0,
    };
    init(&q, p);
    uint64_t deadline = UINT64_MAX;
    int ttl_drops = 0, codel_drops = 0, pops = 0;
    bool was_overloaded = false;
    int turned_off = 0;
    for (uint64_t t = 1; t < 20000; t++) {
        /* Load comes in waves: arrivals outpace service for a while. */
        bool heavy = (t / 1500) % 2 == 1;
        enum aq_drop_reason why;
        struct aq_entry *e;
        int dropped = 0;
        while ((e = aq_expire(&q, t, &why)) != NULL) {
            uint64_t age = t - e->enq_ms;
            CHECK(t >= deadline, "dropped at %llu before the deadline %llu", ULL(t), ULL(deadline));
            if (why == AQ_DROP_TTL) {
                CHECK(age >= p.ttl_ms, "TTL drop at age %llu", ULL(age));
                ttl_drops++;
            } else {
                CHECK(why == AQ_DROP_CODEL, "reason %d", why);
                CHECK(aq_overloaded(&q), "shed while not overloaded");
                CHECK(age > 2 * p.codel_target_ms && age < p.ttl_ms, "shed at age %llu", ULL(age));
                codel_drops++;
            }
            const struct aq_entry *o =
                aq_len(&q) ? container_of(q.by_age.next, struct aq_entry, age_node) : NULL;
            CHECK(!o || o->enq_ms >= e->enq_ms, "a younger entry dropped first");
            dropped++;
        }
        if (aq_overloaded(&q))
            was_overloaded = true;
        else if (was_overloaded && !heavy)
            turned_off++;
        int arrivals = heavy ? (int)(rnd() % 4) : rnd() % 4 == 0;
        for (int a = 0; a < arrivals; a++) {
            struct req *x = &r[rnd() % M];
            if (aq_queued(&x->e))
                continue;
            int rc = aq_push(&q, &x->e, (uint32_t)(rnd() % 1000), t);
            CHECK(rc == 0 || (rc == -ENOSPC && aq_len(&q) == p.capacity), "push: %d", rc);
        }
        if (rnd() % 2 == 0 && aq_pop(&q, t))
            pops++;
        if (rnd() % 50 == 0 && aq_len(&q))
            aq_remove(&q, q.heap[1 + rnd() % aq_len(&q)]);
        check_invariants(&q);
        deadline = aq_next_deadline_ms(&q, t);
        CHECK(deadline > t, "deadline %llu not after %llu once drained", ULL(deadline), ULL(t));
    }
    cr_assert(was_overloaded, "the heavy waves never overloaded the queue");
    cr_assert_gt(turned_off, 0, "the light waves never cleared the flag");
    cr_assert_gt(codel_drops, 0);
    cr_assert_gt(pops, 1000);
    (void)ttl_drops;
    aq_destroy(&q);
    free(r);
}
