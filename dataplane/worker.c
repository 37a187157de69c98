/* worker — see worker.h. */
#include "shared/clock.h"
#include "dataplane/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/admission.h"
#include "dataplane/balance.h"
#include "dataplane/client.h"
#include "dataplane/resume.h"
#include "dataplane/tls.h"
#include "dataplane/stream.h"
#include "dataplane/upstream.h"
#include "shared/fmt.h"
#include "shared/log.h"

#define RING_ENTRIES     4096
#define LOOP_WAIT_MAX_MS 1000
#define ACCEPT_RETRY_MS  100
#define BATCH_MIN        8   /* completions per turn that count as busy */
#define BATCH_MAX        256 /* most completions one wait asks for */

struct io_uring_sqe *worker_sqe(struct worker *w)
{
    struct io_uring_sqe *sqe = uring_sqe(&w->ring);
    if (!sqe) {
        log_error("io_uring: no submission entry available; the ring is broken");
        _exit(1);
    }
    return sqe;
}

void worker_sqe_reserve(struct worker *w, unsigned n)
{
    if (io_uring_sq_space_left(&w->ring) < n)
        (void)io_uring_submit(&w->ring);
}

void worker_mark_dirty(struct worker *w, struct conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = w->dirty;
    w->dirty = c;
}

/* Accepts carry which listener they are from in place of a pointer. */
enum listener {
    L_PLAIN = 0,
    L_TLS = 0x10,
    L_RESUME = 0x20, /* other workers relaying resumes (resume.c) */
};

static bool *armed_flag(struct worker *w, enum listener l)
{
    return l == L_TLS      ? &w->tls_accept_armed
           : l == L_RESUME ? &w->resume_accept_armed
                           : &w->accept_armed;
}

static void arm_accept(struct worker *w, enum listener l)
{
    struct io_uring_sqe *sqe = worker_sqe(w);
    int fd = l == L_TLS ? w->tls_fd : l == L_RESUME ? w->resume_fd : w->listen_fd;
    if (w->uinfo.fixed_files)
        io_uring_prep_multishot_accept_direct(sqe, fd, NULL, NULL, 0);
    else
        io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_make((void *)(uintptr_t)l, OP_ACCEPT));
    *armed_flag(w, l) = true;
}

static void arm_signal(struct worker *w)
{
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_read(sqe, w->sig_fd, &w->siginfo, sizeof w->siginfo, 0);
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_SIGNAL));
}

static void start_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = w->now_ms + w->cfg->drain_timeout_ms;
    atomic_store_explicit(&w->hdr->draining, 1, memory_order_relaxed);
    if (w->accept_armed) {
        struct io_uring_sqe *sqe = worker_sqe(w);
        io_uring_prep_cancel64(sqe, ud_make(NULL, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    }
    if (w->tls_accept_armed) {
        struct io_uring_sqe *sqe = worker_sqe(w);
        io_uring_prep_cancel64(sqe, ud_make((void *)(uintptr_t)L_TLS, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    }
    /* The resume socket stays open: streams retained here can still be
     * resumed through other workers until they end or the deadline. */
    /* Our copy of the listening socket goes now: on shutdown the supervisor
     * closes its own, so new connections are refused instead of queueing
     * for nobody; on reload the new workers hold copies and take them. */
    io_uring_submit(&w->ring);
    close(w->listen_fd);
    w->listen_fd = -1;
    if (w->tls_fd >= 0)
        close(w->tls_fd);
    w->tls_fd = -1;
    log_info("draining: %u connections, %lld streams; deadline %u ms", w->nconns,
             (long long)atomic_load_explicit(&w->slot->g.streams_active, memory_order_relaxed),
             w->cfg->drain_timeout_ms);
    client_drain(w);
    upstream_pools_close(w);
    resume_drain(w);
}

static void on_accept(struct worker *w, struct io_uring_cqe *cqe, enum listener l)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        *armed_flag(w, l) = false;
    if (cqe->res >= 0) {
        struct conn *c = client_accept(w, cqe->res, w->uinfo.fixed_files, l == L_TLS);
        if (c)
            c->internal = l == L_RESUME;
        return;
    }
    if (cqe->res == -ECANCELED)
        return;
    /* ENFILE (fixed table full), EMFILE, ENOBUFS...: back off a little
     * rather than spin on a listener we cannot serve. */
    log_warn("accept: %s", strerror(-cqe->res));
    *armed_flag(w, l) = false;
    w->accept_retry_ms = w->now_ms + ACCEPT_RETRY_MS;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        struct io_uring_sqe *sqe = worker_sqe(w);
        io_uring_prep_cancel64(sqe, ud_make((void *)(uintptr_t)l, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    }
}

static void on_signal(struct worker *w, struct io_uring_cqe *cqe)
{
    if (cqe->res == (int)sizeof w->siginfo) {
        int sig = (int)w->siginfo.ssi_signo;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
            start_drain(w);
        /* SIGHUP: the supervisor reloads by starting new workers; this one
         * keeps its configuration until it is told to drain. */
    }
    arm_signal(w);
}

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    enum op op = (enum op)(ud & OP_MASK);
    void *p = (void *)(uintptr_t)(ud & 0x0000fffffffffff0ULL);
    switch (op) {
    case OP_IGNORE:
        return;
    case OP_ACCEPT:
        on_accept(w, cqe, (enum listener)(uintptr_t)p);
        return;
    case OP_SIGNAL:
        on_signal(w, cqe);
        return;
    case OP_CRECV:
        client_on_recv(p, cqe);
        return;
    case OP_CSEND:
        client_on_send(p, cqe, false);
        return;
    case OP_CSEND_ZC:
        client_on_send(p, cqe, true);
        return;
    case OP_CSHUT:
        client_on_shut(p, cqe);
        return;
    case OP_CCLOSE:
        client_on_close(p, cqe);
        return;
    case OP_UCONNECT:
        upstream_on_connect(p, cqe);
        return;
    case OP_USEND:
        upstream_on_send(p, cqe);
        return;
    case OP_URECV:
        upstream_on_recv(p, cqe);
        return;
    case OP_UCLOSE:
        upstream_on_close(p, cqe);
        return;
    case OP__COUNT:
        break;
    }
    log_error("completion with unknown op %u", (unsigned)op);
}

static void on_timer(struct tw_entry *e, void *arg)
{
    (void)arg;
    switch (e->kind) {
    case TK_CONN:
        client_on_timer(container_of(e, struct conn, timer));
        return;
    case TK_STREAM:
        stream_on_timer(container_of(e, struct stream, timer));
        return;
    case TK_UPCONN:
        upstream_on_timer(container_of(e, struct upconn, timer));
        return;
    case TK_ADMIT:
        adm_on_timer(container_of(e, struct worker, adm_timer));
        return;
    case TK_OVERDUE:
        adm_on_overdue_timer(container_of(e, struct worker, overdue_timer));
        return;
    default:
        return;
    }
}

/* Work deferred to the end of a loop turn, so that everything the turn's
 * completions produced goes to the kernel in one io_uring_enter. */
static void end_of_turn(struct worker *w)
{
    if (w->adm_pump_pending)
        adm_pump(w);
    adm_poll_commands(w);
    if (w->rx.pending) {
        /* Buffers came back: receives that ran dry may start again. */
        struct list_node *n;
        while ((n = list_pop_head(&w->rearm)) != NULL)
            client_rearm(container_of(n, struct conn, rearm_node));
        while ((n = list_pop_head(&w->up_rearm)) != NULL)
            upstream_rearm(container_of(n, struct upconn, rearm_node));
    }
    if (!list_empty(&w->slab_wait) && w->slabs.nfree > w->slabs.nslabs / 8) {
        for (unsigned i = 0; i < 64 && !list_empty(&w->slab_wait); i++) {
            struct list_node *n = list_pop_head(&w->slab_wait);
            stream_slab_resume(container_of(n, struct stream, wait_node));
        }
    }
    while (w->dirty) {
        struct conn *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        client_flush(c);
    }
    uring_bufring_publish(&w->rx);
    atomic_store_explicit(&w->slot->g.slabs_used, (int64_t)bufpool_used(&w->slabs),
                          memory_order_relaxed);
    atomic_store_explicit(&w->hdr->heartbeat_ms, w->now_ms, memory_order_relaxed);
}

static int setup_signals(struct worker *w)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    w->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return w->sig_fd < 0 ? -errno : 0;
}

void worker_main(const struct config *cfg, struct shm *shm, int slot_idx, unsigned id,
                 int listen_fd, int tls_fd)
{
    static struct worker w; /* one per process; static keeps the wheel off the stack */
    log_init("worker", (int)id, (enum log_level)cfg->log_level);
    /* If the supervisor dies, drain and go: orphans holding the port would
     * silently share it with the next sluice. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    memset(&w, 0, sizeof w);
    w.cfg = cfg;
    w.id = id;
    w.slot_idx = slot_idx;
    w.shm = shm;
    w.slot = shm_slot(shm, (unsigned)slot_idx);
    w.hdr = &shm->seg->hdr[slot_idx];
    w.listen_fd = listen_fd;
    w.tls_fd = tls_fd;
    /* An event is at most max_event_size (or one slab) plus its id line and
     * a CRLF; 256 bytes of margin, and its chunk size always fits. */
    uint64_t biggest = cfg->max_event_size > cfg->slab_size ? cfg->max_event_size : cfg->slab_size;
    w.chunk_digits = fmt_hex_digits(biggest + 256);
    w.now_ms = clock_mono_ms();
    atomic_store_explicit(&w.hdr->pid, (int32_t)getpid(), memory_order_relaxed);
    if (getrandom(&w.stream_salt, sizeof w.stream_salt, GRND_NONBLOCK) != sizeof w.stream_salt)
        w.stream_salt = (uint32_t)getpid() * 2654435761u ^ (uint32_t)w.now_ms;
    list_init(&w.conns);
    list_init(&w.rearm);
    list_init(&w.up_rearm);
    list_init(&w.slab_wait);
    tw_init(&w.tw, w.now_ms);

    int ret = setup_signals(&w);
    if (ret < 0) {
        log_error("signals: %s", strerror(-ret));
        _exit(1);
    }
    ret = uring_init(&w.ring, RING_ENTRIES, cfg->max_connections + 64, &w.uinfo);
    if (ret < 0) {
        log_error("io_uring_queue_init: %s", strerror(-ret));
        _exit(1);
    }
    ret = uring_bufring_init(&w.ring, &w.rx, 0, cfg->recv_buffers, cfg->recv_buffer_size);
    if (ret < 0) {
        log_error("receive buffer ring (%u x %u): %s", cfg->recv_buffers, cfg->recv_buffer_size,
                  strerror(-ret));
        _exit(1);
    }
    ret = bufpool_init(&w.slabs, cfg->slab_size, cfg->slabs);
    if (ret < 0) {
        log_error("slab pool (%u x %u): %s", cfg->slabs, cfg->slab_size, strerror(-ret));
        _exit(1);
    }
    /* Registration pins the pool; it only pays off for SEND_ZC (plain sends
     * ignore fixed buffers), so it happens only when zero-copy is on. */
    if (cfg->send_zc_threshold && w.uinfo.send_zc) {
        ret = bufpool_register(&w.slabs, &w.ring);
        if (ret < 0)
            log_warn("cannot register the slab pool (%s): zero-copy sends disabled",
                     strerror(-ret));
        else
            w.zc_threshold = cfg->send_zc_threshold;
    }
    w.hdrs = calloc(cfg->max_headers, sizeof *w.hdrs);
    if (!w.hdrs || upstream_pools_init(&w) < 0 || bal_init(&w) < 0 || adm_init(&w) < 0) {
        log_error("out of memory");
        _exit(1);
    }
    ret = resume_init(&w);
    if (ret < 0) {
        log_error("resume socket: %s", strerror(-ret));
        _exit(1);
    }
    w.batch_nr = 1;
    if (cfg->batch_wait_us && !w.uinfo.min_timeout)
        log_warn("batch_wait_us ignored: the kernel has no IORING_FEAT_MIN_TIMEOUT (6.12+) "
                 "or the ring no DEFER_TASKRUN");
    if (w.tls_fd >= 0) {
        char why[512];
        w.tls_ctx = tls_ctx_new(cfg, why, sizeof why);
        if (!w.tls_ctx) {
            log_error("tls: %s", why);
            _exit(1);
        }
        arm_accept(&w, L_TLS);
    }
    arm_accept(&w, L_PLAIN);
    if (w.resume_fd >= 0)
        arm_accept(&w, L_RESUME);
    arm_signal(&w);
    char batching[48] = "off";
    if (cfg->batch_wait_us)
        snprintf(batching, sizeof batching, w.uinfo.min_timeout ? "up to %u us" : "off (kernel)",
                 cfg->batch_wait_us);
    log_info("ready: ring %s, fixed files %s, %u x %u B receive buffers, %u x %u B slabs, "
             "zero-copy sends %s, batched waits %s",
             w.uinfo.defer_taskrun  ? "SINGLE_ISSUER|DEFER_TASKRUN"
             : w.uinfo.coop_taskrun ? "COOP_TASKRUN"
                                    : "default",
             w.uinfo.fixed_files ? "on" : "off", cfg->recv_buffers, cfg->recv_buffer_size,
             cfg->slabs, cfg->slab_size, w.zc_threshold ? "on" : "off", batching);

    for (;;) {
        w.now_ms = clock_mono_ms();
        /* An idle worker's gap window still completes each interval. */
        sketch_advance(&w.slot->itl_win, w.now_ms / cfg->qos_interval_ms);
        tw_advance(&w.tw, w.now_ms, on_timer, &w);
        if (w.draining) {
            if (w.nconns == 0 && !resume_holding(&w)) {
                /* Let the last closes complete so every object is freed
                 * (and a leak checker sees a clean exit). */
                upstream_pools_close(&w);
                resume_drain(&w);
                if (w.upconn_objs == 0 || w.now_ms >= w.drain_deadline_ms + 2000)
                    break;
            }
            if (w.now_ms >= w.drain_deadline_ms && !w.cut) {
                /* Time is up: whatever still streams is cut. */
                struct list_node *n = w.conns.next;
                while (n != &w.conns) {
                    struct conn *c = container_of(n, struct conn, node);
                    n = n->next;
                    client_abort(c);
                }
                resume_drop_all(&w);
                w.drain_deadline_ms = w.now_ms;
                w.cut = true;
            }
        } else if (w.now_ms >= w.accept_retry_ms) {
            if (!w.accept_armed)
                arm_accept(&w, L_PLAIN);
            if (w.tls_fd >= 0 && !w.tls_accept_armed)
                arm_accept(&w, L_TLS);
        }
        if (w.resume_fd >= 0 && !w.resume_accept_armed && w.now_ms >= w.accept_retry_ms)
            arm_accept(&w, L_RESUME);
        end_of_turn(&w);
        uint64_t wait_ms = tw_timeout_ms(&w.tw, w.now_ms, LOOP_WAIT_MAX_MS);
        struct __kernel_timespec ts = {
            .tv_sec = (long long)(wait_ms / 1000),
            .tv_nsec = (long long)(wait_ms % 1000) * 1000000,
        };
        ret = uring_submit_and_wait(&w.ring, &w.uinfo, w.batch_nr, cfg->batch_wait_us, &ts);
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
            log_error("io_uring_submit_and_wait: %s", strerror(-ret));
            _exit(1);
        }
        /* The wait may have lasted up to a second: completions must see the
         * time they arrived, not the time the loop went to sleep (a
         * connection accepted now must not inherit an old deadline). */
        w.now_ms = clock_mono_ms();
        struct io_uring_cqe *cqe;
        unsigned head;
        unsigned count = 0;
        io_uring_for_each_cqe (&w.ring, head, cqe) {
            dispatch(&w, cqe);
            count++;
        }
        io_uring_cq_advance(&w.ring, count);
        /* Interrupt moderation, adaptively: a turn that found many
         * completions asks the next wait for as many (up to
         * batch_wait_us), so a busy worker wakes once per batch instead
         * of once per socket event; a quiet one (a handful per turn) waits
         * for the first as before and adds no latency. */
        w.batch_nr = count >= BATCH_MIN ? (count < BATCH_MAX ? count : BATCH_MAX) : 1;
    }
    log_info("drained; exiting");
    upstream_pools_close(&w);
    io_uring_submit(&w.ring);
    uring_bufring_destroy(&w.ring, &w.rx);
    io_uring_queue_exit(&w.ring);
    bufpool_destroy(&w.slabs);
    adm_destroy(&w);
    resume_destroy(&w);
    free(w.pools);
    free(w.hdrs);
    exit(0);
}
