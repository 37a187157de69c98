/*
 * upstream — HTTP/1.1 connections to backends, kept alive in a pool per
 * backend per worker.
 *
 * A stream asks for a connection (upstream_acquire): the most recently used
 * idle one, or a new non-blocking socket with TCP_NODELAY, connected through
 * the ring with a linked timeout.  The request goes out with one sendmsg
 * (head and body as two iovecs, the body never copied).  Each connection
 * keeps one multishot receive armed on the worker's provided buffers, also
 * while idle in the pool, so a backend that closes an idle connection is
 * noticed at once and never handed to a request.  The response head is
 * parsed (in place when it arrives in one buffer), then the body is
 * de-chunked or counted and handed to the stream as spans.
 *
 * Closing for a cancellation shuts the socket down at once (the backend sees
 * FIN within the same loop turn and aborts the generation), then cancels the
 * ring's operations on it and closes it.
 *
 * Owned by its worker; attached to at most one stream at a time.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dataplane/h1_chunked.h"
#include "dataplane/timer_wheel.h"
#include "dataplane/worker.h"
#include "shared/config.h"
#include "shared/list.h"

enum upconn_state {
    UC_CONNECTING = 0,
    UC_SENDING,
    UC_HEAD, /* request sent, waiting for the response head */
    UC_BODY,
    UC_IDLE, /* in the pool */
    UC_CLOSED,
};

enum body_mode {
    BM_NONE = 0,
    BM_LENGTH,
    BM_CHUNKED,
    BM_CLOSE,
};

struct backend_pool {
    const struct config_backend *be;
    int shm_idx;           /* its entry in the shared backend table (balance.c), -1 = none */
    uint64_t name_hash;    /* for rendezvous hashing (balance.c) */
    struct list_node idle; /* most recently used first */
    struct list_node h2s;  /* HTTP/2 sessions (upstream_h2.c) */
    uint32_t nidle;
    uint32_t nconns;
};

struct stream;
struct uh2;

struct upconn {
    struct tw_entry timer;
    struct list_node node;       /* pool->idle */
    struct list_node rearm_node; /* worker->up_rearm */
    struct worker *w;
    struct backend_pool *pool;
    struct stream *st;
    int fd;
    uint8_t state; /* enum upconn_state */
    uint8_t bmode; /* enum body_mode */
    bool recv_armed;
    bool reused;    /* this request went out on a pooled connection */
    bool got_bytes; /* some response bytes arrived for this request */
    bool keepalive; /* the response allows reuse */
    bool closing;
    bool paused;    /* receive stopped on purpose (backpressure) */
    bool resp_done; /* the current response was read to its end */
    uint16_t inflight;
    uint64_t body_left;
    struct h1_chunked chunk;
    char *hbuf; /* a response head split across receives */
    uint32_t hlen;
    uint32_t hcap;
    struct iovec iov[2];
    struct msghdr msg;
    struct __kernel_timespec connect_ts;
    /* HTTP/2 (upstream_h2.c): a session's transport (h2 set, virt false),
     * or one request's stream on a session (virt: no socket). */
    struct uh2 *h2;
    bool virt;
    bool h2_open;        /* virt: its stream is open at the backend */
    int32_t sid;         /* virt: stream id, -1 until submitted */
    uint32_t unconsumed; /* virt: DATA bytes not yet acknowledged (paused) */
    uint16_t status;     /* virt: the response's :status */
    uint32_t nhdrs;      /* virt: response fields gathered in hbuf */
    struct h1_header *hdrs;
};

int upstream_pools_init(struct worker *w);
/* A new connection to <pool>'s backend with no stream (an HTTP/2 session's
 * transport: upstream_h2.c), connecting; NULL with errno. */
struct upconn *upstream_connect(struct worker *w, struct backend_pool *pool);
/* Closes a transport (its session's streams fail). */
void upstream_close(struct upconn *u);
void upstream_pools_close(struct worker *w);

/* Attaches a connection to <st> and sends its request (or starts the
 * connect).  Returns 0, or -errno when no connection can even be started. */
int upstream_acquire(struct worker *w, struct backend_pool *pool, struct stream *st);

/* Detaches from the stream: back to the pool when the response is complete
 * and reusable, closed otherwise.  <cancel> marks a cancellation (the client
 * left) for the metrics. */
void upstream_release(struct upconn *u, bool cancel);

/* Stops / restarts the receive (backpressure). */
void upstream_pause(struct upconn *u);
void upstream_resume(struct upconn *u);

void upstream_on_connect(struct upconn *u, struct io_uring_cqe *cqe);
void upstream_on_send(struct upconn *u, struct io_uring_cqe *cqe);
void upstream_on_recv(struct upconn *u, struct io_uring_cqe *cqe);
void upstream_on_close(struct upconn *u, struct io_uring_cqe *cqe);
void upstream_on_timer(struct upconn *u);
void upstream_rearm(struct upconn *u);

#endif
