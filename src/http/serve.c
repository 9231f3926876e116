/* src/http/serve.c -- corio_http_serve: one app on N loops, one thread
 * each, each loop with its own listening socket on the same address
 * (SO_REUSEPORT: the kernel spreads the connections, nothing is shared on
 * the hot path), until SIGINT or SIGTERM. The calling thread blocks both
 * signals (the workers inherit the mask), waits for one with sigwait, and
 * wakes every loop with a thread-safe call that sets its stop event; each
 * worker then stops its server gracefully. */
#include "http_int.h"
#include "corio/loop.h"
#include "corio/sync.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define STOP_GRACE (5 * CORIO_SECOND)

struct worker {
    pthread_t thread;
    const char *addr;
    corio_http_app *app;
    corio_http_server_opts opts;
    FILE *log;
    corio_loop *loop;
    corio_event *stop;
    /* start-up report, under the shared lock */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int state;          /* 0 starting, 1 serving, -1 failed (err) */
    int err;
};

static void report(struct worker *w, int state, int err)
{
    pthread_mutex_lock(w->mu);
    w->state = state;
    w->err = err;
    pthread_cond_broadcast(w->cv);
    pthread_mutex_unlock(w->mu);
}

/* The blocking calls here run on the thread's own stack: each runs the
 * thread's loop until it is done. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    corio_http_server *srv;

    w->loop = corio_loop_new();
    w->stop = w->loop ? corio_event_new() : NULL;
    srv = w->stop ? corio_http_server_start(w->addr, w->app, &w->opts) : NULL;
    if (srv == NULL) {
        report(w, -1, errno);
        corio_event_free(w->stop);
        corio_loop_close(w->loop);
        return NULL;
    }
    corio_http_server_log(srv, w->log);
    report(w, 1, 0);
    while (corio_event_wait(w->stop, -1) == -1 && errno != ECANCELED)
        ;
    corio_http_server_stop(srv, corio_now() + STOP_GRACE);
    corio_event_free(w->stop);
    corio_loop_set_current(NULL);
    corio_loop_close(w->loop);
    return NULL;
}

static void set_stop(void *arg)
{
    corio_event_set(((struct worker *)arg)->stop);
}

int corio_http_serve(const char *addr, corio_http_app *app,
                     const corio_http_server_opts *opts, unsigned n, FILE *log)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    sigset_t set, old;
    struct worker *ws;
    unsigned started = 0;
    int err = 0, sig;

    if (addr == NULL || app == NULL || n > 1024) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    ws = calloc(n, sizeof(*ws));
    if (ws == NULL)
        return -1;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (unsigned i = 0; i < n && err == 0; i++) {
        struct worker *w = &ws[i];

        w->addr = addr;
        w->app = app;
        if (opts)
            w->opts = *opts;
        w->opts.listen.reuseport = w->opts.listen.reuseport || n > 1;
        w->log = log;
        w->mu = &mu;
        w->cv = &cv;
        if ((err = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
            break;
        started++;
        pthread_mutex_lock(&mu);
        while (w->state == 0)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        if (w->state == -1)
            err = w->err;
    }
    if (err == 0)
        sigwait(&set, &sig);
    for (unsigned i = 0; i < started; i++) {
        if (ws[i].state == 1)
            corio_loop_call_soon_threadsafe(ws[i].loop, set_stop, &ws[i]);
        pthread_join(ws[i].thread, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(ws);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
