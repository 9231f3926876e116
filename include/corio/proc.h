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

/* ---- Bytes ------------------------------------------------------------ */

/* Bytes: an argument or a result. A result's data is malloc'd (or NULL
 * when len is 0). */
typedef struct corio_bytes {
    void *data;
    size_t len;
} corio_bytes;

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

/* ---- Subprocesses ------------------------------------------------------
 * asyncio's create_subprocess_exec: another program in a child process,
 * its stdin, stdout and stderr as corio streams (corio/io.h), its end
 * learnt through a pidfd. Like the streams, a subprocess belongs to the
 * thread (loop) that made it. */
typedef struct corio_subprocess corio_subprocess;
struct corio_stream;

/* What a child's stdin, stdout or stderr is. */
typedef enum corio_stdio {
    CORIO_STDIO_INHERIT = 0,        /* the parent's */
    CORIO_STDIO_PIPE,               /* a pipe: a stream in the parent */
    CORIO_STDIO_DEVNULL,            /* /dev/null */
    CORIO_STDIO_STDOUT,             /* stderr only: where stdout goes */
} corio_stdio;

typedef struct corio_subprocess_opts {
    corio_stdio in, out, err;
    char *const *env;               /* "NAME=value", NULL-terminated;
                                       NULL: the parent's environment */
    const char *cwd;                /* NULL: the parent's */
} corio_subprocess_opts;

/* Start file (searched in PATH when it has no slash, as execvp) with argv
 * (argv[0] first, NULL-terminated). Returns the subprocess, or NULL with
 * errno: the exec's error (ENOENT, EACCES, ...: known before this returns,
 * the child has then been reaped), a chdir's (cwd), EINVAL (file or argv
 * NULL, CORIO_STDIO_STDOUT for in or out), EMFILE, EAGAIN, ENOMEM. */
CORIO_EXPORT corio_subprocess *
corio_subprocess_exec(const char *file, char *const argv[],
                      const corio_subprocess_opts *opts);

/* The child's pid. */
CORIO_EXPORT pid_t corio_subprocess_pid(const corio_subprocess *p);

/* The parent's end of a piped stdin, stdout or stderr, or NULL (not piped,
 * or closed by corio_subprocess_close_stdin or _communicate). The
 * subprocess owns it and closes it in corio_subprocess_free: do not close
 * it yourself (corio_subprocess_close_stdin sends end of file). */
CORIO_EXPORT struct corio_stream *corio_subprocess_stdin(corio_subprocess *p);
CORIO_EXPORT struct corio_stream *corio_subprocess_stdout(corio_subprocess *p);
CORIO_EXPORT struct corio_stream *corio_subprocess_stderr(corio_subprocess *p);

/* Close the parent's end of stdin now (the child reads end of file), after
 * sending what is buffered, until deadline. Returns 0 (also if stdin is
 * not piped or closed already), or -1 with errno (ETIMEDOUT, ECANCELED,
 * EPIPE: the child closed it). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_subprocess_close_stdin(corio_subprocess *p,
                                              int64_t deadline);

/* Wait for the child's end, until deadline (in a task only the task
 * waits), and reap it. *code (may be NULL) receives the return code: the
 * exit status, or the negative signal number. Cancelled (ECANCELED), the
 * child is killed (SIGKILL) and reaped before this returns, as asyncio
 * does; after ETIMEDOUT it runs on. Returns 0, or -1 with errno
 * ETIMEDOUT, ECANCELED. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_subprocess_wait(corio_subprocess *p, int *code,
                                       int64_t deadline);

/* asyncio's communicate: send the len bytes of input to stdin (if piped)
 * and close it, read stdout and stderr (those piped) to their end, all at
 * once (a child that fills one pipe while the parent writes the other
 * never deadlocks), then wait for the child's end, all until deadline.
 * *out and *err (may be NULL: that output is read and dropped) receive the
 * bytes read, malloc'd (the caller frees data). *code as
 * corio_subprocess_wait's. Cancelled, the child is killed; after ETIMEDOUT
 * it runs on, and what was read is dropped. Returns 0, or -1 with errno
 * ETIMEDOUT, ECANCELED, EPIPE (the child closed stdin before reading all
 * of input: the output is still read), ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_subprocess_communicate(corio_subprocess *p,
                                              const void *input, size_t len,
                                              corio_bytes *out, corio_bytes *err,
                                              int *code, int64_t deadline);

/* Send sig to the child (pidfd_send_signal); a child already reaped is
 * left alone. Returns 0, or -1 with errno EINVAL. */
CORIO_EXPORT int corio_subprocess_signal(corio_subprocess *p, int sig);

/* Free the subprocess: close its streams, and a child still running is
 * killed (SIGKILL) and reaped (asyncio closes the transport): no zombie,
 * no fd left. corio_subprocess_free(NULL) returns 0. Returns 0. */
CORIO_EXPORT int corio_subprocess_free(corio_subprocess *p);

/* ---- Pools -----------------------------------------------------------
 * multiprocessing.Pool: a fixed set of worker processes (forked from the
 * pool's manager thread, which starts, watches and replaces them), or of
 * threads (multiprocessing.pool.ThreadPool: opts.threads), running work
 * items. A work item is a function pointer (valid in a forked worker: it is
 * the same program) and argument bytes; its result is bytes. Nothing is
 * pickled: the argument is copied once when submitted, and once more
 * through a socket to a worker process; a thread worker's result is the
 * buffer its function made.
 *
 * A worker process that dies in the middle of a work item (kill -9, a
 * segfault, abort) fails that item with EOWNERDEAD, and
 * corio_workers_exitcode tells how it died (-9); the items it had been
 * sent but not begun are given to the other workers, a new worker takes its
 * place, and nothing else is lost or hangs (where Python's Pool hangs).
 *
 * The pool's calls may be made from any thread; a future belongs to the
 * loop of the thread that submitted it (made on first use), as
 * corio_pool_submit's: await it in a task (corio_future_wait/_await), or
 * wait for it from plain code with a deadline (corio_future_wait runs the
 * thread's loop meanwhile). */
typedef struct corio_workers corio_workers;

/* A work function: read the len bytes of arg; set *result to bytes it
 * malloc'd (or leave it {NULL, 0}); return 0, or an errno value (> 0) that
 * fails the item. In a worker process it runs with the signals unblocked
 * and no loop; it may use corio (corio_run) as any program does. */
typedef int (*corio_work_fn)(const void *arg, size_t len, corio_bytes *result);

typedef struct corio_workers_opts {
    /* Workers (0: the CPUs this process may run on, sched_getaffinity). */
    size_t size;
    /* Run the work on threads of this process instead of processes. */
    bool threads;
    /* Run once at the start of each worker, before any work. */
    void (*initializer)(void *arg);
    void *initarg;
    /* A worker ends after this many work items (a chunk of a map is one),
     * and a new one replaces it (0: never). */
    size_t maxtasksperchild;
} corio_workers_opts;

/* A new pool with its workers started (opts NULL: defaults). Returns NULL
 * with errno EAGAIN, ENOMEM, EMFILE, ENOSYS (no pidfd). */
CORIO_EXPORT corio_workers *corio_workers_new(const corio_workers_opts *opts);

/* The number of workers (0 for NULL). */
CORIO_EXPORT size_t corio_workers_size(const corio_workers *w);

/* The pids of the worker processes now (at most max of them, in out);
 * returns how many (0 for a thread pool). For tests and monitoring. */
CORIO_EXPORT size_t corio_workers_pids(corio_workers *w, pid_t *out,
                                       size_t max);

/* apply_async: queue fn on len bytes of arg (copied) and return a new
 * future of the calling thread's loop. Once done, corio_future_error(f) is
 * 0 and corio_future_result(f) points to the result's corio_bytes (owned
 * by the future, valid until it is freed), or it is fn's error, or
 * EOWNERDEAD (the worker died: corio_workers_exitcode), or ECANCELED (the
 * pool was terminated first). The caller frees the future with
 * corio_future_free, done or not (a pending item still runs, its result
 * dropped). Returns NULL with errno EINVAL (w or fn NULL, arg NULL with
 * len > 0), CORIO_ECLOSED (after corio_workers_close or _terminate),
 * EMSGSIZE (len >= 4 GiB), ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_future *corio_workers_submit(corio_workers *w,
                                                corio_work_fn fn,
                                                const void *arg, size_t len);

/* The exit code of the worker that died running f's item (-9 for a
 * SIGKILL, as Python's exitcode), or 0 if f did not fail that way. */
CORIO_EXPORT int corio_workers_exitcode(const corio_future *f);

/* map: run fn on each of args[0..n), chunksize items a work item (0: about
 * n / (4 * size), as Python), and wait until all are done or deadline.
 * results[i] receives item i's result (the caller frees each data), errs[i]
 * (may be NULL) its error (0, fn's, EOWNERDEAD for the chunk whose worker
 * died, ECANCELED). Returns 0 if every item succeeded, or -1 with errno:
 * the first failed item's error (results and errs are filled all the
 * same), ETIMEDOUT or ECANCELED (the wait ended; nothing is filled, the
 * work already queued still runs), EINVAL, CORIO_ECLOSED, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_workers_map(corio_workers *w, corio_work_fn fn,
                                   const corio_bytes *args, size_t n,
                                   size_t chunksize, corio_bytes *results,
                                   int *errs, int64_t deadline);

/* imap and imap_unordered: an iterator over the results of fn on
 * args[0..n) (copied), submitted at once in chunks of chunksize (0: 1). */
typedef struct corio_workers_iter corio_workers_iter;

CORIO_EXPORT corio_workers_iter *
corio_workers_imap(corio_workers *w, corio_work_fn fn, const corio_bytes *args,
                   size_t n, size_t chunksize, bool ordered);

/* The next result: in args' order if ordered, else as they come. *index
 * receives the item's index, *result its bytes (the caller frees data).
 * Returns 0, or -1 with errno: CORIO_EDONE (all n given), the item's error
 * (*index set: fn's error, EOWNERDEAD, ECANCELED), ETIMEDOUT, ECANCELED
 * (the wait ended: call again). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_workers_iter_next(corio_workers_iter *it, size_t *index,
                                         corio_bytes *result, int64_t deadline);

/* Free the iterator; results not taken are dropped. Returns 0. */
CORIO_EXPORT int corio_workers_iter_free(corio_workers_iter *it);

/* close: no more submissions (they fail with CORIO_ECLOSED); the queued
 * work still runs, then the workers end. Returns 0, or -1 EINVAL. */
CORIO_EXPORT int corio_workers_close(corio_workers *w);

/* terminate: stop now: queued and running items fail with ECANCELED, the
 * worker processes are killed (SIGKILL; thread workers finish the item
 * they run). Returns 0, or -1 EINVAL. */
CORIO_EXPORT int corio_workers_terminate(corio_workers *w);

/* join: wait until the workers have ended, after close or terminate (in a
 * task only the task waits). Returns 0, or -1 with errno EINVAL (neither
 * close nor terminate was called: it would wait forever), ECANCELED. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_workers_join(corio_workers *w);

/* Free the pool: terminate and join it if that was not done. Futures not
 * yet done are completed (ECANCELED) on their loops. Returns 0;
 * corio_workers_free(NULL) returns 0. */
CORIO_EXPORT int corio_workers_free(corio_workers *w);

#ifdef __cplusplus
}
#endif
#endif
