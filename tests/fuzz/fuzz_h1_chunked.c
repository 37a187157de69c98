/*
 * libFuzzer target for h1_chunked.  The same input is decoded whole, one byte
 * at a time and in pieces of a size picked by the first input byte; the
 * verdict, the bytes consumed and the payload must be identical, the payload
 * never longer than the input, every call must make progress, and whatever
 * strict mode accepts lenient mode must accept the same way.
 *
 * The bounds on extensions and trailers (kilobytes) are beyond what libFuzzer
 * mutates comfortably, so when the second bit of the first byte is set every
 * 0x01 byte of the input stands for INFLATE copies of the byte before it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/h1_chunked.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INFLATE 1024

/* Expands the 0x01 markers; returns a malloc'ed buffer of *out_len bytes. */
static char *inflate(const char *in, size_t len, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += in[i] == 1 ? INFLATE : 1;
    char *out = malloc(n ? n : 1);
    CHECK(out);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != 1) {
            out[o++] = in[i];
            continue;
        }
        memset(out + o, o ? out[o - 1] : 'x', INFLATE);
        o += INFLATE;
    }
    *out_len = n;
    return out;
}

struct run {
    int rc;
    size_t consumed;
    size_t out_len;
    char *out;
};

static void decode(bool strict, const char *in, size_t len, size_t step, struct run *r)
{
    struct h1_chunked c;
    h1_chunked_init(&c, strict);
    r->rc = 0;
    r->consumed = 0;
    r->out_len = 0;
    size_t off = 0;
    while (off < len) {
        size_t piece = step == 0 || len - off < step ? len - off : step;
        size_t used = 0;
        while (used < piece) {
            size_t consumed = (size_t)-1;
            const char *d = NULL;
            size_t dl = (size_t)-1;
            const char *p = in + off + used;
            size_t n = piece - used;
            int rc = h1_chunked_feed(&c, p, n, &consumed, &d, &dl);
            CHECK(rc == 0 || rc == 1 || rc == -H1_ERR_BAD_CHUNK);
            CHECK(consumed <= n && dl <= consumed);
            if (dl) {
                CHECK(d >= p && d + dl <= p + consumed);
                memcpy(r->out + r->out_len, d, dl);
                r->out_len += dl;
            }
            CHECK((rc == 1) == h1_chunked_done(&c));
            used += consumed;
            r->consumed += consumed;
            r->rc = rc;
            if (rc != 0) {
                if (rc == 1) {
                    CHECK(r->consumed >= 3 && in[r->consumed - 1] == '\n');
                    /* Once done it stays done and takes nothing more. */
                    size_t more = len - r->consumed;
                    CHECK(h1_chunked_feed(&c, in + r->consumed, more, &consumed, &d, &dl) == 1);
                    CHECK(consumed == 0 && dl == 0);
                } else {
                    CHECK(h1_chunked_feed(&c, in, len, &consumed, &d, &dl) == -H1_ERR_BAD_CHUNK);
                }
                return;
            }
            CHECK(consumed > 0); /* progress */
        }
        off += piece;
    }
}

static void same(const struct run *a, const struct run *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->out_len == b->out_len);
    CHECK(memcmp(a->out, b->out, a->out_len) == 0);
    /* Where an error is noticed may differ by the bytes of the current piece. */
    if (a->rc >= 0)
        CHECK(a->consumed == b->consumed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    bool strict = sel & 1;
    size_t step = (size_t)(sel >> 2) + 1;
    char *copy = NULL;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (sel & 2) {
        copy = inflate(in, len, &len);
        in = copy;
    }

    char *bufs = malloc(4 * (len + 1));
    CHECK(bufs);
    struct run whole = {.out = bufs};
    struct run bytes = {.out = bufs + (len + 1)};
    struct run pieces = {.out = bufs + 2 * (len + 1)};
    decode(strict, in, len, 0, &whole);
    CHECK(whole.out_len <= len && whole.consumed <= len);
    if (whole.rc == 0)
        CHECK(whole.consumed == len);
    decode(strict, in, len, 1, &bytes);
    same(&whole, &bytes);
    decode(strict, in, len, step, &pieces);
    same(&whole, &pieces);
    if (strict && whole.rc >= 0) {
        struct run lenient = {.out = bufs + 3 * (len + 1)};
        decode(false, in, len, 0, &lenient);
        same(&whole, &lenient);
    }
    free(bufs);
    free(copy);
    return 0;
}
