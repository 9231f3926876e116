/* src/task/run.c -- corio_run, asyncio.run for C: a fresh loop, a main
 * task, SIGINT/SIGTERM turned into its cancellation, and a clean close.
 *
 * The signals are handled by the loop (corio_loop_add_signal_handler: a
 * signalfd), so a Ctrl+C is an ordinary loop event: the main task is
 * cancelled at its current blocking call, and, cancellation sticking, every
 * later one, so every cleanup runs and the program ends. A second SIGINT
 * means the program is stuck: the default action is restored and the
 * signal raised again, so the process ends at once (asyncio's Runner does
 * the same). Everything is per call: two threads each in corio_run see
 * their own signals. */
#include "task_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

/* The state of one corio_run, on its stack. */
struct run {
    corio_task *main;
    int sig;                        /* the first signal, or 0 */
    int nint;                       /* SIGINTs seen */
};

static __thread int last_signal;

int corio_run_signal(void)
{
    return last_signal;
}

/* ---- Process-directed signals ------------------------------------------------
 * kill(pid, SIGINT) (a Ctrl+C) goes to any thread that does not block it.
 * While a corio_run is active, such a thread forwards it to the newest
 * corio_run thread, which blocks it and reads it from its loop's signalfd.
 * The threads are kept in a small array that the handler reads without a
 * lock (pthread_kill is async-signal-safe). */
#define RUN_SLOTS 64

static struct {
    int used;                       /* atomic */
    pthread_t thread;
} slots[RUN_SLOTS];
static pthread_mutex_t fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static int fwd_users;
static struct sigaction old_int, old_term;

static void forward_signal(int sig)
{
    int err = errno;

    for (int i = RUN_SLOTS - 1; i >= 0; i--) {
        /* Never to itself: a corio_run thread blocks the signal, so it
         * only gets here between its loop's close and forward_stop. */
        if (__atomic_load_n(&slots[i].used, __ATOMIC_ACQUIRE) &&
            !pthread_equal(slots[i].thread, pthread_self())) {
            pthread_kill(slots[i].thread, sig);
            break;
        }
    }
    errno = err;
}

static int forward_start(void)
{
    int slot = -1;

    pthread_mutex_lock(&fwd_mu);
    for (int i = 0; i < RUN_SLOTS && slot < 0; i++)
        if (!__atomic_load_n(&slots[i].used, __ATOMIC_ACQUIRE))
            slot = i;
    if (slot >= 0) {
        slots[slot].thread = pthread_self();
        __atomic_store_n(&slots[slot].used, 1, __ATOMIC_RELEASE);
        if (fwd_users++ == 0) {
            struct sigaction fwd;

            memset(&fwd, 0, sizeof(fwd));
            fwd.sa_handler = forward_signal;
            fwd.sa_flags = SA_RESTART;
            sigfillset(&fwd.sa_mask);
            sigaction(SIGINT, &fwd, &old_int);
            sigaction(SIGTERM, &fwd, &old_term);
        }
    }
    pthread_mutex_unlock(&fwd_mu);
    return slot;
}

static void forward_stop(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&fwd_mu);
    __atomic_store_n(&slots[slot].used, 0, __ATOMIC_RELEASE);
    if (--fwd_users == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    pthread_mutex_unlock(&fwd_mu);
}

/* ---- corio_run ------------------------------------------------------------ */

static void on_signal(int sig, void *arg)
{
    struct run *r = arg;

    if (sig == SIGINT && ++r->nint >= 2) {
        /* The first did not stop it: stop the process, as the default
         * action would have. */
        sigset_t one;

        signal(SIGINT, SIG_DFL);
        sigemptyset(&one);
        sigaddset(&one, SIGINT);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(SIGINT);
        return;
    }
    if (r->sig == 0)
        r->sig = sig;
    last_signal = r->sig;
    if (r->main != NULL)
        corio_task_cancel(r->main);
}

int corio_run(corio_fn fn, void *arg, void **result)
{
    corio_loop *prev = corio__loop_peek(), *loop;
    corio_task_attr attr = {.name = "main"};
    struct run r = {0};
    int err = 0, slot;

    if (prev != NULL && prev->running) {
        errno = EBUSY;
        return -1;
    }
    loop = corio_loop_new();
    if (loop == NULL)
        return -1;
    corio_loop_set_current(loop);
    last_signal = 0;
    /* Without signals (a seccomp sandbox, no fds left) the program still
     * runs; it only cannot be cancelled by them. */
    if (corio_loop_add_signal_handler(loop, SIGINT, on_signal, &r) == 0)
        corio_loop_add_signal_handler(loop, SIGTERM, on_signal, &r);
    slot = forward_start();

    attr.loop = loop;
    r.main = corio_task_spawn(fn, arg, &attr);
    if (r.main == NULL) {
        err = errno;
        goto out_close;
    }
    if (corio_task_join(r.main, result) == -1)
        err = errno;
    r.main = NULL;

out_close:
    /* Signals keep coming to this loop while its cleanup runs (other
     * threads forward them); forwarding ends after (never to itself). */
    corio_loop_close(loop); /* cancels and finishes the other tasks, and
                               gives the signals back */
    forward_stop(slot);
    corio_loop_set_current(prev);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- fork ------------------------------------------------------------------
 * fork() copies only the forking thread: fwd_mu is taken around it, and in
 * the child the other threads' slots are cleared (pthread_kill to a thread
 * that does not exist there is undefined); with none left, the handlers
 * corio_run replaced are put back (src/proc/fork.c). */
static void fwd_fork_lock(void)
{
    pthread_mutex_lock(&fwd_mu);
}

static void fwd_fork_parent(void)
{
    pthread_mutex_unlock(&fwd_mu);
}

/* Clear the slots of the threads but the calling one (all of them if
 * !keep_self); with none left, put the old handlers back. Under fwd_mu. */
static void fwd_forget(bool keep_self)
{
    int users = 0;

    for (int i = 0; i < RUN_SLOTS; i++) {
        if (!slots[i].used)
            continue;
        if (keep_self && pthread_equal(slots[i].thread, pthread_self()))
            users++;
        else
            slots[i].used = 0;
    }
    if (fwd_users > 0 && users == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    fwd_users = users;
}

static void fwd_fork_child(void)
{
    fwd_forget(true);
    pthread_mutex_unlock(&fwd_mu);
}

void corio__run_fork_child(void)
{
    pthread_mutex_lock(&fwd_mu);
    fwd_forget(false);
    pthread_mutex_unlock(&fwd_mu);
}

__attribute__((constructor)) static void fwd_fork_register(void)
{
    pthread_atfork(fwd_fork_lock, fwd_fork_parent, fwd_fork_child);
}
