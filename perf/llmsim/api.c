/*
 * api — the Ollama and TF Serving personalities (see api.h).
 *
 * Their generation requests take the OpenAI routes' path through llmsim:
 * counted in `requests`, X-Sim overrides read, an immediate fault acted on
 * before the body is looked at, then gen_start() with the sim's batch slots,
 * TTFT and gaps.  Only the bytes differ, and when the head goes out: Go
 * writes Ollama's stream head together with the first line it flushes (at
 * the first token, after the queue and the TTFT), while vLLM's goes out at
 * once.
 */
#include "perf/llmsim/api.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "perf/llmsim/gen.h"
#include "perf/llmsim/ollama.h"
#include "perf/llmsim/tfserving.h"

_Static_assert(OLLAMA_LINE_MAX(0) <= RESP_EVENT_MAX(0), "an Ollama line fits the event scratch");

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool span_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

static const char *json_ctype(const struct server *s)
{
    return s->o->api == LLMSIM_API_OLLAMA ? "application/json; charset=utf-8" : "application/json";
}

/* Go's net/http (the handler's headers sorted, then Date, Content-Length,
 * Connection, Transfer-Encoding) and evhttp (the handler's, then Date,
 * Content-Length, Connection) agree on this order. */
static void head(const struct server *s, const struct conn *c, struct bbuf *b, int status,
                 bool retry_after, const char *ctype, size_t len, bool chunked)
{
    bool body = resp_status_has_body(status);
    const char *reason = resp_reason(status);
    bool go = s->o->api == LLMSIM_API_OLLAMA;
    if (go && status == 414)
        reason = "Request URI Too Long";
    bbuf_puts(b, "HTTP/1.1 ");
    bbuf_u64(b, (uint64_t)status);
    bbuf_puts(b, " ");
    if (*reason) {
        bbuf_puts(b, reason);
    } else if (go) {
        bbuf_puts(b, "status code ");
        bbuf_u64(b, (uint64_t)status);
    }
    bbuf_puts(b, "\r\n");
    if (ctype && body) {
        bbuf_puts(b, "Content-Type: ");
        bbuf_puts(b, ctype);
        bbuf_puts(b, "\r\n");
    }
    if (retry_after)
        bbuf_puts(b, "Retry-After: 1\r\n");
    bbuf_puts(b, "Date: ");
    bbuf_puts(b, s->date.text);
    bbuf_puts(b, "\r\n");
    if (!chunked && body) {
        bbuf_puts(b, "Content-Length: ");
        bbuf_u64(b, len);
        bbuf_puts(b, "\r\n");
    }
    if (!(c->flags & CF_KEEP_ALIVE))
        bbuf_puts(b, "Connection: close\r\n");
    if (chunked)
        bbuf_puts(b, "Transfer-Encoding: chunked\r\n");
    bbuf_puts(b, "\r\n");
}

void api_send(struct server *s, struct conn *c)
{
    if (s->tmp.failed) {
        /* Only a non-streaming answer of millions of tokens gets here. */
        static const char msg[] = "llmsim: the response is over the 64 MiB output limit";
        api_reply_error(s, c, 500, false, msg, sizeof(msg) - 1);
        return;
    }
    /* The head goes in front of the body so that both leave in one send(). */
    size_t hl = s->hdr.len;
    if (s->hdr.failed || bbuf_reserve(&s->tmp, hl) < 0) {
        conn_close(s, c, false);
        return;
    }
    memmove(s->tmp.p + hl, s->tmp.p, s->tmp.len);
    memcpy(s->tmp.p, s->hdr.p, hl);
    s->tmp.len += hl;
    if (conn_send(s, c, s->tmp.p, s->tmp.len) < 0) {
        conn_close(s, c, false);
        return;
    }
    conn_response_done(s, c);
}

/* Sends the body in s->tmp (or only the head: HEAD, or a status without a body). */
static void reply(struct server *s, struct conn *c, int status, bool retry_after, const char *ctype,
                  bool head_only)
{
    bbuf_reset(&s->hdr);
    head(s, c, &s->hdr, status, retry_after, ctype, s->tmp.len, false);
    if ((head_only || !resp_status_has_body(status)) && !s->tmp.failed)
        bbuf_reset(&s->tmp);
    api_send(s, c);
}

void api_reply_error(struct server *s, struct conn *c, int status, bool retry_after,
                     const char *msg, size_t msg_len)
{
    bbuf_reset(&s->tmp);
    switch (s->o->api) {
    case LLMSIM_API_OLLAMA:
        ollama_error_body(&s->tmp, msg, msg_len);
        break;
    case LLMSIM_API_TFSERVING:
        tfs_error_body(&s->tmp, msg, msg_len);
        break;
    default:
        conn_reply_error(s, c, status, retry_after ? "retry-after: 1\r\n" : NULL, msg, msg_len);
        return;
    }
    reply(s, c, status, retry_after, json_ctype(s), false);
}

/* --- generation ---------------------------------------------------------- */

static void fill_ollama(const struct server *s, const struct conn *c, struct ollama_stream *st)
{
    st->model_json = s->models[c->model].json;
    st->model_json_len = s->models[c->model].json_len;
    st->chat = c->shape == API_SHAPE_OLLAMA_CHAT;
}

static uint64_t at_least_1(uint64_t v)
{
    return v ? v : 1;
}

/* Ollama's durations from the sim's clock: the queue wait is the load (the
 * scheduler handing out a runner), the prefill the prompt eval, the rest of
 * the answer the eval.  Each is at least 1 ns so that, as with real time,
 * omitempty never drops one. */
static void done_fields(const struct server *s, const struct conn *c, struct ollama_done *d)
{
    uint64_t prefill = sim_prefill_ns(&s->sim, c->ttft_ns, c->prefill_tokens);
    uint64_t first = c->slotted + prefill;
    d->reason = c->finish == RESP_FIN_LENGTH ? "length" : "stop";
    d->load_ns = at_least_1(c->slotted > c->arrived ? c->slotted - c->arrived : 0);
    d->prompt_eval_ns = at_least_1(prefill);
    d->eval_ns = at_least_1(s->now > first ? s->now - first : 0);
    d->total_ns = d->load_ns + d->prompt_eval_ns + d->eval_ns;
    d->prompt_eval_count = c->prompt_tokens;
    d->eval_count = c->n_tokens;
}

void api_gen_stream_head(struct server *s, struct conn *c, struct bbuf *b)
{
    head(s, c, b, 200, false, "application/x-ndjson", 0, true);
}

/* One NDJSON line (built in s->ev), with the head in front of the first. */
static int send_line(struct server *s, struct conn *c, size_t n)
{
    if (c->flags & CF_HEADED)
        return conn_send(s, c, s->ev, n);
    c->flags |= CF_HEADED;
    bbuf_reset(&s->hdr);
    api_gen_stream_head(s, c, &s->hdr);
    bbuf_put(&s->hdr, s->ev, n);
    if (s->hdr.failed)
        return -ENOMEM;
    return conn_send(s, c, s->hdr.p, s->hdr.len);
}

int api_gen_token(struct server *s, struct conn *c)
{
    struct ollama_stream st;
    fill_ollama(s, c, &st);
    return send_line(s, c, ollama_token_line(s->ev, &st, real_ns(), c->tok_base + c->next_tok));
}

int api_gen_stream_end(struct server *s, struct conn *c)
{
    struct ollama_stream st;
    struct ollama_done d;
    fill_ollama(s, c, &st);
    done_fields(s, c, &d);
    if (send_line(s, c, ollama_done_line(s->ev, &st, real_ns(), &d)) < 0)
        return -EPIPE;
    return conn_send(s, c, s->ev, resp_last_chunk(s->ev));
}

void api_gen_answer(struct server *s, struct conn *c)
{
    bbuf_reset(&s->tmp);
    bbuf_reset(&s->hdr);
    if (c->shape == API_SHAPE_OLLAMA_CHAT || c->shape == API_SHAPE_OLLAMA_GENERATE) {
        struct ollama_stream st;
        struct ollama_done d;
        fill_ollama(s, c, &st);
        done_fields(s, c, &d);
        ollama_answer_body(&s->tmp, &st, real_ns(), &d, c->tok_base, c->n_tokens);
    } else {
        tfs_predict_body(&s->tmp, c->shape == API_SHAPE_TF_COLUMNS,
                         c->inst_len ? c->inst_len : &c->n_tokens, c->n_inst);
    }
    head(s, c, &s->hdr, 200, false, json_ctype(s), s->tmp.len, false);
}

uint32_t api_step_tokens(const struct conn *c)
{
    if (!c->inst_len)
        return 1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_inst; i++)
        n += c->inst_len[i] > c->next_tok;
    return n;
}

/* The common start of a generation request; false when it was answered
 * (a bad override, or an immediate fault). */
static bool gen_begin(struct server *s, struct conn *c, const struct h1_request *req,
                      struct req_overrides *ov, struct fault *f)
{
    struct req_error err;
    s->cnt.requests++;
    if (req_overrides(req, ov, &err) < 0) {
        api_reply_error(s, c, err.status, false, err.msg, err.msg_len);
        return false;
    }
    *f = ov->has_fault ? ov->fault : server_default_fault(s);
    if (f->kind != FAULT_NONE)
        s->cnt.faults++;
    return !gen_immediate_fault(s, c, f);
}

static void ollama_generation(struct server *s, struct conn *c, bool chat,
                              const struct h1_request *req, const char *body, size_t len)
{
    struct req_overrides ov;
    struct fault f;
    struct req_error err;
    struct req_gen g;
    if (!gen_begin(s, c, req, &ov, &f))
        return;
    int rc = ollama_parse(chat, body, len, &s->req_models, s->o->max_model_len, &g, &err);
    if (rc < 0) {
        api_reply_error(s, c, err.status, false, err.msg, err.msg_len);
        return;
    }
    s->api_used_ns[g.model] = real_ns();
    if (rc == 1) {
        /* Nothing to generate: Ollama loads the model and says so at once. */
        struct ollama_stream st = {s->models[g.model].json, s->models[g.model].json_len, chat};
        struct ollama_done d = {.reason = "load"};
        bbuf_reset(&s->tmp);
        ollama_answer_body(&s->tmp, &st, real_ns(), &d, 0, 0);
        reply(s, c, 200, false, json_ctype(s), false);
        return;
    }
    g.shape = chat ? API_SHAPE_OLLAMA_CHAT : API_SHAPE_OLLAMA_GENERATE;
    gen_start(s, c, chat, &g, &ov, &f);
}

static int tfs_model(const struct server *s, const struct tfs_path *tp)
{
    for (uint32_t i = 0; i < s->o->n_models; i++)
        if (s->model_lens[i] == tp->name_len &&
            memcmp(s->model_names[i], tp->name, tp->name_len) == 0)
            return tp->has_version && tp->version != 1 ? -1 : (int)i;
    return -1;
}

static void tfs_not_found(struct server *s, struct conn *c, const struct tfs_path *tp)
{
    char msg[400];
    int name_len = tp->name_len > 256 ? 256 : (int)tp->name_len;
    int n = tp->has_version
                ? snprintf(msg, sizeof(msg), "Servable not found for request: Specific(%.*s, %llu)",
                           name_len, tp->name, (unsigned long long)tp->version)
                : snprintf(msg, sizeof(msg), "Servable not found for request: Latest(%.*s)",
                           name_len, tp->name);
    api_reply_error(s, c, 404, false, msg, n > 0 ? (size_t)n : 0);
}

static void tfs_generation(struct server *s, struct conn *c, const struct tfs_path *tp,
                           const struct h1_request *req, const char *body, size_t len)
{
    struct req_overrides ov;
    struct fault f;
    struct req_error err;
    struct req_gen g;
    bool columns = false;
    if (!gen_begin(s, c, req, &ov, &f))
        return;
    int model = tfs_model(s, tp);
    if (model < 0) {
        tfs_not_found(s, c, tp);
        return;
    }
    if (tfs_parse(body, len, s->o->max_model_len, &g, &columns, &err) < 0) {
        api_reply_error(s, c, err.status, false, err.msg, err.msg_len);
        return;
    }
    g.model = (uint32_t)model;
    g.shape = columns ? API_SHAPE_TF_COLUMNS : API_SHAPE_TF_ROWS;
    gen_start(s, c, false, &g, &ov, &f);
}

/* --- routes -------------------------------------------------------------- */

/* /api/ps: the models that served a request, most recent first, each kept
 * loaded for Ollama's default keep_alive after its last use. */
static void ollama_ps(struct server *s)
{
    uint32_t order[LLMSIM_MAX_MODELS], n = 0;
    int64_t expires[LLMSIM_MAX_MODELS];
    for (uint32_t i = 0; i < s->o->n_models; i++) {
        expires[i] = s->api_used_ns[i] + (int64_t)OLLAMA_KEEP_ALIVE_NS;
        if (!s->api_used_ns[i])
            continue;
        uint32_t k = n++;
        while (k > 0 && s->api_used_ns[order[k - 1]] < s->api_used_ns[i]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    ollama_ps_body(&s->tmp, s->models, order, n, expires);
}

static void ollama_route(struct server *s, struct conn *c, const struct h1_request *req,
                         const char *body, size_t len)
{
    const char *p = req->path;
    size_t pl = req->path_len;
    bool post = span_is(req->method, req->method_len, "POST");
    bool head_only = span_is(req->method, req->method_len, "HEAD");
    bool get = head_only || span_is(req->method, req->method_len, "GET");
    if (post && (span_is(p, pl, "/api/chat") || span_is(p, pl, "/api/generate"))) {
        ollama_generation(s, c, span_is(p, pl, "/api/chat"), req, body, len);
        return;
    }
    bbuf_reset(&s->tmp);
    if (get && span_is(p, pl, "/")) {
        bbuf_puts(&s->tmp, "Ollama is running");
        reply(s, c, 200, false, "text/plain; charset=utf-8", head_only);
    } else if (get && span_is(p, pl, "/api/version")) {
        ollama_version_body(&s->tmp);
        reply(s, c, 200, false, json_ctype(s), head_only);
    } else if (get && span_is(p, pl, "/api/tags")) {
        ollama_tags_body(&s->tmp, s->models, s->o->n_models, s->start_sec * 1000000000);
        reply(s, c, 200, false, json_ctype(s), head_only);
    } else if (get && !head_only && span_is(p, pl, "/api/ps")) {
        ollama_ps(s);
        reply(s, c, 200, false, json_ctype(s), false);
    } else {
        /* gin's answer to an unknown route or method. */
        bbuf_puts(&s->tmp, "404 page not found");
        reply(s, c, 404, false, "text/plain", head_only);
    }
}

static void tfs_route(struct server *s, struct conn *c, const struct h1_request *req,
                      const char *body, size_t len)
{
    struct tfs_path tp;
    bool post = span_is(req->method, req->method_len, "POST");
    bool get = span_is(req->method, req->method_len, "GET");
    if (tfs_parse_path(req->path, req->path_len, &tp) == 0) {
        if (tp.predict && post) {
            tfs_generation(s, c, &tp, req, body, len);
            return;
        }
        if (!tp.predict && get) {
            if (tfs_model(s, &tp) < 0) {
                tfs_not_found(s, c, &tp);
                return;
            }
            bbuf_reset(&s->tmp);
            tfs_status_body(&s->tmp);
            reply(s, c, 200, false, json_ctype(s), false);
            return;
        }
    }
    char msg[600];
    int ml = req->method_len > 16 ? 16 : (int)req->method_len;
    int tl = req->target_len > 512 ? 512 : (int)req->target_len;
    int n = snprintf(msg, sizeof(msg), "Malformed request: %.*s %.*s", ml, req->method, tl,
                     req->target);
    bbuf_reset(&s->tmp);
    tfs_error_body(&s->tmp, msg, n > 0 ? (size_t)n : 0);
    reply(s, c, 404, false, json_ctype(s), span_is(req->method, req->method_len, "HEAD"));
}

bool api_dispatch(struct server *s, struct conn *c, const struct h1_request *req, const char *body,
                  size_t body_len)
{
    /* llmsim's own endpoints answer the same in every personality. */
    if (span_is(req->path, req->path_len, "/stats") ||
        span_is(req->path, req->path_len, "/metrics"))
        return false;
    if (s->o->api == LLMSIM_API_OLLAMA)
        ollama_route(s, c, req, body, body_len);
    else
        tfs_route(s, c, req, body, body_len);
    return true;
}
