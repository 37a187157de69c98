/* api_error — see api_error.h. */
#include "dataplane/api_error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/h1_parser.h"

struct api_error_def {
    int status;
    int retry_after;
    const char *type;
    const char *code;
    const char *message;
};

static const struct api_error_def defs[API_ERR__COUNT] = {
    [API_ERR_BAD_REQUEST] = {400, 0, "invalid_request_error", "bad_request",
                             "malformed HTTP request"},
    [API_ERR_INVALID_JSON] = {400, 0, "invalid_request_error", "invalid_json",
                              "request body is not valid JSON"},
    [API_ERR_MISSING_FIELD] = {400, 0, "invalid_request_error", "missing_field",
                               "a required field is missing"},
    [API_ERR_INVALID_FIELD] = {400, 0, "invalid_request_error", "invalid_field",
                               "a field has the wrong type"},
    [API_ERR_UNAUTHORIZED] = {401, 0, "authentication_error", "invalid_api_key",
                              "missing or unknown API key"},
    [API_ERR_FORBIDDEN] = {403, 0, "invalid_request_error", "cors_forbidden",
                           "origin, method or headers not allowed by the CORS policy"},
    [API_ERR_NOT_FOUND] = {404, 0, "invalid_request_error", "not_found", "no such route"},
    [API_ERR_METHOD] = {405, 0, "invalid_request_error", "method_not_allowed",
                        "method not allowed for this route"},
    [API_ERR_REQUEST_TIMEOUT] = {408, 0, "invalid_request_error", "request_timeout",
                                 "the request was not received in time"},
    [API_ERR_BODY_TOO_LARGE] = {413, 0, "invalid_request_error", "body_too_large",
                                "request body too large"},
    [API_ERR_URI_TOO_LONG] = {414, 0, "invalid_request_error", "uri_too_long",
                              "request line too long"},
    [API_ERR_HEADERS_TOO_LARGE] = {431, 0, "invalid_request_error", "headers_too_large",
                                   "request header fields too large"},
    [API_ERR_NOT_IMPLEMENTED] = {501, 0, "invalid_request_error", "not_implemented",
                                 "transfer coding not implemented"},
    [API_ERR_VERSION] = {505, 0, "invalid_request_error", "http_version_not_supported",
                         "HTTP version not supported"},
    [API_ERR_INTERNAL] = {500, 0, "server_error", "internal_error", "internal error"},
    [API_ERR_BACKEND_DOWN] = {502, 1, "server_error", "backend_unavailable",
                              "the backend could not be reached"},
    [API_ERR_BACKEND_BAD] = {502, 0, "server_error", "backend_protocol_error",
                             "the backend sent an invalid response"},
    [API_ERR_BACKEND_CLOSED] = {502, 0, "server_error", "backend_closed",
                                "the backend ended the stream before it was complete"},
    [API_ERR_OVERLOADED] = {503, 1, "server_error", "overloaded", "sluice is overloaded"},
    [API_ERR_DRAINING] = {503, 1, "server_error", "draining", "this node is shutting down"},
    [API_ERR_CONNECT_TIMEOUT] = {504, 1, "server_error", "backend_connect_timeout",
                                 "the backend did not accept the connection in time"},
    [API_ERR_FIRST_TOKEN_TIMEOUT] = {504, 0, "server_error", "first_token_timeout",
                                     "no first token from the backend in time"},
    [API_ERR_TOKEN_TIMEOUT] = {504, 0, "server_error", "token_timeout",
                               "the backend stalled between tokens"},
    [API_ERR_SLOW_CONSUMER] = {503, 0, "server_error", "slow_consumer",
                               "the client did not read the stream in time"},
    [API_ERR_TENANT_STREAMS] = {429, 1, "requests", "rate_limit_exceeded",
                                "too many concurrent streams for this tenant"},
    [API_ERR_TENANT_TOKENS] = {429, 1, "tokens", "token_budget_exceeded",
                               "token budget exceeded for this tenant"},
    [API_ERR_TENANT_EXHAUSTED] = {429, 1, "tokens", "token_budget_exhausted",
                                  "the tenant's token budget ran out during the stream"},
    [API_ERR_QUEUE_TIMEOUT] = {503, 1, "server_error", "admission_timeout",
                               "the backends are at capacity; no admission in time"},
    [API_ERR_CANCELLED] = {503, 0, "server_error", "cancelled",
                           "the stream was cancelled by the operator"},
    [API_ERR_STREAM_NOT_FOUND] = {404, 0, "invalid_request_error", "stream_not_found",
                                  "no such stream, or it is no longer retained"},
    [API_ERR_RESUME_GAP] = {410, 0, "invalid_request_error", "resume_gap",
                            "the events after Last-Event-ID are no longer retained"},
    [API_ERR_BAD_LAST_EVENT_ID] = {400, 0, "invalid_request_error", "invalid_last_event_id",
                                   "Last-Event-ID must be <stream-id>:<seq> of this stream, "
                                   "at most its last event"},
    [API_ERR_MODEL_NOT_FOUND] = {404, 0, "invalid_request_error", "model_not_found",
                                 "the model does not exist (no backend serves it)"},
};

int api_error_status(enum api_error e)
{
    return defs[e].status;
}

const char *api_error_type(enum api_error e)
{
    return defs[e].type;
}

const char *api_error_code(enum api_error e)
{
    return defs[e].code;
}

int api_error_retry_after(enum api_error e)
{
    return defs[e].retry_after;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if it is not one
 * (overlong forms, surrogates and code points over U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

size_t api_json_escape(char *buf, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        char esc[8];
        size_t n;
        size_t used = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else if (c < 0x80) {
            esc[0] = (char)c;
            n = 1;
        } else if ((used = utf8_seq(u + i, len - i)) != 0) {
            /* a whole character or nothing: never split one */
            memcpy(esc, u + i, used);
            n = used;
        } else {
            /* not UTF-8 (e.g. client bytes quoted in a parser message) */
            memcpy(esc, "\\ufffd", 6);
            n = 6;
            used = 1;
        }
        if (o + n >= cap)
            break;
        memcpy(buf + o, esc, n);
        o += n;
        i += used;
    }
    if (cap)
        buf[o < cap ? o : cap - 1] = '\0';
    return o;
}

size_t api_error_json(char *buf, size_t cap, enum api_error e, const char *detail)
{
    char msg[512];
    const char *m = detail ? detail : defs[e].message;
    api_json_escape(msg, sizeof msg, m, strlen(m));
    int n = snprintf(buf, cap,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":\"%s\"}}",
                     msg, defs[e].type, defs[e].code);
    return n < 0 ? 0 : (size_t)n;
}

enum api_error api_error_from_h1(int h1_err)
{
    switch (h1_err_status(h1_err)) {
    case 413:
        return API_ERR_BODY_TOO_LARGE;
    case 414:
        return API_ERR_URI_TOO_LONG;
    case 431:
        return API_ERR_HEADERS_TOO_LARGE;
    case 501:
        return API_ERR_NOT_IMPLEMENTED;
    case 505:
        return API_ERR_VERSION;
    default:
        return API_ERR_BAD_REQUEST;
    }
}
