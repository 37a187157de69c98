/* h2_conn — see h2_conn.h. */
#include "dataplane/h2_conn.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/api_error.h"
#include "dataplane/b64url.h"
#include "dataplane/client.h"
#include "dataplane/request.h"
#include "dataplane/stream.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/rollout.h"

/* Frames are produced while the socket's outq holds less than this: the
 * rest waits in the streams' own outqs, where backpressure sees it. */
#define H2_OUT_HIGH (64u * 1024)
/* Most response header fields passed on (ours: a handful). */
#define H2_MAX_RESP_FIELDS 32
/* Largest response head we translate (ours: well under 1 KiB). */
#define H2_MAX_RESP_HEAD 8192

struct h2_sess {
    nghttp2_session *ng;
    struct conn *c;
    uint32_t nstreams;        /* virtual connections attached */
    struct list_node streams; /* their conn.node */
    bool refuse;              /* GOAWAY(HTTP_1_1_REQUIRED) and nothing else */
    bool goaway;              /* GOAWAY submitted */
    bool counted;             /* in the h2_conns gauge */
    bool closing;             /* h2_close is detaching the streams */
    bool blocked;             /* streams wait for room in the socket's outq */
    double reset_tokens;      /* rapid-reset bucket: resets the client may still send */
    uint64_t reset_ms;        /* when it was last refilled */
};

struct h2_stream {
    struct h2_sess *s;
    int32_t id;
    bool fed;       /* the request went to the virtual connection */
    bool submitted; /* the response head went to nghttp2 */
    bool deferred;  /* the data source is waiting for bytes */
    bool closed;    /* nghttp2 closed the stream */
    bool ended;     /* the response's last DATA (END_STREAM) went out */
    bool head_bad;  /* headers over the limits: answered 431 */
    uint16_t nfields;
    uint64_t decoded; /* header bytes decoded for it, HPACK-expanded */
    /* the request, as HTTP/1.1: request line + headers, then the body */
    char *method, *path, *authority;
    char *hdrs;
    uint32_t hdrs_len, hdrs_cap;
    char *body;
    uint64_t body_len, body_cap;
};

static struct h2_sess *S(const struct conn *c)
{
    return c->h2;
}

bool h2_allowed(struct worker *w, unsigned bucket)
{
    if (!w->cfg->h2_enabled)
        return false;
    unsigned pct = atomic_load_explicit(&w->shm->seg->tables.rollout[FEAT_HTTP2_TRANSPORT],
                                        memory_order_relaxed);
    return rollout_in(pct, bucket);
}

/* ---- nghttp2 output into the connection's outq ------------------------- */

static bool out_full(const struct conn *c)
{
    return outq_pending(&c->out) >= H2_OUT_HIGH;
}

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct h2_sess *s = ud;
    struct conn *c = s->c;
    if (out_full(c))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (outq_write(&c->out, &c->w->slabs, data, len) < 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    outq_commit(&c->out);
    return (ssize_t)len;
}

static struct conn *vc_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* The body of stream <id>: what its virtual connection has committed.
 * NO_COPY: the bytes are copied in on_send_data, behind the frame header. */
static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)buf;
    (void)src;
    (void)ud;
    struct conn *vc = vc_of(ng, id);
    if (!vc)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* detached: reset it */
    struct h2_sess *s = vc->h2s->s;
    if (out_full(s->c)) {
        /* The socket is behind: wait for it here, not in on_send_data, so
         * that no frame is ever half prepared while its stream can go. */
        vc->h2s->deferred = true;
        s->blocked = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    uint64_t avail = outq_committed(&vc->out);
    size_t n = avail < length ? (size_t)avail : length;
    bool last = vc->resp_done && outq_pending(&vc->out) == n;
    if (!n && !last) {
        vc->h2s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (last)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *ud)
{
    (void)src;
    struct h2_sess *s = ud;
    struct conn *c = s->c;
    struct worker *w = c->w;
    struct conn *vc = vc_of(ng, frame->hd.stream_id);
    if (!vc)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* cannot be: data_read ran just before */
    size_t pad = frame->data.padlen;
    static const uint8_t zeros[256];
    int err = outq_write(&c->out, &w->slabs, framehd, 9);
    if (pad) {
        uint8_t padlen = (uint8_t)(pad - 1);
        err |= outq_write(&c->out, &w->slabs, &padlen, 1);
    }
    size_t left = length;
    while (left && !err) {
        const char *ptr;
        uint32_t slab;
        size_t k = outq_span(&vc->out, &w->slabs, &ptr, &slab);
        if (k > left)
            k = left;
        if (!k)
            break;
        err |= outq_write(&c->out, &w->slabs, ptr, k);
        if (!err) {
            outq_consume(&vc->out, &w->slabs, k);
            left -= k;
        }
    }
    if (pad > 1)
        err |= outq_write(&c->out, &w->slabs, zeros, pad - 1);
    if (err || left) {
        /* The socket's pool ran dry mid-frame: the frame is already half
         * in the outq and cannot be taken back; the connection is lost. */
        log_warn("http/2: no buffer space for a DATA frame: closing the connection");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    outq_commit(&c->out);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        vc->h2s->ended = true;
    if (vc->st)
        stream_on_client_sent(vc->st);
    return 0;
}

/* ---- requests in ------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_sess *s = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *hs = calloc(1, sizeof *hs);
    struct conn *vc = hs ? client_virtual_new(s->c->w) : NULL;
    if (!vc) {
        free(hs);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    hs->s = s;
    hs->id = frame->hd.stream_id;
    vc->h2s = hs;
    s->nstreams++;
    list_add_tail(&s->streams, &vc->node);
    /* The whole request must come within body_timeout: a stream left
     * open without its END_STREAM is reset then (the request layer's
     * timer on an idle virtual connection closes it), so stalled streams
     * cannot hold max_concurrent_streams for ever (slowloris). */
    client_set_timer(vc, s->c->w->cfg->body_timeout_ms);
    shm_add(&s->c->w->slot->c.h2_streams, 1);
    nghttp2_session_set_stream_user_data(ng, hs->id, vc);
    return 0;
}

static char *dup_n(const uint8_t *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct conn *vc = vc_of(ng, frame->hd.stream_id);
    if (!vc || vc->h2s->fed)
        return 0; /* trailers, or a stream already answered: ignored */
    struct h2_stream *hs = vc->h2s;
    const struct config *cfg = vc->w->cfg;
    /* Every field decoded counts, kept or not (RFC 7541's 32 bytes of
     * overhead each): a few bytes of HPACK references can expand to far
     * more (a "bomb"); past four times the limit, the stream is reset
     * instead of answered. */
    hs->decoded += namelen + valuelen + 32;
    if (hs->decoded > 4 * (uint64_t)cfg->max_header_bytes)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (hs->head_bad)
        return 0;
    if (namelen && name[0] == ':') {
        char **slot = NULL;
        if (namelen == 7 && !memcmp(name, ":method", 7))
            slot = &hs->method;
        else if (namelen == 5 && !memcmp(name, ":path", 5))
            slot = &hs->path;
        else if (namelen == 10 && !memcmp(name, ":authority", 10))
            slot = &hs->authority;
        if (slot && !*slot && !(*slot = dup_n(value, valuelen)))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    /* Fields the HTTP/1.1 request gets from elsewhere. */
    if ((namelen == 14 && !memcmp(name, "content-length", 14)) ||
        (namelen == 4 && !memcmp(name, "host", 4) && hs->authority) ||
        (namelen == 2 && !memcmp(name, "te", 2)) || (namelen == 6 && !memcmp(name, "expect", 6)))
        return 0;
    if (++hs->nfields > cfg->max_headers) {
        hs->head_bad = true;
        return 0;
    }
    int rc = request_buf_append(&hs->hdrs, &hs->hdrs_len, &hs->hdrs_cap, (const char *)name,
                                namelen, cfg->max_header_bytes);
    rc = rc ? rc
            : request_buf_append(&hs->hdrs, &hs->hdrs_len, &hs->hdrs_cap, ": ", 2,
                                 cfg->max_header_bytes);
    rc = rc ? rc
            : request_buf_append(&hs->hdrs, &hs->hdrs_len, &hs->hdrs_cap, (const char *)value,
                                 valuelen, cfg->max_header_bytes);
    rc = rc ? rc
            : request_buf_append(&hs->hdrs, &hs->hdrs_len, &hs->hdrs_cap, "\r\n", 2,
                                 cfg->max_header_bytes);
    if (rc == -ENOMEM)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (rc)
        hs->head_bad = true;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct conn *vc = vc_of(ng, id);
    if (!vc || vc->h2s->fed)
        return 0;
    struct h2_stream *hs = vc->h2s;
    if (hs->body_len + len > vc->w->cfg->max_body_size) {
        hs->fed = true;
        client_respond_error(vc, API_ERR_BODY_TOO_LARGE, NULL);
        return 0;
    }
    if (hs->body_len + len > hs->body_cap) {
        uint64_t nc = hs->body_cap ? hs->body_cap : 1024;
        while (nc < hs->body_len + len)
            nc *= 2;
        char *nb = realloc(hs->body, nc);
        if (!nb)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        hs->body = nb;
        hs->body_cap = nc;
    }
    memcpy(hs->body + hs->body_len, data, len);
    hs->body_len += len;
    return 0;
}

/* The whole request is in: hand it to the virtual connection as the
 * HTTP/1.1 request it means. */
static void feed_request(struct conn *vc)
{
    struct h2_stream *hs = vc->h2s;
    hs->fed = true;
    if (hs->head_bad) {
        client_respond_error(vc, API_ERR_HEADERS_TOO_LARGE, NULL);
        return;
    }
    const char *host = hs->authority ? hs->authority : "";
    bool has_body = hs->body_len || strcmp(hs->method, "GET") != 0;
    size_t cap = strlen(hs->method) + strlen(hs->path) + strlen(host) + hs->hdrs_len + 96;
    char *head = malloc(cap);
    if (!head) {
        client_respond_error(vc, API_ERR_INTERNAL, "out of memory");
        return;
    }
    int n = snprintf(head, cap, "%s %s HTTP/1.1\r\n%s%s%s%.*s", hs->method, hs->path,
                     hs->authority ? "Host: " : "", hs->authority ? host : "",
                     hs->authority ? "\r\n" : "", (int)hs->hdrs_len, hs->hdrs ? hs->hdrs : "");
    if (n > 0 && (size_t)n < cap)
        n += has_body ? snprintf(head + n, cap - (size_t)n, "Content-Length: %llu\r\n\r\n",
                                 (unsigned long long)hs->body_len)
                      : snprintf(head + n, cap - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= cap) {
        free(head);
        client_respond_error(vc, API_ERR_INTERNAL, NULL);
        return;
    }
    free(hs->hdrs);
    hs->hdrs = NULL;
    hs->hdrs_len = hs->hdrs_cap = 0;
    client_feed(vc, head, (size_t)n);
    free(head);
    if (hs->body_len && vc->state == CS_BODY)
        client_feed(vc, hs->body, (size_t)hs->body_len);
    free(hs->body);
    hs->body = NULL;
    hs->body_len = hs->body_cap = 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_sess *s = ud;
    int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
        struct conn *vc = vc_of(ng, id);
        if (!vc || vc->h2s->fed || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        if (!vc->h2s->method || !vc->h2s->path) {
            /* nghttp2's messaging checks make this unreachable; be safe */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
            return 0;
        }
        feed_request(vc);
        return 0;
    }
    case NGHTTP2_RST_STREAM: {
        struct conn *vc = vc_of(ng, id);
        struct worker *w = s->c->w;
        if (vc && !vc->h2s->ended)
            shm_add(&w->slot->c.h2_resets, 1);
        if (vc)
            vc->cancelled = true; /* on purpose: its stream is not kept for a resume */
        /* Rapid reset (CVE-2023-44487): every stream opened and reset
         * costs a backend request; a bucket of reset_burst refilled at
         * reset_rate a second, and GOAWAY(ENHANCE_YOUR_CALM) when it is
         * empty.  nghttp2's own limit sits above it as a backstop. */
        double add = (double)(w->now_ms - s->reset_ms) * w->cfg->h2_reset_rate / 1000.0;
        s->reset_ms = w->now_ms;
        s->reset_tokens += add;
        if (s->reset_tokens > w->cfg->h2_reset_burst)
            s->reset_tokens = w->cfg->h2_reset_burst;
        if (s->reset_tokens < 1.0) {
            log_warn("http/2: a client resets streams faster than %u/s: GOAWAY",
                     w->cfg->h2_reset_rate);
            nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
            return 0;
        }
        s->reset_tokens -= 1.0;
        return 0;
    }
    default:
        return 0;
    }
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    (void)error_code;
    struct h2_sess *s = ud;
    struct conn *vc = vc_of(ng, id);
    if (!vc)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    vc->h2s->closed = true;
    client_virtual_close(vc, vc->h2s->ended);
    (void)s;
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    struct h2_sess *s = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        s->goaway = true;
        uint32_t ec = frame->goaway.error_code;
        if (ec != NGHTTP2_NO_ERROR && ec != NGHTTP2_HTTP_1_1_REQUIRED) {
            shm_add(&s->c->w->slot->c.h2_abuse, 1);
            log_info("http/2: GOAWAY to a client: %s", nghttp2_http2_strerror(ec));
        }
    }
    return 0;
}

/* ---- the session --------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks(void)
{
    /* Built once per process: the table is read-only after this. */
    static nghttp2_session_callbacks *cbs;
    if (cbs)
        return cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    return cbs;
}

static int new_session(struct conn *c, bool refuse)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cfg;
    struct h2_sess *s = calloc(1, sizeof *s);
    nghttp2_option *opt = NULL;
    nghttp2_session_callbacks *cbs = callbacks();
    if (!s || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_option_set_max_settings(opt, cfg->h2_max_settings);
    nghttp2_option_set_stream_reset_rate_limit(opt, 2ull * cfg->h2_reset_burst,
                                               2ull * cfg->h2_reset_rate);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rc = nghttp2_session_server_new2(&s->ng, cbs, s, opt);
    nghttp2_option_del(opt);
    opt = NULL;
    if (rc != 0)
        goto fail;
    s->c = c;
    s->refuse = refuse;
    s->reset_tokens = cfg->h2_reset_burst;
    s->reset_ms = w->now_ms;
    list_init(&s->streams);
    uint32_t win = cfg->h2_window > INT32_MAX ? INT32_MAX : (uint32_t)cfg->h2_window;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, refuse ? 0 : cfg->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, win},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_bytes},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)win) != 0)
        goto fail;
    if (refuse) {
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_HTTP_1_1_REQUIRED,
                              (const uint8_t *)"use HTTP/1.1", 12);
        shm_add(&w->slot->c.h2_refused, 1);
    } else {
        shm_add(&w->slot->c.h2_conns, 1);
        shm_gauge_add(&w->slot->g.h2_conns, 1);
        s->counted = true;
    }
    c->h2 = s;
    c->state = CS_BUSY;
    c->keepalive = false;
    return 0;
fail:
    if (opt)
        nghttp2_option_del(opt);
    if (s && s->ng)
        nghttp2_session_del(s->ng);
    free(s);
    return -ENOMEM;
}

int h2_start(struct conn *c, bool refuse)
{
    int rc = new_session(c, refuse);
    if (rc == 0)
        client_set_timer(c, c->w->cfg->keepalive_timeout_ms);
    return rc;
}

struct conn *h2_upgrade(struct conn *c, const char *settings, size_t settings_len)
{
    uint8_t payload[256];
    ssize_t plen = b64url_decode(settings, settings_len, payload, sizeof payload);
    if (plen < 0 || plen % 6)
        return NULL;
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    struct outq_mark m;
    if (outq_mark(&c->out, &c->w->slabs, &m) < 0)
        return NULL;
    if (new_session(c, false) < 0)
        return NULL;
    struct h2_sess *s = S(c);
    struct conn *vc = NULL;
    if (nghttp2_session_upgrade2(s->ng, payload, (size_t)plen, 0, NULL) != 0)
        goto fail;
    struct h2_stream *hs = calloc(1, sizeof *hs);
    vc = hs ? client_virtual_new(c->w) : NULL;
    if (!vc) {
        free(hs);
        goto fail;
    }
    if (outq_write(&c->out, &c->w->slabs, sw, sizeof sw - 1) < 0) {
        free(hs);
        client_virtual_close(vc, false);
        vc = NULL;
        goto fail;
    }
    outq_commit(&c->out);
    hs->s = s;
    hs->id = 1;
    hs->fed = true; /* the request was read over HTTP/1.1 */
    vc->h2s = hs;
    s->nstreams++;
    list_add_tail(&s->streams, &vc->node);
    shm_add(&c->w->slot->c.h2_streams, 1);
    nghttp2_session_set_stream_user_data(s->ng, 1, vc);
    client_set_timer(c, c->w->cfg->keepalive_timeout_ms);
    return vc;
fail:
    outq_truncate(&c->out, &c->w->slabs, &m);
    h2_close(c);
    c->state = CS_HEAD;
    return NULL;
}

void h2_on_data(struct conn *c, const char *p, size_t n)
{
    struct h2_sess *s = S(c);
    ssize_t rc = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, n);
    if (rc < 0) {
        log_info("http/2: closing a connection: %s", nghttp2_strerror((int)rc));
        if (rc == NGHTTP2_ERR_BAD_CLIENT_MAGIC || rc == NGHTTP2_ERR_FLOODED)
            shm_add(&c->w->slot->c.h2_abuse, 1);
        /* nghttp2 has queued a GOAWAY where the protocol wants one */
        nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
    }
    if (!s->nstreams)
        client_set_timer(c, c->w->cfg->keepalive_timeout_ms);
    worker_mark_dirty(c->w, c);
}

void h2_produce(struct conn *c)
{
    struct h2_sess *s = S(c);
    if (!s)
        return;
    if (s->blocked && !out_full(c)) {
        s->blocked = false;
        for (struct list_node *n = s->streams.next; n != &s->streams; n = n->next) {
            struct conn *vc = container_of(n, struct conn, node);
            if (vc->h2s->deferred && vc->h2s->submitted) {
                vc->h2s->deferred = false;
                nghttp2_session_resume_data(s->ng, vc->h2s->id);
            }
        }
    }
    int rc = nghttp2_session_send(s->ng);
    if (rc != 0) {
        log_info("http/2: session error: %s", nghttp2_strerror(rc));
        client_abort(c);
        return;
    }
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng) &&
        !outq_pending(&c->out))
        client_proto_finished(c);
}

void h2_on_timer(struct conn *c)
{
    struct h2_sess *s = S(c);
    if (s->nstreams) {
        client_set_timer(c, c->w->cfg->keepalive_timeout_ms);
        return;
    }
    if (s->goaway) {
        client_abort(c); /* the client never closed after our GOAWAY */
        return;
    }
    nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
    client_set_timer(c, 1000);
    worker_mark_dirty(c->w, c);
}

void h2_drain(struct conn *c)
{
    struct h2_sess *s = S(c);
    if (!s->goaway) {
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        worker_mark_dirty(c->w, c);
    }
}

void h2_close(struct conn *c)
{
    struct h2_sess *s = S(c);
    if (!s)
        return;
    /* Deleting the session closes no stream through the callbacks: detach
     * every virtual connection by hand. */
    s->closing = true;
    while (!list_empty(&s->streams)) {
        struct conn *vc = container_of(s->streams.next, struct conn, node);
        nghttp2_session_set_stream_user_data(s->ng, vc->h2s->id, NULL);
        vc->h2s->closed = true;
        client_virtual_close(vc, false); /* detaches it from the list */
    }
    if (s->counted)
        shm_gauge_add(&c->w->slot->g.h2_conns, -1);
    nghttp2_session_del(s->ng);
    free(s);
    c->h2 = NULL;
}

void h2_stream_flush(struct conn *vc)
{
    struct h2_stream *hs = vc->h2s;
    if (!hs || hs->closed)
        return;
    struct h2_sess *s = hs->s;
    if (!hs->submitted) {
        char head[H2_MAX_RESP_HEAD];
        size_t n = outq_peek(&vc->out, &vc->w->slabs, head, sizeof head - 1);
        head[n] = '\0';
        char *end = strstr(head, "\r\n\r\n");
        if (!end) {
            if (n == sizeof head - 1) {
                log_warn("http/2: response head too large");
                nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
                worker_mark_dirty(vc->w, s->c);
            }
            return;
        }
        size_t head_len = (size_t)(end - head) + 4;
        /* "HTTP/1.1 200 OK": the status is bytes 9..11 */
        nghttp2_nv nv[H2_MAX_RESP_FIELDS + 1];
        size_t nnv = 0;
        if (head_len < 16 || memcmp(head, "HTTP/1.1 ", 9) != 0) {
            nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
            worker_mark_dirty(vc->w, s->c);
            return;
        }
        nv[nnv++] =
            (nghttp2_nv){(uint8_t *)":status", (uint8_t *)head + 9, 7, 3, NGHTTP2_NV_FLAG_NONE};
        char *line = strstr(head, "\r\n") + 2;
        while (line < end + 2 && nnv <= H2_MAX_RESP_FIELDS) {
            char *eol = strstr(line, "\r\n");
            char *colon = memchr(line, ':', (size_t)(eol - line));
            if (colon) {
                size_t nl = (size_t)(colon - line);
                char *v = colon + 1;
                while (*v == ' ')
                    v++;
                for (size_t i = 0; i < nl; i++)
                    line[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
                bool hop = (nl == 10 && !memcmp(line, "connection", 10)) ||
                           (nl == 10 && !memcmp(line, "keep-alive", 10)) ||
                           (nl == 17 && !memcmp(line, "transfer-encoding", 17)) ||
                           (nl == 7 && !memcmp(line, "upgrade", 7));
                if (!hop)
                    nv[nnv++] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, nl, (size_t)(eol - v),
                                             NGHTTP2_NV_FLAG_NONE};
            }
            line = eol + 2;
        }
        nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = data_read};
        /* nghttp2 copies the fields now; the head buffer may go. */
        int rc = nghttp2_submit_response(s->ng, hs->id, nv, nnv, &prd);
        outq_consume(&vc->out, &vc->w->slabs, head_len);
        if (rc != 0) {
            log_warn("http/2: cannot submit a response: %s", nghttp2_strerror(rc));
            nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
        }
        hs->submitted = true;
        hs->deferred = false;
    } else if (hs->deferred) {
        hs->deferred = false;
        nghttp2_session_resume_data(s->ng, hs->id);
    }
    worker_mark_dirty(vc->w, s->c);
}

void h2_stream_detach(struct conn *vc, bool rst)
{
    struct h2_stream *hs = vc->h2s;
    if (!hs)
        return;
    struct h2_sess *s = hs->s;
    if (!hs->closed) {
        hs->closed = true;
        nghttp2_session_set_stream_user_data(s->ng, hs->id, NULL);
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  rst ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_CANCEL);
        worker_mark_dirty(vc->w, s->c);
    }
    list_del(&vc->node);
    if (s->nstreams)
        s->nstreams--;
    if (!s->nstreams && !s->closing)
        client_set_timer(s->c, vc->w->cfg->keepalive_timeout_ms);
}

void h2_stream_free(struct conn *vc)
{
    struct h2_stream *hs = vc->h2s;
    if (!hs)
        return;
    free(hs->method);
    free(hs->path);
    free(hs->authority);
    free(hs->hdrs);
    free(hs->body);
    free(hs);
    vc->h2s = NULL;
}
