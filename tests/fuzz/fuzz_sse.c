/*
 * libFuzzer target for dataplane/sse.
 *
 * Input: 5 parameter bytes, then the stream.  Bytes 0-1 and 2-3 pick two
 * cut points, byte 4 a piece size for uniform chunking.  The stream is framed
 * whole, cut at one point, at two, in uniform pieces and one byte at a time;
 * the events (as offsets into the stream) and SKIP totals must be identical,
 * spans must obey the header's rules, each event parsed alone by a WHATWG
 * parser must dispatch what the whole stream dispatches, and
 * sse_event_scan must agree with a byte-at-a-time model of its documented
 * rule, on every event and on the raw input.  Any violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAM 65536

struct fev {
    size_t off;
    size_t len;
    bool ended;
};

struct frun {
    struct fev ev[MAX_STREAM];
    size_t nev;
    size_t skip;
};

static struct frun run_ref, run_cmp;

#define ENSURE(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void feed_piece(struct sse_framer *f, struct frun *r, const char *base, size_t at, size_t n)
{
    while (n > 0) {
        const char *p = base + at;
        bool was_in = sse_framer_in_event(f);
        struct fev *cur = r->nev > 0 && !r->ev[r->nev - 1].ended ? &r->ev[r->nev - 1] : NULL;
        ENSURE(was_in == (cur != NULL));
        enum sse_span kind;
        size_t s = sse_frame_feed(f, p, n, &kind);
        ENSURE(s > 0 && s <= n);
        switch (kind) {
        case SSE_SPAN_SKIP:
            ENSURE(!was_in && !sse_framer_in_event(f));
            for (size_t i = 0; i < s; i++)
                ENSURE(p[i] == '\r' || p[i] == '\n');
            r->skip += s;
            break;
        case SSE_SPAN_PART:
            if (cur == NULL) {
                ENSURE(r->nev < MAX_STREAM);
                cur = &r->ev[r->nev++];
                cur->off = at;
                cur->len = 0;
                cur->ended = false;
            }
            ENSURE(cur->off + cur->len == at); /* contiguous */
            cur->len += s;
            ENSURE(sse_framer_in_event(f) && f->event_len == cur->len);
            break;
        case SSE_SPAN_END:
            ENSURE(cur != NULL && cur->len > 0 && cur->off + cur->len == at);
            ENSURE(f->event_len == cur->len);
            ENSURE(s == 1 && (p[0] == '\r' || p[0] == '\n'));
            cur->len += s;
            cur->ended = true;
            ENSURE(!sse_framer_in_event(f));
            break;
        default:
            abort();
        }
        at += s;
        n -= s;
    }
}

static void frame_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts, struct frun *r)
{
    struct sse_framer f;
    sse_framer_init(&f);
    r->nev = 0;
    r->skip = 0;
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        feed_piece(&f, r, in, at, to - at);
        at = to;
    }
    size_t total = r->skip;
    for (size_t i = 0; i < r->nev; i++)
        total += r->ev[i].len;
    ENSURE(total == n);
}

static void same_events(const struct frun *a, const struct frun *b)
{
    ENSURE(a->nev == b->nev && a->skip == b->skip);
    for (size_t i = 0; i < a->nev; i++)
        ENSURE(a->ev[i].off == b->ev[i].off && a->ev[i].len == b->ev[i].len &&
               a->ev[i].ended == b->ev[i].ended);
}

/* ---- WHATWG dispatch model: count and a hash of (type, data) ----------- */

struct spec {
    size_t ndisp;
    uint64_t hash;
    bool last_done; /* data of the last dispatch is exactly "[DONE]" */
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
    return h;
}

static bool eq(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static void spec_parse(const char *s, size_t n, struct spec *out)
{
    /* data is hashed as it is appended; dlen tracks emptiness and DONE. */
    uint64_t dh = 0xcbf29ce484222325ULL, th = 0;
    size_t dlen = 0;
    bool d_done = false, type_set = false;
    const char *tp = NULL;
    size_t tl = 0;
    out->ndisp = 0;
    out->hash = 0;
    out->last_done = false;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        if (j == n)
            break;
        const char *line = s + i;
        size_t ll = j - i;
        i = j + 1;
        if (s[j] == '\r' && i < n && s[i] == '\n')
            i++;
        if (ll == 0) {
            if (dlen > 0) {
                th = type_set ? fnv(0xcbf29ce484222325ULL, tp, tl)
                              : fnv(0xcbf29ce484222325ULL, "message", 7);
                /* chained so that per-event hashes chain to the same */
                out->hash =
                    out->hash * 0x9e3779b97f4a7c15ULL + fnv(dh, (const char *)&th, sizeof(th));
                out->ndisp++;
                out->last_done = d_done;
            }
            dh = 0xcbf29ce484222325ULL;
            dlen = 0;
            d_done = false;
            type_set = false;
            continue;
        }
        if (line[0] == ':')
            continue;
        const char *colon = memchr(line, ':', ll);
        size_t nl = colon ? (size_t)(colon - line) : ll;
        const char *v = colon ? colon + 1 : line + ll;
        if (colon && v < line + ll && *v == ' ')
            v++;
        size_t vl = (size_t)(line + ll - v);
        if (eq(line, nl, "event")) {
            tp = v;
            tl = vl;
            type_set = true;
        } else if (eq(line, nl, "data")) {
            /* The hash covers data lines with their joining LFs, so that the
             * final "remove one trailing LF" is the same on both sides. */
            if (dlen > 0)
                dh = fnv(dh, "\n", 1);
            dh = fnv(dh, v, vl);
            d_done = dlen == 0 && eq(v, vl, "[DONE]");
            dlen += vl + 1;
        }
    }
}

/* ---- sse_event_scan model: byte by byte, the rule as documented -------- */

static bool model_value(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p != ':')
        return false;
    p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p != '"')
        return false;
    p++;
    return p < end && *p != '"';
}

static bool model_token(const char *v, size_t n)
{
    const char *end = v + n;
    for (size_t i = 0; i < n; i++) {
        if (n - i >= 8 && memcmp(v + i, "content\"", 8) == 0 && model_value(v + i + 8, end))
            return true;
        if (i > 0 && v[i - 1] == '\\')
            continue;
        if (n - i >= 6 && memcmp(v + i, "\"text\"", 6) == 0 && model_value(v + i + 6, end))
            return true;
        if (n - i >= 11 && memcmp(v + i, "\"arguments\"", 11) == 0 && model_value(v + i + 11, end))
            return true;
    }
    return false;
}

static unsigned model_scan(const char *s, size_t n)
{
    unsigned fl = 0;
    size_t ndata = 0, ncomment = 0, nfield = 0;
    bool done = false;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        const char *line = s + i;
        size_t ll = j - i;
        i = j + 1;
        if (j < n && s[j] == '\r' && i < n && s[i] == '\n')
            i++;
        if (ll == 0)
            continue;
        if (line[0] == ':') {
            ncomment++;
            continue;
        }
        nfield++;
        const char *colon = memchr(line, ':', ll);
        size_t nl = colon ? (size_t)(colon - line) : ll;
        if (!eq(line, nl, "data"))
            continue;
        const char *v = colon ? colon + 1 : line + ll;
        if (colon && v < line + ll && *v == ' ')
            v++;
        size_t vl = (size_t)(line + ll - v);
        done = ndata == 0 && eq(v, vl, "[DONE]");
        ndata++;
        if (model_token(v, vl))
            fl |= SSE_EV_CONTENT;
    }
    if (ndata > 0)
        fl |= SSE_EV_DATA;
    if (ndata == 1 && done)
        fl |= SSE_EV_DONE;
    if (ncomment > 0 && nfield == 0)
        fl |= SSE_EV_COMMENT;
    return fl;
}

static void check_events(const char *in, size_t n, const struct frun *r)
{
    struct spec whole, one;
    spec_parse(in, n, &whole);
    size_t ndisp = 0;
    uint64_t hash = 0;
    for (size_t i = 0; i < r->nev; i++) {
        const char *e = in + r->ev[i].off;
        size_t el = r->ev[i].len;
        ENSURE(e[0] != '\r' && e[0] != '\n');
        unsigned fl = sse_event_scan(e, el);
        ENSURE(fl == model_scan(e, el));
        spec_parse(e, el, &one);
        if (!r->ev[i].ended) {
            ENSURE(i == r->nev - 1 && one.ndisp == 0);
            continue;
        }
        ENSURE(one.ndisp == ((fl & SSE_EV_DATA) ? 1u : 0u));
        ENSURE(((fl & SSE_EV_DONE) != 0) == (one.ndisp == 1 && one.last_done));
        if (one.ndisp == 1) {
            ndisp++;
            hash = hash * 0x9e3779b97f4a7c15ULL + one.hash;
        }
    }
    ENSURE(ndisp == whole.ndisp && hash == whole.hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5 || size - 5 > MAX_STREAM)
        return 0;
    const char *in = (const char *)data + 5;
    size_t n = size - 5;
    size_t cut[2];
    cut[0] = ((size_t)data[0] | (size_t)data[1] << 8) % (n + 1);
    cut[1] = ((size_t)data[2] | (size_t)data[3] << 8) % (n + 1);
    if (cut[0] > cut[1]) {
        size_t t = cut[0];
        cut[0] = cut[1];
        cut[1] = t;
    }
    size_t piece = (size_t)(data[4] % 64) + 1;

    frame_cuts(in, n, cut, 0, &run_ref);
    check_events(in, n, &run_ref);
    ENSURE(sse_event_scan(in, n) == model_scan(in, n));

    frame_cuts(in, n, &cut[0], 1, &run_cmp);
    same_events(&run_ref, &run_cmp);
    frame_cuts(in, n, &cut[1], 1, &run_cmp);
    same_events(&run_ref, &run_cmp);
    frame_cuts(in, n, cut, 2, &run_cmp);
    same_events(&run_ref, &run_cmp);

    /* Uniform pieces, and one byte at a time for small inputs. */
    size_t step = n <= 1024 ? 1 : piece;
    for (int pass = 0; pass < 2; pass++) {
        struct sse_framer f;
        sse_framer_init(&f);
        run_cmp.nev = 0;
        run_cmp.skip = 0;
        for (size_t at = 0; at < n; at += step)
            feed_piece(&f, &run_cmp, in, at, n - at < step ? n - at : step);
        same_events(&run_ref, &run_cmp);
        step = piece;
    }
    return 0;
}
