/* src/coro/stack.c -- coroutine stacks and the per-thread pools.
 *
 * A GUARDED stack is its own mapping with CORIO__GUARD bytes of PROT_NONE
 * below it. A COMPACT stack is a slot of a large slab shared by many stacks
 * (slab.c), with no guard region: it exists because Linux limits a process
 * to 65530 mappings by default and a guarded stack costs two.
 *
 * Freed stacks go to a per-thread pool, one free list per (mode, size), so
 * that making a coroutine costs no system call once the pool is warm. The
 * free-list node is written at the top of the freed stack, which is already
 * resident. A pool keeps at most POOL_KEEP stacks of a (mode, size), and no
 * more than POOL_BYTES of them, for good; what it holds beyond that (the
 * excess, after a burst) is kept for POOL_DECAY only, as jemalloc's decay
 * does: a burst that comes back at once (a server's next wave of
 * connections) finds warm stacks, and one that does not comes back to the
 * system, a guarded stack unmapped, a compact slot given to slab.c, which
 * returns its pages. The excess goes when a stack is freed or made after
 * the decay, when an idle loop calls corio__stack_trim, or at once with
 * corio_coro_trim. A steady load reuses warm stacks without a system
 * call. */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define CLASSES 8            /* (mode, size) pairs cached per thread */
#define POOL_KEEP 256        /* free stacks kept per class... */
#define POOL_BYTES ((size_t)8 << 20) /* ...and at most this much stack */
#define POOL_DECAY CORIO_SECOND       /* how long an excess is kept */

uintptr_t corio__canary;

struct node {                /* a freed stack, at its own top */
    struct node *next;
    struct corio__stack st;
};

struct class {
    size_t size;
    int mode;
    size_t count, keep;      /* free stacks, and how many may be kept */
    struct node *free;
    int64_t over_since;      /* when count went past keep; 0: it is not */
    unsigned ticks;          /* puts past keep: the clock is read 1 in 256 */
};

struct pool {
    struct class cls[CLASSES];
    int used;
};

static __thread struct pool *tpool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

size_t corio__page_size(void)
{
    static size_t page; /* threads may race to set it: the same value */
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);

    if (p == 0) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

static struct node *node_of(const struct corio__stack *st)
{
    return (struct node *)(st->lo + st->size - sizeof(struct node));
}

#ifdef CORIO_ASAN
void corio__asan_drop_shadow(const char *p, size_t n)
{
    size_t scale, offset, page = corio__page_size();
    uintptr_t lo, hi;

    __asan_get_shadow_mapping(&scale, &offset);
    lo = ((uintptr_t)p >> scale) + offset;
    hi = (((uintptr_t)p + n) >> scale) + offset;
    lo = (lo + page - 1) & ~(uintptr_t)(page - 1); /* whole pages only */
    hi &= ~(uintptr_t)(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
#endif

static void unmap_guarded(const struct corio__stack *st)
{
    CORIO_VG_DEREGISTER(st->vg_id);
#ifdef CORIO_ASAN
    /* Whatever is mapped here next must not inherit the frames' poison. */
    __asan_unpoison_memory_region(st->lo, st->size);
    corio__asan_drop_shadow(st->lo, st->size);
#endif
    munmap(st->lo - CORIO__GUARD, st->size + CORIO__GUARD);
}

/* A stack no pool keeps: back to the system. */
static void release(const struct corio__stack *st)
{
    if (st->mode == CORIO_STACK_GUARDED)
        unmap_guarded(st);
    else
        corio__slab_give(st);
}

/* At thread exit, the pool's stacks go back to the system. */
static void pool_free(void *p)
{
    struct pool *pool = p;

    for (int i = 0; i < pool->used; i++) {
        struct node *n = pool->cls[i].free, *next;

        for (; n != NULL; n = next) {
            struct corio__stack st = n->st; /* the node goes with the stack */

            next = n->next;
            release(&st);
        }
    }
    free(pool);
    tpool = NULL;
}

/* The compact stacks' canary value: random, so that no program writes it
 * by chance, and never 0, the value of a page given back to the system. */
static void canary_make(void)
{
    uintptr_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = (uintptr_t)corio_now() * (uintptr_t)0x9E3779B97F4A7C15u ^
            (uintptr_t)&v;
    corio__canary = v != 0 ? v : (uintptr_t)0x5AFEC0DE5AFEC0DEu;
}

static void pool_init_once(void)
{
    canary_make();
    pthread_key_create(&pool_key, pool_free);
}

static size_t pool_keep(size_t size)
{
    size_t n = POOL_BYTES / size;

    return n > POOL_KEEP ? POOL_KEEP : n > 0 ? n : 1;
}

static struct class *class_of(size_t size, int mode)
{
    struct pool *pool = tpool;
    struct class *c;

    if (CORIO_UNLIKELY(pool == NULL)) {
        pthread_once(&pool_once, pool_init_once);
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
    c = &pool->cls[pool->used++];
    c->size = size;
    c->mode = mode;
    c->keep = pool_keep(size);
    return c;
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
    st->slab = NULL;
    st->vg_id = CORIO_VG_REGISTER(st->lo, size);
    return 0;
}

/* Give the excess of c back to the system. */
static void class_trim(struct class *c)
{
    while (c->count > c->keep) {
        struct node *n = c->free;
        struct corio__stack st = n->st; /* the node goes with the stack */

        c->free = n->next;
        c->count--;
        release(&st);
    }
    c->over_since = 0;
}

int64_t corio__stack_trim(int64_t now, bool all)
{
    struct pool *pool = tpool;
    int64_t next = -1;

    if (pool == NULL)
        return -1;
    for (int i = 0; i < pool->used; i++) {
        struct class *c = &pool->cls[i];
        int64_t left;

        if (c->count <= c->keep)
            continue;
        left = c->over_since + POOL_DECAY - now;
        if (all || left <= 0)
            class_trim(c);
        else if (next < 0 || left < next)
            next = left;
    }
    return next;
}

int corio_coro_trim(void)
{
    corio__stack_trim(corio_now(), true);
    return 0;
}

int corio__stack_get(struct corio__stack *st, size_t size, int mode)
{
    struct class *c = class_of(size, mode);

    if (c != NULL && c->free != NULL) {
        struct node *n = c->free;

        c->free = n->next;
        if (--c->count <= c->keep)
            c->over_since = 0;
        *st = n->st;
        return 0;
    }
    if (mode == CORIO_STACK_COMPACT)
        return corio__slab_take(st, size);
    return map_guarded(st, size);
}

void corio__stack_put(const struct corio__stack *st)
{
    struct class *c = class_of(st->size, st->mode);
    struct node *n;

    if (c == NULL) {
        release(st);
        return;
    }
    n = node_of(st);
    n->st = *st;
    n->next = c->free;
    c->free = n;
    if (++c->count <= c->keep)
        return;
    /* An excess: kept for POOL_DECAY, then given back by whichever comes
     * first, a later put or an idle loop's trim. */
    if (c->over_since == 0)
        c->over_since = corio_now();
    else if ((++c->ticks & 255) == 0 &&
             corio_now() - c->over_since >= POOL_DECAY)
        class_trim(c);
}
