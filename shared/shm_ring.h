/*
 * shm_ring — a lock-free single-producer/single-consumer ring of fixed-size
 * records in memory shared by two processes.
 *
 * A worker publishes events to the control plane through one ring and the
 * control plane sends it commands through another.  The producer is a worker
 * on the per-token path, so a push never blocks, never spins and never makes
 * a syscall: when the ring is full the record is dropped and counted in
 * `dropped`, and the caller decides what a lost event means.
 *
 * The protocol is io_uring's SQ/CQ contract: free-running 32-bit indices,
 * the producer writes a slot and then publishes it with a release store of
 * `tail`; the consumer acquires `tail`, copies the slots out and hands them
 * back with a release store of `head`.  Each side keeps a copy of the other's
 * index on its own cache line and re-reads the real one only when the copy
 * says full (producer) or empty (consumer), so in steady state neither side
 * pulls the other's line on every record.
 *
 * Promises and rules:
 * - Exactly one producer and one consumer at a time (processes or threads);
 *   two producers or two consumers corrupt it.  Nothing else may write it.
 * - No pointers inside: the ring may be mapped at a different address in
 *   each process.  Its atomics are lock-free, hence address-free, which is
 *   what makes them work across processes (checked below).
 * - Every piece of consumer state (head and its copy of tail) lives in the
 *   ring, so a consumer process that dies can be replaced by a new one that
 *   just keeps popping.  Records a dead consumer had copied out but not yet
 *   handed back (a pop interrupted before its store of head) are delivered
 *   again; records it had popped but not yet acted on are lost with it.
 *   The producer's state (tail, its copy of head, dropped) is in the ring
 *   too, so a replacement producer continues the same way; a push cut short
 *   by the producer's death publishes nothing.
 * - Ownership: whoever maps the segment owns the memory (shm_ring_bytes()
 *   says how much); the ring allocates nothing and holds no resource.
 *
 * Records are SHM_RING_REC_SIZE bytes; a caller's record struct must fit
 * (static_assert it), a shorter one is zero-padded in its slot.
 */
#ifndef SLUICE_SHM_RING_H
#define SLUICE_SHM_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_RING_REC_SIZE     64
#define SHM_RING_MAX_CAPACITY (1u << 24)

_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "shm_ring needs lock-free (address-free) atomics to share them between processes");

struct shm_ring {
    /* Written by init, then only read by both sides. */
    uint32_t capacity;
    uint32_t mask;

    /* Producer's line: the consumer reads tail here only when its copy
     * says empty, and reads dropped only for reporting. */
    _Atomic uint32_t tail __attribute__((aligned(64)));
    uint32_t head_cache;
    _Atomic uint64_t dropped;

    /* Consumer's line. */
    _Atomic uint32_t head __attribute__((aligned(64)));
    uint32_t tail_cache;

    unsigned char rec[][SHM_RING_REC_SIZE] __attribute__((aligned(64)));
};

/* Bytes to reserve for a ring of <capacity> records; 0 if the capacity is
 * not one shm_ring_init() accepts. */
size_t shm_ring_bytes(uint32_t capacity);

/* Zeroes shm_ring_bytes(capacity) bytes at <r> and makes an empty ring.
 * Returns 0, or -EINVAL when capacity is 0, not a power of two or above
 * SHM_RING_MAX_CAPACITY.  Call it before either side uses the ring. */
int shm_ring_init(struct shm_ring *r, uint32_t capacity);

/* For tests: as shm_ring_init() but with both indices at <start_index>, so
 * that wrap-around of the 32-bit indices can be reached quickly.  The
 * capacity must be valid (nothing is checked). */
void shm_ring_init_at(struct shm_ring *r, uint32_t capacity, uint32_t start_index);

/* Producer only.  Copies <len> bytes of <rec> into the next slot and zero-fills
 * the rest of it.  Returns 0; -ENOBUFS when the ring is full (the record is
 * dropped and counted); -EINVAL when len > SHM_RING_REC_SIZE. */
int shm_ring_push(struct shm_ring *r, const void *rec, size_t len);

/* Consumer only.  Copies up to <max> records, SHM_RING_REC_SIZE bytes each,
 * into <out> in the order they were pushed and frees their slots.  Returns
 * how many, 0 when empty.  It may return fewer than are waiting: it looks at
 * the producer's index again only when it has used up those it already
 * knew of, so drain by popping until it returns 0. */
unsigned shm_ring_pop(struct shm_ring *r, void *out, unsigned max);

/* Records waiting; from either side (or a third process) it is a snapshot
 * that may be stale by the time it returns. */
uint32_t shm_ring_count(const struct shm_ring *r);

/* Pushes refused because the ring was full, since init.  Every -ENOBUFS
 * counts, so a producer that retries a record (the tests do; sluice's
 * workers must not) counts each try. */
uint64_t shm_ring_dropped(const struct shm_ring *r);

uint32_t shm_ring_capacity(const struct shm_ring *r);

#endif
