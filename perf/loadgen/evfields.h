/*
 * evfields — reads the fields of one complete SSE event that llmload needs
 * beyond what sse_event_scan() says: the event type (`event: error`), the
 * `id`, and where the data is; and gets the token string out of the data of
 * an OpenAI chunk for --verify.
 *
 * Zero-copy: results point into the caller's event bytes.  Field parsing
 * follows WHATWG HTML §9.2.6 (lines end with CRLF, LF or CR; one space after
 * the colon is dropped; a line without a colon is a field with an empty
 * value; lines starting with a colon are comments).  Pure functions.
 */
#ifndef LLMLOAD_EVFIELDS_H
#define LLMLOAD_EVFIELDS_H

#include <stdbool.h>
#include <stddef.h>

struct evfields {
    const char *event; /* value of the last `event` field, NULL if none */
    const char *id;    /* value of the last `id` field, NULL if none */
    const char *data;  /* value of the first `data` field, NULL if none */
    size_t event_len;
    size_t id_len;
    size_t data_len;
    unsigned data_lines; /* number of `data` fields */
};

void evfields_parse(const char *ev, size_t len, struct evfields *f);

/* True when the event type is `error`. */
bool evfields_is_error(const struct evfields *f);

/*
 * The data of the event as the SSE spec defines it (the data fields joined by
 * LF): with one data field, that field in place; with several, joined into
 * buf[0..cap).  Returns the length and sets *out, or returns 0 with *out NULL
 * when there is no data or it does not fit.
 */
size_t evfields_data(const char *ev, size_t len, const struct evfields *f, char *buf, size_t cap,
                     const char **out);

/*
 * Finds the JSON string value of the first member named <key> (e.g.
 * "content") in <json> and decodes it (escapes, \u with surrogate pairs, as
 * UTF-8) into out[0..cap).  It is a scan, not a parser: it matches the member
 * name followed by optional whitespace, a colon and a string.  Returns the
 * decoded length, or -1 when there is no such member, -2 when the string is
 * malformed or longer than <cap>.
 */
long evfields_json_string(const char *json, size_t len, const char *key, char *out, size_t cap);

#endif
