/*
 * libFuzzer target for h1_parse_response.  Checks, besides crashes, that
 * every result points into the head, that exactly one body framing is chosen
 * and agrees with the fields, and that a prefix of the input never gets a
 * verdict that contradicts the whole input.  The first input byte picks the
 * limits and whether the request was HEAD.
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

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static int parse_copy(const char *buf, size_t n, const struct h1_limits *lim, bool head)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy);
    memcpy(copy, buf, n);
    struct h1_header h[NHDR];
    struct h1_response r;
    r.headers = h;
    int rc = h1_parse_response(copy, n, lim, head, &r);
    free(copy);
    return rc;
}

static void check_ok(const char *buf, int rc, const struct h1_limits *lim, bool head,
                     const struct h1_response *r)
{
    size_t n = (size_t)rc;
    CHECK(r->head_len == n && n <= lim->max_header_bytes);
    CHECK(n >= 2 && buf[n - 1] == '\n');
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    CHECK(r->status >= 100 && r->status <= 999 && r->version_minor <= 1);
    CHECK(inside(r->reason, r->reason_len, buf, n));
    CHECK(r->n_headers <= lim->max_headers);
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct h1_header *h = &r->headers[i];
        CHECK(h->name_len > 0 && inside(h->name, h->name_len, buf, n));
        CHECK(inside(h->value, h->value_len, buf, n));
        CHECK(memchr(h->value, '\r', h->value_len) == NULL);
        CHECK(memchr(h->value, '\n', h->value_len) == NULL);
        CHECK(memchr(h->value, 0, h->value_len) == NULL);
    }
    uint32_t framing =
        r->flags & (H1_F_NO_BODY | H1_F_CHUNKED | H1_F_CONTENT_LENGTH | H1_F_CLOSE_DELIMITED);
    CHECK(framing != 0 && (framing & (framing - 1)) == 0); /* exactly one */
    CHECK(!(r->flags & H1_F_EXPECT_CONTINUE));
    if (r->flags & H1_F_CLOSE_DELIMITED)
        CHECK(!(r->flags & H1_F_KEEP_ALIVE));
    bool no_body = head || r->status < 200 || r->status == 204 || r->status == 304;
    CHECK(no_body == !!(r->flags & H1_F_NO_BODY));
    const struct h1_header *cl = h1_header_find(r->headers, r->n_headers, "content-length");
    const struct h1_header *te = h1_header_find(r->headers, r->n_headers, "transfer-encoding");
    if (!no_body) {
        if (te)
            CHECK(!(r->flags & H1_F_CONTENT_LENGTH));
        else
            CHECK(!!(r->flags & H1_F_CONTENT_LENGTH) == (cl != NULL));
        if (r->flags & H1_F_CHUNKED)
            CHECK(te != NULL && (cl == NULL || !(r->flags & H1_F_KEEP_ALIVE)));
    }
    if (te)
        CHECK(r->version_minor == 1);
    if (!(r->flags & H1_F_CONTENT_LENGTH))
        CHECK(r->content_length == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    bool head = sel & 2;

    struct h1_limits lim = {.max_request_line = 8192,
                            .max_header_bytes = 16384,
                            .max_headers = NHDR,
                            .max_body = 1u << 20};
    if (sel & 1) {
        lim.max_header_bytes = 16 + (sel >> 2) * 2;
        lim.max_headers = (sel >> 3) & 7;
    }

    struct h1_header h[NHDR];
    struct h1_response r;
    r.headers = h;
    int rc = h1_parse_response(buf, len, &lim, head, &r);
    CHECK(rc <= (int)len && rc > -H1_ERR__COUNT);
    if (rc < 0) {
        /* Request-only errors never come from the response parser. */
        CHECK(rc != -H1_ERR_BARE_LF && rc != -H1_ERR_BAD_HOST && rc != -H1_ERR_LINE_TOO_LONG &&
              rc != -H1_ERR_BODY_TOO_LARGE && rc != -H1_ERR_CL_AND_TE &&
              rc != -H1_ERR_TE_UNSUPPORTED && rc != -H1_ERR_BAD_METHOD &&
              rc != -H1_ERR_BAD_TARGET && rc != -H1_ERR_BAD_VERSION);
    }
    if (rc > 0) {
        check_ok(buf, rc, &lim, head, &r);
        CHECK(parse_copy(buf, (size_t)rc, &lim, head) == rc);
    }
    size_t upto = rc > 0 ? (size_t)rc : len;
    size_t stride = upto <= 256 ? 1 : upto / 61 + 1;
    for (size_t k = 0; k < upto; k += stride) {
        int p = parse_copy(buf, k, &lim, head);
        CHECK(p == 0 || (rc < 0 && p == rc));
    }
    if (upto > 0) {
        int p = parse_copy(buf, upto - 1, &lim, head);
        CHECK(p == 0 || (rc < 0 && p == rc));
    }
    return 0;
}
