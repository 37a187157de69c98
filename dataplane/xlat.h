/*
 * xlat — a stream whose backend does not speak its client's API.
 *
 * An OpenAI request that goes to an Ollama or TensorFlow Serving backend is
 * rebuilt for that backend (path and body; ollama.c, tfserving.c) each time
 * the stream is given a backend, so failover and continuation can cross
 * kinds; the answer comes back in OpenAI's shape: an Ollama NDJSON stream
 * line by line into SSE events as they arrive, a whole answer (Ollama not
 * streaming, TF Serving always) into one body or one event, an error into
 * OpenAI's error JSON.  An Ollama-native request (/api/chat, /api/generate)
 * goes only to Ollama backends and is relayed as it is, line by line, each
 * line one chunk, each token counted (TTFT, inter-token gaps, budgets).
 *
 * Owned by its stream (struct stream.xl); runs in the stream's worker.
 */
#ifndef SLUICE_XLAT_H
#define SLUICE_XLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/ollama.h"

struct stream;
struct h1_response;

struct xlat {
    const char *src; /* the OpenAI body (the client's, or a continuation's) */
    uint64_t src_len;
    char *target; /* the client's request target, once translated (malloc'd) */
    char *body;   /* the translated body (malloc'd) */
    char *buf;    /* a line not yet complete, or a whole answer */
    uint32_t buf_len, buf_cap;
    char *out; /* translated events (kept: no allocation per token) */
    size_t out_cap;
    uint8_t kind;       /* enum backend_kind the request is built for */
    bool native;        /* the client spoke Ollama's API */
    bool include_usage; /* the client asked for the usage chunk */
    struct ollama_tr tr;
};

/* The stream has a new backend: the request is rebuilt for its kind.  0,
 * or <0 when it cannot be (the stream failed, the client answered). */
int xlat_prepare(struct stream *st);

/* Whether the answer is translated (stream_on_head hands it here). */
bool xlat_translating(const struct stream *st);
/* A translated answer's head: picks the relay mode, writes the client's
 * head when the answer streams.  0 or <0 (the stream failed). */
int xlat_on_head(struct stream *st, const struct h1_response *r);
/* Whether a continuation's head carries what the stream relays (an Ollama
 * stream for a translated stream). */
bool xlat_continues(struct stream *st, const struct h1_response *r);

/* Body bytes in the line or whole modes.  0 or <0 (the stream failed). */
int xlat_on_body(struct stream *st, const char *p, size_t len);

/* The end of a whole answer: 1 with *json (malloc'd) when the client gets
 * it as one body, 0 when its events were queued (the stream ends as usual),
 * <0 when the stream failed. */
int xlat_on_body_end(struct stream *st, char **json, size_t *json_len);

void xlat_free(struct xlat *x);

#endif
