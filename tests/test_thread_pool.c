/* tests/test_thread_pool.c -- the thread pool executor (corio_pool_run,
 * corio_pool_run, corio_pool_submit) and the calls other threads make into
 * a loop (corio_loop_call_soon_threadsafe, corio_future_set_*_threadsafe).
 *
 * Labelled "thread": scripts/test runs it under TSan too. Timing bounds have
 * slack for load, sanitizers and valgrind (helpers/timing.h); what they prove
 * is the shape (4 jobs of 500 ms in parallel take about 500 ms, not 2000),
 * so each stays below the duration that would mean the wrong shape.
 *
 * Every test has the same .timeout: Criterion 2.4.1's runner leaks 48 bytes
 * when the tests of one file have different timeouts and run with --jobs=2,
 * which LeakSanitizer and valgrind then report as a failure. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corio.h"
#include "corio/thread.h"
#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

/* ---- Jobs --------------------------------------------------------------- */

/* Sleeps arg milliseconds, returns arg. */
static void *sleep_job(void *arg)
{
    msleep((int64_t)(intptr_t)arg);
    return arg;
}

/* Records that it ran, returns its flag. */
static void *flag_job(void *arg)
{
    atomic_int *flag = arg;

    atomic_store(flag, 1);
    return arg;
}

struct slow_flag {
    int64_t ms;
    atomic_int started, finished;
};

/* Sleeps, then records that it finished. */
static void *slow_flag_job(void *arg)
{
    struct slow_flag *s = arg;

    atomic_store(&s->started, 1);
    msleep(s->ms);
    atomic_store(&s->finished, 1);
    return arg;
}

/* Run the loop until the job has started on its worker (valgrind can take
 * a while to schedule a new thread). */
static void wait_started(struct slow_flag *s)
{
    int64_t deadline = corio_now() + 10 * CORIO_SECOND;

    while (!atomic_load(&s->started) && corio_now() < deadline)
        corio_sleep(MS);
    cr_assert_eq(atomic_load(&s->started), 1, "the job did not start");
}

static void *add_one_job(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

/* ---- Results come back -------------------------------------------------- */

static void *self_job(void *arg)
{
    pthread_t *out = arg;

    *out = pthread_self();
    return "from a worker";
}

Test(thread_pool, to_thread_returns_the_result, .timeout = 30)
{
    corio_loop *loop = loop_open();
    pthread_t worker;
    void *r = NULL;

    /* On the thread's own stack: the call runs the loop until it is done. */
    cr_assert_eq(corio_pool_run(NULL, add_one_job, (void *)41, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 42);
    cr_assert_eq(corio_pool_run(NULL, self_job, &worker, &r, -1), 0);
    cr_assert_str_eq(r, "from a worker");
    cr_assert(!pthread_equal(worker, pthread_self()));
    cr_assert_eq(corio_pool_run(NULL, add_one_job, NULL, NULL, -1), 0);
    loop_done(loop);
}

static void *to_thread_task(void *arg)
{
    void *r;

    if (corio_pool_run(NULL, add_one_job, arg, &r, -1) == -1)
        return corio_task_fail(errno);
    return r;
}

Test(thread_pool, to_thread_in_a_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = corio_task_spawn(to_thread_task, (void *)1, NULL);
    void *r;

    cr_assert_not_null(t);
    cr_assert_eq(corio_task_join(t, &r), 0);
    cr_assert_eq((intptr_t)r, 2);
    loop_done(loop);
}

Test(thread_pool, bad_arguments, .timeout = 30)
{
    corio_loop *loop = loop_open();

    errno = 0;
    cr_assert_eq(corio_pool_run(NULL, NULL, NULL, NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_pool_submit(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_pool_free(NULL), 0);
    loop_done(loop);
}

/* corio_loop_run_until_idle counts a task waiting for a job as work: it does not
 * return before the job's result has come back. */
static void *loop_run_task(void *arg)
{
    void **out = arg;

    return corio_pool_run(NULL, sleep_job, (void *)(intptr_t)50, out, -1) == 0
               ? "ok" : NULL;
}

Test(thread_pool, loop_run_waits_for_jobs, .timeout = 30)
{
    corio_loop *loop = loop_open();
    void *out = NULL, *r = NULL;
    corio_task *t = corio_task_spawn(loop_run_task, &out, NULL);

    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert(corio_task_is_done(t));
    cr_assert_eq(corio_task_join(t, &r), 0);
    cr_assert_str_eq(r, "ok");
    cr_assert_eq((intptr_t)out, 50);
    loop_done(loop);
}

/* ---- Jobs run in parallel, the loop keeps going ------------------------- */

struct par {
    corio_pool *pool;
    atomic_int ticks;
    bool stop;
};

static void *par_sleeper(void *arg)
{
    struct par *p = arg;
    void *r;

    if (corio_pool_run(p->pool, sleep_job, (void *)(intptr_t)500, &r, -1))
        return corio_task_fail(errno);
    return r;
}

static void *par_ticker(void *arg)
{
    struct par *p = arg;

    while (!p->stop && corio_sleep(10 * MS) == 0)
        atomic_fetch_add(&p->ticks, 1);
    return NULL;
}

Test(thread_pool, four_jobs_run_in_parallel_loop_not_blocked, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct par p = {.pool = corio_pool_new(4)};
    corio_task *t[4], *ticker;
    void *r[4];
    int64_t t0, ms;

    cr_assert_not_null(p.pool);
    cr_assert_eq(corio_pool_size(p.pool), 4);
    ticker = corio_task_spawn(par_ticker, &p, NULL);
    t0 = corio_now();
    for (int i = 0; i < 4; i++)
        t[i] = corio_task_spawn(par_sleeper, &p, NULL);
    cr_assert_eq(corio_task_join_all(t, 4, r), 0);
    ms = elapsed_ms(t0);
    p.stop = true;
    cr_assert_eq(corio_task_join(ticker, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq((intptr_t)r[i], 500);
    cr_assert_geq(ms, 495, "took %lld ms", (long long)ms);
    cr_assert_lt(ms, 500 + test_slack_capped_ms(1000),
                 "took %lld ms: the jobs did not run in parallel",
                 (long long)ms);
    /* About 50 ticks of 10 ms while the jobs ran: the loop was not blocked. */
    cr_assert_geq(atomic_load(&p.ticks), 8, "only %d ticks",
                  atomic_load(&p.ticks));
    cr_assert_eq(corio_pool_free(p.pool), 0);
    loop_done(loop);
}

/* A job may be any blocking call: here a read() that only a task of the
 * loop can satisfy, which it can because the loop is not blocked. */
static void *read_job(void *arg)
{
    int *fds = arg;
    char buf[8];
    ssize_t n = read(fds[0], buf, sizeof(buf));

    return (void *)(intptr_t)n;
}

static void *writer_task(void *arg)
{
    int *fds = arg;

    corio_sleep(30 * MS);
    return write(fds[1], "hello", 5) == 5 ? "wrote" : NULL;
}

Test(thread_pool, job_blocks_in_read, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int fds[2];
    corio_task *w;
    void *r;

    cr_assert_eq(pipe(fds), 0);
    w = corio_task_spawn(writer_task, fds, NULL);
    cr_assert_eq(corio_pool_run(NULL, read_job, fds, &r,
                                 corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq((intptr_t)r, 5);
    cr_assert_eq(corio_task_join(w, &r), 0);
    cr_assert_str_eq(r, "wrote");
    close(fds[0]);
    close(fds[1]);
    loop_done(loop);
}

/* ---- Cancellation ------------------------------------------------------- */

struct cancel_case {
    corio_pool *pool;
    corio_fn fn;
    void *arg;
    int64_t deadline;
};

static void *run_case(void *arg)
{
    struct cancel_case *c = arg;
    void *r;

    if (corio_pool_run(c->pool, c->fn, c->arg, &r, c->deadline) == -1)
        return corio_task_fail(errno);
    return r;
}

Test(thread_pool, cancel_queued_job_never_runs, .timeout = 30)
{
    corio_loop *loop = loop_open();
    atomic_int ran = 0;
    struct cancel_case busy = {corio_pool_new(1), sleep_job,
                               (void *)(intptr_t)1000, -1};
    struct cancel_case queued = {busy.pool, flag_job, &ran, -1};
    corio_task *a, *b;
    int64_t t0;
    void *r;

    cr_assert_not_null(busy.pool);
    a = corio_task_spawn(run_case, &busy, NULL);
    b = corio_task_spawn(run_case, &queued, NULL);
    corio_sleep(50 * MS); /* both wait: a's job runs, b's is queued */
    t0 = corio_now();
    cr_assert_eq(corio_task_cancel(b), 1);
    errno = 0;
    cr_assert_eq(corio_task_join(b, NULL), -1);
    cr_assert_eq(errno, ECANCELED);
    /* Waiting for the busy job would take about 950 ms. */
    cr_assert_lt(elapsed_ms(t0), test_slack_capped_ms(600),
                 "cancelling waited for the busy job");
    cr_assert_eq(corio_task_join(a, &r), 0);
    cr_assert_eq((intptr_t)r, 1000);
    /* Freeing joins the worker: had b's job been left queued, it ran. */
    cr_assert_eq(corio_pool_free(busy.pool), 0);
    cr_assert_eq(atomic_load(&ran), 0, "a cancelled queued job ran");
    loop_done(loop);
}

Test(thread_pool, cancel_running_job, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct slow_flag s = {.ms = 1000};
    struct cancel_case c = {corio_pool_new(1), slow_flag_job, &s, -1};
    corio_task *t;
    int64_t t0, deadline;

    cr_assert_not_null(c.pool);
    t = corio_task_spawn(run_case, &c, NULL);
    wait_started(&s);
    t0 = corio_now();
    corio_task_cancel(t);
    errno = 0;
    cr_assert_eq(corio_task_join(t, NULL), -1);
    cr_assert_eq(errno, ECANCELED);
    /* Waiting for the job would take about 1000 ms. */
    cr_assert_lt(elapsed_ms(t0), test_slack_capped_ms(600),
                 "the waiter waited for the job");
    cr_assert_eq(atomic_load(&s.finished), 0);
    /* The job runs to its end; its result is dropped without a waiter. */
    deadline = corio_now() + 10 * CORIO_SECOND;
    while (!atomic_load(&s.finished) && corio_now() < deadline)
        corio_sleep(10 * MS);
    cr_assert_eq(atomic_load(&s.finished), 1);
    cr_assert_eq(corio_pool_free(c.pool), 0);
    loop_done(loop);
}

/* The job ends while the pool is freed right after the cancellation: the
 * job record outlives both sides in every order. */
Test(thread_pool, cancel_running_job_then_free_pool, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct slow_flag s = {.ms = 100};
    struct cancel_case c = {corio_pool_new(1), slow_flag_job, &s, -1};
    corio_task *t;

    t = corio_task_spawn(run_case, &c, NULL);
    wait_started(&s);
    corio_task_cancel(t);
    cr_assert_eq(corio_task_join(t, NULL), -1);
    cr_assert_eq(corio_pool_free(c.pool), 0); /* waits for the job */
    cr_assert_eq(atomic_load(&s.finished), 1);
    loop_done(loop);
}

/* A task already cancelled does not start a job. */
static void *cancel_self_then_run(void *arg)
{
    struct cancel_case *c = arg;

    corio_task_cancel(corio_task_self());
    return run_case(c);
}

Test(thread_pool, cancel_pending_before_the_call, .timeout = 30)
{
    corio_loop *loop = loop_open();
    atomic_int ran = 0;
    struct cancel_case c = {corio_pool_new(1), flag_job, &ran, -1};
    corio_task *t = corio_task_spawn(cancel_self_then_run, &c, NULL);

    errno = 0;
    cr_assert_eq(corio_task_join(t, NULL), -1);
    cr_assert_eq(errno, ECANCELED);
    cr_assert_eq(corio_pool_free(c.pool), 0);
    cr_assert_eq(atomic_load(&ran), 0);
    loop_done(loop);
}

/* Closing a loop cancels a task that waits for a job; the job ends later. */
Test(thread_pool, loop_close_with_a_waiting_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct slow_flag s = {.ms = 100};
    struct cancel_case c = {corio_pool_new(1), slow_flag_job, &s, -1};
    corio_task *t = corio_task_spawn(run_case, &c, NULL);

    wait_started(&s);
    cr_assert_eq(corio_task_detach(t), 0);
    loop_done(loop);
    cr_assert_eq(corio_pool_free(c.pool), 0);
    cr_assert_eq(atomic_load(&s.finished), 1);
}

/* ---- Deadlines ---------------------------------------------------------- */

Test(thread_pool, deadline_on_a_running_job, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    int64_t t0 = corio_now();

    errno = 0;
    cr_assert_eq(corio_pool_run(pool, sleep_job, (void *)(intptr_t)1000,
                                   NULL, t0 + 50 * MS), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 49);
    /* Waiting for the job would take 1000 ms. */
    cr_assert_lt(elapsed_ms(t0), 50 + test_slack_capped_ms(600));
    cr_assert_eq(corio_pool_free(pool), 0);
    loop_done(loop);
}

Test(thread_pool, deadline_on_a_queued_job, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    /* Busy long enough that a deadline seen late (load, valgrind) still
     * finds the job queued. */
    corio_future *busy =
        corio_pool_submit(pool, sleep_job, (void *)(intptr_t)1000);
    atomic_int ran = 0;

    cr_assert_not_null(busy);
    errno = 0;
    cr_assert_eq(corio_pool_run(pool, flag_job, &ran, NULL,
                                   corio_now() + 30 * MS), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    /* A deadline already passed: fails at once, starts nothing. */
    errno = 0;
    cr_assert_eq(corio_pool_run(pool, flag_job, &ran, NULL, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_future_wait(busy, -1), 0);
    cr_assert_eq(corio_future_free(busy), 0);
    cr_assert_eq(corio_pool_free(pool), 0);
    cr_assert_eq(atomic_load(&ran), 0, "a job whose waiter timed out ran");
    loop_done(loop);
}

Test(thread_pool, deadline_scope_applies, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    corio_scope s;

    corio_scope_enter(&s, corio_now() + 30 * MS);
    errno = 0;
    cr_assert_eq(corio_pool_run(pool, sleep_job, (void *)(intptr_t)200,
                                   NULL, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert(corio_scope_exit(&s));
    cr_assert_eq(corio_pool_free(pool), 0);
    loop_done(loop);
}

/* ---- Pools -------------------------------------------------------------- */

Test(thread_pool, default_pool_is_sized_to_the_machine, .timeout = 30)
{
    corio_pool *p = corio_pool_default();
    corio_pool *mine = corio_pool_new(0);

    cr_assert_not_null(p);
    cr_assert_eq(corio_pool_default(), p);
    cr_assert_eq(corio_pool_size(p), (size_t)sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert_eq(corio_pool_size(mine), (size_t)sysconf(_SC_NPROCESSORS_ONLN));
    errno = 0;
    cr_assert_eq(corio_pool_free(p), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_pool_free(mine), 0);
}

struct worker_info {
    char name[16];
    bool sigint_blocked, sigterm_blocked;
};

static void *info_job(void *arg)
{
    struct worker_info *wi = arg;
    sigset_t cur;

    pthread_getname_np(pthread_self(), wi->name, sizeof(wi->name));
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    wi->sigint_blocked = sigismember(&cur, SIGINT);
    wi->sigterm_blocked = sigismember(&cur, SIGTERM);
    return NULL;
}

Test(thread_pool, workers_are_named_and_block_signals, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    struct worker_info wi = {0};
    sigset_t cur;

    cr_assert_eq(corio_pool_run(pool, info_job, &wi, NULL, -1), 0);
    cr_assert_str_eq(wi.name, "corio-pool-0");
    cr_assert(wi.sigint_blocked);
    cr_assert(wi.sigterm_blocked);
    /* The creating thread's own mask is left as it was. */
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    cr_assert(!sigismember(&cur, SIGINT));
    cr_assert_eq(corio_pool_free(pool), 0);
    loop_done(loop);
}

/* Freeing a pool from another thread while tasks wait: the running job's
 * result arrives, the queued ones fail with ECANCELED and never run. */
struct free_later {
    corio_pool *pool;
    int64_t after_ms;
};

static void *free_pool_thread(void *arg)
{
    struct free_later *fl = arg;

    msleep(fl->after_ms);
    return (void *)(intptr_t)corio_pool_free(fl->pool);
}

Test(thread_pool, pool_free_with_waiting_tasks, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    atomic_int ran = 0;
    struct slow_flag s = {.ms = 500}; /* outlasts a late free */
    struct cancel_case busy = {pool, slow_flag_job, &s, -1};
    struct cancel_case queued = {pool, flag_job, &ran, -1};
    struct free_later fl = {pool, 20};
    corio_task *t[4];
    pthread_t th;
    void *r;

    t[0] = corio_task_spawn(run_case, &busy, NULL);
    for (int i = 1; i < 4; i++)
        t[i] = corio_task_spawn(run_case, &queued, NULL);
    wait_started(&s); /* all four wait now, one job runs */
    cr_assert_eq(pthread_create(&th, NULL, free_pool_thread, &fl), 0);
    cr_assert_eq(corio_task_join(t[0], &r), 0);
    cr_assert_eq(r, &s);
    cr_assert_eq(atomic_load(&s.finished), 1);
    for (int i = 1; i < 4; i++) {
        errno = 0;
        cr_assert_eq(corio_task_join(t[i], NULL), -1);
        cr_assert_eq(errno, ECANCELED);
    }
    cr_assert_eq(pthread_join(th, &r), 0);
    cr_assert_eq((intptr_t)r, 0);
    cr_assert_eq(atomic_load(&ran), 0);
    loop_done(loop);
}

Test(thread_pool, pool_free_with_queued_futures, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    atomic_int ran = 0;
    struct slow_flag s = {.ms = 500}; /* outlasts a late free */
    corio_future *f[5];

    f[0] = corio_pool_submit(pool, slow_flag_job, &s);
    for (int i = 1; i < 5; i++)
        f[i] = corio_pool_submit(pool, flag_job, &ran);
    for (int i = 0; i < 5; i++)
        cr_assert_not_null(f[i]);
    while (!atomic_load(&s.started)) /* the worker has taken the first job */
        msleep(1);
    cr_assert_eq(corio_pool_free(pool), 0); /* blocks until it ends */
    cr_assert_eq(atomic_load(&s.finished), 1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(corio_future_wait(f[i], corio_now() + CORIO_SECOND), 0);
    cr_assert_eq(corio_future_state(f[0]), CORIO_DONE);
    cr_assert_eq(corio_future_result(f[0]), &s);
    for (int i = 1; i < 5; i++) {
        cr_assert_eq(corio_future_state(f[i]), CORIO_CANCELLED);
        cr_assert_eq(corio_future_error(f[i]), ECANCELED);
    }
    for (int i = 0; i < 5; i++)
        cr_assert_eq(corio_future_free(f[i]), 0);
    cr_assert_eq(atomic_load(&ran), 0);
    loop_done(loop);
}

/* A job of a pool of one worker queues another job on its own pool: that
 * one waits behind it until corio_pool_free cancels it; from then on the
 * pool takes no job: run and submit fail with CORIO_ECLOSED. */
struct reentrant {
    corio_pool *pool;
    atomic_int started;
    int run_err[2];     /* the first run's errno, the second's */
    int submit_err;
};

static void *reentrant_job(void *arg)
{
    struct reentrant *r = arg;
    atomic_int ran = 0;

    atomic_store(&r->started, 1);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        if (corio_pool_run(r->pool, flag_job, &ran, NULL, -1) == -1)
            r->run_err[i] = errno;
    }
    errno = 0;
    if (corio_pool_submit(r->pool, flag_job, &ran) == NULL)
        r->submit_err = errno;
    return atomic_load(&ran) ? "ran" : NULL;
}

Test(thread_pool, run_and_submit_while_the_pool_is_freed_are_eclosed,
     .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct reentrant r = {.pool = corio_pool_new(1)};
    corio_future *f;

    cr_assert_not_null(r.pool);
    f = corio_pool_submit(r.pool, reentrant_job, &r);
    cr_assert_not_null(f);
    while (!atomic_load(&r.started))
        msleep(1);
    cr_assert_eq(corio_pool_free(r.pool), 0); /* until reentrant_job ends */
    cr_assert_eq(corio_future_wait(f, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq(corio_future_state(f), CORIO_DONE);
    cr_assert_null(corio_future_result(f), "the inner job ran");
    /* The first run is queued before the free begins (then cancelled with
     * the queue: ECANCELED) or after (CORIO_ECLOSED), as the threads meet:
     * under valgrind either happens. It never runs. */
    cr_assert(r.run_err[0] == ECANCELED || r.run_err[0] == CORIO_ECLOSED, "%s",
              corio_err_name(r.run_err[0]));
    cr_assert_eq(r.run_err[1], CORIO_ECLOSED, "%s",
                 corio_err_name(r.run_err[1]));
    cr_assert_eq(r.submit_err, CORIO_ECLOSED, "%s",
                 corio_err_name(r.submit_err));
    cr_assert_eq(corio_future_free(f), 0);
    loop_done(loop);
}

/* ---- Futures (corio_pool_submit) ---------------------------------------- */

Test(thread_pool, submit_completes_a_future, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = corio_pool_submit(NULL, add_one_job, (void *)6);

    cr_assert_not_null(f);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_eq(corio_future_state(f), CORIO_DONE);
    cr_assert_eq((intptr_t)corio_future_result(f), 7);
    cr_assert_eq(corio_future_error(f), 0);
    cr_assert_eq(corio_future_free(f), 0);
    loop_done(loop);
}

/* corio_loop_run_until_idle keeps going until a submitted job's future is done. */
static void on_done(corio_future *f, void *arg)
{
    *(intptr_t *)arg = (intptr_t)corio_future_result(f);
}

Test(thread_pool, submit_keeps_loop_run_going, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = corio_pool_submit(NULL, sleep_job, (void *)(intptr_t)40);
    intptr_t seen = 0;

    cr_assert_eq(corio_future_add_done_callback(f, on_done, &seen), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert(corio_future_is_done(f));
    cr_assert_eq(seen, 40);
    cr_assert_eq(corio_future_free(f), 0);
    loop_done(loop);
}

Test(thread_pool, cancel_a_submitted_queued_job, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    corio_future *busy =
        corio_pool_submit(pool, sleep_job, (void *)(intptr_t)100);
    atomic_int ran = 0;
    corio_future *f = corio_pool_submit(pool, flag_job, &ran);

    cr_assert_not_null(f);
    cr_assert_eq(corio_future_cancel(f), 1);
    cr_assert_eq(corio_future_state(f), CORIO_CANCELLED);
    cr_assert_eq(corio_future_error(f), ECANCELED);
    cr_assert_eq(corio_future_free(f), 0); /* freed once its callback ran */
    cr_assert_eq(corio_future_wait(busy, -1), 0);
    cr_assert_eq(corio_future_free(busy), 0);
    cr_assert_eq(corio_pool_free(pool), 0);
    cr_assert_eq(atomic_load(&ran), 0, "a cancelled queued job ran");
    loop_done(loop);
}

/* Freeing a pending pool future (running, and queued) is safe: it is
 * cancelled first, the queued job never runs, the running one's result is
 * dropped; under ASan and valgrind nothing is written to freed memory. */
Test(thread_pool, free_a_pending_submitted_future, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    corio_future *busy =
        corio_pool_submit(pool, sleep_job, (void *)(intptr_t)100);
    atomic_int ran = 0;
    corio_future *f = corio_pool_submit(pool, flag_job, &ran);

    cr_assert_not_null(busy);
    cr_assert_not_null(f);
    msleep(20); /* busy is running on the one worker, f is queued */
    cr_assert_eq(corio_future_free(busy), 0);
    cr_assert_eq(corio_future_free(f), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(corio_pool_free(pool), 0); /* waits for the running job */
    cr_assert_eq(corio_loop_run_until_idle(loop), 0); /* its late delivery */
    cr_assert_eq(atomic_load(&ran), 0, "a freed queued job ran");
    loop_done(loop);
}

Test(thread_pool, cancel_a_submitted_running_job, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pool *pool = corio_pool_new(1);
    struct slow_flag s = {.ms = 80};
    corio_future *f = corio_pool_submit(pool, slow_flag_job, &s);

    wait_started(&s);
    cr_assert_eq(corio_future_cancel(f), 1);
    corio_sleep(0); /* its done callback lets go of the job */
    cr_assert_eq(corio_future_free(f), 0);
    corio_sleep(100 * MS); /* the job ends; nothing to deliver */
    cr_assert_eq(atomic_load(&s.finished), 1);
    cr_assert_eq(corio_pool_free(pool), 0);
    loop_done(loop);
}

/* ---- From callbacks ----------------------------------------------------- */

struct cb_case {
    atomic_int ran;
    int rc, err;
};

static void blocking_callback(void *arg)
{
    struct cb_case *c = arg;

    errno = 0;
    c->rc = corio_pool_run(NULL, flag_job, &c->ran, NULL, -1);
    c->err = errno;
}

Test(thread_pool, from_a_callback_is_edeadlk, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct cb_case c = {0};

    cr_assert_eq(corio_loop_call_soon(loop, blocking_callback, &c, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, EDEADLK);
    msleep(20);
    cr_assert_eq(atomic_load(&c.ran), 0);
    loop_done(loop);
}

/* ---- corio_loop_call_soon_threadsafe from many threads ----------------------- */

#define NTHREADS 8
#define NCALLS 10000

struct many {
    corio_loop *loop;
    corio_future *all_in;           /* set once every call arrived */
    long next[NTHREADS];            /* loop thread: next seq expected */
    long total;
    long out_of_order;
    atomic_int failures;            /* calls that returned -1 */
};

struct producer {
    struct many *m;
    int id;
};

static struct many *the_many;

static void count_call(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int id = (int)(v >> 20);
    long seq = (long)(v & 0xfffff);
    struct many *m = the_many;

    if (m->next[id] != seq)
        m->out_of_order++;
    m->next[id] = seq + 1;
    if (++m->total == (long)NTHREADS * NCALLS)
        corio_future_set_result(m->all_in, (void *)m->total);
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;

    for (long i = 0; i < NCALLS; i++) {
        uintptr_t v = ((uintptr_t)p->id << 20) | (uintptr_t)i;

        if (corio_loop_call_soon_threadsafe(p->m->loop, count_call, (void *)v) == -1)
            atomic_fetch_add(&p->m->failures, 1);
    }
    return NULL;
}

static void *tick_task(void *arg)
{
    long *ticks = arg;

    while (corio_sleep(MS) == 0)
        __atomic_fetch_add(ticks, 1, __ATOMIC_RELAXED);
    return NULL;
}

Test(thread_pool, call_soon_threadsafe_from_8_threads, .timeout = 30)
{
    struct many m = {.loop = loop_open()};
    struct producer p[NTHREADS];
    pthread_t th[NTHREADS];
    long ticks = 0;
    corio_task *ticker;

    the_many = &m;
    m.all_in = corio_future_new();
    cr_assert_not_null(m.all_in);
    ticker = corio_task_spawn(tick_task, &ticks, NULL);
    for (int i = 0; i < NTHREADS; i++) {
        p[i].m = &m;
        p[i].id = i;
        cr_assert_eq(pthread_create(&th[i], NULL, producer_main, &p[i]), 0);
    }
    /* The loop runs (and ticks) while the calls arrive. */
    cr_assert_eq(corio_future_wait(m.all_in, corio_now() + 50 * CORIO_SECOND),
                 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    corio_sleep(5 * MS); /* a duplicate would show up now */
    cr_assert_eq(atomic_load(&m.failures), 0);
    cr_assert_eq(m.total, (long)NTHREADS * NCALLS);
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(m.next[i], NCALLS, "thread %d: %ld calls", i, m.next[i]);
    cr_assert_eq(m.out_of_order, 0, "calls of one thread ran out of order");
    corio_task_cancel(ticker);
    expect_fail(corio_task_join(ticker, NULL), ECANCELED);
    cr_assert_eq(corio_future_free(m.all_in), 0);
    loop_done(m.loop);
}

/* ---- Futures completed by other threads --------------------------------- */

struct setter {
    corio_future *f;
    int64_t after_ms;
    int err;                        /* 0: set a result */
    long *ticks;                    /* if set: first wait (5 s at most) */
    long min_ticks;                 /* until the loop has ticked this often */
};

static void *setter_main(void *arg)
{
    struct setter *s = arg;
    int64_t give_up = corio_now() + 5 * CORIO_SECOND;

    msleep(s->after_ms);
    /* A loaded machine (valgrind) may tick rarely: wait for the ticks
     * rather than for a time; a blocked loop never gets there. */
    while (s->ticks != NULL && __atomic_load_n(s->ticks, __ATOMIC_RELAXED) < s->min_ticks &&
           corio_now() < give_up)
        msleep(1);
    if (s->err != 0)
        return (void *)(intptr_t)corio_future_set_error_threadsafe(s->f,
                                                                   s->err);
    return (void *)(intptr_t)corio_future_set_result_threadsafe(s->f, "set");
}

static void *wait_future_task(void *arg)
{
    corio_future *f = arg;

    if (corio_future_wait(f, corio_now() + 5 * CORIO_SECOND) == -1)
        return corio_task_fail(errno);
    return corio_future_result(f);
}

Test(thread_pool, future_set_result_threadsafe_wakes_a_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    long ticks = 0;
    struct setter s = {.f = corio_future_new(), .after_ms = 50, .ticks = &ticks,
                       .min_ticks = 6};
    corio_task *t, *ticker;
    pthread_t th;
    int64_t t0 = corio_now();
    void *r;

    ticker = corio_task_spawn(tick_task, &ticks, NULL);
    t = corio_task_spawn(wait_future_task, s.f, NULL);
    cr_assert_eq(pthread_create(&th, NULL, setter_main, &s), 0);
    cr_assert_eq(corio_task_join(t, &r), 0);
    cr_assert_str_eq(r, "set");
    cr_assert_geq(elapsed_ms(t0), 49);
    cr_assert_gt(__atomic_load_n(&ticks, __ATOMIC_RELAXED), 5,
                 "the loop was blocked while the task waited");
    cr_assert_eq(pthread_join(th, &r), 0);
    cr_assert_eq((intptr_t)r, 0);
    corio_task_cancel(ticker);
    expect_fail(corio_task_join(ticker, NULL), ECANCELED);
    cr_assert_eq(corio_future_free(s.f), 0);
    loop_done(loop);
}

Test(thread_pool, future_set_error_threadsafe, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct setter s = {.f = corio_future_new(), .after_ms = 10, .err = EIO};
    pthread_t th;
    void *r;

    cr_assert_eq(pthread_create(&th, NULL, setter_main, &s), 0);
    /* On the thread's own stack, waiting runs the loop. */
    cr_assert_eq(corio_future_wait(s.f, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq(corio_future_error(s.f), EIO);
    cr_assert_eq(pthread_join(th, &r), 0);
    cr_assert_eq((intptr_t)r, 0);
    cr_assert_eq(corio_future_free(s.f), 0);
    loop_done(loop);
}

/* A thread completes two futures; the loop's thread closes the loop as soon
 * as the second is done, then joins the thread. The poster may still be
 * inside corio_loop_call_soon_threadsafe after its job ran, so the loop must not
 * be freed under it (TSan reports the race if it can be). */
struct two_futures {
    corio_future *a, *b;
};

static void *post_two(void *arg)
{
    struct two_futures *t = arg;

    corio_future_set_result_threadsafe(t->a, "a");
    corio_future_set_result_threadsafe(t->b, "b");
    return NULL;
}

Test(thread_pool, close_loop_right_after_threadsafe_calls, .timeout = 30)
{
    for (int i = 0; i < 200; i++) {
        corio_loop *loop = loop_open();
        struct two_futures t = {corio_future_new(), corio_future_new()};
        pthread_t th;

        cr_assert_eq(pthread_create(&th, NULL, post_two, &t), 0);
        cr_assert_eq(corio_future_wait(t.b, corio_now() + 5 * CORIO_SECOND), 0);
        cr_assert(corio_future_is_done(t.a)); /* calls run in order */
        cr_assert_eq(corio_future_free(t.a), 0);
        cr_assert_eq(corio_future_free(t.b), 0);
        loop_done(loop);
        pthread_join(th, NULL);
    }
}

/* A cancelled task whose shielded cleanup waits for a pool job when its
 * loop closes: the grace period ends, the task is abandoned, and the job
 * lets go of its waiter, so the worker that finishes it later writes into
 * nothing that was freed (ASan, valgrind). */
static void *shielded_pool_cleanup(void *arg)
{
    (void)arg;
    if (corio_sleep(10 * CORIO_SECOND) == -1) {
        CORIO_SHIELD(-1);

        if (corio_pool_run(NULL, sleep_job, (void *)(intptr_t)1500, NULL, -1) == -1)
            return NULL;
    }
    return NULL;
}

Test(thread_pool, loop_close_abandons_a_shielded_pool_wait, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = corio_task_spawn(shielded_pool_cleanup, NULL, NULL);

    cr_assert_not_null(t);
    cr_assert_eq(corio_task_detach(t), 0);
    cr_assert_eq(corio_sleep(20 * CORIO_MSEC), 0);
    loop_done(loop); /* cancels it; its cleanup waits; abandoned after 1 s */
    msleep(1000);    /* the job ends on its worker, with no one to tell */
}

/* A completion posted by another thread is on its way when the owner
 * frees the future: it is dropped, and the memory goes after it. */
static void *complete_from_thread(void *arg)
{
    cr_assert_eq(corio_future_set_result_threadsafe(arg, (void *)7), 0);
    return NULL;
}

Test(thread_pool, free_a_future_with_a_threadsafe_completion_on_its_way,
     .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = corio_future_new();
    pthread_t th;

    cr_assert_not_null(f);
    cr_assert_eq(pthread_create(&th, NULL, complete_from_thread, f), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(corio_future_free(f), 0);   /* still pending here */
    cr_assert_eq(corio_loop_run_until_idle(loop), 0); /* applies, frees */
    loop_done(loop);
}
