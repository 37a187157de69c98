/*
 * h1_parser — see h1_parser.h.
 *
 * The head is walked line by line: memchr finds each LF inside a window that
 * never reaches past max_header_bytes (nor, for the request line, past
 * max_request_line), and one table lookup per byte checks the line.  A line
 * whose LF is not in the window is either incomplete (return 0) or over a
 * limit, which is decided from len alone, so a limit is reported as soon as
 * the bytes that break it are present and the answer for a prefix of a
 * buffer never contradicts the answer for the whole buffer.
 */
#include "dataplane/h1_parser.h"

#include <limits.h>
#include <string.h>

enum {
    CT_TCHAR = 0x01, /* token character (RFC 9110 §5.6.2) */
    CT_VCHAR = 0x02, /* visible ASCII, 0x21-0x7E */
    CT_FVAL = 0x04,  /* field value / reason phrase: HTAB, SP, VCHAR, obs-text */
    CT_HOST = 0x08,  /* uri-host and port: unreserved, sub-delims, '%', ':', '[', ']' */
    CT_DIGIT = 0x10,
};

// clang-format off
static const uint8_t ctab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x04, 0x0f, 0x06, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06, /* 0x20 */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x0e, 0x0e, 0x06, 0x0e, 0x06, 0x06, /* 0x30 */
    0x06, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 0x40 */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x06, 0x0e, 0x07, 0x0f, /* 0x50 */
    0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 0x60 */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00, /* 0x70 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x80 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x90 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xa0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xb0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xc0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xd0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xe0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xf0 */
};
// clang-format on

static inline uint8_t lc(uint8_t c)
{
    return (unsigned)(c - 'A') < 26u ? (uint8_t)(c | 0x20) : c;
}

/*
 * a[0..n) equals the lowercase literal <lit>, ignoring case.  OR-ing 0x20 is
 * exact here because <a> is already validated (token, field value or target
 * characters) and <lit> holds only lowercase letters, digits, '-', ':', '/':
 * the only other bytes that OR onto those are control characters.
 */
static inline bool ieq(const uint8_t *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((a[i] | 0x20) != (uint8_t)lit[i])
            return false;
    }
    return true;
}

static inline bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/*
 * Comma-separated list walker (RFC 9110 §5.6.1).  Yields every element with
 * OWS trimmed, empty ones included (n commas give n + 1 elements), so each
 * caller decides whether an empty element is acceptable.
 */
struct list_it {
    const uint8_t *p;
    const uint8_t *end;
    bool done;
};

static bool list_next(struct list_it *it, const uint8_t **el, size_t *el_len)
{
    if (it->done)
        return false;
    const uint8_t *s = it->p;
    const uint8_t *comma = memchr(s, ',', (size_t)(it->end - s));
    const uint8_t *e = comma ? comma : it->end;
    if (comma)
        it->p = comma + 1;
    else
        it->done = true;
    while (s < e && is_ows(*s))
        s++;
    while (e > s && is_ows(e[-1]))
        e--;
    *el = s;
    *el_len = (size_t)(e - s);
    return true;
}

static inline bool all_tchar(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(ctab[s[i]] & CT_TCHAR))
            return false;
    }
    return true;
}

/*
 * Word-at-a-time checks for the long runs (field values, targets): a word
 * passes when no byte is below 0x20 or equal to 0x7F (values) or also none
 * is 0x80 or above (targets).  The bit trick never misses a byte below n
 * (n <= 0x80); a word that looks suspicious is checked byte by byte, which
 * also lets HTAB through.
 */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const uint8_t *s)
{
    uint64_t x;
    memcpy(&x, s, sizeof(x));
    return x;
}

static inline uint64_t has_less(uint64_t x, uint8_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint8_t b)
{
    return has_less(x ^ (ONES * b), 1);
}

static bool chars_ok(const uint8_t *s, size_t n, uint8_t cls)
{
    size_t i = 0;
    bool vchar = cls == CT_VCHAR;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load64(s + i);
        uint64_t bad = has_less(x, vchar ? 0x21 : 0x20) | has_byte(x, 0x7f);
        if (vchar)
            bad |= x & HIGHS;
        if (!bad)
            continue;
        for (size_t k = i; k < i + 8; k++) {
            if (!(ctab[s[k]] & cls))
                return false;
        }
    }
    for (; i < n; i++) {
        if (!(ctab[s[i]] & cls))
            return false;
    }
    return true;
}

/* What the field lines said about framing and the connection. */
struct head_info {
    uint64_t cl;
    uint32_t n_host;
    uint32_t te_n_chunked; /* "chunked" elements in all TE fields */
    bool has_cl;
    bool has_te;
    bool te_bad;            /* an element that is empty or not a bare token */
    bool te_last_chunked;   /* the last element so far is "chunked" */
    bool te_chunked_inside; /* something follows a "chunked" element */
    bool te_other;          /* a coding other than chunked */
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool has_upgrade;
    bool expect_continue;
};

/*
 * Content-Length = 1*DIGIT, possibly repeated as a list or across fields
 * (RFC 9110 §8.6); every value must be the same number.  Values over
 * INT64_MAX are refused: whoever reads the length after us may hold it in an
 * off_t.
 */
static int on_content_length(struct head_info *hi, const uint8_t *v, size_t n)
{
    struct list_it it = {v, v + n, false};
    const uint8_t *el;
    size_t el_len;
    while (list_next(&it, &el, &el_len)) {
        if (el_len == 0)
            return -H1_ERR_BAD_CONTENT_LENGTH;
        uint64_t x = 0;
        for (size_t i = 0; i < el_len; i++) {
            if (!(ctab[el[i]] & CT_DIGIT))
                return -H1_ERR_BAD_CONTENT_LENGTH;
            unsigned d = (unsigned)(el[i] - '0');
            if (x > ((uint64_t)INT64_MAX - d) / 10)
                return -H1_ERR_BAD_CONTENT_LENGTH;
            x = x * 10 + d;
        }
        if (hi->has_cl && hi->cl != x)
            return -H1_ERR_BAD_CONTENT_LENGTH;
        hi->has_cl = true;
        hi->cl = x;
    }
    return 0;
}

/* Transfer codings are judged once the head is complete; here they are only counted. */
static void on_transfer_encoding(struct head_info *hi, const uint8_t *v, size_t n)
{
    struct list_it it = {v, v + n, false};
    const uint8_t *el;
    size_t el_len;
    hi->has_te = true;
    while (list_next(&it, &el, &el_len)) {
        if (el_len == 0 || !all_tchar(el, el_len)) {
            hi->te_bad = true;
            continue;
        }
        if (hi->te_last_chunked)
            hi->te_chunked_inside = true;
        if (el_len == 7 && ieq(el, "chunked", 7)) {
            hi->te_n_chunked++;
            hi->te_last_chunked = true;
        } else {
            hi->te_other = true;
            hi->te_last_chunked = false;
        }
    }
}

static void on_connection(struct head_info *hi, const uint8_t *v, size_t n)
{
    struct list_it it = {v, v + n, false};
    const uint8_t *el;
    size_t el_len;
    while (list_next(&it, &el, &el_len)) {
        if (el_len == 5 && ieq(el, "close", 5))
            hi->conn_close = true;
        else if (el_len == 10 && ieq(el, "keep-alive", 10))
            hi->conn_keep_alive = true;
        else if (el_len == 7 && ieq(el, "upgrade", 7))
            hi->conn_upgrade = true;
    }
}

/* Host = uri-host [ ":" port ]: no whitespace, no userinfo, no path. */
static int on_host(struct head_info *hi, const uint8_t *v, size_t n)
{
    if (++hi->n_host > 1)
        return -H1_ERR_BAD_HOST;
    for (size_t i = 0; i < n; i++) {
        if (!(ctab[v[i]] & CT_HOST))
            return -H1_ERR_BAD_HOST;
    }
    return 0;
}

/* Looks at the fields that matter to framing and the connection. */
static int on_field(struct head_info *hi, bool request, const uint8_t *name, size_t nlen,
                    const uint8_t *v, size_t vlen)
{
    switch (nlen) {
    case 4:
        if (request && ieq(name, "host", 4))
            return on_host(hi, v, vlen);
        break;
    case 6:
        if (ieq(name, "expect", 6)) {
            struct list_it it = {v, v + vlen, false};
            const uint8_t *el;
            size_t el_len;
            while (list_next(&it, &el, &el_len)) {
                if (el_len == 12 && ieq(el, "100-continue", 12))
                    hi->expect_continue = true;
            }
        }
        break;
    case 7:
        if (ieq(name, "upgrade", 7))
            hi->has_upgrade = true;
        break;
    case 10:
        if (ieq(name, "connection", 10))
            on_connection(hi, v, vlen);
        break;
    case 14:
        if (ieq(name, "content-length", 14))
            return on_content_length(hi, v, vlen);
        break;
    case 17:
        if (ieq(name, "transfer-encoding", 17))
            on_transfer_encoding(hi, v, vlen);
        break;
    default:
        break;
    }
    return 0;
}

/* Bytes are missing: fine unless the head already fills its whole budget. */
static inline int need_more(size_t len, size_t hmax)
{
    return len >= hmax ? -H1_ERR_HEAD_TOO_LARGE : 0;
}

/*
 * The field lines from <pos> to the empty line that ends the head.  <end> is
 * min(len, hmax).  Requests (strict) need CRLF; responses also take a bare LF.
 * Returns the head length, 0 or -h1_err.
 */
static int parse_fields(const uint8_t *p, size_t pos, size_t end, size_t len, size_t hmax,
                        bool request, uint32_t max_headers, struct h1_header *hdrs,
                        uint32_t *n_headers, struct head_info *hi)
{
    uint32_t n = 0;
    for (;;) {
        if (pos >= end)
            return need_more(len, hmax);
        const uint8_t *lf = memchr(p + pos, '\n', end - pos);
        if (!lf)
            return need_more(len, hmax);
        size_t le = (size_t)(lf - p);
        size_t ce = le; /* end of the line's content */
        if (le > pos && p[le - 1] == '\r')
            ce = le - 1;
        else if (request)
            return -H1_ERR_BARE_LF;
        if (ce == pos) {
            *n_headers = n;
            return (int)(le + 1);
        }
        if (is_ows(p[pos]))
            return -H1_ERR_OBS_FOLD;
        if (n >= max_headers)
            return -H1_ERR_TOO_MANY_HEADERS;

        size_t i = pos;
        while (ctab[p[i]] & CT_TCHAR)
            i++; /* stops at CR or LF at the latest */
        if (i == ce || p[i] != ':') {
            if (i > pos && is_ows(p[i])) {
                size_t j = i;
                while (j < ce && is_ows(p[j]))
                    j++;
                if (j < ce && p[j] == ':')
                    return -H1_ERR_SPACE_BEFORE_COLON;
            }
            return -H1_ERR_BAD_FIELD_NAME;
        }
        if (i == pos)
            return -H1_ERR_BAD_FIELD_NAME;
        size_t vs = i + 1;
        if (!chars_ok(p + vs, ce - vs, CT_FVAL))
            return -H1_ERR_BAD_FIELD_VALUE;
        size_t ve = ce;
        while (vs < ve && is_ows(p[vs]))
            vs++;
        while (ve > vs && is_ows(p[ve - 1]))
            ve--;

        hdrs[n].name = (const char *)p + pos;
        hdrs[n].name_len = (uint32_t)(i - pos);
        hdrs[n].value = (const char *)p + vs;
        hdrs[n].value_len = (uint32_t)(ve - vs);
        n++;
        int rc = on_field(hi, request, p + pos, i - pos, p + vs, ve - vs);
        if (rc < 0)
            return rc;
        pos = le + 1;
    }
}

static inline size_t head_budget(uint32_t max_header_bytes)
{
    return max_header_bytes > (uint32_t)INT_MAX ? (size_t)INT_MAX : max_header_bytes;
}

/*
 * The method at the start of a request line whose end may not be here yet:
 * scans p[ls..end) and reports what the complete line would certainly be
 * refused for.  Both the complete and the incomplete case go through this, so
 * garbage (a TLS hello on the plain port) is refused at its first byte and
 * the verdict never depends on how the bytes were split.
 * Returns the index of the SP after the method, 0 if undecided, or -h1_err.
 */
static long method_check(const uint8_t *p, size_t ls, size_t end)
{
    size_t i = ls;
    while (i < end && (ctab[p[i]] & CT_TCHAR))
        i++;
    if (i == end)
        return 0;
    if (p[i] == ' ')
        return i == ls ? -H1_ERR_BAD_METHOD : (long)i;
    if (p[i] == '\n' || (p[i] == '\r' && (i + 1 == end || p[i + 1] == '\n')))
        return 0; /* the line ends (or may end) here: the caller decides */
    return -H1_ERR_BAD_METHOD;
}

static const char slash[] = "/";

/* Splits an origin-form path-and-query at p[s..e). */
static void split_query(const uint8_t *p, size_t s, size_t e, struct h1_request *req)
{
    const uint8_t *q = memchr(p + s, '?', e - s);
    req->path = (const char *)p + s;
    if (q) {
        req->path_len = (uint32_t)(q - (p + s));
        req->query = (const char *)q + 1;
        req->query_len = (uint32_t)(e - (size_t)(q - p) - 1);
    } else {
        req->path_len = (uint32_t)(e - s);
    }
}

/* Request target p[s..e), already known to be visible ASCII. */
static int parse_target(const uint8_t *p, size_t s, size_t e, struct h1_request *req)
{
    size_t n = e - s;
    if (p[s] == '/') {
        split_query(p, s, e, req);
        return 0;
    }
    if (p[s] == '*') {
        if (n != 1 || req->method_len != 7 || memcmp(req->method, "OPTIONS", 7) != 0)
            return -H1_ERR_BAD_TARGET;
        req->path = (const char *)p + s;
        req->path_len = 1;
        return 0;
    }
    /* absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ] */
    size_t a;
    if (n >= 7 && ieq(p + s, "http://", 7))
        a = s + 7;
    else if (n >= 8 && ieq(p + s, "https://", 8))
        a = s + 8;
    else
        return -H1_ERR_BAD_TARGET;
    size_t i = a;
    while (i < e && (ctab[p[i]] & CT_HOST))
        i++;
    /* An empty authority or one with userinfo ('@' stops the scan) is refused. */
    if (i == a || (i < e && p[i] != '/' && p[i] != '?'))
        return -H1_ERR_BAD_TARGET;
    if (i < e && p[i] == '/') {
        split_query(p, i, e, req);
    } else {
        req->path = slash;
        req->path_len = 1;
        if (i < e) {
            req->query = (const char *)p + i + 1;
            req->query_len = (uint32_t)(e - i - 1);
        }
    }
    return 0;
}

/* The request line p[ls..ce), CRLF already checked; <sp> ends the method. */
static int parse_request_line(const uint8_t *p, size_t ls, size_t sp, size_t ce,
                              struct h1_request *req)
{
    req->method = (const char *)p + ls;
    req->method_len = (uint32_t)(sp - ls);
    size_t ts = sp + 1;
    const uint8_t *sp2 = memchr(p + ts, ' ', ce - ts);
    if (!sp2 || (size_t)(sp2 - p) == ts)
        return -H1_ERR_SYNTAX;
    size_t te = (size_t)(sp2 - p);
    if (!chars_ok(p + ts, te - ts, CT_VCHAR))
        return -H1_ERR_BAD_TARGET;
    size_t vs = te + 1;
    if (ce - vs != 8)
        return -H1_ERR_SYNTAX;
    const uint8_t *v = p + vs;
    if (memcmp(v, "HTTP/", 5) != 0 || !(ctab[v[5]] & CT_DIGIT) || v[6] != '.' ||
        !(ctab[v[7]] & CT_DIGIT))
        return -H1_ERR_SYNTAX;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -H1_ERR_BAD_VERSION;
    req->version_minor = (uint8_t)(v[7] - '0');
    req->target = (const char *)p + ts;
    req->target_len = (uint32_t)(te - ts);
    return parse_target(p, ts, te, req);
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                     struct h1_request *req)
{
    const uint8_t *p = (const uint8_t *)buf;
    size_t hmax = head_budget(limits->max_header_bytes);
    size_t end = len < hmax ? len : hmax;
    struct h1_header *hdrs = req->headers;
    memset(req, 0, sizeof(*req));
    req->headers = hdrs;

    /* RFC 9112 §2.2: empty lines before the request line are ignored. */
    size_t pos = 0;
    while (pos < end && (p[pos] == '\r' || p[pos] == '\n')) {
        if (p[pos] == '\n')
            return -H1_ERR_BARE_LF;
        if (pos + 1 >= end)
            return need_more(len, hmax);
        if (p[pos + 1] != '\n')
            return -H1_ERR_SYNTAX;
        pos += 2;
    }
    if (pos >= end)
        return need_more(len, hmax);

    size_t ls = pos;
    size_t lmax = limits->max_request_line;
    size_t lend = end - ls < lmax ? end : ls + lmax;
    const uint8_t *lf = memchr(p + ls, '\n', lend - ls);
    if (!lf) {
        long m = method_check(p, ls, lend);
        if (m < 0)
            return (int)m;
        if (len - ls >= lmax)
            return -H1_ERR_LINE_TOO_LONG;
        return need_more(len, hmax);
    }
    size_t le = (size_t)(lf - p);
    long m = method_check(p, ls, le + 1);
    if (m < 0)
        return (int)m;
    if (le == ls || p[le - 1] != '\r')
        return -H1_ERR_BARE_LF;
    if (m == 0 || (size_t)m >= le - 1)
        return -H1_ERR_SYNTAX; /* no SP before the line ends */
    int rc = parse_request_line(p, ls, (size_t)m, le - 1, req);
    if (rc < 0)
        return rc;

    struct head_info hi;
    memset(&hi, 0, sizeof(hi));
    rc = parse_fields(p, le + 1, end, len, hmax, true, limits->max_headers, hdrs, &req->n_headers,
                      &hi);
    if (rc <= 0)
        return rc;

    if (hi.has_te) {
        if (hi.has_cl)
            return -H1_ERR_CL_AND_TE;
        if (req->version_minor == 0)
            return -H1_ERR_BAD_TE;
        if (hi.te_bad || hi.te_n_chunked > 1 || hi.te_chunked_inside)
            return -H1_ERR_BAD_TE;
        if (hi.te_other)
            return -H1_ERR_TE_UNSUPPORTED;
        req->flags |= H1_F_CHUNKED;
    }
    if (req->version_minor == 1 && hi.n_host == 0)
        return -H1_ERR_BAD_HOST;
    if (hi.has_cl) {
        if (hi.cl > limits->max_body)
            return -H1_ERR_BODY_TOO_LARGE;
        req->flags |= H1_F_CONTENT_LENGTH;
        req->content_length = hi.cl;
    }
    if (req->version_minor == 1 ? !hi.conn_close : (hi.conn_keep_alive && !hi.conn_close))
        req->flags |= H1_F_KEEP_ALIVE;
    /* RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request is ignored. */
    if (hi.expect_continue && req->version_minor == 1)
        req->flags |= H1_F_EXPECT_CONTINUE;
    if (hi.conn_upgrade && hi.has_upgrade)
        req->flags |= H1_F_UPGRADE;
    req->head_len = (uint32_t)rc;
    return rc;
}

/* "HTTP/1.x SSS[ reason]" at p[0..ce). */
static int parse_status_line(const uint8_t *p, size_t ce, struct h1_response *resp)
{
    if (ce < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !(ctab[p[7]] & CT_DIGIT) || p[8] != ' ' ||
        p[9] < '1' || p[9] > '9' || !(ctab[p[10]] & CT_DIGIT) || !(ctab[p[11]] & CT_DIGIT))
        return -H1_ERR_BAD_STATUS;
    /* RFC 9110 §2.5: a higher minor version is handled as the highest we know. */
    resp->version_minor = p[7] == '0' ? 0 : 1;
    resp->status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
    resp->reason = (const char *)p + ce;
    if (ce > 12) {
        /* RFC 9112 §4: the SP before an empty reason may be missing. */
        if (p[12] != ' ')
            return -H1_ERR_BAD_STATUS;
        for (size_t i = 13; i < ce; i++) {
            if (!(ctab[p[i]] & CT_FVAL))
                return -H1_ERR_BAD_STATUS;
        }
        resp->reason = (const char *)p + 13;
        resp->reason_len = (uint32_t)(ce - 13);
    }
    return 0;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                      bool head_request, struct h1_response *resp)
{
    const uint8_t *p = (const uint8_t *)buf;
    size_t hmax = head_budget(limits->max_header_bytes);
    size_t end = len < hmax ? len : hmax;
    struct h1_header *hdrs = resp->headers;
    memset(resp, 0, sizeof(*resp));
    resp->headers = hdrs;

    const uint8_t *lf = end ? memchr(p, '\n', end) : NULL;
    if (!lf)
        return need_more(len, hmax);
    size_t le = (size_t)(lf - p);
    size_t ce = le > 0 && p[le - 1] == '\r' ? le - 1 : le;
    int rc = parse_status_line(p, ce, resp);
    if (rc < 0)
        return rc;

    struct head_info hi;
    memset(&hi, 0, sizeof(hi));
    rc = parse_fields(p, le + 1, end, len, hmax, false, limits->max_headers, hdrs, &resp->n_headers,
                      &hi);
    if (rc <= 0)
        return rc;

    /* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty. */
    if (hi.has_te && (resp->version_minor == 0 || hi.te_bad || hi.te_n_chunked > 1))
        return -H1_ERR_BAD_TE;
    bool keep_alive =
        resp->version_minor == 1 ? !hi.conn_close : (hi.conn_keep_alive && !hi.conn_close);
    uint16_t st = resp->status;
    /* RFC 9112 §6.3, in its order. */
    if (head_request || st < 200 || st == 204 || st == 304) {
        resp->flags |= H1_F_NO_BODY;
    } else if (hi.has_te) {
        if (hi.te_last_chunked) {
            resp->flags |= H1_F_CHUNKED;
            /* Both framings: possibly an attack on someone; do not reuse the connection. */
            if (hi.has_cl)
                keep_alive = false;
        } else {
            resp->flags |= H1_F_CLOSE_DELIMITED;
            keep_alive = false;
        }
    } else if (hi.has_cl) {
        resp->flags |= H1_F_CONTENT_LENGTH;
        resp->content_length = hi.cl;
    } else {
        resp->flags |= H1_F_CLOSE_DELIMITED;
        keep_alive = false;
    }
    if (keep_alive)
        resp->flags |= H1_F_KEEP_ALIVE;
    if (hi.conn_upgrade && hi.has_upgrade)
        resp->flags |= H1_F_UPGRADE;
    resp->head_len = (uint32_t)rc;
    return rc;
}

static const struct {
    int status;
    const char *message;
} err_table[H1_ERR__COUNT] = {
    [H1_ERR_NONE] = {200, "OK"},
    [H1_ERR_SYNTAX] = {400, "malformed request"},
    [H1_ERR_BARE_LF] = {400, "line not ended by CRLF"},
    [H1_ERR_OBS_FOLD] = {400, "obsolete line folding"},
    [H1_ERR_SPACE_BEFORE_COLON] = {400, "whitespace before colon in field"},
    [H1_ERR_BAD_FIELD_NAME] = {400, "invalid field name"},
    [H1_ERR_BAD_FIELD_VALUE] = {400, "invalid character in field value"},
    [H1_ERR_BAD_TARGET] = {400, "invalid request target"},
    [H1_ERR_BAD_METHOD] = {400, "invalid method"},
    [H1_ERR_BAD_VERSION] = {505, "HTTP version not supported"},
    [H1_ERR_LINE_TOO_LONG] = {414, "request line too long"},
    [H1_ERR_HEAD_TOO_LARGE] = {431, "header section too large"},
    [H1_ERR_TOO_MANY_HEADERS] = {431, "too many header fields"},
    [H1_ERR_BAD_CONTENT_LENGTH] = {400, "invalid Content-Length"},
    [H1_ERR_BODY_TOO_LARGE] = {413, "content too large"},
    [H1_ERR_CL_AND_TE] = {400, "both Content-Length and Transfer-Encoding"},
    [H1_ERR_BAD_TE] = {400, "invalid Transfer-Encoding"},
    [H1_ERR_TE_UNSUPPORTED] = {501, "transfer coding not implemented"},
    [H1_ERR_BAD_HOST] = {400, "missing, repeated or invalid Host"},
    [H1_ERR_BAD_STATUS] = {502, "invalid status line from upstream"},
    [H1_ERR_BAD_CHUNK] = {400, "invalid chunked framing"},
};

/* Accepts the enum or the negative value the parsers return. */
static int err_index(int err)
{
    if (err < 0 && err > INT_MIN)
        err = -err;
    return err >= 0 && err < H1_ERR__COUNT ? err : -1;
}

int h1_err_status(int err)
{
    int i = err_index(err);
    return i < 0 ? 500 : err_table[i].status;
}

const char *h1_err_message(int err)
{
    int i = err_index(err);
    return i < 0 ? "internal error" : err_table[i].message;
}

const struct h1_header *h1_header_find(const struct h1_header *h, uint32_t n, const char *name)
{
    size_t nlen = strlen(name);
    for (uint32_t i = 0; i < n; i++) {
        if (h[i].name_len != nlen)
            continue;
        const uint8_t *a = (const uint8_t *)h[i].name;
        const uint8_t *b = (const uint8_t *)name;
        size_t k = 0;
        while (k < nlen && lc(a[k]) == lc(b[k]))
            k++;
        if (k == nlen)
            return &h[i];
    }
    return NULL;
}

bool h1_list_has_tokenn(const char *value, size_t len, const char *token, size_t tlen)
{
    if (tlen == 0 || len == 0)
        return false;
    struct list_it it = {(const uint8_t *)value, (const uint8_t *)value + len, false};
    const uint8_t *el;
    size_t el_len;
    while (list_next(&it, &el, &el_len)) {
        if (el_len != tlen)
            continue;
        size_t k = 0;
        while (k < tlen && lc(el[k]) == lc((uint8_t)token[k]))
            k++;
        if (k == tlen)
            return true;
    }
    return false;
}

bool h1_list_has_token(const char *value, size_t len, const char *token)
{
    return h1_list_has_tokenn(value, len, token, strlen(token));
}

bool h1_connection_names(const struct h1_header *h, uint32_t n, const char *name, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (h[i].name_len == 10 && h1_list_has_tokenn(h[i].name, 10, "connection", 10) &&
            h1_list_has_tokenn(h[i].value, h[i].value_len, name, len))
            return true;
    return false;
}
