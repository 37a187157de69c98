/*
 * admit_queue — the requests of one worker that wait for a concurrency slot.
 *
 * When the node is at its concurrency limit a new completion request waits
 * here briefly instead of failing at once; whenever a slot frees up the
 * worker pops the best entry.  "Best" is shortest estimated prompt first,
 * with aging so nothing starves: the priority of an entry is
 *
 *     cost - aging_per_ms * waited_ms        (lower is served first)
 *
 * which orders exactly like the time-invariant key cost + aging_per_ms *
 * enq_ms, so a binary min-heap on that key, ties in arrival order, serves
 * it.  An entry of cost C enqueued at t0 is served before every entry of
 * cost c that arrives at or after t0 + (C - c) / aging_per_ms.
 *
 * Two ways out besides being popped, both found through an arrival-ordered
 * list (the oldest entry is at its head) and reported by aq_expire, so that
 * the worker answers 503 at once:
 *  - TTL: an entry that has waited ttl_ms can no longer meet the TTFT
 *    budget; it is dropped once now - enq_ms >= ttl_ms.
 *  - CoDel, the folly variant: at the end of each interval the queue is
 *    overloaded if the smallest sojourn seen during it (on pops and drops;
 *    the oldest entry's age at the boundary when there were none) exceeded
 *    codel_target_ms.  While overloaded, every entry that has waited more
 *    than 2 * codel_target_ms (the "slough timeout") is shed.  A queue that
 *    never drains then fails stale requests fast instead of letting each of
 *    them wait the whole TTL; a queue that drains now and then (a burst)
 *    sheds nothing before the TTL.
 *
 * Promises: single-threaded, owned by one worker.  Entries are intrusive
 * (struct aq_entry embedded in the caller's request, found back with
 * container_of); the queue never allocates, frees or copies an entry — its
 * only allocation is the heap array, once, in aq_init.  An entry that is
 * zeroed, or that left the queue, is not queued.  Push, pop and remove are
 * O(log n) (a push rebases every key, O(n), at most once per 2^32 ms);
 * aq_expire and aq_next_deadline_ms are O(1) per call (plus O(log n) for
 * an entry dropped).  Time is the caller's monotonic ms and is
 * never taken to go backwards: an earlier now_ms counts as the latest seen.
 * struct admit_queue must not be moved after aq_init (the list head points
 * at itself).
 *
 * Expected use: on a slot freeing up, drain aq_expire until NULL (503 each),
 * then aq_pop; arm the worker's timer at aq_next_deadline_ms.
 */
#ifndef SLUICE_ADMIT_QUEUE_H
#define SLUICE_ADMIT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/list.h"

/* Aging is kept in fixed point, 1/65536 cost unit per ms, so that keys are
 * exact integers. */
#define AQ_AGING_SHIFT 16
#define AQ_AGING_MAX   16384.0 /* cost units per ms; keeps keys below 2^63 */

struct aq_params {
    uint32_t capacity;          /* entries; push on a full queue is -ENOSPC */
    uint32_t ttl_ms;            /* >= 1 */
    uint32_t codel_target_ms;   /* 0 turns CoDel off (TTL only) */
    uint32_t codel_interval_ms; /* >= 1 when CoDel is on */
    double aging_per_ms;        /* cost units credited per ms waited, 0..AQ_AGING_MAX */
};

/* capacity 1024, ttl 800 ms, target 100 ms (slough 200 ms), interval
 * 200 ms, aging 32 per ms: see admit_queue.c for why. */
void aq_params_default(struct aq_params *p);

/* Embedded in the caller's request.  The caller may read enq_ms and cost
 * while the entry is queued, and owns it throughout; the rest is the
 * queue's. */
struct aq_entry {
    uint64_t key;      /* cost and aging credit, fixed point: the heap order */
    uint64_t seq;      /* arrival number, breaks ties first come first served */
    uint64_t enq_ms;   /* when it was pushed */
    uint32_t cost;     /* as given to aq_push */
    uint32_t heap_idx; /* 1-based slot in the heap; 0 when not queued */
    struct list_node age_node;
};

enum aq_drop_reason {
    AQ_DROP_TTL = 0, /* waited ttl_ms */
    AQ_DROP_CODEL,   /* overloaded, waited more than 2 * codel_target_ms */
};

struct admit_queue {
    struct aq_entry **heap; /* heap[1..n]; slot 0 unused so heap_idx 0 means "not queued" */
    uint32_t n;
    uint32_t capacity;
    uint32_t ttl_ms;
    uint32_t target_ms;
    uint32_t interval_ms;
    uint64_t aging_fp; /* aging_per_ms << AQ_AGING_SHIFT */
    uint64_t epoch_ms; /* keys count aging from here; moved up to keep them small */
    uint64_t seq;
    uint64_t now_ms;          /* latest time seen */
    struct list_node by_age;  /* every queued entry, oldest first */
    uint64_t interval_end_ms; /* CoDel: end of the current interval; 0 before the first call */
    uint64_t min_sojourn_ms;  /* CoDel: smallest sojourn this interval, UINT64_MAX if none */
    bool overloaded;          /* CoDel: as of the last interval boundary */
};

/* 0, -EINVAL for parameters out of range, -ENOMEM. */
int aq_init(struct admit_queue *q, const struct aq_params *p);

/* Changes the TTL and CoDel's target of a running queue (the admission
 * budget follows the backend's TTFT): queued entries are judged by the new
 * values from the next call on.  ttl_ms >= 1; target 0 turns CoDel off. */
void aq_set_limits(struct admit_queue *q, uint32_t ttl_ms, uint32_t codel_target_ms);

/* Frees the heap array.  Entries still queued are detached (no longer
 * queued), never freed.  Safe on a zeroed queue and twice. */
void aq_destroy(struct admit_queue *q);

/* Queues <e> (zeroed, or out of any queue) with <cost> at <now_ms>.
 * 0, -ENOSPC when full, -EBUSY when <e> is already in this queue. */
int aq_push(struct admit_queue *q, struct aq_entry *e, uint32_t cost, uint64_t now_ms);

/* Takes the best entry out, or NULL when empty; its sojourn is a CoDel
 * sample.  It does not check TTL or CoDel: call aq_expire first. */
struct aq_entry *aq_pop(struct admit_queue *q, uint64_t now_ms);

/* Takes <e> out (its client went away).  Not a CoDel sample; an entry not
 * queued is left alone. */
void aq_remove(struct admit_queue *q, struct aq_entry *e);

/* Takes out one entry that must be dropped at <now_ms> and says why in
 * *why (may be NULL), or returns NULL; call until NULL.  The oldest entry
 * goes first.  Also closes CoDel intervals that have ended. */
struct aq_entry *aq_expire(struct admit_queue *q, uint64_t now_ms, enum aq_drop_reason *why);

/* The earliest time aq_expire may return something: UINT64_MAX when empty,
 * <= now_ms when it has something now, after now_ms once drained.  It may
 * be early (a wakeup that finds nothing), never late. */
uint64_t aq_next_deadline_ms(const struct admit_queue *q, uint64_t now_ms);

static inline bool aq_queued(const struct aq_entry *e)
{
    return e->heap_idx != 0;
}

static inline uint32_t aq_len(const struct admit_queue *q)
{
    return q->n;
}

/* The entry aq_pop would return, or NULL. */
static inline struct aq_entry *aq_peek(const struct admit_queue *q)
{
    return q->n ? q->heap[1] : 0;
}

/* Whether CoDel judged the last interval (as of the last call that took a
 * time) overloaded; for metrics and for the worker's own shedding. */
static inline bool aq_overloaded(const struct admit_queue *q)
{
    return q->overloaded;
}

#endif
