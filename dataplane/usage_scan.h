/*
 * usage_scan — finds `"completion_tokens": N` in a JSON response body that
 * arrives in pieces of any size, without buffering the body: a non-streamed
 * completion is relayed as raw bytes, and the tokens it used are charged to
 * its tenant's budget (and counted) from its `usage` object once it ends.
 *
 * The key is matched only with both quotes unescaped, so the same text
 * inside a string value (where its quotes are escaped) never matches.  The
 * last complete match wins (usage follows the choices).  A number that
 * overflows 32 bits saturates.  The scanner never fails: bytes that are not
 * JSON simply match nothing.
 *
 * Plain data, no allocation; one per stream, owned by it.
 */
#ifndef SLUICE_USAGE_SCAN_H
#define SLUICE_USAGE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct usage_scan {
    uint8_t matched;            /* bytes of the key matched so far */
    uint8_t state;              /* private */
    bool escaped;               /* the previous byte was an unescaped backslash */
    bool just_closed;           /* the previous byte closed the key */
    bool found;                 /* a complete `"completion_tokens": N` was seen */
    uint32_t cur;               /* the number being read */
    uint32_t completion_tokens; /* the last one found */
};

void usage_scan_init(struct usage_scan *u);
void usage_scan_feed(struct usage_scan *u, const char *p, size_t len);
/* True, with the count in *n, when the body had one. */
bool usage_scan_result(const struct usage_scan *u, uint32_t *n);

#endif
