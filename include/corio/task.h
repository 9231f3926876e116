/* include/corio/task.h -- tasks, futures, cancellation, corio_run. Part of
 * corio.h (sleeping and scopes are in corio/loop.h).
 *
 * A task is a coroutine run by the thread's event loop (asyncio's Task,
 * gevent's greenlet). Blocking calls (corio_sleep, corio_task_join,
 * corio_future_wait, corio_fd_wait, the sync primitives) suspend only the
 * calling task. Called on the thread's own stack, outside any task, they run
 * the loop until they can return, so a plain main() can spawn tasks and join
 * them (gevent's joinall, asyncio's run_until_complete).
 *
 * Cancellation reaches a task only at a blocking call, which then fails with
 * ECANCELED; the task cleans up and returns, and ends CANCELLED. */
#ifndef CORIO_TASK_H
#define CORIO_TASK_H

#include "corio/loop.h"
#include "corio/error.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_task corio_task;
typedef struct corio_future corio_future;

/* The states of a future, and of a task (asyncio's, plus RUNNING). */
enum corio_state {
    CORIO_PENDING = 0,   /* not finished (a task: not started, or waiting) */
    CORIO_RUNNING = 1,   /* tasks only: the task running now */
    CORIO_DONE = 2,      /* finished with a result or an error */
    CORIO_CANCELLED = 3, /* finished by cancellation */
};

/* The name of a state: "pending", "running", "done", "cancelled". */
CORIO_EXPORT const char *corio_state_name(enum corio_state state);

/* ---- Tasks ------------------------------------------------------------ */

typedef struct corio_task_attr {
    const char *name;    /* copied (31 bytes); NULL: "Task-N" */
    size_t stack_size;   /* as corio_coro_attr; 0 = default */
    enum corio_stack_mode stack_mode;
    corio_loop *loop;    /* NULL: the thread's current loop */
} corio_task_attr;

/* Spawn fn(arg) as a task on the loop: it starts at the loop's next
 * iteration. The caller owns the task: join it (corio_task_join) or detach it
 * (corio_task_detach), exactly once. Returns NULL with errno EINVAL, ENOMEM.
 * `corio_task_spawn` records the file and line it was called from, for
 * corio_task_dump_all. */
#define corio_task_spawn(fn, arg, attr) \
    corio_task_spawn_at((fn), (arg), (attr), __FILE__, __LINE__)
CORIO_WARN_UNUSED
CORIO_EXPORT corio_task *corio_task_spawn_at(corio_fn fn, void *arg,
                                        const corio_task_attr *attr,
                                        const char *file, int line);

/* Wait until t finishes, then free it (asyncio's `await task`). *result
 * (may be NULL) receives fn's return value. Returns 0, or -1 with errno: the
 * task's error if it failed (corio_task_fail), ECANCELED if t was cancelled,
 * EINVAL if t is NULL, the calling task, detached, a group's child, or
 * unfinished on a loop other than the caller's, EDEADLK in a callback (t is
 * then left as it was). If the caller is cancelled (or its scope expires)
 * while it waits, t is cancelled too, join waits in a shield until t has
 * ended (its cleanup has run), frees it, and fails with ECANCELED (or
 * ETIMEDOUT): a join never gives a task up silently. A finished t is
 * joined even by a cancelled caller. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_task_join(corio_task *t, void **result);

/* Wait until t finishes or deadline passes, without freeing it. Returns 0
 * (t is finished), or -1 with errno ETIMEDOUT, ECANCELED (the caller is
 * cancelled: cancellation sticks, finished or not), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_task_wait(corio_task *t, int64_t deadline);

/* gevent's joinall: join every task of ts[0..n), in order. results (may be
 * NULL) receives each result. Returns 0 if all succeeded, else -1 with the
 * errno of the first (in array order) that failed. Every task is freed; if
 * the caller is cancelled (or its scope expires), the tasks not finished
 * are cancelled and waited for (as corio_task_join), and it fails with
 * ECANCELED (ETIMEDOUT). EINVAL and EDEADLK leave every task as it was. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_task_join_all(corio_task **ts, size_t n, void **results);

/* Give t up: it runs to its end and frees itself. Returns 0, or -1 EINVAL. */
CORIO_EXPORT int corio_task_detach(corio_task *t);

/* Request cancellation: t's current or next blocking call fails with
 * ECANCELED. If t has not started it never runs. Returns 1 if the request
 * was made (t was not finished), 0 if t has finished already; -1 EINVAL. */
CORIO_EXPORT int corio_task_cancel(corio_task *t);

/* The running task, or NULL on the thread's own stack or in a callback. */
CORIO_EXPORT corio_task *corio_task_self(void);

/* Called by a task on its way out: make the task fail with err (> 0), and
 * return NULL, so that `return corio_task_fail(EIO);` ends it as failed. */
CORIO_EXPORT void *corio_task_fail(int err);

/* True if the caller's next blocking call would fail at once: its task is
 * cancelled, or a scope it is in has expired or been cancelled (outside
 * shields). Long computations that never block poll it. */
CORIO_EXPORT bool corio_task_self_cancelled(void);

CORIO_EXPORT enum corio_state corio_task_state(const corio_task *t);
CORIO_EXPORT const char *corio_task_name(const corio_task *t);
CORIO_EXPORT bool corio_task_is_done(const corio_task *t);

/* Once t is finished: its result (NULL if it failed or was cancelled) and
 * its error (0, the corio_task_fail error, or ECANCELED). */
CORIO_EXPORT void *corio_task_result(const corio_task *t);
CORIO_EXPORT int corio_task_error(const corio_task *t);

/* The future that completes with t (for the combinators and callbacks). It
 * belongs to t. */
CORIO_EXPORT corio_future *corio_task_future(corio_task *t);

/* Write one line per live task of the current loop (id, name, state, where
 * it was spawned) to out. Returns the number of tasks. */
CORIO_EXPORT int corio_task_dump_all(FILE *out);

/* Number of live (unfinished) tasks on the current loop. */
CORIO_EXPORT size_t corio_task_count(void);

/* ---- Futures -----------------------------------------------------------
 * A future is a result that will be set later: by a callback, a task, or
 * another thread (the _threadsafe calls). Tasks wait for it with
 * corio_future_wait. */

/* A new pending future on the current loop. Owned by the caller, freed with
 * corio_future_free. NULL with errno ENOMEM. */
CORIO_EXPORT corio_future *corio_future_new(void);

/* Free f; done callbacks not yet run are dropped. Whatever would complete
 * a pending f lets go of it first (a pool job that has not started never
 * runs; one running has its result discarded), and a completion already on
 * its way from another thread (the _threadsafe calls) is dropped: the
 * memory goes after it. Free a future before closing its loop. Returns 0,
 * or -1 with EBUSY if tasks wait on f (nothing is done), EINVAL if f
 * belongs to a task (join the task). corio_future_free(NULL) returns 0. */
CORIO_EXPORT int corio_future_free(corio_future *f);

/* Complete f with a result, or an error (err > 0). Waiters wake, done
 * callbacks are scheduled. Returns 0, or -1 with EALREADY if f is done,
 * EINVAL. */
CORIO_EXPORT int corio_future_set_result(corio_future *f, void *result);
CORIO_EXPORT int corio_future_set_error(corio_future *f, int err);

/* The same from any thread: the completion happens on f's loop. Returns 0,
 * or -1 with ENOMEM, CORIO_ECLOSED (loop closed). A second completion is
 * ignored. */
CORIO_EXPORT int corio_future_set_result_threadsafe(corio_future *f,
                                                    void *result);
CORIO_EXPORT int corio_future_set_error_threadsafe(corio_future *f, int err);

/* Cancel a pending future: it becomes CANCELLED (error ECANCELED). For a
 * task's future this is corio_task_cancel. Returns 1 if cancelled (or a
 * cancellation requested), 0 if already done, -1 EINVAL. */
CORIO_EXPORT int corio_future_cancel(corio_future *f);

/* Wait until f is done or deadline (absolute, -1: none) passes. Returns 0
 * (f is done: read it with corio_future_result/_error), or -1 with errno
 * ETIMEDOUT, ECANCELED (the caller was cancelled), EINVAL (f is NULL, or
 * pending on a loop other than the caller's: asyncio's "attached to a
 * different loop"). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_future_wait(corio_future *f, int64_t deadline);

CORIO_EXPORT enum corio_state corio_future_state(const corio_future *f);
CORIO_EXPORT bool corio_future_is_done(const corio_future *f);
CORIO_EXPORT void *corio_future_result(const corio_future *f);
CORIO_EXPORT int corio_future_error(const corio_future *f);

/* Call cb(f, arg) on f's loop once f is done (soon, if it is done now).
 * Returns 0, or -1 with ENOMEM, EINVAL. */
typedef void (*corio_done_callback)(corio_future *f, void *arg);
CORIO_EXPORT int corio_future_add_done_callback(corio_future *f,
                                                corio_done_callback cb,
                                                void *arg);

/* ---- Running a program -------------------------------------------------
 * asyncio.run: make a new loop, run fn(arg) as the main task until it ends,
 * cancel the tasks still alive and let them finish (their shielded cleanup
 * for a second at most), close the loop. While it runs, SIGINT and SIGTERM
 * cancel the main task (so Ctrl+C runs every cleanup); a second SIGINT
 * restores its default action and raises it again, so a stuck program
 * stops at once. The signals are this call's: two threads each in corio_run
 * see their own (see corio_loop_add_signal_handler). *result (may be NULL)
 * receives the main task's result. Returns 0, or -1 with errno: the main
 * task's error, or ECANCELED if it was cancelled (by a signal or
 * otherwise), EBUSY (a loop is running on this thread: corio_run from a
 * task), EINVAL (fn is NULL), or an error making the loop. */
CORIO_EXPORT int corio_run(corio_fn fn, void *arg, void **result);

/* The signal that made corio_run cancel its main task (SIGINT, SIGTERM), or
 * 0 if none did. */
CORIO_EXPORT int corio_run_signal(void);

#ifdef __cplusplus
}
#endif
#endif
