/*
 * budget — the control plane's half of tenant budgets: it refills each
 * tenant's token bucket at tokens_per_minute / 60 per second (up to one
 * minute's worth), and sets each tenant's effective stream limit: the whole
 * burst_limit while the tenant stays at or under hard_limit, decaying
 * linearly to hard_limit over decay_ms of being above it, and recovering
 * at the same rate once it is back under.
 *
 * The workers do the rest on their own (reserve, charge, return), with
 * atomic operations on the same shared entries, so a dead control plane
 * leaves the last limits in place and the buckets simply stop refilling
 * ("fail static": nobody gets more than their budget).  Owned by the
 * control-plane process.
 */
#ifndef SLUICE_BUDGET_H
#define SLUICE_BUDGET_H

#include <stdint.h>

#include "shared/shm.h"

struct budget_state {
    uint64_t last_ms;
    double carry[SHM_MAX_TENANTS];     /* fractional tokens not yet added */
    uint32_t over_ms[SHM_MAX_TENANTS]; /* time spent above hard_limit, decayed */
};

void budget_init(struct budget_state *b, uint64_t now_ms);

/* One step: refill every bucket and recompute every effective limit. */
void budget_tick(struct budget_state *b, struct shm *shm, uint64_t now_ms);

/* The effective stream limit of a tenant that has been above hard_limit
 * for <over_ms> (decayed); pure, for tests. */
uint32_t budget_conc_limit(uint32_t hard, uint32_t burst, uint32_t decay_ms, uint32_t over_ms);

#endif
