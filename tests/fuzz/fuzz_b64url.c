/*
 * libFuzzer target for dataplane/b64url (HTTP2-Settings of `Upgrade: h2c`).
 * Against a reference built the other way round: any decode that succeeds
 * must re-encode (base64url, no padding) to the input up to its first '='
 * when the input length is a valid one, and every refusal must contain a
 * byte outside the alphabet or need more room than given.  Any
 * disagreement aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    uint8_t *out = malloc(cap ? cap : 1);
    CHECK(out);
    ssize_t got = b64url_decode(in, n, out, cap);
    /* the meaningful part: up to the first '=' */
    size_t m = 0;
    bool bad = false;
    while (m < n && in[m] != '=') {
        if (!memchr(ALPHA, in[m], 64) || in[m] == '\0')
            bad = true;
        m++;
    }
    size_t want = m * 6 / 8;
    if (bad || want > cap) {
        CHECK(got == -1);
    } else {
        CHECK(got == (ssize_t)want);
        /* re-encode and compare, for lengths that carry no stray bits */
        if (m % 4 != 1) {
            char *enc = malloc(m + 4);
            CHECK(enc);
            size_t e = 0;
            uint32_t acc = 0;
            int bits = 0;
            for (size_t i = 0; i < want; i++) {
                acc = (acc << 8) | out[i];
                bits += 8;
                while (bits >= 6) {
                    bits -= 6;
                    enc[e++] = ALPHA[(acc >> bits) & 63];
                }
            }
            if (bits > 0)
                enc[e++] = ALPHA[(acc << (6 - bits)) & 63];
            CHECK(e == m);
            /* the last symbol may carry stray low bits the decoder drops */
            CHECK(m == 0 || memcmp(enc, in, m - 1) == 0);
            free(enc);
        }
    }
    free(out);
    return 0;
}
