/*
 * request — routing, X-Sim-* overrides and OpenAI body fields (see request.h).
 */
#include "perf/llmsim/request.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/oai_content.h"
#include "perf/llmsim/opts.h"
#include "perf/llmsim/pcache.h"

static bool span_eq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

enum req_route req_route(const struct h1_request *r, bool *head_only, const char **allow)
{
    static const struct {
        const char *path;
        enum req_route route;
        bool post;
    } routes[] = {
        {"/v1/chat/completions", ROUTE_CHAT, true}, {"/v1/completions", ROUTE_COMPLETIONS, true},
        {"/v1/models", ROUTE_MODELS, false},        {"/health", ROUTE_HEALTH, false},
        {"/metrics", ROUTE_METRICS, false},         {"/stats", ROUTE_STATS, false},
    };
    *head_only = false;
    *allow = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!span_eq(r->path, r->path_len, routes[i].path))
            continue;
        if (routes[i].post) {
            if (span_eq(r->method, r->method_len, "POST"))
                return routes[i].route;
            *allow = "allow: POST\r\n";
            return ROUTE_BAD_METHOD;
        }
        if (span_eq(r->method, r->method_len, "GET"))
            return routes[i].route;
        if (span_eq(r->method, r->method_len, "HEAD")) {
            *head_only = true;
            return routes[i].route;
        }
        *allow = "allow: GET, HEAD\r\n";
        return ROUTE_BAD_METHOD;
    }
    return ROUTE_NOT_FOUND;
}

int req_fail(struct req_error *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->status = status;
    if (n < 0)
        n = 0;
    err->msg_len = (size_t)n < sizeof(err->msg) ? (size_t)n : sizeof(err->msg) - 1;
    return -EINVAL;
}

/* Copies a value into a NUL-terminated buffer; false when it does not fit. */
static bool to_cstr(const char *s, size_t n, char *buf, size_t cap)
{
    if (n >= cap)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return true;
}

static int parse_tokens(const char *s, size_t n, uint32_t *out)
{
    char buf[24];
    if (!to_cstr(s, n, buf, sizeof(buf)) || buf[0] < '0' || buf[0] > '9')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || *end || v < 1 || v > LLMSIM_MAX_TOKENS)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_ms(const char *s, size_t n, uint64_t *ns)
{
    char buf[32];
    if (!to_cstr(s, n, buf, sizeof(buf)) || ((buf[0] < '0' || buf[0] > '9') && buf[0] != '.'))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v > LLMSIM_MAX_MS)
        return -EINVAL;
    *ns = (uint64_t)llround(v * 1e6);
    return 0;
}

enum ov_key { OV_TOKENS, OV_TTFT, OV_ITL, OV_FAULT, OV__COUNT };

static const char *const ov_header[OV__COUNT] = {"x-sim-tokens", "x-sim-ttft-ms", "x-sim-itl-ms",
                                                 "x-sim-fault"};
static const char *const ov_query[OV__COUNT] = {"sim_tokens", "sim_ttft_ms", "sim_itl_ms",
                                                "sim_fault"};

static int apply_override(struct req_overrides *ov, enum ov_key k, const char *v, size_t n,
                          const char *name, struct req_error *err)
{
    int rc = 0;
    switch (k) {
    case OV_TOKENS:
        rc = parse_tokens(v, n, &ov->tokens);
        ov->has_tokens = rc == 0;
        break;
    case OV_TTFT:
        rc = parse_ms(v, n, &ov->ttft_ns);
        ov->has_ttft = rc == 0;
        break;
    case OV_ITL:
        rc = parse_ms(v, n, &ov->itl_ns);
        ov->has_itl = rc == 0;
        break;
    case OV_FAULT:
        rc = fault_parse(v, n, &ov->fault);
        ov->has_fault = rc == 0;
        break;
    default:
        break;
    }
    if (rc < 0) {
        int shown = n > 64 ? 64 : (int)n;
        return req_fail(err, 400, "invalid %s value '%.*s'", name, shown, v);
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes (and '+' to space) into buf; false when it does not fit
 * or an escape is malformed. */
static bool url_decode(const char *s, size_t n, char *buf, size_t cap, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o >= cap)
            return false;
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        buf[o++] = c;
    }
    *out_len = o;
    return true;
}

int req_overrides(const struct h1_request *r, struct req_overrides *ov, struct req_error *err)
{
    memset(ov, 0, sizeof(*ov));
    for (int k = 0; k < OV__COUNT; k++) {
        const struct h1_header *h = h1_header_find(r->headers, r->n_headers, ov_header[k]);
        if (h && apply_override(ov, (enum ov_key)k, h->value, h->value_len, ov_header[k], err) < 0)
            return -EINVAL;
    }
    if (!r->query)
        return 0;
    const char *q = r->query, *end = r->query + r->query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pair_end - q));
        if (eq) {
            for (int k = 0; k < OV__COUNT; k++) {
                if (!span_eq(q, (size_t)(eq - q), ov_query[k]))
                    continue;
                char val[96];
                size_t vlen = 0;
                if (!url_decode(eq + 1, (size_t)(pair_end - eq - 1), val, sizeof(val), &vlen))
                    return req_fail(err, 400, "invalid %s value", ov_query[k]);
                if (apply_override(ov, (enum ov_key)k, val, vlen, ov_query[k], err) < 0)
                    return -EINVAL;
            }
        }
        q = pair_end + 1;
    }
    return 0;
}

/* Bytes of text in one chat message's content (string or list of parts). */
static int content_bytes(json_t *content, uint64_t *bytes)
{
    if (!content || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        *bytes += json_string_length(content);
        return 0;
    }
    if (!json_is_array(content))
        return -EINVAL;
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part) {
        if (!json_is_object(part))
            return -EINVAL;
        json_t *text = json_object_get(part, "text");
        if (json_is_string(text))
            *bytes += json_string_length(text);
    }
    return 0;
}

static int chat_prompt(json_t *root, uint64_t *bytes, struct req_error *err)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs)
        return req_fail(err, 400, "messages: Field required");
    if (!json_is_array(msgs))
        return req_fail(err, 400, "messages: Input should be a valid list");
    size_t i;
    json_t *m;
    json_array_foreach (msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return req_fail(err, 400, "messages.%zu: each message needs a string 'role'", i);
        if (content_bytes(json_object_get(m, "content"), bytes) < 0)
            return req_fail(err, 400, "messages.%zu.content: Input should be a string or a list",
                            i);
    }
    return 0;
}

/* A completions prompt: a string, a list of strings, a list of token ids,
 * or a list of lists of token ids.  Strings count bytes, ids count 4 each. */
static int completion_prompt(json_t *root, uint64_t *bytes, struct req_error *err)
{
    json_t *p = json_object_get(root, "prompt");
    if (!p)
        return req_fail(err, 400, "prompt: Field required");
    if (json_is_string(p)) {
        *bytes += json_string_length(p);
        return 0;
    }
    if (!json_is_array(p))
        return req_fail(err, 400, "prompt: Input should be a string or a list");
    size_t i;
    json_t *e;
    json_array_foreach (p, i, e) {
        if (json_is_string(e)) {
            *bytes += json_string_length(e);
        } else if (json_is_integer(e)) {
            *bytes += 4;
        } else if (json_is_array(e)) {
            size_t j;
            json_t *id;
            json_array_foreach (e, j, id) {
                if (!json_is_integer(id))
                    return req_fail(err, 400, "prompt.%zu.%zu: Input should be an integer", i, j);
                *bytes += 4;
            }
        } else {
            return req_fail(err, 400, "prompt.%zu: Input should be a string or token ids", i);
        }
    }
    return 0;
}

static int get_bool(json_t *root, const char *key, bool *out, struct req_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return req_fail(err, 400, "%s: Input should be a valid boolean", key);
    *out = json_is_true(v);
    return 0;
}

static int get_max_tokens(json_t *root, const char *key, uint32_t *out, struct req_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return req_fail(err, 400, "%s: Input should be a valid integer", key);
    json_int_t n = json_integer_value(v);
    if (n < 1)
        return req_fail(err, 400, "max_tokens must be at least 1, got %lld.", (long long)n);
    *out = n > (json_int_t)LLMSIM_MAX_TOKENS ? LLMSIM_MAX_TOKENS : (uint32_t)n;
    return 0;
}

/* Cuts n so a UTF-8 sequence is not split at the end. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static int check_model(json_t *root, const struct req_models *models, uint32_t *idx,
                       struct req_error *err)
{
    json_t *m = json_object_get(root, "model");
    *idx = 0;
    if (!m || json_is_null(m))
        return 0;
    if (!json_is_string(m))
        return req_fail(err, 400, "model: Input should be a valid string");
    const char *name = json_string_value(m);
    size_t len = json_string_length(m);
    for (uint32_t i = 0; i < models->n; i++) {
        if (models->lens[i] == len && memcmp(models->names[i], name, len) == 0) {
            *idx = i;
            return 0;
        }
    }
    size_t shown = utf8_cut(name, len, 512);
    return req_fail(err, 404, "The model `%.*s` does not exist.", (int)shown, name);
}

/* Counts every " w<digit>": what vLLM's continue_final_message or a prompt
 * ending with the answer so far already holds. */
uint32_t req_words_in(const char *s)
{
    uint32_t n = 0;
    for (const char *p = s; (p = strstr(p, " w")) != NULL; p += 2)
        if (p[2] >= '0' && p[2] <= '9')
            n++;
    return n;
}

static uint32_t continued_words(bool chat, json_t *root)
{
    if (!chat) {
        json_t *p = json_object_get(root, "prompt");
        return json_is_string(p) ? req_words_in(json_string_value(p)) : 0;
    }
    json_t *cont = json_object_get(root, "continue_final_message");
    json_t *msgs = json_object_get(root, "messages");
    size_t n = json_array_size(msgs);
    if (!json_is_true(cont) || !n)
        return 0;
    json_t *last = json_array_get(msgs, n - 1);
    const char *role = json_string_value(json_object_get(last, "role"));
    const char *content = json_string_value(json_object_get(last, "content"));
    return role && content && strcmp(role, "assistant") == 0 ? req_words_in(content) : 0;
}

/* Each message's role and text, or the prompt string, hashed with FNV-1a. */
void req_blocks_init(struct req_blockhash *b, struct req_gen *g)
{
    b->g = g;
    b->h = 0xcbf29ce484222325ULL;
    b->fill = 0;
}

void req_blocks_feed(struct req_blockhash *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n && b->g->nblocks < PCACHE_MAX_BLOCKS; i++) {
        b->h = (b->h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
        if (++b->fill == PCACHE_BLOCK) {
            b->g->blocks[b->g->nblocks++] = b->h;
            b->fill = 0;
        }
    }
}

static void bh_text(void *b, const char *s, size_t n)
{
    req_blocks_feed(b, s, n);
}

static void prompt_blocks(bool chat, json_t *root, struct req_gen *g)
{
    struct req_blockhash b;
    req_blocks_init(&b, g);
    if (!chat) {
        oai_content_text(json_object_get(root, "prompt"), bh_text, &b);
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach (json_object_get(root, "messages"), i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        req_blocks_feed(&b, role ? role : "", role ? strlen(role) : 0);
        req_blocks_feed(&b, "\n", 1);
        oai_content_text(json_object_get(m, "content"), bh_text, &b);
        req_blocks_feed(&b, "\n", 1);
    }
}

int req_parse_body(bool chat, const char *body, size_t len, const struct req_models *models,
                   struct req_gen *g, struct req_error *err)
{
    memset(g, 0, sizeof(*g));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return req_fail(err, 400, "JSON decode error: %s (line %d, column %d)", jerr.text,
                        jerr.line, jerr.column);
    int rc = -EINVAL;
    uint64_t bytes = 0;
    if (!json_is_object(root)) {
        req_fail(err, 400, "Input should be a valid dictionary or object to extract fields from");
        goto out;
    }
    if ((chat ? chat_prompt(root, &bytes, err) : completion_prompt(root, &bytes, err)) < 0)
        goto out;
    if (get_bool(root, "stream", &g->stream, err) < 0)
        goto out;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            req_fail(err, 400, "stream_options: Input should be a valid dictionary");
            goto out;
        }
        if (!g->stream) {
            req_fail(err, 400, "Stream options can only be defined when `stream=True`.");
            goto out;
        }
        if (get_bool(so, "include_usage", &g->include_usage, err) < 0)
            goto out;
    }
    if (get_max_tokens(root, "max_tokens", &g->max_tokens, err) < 0)
        goto out;
    if (chat && get_max_tokens(root, "max_completion_tokens", &g->max_tokens, err) < 0)
        goto out;
    if (check_model(root, models, &g->model, err) < 0)
        goto out;
    g->first_word = continued_words(chat, root);
    prompt_blocks(chat, root, g);
    uint64_t pt = bytes / 4;
    g->prompt_tokens = pt < 1 ? 1 : pt > LLMSIM_MAX_TOKENS ? LLMSIM_MAX_TOKENS : (uint32_t)pt;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
