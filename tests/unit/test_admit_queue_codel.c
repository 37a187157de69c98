/*
 * Unit tests for dataplane/admit_queue, part two: CoDel (a standing queue
 * is shed down to the slough timeout and the overloaded flag turns on and
 * off; a queue that drains sheds nothing before the TTL; an interval
 * without pops is judged by the oldest entry's age; TTL wins over CoDel),
 * and randomized runs against a reference model with the heap and list
 * invariants checked after every operation.  Part one is
 * test_admit_queue.c.
 */
#include "tests/unit/admit_queue_fixture.h"

/* ---- CoDel ---------------------------------------------------------------- */

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
