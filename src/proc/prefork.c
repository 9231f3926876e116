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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
};

/* One worker's own state. A process worker gets its copy by fork; a
 * thread worker shares it with the supervisor (the fields below `ready_fd`
 * are the thread's; `mu` guards `loop` against its closing). */
struct wctx {
    struct prefork *pf;
    size_t slot;
    int ready_fd;               /* write end, until reported */
    pthread_t th;
    pthread_mutex_t mu;
    corio_loop *loop;           /* the thread's, NULL once it closes */
    corio_task *main;
    bool main_done;             /* worker_main returned (loop's thread) */
    _Atomic bool ended;         /* the thread's function returned */
};

/* A worker as the supervisor sees it: a process or a thread. */
struct worker {
    corio_process *proc;
    struct wctx *thr;
    int64_t started;
};

/* ---- The worker --------------------------------------------------------- */

static void ready_report(struct wctx *c, int err)
{
    ssize_t r = write(c->ready_fd, &err, sizeof(err));

    (void)r;
    close(c->ready_fd);
    c->ready_fd = -1;
}

/* The worker's main task: serve until cancelled (corio_run's SIGTERM in a
 * process, the supervisor's call in a thread), then stop the server. */
static void *worker_main(void *arg)
{
    struct wctx *c = arg;
    struct prefork *pf = c->pf;
    corio_listen_opts lo = pf->opts.listen;
    corio_server *s;
    int rc;

    lo.reuseport = true;
    s = corio_server_start(pf->addr, &lo, pf->handler, pf->arg);
    if (s == NULL) {
        ready_report(c, errno);
        c->main_done = true;
        return corio_task_fail(errno);
    }
    ready_report(c, 0);
    while (corio_sleep(3600 * CORIO_SECOND) == 0)
        ;
    {
        int64_t deadline = corio_now() + pf->stop_timeout;
        CORIO_SHIELD(deadline);
        rc = corio_server_stop(s, deadline);
    }
    c->main_done = true;
    return rc == 0 || errno == ETIMEDOUT ? NULL : corio_task_fail(errno);
}

/* The hook of opts; false (reported) if it refuses. */
static bool worker_hook(struct wctx *c, int *rc)
{
    struct prefork *pf = c->pf;

    *rc = 0;
    if (pf->opts.on_worker != NULL)
        *rc = pf->opts.on_worker(c->slot, pf->opts.ready_arg);
    if (*rc != 0)
        ready_report(c, ECHILD);
    return *rc == 0;
}

static int process_run(void *arg)
{
    struct wctx *c = arg;
    int rc;

    /* The supervisor's blocked signals are ours by inheritance: undo, and
     * leave SIGHUP to the supervisor (a terminal's hang-up reloads). */
    pthread_sigmask(SIG_SETMASK, &c->pf->old_mask, NULL);
    signal(SIGHUP, SIG_IGN);
    if (!worker_hook(c, &rc))
        return rc;
    rc = corio_run(worker_main, c, NULL);
    if (c->ready_fd >= 0)
        ready_report(c, rc == -1 ? errno : EIO);
    /* Stopped by a signal is the normal end. */
    return rc == 0 || errno == ECANCELED ? 0 : 1;
}

/* A thread worker: a loop of its own, on the thread's stack, with the
 * supervisor's signals blocked (inherited). */
static void *thread_run(void *arg)
{
    struct wctx *c = arg;
    corio_loop *loop = corio_loop_new();
    int rc;

    if (loop == NULL || corio_loop_set_current(loop) == -1) {
        ready_report(c, errno);
        goto out;
    }
    if (!worker_hook(c, &rc))
        goto out;
    pthread_mutex_lock(&c->mu);
    c->main = corio_task_spawn(worker_main, c, NULL);
    c->loop = c->main != NULL ? loop : NULL;
    pthread_mutex_unlock(&c->mu);
    if (c->main == NULL) {
        ready_report(c, errno);
        goto out;
    }
    rc = corio_task_join(c->main, NULL);
    (void)rc;
    if (c->ready_fd >= 0)
        ready_report(c, EIO);
out:
    pthread_mutex_lock(&c->mu);
    c->loop = NULL;
    pthread_mutex_unlock(&c->mu);
    if (loop != NULL)
        corio_loop_close(loop);
    atomic_store(&c->ended, true);
    return NULL;
}

/* On the worker thread's loop: cancel its main task (SIGTERM's part). */
static void thread_cancel(void *arg)
{
    struct wctx *c = arg;

    if (!c->main_done)
        corio_task_cancel(c->main);
}

/* ---- The supervisor's view of a worker ---------------------------------- */

static int w_launch(struct prefork *pf, struct worker *w, struct wctx *c)
{
    corio_process_opts po = {.daemon = true};
    sigset_t all, old;
    int err;

    if (pf->opts.threads) {
        w->thr = c;
        pthread_mutex_init(&c->mu, NULL);
        /* Every signal blocked in the worker: the supervisor takes them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = pthread_create(&c->th, NULL, thread_run, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err == 0)
            return 0;
        pthread_mutex_destroy(&c->mu);
        w->thr = NULL;
        errno = err;
        return -1;
    }
    w->proc = corio_process_new(process_run, c, &po);
    if (w->proc != NULL && corio_process_start(w->proc) == 0)
        return 0;
    err = errno;
    corio_process_free(w->proc);
    w->proc = NULL;
    errno = err;
    return -1;
}

static bool w_alive(struct worker *w)
{
    if (w->thr != NULL)
        return !atomic_load(&w->thr->ended);
    return w->proc != NULL && corio_process_is_alive(w->proc);
}

/* Ask the worker to stop (SIGTERM; a thread's task is cancelled). */
static void w_terminate(struct worker *w)
{
    if (w->proc != NULL) {
        corio_process_terminate(w->proc);
        return;
    }
    pthread_mutex_lock(&w->thr->mu);
    if (w->thr->loop != NULL)
        corio_loop_call_soon_threadsafe(w->thr->loop, thread_cancel, w->thr);
    pthread_mutex_unlock(&w->thr->mu);
}

/* Wait for the worker's end until deadline: 0, or -1 ETIMEDOUT. */
static int w_wait(struct worker *w, int64_t deadline)
{
    struct timespec ts;
    int64_t left;

    if (w->proc != NULL)
        return corio_process_wait(w->proc, deadline);
    left = deadline - corio_now();
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / CORIO_SECOND;
    ts.tv_nsec += left % CORIO_SECOND;
    if (ts.tv_nsec >= CORIO_SECOND) {
        ts.tv_sec++;
        ts.tv_nsec -= CORIO_SECOND;
    }
    if (left > 0 && pthread_timedjoin_np(w->thr->th, NULL, &ts) == 0) {
        pthread_mutex_destroy(&w->thr->mu);
        free(w->thr);
        w->thr = NULL;
        return 0;
    }
    errno = ETIMEDOUT;
    return -1;
}

/* End the worker for sure and forget it: a process is killed; a thread
 * cannot be, so it is waited for (its server's own stop_timeout cancels its
 * handlers; only a handler that never yields keeps it). */
static void w_finish(struct worker *w)
{
    int rc;

    if (w->proc != NULL) {
        if (w_alive(w)) {
            corio_process_kill(w->proc);
            rc = corio_process_wait(w->proc, -1);
            (void)rc;
        }
        corio_process_free(w->proc);
        w->proc = NULL;
    }
    if (w->thr != NULL) {
        pthread_join(w->thr->th, NULL);
        pthread_mutex_destroy(&w->thr->mu);
        free(w->thr);
        w->thr = NULL;
    }
}

/* Start the worker of slot and wait until it serves. Returns 0, or -1 with
 * errno: the worker's reason, or ECHILD if it died without one. */
static int worker_start(struct prefork *pf, struct worker *w, size_t slot)
{
    struct wctx *c = calloc(1, sizeof(*c));
    struct pollfd pfd;
    int p[2], err = ECHILD, code;
    ssize_t n;

    if (c == NULL)
        return -1;
    if (pipe2(p, O_CLOEXEC) == -1) {
        free(c);
        return -1;
    }
    c->pf = pf;
    c->slot = slot;
    c->ready_fd = p[1];
    if (w_launch(pf, w, c) == -1) {
        err = errno;
        close(p[0]);
        close(p[1]);
        free(c);
        errno = err;
        return -1;
    }
    if (w->proc != NULL) {
        /* The child has its copy. */
        close(p[1]);
        free(c);
    }
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
    w_terminate(w);
    w_finish(w);
    errno = err;
    return -1;
}

/* Stop the given workers: ask all, wait for all until one deadline, then
 * end those left for sure. Returns 0, or -1 ETIMEDOUT if any was late. */
static int workers_stop(struct worker *ws, size_t n, int64_t timeout)
{
    int64_t deadline = corio_now() + timeout;
    bool late = false;
    size_t i;

    for (i = 0; i < n; i++)
        if (ws[i].proc != NULL || ws[i].thr != NULL)
            w_terminate(&ws[i]);
    for (i = 0; i < n; i++) {
        if (ws[i].proc == NULL && ws[i].thr == NULL)
            continue;
        if (w_wait(&ws[i], deadline) == -1)
            late = true;
        w_finish(&ws[i]);
    }
    if (late) {
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
        if (w_alive(&ws[i]))
            continue;
        w_finish(&ws[i]);
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
