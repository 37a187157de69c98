/*
 * libFuzzer target for h1_parse_request.  Besides crashes it looks for logic
 * errors: everything returned must point into the head, every accepted head
 * must obey the rules the parser claims to enforce, and the answer for a
 * prefix of the input must agree with the answer for the whole input (the
 * parser is re-run on a growing buffer, so a disagreement is a real bug).
 * The first input byte picks the limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/h1_parser.h"

#define NHDR 32

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

/* Parses a private copy of buf[0..n) so that ASan sees any read past n. */
static int parse_copy(const char *buf, size_t n, const struct h1_limits *lim)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy);
    memcpy(copy, buf, n);
    struct h1_header h[NHDR];
    struct h1_request r;
    r.headers = h;
    int rc = h1_parse_request(copy, n, lim, &r);
    free(copy);
    return rc;
}

static void check_ok(const char *buf, int rc, const struct h1_limits *lim,
                     const struct h1_request *r)
{
    size_t n = (size_t)rc;
    const uint8_t *u = (const uint8_t *)buf;
    CHECK(r->head_len == n && n <= lim->max_header_bytes);
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '\n')
            CHECK(i > 0 && u[i - 1] == '\r');
        if (u[i] == '\r')
            CHECK(i + 1 < n && u[i + 1] == '\n');
    }
    CHECK(r->method_len > 0 && inside(r->method, r->method_len, buf, n));
    for (uint32_t i = 0; i < r->method_len; i++)
        CHECK(is_tchar((uint8_t)r->method[i]));
    CHECK(r->target_len > 0 && inside(r->target, r->target_len, buf, n));
    for (uint32_t i = 0; i < r->target_len; i++)
        CHECK(r->target[i] > 0x20 && r->target[i] < 0x7f);
    CHECK(r->path_len > 0 && (r->path[0] == '/' || r->path[0] == '*'));
    if (!inside(r->path, r->path_len, r->target, r->target_len))
        CHECK(r->path_len == 1 && r->path[0] == '/'); /* absolute-form without a path */
    if (r->query)
        CHECK(inside(r->query, r->query_len, r->target, r->target_len) && r->query[-1] == '?');
    CHECK(r->version_minor <= 1);
    CHECK(r->n_headers <= lim->max_headers);

    uint32_t hosts = 0;
    bool close = false, keep_alive = false;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct h1_header *h = &r->headers[i];
        CHECK(h->name_len > 0 && inside(h->name, h->name_len, buf, n));
        CHECK(inside(h->value, h->value_len, buf, n));
        for (uint32_t k = 0; k < h->name_len; k++)
            CHECK(is_tchar((uint8_t)h->name[k]));
        for (uint32_t k = 0; k < h->value_len; k++) {
            uint8_t c = (uint8_t)h->value[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value_len) {
            CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            CHECK(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
        }
        if (h->name_len == 4 && h1_header_find(h, 1, "host"))
            hosts++;
        if (h1_header_find(h, 1, "Connection")) {
            close |= h1_list_has_token(h->value, h->value_len, "close");
            keep_alive |= h1_list_has_token(h->value, h->value_len, "keep-alive");
        }
    }
    CHECK(hosts <= 1);
    if (r->version_minor == 1)
        CHECK(hosts == 1);
    bool ka = r->version_minor == 1 ? !close : keep_alive && !close;
    CHECK(!!(r->flags & H1_F_KEEP_ALIVE) == ka);
    CHECK(!(r->flags & (H1_F_CLOSE_DELIMITED | H1_F_NO_BODY)));
    CHECK((r->flags & (H1_F_CHUNKED | H1_F_CONTENT_LENGTH)) !=
          (H1_F_CHUNKED | H1_F_CONTENT_LENGTH));
    const struct h1_header *cl = h1_header_find(r->headers, r->n_headers, "content-length");
    const struct h1_header *te = h1_header_find(r->headers, r->n_headers, "transfer-encoding");
    CHECK(!!(r->flags & H1_F_CONTENT_LENGTH) == (cl != NULL));
    CHECK(!!(r->flags & H1_F_CHUNKED) == (te != NULL));
    if (r->flags & H1_F_CONTENT_LENGTH)
        CHECK(r->content_length <= lim->max_body);
    else
        CHECK(r->content_length == 0);
    if (r->flags & H1_F_CHUNKED)
        CHECK(r->version_minor == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    struct h1_limits lim = {.max_request_line = 8192,
                            .max_header_bytes = 16384,
                            .max_headers = NHDR,
                            .max_body = 1u << 20};
    if (sel & 1) {
        lim.max_request_line = 16 + (sel >> 4);
        lim.max_header_bytes = 24 + (sel >> 1) * 2;
        lim.max_headers = (sel >> 2) & 7;
        lim.max_body = sel >> 3;
    }

    struct h1_header h[NHDR];
    struct h1_request r;
    r.headers = h;
    int rc = h1_parse_request(buf, len, &lim, &r);
    CHECK(rc <= (int)len);
    CHECK(rc > -H1_ERR__COUNT);
    CHECK(r.headers == h);
    if (rc < 0) {
        int st = h1_err_status(rc);
        CHECK(st >= 400 && st < 600 && st != 502);
        CHECK(rc != -H1_ERR_BAD_STATUS && rc != -H1_ERR_BAD_CHUNK);
    }
    if (rc > 0) {
        check_ok(buf, rc, &lim, &r);
        /* The head alone parses the same; nothing after it was looked at. */
        CHECK(parse_copy(buf, (size_t)rc, &lim) == rc);
    }

    /* Prefixes: need more bytes, or the very same verdict. */
    size_t upto = rc > 0 ? (size_t)rc : len;
    size_t stride = upto <= 256 ? 1 : upto / 61 + 1;
    for (size_t k = 0; k < upto; k += stride) {
        int p = parse_copy(buf, k, &lim);
        CHECK(p == 0 || (rc < 0 && p == rc));
    }
    if (upto > 0) {
        int p = parse_copy(buf, upto - 1, &lim);
        CHECK(p == 0 || (rc < 0 && p == rc));
    }
    return 0;
}
