/* outq — see outq.h.  Positions are kept as running byte totals (written,
 * committed, sent), so the commit point needs no slab bookkeeping: a span
 * is bounded by the head slab's fill and by committed - sent. */
#include "dataplane/outq.h"

#include <errno.h>
#include <string.h>

void outq_init(struct outq *q)
{
    memset(q, 0, sizeof *q);
    q->head = q->tail = SLAB_NONE;
}

static uint32_t tail_room(const struct outq *q, const struct bufpool *p)
{
    return q->tail == SLAB_NONE ? 0 : p->slab_size - p->meta[q->tail].fill;
}

static void link_slab(struct outq *q, struct bufpool *p, uint32_t s)
{
    if (q->tail == SLAB_NONE) {
        q->head = s;
        q->head_off = 0;
    } else {
        p->meta[q->tail].next = s;
    }
    q->tail = s;
    q->nslabs++;
}

/* Frees leading slabs that hold nothing left to send.  Safe while a send is
 * in flight: such a send only covers bytes at or after head_off. */
static void settle(struct outq *q, struct bufpool *p)
{
    while (q->head != SLAB_NONE && q->head_off == p->meta[q->head].fill) {
        uint32_t s = q->head;
        if (s == q->tail) {
            if (q->written != q->sent || q->marked)
                return; /* the tail slab still has bytes or an open mark */
            bufpool_put(p, s);
            q->head = q->tail = SLAB_NONE;
            q->head_off = 0;
            q->nslabs = 0;
            return;
        }
        q->head = p->meta[s].next;
        q->head_off = 0;
        q->nslabs--;
        bufpool_put(p, s);
    }
}

int outq_write(struct outq *q, struct bufpool *p, const void *data, size_t len)
{
    uint32_t room = tail_room(q, p);
    if (len > room) {
        size_t need = (len - room + p->slab_size - 1) / p->slab_size;
        if (need > p->nfree)
            return -ENOBUFS;
    }
    const char *src = data;
    size_t left = len;
    while (left) {
        if (tail_room(q, p) == 0)
            link_slab(q, p, bufpool_get(p));
        struct slab_meta *m = &p->meta[q->tail];
        size_t n = p->slab_size - m->fill;
        if (n > left)
            n = left;
        memcpy(bufpool_ptr(p, q->tail) + m->fill, src, n);
        m->fill += (uint32_t)n;
        src += n;
        left -= n;
    }
    q->written += len;
    return 0;
}

void outq_commit(struct outq *q)
{
    q->committed = q->written;
    q->marked = false;
}

int outq_mark(struct outq *q, struct bufpool *p, struct outq_mark *m)
{
    if (tail_room(q, p) == 0) {
        uint32_t s = bufpool_get(p);
        if (s == SLAB_NONE)
            return -ENOBUFS;
        link_slab(q, p, s);
    }
    m->slab = q->tail;
    m->off = p->meta[q->tail].fill;
    q->marked = true;
    return 0;
}

char *outq_mark_ptr(const struct outq *q, const struct bufpool *p, const struct outq_mark *m)
{
    (void)q;
    return bufpool_ptr(p, m->slab) + m->off;
}

uint32_t outq_since(const struct outq *q, const struct bufpool *p, const struct outq_mark *m)
{
    uint32_t n = p->meta[m->slab].fill - m->off;
    for (uint32_t s = p->meta[m->slab].next; s != SLAB_NONE && m->slab != q->tail;
         s = p->meta[s].next)
        n += p->meta[s].fill;
    return n;
}

char *outq_extend_contig(struct outq *q, struct bufpool *p, struct outq_mark *m, size_t n, int *err)
{
    uint32_t since = p->meta[m->slab].fill - m->off;
    if ((size_t)m->off + since + n <= p->slab_size)
        return bufpool_ptr(p, m->slab) + m->off + since;
    if ((size_t)since + n > p->slab_size) {
        *err = -E2BIG;
        return NULL;
    }
    uint32_t s = bufpool_get(p);
    if (s == SLAB_NONE) {
        *err = -ENOBUFS;
        return NULL;
    }
    uint32_t old = m->slab;
    memcpy(bufpool_ptr(p, s), bufpool_ptr(p, old) + m->off, since);
    p->meta[s].fill = since;
    p->meta[old].fill = m->off;
    link_slab(q, p, s);
    m->slab = s;
    m->off = 0;
    settle(q, p);
    return bufpool_ptr(p, s) + since;
}

void outq_advance(struct outq *q, struct bufpool *p, size_t n)
{
    p->meta[q->tail].fill += (uint32_t)n;
    q->written += n;
}

void outq_truncate(struct outq *q, struct bufpool *p, const struct outq_mark *m)
{
    uint64_t removed = p->meta[m->slab].fill - m->off;
    uint32_t s = p->meta[m->slab].next;
    while (s != SLAB_NONE) {
        uint32_t next = p->meta[s].next;
        removed += p->meta[s].fill;
        bufpool_put(p, s);
        q->nslabs--;
        s = next;
    }
    p->meta[m->slab].next = SLAB_NONE;
    p->meta[m->slab].fill = m->off;
    q->tail = m->slab;
    q->written -= removed;
    if (q->committed > q->written)
        q->committed = q->written;
    q->marked = false;
    settle(q, p);
}

size_t outq_span(const struct outq *q, const struct bufpool *p, const char **ptr, uint32_t *slab)
{
    uint64_t avail = q->committed - q->sent;
    if (!avail || q->head == SLAB_NONE)
        return 0;
    uint32_t s = q->head;
    uint32_t off = q->head_off;
    while (off == p->meta[s].fill && s != q->tail) {
        s = p->meta[s].next;
        off = 0;
    }
    size_t n = p->meta[s].fill - off;
    if (n > avail)
        n = (size_t)avail;
    *ptr = bufpool_ptr(p, s) + off;
    *slab = s;
    return n;
}

size_t outq_peek(const struct outq *q, const struct bufpool *p, char *dst, size_t max)
{
    uint64_t avail = q->committed - q->sent;
    size_t got = 0;
    uint32_t s = q->head;
    uint32_t off = q->head_off;
    if (avail < max)
        max = (size_t)avail;
    while (got < max && s != SLAB_NONE) {
        size_t n = p->meta[s].fill - off;
        if (n > max - got)
            n = max - got;
        memcpy(dst + got, bufpool_ptr(p, s) + off, n);
        got += n;
        if (s == q->tail)
            break;
        s = p->meta[s].next;
        off = 0;
    }
    return got;
}

void outq_consume(struct outq *q, struct bufpool *p, size_t n)
{
    q->sent += n;
    while (n) {
        struct slab_meta *m = &p->meta[q->head];
        if (q->head_off == m->fill) {
            /* an emptied slab left before the span (see outq_extend_contig) */
            uint32_t s = q->head;
            q->head = m->next;
            q->head_off = 0;
            q->nslabs--;
            bufpool_put(p, s);
            continue;
        }
        size_t take = m->fill - q->head_off;
        if (take > n)
            take = n;
        q->head_off += (uint32_t)take;
        n -= take;
    }
    settle(q, p);
}

void outq_reset(struct outq *q, struct bufpool *p)
{
    uint32_t s = q->head;
    while (s != SLAB_NONE) {
        uint32_t next = p->meta[s].next;
        bufpool_put(p, s);
        s = next;
    }
    outq_init(q);
}
