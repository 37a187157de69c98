/*
 * event_log — the events of one resumable stream, retained so that a client
 * that dropped can be sent again what it may have missed.
 *
 * A byte ring of records, each one SSE event exactly as it goes on the wire
 * (its `id:` line included, no transport framing), numbered by consecutive
 * sequence numbers (the number in the event's id).  Records are appended at
 * the tail and evicted whole from the head; positions are absolute byte
 * offsets that never wrap, so a reader's position stays valid while older
 * records are evicted in front of it.  The buffer grows on request (never by
 * itself: the caller decides what memory the log may have).
 *
 * Pure mechanism, no policy; single-threaded; owns its buffer.
 */
#ifndef SLUICE_EVENT_LOG_H
#define SLUICE_EVENT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELOG_REC_HDR 4u /* a record's length, before its bytes */

struct elog {
    char *buf;
    uint32_t cap;
    uint64_t head;      /* position of the oldest record */
    uint64_t tail;      /* position after the newest */
    uint64_t first_seq; /* sequence number of the record at head */
    uint64_t next_seq;  /* sequence number the next record gets */
};

/* An empty log whose first record will be number <first_seq>; no memory. */
void elog_init(struct elog *l, uint64_t first_seq);
void elog_free(struct elog *l);

static inline uint64_t elog_used(const struct elog *l)
{
    return l->tail - l->head;
}

/* Bytes a record of <n> bytes takes. */
static inline uint64_t elog_rec_size(size_t n)
{
    return (uint64_t)n + ELOG_REC_HDR;
}

/* Whether a record of <n> bytes fits without evicting or growing. */
static inline bool elog_fits(const struct elog *l, size_t n)
{
    return elog_used(l) + elog_rec_size(n) <= l->cap;
}

/* Grows the buffer to <cap> bytes (no-op if not larger).  0 or -ENOMEM. */
int elog_grow(struct elog *l, uint32_t cap);

/* Shrinks the buffer to what the records use (none: no buffer), for a log
 * that will not grow again.  0 or -ENOMEM (the log is unchanged). */
int elog_trim(struct elog *l);

/* Appends a record (elog_fits must hold); it gets number next_seq. */
void elog_push(struct elog *l, const char *p, size_t n);

/* Drops the oldest record; false when the log is empty. */
bool elog_evict(struct elog *l);

/* Drops every record and skips the numbers up to <next_seq>: what came
 * before can no longer be replayed. */
void elog_reset(struct elog *l, uint64_t next_seq);

/* Position of record <seq> (next_seq gives tail: "nothing after").
 * 0, or -ENOENT when it was evicted (seq < first_seq) or never existed. */
int elog_find(const struct elog *l, uint64_t seq, uint64_t *pos);

/* The record at <pos> (a position elog_find gave, or one a record before
 * it ended at): its bytes as one or two spans (the ring may wrap inside
 * it; *n2 = 0 when it does not).  Returns the position after it. */
uint64_t elog_read(const struct elog *l, uint64_t pos, const char **p1, size_t *n1, const char **p2,
                   size_t *n2);

#endif
