/* src/dist/manager_store.c -- the manager's state (manager_int.h): queues
 * by name, tasks by id, map entries by map and key, in chained hash tables
 * of intrusive nodes that double as they fill. Data only: the requests and
 * the waiting are manager.c's. */
#include "manager_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Hash tables --------------------------------------------------------- */

/* FNV-1a, then a final mix so that low bits spread. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    return id ^ (id >> 33);
}

static int htab_grow(struct corio__htab *t)
{
    size_t cap = t->cap > 0 ? t->cap * 2 : 64;
    struct corio__hnode **slots = calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        struct corio__hnode *n = t->slots[i];

        while (n != NULL) {
            struct corio__hnode *next = n->next;

            n->next = slots[n->hash & (cap - 1)];
            slots[n->hash & (cap - 1)] = n;
            n = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

static int htab_add(struct corio__htab *t, struct corio__hnode *n,
                    uint64_t hash)
{
    if (t->count >= t->cap && htab_grow(t) == -1)
        return -1;
    n->hash = hash;
    n->next = t->slots[hash & (t->cap - 1)];
    t->slots[hash & (t->cap - 1)] = n;
    t->count++;
    return 0;
}

static void htab_del(struct corio__htab *t, struct corio__hnode *n)
{
    struct corio__hnode **pp = &t->slots[n->hash & (t->cap - 1)];

    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    t->count--;
}

/* The chain a hash falls in (NULL when empty). */
static struct corio__hnode *htab_chain(const struct corio__htab *t,
                                       uint64_t hash)
{
    return t->cap == 0 ? NULL : t->slots[hash & (t->cap - 1)];
}

/* ---- The store ----------------------------------------------------------- */

void corio__mstore_init(struct corio__mstore *st)
{
    memset(st, 0, sizeof(*st));
    st->next_id = 1;
}

static void task_release(struct mtask *t)
{
    free(t->data);
    free(t->result);
    free(t);
}

void corio__mstore_fini(struct corio__mstore *st)
{
    struct corio__htab *tabs[] = {&st->tasks, &st->queues, &st->entries};

    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < tabs[k]->cap; i++) {
            struct corio__hnode *n = tabs[k]->slots[i];

            while (n != NULL) {
                struct corio__hnode *next = n->next;

                if (k == 0) {
                    task_release(CORIO_CONTAINER_OF(n, struct mtask, h));
                } else if (k == 2) {
                    struct mentry *e = CORIO_CONTAINER_OF(n, struct mentry, h);

                    free(e->mapkey);
                    free(e->value);
                    free(e);
                } else {
                    free(CORIO_CONTAINER_OF(n, struct mqueue, h));
                }
                n = next;
            }
        }
        free(tabs[k]->slots);
    }
    memset(st, 0, sizeof(*st));
}

struct mqueue *corio__mstore_queue_find(struct corio__mstore *st,
                                        const char *name)
{
    uint64_t h = hash_bytes(name, strlen(name));

    for (struct corio__hnode *n = htab_chain(&st->queues, h); n != NULL;
         n = n->next) {
        struct mqueue *q = CORIO_CONTAINER_OF(n, struct mqueue, h);

        if (n->hash == h && strcmp(q->name, name) == 0)
            return q;
    }
    return NULL;
}

struct mqueue *corio__mstore_queue(struct corio__mstore *st, const char *name)
{
    struct mqueue *q = corio__mstore_queue_find(st, name);

    if (q != NULL)
        return q;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    strcpy(q->name, name);
    corio__list_init(&q->ready);
    corio__list_init(&q->waiters);
    if (htab_add(&st->queues, &q->h, hash_bytes(name, strlen(name))) == -1) {
        free(q);
        return NULL;
    }
    return q;
}

struct mqueue *corio__mstore_dead(struct corio__mstore *st, struct mqueue *q)
{
    static const char suffix[] = ".dead";
    char name[CORIO_DIST_NAME_MAX + 1];
    size_t n = strlen(q->name);

    if (n >= sizeof(suffix) - 1 &&
        strcmp(q->name + n - (sizeof(suffix) - 1), suffix) == 0)
        return q;   /* a dead-letter queue keeps its dead */
    /* A name too long for the suffix shares its prefix's queue. */
    if (n > CORIO_DIST_NAME_MAX - (sizeof(suffix) - 1))
        n = CORIO_DIST_NAME_MAX - (sizeof(suffix) - 1);
    memcpy(name, q->name, n);
    memcpy(name + n, suffix, sizeof(suffix));
    return corio__mstore_queue(st, name);
}

struct mtask *corio__mstore_task(struct corio__mstore *st, uint64_t id)
{
    uint64_t h = hash_id(id);

    for (struct corio__hnode *n = htab_chain(&st->tasks, h); n != NULL;
         n = n->next) {
        struct mtask *t = CORIO_CONTAINER_OF(n, struct mtask, h);

        if (t->id == id)
            return t;
    }
    return NULL;
}

struct mtask *corio__mstore_task_new(struct corio__mstore *st, struct mqueue *q,
                                     uint64_t id, uint8_t *data, uint32_t len,
                                     bool front)
{
    struct mtask *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->id = id != 0 ? id : st->next_id;
    if (htab_add(&st->tasks, &t->h, hash_id(t->id)) == -1) {
        free(t);
        return NULL;
    }
    if (id == 0)
        st->next_id++;
    t->state = MTASK_READY;
    t->q = q;
    t->data = data;
    t->len = len;
    corio__list_init(&t->waiters);
    if (front)
        corio__list_push_front(&q->ready, &t->node);
    else
        corio__list_push_back(&q->ready, &t->node);
    q->size++;
    return t;
}

void corio__mstore_task_free(struct corio__mstore *st, struct mtask *t)
{
    if (t->state == MTASK_READY) {
        corio__list_remove(&t->node);
        t->q->size--;
    } else if (t->state == MTASK_LEASED) {
        corio__list_remove(&t->node);
    }
    htab_del(&st->tasks, &t->h);
    task_release(t);
}

/* "map\0key" into buf; returns its length. */
static size_t mapkey(char *buf, const char *map, const char *key)
{
    size_t a = strlen(map), b = strlen(key);

    memcpy(buf, map, a + 1);
    memcpy(buf + a + 1, key, b);
    return a + 1 + b;
}

struct mentry *corio__mstore_entry(struct corio__mstore *st, const char *map,
                                   const char *key)
{
    char buf[2 * CORIO_DIST_NAME_MAX + 2];
    size_t n = mapkey(buf, map, key);
    uint64_t h = hash_bytes(buf, n);

    for (struct corio__hnode *p = htab_chain(&st->entries, h); p != NULL;
         p = p->next) {
        struct mentry *e = CORIO_CONTAINER_OF(p, struct mentry, h);

        if (p->hash == h && e->mapkey_len == n && memcmp(e->mapkey, buf, n) == 0)
            return e;
    }
    return NULL;
}

int corio__mstore_entry_set(struct corio__mstore *st, const char *map,
                            const char *key, uint8_t *value, uint32_t len)
{
    struct mentry *e = corio__mstore_entry(st, map, key);
    char buf[2 * CORIO_DIST_NAME_MAX + 2];
    size_t n;

    if (e != NULL) {
        free(e->value);
        e->value = value;
        e->len = len;
        return 0;
    }
    n = mapkey(buf, map, key);
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -1;
    e->mapkey = malloc(n);
    if (e->mapkey == NULL)
        goto fail;
    memcpy(e->mapkey, buf, n);
    e->mapkey_len = n;
    if (htab_add(&st->entries, &e->h, hash_bytes(buf, n)) == -1)
        goto fail;
    e->value = value;
    e->len = len;
    return 0;

fail:
    free(e->mapkey);
    free(e);
    errno = ENOMEM;
    return -1;
}

int corio__mstore_entry_del(struct corio__mstore *st, const char *map,
                            const char *key)
{
    struct mentry *e = corio__mstore_entry(st, map, key);

    if (e == NULL) {
        errno = ENOENT;
        return -1;
    }
    htab_del(&st->entries, &e->h);
    free(e->mapkey);
    free(e->value);
    free(e);
    return 0;
}
