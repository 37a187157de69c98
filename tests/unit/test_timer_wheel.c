/*
 * Unit tests for dataplane/timer_wheel: entries fire at (never before)
 * their expiry and within one tick after it, deadlines pushed later or
 * earlier, cancel, entries more than one revolution ahead, callbacks that
 * re-arm or cancel (themselves, an entry due in the same tick, an entry
 * later in the same slot), tw_timeout_ms, and a randomized comparison with
 * a reference list of deadlines.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/timer_wheel.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

#define REV  ((uint64_t)TW_SLOTS * TW_TICK_MS) /* one revolution in ms */
#define MAXT 64

struct tmr {
    struct tw_entry e; /* first: the callback casts back */
    int id;
    int fired;
    uint64_t fired_at;
    /* what the callback does */
    uint64_t rearm_in; /* re-arm at now + rearm_in, rearm_times times */
    int rearm_times;
    struct tmr *cancel; /* cancel this one */
    struct tmr *push;   /* re-arm this one at push_to */
    uint64_t push_to;
};

struct ctx {
    struct timer_wheel *w;
    uint64_t now;
    int nfired;
    int order[MAXT];
};

static void on_fire(struct tw_entry *e, void *arg)
{
    struct ctx *c = arg;
    struct tmr *t = (struct tmr *)e;
    CHECK(!tw_linked(e), "entry %d linked inside its callback", t->id);
    t->fired++;
    t->fired_at = c->now;
    if (c->nfired < MAXT)
        c->order[c->nfired] = t->id;
    c->nfired++;
    if (t->cancel)
        tw_cancel(c->w, &t->cancel->e);
    if (t->push)
        tw_set(c->w, &t->push->e, t->push_to);
    if (t->rearm_times > 0) {
        t->rearm_times--;
        tw_set(c->w, e, c->now + t->rearm_in);
    }
}

static void advance(struct ctx *c, uint64_t now)
{
    c->now = now;
    tw_advance(c->w, now, on_fire, c);
}

/* Steps the clock 1 ms at a time from <from> to <to> inclusive. */
static void step_to(struct ctx *c, uint64_t from, uint64_t to)
{
    for (uint64_t t = from; t <= to; t++)
        advance(c, t);
}

static void tmr_init(struct tmr *t, int id)
{
    memset(t, 0, sizeof *t);
    t->id = id;
}

/* One entry armed at <set_at> for <expires>, clock stepped by 1 ms: it
 * fires exactly once, not before its expiry, at most one tick after. */
static void fire_window(uint64_t start, uint64_t expires)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, start);
    advance(&c, start);
    struct tmr t;
    tmr_init(&t, 1);
    tw_set(&w, &t.e, expires);
    cr_assert(tw_linked(&t.e));
    cr_assert_eq(w.count, 1);
    uint64_t due = expires > start ? expires : start;
    step_to(&c, start + 1, due + 2 * TW_TICK_MS);
    cr_assert_eq(t.fired, 1, "expires %llu (from %llu): fired %d times",
                 (unsigned long long)expires, (unsigned long long)start, t.fired);
    cr_assert_geq(t.fired_at, expires, "expires %llu fired early at %llu (armed at %llu)",
                  (unsigned long long)expires, (unsigned long long)t.fired_at,
                  (unsigned long long)start);
    cr_assert_leq(t.fired_at, due + TW_TICK_MS, "expires %llu fired late at %llu",
                  (unsigned long long)expires, (unsigned long long)t.fired_at);
    cr_assert(!tw_linked(&t.e));
    cr_assert_eq(w.count, 0);
}

Test(timer_wheel, fires_at_tick_aligned_expiry)
{
    for (uint64_t d = 0; d <= 5 * TW_TICK_MS; d += TW_TICK_MS) {
        fire_window(8000, 8000 + d);
        fire_window(8003, 8008 + d);
    }
    fire_window(8000, 8000 + 100 * TW_TICK_MS);
}

/* The header: "Fires every entry due at <now_ms>"; an entry whose expiry is
 * not a multiple of the tick must not fire before it either. */
Test(timer_wheel, never_fires_before_expiry)
{
    for (uint64_t d = 1; d <= 3 * TW_TICK_MS; d++)
        fire_window(8000, 8000 + d);
    for (uint64_t d = 1; d <= 3 * TW_TICK_MS; d++)
        fire_window(8005, 8005 + d);
}

Test(timer_wheel, already_due_fires_within_a_tick)
{
    fire_window(8000, 8000);
    fire_window(8005, 8001);
    fire_window(8005, 10);
    fire_window(8007, 0);
}

Test(timer_wheel, push_later_fires_at_later_time)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 1000);
    struct tmr t;
    tmr_init(&t, 1);
    tw_set(&w, &t.e, 1096);
    step_to(&c, 1000, 1050);
    tw_set(&w, &t.e, 1496); /* activity: pushed later */
    cr_assert_eq(w.count, 1);
    step_to(&c, 1051, 1495);
    cr_assert_eq(t.fired, 0, "fired at the old deadline");
    cr_assert(tw_linked(&t.e));
    step_to(&c, 1496, 1600);
    cr_assert_eq(t.fired, 1);
    cr_assert_eq(t.fired_at, 1496);
    /* pushed later by more than a revolution, repeatedly */
    tw_set(&w, &t.e, 1600 + REV + 8);
    step_to(&c, 1601, 1600 + REV / 2);
    tw_set(&w, &t.e, 1600 + 2 * REV + 16);
    step_to(&c, 1600 + REV / 2 + 1, 1600 + 2 * REV + 15);
    cr_assert_eq(t.fired, 1);
    advance(&c, 1600 + 2 * REV + 16);
    cr_assert_eq(t.fired, 2);
    cr_assert_eq(w.count, 0);
}

Test(timer_wheel, earlier_deadline_relinks)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 1000);
    struct tmr t;
    tmr_init(&t, 1);
    tw_set(&w, &t.e, 6000);
    tw_set(&w, &t.e, 1040);
    cr_assert_eq(w.count, 1, "relinked, not linked twice");
    step_to(&c, 1000, 1039);
    cr_assert_eq(t.fired, 0);
    advance(&c, 1040);
    cr_assert_eq(t.fired, 1);
    step_to(&c, 1041, 7000);
    cr_assert_eq(t.fired, 1, "nothing left at the old deadline");
    /* earlier by more than a revolution */
    tw_set(&w, &t.e, 7000 + 3 * REV);
    tw_set(&w, &t.e, 7000 + 80);
    step_to(&c, 7001, 7079);
    cr_assert_eq(t.fired, 1);
    advance(&c, 7080);
    cr_assert_eq(t.fired, 2);
    cr_assert_eq(w.count, 0);
}

Test(timer_wheel, cancel)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 0);
    struct tmr a, b, d;
    tmr_init(&a, 1);
    tmr_init(&b, 2);
    tmr_init(&d, 3);
    tw_cancel(&w, &a.e); /* never armed: no-op */
    cr_assert_eq(w.count, 0);
    tw_set(&w, &a.e, 80);
    tw_set(&w, &b.e, 80);
    tw_set(&w, &d.e, 80);
    cr_assert_eq(w.count, 3);
    tw_cancel(&w, &b.e); /* the middle of a slot's list */
    cr_assert(!tw_linked(&b.e));
    cr_assert_eq(w.count, 2);
    tw_cancel(&w, &b.e); /* twice: no-op */
    cr_assert_eq(w.count, 2);
    step_to(&c, 0, 200);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(b.fired, 0);
    cr_assert_eq(d.fired, 1);
    /* cancel after a push-later (still in its old slot) */
    tw_set(&w, &a.e, 300);
    tw_set(&w, &a.e, 500);
    tw_cancel(&w, &a.e);
    cr_assert_eq(w.count, 0);
    step_to(&c, 201, 700);
    cr_assert_eq(a.fired, 1);
}

Test(timer_wheel, beyond_one_revolution)
{
    static const uint64_t ahead[] = {REV, REV + TW_TICK_MS, 2 * REV, 3 * REV + 5 * TW_TICK_MS,
                                     REV - TW_TICK_MS};
    for (size_t i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
        struct timer_wheel w;
        struct ctx c = {.w = &w};
        tw_init(&w, 4000);
        struct tmr t, near;
        tmr_init(&t, 1);
        tmr_init(&near, 2);
        tw_set(&w, &t.e, 4000 + ahead[i]);
        tw_set(&w, &near.e, 4000 + 16); /* keeps the wheel busy early on */
        step_to(&c, 4000, 4000 + ahead[i] - 1);
        cr_assert_eq(near.fired, 1);
        cr_assert_eq(t.fired, 0, "%llu ms ahead fired a revolution early",
                     (unsigned long long)ahead[i]);
        advance(&c, 4000 + ahead[i]);
        cr_assert_eq(t.fired, 1, "%llu ms ahead", (unsigned long long)ahead[i]);
        cr_assert_eq(w.count, 0);
    }
}

Test(timer_wheel, big_jump_fires_everything_due)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 0);
    struct tmr t[10];
    for (int i = 0; i < 10; i++) {
        tmr_init(&t[i], i);
        tw_set(&w, &t[i].e, (uint64_t)(i + 1) * REV / 2);
    }
    advance(&c, 3 * REV - 1); /* one call, many revolutions */
    for (int i = 0; i < 10; i++) {
        uint64_t exp = (uint64_t)(i + 1) * REV / 2;
        cr_assert_eq(t[i].fired, exp <= 3 * REV - 1, "entry at %llu", (unsigned long long)exp);
    }
    advance(&c, 5 * REV);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(t[i].fired, 1);
    /* fired in deadline order */
    for (int i = 1; i < c.nfired; i++)
        cr_assert_lt(c.order[i - 1], c.order[i]);
    cr_assert_eq(w.count, 0);
}

Test(timer_wheel, callback_rearms_itself)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 0);
    struct tmr t;
    tmr_init(&t, 1);
    t.rearm_in = 40;
    t.rearm_times = 4;
    tw_set(&w, &t.e, 40);
    uint64_t last = 0;
    int seen = 0;
    for (uint64_t now = 0; now <= 400; now++) {
        advance(&c, now);
        if (t.fired != seen) {
            cr_assert_eq(t.fired, seen + 1, "one fire per call");
            cr_assert_eq(now, last + 40, "period kept");
            last = now;
            seen = t.fired;
        }
    }
    cr_assert_eq(t.fired, 5);
    cr_assert(!tw_linked(&t.e));

    /* re-armed for "now" from its callback: fires again at the next tick,
     * not in a loop inside the same call */
    tmr_init(&t, 2);
    t.rearm_in = 0;
    t.rearm_times = 1;
    tw_set(&w, &t.e, 800);
    advance(&c, 800);
    cr_assert_eq(t.fired, 1);
    cr_assert(tw_linked(&t.e), "re-armed by its callback");
    advance(&c, 800);
    cr_assert_eq(t.fired, 1, "an entry re-armed late does not fire twice in a call");
    advance(&c, 800 + TW_TICK_MS);
    cr_assert_eq(t.fired, 2);
}

Test(timer_wheel, callback_cancels_entry_due_in_same_tick)
{
    /* which of the two runs first is the wheel's business: both ways */
    for (int first = 0; first < 2; first++) {
        struct timer_wheel w;
        struct ctx c = {.w = &w};
        tw_init(&w, 0);
        struct tmr a, b;
        tmr_init(&a, 1);
        tmr_init(&b, 2);
        a.cancel = &b;
        b.cancel = &a;
        if (first) {
            tw_set(&w, &a.e, 160);
            tw_set(&w, &b.e, 160);
        } else {
            tw_set(&w, &b.e, 160);
            tw_set(&w, &a.e, 160);
        }
        step_to(&c, 0, 400);
        cr_assert_eq(a.fired + b.fired, 1, "exactly one of two fires");
        cr_assert_eq(w.count, 0);
        cr_assert(!tw_linked(&a.e) && !tw_linked(&b.e));
    }
}

Test(timer_wheel, callback_cancels_entries_later_in_slot)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 0);
    struct tmr a, later_rev, same, other;
    tmr_init(&a, 1);
    tmr_init(&later_rev, 2);
    tmr_init(&same, 3);
    tmr_init(&other, 4);
    /* all in the same slot; each of a's victims both before and after it in
     * the slot's list across the two halves of the test */
    tw_set(&w, &later_rev.e, 160 + REV);
    tw_set(&w, &other.e, 160);
    tw_set(&w, &a.e, 160);
    tw_set(&w, &same.e, 160);
    a.cancel = &later_rev;
    other.cancel = &same; /* `same` is due in the same tick too */
    same.cancel = &other;
    step_to(&c, 0, 200);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(same.fired + other.fired, 1);
    cr_assert(!tw_linked(&later_rev.e), "entry of a later revolution cancelled");
    cr_assert_eq(w.count, 0);
    step_to(&c, 201, 200 + REV);
    cr_assert_eq(later_rev.fired, 0);

    /* a callback that pushes other entries of its own slot later: each ends
     * up firing at its new time, whether or not it ran before the pusher */
    const uint64_t T = 208 + 2 * REV;
    struct tmr pusher, b;
    tmr_init(&a, 1);
    tmr_init(&b, 2);
    tmr_init(&pusher, 5);
    tw_set(&w, &a.e, T);
    tw_set(&w, &pusher.e, T);
    tw_set(&w, &b.e, T);
    pusher.push = &a;
    pusher.push_to = T + 96; /* tick-aligned: see never_fires_before_expiry */
    /* b is pushed by a's callback when a fires first, by itself otherwise */
    a.push = &b;
    a.push_to = T + 200;
    step_to(&c, 201 + REV, T - 1);
    cr_assert_eq(a.fired + b.fired + pusher.fired, 0);
    advance(&c, T);
    cr_assert_eq(pusher.fired, 1);
    step_to(&c, T + 1, T + 95);
    cr_assert(tw_linked(&a.e));
    advance(&c, T + 96);
    cr_assert_eq(a.fired_at, T + 96, "a fired last at %llu", (unsigned long long)a.fired_at);
    cr_assert_leq(a.fired, 2);
    step_to(&c, T + 97, T + 300);
    cr_assert_eq(b.fired_at, T + 200, "b fired last at %llu", (unsigned long long)b.fired_at);
    cr_assert_eq(w.count, 0);
}

Test(timer_wheel, timeout_bounds)
{
    struct timer_wheel w;
    struct ctx c = {.w = &w};
    tw_init(&w, 8000);
    advance(&c, 8000);
    cr_assert_eq(tw_timeout_ms(&w, 8000, 1000), 1000, "empty wheel: the cap");
    struct tmr t;
    tmr_init(&t, 1);
    tw_set(&w, &t.e, 8000 + 96);
    cr_assert_eq(tw_timeout_ms(&w, 8000, 1000), 96);
    cr_assert_eq(tw_timeout_ms(&w, 8000, 50), 50, "never more than the cap");
    cr_assert_eq(tw_timeout_ms(&w, 8001, 1000), 95);
    tw_cancel(&w, &t.e);
    tw_set(&w, &t.e, 8000 + 5000);
    cr_assert_eq(tw_timeout_ms(&w, 8000, 1000), 1000, "due after the cap");
    tw_cancel(&w, &t.e);
    tw_set(&w, &t.e, 8000 + 3 * REV);
    uint64_t to = tw_timeout_ms(&w, 8000, 10 * REV);
    cr_assert_leq(to, 3 * REV, "a later revolution: wake no later than its time");
    cr_assert_gt(to, 0);
    tw_cancel(&w, &t.e);

    /* overdue: the loop must not sleep */
    tw_set(&w, &t.e, 8010);
    cr_assert_eq(tw_timeout_ms(&w, 8100, 1000), 0);

    /* sleeping exactly the returned time never misses an entry and never
     * wakes to nothing: walk a few deadlines by timeouts alone */
    tw_cancel(&w, &t.e);
    struct tmr e[4];
    static const uint64_t at[] = {8120, 8200, 9000, 8200 + REV};
    for (int i = 0; i < 4; i++) {
        tmr_init(&e[i], i);
        tw_set(&w, &e[i].e, at[i]);
    }
    uint64_t now = 8100;
    advance(&c, now);
    int wakes = 0;
    while (w.count && wakes < 100) {
        uint64_t d = tw_timeout_ms(&w, now, 1u << 30);
        cr_assert_leq(d, 1u << 30);
        int before = c.nfired;
        if (d > 1)
            advance(&c, now + d - 1);
        cr_assert_eq(c.nfired, before, "fired before the announced wake-up");
        now += d;
        advance(&c, now);
        wakes++;
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(e[i].fired, 1, "entry %d", i);
    cr_assert_leq(wakes, 8, "wakes for empty slots");
}

/* ---- randomized, against a reference list ------------------------------- */

#define RN 48

static uint64_t rs;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

struct ref {
    bool armed;
    uint64_t deadline;
    uint64_t set_at; /* clock when armed */
};

static struct ref ref[RN];
static struct tmr rt[RN];
static struct timer_wheel rw;
static bool r_aligned;

static uint64_t pick_deadline(uint64_t now)
{
    uint64_t d;
    switch (rnd() % 8) {
    case 0:
        d = now > 50 ? now - rnd() % 50 : now; /* already due */
        break;
    case 1:
        d = now + REV + rnd() % (2 * REV);
        break;
    default:
        d = now + rnd() % 400;
    }
    if (r_aligned)
        d -= d % TW_TICK_MS;
    return d;
}

static void rfire(struct tw_entry *e, void *arg)
{
    uint64_t now = *(uint64_t *)arg;
    struct tmr *t = (struct tmr *)e;
    struct ref *r = &ref[t->id];
    CHECK(r->armed, "entry %d fired while not armed", t->id);
    CHECK(now >= r->deadline, "entry %d fired at %llu before its deadline %llu", t->id,
          (unsigned long long)now, (unsigned long long)r->deadline);
    CHECK(!tw_linked(e), "fired entry still linked");
    r->armed = false;
    switch (rnd() % 4) {
    case 0: /* re-arm itself */
        r->deadline = pick_deadline(now);
        r->set_at = now;
        r->armed = true;
        tw_set(&rw, e, r->deadline);
        break;
    case 1: { /* cancel another one */
        int k = (int)(rnd() % RN);
        tw_cancel(&rw, &rt[k].e);
        ref[k].armed = false;
        break;
    }
    case 2: { /* move another one */
        int k = (int)(rnd() % RN);
        ref[k].deadline = pick_deadline(now);
        ref[k].set_at = now;
        ref[k].armed = true;
        tw_set(&rw, &rt[k].e, ref[k].deadline);
        break;
    }
    default:
        break;
    }
}

static void run_random(uint64_t seed, bool aligned, int ops)
{
    rs = seed;
    r_aligned = aligned;
    uint64_t now = 100000 + rnd() % 1000;
    tw_init(&rw, now);
    memset(ref, 0, sizeof ref);
    for (int i = 0; i < RN; i++)
        tmr_init(&rt[i], i);
    for (int op = 0; op < ops; op++) {
        int k = (int)(rnd() % RN);
        switch (rnd() % 6) {
        case 0:
        case 1:
            ref[k].deadline = pick_deadline(now);
            ref[k].set_at = now;
            ref[k].armed = true;
            tw_set(&rw, &rt[k].e, ref[k].deadline);
            break;
        case 2:
            tw_cancel(&rw, &rt[k].e);
            ref[k].armed = false;
            break;
        default:
            now += rnd() % 50 == 0 ? rnd() % (3 * REV) : rnd() % 24;
            tw_advance(&rw, now, rfire, &now);
            for (int i = 0; i < RN; i++) {
                uint64_t due = ref[i].deadline > ref[i].set_at ? ref[i].deadline : ref[i].set_at;
                CHECK(!ref[i].armed || now < due + TW_TICK_MS,
                      "entry %d due %llu not fired by %llu", i, (unsigned long long)due,
                      (unsigned long long)now);
            }
        }
        uint64_t armed = 0;
        for (int i = 0; i < RN; i++) {
            armed += ref[i].armed;
            CHECK(tw_linked(&rt[i].e) == ref[i].armed, "entry %d linked %d, armed %d", i,
                  tw_linked(&rt[i].e), ref[i].armed);
        }
        CHECK(rw.count == armed, "count %llu, armed %llu", (unsigned long long)rw.count,
              (unsigned long long)armed);
    }
}

Test(timer_wheel, randomized_tick_aligned)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_random(seed * 0x9e3779b97f4a7c15ull, true, 20000);
}

Test(timer_wheel, randomized_any_ms)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_random(seed * 0x2545f4914f6cdd1dull, false, 20000);
}
