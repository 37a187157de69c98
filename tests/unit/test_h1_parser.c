/* Unit tests for dataplane/h1_parser. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/h1_parser.h"

#define NHDR 64

static const struct h1_limits lim = {
    .max_request_line = 8192,
    .max_header_bytes = 16384,
    .max_headers = NHDR,
    .max_body = 1 << 20,
};

static struct h1_header hdrs[NHDR];

static int preq_n(const char *s, size_t n, struct h1_request *r)
{
    r->headers = hdrs;
    return h1_parse_request(s, n, &lim, r);
}

static int preq(const char *s, struct h1_request *r)
{
    return preq_n(s, strlen(s), r);
}

/* Parses and returns the result, for error checks. */
static int req_rc(const char *s)
{
    struct h1_request r;
    return preq(s, &r);
}

static int presp_n(const char *s, size_t n, bool head, struct h1_response *r)
{
    r->headers = hdrs;
    return h1_parse_response(s, n, &lim, head, r);
}

static int presp(const char *s, bool head, struct h1_response *r)
{
    return presp_n(s, strlen(s), head, r);
}

static int resp_rc(const char *s)
{
    struct h1_response r;
    return presp(s, false, &r);
}

static bool span_eq(const char *p, uint32_t n, const char *want)
{
    return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Every strict prefix of a valid head must ask for more bytes. */
static void all_prefixes_incomplete(const char *s)
{
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++) {
        struct h1_request r;
        int rc = preq_n(s, k, &r);
        cr_assert_eq(rc, 0, "prefix %zu of %zu gave %d", k, n, rc);
    }
    struct h1_request r;
    cr_assert_eq(preq_n(s, n, &r), (int)n);
}

/* ---- valid requests ---- */

Test(h1_request, simple_get)
{
    const char *s = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    struct h1_request r;
    int rc = preq(s, &r);
    cr_assert_eq(rc, (int)strlen(s));
    cr_assert_eq(r.head_len, strlen(s));
    cr_assert(span_eq(r.method, r.method_len, "GET"));
    cr_assert(span_eq(r.target, r.target_len, "/index.html"));
    cr_assert(span_eq(r.path, r.path_len, "/index.html"));
    cr_assert_null(r.query);
    cr_assert_eq(r.version_minor, 1);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE);
    cr_assert_eq(r.n_headers, 2);
    cr_assert(span_eq(r.headers[0].name, r.headers[0].name_len, "Host"));
    cr_assert(span_eq(r.headers[0].value, r.headers[0].value_len, "example.com"));
    cr_assert(span_eq(r.headers[1].name, r.headers[1].name_len, "User-Agent"));
    cr_assert(span_eq(r.headers[1].value, r.headers[1].value_len, "t"));
    cr_assert_eq(r.content_length, 0);
}

Test(h1_request, query_split)
{
    struct h1_request r;
    cr_assert_gt(preq("GET /v1/chat?stream=true&x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.path, r.path_len, "/v1/chat"));
    cr_assert(span_eq(r.query, r.query_len, "stream=true&x=1"));
    cr_assert_gt(preq("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.path, r.path_len, "/a"));
    cr_assert_not_null(r.query);
    cr_assert_eq(r.query_len, 0);
}

Test(h1_request, post_content_length)
{
    const char *s = "POST /v1/completions HTTP/1.1\r\nHost: api\r\nContent-Length: 13\r\n"
                    "Content-Type: application/json\r\n\r\n{\"prompt\":1}";
    struct h1_request r;
    int rc = preq(s, &r);
    cr_assert_eq(rc, (int)(strlen(s) - 12));
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH);
    cr_assert_eq(r.content_length, 13);
}

Test(h1_request, post_chunked)
{
    const char *s =
        "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    struct h1_request r;
    int rc = preq(s, &r);
    cr_assert_eq(rc, (int)(strlen(s) - 10));
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CHUNKED);
    cr_assert_gt(req_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), 0);
    /* The list may span several fields and contain OWS. */
    cr_assert_gt(req_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n"), 0);
}

Test(h1_request, pipelined)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                    "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t n = strlen(s);
    struct h1_request r;
    int rc = preq_n(s, n, &r);
    cr_assert_eq(rc, 28);
    cr_assert(span_eq(r.path, r.path_len, "/a"));
    size_t off = (size_t)rc;
    rc = preq_n(s + off, n - off, &r);
    cr_assert_gt(rc, 0);
    cr_assert(span_eq(r.path, r.path_len, "/b"));
    cr_assert_eq(r.content_length, 5);
    off += (size_t)rc + 5;
    rc = preq_n(s + off, n - off, &r);
    cr_assert_eq((size_t)rc, n - off);
    cr_assert(span_eq(r.path, r.path_len, "/c"));
    cr_assert_eq(r.flags & H1_F_KEEP_ALIVE, 0);
}

Test(h1_request, leading_empty_lines)
{
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct h1_request r;
    cr_assert_eq(preq(s, &r), (int)strlen(s));
    cr_assert_eq(r.head_len, strlen(s));
    cr_assert(span_eq(r.method, r.method_len, "GET"));
    cr_assert_eq(preq_n("\r\n", 2, &r), 0);
    cr_assert_eq(preq_n("\r", 1, &r), 0);
    cr_assert_eq(req_rc("\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(req_rc("\rXGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
}

Test(h1_request, absolute_form)
{
    struct h1_request r;
    cr_assert_gt(preq("GET http://example.com:8080/v1/x?y=2 HTTP/1.1\r\nHost: e\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.target, r.target_len, "http://example.com:8080/v1/x?y=2"));
    cr_assert(span_eq(r.path, r.path_len, "/v1/x"));
    cr_assert(span_eq(r.query, r.query_len, "y=2"));
    cr_assert_gt(preq("GET http://example.com HTTP/1.1\r\nHost: e\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.path, r.path_len, "/"));
    cr_assert_null(r.query);
    cr_assert_gt(preq("GET HTTP://[::1]:80?q HTTP/1.1\r\nHost: e\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.path, r.path_len, "/"));
    cr_assert(span_eq(r.query, r.query_len, "q"));
    cr_assert_gt(preq("GET https://h/ HTTP/1.1\r\nHost: e\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.path, r.path_len, "/"));
    cr_assert_eq(req_rc("GET http://user@h/ HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET http:///x HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET ftp://h/x HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET http://h#f HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
}

Test(h1_request, asterisk_form)
{
    struct h1_request r;
    cr_assert_gt(preq("OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n", &r), 0);
    cr_assert(span_eq(r.target, r.target_len, "*"));
    cr_assert(span_eq(r.path, r.path_len, "*"));
    cr_assert_eq(req_rc("GET * HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("OPTIONS *x HTTP/1.1\r\nHost: e\r\n\r\n"), -H1_ERR_BAD_TARGET);
    /* authority-form (CONNECT) is not served. */
    cr_assert_eq(req_rc("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), -H1_ERR_BAD_TARGET);
}

Test(h1_request, http10)
{
    struct h1_request r;
    cr_assert_gt(preq("GET / HTTP/1.0\r\n\r\n", &r), 0);
    cr_assert_eq(r.version_minor, 0);
    cr_assert_eq(r.flags, 0);
    cr_assert_gt(preq("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE);
    cr_assert_gt(preq("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, 0);
    /* Expect: 100-continue is ignored in HTTP/1.0 (RFC 9110 §10.1.1). */
    cr_assert_gt(preq("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &r),
                 0);
    cr_assert_eq(r.flags, H1_F_CONTENT_LENGTH);
}

Test(h1_request, connection_flags)
{
    struct h1_request r;
    cr_assert_gt(preq("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, 0);
    cr_assert_gt(
        preq("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: x, close\r\n\r\n", &r),
        0);
    cr_assert_eq(r.flags, 0);
    cr_assert_gt(preq("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                      "Upgrade: websocket\r\n\r\n",
                      &r),
                 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_UPGRADE);
    /* Upgrade without the Connection token, and the token without the field. */
    cr_assert_gt(preq("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE);
    cr_assert_gt(preq("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE);
}

Test(h1_request, expect_continue)
{
    struct h1_request r;
    cr_assert_gt(
        preq("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", &r),
        0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH | H1_F_EXPECT_CONTINUE);
    cr_assert_gt(preq("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE);
}

Test(h1_request, value_trimming_and_chars)
{
    const char s[] =
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t a  b \t \r\nX-B:\r\nX-C: caf\xc3\xa9\r\n\r\n";
    struct h1_request r;
    cr_assert_eq(preq_n(s, sizeof(s) - 1, &r), (int)sizeof(s) - 1);
    cr_assert_eq(r.n_headers, 4);
    cr_assert(span_eq(r.headers[1].value, r.headers[1].value_len, "a  b"));
    cr_assert_eq(r.headers[2].value_len, 0);
    cr_assert(span_eq(r.headers[3].value, r.headers[3].value_len, "caf\xc3\xa9"));
}

Test(h1_request, incomplete_prefixes)
{
    all_prefixes_incomplete("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    all_prefixes_incomplete(
        "\r\n\r\nPOST /v1/chat/completions?x=y HTTP/1.1\r\nHost: api.local:8080\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\nX-Empty:\r\n\r\n");
    all_prefixes_incomplete("OPTIONS * HTTP/1.0\r\n\r\n");
    all_prefixes_incomplete("GET http://h:1/p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
}

/* Values and targets are checked a word at a time: try a bad byte at every offset. */
Test(h1_request, bad_byte_at_every_offset)
{
    static const char bad_value[] = {0x00, 0x01, 0x0b, 0x0d, 0x1f, 0x7f};
    static const char bad_target[] = {0x00, 0x09, 0x0d, 0x1f, 0x7f, (char)0x80, (char)0xff};
    char s[256];
    for (size_t off = 0; off < 40; off++) {
        for (size_t b = 0; b < sizeof(bad_value); b++) {
            int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
            memset(s + n, 'v', 40);
            s[n + off] = bad_value[b];
            memcpy(s + n + 40, "\r\n\r\n", 5);
            struct h1_request r;
            cr_assert_eq(preq_n(s, (size_t)n + 44, &r), -H1_ERR_BAD_FIELD_VALUE, "%zu %zu", off, b);
        }
        for (size_t b = 0; b < sizeof(bad_target); b++) {
            memcpy(s, "GET /", 5);
            memset(s + 5, 't', 40);
            s[5 + off] = bad_target[b];
            const char *rest = " HTTP/1.1\r\nHost: a\r\n\r\n";
            memcpy(s + 45, rest, strlen(rest));
            struct h1_request r;
            cr_assert_eq(preq_n(s, 45 + strlen(rest), &r), -H1_ERR_BAD_TARGET, "%zu %zu", off, b);
        }
        /* HTAB and obs-text are fine inside a value. */
        int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
        memset(s + n, 'v', 40);
        s[n + off] = off & 1 ? '\t' : (char)0xa0;
        memcpy(s + n + 40, "\r\n\r\n", 5);
        struct h1_request r;
        cr_assert_eq(preq_n(s, (size_t)n + 44, &r), n + 44);
    }
}

/* ---- request errors, one by one ---- */

Test(h1_request_err, syntax)
{
    cr_assert_eq(req_rc("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET /\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET / http/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET / HTTP/11\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(req_rc("GET / FOO\r\nHost: a\r\n\r\n"), -H1_ERR_SYNTAX);
    cr_assert_eq(h1_err_status(H1_ERR_SYNTAX), 400);
}

Test(h1_request_err, bare_lf)
{
    cr_assert_eq(req_rc("GET / HTTP/1.1\nHost: a\r\n\r\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\n\r\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\n\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(req_rc("GET\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(req_rc("\n"), -H1_ERR_BARE_LF);
    cr_assert_eq(h1_err_status(H1_ERR_BARE_LF), 400);
}

Test(h1_request_err, obs_fold)
{
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), -H1_ERR_OBS_FOLD);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), -H1_ERR_OBS_FOLD);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -H1_ERR_OBS_FOLD);
    cr_assert_eq(h1_err_status(H1_ERR_OBS_FOLD), 400);
}

Test(h1_request_err, space_before_colon)
{
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -H1_ERR_SPACE_BEFORE_COLON);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n"),
                 -H1_ERR_SPACE_BEFORE_COLON);
    cr_assert_eq(h1_err_status(H1_ERR_SPACE_BEFORE_COLON), 400);
}

Test(h1_request_err, bad_field_name)
{
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"), -H1_ERR_BAD_FIELD_NAME);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\n: a\r\n\r\n"), -H1_ERR_BAD_FIELD_NAME);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), -H1_ERR_BAD_FIELD_NAME);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nBad Name: a\r\n\r\n"), -H1_ERR_BAD_FIELD_NAME);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n"), -H1_ERR_BAD_FIELD_NAME);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_FIELD_NAME), 400);
}

Test(h1_request_err, bad_field_value)
{
    const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    struct h1_request r;
    cr_assert_eq(preq_n(nul, sizeof(nul) - 1, &r), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n"), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n"), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_FIELD_VALUE), 400);
}

Test(h1_request_err, bad_target)
{
    cr_assert_eq(req_rc("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(req_rc("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_TARGET);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_TARGET), 400);
}

Test(h1_request_err, bad_method)
{
    cr_assert_eq(req_rc("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_METHOD);
    cr_assert_eq(req_rc(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_METHOD);
    cr_assert_eq(req_rc("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_METHOD);
    /* Refused at once, before the line is complete: a TLS hello on the plain port. */
    const char tls[] = "\x16\x03\x01\x02\x00\x01";
    struct h1_request r;
    cr_assert_eq(preq_n(tls, sizeof(tls) - 1, &r), -H1_ERR_BAD_METHOD);
    cr_assert_eq(req_rc("GE\r"), 0);
    cr_assert_eq(req_rc("GE\rx"), -H1_ERR_BAD_METHOD);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_METHOD), 400);
}

Test(h1_request_err, bad_version)
{
    cr_assert_eq(req_rc("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_VERSION);
    cr_assert_eq(req_rc("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_VERSION);
    cr_assert_eq(req_rc("GET / HTTP/0.9\r\n\r\n"), -H1_ERR_BAD_VERSION);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_VERSION), 505);
}

Test(h1_request_err, bad_content_length)
{
    static const char *bad[] = {"+5",
                                "-5",
                                "5 5",
                                "0x5",
                                "",
                                "5,",
                                ",5",
                                "5, 6",
                                "5;",
                                "1e3",
                                "9223372036854775808",
                                "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n", bad[i]);
        cr_assert_eq(req_rc(s), -H1_ERR_BAD_CONTENT_LENGTH, "%s", bad[i]);
    }
    cr_assert_eq(
        req_rc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        -H1_ERR_BAD_CONTENT_LENGTH);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_CONTENT_LENGTH), 400);
}

Test(h1_request, content_length_repeats)
{
    struct h1_request r;
    cr_assert_gt(preq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", &r), 0);
    cr_assert_eq(r.content_length, 5);
    cr_assert_gt(
        preq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &r),
        0);
    cr_assert_eq(r.content_length, 5);
    /* OWS after the value is not part of it. */
    cr_assert_gt(preq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 \r\n\r\n", &r), 0);
    cr_assert_eq(r.content_length, 5);
    cr_assert_gt(preq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH);
    cr_assert_eq(r.content_length, 0);
}

Test(h1_request_err, body_too_large)
{
    struct h1_request r;
    cr_assert_gt(preq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n", &r), 0);
    cr_assert_eq(r.content_length, 1048576);
    cr_assert_eq(req_rc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n"),
                 -H1_ERR_BODY_TOO_LARGE);
    cr_assert_eq(
        req_rc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"),
        -H1_ERR_BODY_TOO_LARGE);
    cr_assert_eq(h1_err_status(H1_ERR_BODY_TOO_LARGE), 413);
}

Test(h1_request_err, cl_and_te)
{
    cr_assert_eq(req_rc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"),
                 -H1_ERR_CL_AND_TE);
    cr_assert_eq(req_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Length: 0\r\n\r\n"),
                 -H1_ERR_CL_AND_TE);
    cr_assert_eq(h1_err_status(H1_ERR_CL_AND_TE), 400);
}

static int te_rc(const char *te_fields)
{
    char s[512];
    snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n", te_fields);
    return req_rc(s);
}

Test(h1_request_err, bad_te)
{
    cr_assert_eq(te_rc("Transfer-Encoding: chunked, gzip\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: chunked, chunked\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
                 -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
                 -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding:\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: , chunked\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: chunked;q=1\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(te_rc("Transfer-Encoding: \"chunked\"\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(req_rc("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -H1_ERR_BAD_TE);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_TE), 400);
}

Test(h1_request_err, te_unsupported)
{
    cr_assert_eq(te_rc("Transfer-Encoding: gzip\r\n"), -H1_ERR_TE_UNSUPPORTED);
    cr_assert_eq(te_rc("Transfer-Encoding: xchunked\r\n"), -H1_ERR_TE_UNSUPPORTED);
    cr_assert_eq(te_rc("Transfer-Encoding: chunkedx\r\n"), -H1_ERR_TE_UNSUPPORTED);
    cr_assert_eq(te_rc("Transfer-Encoding: gzip, chunked\r\n"), -H1_ERR_TE_UNSUPPORTED);
    cr_assert_eq(te_rc("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                 -H1_ERR_TE_UNSUPPORTED);
    cr_assert_eq(h1_err_status(H1_ERR_TE_UNSUPPORTED), 501);
}

Test(h1_request, te_split_across_fields)
{
    /* Only "chunked" once, last: an empty-looking list is not valid either. */
    cr_assert_gt(te_rc("Transfer-Encoding: chunked\r\nX: y\r\n"), 0);
    cr_assert_gt(te_rc("transfer-encoding: chunked\r\n"), 0);
}

Test(h1_request_err, bad_host)
{
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nX: y\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_eq(req_rc("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -H1_ERR_BAD_HOST);
    cr_assert_gt(req_rc("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
    /* An empty Host is what RFC 9112 §3.2 asks for when there is no authority. */
    cr_assert_gt(req_rc("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
    cr_assert_eq(h1_err_status(H1_ERR_BAD_HOST), 400);
}

/* ---- limits ---- */

/* "GET /aaa... HTTP/1.1\r\n" with the request line exactly <n> bytes. */
static size_t make_line(char *s, size_t n)
{
    size_t fixed = strlen("GET / HTTP/1.1\r\n");
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', n - fixed);
    memcpy(s + 5 + (n - fixed), " HTTP/1.1\r\n", 11);
    return n;
}

Test(h1_limits, request_line)
{
    static char s[300];
    struct h1_limits l = {
        .max_request_line = 100, .max_header_bytes = 1000, .max_headers = 4, .max_body = 10};
    struct h1_request r;
    r.headers = hdrs;
    size_t n = make_line(s, 100);
    memcpy(s + n, "Host: a\r\n\r\n", 11);
    cr_assert_eq(h1_parse_request(s, n + 11, &l, &r), (int)n + 11);
    n = make_line(s, 101);
    memcpy(s + n, "Host: a\r\n\r\n", 11);
    cr_assert_eq(h1_parse_request(s, n + 11, &l, &r), -H1_ERR_LINE_TOO_LONG);
    /* Incomplete: 99 bytes without LF may still end in time, 100 may not. */
    cr_assert_eq(h1_parse_request(s, 99, &l, &r), 0);
    cr_assert_eq(h1_parse_request(s, 100, &l, &r), -H1_ERR_LINE_TOO_LONG);
    /* Leading empty lines are not part of the request line. */
    memcpy(s, "\r\n\r\n", 4);
    n = make_line(s + 4, 100);
    memcpy(s + 4 + n, "Host: a\r\n\r\n", 11);
    cr_assert_eq(h1_parse_request(s, n + 15, &l, &r), (int)n + 15);
    cr_assert_eq(h1_err_status(H1_ERR_LINE_TOO_LONG), 414);
}

Test(h1_limits, head_bytes)
{
    static char s[300];
    struct h1_limits l = {
        .max_request_line = 100, .max_header_bytes = 64, .max_headers = 4, .max_body = 10};
    struct h1_request r;
    r.headers = hdrs;
    /* 16 + 9 + X-Pad line + 2 = 64 */
    const char *base = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t b = strlen(base);
    size_t pad = 64 - b - 4;
    memcpy(s, base, b);
    memset(s + b, 'p', pad);
    memcpy(s + b + pad, "\r\n\r\n", 4);
    cr_assert_eq(h1_parse_request(s, 64, &l, &r), 64);
    memcpy(s, base, b);
    memset(s + b, 'p', pad + 1);
    memcpy(s + b + pad + 1, "\r\n\r\n", 4);
    cr_assert_eq(h1_parse_request(s, 65, &l, &r), -H1_ERR_HEAD_TOO_LARGE);
    /* As soon as 64 bytes are here without the end of the head. */
    cr_assert_eq(h1_parse_request(s, 63, &l, &r), 0);
    cr_assert_eq(h1_parse_request(s, 64, &l, &r), -H1_ERR_HEAD_TOO_LARGE);
    /* Leading empty lines count. */
    memcpy(s, "\r\n", 2);
    memcpy(s + 2, base, b);
    memset(s + 2 + b, 'p', pad);
    memcpy(s + 2 + b + pad, "\r\n\r\n", 4);
    cr_assert_eq(h1_parse_request(s, 66, &l, &r), -H1_ERR_HEAD_TOO_LARGE);
    cr_assert_eq(h1_err_status(H1_ERR_HEAD_TOO_LARGE), 431);
}

Test(h1_limits, header_count)
{
    struct h1_limits l = {
        .max_request_line = 100, .max_header_bytes = 1000, .max_headers = 3, .max_body = 10};
    struct h1_request r;
    struct h1_header h[3];
    r.headers = h;
    const char *ok = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    cr_assert_eq(h1_parse_request(ok, strlen(ok), &l, &r), (int)strlen(ok));
    cr_assert_eq(r.n_headers, 3);
    const char *bad = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    r.headers = h;
    cr_assert_eq(h1_parse_request(bad, strlen(bad), &l, &r), -H1_ERR_TOO_MANY_HEADERS);
    cr_assert_eq(h1_err_status(H1_ERR_TOO_MANY_HEADERS), 431);
}

Test(h1_limits, body)
{
    struct h1_limits l = {
        .max_request_line = 100, .max_header_bytes = 1000, .max_headers = 3, .max_body = 10};
    struct h1_request r;
    r.headers = hdrs;
    const char *ok = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    cr_assert_gt(h1_parse_request(ok, strlen(ok), &l, &r), 0);
    const char *bad = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    cr_assert_eq(h1_parse_request(bad, strlen(bad), &l, &r), -H1_ERR_BODY_TOO_LARGE);
}

/* ---- responses ---- */

Test(h1_response, content_length)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n\r\nbody";
    struct h1_response r;
    cr_assert_eq(presp(s, false, &r), (int)strlen(s) - 4);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version_minor, 1);
    cr_assert(span_eq(r.reason, r.reason_len, "OK"));
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH);
    cr_assert_eq(r.content_length, 42);
    cr_assert_eq(r.n_headers, 2);
}

Test(h1_response, chunked)
{
    struct h1_response r;
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CHUNKED);
    /* Both: Transfer-Encoding wins, and the connection is not reused. */
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                       false, &r),
                 0);
    cr_assert_eq(r.flags, H1_F_CHUNKED);
    cr_assert_eq(r.content_length, 0);
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &r),
                 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CHUNKED);
}

Test(h1_response, close_delimited)
{
    struct h1_response r;
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.flags, H1_F_CLOSE_DELIMITED);
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.flags, H1_F_CLOSE_DELIMITED);
    cr_assert_gt(
        presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 4\r\n\r\n",
              false, &r),
        0);
    cr_assert_eq(r.flags, H1_F_CLOSE_DELIMITED);
}

Test(h1_response, no_body)
{
    struct h1_response r;
    static const int st[] = {100, 101, 103, 199, 204, 304};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        char s[128];
        snprintf(s, sizeof(s), "HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n", st[i]);
        cr_assert_gt(presp(s, false, &r), 0);
        cr_assert_eq(r.status, st[i]);
        cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_NO_BODY, "%d", st[i]);
    }
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_NO_BODY);
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_NO_BODY);
    cr_assert_gt(presp("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n",
                       false, &r),
                 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_NO_BODY | H1_F_UPGRADE);
}

Test(h1_response, interim_then_final)
{
    const char *s =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    struct h1_response r;
    int rc = presp(s, false, &r);
    cr_assert_eq(rc, 25);
    cr_assert_eq(r.status, 100);
    cr_assert(r.flags & H1_F_NO_BODY);
    rc = presp(s + 25, false, &r);
    cr_assert_eq((size_t)rc, strlen(s) - 25);
    cr_assert_eq(r.status, 201);
    cr_assert(span_eq(r.reason, r.reason_len, "Created"));
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH);
}

Test(h1_response, http10_and_lf)
{
    struct h1_response r;
    cr_assert_gt(presp("HTTP/1.0 200 OK\nContent-Length: 1\n\n", false, &r), 0);
    cr_assert_eq(r.version_minor, 0);
    cr_assert_eq(r.flags, H1_F_CONTENT_LENGTH);
    cr_assert_gt(
        presp("HTTP/1.0 200 OK\r\nConnection: keep-alive\nContent-Length: 1\r\n\n", false, &r), 0);
    cr_assert_eq(r.flags, H1_F_KEEP_ALIVE | H1_F_CONTENT_LENGTH);
    cr_assert_gt(
        presp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.flags, H1_F_CONTENT_LENGTH);
    /* Transfer-Encoding in HTTP/1.0 means the framing is faulty (RFC 9112 §6.1). */
    cr_assert_eq(resp_rc("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), -H1_ERR_BAD_TE);
}

Test(h1_response, reason)
{
    struct h1_response r;
    cr_assert_gt(presp("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.reason_len, 0);
    cr_assert_not_null(r.reason);
    cr_assert_gt(presp("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.reason_len, 0);
    cr_assert_gt(presp("HTTP/1.1 599 Very \tOdd\xff\r\nContent-Length: 0\r\n\r\n", false, &r), 0);
    cr_assert_eq(r.status, 599);
    cr_assert(span_eq(r.reason, r.reason_len, "Very \tOdd\xff"));
    cr_assert_gt(presp("HTTP/1.1 999 x\r\nContent-Length: 0\r\n\r\n", false, &r), 0);
}

Test(h1_response, bad_status)
{
    static const char *bad[] = {"HTTP/1.1 20 OK",   "HTTP/1.1 099 OK",     "HTTP/1.1 2000 OK",
                                "HTTP/2 200 OK",    "HTTP/2.0 200 OK",     "http/1.1 200 OK",
                                "HTTP/1.1  200 OK", "HTTP/1.1 200OK",      "ICY 200 OK",
                                "HTTP/1.1 2x0 OK",  "HTTP/1.1 200 O\x01K", "",
                                "HTTP/1.1 200 OK\r"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[128];
        snprintf(s, sizeof(s), "%s\r\nContent-Length: 0\r\n\r\n", bad[i]);
        cr_assert_eq(resp_rc(s), -H1_ERR_BAD_STATUS, "%s", bad[i]);
    }
    cr_assert_eq(h1_err_status(H1_ERR_BAD_STATUS), 502);
}

Test(h1_response, field_errors)
{
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                 -H1_ERR_BAD_CONTENT_LENGTH);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"),
                 -H1_ERR_BAD_CONTENT_LENGTH);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"),
                 -H1_ERR_BAD_CONTENT_LENGTH);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), -H1_ERR_OBS_FOLD);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), -H1_ERR_SPACE_BEFORE_COLON);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), -H1_ERR_BAD_FIELD_VALUE);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
                 -H1_ERR_BAD_TE);
    cr_assert_eq(resp_rc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x\r\n\r\n"),
                 -H1_ERR_BAD_TE);
    struct h1_response r;
    /* Same value repeated is fine; Host rules are for requests. */
    cr_assert_gt(
        presp("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nHost: a\r\nHost: b c\r\n\r\n", false, &r),
        0);
    cr_assert_eq(r.content_length, 5);
    /* No body limit on responses. */
    cr_assert_gt(presp("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n", false, &r),
                 0);
    cr_assert_eq(r.content_length, 9223372036854775807ull);
}

Test(h1_response, incomplete_prefixes)
{
    static const char *ok[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 204\nServer: x\n\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = strlen(ok[i]);
        struct h1_response r;
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(presp_n(ok[i], k, false, &r), 0, "%zu/%zu", k, n);
        cr_assert_eq(presp_n(ok[i], n, false, &r), (int)n);
    }
}

Test(h1_response, head_limit)
{
    struct h1_limits l = {
        .max_request_line = 10, .max_header_bytes = 40, .max_headers = 2, .max_body = 0};
    struct h1_response r;
    r.headers = hdrs;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"; /* 38 bytes */
    l.max_header_bytes = 38;
    cr_assert_eq(h1_parse_response(s, strlen(s), &l, false, &r), 38);
    l.max_header_bytes = 37;
    cr_assert_eq(h1_parse_response(s, strlen(s), &l, false, &r), -H1_ERR_HEAD_TOO_LARGE);
    l.max_header_bytes = 40;
    l.max_headers = 0;
    cr_assert_eq(h1_parse_response(s, strlen(s), &l, false, &r), -H1_ERR_TOO_MANY_HEADERS);
}

/* ---- helpers ---- */

Test(h1_misc, err_table)
{
    for (int e = 0; e < H1_ERR__COUNT; e++) {
        const char *m = h1_err_message(e);
        cr_assert_not_null(m);
        cr_assert_gt(strlen(m), 0);
        int st = h1_err_status(e);
        cr_assert(st >= 200 && st <= 599);
        cr_assert_eq(h1_err_status(-e), st);
        cr_assert_str_eq(h1_err_message(-e), m);
    }
    cr_assert_eq(h1_err_status(H1_ERR_BAD_CHUNK), 400);
    cr_assert_eq(h1_err_status(H1_ERR__COUNT), 500);
    cr_assert_eq(h1_err_status(-1000), 500);
    cr_assert_not_null(h1_err_message(12345));
}

Test(h1_misc, header_find)
{
    struct h1_request r;
    cr_assert_gt(preq("GET / HTTP/1.1\r\nHost: a\r\nX-Req-ID: 7\r\nx-req-id: 8\r\n\r\n", &r), 0);
    const struct h1_header *h = h1_header_find(r.headers, r.n_headers, "x-REQ-id");
    cr_assert_not_null(h);
    cr_assert(span_eq(h->value, h->value_len, "7"));
    cr_assert_null(h1_header_find(r.headers, r.n_headers, "X-Req"));
    cr_assert_null(h1_header_find(r.headers, r.n_headers, "X-Req-IDs"));
    cr_assert_null(h1_header_find(r.headers, 0, "Host"));
}

Test(h1_misc, list_has_token)
{
    const char *v = "keep-alive , Upgrade,\t,close ";
    cr_assert(h1_list_has_token(v, strlen(v), "upgrade"));
    cr_assert(h1_list_has_token(v, strlen(v), "CLOSE"));
    cr_assert(h1_list_has_token(v, strlen(v), "keep-alive"));
    cr_assert_not(h1_list_has_token(v, strlen(v), "keep"));
    cr_assert_not(h1_list_has_token(v, strlen(v), "alive"));
    cr_assert_not(h1_list_has_token(v, strlen(v), ""));
    cr_assert_not(h1_list_has_token("", 0, "close"));
    cr_assert_not(h1_list_has_token(NULL, 0, "close"));
    /* Only <len> bytes count. */
    cr_assert_not(h1_list_has_token("clos", 4, "close"));
    cr_assert(h1_list_has_token("close,x", 5, "close"));
}
