/* json_scan — see json_scan.h. */
#include "dataplane/json_scan.h"

#include <errno.h>
#include <string.h>

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The length of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (!n || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* p at the opening quote; returns past the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL; /* control characters must be escaped */
        if (c >= 0x80) {
            /* JSON is UTF-8 (RFC 8259 §8.1): a client must never get
             * anything else from a translated answer. */
            size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (!n)
                return NULL;
            p += n - 1;
            continue;
        }
        if (c != '\\')
            continue;
        if (++p == end)
            return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            break;
        case 'u':
            if (end - p < 5 || !hex(p[1]) || !hex(p[2]) || !hex(p[3]) || !hex(p[4]))
                return NULL;
            p += 4;
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

static const char *digits(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

static const char *skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = digits(p + 1, end)))
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = digits(p, end)))
            return NULL;
    }
    return p;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* p at '[' or '{'. */
static const char *skip_container(const char *p, const char *end, int depth)
{
    bool obj = *p == '{';
    char close = obj ? '}' : ']';
    if (depth >= JS_MAX_DEPTH)
        return NULL;
    p = ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (obj) {
            if (p == end || *p != '"' || !(p = skip_string(p, end)))
                return NULL;
            p = ws(p, end);
            if (p == end || *p != ':')
                return NULL;
            p++;
        }
        if (!(p = skip_value(p, end, depth + 1)))
            return NULL;
        p = ws(p, end);
        if (p == end)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = ws(p + 1, end);
    }
}

static const char *literal(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth)
{
    p = ws(p, end);
    if (p == end)
        return NULL;
    switch (*p) {
    case '"':
        return skip_string(p, end);
    case '{':
    case '[':
        return skip_container(p, end, depth);
    case 't':
        return literal(p, end, "true");
    case 'f':
        return literal(p, end, "false");
    case 'n':
        return literal(p, end, "null");
    default:
        return skip_number(p, end);
    }
}

const char *js_skip(const char *p, const char *end)
{
    return skip_value(p, end, 0);
}

bool js_valid(const char *p, const char *end)
{
    const char *e = js_skip(p, end);
    return e && ws(e, end) == end;
}

int js_get(struct js_span obj, const char *key, struct js_span *val)
{
    const char *p = ws(obj.p, obj.end), *end = obj.end;
    size_t klen = strlen(key);
    if (p == end || *p != '{')
        return -EINVAL;
    p = ws(p + 1, end);
    if (p < end && *p == '}')
        return -ENOENT;
    for (;;) {
        if (p == end || *p != '"')
            return -EINVAL;
        const char *k = p + 1;
        if (!(p = skip_string(p, end)))
            return -EINVAL;
        bool match = (size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        p = ws(p, end);
        if (p == end || *p != ':')
            return -EINVAL;
        const char *v = ws(p + 1, end);
        if (!(p = skip_value(v, end, 1)))
            return -EINVAL;
        if (match) {
            val->p = v;
            val->end = p;
            return 0;
        }
        p = ws(p, end);
        if (p == end)
            return -EINVAL;
        if (*p == '}')
            return -ENOENT;
        if (*p != ',')
            return -EINVAL;
        p = ws(p + 1, end);
    }
}

bool js_str(struct js_span v, struct js_span *inside)
{
    if (v.end - v.p < 2 || *v.p != '"')
        return false;
    inside->p = v.p + 1;
    inside->end = v.end - 1;
    return true;
}

bool js_str_eq(struct js_span v, const char *s)
{
    struct js_span in;
    size_t n = strlen(s);
    return js_str(v, &in) && (size_t)(in.end - in.p) == n && memcmp(in.p, s, n) == 0;
}

bool js_u64(struct js_span v, uint64_t *out)
{
    uint64_t x = 0;
    const char *p = v.p;
    if (p == v.end)
        return false;
    for (; p < v.end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *out = x;
    return true;
}

bool js_is_true(struct js_span v)
{
    return v.end - v.p == 4 && memcmp(v.p, "true", 4) == 0;
}

bool js_empty(struct js_span v)
{
    if (v.end - v.p < 2 || (*v.p != '[' && *v.p != '{'))
        return false;
    return ws(v.p + 1, v.end) == v.end - 1;
}
