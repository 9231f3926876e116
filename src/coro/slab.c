/* src/coro/slab.c -- compact stacks: slots of large shared slabs, and where
 * the slots that no thread pool keeps go back.
 *
 * A slab is one mapping of equal slots (64 MiB, and at least 16 slots). The
 * slots start CANARY bytes below page boundaries, so that a slot's canary,
 * its lowest bytes, lies in the top page of the slot below: that page holds
 * the lower coroutine's struct and frames and is resident anyway, so a
 * parked compact coroutine still costs one page. A pad page before the first
 * slot holds the first slot's canary:
 *
 *   base   page boundaries:  |         |         |  ...  |         |
 *   | pad                 [C| slot 0 ...       ][C| slot 1 ...      ] ...
 *
 * Slots are handed out in address order from a new slab, so that their
 * first pages fault in one after the other. The thread pools (stack.c) keep
 * the slots they will reuse soon; the others are given back here. A slot
 * given back loses its pages (MADV_DONTNEED) and becomes free for any thread
 * to take. The page a slot shares with a neighbour (its top page holds the
 * next slot's canary) is dropped only once both are free. A slab whose slots
 * are all free is unmapped, except IDLE_SLABS per size kept for the next
 * burst (their pages dropped too). The free slots are shared by all threads
 * under one mutex: this is the slow path, the thread pools are the fast one,
 * and a slot may be freed on another thread than the one that took it. */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define SLAB_BYTES ((size_t)64 << 20)
#define SLAB_MIN_SLOTS 16
#define IDLE_SLABS 1       /* wholly free slabs kept mapped, per size */
#define CANARY (CORIO__CANARY_WORDS * sizeof(uintptr_t))

struct slab_size;

struct corio__slab {
    char *base;              /* the mapping: the pad page, then the slots */
    size_t bytes;            /* the mapping's length */
    size_t slot;             /* slot size, a multiple of the page size */
    uint32_t nslots;
    uint32_t nfree;          /* slots given back or never taken */
    struct slab_size *sz;
    struct corio__slab *prev, *next; /* in sz->slabs while nfree > 0 */
    /* In all_slabs: the only pointer to a full slab may otherwise be in
     * mapped memory, where a leak checker does not look. */
    struct corio__slab *all_prev, *all_next;
    uint64_t *is_free;       /* one bit per slot */
    uint32_t free[];         /* the free slots' indexes, a stack of nfree */
};

/* The slabs of one slot size that have free slots: partly used ones first
 * (taking from them keeps the others emptying), wholly free ones last. */
struct slab_size {
    size_t slot;
    struct corio__slab *slabs;
    unsigned idle;           /* wholly free slabs in the list */
    struct slab_size *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slab_size *sizes; /* under mu, like everything here */
static struct corio__slab *all_slabs;

static char *slot_lo(const struct corio__slab *s, uint32_t i)
{
    return s->base + corio__page_size() - CANARY + (size_t)i * s->slot;
}

static bool slot_free(const struct corio__slab *s, uint32_t i)
{
    return s->is_free[i / 64] >> (i % 64) & 1;
}

static void set_free(struct corio__slab *s, uint32_t i, bool on)
{
    if (on)
        s->is_free[i / 64] |= (uint64_t)1 << (i % 64);
    else
        s->is_free[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static struct slab_size *size_find(size_t slot)
{
    struct slab_size *sz;

    for (sz = sizes; sz != NULL; sz = sz->next)
        if (sz->slot == slot)
            return sz;
    return NULL;
}

static void list_unlink(struct corio__slab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->sz->slabs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void list_push_head(struct corio__slab *s)
{
    s->prev = NULL;
    s->next = s->sz->slabs;
    if (s->next != NULL)
        s->next->prev = s;
    s->sz->slabs = s;
}

static void list_push_tail(struct corio__slab *s)
{
    struct corio__slab **pp = &s->sz->slabs, *last = NULL;

    while (*pp != NULL) {
        last = *pp;
        pp = &last->next;
    }
    s->prev = last;
    s->next = NULL;
    *pp = s;
}

/* A new slab, all slots free, in no list yet. NULL with errno ENOMEM. */
static struct corio__slab *slab_new(size_t slot)
{
    size_t page = corio__page_size();
    size_t n = SLAB_BYTES / slot, words;
    struct corio__slab *s;

    if (n < SLAB_MIN_SLOTS)
        n = SLAB_MIN_SLOTS;
    words = (n + 63) / 64;
    s = malloc(sizeof(*s) + n * sizeof(uint32_t) + words * sizeof(uint64_t) +
               sizeof(uint64_t));
    if (s == NULL)
        return NULL;
    s->bytes = page + n * slot;
    s->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s->base == MAP_FAILED) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    /* A huge page would make 2 MiB of slots resident at once. */
    madvise(s->base, s->bytes, MADV_NOHUGEPAGE);
    s->slot = slot;
    s->nslots = (uint32_t)n;
    s->nfree = (uint32_t)n;
    s->sz = NULL;
    s->prev = s->next = NULL;
    /* The bitmap after the index stack, 8-aligned. */
    s->is_free = (uint64_t *)(((uintptr_t)(s->free + n) + 7) & ~(uintptr_t)7);
    for (size_t w = 0; w < words; w++)
        s->is_free[w] = ~(uint64_t)0;
    for (uint32_t k = 0; k < n; k++)
        s->free[k] = (uint32_t)n - 1 - k; /* slot 0 on top */
    return s;
}

static void slab_unmap(struct corio__slab *s)
{
#ifdef CORIO_ASAN
    /* Frames that never returned left poisoned shadow; whatever is mapped
     * here next must not inherit it. */
    __asan_unpoison_memory_region(s->base, s->bytes);
    corio__asan_drop_shadow(s->base, s->bytes);
#endif
    munmap(s->base, s->bytes);
    free(s);
}

static void all_link(struct corio__slab *s)
{
    s->all_prev = NULL;
    s->all_next = all_slabs;
    if (all_slabs != NULL)
        all_slabs->all_prev = s;
    all_slabs = s;
}

static void all_unlink(struct corio__slab *s)
{
    if (s->all_prev != NULL)
        s->all_prev->all_next = s->all_next;
    else
        all_slabs = s->all_next;
    if (s->all_next != NULL)
        s->all_next->all_prev = s->all_prev;
}

/* Under mu: take s's top free slot. */
static uint32_t take_from(struct corio__slab *s)
{
    uint32_t i = s->free[--s->nfree];

    set_free(s, i, false);
    if (s->nfree + 1 == s->nslots) {
        /* It was wholly free, at the tail: partly used now. */
        s->sz->idle--;
        list_unlink(s);
        list_push_head(s);
    }
    if (s->nfree == 0)
        list_unlink(s);
    return i;
}

int corio__slab_take(struct corio__stack *st, size_t size)
{
    struct corio__slab *s, *fresh = NULL;
    struct slab_size *sz, *node = NULL;
    uint32_t i;

    pthread_mutex_lock(&mu);
    sz = size_find(size);
    if (sz == NULL || sz->slabs == NULL) {
        /* Map outside the lock; another thread may give slots back in the
         * meantime, but this one uses the new slab. */
        pthread_mutex_unlock(&mu);
        fresh = slab_new(size);
        if (fresh != NULL && sz == NULL)
            node = calloc(1, sizeof(*node));
        if (fresh == NULL || (sz == NULL && node == NULL)) {
            if (fresh != NULL)
                slab_unmap(fresh);
            errno = ENOMEM;
            return -1;
        }
        pthread_mutex_lock(&mu);
        sz = size_find(size);
        if (sz == NULL && node != NULL) {
            sz = node;
            node = NULL;
            sz->slot = size;
            sz->next = sizes;
            sizes = sz;
        }
        fresh->sz = sz;
        all_link(fresh);
        list_push_tail(fresh);
        sz->idle++;
    }
    s = fresh != NULL ? fresh : sz->slabs;
    i = take_from(s);
    pthread_mutex_unlock(&mu);
    free(node); /* another thread added the size first */

    st->lo = slot_lo(s, i);
    st->size = size;
    st->mode = CORIO_STACK_COMPACT;
    st->slab = s;
    st->vg_id = CORIO_VG_REGISTER(st->lo, size);
    return 0;
}

/* Under mu: drop the pages of slot i, just given back, that no slot in use
 * needs: its own pages, its top page if the next slot is free too (that page
 * holds the next slot's canary), and the page below it (its canary, and the
 * top of the slot below) if the slot below is free too. The pad and the
 * space after the last slot count as free. */
static void drop_pages(struct corio__slab *s, uint32_t i)
{
    size_t page = corio__page_size();
    char *from = slot_lo(s, i) + CANARY; /* a page boundary */
    char *to = from + s->slot - page;

    if (i == 0 || slot_free(s, i - 1))
        from -= page;
    if (i + 1 == s->nslots || slot_free(s, i + 1))
        to += page;
    madvise(from, (size_t)(to - from), MADV_DONTNEED);
#ifdef CORIO_ASAN
    corio__asan_drop_shadow(from, (size_t)(to - from));
#endif
}

void corio__slab_give(const struct corio__stack *st)
{
    struct corio__slab *s = st->slab, *unmap = NULL;
    uint32_t i = (uint32_t)((size_t)(st->lo - slot_lo(s, 0)) / s->slot);

    CORIO_VG_DEREGISTER(st->vg_id);
    pthread_mutex_lock(&mu);
    set_free(s, i, true);
    s->free[s->nfree++] = i;
    if (s->nfree == 1)
        list_push_head(s); /* it was full: partly used now */
    if (s->nfree < s->nslots) {
        /* Under the lock: once the slot is free, another thread may take
         * it (or its neighbour) and write to the pages dropped here. */
        drop_pages(s, i);
    } else if (s->sz->idle < IDLE_SLABS) {
        drop_pages(s, i);
#ifdef CORIO_ASAN
        __asan_unpoison_memory_region(s->base, s->bytes);
        corio__asan_drop_shadow(s->base, s->bytes);
#endif
        s->sz->idle++;
        list_unlink(s);
        list_push_tail(s);
    } else {
        list_unlink(s);
        all_unlink(s);
        unmap = s;
    }
    pthread_mutex_unlock(&mu);
    if (unmap != NULL)
        slab_unmap(unmap);
}

/* fork() copies only the forking thread: the slabs' mutex is taken around it. */
CORIO__FORK_LOCK(slab, mu)
