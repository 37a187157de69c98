/*
 * verify — token order, [DONE] and id checks of --verify (see verify.h).
 */
#include "perf/loadgen/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/sse.h"

#define TOKEN_MAX 256

void verify_ctx_init(struct verify_ctx *v, int64_t expect_tokens, atomic_uint *printed,
                     unsigned max_print)
{
    v->errors = 0;
    v->streams = 0;
    v->expect_tokens = expect_tokens;
    v->printed = printed;
    v->max_print = max_print;
}

void verify_begin(struct verify_stream *s, uint32_t conn, uint32_t request)
{
    memset(s, 0, sizeof(*s));
    s->conn = conn;
    s->request = request;
}

__attribute__((format(printf, 3, 4))) static void
violation(struct verify_ctx *v, const struct verify_stream *s, const char *fmt, ...)
{
    v->errors++;
    if (atomic_fetch_add(v->printed, 1) >= v->max_print)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "llmload: verify: connection %u request %u: %s\n", s->conn, s->request, msg);
}

/* " w<i>" with i in canonical decimal: returns i, or -1. */
static int64_t token_index(const char *t, long n)
{
    if (n < 3 || n > 22 || t[0] != ' ' || t[1] != 'w')
        return -1;
    if (t[2] == '0' && n > 3)
        return -1;
    int64_t i = 0;
    for (long k = 2; k < n; k++) {
        if (t[k] < '0' || t[k] > '9')
            return -1;
        i = i * 10 + (t[k] - '0');
    }
    return i;
}

/* Printable copy of a token for messages. */
static const char *show(const char *t, long n, char *buf, size_t cap)
{
    size_t o = 0;
    for (long k = 0; k < n && o + 5 < cap; k++) {
        unsigned char c = (unsigned char)t[k];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            int w = snprintf(buf + o, cap - o, "\\x%02x", c);
            if (w < 0 || (size_t)w >= cap - o)
                break;
            o += (size_t)w;
        }
    }
    buf[o] = '\0';
    return buf;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void check_id(struct verify_ctx *v, struct verify_stream *s, const struct evfields *f)
{
    const char *colon = NULL;
    for (size_t i = f->id_len; i > 0; i--) {
        if (f->id[i - 1] == ':') {
            colon = f->id + i - 1;
            break;
        }
    }
    char shown[128];
    if (!colon || colon == f->id || colon + 1 == f->id + f->id_len) {
        violation(v, s, "id \"%s\" is not <stream-id>:<seq>",
                  show(f->id, (long)f->id_len, shown, sizeof(shown)));
        return;
    }
    uint64_t seq = 0;
    for (const char *p = colon + 1; p < f->id + f->id_len; p++) {
        if (*p < '0' || *p > '9' || seq > (UINT64_MAX - 9) / 10) {
            violation(v, s, "id \"%s\": seq is not a number",
                      show(f->id, (long)f->id_len, shown, sizeof(shown)));
            return;
        }
        seq = seq * 10 + (uint64_t)(*p - '0');
    }
    uint64_t h = fnv1a(f->id, (size_t)(colon - f->id));
    if (!s->have_id) {
        s->have_id = true;
        s->id_hash = h;
        s->seq = seq;
        return;
    }
    if (h != s->id_hash)
        violation(v, s, "id \"%s\": stream-id differs from the first id of the stream",
                  show(f->id, (long)f->id_len, shown, sizeof(shown)));
    if (seq <= s->seq)
        violation(v, s, "id \"%s\": seq %llu after %llu does not increase",
                  show(f->id, (long)f->id_len, shown, sizeof(shown)), (unsigned long long)seq,
                  (unsigned long long)s->seq);
    s->seq = seq;
}

static void check_token(struct verify_ctx *v, struct verify_stream *s, const char *ev, size_t len,
                        const struct evfields *f)
{
    const char *data;
    size_t dl = evfields_data(ev, len, f, v->scratch, sizeof(v->scratch), &data);
    char tok[TOKEN_MAX], shown[TOKEN_MAX * 4 + 8];
    long n = -1;
    if (data) {
        n = evfields_json_string(data, dl, "content", tok, sizeof(tok));
        if (n < 0)
            n = evfields_json_string(data, dl, "text", tok, sizeof(tok));
    }
    s->tokens++;
    if (s->done)
        violation(v, s, "token after [DONE]");
    if (n < 0) {
        violation(v, s, "token event %llu: no readable \"content\" or \"text\" string",
                  (unsigned long long)s->tokens - 1);
        s->next++;
        return;
    }
    int64_t i = token_index(tok, n);
    if (i < 0) {
        violation(v, s, "expected \" w%llu\", got \"%s\" (not a llmsim token)",
                  (unsigned long long)s->next, show(tok, n, shown, sizeof(shown)));
        s->next++;
        return;
    }
    if ((uint64_t)i == s->next) {
        s->next++;
    } else if ((uint64_t)i > s->next) {
        violation(v, s, "expected \" w%llu\", got \" w%lld\": %llu token(s) missing or reordered",
                  (unsigned long long)s->next, (long long)i,
                  (unsigned long long)((uint64_t)i - s->next));
        s->next = (uint64_t)i + 1;
    } else {
        violation(v, s, "expected \" w%llu\", got \" w%lld\": duplicate or out of order",
                  (unsigned long long)s->next, (long long)i);
    }
}

void verify_event(struct verify_ctx *v, struct verify_stream *s, const char *ev, size_t len,
                  const struct evfields *f, unsigned flags)
{
    if (f->id)
        check_id(v, s, f);
    if (flags & SSE_EV_CONTENT)
        check_token(v, s, ev, len, f);
    if (flags & SSE_EV_DONE) {
        if (s->done)
            violation(v, s, "second [DONE]");
        s->done = true;
    }
}

void verify_end(struct verify_ctx *v, struct verify_stream *s, const char *how)
{
    v->streams++;
    if (!s->done)
        violation(v, s, "stream ended (%s) without [DONE] after %llu token(s)", how,
                  (unsigned long long)s->tokens);
    if (v->expect_tokens >= 0 && s->tokens != (uint64_t)v->expect_tokens)
        violation(v, s, "%llu token(s), expected %lld", (unsigned long long)s->tokens,
                  (long long)v->expect_tokens);
}
