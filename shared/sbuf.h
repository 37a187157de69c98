/*
 * sbuf — a growable byte buffer with an explicit maximum (curl's dynbuf
 * idea), for building text off the hot path: request heads for backends,
 * /metrics and /status pages.  Always NUL-terminated.  Errors are sticky:
 * after one failed append every later append fails too, so a builder can
 * append many pieces and check once.
 */
#ifndef SLUICE_SBUF_H
#define SLUICE_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    size_t max; /* appends beyond this fail with -E2BIG */
    int err;    /* first error, 0 if none */
};

void sbuf_init(struct sbuf *b, size_t max);
void sbuf_free(struct sbuf *b);
/* Hands the bytes to the caller (who frees them) and resets <b>. */
char *sbuf_take(struct sbuf *b, size_t *len, size_t *cap);

int sbuf_put(struct sbuf *b, const void *s, size_t n);
int sbuf_puts(struct sbuf *b, const char *s);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
