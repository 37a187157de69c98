/*
 * continuation — continuing a streamed completion on another backend after
 * its backend failed mid-answer ([upstream] continue_streams).
 *
 * While such a stream runs, the text of its answer so far is kept (each
 * content event's delta.content, or text for /v1/completions, taken from
 * its JSON).  When the backend fails after the client has seen tokens, a new
 * request is built from the original body: for chat, the answer so far is
 * appended as an assistant message with vLLM's continue_final_message (and
 * add_generation_prompt off), so the model goes on from there; for
 * completions, it is appended to a string prompt; max_tokens (and
 * max_completion_tokens) lose the tokens already sent.  The stream then
 * relays the new answer's content events under its own ids, so the client
 * sees one stream, without gap or duplicate, if the backend continues the
 * text as vLLM does.
 *
 * Pure functions over the bytes they are given (jansson for the JSON);
 * the text buffer is owned by the caller's struct cont_text.
 */
#ifndef SLUICE_CONTINUATION_H
#define SLUICE_CONTINUATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cont_text {
    char *p;
    size_t len;
    size_t cap;
};

/* Appends the content of one SSE event (its bytes, id line and all) to
 * <t>.  0, or -ENOMEM; an event without content adds nothing. */
int cont_note(struct cont_text *t, bool chat, const char *ev, size_t len);

/* The request that continues the answer in <t>: a new body from <body>,
 * and a new head from <head> (a head built by route_finish_head: its last
 * Content-Length field is replaced).  0, -ENOTSUP (a prompt that is not one
 * string, or no tokens left under max_tokens), -EINVAL, or -ENOMEM. */
int cont_request(const struct cont_text *t, bool chat, uint32_t tokens_sent, const char *body,
                 size_t body_len, const char *head, size_t head_len, char **nhead,
                 uint32_t *nhead_len, uint32_t *nhead_cap, char **nbody, size_t *nbody_len);

void cont_text_free(struct cont_text *t);

#endif
