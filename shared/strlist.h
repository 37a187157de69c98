/*
 * strlist — the items of a comma-separated list in the config ("a, b,c"):
 * each one trimmed of spaces and tabs, empty ones skipped.  Pure.
 */
#ifndef SLUICE_STRLIST_H
#define SLUICE_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

/* The next item at *p: *item and *len, and *p moved past it.  False when
 * there is none left. */
bool strlist_next(const char **p, const char **item, size_t *len);

/* Whether the list holds exactly <s> (s_len bytes). */
bool strlist_has(const char *list, const char *s, size_t s_len);

#endif
