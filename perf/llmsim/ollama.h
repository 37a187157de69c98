/*
 * ollama — Ollama 0.5's wire format: the request bodies of /api/chat and
 * /api/generate (read with jansson, checked in the order Ollama's handlers
 * check them, with Go's error texts), and every byte of its answers, as
 * gin's c.JSON / Ollama's NDJSON stream write them: Go's encoding/json field
 * order, omitempty, RFC 3339 times with nanoseconds, HTML-safe escaping.
 *
 * Line builders write one chunk-framed NDJSON line into a caller buffer of
 * at least OLLAMA_LINE_MAX(model_json_len) bytes and never allocate (the
 * token path); bodies append to a struct bbuf.  Pure apart from the output.
 */
#ifndef LLMSIM_OLLAMA_H
#define LLMSIM_OLLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/llmsim/bbuf.h"
#include "perf/llmsim/request.h"
#include "perf/llmsim/respond.h"

#define OLLAMA_VERSION       "0.5.7"
#define OLLAMA_MODEL_SIZE    4661224676ull            /* an 8B Q4_0 gguf */
#define OLLAMA_KEEP_ALIVE_NS (300ull * 1000000000ull) /* Ollama's default keep_alive: 5m */
#define OLLAMA_TIME_MAX      40                       /* bytes of an RFC 3339 time */
/* A framed line: the done line is the longest (about 360 bytes + model). */
#define OLLAMA_LINE_MAX(model_json_len) (480 + (size_t)(model_json_len))

/* Go's time.Time in JSON (RFC3339Nano, UTC): "2026-12-07T20:21:10.123456789Z",
 * trailing zeros of the fraction dropped.  Returns the bytes written. */
size_t ollama_time(char *dst, int64_t unix_ns);

/* What the lines of one answer repeat. */
struct ollama_stream {
    const char *model_json; /* served model name, already JSON-escaped */
    uint32_t model_json_len;
    bool chat; /* /api/chat ("message"), else /api/generate ("response") */
};

/* The end of an answer: the done line's fields. */
struct ollama_done {
    const char *reason; /* "stop", "length" or "load" */
    uint64_t total_ns;  /* Ollama's durations; 0 leaves them out (omitempty) */
    uint64_t load_ns;
    uint64_t prompt_eval_ns;
    uint64_t eval_ns;
    uint32_t prompt_eval_count;
    uint32_t eval_count;
};

/* Token i's line, {"model","created_at",("message"|"response"),"done":false}. */
size_t ollama_token_line(char *dst, const struct ollama_stream *st, int64_t now_ns, uint32_t i);
/* The last line of a stream (empty content, done, done_reason, metrics). */
size_t ollama_done_line(char *dst, const struct ollama_stream *st, int64_t now_ns,
                        const struct ollama_done *d);

/* A non-streaming answer: the done line's object with the words
 * " w<first>" .. " w<first+n-1>" as its content (n 0: a load answer). */
void ollama_answer_body(struct bbuf *b, const struct ollama_stream *st, int64_t now_ns,
                        const struct ollama_done *d, uint32_t first, uint32_t n);

/* gin.H{"error": msg}. */
void ollama_error_body(struct bbuf *b, const char *msg, size_t msg_len);

/* GET /api/tags: every served model. */
void ollama_tags_body(struct bbuf *b, const struct resp_model *m, uint32_t n, int64_t modified_ns);
/* GET /api/ps: the models in <order>[0..n) (most recently used first), each
 * loaded until expires_ns[model]. */
void ollama_ps_body(struct bbuf *b, const struct resp_model *m, const uint32_t *order, uint32_t n,
                    const int64_t *expires_ns);
/* GET /api/version. */
void ollama_version_body(struct bbuf *b);

/* Reads a /api/chat (<chat>) or /api/generate body into <g> (shape, stream,
 * model, prompt tokens, num_predict, continuation, prefix blocks).  Returns
 * 0 to generate, 1 for an answer with nothing to generate (no messages, or
 * an empty prompt: Ollama only loads the model, done_reason "load"), or
 * -EINVAL with err set (Ollama's status and message). */
int ollama_parse(bool chat, const char *body, size_t len, const struct req_models *models,
                 uint32_t max_model_len, struct req_gen *g, struct req_error *err);

#endif
