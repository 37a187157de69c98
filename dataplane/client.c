/* client — see client.h. */
#include "shared/clock.h"
#include "dataplane/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/auth.h"
#include "dataplane/cors.h"
#include "dataplane/h2_conn.h"
#include "dataplane/request.h"
#include "dataplane/route.h"
#include "dataplane/stream.h"
#include "dataplane/tls.h"
#include "dataplane/ws_conn.h"
#include "shared/log.h"

#define LINGER_MS 3000
/* liburing 2.3 predates these (Linux 6.2) */
#define SEND_ZC_REPORT_USAGE       (1U << 3)  /* IORING_SEND_ZC_REPORT_USAGE */
#define NOTIF_USAGE_ZC_COPIED      (1U << 31) /* IORING_NOTIF_USAGE_ZC_COPIED */
#define ZC_COPIED_GIVE_UP          64
#define URING_SOCKET_OP_SETSOCKOPT 3           /* SOCKET_URING_OP_SETSOCKOPT, Linux 6.7 */
#define PIPELINE_MAX               (64 * 1024) /* bytes buffered ahead of the current request */

static void close_now(struct conn *c);
static void close_conn(struct conn *c, bool rst);
static void submit_close(struct conn *c);
static void finish_request(struct conn *c);

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {410, "Gone"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *client_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

static void set_timer(struct conn *c, uint32_t ms)
{
    c->deadline_ms = c->w->now_ms + ms;
    tw_set(&c->w->tw, &c->timer, c->deadline_ms);
}

unsigned client_conn_bucket(const struct conn *c)
{
    char key[48];
    uint64_t n = atomic_load_explicit(&c->w->slot->c.accepted, memory_order_relaxed);
    int len = snprintf(key, sizeof key, "conn:%u:%llu:%p", c->w->id, (unsigned long long)n,
                       (const void *)c);
    return rollout_bucket(FEAT_HTTP2_TRANSPORT, key, len > 0 ? (size_t)len : 0);
}

void client_set_timer(struct conn *c, uint32_t ms)
{
    set_timer(c, ms);
}

static void arm_recv(struct conn *c)
{
    struct worker *w = c->w;
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    if (c->fixed)
        sqe->flags |= IOSQE_FIXED_FILE;
    uring_sqe_buf_group(sqe, w->rx.bgid);
    io_uring_sqe_set_data64(sqe, ud_make(c, OP_CRECV));
    c->inflight++;
    c->recv_armed = true;
}

struct conn *client_accept(struct worker *w, int fd, bool fixed, bool tls)
{
    struct conn *c = NULL;
    if (w->nconns < w->cfg->max_connections)
        c = calloc(1, sizeof *c);
    if (!c) {
        /* Over the limit (or out of memory): refuse by closing at once. */
        struct io_uring_sqe *sqe = worker_sqe(w);
        if (fixed)
            io_uring_prep_close_direct(sqe, (unsigned)fd);
        else
            io_uring_prep_close(sqe, fd);
        io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
        return NULL;
    }
    c->w = w;
    c->fd = fd;
    c->fixed = fixed;
    c->state = CS_HEAD;
    c->pending_err = -1;
    c->timer.kind = TK_CONN;
    outq_init(&c->out);
    list_init(&c->rearm_node);
    list_add_tail(&w->conns, &c->node);
    w->nconns++;
    shm_gauge_add(&w->slot->g.connections, 1);
    shm_add(&w->slot->c.accepted, 1);
    if (tls && tls_conn_start(c, w->tls_ctx, h2_allowed(w, client_conn_bucket(c))) < 0) {
        close_now(c);
        return NULL;
    }
    arm_recv(c);
    set_timer(c, w->cfg->header_timeout_ms);
    c->head_timing = true;
    return c;
}

void client_rearm(struct conn *c)
{
    if (c->state != CS_CLOSED && !c->recv_armed && !c->input_paused)
        arm_recv(c);
}

/* ---- sending ---------------------------------------------------------- */

/* Every byte of the response is on the wire (with TLS: encrypted, too). */
static bool all_sent(struct conn *c)
{
    return !outq_pending(&c->out) && (!c->tls || !outq_pending(tls_outq(c)));
}

void client_flush(struct conn *c)
{
    struct worker *w = c->w;
    if (c->virt) {
        if (c->state == CS_CLOSED)
            client_maybe_free(c);
        else if (c->h2s)
            h2_stream_flush(c);
        else
            ws_stream_flush(c);
        return;
    }
    if (c->h2 && c->state != CS_CLOSED)
        h2_produce(c); /* may close c */
    if (c->ws && c->state != CS_CLOSED)
        ws_produce(c); /* may close c */
    if (c->tls && c->state != CS_CLOSED) {
        ssize_t taken = tls_encrypt(c);
        if (taken < 0) {
            close_now(c);
            return;
        }
        if (taken && c->st)
            stream_on_client_sent(c->st); /* its bytes left c->out */
    }
    if (c->send_busy || c->state == CS_CLOSED)
        return;
    const char *ptr;
    uint32_t slab;
    struct outq *q = c->tls ? tls_outq(c) : &c->out;
    size_t len = outq_span(q, &w->slabs, &ptr, &slab);
    if (!len) {
        if (c->resp_done && c->state == CS_BUSY && all_sent(c))
            finish_request(c);
        return;
    }
    struct io_uring_sqe *sqe = worker_sqe(w);
    if (w->zc_threshold && len >= w->zc_threshold && w->slabs.registered && slab < 0xffff) {
        io_uring_prep_send_zc_fixed(sqe, c->fd, ptr, len, MSG_NOSIGNAL, SEND_ZC_REPORT_USAGE, 0);
        /* The notification CQE names the slab it releases. */
        io_uring_sqe_set_data64(sqe, ud_make(c, OP_CSEND_ZC) | ((uint64_t)slab << 48));
        w->slabs.meta[slab].refs++;
        shm_add(&w->slot->c.sends_zc, 1);
    } else {
        io_uring_prep_send(sqe, c->fd, ptr, len, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, ud_make(c, OP_CSEND));
        shm_add(&w->slot->c.sends, 1);
    }
    if (c->fixed)
        sqe->flags |= IOSQE_FIXED_FILE;
    c->inflight++;
    c->send_busy = true;
}

/* Counts the request once, with the status the client saw (499: nothing). */
static void count_request(struct conn *c)
{
    if (!c->in_request || c->counted)
        return;
    c->counted = true;
    int status = c->status ? c->status : 499;
    shm_add(&c->w->slot->c.requests[shm_code_index(status)], 1);
}

void client_reset_request(struct conn *c)
{
    struct worker *w = c->w;
    if (c->st) {
        stream_release(c->st, false);
        c->st = NULL;
    }
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = c->body_left = 0;
    free(c->up_head);
    c->up_head = NULL;
    c->up_head_len = c->up_head_cap = 0;
    free(c->err_detail);
    c->err_detail = NULL;
    free(c->h2_settings);
    c->h2_settings = NULL;
    free(c->cors);
    c->cors = NULL;
    c->pending_err = -1;
    c->body_chunked = c->body_discard = false;
    c->resp_done = false;
    c->counted = false;
    c->in_request = false;
    c->status = 0;
    c->route = ROUTE_NONE;
    c->usage_injected = false;
    (void)w;
}

/* Graceful close: shut our side, read (and drop) until the client closes
 * too, so a client still sending never gets a reset that could destroy the
 * response it has not read yet. */
static void begin_linger(struct conn *c)
{
    struct worker *w = c->w;
    c->state = CS_LINGER;
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    if (c->fixed)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, ud_make(c, OP_CSHUT));
    c->inflight++;
    c->shut_busy = true;
    if (c->input_paused) {
        c->input_paused = false;
        client_rearm(c);
    }
    set_timer(c, LINGER_MS);
}

static void finish_request(struct conn *c)
{
    struct worker *w = c->w;
    count_request(c);
    client_reset_request(c);
    if (c->close_after || !c->keepalive || w->draining) {
        begin_linger(c);
        return;
    }
    c->state = CS_HEAD;
    c->head_timing = c->in_len != 0;
    set_timer(c, c->in_len ? w->cfg->header_timeout_ms : w->cfg->keepalive_timeout_ms);
    if (c->input_paused) {
        c->input_paused = false;
        client_rearm(c);
    }
    if (c->in_len)
        request_consume_input(c);
}

void client_on_send(struct conn *c, struct io_uring_cqe *cqe, bool zc)
{
    struct worker *w = c->w;
    if (zc) {
        uint32_t slab = (uint32_t)(cqe->user_data >> 48);
        if (cqe->flags & IORING_CQE_F_NOTIF) {
            /* The kernel says whether it copied after all (loopback, veth,
             * some NICs): then zero-copy only costs more (perf/results/
             * sendpath-*), so after a run of copies the worker stops using it. */
            if (cqe->res & NOTIF_USAGE_ZC_COPIED) {
                if (++w->zc_copied_run == ZC_COPIED_GIVE_UP && w->zc_threshold) {
                    log_warn("zero-copy sends are copied by the kernel on this path: "
                             "using plain sends");
                    w->zc_threshold = 0;
                }
            } else {
                w->zc_copied_run = 0;
            }
            bufpool_unref(&w->slabs, slab);
            c->inflight--;
            client_maybe_free(c);
            return;
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) {
            /* no notification will follow */
            bufpool_unref(&w->slabs, slab);
            c->inflight--;
        }
    } else {
        c->inflight--;
    }
    c->send_busy = false;
    if (c->state == CS_CLOSED) {
        client_maybe_free(c);
        return;
    }
    if (cqe->res <= 0) {
        /* EPIPE, ECONNRESET...: the client is gone. */
        close_now(c);
        return;
    }
    outq_consume(c->tls ? tls_outq(c) : &c->out, &w->slabs, (size_t)cqe->res);
    shm_add(&w->slot->c.bytes_out, (uint64_t)cqe->res);
    if (c->h2 || c->ws) {
        /* room in the outq again: more frames */
        worker_mark_dirty(w, c);
        return;
    }
    if (c->st)
        stream_on_client_sent(c->st);
    if (c->state == CS_CLOSED)
        return;
    if (outq_committed(&c->out) || (c->tls && outq_committed(tls_outq(c)))) {
        worker_mark_dirty(w, c);
    } else if (c->resp_done && c->state == CS_BUSY && all_sent(c)) {
        finish_request(c);
    }
}

/* ---- local responses --------------------------------------------------- */

int client_respond(struct conn *c, int status, const char *extra_headers, const char *ctype,
                   const char *body, size_t body_len)
{
    struct worker *w = c->w;
    char head[1024];
    const char *conn_field = "";
    if (!c->keepalive || c->close_after || w->draining)
        conn_field = "Connection: close\r\n";
    else if (c->http10)
        conn_field = "Connection: keep-alive\r\n";
    char len_fields[160] = ""; /* a 204 has neither (RFC 9110 8.6) */
    if (status != 204)
        snprintf(len_fields, sizeof len_fields, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                 ctype, body_len);
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%sX-Request-Id: %.*s\r\n%s%s%s\r\n",
                     status, client_reason(status), len_fields, (int)c->reqid_len, c->reqid,
                     extra_headers ? extra_headers : "", c->cors ? c->cors : "", conn_field);
    if (n < 0 || (size_t)n >= sizeof head)
        return -EINVAL;
    if (outq_write(&c->out, &w->slabs, head, (size_t)n) ||
        outq_write(&c->out, &w->slabs, body, body_len)) {
        log_warn("no buffer for a %d response: closing the connection", status);
        close_now(c);
        return -ENOBUFS;
    }
    outq_commit(&c->out);
    c->status = (uint16_t)status;
    c->resp_done = true;
    c->state = CS_BUSY;
    worker_mark_dirty(w, c);
    return 0;
}

void client_respond_error(struct conn *c, int api_err, const char *detail)
{
    char body[768];
    char extra[64] = "";
    size_t n = api_error_json(body, sizeof body, (enum api_error)api_err, detail);
    if (n >= sizeof body)
        n = sizeof body - 1;
    int retry = api_error_retry_after((enum api_error)api_err);
    if (retry && c->retry_after_s)
        retry = (int)c->retry_after_s;
    c->retry_after_s = 0;
    if (retry)
        snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
    else if (api_err == API_ERR_METHOD && c->allow)
        snprintf(extra, sizeof extra, "Allow: %s\r\n", c->allow);
    int status = api_error_status((enum api_error)api_err);
    log_debug("request %.*s: %d %s", (int)c->reqid_len, c->reqid, status,
              detail ? detail : api_error_code((enum api_error)api_err));
    client_respond(c, status, extra, "application/json", body, n);
}

static void pause_input(struct conn *c)
{
    struct worker *w = c->w;
    c->input_paused = true;
    if (!c->recv_armed)
        return;
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_cancel64(sqe, ud_make(c, OP_CRECV), 0);
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
}

/* Bytes read as HTTP/1.1 before the connection switched to HTTP/2 or
 * WebSocket (after an upgrade) belong to the session. */
static void hand_over_input(struct conn *c)
{
    if ((!c->h2 && !c->ws) || !c->in_len)
        return;
    char *in = c->in;
    uint32_t len = c->in_len;
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    if (c->h2)
        h2_on_data(c, in, len);
    else
        ws_on_data(c, in, len);
    free(in);
}

static void on_plain(struct conn *c, const char *p, size_t n);

/* Received bytes: with TLS, decrypted first (and the handshake driven);
 * ALPN h2 makes the connection HTTP/2 before its first plaintext. */
static void on_data(struct conn *c, const char *p, size_t n)
{
    if (!c->tls) {
        on_plain(c, p, n);
        return;
    }
    tls_feed(c, p, n);
    char buf[16384];
    for (;;) {
        bool h2 = false;
        ssize_t k = tls_read(c, buf, sizeof buf, &h2);
        if (h2 && !c->h2 && c->state == CS_HEAD && c->nreq == 0 && h2_start(c, false) < 0)
            k = -ENOMEM;
        if (k < 0) {
            close_now(c);
            return;
        }
        if (k == 0)
            break;
        on_plain(c, buf, (size_t)k);
        if (c->state == CS_CLOSED || c->state == CS_LINGER)
            return;
    }
    worker_mark_dirty(c->w, c); /* handshake records, or nothing */
}

static void on_plain(struct conn *c, const char *p, size_t n)
{
    struct worker *w = c->w;
    if (c->h2 || c->ws) {
        if (c->state == CS_BUSY) {
            if (c->h2)
                h2_on_data(c, p, n);
            else
                ws_on_data(c, p, n);
        }
        return;
    }
    switch (c->state) {
    case CS_LINGER:
    case CS_CLOSED:
        return;
    case CS_BUSY:
        /* Pipelined bytes: kept in order for after this response. */
        if (request_buf_append(&c->in, &c->in_len, &c->in_cap, p, n, PIPELINE_MAX) < 0) {
            /* Bytes had to be dropped: the request stream is no longer
             * whole, so this connection ends after the current response. */
            c->close_after = true;
            pause_input(c);
        } else if (c->in_len >= PIPELINE_MAX / 2) {
            pause_input(c);
        }
        return;
    case CS_HEAD:
    case CS_BODY:
        break;
    }
    if (c->in_len) {
        size_t max = (size_t)w->cfg->max_header_bytes + n;
        if (request_buf_append(&c->in, &c->in_len, &c->in_cap, p, n, max) < 0) {
            request_fail(c, API_ERR_INTERNAL, "out of memory");
            return;
        }
        request_consume_input(c);
        hand_over_input(c);
        return;
    }
    size_t used = request_consume(c, p, n);
    if (used < n && c->state != CS_CLOSED && c->state != CS_LINGER) {
        size_t max = (size_t)w->cfg->max_header_bytes + PIPELINE_MAX;
        if (request_buf_append(&c->in, &c->in_len, &c->in_cap, p + used, n - used, max) < 0)
            request_fail(c, API_ERR_HEADERS_TOO_LARGE, NULL);
        else if (c->state == CS_BUSY && c->in_len >= PIPELINE_MAX / 2 && !c->h2)
            pause_input(c);
    }
    hand_over_input(c);
}

static void on_eof(struct conn *c)
{
    close_now(c);
}

void client_on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
    struct worker *w = c->w;
    int res = cqe->res;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        c->recv_armed = false;
        c->inflight--;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0)
            on_data(c, uring_bufring_addr(&w->rx, bid), (size_t)res);
        uring_bufring_recycle(&w->rx, bid);
    }
    if (c->state == CS_CLOSED) {
        client_maybe_free(c);
        return;
    }
    if (res == 0) {
        on_eof(c);
    } else if (res < 0) {
        if (res == -ENOBUFS) {
            shm_add(&w->slot->c.recv_enobufs, 1);
            if (!more && !list_linked(&c->rearm_node))
                list_add_tail(&w->rearm, &c->rearm_node);
        } else if (res == -ECANCELED) {
            if (!c->input_paused)
                client_rearm(c);
        } else {
            on_eof(c);
        }
    } else if (!more) {
        client_rearm(c);
    }
}

void client_on_shut(struct conn *c, struct io_uring_cqe *cqe)
{
    (void)cqe;
    c->inflight--;
    c->shut_busy = false;
    if (c->close_deferred)
        submit_close(c);
    client_maybe_free(c);
}

void client_on_timer(struct conn *c)
{
    struct worker *w = c->w;
    if (w->now_ms < c->deadline_ms) {
        tw_set(&w->tw, &c->timer, c->deadline_ms);
        return;
    }
    if (c->h2 && c->state == CS_BUSY) {
        h2_on_timer(c);
        return;
    }
    if (c->ws && c->state == CS_BUSY) {
        ws_on_timer(c);
        return;
    }
    switch (c->state) {
    case CS_HEAD:
        if (c->in_len) {
            request_new_id(c);
            request_fail(c, API_ERR_REQUEST_TIMEOUT, NULL);
            return;
        }
        close_now(c); /* idle keep-alive, or nothing ever sent */
        return;
    case CS_BODY:
        request_fail(c, API_ERR_REQUEST_TIMEOUT, "request body not received in time");
        return;
    case CS_LINGER:
        close_now(c);
        return;
    default:
        return;
    }
}

/* ---- closing ------------------------------------------------------------ */

static void close_conn(struct conn *c, bool rst)
{
    struct worker *w = c->w;
    if (c->state == CS_CLOSED)
        return;
    count_request(c);
    if (c->st) {
        stream_release(c->st, true);
        c->st = NULL;
    }
    if (c->h2)
        h2_close(c);
    if (c->ws)
        ws_close(c);
    c->state = CS_CLOSED;
    tw_cancel(&w->tw, &c->timer);
    if (c->virt) {
        /* Freed from the end of the turn: the caller may still hold it. */
        if (c->wsp || c->wss)
            ws_stream_detach(c);
        else
            h2_stream_detach(c, rst);
        worker_mark_dirty(w, c);
        return;
    }
    if (list_linked(&c->rearm_node))
        list_del(&c->rearm_node);
    shm_gauge_add(&w->slot->g.connections, -1);
    c->rst = rst;
    /* IORING_OP_SHUTDOWN runs in io-wq and resolves its fixed file there:
     * closing the slot before it ran would let the next accepted
     * connection take the slot and receive our shutdown. */
    if (c->shut_busy) {
        c->close_deferred = true;
        return;
    }
    submit_close(c);
}

static void submit_close(struct conn *c)
{
    struct worker *w = c->w;
    c->close_deferred = false;
    worker_sqe_reserve(w, 3);
    struct io_uring_sqe *sqe;
    if (c->rst) {
        /* SO_LINGER {1, 0}: the close resets the connection and drops the
         * bytes the client never read, instead of the kernel holding them
         * for minutes against a closed window (nginx's
         * reset_timedout_connection).  setsockopt on a fixed file goes
         * through IORING_OP_URING_CMD (Linux 6.7+); liburing 2.3 has no
         * helper, so the SQE is filled by hand.  On older kernels it fails
         * and the hard link closes normally. */
        static const struct linger rst_linger = {.l_onoff = 1, .l_linger = 0};
        sqe = worker_sqe(w);
        io_uring_prep_rw(IORING_OP_URING_CMD, sqe, c->fd, NULL, 0, 0);
        sqe->cmd_op = URING_SOCKET_OP_SETSOCKOPT;
        sqe->addr = (uint64_t)SOL_SOCKET | ((uint64_t)SO_LINGER << 32); /* level, optname */
        sqe->file_index = sizeof rst_linger;                            /* optlen */
        sqe->addr3 = (uint64_t)(uintptr_t)&rst_linger;                  /* optval */
        if (c->fixed)
            sqe->flags |= IOSQE_FIXED_FILE;
        sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    }
    /* Cancel whatever is in flight on the socket, then close it; the
     * hard link runs the close even when there was nothing to cancel. */
    sqe = worker_sqe(w);
    io_uring_prep_cancel_fd(
        sqe, c->fd, IORING_ASYNC_CANCEL_ALL | (c->fixed ? IORING_ASYNC_CANCEL_FD_FIXED : 0));
    sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ud_make(NULL, OP_IGNORE));
    sqe = worker_sqe(w);
    if (c->fixed)
        io_uring_prep_close_direct(sqe, (unsigned)c->fd);
    else
        io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, ud_make(c, OP_CCLOSE));
    c->inflight++;
}

static void close_now(struct conn *c)
{
    close_conn(c, false);
}

void client_abort(struct conn *c)
{
    close_now(c);
}

void client_abort_reset(struct conn *c)
{
    close_conn(c, true);
}

void client_on_close(struct conn *c, struct io_uring_cqe *cqe)
{
    (void)cqe;
    c->inflight--;
    client_maybe_free(c);
}

void client_maybe_free(struct conn *c)
{
    if (c->state != CS_CLOSED || c->inflight)
        return;
    struct worker *w = c->w;
    client_reset_request(c);
    outq_reset(&c->out, &w->slabs);
    free(c->in);
    if (c->virt)
        h2_stream_free(c);
    else
        w->nconns--;
    tls_conn_free(c);
    list_del(&c->node);
    if (c->dirty) {
        /* still on the dirty list: unlink it */
        struct conn **pp = &w->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dirty_next;
        if (*pp)
            *pp = c->dirty_next;
    }
    free(c);
}

void client_stream_done(struct conn *c)
{
    c->resp_done = true;
    /* Finished from the end of the loop turn (client_flush), never from
     * inside the stream code that calls this. */
    worker_mark_dirty(c->w, c);
}

void client_drain(struct worker *w)
{
    struct list_node *n = w->conns.next;
    while (n != &w->conns) {
        struct conn *c = container_of(n, struct conn, node);
        n = n->next;
        c->keepalive = false;
        if (c->h2) {
            h2_drain(c);
            continue;
        }
        if (c->ws) {
            ws_drain(c);
            continue;
        }
        /* Idle between requests: close.  A connection that has not sent its
         * first request yet may be in flight from a client that just
         * connected: it gets header_timeout to send it, and its answer. */
        if (c->state == CS_HEAD && !c->in_len && c->nreq)
            close_now(c);
    }
}

struct conn *client_virtual_new(struct worker *w)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    c->fd = -1;
    c->virt = true;
    c->state = CS_HEAD;
    c->pending_err = -1;
    c->keepalive = true;
    c->timer.kind = TK_CONN;
    outq_init(&c->out);
    list_init(&c->node);
    list_init(&c->rearm_node);
    return c;
}

void client_feed(struct conn *vc, const char *p, size_t n)
{
    on_data(vc, p, n);
}

void client_virtual_close(struct conn *vc, bool done)
{
    if (vc->state == CS_CLOSED)
        return;
    if (done) {
        /* Every byte went out: the request ended well, nobody left. */
        count_request(vc);
        client_reset_request(vc);
    }
    close_conn(vc, false);
}

void client_proto_finished(struct conn *c)
{
    h2_close(c);
    ws_close(c);
    begin_linger(c);
}
