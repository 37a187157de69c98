/*
 * libFuzzer target for dataplane/continuation: the backend's SSE events it
 * reads the answer's text from (outside bytes), and the continuation request
 * it builds from the client's body (outside bytes too).  Checks: the text it
 * keeps is exactly the content strings of the events, in order; a built
 * request is valid JSON whose last message (chat) is the assistant's text or
 * whose prompt (completions) ends with it, whose max_tokens shrank by the
 * tokens sent, and whose head's Content-Length is the body's length.  Any
 * disagreement aborts.
 *
 * Input: byte 0 picks chat or completions and the tokens sent; then events
 * and a body, separated by the first "\n#\n".
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/continuation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* The reference: each "data:" line's JSON, parsed on its own. */
static void expect_text(bool chat, const char *ev, size_t len, char **out, size_t *olen)
{
    const char *p = ev, *end = ev + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (eol - p > 6 && memcmp(p, "data:", 5) == 0) {
            const char *d = p[5] == ' ' ? p + 6 : p + 5;
            json_t *r = json_loadb(d, (size_t)(eol - d), 0, NULL);
            json_t *c0 = json_array_get(json_object_get(r, "choices"), 0);
            json_t *s = chat ? json_object_get(json_object_get(c0, "delta"), "content")
                             : json_object_get(c0, "text");
            if (json_is_string(s)) {
                size_t n = json_string_length(s);
                *out = realloc(*out, *olen + n + 1);
                CHECK(*out);
                memcpy(*out + *olen, json_string_value(s), n);
                *olen += n;
            }
            json_decref(r);
        }
        p = eol + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool chat = data[0] & 1;
    uint32_t sent = data[0] >> 1;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memmem(in, n, "\n#\n", 3);
    size_t evlen = sep ? (size_t)(sep - in) : n;
    const char *body = sep ? sep + 3 : in + n;
    size_t blen = sep ? n - evlen - 3 : 0;

    struct cont_text t = {0};
    /* events one by one (split at blank lines), as the relay hands them */
    const char *p = in, *end = in + evlen;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
        size_t k = e ? (size_t)(e - p) + 2 : (size_t)(end - p);
        CHECK(cont_note(&t, chat, p, k) == 0);
        p += k;
    }
    char *want = NULL;
    size_t wlen = 0;
    p = in;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
        size_t k = e ? (size_t)(e - p) + 2 : (size_t)(end - p);
        expect_text(chat, p, k, &want, &wlen);
        p += k;
    }
    CHECK(t.len == wlen && (!wlen || memcmp(t.p, want, wlen) == 0));

    static const char head[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\n"
                               "Content-Length: 99\r\n\r\n";
    char *nh = NULL, *nb = NULL;
    uint32_t hl = 0, hc = 0;
    size_t bl = 0;
    int rc =
        cont_request(&t, chat, sent, body, blen, head, sizeof head - 1, &nh, &hl, &hc, &nb, &bl);
    if (rc == 0) {
        json_t *orig = json_loadb(body, blen, 0, NULL);
        json_t *root = json_loadb(nb, bl, 0, NULL);
        CHECK(root && json_is_object(root));
        if (chat) {
            json_t *msgs = json_object_get(root, "messages");
            json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
            json_t *c = json_object_get(last, "content");
            CHECK(json_is_string(c) && json_string_length(c) == t.len);
            CHECK(!t.len || memcmp(json_string_value(c), t.p, t.len) == 0);
            CHECK(json_is_true(json_object_get(root, "continue_final_message")));
        } else {
            json_t *pr = json_object_get(root, "prompt");
            size_t pl = json_string_length(pr);
            CHECK(json_is_string(pr) && pl >= t.len);
            CHECK(!t.len || memcmp(json_string_value(pr) + pl - t.len, t.p, t.len) == 0);
        }
        json_t *mt = json_object_get(orig, "max_tokens");
        if (json_is_integer(mt))
            CHECK(json_integer_value(json_object_get(root, "max_tokens")) ==
                  json_integer_value(mt) - (json_int_t)sent);
        char cl[64];
        int k = snprintf(cl, sizeof cl, "Content-Length: %zu\r\n\r\n", bl);
        CHECK(hl >= (uint32_t)k && memcmp(nh + hl - (uint32_t)k, cl, (size_t)k) == 0);
        CHECK(memmem(nh, hl, "Content-Length:", 15) == nh + hl - (uint32_t)k);
        json_decref(root);
        json_decref(orig);
        free(nh);
        free(nb);
    }
    free(want);
    cont_text_free(&t);
    return 0;
}
