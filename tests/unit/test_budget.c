/*
 * Unit tests for controlplane/budget: token buckets refilled at
 * tokens_per_minute, bursts above hard_limit decaying to it and recovering.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "controlplane/budget.h"
#include "shared/shm.h"

Test(budget, conc_limit_decays_linearly)
{
    cr_assert_eq(budget_conc_limit(0, 0, 1000, 0), 0, "no limit");
    cr_assert_eq(budget_conc_limit(20, 0, 1000, 0), 20, "no burst");
    cr_assert_eq(budget_conc_limit(20, 20, 1000, 500), 20);
    cr_assert_eq(budget_conc_limit(20, 32, 60000, 0), 32);
    cr_assert_eq(budget_conc_limit(20, 32, 60000, 30000), 26);
    cr_assert_eq(budget_conc_limit(20, 32, 60000, 59999), 21, "hard only when fully decayed");
    cr_assert_eq(budget_conc_limit(20, 32, 60000, 60000), 20);
    cr_assert_eq(budget_conc_limit(20, 32, 60000, 900000), 20);
    unsigned prev = 32;
    for (uint32_t t = 0; t <= 60000; t += 100) {
        unsigned l = budget_conc_limit(20, 32, 60000, t);
        cr_assert(l <= prev && l >= 20, "monotone at %u", t);
        prev = l;
    }
}

static struct shm shm;

static void setup(void)
{
    cr_assert_eq(shm_create(&shm, 4), 0);
}

static void teardown(void)
{
    shm_destroy(&shm);
}

Test(budget, refill_at_the_rate_up_to_a_minute, .init = setup, .fini = teardown)
{
    int t = shm_tenant_set(&shm, "acme", 0, 0, 60000, 600, 100);
    cr_assert_eq(t, 0);
    struct shm_tenant *e = &shm.seg->tables.tenants[t];
    cr_assert_eq(atomic_load(&e->tokens_avail), 600, "starts full");
    atomic_store(&e->tokens_avail, 0);
    struct budget_state b;
    budget_init(&b, 1000);
    /* 600 a minute = 10 a second: 200 ms ticks add 2 each */
    for (unsigned i = 1; i <= 5; i++)
        budget_tick(&b, &shm, 1000 + 200 * i);
    cr_assert_eq(atomic_load(&e->tokens_avail), 10);
    /* fractions carry: 7 ms ticks (0.07 tokens) still add up */
    for (unsigned i = 1; i <= 1000; i++)
        budget_tick(&b, &shm, 2000 + 7 * i);
    cr_assert_eq(atomic_load(&e->tokens_avail), 80);
    /* never above one minute's budget, whatever the gap */
    budget_tick(&b, &shm, 3600000);
    cr_assert_eq(atomic_load(&e->tokens_avail), 600);
    /* workers charging concurrently are not overwritten: refill adds */
    atomic_store(&e->tokens_avail, -5);
    budget_tick(&b, &shm, 3600000 + 1000);
    cr_assert_eq(atomic_load(&e->tokens_avail), 5);
}

Test(budget, burst_decays_while_above_and_recovers, .init = setup, .fini = teardown)
{
    int w = shm_slot_claim(&shm, 0, SHM_ROLE_WORKER, 1);
    cr_assert_geq(w, 0);
    int t = shm_tenant_set(&shm, "acme", 2, 4, 1000, 0, 100);
    struct shm_tenant *e = &shm.seg->tables.tenants[t];
    cr_assert_eq(atomic_load(&e->conc_limit), 4, "the whole burst at first");
    struct budget_state b;
    budget_init(&b, 0);
    atomic_store(&shm_slot(&shm, (unsigned)w)->tenant_streams[t], 3); /* above hard */
    budget_tick(&b, &shm, 500);
    cr_assert_eq(atomic_load(&e->conc_limit), 3);
    budget_tick(&b, &shm, 1000);
    cr_assert_eq(atomic_load(&e->conc_limit), 2);
    budget_tick(&b, &shm, 5000);
    cr_assert_eq(atomic_load(&e->conc_limit), 2, "stays at hard while above");
    atomic_store(&shm_slot(&shm, (unsigned)w)->tenant_streams[t], 1); /* back under */
    budget_tick(&b, &shm, 5500);
    cr_assert_eq(atomic_load(&e->conc_limit), 3, "credit comes back at the same rate");
    budget_tick(&b, &shm, 6000);
    cr_assert_eq(atomic_load(&e->conc_limit), 4);
    /* a dead worker's streams leave the sum with its slot */
    atomic_store(&shm_slot(&shm, (unsigned)w)->tenant_streams[t], 9);
    cr_assert_eq(shm_node_tenant_streams(&shm, (unsigned)t), 9);
    shm_slot_release(&shm, (unsigned)w);
    cr_assert_eq(shm_node_tenant_streams(&shm, (unsigned)t), 0);
}

Test(budget, dead_worker_reservations_go_back, .init = setup, .fini = teardown)
{
    int t = shm_tenant_set(&shm, "acme", 0, 0, 60000, 1000, 100);
    struct shm_tenant *e = &shm.seg->tables.tenants[t];
    int w = shm_slot_claim(&shm, 0, SHM_ROLE_WORKER, 1);
    atomic_store(&e->tokens_avail, 1000 - 300);
    atomic_store(&shm_slot(&shm, (unsigned)w)->tenant_reserved[t], 300);
    shm_slot_release(&shm, (unsigned)w);
    cr_assert_eq(atomic_load(&e->tokens_avail), 1000);
}

Test(budget, tenant_table_keeps_entries_across_reloads, .init = setup, .fini = teardown)
{
    cr_assert_eq(shm_tenant_set(&shm, "a", 1, 0, 100, 0, 10), 0);
    cr_assert_eq(shm_tenant_set(&shm, "b", 1, 0, 100, 50, 10), 1);
    struct shm_tenant *b = &shm.seg->tables.tenants[1];
    atomic_store(&b->tokens_avail, 20);
    /* a reload that raises b's budget by 30 makes those 30 available now */
    cr_assert_eq(shm_tenant_set(&shm, "b", 5, 0, 100, 80, 10), 1);
    cr_assert_eq(atomic_load(&b->tokens_avail), 50);
    cr_assert_eq(atomic_load(&b->hard_limit), 5);
    cr_assert_eq(shm_tenant_find(&shm, "a"), 0);
    cr_assert_eq(shm_tenant_find(&shm, "zz"), -ENOENT);
}
