/* include/corio/thread.h -- threads, the objects that synchronise them, and
 * the thread pool executor. Part of corio.h.
 *
 * Python's threading and queue modules, and asyncio's run_in_executor:
 *
 *   threads     corio_thread_start runs a function on a new OS thread,
 *               optionally as the main task of a loop of its own (as
 *               corio_run, without the signals); names (MainThread,
 *               Thread-N, or given), join with a deadline, detach.
 *   objects     corio_tlock, corio_rlock, corio_tcond, corio_tsem,
 *               corio_tevent, corio_barrier, corio_tchan: thread-safe
 *               (the "t"), unlike corio/sync.h's, which serve the tasks of
 *               one loop. Every call on them may be made from any thread.
 *               A waiting call made in a task parks only that task (its loop
 *               keeps running its other tasks); on a thread's own stack with
 *               a loop it runs that loop while it waits; on a plain thread
 *               (no loop) it sleeps on a futex. The uncontended lock and
 *               semaphore paths are one atomic operation.
 *   the pool    worker threads that run blocking C code while a task waits.
 *
 * Waiting calls take an absolute deadline last (corio_now() clock; -1: none;
 * 0: do not wait), and the caller's deadline scopes apply. Cancellation
 * sticks: once the calling task is cancelled (or a scope has expired), every
 * waiting call fails at once with ECANCELED (ETIMEDOUT), ready or not. In a
 * loop callback a call that would have to wait fails with EDEADLK.
 *
 * Wake-ups hand nothing over: a woken waiter tries again (a lock may be
 * taken by a thread that came later: no FIFO guarantee, as Python's), so a
 * waiter that gives up loses nothing but its turn, which passes to the next
 * waiter.
 *
 * The pool's own calls (corio_pool_new, _free, _size, _default) may be made
 * from any thread. The waiting calls (corio_pool_run,
 * corio_pool_submit's future) belong to the calling thread's loop, as every blocking
 * call does. Jobs run with every asynchronous signal blocked (see
 * corio_pool_new), so SIGINT and SIGTERM reach corio_run's signalfd. */
#ifndef CORIO_THREAD_H
#define CORIO_THREAD_H

#include "corio/task.h"
#include "corio/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Threads -------------------------------------------------------------
 * threading.Thread. Each thread has a name: "MainThread" for the process's
 * main thread, the given one, or "Thread-N" (N counting from 1 in start
 * order); threads corio did not start are "Dummy-N", pool workers
 * "corio-pool-N". The OS name (top -H, gdb) is set to its first 15 bytes. */
typedef struct corio_thread corio_thread;

/* The longest name, in bytes without the terminating NUL. */
#define CORIO_THREAD_NAME_MAX 63

typedef struct corio_thread_opts {
    const char *name;   /* NULL: "Thread-N"; copied */
    bool loop;          /* run fn as the main task of a loop of the
                           thread's own (corio_run without the signals,
                           which stay the main thread's): fn may then spawn
                           tasks and use every blocking call; its error is
                           read with corio_thread_error */
    size_t stack_size;  /* 0: the system's default */
} corio_thread_opts;

/* Start a thread running fn(arg) (opts NULL: all defaults). The caller owns
 * the handle: join or detach it, then free it with corio_thread_free (the
 * handle stays valid until then, whatever the thread does). Returns NULL
 * with errno EINVAL (fn NULL, a name longer than CORIO_THREAD_NAME_MAX, a
 * stack_size below PTHREAD_STACK_MIN), EAGAIN (thread limit), ENOMEM. Any
 * thread. */
CORIO_EXPORT corio_thread *corio_thread_start(corio_fn fn, void *arg,
                                              const corio_thread_opts *opts);

/* Wait until t has ended, until deadline, and take fn's return value into
 * *result (may be NULL; with opts.loop: the main task's result, NULL if it
 * failed). A thread is joined once. Returns 0, or -1 with errno:
 *   ETIMEDOUT  the deadline passed (t can be joined again later);
 *   ECANCELED  the calling task was cancelled;
 *   EINVAL     t is NULL, was joined or detached, or another join waits;
 *   EDEADLK    t is the calling thread, or a loop callback would wait.
 * A task that joins parks; its loop keeps running. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_thread_join(corio_thread *t, void **result,
                                   int64_t deadline);

/* Never join t: its resources go when it ends. The handle stays valid until
 * corio_thread_free. Returns 0, or -1 with errno EINVAL (NULL, joined or
 * detached already, or a join waits). */
CORIO_EXPORT int corio_thread_detach(corio_thread *t);

/* Free the handle. A thread neither joined nor detached is detached (it
 * runs on). corio_thread_free(NULL) returns 0. Returns 0, or -1 with errno
 * EBUSY (a join waits on t). */
CORIO_EXPORT int corio_thread_free(corio_thread *t);

/* True until t's function has returned (false for NULL). */
CORIO_EXPORT bool corio_thread_is_alive(corio_thread *t);

/* The error of a thread started with opts.loop, once it has ended: its
 * main task's (ECANCELED if it was cancelled...), or 0. 0 for
 * other threads and for NULL. */
CORIO_EXPORT int corio_thread_error(corio_thread *t);

/* t's name; NULL: the calling thread's (threading.current_thread().name).
 * Valid as long as the handle (the calling thread's: until it ends). */
CORIO_EXPORT const char *corio_thread_name(const corio_thread *t);

/* The handle of the calling thread if corio started it, else NULL. */
CORIO_EXPORT corio_thread *corio_thread_self(void);

/* True on the process's main thread (threading.main_thread()). */
CORIO_EXPORT bool corio_thread_is_main(void);

/* ---- Locks ---------------------------------------------------------------
 * threading.Lock: not owned (any thread may release it). */
typedef struct corio_tlock corio_tlock;

/* A new unlocked lock, or NULL with errno ENOMEM. */
CORIO_EXPORT corio_tlock *corio_tlock_new(void);

/* Free l (NULL: 0). Returns 0, or -1 with errno EBUSY (locked, or
 * waited on). */
CORIO_EXPORT int corio_tlock_free(corio_tlock *l);

/* Take l, waiting until deadline. Returns 0, or -1 with errno ETIMEDOUT,
 * ECANCELED, EDEADLK, EINVAL (NULL). A task holding l must not wait for a
 * task of its own loop that waits for l: the loop would never run it. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tlock_acquire(corio_tlock *l, int64_t deadline);

/* Take l if it is free. Returns 0, or -1 with errno EAGAIN, EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tlock_try_acquire(corio_tlock *l);

/* Release l, waking one waiter. Returns 0, or -1 with errno EPERM (not
 * locked), EINVAL. */
CORIO_EXPORT int corio_tlock_release(corio_tlock *l);

CORIO_EXPORT bool corio_tlock_is_locked(const corio_tlock *l);

/* threading.RLock: owned by the task that took it (by the thread, on a
 * thread's own stack); its owner may take it again, and releases it as many
 * times. */
typedef struct corio_rlock corio_rlock;

CORIO_EXPORT corio_rlock *corio_rlock_new(void);
/* Returns 0, or -1 with errno EBUSY (held or waited on). */
CORIO_EXPORT int corio_rlock_free(corio_rlock *l);
/* As corio_tlock_acquire; the owner takes it again at once (EOVERFLOW past
 * UINT_MAX levels). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_rlock_acquire(corio_rlock *l, int64_t deadline);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_rlock_try_acquire(corio_rlock *l);
/* Returns 0, or -1 with errno EPERM (the caller does not own it), EINVAL. */
CORIO_EXPORT int corio_rlock_release(corio_rlock *l);
/* True if the caller owns l. */
CORIO_EXPORT bool corio_rlock_is_owned(const corio_rlock *l);

/* ---- Conditions ------------------------------------------------------------
 * threading.Condition over a corio_tlock. */
typedef struct corio_tcond corio_tcond;

/* A new condition using lock (borrowed: it must outlive the condition).
 * NULL with errno EINVAL (lock NULL), ENOMEM. */
CORIO_EXPORT corio_tcond *corio_tcond_new(corio_tlock *lock);
/* Returns 0, or -1 with errno EBUSY (waited on). */
CORIO_EXPORT int corio_tcond_free(corio_tcond *c);

/* With the lock held: release it, wait for a notify, take it again. The
 * lock is held again on every return, after ETIMEDOUT and ECANCELED too
 * (it is retaken in a shield); EPERM, EDEADLK and EINVAL change nothing.
 * Wake-ups may be spurious: check the predicate in a loop. Returns 0, or -1
 * with errno ETIMEDOUT, ECANCELED, EPERM (the lock is not held), EDEADLK (a
 * loop callback), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tcond_wait(corio_tcond *c, int64_t deadline);

/* Wake n waiters (n >= 0) / all of them. Returns 0, or -1 with errno
 * EINVAL. Call with the lock held, or a wake-up may come before the waiter
 * waits. */
CORIO_EXPORT int corio_tcond_notify(corio_tcond *c, int n);
CORIO_EXPORT int corio_tcond_notify_all(corio_tcond *c);

/* ---- Semaphores ---------------------------------------------------------- */
typedef struct corio_tsem corio_tsem;

/* threading.Semaphore(value) / BoundedSemaphore(value): a bounded one
 * refuses to be released above its initial value. NULL with errno ENOMEM. */
CORIO_EXPORT corio_tsem *corio_tsem_new(unsigned value);
CORIO_EXPORT corio_tsem *corio_tsem_new_bounded(unsigned value);
/* Returns 0, or -1 with errno EBUSY (waited on). */
CORIO_EXPORT int corio_tsem_free(corio_tsem *s);
/* Take one unit. Returns 0, or -1 with errno ETIMEDOUT, ECANCELED,
 * EDEADLK, EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tsem_acquire(corio_tsem *s, int64_t deadline);
/* Returns 0, or -1 with errno EAGAIN (none), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tsem_try_acquire(corio_tsem *s);
/* Give one unit back. Returns 0, or -1 with errno EOVERFLOW (bounded and at
 * its initial value, or UINT_MAX), EINVAL. */
CORIO_EXPORT int corio_tsem_release(corio_tsem *s);
CORIO_EXPORT unsigned corio_tsem_value(const corio_tsem *s);

/* ---- Events ---------------------------------------------------------------- */
typedef struct corio_tevent corio_tevent;

/* threading.Event, clear. NULL with errno ENOMEM. */
CORIO_EXPORT corio_tevent *corio_tevent_new(void);
/* Returns 0, or -1 with errno EBUSY (waited on). */
CORIO_EXPORT int corio_tevent_free(corio_tevent *ev);
/* Set the flag and wake every waiter. Returns 0, or -1 with EINVAL. */
CORIO_EXPORT int corio_tevent_set(corio_tevent *ev);
CORIO_EXPORT int corio_tevent_clear(corio_tevent *ev);
CORIO_EXPORT bool corio_tevent_is_set(const corio_tevent *ev);
/* Wait until the flag is set (a waiter woken by a set succeeds even if the
 * flag was cleared again). Returns 0, or -1 with errno ETIMEDOUT,
 * ECANCELED, EDEADLK, EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tevent_wait(corio_tevent *ev, int64_t deadline);

/* ---- Barriers ---------------------------------------------------------------
 * threading.Barrier: parties callers wait until all have come. A barrier
 * that breaks (a waiter timed out or was cancelled, or corio_barrier_abort)
 * fails its waiters, and every later wait, with ENOTRECOVERABLE
 * (BrokenBarrierError) until corio_barrier_reset. */
typedef struct corio_barrier corio_barrier;

/* NULL with errno EINVAL (parties 0), ENOMEM. */
CORIO_EXPORT corio_barrier *corio_barrier_new(unsigned parties);
/* Returns 0, or -1 with errno EBUSY (waited on). */
CORIO_EXPORT int corio_barrier_free(corio_barrier *b);
/* Wait for the others. Returns this caller's arrival index (0 ..
 * parties-1; the last to come gets parties-1), or -1 with errno
 * ENOTRECOVERABLE (broken), ETIMEDOUT or ECANCELED (this caller gave up:
 * the barrier is broken), EDEADLK, EINVAL, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_barrier_wait(corio_barrier *b, int64_t deadline);
/* Break the barrier (waiters fail with ENOTRECOVERABLE) / make it whole and
 * empty again (waiters of the moment fail with ENOTRECOVERABLE). Return 0,
 * or -1 with EINVAL. */
CORIO_EXPORT int corio_barrier_abort(corio_barrier *b);
CORIO_EXPORT int corio_barrier_reset(corio_barrier *b);
CORIO_EXPORT unsigned corio_barrier_parties(const corio_barrier *b);
/* How many callers wait in the current round (Barrier.n_waiting). */
CORIO_EXPORT unsigned corio_barrier_n_waiting(corio_barrier *b);
CORIO_EXPORT bool corio_barrier_is_broken(corio_barrier *b);

/* ---- Channels across threads -----------------------------------------------
 * queue.Queue(maxsize) and a Go channel: a bounded FIFO of pointers that
 * any number of threads and tasks (on any loops) send to and receive from.
 * Closing: no more sends (CORIO_ECLOSED); receivers get what is buffered,
 * then CORIO_ECLOSED; every waiter wakes. */
typedef struct corio_tchan corio_tchan;

/* A channel of cap items (cap >= 1). NULL with errno EINVAL (cap 0, or too
 * big for memory), ENOMEM. */
CORIO_EXPORT corio_tchan *corio_tchan_new(size_t cap);
/* Free ch; items still buffered are dropped (the caller owns what they
 * point to). Returns 0, or -1 with errno EBUSY (waited on). */
CORIO_EXPORT int corio_tchan_free(corio_tchan *ch);
/* Queue item, waiting for room until deadline. Returns 0, or -1 with errno
 * CORIO_ECLOSED, ETIMEDOUT, ECANCELED, EDEADLK, EINVAL; a failed send
 * queued nothing. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tchan_send(corio_tchan *ch, void *item,
                                  int64_t deadline);
/* Take the oldest item into *item. Returns 0, or -1 with errno
 * CORIO_ECLOSED (closed and empty), ETIMEDOUT, ECANCELED, EDEADLK,
 * EINVAL; a failed receive took nothing. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tchan_recv(corio_tchan *ch, void **item,
                                  int64_t deadline);
/* Never wait: EAGAIN instead (full / empty). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tchan_try_send(corio_tchan *ch, void *item);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_tchan_try_recv(corio_tchan *ch, void **item);
/* Close ch. Returns 0, or -1 with errno CORIO_ECLOSED (closed already),
 * EINVAL. */
CORIO_EXPORT int corio_tchan_close(corio_tchan *ch);
CORIO_EXPORT bool corio_tchan_is_closed(corio_tchan *ch);
CORIO_EXPORT size_t corio_tchan_len(corio_tchan *ch);
CORIO_EXPORT size_t corio_tchan_cap(const corio_tchan *ch);

typedef struct corio_pool corio_pool;

/* ---- Pools ----------------------------------------------------------- */

/* A new pool of nthreads worker threads (0: one per online CPU,
 * sysconf(_SC_NPROCESSORS_ONLN)), all started now. The workers are named
 * "corio-pool-N" (N from 0) and run with every signal blocked except the
 * synchronous ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS,
 * SIGABRT) and SIGPROF. Jobs run in the order they were queued. The caller
 * owns the pool and frees it with corio_pool_free. A pool does not survive
 * fork(): the child must not use it (the default pool is remade there).
 * Returns NULL with errno EAGAIN (thread limit), ENOMEM. Any thread. */
CORIO_EXPORT corio_pool *corio_pool_new(size_t nthreads);

/* Free pool: the jobs still queued are cancelled (they never run; their
 * waiters fail with ECANCELED, their futures become CANCELLED), then the
 * call blocks until the running jobs have returned and joins the workers.
 * The results of those last jobs are delivered as usual. Waiters living on
 * the calling thread's loop see their results once that loop runs again.
 * corio_pool_free(NULL) returns 0. Returns 0, or -1 with errno EDEADLK
 * (called from one of pool's own workers), EINVAL (the default pool, which
 * cannot be freed). Any thread; pool must not be used afterwards. */
CORIO_EXPORT int corio_pool_free(corio_pool *pool);

/* The number of worker threads of pool (0 for NULL). Any thread. */
CORIO_EXPORT size_t corio_pool_size(const corio_pool *pool);

/* The process-wide default pool, made on first use with one worker per
 * online CPU; NULL with errno if it could not be made (the next call tries
 * again). It lives until the process exits and is never freed: its workers
 * may be blocked in a job at exit, and joining them would hang exit()
 * (valgrind lists their thread stacks as "possibly lost", never "definitely
 * lost"). After fork()
 * the child gets a new one on first use. Any thread. */
CORIO_EXPORT corio_pool *corio_pool_default(void);

/* ---- Running a job and waiting for it ----------------------------- */

/* Run fn(arg) on one of pool's workers (NULL: the default pool) and wait for
 * its return value, until deadline (absolute, corio_now() clock; -1: none;
 * deadline scopes apply). Only the calling task waits: the loop and its
 * other tasks keep running. On the thread's own stack it runs the loop until
 * the job is done (as every blocking call does). *result (may be NULL)
 * receives fn's return value.
 *
 * Returns 0, or -1 with errno:
 *   ECANCELED  the calling task was cancelled, or the pool was freed before
 *              the job started;
 *   ETIMEDOUT  the deadline passed;
 *   EDEADLK    called from a callback (callbacks must not block);
 *   CORIO_ECLOSED  the pool is being freed;
 *   EINVAL     fn is NULL; ENOMEM.
 * After ECANCELED or ETIMEDOUT, a job that had not started is taken off the
 * queue and never runs; one that had started runs to its end and its result
 * is discarded (if fn returns memory, that memory is lost: free it in fn, or
 * use corio_pool_submit and free it once the future is done).
 *
 * A job that waits for another job of the same pool can deadlock it (every
 * worker busy waiting), as with any executor: give such jobs their own
 * pool. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_pool_run(corio_pool *pool, corio_fn fn, void *arg,
                                void **result, int64_t deadline);

/* asyncio's run_in_executor: queue fn(arg) on pool (NULL: the default pool)
 * and return at once a new future on the calling thread's loop, completed
 * there with fn's return value once it has run (corio_future_result), or
 * CANCELLED (error ECANCELED) if pool is freed before the job starts. Wait
 * for it with corio_future_wait; it keeps corio_loop_run_until_idle going until it is
 * done.
 *
 * Cancelling the future (corio_future_cancel) takes a job that has not
 * started off the queue: it never runs; a job already running runs to its
 * end and its result is discarded.
 *
 * The caller owns the future: free it with corio_future_free, done or not
 * (for a pending one, a job not started never runs, one running runs to
 * its end and its result is discarded). Its loop must not
 * be closed while it is pending.
 * Returns NULL with errno EINVAL (fn is NULL), CORIO_ECLOSED (the pool is
 * being freed), ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_future *corio_pool_submit(corio_pool *pool, corio_fn fn,
                                             void *arg);

#ifdef __cplusplus
}
#endif
#endif
