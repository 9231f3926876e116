/* src/dist/manager_proc.c -- corio_dist_manager_start and _stop: the
 * manager in a task of the caller's loop (manager.c), or in a process of
 * its own (Python's BaseManager.start()): forked, it serves from a fresh
 * thread with a loop of its own (the parent's loop and tasks are not the
 * child's), reports its address or its error through a pipe, and ends on
 * SIGTERM (corio_run turns it into cancellation, so it stops cleanly) or
 * when its parent dies (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE /* pipe2 */
#include "manager_int.h"

#include "corio/io.h"
#include "corio/task.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child reports once it listens (or failed to). */
struct report {
    int err;
    char addr[128];
};

struct child {
    const char *addr;
    const corio_dist_manager_opts *opts;
    int fd;    /* the pipe's write end */
};

static void *child_main(void *arg)
{
    struct child *ch = arg;
    struct report rep = {0};
    corio_dist_manager *m = corio__manager_start_here(ch->addr, ch->opts);

    if (m == NULL)
        rep.err = errno;
    else
        strcpy(rep.addr, m->addr);
    if (write(ch->fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep) || m == NULL)
        return NULL;
    close(ch->fd);
    /* Serve until SIGTERM cancels this task. */
    while (corio_sleep(3600 * CORIO_SECOND) == 0)
        ;
    corio__manager_stop_here(m);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)corio_run(child_main, arg, NULL);
    return NULL;
}

static void child_run(struct child *ch, pid_t parent)
{
    sigset_t none;
    pthread_t th;

    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1);
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    if (pthread_create(&th, NULL, child_thread, ch) != 0)
        _exit(1);
    pthread_join(th, NULL);
    _exit(0);
}

/* Read the child's report (the pipe is non-blocking: corio_fd_read waits
 * in the loop). */
static int report_read(int fd, struct report *rep)
{
    size_t got = 0;
    int64_t deadline = corio_now() + 10 * CORIO_SECOND;

    while (got < sizeof(*rep)) {
        ssize_t n = corio_fd_read(fd, (char *)rep + got, sizeof(*rep) - got,
                                  deadline);

        if (n == 0)
            errno = ECHILD;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static corio_dist_manager *start_process(const char *addr,
                                         const corio_dist_manager_opts *o)
{
    struct child ch = {addr, o, -1};
    struct report rep;
    corio_dist_manager *m;
    pid_t parent = getpid();
    int fds[2], err;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1)
        goto fail;
    ch.fd = fds[1];
    m->pid = fork();
    if (m->pid == -1) {
        err = errno;
        close(fds[0]);
        close(fds[1]);
        errno = err;
        goto fail;
    }
    if (m->pid == 0) {
        close(fds[0]);
        (void)fcntl(fds[1], F_SETFL, 0);
        child_run(&ch, parent);
    }
    close(fds[1]);
    rep.err = 0;
    if (report_read(fds[0], &rep) == -1 || rep.err != 0) {
        err = rep.err != 0 ? rep.err : errno;
        corio_fd_close(fds[0]);
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        errno = err;
        goto fail;
    }
    corio_fd_close(fds[0]);
    memcpy(m->addr, rep.addr, sizeof(m->addr));
    m->addr[sizeof(m->addr) - 1] = '\0';
    return m;

fail:
    err = errno;
    free(m);
    errno = err;
    return NULL;
}

corio_dist_manager *corio_dist_manager_start(const char *addr,
                                             const corio_dist_manager_opts *o)
{
    if (corio__manager_opts_check(o) == -1 || addr == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (o->process)
        return start_process(addr, o);
    return corio__manager_start_here(addr, o);
}

/* SIGTERM, then wait for the process until deadline, then SIGKILL. */
static int stop_process(pid_t pid, int64_t deadline)
{
    int status;
    pid_t r;

    if (kill(pid, SIGTERM) == -1)
        return -1;
    for (;;) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return 0;
        if (r == -1)
            return -1;
        if (deadline >= 0 && corio_now() >= deadline)
            break;
        {
            CORIO_SHIELD(-1);
            (void)corio_sleep(CORIO_SECOND / 500);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    errno = ETIMEDOUT;
    return -1;
}

int corio_dist_manager_stop(corio_dist_manager *m, int64_t deadline)
{
    int rc, err;

    if (m == NULL)
        return 0;
    if (m->pid == 0)
        return corio__manager_stop_here(m);
    rc = stop_process(m->pid, deadline);
    err = errno;
    free(m);
    errno = err;
    return rc;
}
