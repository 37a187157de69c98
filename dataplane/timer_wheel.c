/* timer_wheel — see timer_wheel.h. */
#include "dataplane/timer_wheel.h"

#include <string.h>

void tw_init(struct timer_wheel *w, uint64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->tick = now_ms / TW_TICK_MS;
}

static void unlink_entry(struct timer_wheel *w, struct tw_entry *e)
{
    *e->pprev = e->next;
    if (e->next)
        e->next->pprev = e->pprev;
    e->next = NULL;
    e->pprev = NULL;
    w->count--;
}

/* The tick at which an entry may fire: rounded up, so never early. */
static uint64_t due_tick(uint64_t ms)
{
    return (ms + TW_TICK_MS - 1) / TW_TICK_MS;
}

static void link_entry(struct timer_wheel *w, struct tw_entry *e)
{
    uint64_t t = due_tick(e->expires_ms);
    /* Anything already due goes in the next slot processed. */
    if (t < w->tick)
        t = w->tick;
    struct tw_entry **head = &w->slot[t % TW_SLOTS];
    e->next = *head;
    if (*head)
        (*head)->pprev = &e->next;
    *head = e;
    e->pprev = head;
    e->linked_tick = t;
    w->count++;
}

void tw_set(struct timer_wheel *w, struct tw_entry *e, uint64_t expires_ms)
{
    if (tw_linked(e)) {
        /* Later deadline: leave it in place, it is moved when its slot comes
         * round.  Earlier: must relink to fire on time. */
        if (due_tick(expires_ms) >= e->linked_tick) {
            e->expires_ms = expires_ms;
            return;
        }
        unlink_entry(w, e);
    }
    e->expires_ms = expires_ms;
    link_entry(w, e);
}

void tw_cancel(struct timer_wheel *w, struct tw_entry *e)
{
    if (tw_linked(e))
        unlink_entry(w, e);
}

void tw_advance(struct timer_wheel *w, uint64_t now_ms, void (*fn)(struct tw_entry *, void *),
                void *arg)
{
    uint64_t now_tick = now_ms / TW_TICK_MS;
    /* The slot being processed is detached into <list>, a list head like any
     * other: a callback may cancel or re-arm any entry, including ones still
     * waiting in <list>, and the unlink keeps <list> right. */
    struct tw_entry *list;
    while (w->tick <= now_tick) {
        if (!w->count) {
            w->tick = now_tick + 1;
            return;
        }
        uint64_t this_tick = w->tick++;
        struct tw_entry **head = &w->slot[this_tick % TW_SLOTS];
        list = *head;
        *head = NULL;
        if (list)
            list->pprev = &list;
        struct tw_entry *e;
        while ((e = list) != NULL) {
            unlink_entry(w, e);
            if (due_tick(e->expires_ms) <= this_tick)
                fn(e, arg);
            else
                link_entry(w, e);
        }
    }
}

uint64_t tw_timeout_ms(const struct timer_wheel *w, uint64_t now_ms, uint64_t cap_ms)
{
    if (!w->count)
        return cap_ms;
    uint64_t next_ms = w->tick * TW_TICK_MS;
    /* Scan ahead for the first non-empty slot, bounded by the cap. */
    uint64_t limit = (now_ms + cap_ms) / TW_TICK_MS;
    for (uint64_t t = w->tick; t <= limit && t < w->tick + TW_SLOTS; t++) {
        if (w->slot[t % TW_SLOTS]) {
            next_ms = t * TW_TICK_MS;
            return next_ms > now_ms ? next_ms - now_ms : 0;
        }
    }
    return cap_ms;
}
