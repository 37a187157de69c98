/*
 * sse — event framing and event classification for text/event-stream.
 *
 * The framer's state is only "where are we relative to lines": between
 * events, inside a line, at the start of a line, or at the start of a line
 * right after a CR (so that an LF there is the second half of a CRLF).
 * Nothing else about past bytes matters, so any split of the input gives the
 * same events.
 *
 * A blank line that dispatches an event can be CRLF: its CR is the END span
 * and the LF is SKIP.  Ending on the CR is forced: the framer cannot wait for
 * a byte that may not come, and ending on the CR when the LF is in the next
 * feed but on the LF when it is in the same feed would make the events
 * depend on the split.
 */
#include "dataplane/sse.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    ST_IDLE = 0,     /* between events: blank lines are SKIP */
    ST_LINE = 1,     /* inside a non-empty line of an event */
    ST_LSTART = 2,   /* at the start of a line of an event */
    ST_LSTART_CR = 3 /* at the start of a line of an event, after a CR */
};

void sse_framer_init(struct sse_framer *f)
{
    f->event_len = 0;
    f->state = ST_IDLE;
}

bool sse_framer_in_event(const struct sse_framer *f)
{
    return f->state != ST_IDLE;
}

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_LOW7 0x7f7f7f7f7f7f7f7fULL

/* High bit of each byte of x that is zero, and no other bit (exact, so that
 * the first match can be taken from either end of the word). */
static inline uint64_t swar_zero_bytes(uint64_t x)
{
    return ~(((x & SWAR_LOW7) + SWAR_LOW7) | x | SWAR_LOW7);
}

/*
 * First CR or LF in [p, end), or end.  The framer runs this over every byte
 * of every event, so it looks at 16 (SSE2) or 8 bytes per step: an event of
 * vLLM JSON has a terminator only every ~200 bytes.
 */
static inline const char *find_eol(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i cr16 = _mm_set1_epi8('\r');
    const __m128i lf16 = _mm_set1_epi8('\n');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, cr16), _mm_cmpeq_epi8(v, lf16)));
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        uint64_t m =
            swar_zero_bytes(w ^ (SWAR_ONES * '\r')) | swar_zero_bytes(w ^ (SWAR_ONES * '\n'));
        if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            return p + (__builtin_clzll(m) >> 3);
#else
            return p + (__builtin_ctzll(m) >> 3);
#endif
        }
        p += 8;
    }
    while (p < end && *p != '\r' && *p != '\n')
        p++;
    return p;
}

/*
 * Scans event bytes from p (in state ST_LINE, ST_LSTART or ST_LSTART_CR) up
 * to the terminator of the blank line that ends the event, or to the end of
 * the input, and returns the length of that PART span.  A blank line's
 * terminator is left for the next call, which returns it as END.
 */
static size_t scan_part(struct sse_framer *f, const char *p, const char *end)
{
    const char *q = p;
    uint8_t st = f->state;

    if (st == ST_LSTART_CR) {
        if (*q == '\n')
            q++;
        st = ST_LSTART;
    }
    for (;;) {
        if (st == ST_LSTART) {
            if (q == end)
                break;
            if (*q == '\n' || *q == '\r')
                break; /* blank line: END on the next call */
            st = ST_LINE;
        }
        q = find_eol(q, end);
        if (q == end)
            break;
        if (*q++ == '\r') {
            if (q == end) {
                st = ST_LSTART_CR;
                break;
            }
            if (*q == '\n')
                q++;
        }
        st = ST_LSTART;
    }
    f->state = st;
    f->event_len += (uint64_t)(q - p);
    return (size_t)(q - p);
}

size_t sse_frame_feed(struct sse_framer *f, const char *p, size_t len, enum sse_span *kind)
{
    if (len == 0) {
        *kind = SSE_SPAN_PART;
        return 0;
    }
    const char *end = p + len;
    char c = *p;

    switch (f->state) {
    case ST_IDLE:
        if (c == '\r' || c == '\n') {
            /* Blank lines between events, and the LF of a CRLF whose CR
             * ended the last event: both are dropped, so one span. */
            const char *q = p + 1;
            while (q < end && (*q == '\r' || *q == '\n'))
                q++;
            *kind = SSE_SPAN_SKIP;
            return (size_t)(q - p);
        }
        f->event_len = 0;
        f->state = ST_LINE;
        break;
    case ST_LSTART:
        if (c == '\r' || c == '\n') {
            f->state = ST_IDLE;
            *kind = SSE_SPAN_END;
            return 1;
        }
        break;
    case ST_LSTART_CR:
        if (c == '\r') {
            f->state = ST_IDLE;
            *kind = SSE_SPAN_END;
            return 1;
        }
        break; /* an LF here completes the CRLF of a non-blank line */
    default:
        break;
    }
    *kind = SSE_SPAN_PART;
    return scan_part(f, p, end);
}

static inline bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* True if [p, end) starts with optional whitespace, ':', optional whitespace,
 * '"' and one character that is not '"': a non-empty string value. */
static bool nonempty_string_value(const char *p, const char *end)
{
    while (p < end && json_ws(*p))
        p++;
    if (p == end || *p++ != ':')
        return false;
    while (p < end && json_ws(*p))
        p++;
    if (p == end || *p++ != '"')
        return false;
    return p < end && *p != '"';
}

/*
 * q is a '"' in [v, end) that may close a key: is that key one whose value
 * carries a token?  A key ending in `content` needs no further check: the
 * quote follows a `t`, so it is not escaped and closes a string.  For
 * `"text"` and `"arguments"` the opening quote must not follow a backslash,
 * or it is an escaped quote inside a string.
 */
static bool token_key_at(const char *v, const char *q, const char *end)
{
    size_t before = (size_t)(q - v);
    if (q[-1] == 't') {
        if (before >= 7 && memcmp(q - 7, "content", 7) == 0)
            return nonempty_string_value(q + 1, end);
        if (before >= 5 && memcmp(q - 5, "\"text", 5) == 0 && (before == 5 || q[-6] != '\\'))
            return nonempty_string_value(q + 1, end);
    } else if (before >= 10 && memcmp(q - 10, "\"arguments", 10) == 0 &&
               (before == 10 || q[-11] != '\\')) {
        return nonempty_string_value(q + 1, end);
    }
    return false;
}

/*
 * Every key this looks for ends in `t"` or `s"`, so only quotes after a `t`
 * or an `s` are looked at: in a vLLM chunk that is "object", "choices",
 * "logprobs" and the key wanted, so the search runs at vector speed rather
 * than stopping at each of the ~40 quotes.
 */
static bool data_has_token(const char *v, size_t n)
{
    const char *end = v + n;
    const char *p = v + 1; /* a quote at v[0] closes no key */
    if (n < 2)
        return false;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i t16 = _mm_set1_epi8('t');
    const __m128i s16 = _mm_set1_epi8('s');
    while (end - p >= 16) {
        __m128i cur = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i prev = _mm_loadu_si128((const __m128i *)(const void *)(p - 1));
        __m128i ts = _mm_or_si128(_mm_cmpeq_epi8(prev, t16), _mm_cmpeq_epi8(prev, s16));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(cur, quote), ts));
        while (m != 0) {
            if (token_key_at(v, p + __builtin_ctz(m), end))
                return true;
            m &= m - 1;
        }
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t cur, prev;
        memcpy(&cur, p, sizeof(cur));
        memcpy(&prev, p - 1, sizeof(prev));
        uint64_t m =
            swar_zero_bytes(cur ^ (SWAR_ONES * '"')) &
            (swar_zero_bytes(prev ^ (SWAR_ONES * 't')) | swar_zero_bytes(prev ^ (SWAR_ONES * 's')));
        while (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            unsigned bit = 63u - (unsigned)__builtin_clzll(m);
            if (token_key_at(v, p + 7 - (bit >> 3), end))
                return true;
#else
            unsigned bit = (unsigned)__builtin_ctzll(m);
            if (token_key_at(v, p + (bit >> 3), end))
                return true;
#endif
            m &= ~(1ULL << bit);
        }
        p += 8;
    }
    for (; p < end; p++) {
        if (*p == '"' && (p[-1] == 't' || p[-1] == 's') && token_key_at(v, p, end))
            return true;
    }
    return false;
}

unsigned sse_event_scan(const char *ev, size_t len)
{
    const char *p = ev;
    const char *end = ev + len;
    unsigned flags = 0;
    size_t ndata = 0;
    bool first_done = false;
    bool fields = false;
    bool comments = false;

    while (p < end) {
        const char *eol = find_eol(p, end);
        size_t n = (size_t)(eol - p);
        if (n > 0 && p[0] == ':') {
            comments = true;
        } else if (n > 0) {
            fields = true;
            if (n >= 4 && memcmp(p, "data", 4) == 0 && (n == 4 || p[4] == ':')) {
                const char *v = p + (n == 4 ? 4 : 5);
                if (v < eol && *v == ' ')
                    v++;
                size_t vn = (size_t)(eol - v);
                if (ndata++ == 0)
                    first_done = vn == 6 && memcmp(v, "[DONE]", 6) == 0;
                if (!(flags & SSE_EV_CONTENT) && data_has_token(v, vn))
                    flags |= SSE_EV_CONTENT;
            }
        }
        if (eol == end)
            break;
        p = eol + 1;
        if (*eol == '\r' && p < end && *p == '\n')
            p++;
    }
    if (ndata > 0)
        flags |= SSE_EV_DATA;
    if (ndata == 1 && first_done)
        flags |= SSE_EV_DONE;
    if (comments && !fields)
        flags |= SSE_EV_COMMENT;
    return flags;
}
