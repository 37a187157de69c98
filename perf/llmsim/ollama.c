/*
 * ollama — Ollama 0.5's request bodies and answer bytes (see ollama.h).
 *
 * Ollama's api.ChatResponse is {model, created_at, message, done_reason
 * (omitempty), done, Metrics...} and api.GenerateResponse is {model,
 * created_at, response, done, done_reason, context, Metrics...}: the order
 * differs, so each shape is written out here rather than table-driven.
 * Metrics' fields are all omitempty.  Strings go through Go's HTML-safe
 * escaping (<, > and & as \u003c...), which gin's c.JSON uses.
 */
#include "perf/llmsim/ollama.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/llmsim/opts.h"
#include "perf/llmsim/pcache.h"

static char *put_digits(char *w, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        w[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return w + width;
}

/* Room for <max> bytes written straight into the buffer; NULL on failure. */
static char *wbegin(struct bbuf *b, size_t max)
{
    if (b->failed || bbuf_reserve(b, max) < 0) {
        b->failed = true;
        return NULL;
    }
    return b->p + b->len;
}

static void wend(struct bbuf *b, char *w)
{
    if (w)
        b->len = (size_t)(w - b->p);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm): no libc
 * time zone machinery on the token path. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    uint64_t doe = (uint64_t)(z - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t ollama_time(char *dst, int64_t unix_ns)
{
    int64_t sec = unix_ns / 1000000000, frac = unix_ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char *w = put_digits(dst, (uint64_t)(y < 0 ? 0 : y % 10000), 4);
    *w++ = '-';
    w = put_digits(w, mo, 2);
    *w++ = '-';
    w = put_digits(w, d, 2);
    *w++ = 'T';
    w = put_digits(w, (uint64_t)(rem / 3600), 2);
    *w++ = ':';
    w = put_digits(w, (uint64_t)(rem / 60 % 60), 2);
    *w++ = ':';
    w = put_digits(w, (uint64_t)(rem % 60), 2);
    if (frac) {
        /* RFC3339Nano: up to nine digits, trailing zeros dropped. */
        int digits = 9;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        *w++ = '.';
        w = put_digits(w, (uint64_t)frac, digits);
    }
    *w++ = 'Z';
    return (size_t)(w - dst);
}

/* Go's encoding/json string escaping: like JSON's, plus <, >, &, U+2028 and
 * U+2029 as \u escapes (HTML-safe). */
static void go_json_esc(struct bbuf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        size_t skip = 1;
        if (ch == '<')
            esc = "\\u003c";
        else if (ch == '>')
            esc = "\\u003e";
        else if (ch == '&')
            esc = "\\u0026";
        else if (ch == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            esc = (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            skip = 3;
        }
        if (!esc)
            continue;
        bbuf_json_esc(b, s + run, i - run);
        bbuf_puts(b, esc);
        run = i + skip;
        i += skip - 1;
    }
    bbuf_json_esc(b, s + run, n - run);
}

static char *put_prefix(char *w, const struct ollama_stream *st, int64_t now_ns)
{
    w = PUT_LIT(w, "{\"model\":\"");
    w = put(w, st->model_json, st->model_json_len);
    w = PUT_LIT(w, "\",\"created_at\":\"");
    w += ollama_time(w, now_ns);
    if (st->chat)
        return PUT_LIT(w, "\",\"message\":{\"role\":\"assistant\",\"content\":\"");
    return PUT_LIT(w, "\",\"response\":\"");
}

static char *put_metric(char *w, const char *lit, size_t lit_len, uint64_t v)
{
    if (v == 0)
        return w; /* omitempty */
    w = put(w, lit, lit_len);
    return put_u64(w, v);
}

#define METRIC(w, key, v) put_metric((w), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (v))

/* Everything after the content string, up to the closing brace. */
static char *put_end(char *w, const struct ollama_stream *st, const struct ollama_done *d)
{
    size_t rl = strlen(d->reason);
    if (st->chat) {
        w = PUT_LIT(w, "\"},\"done_reason\":\"");
        w = put(w, d->reason, rl);
        w = PUT_LIT(w, "\",\"done\":true");
    } else {
        w = PUT_LIT(w, "\",\"done\":true,\"done_reason\":\"");
        w = put(w, d->reason, rl);
        w = PUT_LIT(w, "\"");
        /* llmsim keeps no tokenizer: a fixed context stands for the ids. */
        if (d->eval_count)
            w = PUT_LIT(w, ",\"context\":[1,2,3]");
    }
    w = METRIC(w, "total_duration", d->total_ns);
    w = METRIC(w, "load_duration", d->load_ns);
    w = METRIC(w, "prompt_eval_count", d->prompt_eval_count);
    w = METRIC(w, "prompt_eval_duration", d->prompt_eval_ns);
    w = METRIC(w, "eval_count", d->eval_count);
    w = METRIC(w, "eval_duration", d->eval_ns);
    return PUT_LIT(w, "}");
}

size_t ollama_token_line(char *dst, const struct ollama_stream *st, int64_t now_ns, uint32_t i)
{
    char *w = put_prefix(dst + RESP_FRAME_RESERVE, st, now_ns);
    w = PUT_LIT(w, " w");
    w = put_u64(w, i);
    if (st->chat)
        w = PUT_LIT(w, "\"},\"done\":false}\n");
    else
        w = PUT_LIT(w, "\",\"done\":false}\n");
    return resp_frame(dst, w);
}

size_t ollama_done_line(char *dst, const struct ollama_stream *st, int64_t now_ns,
                        const struct ollama_done *d)
{
    char *w = put_prefix(dst + RESP_FRAME_RESERVE, st, now_ns);
    w = put_end(w, st, d);
    w = PUT_LIT(w, "\n");
    return resp_frame(dst, w);
}

void ollama_answer_body(struct bbuf *b, const struct ollama_stream *st, int64_t now_ns,
                        const struct ollama_done *d, uint32_t first, uint32_t n)
{
    wend(b, wbegin(b, 128 + st->model_json_len) ? put_prefix(b->p + b->len, st, now_ns) : NULL);
    resp_words(b, first, n);
    wend(b, wbegin(b, 400) ? put_end(b->p + b->len, st, d) : NULL);
}

void ollama_error_body(struct bbuf *b, const char *msg, size_t msg_len)
{
    bbuf_puts(b, "{\"error\":\"");
    go_json_esc(b, msg, msg_len);
    bbuf_puts(b, "\"}");
}

/* A stable sha256-looking digest per model name. */
static void put_digest(struct bbuf *b, const struct resp_model *m)
{
    static const char hexd[] = "0123456789abcdef";
    uint64_t x = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < m->json_len; i++)
        x = (x ^ (unsigned char)m->json[i]) * 0x100000001b3ull;
    char hex[64];
    for (int k = 0; k < 4; k++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        for (int j = 0; j < 16; j++)
            hex[16 * k + j] = hexd[(z >> (60 - 4 * j)) & 15];
    }
    bbuf_put(b, hex, sizeof(hex));
}

static void put_time_b(struct bbuf *b, int64_t ns)
{
    char t[OLLAMA_TIME_MAX];
    bbuf_put(b, t, ollama_time(t, ns));
}

/* name, model, [modified_at,] size, digest, details: shared by tags and ps. */
static void model_entry(struct bbuf *b, const struct resp_model *m, int64_t modified_ns)
{
    bbuf_puts(b, "{\"name\":\"");
    bbuf_put(b, m->json, m->json_len);
    bbuf_puts(b, "\",\"model\":\"");
    bbuf_put(b, m->json, m->json_len);
    if (modified_ns) {
        bbuf_puts(b, "\",\"modified_at\":\"");
        put_time_b(b, modified_ns);
    }
    bbuf_puts(b, "\",\"size\":");
    bbuf_u64(b, OLLAMA_MODEL_SIZE);
    bbuf_puts(b, ",\"digest\":\"");
    put_digest(b, m);
    bbuf_puts(b, "\",\"details\":{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\","
                 "\"families\":[\"llama\"],\"parameter_size\":\"8.0B\","
                 "\"quantization_level\":\"Q4_0\"}");
}

void ollama_tags_body(struct bbuf *b, const struct resp_model *m, uint32_t n, int64_t modified_ns)
{
    bbuf_puts(b, "{\"models\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            bbuf_puts(b, ",");
        model_entry(b, &m[i], modified_ns);
        bbuf_puts(b, "}");
    }
    bbuf_puts(b, "]}");
}

void ollama_ps_body(struct bbuf *b, const struct resp_model *m, const uint32_t *order, uint32_t n,
                    const int64_t *expires_ns)
{
    bbuf_puts(b, "{\"models\":[");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = order[i];
        if (i)
            bbuf_puts(b, ",");
        model_entry(b, &m[k], 0);
        bbuf_puts(b, ",\"expires_at\":\"");
        put_time_b(b, expires_ns[k]);
        bbuf_puts(b, "\",\"size_vram\":");
        bbuf_u64(b, OLLAMA_MODEL_SIZE);
        bbuf_puts(b, "}");
    }
    bbuf_puts(b, "]}");
}

void ollama_version_body(struct bbuf *b)
{
    bbuf_puts(b, "{\"version\":\"" OLLAMA_VERSION "\"}");
}

/* --- request bodies ----------------------------------------------------- */

/* The JSON kind Go names in an UnmarshalTypeError. */
static const char *go_kind(const json_t *v)
{
    if (json_is_string(v))
        return "string";
    if (json_is_number(v))
        return "number";
    if (json_is_boolean(v))
        return "bool";
    if (json_is_array(v))
        return "array";
    return "object";
}

static int type_error(struct req_error *err, const json_t *v, const char *where,
                      const char *go_type)
{
    return req_fail(err, 400, "json: cannot unmarshal %s into Go struct field %s of type %s",
                    go_kind(v), where, go_type);
}

/* A field of Go type string (null leaves it empty). */
static int get_string(json_t *obj, const char *key, const char *where, const char **out,
                      size_t *len, struct req_error *err)
{
    json_t *v = json_object_get(obj, key);
    *out = "";
    *len = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return type_error(err, v, where, "string");
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* Go's quoteChar(): how a SyntaxError shows the byte it stopped at. */
static void go_quote_char(char *dst, size_t cap, unsigned char ch)
{
    if (ch == '\'')
        snprintf(dst, cap, "'\\''");
    else if (ch == '\n')
        snprintf(dst, cap, "'\\n'");
    else if (ch == '\t')
        snprintf(dst, cap, "'\\t'");
    else if (ch == '\r')
        snprintf(dst, cap, "'\\r'");
    else if (ch >= 0x20 && ch < 0x7f)
        snprintf(dst, cap, "'%c'", ch);
    else
        snprintf(dst, cap, "'\\x%02x'", ch);
}

/* What Go's json.Decoder says about a body jansson cannot read: jansson
 * names the token it stopped at ("... near 'x'") and ends its position
 * after it; its complaint maps to the state Go's scanner was in. */
static int syntax_error(const char *body, size_t len, const json_error_t *je, struct req_error *err)
{
    static const struct {
        const char *jansson;
        const char *go;
    } ctx[] = {
        {"string or '}' expected", "looking for beginning of object key string"},
        {"':' expected", "after object key"},
        {"'}' expected", "after object key:value pair"},
        {"']' expected", "after array element"},
        {"invalid escape", "in string escape code"},
        {"control character", "in string literal"},
    };
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len)
        return req_fail(err, 400, "missing request body");
    const char *near = strstr(je->text, "near '");
    if (strstr(je->text, "premature end of input") || strstr(je->text, "near end of file") || !near)
        return req_fail(err, 400, "unexpected EOF");
    size_t tok = strlen(near + 6);
    tok = tok > 0 ? tok - 1 : 0; /* less the closing quote */
    size_t pos = (size_t)je->position;
    unsigned char ch = pos >= tok && pos - tok < len ? (unsigned char)body[pos - tok] : '?';
    static const char ctl[] = "control character 0x";
    if (strncmp(je->text, ctl, sizeof(ctl) - 1) == 0)
        ch = (unsigned char)strtoul(je->text + sizeof(ctl) - 1, NULL, 16);
    const char *where = "looking for beginning of value";
    for (size_t k = 0; k < sizeof(ctx) / sizeof(ctx[0]); k++)
        if (strncmp(je->text, ctx[k].jansson, strlen(ctx[k].jansson)) == 0)
            where = ctx[k].go;
    char q[16];
    go_quote_char(q, sizeof(q), ch);
    return req_fail(err, 400, "invalid character %s %s", q, where);
}

static bool name_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* Ollama names without a tag mean ":latest". */
static size_t untagged(const char *s, size_t n)
{
    static const char tag[] = ":latest";
    size_t tl = sizeof(tag) - 1;
    return n > tl && memcmp(s + n - tl, tag, tl) == 0 ? n - tl : n;
}

static int find_model(const struct req_models *m, const char *name, size_t len)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (name_eq(m->names[i], m->lens[i], name, len))
            return (int)i;
    for (uint32_t i = 0; i < m->n; i++)
        if (name_eq(m->names[i], untagged(m->names[i], m->lens[i]), name, untagged(name, len)))
            return (int)i;
    return -1;
}

/* Go's %q of a model name, for the not-found message. */
static size_t go_quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < n && o + 6 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o++] = '"';
    return o;
}

static int check_model(json_t *root, const char *where, const struct req_models *models,
                       uint32_t *idx, struct req_error *err)
{
    const char *name;
    size_t len;
    if (get_string(root, "model", where, &name, &len, err) < 0)
        return -EINVAL;
    if (len == 0)
        return req_fail(err, 400, "model is required");
    int i = find_model(models, name, len);
    if (i < 0) {
        char q[600];
        size_t ql = go_quote(q, sizeof(q), name, len > 512 ? 512 : len);
        return req_fail(err, 404, "model %.*s not found, try pulling it first", (int)ql, q);
    }
    *idx = (uint32_t)i;
    return 0;
}

/* options.num_predict: at most this many tokens; <= 0 is no limit. */
static int num_predict(json_t *root, const char *where, uint32_t *out, struct req_error *err)
{
    json_t *o = json_object_get(root, "options");
    if (!o || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return type_error(err, o, where, "map[string]interface {}");
    json_t *v = json_object_get(o, "num_predict");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return req_fail(err, 500, "option \"num_predict\" must be of type integer");
    double n = json_number_value(v);
    if (n >= 1)
        *out = n >= (double)LLMSIM_MAX_TOKENS ? LLMSIM_MAX_TOKENS : (uint32_t)n;
    return 0;
}

static int get_stream(json_t *root, const char *where, bool *out, struct req_error *err)
{
    json_t *v = json_object_get(root, "stream");
    *out = true; /* Ollama streams unless told not to */
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return type_error(err, v, where, "bool");
    *out = json_is_true(v);
    return 0;
}

/* messages: each one's text counts, role and text go to the prefix cache, a
 * last assistant message is continued.  1 when there are none. */
static int chat_messages(json_t *root, struct req_gen *g, uint64_t *bytes, struct req_error *err)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs))
        return 1;
    if (!json_is_array(msgs))
        return type_error(err, msgs, "ChatRequest.messages", "[]api.Message");
    struct req_blockhash bh;
    req_blocks_init(&bh, g);
    size_t i;
    json_t *m;
    const char *role = "", *content = "";
    json_array_foreach (msgs, i, m) {
        if (!json_is_object(m))
            return type_error(err, m, "ChatRequest.messages", "api.Message");
        size_t rl, cl;
        if (get_string(m, "role", "Message.messages.role", &role, &rl, err) < 0 ||
            get_string(m, "content", "Message.messages.content", &content, &cl, err) < 0)
            return -EINVAL;
        *bytes += cl;
        req_blocks_feed(&bh, role, rl);
        req_blocks_feed(&bh, "\n", 1);
        req_blocks_feed(&bh, content, cl);
        req_blocks_feed(&bh, "\n", 1);
    }
    if (json_array_size(msgs) == 0)
        return 1;
    /* Ollama continues a final assistant message instead of answering it. */
    if (strcmp(role, "assistant") == 0)
        g->first_word = req_words_in(content);
    return 0;
}

/* prompt (+ system, suffix and context ids): 1 when the prompt is empty. */
static int generate_prompt(json_t *root, struct req_gen *g, uint64_t *bytes, struct req_error *err)
{
    const char *prompt, *system, *suffix;
    size_t pl, sl, xl;
    if (get_string(root, "prompt", "GenerateRequest.prompt", &prompt, &pl, err) < 0 ||
        get_string(root, "system", "GenerateRequest.system", &system, &sl, err) < 0 ||
        get_string(root, "suffix", "GenerateRequest.suffix", &suffix, &xl, err) < 0)
        return -EINVAL;
    json_t *ctx = json_object_get(root, "context");
    if (ctx && !json_is_null(ctx)) {
        if (!json_is_array(ctx))
            return type_error(err, ctx, "GenerateRequest.context", "[]int");
        size_t i;
        json_t *id;
        json_array_foreach (ctx, i, id) {
            if (!json_is_integer(id))
                return type_error(err, id, "GenerateRequest.context", "int");
            *bytes += 4; /* a token id is one token */
        }
    }
    if (pl == 0)
        return 1;
    *bytes += pl + sl + xl;
    struct req_blockhash bh;
    req_blocks_init(&bh, g);
    req_blocks_feed(&bh, system, sl);
    req_blocks_feed(&bh, prompt, pl);
    g->first_word = req_words_in(prompt);
    return 0;
}

int ollama_parse(bool chat, const char *body, size_t len, const struct req_models *models,
                 uint32_t max_model_len, struct req_gen *g, struct req_error *err)
{
    memset(g, 0, sizeof(*g));
    const char *type = chat ? "ChatRequest" : "GenerateRequest";
    char where[48];
    json_error_t je;
    /* Go's json.Decoder reads one value and ignores what follows it. */
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
    if (!root)
        return syntax_error(body, len, &je, err);
    int rc = -EINVAL;
    uint64_t bytes = 0;
    if (!json_is_object(root) && !json_is_null(root)) {
        req_fail(err, 400, "json: cannot unmarshal %s into Go value of type api.%s", go_kind(root),
                 type);
        goto out;
    }
    snprintf(where, sizeof(where), "%s.stream", type);
    if (get_stream(root, where, &g->stream, err) < 0)
        goto out;
    snprintf(where, sizeof(where), "%s.model", type);
    if (check_model(root, where, models, &g->model, err) < 0)
        goto out;
    snprintf(where, sizeof(where), "%s.options", type);
    if (num_predict(root, where, &g->max_tokens, err) < 0)
        goto out;
    rc = chat ? chat_messages(root, g, &bytes, err) : generate_prompt(root, g, &bytes, err);
    if (rc != 0)
        goto out;
    uint64_t pt = bytes / 4;
    /* Ollama truncates a prompt to the context instead of refusing it. */
    if (pt >= max_model_len)
        pt = max_model_len - 1;
    g->prompt_tokens = pt < 1 ? 1 : (uint32_t)pt;
    uint32_t room = max_model_len - g->prompt_tokens;
    if (g->max_tokens > room)
        g->max_tokens = room;
out:
    json_decref(root);
    return rc;
}
