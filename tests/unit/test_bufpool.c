/*
 * Unit tests for dataplane/bufpool: init argument checks, get until empty
 * (distinct, in range, aligned slabs), LIFO reuse, used counts, and the
 * zero-copy reference rules (a referenced slab is freed by its last unref,
 * not by put).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/bufpool.h"

Test(bufpool, init_rejects_bad_sizes)
{
    static const uint32_t bad[] = {0, 3, 100, 4095, 4097, 6000, 12288, 0x80000001u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bufpool p;
        memset(&p, 0xa5, sizeof p);
        cr_assert_eq(bufpool_init(&p, bad[i], 4), -EINVAL, "slab_size %u", bad[i]);
        cr_assert_null(p.base, "slab_size %u leaves no mapping", bad[i]);
        cr_assert_null(p.meta);
        cr_assert_null(p.free_stack);
        bufpool_destroy(&p); /* harmless on a failed init */
    }
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 4096, 0), -EINVAL, "zero slabs");
    bufpool_destroy(&p);
}

Test(bufpool, init_accepts_powers_of_two)
{
    for (uint32_t sz = 1; sz <= (1u << 20); sz <<= 1) {
        struct bufpool p;
        cr_assert_eq(bufpool_init(&p, sz, 3), 0, "slab_size %u", sz);
        cr_assert_eq(p.slab_size, sz);
        cr_assert_eq(p.nslabs, 3);
        cr_assert_eq(bufpool_used(&p), 0);
        cr_assert_not_null(p.base);
        cr_assert_eq(p.registered, false);
        bufpool_destroy(&p);
        cr_assert_null(p.base);
    }
}

static void check_drain(uint32_t slab_size, uint32_t nslabs)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, slab_size, nslabs), 0);
    uint8_t *seen = calloc(nslabs, 1);
    cr_assert_not_null(seen);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t align = slab_size < page ? slab_size : page;
    for (uint32_t k = 0; k < nslabs; k++) {
        uint32_t i = bufpool_get(&p);
        cr_assert_neq(i, SLAB_NONE, "get %u of %u", k, nslabs);
        cr_assert_lt(i, nslabs, "index in range");
        cr_assert_eq(seen[i], 0, "slab %u handed out twice", i);
        seen[i] = 1;
        cr_assert_eq(bufpool_used(&p), k + 1);
        char *ptr = bufpool_ptr(&p, i);
        cr_assert_eq(ptr, p.base + (size_t)i * slab_size);
        cr_assert_eq((uintptr_t)ptr % align, 0, "slab %u aligned to %zu", i, align);
        cr_assert_eq(p.meta[i].fill, 0);
        cr_assert_eq(p.meta[i].next, SLAB_NONE);
        cr_assert_eq(p.meta[i].refs, 0);
        cr_assert_eq(p.meta[i].orphan, 0);
        /* every byte of every slab is writable and private to it */
        memset(ptr, (int)(i & 0xff), slab_size);
    }
    cr_assert_eq(bufpool_get(&p), SLAB_NONE, "empty pool");
    cr_assert_eq(bufpool_get(&p), SLAB_NONE, "still empty");
    cr_assert_eq(bufpool_used(&p), nslabs);
    for (uint32_t i = 0; i < nslabs; i++) {
        const char *ptr = bufpool_ptr(&p, i);
        cr_assert_eq((uint8_t)ptr[0], (uint8_t)(i & 0xff));
        cr_assert_eq((uint8_t)ptr[slab_size - 1], (uint8_t)(i & 0xff));
    }
    for (uint32_t i = 0; i < nslabs; i++)
        bufpool_put(&p, i);
    cr_assert_eq(bufpool_used(&p), 0);
    free(seen);
    bufpool_destroy(&p);
}

Test(bufpool, get_until_empty)
{
    check_drain(4096, 8);
    check_drain(64, 100);
    check_drain(16384, 5);
    check_drain(1, 7);
}

Test(bufpool, put_get_lifo)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 1024, 16), 0);
    uint32_t a = bufpool_get(&p), b = bufpool_get(&p), c = bufpool_get(&p);
    cr_assert_eq(bufpool_used(&p), 3);
    bufpool_put(&p, b);
    cr_assert_eq(bufpool_used(&p), 2);
    bufpool_put(&p, a);
    bufpool_put(&p, c);
    cr_assert_eq(bufpool_used(&p), 0);
    cr_assert_eq(bufpool_get(&p), c, "last put, first out");
    cr_assert_eq(bufpool_get(&p), a);
    cr_assert_eq(bufpool_get(&p), b);
    /* a slab that comes back has its metadata reset */
    p.meta[b].fill = 77;
    p.meta[b].next = a;
    bufpool_put(&p, b);
    uint32_t again = bufpool_get(&p);
    cr_assert_eq(again, b);
    cr_assert_eq(p.meta[b].fill, 0);
    cr_assert_eq(p.meta[b].next, SLAB_NONE);
    bufpool_destroy(&p);
}

Test(bufpool, used_counts_track_get_put)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 256, 32), 0);
    uint32_t held[32];
    unsigned n = 0;
    /* a fixed pseudo-random walk of gets and puts */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int step = 0; step < 5000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if ((x & 1) && n < 32) {
            uint32_t i = bufpool_get(&p);
            cr_assert_neq(i, SLAB_NONE);
            for (unsigned k = 0; k < n; k++)
                cr_assert_neq(held[k], i, "slab %u held twice", i);
            held[n++] = i;
        } else if (n) {
            unsigned k = (unsigned)(x >> 8) % n;
            bufpool_put(&p, held[k]);
            held[k] = held[--n];
        } else {
            continue;
        }
        cr_assert_eq(bufpool_used(&p), n);
        cr_assert_eq(p.nfree, 32 - n);
    }
    bufpool_destroy(&p);
}

Test(bufpool, referenced_slab_freed_by_last_unref)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 4096, 4), 0);
    uint32_t s = bufpool_get(&p);
    p.meta[s].refs = 2; /* two zero-copy sends in flight */
    bufpool_put(&p, s);
    cr_assert_eq(p.meta[s].orphan, 1);
    cr_assert_eq(bufpool_used(&p), 1, "not freed while referenced");
    /* the free slabs are the other three; s is never handed out */
    uint32_t got[3];
    for (int i = 0; i < 3; i++) {
        got[i] = bufpool_get(&p);
        cr_assert_neq(got[i], SLAB_NONE);
        cr_assert_neq(got[i], s, "a referenced slab was reused");
    }
    cr_assert_eq(bufpool_get(&p), SLAB_NONE);
    for (int i = 0; i < 3; i++)
        bufpool_put(&p, got[i]);
    bufpool_unref(&p, s);
    cr_assert_eq(p.meta[s].refs, 1);
    cr_assert_eq(bufpool_used(&p), 1, "one reference left");
    bufpool_unref(&p, s);
    cr_assert_eq(p.meta[s].refs, 0);
    cr_assert_eq(p.meta[s].orphan, 0);
    cr_assert_eq(bufpool_used(&p), 0, "freed by the last unref");
    cr_assert_eq(bufpool_get(&p), s, "and reusable at once");
    bufpool_destroy(&p);
}

Test(bufpool, unref_of_owned_slab_does_not_free)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 4096, 4), 0);
    uint32_t s = bufpool_get(&p);
    p.meta[s].refs = 1;
    bufpool_unref(&p, s); /* notification before the queue let go of it */
    cr_assert_eq(p.meta[s].refs, 0);
    cr_assert_eq(bufpool_used(&p), 1, "still owned by its queue");
    bufpool_put(&p, s);
    cr_assert_eq(bufpool_used(&p), 0, "put without references frees at once");
    cr_assert_eq(p.meta[s].orphan, 0);
    bufpool_destroy(&p);
}

Test(bufpool, get_clears_references_of_reused_slab)
{
    struct bufpool p;
    cr_assert_eq(bufpool_init(&p, 512, 1), 0);
    uint32_t s = bufpool_get(&p);
    p.meta[s].refs = 1;
    bufpool_put(&p, s);
    cr_assert_eq(bufpool_get(&p), SLAB_NONE, "orphan is not free");
    bufpool_unref(&p, s);
    uint32_t t = bufpool_get(&p);
    cr_assert_eq(t, s);
    cr_assert_eq(p.meta[t].refs, 0);
    cr_assert_eq(p.meta[t].orphan, 0);
    bufpool_put(&p, t);
    cr_assert_eq(bufpool_used(&p), 0);
    bufpool_destroy(&p);
}
