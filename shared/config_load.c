/*
 * config_load — config_load() of config.h: reading a file through the
 * schema.
 *
 * inih (Debian r55) splits lines longer than its 200-byte buffer into two
 * lines, truncates section names to 49 bytes, treats indented lines as
 * continuations of the previous value and reports only the first syntax
 * error, without calling the handler.  So inih reads through our own reader
 * (read_line), which sees every physical line first: it counts lines, refuses
 * over-long ones, parses section headers itself (in full) and reports every
 * syntax error.  inih only ever receives well-formed, left-trimmed
 * "name = value" lines (everything else becomes an empty line, so its line
 * count stays in step), and splits them into name and value and strips
 * inline comments for the handler.
 */
#include "shared/config.h"
#include "shared/config_keys.h"
#include "shared/config_value.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- loading ---- */

struct load_ctx {
    struct config *cfg;
    struct config_errors *errs;
    unsigned err_line[CONFIG_MAX_ERRORS]; /* for sorting errs by line */
    const char *path;
    FILE *f;
    unsigned lineno;
    int read_errno;
    bool oom;

    enum section sec; /* current section, S_NONE or S_SKIP */
    unsigned inst;    /* backend or tenant index when sec repeats */
    unsigned sec_line;
    /* Line each key was set on, 0 = not set: for the fixed sections over the
     * whole file (they may be reopened), for a backend or tenant within its
     * one section. */
    unsigned seen_fixed[CONFIG_KEY_COUNT];
    unsigned seen_inst[CONFIG_KEY_COUNT];
    unsigned keys_given; /* key_sha256 lines in tenant sections, good or bad */
    bool file_backends;  /* the default backend has been dropped */
    unsigned cap_backends, cap_tenants;

    char line[4096];
};

static void err_at(struct load_ctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(struct load_ctx *c, unsigned line, const char *fmt, ...)
{
    struct config_errors *e = c->errs;
    if (e->n >= CONFIG_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    /* Truncation of a very long message (or path) is accepted. */
    char *msg = e->msg[e->n];
    size_t len = sizeof e->msg[e->n];
    int n =
        line ? snprintf(msg, len, "%s:%u: ", c->path, line) : snprintf(msg, len, "%s: ", c->path);
    if (n > 0 && (size_t)n < len) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(msg + n, len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    (void)n;
    c->err_line[e->n] = line;
    e->n++;
}

/* Stable, by line, so the report reads top to bottom. */
static void sort_errors(struct load_ctx *c)
{
    struct config_errors *e = c->errs;
    char tmp[CONFIG_ERROR_LEN];
    for (unsigned i = 1; i < e->n; i++) {
        unsigned line = c->err_line[i];
        unsigned j = i;
        if (c->err_line[j - 1] <= line)
            continue;
        memcpy(tmp, e->msg[i], sizeof tmp);
        while (j > 0 && c->err_line[j - 1] > line) {
            memcpy(e->msg[j], e->msg[j - 1], sizeof tmp);
            c->err_line[j] = c->err_line[j - 1];
            j--;
        }
        memcpy(e->msg[j], tmp, sizeof tmp);
        c->err_line[j] = line;
    }
}

/* Optimal string alignment distance, for "did you mean". */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned d[CONFIG_NAME_MAX + 1][CONFIG_NAME_MAX + 1];
    if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
        return UINT_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static bool close_enough(const char *typed, const char *known, unsigned *best)
{
    unsigned d = edit_distance(typed, known);
    size_t n = strlen(typed);
    if (d == 0 || d > 2 || d >= n || d >= *best)
        return false;
    *best = d;
    return true;
}

/* "server", "backend vllm", for messages. */
static const char *section_label(const struct load_ctx *c, char *buf, size_t len)
{
    if (c->sec == S_BACKEND)
        snprintf(buf, len, "backend %s", c->cfg->backends[c->inst].name);
    else if (c->sec == S_TENANT)
        snprintf(buf, len, "tenant %s", c->cfg->tenants[c->inst].name);
    else if (c->sec == S_SLO)
        snprintf(buf, len, "slo %s", c->cfg->slos[c->inst].name);
    else
        snprintf(buf, len, "%s", config_section_names[c->sec]);
    return buf;
}

static void *section_base(const struct load_ctx *c)
{
    if (c->sec == S_BACKEND)
        return &c->cfg->backends[c->inst];
    if (c->sec == S_TENANT)
        return &c->cfg->tenants[c->inst];
    if (c->sec == S_SLO)
        return &c->cfg->slos[c->inst];
    return c->cfg;
}

static int grow(void **arr, unsigned *cap, unsigned n, size_t elem)
{
    if (n < *cap)
        return 0;
    unsigned ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Creates the backend or tenant <name>; returns its index or -1. */
static int new_instance(struct load_ctx *c, enum section sec, const char *name)
{
    struct config *cfg = c->cfg;
    const char *what = config_section_names[sec];
    if (sec == S_SLO) {
        for (unsigned i = 0; i < cfg->n_slos; i++) {
            if (strcmp(cfg->slos[i].name, name) == 0) {
                err_at(c, c->lineno, "section [slo %s] given twice (first at line %u)", name,
                       cfg->slos[i].line);
                return -1;
            }
        }
        if (cfg->n_slos >= CONFIG_MAX_SLOS) {
            err_at(c, c->lineno, "too many [slo NAME] sections (at most %d)", CONFIG_MAX_SLOS);
            return -1;
        }
        struct config_slo *o = &cfg->slos[cfg->n_slos];
        memset(o, 0, sizeof *o);
        memcpy(o->name, name, strlen(name) + 1);
        o->line = c->lineno;
        config_apply_defaults(sec, o);
        return (int)cfg->n_slos++;
    }
    unsigned n = sec == S_BACKEND ? cfg->n_backends : cfg->n_tenants;
    unsigned limit = sec == S_BACKEND ? CONFIG_MAX_BACKENDS : CONFIG_MAX_TENANTS;

    if (sec == S_BACKEND && !c->file_backends) {
        /* The file names its backends: the built-in default goes. */
        c->file_backends = true;
        cfg->n_backends = n = 0;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *other = sec == S_BACKEND ? cfg->backends[i].name : cfg->tenants[i].name;
        unsigned line = sec == S_BACKEND ? cfg->backends[i].line : cfg->tenants[i].line;
        if (strcmp(other, name) == 0) {
            err_at(c, c->lineno, "section [%s %s] given twice (first at line %u)", what, name,
                   line);
            return -1;
        }
    }
    if (n >= limit) {
        err_at(c, c->lineno, "too many [%s NAME] sections (at most %u)", what, limit);
        return -1;
    }
    void *base;
    if (sec == S_BACKEND) {
        if (grow((void **)&cfg->backends, &c->cap_backends, n, sizeof *cfg->backends) < 0)
            goto oom;
        struct config_backend *b = &cfg->backends[n];
        memset(b, 0, sizeof *b);
        memcpy(b->name, name, strlen(name) + 1);
        b->line = c->lineno;
        base = b;
        cfg->n_backends = n + 1;
    } else {
        if (grow((void **)&cfg->tenants, &c->cap_tenants, n, sizeof *cfg->tenants) < 0)
            goto oom;
        struct config_tenant *t = &cfg->tenants[n];
        memset(t, 0, sizeof *t);
        memcpy(t->name, name, strlen(name) + 1);
        t->line = c->lineno;
        base = t;
        cfg->n_tenants = n + 1;
    }
    config_apply_defaults(sec, base);
    return (int)n;
oom:
    c->oom = true;
    return -1;
}

static bool valid_name(const char *s)
{
    for (; *s; s++)
        if (!cfgval_is_alnum(*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

/* A "[...]" header with <text> between the brackets. */
static void begin_section(struct load_ctx *c, char *text)
{
    char *end = text + strlen(text);
    while (end > text && cfgval_is_space(end[-1]))
        *--end = '\0';
    while (cfgval_is_space(*text))
        text++;
    char *name = text + strcspn(text, " \t\v\f\r");
    if (*name) {
        *name++ = '\0';
        while (cfgval_is_space(*name))
            name++;
    }

    c->sec = S_SKIP;
    c->sec_line = c->lineno;
    enum section sec = S_COUNT;
    for (enum section s = S_SERVER; s < S_COUNT; s++)
        if (strcmp(text, config_section_names[s]) == 0)
            sec = s;
    if (sec == S_COUNT) {
        unsigned best = UINT_MAX;
        enum section hint = S_COUNT;
        for (enum section s = S_SERVER; s < S_COUNT; s++)
            if (close_enough(text, config_section_names[s], &best))
                hint = s;
        if (hint != S_COUNT)
            err_at(c, c->lineno, "unknown section [%s] (did you mean [%s%s]?)", text,
                   config_section_names[hint], config_section_repeats(hint) ? " NAME" : "");
        else
            err_at(c, c->lineno, "unknown section [%s]", text);
        return;
    }
    if (!config_section_repeats(sec)) {
        if (*name) {
            err_at(c, c->lineno, "section [%s] takes no name (got [%s %s])", text, text, name);
            return;
        }
        c->sec = sec;
        return;
    }
    if (!*name) {
        err_at(c, c->lineno, "section [%s] needs a name: [%s NAME]", text, text);
        return;
    }
    if (strlen(name) >= CONFIG_NAME_MAX) {
        err_at(c, c->lineno, "%s name '%s' is too long (at most %d characters)", text, name,
               CONFIG_NAME_MAX - 1);
        return;
    }
    if (!valid_name(name)) {
        err_at(c, c->lineno, "%s name '%s' may only contain A-Z a-z 0-9 _ . -", text, name);
        return;
    }
    int idx = new_instance(c, sec, name);
    if (idx < 0)
        return;
    c->sec = sec;
    c->inst = (unsigned)idx;
    memset(c->seen_inst, 0, sizeof c->seen_inst);
}

/* Required keys, checked when their section ends.  One that was given but
 * bad has been reported already. */
static void end_section(struct load_ctx *c)
{
    if (c->sec == S_BACKEND && !c->seen_inst[config_key_index(S_BACKEND, "url")])
        err_at(c, c->sec_line, "[backend %s] has no url", c->cfg->backends[c->inst].name);
    if (c->sec == S_SLO) {
        const struct config_slo *o = &c->cfg->slos[c->inst];
        static const char *const required[] = {"metric", "threshold"};
        for (size_t i = 0; i < 2; i++)
            if (!c->seen_inst[config_key_index(S_SLO, required[i])])
                err_at(c, c->sec_line, "[slo %s] has no %s", o->name, required[i]);
        unsigned tl = c->seen_inst[config_key_index(S_SLO, "threshold")];
        if (tl && !slo_metric_is_latency((unsigned)o->metric) && o->metric != SLO_QUEUE_DEPTH &&
            o->threshold > 1)
            err_at(c, tl, "[slo %s] threshold %g is a rate: at most 1 (0.01 = 1 %%)", o->name,
                   o->threshold);
        unsigned il = c->seen_inst[config_key_index(S_SLO, "metric")];
        if (il && o->metric == SLO_ITL_P99 && (o->tenant[0] || o->backend[0]))
            err_at(c, il,
                   "[slo %s] itl_p99 is measured for the whole node only (no tenant, "
                   "no backend)",
                   o->name);
    }
}

/* inih's rule: the first of <chars>, or an inline ';' after whitespace, or
 * the end. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;
    while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
        was_space = cfgval_is_space(*s);
        s++;
    }
    return s;
}

/* The ini_reader: one physical line per call (see the top of the file). */
static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *c = stream;
    size_t keep = sizeof c->line - 1, len = 0, total = 0;
    bool nul = false;
    int ch;

    if (num < 3 || c->read_errno)
        return NULL;
    errno = 0;
    ch = getc(c->f);
    if (ch == EOF) {
        if (ferror(c->f))
            c->read_errno = errno ? errno : EIO;
        return NULL;
    }
    for (; ch != EOF && ch != '\n'; ch = getc(c->f)) {
        if (ch == '\0')
            nul = true;
        if (len < keep)
            c->line[len++] = (char)ch;
        total++;
    }
    if (ch == EOF && ferror(c->f)) {
        c->read_errno = errno ? errno : EIO;
        return NULL;
    }
    c->lineno++;
    if (total == len && len > 0 && c->line[len - 1] == '\r')
        total = --len;
    c->line[len] = '\0';

    char *p = c->line;
    if (c->lineno == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        total -= 3;
    }
    size_t limit = (size_t)num - 2 < keep ? (size_t)num - 2 : keep;

    /* What inih gets: an empty line unless this is a good name=value line. */
    str[0] = '\n';
    str[1] = '\0';
    while (cfgval_is_space(*p))
        p++;
    if (total > limit || nul) {
        if (total > limit)
            err_at(c, c->lineno, "line too long (%zu characters, at most %zu)", total, limit);
        else
            err_at(c, c->lineno, "line contains a NUL byte");
        if (*p == '[') {
            /* A section we cannot read: its keys must not land in the last one. */
            end_section(c);
            c->sec = S_SKIP;
        }
        return str;
    }
    if (*p == '\0' || *p == ';' || *p == '#')
        return str;
    if (*p == '[') {
        end_section(c);
        char *close = (char *)find_chars_or_comment(p + 1, "]");
        if (*close != ']') {
            err_at(c, c->lineno, "section header has no closing ']'");
            c->sec = S_SKIP;
            return str;
        }
        const char *after = close + 1;
        while (cfgval_is_space(*after))
            after++;
        if (*after != '\0' && *after != ';' && *after != '#') {
            err_at(c, c->lineno, "unexpected text after ']'");
            c->sec = S_SKIP;
            return str;
        }
        *close = '\0';
        begin_section(c, p + 1);
        return str;
    }
    const char *sep = find_chars_or_comment(p, "=:");
    if (*sep != '=' && *sep != ':') {
        err_at(c, c->lineno, "expected 'key = value', '[section]' or a comment");
        return str;
    }
    size_t n = strlen(p);
    memcpy(str, p, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

/* The ini_handler: runs while read_line's line is current. */
static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = user;
    char label[CONFIG_NAME_MAX + 16];
    char why[CONFIG_ERROR_LEN];
    (void)section; /* ours, from read_line: inih truncates it */

    if (c->sec == S_SKIP)
        return 1;
    if (c->sec == S_NONE) {
        err_at(c, c->lineno, "key '%s' is outside any section", name);
        return 1;
    }
    section_label(c, label, sizeof label);
    if (name[0] == '\0') {
        err_at(c, c->lineno, "missing key name before '=' in [%s]", label);
        return 1;
    }
    int k = config_key_index(c->sec, name);
    if (k < 0) {
        unsigned best = UINT_MAX;
        const char *hint = NULL;
        for (int i = 0; i < CONFIG_KEY_COUNT; i++)
            if (config_key_impl[i].sec == c->sec &&
                close_enough(name, config_key_schema[i].name, &best))
                hint = config_key_schema[i].name;
        if (hint) {
            err_at(c, c->lineno, "unknown key '%s' in [%s] (did you mean '%s'?)", name, label,
                   hint);
            return 1;
        }
        for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
            if (strcmp(config_key_schema[i].name, name) != 0)
                continue;
            enum section s = config_key_impl[i].sec;
            err_at(c, c->lineno, "unknown key '%s' in [%s] (it belongs in [%s%s])", name, label,
                   config_section_names[s], config_section_repeats(s) ? " NAME" : "");
            return 1;
        }
        err_at(c, c->lineno, "unknown key '%s' in [%s]", name, label);
        return 1;
    }
    unsigned *seen = config_section_repeats(c->sec) ? c->seen_inst : c->seen_fixed;
    if (seen[k]) {
        err_at(c, c->lineno, "key '%s' given twice in [%s] (first at line %u)", name, label,
               seen[k]);
        return 1;
    }
    seen[k] = c->lineno;
    if (c->sec == S_TENANT && k == config_key_index(S_TENANT, "key_sha256")) {
        c->keys_given++;
        c->cfg->tenants[c->inst].key_line = c->lineno;
    }
    if (config_apply_value(k, section_base(c), value, why, sizeof why) < 0)
        err_at(c, c->lineno, "[%s] %s '%s' %s", label, name, value, why);
    return 1;
}

static unsigned line_of(const struct load_ctx *c, const char *sec, const char *key)
{
    for (int k = 0; k < CONFIG_KEY_COUNT; k++)
        if (strcmp(config_key_schema[k].section, sec) == 0 &&
            strcmp(config_key_schema[k].name, key) == 0)
            return c->seen_fixed[k];
    return 0;
}

/* The first of <a>, <b> that the file set, else <fallback>. */
static unsigned first_set(unsigned a, unsigned b)
{
    return a ? a : b;
}

static void check_readable(struct load_ctx *c, const char *key, const char *path)
{
    if (!path[0])
        return;
    unsigned line = line_of(c, "server", key);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err_at(c, line, "[server] %s '%s' cannot be read: %s", key, path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
        err_at(c, line, "[server] %s '%s' is not a regular file", key, path);
    close(fd);
}

static bool same_addr(const struct config_addr *a, const struct config_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

static void check_addr_clash(struct load_ctx *c, const char *ka, const struct config_addr *a,
                             const char *kb, const struct config_addr *b)
{
    if (!same_addr(a, b))
        return;
    unsigned line = first_set(line_of(c, "server", kb), line_of(c, "server", ka));
    err_at(c, line, "[server] %s and %s are the same address '%s'", ka, kb, b->text);
}

/* What one key cannot tell: settings that depend on each other. */
static void check_whole(struct load_ctx *c)
{
    const struct config *cfg = c->cfg;

    if (cfg->max_header_bytes < cfg->max_request_line)
        err_at(c,
               first_set(line_of(c, "http", "max_header_bytes"),
                         line_of(c, "http", "max_request_line")),
               "[http] max_header_bytes (%u) must be at least max_request_line (%u)",
               cfg->max_header_bytes, cfg->max_request_line);
    if (cfg->stream_buffer_max < cfg->slab_size)
        err_at(c,
               first_set(line_of(c, "stream", "stream_buffer_max"),
                         line_of(c, "buffers", "slab_size")),
               "[stream] stream_buffer_max (%llu) must be at least [buffers] slab_size (%u)",
               (unsigned long long)cfg->stream_buffer_max, cfg->slab_size);
    if (cfg->max_event_size > cfg->stream_buffer_max)
        err_at(c,
               first_set(line_of(c, "stream", "max_event_size"),
                         line_of(c, "stream", "stream_buffer_max")),
               "[stream] max_event_size (%u) must be at most stream_buffer_max (%llu)",
               cfg->max_event_size, (unsigned long long)cfg->stream_buffer_max);
    if (cfg->resume_retention_s &&
        cfg->resume_memory_max < (uint64_t)cfg->resume_buffer_max * config_worker_count(cfg))
        err_at(c,
               first_set(line_of(c, "stream", "resume_memory_max"),
                         line_of(c, "stream", "resume_buffer_max")),
               "[stream] resume_memory_max (%llu) must hold one resume_buffer_max (%u) per "
               "worker (%u)",
               (unsigned long long)cfg->resume_memory_max, cfg->resume_buffer_max,
               config_worker_count(cfg));

    bool tls = cfg->tls_cert[0] && cfg->tls_key[0];
    if (cfg->tls_cert[0] && !cfg->tls_key[0])
        err_at(c, line_of(c, "server", "tls_cert"), "[server] tls_cert set without tls_key");
    if (cfg->tls_key[0] && !cfg->tls_cert[0])
        err_at(c, line_of(c, "server", "tls_key"), "[server] tls_key set without tls_cert");
    check_readable(c, "tls_cert", cfg->tls_cert);
    check_readable(c, "tls_key", cfg->tls_key);

    check_addr_clash(c, "listen", &cfg->listen, "admin_listen", &cfg->admin_listen);
    if (tls) {
        check_addr_clash(c, "listen", &cfg->listen, "tls_listen", &cfg->tls_listen);
        check_addr_clash(c, "tls_listen", &cfg->tls_listen, "admin_listen", &cfg->admin_listen);
    }

    for (unsigned i = 0; i < cfg->n_tenants; i++) {
        const struct config_tenant *t = &cfg->tenants[i];
        if (!t->has_key)
            continue;
        for (unsigned j = 0; j < i; j++) {
            const struct config_tenant *o = &cfg->tenants[j];
            if (o->has_key && memcmp(o->key_sha256, t->key_sha256, sizeof t->key_sha256) == 0) {
                err_at(c, t->line, "[tenant %s] has the same key_sha256 as [tenant %s] (line %u)",
                       t->name, o->name, o->line);
                break;
            }
        }
    }
    for (unsigned i = 0; i < cfg->n_slos; i++) {
        /* A policy names tenants and backends that exist (the line of the
         * section: the key's own line is not kept past its section). */
        const struct config_slo *o = &cfg->slos[i];
        bool found = !o->tenant[0] || strcmp(o->tenant, "*") == 0;
        for (unsigned j = 0; j < cfg->n_tenants && !found; j++)
            found = strcmp(cfg->tenants[j].name, o->tenant) == 0;
        if (!found && strcmp(o->tenant, "default") != 0)
            err_at(c, o->line, "[slo %s] tenant '%s' is not a [tenant NAME] (or * or default)",
                   o->name, o->tenant);
        found = !o->backend[0];
        for (unsigned j = 0; j < cfg->n_backends && !found; j++)
            found = strcmp(cfg->backends[j].name, o->backend) == 0;
        if (!found)
            err_at(c, o->line, "[slo %s] backend '%s' is not a [backend NAME]", o->name,
                   o->backend);
    }
    for (unsigned i = 0; i < cfg->n_tenants; i++) {
        const struct config_tenant *t = &cfg->tenants[i];
        if (cfg->auth_enabled && !t->key_line)
            err_at(c, t->line, "[tenant %s] has no key_sha256 (required with [auth] enabled)",
                   t->name);
        if (t->burst_limit && t->burst_limit < t->hard_limit)
            err_at(c, t->line, "[tenant %s] burst_limit (%u) must be at least hard_limit (%u)",
                   t->name, t->burst_limit, t->hard_limit);
        if (t->burst_limit && !t->hard_limit)
            err_at(c, t->line, "[tenant %s] burst_limit needs a hard_limit", t->name);
    }
    if (cfg->min_concurrent > cfg->max_concurrent)
        err_at(c,
               first_set(line_of(c, "governor", "min_concurrent"),
                         line_of(c, "governor", "max_concurrent")),
               "[governor] min_concurrent (%u) must be at most max_concurrent (%u)",
               cfg->min_concurrent, cfg->max_concurrent);
    if (cfg->auth_enabled && c->keys_given == 0)
        err_at(c, line_of(c, "auth", "enabled"),
               "[auth] enabled = true but no [tenant NAME] has a key_sha256");
}

int config_load(struct config *cfg, const char *path, struct config_errors *errs)
{
    struct config_errors local;
    struct load_ctx *c;
    int rc;

    if (!errs)
        errs = &local;
    memset(errs, 0, sizeof *errs);

    rc = config_defaults(cfg);
    if (rc < 0)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c) {
        config_free(cfg);
        return -ENOMEM;
    }
    c->cfg = cfg;
    c->errs = errs;
    c->path = path;
    c->sec = S_NONE;

    if (strlen(path) >= sizeof cfg->path) {
        err_at(c, 0, "cannot open: %s", strerror(ENAMETOOLONG));
        rc = -ENAMETOOLONG;
        goto out;
    }
    memcpy(cfg->path, path, strlen(path) + 1);

    c->f = fopen(path, "re");
    struct stat st;
    if (c->f && fstat(fileno(c->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(c->f);
        c->f = NULL;
        errno = EISDIR;
    }
    if (!c->f) {
        rc = -errno;
        err_at(c, 0, "cannot open: %s", strerror(errno));
        goto out;
    }

    int ini_rc = ini_parse_stream(read_line, c, on_value, c);
    end_section(c);
    if (ini_rc == -2)
        c->oom = true;
    if (ini_rc > 0) {
        /* inih refused a line read_line passed as good: not expected, but
         * never let it go unreported. */
        bool known = false;
        for (unsigned i = 0; i < errs->n; i++)
            known |= c->err_line[i] == (unsigned)ini_rc;
        if (!known)
            err_at(c, (unsigned)ini_rc, "syntax error");
    }
    fclose(c->f);
    if (c->oom) {
        err_at(c, 0, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (c->read_errno) {
        err_at(c, 0, "read error: %s", strerror(c->read_errno));
        rc = -c->read_errno;
        goto out;
    }
    check_whole(c);
    rc = errs->n || errs->dropped ? -EINVAL : 0;
out:
    sort_errors(c);
    free(c);
    if (rc < 0)
        config_free(cfg);
    return rc;
}
