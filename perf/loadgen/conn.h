/*
 * conn — one llmload connection: the socket-side fields the event loop keeps
 * for it, and the protocol state machine that turns the bytes of one HTTP/1.1
 * response into a stream outcome, SSE events, tokens and TTFT/ITL samples.
 *
 * The protocol half never touches the socket: the loop reads into its own
 * buffer, takes the time right after the read, and hands the bytes to
 * conn_feed().  The head is parsed in place by h1_parse_response(), the body
 * is de-chunked in place by h1_chunked_feed(), events are found in place by
 * sse_frame_feed() and classified by sse_event_scan().  Bytes are copied only
 * when a head or an event is split across reads (or chunks): into the
 * connection's carry buffer, which is allocated on first need, grows by
 * doubling up to CONN_EVENT_MAX and is kept for the connection's life, so
 * there is no allocation per event.
 *
 * The outcome of each stream is recorded exactly once (conn_end), in the
 * loop's struct stats and, with --verify, its struct verify_ctx.
 */
#ifndef LLMLOAD_CONN_H
#define LLMLOAD_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/h1_chunked.h"
#include "dataplane/h1_parser.h"
#include "dataplane/sse.h"
#include "perf/loadgen/stats.h"
#include "perf/loadgen/timeseries.h"
#include "perf/loadgen/verify.h"

#define CONN_HEAD_MAX    ((size_t)64 * 1024)   /* largest response head */
#define CONN_MAX_HEADERS 128                   /* header fields in a response head */
#define CONN_EVENT_MAX   ((size_t)1024 * 1024) /* largest SSE event */

/* What the protocol half needs from its event loop; one per loop. */
struct conn_env {
    struct stats *stats;
    struct verify_ctx *verify; /* NULL without --verify */
    struct ts_series *ts;      /* NULL without --timeseries */
    int64_t slo_ttft_ns;       /* --slo-ttft; < 0: none (every stream meets it) */
    bool stream;               /* requests ask for an SSE stream */
    atomic_llong *inflight;    /* streams started and not ended, all loops */
    struct h1_limits limits;
    struct h1_header headers[CONN_MAX_HEADERS];
    char aux[CONN_HEAD_MAX]; /* body bytes that followed a head assembled in carry */
};

/* Results of conn_feed() and conn_eof(). */
enum conn_rc {
    CONN_MORE = 0,  /* the response goes on */
    CONN_ENDED = 1, /* the stream ended and was recorded; see reusable */
    CONN_RETRY = 2, /* a kept-alive connection closed before any byte: resend */
};

struct conn {
    /* Loop side (loop.c) */
    int fd;
    uint32_t index;    /* global connection number */
    uint32_t gen;      /* sockets opened so far: tells stale epoll events apart */
    uint8_t state;     /* loop.c's slot state */
    bool reused;       /* the socket already carried a response */
    bool retrying;     /* the current stream is being resent after a stale socket */
    uint32_t requests; /* streams started by this slot */
    size_t wr_off;     /* request bytes written */
    int64_t t_start;   /* stream start (connect or first write), for --timeout */
    int64_t t_wake;    /* backoff: when to try again */

    /* Protocol side */
    int64_t t_sent;     /* last request byte written */
    int64_t t_last_tok; /* previous content event */
    uint64_t rx;        /* response bytes so far */
    uint64_t body_left; /* Content-Length bytes still expected */
    uint32_t tokens;
    uint32_t retry_after_ms; /* Retry-After of a non-2xx answer, 0 if none */
    uint16_t status;
    uint8_t phase;     /* head or body */
    uint8_t body_mode; /* none, length, chunked, until close */
    bool keep_alive;
    bool sse;       /* this response is parsed as an event stream */
    bool done;      /* [DONE] seen */
    bool sse_error; /* `event: error` seen */
    bool reusable;  /* after CONN_ENDED: the socket may carry the next request */
    bool slo_ok;    /* the first token came within --slo-ttft */
    struct h1_chunked chunk;
    struct sse_framer framer;
    char *carry; /* partial head or event */
    uint32_t carry_len;
    uint32_t carry_cap;
    struct verify_stream vs;
};

void conn_init(struct conn *c, uint32_t index);
/* Frees the carry buffer (the loop closes the socket). */
void conn_free(struct conn *c);

/* A new stream starts on this connection (before its request is written). */
void conn_begin(struct conn *c, struct conn_env *env);

/* The last request byte was written at <now>. */
void conn_sent(struct conn *c, int64_t now);

/* Bytes p[0..n) read at <now>.  Returns enum conn_rc. */
int conn_feed(struct conn *c, struct conn_env *env, const char *p, size_t n, int64_t now);

/* The peer closed (or reset, <reset>) the connection at <now>.  Returns enum conn_rc. */
int conn_eof(struct conn *c, struct conn_env *env, bool reset, int64_t now);

/* Ends the stream with a failure decided outside the protocol (connect, timeout, eof). */
void conn_end(struct conn *c, struct conn_env *env, enum stats_outcome o);

#endif
