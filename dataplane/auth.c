/* auth — see auth.h. */
#include "dataplane/auth.h"

#include <stdint.h>
#include <strings.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

const char *auth_tenant(const struct config *cfg, const char *authz, size_t len)
{
    if (!cfg->auth_enabled)
        return AUTH_DEFAULT_TENANT;
    if (!authz || len <= 7 || strncasecmp(authz, "Bearer ", 7) != 0)
        return NULL;
    const char *key = authz + 7;
    size_t klen = len - 7;
    while (klen && *key == ' ') {
        key++;
        klen--;
    }
    if (!klen || klen > 4096)
        return NULL;
    uint8_t h[32];
    if (wc_Sha256Hash((const unsigned char *)key, (unsigned)klen, h) != 0)
        return NULL;
    const char *found = NULL;
    for (unsigned i = 0; i < cfg->n_tenants; i++) {
        const struct config_tenant *t = &cfg->tenants[i];
        unsigned diff = !t->has_key;
        for (unsigned k = 0; k < 32; k++)
            diff |= (unsigned)(t->key_sha256[k] ^ h[k]);
        /* no early exit: every tenant is compared */
        if (!diff && !found)
            found = t->name;
    }
    return found;
}

bool auth_priority(const struct config *cfg, const char *name)
{
    for (unsigned i = 0; name && i < cfg->n_tenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return cfg->tenants[i].priority;
    return false;
}
