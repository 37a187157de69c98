/*
 * cors — Cross-Origin Resource Sharing for browser apps that call sluice
 * directly: which origins may read its answers, the preflight (OPTIONS)
 * answered at the edge, and the Origin check of a WebSocket upgrade.
 *
 * The lists come from [cors] in the config: allow_origins (comma-separated
 * exact origins, or "*"; empty = CORS off), allow_methods, allow_headers,
 * max_age, allow_credentials.  Origins are compared byte for byte (a
 * browser sends the serialized origin: scheme://host[:port], lowercase).
 *
 * Pure functions over the config; no state, no allocation.
 */
#ifndef SLUICE_CORS_H
#define SLUICE_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/config.h"

/* CORS configured at all. */
bool cors_enabled(const struct config *cfg);

/* May <origin> (len bytes) read answers? */
bool cors_origin_allowed(const struct config *cfg, const char *origin, size_t len);

/* Is <method> among allow_methods (a preflight's Access-Control-Request-Method)? */
bool cors_method_allowed(const struct config *cfg, const char *method, size_t len);

/* Are all of <headers> (a preflight's Access-Control-Request-Headers, a
 * comma-separated list) among allow_headers?  Case-insensitive. */
bool cors_headers_allowed(const struct config *cfg, const char *headers, size_t len);

/* Writes the response header lines (each ending in CRLF) for an allowed
 * origin: Access-Control-Allow-Origin (the origin itself, or "*" when the
 * list is "*" and credentials are not allowed), Vary: Origin, and for a
 * preflight the allowed methods, headers and max age, otherwise the
 * exposed headers.  Returns the length, or 0 when they do not fit. */
size_t cors_header_lines(const struct config *cfg, const char *origin, size_t len, bool preflight,
                         char *out, size_t cap);

#endif
