/* tests/test_task_combine.c -- gather, wait, as_completed, wait_for and
 * shield_wait (include/corio/group.h).
 *
 * Workers sleep for given times and record what happened to them (finished,
 * cancelled, cleaned up after the cancellation, in which order); the tests
 * check results and their order, each mode, completion order, deadlines,
 * and who gets cancelled when (asyncio's rules: gather and wait_for cancel
 * what they wait on, wait, as_completed and shield_wait never do).
 * Timings use slack: 50/100/200 ms workers must end in that order, and the
 * whole in about 200 ms (asserted < 400 ms).
 *
 * Most tests run as corio_run's main task, which closes its loop; a few run
 * on the thread's own stack with a loop of their own. Every test has the
 * same .timeout (Criterion leaks in its runner otherwise, see
 * test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "corio/group.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include "timing.h"

#define MS CORIO_MSEC
#define TIMEOUT 30
/* An upper time bound in ms, written for a plain build (about 200 ms over
 * the due time), with room for sanitizers and valgrind (helpers/timing.h). */
#define UPPER(ms) ((ms) + test_extra_ms())

/* ---- Helpers ----------------------------------------------------------------- */

/* Inside a main task: fail the test by returning a message. */

/* Run fn as corio_run's main task; it returns NULL on success. */
static void run_main(corio_fn fn)
{
    void *r = "not run";

    cr_assert_eq(corio_run(fn, NULL, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(r, "%s", (const char *)r);
}

/* What one worker did. */
struct job {
    int id;
    int64_t sleep_ns;   /* then it returns &job, or fails */
    int fail;           /* > 0: end with corio_task_fail(fail) */
    int64_t cleanup_ns; /* when cancelled: block this long cleaning up */
    bool finished;      /* its sleep ended normally */
    bool cancelled;     /* its sleep failed with ECANCELED */
    bool cleaned;       /* its cleanup after the cancellation ended */
    int64_t end;        /* when it returned */
};

static int order[16];
static int norder;

static void *worker(void *arg)
{
    struct job *j = arg;

    if (corio_sleep(j->sleep_ns) == -1) {
        j->cancelled = errno == ECANCELED;
        if (j->cleanup_ns > 0) {
            /* a cleanup that blocks: in a shield, cancellation sticks */
            CORIO_SHIELD(-1);

            if (corio_sleep(j->cleanup_ns) == -1)
                return NULL;
        }
        j->cleaned = true;
        j->end = corio_now();
        return NULL;
    }
    j->finished = true;
    j->end = corio_now();
    order[norder++] = j->id;
    if (j->fail > 0)
        return corio_task_fail(j->fail);
    return j;
}

/* Spawn one worker per job; fs[i] is t[i]'s future. */
static void spawn_jobs(struct job *jobs, size_t n, corio_task **t,
                       corio_future **fs)
{
    norder = 0;
    for (size_t i = 0; i < n; i++) {
        jobs[i].id = (int)i;
        t[i] = corio_task_spawn(worker, &jobs[i], NULL);
        fs[i] = corio_task_future(t[i]);
    }
}

/* Join every task (they have finished, or finish soon). Returns how many
 * failed or were cancelled: the tests read their outcomes from their
 * futures before. */
static int join_all(corio_task **t, size_t n)
{
    int failed = 0;

    for (size_t i = 0; i < n; i++)
        if (corio_task_join(t[i], NULL) == -1)
            failed++;
    return failed;
}

static int64_t elapsed_ms(int64_t start)
{
    return (corio_now() - start) / MS;
}

/* ---- gather ------------------------------------------------------------------ */

static void *gather_order_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 200 * MS}, {.sleep_ns = 50 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    void *results[3];
    int errs[3] = {-1, -1, -1};
    int64_t start = corio_now();

    spawn_jobs(jobs, 3, t, fs);
    CHECK(corio_futures_gather(fs, 3, CORIO_GATHER_FAIL_FAST, results, errs, -1) == 0);
    CHECK(elapsed_ms(start) >= 190 && elapsed_ms(start) < UPPER(400));
    for (int i = 0; i < 3; i++) {
        CHECK(results[i] == &jobs[i]); /* argument order */
        CHECK(errs[i] == 0);
    }
    CHECK(norder == 3 && order[0] == 1 && order[1] == 2 && order[2] == 0);
    join_all(t, 3);
    return NULL;
}

Test(combine_gather, results_in_argument_order, .timeout = TIMEOUT)
{
    run_main(gather_order_main);
}

static void *gather_fail_fast_main(void *arg)
{
    struct job jobs[3] = {
        {.sleep_ns = 2000 * MS, .cleanup_ns = 30 * MS},
        {.sleep_ns = 50 * MS, .fail = EIO},
        {.sleep_ns = 2000 * MS, .cleanup_ns = 30 * MS},
    };
    corio_task *t[3];
    corio_future *fs[3];
    void *results[3];
    int errs[3];
    int64_t start = corio_now();

    spawn_jobs(jobs, 3, t, fs);
    CHECK(corio_futures_gather(fs, 3, CORIO_GATHER_FAIL_FAST, results, errs, -1) == -1);
    CHECK(errno == EIO);
    CHECK(elapsed_ms(start) >= 45 && elapsed_ms(start) < UPPER(500));
    /* The others were cancelled and gather waited for their cleanup. */
    CHECK(jobs[0].cancelled && jobs[0].cleaned);
    CHECK(jobs[2].cancelled && jobs[2].cleaned);
    CHECK(errs[0] == ECANCELED && errs[1] == EIO && errs[2] == ECANCELED);
    CHECK(results[0] == NULL && results[1] == NULL && results[2] == NULL);
    CHECK(corio_task_is_done(t[0]) && corio_task_is_done(t[2]));
    join_all(t, 3);
    return NULL;
}

Test(combine_gather, fail_fast_cancels_the_rest_and_waits, .timeout = TIMEOUT)
{
    run_main(gather_fail_fast_main);
}

static void *gather_return_errors_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 100 * MS},
                          {.sleep_ns = 20 * MS, .fail = EPROTO},
                          {.sleep_ns = 50 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    void *results[3];
    int errs[3];

    spawn_jobs(jobs, 3, t, fs);
    corio_task_cancel(t[2]); /* a cancelled one is reported, not raised */
    CHECK(corio_futures_gather(fs, 3, CORIO_GATHER_RETURN_ERRORS, results, errs, -1) == 0);
    CHECK(errs[0] == 0 && results[0] == &jobs[0]);
    CHECK(errs[1] == EPROTO && results[1] == NULL);
    CHECK(errs[2] == ECANCELED && results[2] == NULL);
    CHECK(jobs[0].finished && !jobs[0].cancelled);
    join_all(t, 3);
    return NULL;
}

Test(combine_gather, return_errors_reports_each_error, .timeout = TIMEOUT)
{
    run_main(gather_return_errors_main);
}

static void *gather_deadline_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 30 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS}};
    corio_task *t[2];
    corio_future *fs[2];
    void *results[2];
    int errs[2];
    int64_t start = corio_now();

    spawn_jobs(jobs, 2, t, fs);
    CHECK(corio_futures_gather(fs, 2, CORIO_GATHER_RETURN_ERRORS, results, errs,
                               start + 100 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(elapsed_ms(start) >= 100 && elapsed_ms(start) < UPPER(500));
    CHECK(results[0] == &jobs[0] && errs[0] == 0);
    CHECK(errs[1] == ECANCELED && jobs[1].cancelled && jobs[1].cleaned);
    join_all(t, 2);
    return NULL;
}

Test(combine_gather, deadline_cancels_the_rest, .timeout = TIMEOUT)
{
    run_main(gather_deadline_main);
}

/* A task gathering two workers is cancelled: both are cancelled too. */
struct outer {
    corio_future **fs;
    size_t n;
    int mode;           /* 0 gather, 1 wait, 2 wait_for, 3 shield_wait */
    int rc, err;
};

static void *outer_fn(void *arg)
{
    struct outer *o = arg;

    switch (o->mode) {
    case 0:
        o->rc = corio_futures_gather(o->fs, o->n, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1);
        break;
    case 1:
        o->rc = corio_futures_wait(o->fs, o->n, CORIO_ALL_COMPLETED, NULL, NULL, -1);
        break;
    case 2:
        o->rc = corio_future_await(o->fs[0], NULL, -1);
        break;
    default:
        o->rc = corio_future_await_shielded(o->fs[0], NULL, -1);
        break;
    }
    o->err = errno;
    return NULL;
}

static void *gather_caller_cancelled_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS}};
    corio_task *t[2], *ot;
    corio_future *fs[2];
    struct outer o = {.fs = fs, .n = 2, .mode = 0};

    spawn_jobs(jobs, 2, t, fs);
    ot = corio_task_spawn(outer_fn, &o, NULL);
    CHECK(corio_sleep(50 * MS) == 0);
    CHECK(corio_task_cancel(ot) == 1);
    CHECK(corio_task_join(ot, NULL) == -1 && errno == ECANCELED);
    CHECK(o.rc == -1 && o.err == ECANCELED);
    /* When gather returned, both had been cancelled and had cleaned up. */
    CHECK(jobs[0].cancelled && jobs[0].cleaned);
    CHECK(jobs[1].cancelled && jobs[1].cleaned);
    join_all(t, 2);
    return NULL;
}

Test(combine_gather, caller_cancelled_cancels_what_it_awaits, .timeout = TIMEOUT)
{
    run_main(gather_caller_cancelled_main);
}

/* Plain futures completed by callbacks, and futures done before the call. */
static void set_later(void *arg)
{
    corio_future_set_result(arg, arg);
}

static void *gather_plain_futures_main(void *arg)
{
    corio_future *fs[3];
    void *results[3];
    corio_loop *loop = corio_loop_current();
    corio_handle *h[2];

    for (int i = 0; i < 3; i++)
        fs[i] = corio_future_new();
    corio_future_set_error(fs[0], ENOENT);
    corio_loop_call_later(loop, 20 * MS, set_later, fs[1], &h[0]);
    corio_loop_call_later(loop, 10 * MS, set_later, fs[2], &h[1]);
    CHECK(corio_futures_gather(fs, 3, CORIO_GATHER_FAIL_FAST, results, NULL, -1) == -1);
    CHECK(errno == ENOENT);
    /* The rest was cancelled at once. */
    CHECK(corio_future_state(fs[1]) == CORIO_CANCELLED);
    CHECK(corio_future_state(fs[2]) == CORIO_CANCELLED);
    for (int i = 0; i < 2; i++) {
        CHECK(corio_handle_cancel(h[i]) == 0); /* they have not run */
        corio_handle_free(h[i]);
    }
    for (int i = 0; i < 3; i++)
        corio_future_free(fs[i]);

    for (int i = 0; i < 3; i++)
        fs[i] = corio_future_new();
    corio_loop_call_later(loop, 20 * MS, set_later, fs[0], NULL);
    corio_loop_call_later(loop, 10 * MS, set_later, fs[1], NULL);
    corio_future_set_result(fs[2], "early");
    CHECK(corio_futures_gather(fs, 3, CORIO_GATHER_FAIL_FAST, results, NULL, -1) == 0);
    CHECK(results[0] == fs[0] && results[1] == fs[1]);
    CHECK(strcmp(results[2], "early") == 0);
    for (int i = 0; i < 3; i++)
        CHECK(corio_future_free(fs[i]) == 0); /* no waiter left behind */

    CHECK(corio_futures_gather(NULL, 0, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1) == 0);
    return NULL;
}

Test(combine_gather, plain_futures_and_empty, .timeout = TIMEOUT)
{
    run_main(gather_plain_futures_main);
}

static void *gather_scope_main(void *arg)
{
    struct job jobs[1] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS}};
    corio_task *t[1];
    corio_future *fs[1];
    corio_scope scope;
    int rc, err;

    spawn_jobs(jobs, 1, t, fs);
    corio_scope_enter(&scope, corio_now() + 50 * MS);
    rc = corio_futures_gather(fs, 1, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1);
    err = errno;
    CHECK(corio_scope_exit(&scope));
    CHECK(rc == -1 && err == ETIMEDOUT);
    /* The scope had expired, and the cleanup was still waited for. */
    CHECK(jobs[0].cancelled && jobs[0].cleaned);
    join_all(t, 1);
    return NULL;
}

Test(combine_gather, expired_scope_still_waits_for_cleanup, .timeout = TIMEOUT)
{
    run_main(gather_scope_main);
}

static void *gather_errors_main(void *arg)
{
    corio_future *fs[2] = {corio_future_new(), NULL};

    CHECK(corio_futures_gather(fs, 2, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_futures_gather(NULL, 2, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_futures_gather(fs, 1, 7, NULL, NULL, -1) == -1 && errno == EINVAL);
    fs[1] = corio_task_future(corio_task_self()); /* waiting on itself */
    CHECK(corio_futures_gather(fs, 2, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_future_free(fs[0]) == 0);
    return NULL;
}

Test(combine_gather, bad_arguments, .timeout = TIMEOUT)
{
    run_main(gather_errors_main);
}

/* From the thread's own stack, with a loop of our own. */
Test(combine_gather, from_the_thread_stack, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    struct job jobs[3] = {{.sleep_ns = 100 * MS}, {.sleep_ns = 50 * MS},
                          {.sleep_ns = 20 * MS, .fail = EBADMSG}};
    corio_task *t[3];
    corio_future *fs[3];
    void *results[3];
    int errs[3];

    cr_assert_not_null(loop);
    spawn_jobs(jobs, 3, t, fs);
    cr_assert_eq(corio_futures_gather(fs, 3, CORIO_GATHER_RETURN_ERRORS, results, errs, -1), 0);
    cr_assert_eq(results[0], &jobs[0]);
    cr_assert_eq(results[1], &jobs[1]);
    cr_assert_eq(errs[2], EBADMSG);
    join_all(t, 3);
    cr_assert_eq(corio_loop_close(loop), 0);
}

/* In a loop callback nothing may block: EDEADLK. */
struct cb_probe {
    corio_future *f;
    int gather_rc, gather_err, wait_rc, wait_err;
};

static void probe_cb(void *arg)
{
    struct cb_probe *p = arg;

    p->gather_rc = corio_futures_gather(&p->f, 1, CORIO_GATHER_FAIL_FAST, NULL, NULL, -1);
    p->gather_err = errno;
    p->wait_rc = corio_futures_wait(&p->f, 1, CORIO_FIRST_COMPLETED, NULL, NULL, -1);
    p->wait_err = errno;
    corio_future_set_result(p->f, NULL);
}

Test(combine_gather, edeadlk_in_a_callback, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    struct cb_probe p = {.f = corio_future_new()};

    corio_loop_call_soon(loop, probe_cb, &p, NULL);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(p.gather_rc, -1);
    cr_assert_eq(p.gather_err, EDEADLK);
    cr_assert_eq(p.wait_rc, -1);
    cr_assert_eq(p.wait_err, EDEADLK);
    cr_assert_eq(corio_future_free(p.f), 0);
    cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- wait -------------------------------------------------------------------- */

static void *wait_all_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 200 * MS}, {.sleep_ns = 50 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    size_t done[3], pending[3];
    int64_t start = corio_now();

    spawn_jobs(jobs, 3, t, fs);
    CHECK(corio_futures_wait(fs, 3, CORIO_ALL_COMPLETED, done, pending, -1) == 3);
    CHECK(elapsed_ms(start) >= 190 && elapsed_ms(start) < UPPER(400));
    CHECK(done[0] == 1 && done[1] == 2 && done[2] == 0); /* completion order */
    for (int i = 0; i < 3; i++)
        CHECK(corio_task_result(t[i]) == &jobs[i]);
    join_all(t, 3);
    return NULL;
}

Test(combine_wait, all_completed_in_completion_order, .timeout = TIMEOUT)
{
    run_main(wait_all_main);
}

static void *wait_first_completed_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 200 * MS}, {.sleep_ns = 50 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    size_t done[3], pending[3];
    int64_t start = corio_now();

    spawn_jobs(jobs, 3, t, fs);
    CHECK(corio_futures_wait(fs, 3, CORIO_FIRST_COMPLETED, done, pending, -1) == 1);
    CHECK(elapsed_ms(start) >= 45 && elapsed_ms(start) < UPPER(250));
    CHECK(done[0] == 1 && pending[0] == 0 && pending[1] == 2);
    /* Nothing was cancelled: the others finish on their own. */
    join_all(t, 3);
    CHECK(jobs[0].finished && jobs[2].finished);
    CHECK(elapsed_ms(start) >= 190 && elapsed_ms(start) < UPPER(400));
    return NULL;
}

Test(combine_wait, first_completed_leaves_the_rest_running, .timeout = TIMEOUT)
{
    run_main(wait_first_completed_main);
}

static void *wait_first_exception_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 300 * MS},
                          {.sleep_ns = 20 * MS},
                          {.sleep_ns = 80 * MS, .fail = EIO}};
    corio_task *t[3];
    corio_future *fs[3];
    size_t done[3], pending[3];
    int64_t start = corio_now();

    spawn_jobs(jobs, 3, t, fs);
    CHECK(corio_futures_wait(fs, 3, CORIO_FIRST_EXCEPTION, done, pending, -1) == 2);
    CHECK(elapsed_ms(start) >= 75 && elapsed_ms(start) < UPPER(280));
    CHECK(done[0] == 1 && done[1] == 2 && pending[0] == 0);
    CHECK(corio_task_error(t[2]) == EIO);
    CHECK(!corio_task_is_done(t[0]));
    join_all(t, 3);
    CHECK(jobs[0].finished);

    /* No failure: FIRST_EXCEPTION waits for all. A cancelled one does not
     * count as an exception. */
    struct job more[2] = {{.sleep_ns = 30 * MS}, {.sleep_ns = 60 * MS}};
    spawn_jobs(more, 2, t, fs);
    corio_task_cancel(t[0]);
    CHECK(corio_futures_wait(fs, 2, CORIO_FIRST_EXCEPTION, done, NULL, -1) == 2);
    CHECK(done[0] == 0 && done[1] == 1 && more[1].finished);
    join_all(t, 2);
    return NULL;
}

Test(combine_wait, first_exception, .timeout = TIMEOUT)
{
    run_main(wait_first_exception_main);
}

static void *wait_deadline_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 30 * MS}, {.sleep_ns = 300 * MS}};
    corio_task *t[2];
    corio_future *fs[2];
    size_t done[2], pending[2];
    int64_t start = corio_now();

    spawn_jobs(jobs, 2, t, fs);
    CHECK(corio_futures_wait(fs, 2, CORIO_ALL_COMPLETED, done, pending,
                             start + 100 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(elapsed_ms(start) >= 100 && elapsed_ms(start) < UPPER(300));
    CHECK(done[0] == 0 && pending[0] == 1);
    CHECK(!corio_task_is_done(t[1])); /* not cancelled */
    /* A deadline already passed: no waiting at all. */
    CHECK(corio_futures_wait(fs, 2, CORIO_ALL_COMPLETED, NULL, NULL, 0) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_futures_wait(fs, 2, CORIO_FIRST_COMPLETED, NULL, NULL, 0) == 1);
    join_all(t, 2);
    CHECK(jobs[1].finished && !jobs[1].cancelled);
    CHECK(corio_futures_wait(fs, 0, CORIO_ALL_COMPLETED, NULL, NULL, -1) == -1);
    CHECK(errno == EINVAL);
    return NULL;
}

Test(combine_wait, deadline_cancels_nothing, .timeout = TIMEOUT)
{
    run_main(wait_deadline_main);
}

static void *wait_caller_cancelled_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 150 * MS}, {.sleep_ns = 150 * MS}};
    corio_task *t[2], *ot;
    corio_future *fs[2];
    struct outer o = {.fs = fs, .n = 2, .mode = 1};

    spawn_jobs(jobs, 2, t, fs);
    ot = corio_task_spawn(outer_fn, &o, NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    corio_task_cancel(ot);
    CHECK(corio_task_join(ot, NULL) == -1 && errno == ECANCELED);
    CHECK(o.rc == -1 && o.err == ECANCELED);
    CHECK(!corio_task_is_done(t[0]) && !corio_task_is_done(t[1]));
    join_all(t, 2);
    CHECK(jobs[0].finished && jobs[1].finished);
    return NULL;
}

Test(combine_wait, caller_cancelled_cancels_nothing, .timeout = TIMEOUT)
{
    run_main(wait_caller_cancelled_main);
}

/* ---- as_completed ------------------------------------------------------------ */

static void *as_completed_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 200 * MS}, {.sleep_ns = 50 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    corio_as_completed *it;
    corio_future *f;
    int64_t start = corio_now(), lap;
    int expect[3] = {1, 2, 0};

    spawn_jobs(jobs, 3, t, fs);
    it = corio_as_completed_new(fs, 3);
    CHECK(it != NULL);
    CHECK(corio_as_completed_remaining(it) == 3);
    for (int k = 0; k < 3; k++) {
        f = corio_as_completed_next(it, -1);
        CHECK(f == fs[expect[k]]);
        CHECK(corio_future_result(f) == &jobs[expect[k]]);
        lap = elapsed_ms(start);
        CHECK(lap * MS >= jobs[expect[k]].sleep_ns - 5 * MS);
        CHECK(lap < jobs[expect[k]].sleep_ns / MS + UPPER(200));
        /* a returned future may go at once */
        CHECK(corio_task_join(t[expect[k]], NULL) == 0);
    }
    CHECK(corio_as_completed_remaining(it) == 0);
    CHECK(corio_as_completed_next(it, -1) == NULL && errno == CORIO_EDONE);
    CHECK(elapsed_ms(start) < UPPER(400));
    CHECK(corio_as_completed_free(it) == 0);
    return NULL;
}

Test(combine_as_completed, completion_order, .timeout = TIMEOUT)
{
    run_main(as_completed_main);
}

/* The order is recorded even while nobody waits in _next. */
static void *as_completed_unwatched_main(void *arg)
{
    struct job jobs[3] = {{.sleep_ns = 200 * MS}, {.sleep_ns = 20 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_task *t[3];
    corio_future *fs[3];
    corio_as_completed *it;

    spawn_jobs(jobs, 3, t, fs);
    it = corio_as_completed_new(fs, 3);
    CHECK(it != NULL);
    CHECK(corio_sleep(350 * MS) == 0);
    CHECK(corio_as_completed_next(it, 0) == fs[1]);
    CHECK(corio_as_completed_next(it, 0) == fs[2]);
    CHECK(corio_as_completed_next(it, 0) == fs[0]);
    CHECK(corio_as_completed_free(it) == 0);
    join_all(t, 3);
    return NULL;
}

Test(combine_as_completed, order_recorded_while_not_waiting, .timeout = TIMEOUT)
{
    run_main(as_completed_unwatched_main);
}

static void *as_completed_deadline_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 150 * MS}, {.sleep_ns = 300 * MS}};
    corio_task *t[2];
    corio_future *fs[2];
    corio_as_completed *it;
    int64_t start = corio_now();

    spawn_jobs(jobs, 2, t, fs);
    it = corio_as_completed_new(fs, 2);
    CHECK(corio_as_completed_next(it, start + 50 * MS) == NULL);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_as_completed_next(it, -1) == fs[0]); /* and go on */
    CHECK(elapsed_ms(start) >= 145 && elapsed_ms(start) < UPPER(350));
    /* Freed before the last one completed: its waiter is unlinked. */
    CHECK(corio_as_completed_free(it) == 0);
    join_all(t, 2);
    CHECK(jobs[1].finished);
    CHECK(corio_as_completed_free(NULL) == 0);
    CHECK(corio_as_completed_new(NULL, 1) == NULL && errno == EINVAL);
    it = corio_as_completed_new(NULL, 0);
    CHECK(it != NULL);
    CHECK(corio_as_completed_next(it, -1) == NULL && errno == CORIO_EDONE);
    CHECK(corio_as_completed_free(it) == 0);
    return NULL;
}

Test(combine_as_completed, deadline_then_continue, .timeout = TIMEOUT)
{
    run_main(as_completed_deadline_main);
}

Test(combine_as_completed, from_the_thread_stack, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    corio_future *fs[2];
    corio_as_completed *it;

    fs[0] = corio_future_new();
    fs[1] = corio_future_new();
    corio_loop_call_later(loop, 500 * MS, set_later, fs[0], NULL);
    corio_loop_call_later(loop, 10 * MS, set_later, fs[1], NULL);
    it = corio_as_completed_new(fs, 2);
    cr_assert_not_null(it);
    /* A pending future being watched cannot be freed. */
    cr_assert_eq(corio_future_free(fs[0]), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(corio_as_completed_next(it, -1), fs[1]);
    cr_assert_eq(corio_as_completed_next(it, -1), fs[0]);
    cr_assert_eq(corio_as_completed_free(it), 0);
    cr_assert_eq(corio_future_free(fs[0]), 0);
    cr_assert_eq(corio_future_free(fs[1]), 0);
    cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- wait_for ------------------------------------------------------------------ */

static void *wait_for_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 30 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 40 * MS}};
    corio_task *t[2];
    corio_future *fs[2], *pf;
    void *result = NULL;
    int64_t start = corio_now();

    spawn_jobs(jobs, 2, t, fs);
    CHECK(corio_future_await(fs[0], &result, start + 200 * MS) == 0);
    CHECK(result == &jobs[0]);
    start = corio_now();
    CHECK(corio_future_await(fs[1], &result, start + 50 * MS) == -1);
    CHECK(errno == ETIMEDOUT && result == NULL);
    /* The task was cancelled and wait_for waited until it had finished. */
    CHECK(jobs[1].cancelled && jobs[1].cleaned && corio_task_is_done(t[1]));
    CHECK(elapsed_ms(start) >= 85 && elapsed_ms(start) < UPPER(300));
    join_all(t, 2);

    /* A plain future is cancelled on the deadline. */
    pf = corio_future_new();
    CHECK(corio_future_await(pf, NULL, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT && corio_future_state(pf) == CORIO_CANCELLED);
    CHECK(corio_future_free(pf) == 0);

    /* A failed future's error is passed on. */
    pf = corio_future_new();
    corio_future_set_error(pf, ENOSPC);
    CHECK(corio_future_await(pf, &result, -1) == -1 && errno == ENOSPC);
    CHECK(corio_future_free(pf) == 0);
    CHECK(corio_future_await(NULL, NULL, -1) == -1 && errno == EINVAL);
    return NULL;
}

Test(combine_wait_for, result_or_timeout_with_cancel, .timeout = TIMEOUT)
{
    run_main(wait_for_main);
}

static void *wait_for_caller_cancelled_main(void *arg)
{
    struct job jobs[1] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS}};
    corio_task *t[1], *ot;
    corio_future *fs[1];
    struct outer o = {.fs = fs, .n = 1, .mode = 2};

    spawn_jobs(jobs, 1, t, fs);
    ot = corio_task_spawn(outer_fn, &o, NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    corio_task_cancel(ot);
    CHECK(corio_task_join(ot, NULL) == -1 && errno == ECANCELED);
    CHECK(o.rc == -1 && o.err == ECANCELED);
    CHECK(jobs[0].cancelled && jobs[0].cleaned);
    join_all(t, 1);
    return NULL;
}

Test(combine_wait_for, caller_cancelled_cancels_the_task, .timeout = TIMEOUT)
{
    run_main(wait_for_caller_cancelled_main);
}

/* ---- shield_wait ---------------------------------------------------------------- */

static void *shield_main(void *arg)
{
    struct job jobs[1] = {{.sleep_ns = 150 * MS}};
    corio_task *t[1], *ot;
    corio_future *fs[1];
    struct outer o = {.fs = fs, .n = 1, .mode = 3};
    void *result;

    spawn_jobs(jobs, 1, t, fs);
    ot = corio_task_spawn(outer_fn, &o, NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    corio_task_cancel(ot);
    CHECK(corio_task_join(ot, NULL) == -1 && errno == ECANCELED);
    CHECK(o.rc == -1 && o.err == ECANCELED);
    CHECK(!corio_task_is_done(t[0])); /* shielded: still running */
    CHECK(corio_future_await_shielded(fs[0], NULL, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT && !corio_task_is_done(t[0]));
    CHECK(corio_future_await_shielded(fs[0], &result, -1) == 0 && result == &jobs[0]);
    CHECK(jobs[0].finished && !jobs[0].cancelled);
    join_all(t, 1);
    return NULL;
}

Test(combine_shield, caller_cancel_does_not_reach_the_inner_task, .timeout = TIMEOUT)
{
    run_main(shield_main);
}

/* ---- Cancelled again while cleaning up ---------------------------------------- */

static void *double_cancel_main(void *arg)
{
    struct job jobs[2] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 80 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 80 * MS}};
    corio_task *t[2], *ot;
    corio_future *fs[2];
    struct outer o = {.fs = fs, .n = 2, .mode = 0};

    spawn_jobs(jobs, 2, t, fs);
    ot = corio_task_spawn(outer_fn, &o, NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    CHECK(corio_task_cancel(ot) == 1);
    CHECK(corio_sleep(20 * MS) == 0); /* gather is waiting for cleanups */
    CHECK(!jobs[0].cleaned);
    CHECK(corio_task_cancel(ot) == 1);
    CHECK(corio_task_join(ot, NULL) == -1 && errno == ECANCELED);
    CHECK(o.rc == -1 && o.err == ECANCELED);
    CHECK(jobs[0].cleaned && jobs[1].cleaned);
    join_all(t, 2);
    return NULL;
}

Test(combine_gather, second_cancel_does_not_cut_the_cleanup_short, .timeout = TIMEOUT)
{
    run_main(double_cancel_main);
}
