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
#include "dataplane/route.h"
#include "dataplane/stream.h"
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
static void consume_input(struct conn *c);
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

void client_accept(struct worker *w, int fd, bool fixed)
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
        return;
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
    arm_recv(c);
    set_timer(c, w->cfg->header_timeout_ms);
    c->head_timing = true;
}

void client_rearm(struct conn *c)
{
    if (c->state != CS_CLOSED && !c->recv_armed && !c->input_paused)
        arm_recv(c);
}

/* ---- sending ---------------------------------------------------------- */

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
    if (c->send_busy || c->state == CS_CLOSED)
        return;
    const char *ptr;
    uint32_t slab;
    size_t len = outq_span(&c->out, &w->slabs, &ptr, &slab);
    if (!len) {
        if (c->resp_done && c->state == CS_BUSY && !outq_pending(&c->out))
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

static void reset_request(struct conn *c)
{
    struct worker *w = c->w;
    if (c->st) {
        stream_free(c->st);
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
    reset_request(c);
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
        consume_input(c);
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
    outq_consume(&c->out, &w->slabs, (size_t)cqe->res);
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
    if (outq_committed(&c->out)) {
        worker_mark_dirty(w, c);
    } else if (c->resp_done && c->state == CS_BUSY && !outq_pending(&c->out)) {
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

/* An error found while reading the request: answer, then close (the rest of
 * the input cannot be trusted to be a request boundary). */
static void fail_request(struct conn *c, int api_err, const char *detail)
{
    c->in_request = true;
    c->close_after = true;
    c->keepalive = false;
    c->in_len = 0;
    client_respond_error(c, api_err, detail);
}

/* ---- reading requests -------------------------------------------------- */

static int buf_append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n, size_t max)
{
    if ((size_t)*len + n > max)
        return -E2BIG;
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = (uint32_t)ncap;
    }
    memcpy(*buf + *len, p, n);
    *len += (uint32_t)n;
    return 0;
}

static int body_append(struct conn *c, const char *p, size_t n)
{
    if (c->body_discard || !n)
        return 0;
    uint64_t max = c->w->cfg->max_body_size;
    if (c->body_len + n > max)
        return -E2BIG;
    if (c->body_len + n > c->body_cap) {
        uint64_t ncap = c->body_cap ? c->body_cap : 16384;
        while (ncap < c->body_len + n)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        char *nb = realloc(c->body, ncap);
        if (!nb)
            return -ENOMEM;
        c->body = nb;
        c->body_cap = ncap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    return 0;
}

static void generate_reqid(struct conn *c)
{
    struct worker *w = c->w;
    uint32_t n = ++w->stream_counter;
    c->reqid_len = (uint8_t)snprintf(c->reqid, sizeof c->reqid, "%02x%06x%08x", w->id & 0xff,
                                     w->stream_salt & 0xffffff, n);
}

static void dispatch(struct conn *c);

/* `Upgrade: h2c` (RFC 7540 3.2): the request just read is answered as
 * stream 1 of the HTTP/2 session the connection switches to. */
static bool upgrade_h2c(struct conn *c)
{
    char *settings = c->h2_settings;
    c->h2_settings = NULL;
    struct conn *vc = h2_upgrade(c, settings, strlen(settings));
    free(settings);
    if (!vc)
        return false;
    /* The request moves to the stream's virtual connection. */
    vc->nreq = 1;
    vc->in_request = true;
    vc->keepalive = true;
    vc->route = c->route;
    vc->up_head = c->up_head;
    vc->up_head_len = c->up_head_len;
    vc->up_head_cap = c->up_head_cap;
    vc->body = c->body;
    vc->body_len = c->body_len;
    vc->body_cap = c->body_cap;
    vc->pending_err = c->pending_err;
    vc->err_detail = c->err_detail;
    vc->allow = c->allow;
    vc->tenant = c->tenant;
    vc->t_start_ns = c->t_start_ns;
    memcpy(vc->reqid, c->reqid, sizeof vc->reqid);
    vc->reqid_len = c->reqid_len;
    memcpy(vc->rollout_bucket, c->rollout_bucket, sizeof vc->rollout_bucket);
    c->up_head = NULL;
    c->body = NULL;
    c->err_detail = NULL;
    c->in_request = false;
    reset_request(c);
    dispatch(vc);
    worker_mark_dirty(c->w, c);
    return true;
}

static void dispatch(struct conn *c)
{
    struct worker *w = c->w;
    if (c->h2_settings && c->pending_err < 0 && upgrade_h2c(c))
        return;
    c->state = CS_BUSY;
    tw_cancel(&w->tw, &c->timer);
    if (c->pending_err >= 0) {
        client_respond_error(c, c->pending_err, c->err_detail);
        return;
    }
    switch (c->route) {
    case ROUTE_PREFLIGHT:
        client_respond(c, 204, NULL, NULL, "", 0);
        return;
    case ROUTE_WS:
        client_respond_error(c, API_ERR_BAD_REQUEST, "expected a WebSocket upgrade");
        return;
    case ROUTE_HEALTHZ:
        if (w->draining) {
            static const char b[] = "{\"status\":\"draining\"}";
            client_respond(c, 503, "Retry-After: 1\r\n", "application/json", b, sizeof b - 1);
        } else {
            static const char b[] = "{\"status\":\"ok\"}";
            client_respond(c, 200, NULL, "application/json", b, sizeof b - 1);
        }
        return;
    case ROUTE_MODELS: {
        char *head = c->up_head;
        c->up_head = NULL;
        if (stream_start(c, false, false, "", head, c->up_head_len, c->up_head_cap, NULL, 0, 0) < 0)
            client_respond_error(c, API_ERR_OVERLOADED, NULL);
        return;
    }
    case ROUTE_CHAT:
    case ROUTE_COMPLETIONS: {
        char model[96];
        char detail[256];
        bool is_stream = false;
        uint32_t max_tokens = 0;
        int err = route_validate(c->route, c->body ? c->body : "", c->body_len, model, sizeof model,
                                 &is_stream, &max_tokens, detail, sizeof detail);
        if (err) {
            client_respond_error(c, err, detail);
            return;
        }
        char *head = c->up_head;
        c->up_head = NULL;
        if (stream_start(c, true, is_stream, model, head, c->up_head_len, c->up_head_cap, c->body,
                         c->body_len, max_tokens) < 0)
            client_respond_error(c, API_ERR_BACKEND_DOWN, NULL);
        return;
    }
    case ROUTE_NONE:
        break;
    }
    client_respond_error(c, API_ERR_INTERNAL, NULL);
}

static void set_pending_err(struct conn *c, int api_err, const char *what, const char *a,
                            size_t alen)
{
    c->pending_err = api_err;
    char buf[256];
    snprintf(buf, sizeof buf, "%s%.*s", what, (int)(alen > 200 ? 200 : alen), a);
    c->err_detail = strdup(buf);
}

/* The request's place in each feature's rollout: by its X-Session-Id when
 * it sends one (a user's experience does not flicker between requests),
 * else by its tenant and request id. */
static void rollout_buckets(struct conn *c, const struct h1_request *req)
{
    const struct h1_header *sid = h1_header_find(req->headers, req->n_headers, "x-session-id");
    char key[256];
    const char *k;
    size_t klen;
    if (sid && sid->value_len) {
        k = sid->value;
        klen = sid->value_len;
    } else {
        int n = snprintf(key, sizeof key, "%s:%.*s", c->tenant ? c->tenant : "", (int)c->reqid_len,
                         c->reqid);
        k = key;
        klen = n < 0 ? 0 : (size_t)n >= sizeof key ? sizeof key - 1 : (size_t)n;
    }
    for (unsigned f = 0; f < FEAT_COUNT; f++)
        c->rollout_bucket[f] = (uint8_t)rollout_bucket((enum rollout_feature)f, k, klen);
}

/* An HTTP/1.1 request asking to go on in HTTP/2 (Upgrade: h2c with its
 * HTTP2-Settings): remembered, and done once the request is read, when
 * HTTP/2 is enabled and this request is inside the http2_transport
 * rollout; otherwise the Upgrade is ignored, as RFC 9110 allows. */
static void want_h2c(struct conn *c, const struct h1_request *req)
{
    const struct h1_header *up = h1_header_find(req->headers, req->n_headers, "upgrade");
    const struct h1_header *hs = h1_header_find(req->headers, req->n_headers, "http2-settings");
    if (!up || !hs || c->http10 || hs->value_len > 200 ||
        !h1_list_has_token(up->value, up->value_len, "h2c"))
        return;
    if (!h2_allowed(c->w, c->rollout_bucket[FEAT_HTTP2_TRANSPORT])) {
        shm_add(&c->w->slot->c.h2_refused, 1);
        return;
    }
    c->h2_settings = malloc(hs->value_len + 1);
    if (c->h2_settings) {
        memcpy(c->h2_settings, hs->value, hs->value_len);
        c->h2_settings[hs->value_len] = '\0';
    }
}

/* A WebSocket upgrade from a page: its Origin must be allowed when CORS is
 * configured (browsers do not preflight WebSocket, so this is the check). */
static bool ws_origin_refused(const struct conn *c, const struct h1_request *req)
{
    const struct config *cfg = c->w->cfg;
    const struct h1_header *o = h1_header_find(req->headers, req->n_headers, "origin");
    return o && cors_enabled(cfg) && !cors_origin_allowed(cfg, o->value, o->value_len);
}

/* CORS: a request from an allowed Origin gets the header lines for its
 * answer in c->cors.  Returns true for a preflight (OPTIONS with
 * Access-Control-Request-Method), which is answered here: 204 when origin,
 * method and headers are all allowed (c->cors set), else 403. */
static bool cors_check(struct conn *c, const struct h1_request *req)
{
    const struct config *cfg = c->w->cfg;
    const struct h1_header *origin = h1_header_find(req->headers, req->n_headers, "origin");
    const struct h1_header *acrm =
        h1_header_find(req->headers, req->n_headers, "access-control-request-method");
    bool preflight = origin && acrm && req->method_len == 7 && !memcmp(req->method, "OPTIONS", 7);
    if (!origin || !cors_origin_allowed(cfg, origin->value, origin->value_len))
        return preflight && cors_enabled(cfg);
    if (preflight) {
        const struct h1_header *acrh =
            h1_header_find(req->headers, req->n_headers, "access-control-request-headers");
        if (!cors_method_allowed(cfg, acrm->value, acrm->value_len) ||
            (acrh && !cors_headers_allowed(cfg, acrh->value, acrh->value_len)))
            return true;
    }
    char lines[1536];
    size_t n =
        cors_header_lines(cfg, origin->value, origin->value_len, preflight, lines, sizeof lines);
    if (n && (c->cors = malloc(n + 1)) != NULL) {
        memcpy(c->cors, lines, n);
        c->cors[n] = '\0';
    }
    return preflight && cors_enabled(cfg);
}

/* A complete request head at <req>: everything needed from it is copied
 * out here, since its bytes may be a receive buffer about to be recycled. */
static void on_head(struct conn *c, const struct h1_request *req)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cfg;
    c->nreq++;
    c->in_request = true;
    c->head_timing = false;
    c->t_start_ns = clock_mono_ns();
    c->http10 = req->version_minor == 0;
    c->keepalive =
        (req->flags & H1_F_KEEP_ALIVE) && c->nreq < cfg->keepalive_requests && !w->draining;
    const struct h1_header *rid = h1_header_find(req->headers, req->n_headers, "x-request-id");
    if (rid && route_reqid_valid(rid->value, rid->value_len)) {
        memcpy(c->reqid, rid->value, rid->value_len);
        c->reqid_len = (uint8_t)rid->value_len;
        c->reqid[c->reqid_len] = '\0';
    } else {
        generate_reqid(c);
    }

    const struct h1_header *authz = h1_header_find(req->headers, req->n_headers, "authorization");
    c->tenant = auth_tenant(cfg, authz ? authz->value : NULL, authz ? authz->value_len : 0);
    rollout_buckets(c, req);
    if (!c->virt)
        want_h2c(c, req);
    bool preflight = cors_check(c, req);

    bool method_ok;
    const char *allow;
    c->route =
        route_match(req->method, req->method_len, req->path, req->path_len, &method_ok, &allow);
    c->allow = allow;
    if (preflight) {
        c->route = ROUTE_PREFLIGHT;
        if (!c->cors)
            c->pending_err = API_ERR_FORBIDDEN;
    } else if (c->route == ROUTE_NONE) {
        set_pending_err(c, API_ERR_NOT_FOUND, "no route for ", req->path, req->path_len);
    } else if (!method_ok) {
        set_pending_err(c, API_ERR_METHOD, "method not allowed; use ", allow, strlen(allow));
    } else if (!c->tenant && c->route != ROUTE_HEALTHZ) {
        c->pending_err = API_ERR_UNAUTHORIZED;
    } else if (c->route != ROUTE_HEALTHZ) {
        if (route_build_head(req, &cfg->backends[0], cfg->auth_enabled, c->reqid, c->reqid_len,
                             &c->up_head, &c->up_head_len, &c->up_head_cap) < 0)
            c->pending_err = API_ERR_INTERNAL;
    }

    bool has_body = (req->flags & H1_F_CHUNKED) ||
                    ((req->flags & H1_F_CONTENT_LENGTH) && req->content_length > 0);
    if (c->route == ROUTE_WS && c->pending_err < 0) {
        const char *why = NULL;
        int err = -1; /* none */
        if (c->virt) {
            err = API_ERR_BAD_REQUEST;
            why = "WebSocket needs HTTP/1.1";
        } else if (ws_handshake_check(req, &why) < 0) {
            err = API_ERR_BAD_REQUEST;
        } else if (has_body) {
            err = API_ERR_BAD_REQUEST;
            why = "a WebSocket upgrade has no body";
        } else if (ws_origin_refused(c, req)) {
            err = API_ERR_FORBIDDEN;
            why = "origin not allowed";
        } else if (ws_start(c, req) == 0) {
            return;
        }
        set_pending_err(c, err >= 0 ? err : API_ERR_INTERNAL, why ? why : "", "", 0);
        c->close_after = true;
    }
    c->body_chunked = req->flags & H1_F_CHUNKED;
    c->body_left = c->body_chunked ? 0 : req->content_length;
    c->body_discard = c->pending_err >= 0 || c->route == ROUTE_HEALTHZ ||
                      c->route == ROUTE_MODELS || c->route == ROUTE_PREFLIGHT;
    if (c->body_chunked)
        h1_chunked_init(&c->chunk, true);
    if (!has_body) {
        dispatch(c);
        return;
    }
    if (req->flags & H1_F_EXPECT_CONTINUE) {
        if (c->pending_err >= 0) {
            /* Refuse before the client sends a body it would waste. */
            c->close_after = true;
            c->keepalive = false;
            dispatch(c);
            return;
        }
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (outq_write(&c->out, &w->slabs, cont, sizeof cont - 1) == 0) {
            outq_commit(&c->out);
            worker_mark_dirty(w, c);
        }
    }
    if (!c->body_chunked && !c->body_discard && c->body_left <= cfg->max_body_size) {
        c->body = malloc(c->body_left);
        if (c->body)
            c->body_cap = c->body_left;
    }
    c->state = CS_BODY;
    set_timer(c, cfg->body_timeout_ms);
}

/* Reads body bytes from p[0..n); returns bytes used, or -1 when the request
 * failed (already answered).  Dispatches the request when the body ends. */
static ssize_t read_body(struct conn *c, const char *p, size_t n)
{
    size_t used = 0;
    if (c->body_chunked) {
        while (used < n) {
            size_t k;
            const char *d;
            size_t dl;
            int rc = h1_chunked_feed(&c->chunk, p + used, n - used, &k, &d, &dl);
            used += k;
            if (rc < 0) {
                fail_request(c, API_ERR_BAD_REQUEST, "bad chunked request body");
                return -1;
            }
            if (dl && body_append(c, d, dl)) {
                fail_request(c, API_ERR_BODY_TOO_LARGE, NULL);
                return -1;
            }
            if (rc == 1) {
                dispatch(c);
                return (ssize_t)used;
            }
        }
        return (ssize_t)used;
    }
    size_t take = n < c->body_left ? n : (size_t)c->body_left;
    if (body_append(c, p, take)) {
        fail_request(c, API_ERR_INTERNAL, "out of memory for the request body");
        return -1;
    }
    c->body_left -= take;
    if (!c->body_left)
        dispatch(c);
    return (ssize_t)take;
}

/* The http2_transport bucket of a connection that has sent no request: a
 * connection has no session id or tenant yet, so it is bucketed by the
 * worker and its count of accepted connections (a share of connections). */
static unsigned conn_bucket(const struct conn *c)
{
    char key[48];
    uint64_t n = atomic_load_explicit(&c->w->slot->c.accepted, memory_order_relaxed);
    int len = snprintf(key, sizeof key, "conn:%u:%llu:%p", c->w->id, (unsigned long long)n,
                       (const void *)c);
    return rollout_bucket(FEAT_HTTP2_TRANSPORT, key, len > 0 ? (size_t)len : 0);
}

/* Consumes requests from p[0..n); returns the bytes used (the rest is kept
 * by the caller as input for later). */
static size_t consume(struct conn *c, const char *p, size_t n)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cfg;
    struct h1_limits lim = {
        .max_request_line = cfg->max_request_line,
        .max_header_bytes = cfg->max_header_bytes,
        .max_headers = cfg->max_headers,
        .max_body = cfg->max_body_size,
    };
    size_t used = 0;
    while (used < n && c->state != CS_CLOSED) {
        if (c->state == CS_HEAD && c->nreq == 0 && !c->virt && p[used] == 'P') {
            /* HTTP/2 with prior knowledge: the connection preface. */
            size_t k = n - used < H2_PREFACE_LEN ? n - used : H2_PREFACE_LEN;
            if (memcmp(p + used, H2_PREFACE, k) == 0) {
                if (k < H2_PREFACE_LEN)
                    return used; /* the rest of the preface is still coming */
                if (h2_start(c, !h2_allowed(w, conn_bucket(c))) < 0) {
                    close_now(c);
                    return n;
                }
                h2_on_data(c, p + used, n - used);
                return n;
            }
        }
        if (c->state == CS_HEAD) {
            struct h1_request req = {.headers = w->hdrs};
            int rc = h1_parse_request(p + used, n - used, &lim, &req);
            if (rc == 0) {
                /* The whole head must arrive within header_timeout of its
                 * first byte: trickling bytes does not extend it. */
                if (!c->head_timing) {
                    set_timer(c, cfg->header_timeout_ms);
                    c->head_timing = true;
                }
                return used;
            }
            if (rc < 0) {
                generate_reqid(c);
                fail_request(c, api_error_from_h1(-rc), h1_err_message(-rc));
                return n;
            }
            on_head(c, &req);
            used += (size_t)rc;
        } else if (c->state == CS_BODY) {
            ssize_t k = read_body(c, p + used, n - used);
            if (k < 0)
                return n;
            used += (size_t)k;
            if (c->state == CS_BODY)
                tw_set(&w->tw, &c->timer, w->now_ms + cfg->body_timeout_ms);
        } else {
            break;
        }
    }
    return used;
}

static void consume_input(struct conn *c)
{
    size_t used = consume(c, c->in, c->in_len);
    if (c->state == CS_CLOSED)
        return;
    if (used >= c->in_len) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
    } else if (used) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= (uint32_t)used;
    }
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

static void on_data(struct conn *c, const char *p, size_t n)
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
        if (buf_append(&c->in, &c->in_len, &c->in_cap, p, n, PIPELINE_MAX) < 0) {
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
        if (buf_append(&c->in, &c->in_len, &c->in_cap, p, n, max) < 0) {
            fail_request(c, API_ERR_INTERNAL, "out of memory");
            return;
        }
        consume_input(c);
        hand_over_input(c);
        return;
    }
    size_t used = consume(c, p, n);
    if (used < n && c->state != CS_CLOSED && c->state != CS_LINGER) {
        size_t max = (size_t)w->cfg->max_header_bytes + PIPELINE_MAX;
        if (buf_append(&c->in, &c->in_len, &c->in_cap, p + used, n - used, max) < 0)
            fail_request(c, API_ERR_HEADERS_TOO_LARGE, NULL);
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
            generate_reqid(c);
            fail_request(c, API_ERR_REQUEST_TIMEOUT, NULL);
            return;
        }
        close_now(c); /* idle keep-alive, or nothing ever sent */
        return;
    case CS_BODY:
        fail_request(c, API_ERR_REQUEST_TIMEOUT, "request body not received in time");
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
        stream_on_client_gone(c->st);
        stream_free(c->st);
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
    reset_request(c);
    outq_reset(&c->out, &w->slabs);
    free(c->in);
    if (c->virt)
        h2_stream_free(c);
    else
        w->nconns--;
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
        reset_request(vc);
    }
    close_conn(vc, false);
}

void client_proto_finished(struct conn *c)
{
    h2_close(c);
    ws_close(c);
    begin_linger(c);
}
