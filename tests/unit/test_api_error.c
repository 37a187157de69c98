/*
 * Unit tests for dataplane/api_error: the table (status, type, code of every
 * error), the JSON body checked by parsing it with jansson, JSON escaping
 * and its truncation, and the mapping of h1_parser errors.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/h1_parser.h"

static const struct {
    enum api_error e;
    int status;
    int retry_after; /* 1: has one, 0: none */
} table[] = {
    {API_ERR_BAD_REQUEST, 400, 0},
    {API_ERR_INVALID_JSON, 400, 0},
    {API_ERR_MISSING_FIELD, 400, 0},
    {API_ERR_INVALID_FIELD, 400, 0},
    {API_ERR_UNAUTHORIZED, 401, 0},
    {API_ERR_NOT_FOUND, 404, 0},
    {API_ERR_METHOD, 405, 0},
    {API_ERR_REQUEST_TIMEOUT, 408, 0},
    {API_ERR_BODY_TOO_LARGE, 413, 0},
    {API_ERR_URI_TOO_LONG, 414, 0},
    {API_ERR_HEADERS_TOO_LARGE, 431, 0},
    {API_ERR_NOT_IMPLEMENTED, 501, 0},
    {API_ERR_VERSION, 505, 0},
    {API_ERR_INTERNAL, 500, 0},
    {API_ERR_BACKEND_DOWN, 502, -1},
    {API_ERR_BACKEND_BAD, 502, -1},
    {API_ERR_BACKEND_CLOSED, 502, -1},
    {API_ERR_OVERLOADED, 503, 1},
    {API_ERR_DRAINING, 503, 1},
    {API_ERR_CONNECT_TIMEOUT, 504, -1},
    {API_ERR_FIRST_TOKEN_TIMEOUT, 504, -1},
    {API_ERR_TOKEN_TIMEOUT, 504, -1},
    {API_ERR_TENANT_STREAMS, 429, 1},
    {API_ERR_TENANT_TOKENS, 429, 1},
    {API_ERR_TENANT_EXHAUSTED, 429, 1},
    {API_ERR_QUEUE_TIMEOUT, 503, 1},
    {API_ERR_CANCELLED, 503, 0},
};

Test(api_error, every_error_has_status_type_code)
{
    for (int e = 0; e < API_ERR__COUNT; e++) {
        int st = api_error_status((enum api_error)e);
        cr_assert(st >= 400 && st <= 599, "error %d: status %d", e, st);
        const char *type = api_error_type((enum api_error)e);
        const char *code = api_error_code((enum api_error)e);
        cr_assert_not_null(type, "error %d: type", e);
        cr_assert_not_null(code, "error %d: code", e);
        cr_assert_gt(strlen(type), 0);
        cr_assert_gt(strlen(code), 0);
        for (const char *p = type; *p; p++)
            cr_assert((*p >= 'a' && *p <= 'z') || *p == '_', "type %s: snake_case", type);
        for (const char *p = code; *p; p++)
            cr_assert((*p >= 'a' && *p <= 'z') || *p == '_', "code %s: snake_case", code);
        for (int f = 0; f < e; f++)
            cr_assert_str_neq(code, api_error_code((enum api_error)f), "code %s twice", code);
        cr_assert_geq(api_error_retry_after((enum api_error)e), 0);
    }
}

Test(api_error, statuses_as_documented)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        cr_assert_eq(api_error_status(table[i].e), table[i].status, "error %d", table[i].e);
        if (table[i].retry_after == 1)
            cr_assert_gt(api_error_retry_after(table[i].e), 0, "error %d: Retry-After", table[i].e);
        if (table[i].retry_after == 0)
            cr_assert_eq(api_error_retry_after(table[i].e), 0, "error %d: no Retry-After",
                         table[i].e);
    }
    cr_assert_str_eq(api_error_code(API_ERR_UNAUTHORIZED), "invalid_api_key");
    cr_assert_str_eq(api_error_type(API_ERR_UNAUTHORIZED), "authentication_error");
}

/* Parses <body> and checks the exact shape; returns the message. */
static char *check_body(const char *body, size_t n, enum api_error e)
{
    cr_assert_eq(strlen(body), n, "returned length is the length written");
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    cr_assert_not_null(root, "not JSON (%s): %s", jerr.text, body);
    cr_assert(json_is_object(root));
    cr_assert_eq(json_object_size(root), 1, "only \"error\": %s", body);
    json_t *err = json_object_get(root, "error");
    cr_assert(json_is_object(err));
    cr_assert_eq(json_object_size(err), 4, "message, type, param, code: %s", body);
    json_t *msg = json_object_get(err, "message");
    json_t *type = json_object_get(err, "type");
    json_t *param = json_object_get(err, "param");
    json_t *code = json_object_get(err, "code");
    cr_assert(json_is_string(msg));
    cr_assert(json_is_string(type));
    cr_assert(json_is_null(param), "param is null");
    cr_assert(json_is_string(code));
    cr_assert_str_eq(json_string_value(type), api_error_type(e));
    cr_assert_str_eq(json_string_value(code), api_error_code(e));
    char *m = strdup(json_string_value(msg));
    cr_assert_eq(strlen(m), json_string_length(msg), "no NUL inside the message");
    json_decref(root);
    return m;
}

Test(api_error, json_for_every_error)
{
    char buf[1024];
    for (int e = 0; e < API_ERR__COUNT; e++) {
        size_t n = api_error_json(buf, sizeof buf, (enum api_error)e, NULL);
        cr_assert_lt(n, sizeof buf);
        char *m = check_body(buf, n, (enum api_error)e);
        cr_assert_gt(strlen(m), 0, "error %d: a default message", e);
        free(m);
        n = api_error_json(buf, sizeof buf, (enum api_error)e, "custom detail");
        m = check_body(buf, n, (enum api_error)e);
        cr_assert_str_eq(m, "custom detail");
        free(m);
    }
}

Test(api_error, json_escapes_detail)
{
    static const char *const details[] = {
        "say \"hi\"",
        "C:\\path\\to\\model",
        "\\\"",
        "line1\nline2\r\n\ttab",
        "\x01\x02\x1f\x7f bell\a back\b form\f",
        "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
        "</script><!-- '",
        "",
        "\"",
        "\\",
    };
    char buf[2048];
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        size_t n = api_error_json(buf, sizeof buf, API_ERR_INVALID_FIELD, details[i]);
        char *m = check_body(buf, n, API_ERR_INVALID_FIELD);
        cr_assert_str_eq(m, details[i], "detail %zu round trip", i);
        free(m);
    }
    /* UTF-8 is kept as bytes, not \u-escaped */
    size_t n = api_error_json(buf, sizeof buf, API_ERR_INVALID_FIELD, "caf\xc3\xa9");
    cr_assert_not_null(strstr(buf, "\"message\":\"caf\xc3\xa9\""), "%.*s", (int)n, buf);
}

/* snprintf rules: the length needed is returned, the output is cut and
 * NUL-terminated. */
Test(api_error, json_small_buffer)
{
    char full[1024];
    size_t need = api_error_json(full, sizeof full, API_ERR_OVERLOADED, "x\"y");
    cr_assert_eq(need, strlen(full));
    for (size_t cap = 1; cap <= need + 1; cap++) {
        char buf[1024];
        memset(buf, '#', sizeof buf);
        size_t n = api_error_json(buf, cap, API_ERR_OVERLOADED, "x\"y");
        cr_assert_eq(n, need, "cap %zu", cap);
        cr_assert_eq(strlen(buf), cap - 1 < need ? cap - 1 : need, "cap %zu", cap);
        cr_assert_eq(memcmp(buf, full, strlen(buf)), 0);
        cr_assert_eq(buf[cap], '#', "nothing written past cap %zu", cap);
    }
    cr_assert_eq(api_error_json(NULL, 0, API_ERR_OVERLOADED, "x\"y"), need);
}

/* A long detail is shortened (the header promises nothing about how much is
 * kept), but the body stays valid JSON and the message is a prefix. */
Test(api_error, json_long_detail_stays_valid)
{
    char detail[3000];
    for (size_t i = 0; i < sizeof detail - 1; i++)
        detail[i] = "ab\"\\\n\x01"[i % 6];
    detail[sizeof detail - 1] = '\0';
    char buf[8192];
    size_t n = api_error_json(buf, sizeof buf, API_ERR_BACKEND_BAD, detail);
    cr_assert_lt(n, sizeof buf);
    char *m = check_body(buf, n, API_ERR_BACKEND_BAD);
    cr_assert_gt(strlen(m), 0);
    cr_assert_eq(strncmp(m, detail, strlen(m)), 0, "message is a prefix of the detail");
    free(m);
}

/* The same with multi-byte UTF-8: shortening must not cut a character in
 * half, or the body is not valid JSON (RFC 8259 §8.1) and jansson rejects it. */
Test(api_error, json_long_utf8_detail_stays_valid)
{
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80"};
    for (size_t k = 0; k < 3; k++) {
        for (size_t lead = 0; lead < 4; lead++) {
            char detail[2048];
            size_t len = 0;
            for (size_t i = 0; i < lead; i++)
                detail[len++] = 'a';
            size_t cl = strlen(chars[k]);
            while (len + cl < sizeof detail) {
                memcpy(detail + len, chars[k], cl);
                len += cl;
            }
            detail[len] = '\0';
            char buf[8192];
            size_t n = api_error_json(buf, sizeof buf, API_ERR_BACKEND_BAD, detail);
            json_error_t jerr;
            json_t *root = json_loadb(buf, n, 0, &jerr);
            cr_assert_not_null(root, "%zu-byte characters after %zu ASCII: %s", cl, lead,
                               jerr.text);
            json_decref(root);
        }
    }
}

/* The escape of a whole string, for comparison. */
static size_t full_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = api_json_escape(out, cap, s, len);
    cr_assert_lt(n, cap - 1, "reference buffer too small");
    return n;
}

Test(api_json_escape, exact_output)
{
    char out[256];
    const char in[] = "a\"b\\c\nd\te\x01\x7f\xc3\xa9";
    size_t n = api_json_escape(out, sizeof out, in, sizeof in - 1);
    const char *want = "a\\\"b\\\\c\\nd\\u0009e\\u0001\\u007f\xc3\xa9";
    cr_assert_str_eq(out, want);
    cr_assert_eq(n, strlen(want));
    /* the length bounds the input: a NUL inside is escaped, not an end */
    n = api_json_escape(out, sizeof out, "a\0b", 3);
    cr_assert_eq(n, 8);
    cr_assert_str_eq(out, "a\\u0000b");
}

Test(api_json_escape, truncation_never_splits_an_escape)
{
    const char in[] = "ab\"c\\\n\x01z\x02\x03\"\"xyz";
    size_t len = sizeof in - 1;
    char full[256];
    size_t fl = full_escape(full, sizeof full, in, len);
    /* where each input byte's escape ends in the full output */
    size_t ends[64];
    size_t ne = 0;
    for (size_t k = 0; k <= len; k++) {
        char tmp[256];
        ends[ne++] = full_escape(tmp, sizeof tmp, in, k);
    }
    for (size_t cap = 0; cap <= fl + 2; cap++) {
        char buf[256];
        memset(buf, '#', sizeof buf);
        size_t n = api_json_escape(buf, cap, in, len);
        if (cap == 0) {
            cr_assert_eq(n, 0);
            cr_assert_eq(buf[0], '#', "cap 0 writes nothing");
            continue;
        }
        cr_assert_lt(n, cap, "cap %zu: room for the NUL", cap);
        cr_assert_eq(buf[n], '\0', "cap %zu", cap);
        cr_assert_eq(buf[cap], '#', "cap %zu: nothing past cap", cap);
        cr_assert_eq(memcmp(buf, full, n), 0, "cap %zu: a prefix of the full escape", cap);
        bool boundary = false;
        size_t k = 0;
        for (; k < ne; k++)
            if (ends[k] == n) {
                boundary = true;
                break;
            }
        cr_assert(boundary, "cap %zu: output of %zu bytes ends inside an escape", cap, n);
        if (k + 1 < ne)
            cr_assert_geq(ends[k + 1], cap, "cap %zu: the next escape would have fit", cap);
    }
}

Test(api_error, from_h1)
{
    static const struct {
        int h1;
        enum api_error want;
    } cases[] = {
        {H1_ERR_SYNTAX, API_ERR_BAD_REQUEST},
        {H1_ERR_BARE_LF, API_ERR_BAD_REQUEST},
        {H1_ERR_OBS_FOLD, API_ERR_BAD_REQUEST},
        {H1_ERR_SPACE_BEFORE_COLON, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_FIELD_NAME, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_FIELD_VALUE, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_TARGET, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_METHOD, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_VERSION, API_ERR_VERSION},
        {H1_ERR_LINE_TOO_LONG, API_ERR_URI_TOO_LONG},
        {H1_ERR_HEAD_TOO_LARGE, API_ERR_HEADERS_TOO_LARGE},
        {H1_ERR_TOO_MANY_HEADERS, API_ERR_HEADERS_TOO_LARGE},
        {H1_ERR_BAD_CONTENT_LENGTH, API_ERR_BAD_REQUEST},
        {H1_ERR_BODY_TOO_LARGE, API_ERR_BODY_TOO_LARGE},
        {H1_ERR_CL_AND_TE, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_TE, API_ERR_BAD_REQUEST},
        {H1_ERR_TE_UNSUPPORTED, API_ERR_NOT_IMPLEMENTED},
        {H1_ERR_BAD_HOST, API_ERR_BAD_REQUEST},
        {H1_ERR_BAD_CHUNK, API_ERR_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* the enum value and the negative value the parser returns */
        cr_assert_eq(api_error_from_h1(cases[i].h1), cases[i].want, "h1 error %d", cases[i].h1);
        cr_assert_eq(api_error_from_h1(-cases[i].h1), cases[i].want, "h1 error -%d", cases[i].h1);
        /* and the client sees the status the parser asked for */
        cr_assert_eq(api_error_status(cases[i].want), h1_err_status(cases[i].h1), "h1 error %d",
                     cases[i].h1);
    }
}
