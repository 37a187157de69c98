/*
 * h1_chunked — incremental decoder of the chunked transfer coding
 * (RFC 9112 §7.1), for request bodies from clients and response bodies from
 * backends.
 *
 * Zero-copy: payload comes back as spans of the caller's input.  The state is
 * a small struct, so input may be split anywhere (one byte at a time gives
 * the same payload).  Chunk extensions are skipped, trailer fields are
 * skipped, both within fixed bounds.
 *
 * Strict mode (client requests) rejects a bare LF anywhere in the framing;
 * lenient mode (backend responses) accepts it.  Both reject: a size that is
 * empty, not hex, longer than 16 digits or over INT64_MAX; data not followed
 * by CRLF; an extension or trailer section over its bound.
 *
 * Pure state machine; safe anywhere.
 */
#ifndef SLUICE_H1_CHUNKED_H
#define SLUICE_H1_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/h1_parser.h" /* H1_ERR_BAD_CHUNK */

#define H1_CHUNK_EXT_MAX 4096 /* bytes of chunk extensions on one size line */
#define H1_TRAILER_MAX   8192 /* bytes of the whole trailer section */

struct h1_chunked {
    uint64_t remaining; /* payload bytes left in the current chunk */
    uint32_t state;     /* private */
    uint32_t count;     /* private: digits or bytes seen in the current line */
    uint32_t trailer;   /* private: trailer bytes seen */
    bool strict;
};

void h1_chunked_init(struct h1_chunked *c, bool strict);

/*
 * Consumes input from in[0..len).  On return *consumed is the number of bytes
 * used (always > 0 when len > 0 and the body is not complete yet), and
 * (*data, *data_len) is a payload span inside the consumed bytes, or
 * data_len 0.  The decoder stops after the first payload span so that each
 * span is contiguous: call it again with the rest of the input.
 * Returns 0 (more body expected), 1 (the last chunk and trailers are done;
 * bytes after *consumed belong to the next message) or -H1_ERR_BAD_CHUNK.
 */
int h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                    const char **data, size_t *data_len);

/* True once the terminating chunk and trailers have been consumed. */
bool h1_chunked_done(const struct h1_chunked *c);

#endif
