/* budget — see budget.h. */
#include "controlplane/budget.h"

#include <string.h>

void budget_init(struct budget_state *b, uint64_t now_ms)
{
    memset(b, 0, sizeof *b);
    b->last_ms = now_ms;
}

uint32_t budget_conc_limit(uint32_t hard, uint32_t burst, uint32_t decay_ms, uint32_t over_ms)
{
    if (!hard)
        return 0;
    if (burst <= hard || !decay_ms)
        return hard;
    if (over_ms >= decay_ms)
        return hard;
    /* Linear from burst to hard; rounded up so the limit reaches hard only
     * when the decay is complete. */
    uint64_t span = burst - hard;
    uint64_t left = span * (decay_ms - over_ms);
    return hard + (uint32_t)((left + decay_ms - 1) / decay_ms);
}

/* bucket = min(cap, bucket + add), atomically against the workers. */
static void refill(struct shm_tenant *t, int64_t add, int64_t cap)
{
    int64_t cur = atomic_load_explicit(&t->tokens_avail, memory_order_relaxed);
    for (;;) {
        if (cur >= cap)
            return;
        int64_t next = cur + add > cap ? cap : cur + add;
        if (atomic_compare_exchange_weak_explicit(&t->tokens_avail, &cur, next,
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

void budget_tick(struct budget_state *b, struct shm *shm, uint64_t now_ms)
{
    uint64_t dt = now_ms > b->last_ms ? now_ms - b->last_ms : 0;
    b->last_ms = now_ms;
    if (dt > 60000)
        dt = 60000; /* a control plane that stalled does not owe a flood */
    struct shm_tables *tb = &shm->seg->tables;
    unsigned n = atomic_load_explicit(&tb->ntenants, memory_order_acquire);
    for (unsigned i = 0; i < n && i < SHM_MAX_TENANTS; i++) {
        struct shm_tenant *t = &tb->tenants[i];
        uint64_t tpm = atomic_load_explicit(&t->tokens_per_minute, memory_order_relaxed);
        if (tpm) {
            double add = (double)tpm * (double)dt / 60000.0 + b->carry[i];
            int64_t whole = (int64_t)add;
            b->carry[i] = add - (double)whole;
            if (whole > 0)
                refill(t, whole, (int64_t)tpm);
        }
        uint32_t hard = atomic_load_explicit(&t->hard_limit, memory_order_relaxed);
        uint32_t burst = atomic_load_explicit(&t->burst_limit, memory_order_relaxed);
        uint32_t decay = atomic_load_explicit(&t->decay_ms, memory_order_relaxed);
        if (hard && burst > hard) {
            int64_t active = shm_node_tenant_streams(shm, i);
            uint64_t o = b->over_ms[i];
            if (active > (int64_t)hard)
                o += dt;
            else
                o = o > dt ? o - dt : 0;
            b->over_ms[i] = o > decay ? decay : (uint32_t)o;
        } else {
            b->over_ms[i] = 0;
        }
        atomic_store_explicit(&t->conc_limit, budget_conc_limit(hard, burst, decay, b->over_ms[i]),
                              memory_order_relaxed);
    }
}
