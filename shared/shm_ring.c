/* shm_ring — see shm_ring.h. */
#include "shared/shm_ring.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct shm_ring) % 64 == 0, "records start on a cache line");
_Static_assert((SHM_RING_REC_SIZE & (SHM_RING_REC_SIZE - 1)) == 0,
               "a record never straddles lines");

static int capacity_ok(uint32_t capacity)
{
    return capacity && !(capacity & (capacity - 1)) && capacity <= SHM_RING_MAX_CAPACITY;
}

size_t shm_ring_bytes(uint32_t capacity)
{
    if (!capacity_ok(capacity))
        return 0;
    return sizeof(struct shm_ring) + (size_t)capacity * SHM_RING_REC_SIZE;
}

void shm_ring_init_at(struct shm_ring *r, uint32_t capacity, uint32_t start_index)
{
    memset(r, 0, sizeof(struct shm_ring) + (size_t)capacity * SHM_RING_REC_SIZE);
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->head_cache = start_index;
    r->tail_cache = start_index;
    atomic_store_explicit(&r->dropped, 0, memory_order_relaxed);
    atomic_store_explicit(&r->head, start_index, memory_order_relaxed);
    /* Release: a side started after init (in another process, through some
     * other synchronisation) sees the zeroed slots and fields above. */
    atomic_store_explicit(&r->tail, start_index, memory_order_release);
}

int shm_ring_init(struct shm_ring *r, uint32_t capacity)
{
    if (!capacity_ok(capacity))
        return -EINVAL;
    shm_ring_init_at(r, capacity, 0);
    return 0;
}

int shm_ring_push(struct shm_ring *r, const void *rec, size_t len)
{
    if (len > SHM_RING_REC_SIZE)
        return -EINVAL;
    /* Only this side writes tail, so a relaxed load of it is exact. */
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache >= r->capacity) {
        /* Acquire pairs with the consumer's release of head: once we see
         * a slot freed, its reads of the old record are done. */
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache >= r->capacity) {
            /* Single writer: load+store, no locked instruction. */
            atomic_store_explicit(&r->dropped,
                                  atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return -ENOBUFS;
        }
    }
    unsigned char *slot = r->rec[t & r->mask];
    if (len)
        memcpy(slot, rec, len);
    /* A fixed-size slot would otherwise carry an older record's bytes to a
     * consumer that reads all of it. */
    memset(slot + len, 0, SHM_RING_REC_SIZE - len);
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 0;
}

unsigned shm_ring_pop(struct shm_ring *r, void *out, unsigned max)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t avail = r->tail_cache - h;
    if (avail == 0) {
        /* Acquire pairs with the producer's release of tail: the slots
         * below it are fully written. */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        avail = r->tail_cache - h;
    }
    unsigned n = avail < max ? avail : max;
    if (n == 0)
        return 0;
    uint32_t at = h & r->mask;
    uint32_t first = r->capacity - at;
    if (first > n)
        first = n;
    unsigned char *dst = out;
    memcpy(dst, r->rec[at], (size_t)first * SHM_RING_REC_SIZE);
    if (n > first)
        memcpy(dst + (size_t)first * SHM_RING_REC_SIZE, r->rec[0],
               (size_t)(n - first) * SHM_RING_REC_SIZE);
    /* One release per batch: every copy above happens before the producer
     * may reuse these slots. */
    atomic_store_explicit(&r->head, h + n, memory_order_release);
    return n;
}

uint32_t shm_ring_count(const struct shm_ring *r)
{
    /* head first: it only grows towards tail, so a tail read later is never
     * behind it; the clamp covers head having moved on in between. */
    uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t n = t - h;
    return n > r->capacity ? r->capacity : n;
}

uint64_t shm_ring_dropped(const struct shm_ring *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

uint32_t shm_ring_capacity(const struct shm_ring *r)
{
    return r->capacity;
}
