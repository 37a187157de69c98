/*
 * conn — response state machine of one llmload connection (see conn.h).
 */
#include "perf/loadgen/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "perf/loadgen/evfields.h"

enum { PHASE_HEAD, PHASE_BODY, PHASE_ENDED };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/* Internal result of the feeding helpers: <0 failure outcome, 0 more, 1 body complete. */
#define FED_MORE 0
#define FED_DONE 1

void conn_init(struct conn *c, uint32_t index)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->index = index;
    c->phase = PHASE_ENDED;
}

void conn_free(struct conn *c)
{
    free(c->carry);
    c->carry = NULL;
    c->carry_len = c->carry_cap = 0;
}

void conn_begin(struct conn *c, struct conn_env *env)
{
    c->t_sent = 0;
    c->t_last_tok = 0;
    c->rx = 0;
    c->body_left = 0;
    c->tokens = 0;
    c->retry_after_ms = 0;
    c->status = 0;
    c->phase = PHASE_HEAD;
    c->body_mode = BODY_NONE;
    c->keep_alive = false;
    c->sse = false;
    c->done = false;
    c->sse_error = false;
    c->reusable = false;
    c->slo_ok = false;
    c->carry_len = 0;
    sse_framer_init(&c->framer);
    if (env->verify)
        verify_begin(&c->vs, c->index, c->requests);
}

void conn_sent(struct conn *c, int64_t now)
{
    c->t_sent = now;
}

static int carry_append(struct conn *c, const char *p, size_t n)
{
    size_t want = (size_t)c->carry_len + n;
    if (want > CONN_EVENT_MAX)
        return -ENOBUFS;
    if (want > c->carry_cap) {
        size_t cap = c->carry_cap ? c->carry_cap : 1024;
        while (cap < want)
            cap *= 2;
        char *b = realloc(c->carry, cap);
        if (!b)
            return -ENOMEM;
        c->carry = b;
        c->carry_cap = (uint32_t)cap;
    }
    memcpy(c->carry + c->carry_len, p, n);
    c->carry_len = (uint32_t)want;
    return 0;
}

static bool slo_met(const struct conn_env *env, int64_t ttft_ns)
{
    return env->slo_ttft_ns < 0 || ttft_ns <= env->slo_ttft_ns;
}

/* Records the end of the stream once; decides whether the socket can be reused. */
static void finish(struct conn *c, struct conn_env *env, enum stats_outcome o, int64_t now)
{
    if (c->phase == PHASE_ENDED)
        return;
    if (!env->stream && o == STATS_OK && c->t_sent) {
        stats_add(&env->stats->ttft, now - c->t_sent); /* the whole answer is the first token */
        if (env->ts)
            ts_token(env->ts, now, true, now - c->t_sent, slo_met(env, now - c->t_sent));
    }
    stats_record(env->stats, o, c->status);
    if (env->ts)
        ts_ended(env->ts, now ? now : stats_now_ns(), o, c->status);
    atomic_fetch_sub_explicit(env->inflight, 1, memory_order_relaxed);
    if (env->verify && c->sse)
        verify_end(env->verify, &c->vs, stats_outcome_name(o));
    c->phase = PHASE_ENDED;
}

/* The response ended properly: completed, or failed by what it said. */
static void finish_body(struct conn *c, struct conn_env *env, int64_t now)
{
    enum stats_outcome o = STATS_OK;
    if (c->status != 200)
        o = STATS_STATUS;
    else if (c->sse_error)
        o = STATS_SSE_ERROR;
    else if (env->stream && !c->done)
        o = STATS_PROTOCOL;
    c->reusable = c->keep_alive && c->body_mode != BODY_CLOSE;
    finish(c, env, o, now);
}

void conn_end(struct conn *c, struct conn_env *env, enum stats_outcome o)
{
    if (o == STATS_TIMEOUT && c->sse_error)
        o = STATS_SSE_ERROR; /* the error event says more than the silence after it */
    c->reusable = false;
    finish(c, env, o, 0);
}

static void on_event(struct conn *c, struct conn_env *env, const char *ev, size_t len, int64_t now)
{
    unsigned fl = sse_event_scan(ev, len);
    struct evfields f;
    evfields_parse(ev, len, &f);
    env->stats->events++;
    if (evfields_is_error(&f))
        c->sse_error = true;
    if (fl & SSE_EV_CONTENT) {
        bool first = c->tokens++ == 0;
        int64_t ttft = c->t_sent ? now - c->t_sent : 0;
        if (first) {
            stats_add(&env->stats->ttft, ttft);
            c->slo_ok = slo_met(env, ttft);
        } else {
            stats_add(&env->stats->itl, now - c->t_last_tok);
        }
        c->t_last_tok = now;
        env->stats->tokens++;
        if (env->ts)
            ts_token(env->ts, now, first, ttft, c->slo_ok);
    }
    if (fl & SSE_EV_DONE)
        c->done = true;
    if (env->verify)
        verify_event(env->verify, &c->vs, ev, len, &f, fl);
}

/* Payload bytes of the body: find the events in them. */
static int payload(struct conn *c, struct conn_env *env, const char *d, size_t n, int64_t now)
{
    if (!c->sse)
        return FED_MORE;
    const char *ev = NULL; /* start of an event that began in this span */
    size_t ev_len = 0;
    while (n > 0) {
        enum sse_span kind;
        size_t k = sse_frame_feed(&c->framer, d, n, &kind);
        if (kind != SSE_SPAN_SKIP) {
            if (c->carry_len > 0) {
                if (carry_append(c, d, k) < 0)
                    return -STATS_PROTOCOL;
            } else {
                if (!ev)
                    ev = d;
                ev_len += k;
            }
            if (kind == SSE_SPAN_END) {
                if (c->carry_len > 0) {
                    on_event(c, env, c->carry, c->carry_len, now);
                    c->carry_len = 0;
                } else {
                    on_event(c, env, ev, ev_len, now);
                    ev = NULL;
                    ev_len = 0;
                }
            }
        }
        d += k;
        n -= k;
    }
    /* The read buffer is about to be reused: keep the start of the open event. */
    if (ev && carry_append(c, ev, ev_len) < 0)
        return -STATS_PROTOCOL;
    return FED_MORE;
}

/* Consumes body bytes from *p; returns FED_DONE at the end of the body. */
static int feed_body(struct conn *c, struct conn_env *env, const char **p, size_t *n, int64_t now)
{
    switch (c->body_mode) {
    case BODY_LENGTH: {
        size_t take = *n < c->body_left ? *n : (size_t)c->body_left;
        int rc = payload(c, env, *p, take, now);
        *p += take;
        *n -= take;
        c->body_left -= take;
        if (rc < 0)
            return rc;
        return c->body_left == 0 ? FED_DONE : FED_MORE;
    }
    case BODY_CHUNKED:
        while (*n > 0) {
            size_t used;
            const char *d;
            size_t dl;
            int rc = h1_chunked_feed(&c->chunk, *p, *n, &used, &d, &dl);
            *p += used;
            *n -= used;
            if (rc < 0)
                return -STATS_PROTOCOL;
            if (dl > 0) {
                int prc = payload(c, env, d, dl, now);
                if (prc < 0)
                    return prc;
            }
            if (rc == 1)
                return FED_DONE;
        }
        return FED_MORE;
    case BODY_CLOSE: {
        int rc = payload(c, env, *p, *n, now);
        *p += *n;
        *n = 0;
        return rc;
    }
    default:
        return FED_DONE;
    }
}

/* Retry-After in delay-seconds (an HTTP-date counts as 1 s), at most 60 s; 0 if none. */
static uint32_t retry_after_ms(const struct h1_response *r)
{
    const struct h1_header *h = h1_header_find(r->headers, r->n_headers, "retry-after");
    if (!h)
        return 0;
    uint32_t s = 0;
    uint32_t i = 0;
    while (i < h->value_len && h->value[i] >= '0' && h->value[i] <= '9' && s <= 60)
        s = s * 10 + (uint32_t)(h->value[i++] - '0');
    if (i == 0 || i < h->value_len)
        s = 1;
    return (s > 60 ? 60 : s) * 1000;
}

/* A head was parsed (into env->headers); sets up the body.  FED_DONE: no body. */
static int on_head(struct conn *c, struct conn_env *env, const struct h1_response *r)
{
    if (r->status >= 100 && r->status < 200) {
        if (r->status == 101)
            return -STATS_PROTOCOL;
        return FED_MORE; /* interim response: the real head follows */
    }
    c->status = r->status;
    c->keep_alive = (r->flags & H1_F_KEEP_ALIVE) != 0;
    if (r->status >= 300)
        c->retry_after_ms = retry_after_ms(r);
    c->sse = env->stream && r->status == 200;
    c->phase = PHASE_BODY;
    if (r->flags & H1_F_NO_BODY) {
        c->body_mode = BODY_NONE;
    } else if (r->flags & H1_F_CHUNKED) {
        c->body_mode = BODY_CHUNKED;
        h1_chunked_init(&c->chunk, false);
    } else if (r->flags & H1_F_CONTENT_LENGTH) {
        c->body_mode = BODY_LENGTH;
        c->body_left = r->content_length;
    } else {
        c->body_mode = BODY_CLOSE;
    }
    if (c->body_mode == BODY_NONE || (c->body_mode == BODY_LENGTH && c->body_left == 0))
        return FED_DONE;
    return FED_MORE;
}

static int parse_head(struct conn_env *env, const char *buf, size_t len, struct h1_response *r)
{
    memset(r, 0, sizeof(*r));
    r->headers = env->headers;
    return h1_parse_response(buf, len, &env->limits, false, r);
}

/*
 * Feeds one contiguous segment.  Returns FED_MORE, FED_DONE (the response is
 * over; *extra tells whether bytes followed it) or a negated outcome.
 */
static int feed_segment(struct conn *c, struct conn_env *env, const char *p, size_t n, int64_t now,
                        bool *extra)
{
    while (n > 0) {
        if (c->phase == PHASE_BODY) {
            int rc = feed_body(c, env, &p, &n, now);
            if (rc == FED_DONE && n > 0)
                *extra = true;
            if (rc != FED_MORE)
                return rc;
            continue;
        }
        struct h1_response r;
        if (c->carry_len == 0) {
            int h = parse_head(env, p, n, &r);
            if (h < 0)
                return -STATS_PROTOCOL;
            if (h == 0) {
                if (n >= CONN_HEAD_MAX || carry_append(c, p, n) < 0)
                    return -STATS_PROTOCOL;
                return FED_MORE;
            }
            p += h;
            n -= (size_t)h;
            int rc = on_head(c, env, &r);
            if (rc == FED_DONE && n > 0)
                *extra = true;
            if (rc != FED_MORE)
                return rc;
            continue;
        }
        /* The head started in an earlier read: assemble it in carry. */
        size_t room = CONN_HEAD_MAX - c->carry_len;
        size_t take = n < room ? n : room;
        if (carry_append(c, p, take) < 0)
            return -STATS_PROTOCOL;
        p += take;
        n -= take;
        int h = parse_head(env, c->carry, c->carry_len, &r);
        if (h < 0)
            return -STATS_PROTOCOL;
        if (h == 0) {
            if (c->carry_len >= CONN_HEAD_MAX)
                return -STATS_PROTOCOL;
            continue; /* n is 0 here */
        }
        int rc = on_head(c, env, &r);
        size_t rest = c->carry_len - (size_t)h;
        char *aux = env->aux;
        memcpy(aux, c->carry + h, rest);
        c->carry_len = 0;
        if (rc == FED_DONE && (rest > 0 || n > 0))
            *extra = true;
        if (rc != FED_MORE)
            return rc;
        rc = feed_segment(c, env, aux, rest, now, extra);
        if (rc == FED_DONE && n > 0)
            *extra = true;
        if (rc != FED_MORE)
            return rc;
    }
    return FED_MORE;
}

int conn_feed(struct conn *c, struct conn_env *env, const char *p, size_t n, int64_t now)
{
    if (c->phase == PHASE_ENDED) {
        /* Bytes nobody asked for: the socket cannot be trusted any more. */
        c->reusable = false;
        return CONN_ENDED;
    }
    c->rx += n;
    bool extra = false;
    int rc = feed_segment(c, env, p, n, now, &extra);
    if (rc == FED_MORE)
        return CONN_MORE;
    if (rc == FED_DONE) {
        finish_body(c, env, now);
        if (extra)
            c->reusable = false;
    } else {
        c->reusable = false;
        finish(c, env, (enum stats_outcome) - rc, now);
    }
    return CONN_ENDED;
}

int conn_eof(struct conn *c, struct conn_env *env, bool reset, int64_t now)
{
    if (c->phase == PHASE_ENDED)
        return CONN_ENDED;
    if (c->phase == PHASE_HEAD && c->rx == 0 && c->reused && !c->retrying)
        return CONN_RETRY;
    if (c->phase == PHASE_BODY && c->body_mode == BODY_CLOSE && !reset) {
        finish_body(c, env, now);
        c->reusable = false;
        return CONN_ENDED;
    }
    c->reusable = false;
    finish(c, env, c->sse_error ? STATS_SSE_ERROR : STATS_EOF, now);
    return CONN_ENDED;
}
