/*
 * resume_id — what a resume request says: the stream id in its path and
 * the position in its Last-Event-ID.
 *
 * A stream id is 16 lowercase hex digits: the worker number (2), the
 * worker instance's random salt (6) and a counter (8); the first 8 name
 * the worker that holds the stream (resume.c finds it by them).  An SSE
 * event's id is "<stream-id>:<seq>", seq counting from 1.
 *
 * Pure functions over outside bytes (fuzzed: tests/fuzz/fuzz_resume.c).
 */
#ifndef SLUICE_RESUME_ID_H
#define SLUICE_RESUME_ID_H

#include <stddef.h>
#include <stdint.h>

#define RESUME_ID_LEN    16
#define RESUME_OWNER_LEN 8

/* The id of "/v1/streams/<id>" (a trailing slash and a query string
 * allowed, nothing else) into id[], NUL-terminated.  0 or -EINVAL. */
int resume_id_from_path(const char *path, size_t len, char id[RESUME_ID_LEN + 1]);

/* Last-Event-ID "<id>:<seq>" (optional whitespace around it) of stream
 * <id>: *seq, 0 or more and less than UINT64_MAX.  0, or -EINVAL (another
 * stream's id, not a decimal number, out of range). */
int resume_id_last_event(const char *v, size_t len, const char *id, uint64_t *seq);

#endif
