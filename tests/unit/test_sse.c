/*
 * Unit tests for dataplane/sse: the framer's spans against every split of
 * realistic and random streams, each framed event against a WHATWG
 * event-stream parser written here, and sse_event_scan on vLLM events.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sse.h"

/* cr_assert formats eagerly enough to be slow in loops of millions. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

/* ---- growable byte buffer ---------------------------------------------- */

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

static void buf_add(struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- a WHATWG HTML §9.2.6 event-stream parser (bytes, no BOM handling) -- */

struct spec_ev {
    struct buf type;
    struct buf data;
};

struct spec {
    struct spec_ev ev[64];
    size_t nev;
    size_t ndisp; /* dispatches seen (may exceed the 64 kept) */
};

static bool field_is(const char *name, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(name, lit, n) == 0;
}

/* Parses a whole stream; a last line without terminator is discarded. */
static void spec_parse(const char *s, size_t n, struct spec *out)
{
    struct buf data = {0}, type = {0};
    size_t i = 0;
    memset(out, 0, sizeof(*out));
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        if (j == n)
            break; /* incomplete line at EOF */
        const char *line = s + i;
        size_t ll = j - i;
        i = j + 1;
        if (s[j] == '\r' && i < n && s[i] == '\n')
            i++;
        if (ll == 0) {
            if (data.len > 0) {
                struct spec_ev *e = out->nev < 64 ? &out->ev[out->nev++] : NULL;
                if (e != NULL) {
                    memset(e, 0, sizeof(*e));
                    buf_add(&e->data, data.p, data.len - 1);
                    buf_add(&e->type, type.len ? type.p : "message", type.len ? type.len : 7);
                }
                out->ndisp++;
            }
            data.len = 0;
            type.len = 0;
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
        if (field_is(line, nl, "event")) {
            type.len = 0;
            buf_add(&type, v, vl);
        } else if (field_is(line, nl, "data")) {
            buf_add(&data, v, vl);
            buf_add(&data, "\n", 1);
        } /* id and retry do not affect dispatch; others are ignored */
    }
    buf_free(&data);
    buf_free(&type);
}

static void spec_free(struct spec *s)
{
    for (size_t i = 0; i < s->nev; i++) {
        buf_free(&s->ev[i].data);
        buf_free(&s->ev[i].type);
    }
}

/* Comment lines and field lines of one event, for SSE_EV_COMMENT. */
static void count_lines(const char *s, size_t n, int *comments, int *fields)
{
    *comments = *fields = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        if (j > i) {
            if (s[i] == ':')
                (*comments)++;
            else
                (*fields)++;
        }
        i = j + 1;
        if (j < n && s[j] == '\r' && i < n && s[i] == '\n')
            i++;
    }
}

/* ---- framing driver ---------------------------------------------------- */

struct fev {
    struct buf b;
    bool ended;
};

struct frun {
    struct fev *ev;
    size_t nev;
    size_t cap;
    size_t skip;
    size_t total;
    size_t calls;
};

static void frun_free(struct frun *r)
{
    for (size_t i = 0; i < r->nev; i++)
        buf_free(&r->ev[i].b);
    free(r->ev);
    memset(r, 0, sizeof(*r));
}

static struct fev *frun_open(struct frun *r)
{
    if (r->nev == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
        cr_assert_not_null(r->ev);
    }
    struct fev *e = &r->ev[r->nev++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* Feeds one piece, checking every span invariant that holds per call. */
static void feed_piece(struct sse_framer *f, struct frun *r, const char *p, size_t n)
{
    while (n > 0) {
        bool was_in = sse_framer_in_event(f);
        struct fev *cur = r->nev > 0 && !r->ev[r->nev - 1].ended ? &r->ev[r->nev - 1] : NULL;
        CHECK(was_in == (cur != NULL), "in_event %d but open event %p", was_in, (void *)cur);
        enum sse_span kind = (enum sse_span) - 1;
        size_t s = sse_frame_feed(f, p, n, &kind);
        r->calls++;
        CHECK(s > 0 && s <= n, "span %zu of %zu", s, n);
        switch (kind) {
        case SSE_SPAN_SKIP:
            CHECK(!was_in, "SKIP inside an event");
            CHECK(!sse_framer_in_event(f), "in event after SKIP");
            for (size_t i = 0; i < s; i++)
                CHECK(p[i] == '\r' || p[i] == '\n', "SKIP byte 0x%02x", (unsigned char)p[i]);
            r->skip += s;
            break;
        case SSE_SPAN_PART:
            if (cur == NULL)
                cur = frun_open(r);
            buf_add(&cur->b, p, s);
            CHECK(sse_framer_in_event(f), "not in event after PART");
            CHECK(f->event_len == cur->b.len, "event_len %llu, have %zu",
                  (unsigned long long)f->event_len, cur->b.len);
            break;
        case SSE_SPAN_END:
            CHECK(cur != NULL && cur->b.len > 0, "END without PART");
            CHECK(f->event_len == cur->b.len, "event_len at END");
            CHECK(s == 1 && (p[0] == '\r' || p[0] == '\n'), "END is one terminator byte");
            buf_add(&cur->b, p, s);
            cur->ended = true;
            CHECK(!sse_framer_in_event(f), "in event after END");
            break;
        default:
            CHECK(false, "bad kind %d", (int)kind);
        }
        r->total += s;
        p += s;
        n -= s;
    }
}

/* Frames in[0..n) cut at cuts[0..ncuts) (ascending, within [0, n]). */
static void frame_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts, struct frun *r)
{
    struct sse_framer f;
    sse_framer_init(&f);
    memset(r, 0, sizeof(*r));
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        feed_piece(&f, r, in + at, to - at);
        at = to;
    }
    CHECK(r->total == n, "spans total %zu of %zu", r->total, n);
}

static void frame_whole(const char *in, size_t n, struct frun *r)
{
    size_t none = 0;
    frame_cuts(in, n, &none, 0, r);
}

static void same_events(const struct frun *a, const struct frun *b, const char *what)
{
    CHECK(a->nev == b->nev, "%s: %zu events vs %zu", what, a->nev, b->nev);
    CHECK(a->skip == b->skip, "%s: skip %zu vs %zu", what, a->skip, b->skip);
    for (size_t i = 0; i < a->nev; i++) {
        CHECK(a->ev[i].ended == b->ev[i].ended, "%s: event %zu ended differs", what, i);
        CHECK(a->ev[i].b.len == b->ev[i].b.len &&
                  memcmp(a->ev[i].b.p, b->ev[i].b.p, a->ev[i].b.len) == 0,
              "%s: event %zu bytes differ", what, i);
    }
}

/* Each framed event, parsed alone, dispatches what the whole stream does. */
static void check_events_vs_spec(const char *in, size_t n, const struct frun *r)
{
    struct spec whole;
    spec_parse(in, n, &whole);
    size_t k = 0;
    for (size_t i = 0; i < r->nev; i++) {
        const struct fev *e = &r->ev[i];
        struct spec one;
        spec_parse(e->b.p, e->b.len, &one);
        unsigned fl = sse_event_scan(e->b.p, e->b.len);
        int comments, fields;
        count_lines(e->b.p, e->b.len, &comments, &fields);
        CHECK(e->b.len > 0 && e->b.p[0] != '\r' && e->b.p[0] != '\n',
              "event %zu starts with a terminator", i);
        if (!e->ended) {
            CHECK(i == r->nev - 1, "unended event %zu not last", i);
            CHECK(one.ndisp == 0, "unended event dispatches");
            spec_free(&one);
            continue;
        }
        CHECK(one.ndisp == ((fl & SSE_EV_DATA) ? 1u : 0u), "event %zu: %zu dispatches, flags %#x",
              i, one.ndisp, fl);
        CHECK(((fl & SSE_EV_COMMENT) != 0) == (comments > 0 && fields == 0), "event %zu COMMENT",
              i);
        if (one.ndisp == 1) {
            CHECK(k < whole.nev, "event %zu: more dispatches than whole stream", i);
            const struct spec_ev *a = &one.ev[0], *b = &whole.ev[k++];
            CHECK(a->data.len == b->data.len && memcmp(a->data.p, b->data.p, a->data.len) == 0,
                  "event %zu data differs", i);
            CHECK(a->type.len == b->type.len && memcmp(a->type.p, b->type.p, a->type.len) == 0,
                  "event %zu type differs", i);
            bool done = a->data.len == 6 && memcmp(a->data.p, "[DONE]", 6) == 0;
            CHECK(((fl & SSE_EV_DONE) != 0) == done, "event %zu DONE", i);
        } else {
            CHECK(!(fl & (SSE_EV_DONE | SSE_EV_CONTENT)), "event %zu flags %#x without data", i,
                  fl);
        }
        spec_free(&one);
    }
    CHECK(k == whole.ndisp, "framed events dispatch %zu, whole stream %zu", k, whole.ndisp);
    spec_free(&whole);
}

/* Whole, 1 byte at a time, every 2-way split, and 3-way splits when small. */
static void check_stream(const char *in, size_t n)
{
    struct frun ref, r;
    frame_whole(in, n, &ref);
    check_events_vs_spec(in, n, &ref);

    size_t *cuts = malloc((n + 1) * sizeof(*cuts));
    cr_assert_not_null(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    frame_cuts(in, n, cuts, n > 0 ? n - 1 : 0, &r);
    same_events(&ref, &r, "bytewise");
    frun_free(&r);

    for (size_t a = 0; a <= n; a++) {
        frame_cuts(in, n, &a, 1, &r);
        same_events(&ref, &r, "2-way");
        frun_free(&r);
    }
    if (n <= 480) {
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                size_t c2[2] = {a, b};
                frame_cuts(in, n, c2, 2, &r);
                same_events(&ref, &r, "3-way");
                frun_free(&r);
            }
        }
    }
    free(cuts);
    frun_free(&ref);
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- realistic streams --------------------------------------------------- */

#define CHAT_ROLE                                                                                  \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":"  \
    "null,\"finish_reason\":null}]}"
#define CHAT_TOK(t)                                                                                \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" t "\"},\"logprobs\":null,"               \
    "\"finish_reason\":null}]}"
#define CHAT_STOP                                                                                  \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}"
#define CHAT_USAGE                                                                                 \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"total_tokens\":10,\"completion_tokens\":5}}"
#define CMPL_TOK(t)                                                                                \
    "data: "                                                                                       \
    "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":" \
    "[{\"index\":0,\"text\":\"" t "\",\"logprobs\":null,\"finish_reason\":null}]}"
#define TOOL_ARGS                                                                                  \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"             \
    "\"arguments\":\"{\\\"a\"}}]},\"logprobs\":null,\"finish_reason\":null}]}"
#define DONE "data: [DONE]"

static const char chat_lf[] =
    CHAT_ROLE "\n\n" CHAT_TOK(" w0") "\n\n" CHAT_TOK(" w1") "\n\n" CHAT_STOP "\n\n" CHAT_USAGE
                                                            "\n\n" DONE "\n\n";
static const char chat_crlf[] =
    CHAT_ROLE "\r\n\r\n" CHAT_TOK(" w0") "\r\n\r\n" CHAT_STOP "\r\n\r\n" DONE "\r\n\r\n";
static const char chat_cr[] = CHAT_ROLE "\r\r" CHAT_TOK(" w0") "\r\r" CHAT_STOP "\r\r" DONE "\r\r";
static const char cmpl_lf[] = ": ping\n\n" CMPL_TOK(" w3") "\n\n" CMPL_TOK("") "\n\n" DONE "\n\n";
static const char tool_lf[] = TOOL_ARGS "\n\n" DONE "\n\n";
/* small enough for every 3-way split */
static const char small_mixed[] = ": ping\r\n\r\n" CHAT_TOK(" w0") "\r\n\r\n" DONE "\r\r\n\n";

Test(sse_frame, realistic_streams_split_invariant)
{
    check_stream(S(chat_lf));
    check_stream(S(chat_crlf));
    check_stream(S(chat_cr));
    check_stream(S(cmpl_lf));
    check_stream(S(tool_lf));
    check_stream(S(small_mixed));
}

Test(sse_frame, realistic_events_and_flags)
{
    struct frun r;
    frame_whole(S(chat_lf), &r);
    cr_assert_eq(r.nev, 6);
    cr_assert_eq(r.skip, 0);
    static const unsigned want[] = {
        SSE_EV_DATA, SSE_EV_DATA | SSE_EV_CONTENT, SSE_EV_DATA | SSE_EV_CONTENT, SSE_EV_DATA,
        SSE_EV_DATA, SSE_EV_DATA | SSE_EV_DONE};
    for (size_t i = 0; i < 6; i++) {
        cr_assert(r.ev[i].ended);
        cr_assert_eq(sse_event_scan(r.ev[i].b.p, r.ev[i].b.len), want[i], "event %zu", i);
    }
    cr_assert_eq(r.ev[1].b.len, sizeof(CHAT_TOK(" w0") "\n\n") - 1);
    cr_assert(memcmp(r.ev[1].b.p, S(CHAT_TOK(" w0") "\n\n")) == 0);
    frun_free(&r);

    /* CRLF: each event ends on the CR of its blank line; the LF is SKIP. */
    frame_whole(S(chat_crlf), &r);
    cr_assert_eq(r.nev, 4);
    cr_assert_eq(r.skip, 4);
    cr_assert(memcmp(r.ev[3].b.p, S(DONE "\r\n\r")) == 0 && r.ev[3].b.len == 15);
    frun_free(&r);
}

Test(sse_frame, kinds_for_lf_input)
{
    struct sse_framer f;
    sse_framer_init(&f);
    cr_assert(!sse_framer_in_event(&f));
    const char *in = "\n\ndata: a\ndata: b\n\n: c\n\n";
    enum sse_span k;
    size_t n = sse_frame_feed(&f, in, strlen(in), &k);
    cr_assert_eq(k, SSE_SPAN_SKIP);
    cr_assert_eq(n, 2);
    in += n;
    n = sse_frame_feed(&f, in, strlen(in), &k);
    cr_assert_eq(k, SSE_SPAN_PART);
    cr_assert_eq(n, 16); /* both lines in one span */
    cr_assert(sse_framer_in_event(&f));
    cr_assert_eq(f.event_len, 16);
    in += n;
    n = sse_frame_feed(&f, in, strlen(in), &k);
    cr_assert_eq(k, SSE_SPAN_END);
    cr_assert_eq(n, 1);
    cr_assert(!sse_framer_in_event(&f));
    cr_assert_eq(f.event_len, 16, "kept after END");
    in += n;
    n = sse_frame_feed(&f, in, strlen(in), &k);
    cr_assert_eq(k, SSE_SPAN_PART);
    cr_assert_eq(n, 4);
    cr_assert_eq(f.event_len, 4, "reset by the next event");
    in += n;
    n = sse_frame_feed(&f, in, strlen(in), &k);
    cr_assert_eq(k, SSE_SPAN_END);
    cr_assert_eq(n, 1);
    cr_assert_eq(in[1], '\0');
    cr_assert_eq(sse_frame_feed(&f, in, 0, &k), 0, "len 0 consumes nothing");
    cr_assert(!sse_framer_in_event(&f));
}

Test(sse_frame, crlf_split_after_blank_cr)
{
    /* The example from the design: "data: a\r\n\r" ends the event at the
     * last CR; an LF starting the next feed is SKIP. */
    struct sse_framer f;
    sse_framer_init(&f);
    enum sse_span k;
    const char *a = "data: a\r\n\r";
    cr_assert_eq(sse_frame_feed(&f, a, 9, &k), 9);
    cr_assert_eq(k, SSE_SPAN_PART);
    cr_assert_eq(sse_frame_feed(&f, a + 9, 1, &k), 1);
    cr_assert_eq(k, SSE_SPAN_END);
    cr_assert_eq(sse_frame_feed(&f, "\n", 1, &k), 1);
    cr_assert_eq(k, SSE_SPAN_SKIP);
    cr_assert(!sse_framer_in_event(&f));
}

Test(sse_frame, crlf_split_inside_line_terminator)
{
    /* A CR ending one feed and an LF starting the next are one terminator
     * of a non-blank line: PART, not a blank line. */
    struct sse_framer f;
    sse_framer_init(&f);
    enum sse_span k;
    cr_assert_eq(sse_frame_feed(&f, "data: a\r", 8, &k), 8);
    cr_assert_eq(k, SSE_SPAN_PART);
    cr_assert_eq(sse_frame_feed(&f, "\ndata: b\r\n\r\n", 12, &k), 10);
    cr_assert_eq(k, SSE_SPAN_PART);
    cr_assert_eq(f.event_len, 18);
    cr_assert_eq(sse_frame_feed(&f, "\r\n", 2, &k), 1);
    cr_assert_eq(k, SSE_SPAN_END);
    cr_assert_eq(sse_frame_feed(&f, "\n", 1, &k), 1);
    cr_assert_eq(k, SSE_SPAN_SKIP);

    /* CR then CR across feeds is a blank line: END. */
    sse_framer_init(&f);
    cr_assert_eq(sse_frame_feed(&f, "data: a\r", 8, &k), 8);
    cr_assert_eq(sse_frame_feed(&f, "\rdata: b", 8, &k), 1);
    cr_assert_eq(k, SSE_SPAN_END);
    cr_assert_eq(sse_frame_feed(&f, "data: b", 7, &k), 7);
    cr_assert_eq(k, SSE_SPAN_PART);
}

Test(sse_frame, edge_streams_split_invariant)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {S("")},
        {S("\n")},
        {S("\r\n\r\n\n\r\r")},
        {S("data")},
        {S("data\n")},
        {S("data\n\n")},
        {S("data:\n\n")},
        {S("data:\r\n\r\n")},
        {S(": ping\n\n: ping\r\n\r\n: ping\r\r")},
        {S("data: a\rdata: b\r\ndata: c\ndata: d\r\r\n\n\r\ndata: e\n\r")},
        {S("event: add\ndata: 1\nid: 7\nretry: 10\n\nevent: x\n\n")},
        {S("data: line1\ndata: line2\n\ndata: [DONE]\n\n")},
        {S("\r\r\rdata: x\r\r\r\rdata: y\n\r\n\r")},
        {S("data: partial event without end\ndata: more")},
        {S("data: x\r")},
        {S("data: x\r\n\r")},
        {S("x\0y\n\n\0\n\n")},
        {S("\xef\xbb\xbf"
           "data: bom\n\n")},
        {S(":\n\n:\r\r:\r\n\r\n")},
        {S("data:[DONE]\n\ndata:  [DONE]\n\ndata: [DONE]\ndata: [DONE]\n\n")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_stream(cases[i].s, cases[i].n);
}

Test(sse_frame, terminator_at_every_offset)
{
    /* The SIMD and word scans in the framer: a terminator at each position
     * of a long line, for each line end style, at each alignment. */
    static const char *const ends[] = {"\n\n", "\r\r", "\r\n\r\n", "\n\r\n", "\r\n\n"};
    char in[200];
    for (size_t e = 0; e < 5; e++) {
        size_t el = strlen(ends[e]);
        for (size_t lead = 0; lead < 3; lead++) {
            for (size_t len = 1; len < 70; len++) {
                size_t n = 0;
                memset(in, '\n', lead);
                n += lead;
                memcpy(in + n, "data:", 5);
                memset(in + n + 5, 'x', len);
                n += 5 + len;
                memcpy(in + n, ends[e], el);
                n += el;
                memcpy(in + n, "data: y\n\n", 9);
                n += 9;
                struct frun ref;
                frame_whole(in, n, &ref);
                CHECK(ref.nev == 2 && ref.ev[0].ended && ref.ev[1].ended, "events %zu", ref.nev);
                CHECK(ref.ev[0].b.len ==
                          5 + len + (ends[e][0] == '\r' && ends[e][1] == '\n' ? 3 : 2),
                      "event 0 length %zu", ref.ev[0].b.len);
                check_events_vs_spec(in, n, &ref);
                for (size_t a = 0; a <= n; a++) {
                    struct frun r;
                    frame_cuts(in, n, &a, 1, &r);
                    same_events(&ref, &r, "2-way");
                    frun_free(&r);
                }
                frun_free(&ref);
            }
        }
    }
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: a fixed sequence, so failures reproduce */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Test(sse_frame, random_streams_random_splits)
{
    static const char alpha[] = "\r\n\r\n\r\n:data: x[DONE]\"";
    uint64_t seed = 42;
    char in[256];
    size_t cuts[8];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(rng_next(&seed) % sizeof(in));
        for (size_t i = 0; i < n; i++)
            in[i] = alpha[rng_next(&seed) % (sizeof(alpha) - 1)];
        struct frun ref, r;
        frame_whole(in, n, &ref);
        check_events_vs_spec(in, n, &ref);
        for (int k = 0; k < 8; k++) {
            size_t nc = (size_t)(rng_next(&seed) % 8);
            for (size_t i = 0; i < nc; i++)
                cuts[i] = n ? (size_t)(rng_next(&seed) % (n + 1)) : 0;
            for (size_t i = 1; i < nc; i++) /* insertion sort */
                for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                    size_t t = cuts[j];
                    cuts[j] = cuts[j - 1];
                    cuts[j - 1] = t;
                }
            frame_cuts(in, n, cuts, nc, &r);
            same_events(&ref, &r, "random");
            frun_free(&r);
        }
        if (n < 48)
            check_stream(in, n);
        frun_free(&ref);
    }
}

Test(sse_frame, long_event_in_many_pieces)
{
    /* A 1 MiB event arriving in 1500-byte receives is one PART run. */
    size_t n = 1u << 20;
    char *in = malloc(n + 2);
    cr_assert_not_null(in);
    memcpy(in, "data: ", 6);
    for (size_t i = 6; i < n; i++)
        in[i] = (char)('a' + i % 26);
    in[n] = '\n';
    in[n + 1] = '\n';
    struct sse_framer f;
    sse_framer_init(&f);
    size_t at = 0, ends = 0;
    while (at < n + 2) {
        size_t piece = n + 2 - at < 1500 ? n + 2 - at : 1500;
        size_t used = 0;
        while (used < piece) {
            enum sse_span k;
            size_t s = sse_frame_feed(&f, in + at + used, piece - used, &k);
            if (k == SSE_SPAN_PART)
                cr_assert(at + used + s <= n + 1, "PART went past the line");
            if (k == SSE_SPAN_END)
                ends++;
            used += s;
        }
        at += piece;
    }
    cr_assert_eq(ends, 1);
    cr_assert_eq(f.event_len, n + 1);
    free(in);
}

/* ---- sse_event_scan ------------------------------------------------------ */

static unsigned scan(const char *s)
{
    return sse_event_scan(s, strlen(s));
}

Test(sse_scan, vllm_events)
{
    cr_assert_eq(scan(CHAT_ROLE "\n\n"), SSE_EV_DATA, "empty content");
    cr_assert_eq(scan(CHAT_TOK(" w0") "\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan(CMPL_TOK(" w3") "\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan(CMPL_TOK("") "\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan(CHAT_USAGE "\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan(CHAT_STOP "\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan(TOOL_ARGS "\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan(DONE "\n\n"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan(DONE "\r\n\r"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan(DONE "\r\r"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan(": ping\n\n"), SSE_EV_COMMENT);
    cr_assert_eq(scan(":\n\n"), SSE_EV_COMMENT);
    cr_assert_eq(scan(": a\r\n: b\r\n\r"), SSE_EV_COMMENT);
}

Test(sse_scan, content_values)
{
    cr_assert_eq(scan("data: {\"delta\":{\"content\":\"\\\"\"}}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT,
                 "escaped quote is content");
    cr_assert_eq(scan("data: {\"delta\":{\"content\": \"x\"}}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"delta\":{\"content\" \t: \t\"x\"}}\n\n"),
                 SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"delta\":{\"content\":null}}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"delta\":{\"content\":\"\"}}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"delta\":{\"content\": \"\"}}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"delta\":{\"reasoning_content\":\"Hm\"}}\n\n"),
                 SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"delta\":{\"content\":null,\"reasoning_content\":\"Hm\"}}\n\n"),
                 SSE_EV_DATA | SSE_EV_CONTENT, "keeps searching after a miss");
    cr_assert_eq(scan("data: {\"delta\":{\"reasoning_content\":null,\"content\":\"\"}}\n\n"),
                 SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"text\":\"a\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"arguments\":\"{\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"arguments\":\"\"}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data:{\"content\":\"x\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT, "no space");
    cr_assert_eq(scan("data:  {\"content\":\"x\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    /* a truncated value has no character after the quote */
    cr_assert_eq(scan("data: {\"content\":\""), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"content\":"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"content\""), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"content\":\"x"), SSE_EV_DATA | SSE_EV_CONTENT);
    /* logprobs carry "content" as an array, not a token */
    cr_assert_eq(scan("data: {\"delta\":{\"content\":\"\"},\"logprobs\":{\"content\":[{"
                      "\"token\":\"a\"}]}}\n\n"),
                 SSE_EV_DATA);
}

Test(sse_scan, keys_inside_strings_do_not_count)
{
    /* `"text"` and `"arguments"` preceded by a backslash are inside a
     * string (an escaped quote), never a key. */
    cr_assert_eq(scan("data: {\"content\":\"\",\"x\":\"say \\\"text\\\": \\\"hi\\\"\"}\n\n"),
                 SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"content\":\"\",\"\\\"text\":\"hi\"}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"content\":\"\",\"\\\"arguments\":\"hi\"}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"role\":\"the content\",\"content\":\"\"}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"x\":\"content\\\":\\\"y\"}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: {\"texts\":\"a\",\"context\":\"b\",\"text_offset\":\"c\"}\n\n"),
                 SSE_EV_DATA);
    /* A key that merely ends in "content" counts, by the rule. */
    cr_assert_eq(scan("data: {\"xcontent\":\"a\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
}

Test(sse_scan, only_data_lines_are_searched)
{
    cr_assert_eq(scan(": {\"content\":\"x\"}\n\n"), SSE_EV_COMMENT);
    cr_assert_eq(scan("event: {\"content\":\"x\"}\ndata: {}\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("id: 1\n\n"), 0, "a field without data is neither data nor comment");
    cr_assert_eq(scan(": c\nid: 1\n\n"), 0);
    cr_assert_eq(scan(": c\ndata: x\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("datax: {\"content\":\"x\"}\n\n"), 0, "field datax");
    cr_assert_eq(scan("data {\"content\":\"x\"}\n\n"), 0, "field `data {...}`");
    cr_assert_eq(scan(" data: {\"content\":\"x\"}\n\n"), 0);
    cr_assert_eq(scan("Data: {\"content\":\"x\"}\n\n"), 0, "names are case-sensitive");
    cr_assert_eq(scan("data\n\n"), SSE_EV_DATA, "bare data line");
    cr_assert_eq(scan("data:\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: a\ndata: {\"text\":\"b\"}\n\n"), SSE_EV_DATA | SSE_EV_CONTENT);
    cr_assert_eq(scan("data: {\"text\":\r\"b\"}\n\n"), SSE_EV_DATA, "a CR ends the line");
    cr_assert_eq(sse_event_scan("", 0), 0);
    cr_assert_eq(sse_event_scan("data: {\"text\":\"b\"}", 11), SSE_EV_DATA, "respects len");
}

Test(sse_scan, done_is_exact)
{
    cr_assert_eq(scan("data: [DONE]\n\n"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan("data:[DONE]\n\n"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan("data: [DONE]"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan(": bye\ndata: [DONE]\n\n"), SSE_EV_DATA | SSE_EV_DONE);
    cr_assert_eq(scan("data:  [DONE]\n\n"), SSE_EV_DATA, "value is \" [DONE]\"");
    cr_assert_eq(scan("data: [DONE] \n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: [done]\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: [DONE]\ndata: [DONE]\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("data: [DONE]\ndata\n\n"), SSE_EV_DATA, "joined is \"[DONE]\\n\"");
    cr_assert_eq(scan("data\ndata: [DONE]\n\n"), SSE_EV_DATA);
    cr_assert_eq(scan("event: end\ndata: [DONE]\n\n"), SSE_EV_DATA | SSE_EV_DONE);
}

Test(sse_scan, long_lines_every_alignment)
{
    /* The key at each offset of a long value, across the 16-byte scans. */
    char ev[256];
    for (size_t pad = 0; pad < 64; pad++) {
        size_t n = 0;
        memcpy(ev, "data: {\"p\":\"", 12);
        n = 12;
        memset(ev + n, 'z', pad);
        n += pad;
        memcpy(ev + n, "\",\"content\":\"k\"}\n\n", 18);
        n += 18;
        cr_assert_eq(sse_event_scan(ev, n), SSE_EV_DATA | SSE_EV_CONTENT, "pad %zu", pad);
        ev[n - 5] = '"'; /* "content":"" */
        cr_assert_eq(sse_event_scan(ev, n), SSE_EV_DATA, "pad %zu", pad);
    }
}
