/* Unit tests for dataplane/h1_chunked. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/h1_chunked.h"

struct result {
    int rc;          /* last return value */
    size_t consumed; /* total bytes consumed */
    size_t out_len;
    char out[65536];
};

/*
 * Feeds in[0..len) in pieces of at most <step> bytes (0: all at once), calling
 * again on the rest of each piece as the contract asks, until done, an error,
 * or the input is used up.
 */
static void decode(bool strict, const char *in, size_t len, size_t step, struct result *res)
{
    struct h1_chunked c;
    h1_chunked_init(&c, strict);
    memset(res, 0, sizeof(*res));
    size_t off = 0;
    while (off < len) {
        size_t piece = step == 0 || len - off < step ? len - off : step;
        size_t used_in_piece = 0;
        while (used_in_piece < piece) {
            size_t consumed;
            const char *data;
            size_t data_len;
            int rc = h1_chunked_feed(&c, in + off + used_in_piece, piece - used_in_piece, &consumed,
                                     &data, &data_len);
            res->rc = rc;
            cr_assert_leq(consumed, piece - used_in_piece);
            if (data_len) {
                cr_assert_geq(data, in + off + used_in_piece);
                cr_assert_leq(data + data_len, in + off + used_in_piece + consumed);
                cr_assert_leq(res->out_len + data_len, sizeof(res->out));
                memcpy(res->out + res->out_len, data, data_len);
                res->out_len += data_len;
            }
            used_in_piece += consumed;
            res->consumed += consumed;
            if (rc != 0) {
                cr_assert_eq(rc == 1, h1_chunked_done(&c));
                return;
            }
            cr_assert_gt(consumed, 0, "no progress");
        }
        off += piece;
    }
}

static int decode_rc(bool strict, const char *in)
{
    struct result *res = malloc(sizeof(*res));
    decode(strict, in, strlen(in), 0, res);
    int rc = res->rc;
    free(res);
    return rc;
}

static struct result res_a, res_b;

static void expect_body(bool strict, const char *in, size_t len, const char *payload,
                        size_t payload_len, size_t body_len)
{
    decode(strict, in, len, 0, &res_a);
    cr_assert_eq(res_a.rc, 1, "rc %d", res_a.rc);
    cr_assert_eq(res_a.consumed, body_len);
    cr_assert_eq(res_a.out_len, payload_len);
    cr_assert(memcmp(res_a.out, payload, res_a.out_len) == 0);
    /* One byte at a time, then split at every position: the same. */
    for (size_t step = 1; step <= len; step++) {
        decode(strict, in, len, step, &res_b);
        cr_assert_eq(res_b.rc, 1, "step %zu", step);
        cr_assert_eq(res_b.consumed, body_len);
        cr_assert_eq(res_b.out_len, res_a.out_len);
        cr_assert(memcmp(res_b.out, res_a.out, res_a.out_len) == 0);
    }
    for (size_t cut = 0; cut <= len; cut++) {
        struct h1_chunked c;
        h1_chunked_init(&c, strict);
        size_t got = 0, off = 0;
        char out[4096];
        int rc = 0;
        while (off < len && rc == 0) {
            size_t end = off < cut ? cut : len;
            size_t consumed;
            const char *data;
            size_t dl;
            rc = h1_chunked_feed(&c, in + off, end - off, &consumed, &data, &dl);
            cr_assert_geq(rc, 0);
            cr_assert(consumed > 0 || rc == 1);
            if (dl) {
                memcpy(out + got, data, dl);
                got += dl;
            }
            off += consumed;
        }
        cr_assert_eq(rc, 1, "cut %zu", cut);
        cr_assert_eq(off, body_len);
        cr_assert_eq(got, res_a.out_len);
        cr_assert(memcmp(out, res_a.out, got) == 0);
    }
}

#define BODY(strict, in, payload)                                                                  \
    expect_body(strict, in, strlen(in), payload, strlen(payload), strlen(in))

Test(h1_chunked, simple)
{
    BODY(true, "5\r\nhello\r\n0\r\n\r\n", "hello");
    BODY(true, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    BODY(true, "0\r\n\r\n", "");
    BODY(true, "A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\n\r\n", "0123456789abcdefghij");
    BODY(true, "000a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    BODY(false, "5\r\nhello\r\n0\r\n\r\n", "hello");
}

Test(h1_chunked, extensions)
{
    BODY(true, "5;foo=bar\r\nhello\r\n0;last\r\n\r\n", "hello");
    BODY(true, "5;a=\"x; y\";b\r\nhello\r\n0\r\n\r\n", "hello");
    BODY(true, "5 ;a=1\r\nhello\r\n0\t;z\r\n\r\n", "hello");
    BODY(true, "5 \t ; a = 1 \r\nhello\r\n0\r\n\r\n", "hello");
}

Test(h1_chunked, trailers)
{
    BODY(true, "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:\t1 2\r\n\r\n", "hello");
    BODY(false, "3\nabc\n0\nX: y\n\n", "abc");
    BODY(false, "3\r\nabc\n0\r\nX: y\n\r\n", "abc");
}

Test(h1_chunked, binary_payload)
{
    const char in[] = "4\r\n\0\r\n\n\r\n0\r\n\r\n";
    expect_body(true, in, sizeof(in) - 1, "\0\r\n\n", 4, sizeof(in) - 1);
}

Test(h1_chunked, leaves_next_message)
{
    const char *in = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    decode(true, in, strlen(in), 0, &res_a);
    cr_assert_eq(res_a.rc, 1);
    cr_assert_eq(res_a.consumed, 13);
    for (size_t step = 1; step < 20; step++) {
        decode(true, in, strlen(in), step, &res_b);
        cr_assert_eq(res_b.rc, 1);
        cr_assert_eq(res_b.consumed, 13);
    }
    /* Once done, nothing more is taken. */
    struct h1_chunked c;
    h1_chunked_init(&c, true);
    size_t consumed;
    const char *data;
    size_t dl;
    cr_assert_eq(h1_chunked_feed(&c, "0\r\n\r\n", 5, &consumed, &data, &dl), 1);
    cr_assert_eq(consumed, 5);
    cr_assert(h1_chunked_done(&c));
    cr_assert_eq(h1_chunked_feed(&c, "xyz", 3, &consumed, &data, &dl), 1);
    cr_assert_eq(consumed, 0);
    cr_assert_eq(dl, 0);
}

Test(h1_chunked, stops_after_span)
{
    struct h1_chunked c;
    h1_chunked_init(&c, true);
    const char *in = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    size_t consumed;
    const char *data;
    size_t dl;
    cr_assert_eq(h1_chunked_feed(&c, in, strlen(in), &consumed, &data, &dl), 0);
    cr_assert_eq(consumed, 6);
    cr_assert_eq(data, in + 3);
    cr_assert_eq(dl, 3);
    cr_assert_eq(h1_chunked_feed(&c, in + 6, strlen(in) - 6, &consumed, &data, &dl), 0);
    cr_assert_eq(consumed, 7);
    cr_assert_eq(data, in + 11);
    cr_assert_eq(dl, 2);
    cr_assert_eq(h1_chunked_feed(&c, in + 13, strlen(in) - 13, &consumed, &data, &dl), 1);
    cr_assert_eq(consumed, strlen(in) - 13);
    cr_assert_eq(dl, 0);
}

Test(h1_chunked, remaining)
{
    struct h1_chunked c;
    h1_chunked_init(&c, true);
    size_t consumed;
    const char *data;
    size_t dl;
    cr_assert_eq(h1_chunked_feed(&c, "7fffffffffffffff\r\nab", 20, &consumed, &data, &dl), 0);
    cr_assert_eq(dl, 2);
    cr_assert_eq(c.remaining, 0x7ffffffffffffffdull);
    h1_chunked_init(&c, true);
    cr_assert_eq(h1_chunked_feed(&c, "0000000000000010\r\n", 18, &consumed, &data, &dl), 0);
    cr_assert_eq(consumed, 18);
    cr_assert_eq(c.remaining, 16);
}

Test(h1_chunked_err, size)
{
    cr_assert_eq(decode_rc(true, "\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);   /* empty */
    cr_assert_eq(decode_rc(false, "\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);    /* empty */
    cr_assert_eq(decode_rc(true, ";x\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK); /* empty */
    cr_assert_eq(decode_rc(true, "g\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5x\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "0x5\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "+5\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, " 5\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    /* 17 digits, even when the value is small. */
    cr_assert_eq(decode_rc(true, "00000000000000005\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    BODY(true, "0000000000000005\r\nhello\r\n0\r\n\r\n", "hello");
    /* Over INT64_MAX. */
    cr_assert_eq(decode_rc(true, "8000000000000000\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "ffffffffffffffff\r\n"), -H1_ERR_BAD_CHUNK);
    /* Whitespace may only precede ';'. */
    cr_assert_eq(decode_rc(true, "5 \r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(false, "5 \r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5 x\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
}

Test(h1_chunked_err, data_crlf)
{
    cr_assert_eq(decode_rc(true, "5\r\nhelloX\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5\r\nhello\rX0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5\r\nhello0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(false, "5\r\nhelloX\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    /* Too much data for the size is the same thing. */
    cr_assert_eq(decode_rc(true, "4\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
}

Test(h1_chunked_err, bare_lf)
{
    static const char *in[] = {
        "5\nhello\r\n0\r\n\r\n",         "5;x\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\n0\n\r\n",         "5\r\nhello\r\n0\r\n\n",   "5\r\nhello\r\n0\r\nX: y\n\r\n",
        "5\r\nhello\r\n0\r\nX: y\r\n\n",
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        cr_assert_eq(decode_rc(true, in[i]), -H1_ERR_BAD_CHUNK, "strict %zu", i);
        BODY(false, in[i], "hello");
    }
    /* A CR must be followed by LF, in either mode. */
    cr_assert_eq(decode_rc(false, "5\rhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(false, "5\r\nhello\r\n0\r\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(false, "5\r\nhello\r\n0\r\n\rX"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(false, "5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n"), -H1_ERR_BAD_CHUNK);
}

Test(h1_chunked_err, extension_chars)
{
    const char nul[] = "5;a\0b\r\nhello\r\n0\r\n\r\n";
    decode(true, nul, sizeof(nul) - 1, 0, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5;a\rb\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "5;a\x7f\r\nhello\r\n0\r\n\r\n"), -H1_ERR_BAD_CHUNK);
}

/* "5" + <ext_len> bytes of extension + CRLF + data + last chunk. */
static size_t make_ext(char *s, size_t ext_len)
{
    s[0] = '5';
    s[1] = ';';
    memset(s + 2, 'e', ext_len - 1);
    const char *rest = "\r\nhello\r\n0\r\n\r\n";
    memcpy(s + 1 + ext_len, rest, strlen(rest) + 1);
    return strlen(s);
}

Test(h1_chunked_err, extension_bound)
{
    static char s[H1_CHUNK_EXT_MAX + 64];
    size_t n = make_ext(s, H1_CHUNK_EXT_MAX);
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, 1);
    cr_assert_eq(res_a.out_len, 5);
    decode(true, s, n, 1, &res_a);
    cr_assert_eq(res_a.rc, 1);
    decode(true, s, n, 7, &res_a);
    cr_assert_eq(res_a.rc, 1);
    n = make_ext(s, H1_CHUNK_EXT_MAX + 1);
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    decode(true, s, n, 1, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    /* Whitespace before ';' counts too. */
    s[1] = ' ';
    s[2] = ';';
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    n = make_ext(s, H1_CHUNK_EXT_MAX);
    s[1] = ' ';
    s[2] = ';';
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, 1);
}

/* Last chunk, then trailer field lines totalling <trl_len> bytes (CRLFs included). */
static size_t make_trailers(char *s, size_t trl_len)
{
    memcpy(s, "0\r\n", 3);
    size_t n = 3;
    while (trl_len > 0) {
        size_t line = trl_len > 100 ? 100 : trl_len;
        if (trl_len - line > 0 && trl_len - line < 5)
            line -= 5; /* keep the last line at least "X:" + CRLF long */
        memcpy(s + n, "X:", 2);
        memset(s + n + 2, 'v', line - 4);
        memcpy(s + n + line - 2, "\r\n", 2);
        n += line;
        trl_len -= line;
    }
    memcpy(s + n, "\r\n", 2);
    return n + 2;
}

Test(h1_chunked_err, trailer_bound)
{
    static char s[H1_TRAILER_MAX + 64];
    size_t n = make_trailers(s, H1_TRAILER_MAX);
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, 1);
    cr_assert_eq(res_a.consumed, n);
    decode(true, s, n, 1, &res_a);
    cr_assert_eq(res_a.rc, 1);
    decode(true, s, n, 33, &res_a);
    cr_assert_eq(res_a.rc, 1);
    n = make_trailers(s, H1_TRAILER_MAX + 1);
    decode(true, s, n, 0, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    decode(true, s, n, 1, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
    decode(false, s, n, 5, &res_a);
    cr_assert_eq(res_a.rc, -H1_ERR_BAD_CHUNK);
}

Test(h1_chunked_err, trailer_syntax)
{
    cr_assert_eq(decode_rc(true, "0\r\n X: y\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "0\r\nX: y\r\n\tz\r\n\r\n"), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(decode_rc(true, "0\r\n:y\r\n\r\n"), -H1_ERR_BAD_CHUNK);
}

Test(h1_chunked_err, sticky)
{
    struct h1_chunked c;
    h1_chunked_init(&c, true);
    size_t consumed;
    const char *data;
    size_t dl;
    cr_assert_eq(h1_chunked_feed(&c, "z", 1, &consumed, &data, &dl), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(h1_chunked_feed(&c, "0\r\n\r\n", 5, &consumed, &data, &dl), -H1_ERR_BAD_CHUNK);
    cr_assert_eq(h1_chunked_feed(&c, "", 0, &consumed, &data, &dl), -H1_ERR_BAD_CHUNK);
    cr_assert_not(h1_chunked_done(&c));
}

Test(h1_chunked, incomplete)
{
    const char *in = "5;x=y\r\nhello\r\n0\r\nA: b\r\n\r\n";
    size_t n = strlen(in);
    for (size_t k = 0; k < n; k++) {
        decode(true, in, k, 0, &res_a);
        cr_assert_eq(res_a.rc, 0, "prefix %zu", k);
        cr_assert_eq(res_a.consumed, k);
    }
    struct h1_chunked c;
    h1_chunked_init(&c, true);
    size_t consumed = 99;
    const char *data;
    size_t dl;
    cr_assert_eq(h1_chunked_feed(&c, in, 0, &consumed, &data, &dl), 0);
    cr_assert_eq(consumed, 0);
}
