/* src/coro/coro.c -- coroutines: creation, resume/yield, the switch with
 * its per-coroutine errno and sanitizer bookkeeping, and the overflow
 * checks made when a coroutine is left (the reports: overflow.c).
 *
 * Memory layout of a coroutine (the stack grows down):
 *
 *          lo                                                lo + size
 *   guard  | canary | machine stack ...  <-- sp | extra | struct corio_coro |
 *
 * A guarded stack has the guard region below lo and no canary; a compact
 * stack has the canary and no guard region.
 *
 * The thread's own stack is represented by a pseudo-coroutine (`main` in
 * struct thread) so that a switch always goes from one corio_coro to
 * another. */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef CORIO_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

struct thread {
    corio_coro *current;  /* running coroutine, &main on the thread's stack */
    corio_coro main;      /* the thread's own stack */
    corio_coro *prev;     /* ASan: the coroutine switched away from */
    int *errp;            /* &errno of this thread */
};

static __thread struct thread th __attribute__((tls_model("initial-exec")));
static uint64_t next_id = 1;

int64_t corio_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CORIO_SECOND + ts.tv_nsec;
}

static corio_coro *thread_init(void)
{
    th.main.id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    strcpy(th.main.name, "main");
    th.main.canary = &corio__canary;
    th.errp = &errno;
#ifdef CORIO_TSAN
    th.main.tsan_fiber = __tsan_get_current_fiber();
#endif
    th.current = &th.main;
    return th.current;
}

static inline corio_coro *self(void)
{
    corio_coro *co = th.current;

    return CORIO_LIKELY(co != NULL) ? co : thread_init();
}

corio_coro *corio__coro_main(void)
{
    self();
    return &th.main;
}

corio_coro *corio_coro_self(void)
{
    corio_coro *co = th.current;

    return co == &th.main ? NULL : co;
}

/* ---- Stack overflow ---------------------------------------------------
 * A guarded stack's overflow faults in its guard region (overflow.c). A
 * compact stack has no guard: each time a coroutine is left, by a switch or
 * by its end, its stack pointer is compared with the bottom of its stack
 * (less a red zone) and its canary with the process's value, so an overflow
 * is caught at the first switch after it, before the coroutine's damage
 * spreads further. Two compares, no branch on the stack mode: guarded
 * stacks and the thread's own stack pass them by construction. */

/* Compact stacks: a stack pointer this close to the bottom of the stack is
 * reported as an overflow. */
#define REDZONE 256

static inline bool stack_broken(const corio_coro *co)
{
    return CORIO_UNLIKELY(corio__arch_sp() < co->limit) ||
           CORIO_UNLIKELY(*co->canary != corio__canary);
}

/* Out of line and not declared noreturn, so that the fast paths reach it by
 * a tail jump and need no stack frame of their own. */
__attribute__((noinline, cold)) static int overflow_found(const corio_coro *co)
{
    corio__overflow_abort(co, corio__arch_sp() < co->limit
                                  ? CORIO__BY_SWITCH_SP
                                  : CORIO__BY_SWITCH_CANARY);
}

/* When a compact coroutine is freed: every canary word. */
static void check_freed(const corio_coro *co)
{
    const uintptr_t *w = (const uintptr_t *)co->stack.lo;

    if (co->stack.mode != CORIO_STACK_COMPACT)
        return;
    for (int i = 0; i < CORIO__CANARY_WORDS; i++)
        if (w[i] != corio__canary)
            corio__overflow_abort(co, CORIO__BY_FREE_CANARY);
}

/* ---- Switching --------------------------------------------------------
 * The fast paths end in a tail call of corio__arch_switch, which saves and
 * restores errno with the registers. Under ASan the switch is bracketed by
 * the fiber annotations, so it is a plain call. */

#ifdef CORIO_ASAN
static void asan_enter(corio_coro *co);

static int switch_to(corio_coro *from, corio_coro *to, bool dying, int val)
{
    th.prev = from;
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake,
                                   to->asan_bottom, to->asan_size);
    val = corio__arch_switch(&from->ctx, &to->ctx, th.errp, val);
    asan_enter(from);
    return val;
}

/* Entered co (NULL: a new coroutine): tell ASan, and learn the bounds of
 * the stack just left (that is how the thread's own stack gets known). */
static void asan_enter(corio_coro *co)
{
    const void *bottom;
    size_t size;

    __sanitizer_finish_switch_fiber(co ? co->asan_fake : NULL, &bottom, &size);
    th.prev->asan_bottom = bottom;
    th.prev->asan_size = size;
}
#elif defined(CORIO_TSAN)
/* TSan keeps a shadow stack and a clock per fiber: tell it which one runs. */
static int switch_to(corio_coro *from, corio_coro *to, bool dying, int val)
{
    (void)from;
    (void)dying;
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
    return corio__arch_switch(&from->ctx, &to->ctx, th.errp, val);
}
#define asan_enter(co) ((void)0)
#else
#define switch_to(from, to, dying, val) \
    corio__arch_switch(&(from)->ctx, &(to)->ctx, th.errp, (val))
#define asan_enter(co) ((void)0)
#endif

void corio__coro_switch(corio_coro *to)
{
    corio_coro *me = self();

    if (stack_broken(me))
        overflow_found(me);
    th.current = to;
    switch_to(me, to, false, 0);
}

/* Every coroutine starts here, on its own stack. */
static void coro_main(void *arg)
{
    corio_coro *co = arg, *to;

    asan_enter(NULL);
    co->result = co->fn(co->arg);
    if (co->locals != NULL)
        corio__locals_destroy(co);
    if (stack_broken(co))
        overflow_found(co);
    to = co->caller;
    co->caller = CORO_DEAD;
    th.current = to;
    switch_to(co, to, true, 0);
    abort(); /* a dead coroutine is never switched to */
}

__attribute__((noinline, cold)) static int resume_fail(corio_coro *co)
{
    errno = co != NULL && co->caller == CORO_DEAD ? CORIO_EDONE : EINVAL;
    return -1;
}

/* The thread's first resume: set the thread up out of line, so that the
 * fast path needs no stack frame. */
__attribute__((noinline, cold)) static int resume_first(corio_coro *co,
                                                        int val)
{
    thread_init();
    return corio__coro_resume_val(co, val);
}

static inline __attribute__((always_inline)) int resume(corio_coro *co, int val)
{
    corio_coro *me = th.current;

    if (CORIO_UNLIKELY(me == NULL))
        return resume_first(co, val);
    if (CORIO_UNLIKELY(co == NULL || co->caller != NULL))
        return resume_fail(co);
    if (stack_broken(me))
        return overflow_found(me);
    co->caller = me;
    th.current = co;
    return switch_to(me, co, false, val);
}

int corio__coro_resume_val(corio_coro *co, int val)
{
    return resume(co, val);
}

int corio_coro_resume(corio_coro *co)
{
    return resume(co, 0);
}

__attribute__((noinline, cold)) static int yield_fail(void)
{
    errno = EPERM; /* the thread's own stack has no caller */
    return -1;
}

static inline __attribute__((always_inline)) int yield(int val)
{
    corio_coro *me = th.current, *to;

    if (CORIO_UNLIKELY(me == NULL || (to = me->caller) == NULL))
        return yield_fail();
    if (stack_broken(me))
        return overflow_found(me);
    me->caller = NULL;
    th.current = to;
    return switch_to(me, to, false, val);
}

int corio__coro_yield_val(int val)
{
    return yield(val);
}

int corio_coro_yield(void)
{
    return yield(0);
}

/* ---- Creation and inspection ------------------------------------------ */

corio_coro *corio__coro_new(corio_fn fn, void *arg, const corio_coro_attr *attr,
                            size_t extra_size, void **extra)
{
    static const corio_coro_attr defaults;
    size_t page = corio__page_size(), size, top;
    struct corio__stack st;
    corio_coro *co;

    if (attr == NULL)
        attr = &defaults;
    size = attr->stack_size ? attr->stack_size : CORIO_STACK_DEFAULT;
    if (fn == NULL || size < CORIO_STACK_MIN || size > ((size_t)1 << 40) ||
        (attr->stack_mode != CORIO_STACK_GUARDED &&
         attr->stack_mode != CORIO_STACK_COMPACT)) {
        errno = EINVAL;
        return NULL;
    }
    size = (size + page - 1) & ~(page - 1);
    self();
    corio__overflow_prepare();
    if (corio__stack_get(&st, size, attr->stack_mode) == -1) {
        /* Out of kernel mappings (vm.max_map_count): a compact stack still
         * fits, so a program with 100,000 tasks works with the defaults. */
        if (attr->stack_mode != CORIO_STACK_GUARDED || errno != ENOMEM ||
            corio__stack_get(&st, size, CORIO_STACK_COMPACT) == -1)
            return NULL;
    }

#ifdef CORIO_ASAN
    /* A pooled stack keeps the redzones ASan poisoned for frames that never
     * returned (a coroutine ends by switching away): clear them. */
    __asan_unpoison_memory_region(st.lo, st.size);
#endif
    if (st.mode == CORIO_STACK_COMPACT)
        for (int i = 0; i < CORIO__CANARY_WORDS; i++)
            ((uintptr_t *)st.lo)[i] = corio__canary;
    /* The struct at the very top, the extra bytes below it, then the stack. */
    extra_size = (extra_size + 15) & ~(size_t)15;
    top = (sizeof(*co) + 15) & ~(size_t)15;
    co = (corio_coro *)(st.lo + st.size - top);
    memset(co, 0, sizeof(*co));
    if (extra != NULL) {
        *extra = (char *)co - extra_size;
        memset(*extra, 0, extra_size);
    }
    co->stack = st;
    co->fn = fn;
    co->arg = arg;
    co->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    co->canary = &corio__canary;
    if (st.mode == CORIO_STACK_COMPACT) {
        co->limit = st.lo + REDZONE;
        /* The top word: the first one a frame going too deep reaches. */
        co->canary = (const uintptr_t *)st.lo + CORIO__CANARY_WORDS - 1;
    }
    if (attr->name != NULL) {
        strncpy(co->name, attr->name, sizeof(co->name) - 1);
    }
#ifdef CORIO_ASAN
    co->asan_bottom = st.lo;
    co->asan_size = st.size;
#endif
#ifdef CORIO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    corio__arch_make(&co->ctx, st.lo, (size_t)((char *)co - extra_size - st.lo),
                     coro_main, co);
    return co;
}

corio_coro *corio_coro_new(corio_fn fn, void *arg, const corio_coro_attr *attr)
{
    return corio__coro_new(fn, arg, attr, 0, NULL);
}

enum corio_coro_status corio_coro_status(const corio_coro *co)
{
    if (co->caller == NULL)
        return CORIO_CORO_SUSPENDED;
    if (co->caller == CORO_DEAD)
        return CORIO_CORO_DEAD;
    return co == th.current ? CORIO_CORO_RUNNING : CORIO_CORO_NORMAL;
}

void *corio_coro_result(const corio_coro *co)
{
    return co->caller == CORO_DEAD ? co->result : NULL;
}

uint64_t corio_coro_id(const corio_coro *co)
{
    return co->id;
}

const char *corio_coro_name(const corio_coro *co)
{
    return co->name;
}

size_t corio_coro_stack_size(const corio_coro *co)
{
    return co->stack.size;
}

int corio_coro_free(corio_coro *co)
{
    struct corio__stack st;

    if (co == NULL)
        return 0;
    if (corio__coro_active(co)) {
        errno = EBUSY;
        return -1;
    }
    check_freed(co);
    if (co->locals != NULL)
        corio__locals_destroy(co);
#ifdef CORIO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    st = co->stack;
    corio__stack_put(&st);
    return 0;
}
