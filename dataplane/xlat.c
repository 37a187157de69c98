/* xlat — see xlat.h. */
#include "dataplane/xlat.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dataplane/api_error.h"
#include "dataplane/balance.h"
#include "dataplane/h1_parser.h"
#include "dataplane/route.h"
#include "dataplane/sse.h"
#include "dataplane/stream.h"
#include "dataplane/stream_event.h"
#include "dataplane/tfserving.h"
#include "dataplane/upstream.h"
#include "dataplane/worker.h"
#include "shared/clock.h"
#include "shared/log.h"

/* A whole answer (TF Serving, Ollama not streaming) is held until it ends;
 * past this it is refused rather than held. */
#define WHOLE_MAX (16u << 20)

static const char *kind_name(uint8_t k)
{
    return k == BACKEND_OLLAMA      ? "Ollama"
           : k == BACKEND_TFSERVING ? "TensorFlow Serving"
                                    : "OpenAI";
}

void xlat_free(struct xlat *x)
{
    free(x->target);
    free(x->body);
    free(x->buf);
    free(x->out);
}

/* ---- the request ---------------------------------------------------------- */

static int set_request(struct stream *st, const char *target, const char *body, uint64_t len)
{
    int err = route_set_target(&st->req_head, &st->req_head_len, &st->req_head_cap, target);
    if (!err)
        err = route_set_length(&st->req_head, &st->req_head_len, &st->req_head_cap, len);
    st->req_body = body;
    st->req_body_len = len;
    return err;
}

int xlat_prepare(struct stream *st)
{
    struct xlat *x = &st->xl;
    const struct config_backend *be = st->pool->be;
    if (!st->req_head || x->native || !st->is_completion || !x->src)
        return 0;
    if (be->kind == BACKEND_OPENAI) {
        /* Back to an OpenAI backend after another: the request as it came. */
        if (x->kind != BACKEND_OPENAI && set_request(st, x->target, x->src, x->src_len) < 0)
            goto nomem;
        x->kind = BACKEND_OPENAI;
        return 0;
    }
    if (!x->target) {
        char t[8192];
        if (route_get_target(st->req_head, st->req_head_len, t, sizeof t) < 0 ||
            !(x->target = strdup(t)))
            goto nomem;
    }
    char detail[256] = "";
    char *body = NULL, *tfs_target = NULL;
    size_t bl = 0;
    int err;
    if (be->kind == BACKEND_OLLAMA)
        err = ollama_request(st->chat, x->src, x->src_len, &body, &bl, detail, sizeof detail);
    else
        err = tfs_request(be, st->chat, st->model, x->src, x->src_len, &tfs_target, &body, &bl,
                          detail, sizeof detail);
    if (err) {
        log_info("stream %s: cannot translate the request for %s backend %s: %s", st->id,
                 kind_name(be->kind), be->name, detail);
        stream_fail(st, err, detail);
        return -1;
    }
    const char *target =
        be->kind == BACKEND_OLLAMA ? (st->chat ? "/api/chat" : "/api/generate") : tfs_target;
    free(x->body);
    x->body = body;
    int rc = set_request(st, target, body, bl);
    free(tfs_target);
    if (rc < 0)
        goto nomem;
    if (!st->head_committed || !x->tr.id[0]) {
        /* A new answer; a continuation keeps the id and role it has, or,
         * continuing another kind's answer, starts without a role event
         * (the client has one). */
        x->include_usage = !st->strip_usage && ollama_wants_usage(x->src, x->src_len);
        ollama_tr_init(&x->tr, st->chat, x->include_usage, st->id, (uint64_t)time(NULL));
        x->tr.role_sent = st->head_committed;
    }
    x->tr.fingerprint = be->kind == BACKEND_TFSERVING ? "fp_tfserving" : "fp_ollama";
    x->tr.counts = be->kind != BACKEND_TFSERVING;
    x->kind = be->kind;
    return 0;
nomem:
    stream_fail(st, API_ERR_INTERNAL, "out of memory for the backend request");
    return -1;
}

/* ---- the answer ------------------------------------------------------------ */

bool xlat_translating(const struct stream *st)
{
    return !st->xl.native && st->xl.kind != BACKEND_OPENAI;
}

static bool is_ndjson(const struct h1_response *r)
{
    const struct h1_header *ct = h1_header_find(r->headers, r->n_headers, "content-type");
    return ct && ct->value_len >= 20 && strncasecmp(ct->value, "application/x-ndjson", 20) == 0;
}

bool xlat_continues(struct stream *st, const struct h1_response *r)
{
    if (st->xl.kind != BACKEND_OLLAMA || r->status != 200 || !is_ndjson(r))
        return false;
    st->mode = RM_OLLAMA;
    st->xl.buf_len = 0;
    return true;
}

int xlat_on_head(struct stream *st, const struct h1_response *r)
{
    struct xlat *x = &st->xl;
    st->phase = SP_RELAY;
    st->status = r->status;
    st->t_last_ns = clock_mono_ns();
    x->buf_len = 0;
    if (x->kind == BACKEND_OLLAMA && r->status == 200 && st->client_sse && is_ndjson(r)) {
        st->mode = RM_OLLAMA;
        return stream_write_head(st, 200, "text/event-stream; charset=utf-8", true);
    }
    st->mode = RM_WHOLE;
    stream_rearm_timer(st);
    return 0;
}

static int buf_append(struct stream *st, const char *p, size_t n, size_t max)
{
    struct xlat *x = &st->xl;
    if ((size_t)x->buf_len + n > max) {
        stream_fail(st, API_ERR_BACKEND_BAD,
                    st->mode == RM_WHOLE ? "the backend's answer is over 16 MiB"
                                         : "the backend sent a line over max_event_size");
        return -1;
    }
    if (x->buf_len + n > x->buf_cap) {
        size_t cap = x->buf_cap ? x->buf_cap : 4096;
        while (cap < x->buf_len + n)
            cap *= 2;
        char *nb = realloc(x->buf, cap);
        if (!nb) {
            stream_fail(st, API_ERR_OVERLOADED, "out of memory for the backend's answer");
            return -1;
        }
        x->buf = nb;
        x->buf_cap = (uint32_t)cap;
    }
    memcpy(x->buf + x->buf_len, p, n);
    x->buf_len += (uint32_t)n;
    return 0;
}

static int room(struct stream *st, size_t need)
{
    struct xlat *x = &st->xl;
    if (x->out_cap >= need)
        return 0;
    char *nb = realloc(x->out, need);
    if (!nb) {
        stream_fail(st, API_ERR_OVERLOADED, "out of memory for the stream");
        return -1;
    }
    x->out = nb;
    x->out_cap = need;
    return 0;
}

/* One answer line translated into events, each sent as relayed ones are. */
static int translate_line(struct stream *st, const char *line, size_t n)
{
    struct xlat *x = &st->xl;
    struct ollama_events ev;
    if (room(st, ollama_line_room(n)) < 0)
        return -1;
    int rc = ollama_line(&x->tr, line, n, x->out, x->out_cap, &ev);
    if (rc == -ECONNABORTED) {
        char detail[320];
        snprintf(detail, sizeof detail, "backend %s: %.*s", st->pool->be->name,
                 (int)(ev.n ? ev.len[0] > 256 ? 256 : ev.len[0] : 0), x->out);
        log_info("stream %s: %s", st->id, detail);
        bal_failure(st->w, st->bk, "an error in its answer");
        stream_fail(st, API_ERR_BACKEND_BAD, detail);
        return -1;
    }
    if (rc < 0) {
        log_info("stream %s: backend %s: a line that is not an %s answer", st->id,
                 st->pool->be->name, kind_name(x->kind));
        stream_fail(st, API_ERR_BACKEND_BAD, "the backend sent a line that is not an answer");
        return -1;
    }
    for (unsigned i = 0; i < ev.n; i++)
        if (sev_emit(st, x->out + ev.off[i], ev.len[i]) < 0)
            return -1;
    if (x->tr.done && x->tr.counts) {
        st->usage_seen = true;
        st->usage_tokens =
            x->tr.completion_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)x->tr.completion_tokens;
    }
    return 0;
}

static int native_line(struct stream *st, const char *line, size_t n)
{
    uint64_t eval = 0;
    unsigned f = ollama_native_scan(line, n, &eval);
    unsigned flags = SSE_EV_DATA | (f & OLLAMA_LINE_TOKEN ? SSE_EV_CONTENT : 0) |
                     (f & OLLAMA_LINE_DONE ? SSE_EV_DONE : 0);
    if (f & OLLAMA_LINE_DONE) {
        st->usage_seen = true;
        st->usage_tokens = eval > UINT32_MAX ? UINT32_MAX : (uint32_t)eval;
    }
    return sev_line(st, line, n, flags);
}

static int one_line(struct stream *st, const char *line, size_t n)
{
    if (n && line[n - 1] == '\r')
        n--;
    if (!n)
        return 0; /* blank lines carry nothing */
    return st->mode == RM_LINES ? native_line(st, line, n) : translate_line(st, line, n);
}

int xlat_on_body(struct stream *st, const char *p, size_t len)
{
    struct xlat *x = &st->xl;
    if (st->mode == RM_WHOLE)
        return buf_append(st, p, len, WHOLE_MAX);
    size_t max = st->w->cfg->max_event_size;
    while (len) {
        const char *nl = memchr(p, '\n', len);
        if (!nl)
            return buf_append(st, p, len, max);
        size_t seg = (size_t)(nl - p);
        int rc;
        if (x->buf_len) {
            if (buf_append(st, p, seg, max) < 0)
                return -1;
            size_t n = x->buf_len;
            x->buf_len = 0; /* the bytes stay where they are for this call */
            rc = one_line(st, x->buf, n);
        } else {
            rc = one_line(st, p, seg);
        }
        if (rc < 0)
            return -1;
        p += seg + 1;
        len -= seg + 1;
    }
    return 0;
}

/* A backend's error answer as the client's error: the same meaning in
 * sluice's table, the backend's words as the message. */
static void whole_error(struct stream *st)
{
    struct xlat *x = &st->xl;
    char *msg = ollama_error_message(x->buf ? x->buf : "", x->buf_len);
    char detail[320];
    snprintf(detail, sizeof detail, "backend %s answered %u: %.200s", st->pool->be->name,
             (unsigned)st->status, msg ? msg : "(no message)");
    free(msg);
    int err = st->status == 404                        ? API_ERR_MODEL_NOT_FOUND
              : st->status == 400 || st->status == 422 ? API_ERR_INVALID_FIELD
              : st->status == 429 || st->status == 503 ? API_ERR_OVERLOADED
                                                       : API_ERR_BACKEND_BAD;
    log_info("stream %s: %s", st->id, detail);
    stream_fail(st, err, detail);
}

/* TF Serving's prediction as a one-line Ollama answer (malloc'd), so both
 * kinds are written by the same code. */
static char *tfs_line(struct stream *st, const char *text, size_t len)
{
    json_t *t = json_stringn(text, len);
    json_t *o = st->chat
                    ? json_pack("{s:s,s:{s:s,s:o},s:b,s:s}", "model", st->model, "message", "role",
                                "assistant", "content", t, "done", 1, "done_reason", "stop")
                    : json_pack("{s:s,s:o,s:b,s:s}", "model", st->model, "response", t, "done", 1,
                                "done_reason", "stop");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

int xlat_on_body_end(struct stream *st, char **json, size_t *json_len)
{
    struct xlat *x = &st->xl;
    if (st->status != 200) {
        whole_error(st);
        return -1;
    }
    const char *line = x->buf ? x->buf : "";
    size_t n = x->buf_len;
    char *own = NULL;
    if (x->kind == BACKEND_TFSERVING) {
        char *text;
        size_t tl;
        int rc = tfs_answer(st->pool->be, line, n, &text, &tl);
        if (rc < 0) {
            char detail[320];
            snprintf(detail, sizeof detail, "backend %s: %.200s", st->pool->be->name,
                     rc == -ECONNABORTED ? text : "the answer is not a prediction of a string");
            free(text);
            stream_fail(st, API_ERR_BACKEND_BAD, detail);
            return -1;
        }
        own = tfs_line(st, text, tl);
        free(text);
        if (!own) {
            stream_fail(st, API_ERR_OVERLOADED, "out of memory for the answer");
            return -1;
        }
        line = own;
        n = strlen(own);
    }
    int rc;
    if (st->client_sse) {
        /* One answer, sent as the events a stream of it would have been. */
        rc = stream_write_head(st, 200, "text/event-stream; charset=utf-8", true);
        if (rc == 0) {
            st->mode = RM_OLLAMA;
            rc = translate_line(st, line, n);
        }
    } else {
        rc = ollama_whole(&x->tr, line, n, json, json_len);
        if (rc < 0) {
            stream_fail(st, API_ERR_BACKEND_BAD,
                        rc == -ECONNABORTED ? *json : "the backend's answer is not an answer");
            free(rc == -ECONNABORTED ? *json : NULL);
        } else {
            rc = 1;
        }
    }
    free(own);
    if (rc >= 0 && !x->tr.counts) {
        /* No count from the backend: the reservation is kept whole. */
        st->usage_seen = true;
        st->usage_tokens = st->want_tokens > 0 && st->want_tokens <= UINT32_MAX
                               ? (uint32_t)st->want_tokens
                               : st->tokens;
    } else if (rc >= 0) {
        st->usage_seen = true;
        st->usage_tokens =
            x->tr.completion_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)x->tr.completion_tokens;
    }
    return rc < 0 ? -1 : rc;
}
