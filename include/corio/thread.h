/* include/corio/thread.h -- the thread pool executor: running blocking C
 * code on worker threads while the loop keeps going. Part of corio.h.
 *
 * asyncio's run_in_executor and to_thread. A job is any function
 * `void *fn(void *arg)`: it may block (sleep, read, compute) as long as it
 * likes, on a worker thread. The task that waits for it is suspended like
 * any other blocking call, so the other tasks of its loop keep running; a
 * deadline or a cancellation ends the wait. A job still queued when its
 * waiter gives up is taken off the queue and never runs; a job already
 * running cannot be stopped: it runs to its end on the worker and its
 * result is discarded.
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
