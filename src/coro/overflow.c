/* src/coro/overflow.c -- stack overflow reports, and the SIGSEGV handler
 * that catches guarded stacks' overflows.
 *
 * A guarded stack has CORIO__GUARD bytes of PROT_NONE below it. When a
 * coroutine faults, the handler (process-wide, running on the thread's
 * alternate signal stack since the faulting stack is exhausted) looks at the
 * running coroutine's stack bounds, the fault address and the stack pointer
 * at the fault. If the fault is that coroutine's overflow it reports it on
 * stderr by name and aborts; any other fault is handed back to the action
 * that was there before, unchanged. Compact stacks have no guard: coro.c
 * checks them each time a coroutine is left, and reports here.
 *
 * corio_coro_set_overflow_handler turns the handler off (and back on) for
 * programs that have a SIGSEGV handler of their own. */
#define _GNU_SOURCE /* REG_RSP */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- The report ------------------------------------------------------- */

static const char *const how_text[] = {
    [CORIO__BY_GUARD] = "a fault in its guard region",
    [CORIO__BY_FAULT_SP] = "a fault with the stack pointer below the stack",
    [CORIO__BY_SWITCH_SP] = "the stack pointer at the bottom of the stack "
                            "when it switched",
    [CORIO__BY_SWITCH_CANARY] = "the canary at the bottom of the stack "
                                "overwritten, found when it switched",
    [CORIO__BY_FREE_CANARY] = "the canary at the bottom of the stack "
                              "overwritten, found when it was freed",
};

struct line {
    char buf[320];
    size_t n;
};

static void put(struct line *l, const char *s)
{
    size_t len = strlen(s);

    if (l->n + len < sizeof(l->buf)) {
        memcpy(l->buf + l->n, s, len);
        l->n += len;
    }
}

static void put_u(struct line *l, uint64_t v)
{
    char num[24], *p = num + sizeof(num);

    *--p = 0;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(l, p);
}

/* With write(2) only, in one call: it may run in a signal handler, and
 * other threads may be writing to stderr too. */
void corio__overflow_abort(const corio_coro *co, enum corio__overflow_how how)
{
    struct line l = {.n = 0};

    put(&l, "corio: stack overflow in coroutine ");
    if (co->name[0] != 0) {
        put(&l, co->name);
        put(&l, " ");
    }
    put(&l, "#");
    put_u(&l, co->id);
    put(&l, " (stack ");
    put_u(&l, co->stack.size);
    put(&l, " bytes): ");
    put(&l, how_text[how]);
    put(&l, "; raise its stack_size (corio_coro_attr, corio_task_attr)\n");
    if (write(STDERR_FILENO, l.buf, l.n) < 0) {
        /* nothing more can be done about it */
    }
    signal(SIGABRT, SIG_DFL); /* no handler of the program's runs now */
    abort();
}

/* ---- Telling an overflow from another fault ---------------------------- */

/* The stack pointer at the fault, or NULL where it is not known. */
static const char *fault_sp(const void *uc)
{
#if defined(__x86_64__)
    return (const char *)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (const char *)((const ucontext_t *)uc)->uc_mcontext.sp;
#else
    (void)uc;
    return NULL;
#endif
}

/* sp is on this thread's alternate signal stack: the fault came from a
 * signal handler, not from the coroutine's own frames. */
static bool on_altstack(const char *sp)
{
    stack_t ss;

    if (sigaltstack(NULL, &ss) == -1 || (ss.ss_flags & SS_DISABLE))
        return false;
    return sp >= (char *)ss.ss_sp && sp < (char *)ss.ss_sp + ss.ss_size;
}

/* Is the fault at addr, with the stack pointer at sp, co's overflow? It
 * is when
 *  - addr is in the guard region: a frame reached it (CORIO__BY_GUARD);
 *  - sp is in the guard region, or below the stack with addr between sp and
 *    the stack: a frame larger than the guard moved the stack pointer past
 *    it and faulted on its own memory (CORIO__BY_FAULT_SP; a guarded stack,
 *    or a compact stack at the low end of its slab).
 * Returns how, or -1 for any other fault (a NULL pointer, a wild write),
 * even in a coroutine whose stack is nearly full. */
static int overflow_how(const corio_coro *co, const char *addr, const char *sp)
{
    const char *lo = co->stack.lo;
    const char *guard = lo;

    if (co->stack.mode == CORIO_STACK_GUARDED)
        guard = lo - CORIO__GUARD;
    if (addr >= guard && addr < lo)
        return CORIO__BY_GUARD;
    if (sp == NULL || sp >= lo || on_altstack(sp))
        return -1;
    if (sp >= guard)
        return CORIO__BY_FAULT_SP;
    /* A push or a store just below sp faults with addr a little under it. */
    if (addr >= sp - corio__page_size() && addr < lo)
        return CORIO__BY_FAULT_SP;
    return -1;
}

/* ---- The handler ------------------------------------------------------ */

enum { HANDLER_UNSET, HANDLER_ON, HANDLER_OFF };

static pthread_mutex_t handler_mu = PTHREAD_MUTEX_INITIALIZER;
static int handler_state; /* HANDLER_*: written under handler_mu */
static struct sigaction old_segv; /* the action ours replaced */

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    corio_coro *co = corio_coro_self();
    int how = co != NULL ? overflow_how(co, si->si_addr, fault_sp(uc)) : -1;

    if (how != -1)
        corio__overflow_abort(co, (enum corio__overflow_how)how);
    /* Not an overflow: the previous action takes over, and gets the fault
     * when it repeats as this handler returns, as if corio were not there.
     * (Ours stays off from then on: the previous handler may expect to be
     * the only one.) */
    sigaction(sig, &old_segv, NULL);
}

static bool ours_installed(void)
{
    struct sigaction cur;

    return sigaction(SIGSEGV, NULL, &cur) == 0 &&
           (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_segv;
}

/* Under handler_mu. */
static int install_locked(void)
{
    struct sigaction sa;

    if (ours_installed())
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, &old_segv);
}

/* Under handler_mu. A handler installed over ours since is left alone:
 * restoring what ours replaced would remove it. */
static int remove_locked(void)
{
    if (!ours_installed())
        return 0;
    return sigaction(SIGSEGV, &old_segv, NULL);
}

/* ---- Alternate signal stacks ------------------------------------------ */

#define ALTSTACK_SIZE (64 * 1024)

/* This thread has an alternate signal stack, made here or found. */
static __thread bool thread_ready;
static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;

static void altstack_free(void *p)
{
    stack_t ss = {.ss_flags = SS_DISABLE};

    sigaltstack(&ss, NULL);
    free(p);
}

static void altstack_key_make(void)
{
    pthread_key_create(&altstack_key, altstack_free);
}

/* Give the thread an alternate signal stack unless it has one (ASan
 * installs its own). Returns 0, or -1 with errno ENOMEM. */
static int thread_altstack(void)
{
    stack_t ss, old;

    if (thread_ready)
        return 0;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
        thread_ready = true;
        return 0;
    }
    pthread_once(&altstack_once, altstack_key_make);
    ss.ss_size = ALTSTACK_SIZE;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    if (ss.ss_sp == NULL)
        return -1;
    if (sigaltstack(&ss, NULL) == -1) {
        free(ss.ss_sp);
        return -1;
    }
    pthread_setspecific(altstack_key, ss.ss_sp); /* freed at thread exit */
    thread_ready = true;
    return 0;
}

void corio__overflow_prepare(void)
{
    int state;

    if (CORIO_LIKELY(thread_ready))
        return;
    state = __atomic_load_n(&handler_state, __ATOMIC_ACQUIRE);
    if (state == HANDLER_UNSET) {
        pthread_mutex_lock(&handler_mu);
        if (handler_state == HANDLER_UNSET && install_locked() == 0)
            __atomic_store_n(&handler_state, HANDLER_ON, __ATOMIC_RELEASE);
        state = handler_state;
        pthread_mutex_unlock(&handler_mu);
    }
    if (state == HANDLER_ON)
        thread_altstack();
}

int corio_coro_set_overflow_handler(bool enabled)
{
    int rc;

    pthread_mutex_lock(&handler_mu);
    rc = enabled ? install_locked() : remove_locked();
    if (rc == 0)
        __atomic_store_n(&handler_state, enabled ? HANDLER_ON : HANDLER_OFF,
                         __ATOMIC_RELEASE);
    pthread_mutex_unlock(&handler_mu);
    if (rc == 0 && enabled)
        rc = thread_altstack(); /* this thread's coroutines are covered now */
    return rc;
}

/* fork() copies only the forking thread: the handler's mutex is taken around it. */
CORIO__FORK_LOCK(handler, handler_mu)
