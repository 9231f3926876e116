/* src/proc/prefork.c -- one loop per core, the nginx model: a supervisor
 * that forks one worker process per core, each serving the same address
 * with its own loop, restarts the workers that die, stops them all on
 * SIGTERM or SIGINT, and reloads them one at a time on SIGHUP.
 *
 * The address: the supervisor binds a socket with SO_REUSEPORT to it and
 * keeps it, bound but not listening, until it returns: it holds the port
 * (port 0 becomes a real port, the same for every worker and every
 * restart) without taking connections, since only listening sockets are
 * in the kernel's reuseport group. Each worker listens on that port with
 * SO_REUSEPORT and the kernel spreads new connections over them.
 *
 * A worker is a corio_process (daemon: killed if the supervisor dies). It
 * runs corio_run: its main task starts a corio_server, reports on a pipe
 * that it serves (or why not), then sleeps until corio_run cancels it on
 * SIGTERM; it then stops its server, handlers getting until stop_timeout
 * (in a shield: the task is cancelled by then).
 *
 * The supervisor waits for signals with sigtimedwait (SIGCHLD included),
 * with the four of them blocked in its thread, so nothing runs in a signal
 * handler and no loop is needed.
 *
 * What this file does not do: hand over a socket inherited from a previous
 * supervisor (nginx's binary upgrade), or limit the restarts of a worker
 * that keeps dying beyond one per slot per 100 ms. */
#define _GNU_SOURCE
#include "ipc_int.h"
#include "corio/proc.h"
#include "corio/task.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STOP_TIMEOUT_DEFAULT (5 * CORIO_SECOND)
#define READY_TIMEOUT (10 * CORIO_SECOND)
#define RESTART_GAP (100 * CORIO_MSEC)

/* What the supervisor and (a copy of it, by fork) every worker know. */
struct prefork {
    char addr[128];             /* the bound address, as text */
    corio_conn_fn handler;
    void *arg;
    corio_prefork_opts opts;
    int64_t stop_timeout;
    size_t nworkers;
    sigset_t sigs;              /* blocked in the supervisor */
    sigset_t old_mask;          /* the caller's, restored in workers too */
    /* Set in the child between fork and its start: */
    size_t slot;
    int ready_fd;               /* write end of the ready pipe */
};

struct worker {
    corio_process *proc;
    int64_t started;
};

/* ---- The worker --------------------------------------------------------- */

static void ready_report(struct prefork *pf, int err)
{
    ssize_t r = write(pf->ready_fd, &err, sizeof(err));

    (void)r;
    close(pf->ready_fd);
    pf->ready_fd = -1;
}

static void *worker_main(void *arg)
{
    struct prefork *pf = arg;
    corio_listen_opts lo = pf->opts.listen;
    corio_server *s;
    int rc;

    lo.reuseport = true;
    s = corio_server_start(pf->addr, &lo, pf->handler, pf->arg);
    if (s == NULL) {
        ready_report(pf, errno);
        return corio_task_fail(errno);
    }
    ready_report(pf, 0);
    /* Serve until corio_run cancels us (SIGTERM, SIGINT). */
    while (corio_sleep(3600 * CORIO_SECOND) == 0)
        ;
    {
        int64_t deadline = corio_now() + pf->stop_timeout;
        CORIO_SHIELD(deadline);
        rc = corio_server_stop(s, deadline);
    }
    return rc == 0 || errno == ETIMEDOUT ? NULL : corio_task_fail(errno);
}

static int worker_run(void *arg)
{
    struct prefork *pf = arg;
    int rc;

    /* The supervisor's blocked signals are ours by inheritance: undo, and
     * leave SIGHUP to the supervisor (a terminal's hang-up reloads). */
    pthread_sigmask(SIG_SETMASK, &pf->old_mask, NULL);
    signal(SIGHUP, SIG_IGN);
    if (pf->opts.on_worker != NULL) {
        rc = pf->opts.on_worker(pf->slot, pf->opts.ready_arg);
        if (rc != 0) {
            ready_report(pf, ECHILD);
            return rc;
        }
    }
    rc = corio_run(worker_main, pf, NULL);
    if (pf->ready_fd >= 0)
        ready_report(pf, rc == -1 ? errno : EIO);
    /* Stopped by a signal is the normal end. */
    return rc == 0 || errno == ECANCELED ? 0 : 1;
}

/* ---- The supervisor ----------------------------------------------------- */

/* Kill a worker and reap it (its end is certain: no deadline needed). */
static void worker_kill(corio_process *p)
{
    int rc;

    corio_process_kill(p);
    rc = corio_process_wait(p, -1);
    (void)rc;
}

/* Start the worker of slot and wait until it serves. Returns 0, or -1 with
 * errno: the worker's reason, or ECHILD if it died without one. */
static int worker_start(struct prefork *pf, struct worker *w, size_t slot)
{
    corio_process_opts po = {.daemon = true};
    struct pollfd pfd;
    int p[2], err = ECHILD, code;
    ssize_t n;

    if (pipe2(p, O_CLOEXEC) == -1)
        return -1;
    pf->slot = slot;
    pf->ready_fd = p[1];
    w->proc = corio_process_new(worker_run, pf, &po);
    if (w->proc == NULL || corio_process_start(w->proc) == -1) {
        err = errno;
        corio_process_free(w->proc);
        w->proc = NULL;
        close(p[0]);
        close(p[1]);
        errno = err;
        return -1;
    }
    close(p[1]);
    pf->ready_fd = -1;
    w->started = corio_now();
    pfd = (struct pollfd){.fd = p[0], .events = POLLIN};
    if (poll(&pfd, 1, (int)(READY_TIMEOUT / CORIO_MSEC)) == 1) {
        n = read(p[0], &code, sizeof(code));
        err = n == sizeof(code) ? code : ECHILD;
    } else {
        err = ETIMEDOUT;
    }
    close(p[0]);
    if (err == 0)
        return 0;
    worker_kill(w->proc);
    corio_process_free(w->proc);
    w->proc = NULL;
    errno = err;
    return -1;
}

/* Stop the given workers: SIGTERM to all, wait for all until one deadline,
 * SIGKILL those left. Returns 0, or -1 ETIMEDOUT if any was killed. */
static int workers_stop(struct worker *ws, size_t n, int64_t timeout)
{
    int64_t deadline = corio_now() + timeout;
    bool killed = false;
    size_t i;

    for (i = 0; i < n; i++)
        if (ws[i].proc != NULL)
            corio_process_terminate(ws[i].proc);
    for (i = 0; i < n; i++) {
        if (ws[i].proc == NULL)
            continue;
        if (corio_process_wait(ws[i].proc, deadline) == -1) {
            killed = true;
            worker_kill(ws[i].proc);
        }
        corio_process_free(ws[i].proc);
        ws[i].proc = NULL;
    }
    if (killed) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

/* SIGHUP: replace the workers one at a time, the new one serving before
 * the old one stops. A new worker that cannot start leaves the old one. */
static void workers_reload(struct prefork *pf, struct worker *ws)
{
    for (size_t i = 0; i < pf->nworkers; i++) {
        struct worker fresh = {0};

        if (worker_start(pf, &fresh, i) == -1)
            continue;
        (void)workers_stop(&ws[i], 1, pf->stop_timeout);
        ws[i] = fresh;
    }
}

/* Start again the workers that have died (a slot at most once per
 * RESTART_GAP, so a worker that dies at once does not spin us). */
static void workers_restart(struct prefork *pf, struct worker *ws)
{
    for (size_t i = 0; i < pf->nworkers; i++) {
        if (ws[i].proc != NULL && corio_process_is_alive(ws[i].proc))
            continue;
        if (ws[i].proc != NULL) {
            corio_process_free(ws[i].proc);
            ws[i].proc = NULL;
        }
        if (corio_now() - ws[i].started < RESTART_GAP)
            continue;
        if (worker_start(pf, &ws[i], i) == -1)
            ws[i].started = corio_now();
    }
}

/* Wait for the next signals (up to 100 ms, for the restarts that wait for
 * their gap), then take every one pending. */
static void signals_wait(struct prefork *pf, bool *term, bool *hup)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&pf->sigs, NULL, &ts);

    while (sig > 0) {
        if (sig == SIGTERM || sig == SIGINT)
            *term = true;
        else if (sig == SIGHUP)
            *hup = true;
        ts = (struct timespec){0, 0};
        sig = sigtimedwait(&pf->sigs, NULL, &ts);
    }
}

static int supervise(struct prefork *pf, struct worker *ws,
                     const corio_addr *bound)
{
    bool term = false, hup = false;
    size_t i;

    for (i = 0; i < pf->nworkers; i++) {
        if (worker_start(pf, &ws[i], i) == -1) {
            int err = errno;

            (void)workers_stop(ws, i, pf->stop_timeout);
            errno = err == ETIMEDOUT ? ECHILD : err;
            return -1;
        }
    }
    if (pf->opts.on_ready != NULL)
        pf->opts.on_ready(bound, pf->opts.ready_arg);
    while (!term) {
        signals_wait(pf, &term, &hup);
        if (term)
            break;
        if (hup) {
            hup = false;
            workers_reload(pf, ws);
        }
        workers_restart(pf, ws);
    }
    return workers_stop(ws, pf->nworkers, pf->stop_timeout);
}

/* Bind (without listening) a socket that holds the address's port. */
static int port_hold(const char *addr, corio_addr *bound)
{
    int fd, one = 1, err;

    if (corio_addr_parse(bound, addr) == -1 ||
        (bound->ss.ss_family != AF_INET && bound->ss.ss_family != AF_INET6)) {
        errno = EINVAL;
        return -1;
    }
    fd = socket(bound->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        bind(fd, (struct sockaddr *)&bound->ss, bound->len) == -1 ||
        corio_socket_name(fd, bound) == -1) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int corio_prefork_serve(const char *addr, corio_conn_fn handler, void *arg,
                        const corio_prefork_opts *opts)
{
    corio_loop *loop = corio__current_loop;
    struct prefork *pf;
    struct worker *ws;
    corio_addr bound;
    int hold, rc, err;
    long ncpu;

    if (addr == NULL || handler == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (loop != NULL && (loop->running || loop->current != NULL)) {
        errno = EBUSY;
        return -1;
    }
    pf = calloc(1, sizeof(*pf));
    if (pf == NULL)
        return -1;
    if (opts != NULL)
        pf->opts = *opts;
    pf->handler = handler;
    pf->arg = arg;
    pf->ready_fd = -1;
    pf->stop_timeout = pf->opts.stop_timeout > 0 ? pf->opts.stop_timeout
                                                 : STOP_TIMEOUT_DEFAULT;
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pf->nworkers = pf->opts.workers > 0 ? pf->opts.workers
                                        : (size_t)(ncpu > 0 ? ncpu : 1);
    ws = calloc(pf->nworkers, sizeof(*ws));
    hold = ws != NULL ? port_hold(addr, &bound) : -1;
    if (hold == -1 ||
        corio_addr_format(&bound, pf->addr, sizeof(pf->addr)) == -1) {
        err = errno;
        if (hold >= 0)
            close(hold);
        free(ws);
        free(pf);
        errno = err;
        return -1;
    }
    sigemptyset(&pf->sigs);
    sigaddset(&pf->sigs, SIGTERM);
    sigaddset(&pf->sigs, SIGINT);
    sigaddset(&pf->sigs, SIGHUP);
    sigaddset(&pf->sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &pf->sigs, &pf->old_mask);
    rc = supervise(pf, ws, &bound);
    err = errno;
    pthread_sigmask(SIG_SETMASK, &pf->old_mask, NULL);
    close(hold);
    free(ws);
    free(pf);
    errno = err;
    return rc;
}
