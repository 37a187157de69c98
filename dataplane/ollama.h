/*
 * ollama — OpenAI's API over an Ollama backend: a chat or completions
 * request becomes an /api/chat or /api/generate request, and Ollama's
 * NDJSON answer becomes OpenAI's stream (chat.completion.chunk or
 * text_completion events, a usage chunk when asked, data: [DONE]) or
 * OpenAI's single JSON body, token for token, as Ollama's own /v1 layer does.
 *
 * Requests (once per request) are rebuilt with jansson.  Answer lines (one
 * per token) are read with json_scan and written into a caller's buffer: no
 * allocation, and a token's text is copied with its JSON escapes as it came.
 *
 * Pure functions over caller-owned memory; safe anywhere.
 */
#ifndef SLUICE_OLLAMA_H
#define SLUICE_OLLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OLLAMA_ID_MAX 48

/*
 * The Ollama request for an OpenAI one: <chat> (/v1/chat/completions →
 * /api/chat, else /v1/completions → /api/generate).  Fields Ollama has no
 * use for are dropped; sampling fields go to "options".  0, or an api_error
 * (what the client gets) with a message in <detail>.  *out is malloc'd.
 */
int ollama_request(bool chat, const char *body, size_t len, char **out, size_t *out_len,
                   char *detail, size_t detail_cap);

/* Whether an OpenAI request asks for the usage chunk
 * (stream_options.include_usage). */
bool ollama_wants_usage(const char *body, size_t len);

/* One translated answer.  TF Serving's answers (tfserving.h) are written
 * the same way, as a one-line answer without token counts. */
struct ollama_tr {
    char id[OLLAMA_ID_MAX];  /* chatcmpl-<stream id> or cmpl-<stream id> */
    uint64_t created;        /* unix seconds */
    const char *fingerprint; /* system_fingerprint: "fp_ollama" */
    bool chat;
    bool include_usage; /* the client asked for the usage chunk */
    bool counts;        /* the backend counts tokens (else no usage is made up) */
    bool role_sent;
    bool tool_calls; /* the answer called tools: finish_reason tool_calls */
    uint32_t n_tool_calls;
    /* from the last line (done) */
    bool done;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
};

void ollama_tr_init(struct ollama_tr *t, bool chat, bool include_usage, const char *stream_id,
                    uint64_t created);

/* What one NDJSON line became: up to OLLAMA_MAX_EVENTS SSE events (each a
 * whole event, "data: ...\n\n"), in order, inside the caller's buffer. */
#define OLLAMA_MAX_EVENTS 6 /* role, text, tool calls, finish, usage, [DONE] */
struct ollama_events {
    unsigned n;
    uint32_t off[OLLAMA_MAX_EVENTS];
    uint32_t len[OLLAMA_MAX_EVENTS];
};

/*
 * Translates one line of a streamed answer (without its newline) into
 * events written to out[0..cap).  0; -EPROTO when the line is not an answer
 * line (not a JSON object, or missing its fields); -E2BIG when <cap> is too
 * small (a line needs at most ollama_line_room(len)); -ECONNABORTED when the
 * line is Ollama's {"error": ...}, its message JSON-escaped in out as
 * ev->off[0]/len[0].
 */
int ollama_line(struct ollama_tr *t, const char *line, size_t len, char *out, size_t cap,
                struct ollama_events *ev);
size_t ollama_line_room(size_t line_len);

/*
 * A whole (not streamed) Ollama answer as OpenAI's chat.completion or
 * text_completion body.  0, -EPROTO (not an answer), -ECONNABORTED (an
 * {"error"} body: *out holds its message, plain text), -ENOMEM.  *out is
 * malloc'd.
 */
int ollama_whole(struct ollama_tr *t, const char *body, size_t len, char **out, size_t *out_len);

/* The message of an Ollama error body ({"error":"..."}), malloc'd; NULL if
 * the body is not one. */
char *ollama_error_message(const char *body, size_t len);

/* Whether an Ollama native (/api/chat, /api/generate) answer line carries a
 * token (non-empty message.content, message.thinking, or response), and
 * whether it is the last (done: true); *eval_count from the last line. */
#define OLLAMA_LINE_TOKEN 0x1
#define OLLAMA_LINE_DONE  0x2
unsigned ollama_native_scan(const char *line, size_t len, uint64_t *eval_count);

#endif
