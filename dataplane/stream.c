/* stream — see stream.h. */
#include "shared/clock.h"
#include "dataplane/stream.h"
#include "shared/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/admission.h"
#include "dataplane/api_error.h"
#include "dataplane/auth.h"
#include "dataplane/balance.h"
#include "dataplane/client.h"
#include "dataplane/resume.h"
#include "dataplane/stream_event.h"
#include "dataplane/route.h"
#include "dataplane/upstream.h"
#include "shared/fmt.h"
#include "shared/log.h"

static void rearm_timer(struct stream *st);

static struct worker *W(const struct stream *st)
{
    return st->w;
}

static struct stream *stream_new(struct conn *c, char *head, uint32_t head_len, uint32_t head_cap,
                                 const char *body, uint64_t body_len)
{
    struct worker *w = c->w;
    struct stream *st = calloc(1, sizeof *st);
    if (!st || route_finish_head(&head, &head_len, &head_cap, body != NULL, body_len) < 0) {
        free(st);
        free(head);
        return NULL;
    }
    st->w = w;
    st->c = c;
    c->st = st;
    st->tenant_name = c->tenant;
    st->pool = &w->pools[0];
    snprintf(st->id, sizeof st->id, "%02x%06x%08x", w->id & 0xff, w->stream_salt & 0xffffff,
             ++w->stream_counter);
    st->t0_ns = c->t_start_ns;
    st->t_last_ns = st->t0_ns;
    st->attempt_ms = st->t0_ns / 1000000;
    st->req_head = head;
    st->req_head_len = head_len;
    st->req_head_cap = head_cap;
    st->req_body = body;
    st->req_body_len = body ? body_len : 0;
    st->xl.src = st->req_body;
    st->xl.src_len = st->req_body_len;
    usage_scan_init(&st->usage);
    st->timer.kind = TK_STREAM;
    list_init(&st->wait_node);
    list_init(&st->ft_node);
    sse_framer_init(&st->fr);
    st->tenant = UINT16_MAX;
    return st;
}

int stream_start(struct conn *c, bool is_completion, bool client_sse, const char *model, char *head,
                 uint32_t head_len, uint32_t head_cap, const char *body, uint64_t body_len,
                 uint32_t max_tokens)
{
    struct worker *w = c->w;
    struct stream *st = stream_new(c, head, head_len, head_cap, body, body_len);
    if (!st)
        return -ENOMEM;
    snprintf(st->model, sizeof st->model, "%s", model);
    st->is_completion = is_completion;
    st->client_sse = client_sse;
    if (is_completion)
        shm_gauge_add(&w->slot->g.streams_active, 1);
    rearm_timer(st);
    if (is_completion) {
        uint32_t cost = body_len > UINT32_MAX ? UINT32_MAX : (uint32_t)body_len;
        int ret = adm_begin(st, max_tokens, cost);
        if (ret < 0) {
            stream_admission_failed(st, -ret);
            return 0;
        }
        /* A stream over WebSocket is answered in messages, not SSE: it has
         * no ids to resume from. */
        st->xl.native = c->route == ROUTE_OLLAMA_CHAT || c->route == ROUTE_OLLAMA_GENERATE;
        st->chat = c->route == ROUTE_CHAT || c->route == ROUTE_OLLAMA_CHAT;
        st->prefix = c->prefix;
        st->priority = auth_priority(w->cfg, c->tenant);
        st->strip_usage = c->usage_injected;
        /* Ollama's own stream is NDJSON: no events to resume or continue. */
        st->cont = client_sse && w->cfg->continue_streams && !c->wsp && !st->xl.native;
        if (client_sse && (st->features >> FEAT_STREAM_RESUME & 1) && !c->wsp && !st->xl.native &&
            w->cfg->resume_retention_s)
            (void)resume_track(st);
        if (ret == ADM_QUEUED)
            return 0;
    }
    stream_admitted(st);
    return 0;
}

int stream_start_forward(struct conn *c, struct backend_pool *pool, char *head, uint32_t head_len,
                         uint32_t head_cap)
{
    struct stream *st = stream_new(c, head, head_len, head_cap, NULL, 0);
    if (!st)
        return -ENOMEM;
    st->pool = pool;
    st->client_sse = true;
    st->forwarded = true;
    rearm_timer(st);
    stream_admitted(st);
    return 0;
}

/* The request goes to backend <b>: counted there, and its head (built
 * before the backend was chosen) made for it.  0, or <0 when the request
 * cannot be made for it (the stream failed). */
static int use_backend(struct stream *st, unsigned b)
{
    struct worker *w = W(st);
    st->bk = (uint8_t)b;
    st->pool = &w->pools[b];
    bal_begin(w, b);
    st->bk_counted = true;
    if (st->req_head &&
        route_set_host(&st->req_head, &st->req_head_len, &st->req_head_cap, st->pool->be) < 0)
        log_warn("stream %s: cannot set the Host field for backend %s", st->id, st->pool->be->name);
    return xlat_prepare(st);
}

/* The backends this request can go to: the client's Ollama-native API only
 * to Ollama; a continuation only to backends that take one. */
static uint8_t kinds_for(const struct stream *st, bool continuing)
{
    if (st->xl.native)
        return 1u << BACKEND_OLLAMA;
    if (continuing)
        return (uint8_t)(1u << BACKEND_OPENAI | (st->chat ? 1u << BACKEND_OLLAMA : 0));
    return 0;
}

static void release_backend(struct stream *st)
{
    if (st->bk_counted)
        bal_end(W(st), st->bk);
    st->bk_counted = false;
}

void stream_admitted(struct stream *st)
{
    struct worker *w = W(st);
    if (!st->forwarded) {
        int err = API_ERR_OVERLOADED;
        int b = bal_pick(w,
                         &(struct bal_req){st->is_completion ? st->model : NULL, st->prefix,
                                           st->tried, st->priority, kinds_for(st, false), -1},
                         &err);
        if (b < 0) {
            if (err == API_ERR_OVERLOADED)
                shm_add(&w->slot->c.rejected[REJ_BACKENDS_FULL], 1);
            log_info("stream %s: no backend for model '%s': %s", st->id, st->model,
                     api_error_code((enum api_error)err));
            stream_fail(st, err, NULL);
            return;
        }
        if (use_backend(st, (unsigned)b) < 0)
            return;
    }
    int ret = upstream_acquire(w, st->pool, st);
    if (ret < 0) {
        log_warn("stream %s: cannot open a backend connection: %s", st->id, strerror(-ret));
        shm_add(&w->slot->c.upstream_errors, 1);
        stream_fail(st, API_ERR_BACKEND_DOWN, NULL);
    }
}

void stream_admission_failed(struct stream *st, int api_err)
{
    st->c->retry_after_s = st->retry_after_s;
    stream_fail(st, (enum api_error)api_err, NULL);
}

void stream_cancel(struct stream *st, const char *why)
{
    if (st->phase != SP_DONE)
        stream_fail(st, API_ERR_CANCELLED, why);
}

void stream_free(struct stream *st)
{
    struct worker *w = W(st);
    release_backend(st);
    if (st->rt)
        resume_untrack(st);
    if (st->up) {
        struct upconn *u = st->up;
        st->up = NULL;
        upstream_release(u, true);
    }
    adm_end(st);
    if (st->is_completion)
        shm_gauge_add(&w->slot->g.streams_active, -1);
    tw_cancel(&w->tw, &st->timer);
    if (list_linked(&st->wait_node))
        list_del(&st->wait_node);
    free(st->req_head);
    free(st->big);
    free(st->cont_body);
    free(st->cont_req);
    cont_text_free(&st->text);
    xlat_free(&st->xl);
    free(st);
}

/* ---- timers -------------------------------------------------------------- */

/* The backend's receive is stopped because nobody reads: the client is
 * slow, or the event log of a resumable stream is full. */
static bool held(const struct stream *st)
{
    return st->paused || (st->rt && st->rt->log_paused);
}

static bool detached(const struct stream *st)
{
    return st->rt && st->rt->detached;
}

static void rearm_timer(struct stream *st)
{
    struct worker *w = W(st);
    const struct config *cfg = w->cfg;
    uint64_t when = UINT64_MAX;
    if (st->phase != SP_DONE) {
        if (held(st))
            when = detached(st) ? UINT64_MAX : st->blocked_since_ms + cfg->slow_consumer_timeout_ms;
        else if (!st->first_content && (st->mode == RM_SSE || st->phase == SP_UPSTREAM))
            when = st->attempt_ms + cfg->first_token_timeout_ms;
        else
            when = st->t_last_ns / 1000000 + cfg->token_idle_timeout_ms;
    }
    if (detached(st) && st->rt->until_ms < when)
        when = st->rt->until_ms;
    if (when == UINT64_MAX)
        tw_cancel(&w->tw, &st->timer);
    else
        tw_set(&w->tw, &st->timer, when);
}

void stream_rearm_timer(struct stream *st)
{
    rearm_timer(st);
}

void stream_on_timer(struct stream *st)
{
    struct worker *w = W(st);
    const struct config *cfg = w->cfg;
    uint64_t now = w->now_ms;
    if (detached(st) && resume_expired(st))
        return; /* freed */
    if (st->phase == SP_DONE) {
        rearm_timer(st);
        return;
    }
    if (held(st)) {
        if (detached(st) || now < st->blocked_since_ms + cfg->slow_consumer_timeout_ms) {
            rearm_timer(st);
            return;
        }
        shm_add(&w->slot->c.slow_consumers, 1);
        log_info("stream %s: client read nothing for %u ms with %llu bytes queued: cut", st->id,
                 cfg->slow_consumer_timeout_ms, (unsigned long long)outq_pending(&st->c->out));
        client_abort_reset(st->c); /* frees st, or detaches it (resume) */
        return;
    }
    if (!st->first_content && (st->mode == RM_SSE || st->phase == SP_UPSTREAM)) {
        if (now < st->attempt_ms + cfg->first_token_timeout_ms) {
            rearm_timer(st);
            return;
        }
        if (!st->forwarded) {
            bal_failure(w, st->bk, "no first token in time");
            if (stream_failover(st, "no first token in time", true))
                return;
        }
        log_info("stream %s: no first token within %u ms", st->id, cfg->first_token_timeout_ms);
        stream_fail(st, API_ERR_FIRST_TOKEN_TIMEOUT, NULL);
        return;
    }
    if (now < st->t_last_ns / 1000000 + cfg->token_idle_timeout_ms) {
        rearm_timer(st);
        return;
    }
    if (!st->forwarded) {
        bal_failure(w, st->bk, "stalled between tokens");
        if (stream_continue(st, "stalled between tokens"))
            return;
    }
    log_info("stream %s: backend silent for %u ms", st->id, cfg->token_idle_timeout_ms);
    stream_fail(st, API_ERR_TOKEN_TIMEOUT, NULL);
}

/* ---- failure --------------------------------------------------------------- */

static int write_error_event(struct stream *st, enum api_error err, const char *detail)
{
    struct worker *w = W(st);
    char json[768];
    char ev[1024];
    size_t jl = api_error_json(json, sizeof json, err, detail);
    if (jl >= sizeof json)
        jl = sizeof json - 1;
    int n = snprintf(ev, sizeof ev, "event: error\ndata: %.*s\n\n", (int)jl, json);
    if (n < 0 || (size_t)n >= sizeof ev)
        return -EINVAL;
    if (st->rt) {
        /* A resumable stream's error is an event like the others (with its
         * id, in the log), so a client that resumes later sees it too. */
        if (sev_emit(st, ev, (size_t)n) < 0)
            return -ENOBUFS;
        if (st->heap_events) {
            resume_ended(st);
            return 0;
        }
        if (st->chunked_out && outq_write(&st->c->out, &w->slabs, "0\r\n\r\n", 5))
            return -ENOBUFS;
        outq_commit(&st->c->out);
        client_stream_done(st->c);
        return 0;
    }
    struct outq *q = &st->c->out;
    if (st->chunked_out) {
        char hdr[16];
        int hl = snprintf(hdr, sizeof hdr, "%x\r\n", n);
        if (outq_write(q, &w->slabs, hdr, (size_t)hl) || outq_write(q, &w->slabs, ev, (size_t)n) ||
            outq_write(q, &w->slabs, "\r\n0\r\n\r\n", 7))
            return -ENOBUFS;
    } else if (outq_write(q, &w->slabs, ev, (size_t)n)) {
        return -ENOBUFS;
    }
    outq_commit(q);
    return 0;
}

/* Nothing more comes from the backend for this stream: let go of the
 * connection (back to the pool, or closed and, with <cancel>, counted as a
 * cancellation when its response was not complete) and of the timers. */
static void finish(struct stream *st, bool cancel)
{
    struct worker *w = W(st);
    if (st->up) {
        struct upconn *u = st->up;
        st->up = NULL;
        upstream_release(u, cancel);
    }
    st->phase = SP_DONE;
    if (st->rt)
        st->rt->ended = true;
    release_backend(st);
    adm_end(st);
    tw_cancel(&w->tw, &st->timer);
    if (list_linked(&st->wait_node))
        list_del(&st->wait_node);
}

/* Ends the stream with <err>: an error response if the client has seen
 * nothing yet, an `event: error` if it is inside an event stream, a cut
 * connection if it is inside any other body. */
void stream_fail(struct stream *st, int err, const char *detail)
{
    struct worker *w = W(st);
    struct conn *c = st->c;
    /* Writing the error event can itself fail (no buffer): that failure
     * must not report again, it only makes the event not happen. */
    if (st->failing)
        return;
    st->failing = true;
    st->end_flags |= err == API_ERR_SLOW_CONSUMER                                  ? EVF_SLOW
                     : err == API_ERR_CANCELLED || err == API_ERR_TENANT_EXHAUSTED ? 0
                                                                                   : EVF_FAILED;
    finish(st, true);
    sev_drop_partial(st);
    if (!st->head_committed) {
        if (st->head_written)
            outq_truncate(&c->out, &w->slabs, &st->head_mark);
        st->status = (uint16_t)api_error_status(err);
        client_respond_error(c, err, detail);
        return;
    }
    if ((st->mode == RM_SSE || st->mode == RM_OLLAMA) && write_error_event(st, err, detail) == 0) {
        if (!st->rt)
            client_stream_done(c);
        return;
    }
    if (c)
        client_abort(c); /* frees st, or detaches it */
    else
        stream_abandon(st);
}

/* Another backend than the ones tried for this request (on another GPU
 * than the one that failed, when there is one), or -1. */
static int next_backend(struct stream *st, uint64_t *tried, bool continuing)
{
    *tried = st->tried | (1ull << st->bk);
    int err;
    return bal_pick(W(st),
                    &(struct bal_req){st->is_completion ? st->model : NULL, st->prefix, *tried,
                                      st->priority, kinds_for(st, continuing), st->bk},
                    &err);
}

/* Lets go of this attempt's backend (its connection: <cancel> counts an
 * abandoned generation) and sends the request, as it now is, to <b>. */
static void move_to(struct stream *st, int b, uint64_t tried, bool cancel)
{
    struct worker *w = W(st);
    bal_failover(w, st->bk);
    sev_drop_partial(st);
    if (st->up) {
        struct upconn *u = st->up;
        st->up = NULL;
        upstream_release(u, cancel);
    }
    if (list_linked(&st->wait_node))
        list_del(&st->wait_node);
    release_backend(st);
    st->tried = tried;
    st->attempts++;
    if (use_backend(st, (unsigned)b) < 0)
        return;
    st->phase = SP_UPSTREAM;
    st->paused = st->slab_paused = false;
    sse_framer_init(&st->fr);
    st->req_sent = 0;
    st->retried = false;
    rearm_timer(st);
    if (upstream_acquire(w, st->pool, st) < 0)
        stream_fail(st, API_ERR_BACKEND_DOWN, NULL);
}

/* Moves the request to another backend while the client has seen nothing
 * of the answer (and the request is still held): undoes what this attempt
 * wrote and sends the request again elsewhere (<cancel>: the attempt's
 * generation is abandoned, counted as a cancellation).  False when it
 * cannot (no attempt left, no other backend). */
bool stream_failover(struct stream *st, const char *why, bool cancel)
{
    struct worker *w = W(st);
    uint64_t tried;
    if (st->forwarded || st->head_committed || !st->req_head ||
        st->attempts >= w->cfg->upstream_retries)
        return false;
    int b = next_backend(st, &tried, false);
    if (b < 0)
        return false;
    log_info("stream %s: backend %s: %s; trying %s", st->id, w->pools[st->bk].be->name, why,
             w->pools[b].be->name);
    if (st->head_written) {
        outq_truncate(&st->c->out, &w->slabs, &st->head_mark);
        st->head_written = false;
    }
    st->mode = RM_SSE;
    st->status = 0;
    st->first_content = false;
    usage_scan_init(&st->usage);
    st->attempt_ms = w->now_ms;
    move_to(st, b, tried, cancel);
    return true;
}

/* The backend failed after the client saw tokens: with continue_streams,
 * the answer so far goes to another backend, which goes on from there
 * (continuation.c); the client's stream does not see the seam. */
bool stream_continue(struct stream *st, const char *why)
{
    struct worker *w = W(st);
    uint64_t tried;
    if (!st->cont || !st->head_committed || (st->mode != RM_SSE && st->mode != RM_OLLAMA) ||
        st->done_seen || !st->req_head || !st->cont_body ||
        st->attempts >= w->cfg->upstream_retries)
        return false;
    int b = next_backend(st, &tried, true);
    if (b < 0)
        return false;
    char *head, *body;
    uint32_t hl, hc;
    size_t bl;
    /* Always from the client's own request: the answer so far is all of it. */
    int rc = cont_request(&st->text, st->chat, st->tokens, st->cont_body, st->cont_body_len,
                          st->req_head, st->req_head_len, &head, &hl, &hc, &body, &bl);
    if (rc < 0) {
        log_info("stream %s: cannot continue elsewhere: %s", st->id, strerror(-rc));
        return false;
    }
    log_info("stream %s: backend %s: %s after %u tokens; continuing on %s", st->id,
             w->pools[st->bk].be->name, why, st->tokens, w->pools[b].be->name);
    free(st->req_head);
    st->req_head = head;
    st->req_head_len = hl;
    st->req_head_cap = hc;
    free(st->cont_req);
    st->cont_req = body;
    st->req_body = body;
    st->req_body_len = bl;
    st->xl.src = body;
    st->xl.src_len = bl;
    st->continuing = true;
    st->t_last_ns = clock_mono_ns(); /* the new backend gets a whole token_idle_timeout */
    move_to(st, b, tried, true);
    return true;
}

void stream_on_upstream_error(struct stream *st, int api_err)
{
    struct worker *w = W(st);
    /* A pooled connection the backend closed just as we reused it: the
     * request never reached it, so send it once more on another one. */
    if (api_err == API_ERR_BACKEND_DOWN && st->phase == SP_UPSTREAM && st->reused_last &&
        !st->got_bytes_last && !st->retried && st->req_head) {
        st->retried = true;
        st->req_sent = 0;
        shm_add(&w->slot->c.upstream_retries, 1);
        if (upstream_acquire(w, st->pool, st) == 0)
            return;
    }
    if (st->forwarded) {
        /* The worker named by the id is gone (restarted, drained), and
         * with it the stream; or it broke off the relay. */
        log_info("stream resume %.*s: the owning worker: %s", (int)st->c->reqid_len, st->c->reqid,
                 api_error_code((enum api_error)api_err));
        stream_fail(st, st->phase == SP_UPSTREAM ? API_ERR_STREAM_NOT_FOUND : api_err, NULL);
        return;
    }
    bal_failure(w, st->bk, api_error_code((enum api_error)api_err));
    if (stream_failover(st, api_error_code((enum api_error)api_err), false) ||
        stream_continue(st, api_error_code((enum api_error)api_err)))
        return;
    shm_add(&w->slot->c.upstream_errors, 1);
    adm_backend_error(st, api_err);
    log_info("stream %s: backend %s: %s", st->id, st->pool->be->name,
             api_error_code((enum api_error)api_err));
    stream_fail(st, (enum api_error)api_err, NULL);
}

void stream_on_client_gone(struct stream *st)
{
    if (st->phase != SP_DONE)
        st->end_flags |= EVF_GONE;
    finish(st, true);
}

void stream_release(struct stream *st, bool gone)
{
    if (st->rt && resume_detach(st))
        return;
    if (gone && st->phase != SP_DONE)
        st->end_flags |= EVF_GONE;
    if (gone)
        finish(st, true);
    stream_free(st);
}

void stream_abandon(struct stream *st)
{
    if (st->c)
        st->c->st = NULL;
    st->c = NULL;
    finish(st, st->phase != SP_DONE);
    stream_free(st);
}

/* ---- the body --------------------------------------------------------------- */

static void backpressure(struct stream *st)
{
    struct worker *w = W(st);
    /* Events on the heap go to the event log, which holds the backend
     * itself when full (resume.c). */
    if (!st->up || st->paused || st->slab_paused || st->heap_events)
        return;
    if (outq_pending(&st->c->out) >= w->cfg->stream_buffer_max) {
        st->paused = true;
        st->blocked_since_ms = w->now_ms;
        upstream_pause(st->up);
        rearm_timer(st);
    } else if (w->slabs.nfree < w->slabs.nslabs / 16 + 2) {
        st->slab_paused = true;
        upstream_pause(st->up);
        list_add_tail(&w->slab_wait, &st->wait_node);
        shm_add(&w->slot->c.slab_waits, 1);
    }
}

void stream_upstream_kick(struct stream *st)
{
    if (st->up && !st->paused && !st->slab_paused && !(st->rt && st->rt->log_paused))
        upstream_resume(st->up);
}

void stream_on_client_sent(struct stream *st)
{
    struct worker *w = W(st);
    if (st->paused && outq_pending(&st->c->out) < w->cfg->stream_buffer_max / 2) {
        st->paused = false;
        st->t_last_ns = clock_mono_ns();
        stream_upstream_kick(st);
        rearm_timer(st);
    }
    if (st->rt && st->rt->replaying)
        resume_pump(st);
}

void stream_slab_resume(struct stream *st)
{
    st->slab_paused = false;
    stream_upstream_kick(st);
}

void stream_on_sent(struct stream *st)
{
    (void)st;
}

void stream_commit(struct stream *st)
{
    outq_commit(&st->c->out);
    if (!st->head_committed) {
        st->head_committed = true;
        st->c->status = st->status;
        if (!st->forwarded && st->status < 500 && st->status != 429)
            bal_success(W(st), st->bk);
        if (st->cont && (st->mode == RM_SSE || st->mode == RM_OLLAMA) && st->xl.src) {
            /* Kept to continue elsewhere (the client's OpenAI request,
             * whatever this backend was sent); the connection's copy goes. */
            bool same = st->req_body == st->xl.src;
            st->cont_body = malloc(st->xl.src_len ? st->xl.src_len : 1);
            if (st->cont_body) {
                memcpy(st->cont_body, st->xl.src, st->xl.src_len);
                st->cont_body_len = st->xl.src_len;
                st->xl.src = st->cont_body;
                if (same)
                    st->req_body = st->cont_body;
                free(st->c->body);
                st->c->body = NULL;
                st->c->body_len = st->c->body_cap = 0;
                return;
            }
            st->cont = false;
        }
        /* No failover past this point: the request is no longer needed, and
         * a long stream should not hold its prompt for its whole life. */
        free(st->req_head);
        st->req_head = NULL;
        st->req_body = NULL;
        st->xl.src = NULL;
        free(st->c->body);
        st->c->body = NULL;
        st->c->body_len = st->c->body_cap = 0;
    }
}

static int relay_raw(struct stream *st, const char *p, size_t len)
{
    struct worker *w = W(st);
    struct outq *q = &st->c->out;
    int err = 0;
    if (st->chunked_out) {
        char hdr[20];
        int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
        err = outq_write(q, &w->slabs, hdr, (size_t)n);
        err |= outq_write(q, &w->slabs, p, len);
        err |= outq_write(q, &w->slabs, "\r\n", 2);
    } else {
        err = outq_write(q, &w->slabs, p, len);
    }
    if (err) {
        stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the response");
        return -1;
    }
    if (st->is_completion && st->status == 200)
        usage_scan_feed(&st->usage, p, len);
    stream_commit(st);
    st->t_last_ns = clock_mono_ns();
    worker_mark_dirty(w, st->c);
    return 0;
}

int stream_on_body(struct stream *st, const char *p, size_t len)
{
    if (st->phase != SP_RELAY)
        return -1;
    if (st->mode == RM_RAW) {
        if (relay_raw(st, p, len) < 0)
            return -1;
        backpressure(st);
        return 0;
    }
    if (st->mode != RM_SSE) {
        if (xlat_on_body(st, p, len) < 0)
            return -1;
        backpressure(st);
        return 0;
    }
    while (len) {
        enum sse_span kind;
        size_t n = sse_frame_feed(&st->fr, p, len, &kind);
        if (kind != SSE_SPAN_SKIP) {
            if (!st->in_event && sev_begin(st) < 0)
                return -1;
            if (sev_append(st, p, n) < 0)
                return -1;
            /* An event ended by the CR of a CRLF: the LF is not part of it
             * (it may not even have arrived), but clients that split events
             * on "\r\n\r\n" need it, so the relay writes it itself. */
            if (kind == SSE_SPAN_END && p[n - 1] == '\r' && sev_append(st, "\n", 1) < 0)
                return -1;
            if (kind == SSE_SPAN_END && sev_finish(st) < 0)
                return -1;
        }
        p += n;
        len -= n;
    }
    backpressure(st);
    return 0;
}

void stream_on_body_end(struct stream *st)
{
    struct worker *w = W(st);
    struct conn *c = st->c;
    /* An event the backend never terminated is not an event (SSE: an
     * incomplete event at end of stream is discarded). */
    sev_drop_partial(st);
    st->up_finished = true;
    if (st->mode == RM_WHOLE) {
        char *json = NULL;
        size_t jl = 0;
        int rc = xlat_on_body_end(st, &json, &jl);
        if (rc < 0)
            return;
        if (rc == 1) {
            /* A translated answer in one body. */
            adm_charge_all(st, st->usage_tokens);
            finish(st, false);
            int err = client_respond(c, 200, NULL, "application/json", json, jl);
            free(json);
            if (err == 0) {
                st->status = 200;
                stream_commit(st);
            }
            return;
        }
    }
    if (st->is_completion && st->mode == RM_RAW && st->status == 200) {
        /* A completion not streamed: its tokens are in its usage, or, if
         * the backend gave none, the whole reservation is kept. */
        uint32_t n;
        if (!usage_scan_result(&st->usage, &n))
            n = st->want_tokens > 0 && st->want_tokens <= UINT32_MAX ? (uint32_t)st->want_tokens
                                                                     : 0;
        adm_charge_all(st, n);
    }
    if (st->usage_seen && st->usage_tokens > st->tokens)
        adm_charge_all(st, st->usage_tokens - st->tokens); /* tokens the events did not show */
    if (st->heap_events) {
        /* The end goes to the client once it has caught up (resume.c). */
        finish(st, false);
        resume_ended(st);
        return;
    }
    if (st->chunked_out && outq_write(&c->out, &w->slabs, "0\r\n\r\n", 5)) {
        stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the response");
        return;
    }
    stream_commit(st);
    finish(st, false);
    client_stream_done(c);
}
