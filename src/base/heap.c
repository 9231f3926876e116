/* src/base/heap.c -- the 4-ary array heap of heap.h.
 *
 * Entry i has its children at 4i+1 .. 4i+4 and its parent at (i-1)/4: a
 * removal sifts down about log4(n) levels, half the levels of a binary
 * heap, reading four adjacent keys at each. */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4
#define MIN_CAP 64

static inline int less(const struct corio__heap_entry *a,
                       const struct corio__heap_entry *b)
{
    return a->when < b->when ||
           (a->when == b->when && a->node->seq < b->node->seq);
}

static inline void put(struct corio__heap *h, size_t i,
                       struct corio__heap_entry e)
{
    h->v[i] = e;
    e.node->index = i;
}

static void sift_up(struct corio__heap *h, size_t i, struct corio__heap_entry e)
{
    while (i > 0) {
        size_t p = (i - 1) / ARITY;

        if (!less(&e, &h->v[p]))
            break;
        put(h, i, h->v[p]);
        i = p;
    }
    put(h, i, e);
}

static void sift_down(struct corio__heap *h, size_t i,
                      struct corio__heap_entry e)
{
    for (;;) {
        size_t c = i * ARITY + 1, end = c + ARITY, best;

        if (c >= h->count)
            break;
        if (end > h->count)
            end = h->count;
        best = c;
        for (c++; c < end; c++)
            if (less(&h->v[c], &h->v[best]))
                best = c;
        if (!less(&h->v[best], &e))
            break;
        put(h, i, h->v[best]);
        i = best;
    }
    put(h, i, e);
}

static int grow(struct corio__heap *h)
{
    size_t cap = h->cap ? h->cap * 2 : MIN_CAP;
    struct corio__heap_entry *v;

    if (cap > SIZE_MAX / sizeof(*v)) {
        errno = ENOMEM;
        return -1;
    }
    v = realloc(h->v, cap * sizeof(*v));
    if (v == NULL)
        return -1;
    h->v = v;
    h->cap = cap;
    return 0;
}

int corio__heap_insert(struct corio__heap *h, struct corio__heap_node *n)
{
    struct corio__heap_entry e = {n->when, n};

    if (h->count == h->cap && grow(h) == -1)
        return -1;
    n->seq = h->seq++;
    sift_up(h, h->count++, e);
    return 0;
}

void corio__heap_remove(struct corio__heap *h, struct corio__heap_node *n)
{
    size_t i = n->index;
    struct corio__heap_entry last = h->v[--h->count];

    if (i < h->count) {
        /* last takes n's place, then sifts whichever way it must */
        if (i > 0 && less(&last, &h->v[(i - 1) / ARITY]))
            sift_up(h, i, last);
        else
            sift_down(h, i, last);
    }
    /* Give memory back when a burst of timers is over. */
    if (h->cap > 4 * MIN_CAP && h->count < h->cap / 4) {
        struct corio__heap_entry *v = realloc(h->v, h->cap / 2 * sizeof(*v));

        if (v != NULL) {
            h->v = v;
            h->cap /= 2;
        }
    }
}

void corio__heap_free(struct corio__heap *h)
{
    free(h->v);
    corio__heap_init(h);
}
