/*
 * pcache — llmsim's model of vLLM's automatic prefix caching: the KV cache
 * keeps blocks of prompt, and a prompt whose first blocks are cached skips
 * their prefill (its TTFT shrinks by prefill_us_per_token for each cached
 * token).
 *
 * A block is PCACHE_BLOCK bytes of the prompt's text; a block's key is the
 * hash of the whole prompt up to its end (so a block is only reused after
 * the same prefix, as in vLLM).  The cache is 8-way set associative with
 * LRU replacement inside a set.  Single-threaded.
 */
#ifndef LLMSIM_PCACHE_H
#define LLMSIM_PCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define PCACHE_BLOCK      256 /* bytes of prompt text per block (about 64 tokens) */
#define PCACHE_MAX_BLOCKS 64  /* blocks of one prompt looked at */

struct pcache {
    uint64_t *key;
    uint64_t *stamp;
    uint32_t nsets;
    uint64_t clock;
};

/* A cache of about <blocks> blocks (0: none).  0 or -ENOMEM. */
int pcache_init(struct pcache *pc, uint32_t blocks);
void pcache_free(struct pcache *pc);

/* How many of the prompt's first blocks are cached (keys[0..n) in prompt
 * order); then all n are cached, most recent.  Returns the cached count. */
uint32_t pcache_use(struct pcache *pc, const uint64_t *keys, uint32_t n);

#endif
