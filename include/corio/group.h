/* include/corio/group.h -- waiting on many futures at once (asyncio's
 * gather, wait, as_completed, wait_for, shield) and task groups (Trio's
 * nursery, asyncio's TaskGroup). Part of corio.h.
 *
 * The combinators take futures; a task's future is corio_task_future(t).
 * They never free what they wait on: the tasks stay the caller's, to join
 * (which only frees them once they have finished) or detach. Every future
 * must stay alive, and belong to the calling thread's loop, while a call
 * (or an as_completed iterator) uses it.
 *
 * Like every blocking call they work inside a task, and on the thread's own
 * stack (they run the loop until they return); in a loop callback they fail
 * with EDEADLK. Deadlines are absolute (corio_now() clock), -1 for none, and
 * enclosing deadline scopes (corio_scope_enter) apply to them.
 *
 * Which calls cancel what they wait on, as in asyncio:
 *   corio_futures_gather  yes: on failure, deadline, or the caller's
 *                         cancellation, it cancels the futures not yet done
 *                         and waits for them (a task until it has actually
 *                         finished);
 *   corio_future_await    yes: on its deadline or the caller's cancellation;
 *   corio_futures_wait, corio_as_completed_next, corio_future_await_shielded
 *                         never: a deadline or the caller's cancellation
 *                         leaves the futures running. */
#ifndef CORIO_GROUP_H
#define CORIO_GROUP_H

#include "corio/task.h"
#include "corio/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- gather ------------------------------------------------------------ */

enum corio_gather_mode {
    /* The first future to fail (in completion order; ECANCELED counts) makes
     * gather fail with its error; the others are cancelled first, and
     * gather returns once they have all finished (Trio's rule: asyncio's
     * gather propagates the error but leaves the others running). */
    CORIO_GATHER_FAIL_FAST = 0,
    /* asyncio's return_exceptions=True: wait for all, report each error in
     * errs[i], and succeed. */
    CORIO_GATHER_RETURN_ERRORS = 1,
};

/* Wait until all of fs[0..n) are done (asyncio.gather). results (may be
 * NULL) receives, in argument order, each one's result (NULL for one that
 * failed or was cancelled); errs (may be NULL) each one's error (0,
 * the future's error, or ECANCELED). Both are filled in on failure too, for
 * every future that is done by then (after a failure all of them are).
 *
 * On a failure (FAIL_FAST), on deadline, or when the calling task is
 * cancelled, the futures not yet done are cancelled (corio_future_cancel)
 * and gather waits for them to finish, without deadline, before returning.
 * A task that ignores its cancellation therefore holds gather up; a second
 * cancellation of the caller does not cut that wait short.
 *
 * Returns 0, or -1 with errno: the first error of a future (FAIL_FAST),
 * ETIMEDOUT (deadline), ECANCELED (the caller was cancelled), EINVAL (fs
 * NULL with n > 0, a NULL future, one of another loop, bad mode), EDEADLK
 * (called in a callback), ENOMEM. n == 0 returns 0 at once. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_futures_gather(corio_future *const *fs, size_t n,
                                      enum corio_gather_mode mode,
                                      void **results, int *errs,
                                      int64_t deadline);

/* ---- wait --------------------------------------------------------------- */

enum corio_wait_mode {
    CORIO_ALL_COMPLETED = 0,   /* all are done */
    CORIO_FIRST_COMPLETED = 1, /* at least one is done */
    /* one failed with an error other than a cancellation (as in asyncio, a
     * cancelled future does not count), or all are done */
    CORIO_FIRST_EXCEPTION = 2,
};

/* Wait until the mode's condition holds (asyncio.wait). Nothing is
 * cancelled, on a deadline or otherwise. done (may be NULL, else room for n)
 * receives the indices of the futures that are done, in the order they
 * completed (those already done when the call began first, in argument
 * order; futures completing in the same loop iteration in argument order);
 * pending (may be NULL, else room for n) the indices of the others, in
 * argument order. Both are filled in on ETIMEDOUT and ECANCELED too.
 *
 * Returns the number of done futures (the pending ones are n minus that),
 * or -1 with errno: ETIMEDOUT (the condition did not hold by the deadline),
 * ECANCELED (the caller was cancelled), EINVAL (n == 0, as asyncio's
 * ValueError; n > INT_MAX, fs NULL, a NULL future or one of another loop,
 * bad mode), EDEADLK, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_futures_wait(corio_future *const *fs, size_t n,
                                    enum corio_wait_mode mode, size_t *done,
                                    size_t *pending, int64_t deadline);

/* ---- as_completed -------------------------------------------------------
 * An iterator over futures in the order they complete:
 *
 *     corio_as_completed *it = corio_as_completed_new(fs, 3);
 *     corio_future *f;
 *     while ((f = corio_as_completed_next(it, -1)) != NULL)
 *         printf("%s\n", (char *)corio_future_result(f));
 *     if (errno != CORIO_EDONE)            // CORIO_EDONE: all three came
 *         fprintf(stderr, "%s\n", corio_strerror(errno)); // ECANCELED, ...
 *     corio_as_completed_free(it);
 *
 * The order is recorded from the moment the iterator is made, whether or
 * not a task is waiting in _next at the time. */
typedef struct corio_as_completed corio_as_completed;

/* A new iterator over fs[0..n) (the array is copied; the futures are not
 * owned and must outlive the iterator). Owned by the caller, freed with
 * corio_as_completed_free. Returns NULL with errno EINVAL (fs NULL with
 * n > 0, a NULL future, one of another loop), ENOMEM. */
CORIO_EXPORT corio_as_completed *
corio_as_completed_new(corio_future *const *fs, size_t n);

/* The next future to complete (asyncio's `await next(as_completed)`),
 * waiting for it until deadline. A future is returned once, done: read it
 * with corio_future_result/_error. Returns NULL with errno: CORIO_EDONE (all
 * n were returned: Python's StopIteration), ETIMEDOUT, ECANCELED (the caller
 * was cancelled; nothing is cancelled), EINVAL, EDEADLK. A returned future
 * may be freed at once (its task joined). After ETIMEDOUT or
 * ECANCELED, _next can be called again. EBUSY if another task waits in
 * _next on the same iterator. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_future *corio_as_completed_next(corio_as_completed *it,
                                                   int64_t deadline);

/* How many futures _next has still to return. */
CORIO_EXPORT size_t corio_as_completed_remaining(const corio_as_completed *it);

/* Free the iterator; the futures are left as they are. Returns 0, or -1
 * with EBUSY while a task waits in _next. corio_as_completed_free(NULL)
 * returns 0. */
CORIO_EXPORT int corio_as_completed_free(corio_as_completed *it);

/* ---- wait_for, shield ----------------------------------------------------- */

/* Wait for f until deadline (asyncio.wait_for). *result (may be NULL)
 * receives f's result. If the deadline passes, or the calling task is
 * cancelled, f is cancelled, and when f is a task's future corio_future_await waits
 * (without deadline) until the task has actually finished. If f completed
 * normally all the same (it finished before the cancellation reached it),
 * its result is returned.
 *
 * Returns 0, or -1 with errno: f's error (ECANCELED if f was cancelled by
 * someone else), ETIMEDOUT, ECANCELED (the caller was cancelled), EINVAL,
 * EDEADLK. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_future_await(corio_future *f, void **result,
                                int64_t deadline);

/* asyncio's `await shield(f)`: wait for f until deadline, but if the
 * deadline passes or the calling task is cancelled, return without touching
 * f, which goes on (a shielded task keeps running: join it or detach it
 * later). *result (may be NULL) receives f's result.
 *
 * Returns 0, or -1 with errno: f's error, ETIMEDOUT, ECANCELED (the caller
 * was cancelled; f was not), EINVAL, EDEADLK. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_future_await_shielded(corio_future *f, void **result,
                                   int64_t deadline);

/* ---- Task groups -----------------------------------------------------------
 * Structured concurrency (Trio's nursery, asyncio's TaskGroup): the tasks
 * spawned into a group do not outlive corio_group_wait.
 *
 *     corio_group *g = corio_group_new(corio_now() + 5 * CORIO_SECOND);
 *     if (corio_group_spawn(g, fetch, "a", NULL) == NULL ||
 *         corio_group_spawn(g, fetch, "b", NULL) == NULL)
 *         corio_group_cancel(g);           // not all started: stop them
 *     if (corio_group_wait(g) == -1)       // all have finished here
 *         fprintf(stderr, "fetch: %s\n",   // the first failure, ETIMEDOUT
 *                 corio_strerror(errno));
 *     corio_group_free(g);
 *
 * When a child fails (it ended with corio_task_fail), when the group's
 * deadline passes, when corio_group_cancel is called, or when the task
 * waiting in corio_group_wait is cancelled, every child still running is
 * cancelled, once; the first of these causes is the group's error. A child
 * that ends cancelled by someone else is not a failure (asyncio's rule).
 * Unlike asyncio, the task that made the group is not cancelled when a
 * child fails: it learns of the failure from corio_group_wait. */
typedef struct corio_group corio_group;

/* A new group on the current loop; deadline (absolute, -1: none) cancels
 * the children still running when it passes. Owned by the caller, freed with
 * corio_group_free. NULL with errno ENOMEM. */
CORIO_EXPORT corio_group *corio_group_new(int64_t deadline);

/* Spawn fn(arg) as a task of the group (attr as for corio_task_spawn;
 * attr->loop must be NULL or the group's loop) and return it. The group
 * owns the task: it cannot be joined, but it can be cancelled alone
 * (corio_task_cancel), waited for (corio_task_wait), and its state, result
 * and error read, until corio_group_free frees it with the group. A task
 * whose result nobody will read can be let go with corio_task_detach: the
 * group still waits for it, and frees it as soon as it has ended (a
 * server's connections do this, so that a long-lived group does not grow).
 * Children may spawn siblings into the group, also while someone waits in
 * corio_group_wait. Returns NULL with errno: ECANCELED (the group was
 * cancelled or failed: the task is not spawned), CORIO_ECLOSED
 * (corio_group_wait has returned: the group is closed), EINVAL, ENOMEM. */
#define corio_group_spawn(g, fn, arg, attr) \
    corio_group_spawn_at((g), (fn), (arg), (attr), __FILE__, __LINE__)
CORIO_WARN_UNUSED
CORIO_EXPORT corio_task *corio_group_spawn_at(corio_group *g, corio_fn fn,
                                              void *arg,
                                              const corio_task_attr *attr,
                                              const char *file, int line);

/* Trio's nursery.start: spawn fn(arg) into the group as corio_group_spawn,
 * and wait until the child calls corio_task_started(value) (a server once
 * it listens, say), or deadline. *value (may be NULL) receives the value.
 * Returns the task, or NULL with errno: ECHILD (the child ended without
 * calling corio_task_started; the child's own error if it failed), the
 * caller's ETIMEDOUT or ECANCELED (the child is then cancelled; the group
 * still reaps it), or an error of corio_group_spawn. */
#define corio_group_start(g, fn, arg, attr, value, deadline)               \
    corio_group_start_at((g), (fn), (arg), (attr), (value), (deadline),    \
                         __FILE__, __LINE__)
CORIO_WARN_UNUSED
CORIO_EXPORT corio_task *corio_group_start_at(corio_group *g, corio_fn fn,
                                              void *arg,
                                              const corio_task_attr *attr,
                                              void **value, int64_t deadline,
                                              const char *file, int line);

/* Called by a child started with corio_group_start: it is ready; value
 * goes to the starter, which returns. Returns 0, or -1 with EINVAL (the
 * running task was not started that way, or said so already). */
CORIO_EXPORT int corio_task_started(void *value);

/* Wait until every child has finished, then close the group (no more
 * spawns). If the calling task is cancelled, or an enclosing scope's
 * deadline passes, the children are cancelled and still waited for. Returns
 * 0 when every child succeeded (or ended cancelled by someone else), or -1
 * with errno: the first failed child's error, ETIMEDOUT (the group's or a
 * scope's deadline passed), ECANCELED (corio_group_cancel, or the caller was
 * cancelled), EINVAL, EDEADLK (in a callback; nothing is cancelled). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_group_wait(corio_group *g);

/* Cancel every child still running; spawns fail from now on. The group's
 * error becomes ECANCELED unless it has one already. Returns 0, or -1 EINVAL.
 * It does not wait: corio_group_wait does. */
CORIO_EXPORT int corio_group_cancel(corio_group *g);

/* The number of children not yet finished (or whose end the group has not
 * yet seen: that happens at the loop's next iteration). */
CORIO_EXPORT size_t corio_group_count(const corio_group *g);

/* Free the group and the children it kept (their task pointers die with
 * it). Returns 0, or -1 with EBUSY while children are alive or a task waits
 * in corio_group_wait (wait first; nothing is done). corio_group_free(NULL)
 * returns 0. */
CORIO_EXPORT int corio_group_free(corio_group *g);

#ifdef __cplusplus
}
#endif
#endif
