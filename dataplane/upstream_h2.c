/* upstream_h2 — see upstream_h2.h. */
#include "dataplane/upstream_h2.h"

#include <ctype.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/api_error.h"
#include "dataplane/h1_parser.h"
#include "dataplane/stream.h"
#include "dataplane/upstream.h"
#include "shared/log.h"

#define H2_STREAMS_CAP 128         /* streams per session, whatever the backend allows */
#define H2_CONN_WINDOW (16 << 20)  /* connection receive window: streams pause one by one */
#define H2_OUT_HIGH    (256 << 10) /* frames gathered for one send at most */
#define H2_HEAD_MAX    (64 << 10)  /* response field bytes kept per stream */

struct uh2 {
    struct list_node node; /* pool->h2s */
    struct worker *w;
    struct backend_pool *pool;
    struct upconn *t; /* the transport; NULL once it closed */
    nghttp2_session *ng;
    struct list_node waiting; /* virtual upconns until the connection is up */
    uint32_t nstreams;        /* open or waiting */
    bool connected;
    bool goaway;  /* no new streams on it */
    bool in_recv; /* inside nghttp2_session_mem_recv: no send, no free */
    bool sending; /* a send of out is in flight */
    bool broken;  /* the session failed: close the transport when out of recv */
    char *out;
    size_t out_len, out_sent, out_cap;
    struct iovec iov;
    struct msghdr msg;
};

static void flush(struct uh2 *s);

static uint32_t max_streams(const struct uh2 *s)
{
    uint32_t m =
        s->ng ? nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
              : 100;
    return m < H2_STREAMS_CAP ? m : H2_STREAMS_CAP;
}

/* ---- the virtual upconns -------------------------------------------------- */

static void virt_free(struct upconn *u)
{
    struct uh2 *s = u->h2;
    if (list_linked(&u->node))
        list_del(&u->node);
    if (s && s->ng && u->sid > 0)
        nghttp2_session_set_stream_user_data(s->ng, u->sid, NULL);
    if (s && s->nstreams)
        s->nstreams--;
    if (s && s->t && !s->nstreams && !s->t->closing) {
        /* idle: kept for upstream_idle_timeout, then closed (upstream.c) */
        s->t->state = UC_IDLE;
        tw_set(&s->w->tw, &s->t->timer, s->w->now_ms + s->w->cfg->upstream_idle_timeout_ms);
    }
    u->w->upconn_objs--;
    free(u->hbuf);
    free(u->hdrs);
    free(u);
}

/* The stream's upconn failed: detach and report (the stream may fail over,
 * which may come back here for another stream). */
static void virt_fail(struct upconn *u, int api_err)
{
    struct stream *st = u->st;
    u->st = NULL;
    if (st) {
        st->reused_last = false;
        st->got_bytes_last = u->got_bytes;
        st->up = NULL;
    }
    virt_free(u);
    if (st)
        stream_on_upstream_error(st, api_err);
}

/* The request body, read by nghttp2 as it sends DATA frames. */
static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    /* By the stream's id, not a pointer kept in the source: a virtual
     * upconn let go of is unlinked from its stream at once. */
    struct upconn *u = nghttp2_session_get_stream_user_data(ng, sid);
    struct stream *st = u ? u->st : NULL;
    if (!st || !st->req_body) {
        /* let go of, or answered (and its request freed) before its body
         * was all sent: the rest is not needed */
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    uint64_t left = st->req_body_len - st->req_sent;
    size_t n = left < len ? (size_t)left : len;
    memcpy(buf, st->req_body + st->req_sent, n);
    st->req_sent += n;
    if (st->req_sent == st->req_body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static bool skip_field(const char *n, size_t l)
{
    static const char *const drop[] = {
        "host",    "connection", "keep-alive",       "proxy-connection",
        "upgrade", "te",         "transfer-encoding"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        if (l == strlen(drop[i]) && strncasecmp(n, drop[i], l) == 0)
            return true;
    return false;
}

/* The stream's HTTP/1.1 request head (built for any backend) as HEADERS. */
static int submit(struct uh2 *s, struct upconn *u)
{
    struct worker *w = s->w;
    struct stream *st = u->st;
    struct h1_limits lim = {
        .max_request_line = 1u << 20,
        .max_header_bytes = 1u << 20,
        .max_headers = w->cfg->max_headers,
        .max_body = UINT64_MAX,
    };
    struct h1_request req = {.headers = w->hdrs};
    int rc = h1_parse_request(st->req_head, st->req_head_len, &lim, &req);
    if (rc <= 0)
        return -EINVAL;
    nghttp2_nv nv[4 + CONFIG_MAX_HEADERS_CAP];
    char lower[8192];
    size_t lused = 0, n = 0;
    const struct h1_header *host = h1_header_find(req.headers, req.n_headers, "host");
#define NV(N, NL, V, VL)                                                                           \
    (nv[n++] = (nghttp2_nv){(uint8_t *)(N), (uint8_t *)(V), (NL), (VL), NGHTTP2_NV_FLAG_NONE})
    NV(":method", 7, req.method, req.method_len);
    NV(":scheme", 7, "http", 4);
    NV(":authority", 10, host ? host->value : "", host ? host->value_len : 0);
    NV(":path", 5, req.target, req.target_len);
    for (uint32_t i = 0; i < req.n_headers; i++) {
        const struct h1_header *h = &req.headers[i];
        if (skip_field(h->name, h->name_len))
            continue;
        if (lused + h->name_len > sizeof lower)
            return -E2BIG;
        char *ln = lower + lused; /* HTTP/2 field names are lower case */
        for (uint32_t k = 0; k < h->name_len; k++)
            ln[k] = (char)tolower((unsigned char)h->name[k]);
        lused += h->name_len;
        NV(ln, h->name_len, h->value, h->value_len);
    }
#undef NV
    nghttp2_data_provider dp = {.read_callback = read_body};
    st->req_sent = 0;
    int32_t sid = nghttp2_submit_request(s->ng, NULL, nv, n, st->req_body_len ? &dp : NULL, u);
    if (sid < 0)
        return -EIO;
    u->sid = sid;
    u->h2_open = true;
    u->state = UC_HEAD;
    return 0;
}

static void start(struct uh2 *s, struct upconn *u)
{
    if (submit(s, u) < 0) {
        log_info("backend %s: cannot send the request over HTTP/2", s->pool->be->name);
        virt_fail(u, API_ERR_BACKEND_DOWN);
    }
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static struct upconn *stream_of(struct uh2 *s, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(s->ng, sid);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct uh2 *s = ud;
    struct upconn *u = stream_of(s, f->hd.stream_id);
    if (!u || f->hd.type != NGHTTP2_HEADERS || u->state == UC_BODY)
        return 0; /* trailers, or a stream let go of */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        unsigned v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            v = v * 10 + (unsigned)(value[i] - '0');
        u->status = (uint16_t)v;
        return 0;
    }
    if (namelen && name[0] == ':')
        return 0;
    uint32_t max = s->w->cfg->max_headers;
    if (u->nhdrs >= max || u->hlen + namelen + valuelen > H2_HEAD_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (!u->hdrs && !(u->hdrs = calloc(max, sizeof *u->hdrs)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!u->hbuf) {
        if (!(u->hbuf = malloc(H2_HEAD_MAX)))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        u->hcap = H2_HEAD_MAX;
    }
    /* hbuf is allocated whole once and never moves: pointers into it hold. */
    char *p = u->hbuf + u->hlen;
    memcpy(p, name, namelen);
    memcpy(p + namelen, value, valuelen);
    u->hdrs[u->nhdrs++] = (struct h1_header){.name = p,
                                             .value = p + namelen,
                                             .name_len = (uint32_t)namelen,
                                             .value_len = (uint32_t)valuelen};
    u->hlen += (uint32_t)(namelen + valuelen);
    return 0;
}

static void deliver_head(struct uh2 *s, struct upconn *u, bool end)
{
    struct h1_response r = {
        .status = u->status, .version_minor = 1, .headers = u->hdrs, .n_headers = u->nhdrs};
    const struct h1_header *cl = h1_header_find(u->hdrs, u->nhdrs, "content-length");
    if (cl) {
        uint64_t v = 0;
        for (uint32_t i = 0; i < cl->value_len && cl->value[i] >= '0' && cl->value[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(cl->value[i] - '0');
        r.flags |= H1_F_CONTENT_LENGTH;
        r.content_length = v;
    }
    if (end && !cl)
        r.flags |= H1_F_NO_BODY;
    int32_t sid = u->sid;
    u->state = UC_BODY;
    if (stream_on_head(u->st, &r) < 0)
        return;
    if (end && (u = stream_of(s, sid)) && u->st) {
        u->resp_done = true;
        stream_on_body_end(u->st);
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ng;
    struct uh2 *s = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        s->goaway = true; /* streams past last_stream_id are closed by nghttp2: they fail over */
        return 0;
    }
    struct upconn *u = f->hd.stream_id ? stream_of(s, f->hd.stream_id) : NULL;
    if (!u || !u->st)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && u->state != UC_BODY) {
        if (u->status >= 100 && u->status < 200) {
            u->status = 0; /* an interim answer: the real one follows */
            u->nhdrs = u->hlen = 0;
            return 0;
        }
        deliver_head(s, u, end);
    } else if (end && u->state == UC_BODY) {
        u->resp_done = true;
        stream_on_body_end(u->st); /* releases u */
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    struct uh2 *s = ud;
    struct upconn *u = stream_of(s, sid);
    if (!u || !u->st || u->state != UC_BODY) {
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    u->got_bytes = true;
    if (stream_on_body(u->st, (const char *)data, len) < 0) {
        /* the stream failed and let go of u */
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    if ((u = stream_of(s, sid)) == NULL) {
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    /* Acknowledged only while the client keeps up (backpressure). */
    if (u->paused)
        u->unconsumed += (uint32_t)len;
    else
        nghttp2_session_consume(ng, sid, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
    (void)ng;
    struct uh2 *s = ud;
    struct upconn *u = stream_of(s, sid);
    if (!u)
        return 0;
    u->h2_open = false;
    if (!u->st) {
        virt_free(u);
        return 0;
    }
    if (u->resp_done)
        return 0;
    log_info("backend %s: HTTP/2 stream %d closed (%s) %s", s->pool->be->name, sid,
             nghttp2_http2_strerror(code),
             u->state == UC_BODY ? "in the middle of the answer" : "before an answer");
    virt_fail(u, u->state == UC_BODY ? API_ERR_BACKEND_CLOSED : API_ERR_BACKEND_DOWN);
    return 0;
}

/* ---- the session ------------------------------------------------------------ */

static void session_free(struct uh2 *s)
{
    list_del(&s->node);
    nghttp2_session_del(s->ng);
    free(s->out);
    free(s);
}

/* Every stream fails; the session goes once the transport has closed. */
void uh2_transport_closed(struct uh2 *s)
{
    s->t = NULL;
    s->goaway = true;
    struct list_node *n;
    while ((n = list_pop_head(&s->waiting)) != NULL) {
        struct upconn *u = container_of(n, struct upconn, node);
        list_init(&u->node);
        virt_fail(u, API_ERR_BACKEND_DOWN);
    }
    /* Streams on the wire: nghttp2 knows them; walk the ids it gave. */
    int32_t last = nghttp2_session_get_last_proc_stream_id(s->ng);
    int32_t next = (int32_t)nghttp2_session_get_next_stream_id(s->ng);
    (void)last;
    for (int32_t sid = 1; sid < next; sid += 2) {
        struct upconn *u = stream_of(s, sid);
        if (!u)
            continue;
        nghttp2_session_set_stream_user_data(s->ng, sid, NULL);
        u->sid = -1;
        if (u->st)
            virt_fail(u, u->state == UC_BODY ? API_ERR_BACKEND_CLOSED : API_ERR_BACKEND_DOWN);
        else
            virt_free(u);
    }
    if (s->in_recv)
        s->broken = true; /* freed when mem_recv returns */
    else
        session_free(s);
}

static ssize_t no_send(nghttp2_session *ng, const uint8_t *d, size_t l, int f, void *ud)
{
    (void)ng, (void)d, (void)l, (void)f, (void)ud;
    return NGHTTP2_ERR_CALLBACK_FAILURE; /* frames go out through mem_send */
}

static struct uh2 *session_new(struct worker *w, struct backend_pool *pool)
{
    struct uh2 *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->w = w;
    s->pool = pool;
    list_init(&s->waiting);
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs)) {
        free(s);
        return NULL;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, no_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_option_new(&opt);
    if (rc == 0) {
        nghttp2_option_set_no_auto_window_update(opt, 1);
        rc = nghttp2_session_client_new2(&s->ng, cbs, s, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cbs);
    if (rc) {
        free(s);
        return NULL;
    }
    uint32_t window = (uint32_t)w->cfg->stream_buffer_max;
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
    };
    nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, set, sizeof set / sizeof *set);
    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    s->t = upstream_connect(w, pool);
    if (!s->t) {
        nghttp2_session_del(s->ng);
        free(s);
        return NULL;
    }
    s->t->h2 = s;
    list_add_tail(&pool->h2s, &s->node);
    return s;
}

int uh2_acquire(struct worker *w, struct backend_pool *pool, struct stream *st)
{
    struct uh2 *s = NULL;
    for (struct list_node *n = pool->h2s.next; n != &pool->h2s; n = n->next) {
        struct uh2 *c = container_of(n, struct uh2, node);
        if (c->t && !c->goaway && !c->broken && c->nstreams < max_streams(c)) {
            s = c;
            break;
        }
    }
    if (!s && !(s = session_new(w, pool)))
        return -errno ? -errno : -ENOMEM;
    struct upconn *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->w = w;
    u->pool = pool;
    u->fd = -1;
    u->virt = true;
    u->h2 = s;
    u->sid = -1;
    u->st = st;
    u->state = UC_CONNECTING;
    list_init(&u->node);
    list_init(&u->rearm_node);
    st->up = u;
    w->upconn_objs++;
    s->nstreams++;
    if (s->t->state == UC_IDLE) {
        s->t->state = UC_BODY;
        tw_cancel(&w->tw, &s->t->timer);
    }
    if (!s->connected) {
        list_add_tail(&s->waiting, &u->node);
        return 0;
    }
    shm_add(&w->slot->c.upstream_reused, 1);
    start(s, u);
    flush(s);
    return 0;
}

void uh2_connected(struct uh2 *s)
{
    s->connected = true;
    s->t->state = UC_BODY;
    struct list_node *n;
    while (s->t && (n = list_pop_head(&s->waiting)) != NULL) {
        struct upconn *u = container_of(n, struct upconn, node);
        list_init(&u->node);
        start(s, u);
    }
    if (s->t)
        flush(s);
}

/* Frames nghttp2 has for the backend go out in one send at a time. */
static void flush(struct uh2 *s)
{
    if (s->sending || s->in_recv || !s->t || !s->connected || s->t->closing)
        return;
    s->out_len = s->out_sent = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t k = nghttp2_session_mem_send(s->ng, &data);
        if (k < 0) {
            log_info("backend %s: HTTP/2: %s", s->pool->be->name, nghttp2_strerror((int)k));
            upstream_close(s->t);
            return;
        }
        if (k == 0)
            break;
        if (s->out_len + (size_t)k > s->out_cap) {
            size_t cap = s->out_cap ? s->out_cap : 16384;
            while (cap < s->out_len + (size_t)k)
                cap *= 2;
            char *nb = realloc(s->out, cap);
            if (!nb) {
                upstream_close(s->t);
                return;
            }
            s->out = nb;
            s->out_cap = cap;
        }
        memcpy(s->out + s->out_len, data, (size_t)k);
        s->out_len += (size_t)k;
        if (s->out_len >= H2_OUT_HIGH)
            break;
    }
    if (!s->out_len)
        return;
    struct upconn *t = s->t;
    s->iov = (struct iovec){s->out, s->out_len};
    memset(&s->msg, 0, sizeof s->msg);
    s->msg.msg_iov = &s->iov;
    s->msg.msg_iovlen = 1;
    struct io_uring_sqe *sqe = worker_sqe(s->w);
    io_uring_prep_sendmsg(sqe, t->fd, &s->msg, MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, ud_make(t, OP_USEND));
    t->inflight++;
    s->sending = true;
}

void uh2_on_send(struct uh2 *s, int res)
{
    s->sending = false;
    if (res < 0) {
        upstream_close(s->t);
        return;
    }
    s->out_sent += (size_t)res;
    if (s->out_sent < s->out_len) {
        s->iov = (struct iovec){s->out + s->out_sent, s->out_len - s->out_sent};
        memset(&s->msg, 0, sizeof s->msg);
        s->msg.msg_iov = &s->iov;
        s->msg.msg_iovlen = 1;
        struct io_uring_sqe *sqe = worker_sqe(s->w);
        io_uring_prep_sendmsg(sqe, s->t->fd, &s->msg, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(sqe, ud_make(s->t, OP_USEND));
        s->t->inflight++;
        s->sending = true;
        return;
    }
    flush(s);
}

void uh2_on_data(struct uh2 *s, const char *p, size_t n)
{
    s->in_recv = true;
    ssize_t rc = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, n);
    s->in_recv = false;
    if (s->broken) {
        session_free(s); /* the transport closed inside */
        return;
    }
    if (rc < 0) {
        log_info("backend %s: HTTP/2: %s", s->pool->be->name, nghttp2_strerror((int)rc));
        upstream_close(s->t);
        return;
    }
    flush(s);
    if (s->t && !nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))
        upstream_close(s->t); /* GOAWAY done with: nothing more on it */
}

void uh2_release(struct upconn *u, bool cancel)
{
    struct uh2 *s = u->h2;
    struct worker *w = u->w;
    u->st = NULL;
    if (u->h2_open && !u->resp_done && s && s->ng) {
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, u->sid, NGHTTP2_CANCEL);
        if (u->unconsumed)
            nghttp2_session_consume_connection(s->ng, u->unconsumed);
        if (cancel)
            shm_add(&w->slot->c.upstream_cancellations, 1);
    }
    virt_free(u);
    if (s)
        flush(s);
}

void uh2_pause(struct upconn *u)
{
    u->paused = true;
}

void uh2_resume(struct upconn *u)
{
    struct uh2 *s = u->h2;
    u->paused = false;
    if (u->unconsumed && s && s->ng && u->h2_open) {
        nghttp2_session_consume(s->ng, u->sid, u->unconsumed);
        u->unconsumed = 0;
        flush(s);
    }
}

void uh2_close_idle(struct backend_pool *pool)
{
    struct list_node *n = pool->h2s.next;
    while (n != &pool->h2s) {
        struct uh2 *s = container_of(n, struct uh2, node);
        n = n->next;
        if (!s->nstreams && s->t)
            upstream_close(s->t); /* frees s */
    }
}
