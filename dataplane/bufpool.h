/*
 * bufpool — a worker's slabs for bytes waiting to go out to clients.
 *
 * One anonymous mapping cut into equal power-of-two slabs, registered with
 * the worker's ring as a single fixed buffer (so any slab can be the source
 * of a SEND_ZC with IORING_RECVSEND_FIXED_BUF, buf_index 0).  Slabs are named
 * by index; their metadata (fill level, chain link, zero-copy references)
 * lives in a side array so the slab bytes stay aligned and dense.
 *
 * get/put are O(1) and allocate nothing: the per-token path only ever takes
 * slabs from here.  When the pool is empty, get fails and the caller pauses
 * the stream (backpressure) rather than allocating.  A slab that is still
 * referenced by an in-flight zero-copy send is freed when its last
 * notification arrives (bufpool_unref), not before.
 *
 * Owned by one worker; not shared between processes.
 */
#ifndef SLUICE_BUFPOOL_H
#define SLUICE_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_uring;

#define SLAB_NONE UINT32_MAX

struct slab_meta {
    uint32_t next;   /* next slab in an outq chain */
    uint32_t fill;   /* bytes written */
    uint16_t refs;   /* in-flight zero-copy sends */
    uint16_t orphan; /* released by its queue while refs > 0 */
};

struct bufpool {
    char *base;
    struct slab_meta *meta;
    uint32_t *free_stack;
    uint32_t nfree;
    uint32_t nslabs;
    uint32_t slab_size;
    bool registered; /* io_uring_register_buffers succeeded */
};

int bufpool_init(struct bufpool *p, uint32_t slab_size, uint32_t nslabs);
void bufpool_destroy(struct bufpool *p);

/* Registers the whole pool as fixed buffer 0.  0 or -errno (e.g. -ENOMEM
 * under a small RLIMIT_MEMLOCK: then zero-copy sends are simply not used). */
int bufpool_register(struct bufpool *p, struct io_uring *ring);

static inline uint32_t bufpool_get(struct bufpool *p)
{
    if (!p->nfree)
        return SLAB_NONE;
    uint32_t i = p->free_stack[--p->nfree];
    p->meta[i] = (struct slab_meta){.next = SLAB_NONE};
    return i;
}

static inline void bufpool_put(struct bufpool *p, uint32_t i)
{
    if (p->meta[i].refs) {
        p->meta[i].orphan = 1;
        return;
    }
    p->free_stack[p->nfree++] = i;
}

/* Drops one zero-copy reference; frees the slab if it was orphaned. */
static inline void bufpool_unref(struct bufpool *p, uint32_t i)
{
    if (--p->meta[i].refs == 0 && p->meta[i].orphan) {
        p->meta[i].orphan = 0;
        p->free_stack[p->nfree++] = i;
    }
}

static inline char *bufpool_ptr(const struct bufpool *p, uint32_t i)
{
    return p->base + (size_t)i * p->slab_size;
}

static inline uint32_t bufpool_used(const struct bufpool *p)
{
    return p->nslabs - p->nfree;
}

#endif
