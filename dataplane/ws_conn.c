/* ws_conn — see ws_conn.h. */
#include "dataplane/ws_conn.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "dataplane/api_error.h"
#include "dataplane/client.h"
#include "dataplane/h1_parser.h"
#include "dataplane/stream.h"
#include "dataplane/ws_handshake.h"
#include "shared/log.h"

/* Messages are framed while the socket's outq holds less than this; the
 * rest waits in the stream's outq, where backpressure sees it. */
#define WS_OUT_HIGH (64u * 1024)
#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws_sess {
    wslay_event_context_ptr ctx;
    struct conn *c;
    struct conn *vc; /* the request being answered, or NULL */
    const char *in;  /* bytes being handed to wslay_event_recv */
    size_t in_len;
    char *auth; /* Authorization of the upgrade, for each request */
    char *sid;  /* X-Session-Id of the upgrade */
    uint64_t last_rx_ms;
    bool ping_out;
    bool draining;
    bool blocked; /* the stream waits for room in the socket's outq */
};

/* Per virtual connection: how far its answer has been translated. */
struct ws_stream {
    bool head_done;
    bool sse;
    uint16_t status;
};

/* ---- frames out ---------------------------------------------------------- */

static bool out_full(const struct conn *c)
{
    return outq_pending(&c->out) >= WS_OUT_HIGH;
}

/* A text message, framed here (server frames are not masked). */
static int send_text(struct ws_sess *s, const char *p, size_t n)
{
    struct conn *c = s->c;
    uint8_t hdr[10];
    size_t hl;
    hdr[0] = 0x81; /* FIN, text */
    if (n < 126) {
        hdr[1] = (uint8_t)n;
        hl = 2;
    } else if (n < 65536) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(n >> 8);
        hdr[3] = (uint8_t)n;
        hl = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    if (wslay_event_get_close_sent(s->ctx))
        return -EPIPE;
    if (outq_write(&c->out, &c->w->slabs, hdr, hl) || outq_write(&c->out, &c->w->slabs, p, n))
        return -ENOBUFS; /* the connection is closed by the caller */
    outq_commit(&c->out);
    shm_add(&c->w->slot->c.ws_msgs_out, 1);
    return 0;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    struct ws_sess *s = ud;
    /* Never WOULDBLOCK: a frame of wslay's must go in whole, so that no
     * message of ours lands in the middle of it. */
    if (outq_write(&s->c->out, &s->c->w->slabs, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    outq_commit(&s->c->out);
    return (ssize_t)len;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    struct ws_sess *s = ud;
    if (!s->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < s->in_len ? len : s->in_len;
    memcpy(buf, s->in, n);
    s->in += n;
    s->in_len -= n;
    return (ssize_t)n;
}

static void send_error(struct ws_sess *s, const char *code, const char *message)
{
    char buf[384];
    int n = snprintf(buf, sizeof buf,
                     "{\"type\":\"error\",\"error\":{\"message\":\"%s\",\"type\":"
                     "\"invalid_request_error\",\"param\":null,\"code\":\"%s\"}}",
                     message, code);
    if (n > 0 && (size_t)n < sizeof buf)
        send_text(s, buf, (size_t)n);
}

/* ---- requests in --------------------------------------------------------- */

/* A text message: a chat completion request (forced to stream) or a
 * command. */
static void on_text(struct ws_sess *s, const char *msg, size_t len)
{
    struct conn *c = s->c;
    json_t *root = json_loadb(msg, len, 0, NULL);
    json_t *type = root && json_is_object(root) ? json_object_get(root, "type") : NULL;
    if (type && json_is_string(type) && strcmp(json_string_value(type), "cancel") == 0) {
        json_decref(root);
        if (s->vc) {
            client_virtual_close(s->vc, false); /* cancels the upstream */
            send_text(s, "{\"type\":\"cancelled\"}", 20);
        } else {
            send_error(s, "no_stream", "no stream is running");
        }
        return;
    }
    if (s->vc) {
        json_decref(root);
        send_error(s, "stream_in_progress", "a stream is already running on this connection");
        return;
    }
    if (s->draining || wslay_event_get_close_sent(s->ctx)) {
        json_decref(root);
        return;
    }
    char *body = NULL;
    if (root && json_is_object(root)) {
        json_object_set_new(root, "stream", json_true());
        body = json_dumps(root, JSON_COMPACT);
    }
    json_decref(root);
    const char *b = body ? body : msg; /* not JSON: the request layer says so */
    size_t blen = body ? strlen(body) : len;
    struct conn *vc = client_virtual_new(c->w);
    struct ws_stream *ws = calloc(1, sizeof *ws);
    char *head = NULL;
    size_t cap = 256 + (s->auth ? strlen(s->auth) : 0) + (s->sid ? strlen(s->sid) : 0);
    if (vc && ws)
        head = malloc(cap);
    if (!head) {
        free(body);
        free(ws);
        if (vc)
            client_virtual_close(vc, false);
        send_error(s, "internal_error", "out of memory");
        return;
    }
    int n =
        snprintf(head, cap,
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: sluice\r\n"
                 "Content-Type: application/json\r\n%s%s%s%s%s%sContent-Length: %zu\r\n\r\n",
                 s->auth ? "Authorization: " : "", s->auth ? s->auth : "", s->auth ? "\r\n" : "",
                 s->sid ? "X-Session-Id: " : "", s->sid ? s->sid : "", s->sid ? "\r\n" : "", blen);
    vc->wsp = s;
    vc->wss = ws;
    s->vc = vc;
    shm_add(&c->w->slot->c.ws_msgs_in, 1);
    if (n > 0 && (size_t)n < cap) {
        client_feed(vc, head, (size_t)n);
        if (vc->state == CS_BODY)
            client_feed(vc, b, blen);
    } else {
        client_respond_error(vc, API_ERR_INTERNAL, NULL);
    }
    free(head);
    free(body);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    struct ws_sess *s = ud;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        on_text(s, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
                                (const uint8_t *)"binary messages are not supported", 33);
        break;
    case WSLAY_PONG:
        s->ping_out = false;
        break;
    default:
        break; /* ping: wslay answers; close: wslay answers and stops reading */
    }
}

/* ---- the session --------------------------------------------------------- */

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_msg_recv_callback = on_msg,
};

static char *header_dup(const struct h1_request *req, const char *name)
{
    const struct h1_header *h = h1_header_find(req->headers, req->n_headers, name);
    if (!h || h->value_len > 4096)
        return NULL;
    char *d = malloc(h->value_len + 1);
    if (d) {
        memcpy(d, h->value, h->value_len);
        d[h->value_len] = '\0';
    }
    return d;
}

int ws_start(struct conn *c, const struct h1_request *req)
{
    struct worker *w = c->w;
    const struct h1_header *key = h1_header_find(req->headers, req->n_headers, "sec-websocket-key");
    char kg[24 + sizeof WS_GUID];
    memcpy(kg, key->value, 24);
    memcpy(kg + 24, WS_GUID, sizeof WS_GUID - 1);
    uint8_t sha[20];
    char accept[40];
    word32 alen = sizeof accept;
    if (wc_ShaHash((const byte *)kg, (word32)sizeof kg - 1, sha) != 0 ||
        Base64_Encode_NoNl(sha, sizeof sha, (byte *)accept, &alen) != 0)
        return -EINVAL;
    struct ws_sess *s = calloc(1, sizeof *s);
    if (!s || wslay_event_context_server_init(&s->ctx, &ws_callbacks, s) != 0) {
        free(s);
        return -ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(s->ctx, w->cfg->ws_max_message);
    s->c = c;
    s->auth = header_dup(req, "authorization");
    s->sid = header_dup(req, "x-session-id");
    s->last_rx_ms = w->now_ms;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %.*s\r\nX-Request-Id: %.*s\r\n"
                     "\r\n",
                     (int)alen, accept, (int)c->reqid_len, c->reqid);
    if (n <= 0 || (size_t)n >= sizeof head || outq_write(&c->out, &w->slabs, head, (size_t)n)) {
        wslay_event_context_free(s->ctx);
        free(s->auth);
        free(s->sid);
        free(s);
        return -ENOBUFS;
    }
    outq_commit(&c->out);
    c->ws = s;
    c->status = 101;
    c->state = CS_BUSY;
    c->keepalive = false;
    shm_add(&w->slot->c.ws_conns, 1);
    shm_gauge_add(&w->slot->g.ws_conns, 1);
    client_set_timer(c, w->cfg->ws_ping_interval_ms);
    worker_mark_dirty(w, c);
    return 0;
}

void ws_on_data(struct conn *c, const char *p, size_t n)
{
    struct ws_sess *s = c->ws;
    s->in = p;
    s->in_len = n;
    s->last_rx_ms = c->w->now_ms;
    s->ping_out = false;
    int rc = wslay_event_recv(s->ctx);
    if (rc != 0) {
        log_info("websocket: closing: the client's frames cannot be read (%d, %zu bytes)", rc, n);
        client_abort(c);
        return;
    }
    s->in = NULL;
    s->in_len = 0;
    worker_mark_dirty(c->w, c);
}

void ws_produce(struct conn *c)
{
    struct ws_sess *s = c->ws;
    if (!s)
        return;
    if (s->blocked && !out_full(c) && s->vc) {
        s->blocked = false;
        worker_mark_dirty(c->w, s->vc);
    }
    if (wslay_event_send(s->ctx) != 0) {
        log_info("websocket: closing: cannot send");
        client_abort(c);
        return;
    }
    if (!wslay_event_want_read(s->ctx) && !wslay_event_want_write(s->ctx) && !outq_pending(&c->out))
        client_proto_finished(c);
}

static void queue_close(struct ws_sess *s, uint16_t code, const char *why)
{
    wslay_event_queue_close(s->ctx, code, (const uint8_t *)why, strlen(why));
    worker_mark_dirty(s->c->w, s->c);
}

void ws_on_timer(struct conn *c)
{
    struct ws_sess *s = c->ws;
    const struct config *cfg = c->w->cfg;
    uint64_t now = c->w->now_ms;
    if (wslay_event_get_close_sent(s->ctx)) {
        client_abort(c); /* the client never completed the close */
        return;
    }
    if (s->ping_out && now - s->last_rx_ms >= cfg->ws_ping_interval_ms + cfg->ws_pong_timeout_ms) {
        log_info("websocket: no pong within %u ms: closing", cfg->ws_pong_timeout_ms);
        queue_close(s, 1011, "ping timeout");
        client_set_timer(c, 1000);
        return;
    }
    if (now - s->last_rx_ms >= cfg->ws_ping_interval_ms) {
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"sluice", 6};
        wslay_event_queue_msg(s->ctx, &ping);
        s->ping_out = true;
        worker_mark_dirty(c->w, c);
        client_set_timer(c, cfg->ws_pong_timeout_ms);
        return;
    }
    client_set_timer(c, (uint32_t)(s->last_rx_ms + cfg->ws_ping_interval_ms - now));
}

void ws_drain(struct conn *c)
{
    struct ws_sess *s = c->ws;
    s->draining = true;
    if (!s->vc)
        queue_close(s, WSLAY_CODE_GOING_AWAY, "draining");
}

void ws_close(struct conn *c)
{
    struct ws_sess *s = c->ws;
    if (!s)
        return;
    if (s->vc)
        client_virtual_close(s->vc, false); /* detaches it */
    shm_gauge_add(&c->w->slot->g.ws_conns, -1);
    wslay_event_context_free(s->ctx);
    free(s->auth);
    free(s->sid);
    free(s);
    c->ws = NULL;
}

/* ---- answers out ----------------------------------------------------------- */

/* The data of one SSE event ev[0..n) (our relay's framing: lines ending in
 * LF or CRLF), with its event type.  Data lines are joined with LF. */
static size_t event_data(char *ev, size_t n, char *out, size_t cap, bool *is_error)
{
    size_t o = 0;
    bool first = true;
    *is_error = false;
    char *p = ev, *end = ev + n;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t ll = (size_t)(eol - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (ll >= 5 && memcmp(p, "data:", 5) == 0) {
            const char *v = p + 5 + (ll > 5 && p[5] == ' ');
            size_t vl = ll - (size_t)(v - p);
            if (!first && o < cap)
                out[o++] = '\n';
            if (vl > cap - o)
                vl = cap - o;
            memcpy(out + o, v, vl);
            o += vl;
            first = false;
        } else if (ll == 12 && memcmp(p, "event: error", 12) == 0) {
            *is_error = true;
        }
        p = eol + 1;
    }
    return o;
}

/* Sends the error answer of a failed request (an OpenAI error body); with
 * its HTTP status unless 0 (an error event in a stream). */
static void send_http_error(struct ws_sess *s, uint16_t status, const char *body, size_t n)
{
    char pre[48];
    int k = status ? snprintf(pre, sizeof pre, "{\"type\":\"error\",\"status\":%u,", status)
                   : snprintf(pre, sizeof pre, "{\"type\":\"error\",");
    /* body is {"error":{...}}: spliced after our two fields */
    if (n < 2 || body[0] != '{' || k <= 0 || (size_t)k >= sizeof pre) {
        send_error(s, "backend_error", "the request failed");
        return;
    }
    char *msg = malloc((size_t)k + n - 1);
    if (!msg)
        return;
    memcpy(msg, pre, (size_t)k);
    memcpy(msg + k, body + 1, n - 1);
    send_text(s, msg, (size_t)k + n - 1);
    free(msg);
}

void ws_stream_flush(struct conn *vc)
{
    struct ws_sess *s = vc->wsp;
    struct ws_stream *ws = vc->wss;
    if (!s || !ws)
        return;
    struct worker *w = vc->w;
    struct bufpool *pool = &w->slabs;
    if (!ws->head_done) {
        char head[4096];
        size_t n = outq_peek(&vc->out, pool, head, sizeof head - 1);
        head[n] = '\0';
        char *end = strstr(head, "\r\n\r\n");
        if (!end)
            return;
        ws->status = (uint16_t)strtoul(head + 9, NULL, 10);
        ws->sse = strcasestr(head, "\r\ncontent-type: text/event-stream") != NULL;
        outq_consume(&vc->out, pool, (size_t)(end - head) + 4);
        ws->head_done = true;
    }
    if (ws->status == 200 && ws->sse) {
        /* one message per event, while the socket keeps up */
        char stackbuf[8192];
        char *buf = stackbuf;
        size_t cap = sizeof stackbuf;
        while (outq_committed(&vc->out) && !out_full(s->c)) {
            size_t n = outq_peek(&vc->out, pool, buf, cap);
            char *e = NULL;
            for (size_t i = 0; i + 1 < n && !e; i++)
                if (buf[i] == '\n' &&
                    (buf[i + 1] == '\n' || (buf[i + 1] == '\r' && i + 2 < n && buf[i + 2] == '\n')))
                    e = buf + i + (buf[i + 1] == '\n' ? 2 : 3);
            if (!e) {
                if (n < cap || cap >= w->cfg->max_event_size + 64)
                    break; /* the rest of the event is not committed yet */
                char *big = malloc(w->cfg->max_event_size + 64);
                if (!big)
                    break;
                if (buf != stackbuf)
                    free(buf);
                buf = big;
                cap = w->cfg->max_event_size + 64;
                continue;
            }
            size_t evlen = (size_t)(e - buf);
            bool is_err;
            /* a token's event fits the stack: no allocation per token */
            char dstack[8192];
            char *data = evlen <= sizeof dstack ? dstack : malloc(evlen);
            size_t dl = data ? event_data(buf, evlen, data, evlen, &is_err) : 0;
            if (data && dl == 6 && memcmp(data, "[DONE]", 6) == 0)
                send_text(s, "{\"type\":\"done\"}", 15);
            else if (data && is_err && dl > 1 && data[0] == '{')
                send_http_error(s, 0, data, dl);
            else if (data && dl)
                send_text(s, data, dl);
            if (data != dstack)
                free(data);
            outq_consume(&vc->out, pool, evlen);
        }
        if (buf != stackbuf)
            free(buf);
        if (outq_committed(&vc->out) && out_full(s->c))
            s->blocked = true;
        if (vc->st)
            stream_on_client_sent(vc->st);
    } else if (vc->resp_done) {
        /* a whole answer: an error, or a body that was not a stream */
        size_t n = (size_t)outq_committed(&vc->out);
        char *body = malloc(n + 1);
        if (body) {
            outq_peek(&vc->out, pool, body, n);
            if (ws->status == 200) {
                send_text(s, body, n);
                send_text(s, "{\"type\":\"done\"}", 15);
            } else {
                send_http_error(s, ws->status, body, n);
            }
            free(body);
        }
        outq_consume(&vc->out, pool, n);
    }
    worker_mark_dirty(w, s->c);
    if (vc->resp_done && !outq_pending(&vc->out))
        client_virtual_close(vc, true); /* answered: the next request may come */
}

void ws_stream_detach(struct conn *vc)
{
    struct ws_sess *s = vc->wsp;
    free(vc->wss);
    vc->wss = NULL;
    vc->wsp = NULL;
    if (!s)
        return;
    s->vc = NULL;
    s->blocked = false;
    if (s->draining)
        queue_close(s, WSLAY_CODE_GOING_AWAY, "draining");
}
