/* pcache — see pcache.h. */
#include "perf/llmsim/pcache.h"

#include <errno.h>
#include <stdlib.h>

#define WAYS 8

int pcache_init(struct pcache *pc, uint32_t blocks)
{
    pc->nsets = (blocks + WAYS - 1) / WAYS;
    pc->clock = 0;
    pc->key = NULL;
    pc->stamp = NULL;
    if (!pc->nsets)
        return 0;
    pc->key = calloc((size_t)pc->nsets * WAYS, sizeof *pc->key);
    pc->stamp = calloc((size_t)pc->nsets * WAYS, sizeof *pc->stamp);
    if (!pc->key || !pc->stamp) {
        pcache_free(pc);
        return -ENOMEM;
    }
    return 0;
}

void pcache_free(struct pcache *pc)
{
    free(pc->key);
    free(pc->stamp);
    pc->key = NULL;
    pc->stamp = NULL;
    pc->nsets = 0;
}

/* Finds <k> (touching it) or puts it in place of the set's oldest. */
static bool touch(struct pcache *pc, uint64_t k)
{
    size_t base = (size_t)(k % pc->nsets) * WAYS;
    size_t oldest = base;
    for (size_t i = base; i < base + WAYS; i++) {
        if (pc->stamp[i] && pc->key[i] == k) {
            pc->stamp[i] = ++pc->clock;
            return true;
        }
        if (pc->stamp[i] < pc->stamp[oldest])
            oldest = i;
    }
    pc->key[oldest] = k;
    pc->stamp[oldest] = ++pc->clock;
    return false;
}

uint32_t pcache_use(struct pcache *pc, const uint64_t *keys, uint32_t n)
{
    if (!pc->nsets)
        return 0;
    uint32_t cached = 0;
    bool run = true;
    for (uint32_t i = 0; i < n; i++) {
        bool hit = touch(pc, keys[i]);
        if (run && hit)
            cached++;
        else
            run = false;
    }
    return cached;
}
