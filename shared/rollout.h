/*
 * rollout — the features under gradual rollout and the rule that puts a
 * request in or out of each.
 *
 * A request is in feature F at P percent when bucket(F, key) < P, where key
 * is the client's X-Session-Id when it sends one, else its tenant and
 * request id, and bucket() is a fixed hash of both into 0..99.  The hash is
 * the same in every process, on every node and across restarts, so a user's
 * experience does not flicker; raising P only ever adds users, and each
 * feature buckets independently (the same users are not the first to get
 * every new feature).
 *
 * Pure functions and constant tables; used by the workers (decisions), the
 * control plane (state, CLI) and sluicectl (names).
 */
#ifndef SLUICE_ROLLOUT_H
#define SLUICE_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rollout_feature {
    FEAT_ADAPTIVE_GOVERNOR = 0,
    FEAT_HTTP2_TRANSPORT,
    FEAT_TTFT_PIPELINE,
    FEAT_QOS_MONITORING,
    FEAT_STREAM_RESUME,
    FEAT_COUNT,
};

/* "adaptive_governor", ...; NULL for an out-of-range value. */
const char *rollout_name(enum rollout_feature f);
/* The feature called <name>, or -ENOENT. */
int rollout_parse(const char *name, enum rollout_feature *out);
/* "0".."100" (no sign, no spaces, no fraction), or -EINVAL / -ERANGE. */
int rollout_parse_percent(const char *s, unsigned *out);

/* 0..99: where <key> falls for feature <f>. */
unsigned rollout_bucket(enum rollout_feature f, const char *key, size_t len);

static inline bool rollout_in(unsigned percent, unsigned bucket)
{
    return bucket < percent;
}

#endif
