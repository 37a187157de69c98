/*
 * config — see config.h.  The schema (config_keys.h) and how one value is
 * applied through it; reading a file is config_load.c.
 */
#include "shared/config.h"
#include "shared/config_keys.h"
#include "shared/config_value.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

const char *const config_section_names[S_COUNT] = {
    "server",  "http", "http2",    "cors",    "websocket", "rollout", "upstream", "stream",
    "buffers", "auth", "governor", "backend", "tenant",    "qos",     "slo",
};

bool config_section_repeats(enum section s)
{
    return s == S_BACKEND || s == S_TENANT || s == S_SLO;
}

#define PUBLIC_ENTRY(sec, secname, key, type, def, base, field, min, max, flags, help)             \
    {secname, key, type, def, help},
#define IMPL_ENTRY(sec, secname, key, type, def, base, field, min, max, flags, help)               \
    {sec, flags, FIELD(base, field), min, max},

const struct config_key config_key_schema[] = {
    CONFIG_KEYS(PUBLIC_ENTRY){NULL, NULL, 0, NULL, NULL}};
const struct key_impl config_key_impl[] = {CONFIG_KEYS(IMPL_ENTRY)};

_Static_assert(sizeof config_key_impl / sizeof config_key_impl[0] == CONFIG_KEY_COUNT &&
                   sizeof config_key_schema / sizeof config_key_schema[0] == CONFIG_KEY_COUNT + 1,
               "schema and impl come from the same list");

/* In the order of enum log_level (log.h), which config does not include. */
static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

/* In the order of enum backend_kind and enum config_gov_algo. */
static const char *const backend_kind_names[] = {"openai", "ollama", "tfserving-rest"};
static const char *const gov_algo_names[] = {"pid", "gradient"};
/* In the order of enum config_tls_version. */
static const char *const tls_version_names[] = {"1.2", "1.3"};
/* In the order of enum config_balance. */
static const char *const balance_names[] = {"least_outstanding", "round_robin"};

/* The names a CFG_ENUM key takes. */
static const char *const *enum_names(int k, size_t *n)
{
    enum section sec = config_key_impl[k].sec;
    if (sec == S_SERVER) {
        *n = sizeof tls_version_names / sizeof *tls_version_names;
        return tls_version_names;
    }
    if (sec == S_GOVERNOR) {
        *n = sizeof gov_algo_names / sizeof *gov_algo_names;
        return gov_algo_names;
    }
    if (sec == S_UPSTREAM) {
        *n = sizeof balance_names / sizeof *balance_names;
        return balance_names;
    }
    if (sec == S_SLO)
        return strcmp(config_key_schema[k].name, "metric") == 0 ? slo_metric_names(n)
                                                                : slo_severity_names(n);
    *n = sizeof backend_kind_names / sizeof *backend_kind_names;
    return backend_kind_names;
}

const struct config_key *config_schema(void)
{
    return config_key_schema;
}

int config_key_index(enum section sec, const char *name)
{
    for (int i = 0; i < CONFIG_KEY_COUNT; i++)
        if (config_key_impl[i].sec == sec && strcmp(config_key_schema[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- applying one value through the schema ---- */

/* [qos] webhook: http://HOST[:PORT] as a backend's url, then its path. */
static int webhook_url(const char *val, struct config *cfg, char *why, size_t why_len)
{
    if (!*val) {
        memset(&cfg->qos_webhook, 0, sizeof cfg->qos_webhook); /* none */
        cfg->qos_webhook_path[0] = '\0';
        return 0;
    }
    const char *sep = strstr(val, "://");
    size_t base_len = sep ? (size_t)(sep + 3 - val) + strcspn(sep + 3, "/?#") : strlen(val);
    char base[sizeof cfg->qos_webhook.url];
    if (base_len >= sizeof base || strlen(val + base_len) >= sizeof cfg->qos_webhook_path) {
        cfgval_why(why, why_len, "is too long");
        return -EINVAL;
    }
    memcpy(base, val, base_len);
    base[base_len] = '\0';
    int rc = cfgval_url(base, &cfg->qos_webhook, why, why_len);
    if (rc < 0)
        return rc;
    snprintf(cfg->qos_webhook_path, sizeof cfg->qos_webhook_path, "%s",
             val[base_len] == '/' ? val + base_len : "/");
    snprintf(cfg->qos_webhook.url, sizeof cfg->qos_webhook.url, "%s", val);
    return 0;
}

/* "16KiB" rather than "16384" where the number is a whole unit. */
static void fmt_size(char *buf, size_t len, uint64_t v)
{
    if (v >= GIB && v % GIB == 0)
        snprintf(buf, len, "%lluGiB", (unsigned long long)(v / GIB));
    else if (v >= MIB && v % MIB == 0)
        snprintf(buf, len, "%lluMiB", (unsigned long long)(v / MIB));
    else if (v >= KIB && v % KIB == 0)
        snprintf(buf, len, "%lluKiB", (unsigned long long)(v / KIB));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void fmt_value(char *buf, size_t len, enum config_type type, uint64_t v)
{
    if (type == CFG_SIZE)
        fmt_size(buf, len, v);
    else if (type == CFG_DURATION)
        snprintf(buf, len, "%llums", (unsigned long long)v);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int check_range(int k, uint64_t v, char *why, size_t why_len)
{
    const struct key_impl *ki = &config_key_impl[k];
    uint64_t field_max = ki->size >= 8 ? UINT64_MAX : (1ull << (8 * ki->size)) - 1;
    uint64_t max = ki->max ? ki->max : field_max;
    bool pow2 = (ki->flags & F_POW2) != 0;
    if (v >= ki->min && v <= max && (!pow2 || (v & (v - 1)) == 0))
        return 0;

    char lo[32], hi[32];
    fmt_value(lo, sizeof lo, config_key_schema[k].type, ki->min);
    fmt_value(hi, sizeof hi, config_key_schema[k].type, max);
    if (ki->max == 0 && ki->min == 1 && v == 0)
        cfgval_why(why, why_len, "must be greater than 0");
    else if (ki->max == 0 && v > max)
        cfgval_why(why, why_len, "is too large (at most %s)", hi);
    else if (ki->max == 0)
        cfgval_why(why, why_len, "must be at least %s", lo);
    else
        cfgval_why(why, why_len, "must be %sbetween %s and %s", pow2 ? "a power of two " : "", lo,
                   hi);
    return -ERANGE;
}

/* Every CFG_UINT, CFG_SIZE and CFG_DURATION field is a uint32_t or uint64_t. */
static void store_uint(void *field, size_t size, uint64_t v)
{
    if (size == sizeof(uint64_t)) {
        uint64_t x = v;
        memcpy(field, &x, sizeof x);
    } else {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof x);
    }
}

static int match_name(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Parses <val> for schema entry <k> into the struct at <base> (struct config,
 * config_backend or config_tenant, by the key's section). */
int config_apply_value(int k, void *base, const char *val, char *why, size_t why_len)
{
    const struct key_impl *ki = &config_key_impl[k];
    char *field = (char *)base + ki->off;
    uint64_t v = 0;
    int rc;

    switch (config_key_schema[k].type) {
    case CFG_ADDR:
        return cfgval_addr(val, (struct config_addr *)(void *)field, why, why_len);
    case CFG_PATH: {
        size_t n = strlen(val);
        if (n >= ki->size) {
            cfgval_why(why, why_len, "is too long (at most %zu bytes)", ki->size - 1);
            return -EINVAL;
        }
        if (n == 0 && (ki->flags & F_NONEMPTY)) {
            cfgval_why(why, why_len, "must not be empty");
            return -EINVAL;
        }
        memcpy(field, val, n + 1);
        return 0;
    }
    case CFG_UINT: {
        const char *p = val;
        rc = cfgval_digits(&p, &v);
        if (rc == -ERANGE)
            v = UINT64_MAX, rc = 0; /* no field holds it: the range check says so */
        else if (rc == 0 && *p != '\0')
            rc = -EINVAL;
        if (rc < 0) {
            cfgval_why(why, why_len, "is not a whole number");
            return rc;
        }
        break;
    }
    case CFG_SIZE:
        rc = cfgval_size(val, &v, why, why_len);
        if (rc < 0)
            return rc;
        break;
    case CFG_DURATION: {
        uint32_t ms;
        rc = cfgval_duration(val, &ms, why, why_len);
        if (rc < 0)
            return rc;
        v = ms;
        break;
    }
    case CFG_BOOL:
        return cfgval_bool(val, (bool *)(void *)field, why, why_len);
    case CFG_WORKERS: {
        unsigned w = 0;
        const char *p = val;
        if (strcmp(val, "auto") != 0) {
            if (cfgval_digits(&p, &v) != 0 || *p != '\0' || v < 1 || v > CONFIG_MAX_WORKERS) {
                cfgval_why(why, why_len, "is not valid (expected auto or 1..%d)",
                           CONFIG_MAX_WORKERS);
                return -EINVAL;
            }
            w = (unsigned)v;
        }
        memcpy(field, &w, sizeof w);
        return 0;
    }
    case CFG_LOGLEVEL: {
        int lvl =
            match_name(val, log_level_names, sizeof log_level_names / sizeof *log_level_names);
        if (lvl < 0) {
            cfgval_why(why, why_len, "is not a log level (expected error, warn, info or debug)");
            return -EINVAL;
        }
        memcpy(field, &lvl, sizeof lvl);
        return 0;
    }
    case CFG_ENUM: {
        size_t nn;
        const char *const *names = enum_names(k, &nn);
        int e = match_name(val, names, nn);
        if (e < 0) {
            char list[128] = "";
            size_t used = 0;
            for (size_t i = 0; i < nn; i++) {
                int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
                if (n < 0 || (size_t)n >= sizeof list - used)
                    break;
                used += (size_t)n;
            }
            cfgval_why(why, why_len, "is not supported (supported: %s)", list);
            return -EINVAL;
        }
        memcpy(field, &e, sizeof e); /* every CFG_ENUM field is an int-sized enum */
        return 0;
    }
    case CFG_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double d = strtod(val, &end);
        if (end == val || *end != '\0' || errno == ERANGE || !(d >= 0.0) || d > 1e12 ||
            strpbrk(val, "xXnN") != NULL) {
            cfgval_why(why, why_len, "is not a non-negative decimal number");
            return -EINVAL;
        }
        if (d < (double)ki->min || (ki->max && d > (double)ki->max)) {
            cfgval_why(why, why_len, "must be between %llu and %llu", (unsigned long long)ki->min,
                       (unsigned long long)ki->max);
            return -ERANGE;
        }
        memcpy(field, &d, sizeof d);
        return 0;
    }
    case CFG_TEXT: {
        size_t n = strlen(val);
        if (n >= ki->size) {
            cfgval_why(why, why_len, "is too long (at most %zu bytes)", ki->size - 1);
            return -EINVAL;
        }
        memcpy(field, val, n + 1);
        return 0;
    }
    case CFG_STR:
        /* a backend's url, or [qos] webhook: a URL with a path */
        if (ki->sec == S_QOS)
            return webhook_url(val, base, why, why_len);
        return cfgval_url(val, (struct config_backend *)base, why, why_len);
    case CFG_ACTIONS: {
        struct config_slo *o = base;
        if (strlen(val) >= sizeof o->actions_text) {
            cfgval_why(why, why_len, "is too long (at most %zu bytes)", sizeof o->actions_text - 1);
            return -EINVAL;
        }
        snprintf(o->actions_text, sizeof o->actions_text, "%s", val);
        return slo_actions_parse(val, o->actions, &o->n_actions, why, why_len);
    }
    case CFG_HEX256: {
        struct config_tenant *t = base;
        rc = cfgval_hex256(val, t->key_sha256, why, why_len);
        if (rc == 0)
            t->has_key = true;
        return rc;
    }
    }
    rc = check_range(k, v, why, why_len);
    if (rc < 0)
        return rc;
    store_uint(field, ki->size, v);
    return 0;
}

/* Applies the non-empty defaults of every key in <sec> to <base>. */
int config_apply_defaults(enum section sec, void *base)
{
    char why[CONFIG_ERROR_LEN];
    for (int k = 0; k < CONFIG_KEY_COUNT; k++) {
        if (config_key_impl[k].sec != sec || config_key_schema[k].def[0] == '\0')
            continue;
        if (config_apply_value(k, base, config_key_schema[k].def, why, sizeof why) < 0)
            return -EINVAL; /* a bad default is a bug; the tests catch it */
    }
    return 0;
}

static int default_backend(struct config_backend *b)
{
    char why[CONFIG_ERROR_LEN];
    memset(b, 0, sizeof *b);
    memcpy(b->name, "default", sizeof "default");
    if (config_apply_defaults(S_BACKEND, b) < 0)
        return -EINVAL;
    return cfgval_url("http://127.0.0.1:8000", b, why, sizeof why);
}

int config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (enum section s = S_SERVER; s < S_COUNT; s++)
        if (!config_section_repeats(s) && config_apply_defaults(s, cfg) < 0)
            return -EINVAL;
    cfg->backends = calloc(1, sizeof *cfg->backends);
    if (!cfg->backends)
        return -ENOMEM;
    cfg->n_backends = 1;
    int rc = default_backend(&cfg->backends[0]);
    if (rc < 0) {
        config_free(cfg);
        return rc;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->backends);
    free(cfg->tenants);
    memset(cfg, 0, sizeof *cfg);
}

int config_copy(struct config *dst, const struct config *src)
{
    struct config_backend *b = NULL;
    struct config_tenant *t = NULL;
    if (src->n_backends) {
        b = malloc(src->n_backends * sizeof *b);
        if (!b)
            goto fail;
        memcpy(b, src->backends, src->n_backends * sizeof *b);
    }
    if (src->n_tenants) {
        t = malloc(src->n_tenants * sizeof *t);
        if (!t)
            goto fail;
        memcpy(t, src->tenants, src->n_tenants * sizeof *t);
    }
    memcpy(dst, src, sizeof *dst);
    dst->backends = b;
    dst->tenants = t;
    return 0;
fail:
    free(b);
    memset(dst, 0, sizeof *dst);
    return -ENOMEM;
}

void config_errors_print(const struct config_errors *errs, FILE *out)
{
    for (unsigned i = 0; i < errs->n && i < CONFIG_MAX_ERRORS; i++)
        fprintf(out, "%s\n", errs->msg[i]);
    if (errs->dropped)
        fprintf(out, "%u more error%s\n", errs->dropped, errs->dropped == 1 ? "" : "s");
}

/* "backend NAME" for "backend *". */
static void section_title(char *buf, size_t len, const char *sec)
{
    size_t n = strlen(sec);
    if (n >= 2 && strcmp(sec + n - 2, " *") == 0)
        snprintf(buf, len, "%.*s NAME", (int)(n - 2), sec);
    else
        snprintf(buf, len, "%s", sec);
}

static void print_md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void config_schema_print(FILE *out, bool markdown)
{
    char title[64];
    if (markdown) {
        fprintf(out, "| Section | Key | Default | Meaning |\n");
        fprintf(out, "|---|---|---|---|\n");
        for (int k = 0; k < CONFIG_KEY_COUNT; k++) {
            section_title(title, sizeof title, config_key_schema[k].section);
            fprintf(out, "| %s | %s | ", title, config_key_schema[k].name);
            if (config_key_schema[k].def[0]) {
                fputc('`', out);
                print_md_cell(out, config_key_schema[k].def);
                fputc('`', out);
            } else {
                fputs("(none)", out);
            }
            fputs(" | ", out);
            print_md_cell(out, config_key_schema[k].help);
            fputs(" |\n", out);
        }
        return;
    }

    int wkey = 0, wdef = (int)strlen("(none)");
    for (int k = 0; k < CONFIG_KEY_COUNT; k++) {
        int n = (int)strlen(config_key_schema[k].name);
        int d = (int)strlen(config_key_schema[k].def);
        wkey = n > wkey ? n : wkey;
        wdef = d > wdef ? d : wdef;
    }
    const char *prev = NULL;
    for (int k = 0; k < CONFIG_KEY_COUNT; k++) {
        if (!prev || strcmp(prev, config_key_schema[k].section) != 0) {
            section_title(title, sizeof title, config_key_schema[k].section);
            fprintf(out, "%s[%s]\n", prev ? "\n" : "", title);
            prev = config_key_schema[k].section;
        }
        fprintf(out, "  %-*s  %-*s  %s\n", wkey, config_key_schema[k].name, wdef,
                config_key_schema[k].def[0] ? config_key_schema[k].def : "(none)",
                config_key_schema[k].help);
    }
}

unsigned config_worker_count(const struct config *cfg)
{
    if (cfg->workers)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)n;
}

const struct config_backend *config_backend_find(const struct config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->n_backends; i++)
        if (strcmp(cfg->backends[i].name, name) == 0)
            return &cfg->backends[i];
    return NULL;
}
