/* src/coro/stack.c -- coroutine stacks.
 *
 * A GUARDED stack is its own mapping with CORIO__GUARD bytes of PROT_NONE
 * below it (address space only: it costs no memory). A
 * COMPACT stack is a slot of a large slab mapping shared by many stacks, with
 * no guard page: it exists because Linux limits a process to 65530 mappings
 * by default and a guarded stack costs two.
 *
 * Freed stacks go to a per-thread pool, one free list per (mode, size), so
 * that making a coroutine costs no system call once the pool is warm. The
 * free-list node is written at the top of the freed stack, which is already
 * resident. Slabs are carved with a bump pointer, so a slot's pages are
 * touched only when a coroutine uses them, and slabs are never unmapped
 * (they are reused through the pools), so a stack may be freed by a thread
 * other than the one that made it. */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CORIO_VALGRIND
#include <valgrind/valgrind.h>
#define VG_REGISTER(lo, size) VALGRIND_STACK_REGISTER((lo), (lo) + (size))
#define VG_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define VG_REGISTER(lo, size) 0u
#define VG_DEREGISTER(id) ((void)(id))
#endif

#define CLASSES 8            /* (mode, size) pairs cached per thread */
#define GUARDED_CACHE 256    /* guarded stacks kept per class */
#define SLAB_BYTES (64u << 20)
#define SLAB_MIN_SLOTS 16

struct node {                /* a freed stack, at its own top */
    struct node *next;
    struct corio__stack st;
};

struct class {
    size_t size;
    int mode;
    size_t count;
    struct node *free;
    char *bump, *end;        /* compact: the uncarved rest of the last slab */
};

struct pool {
    struct class cls[CLASSES];
    int used;
};

static __thread struct pool *tpool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Compact slots left by threads that exited, shared by all threads. */
static pthread_mutex_t orphan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct node *orphans;

size_t corio__page_size(void)
{
    static size_t page;

    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static struct node *node_of(const struct corio__stack *st)
{
    return (struct node *)(st->lo + st->size - sizeof(struct node));
}

static void orphan(struct node *n)
{
    pthread_mutex_lock(&orphan_mu);
    n->next = orphans;
    __atomic_store_n(&orphans, n, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&orphan_mu);
}

static void unmap_guarded(const struct corio__stack *st)
{
    VG_DEREGISTER(st->vg_id);
    munmap(st->lo - CORIO__GUARD, st->size + CORIO__GUARD);
}

/* At thread exit: guarded stacks are unmapped, compact slots orphaned. */
static void pool_free(void *p)
{
    struct pool *pool = p;

    for (int i = 0; i < pool->used; i++) {
        struct node *n = pool->cls[i].free, *next;

        for (; n != NULL; n = next) {
            next = n->next;
            if (n->st.mode == CORIO_STACK_GUARDED) {
                unmap_guarded(&n->st);
                continue;
            }
            orphan(n);
        }
    }
    free(pool);
    tpool = NULL;
}

static void pool_key_make(void)
{
    pthread_key_create(&pool_key, pool_free);
}

static struct class *class_of(size_t size, int mode)
{
    struct pool *pool = tpool;

    if (CORIO_UNLIKELY(pool == NULL)) {
        pthread_once(&pool_once, pool_key_make);
        pool = calloc(1, sizeof(*pool));
        if (pool == NULL)
            return NULL;
        pthread_setspecific(pool_key, pool);
        tpool = pool;
    }
    for (int i = 0; i < pool->used; i++)
        if (pool->cls[i].size == size && pool->cls[i].mode == mode)
            return &pool->cls[i];
    if (pool->used == CLASSES)
        return NULL; /* uncached: made and released one by one */
    pool->cls[pool->used].size = size;
    pool->cls[pool->used].mode = mode;
    return &pool->cls[pool->used++];
}

static int map_guarded(struct corio__stack *st, size_t size)
{
    char *base = mmap(NULL, size + CORIO__GUARD, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);

    if (base == MAP_FAILED)
        return -1;
    if (mprotect(base, CORIO__GUARD, PROT_NONE) == -1) {
        munmap(base, size + CORIO__GUARD);
        return -1;
    }
    st->lo = base + CORIO__GUARD;
    st->size = size;
    st->mode = CORIO_STACK_GUARDED;
    st->vg_id = VG_REGISTER(st->lo, size);
    return 0;
}

/* A compact slot: an orphan of the right size, or the next slab slot. */
static int carve_compact(struct corio__stack *st, struct class *c, size_t size)
{
    if (__atomic_load_n(&orphans, __ATOMIC_RELAXED) != NULL) {
        struct node **pp, *n = NULL;

        pthread_mutex_lock(&orphan_mu);
        for (pp = &orphans; *pp != NULL; pp = &(*pp)->next)
            if ((*pp)->st.size == size) {
                n = *pp;
                __atomic_store_n(pp, n->next, __ATOMIC_RELAXED);
                break;
            }
        pthread_mutex_unlock(&orphan_mu);
        if (n != NULL) {
            *st = n->st;
            return 0;
        }
    }
    if (c == NULL || c->bump == c->end) {
        size_t slots = SLAB_BYTES / size;
        char *slab;

        if (slots < SLAB_MIN_SLOTS)
            slots = SLAB_MIN_SLOTS;
        slab = mmap(NULL, slots * size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (slab == MAP_FAILED)
            return -1;
        /* A huge page would make a 2 MiB slab region resident at once. */
        madvise(slab, slots * size, MADV_NOHUGEPAGE);
        if (c == NULL) {
            /* No class to keep the rest in: the remainder stays untouched
             * address space, which costs no memory. */
            st->lo = slab;
            goto done;
        }
        c->bump = slab;
        c->end = slab + slots * size;
    }
    st->lo = c->bump;
    c->bump += size;
done:
    st->size = size;
    st->mode = CORIO_STACK_COMPACT;
    st->vg_id = VG_REGISTER(st->lo, size);
    return 0;
}

int corio__stack_get(struct corio__stack *st, size_t size, int mode)
{
    struct class *c = class_of(size, mode);

    if (c != NULL && c->free != NULL) {
        struct node *n = c->free;

        c->free = n->next;
        c->count--;
        *st = n->st;
        return 0;
    }
    if (mode == CORIO_STACK_COMPACT)
        return carve_compact(st, c, size);
    return map_guarded(st, size);
}

void corio__stack_put(const struct corio__stack *st)
{
    struct class *c = class_of(st->size, st->mode);
    struct node *n;

    if (st->mode == CORIO_STACK_GUARDED &&
        (c == NULL || c->count >= GUARDED_CACHE)) {
        unmap_guarded(st);
        return;
    }
    n = node_of(st);
    n->st = *st;
    if (c == NULL) { /* a compact slot with no class */
        orphan(n);
        return;
    }
    n->next = c->free;
    c->free = n;
    c->count++;
}
