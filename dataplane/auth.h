/*
 * auth — maps `Authorization: Bearer <key>` to a tenant.
 *
 * With [auth] enabled, every request must carry a key whose SHA-256
 * (wolfSSL) equals some tenant's key_sha256; the config never holds a key
 * itself.  Every tenant's hash is compared in constant time and all of them
 * are compared, so the time taken says nothing about which bytes matched.
 * Without [auth] every request is tenant "default".  Pure functions.
 */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/config.h"

#define AUTH_DEFAULT_TENANT "default"

/* The tenant for an Authorization field value (NULL when absent): its name,
 * or NULL when auth is enabled and the key is missing or unknown. */
const char *auth_tenant(const struct config *cfg, const char *authz, size_t len);

/* Whether tenant <name> (a name auth_tenant gave) is a priority tenant. */
bool auth_priority(const struct config *cfg, const char *name);

#endif
