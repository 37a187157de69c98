/* cors — see cors.h. */
#include "dataplane/cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "shared/strlist.h"

bool cors_enabled(const struct config *cfg)
{
    return cfg->cors_origins[0] != '\0';
}

/* Calls back for each trimmed, non-empty item of a comma-separated list;
 * stops and returns true when it returns true. */
static bool list_any(const char *list, bool (*match)(const char *, size_t, const void *, size_t),
                     const void *want, size_t want_len)
{
    const char *item;
    size_t n;
    while (strlist_next(&list, &item, &n))
        if (match(item, n, want, want_len))
            return true;
    return false;
}

static bool exact(const char *item, size_t n, const void *want, size_t len)
{
    return (n == 1 && item[0] == '*') || (n == len && memcmp(item, want, n) == 0);
}

static bool nocase(const char *item, size_t n, const void *want, size_t len)
{
    return n == len && strncasecmp(item, want, n) == 0;
}

bool cors_origin_allowed(const struct config *cfg, const char *origin, size_t len)
{
    if (!cors_enabled(cfg) || len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)origin[i] <= ' ' || origin[i] == ',' || origin[i] == 0x7f)
            return false; /* one origin, visible characters only: safe to echo */
    return list_any(cfg->cors_origins, exact, origin, len);
}

bool cors_method_allowed(const struct config *cfg, const char *method, size_t len)
{
    return list_any(cfg->cors_methods, nocase, method, len);
}

static bool in_allowed_headers(const char *item, size_t n, const void *cfg, size_t unused)
{
    (void)unused;
    const struct config *c = cfg;
    /* CORS-safelisted request headers need no permission */
    static const char *const safe[] = {"accept", "accept-language", "content-language"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strlen(safe[i]) == n && strncasecmp(item, safe[i], n) == 0)
            return false;
    return !list_any(c->cors_headers, nocase, item, n);
}

bool cors_headers_allowed(const struct config *cfg, const char *headers, size_t len)
{
    char buf[1024];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, headers, len);
    buf[len] = '\0';
    /* allowed when no requested header is outside the list */
    return !list_any(buf, in_allowed_headers, cfg, 0);
}

size_t cors_header_lines(const struct config *cfg, const char *origin, size_t len, bool preflight,
                         char *out, size_t cap)
{
    bool star = strcmp(cfg->cors_origins, "*") == 0 && !cfg->cors_credentials;
    int n = snprintf(out, cap, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n%s",
                     star ? 1 : (int)len, star ? "*" : origin,
                     cfg->cors_credentials ? "Access-Control-Allow-Credentials: true\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    int m;
    if (preflight)
        m = snprintf(out + n, cap - (size_t)n,
                     "Access-Control-Allow-Methods: %s\r\nAccess-Control-Allow-Headers: %s\r\n"
                     "Access-Control-Max-Age: %u\r\n",
                     cfg->cors_methods, cfg->cors_headers, cfg->cors_max_age_ms / 1000);
    else
        m = snprintf(out + n, cap - (size_t)n,
                     "Access-Control-Expose-Headers: X-Request-Id, Retry-After\r\n");
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return 0;
    return (size_t)(n + m);
}
