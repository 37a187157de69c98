/* route — see route.h. */
#include "dataplane/route.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/api_error.h"
#include "dataplane/oai_content.h"
#include "shared/sbuf.h"

struct route_def {
    const char *path;
    const char *method;
    enum route route;
};

static const struct route_def routes[] = {
    {"/v1/chat/completions", "POST", ROUTE_CHAT},
    {"/v1/completions", "POST", ROUTE_COMPLETIONS},
    {"/v1/models", "GET", ROUTE_MODELS},
    {"/healthz", "GET", ROUTE_HEALTHZ},
    {"/v1/stream", "GET", ROUTE_WS},
    {"/api/chat", "POST", ROUTE_OLLAMA_CHAT},
    {"/api/generate", "POST", ROUTE_OLLAMA_GENERATE},
};

static bool eq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

enum route route_match(const char *method, size_t method_len, const char *path, size_t path_len,
                       bool *method_ok, const char **allow)
{
    /* A trailing slash is the same resource: clients and SDKs add one. */
    if (path_len > 1 && path[path_len - 1] == '/')
        path_len--;
    static const char streams[] = "/v1/streams/";
    if (path_len > sizeof streams - 1 && memcmp(path, streams, sizeof streams - 1) == 0) {
        /* the stream id follows; resume.c reads it */
        *allow = "GET, DELETE";
        *method_ok = eq(method, method_len, "GET") || eq(method, method_len, "DELETE");
        return ROUTE_RESUME;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!eq(path, path_len, routes[i].path))
            continue;
        *allow = routes[i].method;
        *method_ok = eq(method, method_len, routes[i].method);
        return routes[i].route;
    }
    *method_ok = false;
    *allow = NULL;
    return ROUTE_NONE;
}

/* FNV-1a over the prompt's first <left> bytes as (role, text) pairs. */
struct prefix {
    uint64_t h;
    size_t left;
};

static void prefix_feed(struct prefix *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n && p->left; i++, p->left--)
        p->h = (p->h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
}

/* oai_content's callback: the text into the prefix hash. */
static void prefix_text(void *p, const char *s, size_t n)
{
    prefix_feed(p, s, n);
}

static uint64_t prefix_hash(enum route r, json_t *root, const char *model, size_t bytes)
{
    struct prefix p = {.h = 0xcbf29ce484222325ULL, .left = SIZE_MAX};
    prefix_feed(&p, model, strlen(model) + 1); /* the model, then the prompt's bytes */
    p.left = bytes;
    if (r == ROUTE_CHAT || r == ROUTE_OLLAMA_CHAT) {
        size_t i;
        json_t *m;
        json_array_foreach (json_object_get(root, "messages"), i, m) {
            json_t *role = json_object_get(m, "role");
            if (json_is_string(role))
                prefix_feed(&p, json_string_value(role), json_string_length(role));
            prefix_feed(&p, "\n", 1);
            oai_content_text(json_object_get(m, "content"), prefix_text, &p);
            prefix_feed(&p, "\n", 1);
        }
    } else {
        json_t *pr = json_object_get(root, "prompt");
        oai_content_text(json_is_array(pr) ? json_array_get(pr, 0) : pr, prefix_text, &p);
    }
    return p.h ? p.h : 1;
}

int route_validate(enum route r, const char *body, size_t len, char *model, size_t model_cap,
                   bool *is_stream, uint32_t *max_tokens, char *detail, size_t detail_cap)
{
    return route_validate_ex(r, body, len, model, model_cap, is_stream, max_tokens, detail,
                             detail_cap, 0, NULL);
}

int route_validate_ex(enum route r, const char *body, size_t len, char *model, size_t model_cap,
                      bool *is_stream, uint32_t *max_tokens, char *detail, size_t detail_cap,
                      size_t prefix_bytes, uint64_t *prefix)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(detail, detail_cap, "request body is not valid JSON: %s at line %d column %d",
                 jerr.text, jerr.line, jerr.column);
        return API_ERR_INVALID_JSON;
    }
    int ret = 0;
    if (!json_is_object(root)) {
        snprintf(detail, detail_cap, "request body must be a JSON object");
        ret = API_ERR_INVALID_JSON;
        goto out;
    }
    json_t *m = json_object_get(root, "model");
    if (!m) {
        snprintf(detail, detail_cap, "'model' is required");
        ret = API_ERR_MISSING_FIELD;
        goto out;
    }
    if (!json_is_string(m) || json_string_length(m) == 0) {
        snprintf(detail, detail_cap, "'model' must be a non-empty string");
        ret = API_ERR_INVALID_FIELD;
        goto out;
    }
    snprintf(model, model_cap, "%s", json_string_value(m));
    if (r == ROUTE_OLLAMA_GENERATE) {
        /* Ollama loads the model when the prompt is absent or empty. */
        json_t *p = json_object_get(root, "prompt");
        if (p && !json_is_string(p)) {
            snprintf(detail, detail_cap, "'prompt' must be a string");
            ret = API_ERR_INVALID_FIELD;
            goto out;
        }
    } else if (r == ROUTE_CHAT || r == ROUTE_OLLAMA_CHAT) {
        json_t *msgs = json_object_get(root, "messages");
        if (!msgs) {
            snprintf(detail, detail_cap, "'messages' is required");
            ret = API_ERR_MISSING_FIELD;
            goto out;
        }
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            snprintf(detail, detail_cap, "'messages' must be a non-empty array");
            ret = API_ERR_INVALID_FIELD;
            goto out;
        }
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (!p) {
            snprintf(detail, detail_cap, "'prompt' is required");
            ret = API_ERR_MISSING_FIELD;
            goto out;
        }
        if (!json_is_string(p) && !json_is_array(p)) {
            snprintf(detail, detail_cap, "'prompt' must be a string or an array");
            ret = API_ERR_INVALID_FIELD;
            goto out;
        }
    }
    json_t *s = json_object_get(root, "stream");
    if (s && !json_is_boolean(s) && !json_is_null(s)) {
        snprintf(detail, detail_cap, "'stream' must be a boolean");
        ret = API_ERR_INVALID_FIELD;
        goto out;
    }
    /* Ollama streams unless told not to; OpenAI the other way round. */
    bool native = r == ROUTE_OLLAMA_CHAT || r == ROUTE_OLLAMA_GENERATE;
    *is_stream = native ? !s || json_is_null(s) || json_is_true(s) : s && json_is_true(s);
    /* The budget reserves what the request may use, so the bound must be a
     * number it can trust (vLLM refuses anything below 1 as well). */
    *max_tokens = 0;
    static const char *const bounds[] = {"max_tokens", "max_completion_tokens"};
    json_t *opts = json_object_get(root, "options");
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
        /* Ollama's bound is options.num_predict (-1 or absent: none). */
        json_t *mt = native ? (i ? NULL : json_object_get(opts, "num_predict"))
                            : json_object_get(root, bounds[i]);
        if (native && json_is_integer(mt) && json_integer_value(mt) < 0)
            continue;
        if (!mt || json_is_null(mt))
            continue;
        json_int_t v = json_is_integer(mt) ? json_integer_value(mt) : 0;
        if (v < 1) {
            snprintf(detail, detail_cap, "'%s' must be a positive integer",
                     native ? "options.num_predict" : bounds[i]);
            ret = API_ERR_INVALID_FIELD;
            goto out;
        }
        uint32_t u = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        if (!*max_tokens || u < *max_tokens)
            *max_tokens = u;
    }
    if (prefix)
        *prefix = prefix_bytes ? prefix_hash(r, root, model, prefix_bytes) : 0;
out:
    json_decref(root);
    return ret;
}

/* Fields never forwarded as the client sent them. */
static bool drop_field(const struct h1_request *req, const struct h1_header *h)
{
    static const char *const drop[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "host",
        "content-length",
        "expect",
        "accept-encoding",
        "x-request-id",
        "proxy-authorization",
    };
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return true;
    /* Fields the client declared hop-by-hop by listing them in Connection. */
    return h1_connection_names(req->headers, req->n_headers, h->name, h->name_len);
}

#define HEAD_MAX (1u << 20)

int route_build_head(const struct h1_request *req, const struct config_backend *be,
                     bool drop_authorization, const char *reqid, size_t reqid_len, char **out,
                     uint32_t *out_len, uint32_t *out_cap)
{
    struct sbuf b;
    sbuf_init(&b, HEAD_MAX);
    sbuf_put(&b, req->method, req->method_len);
    sbuf_puts(&b, " ");
    sbuf_put(&b, req->path, req->path_len);
    if (req->query) {
        sbuf_puts(&b, "?");
        sbuf_put(&b, req->query, req->query_len);
    }
    sbuf_printf(&b, " HTTP/1.1\r\nHost: %s", be->host);
    if (be->port != 80)
        sbuf_printf(&b, ":%u", (unsigned)be->port);
    sbuf_puts(&b, "\r\n");
    for (uint32_t i = 0; i < req->n_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        if (drop_field(req, h))
            continue;
        if (drop_authorization && h->name_len == 13 &&
            strncasecmp(h->name, "authorization", 13) == 0)
            continue;
        sbuf_put(&b, h->name, h->name_len);
        sbuf_puts(&b, ": ");
        sbuf_put(&b, h->value, h->value_len);
        sbuf_puts(&b, "\r\n");
    }
    sbuf_puts(&b, "X-Request-Id: ");
    sbuf_put(&b, reqid, reqid_len);
    if (sbuf_puts(&b, "\r\n")) {
        sbuf_free(&b);
        return -ENOMEM;
    }
    size_t len, cap;
    *out = sbuf_take(&b, &len, &cap);
    *out_len = (uint32_t)len;
    *out_cap = (uint32_t)cap;
    return 0;
}

/* Replaces <n> bytes at <off> of the head by <s>. */
static int head_splice(char **head, uint32_t *len, uint32_t *cap, size_t off, size_t n,
                       const char *s, size_t slen)
{
    size_t nlen = *len - n + slen;
    if (nlen > *cap) {
        char *nb = realloc(*head, nlen);
        if (!nb)
            return -ENOMEM;
        *head = nb;
        *cap = (uint32_t)nlen;
    }
    memmove(*head + off + slen, *head + off + n, *len - off - n);
    memcpy(*head + off, s, slen);
    *len = (uint32_t)nlen;
    return 0;
}

int route_set_target(char **head, uint32_t *len, uint32_t *cap, const char *target)
{
    char *sp = memchr(*head, ' ', *len);
    char *eol = memmem(*head, *len, "\r\n", 2);
    if (!sp || !eol || sp > eol)
        return -EINVAL;
    char *sp2 = memchr(sp + 1, ' ', (size_t)(eol - sp - 1));
    if (!sp2)
        return -EINVAL;
    size_t off = (size_t)(sp + 1 - *head);
    return head_splice(head, len, cap, off, (size_t)(sp2 - sp - 1), target, strlen(target));
}

int route_get_target(const char *head, uint32_t len, char *out, size_t cap)
{
    const char *sp = memchr(head, ' ', len);
    const char *eol = memmem(head, len, "\r\n", 2);
    const char *sp2 = sp && eol && sp < eol ? memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) : NULL;
    if (!sp2 || (size_t)(sp2 - sp - 1) >= cap)
        return -EINVAL;
    memcpy(out, sp + 1, (size_t)(sp2 - sp - 1));
    out[sp2 - sp - 1] = '\0';
    return 0;
}

int route_set_length(char **head, uint32_t *len, uint32_t *cap, uint64_t body_len)
{
    /* route_finish_head wrote it last: "Content-Length: N\r\n\r\n" */
    char *cl = NULL;
    for (char *p = *head; (p = memmem(p, *len - (size_t)(p - *head), "\r\nContent-Length: ", 18));
         p += 18)
        cl = p;
    if (!cl)
        return -EINVAL;
    size_t off = (size_t)(cl + 18 - *head);
    char *end = memmem(*head + off, *len - off, "\r\n", 2);
    if (!end)
        return -EINVAL;
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)body_len);
    return head_splice(head, len, cap, off, (size_t)(end - *head) - off, num, (size_t)n);
}

int route_set_host(char **head, uint32_t *len, uint32_t *cap, const struct config_backend *be)
{
    /* route_build_head put it right after the request line */
    char *line = memmem(*head, *len, "\r\nHost: ", 8);
    if (!line)
        return -EINVAL;
    char *val = line + 8;
    char *end = memmem(val, *len - (uint32_t)(val - *head), "\r\n", 2);
    if (!end)
        return -EINVAL;
    char host[CONFIG_HOST_MAX + 8];
    int n = be->port != 80 ? snprintf(host, sizeof host, "%s:%u", be->host, (unsigned)be->port)
                           : snprintf(host, sizeof host, "%s", be->host);
    if (n < 0 || (size_t)n >= sizeof host)
        return -EINVAL;
    size_t old = (size_t)(end - val), off = (size_t)(val - *head);
    if ((size_t)n == old && memcmp(val, host, old) == 0)
        return 0;
    return head_splice(head, len, cap, off, old, host, (size_t)n);
}

int route_finish_head(char **head, uint32_t *len, uint32_t *cap, bool has_body, uint64_t body_len)
{
    struct sbuf b = {.p = *head, .len = *len, .cap = *cap, .max = HEAD_MAX + 64};
    if (has_body)
        sbuf_printf(&b, "Content-Length: %llu\r\n\r\n", (unsigned long long)body_len);
    else
        sbuf_puts(&b, "\r\n");
    size_t l, c;
    int err = b.err;
    *head = sbuf_take(&b, &l, &c);
    *len = (uint32_t)l;
    *cap = (uint32_t)c;
    return err;
}

bool route_reqid_valid(const char *id, size_t len)
{
    if (len == 0 || len > REQID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}
