/* src/thread/pool.c -- the thread pool executor: worker threads that run
 * blocking jobs, and the way their results get back to a loop.
 *
 * A job is one record shared by two sides that live on different threads:
 *
 *   loop side   the task waiting in corio_pool_run (a waiter on its
 *               stack), or the future of corio_pool_submit; it runs on the
 *               loop's thread;
 *   pool side   the queue, then the worker running fn(arg).
 *
 * Each side, and a delivery in flight to the loop, holds a reference; the
 * last one frees the record, so neither side can outlive it. The job's
 * state (QUEUED, RUNNING, FINISHED, CANCELLED) and the `attached` flag are
 * under the pool's mutex:
 *
 *   QUEUED --worker takes it--> RUNNING --fn returns--> FINISHED
 *      \--waiter gives up, or corio_pool_free--> CANCELLED (never runs)
 *
 * When a job ends (FINISHED, or CANCELLED by corio_pool_free) and its loop
 * side is still attached, the delivery (a job of the loop's ready queue
 * embedded in the record) is posted to the loop's thread-safe queue; it
 * wakes the waiter or completes the future there. Posting happens under the
 * pool's mutex, and a loop side that gives up (cancelled, deadline) detaches
 * under the same mutex: so after detaching, nothing is posted to its loop
 * any more, and a loop closed after that is never touched.
 *
 * What this file does not do: stop a job that runs (C code cannot be
 * interrupted safely), or grow and shrink the pool. */
#define _GNU_SOURCE
#include "corio/thread.h"
#include "../task/task_int.h"
#include "thread_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum job_state {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_FINISHED,   /* fn returned; result is set */
    JOB_CANCELLED,  /* taken off the queue: fn never ran */
};

struct corio_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* workers wait here for jobs */
    struct corio__list queue;       /* struct pool_job.node, FIFO; under mu */
    bool stopping;                  /* corio_pool_free has begun; under mu */
    int refs;                       /* atomic: the owner + one per job */
    size_t nthreads;                /* workers started */
    pthread_t *threads;
};

struct pool_job {
    struct corio__list node;        /* in pool->queue while QUEUED */
    struct corio__job delivery;     /* on the loop's queue while posted */
    corio_pool *pool;               /* a reference, dropped with the job */
    corio_loop *loop;               /* where the result goes */
    corio_fn fn;
    void *arg;
    int refs;                       /* atomic */

    /* Under pool->mu; read by the loop side after the delivery ran. */
    enum job_state state;
    bool attached;                  /* the loop side wants the result */
    void *result;                   /* fn's return value, once FINISHED */
    int err;                        /* 0, or ECANCELED once CANCELLED */

    /* The loop's thread only. At most one is set; both are cleared when the
     * loop side lets go, so a delivery still in flight finds nothing. */
    struct corio__waiter *waiter;   /* corio_pool_run's */
    struct submit_future *sf;       /* corio_pool_submit's */
};

/* The future corio_pool_submit returns. The future comes first, so that
 * corio_future_free (a plain free) releases the whole block. */
struct submit_future {
    struct corio_future fut;
    struct pool_job *job;           /* loop thread; NULL once let go */
};

/* ---- Keeping corio_loop_run_until_idle going ------------------------------------------
 * A loop waiting for a job has no timer and no fd of its own, yet it must
 * not look idle to corio_loop_run_until_idle. Loop thread only. */

static void loop_keep(corio_loop *loop)
{
    corio__loop_ref(loop);
}

static void loop_unkeep(corio_loop *loop)
{
    corio__loop_unref(loop);
}

/* ---- References --------------------------------------------------------- */

static void pool_unref(corio_pool *pool)
{
    if (__atomic_sub_fetch(&pool->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool);
}

static void job_ref(struct pool_job *job)
{
    __atomic_add_fetch(&job->refs, 1, __ATOMIC_RELAXED);
}

static void job_unref(struct pool_job *job)
{
    if (__atomic_sub_fetch(&job->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pool_unref(job->pool);
    free(job);
}

/* ---- Delivering results to the loop ------------------------------------- */

/* Under pool->mu, once the job has ended: send the outcome to the loop
 * side, if it still waits. */
static void job_post(struct pool_job *job)
{
    if (!job->attached)
        return;
    job_ref(job); /* the delivery's; the caller holds another one */
    /* the delivery is embedded in the job: no allocation, and its drop
     * hook runs if the loop is closed first */
    if (corio__loop_post_threadsafe(job->loop, &job->delivery) == -1) {
        job->attached = false;
        job_unref(job);
    }
}

static void submit_release(struct submit_future *sf);

/* On the loop's thread: wake the waiter (which then reads the outcome and
 * lets go), or complete the future and let go of the job for it. */
static void delivery_run(struct corio__job *d)
{
    struct pool_job *job = CORIO_CONTAINER_OF(d, struct pool_job, delivery);
    struct submit_future *sf = job->sf;

    if (job->waiter != NULL) {
        corio__wake(job->waiter, job->err);
        job->waiter = NULL;
    } else if (sf != NULL) {
        if (sf->fut.state == CORIO_PENDING && job->err != 0)
            corio__future_complete(&sf->fut, CORIO_CANCELLED, NULL, job->err);
        else if (sf->fut.state == CORIO_PENDING)
            corio__future_complete(&sf->fut, CORIO_DONE, job->result, 0);
        submit_release(sf);
    }
    job_unref(job);
}

/* The loop was closed with the delivery still queued. */
static void delivery_drop(struct corio__job *d)
{
    job_unref(CORIO_CONTAINER_OF(d, struct pool_job, delivery));
}

/* On the loop's thread: the loop side gives up. A job still queued is taken
 * off the queue (it never runs); one running is left to end, and nothing
 * will be posted for it. Drops the loop side's reference. */
static void job_detach(struct pool_job *job)
{
    corio_pool *pool = job->pool;
    bool unqueued = false;

    job->waiter = NULL;
    job->sf = NULL;
    pthread_mutex_lock(&pool->mu);
    job->attached = false;
    if (job->state == JOB_QUEUED) {
        corio__list_remove(&job->node);
        job->state = JOB_CANCELLED;
        unqueued = true;
    }
    pthread_mutex_unlock(&pool->mu);
    if (unqueued)
        job_unref(job); /* the queue's */
    job_unref(job);
}

/* ---- Workers ------------------------------------------------------------ */

struct worker_start {
    corio_pool *pool;
    size_t index;
};

static void *worker_main(void *arg)
{
    struct worker_start *ws = arg;
    corio_pool *pool = ws->pool;
    char name[16];

    snprintf(name, sizeof(name), "corio-pool-%zu", ws->index);
    corio__thread_set_name(name);
    free(ws);

    pthread_mutex_lock(&pool->mu);
    for (;;) {
        struct corio__list *n;
        struct pool_job *job;
        void *result;

        while (corio__list_empty(&pool->queue) && !pool->stopping)
            pthread_cond_wait(&pool->cv, &pool->mu);
        n = corio__list_pop_front(&pool->queue);
        if (n == NULL)
            break; /* stopping, and corio_pool_free emptied the queue */
        job = CORIO_CONTAINER_OF(n, struct pool_job, node);
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&pool->mu);

        result = job->fn(job->arg);

        pthread_mutex_lock(&pool->mu);
        job->result = result;
        job->state = JOB_FINISHED;
        job_post(job);
        pthread_mutex_unlock(&pool->mu);
        job_unref(job); /* the pool side's; may free it */
        pthread_mutex_lock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* The signals a worker keeps unblocked: those a fault raises in the thread
 * that caused it, and the profiler's. */
static void worker_sigmask(sigset_t *set)
{
    sigfillset(set);
    sigdelset(set, SIGSEGV);
    sigdelset(set, SIGBUS);
    sigdelset(set, SIGFPE);
    sigdelset(set, SIGILL);
    sigdelset(set, SIGTRAP);
    sigdelset(set, SIGSYS);
    sigdelset(set, SIGABRT);
    sigdelset(set, SIGPROF);
}

/* Start worker i. The mask is set around pthread_create so that the worker
 * starts with the signals blocked: no window in which one lands there. */
static int worker_start(corio_pool *pool, size_t i)
{
    struct worker_start *ws = malloc(sizeof(*ws));
    sigset_t set, old;
    int rc;

    if (ws == NULL)
        return -1;
    ws->pool = pool;
    ws->index = i;
    worker_sigmask(&set);
    pthread_sigmask(SIG_SETMASK, &set, &old);
    rc = pthread_create(&pool->threads[i], NULL, worker_main, ws);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(ws);
        errno = rc;
        return -1;
    }
    return 0;
}

/* ---- Pools -------------------------------------------------------------- */

static corio_pool *default_pool;
static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;

/* Stop the workers: cancel the queued jobs, let the running ones end, join.
 * Then drop the owner's reference. */
static void pool_stop(corio_pool *pool)
{
    struct corio__list *n;

    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    while ((n = corio__list_pop_front(&pool->queue)) != NULL) {
        struct pool_job *job = CORIO_CONTAINER_OF(n, struct pool_job, node);

        job->state = JOB_CANCELLED;
        job->err = ECANCELED;
        job_post(job);
        job_unref(job); /* the queue's; the loop side holds one: no free */
    }
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (size_t i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pool_unref(pool);
}

corio_pool *corio_pool_new(size_t nthreads)
{
    corio_pool *pool;
    int err;

    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        nthreads = n > 0 ? (size_t)n : 1;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->threads = calloc(nthreads, sizeof(*pool->threads));
    if (pool->threads == NULL)
        goto out_free_pool;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    corio__list_init(&pool->queue);
    pool->refs = 1;
    for (size_t i = 0; i < nthreads; i++) {
        if (worker_start(pool, i) == -1)
            goto out_stop;
        pool->nthreads++;
    }
    return pool;

out_stop:
    err = errno;
    pool_stop(pool);
    errno = err;
    return NULL;
out_free_pool:
    free(pool);
    errno = ENOMEM;
    return NULL;
}

int corio_pool_free(corio_pool *pool)
{
    bool is_default;

    if (pool == NULL)
        return 0;
    pthread_mutex_lock(&default_mu);
    is_default = pool == default_pool;
    pthread_mutex_unlock(&default_mu);
    if (is_default) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < pool->nthreads; i++) {
        if (pthread_equal(pool->threads[i], pthread_self())) {
            errno = EDEADLK;
            return -1;
        }
    }
    pool_stop(pool);
    return 0;
}

size_t corio_pool_size(const corio_pool *pool)
{
    return pool != NULL ? pool->nthreads : 0;
}

/* fork() copies only the forking thread: in the child the default pool has
 * no workers, and default_mu must not be held by a thread that is gone. The
 * old pool is abandoned there (its memory stays reachable). */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&default_mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&default_mu);
}

static void atfork_child(void)
{
    default_pool = NULL;
    pthread_mutex_unlock(&default_mu);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

corio_pool *corio_pool_default(void)
{
    corio_pool *pool;

    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&default_mu);
    if (default_pool == NULL)
        default_pool = corio_pool_new(0);
    pool = default_pool;
    pthread_mutex_unlock(&default_mu);
    return pool;
}

/* ---- Jobs --------------------------------------------------------------- */

/* A new job of pool, queued, with two references: the queue's and the loop
 * side's (whose waiter or future the caller sets next, before the loop runs
 * again). NULL with errno CORIO_ECLOSED (pool stopping), ENOMEM. */
static struct pool_job *job_queue(corio_pool *pool, corio_loop *loop,
                                  corio_fn fn, void *arg)
{
    struct pool_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->pool = pool;
    job->loop = loop;
    job->fn = fn;
    job->arg = arg;
    job->refs = 2;
    job->delivery.run = delivery_run;
    job->delivery.drop = delivery_drop;
    corio__list_init(&job->delivery.node);
    job->state = JOB_QUEUED;
    job->attached = true;

    pthread_mutex_lock(&pool->mu);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->mu);
        free(job);
        errno = CORIO_ECLOSED;
        return NULL;
    }
    __atomic_add_fetch(&pool->refs, 1, __ATOMIC_RELAXED);
    corio__list_push_back(&pool->queue, &job->node);
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return job;
}

/* The checks corio__wait makes before it parks, made before queueing: a
 * call that cannot wait must not start a job. Returns 0, or -1 with errno
 * EDEADLK, ECANCELED, ETIMEDOUT. */
static int can_wait(corio_loop *loop, int64_t deadline)
{
    struct corio__fiber *f = corio__fiber_running(loop);
    struct corio_scope *by;
    int err;

    if (f == NULL && loop->running) {
        errno = EDEADLK;
        return -1;
    }
    err = corio__scope_check(f, &deadline, &by);
    if (err == 0 && deadline >= 0 && deadline <= corio_now())
        err = ETIMEDOUT;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* A corio_pool_run in progress: its waiter points into the job and the job
 * at the waiter, so a wait that ends without the delivery (timeout,
 * cancellation, a fiber abandoned at loop close) detaches the job in the
 * waiter's unlink, before the caller's frame can go away. */
struct run_wait {
    struct corio__waiter w;
    struct pool_job *job;
    corio_loop *loop;
    bool detached;
};

static void run_unlink(struct corio__waiter *w)
{
    struct run_wait *rw = CORIO_CONTAINER_OF(w, struct run_wait, w);

    if (rw->detached || rw->job->waiter != w)
        return;
    rw->detached = true;
    loop_unkeep(rw->loop);
    job_detach(rw->job);
}

int corio_pool_run(corio_pool *pool, corio_fn fn, void *arg, void **result,
                      int64_t deadline)
{
    struct run_wait rw = {0};
    struct pool_job *job;
    corio_loop *loop;
    int rc;

    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    loop = corio__loop_get();
    if (loop == NULL || can_wait(loop, deadline) == -1)
        return -1;
    if (pool == NULL && (pool = corio_pool_default()) == NULL)
        return -1;
    job = job_queue(pool, loop, fn, arg);
    if (job == NULL)
        return -1;
    corio__waiter_init(&rw.w);
    rw.w.unlink = run_unlink;
    rw.job = job;
    rw.loop = loop;
    job->waiter = &rw.w;
    loop_keep(loop);
    rc = corio__wait(&rw.w, deadline);
    if (rw.detached) { /* gave up: cancelled, timed out (run_unlink) */
        errno = rw.w.err;
        return -1;
    }
    loop_unkeep(loop);
    if (rc == -1) {
        int err = errno;

        if (job->waiter != NULL)
            job_detach(job); /* gave up without an unlink (EDEADLK...) */
        else
            job_unref(job);
        errno = err;
        return -1;
    }
    if (result != NULL)
        *result = job->result;
    job_unref(job);
    return 0;
}

/* ---- Futures ---------------------------------------------------------------
 * The job and its future let go of each other once, on the loop's thread:
 * when the delivery completes the future (submit_release), or when the
 * future is done first, cancelled by its owner (submit_done, its done
 * callback). The done callback gets the future, not the job: the future
 * outlives its callbacks (corio_future_free waits for them), the job may
 * not. */

/* The job has been delivered to sf: let go of each other. */
static void submit_release(struct submit_future *sf)
{
    struct pool_job *job = sf->job;

    sf->job = NULL;
    job->sf = NULL;
    loop_unkeep(sf->fut.loop);
    job_unref(job); /* the loop side's */
}

/* Done callback of a submitted job's future, on its loop. If the job is
 * still attached, the future was cancelled before the job's outcome came:
 * detach it (a queued job never runs). */
static void submit_done(corio_future *f, void *arg)
{
    struct submit_future *sf = (struct submit_future *)f;
    struct pool_job *job = sf->job;

    (void)arg;
    if (job == NULL)
        return;
    sf->job = NULL;
    loop_unkeep(f->loop);
    job_detach(job);
}

/* corio_future_free of the future while its job is pending: let go. */
static void submit_on_free(corio_future *f)
{
    struct submit_future *sf = (struct submit_future *)f;
    struct pool_job *job = sf->job;

    if (job == NULL)
        return;
    sf->job = NULL;
    loop_unkeep(f->loop);
    job_detach(job);
}

corio_future *corio_pool_submit(corio_pool *pool, corio_fn fn, void *arg)
{
    struct submit_future *sf;
    struct pool_job *job;
    corio_loop *loop;
    int err;

    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (pool == NULL && (pool = corio_pool_default()) == NULL)
        return NULL;
    loop = corio__loop_get();
    if (loop == NULL)
        return NULL;
    sf = calloc(1, sizeof(*sf));
    if (sf == NULL)
        return NULL;
    corio__future_init(&sf->fut, loop);
    sf->fut.on_free = submit_on_free;
    if (corio_future_add_done_callback(&sf->fut, submit_done, NULL) == -1)
        goto out_free_future;
    job = job_queue(pool, loop, fn, arg);
    if (job == NULL)
        goto out_free_future;
    /* The worker may finish first; the delivery runs on this thread, later. */
    job->sf = sf;
    sf->job = job;
    loop_keep(loop);
    return &sf->fut;

out_free_future:
    err = errno;
    corio_future_free(&sf->fut);
    errno = err;
    return NULL;
}
