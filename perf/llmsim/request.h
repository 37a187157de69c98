/*
 * request — what an HTTP request asks llmsim for: the route, the per-request
 * simulation overrides (X-Sim-* headers and sim_* query parameters, the query
 * winning), and the fields of an OpenAI completion body (parsed with
 * jansson).
 *
 * Works on a parsed head (dataplane/h1_parser.h) and a complete body; keeps
 * no pointer into either after returning.  Errors come back as an HTTP
 * status and a message in the caller's struct req_error, worded like vLLM's.
 */
#ifndef LLMSIM_REQUEST_H
#define LLMSIM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/h1_parser.h"
#include "perf/llmsim/fault.h"

enum req_route {
    ROUTE_CHAT = 0,    /* POST /v1/chat/completions */
    ROUTE_COMPLETIONS, /* POST /v1/completions */
    ROUTE_MODELS,      /* GET /v1/models */
    ROUTE_HEALTH,      /* GET /health */
    ROUTE_METRICS,     /* GET /metrics */
    ROUTE_STATS,       /* GET /stats */
    ROUTE_NOT_FOUND,
    ROUTE_BAD_METHOD, /* known path, wrong method */
};

static inline bool req_route_generates(enum req_route r)
{
    return r == ROUTE_CHAT || r == ROUTE_COMPLETIONS;
}

struct req_error {
    int status;
    char msg[768];
    size_t msg_len;
};

/* Routes by method and path.  *head_only is set for HEAD on a GET route;
 * *allow is the Allow header line for ROUTE_BAD_METHOD. */
enum req_route req_route(const struct h1_request *r, bool *head_only, const char **allow);

struct req_overrides {
    bool has_tokens;
    bool has_ttft;
    bool has_itl;
    bool has_fault;
    uint32_t tokens;
    uint64_t ttft_ns;
    uint64_t itl_ns;
    struct fault fault;
};

/* Reads X-Sim-* headers and sim_* query parameters.  0 or -EINVAL (err set). */
int req_overrides(const struct h1_request *r, struct req_overrides *ov, struct req_error *err);

/* The served model names, for matching "model". */
struct req_models {
    const char *const *names;
    const uint32_t *lens;
    uint32_t n;
};

struct req_gen {
    uint8_t shape; /* enum api_shape (api.h); 0 = OpenAI */
    bool stream;
    bool include_usage;
    uint32_t model;         /* index into the served models */
    uint32_t prompt_tokens; /* >= 1 */
    uint32_t max_tokens;    /* 0: not given */
    uint32_t first_word;    /* continuing an answer: the words " wN" it already has */
    uint32_t nblocks;       /* whole PCACHE_BLOCKs of prompt text */
    uint64_t blocks[64];    /* their keys: hash of the prompt up to each block's end */
    /* A TF Serving predict of several instances: each one's max_tokens (0:
     * none), malloc'd by the parser; gen_start takes it over. */
    uint32_t n_inst;
    uint32_t *inst_len;
};

/* The answer's words " w<digits>" already in <s> (NUL-terminated): a request
 * that continues an answer goes on from there. */
uint32_t req_words_in(const char *s);

/* The prompt's text as the prefix cache sees it, hashed up to the end of
 * each whole PCACHE_BLOCK into g->blocks (for the other APIs' parsers). */
struct req_blockhash {
    struct req_gen *g;
    uint64_t h;
    uint32_t fill;
};

void req_blocks_init(struct req_blockhash *b, struct req_gen *g);
void req_blocks_feed(struct req_blockhash *b, const char *s, size_t n);

/* Parses and validates a chat (<chat>) or completions body.  0, or -EINVAL
 * with err set (400 invalid, 404 unknown model). */
int req_parse_body(bool chat, const char *body, size_t len, const struct req_models *models,
                   struct req_gen *g, struct req_error *err);

/* Fills <err> with <status> and a formatted message; returns -EINVAL (for
 * `return req_fail(...)`).  Every body parser's one way to refuse. */
__attribute__((format(printf, 3, 4))) int req_fail(struct req_error *err, int status,
                                                   const char *fmt, ...);

#endif
