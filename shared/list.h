/*
 * list — intrusive circular doubly linked list (the kernel's list_head).
 * Nodes live inside their owners; O(1) add/remove, no allocation.
 */
#ifndef SLUICE_LIST_H
#define SLUICE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *next;
    struct list_node *prev;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *h)
{
    h->next = h->prev = h;
}

static inline bool list_empty(const struct list_node *h)
{
    return h->next == h;
}

/* A node that is in no list points to itself (after list_init or list_del). */
static inline bool list_linked(const struct list_node *n)
{
    return n->next != n && n->next != NULL;
}

static inline void list_add_tail(struct list_node *h, struct list_node *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void list_add_head(struct list_node *h, struct list_node *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static inline void list_del(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

static inline struct list_node *list_pop_head(struct list_node *h)
{
    if (list_empty(h))
        return NULL;
    struct list_node *n = h->next;
    list_del(n);
    return n;
}

#endif
