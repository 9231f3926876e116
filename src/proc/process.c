/* src/proc/process.c -- multiprocessing.Process: a function run in a forked
 * child, and the child's end learnt through a pidfd.
 *
 * The pidfd is the kernel's handle on that one child: it becomes readable
 * when the child ends (a loop watches it like a socket, so a task awaits
 * the end without blocking its loop), waitid(P_PIDFD) reaps that child and
 * no other (no SIGCHLD handler, no waitpid(-1) stealing a status another
 * part of the program waits for), and pidfd_send_signal never reaches
 * another process that reused the pid. */
#define _GNU_SOURCE
#include "corio/proc.h"
#include "corio/io.h"
#include "proc_int.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct corio_process {
    corio_process_fn fn;
    void *arg;
    bool daemon;
    pid_t pid;                      /* 0 until started */
    int pidfd;                      /* -1 until started */
    bool reaped;
    int code;                       /* once reaped */
};

/* ---- pidfds ---------------------------------------------------------- */

/* Set once pidfd_open said ENOSYS: not asked again. */
static int no_pidfd;

int corio__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd;

    if (__atomic_load_n(&no_pidfd, __ATOMIC_RELAXED)) {
        errno = ENOSYS;
        return -1;
    }
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd == -1 && errno == ENOSYS)
        __atomic_store_n(&no_pidfd, 1, __ATOMIC_RELAXED);
    return fd;
#else
    errno = ENOSYS;
    return -1;
#endif
}

int corio__pidfd_signal(int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int corio__child_reap(pid_t pid, int pidfd, bool block, int *code)
{
    siginfo_t si;

    for (;;) {
        int rc;

        si.si_pid = 0;
        if (pidfd >= 0)
            rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
                        WEXITED | (block ? 0 : WNOHANG));
        else
            rc = waitid(P_PID, (id_t)pid, &si, WEXITED | (block ? 0 : WNOHANG));
        if (rc == 0)
            break;
        if (errno != EINTR)
            return -1;
    }
    if (si.si_pid == 0)
        return 0;
    *code = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    return 1;
}

int corio__proc_wait_fd(int fd, int64_t deadline)
{
    if (corio__loop_peek() != NULL)
        return corio_fd_wait(fd, CORIO_READ, deadline) == -1 ? -1 : 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int timeout = -1;
        int n;

        if (deadline >= 0) {
            int64_t left = deadline - corio_now();

            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            timeout = (int)((left + CORIO_MSEC - 1) / CORIO_MSEC);
        }
        n = poll(&pfd, 1, timeout);
        if (n > 0)
            return 0;
        if (n == -1 && errno != EINTR)
            return -1;
    }
}

/* Without a pidfd: look every few milliseconds (1 ms, doubling up to
 * 16 ms), in a task with corio_sleep (cancellation and scopes apply). */
static int child_poll(pid_t pid, int64_t deadline)
{
    int64_t step = CORIO_MSEC;

    for (;;) {
        siginfo_t si;
        int64_t now = corio_now(), nap = step;

        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
            errno != EINTR)
            return -1;
        if (si.si_pid != 0)
            return 0;
        if (deadline >= 0 && now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (deadline >= 0 && deadline - now < nap)
            nap = deadline - now;
        if (corio__loop_peek() != NULL) {
            if (corio_sleep(nap) == -1)
                return -1;
        } else {
            struct timespec ts = {0, (long)nap};

            nanosleep(&ts, NULL);
        }
        if (step < 16 * CORIO_MSEC)
            step *= 2;
    }
}

int corio__child_wait(pid_t pid, int pidfd, int64_t deadline)
{
    if (pidfd >= 0)
        return corio__proc_wait_fd(pidfd, deadline);
    return child_poll(pid, deadline);
}

void corio__pid_reap(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
        ;
}

int corio__pidfd_open_child(pid_t pid)
{
    int fd = corio__pidfd_open(pid);
    int err = errno;

    if (fd == -1 && (err == ENOSYS || err == EINVAL))
        return CORIO__NO_PIDFD; /* an old kernel, or valgrind */
    if (fd == -1) {
        kill(pid, SIGKILL);
        corio__pid_reap(pid);
        errno = err;
    }
    return fd;
}

int corio__child_signal(pid_t pid, int pidfd, bool reaped, int sig)
{
    int rc;

    if (reaped)
        return 0;
    /* kill(2) is as safe until the child is reaped: its pid is not free */
    rc = pidfd >= 0 ? corio__pidfd_signal(pidfd, sig) : kill(pid, sig);
    if (rc == -1 && errno != ESRCH)
        return -1;
    return 0;
}

void corio__pidfd_close(int pidfd)
{
    if (pidfd < 0)
        return;
    if (corio__loop_peek() != NULL)
        corio_fd_forget(pidfd);
    close(pidfd);
}

/* ---- Processes --------------------------------------------------------- */

corio_process *corio_process_new(corio_process_fn fn, void *arg,
                                 const corio_process_opts *opts)
{
    corio_process *p;

    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->fn = fn;
    p->arg = arg;
    p->daemon = opts != NULL && opts->daemon;
    p->pidfd = -1;
    return p;
}

/* In the child: run fn, and never come back. */
static __attribute__((noreturn)) void child_main(corio_process *p,
                                                 pid_t parent)
{
    int code;

    if (p->daemon) {
        /* Set, then check: a parent gone before prctl sends nothing. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(255);
    }
    code = p->fn(p->arg);
    fflush(NULL);
    _exit(code & 0xff);
}

int corio_process_start(corio_process *p)
{
    pid_t parent = getpid();
    pid_t pid;
    int fd;

    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (p->pid != 0) {
        errno = EALREADY;
        return -1;
    }
    pid = corio_fork();
    if (pid == -1)
        return -1;
    if (pid == 0)
        child_main(p, parent);
    fd = corio__pidfd_open_child(pid);
    if (fd == -1)
        return -1;
    p->pid = pid;
    p->pidfd = fd;
    return 0;
}

pid_t corio_process_pid(const corio_process *p)
{
    return p != NULL ? p->pid : 0;
}

/* Reap the child if it has ended. Returns true once it is reaped. */
static bool reap(corio_process *p)
{
    if (!p->reaped && corio__child_reap(p->pid, p->pidfd, false, &p->code) == 1)
        p->reaped = true;
    return p->reaped;
}

static int check_started(const corio_process *p)
{
    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (p->pid == 0) {
        errno = ECHILD;
        return -1;
    }
    return 0;
}

int corio_process_wait(corio_process *p, int64_t deadline)
{
    if (check_started(p) == -1)
        return -1;
    while (!reap(p))
        if (corio__child_wait(p->pid, p->pidfd, deadline) == -1)
            return -1;
    return 0;
}

bool corio_process_is_alive(corio_process *p)
{
    return p != NULL && p->pid != 0 && !reap(p);
}

int corio_process_exitcode(corio_process *p, int *code)
{
    if (check_started(p) == -1)
        return -1;
    if (!reap(p)) {
        errno = EAGAIN;
        return -1;
    }
    if (code != NULL)
        *code = p->code;
    return 0;
}

static int send_signal(corio_process *p, int sig)
{
    if (check_started(p) == -1)
        return -1;
    return corio__child_signal(p->pid, p->pidfd, p->reaped, sig);
}

int corio_process_terminate(corio_process *p)
{
    return send_signal(p, SIGTERM);
}

int corio_process_kill(corio_process *p)
{
    return send_signal(p, SIGKILL);
}

int corio_process_free(corio_process *p)
{
    if (p == NULL)
        return 0;
    if (p->pid != 0 && !reap(p)) {
        errno = EBUSY;
        return -1;
    }
    corio__pidfd_close(p->pidfd);
    free(p);
    return 0;
}
