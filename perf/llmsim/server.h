/*
 * server — llmsim's event loop and connections: one thread, epoll
 * (edge-triggered per connection, epoll_pwait2 for sub-millisecond timer
 * deadlines), HTTP/1.1 keep-alive, request framing with the project's
 * zero-copy parser (dataplane/h1_parser.h, h1_chunked.h), and the plain
 * endpoints (/v1/models, /health, /metrics, /stats).  Generation requests
 * are handed to gen.c; with --api ollama or tfserving, every request but
 * /metrics and /stats goes to api.c.
 *
 * This header is internal to llmsim: it defines struct server and struct
 * conn for server.c and gen.c.  The server owns every connection (one
 * malloc per accept, freed after the event batch that closed it, so a stale
 * event in the same batch never touches freed memory) and each connection
 * owns its two buffers.  Nothing on the per-token path allocates: events
 * are built in the server's scratch buffer and written with one send() each;
 * only bytes the socket would not take are copied into the connection's
 * bounded output buffer, and then generation pauses until it drains.
 */
#ifndef LLMSIM_SERVER_H
#define LLMSIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/h1_chunked.h"
#include "dataplane/h1_parser.h"
#include "perf/llmsim/bbuf.h"
#include "perf/llmsim/fault.h"
#include "perf/llmsim/opts.h"
#include "perf/llmsim/request.h"
#include "perf/llmsim/respond.h"
#include "perf/llmsim/pcache.h"
#include "perf/llmsim/sim.h"
#include "perf/llmsim/theap.h"

#define LLMSIM_MAX_BODY     (8u << 20)  /* request body limit (413 above) */
#define LLMSIM_MAX_HEAD     (64u << 10) /* request head limit (431 above) */
#define LLMSIM_MAX_HEADERS  100         /* header fields per request */
#define LLMSIM_PIPELINE_MAX (64u << 10) /* bytes read ahead while a request runs */
#define LLMSIM_OUT_MAX      (64u << 20) /* a connection's output queue */

enum conn_phase {
    PH_READ = 0, /* between requests: reading and parsing */
    PH_DRIBBLE,  /* slow_headers: the head goes out piece by piece */
    PH_GEN,      /* a generation request is in the sim (waiting or running) */
    PH_STALL,    /* hang / hang_after: nothing more is sent */
    PH_FLUSH,    /* the response is complete; the output queue drains */
    PH_CLOSED,
};

/* conn.flags */
#define CF_KEEP_ALIVE 0x0001 /* the connection may serve another request */
#define CF_STREAM     0x0002 /* current request: "stream": true */
#define CF_CHAT       0x0004 /* current request: chat (else completions) */
#define CF_USAGE      0x0008 /* current request: stream_options.include_usage */
#define CF_EOF        0x0010 /* the client closed or reset */
#define CF_ERR        0x0020 /* the socket failed; nothing more can be sent */
#define CF_READ_FULL  0x0040 /* reading paused: input queue at its bound */
#define CF_BLOCKED    0x0080 /* generation paused until the output drains */
#define CF_CONTINUE   0x0100 /* 100 Continue sent for the current request */
#define CF_ACTIVE     0x0200 /* a generation request is open: closing aborts it */
#define CF_CHUNKING   0x0400 /* decoding a chunked request body */
#define CF_HEADED     0x0800 /* Ollama stream: the head is out (it goes with the first line) */

struct conn {
    int fd;
    uint8_t phase; /* enum conn_phase */
    uint16_t flags;
    struct theap_node timer;
    struct sim_seq seq;

    /* The generation request being answered. */
    struct fault fault;
    uint32_t n_tokens;       /* tokens this answer has */
    uint32_t next_tok;       /* index of the next token */
    uint32_t tok_base;       /* a continuation: its first token is " w<tok_base>" */
    uint32_t prefill_tokens; /* prompt tokens not in the prefix cache */
    uint32_t prompt_tokens;  /* for usage */
    uint8_t finish;          /* enum resp_finish of the last token */
    uint8_t model;
    uint8_t dribble_step;
    uint8_t shape;         /* enum api_shape: which API's bytes */
    uint32_t dribble_head; /* bytes of head being dribbled */
    uint32_t n_inst;       /* TF predict: instances (inst_len set when > 1) */
    uint32_t *inst_len;    /* TF predict: each instance's tokens; owned, freed at the end */
    uint64_t ttft_ns;
    uint64_t itl_ns;
    uint64_t due; /* when the current step was due (ns) */
    uint64_t created;
    uint64_t arrived; /* Ollama's durations: when the request came (ns) */
    uint64_t slotted; /* ... and when it got its batch slot */
    char id[32];

    /* Request framing: offsets from the start of the pending input. */
    size_t body_raw; /* chunked: next undecoded byte */
    size_t body_dec; /* chunked: end of the decoded body */
    struct h1_chunked chunked;

    struct bbuf in;
    struct bbuf out;
    size_t gate; /* bytes of out that may be sent now (SIZE_MAX: all) */

    struct conn *prev; /* all live connections */
    struct conn *next;
    struct conn *next_dead;
};

struct server {
    const struct llmsim_opts *o;
    uint64_t fault_rng; /* xorshift64, fixed seed: which requests --fault-rate hits */
    int epfd;
    int lfd;
    int sigfd;
    int spare_fd; /* released to accept-and-close when out of descriptors */
    struct sim sim;
    struct pcache pcache;
    struct theap timers;
    struct resp_date date;
    struct h1_limits limits;
    struct resp_counters cnt; /* requests, completed, aborted, tokens, faults */
    uint64_t ttft_ns;
    uint64_t itl_ns;
    uint64_t keepalive_ns; /* 0: idle connections stay open */

    /* Served models: raw names (for matching) and escaped forms. */
    struct resp_model models[LLMSIM_MAX_MODELS];
    const char *model_names[LLMSIM_MAX_MODELS];
    uint32_t model_lens[LLMSIM_MAX_MODELS];
    struct req_models req_models;
    struct bbuf model_text;                 /* storage of the escaped names */
    int64_t start_sec;                      /* Ollama's modified_at */
    int64_t api_used_ns[LLMSIM_MAX_MODELS]; /* Ollama's /api/ps: last use, 0 never */

    uint64_t now; /* CLOCK_MONOTONIC ns, read once per loop turn */
    uint64_t rng;
    char *ev; /* scratch for one SSE event */
    size_t ev_cap;
    struct bbuf tmp; /* scratch for response bodies */
    struct bbuf hdr; /* scratch for response heads */

    struct conn *conns; /* live connections */
    struct conn *dead;  /* closed this turn, freed after it */
    uint32_t n_conns;
    bool stop;
    int stop_signal; /* what stopped the loop, and who sent it */
    int stop_pid;
};

/* Sets up everything but the listening socket <lfd> (already bound and
 * listening, non-blocking; the server takes it over).  0 or -errno. */
int server_init(struct server *s, const struct llmsim_opts *o, int lfd);
/* Runs until SIGINT/SIGTERM.  0, or -errno on a fatal loop error. */
int server_run(struct server *s);
/* Closes every connection and frees everything. */
void server_fini(struct server *s);

/* --- for gen.c ------------------------------------------------------- */

/* Writes, or queues what the socket does not take.  0, or -errno when the
 * connection is gone (the caller ends the request). */
int conn_send(struct server *s, struct conn *c, const char *p, size_t n);
/* Sends queued output up to the gate.  0, or -errno when the connection is gone. */
int conn_flush(struct server *s, struct conn *c);
/* The response is entirely in the output queue (or sent): finish it and get
 * ready for the next request, or close if the connection does not persist. */
void conn_response_done(struct server *s, struct conn *c);
/* Closes (RST when <rst>); an open generation request is aborted first. */
void conn_close(struct server *s, struct conn *c, bool rst);
/* Sends a complete non-streaming answer built by the caller in s->tmp. */
void conn_reply(struct server *s, struct conn *c, int status, const char *extra, const char *ctype,
                bool head_only);
/* Sends an OpenAI error JSON. */
void conn_reply_error(struct server *s, struct conn *c, int status, const char *extra,
                      const char *msg, size_t msg_len);

/* The fault of a request that names none: --fault, for --fault-rate of
 * them (a flaky server, not a broken one). */
struct fault server_default_fault(struct server *s);

#endif
