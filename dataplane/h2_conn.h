/*
 * h2_conn — HTTP/2 on a client connection (h2c by prior knowledge or by
 * `Upgrade: h2c`), with nghttp2 as the framing engine and the worker's
 * io_uring loop doing all I/O: received bytes are fed to the session, and
 * the frames it produces are appended to the connection's outq, which the
 * connection sends as it sends HTTP/1.1 responses.
 *
 * Each HTTP/2 stream is served by a "virtual" client connection (struct
 * conn without a socket, conn->h2s set): the request's headers and body are
 * handed to it as the HTTP/1.1 request they mean, so routing, validation,
 * auth, admission and the stream relay are the same code for every
 * protocol.  The virtual connection writes its response into its own outq
 * as an HTTP/1.1 response without chunking; this module turns the head into
 * a HEADERS frame and sends the body as DATA frames straight from that outq
 * (NGHTTP2_DATA_FLAG_NO_COPY: the bytes are copied once, into the socket's
 * outq, behind the 9-byte frame header).
 *
 * Backpressure: a stream's DATA goes only as far as HTTP/2 flow control and
 * the socket's outq allow; what is left stays in the stream's outq, which is
 * what the relay watches to pause its backend, exactly as for HTTP/1.1.
 *
 * Defences: SETTINGS_MAX_CONCURRENT_STREAMS, a header list limit
 * (max_header_bytes / max_headers, answered 431), nghttp2's reset-rate
 * limit (rapid reset: GOAWAY when a client resets faster than reset_rate
 * after a burst of reset_burst), a bound on SETTINGS entries and on the
 * SETTINGS/PING acks we owe (floods), and a fixed HPACK table size (bombs
 * are bounded by the header list limit).  Drain sends GOAWAY and lets open
 * streams finish.
 *
 * Owned by the worker that owns the connection; single-threaded.
 */
#ifndef SLUICE_H2_CONN_H
#define SLUICE_H2_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct worker;

/* The 24-byte client connection preface. */
#define H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Whether a new connection may speak HTTP/2 now: [http2] enabled and the
 * http2_transport rollout (<bucket> 0..99; a connection with no request yet
 * is bucketed by the worker's connection count). */
bool h2_allowed(struct worker *w, unsigned bucket);

/* Turns <c> (an HTTP/1.1 connection that has read nothing of a request
 * yet) into an HTTP/2 connection that has received the preface; the bytes
 * from the preface on are fed with h2_on_data.  When <refuse>, the session
 * only sends GOAWAY (HTTP_1_1_REQUIRED) and the connection closes.
 * 0 or -ENOMEM. */
int h2_start(struct conn *c, bool refuse);

/* `Upgrade: h2c`: the request <c> has just read becomes stream 1 of a new
 * session.  Writes the 101 answer, decodes <settings> (HTTP2-Settings,
 * base64url), and returns the virtual connection that must now answer the
 * request (the caller moves the request into it), or NULL (bad settings or
 * no memory: the caller answers over HTTP/1.1). */
struct conn *h2_upgrade(struct conn *c, const char *settings, size_t settings_len);

/* Received bytes of an HTTP/2 connection. */
void h2_on_data(struct conn *c, const char *p, size_t n);

/* Produces frames into c->out (the connection's flush, once per loop turn);
 * closes the connection when the session is over. */
void h2_produce(struct conn *c);

/* The connection's timer: idle with no stream open -> GOAWAY and close. */
void h2_on_timer(struct conn *c);

/* Drain: GOAWAY now; the open streams finish. */
void h2_drain(struct conn *c);

/* The connection is closing: every stream's request is cancelled, the
 * session freed. */
void h2_close(struct conn *c);

/* A virtual connection has new committed bytes, or finished its response:
 * its response head is submitted or its DATA resumed. */
void h2_stream_flush(struct conn *vc);

/* A virtual connection is closed by the request layer: the stream is reset
 * (CANCEL, or INTERNAL_ERROR when <rst>) if still open, and the two are
 * detached.  The caller frees vc. */
void h2_stream_detach(struct conn *vc, bool rst);

/* Frees what the stream held besides vc itself. */
void h2_stream_free(struct conn *vc);

#endif
