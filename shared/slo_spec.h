/*
 * slo_spec — the words of a QoS policy ([slo NAME] in the config): the
 * metrics a service level is stated on, severities, and the remediation
 * actions with their arguments and cooldowns.  The config loader parses
 * policies with it (so `sluice --check-config` reports a bad action with its
 * line); the control plane's evaluator and executor act on the result.
 *
 * Pure functions; safe anywhere.
 */
#ifndef SLUICE_SLO_SPEC_H
#define SLUICE_SLO_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum slo_metric {
    SLO_TTFT_P50 = 0, /* ms, time to first token */
    SLO_TTFT_P95,
    SLO_TTFT_P99,
    SLO_ITL_P99,            /* ms, gap between tokens (jitter); node-wide */
    SLO_ERROR_RATE,         /* fraction of ended requests that failed (5xx, backend errors) */
    SLO_REJECT_RATE,        /* fraction of requests refused (429, 503 at admission) */
    SLO_DISCONNECT_RATE,    /* fraction of streams the client left early */
    SLO_SLOW_CONSUMER_RATE, /* fraction of streams cut because the client did not read */
    SLO_QUEUE_DEPTH,        /* requests waiting for admission on the node (peak) */
    SLO_METRIC_COUNT,
};

enum slo_severity {
    SLO_INFO = 0,
    SLO_WARNING,
    SLO_CRITICAL,
    SLO_SEVERITY_COUNT,
};

enum slo_action_kind {
    ACT_LOWER_LIMIT = 0,   /* the node's admission limit down by PERCENT */
    ACT_THROTTLE_TENANT,   /* the tenant at fault: its concurrent streams halved */
    ACT_DISABLE_FEATURE,   /* FEATURE's rollout to 0 % */
    ACT_PROTOCOL_FALLBACK, /* http2_transport to 0 %: new connections speak HTTP/1.1 */
    ACT_SHED_LOAD,         /* PERCENT of new requests refused (503) */
    ACT_ALERT,             /* a log line and the webhook */
    ACT_SAFE_MODE,         /* every feature to 0 % */
    ACT_COUNT,
};

#define SLO_MAX_ACTIONS 8

struct slo_action {
    uint8_t kind;         /* enum slo_action_kind */
    uint8_t feature;      /* ACT_DISABLE_FEATURE: enum rollout_feature */
    uint8_t pct;          /* ACT_LOWER_LIMIT, ACT_SHED_LOAD: 1..99 */
    uint32_t cooldown_ms; /* wait after it before the next; 0 = the policy's cooldown */
};

const char *slo_metric_name(unsigned m);
const char *slo_severity_name(unsigned s);
const char *slo_action_name(unsigned a);
/* Metrics in milliseconds (thresholds in ms) rather than fractions/counts. */
bool slo_metric_is_latency(unsigned m);

/* The names, for the config's enum keys. */
const char *const *slo_metric_names(size_t *n);
const char *const *slo_severity_names(size_t *n);

/*
 * Parses an action list: comma-separated items `NAME [ARG] [cooldown
 * DURATION]`, e.g. "lower_limit 25, throttle_tenant cooldown 1m, alert".
 * lower_limit and shed_load take a percentage (1..99, '%' allowed),
 * disable_feature a rollout feature name; the others nothing.  0, or
 * -EINVAL with the reason in <why>.
 */
int slo_actions_parse(const char *text, struct slo_action *out, uint8_t *n, char *why,
                      size_t why_len);

#endif
