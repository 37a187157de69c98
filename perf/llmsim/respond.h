/*
 * respond — the bytes llmsim sends, shaped like vLLM's OpenAI server behind
 * uvicorn: lower-case header names in uvicorn's order (date, server, the
 * app's headers, connection: close, transfer-encoding), one HTTP chunk per
 * SSE event, compact JSON in pydantic's field order.
 *
 * Two kinds of builders:
 *  - per-token event builders write into a caller buffer of at least
 *    RESP_EVENT_MAX(model_json_len) bytes and never allocate (the token path);
 *  - everything else appends to a struct bbuf (heads, JSON bodies, errors).
 * All functions are pure apart from the output they write.
 */
#ifndef LLMSIM_RESPOND_H
#define LLMSIM_RESPOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "perf/llmsim/bbuf.h"

/* The IMF-fixdate of the current second, re-rendered when the second changes. */
struct resp_date {
    int64_t sec;
    char text[32]; /* "Sun, 06 Nov 1994 08:49:37 GMT", NUL-terminated */
};

void resp_date_update(struct resp_date *d, int64_t unix_sec);

enum resp_finish {
    RESP_FIN_NONE = 0,
    RESP_FIN_LENGTH, /* max_tokens reached */
    RESP_FIN_STOP,   /* natural end */
};

/* What every event of one response repeats. */
struct resp_stream {
    const char *model_json; /* served model name, already JSON-escaped */
    uint32_t model_json_len;
    const char *id_hex; /* 32 lower-case hex digits */
    uint64_t created;   /* unix seconds */
    bool chat;          /* chat.completion.chunk, else text_completion */
};

#define RESP_EVENT_MAX(model_json_len) (640 + (size_t)(model_json_len))

/* Room an event builder leaves in front of the body for its chunk-size line. */
#define RESP_FRAME_RESERVE 8
/* The event body was written at dst + RESP_FRAME_RESERVE up to <end>: adds
 * the chunk framing around it, moves the result to dst, returns its size. */
size_t resp_frame(char *dst, char *end);

/* Chat only: the first event, delta {"role":"assistant","content":""}. */
size_t resp_role_event(char *dst, const struct resp_stream *st);
/* Token i (text " w<i>"); fin != NONE marks the last token. */
size_t resp_token_event(char *dst, const struct resp_stream *st, uint32_t i, enum resp_finish fin);
/* stream_options.include_usage: choices [] and the usage object. */
size_t resp_usage_event(char *dst, const struct resp_stream *st, uint32_t prompt,
                        uint32_t completion);
/* `data: [DONE]` as one chunk. */
size_t resp_done_event(char *dst);
/* The terminating zero-length chunk. */
size_t resp_last_chunk(char *dst);

/* The head of a streaming answer (before the first event). */
void resp_stream_head(struct bbuf *b, const struct resp_date *d, bool keep_alive);

/*
 * A response head.  <extra> is NULL or complete header lines ("name: v\r\n")
 * placed where the app's own headers go; <ctype> NULL sends no content-type.
 */
void resp_head(struct bbuf *b, const struct resp_date *d, int status, const char *extra,
               const char *ctype, size_t content_length, bool keep_alive);

/* Head + body in one go; <head_only> (HEAD requests) leaves the body out. */
void resp_full(struct bbuf *b, const struct resp_date *d, int status, const char *extra,
               const char *ctype, const char *body, size_t body_len, bool keep_alive,
               bool head_only);

/* Body of a non-streaming chat.completion / text_completion of n tokens. */
void resp_completion_body(struct bbuf *b, const struct resp_stream *st, uint32_t n,
                          enum resp_finish fin, uint32_t prompt);

/* The words " w<first>" .. " w<first+n-1>" (an answer's text). */
void resp_words(struct bbuf *b, uint32_t first, uint32_t n);

/* OpenAI error body: {"error":{"message","type","param":null,"code"}}. */
void resp_error_body(struct bbuf *b, int status, const char *type, const char *msg, size_t msg_len);
/* The OpenAI error type name vLLM/openai use for a status (e.g. NotFoundError). */
const char *resp_error_type(int status);

/* Starlette's own errors: {"detail":"Not Found"} and friends. */
void resp_detail_body(struct bbuf *b, const char *detail);

/* The reason phrase uvicorn sends for a status ("" when unknown). */
const char *resp_reason(int status);

/* 1xx, 204 and 304 carry no body (and no content-length). */
bool resp_status_has_body(int status);

/* 32 lower-case hex digits shaped like Python's uuid.uuid4().hex, which vLLM
 * uses for ids; <rng> is a splitmix64 state, advanced. */
void resp_uuid_hex(uint64_t *rng, char *dst);

struct resp_model {
    const char *json; /* JSON-escaped name */
    uint32_t json_len;
    const char *prom; /* name escaped for a Prometheus label value */
    uint32_t prom_len;
};

/* GET /v1/models body.  <rand_hex> supplies 32 hex digits per model. */
void resp_models_body(struct bbuf *b, const struct resp_model *m, uint32_t n, uint64_t created,
                      uint32_t max_model_len, const char *rand_hex);

struct resp_counters {
    uint64_t requests;  /* generation requests received */
    uint64_t running;   /* holding a batch slot */
    uint64_t waiting;   /* queued for a slot */
    uint64_t completed; /* generated to the end */
    uint64_t aborted;   /* client went away before the end */
    uint64_t connections;
    uint64_t tokens;        /* tokens generated */
    uint64_t faults;        /* requests that got a fault injected */
    uint64_t peak;          /* most generation requests in progress at once */
    uint64_t prefix_hits;   /* requests whose prompt started with cached blocks */
    uint64_t cached_tokens; /* prompt tokens whose prefill the prefix cache saved */
};

/* GET /stats body (JSON). */
void resp_stats_body(struct bbuf *b, const struct resp_counters *c);
/* GET /metrics body (Prometheus text); running/waiting per model. */
void resp_metrics_body(struct bbuf *b, const struct resp_counters *c, const struct resp_model *m,
                       const uint32_t *running, const uint32_t *waiting, uint32_t n);

/* Writers into a buffer the caller sized: each returns the new end. */
static inline char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static inline char *put_u64(char *w, uint64_t v)
{
    return w + llmsim_u64_to_dec(w, v);
}

#endif
