/* admit_queue — see admit_queue.h. */
#include "dataplane/admit_queue.h"

#include <errno.h>
#include <stdlib.h>

/*
 * Defaults, for cost = request body bytes and a TTFT budget of ~550 ms:
 *  - ttl 800 ms: the config's queue_ttl_ms.
 *  - CoDel target 100 ms, so the slough timeout is 200 ms, a quarter of the
 *    TTL.  A slot frees only when a stream ends (seconds), so even a healthy
 *    queue sees sojourns of tens of ms between departures; folly's 5 ms
 *    would call every wait overloaded.  The research note's rule, target =
 *    TTFT budget - upstream prefill (~550 - 350..450 ms), lands at
 *    100..200 ms; the lower end keeps the queueing share of TTFT small when
 *    the queue stands.
 *  - interval 200 ms (research note: 200..500 ms, arrivals are slower than
 *    RPCs'), two slough timeouts, so an interval usually sees a departure.
 *  - aging 32 bytes per ms: by its TTL an entry has earned 25.6 KB (~6k
 *    tokens) of credit, so any prompt up to that size overtakes every fresh
 *    arrival before it would be dropped; a 1 KB difference is gone in 32 ms.
 */
void aq_params_default(struct aq_params *p)
{
    p->capacity = 1024;
    p->ttl_ms = 800;
    p->codel_target_ms = 100;
    p->codel_interval_ms = 200;
    p->aging_per_ms = 32.0;
}

/* Keys stay below 2^63: cost << 16 is below 2^48, the aging term at most
 * this. */
#define AGE_TERM_MAX (UINT64_C(1) << 62)

int aq_init(struct admit_queue *q, const struct aq_params *p)
{
    *q = (struct admit_queue){0};
    list_init(&q->by_age);
    /* The negated test also rejects NaN. */
    if (p->capacity == 0 || p->capacity == UINT32_MAX || p->ttl_ms == 0 ||
        !(p->aging_per_ms >= 0.0 && p->aging_per_ms <= AQ_AGING_MAX) ||
        (p->codel_target_ms != 0 && p->codel_interval_ms == 0))
        return -EINVAL;
    q->heap = calloc((size_t)p->capacity + 1, sizeof *q->heap);
    if (!q->heap)
        return -ENOMEM;
    q->capacity = p->capacity;
    q->ttl_ms = p->ttl_ms;
    q->target_ms = p->codel_target_ms;
    q->interval_ms = p->codel_interval_ms;
    q->aging_fp = (uint64_t)(p->aging_per_ms * (double)(1u << AQ_AGING_SHIFT) + 0.5);
    q->min_sojourn_ms = UINT64_MAX;
    return 0;
}

void aq_set_limits(struct admit_queue *q, uint32_t ttl_ms, uint32_t codel_target_ms)
{
    q->ttl_ms = ttl_ms ? ttl_ms : 1;
    q->target_ms = q->interval_ms ? codel_target_ms : 0;
}

void aq_destroy(struct admit_queue *q)
{
    if (q->heap) {
        for (uint32_t i = 1; i <= q->n; i++) {
            q->heap[i]->heap_idx = 0;
            list_init(&q->heap[i]->age_node);
        }
        free(q->heap);
    }
    q->heap = NULL;
    q->n = 0;
    list_init(&q->by_age);
}

static bool before(const struct aq_entry *a, const struct aq_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void place(struct admit_queue *q, uint32_t i, struct aq_entry *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

static void sift_up(struct admit_queue *q, uint32_t i)
{
    struct aq_entry *e = q->heap[i];
    while (i > 1 && before(e, q->heap[i / 2])) {
        place(q, i, q->heap[i / 2]);
        i /= 2;
    }
    place(q, i, e);
}

static void sift_down(struct admit_queue *q, uint32_t i)
{
    struct aq_entry *e = q->heap[i];
    for (;;) {
        /* 64-bit: 2 * i must not wrap for a heap near UINT32_MAX entries. */
        uint64_t c = (uint64_t)i * 2;
        if (c > q->n)
            break;
        if (c < q->n && before(q->heap[c + 1], q->heap[c]))
            c++;
        if (!before(q->heap[c], e))
            break;
        place(q, i, q->heap[c]);
        i = (uint32_t)c;
    }
    place(q, i, e);
}

static struct aq_entry *oldest(const struct admit_queue *q)
{
    if (list_empty(&q->by_age))
        return NULL;
    return container_of(q->by_age.next, struct aq_entry, age_node);
}

static void detach(struct admit_queue *q, struct aq_entry *e)
{
    uint32_t i = e->heap_idx;
    struct aq_entry *last = q->heap[q->n];
    q->heap[q->n--] = NULL;
    if (last != e) {
        place(q, i, last);
        if (i > 1 && before(last, q->heap[i / 2]))
            sift_up(q, i);
        else
            sift_down(q, i);
    }
    e->heap_idx = 0;
    list_del(&e->age_node);
}

static uint64_t clock_at(struct admit_queue *q, uint64_t now_ms)
{
    if (now_ms > q->now_ms)
        q->now_ms = now_ms;
    return q->now_ms;
}

/*
 * CoDel's state at <now>: the overloaded flag in force and the end of the
 * interval that holds <now>.  Intervals are aligned to the first call, and
 * boundaries are judged lazily, on the next call.  That is exact because
 * every call that changes the queue judges them first: since the last call
 * the queue has held the same entries and nothing was popped, so a boundary
 * passed in between is judged by the pops and drops seen before it, and a
 * later one (an interval with no pop at all) by the oldest entry's age then.
 * aq_remove takes no time and is the one exception: an entry removed before
 * an unjudged boundary still counts as present at it.
 */
struct codel_view {
    bool overloaded;
    bool rolled; /* a boundary was passed: the sample restarts */
    uint64_t interval_end_ms;
};

static struct codel_view codel_at(const struct admit_queue *q, uint64_t now)
{
    struct codel_view v = {q->overloaded, false, q->interval_end_ms};
    if (q->target_ms == 0)
        return v;
    if (q->interval_end_ms == 0) {
        v.rolled = true;
        v.interval_end_ms = now + q->interval_ms;
        return v;
    }
    if (now < q->interval_end_ms)
        return v;
    uint64_t end = q->interval_end_ms;
    uint64_t sample = q->min_sojourn_ms;
    uint64_t skipped = (now - end) / q->interval_ms;
    if (skipped) {
        /* Only the last boundary matters, and no pop came before it. */
        end += skipped * q->interval_ms;
        sample = UINT64_MAX;
    }
    if (sample == UINT64_MAX) {
        const struct aq_entry *h = oldest(q);
        sample = h && h->enq_ms < end ? end - h->enq_ms : 0;
    }
    v.overloaded = sample > q->target_ms;
    v.rolled = true;
    v.interval_end_ms = end + q->interval_ms;
    return v;
}

static void codel_tick(struct admit_queue *q, uint64_t now)
{
    struct codel_view v = codel_at(q, now);
    if (!v.rolled)
        return;
    q->overloaded = v.overloaded;
    q->interval_end_ms = v.interval_end_ms;
    q->min_sojourn_ms = UINT64_MAX;
}

static void codel_sample(struct admit_queue *q, uint64_t sojourn_ms)
{
    if (sojourn_ms < q->min_sojourn_ms)
        q->min_sojourn_ms = sojourn_ms;
}

/* The part of the key that grows with enqueue time, for an entry pushed at
 * <now>.  Keys only compare among queued entries, so when the term would
 * get too large the epoch moves up to the oldest entry and every key drops
 * by that entry's term (the smallest, as terms grow with enq_ms): order is
 * unchanged and nothing underflows.  The O(n) rebase comes at most once per
 * AGE_TERM_MAX / aging_fp ms (2^32 ms at AQ_AGING_MAX, 2^41 at the
 * default).  Only an oldest entry queued longer than that (past any TTL:
 * aq_expire is not being called) can still leave the term too large; it is
 * then clamped, which keeps the order by arrival but no longer exact. */
static uint64_t age_term(struct admit_queue *q, uint64_t now)
{
    if (q->aging_fp == 0)
        return 0;
    uint64_t limit = AGE_TERM_MAX / q->aging_fp;
    if (now - q->epoch_ms > limit) {
        struct aq_entry *h = oldest(q);
        uint64_t shift = h->key - ((uint64_t)h->cost << AQ_AGING_SHIFT);
        for (uint32_t i = 1; i <= q->n; i++)
            q->heap[i]->key -= shift;
        q->epoch_ms = h->enq_ms;
    }
    uint64_t d = now - q->epoch_ms;
    return q->aging_fp * (d > limit ? limit : d);
}

int aq_push(struct admit_queue *q, struct aq_entry *e, uint32_t cost, uint64_t now_ms)
{
    uint64_t now = clock_at(q, now_ms);
    codel_tick(q, now);
    if (e->heap_idx != 0 && e->heap_idx <= q->n && q->heap[e->heap_idx] == e)
        return -EBUSY;
    if (q->n == q->capacity)
        return -ENOSPC;
    if (q->n == 0)
        q->epoch_ms = now;
    e->key = ((uint64_t)cost << AQ_AGING_SHIFT) + age_term(q, now);
    e->seq = q->seq++;
    e->enq_ms = now;
    e->cost = cost;
    list_add_tail(&q->by_age, &e->age_node);
    q->n++;
    place(q, q->n, e);
    sift_up(q, q->n);
    return 0;
}

struct aq_entry *aq_pop(struct admit_queue *q, uint64_t now_ms)
{
    uint64_t now = clock_at(q, now_ms);
    codel_tick(q, now);
    if (q->n == 0)
        return NULL;
    struct aq_entry *e = q->heap[1];
    detach(q, e);
    codel_sample(q, now - e->enq_ms);
    return e;
}

void aq_remove(struct admit_queue *q, struct aq_entry *e)
{
    if (!aq_queued(e))
        return;
    detach(q, e);
}

static uint64_t slough_ms(const struct admit_queue *q)
{
    return 2 * (uint64_t)q->target_ms;
}

struct aq_entry *aq_expire(struct admit_queue *q, uint64_t now_ms, enum aq_drop_reason *why)
{
    uint64_t now = clock_at(q, now_ms);
    codel_tick(q, now);
    /* Both rules grow with age, so if the oldest entry stays, all do. */
    struct aq_entry *e = oldest(q);
    if (!e)
        return NULL;
    uint64_t age = now - e->enq_ms;
    enum aq_drop_reason r;
    if (age >= q->ttl_ms)
        r = AQ_DROP_TTL;
    else if (q->overloaded && age > slough_ms(q))
        r = AQ_DROP_CODEL;
    else
        return NULL;
    detach(q, e);
    /* As folly: a shed request was dequeued too, and its wait is load. */
    codel_sample(q, age);
    if (why)
        *why = r;
    return e;
}

uint64_t aq_next_deadline_ms(const struct admit_queue *q, uint64_t now_ms)
{
    const struct aq_entry *h = oldest(q);
    if (!h)
        return UINT64_MAX;
    uint64_t deadline = h->enq_ms + q->ttl_ms;
    if (q->target_ms != 0) {
        uint64_t now = now_ms > q->now_ms ? now_ms : q->now_ms;
        struct codel_view v = codel_at(q, now);
        uint64_t shed = h->enq_ms + slough_ms(q) + 1;
        /* Not overloaded now: the flag can turn on at the next boundary
         * at the earliest. */
        if (!v.overloaded && shed < v.interval_end_ms)
            shed = v.interval_end_ms;
        if (shed < deadline)
            deadline = shed;
    }
    return deadline;
}
