/*
 * worker — one data-plane process: its io_uring event loop and the state
 * every part of it shares.
 *
 * A worker owns one SO_REUSEPORT listener (inherited from the supervisor),
 * one ring, one provided-buffer ring that every receive draws from, one slab
 * pool for outgoing bytes, one timer wheel, its client connections, its
 * backend connection pools and its slot in shared memory.  Nothing in it
 * blocks: the only waits are io_uring_submit_and_wait_timeout() at the top of
 * the loop.  All state hangs off struct worker, passed explicitly.
 *
 * Every SQE carries user_data = object pointer | op (objects are 16-byte
 * aligned), and every object counts its SQEs in flight; an object is freed
 * only when it is closed and that count is zero, so no completion can ever
 * find freed memory.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "dataplane/admit_queue.h"
#include "dataplane/bufpool.h"
#include "dataplane/h1_parser.h"
#include "dataplane/timer_wheel.h"
#include "dataplane/uring.h"
#include "shared/config.h"
#include "shared/list.h"
#include "shared/shm.h"

enum op {
    OP_IGNORE = 0, /* cancels and other SQEs whose result nobody needs */
    OP_ACCEPT,
    OP_SIGNAL,
    OP_CRECV,
    OP_CSEND,
    OP_CSEND_ZC,
    OP_CSHUT,
    OP_CCLOSE,
    OP_UCONNECT,
    OP_USEND,
    OP_URECV,
    OP_UCLOSE,
    OP__COUNT,
};
#define OP_MASK 15ULL

static inline uint64_t ud_make(const void *p, enum op op)
{
    return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

/* Timer kinds (tw_entry.kind). */
enum timer_kind {
    TK_CONN = 1,
    TK_STREAM = 2,
    TK_UPCONN = 3,
    TK_ADMIT = 4,
    TK_OVERDUE = 5,
};

struct conn;
struct upconn;
struct WOLFSSL_CTX;
struct backend_pool;
struct resume_peer;

struct worker {
    const struct config *cfg;
    unsigned id;  /* worker number */
    int slot_idx; /* its slot in shared memory */
    struct io_uring ring;
    struct uring_info uinfo;
    struct uring_bufring rx;
    struct bufpool slabs;
    struct timer_wheel tw;
    struct shm *shm;
    struct shm_slot *slot;
    struct shm_slot_hdr *hdr;

    int listen_fd;
    bool accept_armed;
    int tls_fd; /* TLS listener, -1 = none */
    bool tls_accept_armed;
    struct WOLFSSL_CTX *tls_ctx; /* this worker's certificate (tls.c) */
    uint64_t accept_retry_ms;    /* after an accept error, not before this */
    int sig_fd;
    struct signalfd_siginfo siginfo;

    uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed every loop turn */

    uint32_t nconns;
    struct list_node conns;     /* every live client connection */
    struct conn *dirty;         /* connections with bytes to flush this turn */
    struct list_node rearm;     /* client receives to re-arm once buffers are back */
    struct list_node up_rearm;  /* backend receives to re-arm likewise */
    struct list_node slab_wait; /* streams paused until slabs free up */

    struct backend_pool *pools;
    unsigned npools;
    uint32_t nupconns;    /* open backend connections */
    uint32_t upconn_objs; /* allocated, including closed ones awaiting completions */

    bool draining;
    bool cut; /* drain deadline passed: every connection was closed */
    uint64_t drain_deadline_ms;

    uint32_t stream_counter;
    uint32_t stream_salt;

    struct h1_header *hdrs; /* scratch header array, cfg->max_headers */
    uint32_t zc_threshold;  /* 0 = plain sends only */
    unsigned batch_nr;      /* completions the next wait asks for (batch_wait_us) */
    uint32_t zc_copied_run; /* consecutive zero-copy sends the kernel copied anyway */
    unsigned chunk_digits;  /* width of an event's chunk-size line (stream.c) */

    /* admission (admission.c) */
    struct admit_queue aq;
    struct tw_entry adm_timer;
    struct tw_entry overdue_timer;
    struct list_node awaiting_ft; /* admitted streams without a first token, oldest first */
    bool adm_pump_pending;        /* a slot freed this turn: try the queue */
    uint16_t *tenant_map;         /* config tenant index -> shared table index */
    uint16_t default_tenant;      /* "default" in the shared table, UINT16_MAX = none */
    uint32_t rng;                 /* xorshift state for Retry-After spreading */
    unsigned bal_rr;              /* where backend ties start (balance.c) */
    struct shm_ring *ev_ring;     /* events up to the control plane */
    struct shm_ring *cmd_ring;    /* commands down from it */

    /* resumable streams (resume.c) */
    struct list_node resumable;   /* every resumable stream's retention state */
    struct list_node resume_done; /* detached and ended, oldest first */
    uint64_t resume_mem;          /* bytes of event-log buffers */
    uint64_t resume_mem_max;      /* this worker's share of resume_memory_max */
    uint32_t resume_detached;     /* streams retained for a client that left */
    int resume_fd;                /* resume socket (abstract unix), -1 = none */
    bool resume_accept_armed;
    struct resume_peer *peers; /* connection pools towards other workers */
    unsigned npeers;
};

/* Runs a worker until it has drained.  Never returns; exits the process. */
void worker_main(const struct config *cfg, struct shm *shm, int slot_idx, unsigned id,
                 int listen_fd, int tls_fd) __attribute__((noreturn));

/* Queues <c> for a send at the end of this loop turn (batched). */
void worker_mark_dirty(struct worker *w, struct conn *c);

/* An SQE (submitting if the SQ is full). */
struct io_uring_sqe *worker_sqe(struct worker *w);
/* Makes sure the next <n> SQEs come from one submission (for links). */
void worker_sqe_reserve(struct worker *w, unsigned n);

#endif
