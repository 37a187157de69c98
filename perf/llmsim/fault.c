/*
 * fault — parsing of fault specs (see fault.h).
 */
#include "perf/llmsim/fault.h"

#include <errno.h>
#include <string.h>

struct fault_name {
    const char *name;
    enum fault_kind kind;
    int has_arg;
};

static const struct fault_name names[] = {
    {"none", FAULT_NONE, 0},
    {"status", FAULT_STATUS, 1},
    {"close", FAULT_CLOSE, 0},
    {"reset", FAULT_RESET, 0},
    {"close_after", FAULT_CLOSE_AFTER, 1},
    {"reset_after", FAULT_RESET_AFTER, 1},
    {"hang", FAULT_HANG, 0},
    {"hang_after", FAULT_HANG_AFTER, 1},
    {"slow_headers", FAULT_SLOW_HEADERS, 1},
};

/* Decimal digits only, no sign, at most 9 digits (fits uint32_t). */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 9)
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int fault_parse(const char *s, size_t len, struct fault *out)
{
    const char *colon = memchr(s, ':', len);
    size_t name_len = colon ? (size_t)(colon - s) : len;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct fault_name *n = &names[i];
        if (strlen(n->name) != name_len || memcmp(n->name, s, name_len) != 0)
            continue;
        struct fault f = {n->kind, 0};
        if (n->has_arg) {
            if (!colon)
                return -EINVAL;
            if (parse_u32(colon + 1, len - name_len - 1, &f.arg) < 0)
                return -EINVAL;
            if (f.kind == FAULT_STATUS && (f.arg < 200 || f.arg > 599))
                return -EINVAL;
        } else if (colon) {
            return -EINVAL;
        }
        *out = f;
        return 0;
    }
    return -EINVAL;
}
