/*
 * stream — one proxied request, from the moment its body is validated to the
 * last byte relayed: it holds the request for the backend, follows the
 * backend's response, frames a text/event-stream into events as bytes
 * arrive and relays each at once with an `id: <stream-id>:<seq>` line,
 * measures time to first token and inter-token gaps, applies backpressure
 * (a client that does not read pauses the backend connection, and is cut
 * after slow_consumer_timeout), and turns every failure into the right
 * answer: 502/504 before the first byte, `event: error` after it.
 *
 * Events are assembled in place in the client's outq (stream_event.c).  A
 * stream inside the stream_resume rollout also keeps them in an event log
 * and outlives its client's connection for a while (resume.c).
 *
 * Owned by its client connection (HTTP/1.1: one at a time), or, detached,
 * by its worker's list of resumable streams; the upstream
 * connection points back to it while attached.
 */
#ifndef SLUICE_STREAM_H
#define SLUICE_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dataplane/admit_queue.h"
#include "dataplane/continuation.h"
#include "dataplane/outq.h"
#include "dataplane/sse.h"
#include "dataplane/usage_scan.h"
#include "dataplane/xlat.h"
#include "dataplane/timer_wheel.h"
#include "shared/hist.h"
#include "shared/list.h"

struct conn;
struct upconn;
struct backend_pool;
struct h1_response;

enum stream_phase {
    SP_UPSTREAM = 0, /* connecting, sending, waiting for the response head */
    SP_RELAY,        /* response head seen, relaying the body */
    SP_DONE,         /* everything queued for the client */
};

enum relay_mode {
    RM_SSE = 0, /* text/event-stream: framed into events */
    RM_RAW,     /* anything else: bytes as they come */
    RM_LINES,   /* Ollama-native NDJSON: line by line (xlat.c) */
    RM_OLLAMA,  /* Ollama NDJSON translated into OpenAI SSE events (xlat.c) */
    RM_WHOLE,   /* a whole answer, translated when it ends (xlat.c) */
};

#define STREAM_ID_LEN 16

struct stream_retain;

struct stream {
    struct tw_entry timer;
    struct list_node wait_node; /* worker->slab_wait */
    struct worker *w;
    struct conn *c;           /* NULL while a resumable stream is detached (resume.c) */
    struct stream_retain *rt; /* resumable: its event log (resume.c), else NULL */
    const char *tenant_name;  /* the client's tenant (config string) */
    struct upconn *up;
    struct backend_pool *pool;
    uint8_t phase;       /* enum stream_phase */
    uint8_t mode;        /* enum relay_mode */
    bool is_completion;  /* counted in streams_active, has TTFT */
    bool client_sse;     /* the client asked for a stream ("stream": true) */
    bool head_committed; /* client saw the first byte */
    bool chunked_out;    /* client body in chunked coding */
    bool first_content;
    bool in_event;
    bool done_seen;      /* data: [DONE] relayed */
    bool paused;         /* upstream receive stopped: client too slow */
    bool slab_paused;    /* upstream receive stopped: slab pool low */
    bool retried;        /* request re-sent after a stale pooled connection */
    bool up_finished;    /* backend response complete */
    bool head_written;   /* response head in the outq (maybe uncommitted) */
    bool reused_last;    /* the failed attempt used a pooled connection */
    bool got_bytes_last; /* and got response bytes on it */
    bool forwarded;      /* a resume relayed to the worker holding the stream: ids kept */
    bool heap_events;    /* events assembled in <big>, not in the client's outq (resume.c) */
    bool failing;        /* stream_fail is answering (it runs once) */
    bool bk_counted;     /* counted in its backend's outstanding requests (balance.c) */
    uint8_t bk;          /* the backend it is on (index in the config) */
    uint8_t attempts;    /* backends it moved to before its first byte (failover) */
    uint64_t tried;      /* bit per backend already tried */
    uint64_t attempt_ms; /* this attempt's start: its first-token deadline counts from here */
    bool chat;           /* /v1/chat/completions (else /v1/completions) */
    uint64_t prefix;     /* prompt-prefix hash for backend affinity, 0 = none */
    bool priority;       /* its tenant may use the reserved backend capacity */
    bool strip_usage;    /* sluice asked for the usage chunk: the client does not get it */
    bool usage_seen;     /* the backend's usage chunk came: usage_tokens is its count */
    uint32_t usage_tokens;
    bool cont;             /* may continue on another backend mid-answer (continuation.c) */
    bool continuing;       /* this attempt continues: no head, its first events skipped */
    struct cont_text text; /* cont: the answer so far */
    char *cont_body;       /* cont: the client's request body, kept past the first byte */
    size_t cont_body_len;
    char *cont_req; /* the body of the continuation being sent */
    char id[STREAM_ID_LEN + 1];
    uint64_t seq;
    uint64_t t0_ns;     /* request received */
    uint64_t t_last_ns; /* last content event */
    uint64_t blocked_since_ms;
    uint32_t tokens;
    uint16_t status; /* status line sent to the client */

    /* the request for the backend: head + the client's body (not copied) */
    char *req_head;
    uint32_t req_head_len;
    uint32_t req_head_cap;
    const char *req_body;
    uint64_t req_body_len;
    uint64_t req_sent;

    /* response framing towards the client */
    struct outq_mark head_mark; /* where the (uncommitted) response head starts */
    struct sse_framer fr;
    struct usage_scan usage;  /* a non-streamed completion's body: its token count */
    struct outq_mark ev_mark; /* event being assembled */
    uint32_t ev_prefix;       /* chunk-size line + id line before its bytes */
    char *big;                /* an event larger than a slab, assembled here */
    uint32_t big_len;
    uint32_t big_cap;

    struct hist *ttft_hist;
    char model[96];
    struct xlat xl; /* a backend of another API than the client's */

    /* admission (admission.c) */
    struct aq_entry aq;       /* in the worker's admission queue while waiting */
    struct list_node ft_node; /* worker->awaiting_ft: admitted, no first token yet */
    uint64_t adm_ns;          /* when it was admitted (its backend TTFT starts) */
    uint32_t adm_rank;        /* streams admitted on the node with it, itself included */
    uint64_t enq_ms;          /* when it started waiting, 0 = never */
    int64_t want_tokens;      /* max_tokens, or the tenant's default */
    int64_t reserved;         /* tokens of the reservation not used yet */
    int64_t prepaid;          /* tokens taken from the bucket beyond it, not used yet */
    uint32_t retry_after_s;   /* for a 429 */
    uint16_t tenant;          /* index in the shared tenant table, UINT16_MAX = none */
    uint8_t features;         /* rollout: bit per enum rollout_feature */
    bool admitted;            /* holds a node slot and its tenant's stream count */
    bool governed;            /* subject to the governor's limit (adaptive_governor) */
    bool budgeted;            /* its tenant has a token budget */
    bool overdue;             /* reported: no first token target_ttft_ms after admission */
    uint8_t end_flags;        /* EVF_*: how it ended, for the QoS windows */
};

/* Creates the stream for the client's current request and starts it (pool
 * or connect, then send).  <head> is the request head for the backend
 * without its final CRLF and Content-Length (the stream adds them). */
int stream_start(struct conn *c, bool is_completion, bool client_sse, const char *model, char *head,
                 uint32_t head_len, uint32_t head_cap, const char *body, uint64_t body_len,
                 uint32_t max_tokens);

/* Starts relaying a resume request to the worker holding the stream
 * (resume.c): no admission, the events passed on with their own ids. */
int stream_start_forward(struct conn *c, struct backend_pool *pool, char *head, uint32_t head_len,
                         uint32_t head_cap);

/* Admission (admission.c) reports on a stream that waited in its queue:
 * admitted (the upstream request starts), or refused with <api_err>. */
void stream_admitted(struct stream *st);
void stream_admission_failed(struct stream *st, int api_err);
/* Ends the stream at once (an operator's command, or its client's DELETE):
 * `event: error` (code `cancelled`, <why> as its message) or an error
 * response, upstream cancelled. */
void stream_cancel(struct stream *st, const char *why);

/* Upstream side reports. */
void stream_on_sent(struct stream *st); /* request fully sent */
int stream_on_head(struct stream *st, const struct h1_response *r);
/* Body bytes from the backend.  Returns 0, or <0 when the stream failed
 * (already reported to the client). */
int stream_on_body(struct stream *st, const char *p, size_t len);
void stream_on_body_end(struct stream *st);
/* The backend connection failed; <api_err> says how. */
void stream_on_upstream_error(struct stream *st, int api_err);

/* Client side reports. */
void stream_on_client_sent(struct stream *st); /* a send completed */
void stream_on_client_gone(struct stream *st); /* disconnect: cancel upstream */

void stream_on_timer(struct stream *st);
/* Slabs are available again: resume a stream paused for them. */
void stream_slab_resume(struct stream *st);

/* The client connection lets go of the stream: the response is over, or
 * with <gone> the client went away.  A resumable stream is retained;
 * anything else ends (the upstream cancelled if <gone>) and is freed. */
void stream_release(struct stream *st, bool gone);
/* Nobody will read the stream again: cancel its upstream, free it. */
void stream_abandon(struct stream *st);
/* Ends the stream with <err> (an api_error): an error response if the
 * client has seen nothing yet, an `event: error` inside an event stream, a
 * cut connection inside any other body.  Runs once. */
void stream_fail(struct stream *st, int err, const char *detail);
/* Everything written to the client's outq so far, the response head
 * included, may go out. */
void stream_commit(struct stream *st);
/* Moves the request to another backend before the client's first byte
 * (failover), or, with continue_streams, continues a broken answer on
 * another backend.  False when it cannot; stream_head.c calls them when a
 * backend's head refuses the request. */
bool stream_failover(struct stream *st, const char *why, bool cancel);
bool stream_continue(struct stream *st, const char *why);
/* Writes the client's response head (uncommitted until the first body
 * bytes): <status>, Content-Type <ctype>, the framing, and for an event
 * stream the no-cache fields.  0 or <0 (the stream failed). */
int stream_write_head(struct stream *st, unsigned status, const char *ctype, bool sse);
/* Restarts the upstream's receive unless something still holds it. */
void stream_upstream_kick(struct stream *st);
void stream_rearm_timer(struct stream *st);

/* Releases the stream (upstream already detached or closed). */
void stream_free(struct stream *st);

#endif
