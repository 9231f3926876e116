/* src/proc/ipc_int.h -- what the Queue, the Pipe and the prefork supervisor
 * share (src/proc/ipc_wait.c): futexes on shared memory, telling whether a
 * process is dead, and waiting the way the caller may wait (a task
 * suspends, a plain thread blocks, a loop callback must not wait). */
#ifndef CORIO_PROC_IPC_INT_H
#define CORIO_PROC_IPC_INT_H

#include "corio/ipc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Where a blocking call runs: what it may do when it has to wait. */
enum corio__ipc_ctx {
    CORIO__IPC_THREAD,      /* a plain thread (no task): block it */
    CORIO__IPC_TASK,        /* a task: suspend it, the loop goes on */
    CORIO__IPC_CALLBACK,    /* a loop callback: must not wait (EDEADLK) */
};

/* The caller's context, after the checks of an I/O call that may move
 * `bytes` bytes (corio__budget_spend: cancellation and scopes stick, and a
 * task that never waits yields now and then): returns -1 with errno
 * ECANCELED or ETIMEDOUT if a task is cancelled or its scope expired. */
int corio__ipc_enter(size_t bytes, enum corio__ipc_ctx *ctx);

/* This process's pid, without a system call (getpid is one): cached, and
 * forgotten in a forked child. */
pid_t corio__ipc_pid(void);

/* ---- The wake-up handshake ----
 * A side that may sleep raises its flag, then checks the ring again; the
 * other side stores to the ring, then checks the flag: one of the two must
 * see the other's store, and on x86 as elsewhere that takes a full barrier
 * between each side's store and its load. Stores and checks happen per
 * message, sleeps rarely, so the cost goes to the sleeper (Linux's
 * membarrier, as liburcu does it): a process registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED needs only a compiler barrier on its
 * per-message side (corio__ipc_waker_fence), and a sleeper calls
 * corio__ipc_sleeper_fence, whose membarrier makes every running thread of
 * every registered process pass a full barrier (a thread not running has
 * passed one when it was switched out). A process where registration
 * fails uses a full fence on both sides. corio__ipc_sleeper_fence returns
 * false if its membarrier failed: the sleeper then waits in short slices
 * (CORIO__IPC_BLIND_SLICE), re-checking, as a registered peer may not
 * have seen its flag. */
extern pid_t corio__ipc_asym_pid;   /* the pid registered, 0 none */
void corio__ipc_waker_fence_slow(void);
bool corio__ipc_sleeper_fence(void);
#define CORIO__IPC_BLIND_SLICE (1000 * 1000LL)   /* 1 ms */

static inline void corio__ipc_waker_fence(void)
{
    pid_t asym = __atomic_load_n(&corio__ipc_asym_pid, __ATOMIC_RELAXED);

    if (__builtin_expect(asym != 0 && asym == corio__ipc_pid(), 1))
        atomic_signal_fence(memory_order_seq_cst);
    else
        corio__ipc_waker_fence_slow();
}

/* A pause inside a spin loop. */
static inline void corio__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* FUTEX_WAIT on a word of shared memory (not private: other processes wake
 * it) while it holds val, until deadline (absolute, corio_now(); -1 none).
 * Returns 0 (woken, or the word had changed), -1 with errno ETIMEDOUT;
 * EINTR is returned as 0 (the caller re-checks). */
int corio__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline);

/* Wake every waiter of word, in every process. */
void corio__futex_wake_all(_Atomic uint32_t *word);

/* Wait, as the caller's context allows, until *word no longer holds val or
 * deadline passes: a plain thread blocks in the futex; a task hands the
 * futex wait to a waker thread of its own and suspends until that thread
 * reports (see ipc_wait.c). Returns 0 (the word changed, or may have:
 * re-check), or -1 with errno ETIMEDOUT, ECANCELED, EDEADLK, ENOMEM,
 * EAGAIN (no thread could be made). */
int corio__ipc_wait_word(enum corio__ipc_ctx ctx, _Atomic uint32_t *word,
                         uint32_t val, int64_t deadline);

/* Wait until fd is readable or deadline: corio_fd_wait in a task, poll(2)
 * in a plain thread. Returns 0, or -1 with errno ETIMEDOUT, ECANCELED,
 * EDEADLK, EBUSY. */
int corio__ipc_wait_fd(enum corio__ipc_ctx ctx, int fd, int64_t deadline);

/* True if pid has ended (gone, or a zombie not yet reaped): a slot it
 * holds in shared memory will never be released by it. */
bool corio__pid_is_dead(pid_t pid);

/* The argument check of a put, get, send or receive: true (errno EINVAL)
 * if obj is NULL, or buf is NULL with len > 0. */
static inline bool corio__ipc_bad_args(const void *obj, const void *buf,
                                       size_t len)
{
    if (obj == NULL || (buf == NULL && len > 0)) {
        errno = EINVAL;
        return true;
    }
    return false;
}

/* The earlier of two deadlines (-1 is none, later than any). */
static inline int64_t corio__deadline_min(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

#endif
