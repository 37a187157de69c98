/*
 * bbuf — growable byte buffer with a hard ceiling (see bbuf.h).
 */
#include "perf/llmsim/bbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bbuf_init(struct bbuf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void bbuf_free(struct bbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->off = b->len = b->cap = 0;
    b->failed = false;
}

int bbuf_reserve(struct bbuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    /* Reuse consumed space at the front before growing. */
    if (b->off > 0 && b->cap - b->len + b->off >= extra) {
        bbuf_compact(b);
        return 0;
    }
    size_t need = b->len - b->off + extra;
    if (need > b->limit || need < extra)
        return -E2BIG;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->limit)
        ncap = b->limit;
    if (b->off > 0)
        bbuf_compact(b);
    char *np = realloc(b->p, ncap);
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = ncap;
    return 0;
}

void bbuf_put(struct bbuf *b, const void *data, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (bbuf_reserve(b, n) < 0) {
        b->failed = true;
        return;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void bbuf_puts(struct bbuf *b, const char *s)
{
    bbuf_put(b, s, strlen(s));
}

size_t llmsim_u64_to_dec(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

void bbuf_u64(struct bbuf *b, uint64_t v)
{
    char tmp[20];
    bbuf_put(b, tmp, llmsim_u64_to_dec(tmp, v));
}

void bbuf_json_esc(struct bbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        bbuf_put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (ch) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        }
        bbuf_put(b, esc, elen);
    }
    bbuf_put(b, s + run, n - run);
}

void bbuf_consume(struct bbuf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void bbuf_compact(struct bbuf *b)
{
    if (b->off == 0)
        return;
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

void bbuf_reset(struct bbuf *b)
{
    b->off = b->len = 0;
    b->failed = false;
}
