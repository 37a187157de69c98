/* config_value — see config_value.h. */
#include "shared/config_value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

/* ---- small helpers, independent of the locale ---- */

bool cfgval_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool cfgval_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool cfgval_is_alnum(char c)
{
    return cfgval_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_value(char c)
{
    if (cfgval_is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void cfgval_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    (void)n;
}

/* Digits only (no sign, no spaces), overflow-checked; advances *sp. */
int cfgval_digits(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    if (!cfgval_is_digit(*s))
        return -EINVAL;
    for (; cfgval_is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* "4096", "16k", "16K", "16KiB", "4m", "4MiB", "1g", ... (powers of 1024). */
int cfgval_size(const char *s, uint64_t *out, char *why, size_t why_len)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},    {"k", KIB},   {"K", KIB}, {"KiB", KIB}, {"m", MIB},
        {"M", MIB}, {"MiB", MIB}, {"g", GIB}, {"G", GIB},   {"GiB", GIB},
    };
    const char *p = s;
    uint64_t v;
    int rc = cfgval_digits(&p, &v);
    if (rc == -ERANGE) {
        cfgval_why(why, why_len, "is too large");
        return rc;
    }
    if (rc == 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcmp(p, units[i].suffix) != 0)
                continue;
            if (v > UINT64_MAX / units[i].mult) {
                cfgval_why(why, why_len, "is too large");
                return -ERANGE;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    cfgval_why(why, why_len, "is not a size (expected e.g. 4096, 16k, 16KiB, 4m, 4MiB, 1g)");
    return -EINVAL;
}

/* "250ms", "10s", "5m", "1h"; a bare number is seconds. */
int cfgval_duration(const char *s, uint32_t *out, char *why, size_t why_len)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *p = s;
    uint64_t v;
    int rc = cfgval_digits(&p, &v);
    if (rc == 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcmp(p, units[i].suffix) != 0)
                continue;
            if (v > UINT32_MAX / units[i].mult) {
                cfgval_why(why, why_len, "is too long (at most 4294967295ms, about 49 days)");
                return -ERANGE;
            }
            *out = (uint32_t)(v * units[i].mult);
            return 0;
        }
    } else if (rc == -ERANGE) {
        cfgval_why(why, why_len, "is too long (at most 4294967295ms, about 49 days)");
        return rc;
    }
    cfgval_why(why, why_len, "is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    return -EINVAL;
}

int cfgval_bool(const char *s, bool *out, char *why, size_t why_len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    cfgval_why(why, why_len, "is not a boolean (expected true/false, yes/no, on/off or 1/0)");
    return -EINVAL;
}

static bool valid_hostname(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!cfgval_is_alnum(h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static bool all_digits_and_dots(const char *h)
{
    for (; *h; h++)
        if (!cfgval_is_digit(*h) && *h != '.')
            return false;
    return true;
}

/* Resolves <host> (an IPv4 literal, the inside of "[...]" when bracketed, or
 * a name) with <port> into ss/len.  Returns 0, -EINVAL or -ENOENT. */
static int resolve_host(const char *host, bool bracketed, uint16_t port,
                        struct sockaddr_storage *ss, socklen_t *len, char *why, size_t why_len)
{
    memset(ss, 0, sizeof *ss);
    if (bracketed) {
        struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST};
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
            cfgval_why(why, why_len, "has a bad IPv6 address '[%s]'", host);
            return -EINVAL;
        }
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        freeaddrinfo(res);
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
        return 0;
    }
    if (all_digits_and_dots(host)) {
        /* Not getaddrinfo: it would take inet_aton forms such as "10.1". */
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            cfgval_why(why, why_len, "has a bad IPv4 address '%s'", host);
            return -EINVAL;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof *sin;
        return 0;
    }
    if (!valid_hostname(host)) {
        cfgval_why(why, why_len, "has a bad host name '%s'", host);
        return -EINVAL;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || !res) {
        cfgval_why(why, why_len, "has a host '%s' that cannot be resolved (%s)", host,
                   rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -ENOENT;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Splits "host:port" or "[v6]:port" (port optional when <need_port> is
 * false) into host (brackets removed) and port text. */
static int split_host_port(const char *s, char *host, size_t host_len, bool *bracketed,
                           const char **port, char *why, size_t why_len)
{
    const char *hend;
    *bracketed = false;
    *port = NULL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            cfgval_why(why, why_len, "has no ']' after the IPv6 address");
            return -EINVAL;
        }
        *bracketed = true;
        s++;
        hend = close;
        if (close[1] == ':')
            *port = close + 2;
        else if (close[1] != '\0') {
            cfgval_why(why, why_len, "has unexpected text after ']'");
            return -EINVAL;
        }
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            cfgval_why(why, why_len, "needs brackets around an IPv6 address, e.g. [::1]:8080");
            return -EINVAL;
        }
        hend = colon ? colon : s + strlen(s);
        if (colon)
            *port = colon + 1;
    }
    size_t n = (size_t)(hend - s);
    if (n + (*bracketed ? 2 : 0) >= host_len) { /* room for the brackets again */
        cfgval_why(why, why_len, "has a host name that is too long");
        return -EINVAL;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    return 0;
}

static int parse_port(const char *p, unsigned min, uint16_t *out, char *why, size_t why_len)
{
    uint64_t v = 0;
    const char *q = p;
    int rc = cfgval_digits(&q, &v);
    if (rc == 0 && *q != '\0')
        rc = -EINVAL;
    else if (rc == 0 && (v > 65535 || v < min))
        rc = -ERANGE;
    if (rc < 0) {
        cfgval_why(why, why_len, "has a bad port '%s' (expected %u..65535)", p, min);
        return rc;
    }
    *out = (uint16_t)v;
    return 0;
}

/* "IPv4:port", "[IPv6]:port", "*:port", "host:port". */
int cfgval_addr(const char *s, struct config_addr *out, char *why, size_t why_len)
{
    char host[CONFIG_HOST_MAX];
    bool bracketed;
    const char *port;
    uint16_t portnum;
    struct config_addr a;

    memset(&a, 0, sizeof a);
    if (strlen(s) >= sizeof a.text) {
        cfgval_why(why, why_len, "is too long (at most %zu characters)", sizeof a.text - 1);
        return -EINVAL;
    }
    int rc = split_host_port(s, host, sizeof host, &bracketed, &port, why, why_len);
    if (rc < 0)
        return rc;
    if (!port) {
        cfgval_why(why, why_len,
                   "has no port (expected IPv4:PORT, [IPv6]:PORT, *:PORT or HOST:PORT)");
        return -EINVAL;
    }
    if (host[0] == '\0') {
        cfgval_why(why, why_len, "has no host (write *:PORT for every address)");
        return -EINVAL;
    }
    rc = parse_port(port, 0, &portnum, why, why_len);
    if (rc < 0)
        return rc;
    if (!bracketed && strcmp(host, "*") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons(portnum);
        a.len = sizeof *sin;
    } else {
        rc = resolve_host(host, bracketed, portnum, &a.ss, &a.len, why, why_len);
        if (rc < 0)
            return rc;
    }
    memcpy(a.text, s, strlen(s) + 1);
    *out = a;
    return 0;
}

/* "http://HOST[:PORT][/]" into url, host (as written, brackets kept, for the
 * Host header), port and the resolved address. */
int cfgval_url(const char *s, struct config_backend *b, char *why, size_t why_len)
{
    char auth[CONFIG_HOST_MAX + 32];
    char host[CONFIG_HOST_MAX];
    bool bracketed;
    const char *port;
    uint16_t portnum = 80;

    if (strlen(s) >= sizeof b->url) {
        cfgval_why(why, why_len, "is too long (at most %zu characters)", sizeof b->url - 1);
        return -EINVAL;
    }
    const char *sep = strstr(s, "://");
    if (!sep) {
        cfgval_why(why, why_len, "is not a URL (expected http://HOST[:PORT])");
        return -EINVAL;
    }
    if ((size_t)(sep - s) != 4 || strncasecmp(s, "http", 4) != 0) {
        cfgval_why(why, why_len, "has scheme '%.*s', which is not supported (only http://)",
                   (int)(sep - s), s);
        return -EINVAL;
    }
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    if (memchr(a, '@', alen)) {
        cfgval_why(why, why_len,
                   "has user info, which is not allowed (expected http://HOST[:PORT])");
        return -EINVAL;
    }
    if (*rest != '\0' && strcmp(rest, "/") != 0) {
        cfgval_why(why, why_len, "has a path, query or fragment '%s' (expected http://HOST[:PORT])",
                   rest);
        return -EINVAL;
    }
    if (alen == 0) {
        cfgval_why(why, why_len, "has no host (expected http://HOST[:PORT])");
        return -EINVAL;
    }
    memcpy(auth, a, alen);
    auth[alen] = '\0';
    int rc = split_host_port(auth, host, sizeof host, &bracketed, &port, why, why_len);
    if (rc < 0)
        return rc;
    if (host[0] == '\0') {
        cfgval_why(why, why_len, "has no host (expected http://HOST[:PORT])");
        return -EINVAL;
    }
    if (port) {
        rc = parse_port(port, 1, &portnum, why, why_len);
        if (rc < 0)
            return rc;
    }
    struct config_addr addr;
    memset(&addr, 0, sizeof addr);
    rc = resolve_host(host, bracketed, portnum, &addr.ss, &addr.len, why, why_len);
    if (rc < 0)
        return rc;

    /* The text is the resolved numeric address: the name is in url and host. */
    char ip[INET6_ADDRSTRLEN];
    if (addr.ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr.ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
        snprintf(addr.text, sizeof addr.text, "[%s]:%u", ip, (unsigned)portnum);
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr.ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
        snprintf(addr.text, sizeof addr.text, "%s:%u", ip, (unsigned)portnum);
    }
    memcpy(b->url, s, strlen(s) + 1);
    size_t hlen = strlen(host); /* split_host_port left room for brackets */
    if (bracketed) {
        b->host[0] = '[';
        memcpy(b->host + 1, host, hlen);
        memcpy(b->host + 1 + hlen, "]", 2);
    } else {
        memcpy(b->host, host, hlen + 1);
    }
    b->port = portnum;
    b->addr = addr;
    return 0;
}

int cfgval_hex256(const char *s, uint8_t out[32], char *why, size_t why_len)
{
    size_t n = strlen(s);
    if (n != 64) {
        cfgval_why(why, why_len, "is not 64 hex digits (got %zu characters)", n);
        return -EINVAL;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            cfgval_why(why, why_len, "is not 64 hex digits (bad character '%c')",
                       hi < 0 ? s[2 * i] : s[2 * i + 1]);
            return -EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- public value parsers ---- */

int config_parse_size(const char *s, uint64_t *out)
{
    return cfgval_size(s, out, NULL, 0);
}

int config_parse_duration_ms(const char *s, uint32_t *out)
{
    return cfgval_duration(s, out, NULL, 0);
}

int config_parse_bool(const char *s, bool *out)
{
    return cfgval_bool(s, out, NULL, 0);
}

int config_parse_addr(const char *s, struct config_addr *out)
{
    return cfgval_addr(s, out, NULL, 0);
}
