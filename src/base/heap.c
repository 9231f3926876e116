/* src/base/heap.c -- the pointer-linked binary heap of heap.h.
 *
 * The tree is complete: node number k (1-based, in level order) is reached
 * from the root by the bits of k after the leading one, 0 = left, 1 = right.
 * That finds the last node (for removal) and the next free slot (for
 * insertion) in O(log n) without an array. */
#include "heap.h"

static int less(const struct corio__heap_node *a, const struct corio__heap_node *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Swap a child c with its parent p, keeping the shape of the tree. */
static void swap_up(struct corio__heap *h, struct corio__heap_node *p,
                    struct corio__heap_node *c)
{
    struct corio__heap_node *sibling, *l = p->left, *r = p->right,
                            *up = p->parent;

    /* Exchange the links only: the keys stay with their nodes. */
    p->left = c->left;
    p->right = c->right;
    p->parent = c->parent;
    c->left = l;
    c->right = r;
    c->parent = up;
    /* c took p's place (one of its child links still points at c itself):
     * p becomes that child. */
    p->parent = c;
    if (c->left == c) {
        c->left = p;
        sibling = c->right;
    } else {
        c->right = p;
        sibling = c->left;
    }
    if (sibling != NULL)
        sibling->parent = c;
    if (p->left != NULL)
        p->left->parent = p;
    if (p->right != NULL)
        p->right->parent = p;
    if (c->parent == NULL)
        h->min = c;
    else if (c->parent->left == p)
        c->parent->left = c;
    else
        c->parent->right = c;
}

/* The link that holds (or would hold) node number k. */
static struct corio__heap_node **path_to(struct corio__heap *h, size_t k,
                                         struct corio__heap_node **parent)
{
    struct corio__heap_node **link = &h->min;
    int bits = 0;

    *parent = NULL;
    for (size_t t = k; t > 1; t >>= 1)
        bits++;
    while (bits-- > 0) {
        *parent = *link;
        link = (k >> bits) & 1 ? &(*link)->right : &(*link)->left;
    }
    return link;
}

void corio__heap_insert(struct corio__heap *h, struct corio__heap_node *n)
{
    struct corio__heap_node *parent, **link;

    n->left = n->right = NULL;
    n->seq = h->seq++;
    link = path_to(h, h->count + 1, &parent);
    n->parent = parent;
    *link = n;
    h->count++;
    while (n->parent != NULL && less(n, n->parent))
        swap_up(h, n->parent, n);
}

void corio__heap_remove(struct corio__heap *h, struct corio__heap_node *n)
{
    struct corio__heap_node *last, *parent, **link, *child;

    link = path_to(h, h->count, &parent);
    last = *link;
    *link = NULL;
    h->count--;
    if (last == n)
        return;
    /* last takes n's place, then sifts up or down. */
    last->left = n->left;
    last->right = n->right;
    last->parent = n->parent;
    if (last->left != NULL)
        last->left->parent = last;
    if (last->right != NULL)
        last->right->parent = last;
    if (n->parent == NULL)
        h->min = last;
    else if (n->parent->left == n)
        n->parent->left = last;
    else
        n->parent->right = last;
    while (last->parent != NULL && less(last, last->parent))
        swap_up(h, last->parent, last);
    for (;;) {
        child = last->left;
        if (last->right != NULL && less(last->right, child))
            child = last->right;
        if (child == NULL || !less(child, last))
            break;
        swap_up(h, last, child);
    }
}
