/* rollout — see rollout.h. */
#include "shared/rollout.h"

#include <errno.h>
#include <string.h>

static const char *const names[FEAT_COUNT] = {
    "adaptive_governor", "http2_transport", "ttft_pipeline", "qos_monitoring", "stream_resume",
};

const char *rollout_name(enum rollout_feature f)
{
    return (unsigned)f < FEAT_COUNT ? names[f] : NULL;
}

int rollout_parse(const char *name, enum rollout_feature *out)
{
    for (unsigned i = 0; i < FEAT_COUNT; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum rollout_feature)i;
            return 0;
        }
    }
    return -ENOENT;
}

int rollout_parse_percent(const char *s, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 3)
            return n >= 3 && s[n] >= '0' && s[n] <= '9' ? -ERANGE : -EINVAL;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    if (n == 0)
        return -EINVAL;
    if (v > 100)
        return -ERANGE;
    *out = v;
    return 0;
}

/* FNV-1a then the splitmix64 finaliser: FNV alone leaves the low bits of
 * short keys poorly mixed, and the bucket comes from them. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

unsigned rollout_bucket(enum rollout_feature f, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *name = rollout_name(f);
    for (const char *p = name ? name : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator: "ab"+"c" and "a"+"bc" differ */
    h *= 0x100000001b3ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return (unsigned)(mix(h) % 100);
}
