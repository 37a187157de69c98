/* usage_scan — see usage_scan.h. */
#include "dataplane/usage_scan.h"

#include <string.h>

static const char KEY[] = "\"completion_tokens\"";
#define KEY_LEN (sizeof KEY - 1)

enum { US_KEY = 0, US_COLON, US_VALUE, US_DIGITS };

void usage_scan_init(struct usage_scan *u)
{
    memset(u, 0, sizeof *u);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Restarts key matching at byte <c> (which may itself open the key). */
static void restart(struct usage_scan *u, char c)
{
    u->state = US_KEY;
    u->matched = (c == '"' && !u->escaped) ? 1 : 0;
}

/* One byte of the key (state US_KEY). */
static void key_step(struct usage_scan *u, char c)
{
    if (u->matched == 0 || u->matched == KEY_LEN - 1) {
        /* an opening or closing quote: it must not be escaped */
        if (c == '"' && !u->escaped)
            u->matched++;
        else
            u->matched = 0;
    } else if (c == KEY[u->matched]) {
        u->matched++;
    } else {
        restart(u, c);
    }
    if (u->matched == KEY_LEN) {
        u->state = US_COLON;
        u->matched = 0;
        u->just_closed = true;
    }
}

void usage_scan_feed(struct usage_scan *u, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        switch (u->state) {
        case US_KEY:
            key_step(u, c);
            break;
        case US_COLON: {
            bool jc = u->just_closed;
            u->just_closed = false;
            if (c == ':') {
                u->state = US_VALUE;
            } else if (is_ws(c)) {
                /* stays */
            } else if (jc) {
                /* the key's closing quote may open the next key */
                u->state = US_KEY;
                u->matched = 1;
                key_step(u, c);
            } else {
                restart(u, c);
            }
            break;
        }
        case US_VALUE:
            if (c >= '0' && c <= '9') {
                u->cur = (uint32_t)(c - '0');
                u->state = US_DIGITS;
            } else if (!is_ws(c)) {
                restart(u, c);
            }
            break;
        case US_DIGITS:
            if (c >= '0' && c <= '9') {
                uint64_t v = (uint64_t)u->cur * 10 + (uint64_t)(c - '0');
                u->cur = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            } else {
                /* a number ends at anything else: a fraction or exponent
                 * is not a token count, so it does not count */
                if (c != '.' && c != 'e' && c != 'E') {
                    u->completion_tokens = u->cur;
                    u->found = true;
                }
                restart(u, c);
            }
            break;
        }
        u->escaped = c == '\\' && !u->escaped;
    }
}

bool usage_scan_result(const struct usage_scan *u, uint32_t *n)
{
    if (!u->found)
        return false;
    *n = u->completion_tokens;
    return true;
}
