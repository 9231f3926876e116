/* include/corio/agen.h -- async generators (Python's `async def` with
 * `yield`, consumed by `async for`). Part of corio.h.
 *
 * An async generator is a generator whose body may block between yields:
 * sleep, wait on I/O, join tasks, take locks. Its blocking calls suspend the
 * task that consumes it (the one calling corio_agen_next), so they obey that
 * task's cancellation and scopes, plus the deadline given to the call:
 *
 *     static int ticks(corio_agen *ag, void *arg) {
 *         for (int i = 0; i < 3; i++) {
 *             if (corio_sleep(100 * CORIO_MSEC) == -1)
 *                 return -1;                        // errno goes to next
 *             if (corio_agen_yield(ag, CORIO_INT(i)) == -1)
 *                 return -1;                        // closing: clean up
 *         }
 *         return 0;
 *     }
 *     ...
 *     void *v;
 *     while ((rc = corio_agen_next(ag, &v, deadline)) == 1) { use(v); }
 *     // rc == 0: exhausted; rc == -1: errno says why (the body's error,
 *     // ETIMEDOUT, ECANCELED)
 *     corio_agen_close(ag);
 *
 * A body may enter scopes and yield inside them: its scopes travel with it
 * (they are taken off the consumer's chain at each yield and put back on the
 * chain of whichever task resumes it next), so one generator may be consumed
 * by several tasks in turn, never by two at once. */
#ifndef CORIO_AGEN_H
#define CORIO_AGEN_H

#include "corio/coro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_agen corio_agen;

/* The body: returns 0 when it has nothing more to yield (StopAsyncIteration),
 * or -1 with errno set (the error is raised out of corio_agen_next). */
typedef int (*corio_agen_fn)(corio_agen *ag, void *arg);

/* Create an async generator that runs fn(ag, arg) at the first next. attr
 * may be NULL (stack options as corio_coro_new). Returns a new generator,
 * owned by the caller and freed by corio_agen_close, or NULL with errno
 * EINVAL (fn NULL, bad attr) or ENOMEM. */
CORIO_EXPORT corio_agen *corio_agen_new(corio_agen_fn fn, void *arg,
                                        const corio_coro_attr *attr);

/* Run ag until it yields, returns, or fails (asyncio's `await anext(ag)`),
 * from a task or from the thread's own stack. *out (may be NULL) receives
 * the yielded value. The body's blocking calls fail with ETIMEDOUT once
 * deadline (absolute, corio_now(); -1 none) has passed, and with ECANCELED
 * when the calling task is cancelled; the body then usually fails, and so
 * does this call. Returns 1 (a value was yielded), 0 (the body returned 0:
 * exhausted), -1 with errno: the body's errno when it returned -1 (the
 * generator is then finished), CORIO_EDONE (finished before this call),
 * EINVAL (ag NULL, or called from its own body), EBUSY (another task is
 * running it now). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_agen_next(corio_agen *ag, void **out, int64_t deadline);

/* Inside the body: hand value to the consumer and suspend until the next
 * corio_agen_next. Returns 0, or -1 with errno ECANCELED when the generator
 * is being closed (Python's GeneratorExit): clean up (blocking cleanup in a
 * CORIO_SHIELD, as the closing task may be cancelled) and return -1.
 * EINVAL if ag is not the running generator. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_agen_yield(corio_agen *ag, void *value);

/* True once ag's body has returned (or ag was closed). */
CORIO_EXPORT bool corio_agen_is_done(const corio_agen *ag);

/* Close and free ag (asyncio's `await ag.aclose()`). A body suspended at a
 * yield is resumed once with that yield failing with ECANCELED, and runs its
 * cleanup in the calling task (its blocking calls may wait). A body not
 * started or finished is just freed. corio_agen_close(NULL) returns 0.
 * Returns 0, or -1 with errno EPROTO (the body yielded again instead of
 * returning: freed anyway), EBUSY (ag is running: nothing is done). */
CORIO_EXPORT int corio_agen_close(corio_agen *ag);

#ifdef __cplusplus
}
#endif
#endif
