/* slo_spec — see slo_spec.h. */
#include "shared/slo_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/config_value.h"
#include "shared/rollout.h"

static const char *const metric_names[SLO_METRIC_COUNT] = {
    "ttft_p50",    "ttft_p95",        "ttft_p99",           "itl_p99",     "error_rate",
    "reject_rate", "disconnect_rate", "slow_consumer_rate", "queue_depth",
};
static const char *const severity_names[SLO_SEVERITY_COUNT] = {"info", "warning", "critical"};
static const char *const action_names[ACT_COUNT] = {
    "lower_limit", "throttle_tenant", "disable_feature", "protocol_fallback",
    "shed_load",   "alert",           "safe_mode",
};

const char *slo_metric_name(unsigned m)
{
    return m < SLO_METRIC_COUNT ? metric_names[m] : "?";
}

const char *slo_severity_name(unsigned s)
{
    return s < SLO_SEVERITY_COUNT ? severity_names[s] : "?";
}

const char *slo_action_name(unsigned a)
{
    return a < ACT_COUNT ? action_names[a] : "?";
}

bool slo_metric_is_latency(unsigned m)
{
    return m <= SLO_ITL_P99;
}

const char *const *slo_metric_names(size_t *n)
{
    *n = SLO_METRIC_COUNT;
    return metric_names;
}

const char *const *slo_severity_names(size_t *n)
{
    *n = SLO_SEVERITY_COUNT;
    return severity_names;
}

/* The next white-space separated word of [*p, end) into w (NUL-terminated,
 * cut to fit: a cut word matches nothing). */
static bool word(const char **p, const char *end, char *w, size_t cap)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *e = s;
    while (e < end && *e != ' ' && *e != '\t')
        e++;
    if (e == s)
        return false;
    size_t n = (size_t)(e - s) < cap ? (size_t)(e - s) : cap - 1;
    memcpy(w, s, n);
    w[n] = '\0';
    *p = e;
    return true;
}

static int parse_item(const char *s, const char *end, struct slo_action *a, char *why, size_t wl)
{
    char name[32], arg[64], more[32];
    const char *p = s;
    memset(a, 0, sizeof *a);
    if (!word(&p, end, name, sizeof name)) {
        snprintf(why, wl, "has an empty action");
        return -EINVAL;
    }
    int k = -1;
    for (int i = 0; i < ACT_COUNT; i++)
        if (strcmp(name, action_names[i]) == 0)
            k = i;
    if (k < 0) {
        snprintf(why, wl,
                 "has an unknown action '%s' (expected lower_limit, throttle_tenant, "
                 "disable_feature, protocol_fallback, shed_load, alert or safe_mode)",
                 name);
        return -EINVAL;
    }
    a->kind = (uint8_t)k;
    const char *before_arg = p;
    bool has_arg = word(&p, end, arg, sizeof arg);
    if (has_arg && strcmp(arg, "cooldown") == 0) {
        has_arg = false;
        p = before_arg; /* no argument: the cooldown follows the name */
    }
    if (k == ACT_LOWER_LIMIT || k == ACT_SHED_LOAD) {
        char *e;
        unsigned long v = has_arg ? strtoul(arg, &e, 10) : 0;
        if (!has_arg || e == arg || (*e && strcmp(e, "%") != 0) || v < 1 || v > 99) {
            snprintf(why, wl, "has %s without a percentage 1..99 (e.g. '%s 25')", name, name);
            return -EINVAL;
        }
        a->pct = (uint8_t)v;
    } else if (k == ACT_DISABLE_FEATURE) {
        enum rollout_feature f;
        if (!has_arg || rollout_parse(arg, &f) < 0) {
            snprintf(why, wl,
                     "has disable_feature without a feature (adaptive_governor, "
                     "http2_transport, ttft_pipeline, qos_monitoring, stream_resume)");
            return -EINVAL;
        }
        a->feature = (uint8_t)f;
    } else if (has_arg) {
        snprintf(why, wl, "has %s with an argument '%s' it does not take", name, arg);
        return -EINVAL;
    }
    if (word(&p, end, more, sizeof more)) {
        char dur[32];
        if (strcmp(more, "cooldown") != 0 || !word(&p, end, dur, sizeof dur)) {
            snprintf(why, wl, "has '%s' after %s (expected 'cooldown DURATION')", more, name);
            return -EINVAL;
        }
        char dwhy[128];
        if (cfgval_duration(dur, &a->cooldown_ms, dwhy, sizeof dwhy) < 0) {
            snprintf(why, wl, "has %s cooldown '%s', which %s", name, dur, dwhy);
            return -EINVAL;
        }
        if (word(&p, end, more, sizeof more)) {
            snprintf(why, wl, "has '%s' after the cooldown of %s", more, name);
            return -EINVAL;
        }
    }
    return 0;
}

int slo_actions_parse(const char *text, struct slo_action *out, uint8_t *n, char *why,
                      size_t why_len)
{
    *n = 0;
    const char *p = text;
    const char *end = text + strlen(text);
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        if (*n >= SLO_MAX_ACTIONS) {
            snprintf(why, why_len, "has more than %d actions", SLO_MAX_ACTIONS);
            return -EINVAL;
        }
        if (parse_item(p, e, &out[*n], why, why_len) < 0)
            return -EINVAL;
        (*n)++;
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}
