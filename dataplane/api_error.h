/*
 * api_error — the one table of errors a client can get from sluice, and
 * their OpenAI-shaped JSON body:
 *   {"error":{"message":"...","type":"...","param":null,"code":"..."}}
 * The same body goes in an HTTP error response before the first byte of a
 * stream, and in an SSE `event: error` after it.  The status, type and code
 * of an error live only here.
 */
#ifndef SLUICE_API_ERROR_H
#define SLUICE_API_ERROR_H

#include <stddef.h>

enum api_error {
    API_ERR_BAD_REQUEST = 0,     /* 400 malformed HTTP (detail from h1_parser) */
    API_ERR_INVALID_JSON,        /* 400 */
    API_ERR_MISSING_FIELD,       /* 400 */
    API_ERR_INVALID_FIELD,       /* 400 */
    API_ERR_UNAUTHORIZED,        /* 401 */
    API_ERR_FORBIDDEN,           /* 403 a CORS preflight or WebSocket Origin not allowed */
    API_ERR_NOT_FOUND,           /* 404 */
    API_ERR_METHOD,              /* 405 */
    API_ERR_REQUEST_TIMEOUT,     /* 408 client too slow to send its request */
    API_ERR_BODY_TOO_LARGE,      /* 413 */
    API_ERR_URI_TOO_LONG,        /* 414 */
    API_ERR_HEADERS_TOO_LARGE,   /* 431 */
    API_ERR_NOT_IMPLEMENTED,     /* 501 unsupported transfer coding */
    API_ERR_VERSION,             /* 505 */
    API_ERR_INTERNAL,            /* 500 */
    API_ERR_BACKEND_DOWN,        /* 502 refused / reset / closed before a response */
    API_ERR_BACKEND_BAD,         /* 502 unparsable response from the backend */
    API_ERR_BACKEND_CLOSED,      /* 502 (stream) the backend ended the stream early */
    API_ERR_OVERLOADED,          /* 503 no capacity (buffers, connections) */
    API_ERR_DRAINING,            /* 503 this node is shutting down */
    API_ERR_CONNECT_TIMEOUT,     /* 504 backend did not accept the connection */
    API_ERR_FIRST_TOKEN_TIMEOUT, /* 504 no first token in time */
    API_ERR_TOKEN_TIMEOUT,       /* 504 (stream) the backend stalled between tokens */
    API_ERR_SLOW_CONSUMER,       /* (stream) client did not read; never seen by it */
    API_ERR_TENANT_STREAMS,      /* 429 tenant at its concurrent-stream limit */
    API_ERR_TENANT_TOKENS,       /* 429 tenant's token budget cannot cover the request */
    API_ERR_TENANT_EXHAUSTED,    /* 429 (stream) the budget ran out while streaming */
    API_ERR_QUEUE_TIMEOUT,       /* 503 no admission within queue_ttl_ms (or shed) */
    API_ERR_CANCELLED,           /* 503 (stream) ended by the operator */
    API_ERR_STREAM_NOT_FOUND,    /* 404 resume: unknown, expired or another tenant's stream */
    API_ERR_RESUME_GAP,          /* 410 resume: events after Last-Event-ID no longer retained */
    API_ERR_BAD_LAST_EVENT_ID,   /* 400 resume: Last-Event-ID not "<stream-id>:<seq>" of it */
    API_ERR_MODEL_NOT_FOUND,     /* 404 no backend serves the requested model */
    API_ERR__COUNT,
};

int api_error_status(enum api_error e);
const char *api_error_type(enum api_error e);
const char *api_error_code(enum api_error e);
/* Seconds for Retry-After, 0 when the error carries none. */
int api_error_retry_after(enum api_error e);

/*
 * Writes the JSON body for <e> into buf (NUL-terminated).  <detail>
 * (may be NULL) replaces the default message; it is JSON-escaped.
 * Returns the length, or the length it would have needed (snprintf rules).
 */
size_t api_error_json(char *buf, size_t cap, enum api_error e, const char *detail);

/* Maps an h1_parser error to the API error a client gets. */
enum api_error api_error_from_h1(int h1_err);

/* JSON-escapes <s> into buf (without quotes).  Returns the length written;
 * output is truncated (never mid-escape) if buf is too small. */
size_t api_json_escape(char *buf, size_t cap, const char *s, size_t len);

#endif
