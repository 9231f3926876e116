/* include/corio/loop.h -- the event loop: timers, callbacks, waiting on file
 * descriptors, wake-ups from other threads, signals. Part of corio.h.
 *
 * Each thread has at most one running loop. corio_loop_current() is the
 * thread's loop, made on first use (asyncio's get_event_loop); tasks
 * (corio/task.h) run on it. A loop and what runs on it belong to one thread:
 * only the calls ending in _threadsafe may be made from other threads. */
#ifndef CORIO_LOOP_H
#define CORIO_LOOP_H

#include "corio/coro.h"
#include "corio/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_loop corio_loop;
typedef struct corio_handle corio_handle;

/* ---- Loops ------------------------------------------------------------- */

/* A new loop, owned by the caller (close it with corio_loop_close). It
 * becomes the calling thread's current loop if the thread has none. Returns
 * NULL with errno (EMFILE, ENOMEM, ...). */
CORIO_EXPORT corio_loop *corio_loop_new(void);

/* The calling thread's loop, made on first use; NULL with errno if it could
 * not be made. The thread owns it: it is closed when the thread exits. */
CORIO_EXPORT corio_loop *corio_loop_current(void);

/* Make loop the calling thread's current loop (NULL: none). Returns 0, or -1
 * with EBUSY while the current loop is running. */
CORIO_EXPORT int corio_loop_set_current(corio_loop *loop);

/* Run until corio_loop_stop is called. Returns 0, or -1 with EBUSY if the
 * loop is already running, EINVAL if loop is NULL. */
CORIO_EXPORT int corio_loop_run_forever(corio_loop *loop);

/* Run until there is nothing left to do: no ready callback or task, no timer,
 * no task waiting. Returns 0, or -1 with EBUSY if already running, EINVAL if
 * loop is NULL. */
CORIO_EXPORT int corio_loop_run_until_idle(corio_loop *loop);

/* Ask a running loop to return from corio_loop_run_forever after the
 * callbacks already ready have run. Returns 0, or -1 with EINVAL if loop is
 * NULL. */
CORIO_EXPORT int corio_loop_stop(corio_loop *loop);

/* True while loop is running: in corio_loop_run_forever or
 * corio_loop_run_until_idle, or driven by a blocking call made on the
 * thread's own stack. */
CORIO_EXPORT bool corio_loop_is_running(const corio_loop *loop);

/* Close and free loop: cancel and free pending callbacks, close its file
 * descriptors. Tasks still alive are cancelled and run until they end; as
 * cancellation sticks, only cleanup in a shield can still wait, for one
 * second in all at most: a task still waiting then is abandoned and its
 * stack freed. Its signal handlers are removed. corio_loop_close(NULL)
 * returns 0. Returns 0, or -1 with EBUSY if the loop is running (nothing is
 * done). */
CORIO_EXPORT int corio_loop_close(corio_loop *loop);

/* The loop's clock: corio_now() cached at the start of each iteration
 * (loop NULL: corio_now()). */
CORIO_EXPORT int64_t corio_loop_time(const corio_loop *loop);

/* ---- Callbacks ---------------------------------------------------------
 * For code that is not a coroutine. A callback runs on the loop's thread,
 * on the loop's own stack: it must not block (no corio_sleep in it). If
 * handle is non-NULL, *handle receives a handle the caller owns and must
 * free with corio_handle_free; otherwise the loop frees it after it ran. */
typedef void (*corio_callback)(void *arg);

/* Run cb(arg) at the next iteration, after those already scheduled. Returns
 * 0, or -1 with EINVAL (NULL loop or cb) or ENOMEM. */
CORIO_EXPORT int corio_loop_call_soon(corio_loop *loop, corio_callback cb, void *arg,
                                 corio_handle **handle);

/* Run cb(arg) once delay_ns (>= 0) has passed / at the absolute time when
 * (corio_now() clock). Equal times run in the order they were scheduled.
 * Returns 0, or -1 with EINVAL or ENOMEM. */
CORIO_EXPORT int corio_loop_call_later(corio_loop *loop, int64_t delay_ns,
                                  corio_callback cb, void *arg,
                                  corio_handle **handle);
CORIO_EXPORT int corio_loop_call_at(corio_loop *loop, int64_t when,
                               corio_callback cb, void *arg,
                               corio_handle **handle);

/* Schedule cb(arg) on loop from any thread, waking the loop if it sleeps.
 * Returns 0, or -1 with EINVAL, ENOMEM, or CORIO_ECLOSED while the loop is
 * being closed. corio_loop_close frees the loop: threads that post to it
 * must be done before it is closed (join them, or have them stop on
 * CORIO_ECLOSED). */
CORIO_EXPORT int corio_loop_call_soon_threadsafe(corio_loop *loop, corio_callback cb,
                                            void *arg);

/* Cancel the callback if it has not run. Returns 0, or -1 with EALREADY if
 * it has run or was cancelled before. */
CORIO_EXPORT int corio_handle_cancel(corio_handle *handle);

/* True if the callback was cancelled. */
CORIO_EXPORT bool corio_handle_is_cancelled(const corio_handle *handle);

/* Release the caller's handle; a callback still pending stays scheduled
 * (cancel it first to stop it). Returns 0; corio_handle_free(NULL)
 * returns 0. */
CORIO_EXPORT int corio_handle_free(corio_handle *handle);

/* ---- Waiting on file descriptors --------------------------------------
 * For use inside a task (or on the thread's own stack, which then runs the
 * loop until the wait ends). The fd stays registered with the loop's poller
 * until corio_fd_forget; call it before closing the fd. */
#define CORIO_READ 1u
#define CORIO_WRITE 2u

/* Wait until fd is readable or writable (events: CORIO_READ, CORIO_WRITE or
 * both), an error or hang-up is seen on it, or deadline (absolute, -1: none)
 * passes. Returns the events that are ready (> 0), or -1 with errno
 * ETIMEDOUT, ECANCELED, EBADF, EINVAL (bad events), EBUSY (another task
 * already waits for the same event on fd). Readiness is a hint, as with
 * epoll: the read or write that follows can still fail with EAGAIN. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_fd_wait(int fd, unsigned events, int64_t deadline);

/* Tell the loop that fd is about to be closed: tasks waiting on it fail
 * with EBADF, and it leaves the poller. Returns 0. */
CORIO_EXPORT int corio_fd_forget(int fd);

/* ---- Signals ------------------------------------------------------------
 * asyncio's add_signal_handler: a signal becomes an ordinary event of the
 * loop (a signalfd it watches), and cb(sig, arg) runs on the loop's thread
 * as a callback (it must not block). The signal is blocked in the calling
 * thread, which must be the loop's; a process-directed signal reaches the
 * loop as long as the process's other threads block it too (threads made
 * after this call inherit the mask; corio's own pool threads block every
 * asynchronous signal). A thread-directed one (pthread_kill) reaches the
 * loop of that thread only, so two threads with a loop each see their own
 * signals. Handlers do not keep corio_loop_run_until_idle running. */
typedef void (*corio_signal_cb)(int sig, void *arg);

/* Handle sig (not SIGKILL, SIGSTOP or the synchronous SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL) with cb on loop, replacing its handler if it has one.
 * Returns 0, or -1 with errno EINVAL, EMFILE, ENOMEM. */
CORIO_EXPORT int corio_loop_add_signal_handler(corio_loop *loop, int sig,
                                               corio_signal_cb cb, void *arg);

/* Stop handling sig: it is unblocked again in the calling thread. Returns
 * 1 if a handler was removed, 0 if there was none, -1 with EINVAL. */
CORIO_EXPORT int corio_loop_remove_signal_handler(corio_loop *loop, int sig);

/* ---- Sleeping ------------------------------------------------------------ */

/* Suspend the caller for ns nanoseconds (<= 0: only let the other ready
 * tasks run first, gevent's sleep(0)). Returns 0, or -1 with ECANCELED, or
 * ETIMEDOUT when a deadline scope ends the sleep early. Its result may be
 * ignored: cancellation sticks, so the next blocking call fails too. */
CORIO_EXPORT int corio_sleep(int64_t ns);

/* Suspend until the absolute time deadline. Returns as corio_sleep. */
CORIO_EXPORT int corio_sleep_until(int64_t deadline);

/* ---- Scopes ----------------------------------------------------------------
 * Trio's cancel scopes. Every blocking call made between enter and exit, in
 * this task (or on the thread's own stack), waits at most until the scope's
 * deadline, and once that has passed, or the scope has been cancelled, every
 * blocking call inside it fails at once (ETIMEDOUT, ECANCELED) until the
 * scope is left: a loop that ignores one failure still ends. Scopes nest:
 * the earliest deadline wins, and a cancelled task's calls fail in every
 * scope but a shield.
 *
 * A shield scope (corio_scope_shield) keeps out what is outside it: the
 * task's cancellation and the outer scopes' deadlines and cancellations do
 * not reach the calls inside, only its own deadline does. Cleanup that must
 * block (a flush, a TLS close_notify, a last write) runs in one:
 *
 *     CORIO_SHIELD(corio_now() + 2 * CORIO_SECOND);   // until the block ends
 *     if (corio_stream_drain(s, -1) == -1) ...
 *
 * A scope is the caller's memory, usually a local variable. Scopes are
 * exited in the reverse order of entering, by the task that entered them;
 * an exit out of order, or a task (or thread) that ends with a scope still
 * entered, is a bug that would leave a pointer to a dead stack frame: corio
 * reports it, naming the task and where the scope was entered, and aborts.
 * CORIO_SCOPE and CORIO_SHIELD declare a scope that exits by itself at the
 * end of the enclosing block, whatever way it is left (return, break,
 * goto: gcc's and clang's cleanup attribute). */
typedef struct corio_scope {
    int64_t deadline;           /* absolute; -1: none. Read it; move it with
                                   corio_scope_set_deadline */
    /* private */
    struct corio_scope *outer;
    void *owner;
    const char *file;
    int line;
    bool shield, cancelled, caught, entered;
} corio_scope;

/* Enter a scope with the absolute deadline (-1: none), or a shield. The
 * macros record where, for the report of a misuse. */
#define corio_scope_enter(s, deadline) \
    corio_scope_enter_at((s), (deadline), __FILE__, __LINE__)
#define corio_scope_shield(s, deadline) \
    corio_scope_shield_at((s), (deadline), __FILE__, __LINE__)
CORIO_EXPORT void corio_scope_enter_at(corio_scope *scope, int64_t deadline,
                                       const char *file, int line);
CORIO_EXPORT void corio_scope_shield_at(corio_scope *scope, int64_t deadline,
                                        const char *file, int line);

/* Leave the scope, which must be the innermost. Returns true if a blocking
 * call in it failed because of it (its deadline passed, or it was
 * cancelled: Trio's cancelled_caught). */
CORIO_EXPORT bool corio_scope_exit(corio_scope *scope);

/* Cancel the scope, from its task or another one of its loop: the call
 * parked in it fails with ECANCELED now, and every later blocking call in
 * it until it is left. Returns 0, or -1 with EINVAL (not entered). */
CORIO_EXPORT int corio_scope_cancel(corio_scope *scope);

/* Move the scope's deadline (-1: none), earlier or later; a call parked in
 * it waits until the new one. Returns 0, or -1 with EINVAL (not entered). */
CORIO_EXPORT int corio_scope_set_deadline(corio_scope *scope,
                                          int64_t deadline);

/* A scope (a shield) entered here and left at the end of the enclosing
 * block. CORIO_SCOPE_NAMED(s, deadline) names it, for corio_scope_cancel
 * and corio_scope_set_deadline. */
CORIO_EXPORT void corio__scope_cleanup(corio_scope *scope);
#define CORIO__CAT2(a, b) a##b
#define CORIO__CAT(a, b) CORIO__CAT2(a, b)
#define CORIO_SCOPE_NAMED(s, deadline)                                       \
    corio_scope s __attribute__((cleanup(corio__scope_cleanup)));           \
    corio_scope_enter(&s, (deadline))
#define CORIO_SHIELD_NAMED(s, deadline)                                      \
    corio_scope s __attribute__((cleanup(corio__scope_cleanup)));           \
    corio_scope_shield(&s, (deadline))
#define CORIO_SCOPE(deadline) \
    CORIO_SCOPE_NAMED(CORIO__CAT(corio__scope_, __LINE__), deadline)
#define CORIO_SHIELD(deadline) \
    CORIO_SHIELD_NAMED(CORIO__CAT(corio__shield_, __LINE__), deadline)

#ifdef __cplusplus
}
#endif
#endif
