/* stream_head — the response head a stream gives its client: the
 * backend's, with hop-by-hop fields replaced and sluice's own added, or one
 * made here for an answer translated from another API (xlat.c).  Part of
 * stream.c's stream (see stream.h); split off for size. */
#include "dataplane/stream.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dataplane/api_error.h"
#include "dataplane/balance.h"
#include "dataplane/client.h"
#include "dataplane/h1_parser.h"
#include "dataplane/worker.h"
#include "dataplane/xlat.h"
#include "shared/clock.h"

static struct worker *W(const struct stream *st)
{
    return st->w;
}

static bool hop_by_hop(const struct h1_response *r, const struct h1_header *h)
{
    static const char *const drop[] = {
        "connection",     "keep-alive", "proxy-connection",  "transfer-encoding",
        "content-length", "te",         "trailer",           "upgrade",
        "x-request-id",   "server",     "x-accel-buffering", /* sluice adds its own */
    };
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return true;
    return h1_connection_names(r->headers, r->n_headers, h->name, h->name_len);
}

static int put(struct stream *st, const char *s, size_t n)
{
    return outq_write(&st->c->out, &W(st)->slabs, s, n);
}

/* The fields every response head to the client ends with: the framing,
 * an event stream's no-cache fields, CORS, the request id, Connection. */
static int head_tail(struct stream *st, bool sse, bool has_cache_control)
{
    struct worker *w = W(st);
    struct conn *c = st->c;
    int err = 0;
    if (st->chunked_out)
        err |= put(st, "Transfer-Encoding: chunked\r\n", 28);
    if (sse) {
        if (!has_cache_control)
            err |= put(st, "Cache-Control: no-cache\r\n", 25);
        /* an nginx in front of sluice must not buffer the stream either */
        err |= put(st, "X-Accel-Buffering: no\r\n", 23);
    }
    if (c->cors)
        err |= put(st, c->cors, strlen(c->cors));
    char line[160];
    int n = snprintf(line, sizeof line, "X-Request-Id: %.*s\r\n%s\r\n", (int)c->reqid_len, c->reqid,
                     !c->keepalive || w->draining ? "Connection: close\r\n"
                     : c->http10                  ? "Connection: keep-alive\r\n"
                                                  : "");
    return err | put(st, line, (size_t)n);
}

int stream_write_head(struct stream *st, unsigned status, const char *ctype, bool sse)
{
    struct worker *w = W(st);
    struct conn *c = st->c;
    /* HTTP/2 frames the body itself (a virtual connection: h2_conn.c). */
    st->chunked_out = !c->http10 && !c->virt;
    if (c->http10)
        c->keepalive = false; /* the body ends when the connection does */
    if (outq_mark(&c->out, &w->slabs, &st->head_mark) < 0)
        goto nobufs;
    st->head_written = true;
    char line[256];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\n", status,
                     client_reason(status), ctype);
    if (put(st, line, (size_t)n) | head_tail(st, sse, false))
        goto nobufs;
    stream_rearm_timer(st);
    return 0;
nobufs:
    stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the response");
    return -1;
}

int stream_on_head(struct stream *st, const struct h1_response *r)
{
    struct worker *w = W(st);
    struct conn *c = st->c;
    if (st->continuing) {
        /* The client has its head already: only the events go on. */
        const struct h1_header *ct = h1_header_find(r->headers, r->n_headers, "content-type");
        bool sse = r->status == 200 && ct && ct->value_len >= 17 &&
                   strncasecmp(ct->value, "text/event-stream", 17) == 0;
        bool lines = !sse && xlat_continues(st, r);
        if (!sse && !lines) {
            char why[48];
            snprintf(why, sizeof why, "answered the continuation %u", (unsigned)r->status);
            bal_failure(w, st->bk, why);
            if (!stream_continue(st, why))
                stream_fail(st, API_ERR_BACKEND_CLOSED, "the stream could not be continued");
            return -1;
        }
        st->phase = SP_RELAY;
        st->mode = sse ? RM_SSE : RM_OLLAMA;
        stream_rearm_timer(st);
        return 0;
    }
    if (!st->forwarded) {
        /* 429 and 503 say "not now, not here": another backend may serve
         * it, invisibly, while the client has seen nothing. */
        bool refused = r->status == 429 || r->status == 503;
        if (r->status >= 500 || refused) {
            char why[32];
            snprintf(why, sizeof why, "answered %u", (unsigned)r->status);
            bal_failure(w, st->bk, why);
            if (refused && stream_failover(st, why, false))
                return -1; /* this connection is done with */
        }
        /* A good head is not yet a good answer (a backend can send it and
         * then no token): success is counted at the first byte relayed. */
        if (xlat_translating(st))
            return xlat_on_head(st, r) < 0 ? -1 : 0;
    }
    st->phase = SP_RELAY;
    st->status = r->status;
    st->t_last_ns = clock_mono_ns();

    const struct h1_header *ct = h1_header_find(r->headers, r->n_headers, "content-type");
    bool sse = r->status == 200 && ct && ct->value_len >= 17 &&
               strncasecmp(ct->value, "text/event-stream", 17) == 0;
    bool no_body = r->flags & H1_F_NO_BODY;
    /* Ollama-native streams go line by line (each line a token); its
     * whole answers (a Content-Length) go as they are. */
    bool lines = st->xl.native && r->status == 200 && !no_body &&
                 !(r->flags & H1_F_CONTENT_LENGTH) && ct && ct->value_len >= 20 &&
                 strncasecmp(ct->value, "application/x-ndjson", 20) == 0;
    st->mode = sse ? RM_SSE : lines ? RM_LINES : RM_RAW;
    bool pass_cl = !sse && (r->flags & H1_F_CONTENT_LENGTH);
    /* HTTP/2 frames the body itself (a virtual connection: h2_conn.c). */
    st->chunked_out = !no_body && !pass_cl && !c->http10 && !c->virt;
    if (!no_body && !pass_cl && c->http10)
        c->keepalive = false; /* the body ends when the connection does */

    if (outq_mark(&c->out, &w->slabs, &st->head_mark) < 0)
        goto nobufs;
    st->head_written = true;
    char line[512];
    int n;
    if (r->reason_len)
        n = snprintf(line, sizeof line, "HTTP/1.1 %u %.*s\r\n", (unsigned)r->status,
                     (int)(r->reason_len > 128 ? 128 : r->reason_len), r->reason);
    else
        n = snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\n", (unsigned)r->status,
                     client_reason(r->status));
    int err = put(st, line, (size_t)n);
    bool has_cache_control = false;
    for (uint32_t i = 0; i < r->n_headers && !err; i++) {
        const struct h1_header *h = &r->headers[i];
        if (hop_by_hop(r, h))
            continue;
        if (h->name_len == 13 && strncasecmp(h->name, "cache-control", 13) == 0)
            has_cache_control = true;
        err |= put(st, h->name, h->name_len);
        err |= put(st, ": ", 2);
        err |= put(st, h->value, h->value_len);
        err |= put(st, "\r\n", 2);
    }
    if (pass_cl) {
        n = snprintf(line, sizeof line, "Content-Length: %llu\r\n",
                     (unsigned long long)r->content_length);
        err |= put(st, line, (size_t)n);
    }
    err |= head_tail(st, sse, has_cache_control);
    if (err)
        goto nobufs;
    /* The head stays uncommitted until the first body bytes (or the end)
     * are written after it: backends commonly write head and body apart
     * (llmsim, uvicorn), and sending the head alone costs the client an
     * extra segment and wake-up for nothing it can use. An upstream failure
     * before then still gets a clean 502 instead of a truncated 200. */
    stream_rearm_timer(st);
    return 0;
nobufs:
    stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the response");
    return -1;
}
