/*
 * upstream_h2 — HTTP/2 to a backend that speaks it (`[backend] http2`, h2c
 * with prior knowledge): a worker's requests to that backend share a few
 * connections, one stream each, instead of holding a connection each.
 *
 * A session is one TCP connection (an upconn in transport role: upstream.c
 * connects it and receives on it, this module sends on it) and an nghttp2
 * client session.  Each request gets a "virtual" upconn (no socket) that the
 * stream holds as it holds an HTTP/1.1 connection: the request head the
 * stream built is sent as a HEADERS frame, its body as DATA; the response's
 * HEADERS become the h1_response stream_on_head expects, its DATA the body
 * spans, END_STREAM the end, RST_STREAM or a lost connection an upstream
 * error (before the head: failover as usual).  A new session opens when
 * every session is at the backend's SETTINGS_MAX_CONCURRENT_STREAMS (or
 * after GOAWAY).
 *
 * Backpressure is HTTP/2 flow control: received DATA is acknowledged
 * (WINDOW_UPDATE) only while the stream is not paused, so a slow client
 * stops its backend stream within one window (stream_buffer_max), and the
 * other streams on the connection go on.  Cancelling is RST_STREAM(CANCEL):
 * the backend stops that generation at once, the connection stays.
 *
 * Owned by its worker; single-threaded.
 */
#ifndef SLUICE_UPSTREAM_H2_H
#define SLUICE_UPSTREAM_H2_H

#include <stdbool.h>
#include <stddef.h>

struct worker;
struct backend_pool;
struct stream;
struct upconn;
struct uh2;

/* A stream on a session of <pool>'s backend: 0 or -errno. */
int uh2_acquire(struct worker *w, struct backend_pool *pool, struct stream *st);

/* The virtual upconn's stream lets go (RST_STREAM unless the response
 * ended; <cancel> counts a cancellation); it is freed. */
void uh2_release(struct upconn *u, bool cancel);
void uh2_pause(struct upconn *u);
void uh2_resume(struct upconn *u);

/* The transport's reports (from upstream.c). */
void uh2_connected(struct uh2 *s);
void uh2_on_data(struct uh2 *s, const char *p, size_t n);
void uh2_on_send(struct uh2 *s, int res);
/* The transport is closing: every stream on it fails, the session goes. */
void uh2_transport_closed(struct uh2 *s);

/* Closes <pool>'s sessions that carry no stream (drain, exit). */
void uh2_close_idle(struct backend_pool *pool);

#endif
