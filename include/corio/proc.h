/* include/corio/proc.h -- processes: fork made safe for corio, a Process
 * object (multiprocessing.Process), and a pool of worker processes or
 * threads (multiprocessing.Pool). Part of corio.h.
 *
 * The fork rules (docs/proc.md, "Fork"):
 *   - corio_fork is fork(2) for programs that use corio. The child starts
 *     with no loop (the parent's loop, tasks, timers and signal handlers
 *     are left behind, without touching the parent's epoll set), with the
 *     signals the loop had blocked unblocked again, and with a fresh
 *     default thread pool on first use. The parent's other threads do not
 *     exist in the child. Its open fds stay open (as fork keeps them).
 *   - Forked inside a task, the child goes on running on that task's
 *     stack: it may start a new loop (corio_run), and must end with exit
 *     or _exit, never by returning from the task's function (the loop it
 *     would return to is gone).
 *   - corio's own global locks are taken around every fork (pthread_atfork),
 *     so a plain fork() never leaves one of them locked in the child; but
 *     only corio_fork leaves the loop behind: after a plain fork() the
 *     child must not use the parent's loop.
 *   - stdio buffers are flushed before the fork, so nothing is written
 *     twice. */
#ifndef CORIO_PROC_H
#define CORIO_PROC_H

#include "corio/task.h"
#include "corio/error.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Fork ------------------------------------------------------------- */

/* fork(2), made safe for corio (see the rules above). Returns the child's
 * pid in the parent, 0 in the child, or -1 with errno EAGAIN, ENOMEM
 * (fork's errors). */
CORIO_EXPORT pid_t corio_fork(void);

/* ---- Processes --------------------------------------------------------
 * multiprocessing.Process: a function run in a forked child. The exit
 * code is the function's return value (0-255), or the negative number of
 * the signal that ended the child (-9 after corio_process_kill), as
 * Python's exitcode. The parent learns of the child's end through a pidfd
 * (Linux >= 5.3), so it never reaps, nor steals the status of, any other
 * child of the process. A Process object belongs to the thread that made
 * it. */
typedef struct corio_process corio_process;

/* The function a process runs; its return value is the exit code. */
typedef int (*corio_process_fn)(void *arg);

typedef struct corio_process_opts {
    /* A daemon child is killed (SIGKILL) when the thread that started it
     * ends, and so when the parent process ends, however it ends
     * (PR_SET_PDEATHSIG; a child whose parent is already gone when it
     * starts exits at once with 255). */
    bool daemon;
} corio_process_opts;

/* A new process object that will run fn(arg) (not started yet). opts may
 * be NULL (no daemon). Returns NULL with errno EINVAL (fn NULL), ENOMEM. */
CORIO_EXPORT corio_process *corio_process_new(corio_process_fn fn, void *arg,
                                              const corio_process_opts *opts);

/* Start the child (corio_fork): it runs fn(arg), flushes stdio and ends
 * with _exit(fn's return value). Returns 0, or -1 with errno EALREADY
 * (started before), EAGAIN, ENOMEM, EMFILE (no pidfd), ENOSYS (kernel
 * without pidfd_open). */
CORIO_EXPORT int corio_process_start(corio_process *p);

/* The child's pid once started, else 0. */
CORIO_EXPORT pid_t corio_process_pid(const corio_process *p);

/* Wait for the child to end (Python's join), until deadline (absolute,
 * corio_now() clock, -1: none). In a task, only the task waits (the loop
 * watches the pidfd); on a thread with a loop, the loop runs meanwhile; on
 * a thread without one, the thread blocks in poll(2). The child is reaped:
 * its exit code is then known. Returns 0 (at once if it has ended), or -1
 * with errno ECHILD (not started), ETIMEDOUT, ECANCELED. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_process_wait(corio_process *p, int64_t deadline);

/* True while the child runs (reaps it if it has ended). False before
 * start. */
CORIO_EXPORT bool corio_process_is_alive(corio_process *p);

/* Python's exitcode: *code receives the exit status (0-255) or the
 * negative signal number. Reaps the child if it has ended. Returns 0, or
 * -1 with errno ECHILD (not started), EAGAIN (still running). */
CORIO_EXPORT int corio_process_exitcode(corio_process *p, int *code);

/* Send SIGTERM (terminate) or SIGKILL (kill) to the child
 * (pidfd_send_signal: never to another process that reuses the pid). A
 * child that has already ended is left alone: 0. Returns 0, or -1 with
 * errno ECHILD (not started). */
CORIO_EXPORT int corio_process_terminate(corio_process *p);
CORIO_EXPORT int corio_process_kill(corio_process *p);

/* Free the object (Python's close): refuses a child still running (-1,
 * EBUSY: wait for it or kill it first); reaps one that has ended, so no
 * zombie is left. corio_process_free(NULL) returns 0. */
CORIO_EXPORT int corio_process_free(corio_process *p);

#ifdef __cplusplus
}
#endif
#endif
