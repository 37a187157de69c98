/*
 * timer_wheel — every timeout of a worker (header read, keep-alive idle,
 * first token, inter-token idle, slow consumer, pooled connection idle) on
 * one hashed wheel, so no stream costs a syscall or a kernel timer.
 *
 * The wheel has TW_SLOTS slots of TW_TICK_MS; an entry sits in the slot of
 * its expiry and is looked at when that slot comes round.  Pushing a
 * deadline later (the common case: activity on a stream) is one store — the
 * entry stays where it is and is moved when its old slot comes round; only
 * an earlier deadline relinks it.  Cost: O(1) set/cancel, O(expired + moved)
 * per tick, and the loop sleeps exactly until the next tick with entries.
 *
 * Entries are embedded in their owners (container_of).  Owned by one worker.
 */
#ifndef SLUICE_TIMER_WHEEL_H
#define SLUICE_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define TW_SLOTS   1024
#define TW_TICK_MS 8

struct tw_entry {
    struct tw_entry *next;
    struct tw_entry **pprev; /* NULL when not linked */
    uint64_t expires_ms;
    uint64_t linked_tick; /* tick of the slot it sits in */
    unsigned kind;        /* owner's tag, for dispatching a fired entry */
};

struct timer_wheel {
    struct tw_entry *slot[TW_SLOTS];
    uint64_t tick;  /* next tick to process */
    uint64_t count; /* linked entries */
};

void tw_init(struct timer_wheel *w, uint64_t now_ms);

static inline bool tw_linked(const struct tw_entry *e)
{
    return e->pprev != 0;
}

/* Arms or re-arms <e> to fire at <expires_ms> (absolute, monotonic ms). */
void tw_set(struct timer_wheel *w, struct tw_entry *e, uint64_t expires_ms);
void tw_cancel(struct timer_wheel *w, struct tw_entry *e);

/* Fires every entry due at <now_ms>: each is unlinked, then fn(e, arg) is
 * called; fn may re-arm it or free its owner. */
void tw_advance(struct timer_wheel *w, uint64_t now_ms, void (*fn)(struct tw_entry *, void *),
                void *arg);

/* Milliseconds until the next tick that may fire something (<= cap_ms), or
 * cap_ms when the wheel is empty. */
uint64_t tw_timeout_ms(const struct timer_wheel *w, uint64_t now_ms, uint64_t cap_ms);

#endif
