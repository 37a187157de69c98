/*
 * bbuf — a growable byte buffer with a hard ceiling, used by llmsim for the
 * per-connection input and output queues and for building response bodies.
 *
 * Bytes live in p[off..len); appending grows the allocation (doubling) but
 * never past <limit>.  Appends are sticky on failure: once an append would
 * pass the limit or malloc fails, <failed> is set and later appends do
 * nothing, so a builder checks once at the end instead of after every call.
 * The buffer owns p; bbuf_free() is the one release path.
 */
#ifndef LLMSIM_BBUF_H
#define LLMSIM_BBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bbuf {
    char *p;
    size_t off;   /* first unconsumed byte */
    size_t len;   /* end of data */
    size_t cap;   /* allocated bytes */
    size_t limit; /* cap never grows past this */
    bool failed;  /* an append did not fit; the contents are incomplete */
};

void bbuf_init(struct bbuf *b, size_t limit);
void bbuf_free(struct bbuf *b);

/* Bytes waiting in the buffer. */
static inline size_t bbuf_pending(const struct bbuf *b)
{
    return b->len - b->off;
}

/* Makes room for <extra> more bytes after len.  0, or -ENOMEM / -E2BIG (limit). */
int bbuf_reserve(struct bbuf *b, size_t extra);

/* Appends; on failure sets b->failed. */
void bbuf_put(struct bbuf *b, const void *data, size_t n);
void bbuf_puts(struct bbuf *b, const char *s);
void bbuf_u64(struct bbuf *b, uint64_t v);
/* Appends s[0..n) as the inside of a JSON string (quotes not included). */
void bbuf_json_esc(struct bbuf *b, const char *s, size_t n);

/* Drops n bytes from the front; an emptied buffer resets to off = len = 0. */
void bbuf_consume(struct bbuf *b, size_t n);
/* Moves the pending bytes to the front of the allocation. */
void bbuf_compact(struct bbuf *b);
/* Empties the buffer (keeps the allocation) and clears <failed>. */
void bbuf_reset(struct bbuf *b);

/* Writes v in decimal at dst (no NUL); returns the digits written (1..20). */
size_t llmsim_u64_to_dec(char *dst, uint64_t v);

#endif
