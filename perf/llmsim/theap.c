/*
 * theap — intrusive binary min-heap of timers (see theap.h).
 */
#include "perf/llmsim/theap.h"

#include <errno.h>
#include <stdlib.h>

void theap_init(struct theap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void theap_fini(struct theap *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        h->v[i]->idx = THEAP_NONE;
    free(h->v);
    theap_init(h);
}

int theap_reserve(struct theap *h, uint32_t n)
{
    if (n <= h->cap)
        return 0;
    uint32_t ncap = h->cap ? h->cap : 1024;
    while (ncap < n)
        ncap *= 2;
    struct theap_node **nv = realloc(h->v, (size_t)ncap * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    h->v = nv;
    h->cap = ncap;
    return 0;
}

static void place(struct theap *h, uint32_t i, struct theap_node *t)
{
    h->v[i] = t;
    t->idx = i;
}

static void sift_up(struct theap *h, uint32_t i)
{
    struct theap_node *t = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->v[parent]->due <= t->due)
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(struct theap *h, uint32_t i)
{
    struct theap_node *t = h->v[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->v[child + 1]->due < h->v[child]->due)
            child++;
        if (t->due <= h->v[child]->due)
            break;
        place(h, i, h->v[child]);
        i = child;
    }
    place(h, i, t);
}

void theap_set(struct theap *h, struct theap_node *t, uint64_t due)
{
    if (theap_armed(t)) {
        uint64_t old = t->due;
        t->due = due;
        if (due < old)
            sift_up(h, t->idx);
        else
            sift_down(h, t->idx);
        return;
    }
    t->due = due;
    place(h, h->n++, t);
    sift_up(h, t->idx);
}

void theap_cancel(struct theap *h, struct theap_node *t)
{
    if (!theap_armed(t))
        return;
    uint32_t i = t->idx;
    t->idx = THEAP_NONE;
    h->n--;
    if (i == h->n)
        return;
    struct theap_node *last = h->v[h->n];
    place(h, i, last);
    if (i > 0 && h->v[(i - 1) / 2]->due > last->due)
        sift_up(h, i);
    else
        sift_down(h, i);
}
