/* upstream — see upstream.h. */
#include "dataplane/upstream.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/api_error.h"
#include "dataplane/stream.h"
#include "dataplane/upstream_h2.h"
#include "shared/log.h"

#define UP_HEAD_MAX (64 * 1024) /* largest response head accepted from a backend */

int upstream_pools_init(struct worker *w)
{
    w->npools = w->cfg->n_backends;
    w->pools = calloc(w->npools, sizeof *w->pools);
    if (!w->pools)
        return -ENOMEM;
    for (unsigned i = 0; i < w->npools; i++) {
        w->pools[i].be = &w->cfg->backends[i];
        w->pools[i].shm_idx = -1;
        list_init(&w->pools[i].idle);
        list_init(&w->pools[i].h2s);
    }
    return 0;
}

static void arm_recv(struct upconn *u)
{
    struct worker *w = u->w;
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_recv_multishot(sqe, u->fd, NULL, 0, 0);
    uring_sqe_buf_group(sqe, w->rx.bgid);
    io_uring_sqe_set_data64(sqe, ud_make(u, OP_URECV));
    u->inflight++;
    u->recv_armed = true;
}

static void maybe_free(struct upconn *u)
{
    if (!u->closing || u->inflight)
        return;
    u->w->upconn_objs--;
    free(u->hbuf);
    free(u->hdrs);
    free(u);
}

static void close_u(struct upconn *u, bool count_cancel)
{
    struct worker *w = u->w;
    if (u->closing)
        return;
    u->closing = true;
    u->state = UC_CLOSED;
    u->st = NULL;
    if (list_linked(&u->node)) {
        list_del(&u->node);
        u->pool->nidle--;
        shm_gauge_add(&w->slot->g.upstream_idle, -1);
    }
    if (list_linked(&u->rearm_node))
        list_del(&u->rearm_node);
    tw_cancel(&w->tw, &u->timer);
    if (count_cancel)
        shm_add(&w->slot->c.upstream_cancellations, 1);
    if (u->h2) {
        struct uh2 *h = u->h2;
        u->h2 = NULL;
        uh2_transport_closed(h); /* its streams fail */
    }
    /* FIN goes out now, whatever the ring still holds on this socket: the
     * backend sees the disconnect in this loop turn and stops generating. */
    (void)shutdown(u->fd, SHUT_RDWR);
    worker_sqe_reserve(w, 2);
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_cancel_fd(sqe, u->fd, IORING_ASYNC_CANCEL_ALL);
    sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    sqe = worker_sqe(w);
    io_uring_prep_close(sqe, u->fd);
    io_uring_sqe_set_data64(sqe, ud_make(u, OP_UCLOSE));
    u->inflight++;
    u->pool->nconns--;
    w->nupconns--;
    shm_gauge_add(&w->slot->g.upstream_conns, -1);
}

void upstream_pools_close(struct worker *w)
{
    for (unsigned i = 0; i < w->npools; i++) {
        struct list_node *n;
        while ((n = list_pop_head(&w->pools[i].idle)) != NULL) {
            struct upconn *u = container_of(n, struct upconn, node);
            list_init(&u->node);
            w->pools[i].nidle--;
            shm_gauge_add(&w->slot->g.upstream_idle, -1);
            close_u(u, false);
        }
        uh2_close_idle(&w->pools[i]);
    }
}

void upstream_close(struct upconn *u)
{
    close_u(u, false);
}

/* The connection failed while serving a stream: detach, close, report. */
static void fail(struct upconn *u, int api_err)
{
    struct stream *st = u->st;
    if (st) {
        st->reused_last = u->reused;
        st->got_bytes_last = u->got_bytes;
        st->up = NULL;
    }
    close_u(u, false);
    if (st)
        stream_on_upstream_error(st, api_err);
}

static void send_rest(struct upconn *u)
{
    struct stream *st = u->st;
    uint64_t off = st->req_sent;
    int n = 0;
    if (off < st->req_head_len) {
        u->iov[n].iov_base = st->req_head + off;
        u->iov[n].iov_len = st->req_head_len - off;
        n++;
        off = 0;
    } else {
        off -= st->req_head_len;
    }
    if (st->req_body_len > off) {
        u->iov[n].iov_base = (void *)(st->req_body + off);
        u->iov[n].iov_len = st->req_body_len - off;
        n++;
    }
    memset(&u->msg, 0, sizeof u->msg);
    u->msg.msg_iov = u->iov;
    u->msg.msg_iovlen = (size_t)n;
    struct io_uring_sqe *sqe = worker_sqe(u->w);
    io_uring_prep_sendmsg(sqe, u->fd, &u->msg, MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, ud_make(u, OP_USEND));
    u->inflight++;
}

static void start_request(struct upconn *u)
{
    u->got_bytes = false;
    u->resp_done = false;
    u->keepalive = false;
    u->hlen = 0;
    u->bmode = BM_NONE;
    u->state = UC_SENDING;
    send_rest(u);
}

int upstream_acquire(struct worker *w, struct backend_pool *pool, struct stream *st)
{
    if (pool->be->http2)
        return uh2_acquire(w, pool, st);
    struct list_node *n;
    while ((n = list_pop_head(&pool->idle)) != NULL) {
        struct upconn *u = container_of(n, struct upconn, node);
        list_init(&u->node);
        pool->nidle--;
        shm_gauge_add(&w->slot->g.upstream_idle, -1);
        tw_cancel(&w->tw, &u->timer);
        u->st = st;
        st->up = u;
        u->reused = true;
        shm_add(&w->slot->c.upstream_reused, 1);
        start_request(u);
        return 0;
    }
    struct upconn *u = upstream_connect(w, pool);
    if (!u)
        return -errno;
    u->st = st;
    st->up = u;
    return 0;
}

struct upconn *upstream_connect(struct worker *w, struct backend_pool *pool)
{
    const struct config_backend *be = pool->be;
    int fd = socket(be->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    /* The request head and body leave in one sendmsg, but a body larger
     * than one segment must not wait for an ACK (Nagle + delayed ACK would
     * add up to 40 ms to the time to first token). */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct upconn *u = calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    u->w = w;
    u->pool = pool;
    u->fd = fd;
    u->timer.kind = TK_UPCONN;
    list_init(&u->node);
    list_init(&u->rearm_node);
    u->state = UC_CONNECTING;
    u->sid = -1;
    pool->nconns++;
    w->nupconns++;
    w->upconn_objs++;
    shm_gauge_add(&w->slot->g.upstream_conns, 1);
    shm_add(&w->slot->c.upstream_connects, 1);
    uint32_t ms = w->cfg->connect_timeout_ms;
    u->connect_ts.tv_sec = ms / 1000;
    u->connect_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    worker_sqe_reserve(w, 2);
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&be->addr.ss, be->addr.len);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud_make(u, OP_UCONNECT));
    u->inflight++;
    sqe = worker_sqe(w);
    io_uring_prep_link_timeout(sqe, &u->connect_ts, 0);
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    return u;
}

void upstream_on_connect(struct upconn *u, struct io_uring_cqe *cqe)
{
    u->inflight--;
    if (u->closing) {
        maybe_free(u);
        return;
    }
    if (cqe->res < 0) {
        int err = (cqe->res == -ECANCELED || cqe->res == -ETIME) ? API_ERR_CONNECT_TIMEOUT
                                                                 : API_ERR_BACKEND_DOWN;
        log_info("backend %s: connect: %s", u->pool->be->name,
                 err == API_ERR_CONNECT_TIMEOUT ? "timed out" : strerror(-cqe->res));
        fail(u, err);
        return;
    }
    arm_recv(u);
    if (u->h2)
        uh2_connected(u->h2);
    else if (u->st)
        start_request(u);
}

void upstream_on_send(struct upconn *u, struct io_uring_cqe *cqe)
{
    u->inflight--;
    if (u->closing) {
        maybe_free(u);
        return;
    }
    if (u->h2) {
        uh2_on_send(u->h2, cqe->res);
        return;
    }
    struct stream *st = u->st;
    if (!st)
        return;
    if (cqe->res < 0) {
        fail(u, API_ERR_BACKEND_DOWN);
        return;
    }
    st->req_sent += (uint64_t)cqe->res;
    if (st->req_sent < st->req_head_len + st->req_body_len) {
        send_rest(u);
        return;
    }
    if (u->state == UC_SENDING)
        u->state = UC_HEAD;
    stream_on_sent(st);
}

static void finish_body(struct upconn *u)
{
    u->resp_done = true;
    stream_on_body_end(u->st); /* releases u: pooled or closed */
}

/* A head split across receives is gathered in a buffer of UP_HEAD_MAX. */
static int hbuf_reserve(struct upconn *u)
{
    char *nb = realloc(u->hbuf, UP_HEAD_MAX);
    if (!nb) {
        fail(u, API_ERR_INTERNAL);
        return -1;
    }
    u->hbuf = nb;
    u->hcap = UP_HEAD_MAX;
    return 0;
}

/* Response head bytes; returns how many of p[0..n) were used, or -1 when the
 * connection failed or was released. */
static ssize_t parse_head(struct upconn *u, const char *p, size_t n)
{
    struct worker *w = u->w;
    const struct config *cfg = w->cfg;
    const char *buf = p;
    size_t len = n;
    uint32_t old = u->hlen;
    if (old) {
        if (old + n > UP_HEAD_MAX) {
            fail(u, API_ERR_BACKEND_BAD);
            return -1;
        }
        if (old + n > u->hcap && hbuf_reserve(u) < 0)
            return -1;
        memcpy(u->hbuf + old, p, n);
        u->hlen += (uint32_t)n;
        buf = u->hbuf;
        len = u->hlen;
    }
    struct h1_limits lim = {
        .max_request_line = UP_HEAD_MAX,
        .max_header_bytes = UP_HEAD_MAX,
        .max_headers = cfg->max_headers,
        .max_body = UINT64_MAX,
    };
    struct h1_response resp = {.headers = w->hdrs};
    int rc = h1_parse_response(buf, len, &lim, false, &resp);
    if (rc == 0) {
        if (!old) {
            if (n > UP_HEAD_MAX) {
                fail(u, API_ERR_BACKEND_BAD);
                return -1;
            }
            if (hbuf_reserve(u) < 0)
                return -1;
            memcpy(u->hbuf, p, n);
            u->hlen = (uint32_t)n;
        }
        return (ssize_t)n;
    }
    if (rc < 0) {
        log_info("backend %s: bad response head: %s", u->pool->be->name, h1_err_message(-rc));
        fail(u, API_ERR_BACKEND_BAD);
        return -1;
    }
    size_t used = (size_t)rc - old;
    u->hlen = 0;
    if (resp.status < 200)
        return (ssize_t)used; /* interim response: the real one follows */
    if (resp.flags & H1_F_NO_BODY) {
        u->bmode = BM_NONE;
    } else if (resp.flags & H1_F_CHUNKED) {
        u->bmode = BM_CHUNKED;
        h1_chunked_init(&u->chunk, false);
    } else if (resp.flags & H1_F_CONTENT_LENGTH) {
        u->bmode = BM_LENGTH;
        u->body_left = resp.content_length;
    } else {
        u->bmode = BM_CLOSE;
    }
    u->keepalive = (resp.flags & H1_F_KEEP_ALIVE) && u->bmode != BM_CLOSE;
    u->state = UC_BODY;
    if (stream_on_head(u->st, &resp) < 0)
        return -1;
    if (u->bmode == BM_NONE || (u->bmode == BM_LENGTH && u->body_left == 0))
        finish_body(u);
    /* The head may have been the last use of the buffer's bytes. */
    if (old) {
        free(u->hbuf);
        u->hbuf = NULL;
        u->hcap = 0;
    }
    return (ssize_t)used;
}

static ssize_t feed_body(struct upconn *u, const char *p, size_t n)
{
    switch (u->bmode) {
    case BM_LENGTH: {
        size_t take = n < u->body_left ? n : (size_t)u->body_left;
        u->body_left -= take;
        if (stream_on_body(u->st, p, take) < 0)
            return -1;
        if (!u->body_left)
            finish_body(u);
        return (ssize_t)take;
    }
    case BM_CHUNKED: {
        size_t used = 0;
        while (used < n) {
            size_t k;
            const char *d;
            size_t dl;
            int rc = h1_chunked_feed(&u->chunk, p + used, n - used, &k, &d, &dl);
            used += k;
            if (rc < 0) {
                log_info("backend %s: bad chunked body", u->pool->be->name);
                fail(u, API_ERR_BACKEND_BAD);
                return -1;
            }
            if (dl && stream_on_body(u->st, d, dl) < 0)
                return -1;
            if (rc == 1) {
                finish_body(u);
                return (ssize_t)used;
            }
        }
        return (ssize_t)used;
    }
    case BM_CLOSE:
        if (stream_on_body(u->st, p, n) < 0)
            return -1;
        return (ssize_t)n;
    default:
        return (ssize_t)n;
    }
}

static void on_data(struct upconn *u, const char *p, size_t n)
{
    if (u->h2) {
        uh2_on_data(u->h2, p, n);
        return;
    }
    if (!u->st) {
        /* Bytes on an idle connection: the backend is confused; drop it. */
        log_debug("backend %s: %zu unexpected bytes on an idle connection", u->pool->be->name, n);
        close_u(u, false);
        return;
    }
    u->got_bytes = true;
    while (n && u->st && !u->closing) {
        ssize_t k;
        if (u->state == UC_BODY)
            k = feed_body(u, p, n);
        else
            k = parse_head(u, p, n);
        if (k < 0)
            return;
        p += k;
        n -= (size_t)k;
    }
    if (n && !u->closing) {
        /* Bytes past the end of the response: it cannot be reused. */
        close_u(u, false);
    }
}

static void on_eof(struct upconn *u, int res)
{
    if (!u->st || u->h2) {
        close_u(u, false);
        return;
    }
    if (u->state == UC_BODY && u->bmode == BM_CLOSE && res == 0) {
        finish_body(u);
        return;
    }
    fail(u, u->state == UC_BODY ? API_ERR_BACKEND_CLOSED : API_ERR_BACKEND_DOWN);
}

void upstream_on_recv(struct upconn *u, struct io_uring_cqe *cqe)
{
    struct worker *w = u->w;
    int res = cqe->res;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        u->recv_armed = false;
        u->inflight--;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0 && !u->closing)
            on_data(u, uring_bufring_addr(&w->rx, bid), (size_t)res);
        uring_bufring_recycle(&w->rx, bid);
    }
    if (u->closing) {
        maybe_free(u);
        return;
    }
    if (res == 0) {
        on_eof(u, 0);
    } else if (res < 0) {
        if (res == -ENOBUFS) {
            shm_add(&w->slot->c.recv_enobufs, 1);
            if (!more && !list_linked(&u->rearm_node))
                list_add_tail(&w->up_rearm, &u->rearm_node);
        } else if (res == -ECANCELED) {
            if (!more && !u->paused)
                arm_recv(u);
        } else {
            on_eof(u, res);
        }
    } else if (!more && !u->paused) {
        arm_recv(u);
    }
}

void upstream_rearm(struct upconn *u)
{
    if (list_linked(&u->rearm_node))
        list_del(&u->rearm_node);
    if (!u->closing && !u->recv_armed && !u->paused)
        arm_recv(u);
}

void upstream_on_close(struct upconn *u, struct io_uring_cqe *cqe)
{
    (void)cqe;
    u->inflight--;
    maybe_free(u);
}

void upstream_release(struct upconn *u, bool cancel)
{
    if (u->virt) {
        uh2_release(u, cancel);
        return;
    }
    struct worker *w = u->w;
    if (u->closing)
        return;
    u->st = NULL;
    bool reusable = !cancel && u->resp_done && u->keepalive && !w->draining &&
                    u->pool->nidle < w->cfg->upstream_keepalive;
    if (!reusable) {
        close_u(u, cancel && !u->resp_done);
        return;
    }
    u->state = UC_IDLE;
    u->reused = false;
    if (u->paused) {
        u->paused = false;
        if (!u->recv_armed && !list_linked(&u->rearm_node))
            arm_recv(u);
    }
    list_add_head(&u->pool->idle, &u->node);
    u->pool->nidle++;
    shm_gauge_add(&w->slot->g.upstream_idle, 1);
    tw_set(&w->tw, &u->timer, w->now_ms + w->cfg->upstream_idle_timeout_ms);
}

void upstream_pause(struct upconn *u)
{
    if (u->virt) {
        uh2_pause(u);
        return;
    }
    if (u->paused || u->closing)
        return;
    u->paused = true;
    if (!u->recv_armed)
        return;
    struct io_uring_sqe *sqe = worker_sqe(u->w);
    io_uring_prep_cancel64(sqe, ud_make(u, OP_URECV), 0);
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
}

void upstream_resume(struct upconn *u)
{
    if (u->virt) {
        uh2_resume(u);
        return;
    }
    if (!u->paused)
        return;
    u->paused = false;
    if (!u->closing && !u->recv_armed && !list_linked(&u->rearm_node))
        arm_recv(u);
}

void upstream_on_timer(struct upconn *u)
{
    if (u->state == UC_IDLE)
        close_u(u, false);
}
