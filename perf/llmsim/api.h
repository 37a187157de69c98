/*
 * api — llmsim's other personalities (--api ollama, --api tfserving): their
 * routes and plain endpoints, the way their generation requests enter gen.c
 * (the same load model, X-Sim overrides, faults and counters as the OpenAI
 * routes), and the response heads of the servers they imitate: Go's
 * net/http for Ollama, libevent's evhttp for TF Serving.  Both put the
 * handler's headers first (Content-Type), then Date, then Content-Length or
 * Transfer-Encoding, in title case.
 *
 * The OpenAI personality stays in request.c/respond.c; gen.c asks here for
 * the bytes that differ (c->shape).  The Ollama and TF Serving wire formats
 * themselves are in ollama.c and tfserving.c.  Runs inside server.c's loop;
 * nothing here allocates per token.
 */
#ifndef LLMSIM_API_H
#define LLMSIM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/llmsim/server.h"

/* What a generation request's answer looks like (conn.shape, req_gen.shape). */
enum api_shape {
    API_SHAPE_OPENAI = 0,      /* vLLM: SSE or chat.completion / text_completion */
    API_SHAPE_OLLAMA_CHAT,     /* /api/chat: NDJSON lines with "message" */
    API_SHAPE_OLLAMA_GENERATE, /* /api/generate: NDJSON lines with "response" */
    API_SHAPE_TF_ROWS,         /* :predict with "instances": {"predictions":[...]} */
    API_SHAPE_TF_COLUMNS,      /* :predict with "inputs": {"outputs":[...]} */
};

/* Answers a request in the --api ollama or tfserving personality.  Returns
 * false for llmsim's own endpoints (/stats, /metrics), which server.c
 * answers in every mode. */
bool api_dispatch(struct server *s, struct conn *c, const struct h1_request *req, const char *body,
                  size_t body_len);

/* An error answer in the server's personality: OpenAI's error object, or
 * {"error":"<msg>"} (Ollama, TF Serving).  <retry_after> adds Retry-After: 1. */
void api_reply_error(struct server *s, struct conn *c, int status, bool retry_after,
                     const char *msg, size_t msg_len);

/* --- gen.c's hooks for c->shape != API_SHAPE_OPENAI -------------------- */

/* The head of a streaming answer (Ollama: chunked NDJSON). */
void api_gen_stream_head(struct server *s, struct conn *c, struct bbuf *b);
/* Sends streamed token c->next_tok (Ollama: one line; the first one carries
 * the head unless CF_HEADED).  0, or -errno when the connection is gone. */
int api_gen_token(struct server *s, struct conn *c);
/* Sends the end of a stream: the done line and the terminating chunk. */
int api_gen_stream_end(struct server *s, struct conn *c);
/* A non-streaming answer: its body in s->tmp and its head in s->hdr. */
void api_gen_answer(struct server *s, struct conn *c);
/* Sends s->hdr + s->tmp with one send(), as Go and evhttp do, and ends the
 * response. */
void api_send(struct server *s, struct conn *c);
/* Tokens the current step generates: a predict's instances decode side by
 * side, so a step makes one token for each instance not yet at its end. */
uint32_t api_step_tokens(const struct conn *c);

#endif
