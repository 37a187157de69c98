/*
 * evfields — fields of one SSE event, and token strings in its JSON data
 * (see evfields.h).
 */
#include "perf/loadgen/evfields.h"

#include <stdint.h>
#include <string.h>

/* End of the line starting at p (the first CR or LF, or end). */
static const char *line_end(const char *p, const char *end)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *stop = lf ? lf : end;
    const char *cr = memchr(p, '\r', (size_t)(stop - p));
    return cr ? cr : stop;
}

/* Skips the terminator at p (CRLF, CR or LF). */
static const char *skip_eol(const char *p, const char *end)
{
    if (p < end && *p == '\r')
        p++;
    else if (p < end && *p == '\n')
        return p + 1;
    if (p < end && *p == '\n' && p[-1] == '\r')
        p++;
    return p;
}

static bool name_is(const char *p, size_t n, const char *lit, size_t lit_len)
{
    return n == lit_len && memcmp(p, lit, n) == 0;
}

void evfields_parse(const char *ev, size_t len, struct evfields *f)
{
    memset(f, 0, sizeof(*f));
    const char *p = ev, *end = ev + len;
    while (p < end) {
        const char *eol = line_end(p, end);
        size_t ll = (size_t)(eol - p);
        if (ll > 0 && p[0] != ':') {
            const char *colon = memchr(p, ':', ll);
            size_t nl = colon ? (size_t)(colon - p) : ll;
            const char *v = colon ? colon + 1 : eol;
            if (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (name_is(p, nl, "data", 4)) {
                if (f->data_lines++ == 0) {
                    f->data = v;
                    f->data_len = vl;
                }
            } else if (name_is(p, nl, "event", 5)) {
                f->event = v;
                f->event_len = vl;
            } else if (name_is(p, nl, "id", 2) && !memchr(v, '\0', vl)) {
                f->id = v;
                f->id_len = vl;
            }
        }
        p = skip_eol(eol, end);
    }
}

bool evfields_is_error(const struct evfields *f)
{
    return f->event && name_is(f->event, f->event_len, "error", 5);
}

size_t evfields_data(const char *ev, size_t len, const struct evfields *f, char *buf, size_t cap,
                     const char **out)
{
    *out = NULL;
    if (f->data_lines == 0)
        return 0;
    if (f->data_lines == 1) {
        *out = f->data;
        return f->data_len;
    }
    size_t n = 0;
    unsigned seen = 0;
    const char *p = ev, *end = ev + len;
    while (p < end) {
        const char *eol = line_end(p, end);
        size_t ll = (size_t)(eol - p);
        if (ll >= 4 && memcmp(p, "data", 4) == 0 && (ll == 4 || p[4] == ':')) {
            const char *v = ll == 4 ? eol : p + 5;
            if (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (n + vl + 1 > cap)
                return 0;
            if (seen++ > 0)
                buf[n++] = '\n';
            memcpy(buf + n, v, vl);
            n += vl;
        }
        p = skip_eol(eol, end);
    }
    *out = buf;
    return n;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex4(const char *p, const char *end, uint32_t *out)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the JSON string whose opening quote is at p[-1]. */
static long decode_string(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (p < end) {
        char c = *p++;
        if (c == '"')
            return (long)n;
        if ((unsigned char)c < 0x20)
            return -2;
        char tmp[4];
        size_t k = 1;
        if (c != '\\') {
            tmp[0] = c;
        } else {
            if (p >= end)
                return -2;
            char e = *p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                tmp[0] = e;
                break;
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                uint32_t cp;
                if (hex4(p, end, &cp) < 0)
                    return -2;
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    uint32_t lo;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) < 0 ||
                        lo < 0xdc00 || lo > 0xdfff)
                        return -2;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp < 0xe000) {
                    return -2;
                }
                k = utf8_put(cp, tmp);
                break;
            }
            default:
                return -2;
            }
        }
        if (n + k > cap)
            return -2;
        memcpy(out + n, tmp, k);
        n += k;
    }
    return -2;
}

long evfields_json_string(const char *json, size_t len, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = json, *end = json + len;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return -1;
        q++;
        if ((size_t)(end - q) > kl && memcmp(q, key, kl) == 0 && q[kl] == '"') {
            const char *r = q + kl + 1;
            while (r < end && is_ws(*r))
                r++;
            if (r < end && *r == ':') {
                r++;
                while (r < end && is_ws(*r))
                    r++;
                if (r < end && *r == '"')
                    return decode_string(r + 1, end, out, cap);
                p = r; /* the member exists but is not a string: look further */
                continue;
            }
        }
        /* q is inside or at the start of some string: step over it */
        const char *s = q;
        while (s < end && *s != '"') {
            if (*s == '\\')
                s++;
            s++;
        }
        p = s + 1;
    }
    return -1;
}
