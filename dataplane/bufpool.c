/* bufpool — see bufpool.h. */
#include "dataplane/bufpool.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int bufpool_init(struct bufpool *p, uint32_t slab_size, uint32_t nslabs)
{
    memset(p, 0, sizeof *p);
    if (!slab_size || (slab_size & (slab_size - 1)) || !nslabs)
        return -EINVAL;
    size_t bytes = (size_t)slab_size * nslabs;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    p->meta = calloc(nslabs, sizeof *p->meta);
    p->free_stack = malloc(sizeof *p->free_stack * nslabs);
    if (!p->meta || !p->free_stack) {
        free(p->meta);
        free(p->free_stack);
        munmap(m, bytes);
        memset(p, 0, sizeof *p);
        return -ENOMEM;
    }
    p->base = m;
    p->nslabs = nslabs;
    p->slab_size = slab_size;
    /* Low indices on top of the stack: a lightly loaded worker keeps reusing
     * the same few hot slabs instead of touching the whole mapping. */
    for (uint32_t i = 0; i < nslabs; i++)
        p->free_stack[i] = nslabs - 1 - i;
    p->nfree = nslabs;
    return 0;
}

void bufpool_destroy(struct bufpool *p)
{
    if (p->base)
        munmap(p->base, (size_t)p->slab_size * p->nslabs);
    free(p->meta);
    free(p->free_stack);
    memset(p, 0, sizeof *p);
}

int bufpool_register(struct bufpool *p, struct io_uring *ring)
{
    struct iovec iov = {.iov_base = p->base, .iov_len = (size_t)p->slab_size * p->nslabs};
    int ret = io_uring_register_buffers(ring, &iov, 1);
    p->registered = ret == 0;
    return ret;
}
