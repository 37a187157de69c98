/*
 * theap — a binary min-heap of intrusive timers, keyed by a deadline in
 * nanoseconds (CLOCK_MONOTONIC).
 *
 * Each timer is a struct theap_node embedded in its owner (llmsim embeds one
 * per connection); the heap holds pointers and the node remembers its slot,
 * so set, move and cancel are O(log n) and never search.  The heap never
 * allocates on the timer path: theap_reserve() grows the array when the
 * number of possible timers grows (at accept time), and theap_set() then
 * cannot fail.  The heap does not own the nodes.
 */
#ifndef LLMSIM_THEAP_H
#define LLMSIM_THEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THEAP_NONE UINT32_MAX

struct theap_node {
    uint64_t due; /* deadline, ns */
    uint32_t idx; /* slot in the heap, THEAP_NONE when not armed */
};

struct theap {
    struct theap_node **v;
    uint32_t n;
    uint32_t cap;
};

void theap_init(struct theap *h);
void theap_fini(struct theap *h);
/* Ensures room for <n> armed timers.  0 or -ENOMEM. */
int theap_reserve(struct theap *h, uint32_t n);

static inline void theap_node_init(struct theap_node *t)
{
    t->due = 0;
    t->idx = THEAP_NONE;
}

static inline bool theap_armed(const struct theap_node *t)
{
    return t->idx != THEAP_NONE;
}

/* Arms <t> at <due>, or moves it if already armed.  Needs a prior reserve. */
void theap_set(struct theap *h, struct theap_node *t, uint64_t due);
/* Disarms <t> if armed. */
void theap_cancel(struct theap *h, struct theap_node *t);
/* The earliest timer, or NULL. */
static inline struct theap_node *theap_peek(const struct theap *h)
{
    return h->n ? h->v[0] : NULL;
}

#endif
