/*
 * json_scan — reads a few members out of one JSON object without building
 * it: the token path of a translated backend (an Ollama NDJSON line per
 * token) needs three or four values of each line and must not allocate.
 *
 * js_get() walks the object's members at its top level, skipping every
 * other value with full syntax checks (strings, escapes, UTF-8, numbers,
 * literals, nesting up to JS_MAX_DEPTH), and returns the raw span of the value whose
 * key matches.  Keys are compared as raw bytes: a key written with escapes
 * does not match (no backend writes its field names so).  A string's span
 * keeps its escapes, so it can be copied into other JSON as it is.
 *
 * Pure functions over caller-owned bytes; safe anywhere.
 */
#ifndef SLUICE_JSON_SCAN_H
#define SLUICE_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JS_MAX_DEPTH 64

/* A value's bytes: [p, end). */
struct js_span {
    const char *p;
    const char *end;
};

/* The end of the JSON value that starts at p (after any white space), or
 * NULL when it is not one. */
const char *js_skip(const char *p, const char *end);

/* Whether [p, end) is exactly one JSON value, white space around allowed. */
bool js_valid(const char *p, const char *end);

/* The value of member <key> of the object <obj>: 0, -ENOENT when it has no
 * such member, -EINVAL when <obj> is not a well-formed object. */
int js_get(struct js_span obj, const char *key, struct js_span *val);

/* A string value's inside, escapes kept: true when <v> is a string. */
bool js_str(struct js_span v, struct js_span *inside);
/* Whether <v> is the string <s> (raw bytes, no escapes in either). */
bool js_str_eq(struct js_span v, const char *s);
/* A non-negative integer (saturating at UINT64_MAX): true when <v> is one. */
bool js_u64(struct js_span v, uint64_t *out);
bool js_is_true(struct js_span v);
/* True for an array or object with no elements. */
bool js_empty(struct js_span v);

#endif
