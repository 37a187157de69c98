/*
 * admit_queue_fixture — what the admission-queue test files share: a
 * request type around struct aq_entry, building queues, and the heap and
 * list invariants checked after every operation.  Header-only.
 */
#ifndef SLUICE_TEST_ADMIT_QUEUE_FIXTURE_H
#define SLUICE_TEST_ADMIT_QUEUE_FIXTURE_H

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

static inline int id_of(const struct aq_entry *e)
{
    return e ? container_of(e, struct req, e)->id : -1;
}

static inline struct req *reqs_new(int n)
{
    struct req *r = calloc((size_t)n, sizeof *r);
    cr_assert_not_null(r);
    for (int i = 0; i < n; i++)
        r[i].id = i;
    return r;
}

/* CoDel off, TTL out of the way, aging as given. */
static inline struct aq_params plain(uint32_t capacity, double aging)
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

static inline void init(struct admit_queue *q, struct aq_params p)
{
    cr_assert_eq(aq_init(q, &p), 0);
}

static inline void push_ok(struct admit_queue *q, struct req *r, uint32_t cost, uint64_t now)
{
    int rc = aq_push(q, &r->e, cost, now);
    CHECK(rc == 0, "push %d at %llu: %d", r->id, ULL(now), rc);
}

static inline bool entry_before(const struct aq_entry *a, const struct aq_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

/* The heap is a valid min-heap on (key, seq) whose entries know their
 * slots, and the arrival list holds the same entries in arrival order. */
static inline void check_invariants(const struct admit_queue *q)
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

/* Target 10 ms (slough 20), interval 100 ms, TTL 1000, no aging: the
 * queue is first come first served, so the sojourns are easy to follow. */
static inline struct aq_params codel_params(void)
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

#endif
