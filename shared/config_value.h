/*
 * config_value — the parsers of config values: sizes, durations, booleans,
 * addresses (resolved), backend URLs and SHA-256 hex, each explaining in
 * words what it expected.  Private to shared/config.c (the public entry
 * points are config_parse_* in config.h).  Locale-independent, pure apart
 * from name resolution (getaddrinfo: the supervisor and tools only).
 */
#ifndef SLUICE_CONFIG_VALUE_H
#define SLUICE_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/config.h"

bool cfgval_is_digit(char c);
bool cfgval_is_space(char c);
bool cfgval_is_alnum(char c);

/* Writes the reason for a refusal ("is not a size ...") when why != NULL. */
void cfgval_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Each returns 0, -EINVAL (not that syntax) or -ERANGE, with the reason in
 * <why>; *out is written only on success. */
int cfgval_digits(const char **sp, uint64_t *out);
int cfgval_size(const char *s, uint64_t *out, char *why, size_t why_len);
int cfgval_duration(const char *s, uint32_t *out, char *why, size_t why_len);
int cfgval_bool(const char *s, bool *out, char *why, size_t why_len);
int cfgval_addr(const char *s, struct config_addr *out, char *why, size_t why_len);
int cfgval_url(const char *s, struct config_backend *b, char *why, size_t why_len);
int cfgval_hex256(const char *s, uint8_t out[32], char *why, size_t why_len);

#endif
