/* src/base/list.h -- intrusive circular doubly-linked list. Objects embed a
 * struct corio__list node; nothing here allocates. A list head is a node
 * whose next/prev point at itself when empty. */
#ifndef CORIO_BASE_LIST_H
#define CORIO_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct corio__list {
    struct corio__list *next, *prev;
};

#define CORIO_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void corio__list_init(struct corio__list *l)
{
    l->next = l->prev = l;
}

static inline bool corio__list_empty(const struct corio__list *l)
{
    return l->next == l;
}

/* A node that was initialised or removed with corio__list_remove is
 * unlinked: both pointers at itself. */
static inline bool corio__list_linked(const struct corio__list *n)
{
    return n->next != n;
}

static inline void corio__list_push_back(struct corio__list *l,
                                         struct corio__list *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void corio__list_push_front(struct corio__list *l,
                                          struct corio__list *n)
{
    n->next = l->next;
    n->prev = l;
    l->next->prev = n;
    l->next = n;
}

static inline void corio__list_remove(struct corio__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

static inline struct corio__list *corio__list_pop_front(struct corio__list *l)
{
    struct corio__list *n = l->next;

    if (n == l)
        return NULL;
    corio__list_remove(n);
    return n;
}

/* Move every node of from to the back of to; from becomes empty. */
static inline void corio__list_splice(struct corio__list *to,
                                      struct corio__list *from)
{
    if (corio__list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    corio__list_init(from);
}

#endif
