/*
 * libFuzzer target for dataplane/usage_scan.
 *
 * Input: 2 parameter bytes (a cut point and a piece size), then the body.
 * The body is scanned whole, cut at one point, in uniform pieces and one
 * byte at a time: the answers must agree, and must equal a reference that
 * works on the whole body at once (escape parity from the start, every
 * occurrence of the key with an unescaped opening quote, whitespace, a
 * colon, whitespace, digits ended by a byte other than '.', 'e', 'E'; the
 * last one wins, saturating at UINT32_MAX).  Any disagreement aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/usage_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENSURE(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char KEY[] = "\"completion_tokens\"";

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool reference(const char *p, size_t n, uint32_t *out)
{
    size_t klen = sizeof KEY - 1;
    bool found = false;
    bool esc = false;
    for (size_t i = 0; i < n; i++) {
        bool esc_here = esc; /* p[i] follows an unescaped backslash */
        esc = p[i] == '\\' && !esc;
        if (esc_here || i + klen > n || memcmp(p + i, KEY, klen) != 0)
            continue;
        size_t j = i + klen;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] != ':')
            continue;
        j++;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] < '0' || p[j] > '9')
            continue;
        uint64_t v = 0;
        while (j < n && p[j] >= '0' && p[j] <= '9') {
            v = v * 10 + (uint64_t)(p[j] - '0');
            if (v > UINT32_MAX)
                v = UINT32_MAX;
            j++;
        }
        if (j >= n || p[j] == '.' || p[j] == 'e' || p[j] == 'E')
            continue;
        *out = (uint32_t)v;
        found = true;
    }
    return found;
}

/* Feeds p[0..n) cut at <cut> (when piece == 0), else in pieces of <piece>. */
static bool scan_pieces(const char *p, size_t n, size_t cut, size_t piece, uint32_t *out)
{
    struct usage_scan u;
    usage_scan_init(&u);
    if (piece == 0) {
        usage_scan_feed(&u, p, cut);
        usage_scan_feed(&u, p + cut, n - cut);
    } else {
        for (size_t at = 0; at < n; at += piece)
            usage_scan_feed(&u, p + at, n - at < piece ? n - at : piece);
    }
    return usage_scan_result(&u, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    size_t cut = n ? data[0] % (n + 1) : 0;
    size_t piece = (size_t)data[1] % 16 + 1;
    uint32_t want = 0, got = 0;
    bool f = reference(p, n, &want);
    ENSURE(scan_pieces(p, n, 0, n ? n : 1, &got) == f && (!f || got == want));
    ENSURE(scan_pieces(p, n, cut, 0, &got) == f && (!f || got == want));
    ENSURE(scan_pieces(p, n, 0, piece, &got) == f && (!f || got == want));
    ENSURE(scan_pieces(p, n, 0, 1, &got) == f && (!f || got == want));
    return 0;
}
