/*
 * h1_parser — zero-copy HTTP/1.1 message-head parser (RFC 9112, RFC 9110).
 *
 * Parses a request head (client side) or a response head (backend side) in
 * place: every string in the result points into the caller's buffer, which
 * must stay unchanged while the result is used.  No allocation, no copy, no
 * state between calls: when more bytes arrive, parse the whole buffer again
 * (heads are bounded by struct h1_limits, so this stays cheap).
 *
 * Requests are parsed strictly, because a proxy that is lenient where the
 * server behind it is strict (or the reverse) is a request-smuggling hole:
 * bare LF line ends, obs-fold, whitespace before a colon, a request with both
 * Content-Length and Transfer-Encoding, Content-Length values that differ,
 * and malformed numbers are all rejected.  Responses from backends accept a
 * bare LF (robustness) but nothing ambiguous about the body length.
 *
 * Pure functions; safe anywhere.
 */
#ifndef SLUICE_H1_PARSER_H
#define SLUICE_H1_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h1_limits {
    uint32_t max_request_line; /* request line incl. CRLF (requests only) */
    uint32_t max_header_bytes; /* the whole head incl. start line and final CRLF */
    uint32_t max_headers;      /* header fields; <= capacity of the caller's array */
    uint64_t max_body;         /* largest Content-Length accepted (requests) */
};

/* Errors, returned negated.  h1_err_status() gives the HTTP status to answer. */
enum h1_err {
    H1_ERR_NONE = 0,
    H1_ERR_SYNTAX,             /* 400 malformed start line or field */
    H1_ERR_BARE_LF,            /* 400 a line ended by LF without CR (requests) */
    H1_ERR_OBS_FOLD,           /* 400 a field line starting with SP/HTAB */
    H1_ERR_SPACE_BEFORE_COLON, /* 400 "Name : value" */
    H1_ERR_BAD_FIELD_NAME,     /* 400 not a token */
    H1_ERR_BAD_FIELD_VALUE,    /* 400 NUL, CR, LF or other CTL in a value */
    H1_ERR_BAD_TARGET,         /* 400 not origin-, absolute- or asterisk-form */
    H1_ERR_BAD_METHOD,         /* 400 not a token */
    H1_ERR_BAD_VERSION,        /* 505 not HTTP/1.0 or HTTP/1.1 */
    H1_ERR_LINE_TOO_LONG,      /* 414 request line over max_request_line */
    H1_ERR_HEAD_TOO_LARGE,     /* 431 head over max_header_bytes */
    H1_ERR_TOO_MANY_HEADERS,   /* 431 more than max_headers fields */
    H1_ERR_BAD_CONTENT_LENGTH, /* 400 not digits, overflow, or differing duplicates */
    H1_ERR_BODY_TOO_LARGE,     /* 413 Content-Length over max_body */
    H1_ERR_CL_AND_TE,          /* 400 both Content-Length and Transfer-Encoding */
    H1_ERR_BAD_TE,             /* 400 chunked not last, chunked twice, or TE in HTTP/1.0 */
    H1_ERR_TE_UNSUPPORTED,     /* 501 a transfer coding other than chunked */
    H1_ERR_BAD_HOST,           /* 400 HTTP/1.1 without Host, or Host twice */
    H1_ERR_BAD_STATUS,         /* 502 (responses) malformed status line */
    H1_ERR_BAD_CHUNK,          /* 400 bad chunked framing (see h1_chunked.h) */
    H1_ERR__COUNT,
};

/* Flags of a parsed head. */
#define H1_F_KEEP_ALIVE      0x01 /* connection may be reused after this message */
#define H1_F_CHUNKED         0x02 /* body uses chunked transfer coding */
#define H1_F_CONTENT_LENGTH  0x04 /* content_length is valid */
#define H1_F_EXPECT_CONTINUE 0x08 /* request: Expect: 100-continue */
#define H1_F_UPGRADE         0x10 /* Connection: upgrade with an Upgrade field */
#define H1_F_CLOSE_DELIMITED 0x20 /* response: body runs until the connection closes */
#define H1_F_NO_BODY         0x40 /* response: 1xx/204/304 or answer to HEAD */

struct h1_header {
    const char *name;
    const char *value; /* leading and trailing whitespace removed */
    uint32_t name_len;
    uint32_t value_len;
};

struct h1_request {
    const char *method;
    const char *target; /* as sent */
    const char *path;   /* target up to '?' (for absolute-form: the path part, "/" if none) */
    const char *query;  /* after '?', without it; NULL when there is no '?' */
    uint32_t method_len;
    uint32_t target_len;
    uint32_t path_len;
    uint32_t query_len;
    uint8_t version_minor; /* 0 or 1 */
    uint32_t flags;        /* H1_F_* */
    uint64_t content_length;
    struct h1_header *headers; /* caller's array, capacity >= limits->max_headers */
    uint32_t n_headers;
    uint32_t head_len; /* bytes of the head, including leading empty lines */
};

struct h1_response {
    uint16_t status;
    uint8_t version_minor;
    uint32_t flags; /* H1_F_* */
    uint64_t content_length;
    const char *reason;
    uint32_t reason_len;
    struct h1_header *headers; /* caller's array, capacity >= limits->max_headers */
    uint32_t n_headers;
    uint32_t head_len;
};

/*
 * Parses the request head at buf[0..len).  <req->headers> must point to an
 * array of at least limits->max_headers entries.
 * Returns the head length (> 0) when the head is complete, 0 when more bytes
 * are needed (and no limit is exceeded yet), or -enum h1_err.
 */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                     struct h1_request *req);

/*
 * Parses a response head at buf[0..len).  <head_request> says the request was
 * HEAD (no body follows whatever the fields say).  Returns as above; 1xx
 * interim responses are returned like any other (flags has H1_F_NO_BODY) and
 * the caller parses the next head after them.
 */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                      bool head_request, struct h1_response *resp);

/* The HTTP status a client gets for <err> (400, 413, 414, 431, 501, 505...). */
int h1_err_status(int err);
/* A short human message for <err>, suitable for an error body. */
const char *h1_err_message(int err);

/* First field named <name> (case-insensitive), or NULL. */
const struct h1_header *h1_header_find(const struct h1_header *h, uint32_t n, const char *name);

/* Does a comma-separated field value contain <token> (case-insensitive)? */
bool h1_list_has_token(const char *value, size_t len, const char *token);
/* The same for a token of <tlen> bytes (not NUL-terminated). */
bool h1_list_has_tokenn(const char *value, size_t len, const char *token, size_t tlen);

/* Does any Connection field among h[0..n) list <name> (RFC 9110 §7.6.1: the
 * list may span several field lines)? */
bool h1_connection_names(const struct h1_header *h, uint32_t n, const char *name, size_t len);

#endif
