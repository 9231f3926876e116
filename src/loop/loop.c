/* src/loop/loop.c -- the event loop: the ready queue, timers, one iteration,
 * run/stop/close, and the thread's current loop.
 *
 * One iteration (corio__loop_run_once), in asyncio's order:
 *   1. poll for I/O, sleeping until the next timer at most (not at all if a
 *      job is ready, and only every CORIO__SPIN_MAX iterations while jobs
 *      keep being ready); fd events and wake-ups make their waiters ready;
 *   2. expired timers fire (a callback timer makes its job ready; a deadline
 *      wakes its waiter with ETIMEDOUT);
 *   3. the jobs that are ready now run, in order; jobs they make ready wait
 *      for the next iteration, so a task that sleeps 0 lets the others run. */
#include "loop_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

CORIO__TLS corio_loop *corio__current_loop;
static pthread_key_t loop_key;
static pthread_once_t loop_key_once = PTHREAD_ONCE_INIT;

static void on_thread_exit(void *loop)
{
    corio_loop_close(loop);
}

static void loop_key_make(void)
{
    pthread_key_create(&loop_key, on_thread_exit);
}

/* ---- Creation ----------------------------------------------------------- */

corio_loop *corio_loop_new(void)
{
    corio_loop *loop = calloc(1, sizeof(*loop));
    int err;

    if (loop == NULL)
        return NULL;
    if (corio__poller_open(&loop->poller) == -1)
        goto out_free_loop;
    corio__list_init(&loop->ready);
    corio__list_init(&loop->batch);
    corio__list_init(&loop->fibers);
    corio__list_init(&loop->tsq);
    corio__heap_init(&loop->timers);
    pthread_mutex_init(&loop->tsq_mu, NULL);
    loop->now = corio_now();
    if (corio__current_loop == NULL)
        corio__current_loop = loop;
    return loop;

out_free_loop:
    err = errno;
    free(loop);
    errno = err;
    return NULL;
}

corio_loop *corio_loop_current(void)
{
    corio_loop *loop = corio__current_loop;

    if (CORIO_LIKELY(loop != NULL))
        return loop;
    loop = corio_loop_new();
    if (loop == NULL)
        return NULL;
    /* The thread owns the loop it made implicitly. */
    pthread_once(&loop_key_once, loop_key_make);
    pthread_setspecific(loop_key, loop);
    return loop;
}

int corio_loop_set_current(corio_loop *loop)
{
    if (corio__current_loop != NULL && corio__current_loop->running) {
        errno = EBUSY;
        return -1;
    }
    corio__current_loop = loop;
    return 0;
}

int64_t corio_loop_time(const corio_loop *loop)
{
    return loop != NULL ? loop->now : corio_now();
}

bool corio_loop_is_running(const corio_loop *loop)
{
    return loop != NULL && loop->running;
}

/* ---- Timers ------------------------------------------------------------- */

int corio__timer_arm(corio_loop *loop, struct corio__timer *t, int64_t when)
{
    if (t->armed)
        corio__heap_remove(&loop->timers, &t->hn); /* then insert has room */
    t->hn.when = when;
    t->armed = corio__heap_insert(&loop->timers, &t->hn) == 0;
    return t->armed ? 0 : -1;
}

void corio__timer_remove(corio_loop *loop, struct corio__timer *t)
{
    corio__heap_remove(&loop->timers, &t->hn);
    t->armed = false;
}

static void fire_timers(corio_loop *loop)
{
    struct corio__heap_node *n;

    while ((n = corio__heap_min(&loop->timers)) != NULL &&
           n->when <= loop->now) {
        struct corio__timer *t = CORIO_CONTAINER_OF(n, struct corio__timer, hn);

        corio__heap_remove(&loop->timers, n);
        t->armed = false;
        t->fire(t);
    }
}

/* ---- I/O events ---------------------------------------------------------- */

static void on_fd(corio_loop *loop, int fd, unsigned ready)
{
    struct corio__fd *f;

    if (fd < 0 || (size_t)fd >= loop->nfds)
        return;
    f = &loop->fds[fd];
    if (f->watch != NULL) {
        f->watch(loop, fd, f->watch_data);
        return;
    }
    if (ready & (CORIO__POLL_ERR | CORIO__POLL_HUP))
        f->hup = true;
    if (ready & CORIO__POLL_ERR)
        ready |= CORIO_READ | CORIO_WRITE;
    f->ready |= ready & (CORIO_READ | CORIO_WRITE);
    if (f->reader != NULL && (f->ready & CORIO_READ))
        corio__wake(f->reader, 0);
    if (f->writer != NULL && (f->ready & CORIO_WRITE))
        corio__wake(f->writer, 0);
}

static void on_wake(corio_loop *loop)
{
    pthread_mutex_lock(&loop->tsq_mu);
    corio__list_splice(&loop->ready, &loop->tsq);
    __atomic_store_n(&loop->wake_pending, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&loop->tsq_mu);
}

/* ---- Running ------------------------------------------------------------ */

bool corio__loop_busy(const corio_loop *loop)
{
    return !corio__list_empty(&loop->ready) || loop->timers.count > 0 ||
           loop->nwaiting_fds > 0 || loop->nrefs > 0 ||
           __atomic_load_n(&loop->wake_pending, __ATOMIC_ACQUIRE) != 0;
}

bool corio__loop_alive(const corio_loop *loop)
{
    return loop->nfibers > 0 || corio__loop_busy(loop);
}

void corio__loop_run_once(corio_loop *loop, bool block)
{
    struct corio__list *n;
    struct corio__heap_node *min;
    int64_t timeout = -1;

    /* With jobs ready, the poll for I/O is skipped for up to SPIN_MAX
     * iterations in a row (and tasks may switch straight to each other, see
     * corio__fiber_park): a poll is a system call, and a ping-pong between
     * two tasks would pay one per hand-off. */
    if (!corio__list_empty(&loop->ready) && loop->spins < CORIO__SPIN_MAX) {
        loop->spins++;
    } else {
        if (!corio__list_empty(&loop->ready) || !block || loop->stopping) {
            timeout = 0;
        } else {
            int64_t now = corio_now();
            /* About to sleep: the stacks a burst left beyond the pools'
             * bound go back once they have been idle long enough, and the
             * sleep ends in time for the rest. */
            int64_t trim = corio__stack_trim(now, false);

            if ((min = corio__heap_min(&loop->timers)) != NULL)
                /* Compared first: min->when - now wraps for a time far
                 * past. */
                timeout = min->when > now ? min->when - now : 0;
            if (trim >= 0 && (timeout < 0 || trim < timeout))
                timeout = trim;
        }
        loop->spins = 0;
        corio__poller_wait(&loop->poller, timeout, loop, on_fd, on_wake);
    }
    loop->now = corio_now();
    fire_timers(loop);

    /* The batch is the loop's, so that a task that parks can see whether it
     * was the last of it (corio__fiber_park). */
    corio__list_splice(&loop->batch, &loop->ready);
    while ((n = corio__list_pop_front(&loop->batch)) != NULL) {
        struct corio__job *job = CORIO_CONTAINER_OF(n, struct corio__job, node);

        job->run(job);
    }
}

static int enter(corio_loop *loop)
{
    if (loop == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (loop->running) {
        errno = EBUSY;
        return -1;
    }
    loop->running = true;
    loop->stopping = false;
    loop->sched = corio_coro_self();
    if (loop->sched == NULL)
        loop->sched = corio__coro_main();
    /* The loop is current while it runs (its tasks' calls find it), and
     * the thread's own current loop comes back when it returns. */
    loop->prev_current = corio__current_loop;
    corio__current_loop = loop;
    return 0;
}

static void leave(corio_loop *loop)
{
    loop->running = false;
    corio__current_loop = loop->prev_current;
}

int corio_loop_run_forever(corio_loop *loop)
{
    if (enter(loop) == -1)
        return -1;
    while (!loop->stopping)
        corio__loop_run_once(loop, true);
    leave(loop);
    return 0;
}

int corio_loop_run_until_idle(corio_loop *loop)
{
    if (enter(loop) == -1)
        return -1;
    while (!loop->stopping && corio__loop_alive(loop))
        corio__loop_run_once(loop, true);
    leave(loop);
    return 0;
}

int corio_loop_stop(corio_loop *loop)
{
    if (loop == NULL) {
        errno = EINVAL;
        return -1;
    }
    loop->stopping = true;
    return 0;
}

/* ---- Closing ------------------------------------------------------------- */

static void handles_drop(corio_loop *loop);
static void handle_drop(struct corio__job *job);

int corio_loop_close(corio_loop *loop)
{
    corio_loop *prev;

    if (loop == NULL)
        return 0;
    if (loop->running) {
        errno = EBUSY;
        return -1;
    }
    /* Other threads' calls fail with CORIO_ECLOSED from now on, so cleanup
     * that waits for another thread (a pool job in a shield) waits out the
     * grace period and is abandoned (its job let go: pool.c's run_unlink). */
    pthread_mutex_lock(&loop->tsq_mu);
    loop->tsq_closed = true;
    corio__list_splice(&loop->ready, &loop->tsq);
    pthread_mutex_unlock(&loop->tsq_mu);
    prev = corio__current_loop;
    corio__current_loop = loop; /* the cancelled tasks' cleanup runs on their loop */
    corio__fibers_cancel_all(loop);
    corio__current_loop = prev;
    corio__signals_close(loop);
    handles_drop(loop);
    corio__poller_close(&loop->poller);
    pthread_mutex_destroy(&loop->tsq_mu);
    free(loop->fds);
    corio__heap_free(&loop->timers);
    if (corio__current_loop == loop)
        corio__current_loop = NULL;
    pthread_once(&loop_key_once, loop_key_make);
    if (pthread_getspecific(loop_key) == loop)
        pthread_setspecific(loop_key, NULL);
    free(loop);
    return 0;
}

/* ---- Callbacks ----------------------------------------------------------- */

struct corio_handle {
    struct corio__job job;
    struct corio__timer timer;
    corio_loop *loop;
    corio_callback cb;
    void *arg;
    bool done;      /* ran, or cancelled */
    bool cancelled;
    bool owned;     /* the caller holds it: freed by corio_handle_free */
    bool released;  /* the caller freed it while it was pending */
    bool queued;    /* in the ready queue or tsq */
};

static void handle_release(corio_handle *h)
{
    if (!h->owned || h->released)
        free(h);
}

static void handle_run(struct corio__job *job)
{
    corio_handle *h = CORIO_CONTAINER_OF(job, corio_handle, job);

    if (!h->done) {
        h->done = true;
        h->cb(h->arg);
    }
    /* Only now: a corio_handle_free(h) made by the callback itself sees the
     * handle still queued and leaves the freeing to handle_release. */
    h->queued = false;
    handle_release(h);
}

static void handle_fire(struct corio__timer *t)
{
    corio_handle *h = CORIO_CONTAINER_OF(t, corio_handle, timer);

    h->queued = true;
    corio__loop_ready(h->loop, &h->job);
}

static corio_handle *handle_new(corio_loop *loop, corio_callback cb, void *arg,
                                corio_handle **out)
{
    corio_handle *h;

    if (loop == NULL || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    corio__list_init(&h->job.node);
    h->job.run = handle_run;
    h->job.drop = handle_drop;
    h->timer.fire = handle_fire;
    h->loop = loop;
    h->cb = cb;
    h->arg = arg;
    h->owned = out != NULL;
    if (out != NULL)
        *out = h;
    return h;
}

int corio_loop_call_soon(corio_loop *loop, corio_callback cb, void *arg,
                    corio_handle **handle)
{
    corio_handle *h = handle_new(loop, cb, arg, handle);

    if (h == NULL)
        return -1;
    h->queued = true;
    corio__loop_ready(loop, &h->job);
    return 0;
}

int corio_loop_call_at(corio_loop *loop, int64_t when, corio_callback cb, void *arg,
                  corio_handle **handle)
{
    corio_handle *h = handle_new(loop, cb, arg, handle);

    if (h == NULL)
        return -1;
    if (corio__timer_arm(loop, &h->timer, when) == -1) {
        if (handle != NULL)
            *handle = NULL;
        free(h);
        return -1;
    }
    return 0;
}

int corio_loop_call_later(corio_loop *loop, int64_t delay_ns, corio_callback cb,
                     void *arg, corio_handle **handle)
{
    if (delay_ns < 0) {
        errno = EINVAL;
        return -1;
    }
    return corio_loop_call_at(loop, corio__after(delay_ns), cb, arg, handle);
}

int corio_loop_call_soon_threadsafe(corio_loop *loop, corio_callback cb, void *arg)
{
    corio_handle *h = handle_new(loop, cb, arg, NULL);

    if (h == NULL)
        return -1;
    h->queued = true;
    if (corio__loop_post_threadsafe(loop, &h->job) == -1) {
        free(h);
        return -1;
    }
    return 0;
}

int corio__loop_post_threadsafe(corio_loop *loop, struct corio__job *job)
{
    bool closed;

    pthread_mutex_lock(&loop->tsq_mu);
    closed = loop->tsq_closed;
    if (!closed) {
        corio__list_push_back(&loop->tsq, &job->node);
        /* One eventfd write per batch: the loop clears wake_pending when it
         * takes the queue. The write happens under tsq_mu: once the job is
         * queued the loop may run it and be closed, and corio_loop_close
         * takes tsq_mu before it closes the eventfd and frees the loop. */
        if (__atomic_exchange_n(&loop->wake_pending, 1, __ATOMIC_ACQ_REL) == 0)
            corio__poller_wake_threadsafe(&loop->poller);
    }
    pthread_mutex_unlock(&loop->tsq_mu);
    if (closed) {
        errno = CORIO_ECLOSED;
        return -1;
    }
    return 0;
}

int corio_handle_cancel(corio_handle *h)
{
    if (h == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (h->done) {
        errno = EALREADY;
        return -1;
    }
    h->done = true;
    h->cancelled = true;
    corio__timer_disarm(h->loop, &h->timer);
    if (h->queued) {
        /* Leave it in the queue: handle_run sees it done and frees it. */
        return 0;
    }
    return 0;
}

bool corio_handle_is_cancelled(const corio_handle *h)
{
    return h->cancelled;
}

int corio_handle_free(corio_handle *h)
{
    if (h == NULL)
        return 0;
    if (h->done && !h->queued && !h->timer.armed) {
        free(h);
        return 0;
    }
    h->released = true; /* the loop frees it when it runs or is dropped */
    return 0;
}

/* At close: jobs still in the ready queue are dropped (handles and done
 * callbacks free themselves; handles the caller still holds are marked done,
 * so freeing them later is safe), and so are the handles in the heap. Task
 * jobs are not there any more: corio__fibers_cancel_all finished them. */
static void handle_drop(struct corio__job *job)
{
    corio_handle *h = CORIO_CONTAINER_OF(job, corio_handle, job);

    h->queued = false;
    h->done = true;
    handle_release(h);
}

static void handles_drop(corio_loop *loop)
{
    struct corio__list *n;
    struct corio__heap_node *min;

    while ((n = corio__list_pop_front(&loop->ready)) != NULL) {
        struct corio__job *job = CORIO_CONTAINER_OF(n, struct corio__job, node);

        if (job->drop != NULL)
            job->drop(job);
    }
    while ((min = corio__heap_min(&loop->timers)) != NULL) {
        struct corio__timer *t =
            CORIO_CONTAINER_OF(min, struct corio__timer, hn);

        corio__heap_remove(&loop->timers, min);
        t->armed = false;
        if (t->fire == handle_fire) {
            corio_handle *h = CORIO_CONTAINER_OF(t, corio_handle, timer);

            h->done = true;
            handle_release(h);
        }
    }
}
