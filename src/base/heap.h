/* src/base/heap.h -- intrusive 4-ary min-heap of timers. The heap is an
 * array of (key, node) entries: comparisons read the keys in the array, so
 * sifting touches one cache line per level and a node only when it moves
 * (to store its index). Nodes embed a struct corio__heap_node; insert and
 * remove are O(log n). The array grows by doubling (no allocation per
 * timer; insert fails with ENOMEM only when a doubling does). Ties on `when`
 * are broken by `seq`, so equal deadlines fire in the order they were
 * armed. */
#ifndef CORIO_BASE_HEAP_H
#define CORIO_BASE_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct corio__heap_node {
    int64_t when;   /* the key: an absolute time in nanoseconds */
    uint64_t seq;   /* arm order, breaks ties */
    size_t index;   /* its entry in the array */
};

struct corio__heap_entry {
    int64_t when;   /* a copy of node->when */
    struct corio__heap_node *node;
};

struct corio__heap {
    struct corio__heap_entry *v;
    size_t count, cap;
    uint64_t seq;
};

static inline void corio__heap_init(struct corio__heap *h)
{
    h->v = NULL;
    h->count = h->cap = 0;
    h->seq = 0;
}

static inline struct corio__heap_node *corio__heap_min(const struct corio__heap *h)
{
    return h->count > 0 ? h->v[0].node : NULL;
}

/* Insert n, keyed by n->when (set by the caller). Returns 0, or -1 with
 * errno ENOMEM (the array could not grow). */
int corio__heap_insert(struct corio__heap *h, struct corio__heap_node *n);

/* Remove n, which must be in h. */
void corio__heap_remove(struct corio__heap *h, struct corio__heap_node *n);

/* Release the array (the heap must be empty). */
void corio__heap_free(struct corio__heap *h);

#endif
