/*
 * client — an HTTP/1.1 client connection: reading requests (head, body,
 * pipelined requests in order), answering local routes and errors, handing
 * completion requests to a stream, and sending the response bytes that the
 * stream leaves in the connection's outq.
 *
 * A connection reads with one multishot receive on the worker's provided
 * buffers.  A request head that arrives whole in one buffer is parsed in
 * place; only a split head, a body, or bytes after the current request are
 * copied into the connection's own input buffer, which is freed again when
 * it empties (an idle keep-alive connection holds no buffer at all).
 *
 * Owned by its worker; freed by client_release() only when closed and no
 * SQE of it is in flight.
 */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/h1_chunked.h"
#include "dataplane/outq.h"
#include "dataplane/timer_wheel.h"
#include "dataplane/worker.h"
#include "shared/list.h"
#include "shared/rollout.h"

#define REQID_MAX 64

enum conn_state {
    CS_HEAD = 0, /* waiting for (the rest of) a request head */
    CS_BODY,     /* reading a request body */
    CS_BUSY,     /* a response is being produced or sent */
    CS_LINGER,   /* final bytes sent, write side shut, draining input */
    CS_CLOSED,   /* close submitted */
};

enum route {
    ROUTE_NONE = 0,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_MODELS,
    ROUTE_HEALTHZ,
    ROUTE_PREFLIGHT,       /* a CORS preflight, answered here */
    ROUTE_WS,              /* GET /v1/stream, a WebSocket upgrade */
    ROUTE_RESUME,          /* GET /v1/streams/<id>, resuming a stream (resume.c) */
    ROUTE_OLLAMA_CHAT,     /* POST /api/chat: Ollama-native, to Ollama backends */
    ROUTE_OLLAMA_GENERATE, /* POST /api/generate */
};

struct stream;
struct h2_sess;
struct h2_stream;
struct ws_sess;
struct tls_conn;
struct ws_stream;

struct conn {
    struct tw_entry timer;
    struct list_node node;       /* worker->conns */
    struct list_node rearm_node; /* worker->rearm */
    struct worker *w;
    struct conn *dirty_next;
    int fd;        /* fixed-file index, or a plain fd */
    uint8_t state; /* enum conn_state */
    bool fixed;
    bool recv_armed;
    bool send_busy;
    bool dirty;
    bool keepalive;   /* the current request allows reuse */
    bool close_after; /* close once the outq is empty */
    bool http10;      /* client spoke HTTP/1.0 */
    bool expect_continue;
    bool input_paused;   /* too much pipelined input: receive cancelled */
    bool counted;        /* the current request was counted in requests_total */
    bool resp_done;      /* every byte of the response is queued */
    bool in_request;     /* a request is being read or answered */
    bool head_timing;    /* the header timeout runs for the head being read */
    bool shut_busy;      /* a shutdown is in flight on the socket */
    bool close_deferred; /* close once that shutdown completes */
    bool rst;            /* close with a reset */
    bool virt;           /* a virtual connection: one HTTP/2 stream, no socket */
    bool internal;       /* from another worker, over its resume socket (resume.c) */
    bool cancelled;      /* virt: the client reset the HTTP/2 stream (nothing to resume) */
    bool resume_cancel;  /* ROUTE_RESUME: DELETE, not GET */
    uint16_t inflight;
    struct h2_sess *h2;    /* this socket speaks HTTP/2 (h2_conn.c) */
    struct h2_stream *h2s; /* virt: the stream it serves */
    struct ws_sess *ws;    /* this socket speaks WebSocket (ws_conn.c) */
    struct ws_sess *wsp;   /* virt: the WebSocket it answers */
    struct ws_stream *wss; /* virt: how far its answer went */
    char *h2_settings;     /* HTTP2-Settings of an `Upgrade: h2c` request */
    char *cors;            /* CORS header lines for this request's answer (allowed Origin) */
    struct tls_conn *tls;  /* TLS on this socket (tls.c): c->out is plaintext */

    /* bytes received and not yet consumed */
    char *in;
    uint32_t in_len;
    uint32_t in_cap;

    /* the request being read */
    enum route route;
    char *up_head; /* head for the backend, built from the client's head */
    uint32_t up_head_len;
    uint32_t up_head_cap;
    char *body;
    uint64_t body_len;
    uint64_t body_cap;
    uint64_t body_left; /* Content-Length bytes still to read */
    bool body_chunked;
    bool body_discard; /* read and drop (request already answered) */
    struct h1_chunked chunk;
    int pending_err;      /* api_error to answer once the body is read, or -1 */
    char *err_detail;     /* its message (heap, rare path) */
    const char *allow;    /* Allow field for a 405 (static string) */
    const char *tenant;   /* from auth (config string), NULL = not authorized */
    uint64_t t_start_ns;  /* request head complete */
    uint64_t deadline_ms; /* current timer deadline, for the state */

    struct outq out;
    struct stream *st;
    uint32_t nreq;
    char reqid[REQID_MAX + 1];
    uint8_t reqid_len;
    uint16_t status;                    /* status of the response being sent */
    uint32_t retry_after_s;             /* overrides the error's Retry-After once */
    uint8_t rollout_bucket[FEAT_COUNT]; /* the request's bucket per feature (0..99) */
    char resume_id[16 + 1];             /* ROUTE_RESUME: the stream asked for (STREAM_ID_LEN) */
    uint64_t resume_after;              /* ... and its client's Last-Event-ID seq */
    uint64_t prefix;                    /* the request's prompt-prefix hash (route.c), 0 = none */
    bool usage_injected;                /* sluice added stream_options.include_usage */
};

/* A new connection from the accept ring (fd = fixed index when <fixed>),
 * on the TLS listener when <tls>.  NULL when it was refused (closed). */
struct conn *client_accept(struct worker *w, int fd, bool fixed, bool tls);

/* The http2_transport bucket of a connection that has sent no request: a
 * connection has no session id or tenant yet, so it is bucketed by the
 * worker and its count of accepted connections (a share of connections). */
unsigned client_conn_bucket(const struct conn *c);

void client_on_recv(struct conn *c, struct io_uring_cqe *cqe);
void client_on_send(struct conn *c, struct io_uring_cqe *cqe, bool zc);
void client_on_shut(struct conn *c, struct io_uring_cqe *cqe);
void client_on_close(struct conn *c, struct io_uring_cqe *cqe);
void client_on_timer(struct conn *c);

/* Prepares the next send if there are committed bytes and none in flight. */
void client_flush(struct conn *c);

/* Re-arms a receive that stopped for lack of buffers. */
void client_rearm(struct conn *c);

/* Called by the stream when the response is complete (all bytes queued);
 * the connection finishes the request once they are sent. */
void client_stream_done(struct conn *c);

/* Called by the stream when the client must go: closes at once. */
void client_abort(struct conn *c);
/* The same, with a TCP reset that discards what the client has not read. */
void client_abort_reset(struct conn *c);

/* A virtual connection for one HTTP/2 stream (h2_conn.c): no socket, its
 * request fed with client_feed, its response read from its outq.  Not in
 * the worker's connection list or count. */
struct conn *client_virtual_new(struct worker *w);
/* Bytes of a request for a virtual connection, as if received. */
void client_feed(struct conn *vc, const char *p, size_t n);
/* The HTTP/2 stream of <vc> is over (closed by the peer, or the session
 * went away): the request ends as if its client had gone, unless <done>
 * (every response byte was sent); vc is freed at the end of the turn. */
void client_virtual_close(struct conn *vc, bool done);
/* The HTTP/2 or WebSocket session of a connection is over: close it
 * gracefully. */
void client_proto_finished(struct conn *c);
/* Ends the current request's state (its stream, body, buffers), ready for
 * the next one. */
void client_reset_request(struct conn *c);
/* (Re)arms the connection's timer <ms> from now. */
void client_set_timer(struct conn *c, uint32_t ms);

/* "OK", "Not Found"... for a status line. */
const char *client_reason(int status);

/* Frees a closed connection once nothing of it is in flight. */
void client_maybe_free(struct conn *c);

/* Drain: closes connections idle between requests and stops reusing the
 * others; one that has not sent its first request still gets it answered. */
void client_drain(struct worker *w);

/* Writes a complete local response (status line, headers, JSON body) into
 * the outq and commits it. */
int client_respond(struct conn *c, int status, const char *extra_headers, const char *ctype,
                   const char *body, size_t body_len);

/* The OpenAI-shaped error response for <e>, with <detail> as the message
 * (may be NULL). */
void client_respond_error(struct conn *c, int api_err, const char *detail);

#endif
