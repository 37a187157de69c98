/*
 * request — the target URL and the one request llmload sends over and over.
 *
 * Every stream of a run sends the same bytes, so the request (head and body)
 * is built once, before the run, into one buffer that all connections share
 * read-only.  The body is an OpenAI chat or completions request built with
 * jansson (so the model name and prompt are escaped properly), or a file sent
 * as is.  The caller owns the buffer (free()).
 */
#ifndef LLMLOAD_REQUEST_H
#define LLMLOAD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

struct request_url {
    char host[256];      /* without brackets for IPv6 literals */
    char port[8];        /* "80" when not given */
    char authority[300]; /* host[:port] as written, for the Host field */
    char path[2048];     /* path and query; empty when the URL has none */
};

/*
 * Parses http://host[:port][/path].  Returns 0, or -EINVAL with a message in
 * err[0..errlen) (https is refused: llmload speaks cleartext HTTP/1.1 only).
 */
int request_parse_url(const char *s, struct request_url *u, char *err, size_t errlen);

struct request_opts {
    const struct request_url *url;
    const char *path; /* used when url->path is empty or "/" */
    bool completions; /* /v1/completions body ("prompt") instead of chat ("messages") */
    bool stream;
    bool usage; /* stream_options.include_usage */
    const char *model;
    long long max_tokens;       /* < 0: not sent */
    long long prompt_bytes;     /* < 0: a short default prompt */
    const char *body_file;      /* send this file as the body, as is */
    const char *const *headers; /* "Name: value" */
    size_t n_headers;
};

/* Builds the request into a new buffer.  Returns 0, or a negative errno with a message. */
int request_build(const struct request_opts *o, char **out, size_t *len, char *err, size_t errlen);

#endif
