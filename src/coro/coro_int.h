/* src/coro/coro_int.h -- the coroutine layer's internal structs and calls,
 * shared with the layers above (the scheduler switches between coroutines
 * directly, without the resume/yield pairing). */
#ifndef CORIO_CORO_INT_H
#define CORIO_CORO_INT_H

#include "corio/coro.h"
#include "../arch/arch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORIO_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORIO_UNLIKELY(x) __builtin_expect(!!(x), 0)

#if defined(__SANITIZE_THREAD__)
#define CORIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif

/* A guarded stack's PROT_NONE region, just below it: large enough that a
 * frame of up to about this size that jumps past the end of the stack still
 * lands in it (address space only, no memory). */
#define CORIO__GUARD ((size_t)64 * 1024)

/* A compact stack's canary: CORIO__CANARY_WORDS copies of corio__canary, a
 * per-process random value, in the lowest words of the stack. */
#define CORIO__CANARY_WORDS 2
extern uintptr_t corio__canary __attribute__((visibility("hidden")));

struct corio__slab;

/* Valgrind must know the stacks, or it takes a switch for a huge frame. */
#ifdef CORIO_VALGRIND
#include <valgrind/valgrind.h>
#define CORIO_VG_REGISTER(lo, size) VALGRIND_STACK_REGISTER((lo), (lo) + (size))
#define CORIO_VG_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define CORIO_VG_REGISTER(lo, size) 0u
#define CORIO_VG_DEREGISTER(id) ((void)(id))
#endif

/* A stack: the usable bytes [lo, lo + size). A guarded stack has
 * CORIO__GUARD bytes of PROT_NONE just below lo; a compact stack is a slot
 * of a slab (slab.c) with its canary at lo. */
struct corio__stack {
    char *lo;
    size_t size;
    int mode;         /* enum corio_stack_mode */
    unsigned vg_id;   /* valgrind's stack id, 0 outside valgrind */
    struct corio__slab *slab; /* compact: the slab the slot belongs to */
};

/* Take a stack of at least size bytes (a multiple of the page size) from the
 * calling thread's pool, mapping a new one when the pool is empty. Returns
 * 0, or -1 with errno ENOMEM. */
int corio__stack_get(struct corio__stack *st, size_t size, int mode);

/* Give a stack back to the calling thread's pool (or to the system). */
void corio__stack_put(const struct corio__stack *st);

/* Give back the calling thread's pooled stacks beyond the pool's bound that
 * have been idle for the decay period (all of them if `all`). Returns the
 * time until the rest is due (ns), or -1 if nothing is kept beyond the
 * bound. For an idle loop, before it sleeps. */
int64_t corio__stack_trim(int64_t now, bool all);

#ifdef CORIO_ASAN
/* Give the whole pages of ASan's shadow of [p, p + n) back to the system:
 * they read as zeros again, "addressable", the state stack memory must be
 * in when it is next used. For memory unmapped or given back, whose shadow
 * would otherwise stay resident (ASan's unpoisoning writes the zeros). */
void corio__asan_drop_shadow(const char *p, size_t n);
#endif

/* Compact slots, shared by all threads (slab.c). Take a slot of size bytes
 * (a multiple of the page size): one given back earlier, or one of a new
 * slab. Returns 0, or -1 with errno ENOMEM. */
int corio__slab_take(struct corio__stack *st, size_t size);

/* Give a slot back for good: its memory returns to the system (the thread
 * pools keep the slots they reuse soon). */
void corio__slab_give(const struct corio__stack *st);

/* The page size, cached. */
size_t corio__page_size(void);

struct corio__local;

/* Private state of a coroutine. It lives at the top of its own stack, so a
 * coroutine costs one stack and no other allocation.
 *
 * The state is the caller field, so that resume and yield each store one
 * word: NULL while suspended, the resumer while active, CORO_DEAD once the
 * function has returned. */
#define CORO_DEAD ((corio_coro *)1)

struct corio_coro {
    corio__ctx ctx;             /* saved context while switched out */
    struct corio_coro *caller;  /* NULL, the resumer, or CORO_DEAD */
    /* Checked each time the coroutine is left (coro.c): the stack pointer
     * must be at or above limit (NULL: no limit) and *canary must equal
     * corio__canary. A compact stack's canary is its top canary word; other
     * stacks point at corio__canary itself, so the checks need no branch on
     * the stack mode. */
    char *limit;
    const uintptr_t *canary;
    corio_fn fn;
    void *arg;
    void *result;
    struct corio__local *locals; /* coroutine-local values, by key slot */
    unsigned nlocals;           /* length of locals */
    uint64_t id;
    struct corio__stack stack;
    char name[32];
#ifdef CORIO_TSAN
    void *tsan_fiber;           /* TSan's fiber for this stack */
#endif
#ifdef CORIO_ASAN
    void *asan_fake;            /* ASan's fake stack while switched out */
    const void *asan_bottom;    /* this stack's bounds, for ASan */
    size_t asan_size;
#endif
};

/* Create a coroutine with extra bytes of zeroed, 16-aligned memory next to
 * it at the top of its stack (*extra points to them), so that objects built
 * on a coroutine (generators, tasks) need no allocation of their own. */
corio_coro *corio__coro_new(corio_fn fn, void *arg, const corio_coro_attr *attr,
                            size_t extra_size, void **extra);

static inline bool corio__coro_active(const corio_coro *co)
{
    return co->caller != NULL && co->caller != CORO_DEAD;
}

/* Switch from the running coroutine to `to`, which must be switched out
 * (or new). No caller link is made or changed: this is for schedulers that
 * pick what runs next themselves. Returns when something switches back. */
void corio__coro_switch(corio_coro *to);

/* corio_coro_resume and corio_coro_yield passing val to the other side,
 * which its own resume or yield returns (a coroutine's end passes 0); each
 * returns the val passed back. The generators hand their results over this
 * way, so that send and yield end in tail calls. */
int corio__coro_resume_val(corio_coro *co, int val);
int corio__coro_yield_val(int val);

/* Run the destructors of co's coroutine-local values and free them. */
void corio__locals_destroy(corio_coro *co);

/* The thread's pseudo-coroutine for its own stack. */
corio_coro *corio__coro_main(void);

/* ---- Stack overflow (overflow.c) ---------------------------------------- */

/* How an overflow was found, for the report. */
enum corio__overflow_how {
    CORIO__BY_GUARD,       /* a fault in the guard region */
    CORIO__BY_FAULT_SP,    /* a fault with the stack pointer below the stack */
    CORIO__BY_SWITCH_SP,   /* the stack pointer near the bottom at a switch */
    CORIO__BY_SWITCH_CANARY, /* the canary damaged, found at a switch */
    CORIO__BY_FREE_CANARY, /* the canary damaged, found when freed */
};

/* Report co's stack overflow on stderr (by name, id and stack size) and
 * abort. Async-signal-safe. */
__attribute__((noreturn, cold)) void
corio__overflow_abort(const corio_coro *co, enum corio__overflow_how how);

/* Before a coroutine is made on this thread: install the process-wide
 * SIGSEGV handler unless it was turned off, and give the thread an
 * alternate signal stack for it. Failures are silent: the coroutine still
 * works, its overflow is then a plain SIGSEGV. */
void corio__overflow_prepare(void);

/* A global mutex taken around fork() (pthread_atfork, registered when the
 * program starts), so that the child never inherits it locked by a thread
 * it does not have (src/proc/fork.c). */
#define CORIO__FORK_LOCK(name, mu)                                           \
    static void name##_fork_lock(void) { pthread_mutex_lock(&(mu)); }       \
    static void name##_fork_unlock(void) { pthread_mutex_unlock(&(mu)); }   \
    __attribute__((constructor)) static void name##_fork_register(void)     \
    {                                                                        \
        pthread_atfork(name##_fork_lock, name##_fork_unlock,                 \
                       name##_fork_unlock);                                  \
    }

#endif
