/*
 * request — URL parsing and the request bytes of a run (see request.h).
 */
#include "perf/loadgen/request.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define BODY_FILE_MAX ((size_t)64 * 1024 * 1024)

int request_parse_url(const char *s, struct request_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    if (strncasecmp(s, "https://", 8) == 0) {
        snprintf(err, errlen, "https is not supported (llmload speaks cleartext HTTP/1.1)");
        return -EINVAL;
    }
    if (strncasecmp(s, "http://", 7) != 0) {
        snprintf(err, errlen, "URL must start with http://");
        return -EINVAL;
    }
    const char *a = s + 7;
    const char *slash = strchr(a, '/');
    size_t alen = slash ? (size_t)(slash - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(u->authority)) {
        snprintf(err, errlen, "bad host in URL");
        return -EINVAL;
    }
    memcpy(u->authority, a, alen);
    const char *port = NULL;
    size_t hlen;
    const char *h = a;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (!rb) {
            snprintf(err, errlen, "bad IPv6 literal in URL");
            return -EINVAL;
        }
        h = a + 1;
        hlen = (size_t)(rb - h);
        if (rb + 1 < a + alen) {
            if (rb[1] != ':') {
                snprintf(err, errlen, "bad host in URL");
                return -EINVAL;
            }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        snprintf(err, errlen, "bad host in URL");
        return -EINVAL;
    }
    memcpy(u->host, h, hlen);
    if (port) {
        size_t plen = (size_t)(a + alen - port);
        unsigned long v = 0;
        if (plen == 0 || plen > 5) {
            snprintf(err, errlen, "bad port in URL");
            return -EINVAL;
        }
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9') {
                snprintf(err, errlen, "bad port in URL");
                return -EINVAL;
            }
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535) {
            snprintf(err, errlen, "bad port in URL");
            return -EINVAL;
        }
        snprintf(u->port, sizeof(u->port), "%lu", v);
    } else {
        memcpy(u->port, "80", 3);
    }
    if (slash) {
        size_t plen = strlen(slash);
        if (plen >= sizeof(u->path)) {
            snprintf(err, errlen, "URL path too long");
            return -EINVAL;
        }
        for (size_t i = 0; i < plen; i++) {
            unsigned char c = (unsigned char)slash[i];
            if (c <= 0x20 || c >= 0x7f) {
                snprintf(err, errlen, "URL path has a space or control character");
                return -EINVAL;
            }
        }
        memcpy(u->path, slash, plen + 1);
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > BODY_FILE_MAX) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, BODY_FILE_MAX);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b || fread(b, 1, n, f) != n) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return b;
}

/* The prompt: <n> bytes of words, or a short sentence. */
static char *make_prompt(long long n)
{
    static const char def[] = "Write a short story about a lighthouse keeper.";
    static const char words[] = "the quick brown fox jumps over the lazy dog ";
    size_t len = n < 0 ? sizeof(def) - 1 : (size_t)n;
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    if (n < 0) {
        memcpy(p, def, len);
    } else {
        for (size_t i = 0; i < len; i++)
            p[i] = words[i % (sizeof(words) - 1)];
    }
    p[len] = '\0';
    return p;
}

static char *make_body(const struct request_opts *o, size_t *len)
{
    char *prompt = make_prompt(o->prompt_bytes);
    if (!prompt)
        return NULL;
    json_t *b = json_object();
    json_object_set_new(b, "model", json_string(o->model));
    if (o->completions) {
        json_object_set_new(b, "prompt", json_string(prompt));
    } else {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("user"));
        json_object_set_new(msg, "content", json_string(prompt));
        json_t *msgs = json_array();
        json_array_append_new(msgs, msg);
        json_object_set_new(b, "messages", msgs);
    }
    if (o->max_tokens >= 0)
        json_object_set_new(b, "max_tokens", json_integer(o->max_tokens));
    json_object_set_new(b, "stream", json_boolean(o->stream));
    if (o->stream && o->usage) {
        json_t *so = json_object();
        json_object_set_new(so, "include_usage", json_true());
        json_object_set_new(b, "stream_options", so);
    }
    free(prompt);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (s)
        *len = strlen(s);
    return s;
}

/* Is <h> ("Name: value") a field named <name>? */
static bool header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

static bool user_sets(const struct request_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_headers; i++)
        if (header_is(o->headers[i], name))
            return true;
    return false;
}

struct out {
    char *b;
    size_t len, cap;
};

static int put(struct out *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->b, cap);
        if (!b)
            return -ENOMEM;
        w->b = b;
        w->cap = cap;
    }
    memcpy(w->b + w->len, s, n);
    w->len += n;
    w->b[w->len] = '\0';
    return 0;
}

static int puts_(struct out *w, const char *s)
{
    return put(w, s, strlen(s));
}

/* "Name: value" with a token for a name and no line break anywhere. */
static bool header_ok(const char *h)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return false;
    for (const char *p = h; p < colon; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && !strchr(tchar, *p))
            return false;
    }
    return true;
}

int request_build(const struct request_opts *o, char **out, size_t *len, char *err, size_t errlen)
{
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *h = o->headers[i];
        if (!header_ok(h)) {
            snprintf(err, errlen, "bad header \"%s\" (want 'Name: value')", h);
            return -EINVAL;
        }
        if (header_is(h, "Content-Length") || header_is(h, "Transfer-Encoding")) {
            snprintf(err, errlen, "llmload sets the body framing itself; drop -H '%s'", h);
            return -EINVAL;
        }
    }
    size_t blen = 0;
    char *body = o->body_file ? read_file(o->body_file, &blen, err, errlen) : make_body(o, &blen);
    if (!body) {
        if (!o->body_file)
            snprintf(err, errlen, "out of memory building the body");
        return o->body_file ? -EINVAL : -ENOMEM;
    }
    struct out w = {0};
    char num[32];
    int rc = 0;
    /* POST / is never meant: a bare "/" takes the default endpoint too. */
    bool no_path = o->url->path[0] == '\0' || strcmp(o->url->path, "/") == 0;
    const char *path = no_path ? o->path : o->url->path;
    rc |= puts_(&w, "POST ");
    rc |= puts_(&w, path);
    rc |= puts_(&w, " HTTP/1.1\r\n");
    if (!user_sets(o, "Host")) {
        rc |= puts_(&w, "Host: ");
        rc |= puts_(&w, o->url->authority);
        rc |= puts_(&w, "\r\n");
    }
    if (!user_sets(o, "User-Agent"))
        rc |= puts_(&w, "User-Agent: llmload/0.1\r\n");
    if (!user_sets(o, "Content-Type"))
        rc |= puts_(&w, "Content-Type: application/json\r\n");
    if (!user_sets(o, "Accept"))
        rc |=
            puts_(&w, o->stream ? "Accept: text/event-stream\r\n" : "Accept: application/json\r\n");
    snprintf(num, sizeof(num), "%zu", blen);
    rc |= puts_(&w, "Content-Length: ");
    rc |= puts_(&w, num);
    rc |= puts_(&w, "\r\n");
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        rc |= put(&w, h, (size_t)(colon - h));
        rc |= puts_(&w, ": ");
        rc |= puts_(&w, v);
        rc |= puts_(&w, "\r\n");
    }
    rc |= puts_(&w, "\r\n");
    rc |= put(&w, body, blen);
    free(body);
    if (rc) {
        free(w.b);
        snprintf(err, errlen, "out of memory building the request");
        return -ENOMEM;
    }
    *out = w.b;
    *len = w.len;
    return 0;
}
