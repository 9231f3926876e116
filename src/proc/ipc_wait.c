/* src/proc/ipc_wait.c -- waiting on shared memory, for the Queue and the
 * Pipe: futexes, the waker threads that make a futex awaitable from a task,
 * and telling a dead process from a live one.
 *
 * A futex cannot be polled, so a task cannot park on one in its loop. A
 * task that must wait on a futex word starts a waker thread (detached, 64
 * KiB of stack, every signal blocked) that sleeps in FUTEX_WAIT for it and
 * completes a future on the task's loop when the word changes (or its
 * deadline passes); the task waits for that future like any other, so the
 * loop's other tasks run meanwhile, and cancellation and scopes apply. A
 * task that gives up (cancelled, deadline) bumps the word and wakes it, so
 * its thread ends at once; the bump is harmless because every word waited
 * on here is an event count that waiters only re-check (counting in steps
 * of 2: bit 0 is the queue's "somebody sleeps" flag, left alone). This is the slow
 * path of a slow path: a thread is made only when a queue is empty (or
 * full) and a task must wait; the put or get that finds room or a message
 * makes no system call. docs/proc.md ("Queue and Pipe") says why a thread
 * rather than a per-waiter eventfd.
 *
 * What this file does not do: decide when to wait (queue.c, pipe.c). */
#define _GNU_SOURCE
#include "ipc_int.h"
#include "corio/task.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/membarrier.h>
#endif

static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
    __atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
}

static void pid_init(void)
{
    pthread_atfork(NULL, NULL, pid_forget);
}

pid_t corio__ipc_pid(void)
{
    pid_t pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

    if (pid == 0) {
        pthread_once(&pid_once, pid_init);
        pid = getpid();
        __atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
    }
    return pid;
}

/* ---- The wake-up handshake (ipc_int.h) ---- */

pid_t corio__ipc_asym_pid;
static pid_t asym_tried;   /* the pid whose registration failed */

/* (MEMBARRIER_CMD_* are enumerators, not macros: the system call's
 * number says whether there is one.) */
static long membarrier(int cmd)
{
#ifdef __NR_membarrier
    return syscall(__NR_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    errno = ENOSYS;
    return -1;
#endif
}

void corio__ipc_waker_fence_slow(void)
{
    pid_t pid = corio__ipc_pid();

    /* The first call of this process (a forked child registers anew; a
     * registration, the system call itself, is a full barrier). */
    atomic_thread_fence(memory_order_seq_cst);
    if (__atomic_load_n(&asym_tried, __ATOMIC_RELAXED) == pid)
        return;
    if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
        __atomic_store_n(&corio__ipc_asym_pid, pid, __ATOMIC_RELAXED);
        return;
    }
    __atomic_store_n(&asym_tried, pid, __ATOMIC_RELAXED);
}

bool corio__ipc_sleeper_fence(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

int corio__ipc_enter(size_t bytes, enum corio__ipc_ctx *ctx)
{
    corio_loop *loop;

    if (corio__budget_spend(bytes) == -1)
        return -1;
    loop = corio__current_loop;
    if (loop != NULL && loop->current != NULL)
        *ctx = CORIO__IPC_TASK;
    else if (loop != NULL && loop->running)
        *ctx = CORIO__IPC_CALLBACK;
    else
        *ctx = CORIO__IPC_THREAD;
    return 0;
}

int corio__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    long r;

    if (deadline >= 0) {
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, the
         * clock of corio_now(). */
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val, tsp,
                NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return -1;
    return 0;   /* woken, EAGAIN (changed), EINTR: the caller re-checks */
}

void corio__futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- Waker threads ------------------------------------------------------ */

/* One task's wait, shared by the task and its thread; the last of the two
 * to let go frees it (refs under mu). */
struct waker {
    pthread_mutex_t mu;
    int refs;                   /* 2, then 1, then freed */
    _Atomic bool abandoned;     /* the task gave up: deliver nothing */
    _Atomic uint32_t *word;
    uint32_t val;
    int64_t deadline;
    corio_future *f;            /* the task's; completed under mu */
};

static void waker_release(struct waker *w)
{
    int refs;

    pthread_mutex_lock(&w->mu);
    refs = --w->refs;
    pthread_mutex_unlock(&w->mu);
    if (refs == 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

static void *waker_main(void *arg)
{
    struct waker *w = arg;

    while (!atomic_load(&w->abandoned) && atomic_load(w->word) == w->val) {
        if (corio__futex_wait(w->word, w->val, w->deadline) == -1)
            break;
    }
    /* Under mu, so that a task abandoning the wait (and then freeing the
     * future) sees either no completion or a whole one on its way, which
     * corio_future_free lets go first. */
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->abandoned))
        (void)corio_future_set_result_threadsafe(w->f, NULL);
    pthread_mutex_unlock(&w->mu);
    waker_release(w);
    return NULL;
}

static int waker_start(struct waker *w)
{
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t th;
    int err;

    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&th, &attr, waker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* The task's side: start the thread, wait for its future, let go. */
static int wait_word_task(_Atomic uint32_t *word, uint32_t val,
                          int64_t deadline)
{
    struct waker *w = calloc(1, sizeof(*w));
    int rc, err;

    if (w == NULL)
        return -1;
    pthread_mutex_init(&w->mu, NULL);
    w->refs = 2;
    w->word = word;
    w->val = val;
    w->deadline = deadline;
    w->f = corio_future_new();
    if (w->f == NULL || waker_start(w) == -1) {
        err = errno;
        corio_future_free(w->f);
        pthread_mutex_destroy(&w->mu);
        free(w);
        errno = err;
        return -1;
    }
    rc = corio_future_wait(w->f, deadline);
    err = errno;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->abandoned, true);
    pthread_mutex_unlock(&w->mu);
    if (rc == -1) {
        /* Free the thread from its futex wait now (see the file's top). */
        atomic_fetch_add(word, 2);
        corio__futex_wake_all(word);
    }
    corio_future_free(w->f);
    waker_release(w);
    errno = err;
    return rc;
}

int corio__ipc_wait_word(enum corio__ipc_ctx ctx, _Atomic uint32_t *word,
                         uint32_t val, int64_t deadline)
{
    switch (ctx) {
    case CORIO__IPC_TASK:
        return wait_word_task(word, val, deadline);
    case CORIO__IPC_CALLBACK:
        errno = EDEADLK;
        return -1;
    case CORIO__IPC_THREAD:
        break;
    }
    if (deadline >= 0 && corio_now() >= deadline) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (corio__futex_wait(word, val, deadline) == -1) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

int corio__ipc_wait_fd(enum corio__ipc_ctx ctx, int fd, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int64_t left;
    int r;

    switch (ctx) {
    case CORIO__IPC_TASK:
        return corio_fd_wait(fd, CORIO_READ, deadline) == -1 ? -1 : 0;
    case CORIO__IPC_CALLBACK:
        errno = EDEADLK;
        return -1;
    case CORIO__IPC_THREAD:
        break;
    }
    for (;;) {
        left = -1;
        if (deadline >= 0) {
            left = deadline - corio_now();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
        /* Round up: a poll that ends before the deadline only loops. */
        r = poll(&pfd, 1, left < 0 ? -1 : (int)((left + 999999) / 1000000));
        if (r > 0)
            return 0;
        if (r == -1 && errno != EINTR)
            return -1;
    }
}

/* ---- Dead processes ----------------------------------------------------- */

bool corio__pid_is_dead(pid_t pid)
{
    char path[64], buf[512], *p;
    ssize_t n;
    int fd;

    if (pid <= 0)
        return true;
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return true;
    /* A zombie still answers kill(): look at its state. */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}
