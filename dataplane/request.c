/* request — see request.h. */
#include "shared/clock.h"
#include "dataplane/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/balance.h"
#include "dataplane/auth.h"
#include "dataplane/cors.h"
#include "dataplane/h2_conn.h"
#include "dataplane/resume.h"
#include "dataplane/route.h"
#include "dataplane/stream.h"
#include "dataplane/ws_conn.h"
#include "dataplane/ws_handshake.h"
#include "shared/log.h"
#include "shared/sbuf.h"

/* An error found while reading the request: answer, then close (the rest of
 * the input cannot be trusted to be a request boundary). */
void request_fail(struct conn *c, int api_err, const char *detail)
{
    c->in_request = true;
    c->close_after = true;
    c->keepalive = false;
    c->in_len = 0;
    client_respond_error(c, api_err, detail);
}

/* ---- reading requests -------------------------------------------------- */

int request_buf_append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n,
                       size_t max)
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

void request_new_id(struct conn *c)
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
    client_reset_request(c);
    dispatch(vc);
    worker_mark_dirty(c->w, c);
    return true;
}

/* A streaming request that did not ask for usage gets
 * `"stream_options":{"include_usage":true}` added before its closing brace,
 * so the backend's count of the tokens arrives whatever the client asked
 * (stream_event.c drops that chunk again).  A body that names stream_options
 * in any way is left alone.  True when the body was changed. */
static bool ask_usage(struct conn *c)
{
    static const char add[] = ",\"stream_options\":{\"include_usage\":true}";
    if (!c->body || memmem(c->body, c->body_len, "\"stream_options\"", 16))
        return false;
    size_t end = c->body_len;
    while (end && c->body[end - 1] != '}')
        end--;
    if (!end)
        return false;
    size_t n = c->body_len + sizeof add - 1;
    char *nb = malloc(n);
    if (!nb)
        return false;
    memcpy(nb, c->body, end - 1);
    memcpy(nb + end - 1, add, sizeof add - 1);
    memcpy(nb + end - 1 + sizeof add - 1, c->body + end - 1, c->body_len - (end - 1));
    free(c->body);
    c->body = nb;
    c->body_len = c->body_cap = n;
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
    case ROUTE_RESUME:
        resume_dispatch(c);
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
        struct sbuf b;
        sbuf_init(&b, 1 << 20);
        if (bal_models_json(w, &b) == 0) {
            client_respond(c, 200, NULL, "application/json", b.p, b.len);
            sbuf_free(&b);
            return;
        }
        sbuf_free(&b);
        char *head = c->up_head;
        c->up_head = NULL;
        if (stream_start(c, false, false, "", head, c->up_head_len, c->up_head_cap, NULL, 0, 0) < 0)
            client_respond_error(c, API_ERR_OVERLOADED, NULL);
        return;
    }
    case ROUTE_CHAT:
    case ROUTE_COMPLETIONS:
    case ROUTE_OLLAMA_CHAT:
    case ROUTE_OLLAMA_GENERATE: {
        char model[96];
        char detail[256];
        bool is_stream = false;
        uint32_t max_tokens = 0;
        int err = route_validate_ex(c->route, c->body ? c->body : "", c->body_len, model,
                                    sizeof model, &is_stream, &max_tokens, detail, sizeof detail,
                                    w->cfg->affinity_prefix, &c->prefix);
        if (err) {
            client_respond_error(c, err, detail);
            return;
        }
        c->usage_injected = is_stream && w->cfg->request_usage &&
                            (c->route == ROUTE_CHAT || c->route == ROUTE_COMPLETIONS) &&
                            ask_usage(c);
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
    /* h2c is for cleartext: over TLS, HTTP/2 is chosen by ALPN */
    if (!up || !hs || c->http10 || c->tls || hs->value_len > 200 ||
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
        request_new_id(c);
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
    if (c->internal && c->route != ROUTE_RESUME) {
        /* Another worker only ever relays resumes here. */
        set_pending_err(c, API_ERR_NOT_FOUND, "no route for ", req->path, req->path_len);
    } else if (preflight) {
        c->route = ROUTE_PREFLIGHT;
        if (!c->cors)
            c->pending_err = API_ERR_FORBIDDEN;
    } else if (c->route == ROUTE_NONE) {
        set_pending_err(c, API_ERR_NOT_FOUND, "no route for ", req->path, req->path_len);
    } else if (!method_ok) {
        set_pending_err(c, API_ERR_METHOD, "method not allowed; use ", allow, strlen(allow));
    } else if (!c->tenant && c->route != ROUTE_HEALTHZ) {
        c->pending_err = API_ERR_UNAUTHORIZED;
    } else if (c->route == ROUTE_RESUME) {
        resume_on_head(c, req);
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
                      c->route == ROUTE_MODELS || c->route == ROUTE_PREFLIGHT ||
                      c->route == ROUTE_RESUME;
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
    client_set_timer(c, cfg->body_timeout_ms);
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
                request_fail(c, API_ERR_BAD_REQUEST, "bad chunked request body");
                return -1;
            }
            if (dl && body_append(c, d, dl)) {
                request_fail(c, API_ERR_BODY_TOO_LARGE, NULL);
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
        request_fail(c, API_ERR_INTERNAL, "out of memory for the request body");
        return -1;
    }
    c->body_left -= take;
    if (!c->body_left)
        dispatch(c);
    return (ssize_t)take;
}

/* Consumes requests from p[0..n); returns the bytes used (the rest is kept
 * by the caller as input for later). */
size_t request_consume(struct conn *c, const char *p, size_t n)
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
                if (h2_start(c, !h2_allowed(w, client_conn_bucket(c))) < 0) {
                    client_abort(c);
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
                    client_set_timer(c, cfg->header_timeout_ms);
                    c->head_timing = true;
                }
                return used;
            }
            if (rc < 0) {
                request_new_id(c);
                request_fail(c, api_error_from_h1(-rc), h1_err_message(-rc));
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

void request_consume_input(struct conn *c)
{
    size_t used = request_consume(c, c->in, c->in_len);
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
