/* sbuf — see sbuf.h. */
#include "shared/sbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    size_t max = b->max;
    sbuf_init(b, max);
}

char *sbuf_take(struct sbuf *b, size_t *len, size_t *cap)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    if (cap)
        *cap = b->cap;
    size_t max = b->max;
    sbuf_init(b, max);
    return p;
}

static int reserve(struct sbuf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->len + n + 1 > b->max) {
        b->err = -E2BIG;
        return b->err;
    }
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int sbuf_put(struct sbuf *b, const void *s, size_t n)
{
    int ret = reserve(b, n);
    if (ret)
        return ret;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sbuf_puts(struct sbuf *b, const char *s)
{
    return sbuf_put(b, s, strlen(s));
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->err)
        return b->err;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = -EINVAL;
        return b->err;
    }
    if ((size_t)n < sizeof small)
        return sbuf_put(b, small, (size_t)n);
    int ret = reserve(b, (size_t)n);
    if (ret)
        return ret;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
