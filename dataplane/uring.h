/*
 * uring — io_uring set-up for a worker, and the pieces liburing 2.3 lacks.
 *
 * uring_init() asks for SINGLE_ISSUER | DEFER_TASKRUN (the kernel runs
 * completion work only when the worker enters the ring, so it never competes
 * with the worker for its core), a large CQ, SUBMIT_ALL, a registered ring fd
 * and a sparse fixed-file table; on kernels without one of them it falls back
 * and says so in <info>.  uring_bufring_*() is the provided-buffer ring that
 * every multishot receive draws from (io_uring_setup_buf_ring only arrived in
 * liburing 2.4, so it is built here by hand, as liburing HEAD's br_setup()
 * does).
 *
 * One ring per worker process, used only by that process.
 */
#ifndef SLUICE_URING_H
#define SLUICE_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct uring_info {
    bool defer_taskrun; /* SINGLE_ISSUER | DEFER_TASKRUN */
    bool coop_taskrun;  /* fallback when DEFER_TASKRUN is refused */
    bool ring_fd_registered;
    bool fixed_files;
    bool bundle;      /* IORING_FEAT_RECVSEND_BUNDLE (6.10+) */
    bool send_zc;     /* IORING_OP_SEND_ZC supported */
    bool min_timeout; /* IORING_FEAT_MIN_TIMEOUT (6.12+): batched waits */
    unsigned sq_entries;
    unsigned cq_entries;
};

/* Sets up <ring>; <files> fixed-file slots (0 = none).  0 or -errno. */
int uring_init(struct io_uring *ring, unsigned entries, unsigned files, struct uring_info *info);

/* An SQE, submitting what is queued first if the SQ is full.  Never NULL
 * unless the ring is broken (then the worker exits). */
struct io_uring_sqe *uring_sqe(struct io_uring *ring);

/* Submits what is queued and waits for completions: up to <min_wait_us>
 * for <wait_nr> of them, then for the first one until <ts> (-ETIME).  With
 * DEFER_TASKRUN the kernel does not even wake the worker before <wait_nr>
 * completions are pending or <min_wait_us> has passed, so under load one
 * wake-up serves a batch instead of each socket event costing its sender an
 * IPI and the worker a context switch; idle, nothing changes.  Without the
 * kernel feature (or with <wait_nr> <= 1) it is a plain wait for one.
 * 0 or -errno. */
int uring_submit_and_wait(struct io_uring *ring, const struct uring_info *info, unsigned wait_nr,
                          unsigned min_wait_us, struct __kernel_timespec *ts);

/* A ring of provided buffers of one size, buffer group <bgid>. */
struct uring_bufring {
    struct io_uring_buf_ring *br;
    char *bufs;
    uint32_t nbufs; /* power of two */
    uint32_t buf_size;
    uint32_t mask;
    uint16_t bgid;
    uint32_t pending; /* buffers added since the last publish */
    size_t ring_bytes;
};

int uring_bufring_init(struct io_uring *ring, struct uring_bufring *b, uint16_t bgid,
                       uint32_t nbufs, uint32_t buf_size);
void uring_bufring_destroy(struct io_uring *ring, struct uring_bufring *b);

static inline char *uring_bufring_addr(const struct uring_bufring *b, uint16_t bid)
{
    return b->bufs + (size_t)bid * b->buf_size;
}

/* Gives buffer <bid> back; visible to the kernel after uring_bufring_publish(). */
static inline void uring_bufring_recycle(struct uring_bufring *b, uint16_t bid)
{
    io_uring_buf_ring_add(b->br, uring_bufring_addr(b, bid), b->buf_size, bid, b->mask,
                          (int)b->pending);
    b->pending++;
}

/* Publishes recycled buffers with one release store (batch per loop turn). */
static inline void uring_bufring_publish(struct uring_bufring *b)
{
    if (b->pending) {
        io_uring_buf_ring_advance(b->br, (int)b->pending);
        b->pending = 0;
    }
}

/* Sets the buffer-select fields liburing 2.3 has no helper for. */
static inline void uring_sqe_buf_group(struct io_uring_sqe *sqe, uint16_t bgid)
{
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bgid;
}

#endif
