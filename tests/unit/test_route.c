/*
 * Unit tests for dataplane/route: route_match, route_validate of completion
 * bodies (each error with its api_error and detail), the backend request
 * head (request line, Host, hop-by-hop fields removed, end-to-end fields in
 * order, X-Request-Id), route_finish_head and route_reqid_valid.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/h1_parser.h"
#include "dataplane/route.h"

/* ---- route_match ---------------------------------------------------------- */

static enum route match(const char *method, const char *path, bool *ok, const char **allow)
{
    *ok = true;
    *allow = "unset";
    return route_match(method, strlen(method), path, strlen(path), ok, allow);
}

Test(route, match_each_route)
{
    static const struct {
        const char *method, *path;
        enum route r;
    } cases[] = {
        {"POST", "/v1/chat/completions", ROUTE_CHAT},
        {"POST", "/v1/completions", ROUTE_COMPLETIONS},
        {"GET", "/v1/models", ROUTE_MODELS},
        {"GET", "/healthz", ROUTE_HEALTHZ},
        /* a trailing slash is the same resource */
        {"POST", "/v1/chat/completions/", ROUTE_CHAT},
        {"POST", "/v1/completions/", ROUTE_COMPLETIONS},
        {"GET", "/v1/models/", ROUTE_MODELS},
        {"GET", "/healthz/", ROUTE_HEALTHZ},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok;
        const char *allow;
        cr_assert_eq(match(cases[i].method, cases[i].path, &ok, &allow), cases[i].r, "%s %s",
                     cases[i].method, cases[i].path);
        cr_assert(ok, "%s %s allowed", cases[i].method, cases[i].path);
        cr_assert_str_eq(allow, cases[i].method);
    }
}

Test(route, wrong_method)
{
    static const struct {
        const char *method, *path, *allow;
        enum route r;
    } cases[] = {
        {"GET", "/v1/chat/completions", "POST", ROUTE_CHAT},
        {"PUT", "/v1/completions/", "POST", ROUTE_COMPLETIONS},
        {"POST", "/v1/models", "GET", ROUTE_MODELS},
        {"DELETE", "/healthz", "GET", ROUTE_HEALTHZ},
        {"post", "/v1/chat/completions", "POST", ROUTE_CHAT}, /* methods are case-sensitive */
        {"POSTX", "/v1/chat/completions", "POST", ROUTE_CHAT},
        {"POS", "/v1/chat/completions", "POST", ROUTE_CHAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok;
        const char *allow;
        cr_assert_eq(match(cases[i].method, cases[i].path, &ok, &allow), cases[i].r, "%s %s",
                     cases[i].method, cases[i].path);
        cr_assert(!ok, "%s %s refused", cases[i].method, cases[i].path);
        cr_assert_str_eq(allow, cases[i].allow);
    }
}

Test(route, unknown_paths)
{
    static const char *const paths[] = {
        "/",
        "",
        "//",
        "/v1",
        "/v1/",
        "/v1/chat",
        "/v1/chat/completions//",
        "/v1/chat/completionsx",
        "/v1/chat/completion",
        "/V1/models",
        "/v1/models/extra",
        "/healthz?x",
        "v1/models",
        "/v2/models",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        bool ok;
        const char *allow;
        cr_assert_eq(match("GET", paths[i], &ok, &allow), ROUTE_NONE, "'%s'", paths[i]);
        cr_assert(!ok, "'%s'", paths[i]);
        cr_assert_null(allow, "'%s'", paths[i]);
    }
    /* path compared with its length, not up to a NUL */
    bool ok;
    const char *allow;
    cr_assert_eq(route_match("GET", 3, "/v1/modelsXYZ", 10, &ok, &allow), ROUTE_MODELS);
    cr_assert(ok);
}

/* ---- route_validate --------------------------------------------------------- */

struct vres {
    int rc;
    char model[64];
    bool stream;
    uint32_t max_tokens;
    char detail[256];
};

static struct vres validate(enum route r, const char *body)
{
    struct vres v;
    memset(&v, 0, sizeof v);
    snprintf(v.model, sizeof v.model, "unset");
    v.stream = true;
    v.rc = route_validate(r, body, strlen(body), v.model, sizeof v.model, &v.stream, &v.max_tokens,
                          v.detail, sizeof v.detail);
    return v;
}

Test(route, validate_chat_ok)
{
    struct vres v = validate(ROUTE_CHAT, "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":"
                                         "\"user\",\"content\":\"hi\"}],\"stream\":true}");
    cr_assert_eq(v.rc, 0, "detail: %s", v.detail);
    cr_assert_str_eq(v.model, "llama-3.1-8b");
    cr_assert_eq(v.stream, true);

    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1],\"stream\":false}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.stream, false);

    v = validate(ROUTE_CHAT, " {\"messages\":[{}],\"model\":\"m\"} \n");
    cr_assert_eq(v.rc, 0, "stream absent, whitespace around");
    cr_assert_eq(v.stream, false);
    cr_assert_str_eq(v.model, "m");

    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[{}],\"stream\":null}");
    cr_assert_eq(v.rc, 0, "stream null allowed: %s", v.detail);
    cr_assert_eq(v.stream, false);

    v = validate(ROUTE_CHAT,
                 "{\"model\":\"m\\u00e9\\\"q\",\"messages\":[{}],\"extra\":{\"a\":[]}}");
    cr_assert_eq(v.rc, 0);
    cr_assert_str_eq(v.model, "m\xc3\xa9\"q", "model unescaped");
}

Test(route, validate_completions_ok)
{
    struct vres v = validate(ROUTE_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"Once\"}");
    cr_assert_eq(v.rc, 0, "%s", v.detail);
    cr_assert_eq(v.stream, false);
    v = validate(ROUTE_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"],\"stream\":true}");
    cr_assert_eq(v.rc, 0, "%s", v.detail);
    cr_assert_eq(v.stream, true);
    v = validate(ROUTE_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[[1,2,3]]}");
    cr_assert_eq(v.rc, 0, "token arrays: %s", v.detail);
    /* messages are not needed for completions */
    v = validate(ROUTE_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"\"}");
    cr_assert_eq(v.rc, 0);
}

static void expect_err(enum route r, const char *body, int err, const char *detail)
{
    struct vres v = validate(r, body);
    cr_assert_eq(v.rc, err, "%s: rc %d (%s), want %d", body, v.rc, v.detail, err);
    if (detail)
        cr_assert_str_eq(v.detail, detail, "%s", body);
}

Test(route, validate_errors)
{
    enum route C = ROUTE_CHAT, P = ROUTE_COMPLETIONS;
    expect_err(C, "[{\"model\":\"m\",\"messages\":[1]}]", API_ERR_INVALID_JSON,
               "request body must be a JSON object");
    expect_err(C, "[]", API_ERR_INVALID_JSON, "request body must be a JSON object");
    expect_err(C, "{\"messages\":[1]}", API_ERR_MISSING_FIELD, "'model' is required");
    expect_err(C, "{\"model\":\"\",\"messages\":[1]}", API_ERR_INVALID_FIELD,
               "'model' must be a non-empty string");
    expect_err(C, "{\"model\":7,\"messages\":[1]}", API_ERR_INVALID_FIELD,
               "'model' must be a non-empty string");
    expect_err(C, "{\"model\":null,\"messages\":[1]}", API_ERR_INVALID_FIELD,
               "'model' must be a non-empty string");
    expect_err(C, "{\"model\":[\"m\"],\"messages\":[1]}", API_ERR_INVALID_FIELD,
               "'model' must be a non-empty string");
    expect_err(C, "{\"model\":\"m\"}", API_ERR_MISSING_FIELD, "'messages' is required");
    expect_err(C, "{\"model\":\"m\",\"prompt\":\"x\"}", API_ERR_MISSING_FIELD,
               "'messages' is required");
    expect_err(C, "{\"model\":\"m\",\"messages\":[]}", API_ERR_INVALID_FIELD,
               "'messages' must be a non-empty array");
    expect_err(C, "{\"model\":\"m\",\"messages\":{\"role\":\"user\"}}", API_ERR_INVALID_FIELD,
               "'messages' must be a non-empty array");
    expect_err(C, "{\"model\":\"m\",\"messages\":\"hi\"}", API_ERR_INVALID_FIELD,
               "'messages' must be a non-empty array");
    expect_err(P, "{\"model\":\"m\"}", API_ERR_MISSING_FIELD, "'prompt' is required");
    expect_err(P, "{\"model\":\"m\",\"messages\":[1]}", API_ERR_MISSING_FIELD,
               "'prompt' is required");
    expect_err(P, "{\"model\":\"m\",\"prompt\":5}", API_ERR_INVALID_FIELD,
               "'prompt' must be a string or an array");
    expect_err(P, "{\"model\":\"m\",\"prompt\":{}}", API_ERR_INVALID_FIELD,
               "'prompt' must be a string or an array");
    expect_err(P, "{\"model\":\"m\",\"prompt\":null}", API_ERR_INVALID_FIELD,
               "'prompt' must be a string or an array");
    expect_err(C, "{\"model\":\"m\",\"messages\":[1],\"stream\":\"true\"}", API_ERR_INVALID_FIELD,
               "'stream' must be a boolean");
    expect_err(C, "{\"model\":\"m\",\"messages\":[1],\"stream\":1}", API_ERR_INVALID_FIELD,
               "'stream' must be a boolean");
    expect_err(P, "{\"model\":\"m\",\"prompt\":\"p\",\"stream\":{}}", API_ERR_INVALID_FIELD,
               "'stream' must be a boolean");
    /* model is checked before messages */
    expect_err(C, "{}", API_ERR_MISSING_FIELD, "'model' is required");
}

Test(route, validate_not_json)
{
    static const char *const bodies[] = {
        "",
        "{",
        "not json",
        "{\"model\":\"m\",}",
        "{\"model\":\"m\" \"messages\":[1]}",
        "{\"model\":\"m\",\"messages\":[1]} trailing",
        "\"a string\"",
        "42",
        "null",
        /* a duplicate key is ambiguous: which one would the backend use? */
        "{\"model\":\"a\",\"model\":\"b\",\"messages\":[1]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct vres v = validate(ROUTE_CHAT, bodies[i]);
        cr_assert_eq(v.rc, API_ERR_INVALID_JSON, "'%s': rc %d", bodies[i], v.rc);
        cr_assert_eq(strncmp(v.detail, "request body is not valid JSON", 30), 0, "'%s': %s",
                     bodies[i], v.detail);
    }
    /* the length bounds the body: a valid object followed by junk not passed */
    const char *b = "{\"model\":\"m\",\"messages\":[1]}GARBAGE";
    char model[16], detail[128];
    bool st;
    uint32_t mt;
    cr_assert_eq(route_validate(ROUTE_CHAT, b, strlen(b) - 7, model, sizeof model, &st, &mt, detail,
                                sizeof detail),
                 0);
    cr_assert_eq(
        route_validate(ROUTE_CHAT, b, 10, model, sizeof model, &st, &mt, detail, sizeof detail),
        API_ERR_INVALID_JSON);
}

Test(route, validate_small_detail_buffer)
{
    char model[8], detail[8];
    bool st;
    uint32_t mt;
    const char *b = "{\"messages\":[1]}";
    int rc = route_validate(ROUTE_CHAT, b, strlen(b), model, sizeof model, &st, &mt, detail,
                            sizeof detail);
    cr_assert_eq(rc, API_ERR_MISSING_FIELD);
    cr_assert_eq(strlen(detail), sizeof detail - 1, "truncated, NUL-terminated");
}

/* ---- route_build_head / route_finish_head ---------------------------------------- */

#define NHDR 64
static struct h1_header hdrs[NHDR];
static const struct h1_limits lim = {
    .max_request_line = 8192,
    .max_header_bytes = 65536,
    .max_headers = NHDR,
    .max_body = 1 << 20,
};

static void parse(const char *raw, struct h1_request *req)
{
    memset(req, 0, sizeof *req);
    req->headers = hdrs;
    int rc = h1_parse_request(raw, strlen(raw), &lim, req);
    cr_assert_eq(rc, (int)strlen(raw), "test request does not parse: %d", rc);
}

static void backend(struct config_backend *be, const char *host, uint16_t port)
{
    memset(be, 0, sizeof *be);
    snprintf(be->host, sizeof be->host, "%s", host);
    be->port = port;
}

static void head_eq_auth(const char *raw, const struct config_backend *be, bool drop_auth,
                         const char *reqid, const char *want)
{
    struct h1_request req;
    parse(raw, &req);
    char *out = NULL;
    uint32_t len = 0, cap = 0;
    cr_assert_eq(route_build_head(&req, be, drop_auth, reqid, strlen(reqid), &out, &len, &cap), 0);
    cr_assert_not_null(out);
    /* copied out so that a failed assertion leaks nothing */
    static char got[4096];
    cr_assert_lt(len, sizeof got);
    memcpy(got, out, len + 1);
    free(out);
    cr_assert_leq(len + 1, cap);
    cr_assert_eq(got[len], '\0');
    cr_assert_str_eq(got, want, "got:\n%s\nwant:\n%s", got, want);
}

static void head_eq(const char *raw, const struct config_backend *be, const char *reqid,
                    const char *want)
{
    head_eq_auth(raw, be, false, reqid, want);
}

Test(route, head_request_line_and_host)
{
    struct config_backend be;
    backend(&be, "10.0.0.5", 8000);
    head_eq("POST /v1/chat/completions?api-version=2&x=%20y HTTP/1.1\r\n"
            "Host: edge.example\r\n\r\n",
            &be, "rid-1",
            "POST /v1/chat/completions?api-version=2&x=%20y HTTP/1.1\r\n"
            "Host: 10.0.0.5:8000\r\n"
            "X-Request-Id: rid-1\r\n");
    backend(&be, "vllm.internal", 80);
    head_eq("GET /v1/models HTTP/1.1\r\nHost: edge\r\n\r\n", &be, "r",
            "GET /v1/models HTTP/1.1\r\n"
            "Host: vllm.internal\r\n"
            "X-Request-Id: r\r\n");
    /* an empty query keeps its '?' */
    head_eq("GET /v1/models? HTTP/1.1\r\nHost: edge\r\n\r\n", &be, "r",
            "GET /v1/models? HTTP/1.1\r\nHost: vllm.internal\r\nX-Request-Id: r\r\n");
    /* absolute-form: origin-form path and query go to the backend */
    backend(&be, "127.0.0.1", 11434);
    head_eq("POST http://edge.example:8080/v1/completions?a=b HTTP/1.1\r\n"
            "Host: edge.example:8080\r\nContent-Length: 0\r\n\r\n",
            &be, "x",
            "POST /v1/completions?a=b HTTP/1.1\r\nHost: 127.0.0.1:11434\r\nX-Request-Id: x\r\n");
    /* HTTP/1.0 client: the backend still gets HTTP/1.1 */
    head_eq("GET /healthz HTTP/1.0\r\n\r\n", &be, "y",
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:11434\r\nX-Request-Id: y\r\n");
}

Test(route, head_drops_hop_by_hop)
{
    struct config_backend be;
    backend(&be, "gpu", 8000);
    head_eq("POST /v1/chat/completions HTTP/1.1\r\n"
            "Host: edge\r\n"
            "Authorization: Bearer sk-1\r\n"
            "Connection: keep-alive, X-Hop\r\n"
            "Keep-Alive: timeout=5\r\n"
            "Content-Type: application/json\r\n"
            "TE: trailers\r\n"
            "Upgrade: h2c\r\n"
            "Proxy-Connection: keep-alive\r\n"
            "Accept: text/event-stream\r\n"
            "Expect: 100-continue\r\n"
            "Accept-Encoding: gzip, br\r\n"
            "Content-Length: 2\r\n"
            "X-Request-Id: from-client\r\n"
            "x-hop: secret\r\n"
            "X-Custom: a, b\r\n"
            "User-Agent: OpenAI/Python 1.40\r\n"
            "X-Custom: second\r\n"
            "\r\n",
            &be, "abc123",
            "POST /v1/chat/completions HTTP/1.1\r\n"
            "Host: gpu:8000\r\n"
            "Authorization: Bearer sk-1\r\n"
            "Content-Type: application/json\r\n"
            "Accept: text/event-stream\r\n"
            "X-Custom: a, b\r\n"
            "User-Agent: OpenAI/Python 1.40\r\n"
            "X-Custom: second\r\n"
            "X-Request-Id: abc123\r\n");
    /* chunked request body: Transfer-Encoding goes too; field names in any case */
    head_eq("POST /v1/completions HTTP/1.1\r\n"
            "HOST: edge\r\n"
            "transfer-encoding: chunked\r\n"
            "CONNECTION: X-Trace-Hop\r\n"
            "X-TRACE-HOP: 1\r\n"
            "x-request-id: zz\r\n"
            "Accept: */*\r\n"
            "\r\n",
            &be, "id",
            "POST /v1/completions HTTP/1.1\r\nHost: gpu:8000\r\nAccept: */*\r\n"
            "X-Request-Id: id\r\n");
}

Test(route, head_authorization)
{
    struct config_backend be;
    backend(&be, "gpu", 8000);
    const char *raw = "POST /v1/completions HTTP/1.1\r\nHost: edge\r\n"
                      "authorization: Bearer sk-for-sluice\r\n"
                      "X-Authorization-Note: kept\r\n"
                      "Proxy-Authorization: Basic eA==\r\n\r\n";
    head_eq_auth(raw, &be, true, "id",
                 "POST /v1/completions HTTP/1.1\r\nHost: gpu:8000\r\n"
                 "X-Authorization-Note: kept\r\nX-Request-Id: id\r\n");
    head_eq_auth(raw, &be, false, "id",
                 "POST /v1/completions HTTP/1.1\r\nHost: gpu:8000\r\n"
                 "authorization: Bearer sk-for-sluice\r\n"
                 "X-Authorization-Note: kept\r\nX-Request-Id: id\r\n");
}

/* RFC 9110 §7.6.1: every field named in Connection is hop-by-hop, whatever
 * the length of its name and however many Connection lines carry the list. */
Test(route, head_drops_long_field_named_in_connection)
{
    struct config_backend be;
    backend(&be, "gpu", 8000);
    head_eq("POST /v1/completions HTTP/1.1\r\nHost: edge\r\n"
            "Connection: X-A-Very-Long-Hop-By-Hop-Field-Name-That-Is-Over-64-Characters-Long\r\n"
            "X-A-Very-Long-Hop-By-Hop-Field-Name-That-Is-Over-64-Characters-Long: secret\r\n"
            "Accept: */*\r\n\r\n",
            &be, "id",
            "POST /v1/completions HTTP/1.1\r\nHost: gpu:8000\r\nAccept: */*\r\n"
            "X-Request-Id: id\r\n");
}

Test(route, head_drops_field_named_in_second_connection_line)
{
    struct config_backend be;
    backend(&be, "gpu", 8000);
    head_eq("POST /v1/completions HTTP/1.1\r\nHost: edge\r\n"
            "Connection: keep-alive\r\n"
            "Connection: X-Hop\r\n"
            "X-Hop: secret\r\n"
            "Accept: */*\r\n\r\n",
            &be, "id",
            "POST /v1/completions HTTP/1.1\r\nHost: gpu:8000\r\nAccept: */*\r\n"
            "X-Request-Id: id\r\n");
}

Test(route, finish_head)
{
    struct config_backend be;
    backend(&be, "gpu", 8000);
    struct h1_request req;
    parse("POST /v1/completions HTTP/1.1\r\nHost: e\r\nContent-Length: 12\r\n\r\n", &req);
    char *out;
    uint32_t len, cap;
    cr_assert_eq(route_build_head(&req, &be, false, "q", 1, &out, &len, &cap), 0);
    uint32_t base = len;
    cr_assert_eq(route_finish_head(&out, &len, &cap, true, 12345678901ull), 0);
    const char *tail = "X-Request-Id: q\r\nContent-Length: 12345678901\r\n\r\n";
    cr_assert_eq(len, base + strlen("Content-Length: 12345678901\r\n\r\n"));
    cr_assert_eq(len, strlen(out));
    cr_assert_str_eq(out + len - strlen(tail), tail);
    cr_assert_leq(len + 1, cap);
    free(out);

    cr_assert_eq(route_build_head(&req, &be, false, "q", 1, &out, &len, &cap), 0);
    cr_assert_eq(route_finish_head(&out, &len, &cap, true, 0), 0);
    cr_assert_str_eq(out + len - strlen("Content-Length: 0\r\n\r\n"), "Content-Length: 0\r\n\r\n");
    free(out);

    parse("GET /v1/models HTTP/1.1\r\nHost: e\r\n\r\n", &req);
    cr_assert_eq(route_build_head(&req, &be, false, "q", 1, &out, &len, &cap), 0);
    base = len;
    cr_assert_eq(route_finish_head(&out, &len, &cap, false, 0), 0);
    cr_assert_eq(len, base + 2);
    cr_assert_str_eq(out, "GET /v1/models HTTP/1.1\r\nHost: gpu:8000\r\nX-Request-Id: q\r\n\r\n");
    free(out);
}

/* ---- route_reqid_valid -------------------------------------------------------- */

Test(route, reqid_valid)
{
    char id[REQID_MAX + 2];
    memset(id, 'a', sizeof id);
    cr_assert(!route_reqid_valid(id, 0), "empty");
    cr_assert(route_reqid_valid(id, 1));
    cr_assert(route_reqid_valid(id, REQID_MAX), "exactly REQID_MAX");
    cr_assert(!route_reqid_valid(id, REQID_MAX + 1), "one over");
    cr_assert(route_reqid_valid("!", 1), "lowest visible");
    cr_assert(route_reqid_valid("~", 1), "highest visible");
    cr_assert(route_reqid_valid("550e8400-e29b-41d4-a716-446655440000", 36));
    cr_assert(route_reqid_valid("a:b/c=d+e_f.g", 13));
    static const char bad[] = {' ',  '\t', '\r',       '\n',       '\0', '"',
                               '\\', 0x7f, (char)0x80, (char)0xff, 0x01, 0x1f};
    for (size_t i = 0; i < sizeof bad; i++) {
        char s[3] = {'a', bad[i], 'b'};
        cr_assert(!route_reqid_valid(s, 3), "byte 0x%02x", (unsigned char)bad[i]);
        cr_assert(!route_reqid_valid(s + 1, 1), "byte 0x%02x alone", (unsigned char)bad[i]);
    }
    /* the length bounds the id */
    cr_assert(route_reqid_valid("ok id", 2));
}

Test(route, validate_max_tokens)
{
    struct vres v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1]}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.max_tokens, 0, "absent");
    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":300}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.max_tokens, 300);
    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":null,"
                             "\"max_completion_tokens\":77}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.max_tokens, 77);
    v = validate(ROUTE_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":500,"
                                    "\"max_completion_tokens\":90}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.max_tokens, 90, "the smaller bound");
    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":99999999999999}");
    cr_assert_eq(v.rc, 0);
    cr_assert_eq(v.max_tokens, UINT32_MAX);
    static const char *const bad[] = {
        "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":0}",
        "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":-5}",
        "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":1.5}",
        "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":\"10\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = validate(ROUTE_CHAT, bad[i]);
        cr_assert_eq(v.rc, API_ERR_INVALID_FIELD, "%s", bad[i]);
        cr_assert_str_eq(v.detail, "'max_tokens' must be a positive integer");
    }
    v = validate(ROUTE_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_completion_tokens\":0}");
    cr_assert_eq(v.rc, API_ERR_INVALID_FIELD);
    cr_assert_str_eq(v.detail, "'max_completion_tokens' must be a positive integer");
}

/* ---- prefix hash (prefix affinity) ------------------------------------------ */

static uint64_t prefix_of(enum route r, const char *body, size_t bytes)
{
    char model[96], detail[256];
    bool st = false;
    uint32_t mt = 0;
    uint64_t h = 7;
    cr_assert_eq(route_validate_ex(r, body, strlen(body), model, sizeof model, &st, &mt, detail,
                                   sizeof detail, bytes, &h),
                 0, "%s", detail);
    return h;
}

Test(route, prefix_hash_follows_the_start_of_the_prompt)
{
    const char *a1 = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
                     "helpful.\"},{\"role\":\"user\",\"content\":\"first question\"}]}";
    const char *a2 = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are helpful.\"},"
                     "{\"role\":\"user\",\"content\":\"another one\"}],\"model\":\"m\"}";
    const char *b = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
                    "terse.\"},{\"role\":\"user\",\"content\":\"first question\"}]}";
    const char *other_model = "{\"model\":\"n\",\"messages\":[{\"role\":\"system\",\"content\":"
                              "\"You are helpful.\"},{\"role\":\"user\",\"content\":\"x\"}]}";
    /* 20 bytes: "system\nYou are help" -- the user turn is past it */
    cr_assert_eq(prefix_of(ROUTE_CHAT, a1, 20), prefix_of(ROUTE_CHAT, a2, 20));
    cr_assert_neq(prefix_of(ROUTE_CHAT, a1, 20), prefix_of(ROUTE_CHAT, b, 20));
    cr_assert_neq(prefix_of(ROUTE_CHAT, a1, 20), prefix_of(ROUTE_CHAT, other_model, 20));
    /* with room for the user turn they differ */
    cr_assert_neq(prefix_of(ROUTE_CHAT, a1, 4096), prefix_of(ROUTE_CHAT, a2, 4096));
    cr_assert_eq(prefix_of(ROUTE_CHAT, a1, 0), 0);
    const char *c1 = "{\"model\":\"m\",\"prompt\":\"Translate: hello\"}";
    const char *c2 = "{\"model\":\"m\",\"prompt\":[\"Translate: world\"]}";
    cr_assert_eq(prefix_of(ROUTE_COMPLETIONS, c1, 10), prefix_of(ROUTE_COMPLETIONS, c2, 10));
}

Test(route, set_host_points_the_head_at_another_backend)
{
    struct config_backend a = {.port = 8000}, b = {.port = 80};
    snprintf(a.host, sizeof a.host, "10.0.0.1");
    snprintf(b.host, sizeof b.host, "gpu-2.internal");
    const char *h0 = "POST /v1/chat/completions HTTP/1.1\r\nHost: 10.0.0.1:8000\r\n"
                     "Content-Type: application/json\r\nX-Request-Id: r1\r\n";
    uint32_t len = (uint32_t)strlen(h0), cap = len;
    char *h = malloc(cap);
    memcpy(h, h0, len);
    cr_assert_eq(route_set_host(&h, &len, &cap, &b), 0);
    const char *want = "POST /v1/chat/completions HTTP/1.1\r\nHost: gpu-2.internal\r\n"
                       "Content-Type: application/json\r\nX-Request-Id: r1\r\n";
    cr_assert_eq(len, strlen(want));
    cr_assert_arr_eq(h, want, len);
    cr_assert_eq(route_set_host(&h, &len, &cap, &a), 0);
    cr_assert_eq(len, strlen(h0));
    cr_assert_arr_eq(h, h0, len);
    free(h);
}
