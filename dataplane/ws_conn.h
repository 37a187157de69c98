/*
 * ws_conn — WebSocket on a client connection (`GET /v1/stream` with
 * `Upgrade: websocket`, RFC 6455), for interactive apps.
 *
 * The client sends a chat completion request as a JSON text message; it
 * becomes a request of a virtual connection (as an HTTP/2 stream does, see
 * h2_conn.h), forced to `"stream": true`, so routing, validation, auth (the
 * upgrade's Authorization), admission and the relay are the usual ones.
 * Each token event of the answer comes back as one text message (the same
 * JSON as the SSE data), then {"type":"done"}; an error as
 * {"type":"error","error":{...}} (the OpenAI shape; "status" when it was an
 * HTTP error).  {"type":"cancel"} stops the stream and cancels the
 * upstream ({"type":"cancelled"} confirms).  One stream at a time per
 * connection; another request meanwhile is refused with an error message.
 *
 * wslay parses and checks the client's frames (masking, opcodes, control
 * frames, fragmentation, message size: close codes 1002, 1003, 1009) and
 * answers pings and closes; data messages to the client are framed here,
 * straight into the connection's outq, because wslay_event_queue_msg
 * allocates and copies every message.  A ping goes out after ping_interval
 * without a byte from the client, and no answer within pong_timeout closes
 * the connection.
 *
 * Owned by the worker that owns the connection; single-threaded.
 */
#ifndef SLUICE_WS_CONN_H
#define SLUICE_WS_CONN_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct h1_request;

/* Answers 101 and turns <c> into a WebSocket connection.  0 or -ENOMEM. */
int ws_start(struct conn *c, const struct h1_request *req);

void ws_on_data(struct conn *c, const char *p, size_t n);
/* Sends what wslay queued; closes the connection when the session is over. */
void ws_produce(struct conn *c);
void ws_on_timer(struct conn *c);
/* Drain: close (1001) once the stream running now, if any, has ended. */
void ws_drain(struct conn *c);
/* The connection closes: the running stream is cancelled, all freed. */
void ws_close(struct conn *c);

/* A virtual connection of a WebSocket has new bytes or has finished. */
void ws_stream_flush(struct conn *vc);
/* It is closed by the request layer: detach it from its session. */
void ws_stream_detach(struct conn *vc);

#endif
