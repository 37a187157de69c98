/*
 * h1_chunked — see h1_chunked.h.
 *
 * One state per position in the grammar; payload bytes are handed out in
 * bulk and only the short framing lines are looked at byte by byte, through
 * one table.  Any error is sticky.
 */
#include "dataplane/h1_chunked.h"
#include "dataplane/h1_parser.h"

enum {
    ST_SIZE = 0,  /* hex digits of a size line; count = digits so far */
    ST_BWS,       /* whitespace after the size: only ';' may follow */
    ST_EXT,       /* chunk extensions up to the line end */
    ST_SIZE_LF,   /* CR at the end of a size line seen */
    ST_DATA,      /* <remaining> payload bytes to go */
    ST_DATA_CR,   /* payload done: CRLF must follow */
    ST_DATA_LF,   /* CR after the payload seen */
    ST_TRL_START, /* start of a trailer field line, or of the final empty line */
    ST_TRL_LINE,  /* inside a trailer field line */
    ST_TRL_LF,    /* CR at the end of a trailer field line seen */
    ST_END_LF,    /* CR of the final empty line seen */
    ST_DONE,
    ST_ERROR,
};

/* Low nibble: the hex digit's value; flags above it. */
enum {
    C_NOTHEX = 0x10,
    C_TCHAR = 0x20,
    C_FVAL = 0x40, /* HTAB, SP, VCHAR, obs-text: what may sit inside a line */
};

// clang-format off
static const uint8_t ctab[256] = {
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x50, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, /* 0x00 */
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, /* 0x10 */
    0x50, 0x70, 0x50, 0x70, 0x70, 0x70, 0x70, 0x70, 0x50, 0x50, 0x70, 0x70, 0x50, 0x70, 0x70, 0x50, /* 0x20 */
    0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0x30 */
    0x50, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, /* 0x40 */
    0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x50, 0x50, 0x50, 0x70, 0x70, /* 0x50 */
    0x70, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, /* 0x60 */
    0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x70, 0x50, 0x70, 0x50, 0x70, 0x10, /* 0x70 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0x80 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0x90 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xa0 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xb0 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xc0 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xd0 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xe0 */
    0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, 0x50, /* 0xf0 */
};
// clang-format on

void h1_chunked_init(struct h1_chunked *c, bool strict)
{
    c->remaining = 0;
    c->state = ST_SIZE;
    c->count = 0;
    c->trailer = 0;
    c->strict = strict;
}

bool h1_chunked_done(const struct h1_chunked *c)
{
    return c->state == ST_DONE;
}

/* The size line is over: payload follows, or trailers after the last chunk. */
static inline void size_line_done(struct h1_chunked *c)
{
    if (c->remaining == 0) {
        c->state = ST_TRL_START;
        c->trailer = 0;
    } else {
        c->state = ST_DATA;
    }
}

/* Skips line bytes from p[i..len) while they fit in <budget>; returns the new i. */
static inline size_t skip_line_bytes(const uint8_t *p, size_t i, size_t len, size_t budget)
{
    size_t stop = len - i > budget ? i + budget : len;
    while (i < stop && (ctab[p[i]] & C_FVAL))
        i++;
    return i;
}

int h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                    const char **data, size_t *data_len)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t i = 0;
    *data = in; /* never NULL with a valid <in>: memcpy(dst, *data, 0) stays defined */
    *data_len = 0;
    if (c->state == ST_ERROR)
        goto fail;

    while (i < len) {
        uint8_t b = p[i];
        switch (c->state) {
        case ST_SIZE: {
            uint8_t k = ctab[b];
            if (!(k & C_NOTHEX)) {
                uint64_t d = k & 0x0f;
                if (c->count == 16 || c->remaining > ((uint64_t)INT64_MAX - d) >> 4)
                    goto fail;
                c->remaining = c->remaining << 4 | d;
                c->count++;
                i++;
                break;
            }
            if (c->count == 0)
                goto fail; /* empty size, or not hex */
            if (b == '\r') {
                c->state = ST_SIZE_LF;
            } else if (b == '\n' && !c->strict) {
                size_line_done(c);
            } else if (b == ';') {
                c->state = ST_EXT;
                c->count = 1;
            } else if (b == ' ' || b == '\t') {
                c->state = ST_BWS;
                c->count = 1;
            } else {
                goto fail;
            }
            i++;
            break;
        }
        case ST_BWS:
            if (b != ' ' && b != '\t' && b != ';')
                goto fail;
            if (++c->count > H1_CHUNK_EXT_MAX)
                goto fail;
            if (b == ';')
                c->state = ST_EXT;
            i++;
            break;
        case ST_EXT: {
            size_t j = skip_line_bytes(p, i, len, H1_CHUNK_EXT_MAX + 1 - c->count);
            c->count += (uint32_t)(j - i);
            i = j;
            if (c->count > H1_CHUNK_EXT_MAX)
                goto fail;
            if (i == len)
                break;
            b = p[i];
            if (b == '\r') {
                c->state = ST_SIZE_LF;
            } else if (b == '\n' && !c->strict) {
                size_line_done(c);
            } else {
                goto fail;
            }
            i++;
            break;
        }
        case ST_SIZE_LF:
            if (b != '\n')
                goto fail;
            i++;
            size_line_done(c);
            break;
        case ST_DATA: {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = in + i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = ST_DATA_CR;
            *consumed = i + n;
            return 0;
        }
        case ST_DATA_CR:
            if (b == '\r')
                c->state = ST_DATA_LF;
            else if (b == '\n' && !c->strict)
                c->state = ST_SIZE;
            else
                goto fail;
            c->count = 0;
            i++;
            break;
        case ST_DATA_LF:
            if (b != '\n')
                goto fail;
            c->state = ST_SIZE;
            i++;
            break;
        case ST_TRL_START:
            if (b == '\r') {
                c->state = ST_END_LF;
            } else if (b == '\n' && !c->strict) {
                c->state = ST_DONE;
                *consumed = i + 1;
                return 1;
            } else if (ctab[b] & C_TCHAR) {
                /* A field name starts here; obs-fold and garbage do not. */
                if (++c->trailer > H1_TRAILER_MAX)
                    goto fail;
                c->state = ST_TRL_LINE;
            } else {
                goto fail;
            }
            i++;
            break;
        case ST_TRL_LINE: {
            size_t j = skip_line_bytes(p, i, len, H1_TRAILER_MAX + 1 - c->trailer);
            c->trailer += (uint32_t)(j - i);
            i = j;
            if (c->trailer > H1_TRAILER_MAX)
                goto fail;
            if (i == len)
                break;
            b = p[i];
            if (b == '\r')
                c->state = ST_TRL_LF;
            else if (b == '\n' && !c->strict)
                c->state = ST_TRL_START;
            else
                goto fail;
            if (++c->trailer > H1_TRAILER_MAX)
                goto fail;
            i++;
            break;
        }
        case ST_TRL_LF:
            if (b != '\n' || ++c->trailer > H1_TRAILER_MAX)
                goto fail;
            c->state = ST_TRL_START;
            i++;
            break;
        case ST_END_LF:
            if (b != '\n')
                goto fail;
            c->state = ST_DONE;
            *consumed = i + 1;
            return 1;
        case ST_DONE:
            *consumed = i;
            return 1;
        default:
            goto fail;
        }
    }
    *consumed = i;
    return c->state == ST_DONE ? 1 : 0;

fail:
    c->state = ST_ERROR;
    *consumed = i;
    return -H1_ERR_BAD_CHUNK;
}
