/*
 * verify — the --verify checks on llmsim streams: every token arrives once
 * and in order (token i is exactly " w<i>", 0-based), the stream ends with
 * `data: [DONE]` and nothing follows it, and, where events carry
 * `id: <stream-id>:<seq>` (sluice), all ids of a stream share one stream-id
 * and seq strictly increases; with --expect-tokens, the token count is exact.
 *
 * State per stream is a small struct inside the connection; no allocation.
 * Each violation is counted in the loop's struct verify_ctx; the first few
 * of the whole run (all loops together, through a shared atomic counter) are
 * described on stderr as they are found.  After a gap or a duplicate the
 * checker resynchronises on the token it saw, so one missing token is one
 * violation, a swapped pair is two.
 */
#ifndef LLMLOAD_VERIFY_H
#define LLMLOAD_VERIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/loadgen/evfields.h"

struct verify_ctx {
    uint64_t errors;         /* violations found by this loop */
    uint64_t streams;        /* streams checked */
    int64_t expect_tokens;   /* -1: any number */
    atomic_uint *printed;    /* shared by all loops */
    unsigned max_print;      /* describe at most this many violations */
    char scratch[64 * 1024]; /* data of multi-line events */
};

struct verify_stream {
    uint64_t next;    /* index of the token expected next */
    uint64_t tokens;  /* tokens seen */
    uint64_t id_hash; /* hash of the stream-id part of the first id */
    uint64_t seq;     /* last seq */
    uint32_t conn;    /* connection number, for messages */
    uint32_t request; /* request number on that connection, for messages */
    bool have_id;
    bool done;
};

void verify_ctx_init(struct verify_ctx *v, int64_t expect_tokens, atomic_uint *printed,
                     unsigned max_print);

void verify_begin(struct verify_stream *s, uint32_t conn, uint32_t request);

/* One complete event of the stream, with its sse_event_scan() flags. */
void verify_event(struct verify_ctx *v, struct verify_stream *s, const char *ev, size_t len,
                  const struct evfields *f, unsigned flags);

/* The stream is over; <how> says how it ended ("ok", "eof", ...). */
void verify_end(struct verify_ctx *v, struct verify_stream *s, const char *how);

#endif
