/* uring — see uring.h. */
#include "dataplane/uring.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "shared/log.h"

#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

int uring_init(struct io_uring *ring, unsigned entries, unsigned files, struct uring_info *info)
{
    memset(info, 0, sizeof *info);
    struct io_uring_params p;
    unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
    unsigned tries[] = {
        base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        base | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        base,
    };
    int ret = -EINVAL;
    for (unsigned i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        p.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, ring, &p);
        if (ret == 0) {
            info->defer_taskrun = i == 0;
            info->coop_taskrun = i == 1;
            break;
        }
        if (ret != -EINVAL)
            return ret;
    }
    if (ret)
        return ret;
    info->sq_entries = p.sq_entries;
    info->cq_entries = p.cq_entries;
    info->bundle = (p.features & IORING_FEAT_RECVSEND_BUNDLE) != 0;
    info->min_timeout = (p.features & IORING_FEAT_MIN_TIMEOUT) && info->defer_taskrun;

    /* Saves an fget/fput on every io_uring_enter. */
    info->ring_fd_registered = io_uring_register_ring_fd(ring) == 1;

    if (files) {
        ret = io_uring_register_files_sparse(ring, files);
        if (ret) {
            log_warn("io_uring: no fixed-file table of %u (%s); using plain descriptors", files,
                     strerror(-ret));
        } else {
            info->fixed_files = true;
        }
    }
    /* A worker's sockets never need io-wq for long; a pathological punt must
     * not spawn hundreds of kernel threads per worker. */
    unsigned maxw[2] = {2, 4};
    (void)io_uring_register_iowq_max_workers(ring, maxw);

    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (probe) {
        info->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        io_uring_free_probe(probe);
    }
    return 0;
}

struct io_uring_sqe *uring_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe)
        return sqe;
    /* SQ full: push what we have (no wait) and take a fresh entry. */
    int ret = io_uring_submit(ring);
    if (ret < 0 && ret != -EBUSY && ret != -EAGAIN)
        log_error("io_uring_submit: %s", strerror(-ret));
    return io_uring_get_sqe(ring);
}

int uring_bufring_init(struct io_uring *ring, struct uring_bufring *b, uint16_t bgid,
                       uint32_t nbufs, uint32_t buf_size)
{
    memset(b, 0, sizeof *b);
    if (nbufs == 0 || (nbufs & (nbufs - 1)) || nbufs > 32768)
        return -EINVAL;
    b->ring_bytes = (sizeof(struct io_uring_buf) * nbufs + 4095) & ~(size_t)4095;
    void *r = mmap(NULL, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (r == MAP_FAILED)
        return -errno;
    size_t bytes = (size_t)nbufs * buf_size;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (m == MAP_FAILED) {
        int err = -errno;
        munmap(r, b->ring_bytes);
        return err;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)r,
        .ring_entries = nbufs,
        .bgid = bgid,
    };
    int ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret) {
        munmap(m, bytes);
        munmap(r, b->ring_bytes);
        return ret;
    }
    b->br = r;
    b->bufs = m;
    b->nbufs = nbufs;
    b->buf_size = buf_size;
    b->mask = io_uring_buf_ring_mask(nbufs);
    b->bgid = bgid;
    io_uring_buf_ring_init(b->br);
    for (uint32_t i = 0; i < nbufs; i++)
        uring_bufring_recycle(b, (uint16_t)i);
    uring_bufring_publish(b);
    return 0;
}

void uring_bufring_destroy(struct io_uring *ring, struct uring_bufring *b)
{
    if (!b->br)
        return;
    (void)io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->bufs, (size_t)b->nbufs * b->buf_size);
    munmap(b->br, b->ring_bytes);
    memset(b, 0, sizeof *b);
}

int uring_submit_and_wait(struct io_uring *ring, const struct uring_info *info, unsigned wait_nr,
                          unsigned min_wait_us, struct __kernel_timespec *ts)
{
    if (!info->min_timeout || wait_nr <= 1 || !min_wait_us) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, ts, NULL);
        return ret < 0 ? ret : 0;
    }
    /* liburing 2.3 has no call that passes min_wait_usec (it is the
     * getevents arg's "pad" there), so the SQ is flushed as its
     * __io_uring_flush_sq() does (the SQ index array is preset at set-up;
     * no SQPOLL here) and the ring entered directly. */
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    unsigned submit = tail - io_uring_smp_load_acquire(sq->khead);
    struct io_uring_getevents_arg arg = {
        .sigmask = 0,
        .sigmask_sz = _NSIG / 8,
        .pad = min_wait_us, /* min_wait_usec */
        .ts = (uint64_t)(uintptr_t)ts,
    };
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = ring->ring_fd;
    if (info->ring_fd_registered) {
        flags |= IORING_ENTER_REGISTERED_RING;
        fd = ring->enter_ring_fd;
    }
    int ret =
        io_uring_enter2((unsigned)fd, submit, wait_nr, flags, (sigset_t *)(void *)&arg, sizeof arg);
    return ret < 0 ? ret : 0;
}
