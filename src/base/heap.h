/* src/base/heap.h -- intrusive binary min-heap of timers. Nodes embed a
 * struct corio__heap_node and are linked by pointers (no array, so inserting
 * never allocates); insert and remove are O(log n). Ties on `when` are
 * broken by `seq`, so equal deadlines fire in the order they were armed. */
#ifndef CORIO_BASE_HEAP_H
#define CORIO_BASE_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct corio__heap_node {
    struct corio__heap_node *left, *right, *parent;
    int64_t when;   /* the key: an absolute time in nanoseconds */
    uint64_t seq;   /* arm order, breaks ties */
};

struct corio__heap {
    struct corio__heap_node *min;
    size_t count;
    uint64_t seq;
};

static inline void corio__heap_init(struct corio__heap *h)
{
    h->min = NULL;
    h->count = 0;
    h->seq = 0;
}

static inline struct corio__heap_node *corio__heap_min(const struct corio__heap *h)
{
    return h->min;
}

/* Insert n, keyed by n->when (set by the caller). */
void corio__heap_insert(struct corio__heap *h, struct corio__heap_node *n);

/* Remove n, which must be in h. */
void corio__heap_remove(struct corio__heap *h, struct corio__heap_node *n);

#endif
