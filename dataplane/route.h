/*
 * route — what a request is: which route it matches, whether its JSON body
 * is acceptable, and the request head that goes to the backend.
 *
 * The body of a completion request is validated with jansson (a JSON object,
 * `model` a non-empty string, `messages` an array for chat or `prompt` a
 * string or array for completions, `stream` a boolean when present) and then
 * forwarded byte for byte: sluice never re-serialises what the client sent.
 * The backend head keeps the client's method, path and query and its
 * end-to-end fields; hop-by-hop fields (RFC 9110 §7.6.1, plus any the client
 * lists in Connection), Host, Content-Length, Expect and Accept-Encoding
 * (sluice must read the stream it relays) are replaced; Authorization too
 * when sluice itself checks API keys (the key is for sluice, not the backend).
 *
 * Pure functions apart from the allocation of the head buffer.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/client.h"
#include "dataplane/h1_parser.h"
#include "shared/config.h"

/* Finds the route of <path>.  *method_ok says whether <method> is allowed;
 * *allow is the Allow field value for a 405. */
enum route route_match(const char *method, size_t method_len, const char *path, size_t path_len,
                       bool *method_ok, const char **allow);

/* Validates a completion body.  Returns 0 and fills model, is_stream and
 * max_tokens (the smaller of max_tokens and max_completion_tokens, 0 when
 * neither is given; each must be a positive integer or null), or an
 * api_error with a message in <detail>. */
int route_validate(enum route r, const char *body, size_t len, char *model, size_t model_cap,
                   bool *is_stream, uint32_t *max_tokens, char *detail, size_t detail_cap);

/* The same, and with <prefix_bytes>, a hash of the model and the prompt's
 * first <prefix_bytes> bytes (roles and text of the messages, or the
 * prompt) into *prefix (0 when prefix_bytes is 0): requests that share a
 * system prompt and the start of a conversation share it (balance.c's
 * prefix affinity). */
int route_validate_ex(enum route r, const char *body, size_t len, char *model, size_t model_cap,
                      bool *is_stream, uint32_t *max_tokens, char *detail, size_t detail_cap,
                      size_t prefix_bytes, uint64_t *prefix);

/* Builds the backend request head (request line and fields, without the
 * Content-Length and the final CRLF) into a new buffer.  Returns 0 or
 * -ENOMEM. */
int route_build_head(const struct h1_request *req, const struct config_backend *be,
                     bool drop_authorization, const char *reqid, size_t reqid_len, char **out,
                     uint32_t *out_len, uint32_t *out_cap);

/* Points a head route_build_head made at another backend: its Host field
 * becomes <be>'s (a request moves between backends).  0, -EINVAL (no Host
 * line) or -ENOMEM. */
int route_set_host(char **head, uint32_t *len, uint32_t *cap, const struct config_backend *be);

/* The request target of a head (its path and query) becomes <target> /
 * is copied out (NUL-terminated).  0, -EINVAL, -ENOMEM. */
int route_set_target(char **head, uint32_t *len, uint32_t *cap, const char *target);
int route_get_target(const char *head, uint32_t len, char *out, size_t cap);
/* The Content-Length route_finish_head wrote becomes <body_len>.  0, -EINVAL
 * (none), -ENOMEM. */
int route_set_length(char **head, uint32_t *len, uint32_t *cap, uint64_t body_len);

/* Appends "Content-Length: N\r\n\r\n" when <has_body>, else just the final
 * CRLF.  0 or -ENOMEM. */
int route_finish_head(char **head, uint32_t *len, uint32_t *cap, bool has_body, uint64_t body_len);

/* Is <id> acceptable as an X-Request-Id to echo (1..REQID_MAX visible ASCII
 * without quotes or backslashes)? */
bool route_reqid_valid(const char *id, size_t len);

#endif
