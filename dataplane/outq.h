/*
 * outq — the bytes a client has yet to receive, as a chain of pool slabs.
 *
 * Writers append at the tail; only committed bytes may be sent, so a relay
 * can assemble an event in place (header reserved first, body copied as it
 * arrives, header patched at the end) and release it to the socket whole.
 * The assembly area can be kept contiguous (outq_extend_contig), moving the
 * partial bytes to a fresh slab at most once per slab-size of event, so the
 * finished event can be scanned as one span.
 *
 * The sender takes one contiguous committed span at a time from the head
 * and reports what the kernel took; slabs fully sent go back to the pool at
 * once, so an idle stream holds no slab at all.
 *
 * Every operation is O(1) per slab touched and allocates nothing; when the
 * pool runs dry a write fails with -ENOBUFS and leaves the queue unchanged.
 * Owned by one connection (HTTP/1.1) or stream (later protocols).
 */
#ifndef SLUICE_OUTQ_H
#define SLUICE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/bufpool.h"

struct outq {
    uint32_t head;      /* first slab, SLAB_NONE when empty */
    uint32_t tail;      /* last slab */
    uint32_t head_off;  /* bytes of the head slab already sent */
    uint32_t nslabs;    /* slabs in the chain */
    uint64_t written;   /* bytes ever written (positions in the stream) */
    uint64_t committed; /* of which committed */
    uint64_t sent;      /* of which taken by the kernel */
    bool marked;        /* a mark is open: keep the tail slab it points into */
};

/* A position in the queue (for an event being assembled). */
struct outq_mark {
    uint32_t slab;
    uint32_t off;
};

void outq_init(struct outq *q);

/* Appends len bytes (may span slabs) without committing.  0 or -ENOBUFS. */
int outq_write(struct outq *q, struct bufpool *p, const void *data, size_t len);

/* Commits everything written so far. */
void outq_commit(struct outq *q);

/* Where the next written byte will go (starts a slab if needed).  The mark
 * stays valid across sends until the next commit or truncate.
 * 0 or -ENOBUFS. */
int outq_mark(struct outq *q, struct bufpool *p, struct outq_mark *m);

/*
 * Makes room for <n> more bytes right after the bytes written since <m>, all
 * contiguous in one slab, moving those bytes to a new slab if they do not fit
 * in the current one.  Returns a pointer where the n bytes go (the caller
 * writes them and then calls outq_advance(q, p, n)) or NULL: -ENOBUFS (pool
 * empty) or -E2BIG (more than one slab) in *err.  <m> is updated if moved.
 */
char *outq_extend_contig(struct outq *q, struct bufpool *p, struct outq_mark *m, size_t n,
                         int *err);
void outq_advance(struct outq *q, struct bufpool *p, size_t n);

/* Pointer to the byte at <m> (valid until the next queue operation). */
char *outq_mark_ptr(const struct outq *q, const struct bufpool *p, const struct outq_mark *m);

/* Bytes written since <m> (all in m->slab if built by outq_extend_contig). */
uint32_t outq_since(const struct outq *q, const struct bufpool *p, const struct outq_mark *m);

/* Forgets everything written since <m> (an event that will not be relayed). */
void outq_truncate(struct outq *q, struct bufpool *p, const struct outq_mark *m);

/* The next committed span to send: 0 bytes when nothing is committed.
 * *slab is its slab (for zero-copy reference counting). */
size_t outq_span(const struct outq *q, const struct bufpool *p, const char **ptr, uint32_t *slab);

/* Copies up to <max> committed bytes from the front into <dst> without
 * taking them (a protocol layer reading a response head); returns how
 * many. */
size_t outq_peek(const struct outq *q, const struct bufpool *p, char *dst, size_t max);

/* The kernel took <n> bytes from the front. */
void outq_consume(struct outq *q, struct bufpool *p, size_t n);

/* Committed bytes not yet sent. */
static inline uint64_t outq_committed(const struct outq *q)
{
    return q->committed - q->sent;
}

/* All bytes not yet sent, committed or not. */
static inline uint64_t outq_pending(const struct outq *q)
{
    return q->written - q->sent;
}

/* Releases every slab. */
void outq_reset(struct outq *q, struct bufpool *p);

#endif
