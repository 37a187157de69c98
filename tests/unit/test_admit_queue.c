/*
 * Unit tests for dataplane/admit_queue: shortest-first order, first come
 * first served among equal costs, aging (the exact moment a big request
 * overtakes small ones, and the bound it puts on starvation under a stream
 * of small requests that never ends), TTL drops at exactly ttl_ms, removal
 * of any entry, capacity, aq_next_deadline_ms, time going backwards, keys
 * rebased far from the epoch and empty-queue cases.  CoDel and the
 * randomized runs against a model are in test_admit_queue_codel.c.
 */
#include "tests/unit/admit_queue_fixture.h"

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
