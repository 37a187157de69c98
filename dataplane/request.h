/*
 * request — reading HTTP/1.1 requests on a client connection and starting
 * their answers: the head (parsed in place by h1_parser), its checks and
 * what is copied out of it (request id, tenant, rollout buckets, CORS, the
 * backend's head), the body (Content-Length or chunked, with its limits),
 * then the dispatch: a local answer, a stream to a backend, or a switch of
 * protocol (`Upgrade: h2c`, the h2c preface, a WebSocket upgrade).
 *
 * The connection itself (sockets, sends, timers, closing) is client.c's;
 * virtual connections (HTTP/2 streams, WebSocket messages) are fed their
 * requests through the same code.  Owned by the worker; single-threaded.
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/client.h"

/* Consumes requests from p[0..n); returns the bytes used (the caller keeps
 * the rest as input for later). */
size_t request_consume(struct conn *c, const char *p, size_t n);

/* The same over the connection's own input buffer, which it trims. */
void request_consume_input(struct conn *c);

/* An error found while reading a request: answer it, then close (the rest
 * of the input cannot be trusted to be a request boundary). */
void request_fail(struct conn *c, int api_err, const char *detail);

/* A fresh X-Request-Id for the connection's current request. */
void request_new_id(struct conn *c);

/* Appends to a growable buffer of at most <max> bytes: 0, -E2BIG or
 * -ENOMEM. */
int request_buf_append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n,
                       size_t max);

#endif
