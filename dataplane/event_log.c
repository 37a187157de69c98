/* event_log — see event_log.h. */
#include "dataplane/event_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void elog_init(struct elog *l, uint64_t first_seq)
{
    memset(l, 0, sizeof *l);
    l->first_seq = first_seq;
    l->next_seq = first_seq;
}

void elog_free(struct elog *l)
{
    free(l->buf);
    l->buf = NULL;
    l->cap = 0;
    l->head = l->tail;
}

/* Copies n bytes into / out of a ring (buf, cap) at absolute position
 * <pos>, in at most two spans. */
static void ring_put(char *buf, uint32_t cap, uint64_t pos, const char *p, size_t n)
{
    size_t off = (size_t)(pos % cap);
    size_t first = cap - off < n ? cap - off : n;
    memcpy(buf + off, p, first);
    memcpy(buf, p + first, n - first);
}

static void ring_get(const char *buf, uint32_t cap, uint64_t pos, char *p, size_t n)
{
    size_t off = (size_t)(pos % cap);
    size_t first = cap - off < n ? cap - off : n;
    memcpy(p, buf + off, first);
    memcpy(p + first, buf, n - first);
}

static uint32_t rec_len(const struct elog *l, uint64_t pos)
{
    uint32_t n;
    ring_get(l->buf, l->cap, pos, (char *)&n, sizeof n);
    return n;
}

/* A new buffer of <cap> bytes (at least what is used) with the same records
 * at the same positions. */
static int resize(struct elog *l, uint32_t cap)
{
    char *nb = malloc(cap);
    if (!nb)
        return -ENOMEM;
    /* Positions are absolute: every live byte moves to its place modulo the
     * new size, span by span (at most two spans of the old ring). */
    uint64_t used = elog_used(l);
    if (used) {
        size_t off = (size_t)(l->head % l->cap);
        size_t first = l->cap - off < used ? l->cap - off : (size_t)used;
        ring_put(nb, cap, l->head, l->buf + off, first);
        ring_put(nb, cap, l->head + first, l->buf, (size_t)used - first);
    }
    free(l->buf);
    l->buf = nb;
    l->cap = cap;
    return 0;
}

int elog_grow(struct elog *l, uint32_t cap)
{
    return cap <= l->cap ? 0 : resize(l, cap);
}

int elog_trim(struct elog *l)
{
    uint64_t used = elog_used(l);
    if (used == l->cap)
        return 0;
    if (!used) {
        free(l->buf);
        l->buf = NULL;
        l->cap = 0;
        return 0;
    }
    return resize(l, (uint32_t)used);
}

void elog_push(struct elog *l, const char *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    ring_put(l->buf, l->cap, l->tail, (const char *)&len, sizeof len);
    ring_put(l->buf, l->cap, l->tail + ELOG_REC_HDR, p, n);
    l->tail += elog_rec_size(n);
    l->next_seq++;
}

bool elog_evict(struct elog *l)
{
    if (l->head == l->tail)
        return false;
    l->head += elog_rec_size(rec_len(l, l->head));
    l->first_seq++;
    return true;
}

void elog_reset(struct elog *l, uint64_t next_seq)
{
    l->head = l->tail;
    l->first_seq = next_seq;
    l->next_seq = next_seq;
}

int elog_find(const struct elog *l, uint64_t seq, uint64_t *pos)
{
    if (seq < l->first_seq || seq > l->next_seq)
        return -ENOENT;
    uint64_t p = l->head;
    for (uint64_t s = l->first_seq; s < seq; s++)
        p += elog_rec_size(rec_len(l, p));
    *pos = p;
    return 0;
}

uint64_t elog_read(const struct elog *l, uint64_t pos, const char **p1, size_t *n1, const char **p2,
                   size_t *n2)
{
    uint32_t len = rec_len(l, pos);
    size_t off = (size_t)((pos + ELOG_REC_HDR) % l->cap);
    size_t first = l->cap - off < len ? l->cap - off : len;
    *p1 = l->buf + off;
    *n1 = first;
    *p2 = l->buf;
    *n2 = len - first;
    return pos + elog_rec_size(len);
}
