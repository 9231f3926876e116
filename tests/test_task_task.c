/* tests/test_task_task.c -- tasks, futures, cancellation, sleeping, deadline
 * scopes and corio_run, as include/corio/task.h documents them.
 *
 * The order follows a task's life: spawning, names and states, joining
 * (from the thread's stack and from tasks), detaching, failing, cancelling
 * at each kind of blocking call, sleeping (round robin, timing), inspection
 * (dump, count), futures, deadline scopes, corio_run (its result, its error,
 * SIGINT, the tasks it cancels at the end), and scale (10,000 tasks), then
 * tasks that park inside a generator.
 *
 * Suites: "task" holds what the contract promises and the core does; suite
 * "task_bug" holds scenarios where the core breaks the contract today (each
 * names the bug); they fail before the fix and pass after it.
 *
 * Timing bounds carry slack for load, sanitizers and valgrind (see
 * helpers/timing.h). Every test has the same .timeout (see
 * tests/test_thread_pool.c: Criterion 2.4.1 leaks when timeouts differ
 * within a file under --jobs=2). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

/* Loop counts: full size natively, a tenth under valgrind. */
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 10 > 0 ? (n) / 10 : 1) : (n))

/* Latency allowed on top of a wait, in milliseconds (helpers/timing.h). */
#define SLACK_MS test_slack_ms()

static corio_task *spawn(corio_fn fn, void *arg)
{
    corio_task *t = corio_task_spawn(fn, arg, NULL);

    cr_assert_not_null(t, "corio_task_spawn: %s", corio_strerror(errno));
    return t;
}

static corio_task *spawn_named(corio_fn fn, void *arg, const char *name)
{
    corio_task_attr attr = {.name = name};
    corio_task *t = corio_task_spawn(fn, arg, &attr);

    cr_assert_not_null(t, "corio_task_spawn: %s", corio_strerror(errno));
    return t;
}

/* Let every ready task take a step (a new task starts and runs to its first
 * blocking call): one iteration of the loop, driven from the thread's stack.
 * Deterministic, unlike a short sleep, which returns without running the
 * loop at all when its deadline has passed by the time it checks (a loaded
 * machine, valgrind). */
static void let_tasks_run(void)
{
    cr_assert_eq(corio_sleep(0), 0);
}

/* A future tasks wait on, and a task body that waits on it (deadline in arg)
 * and returns its result, or -errno. */
static corio_future *shared_future;

static void *future_waiter(void *arg)
{
    if (corio_future_wait(shared_future, (int64_t)(intptr_t)arg) == -1)
        return CORIO_INT(-errno);
    return corio_future_result(shared_future);
}

/* A shared log of what tasks did, in order. */
static char trace[256];
static int ntrace;

static void mark(char c)
{
    if (ntrace < (int)sizeof(trace) - 1)
        trace[ntrace++] = c;
}

/* Returns arg. */
static void *identity(void *arg)
{
    return arg;
}

/* Sleeps arg ms, then returns arg; on failure returns -errno. */
static void *sleeper(void *arg)
{
    if (corio_sleep((int64_t)(intptr_t)arg * MS) == -1)
        return CORIO_INT(-errno);
    return arg;
}

/* What a cancellable task saw. */
struct victim {
    int started;
    int err;         /* errno of the failed blocking call */
    int cleanup;     /* its cleanup ran */
    int64_t fd;      /* for the fd waits */
    corio_future *f; /* for the future waits */
    corio_task *other;
};

/* Sleeps 10 s; on failure records errno and cleans up. */
static void *long_sleeper(void *arg)
{
    struct victim *v = arg;

    v->started++;
    if (corio_sleep(10 * CORIO_SECOND) == -1) {
        v->err = errno;
        v->cleanup++;
        return NULL;
    }
    return CORIO_INT(1);
}

/* ---- Spawning, names, states --------------------------------------------- */

Test(task, spawn_and_join_gives_the_result, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *a = spawn(identity, CORIO_INT(42));
    corio_task *b = spawn(sleeper, CORIO_INT(10));
    void *ra = NULL, *rb = NULL;

    cr_assert_eq(corio_task_join(a, &ra), 0);
    cr_assert_eq(corio_task_join(b, &rb), 0);
    cr_assert_eq(CORIO_TO_INT(ra), 42);
    cr_assert_eq(CORIO_TO_INT(rb), 10);
    cr_assert_eq(corio_task_join(spawn(identity, NULL), NULL), 0,
                 "result may be NULL");
    loop_done(loop);
}

Test(task, spawn_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task_attr attr = {.stack_mode = 7};

    errno = 0;
    cr_assert_null(corio_task_spawn(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_task_spawn(identity, NULL, &attr));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_task_count(), 0);
    loop_done(loop);
}

Test(task, names_default_and_given, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *a = spawn(identity, NULL);
    corio_task *b = spawn_named(identity, NULL, "fetcher");
    corio_task *c = spawn(identity, NULL);
    corio_task *d =
        spawn_named(identity, NULL, "a-name-much-longer-than-thirty-one-bytes");

    cr_assert_str_eq(corio_task_name(a), "Task-1");
    cr_assert_str_eq(corio_task_name(b), "fetcher");
    cr_assert_str_eq(corio_task_name(c), "Task-3");
    cr_assert_eq(strlen(corio_task_name(d)), 31, "names are cut to 31 bytes");
    cr_assert_eq(strncmp(corio_task_name(d), "a-name-much-longer", 18), 0);
    cr_assert_eq(corio_task_join_all((corio_task *[]){a, b, c, d}, 4, NULL), 0);
    loop_done(loop);
}

/* Records its own state and whether corio_task_self() is itself. */
static corio_task *self_seen;
static enum corio_state state_inside = CORIO_DONE;

static void *record_self(void *arg)
{
    self_seen = corio_task_self();
    state_inside = corio_task_state(self_seen);
    return arg;
}

Test(task, states_pending_running_done, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(record_self, CORIO_INT(5));

    cr_assert_eq(corio_task_state(t), CORIO_PENDING);
    cr_assert_not(corio_task_is_done(t));
    cr_assert_eq(corio_future_state(corio_task_future(t)), CORIO_PENDING);
    cr_assert_eq(corio_task_wait(t, -1), 0);
    cr_assert_eq(self_seen, t);
    cr_assert_eq(state_inside, CORIO_RUNNING);
    cr_assert_eq(corio_task_state(t), CORIO_DONE);
    cr_assert(corio_task_is_done(t));
    cr_assert_eq(CORIO_TO_INT(corio_task_result(t)), 5);
    cr_assert_eq(corio_task_error(t), 0);
    cr_assert(corio_future_is_done(corio_task_future(t)));
    cr_assert_eq(corio_future_state(corio_task_future(t)), CORIO_DONE);
    cr_assert_eq(CORIO_TO_INT(corio_future_result(corio_task_future(t))), 5);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_str_eq(corio_state_name(CORIO_PENDING), "pending");
    cr_assert_str_eq(corio_state_name(CORIO_RUNNING), "running");
    cr_assert_str_eq(corio_state_name(CORIO_DONE), "done");
    cr_assert_str_eq(corio_state_name(CORIO_CANCELLED), "cancelled");
    loop_done(loop);
}

/* A task parked in a sleep is PENDING, not RUNNING. */
Test(task, a_waiting_task_is_pending, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(sleeper, CORIO_INT(50));

    let_tasks_run();
    cr_assert_eq(corio_task_state(t), CORIO_PENDING);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    loop_done(loop);
}

Test(task, self_is_null_on_the_thread_stack_and_in_callbacks, .timeout = 30)
{
    corio_loop *loop = loop_open();

    cr_assert_null(corio_task_self());
    cr_assert_not(corio_task_self_cancelled());
    loop_done(loop);
}

/* ---- Joining ------------------------------------------------------------- */

Test(task, join_from_the_thread_stack_drives_the_loop, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    corio_task *t = spawn(sleeper, CORIO_INT(30));
    void *r = NULL;

    /* Nobody calls corio_loop_run_until_idle: the join runs the loop. */
    cr_assert_eq(corio_task_join(t, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 30);
    cr_assert_geq(elapsed_ms(t0), 30);
    cr_assert_not(corio_loop_is_running(loop));
    loop_done(loop);
}

static void *join_self(void *arg)
{
    (void)arg;
    errno = 0;
    if (corio_task_join(corio_task_self(), NULL) != -1)
        return CORIO_INT(-1);
    if (errno != EINVAL)
        return CORIO_INT(-2);
    errno = 0;
    if (corio_task_wait(corio_task_self(), -1) != -1 || errno != EINVAL)
        return CORIO_INT(-3);
    return CORIO_INT(1);
}

Test(task, join_self_or_null_is_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();
    void *r = NULL;

    expect_fail(corio_task_join(NULL, NULL), EINVAL);
    expect_fail(corio_task_wait(NULL, -1), EINVAL);
    cr_assert_eq(corio_task_join(spawn(join_self, NULL), &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 1);
    loop_done(loop);
}

/* A task joins another; the result travels. */
static void *join_other(void *arg)
{
    void *r = NULL;

    if (corio_task_join(arg, &r) == -1)
        return CORIO_INT(-errno);
    return r;
}

Test(task, join_from_a_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *inner = spawn(sleeper, CORIO_INT(20));
    corio_task *outer = spawn(join_other, inner);
    void *r = NULL;

    cr_assert_eq(corio_task_join(outer, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 20);
    loop_done(loop);
}

static corio_task *pending_task;
static int cb_join_errno, cb_sleep_errno;

static void blocking_in_callback(void *arg)
{
    (void)arg;
    errno = 0;
    if (corio_task_join(pending_task, NULL) == -1)
        cb_join_errno = errno;
    errno = 0;
    if (corio_sleep(MS) == -1)
        cb_sleep_errno = errno;
    /* Let the task end: corio_loop_run_until_idle waits for live tasks. */
    corio_future_set_result(shared_future, CORIO_INT(6));
}

Test(task, blocking_in_a_callback_is_edeadlk, .timeout = 30)
{
    corio_loop *loop = loop_open();

    void *r = NULL;

    shared_future = corio_future_new();
    cr_assert_not_null(shared_future);
    pending_task = spawn(future_waiter, CORIO_INT(-1));
    cr_assert_eq(corio_loop_call_soon(loop, blocking_in_callback, NULL, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(cb_join_errno, EDEADLK, "errno %d", cb_join_errno);
    cr_assert_eq(cb_sleep_errno, EDEADLK, "errno %d", cb_sleep_errno);
    cr_assert_eq(corio_task_join(pending_task, &r), 0, "the task is intact");
    cr_assert_eq(CORIO_TO_INT(r), 6);
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

Test(task, joinall_results_and_first_error, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *ok[3];
    void *res[3] = {0};

    for (int i = 0; i < 3; i++)
        ok[i] = spawn(sleeper, CORIO_INT(10 * (3 - i)));
    cr_assert_eq(corio_task_join_all(ok, 3, res), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(CORIO_TO_INT(res[i]), 10 * (3 - i));
    cr_assert_eq(corio_task_join_all(NULL, 0, NULL), 0);
    expect_fail(corio_task_join_all(NULL, 1, NULL), EINVAL);
    loop_done(loop);
}

static void *fail_with(void *arg)
{
    int err = (int)(intptr_t)arg;

    if (corio_sleep(5 * MS) == -1)
        return NULL;
    return corio_task_fail(err);
}

Test(task, joinall_reports_the_first_error_in_array_order, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *ts[4];
    void *res[4] = {0};

    ts[0] = spawn(identity, CORIO_INT(7));
    ts[1] = spawn(fail_with, CORIO_INT(EPERM));
    ts[2] = spawn(fail_with, CORIO_INT(EIO));
    ts[3] = spawn(identity, CORIO_INT(9));
    expect_fail(corio_task_join_all(ts, 4, res), EPERM);
    cr_assert_eq(CORIO_TO_INT(res[0]), 7);
    cr_assert_eq(CORIO_TO_INT(res[3]), 9, "every task is joined");
    cr_assert_eq(corio_task_count(), 0);
    loop_done(loop);
}

Test(task, task_fail_makes_join_fail, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(fail_with, CORIO_INT(EIO));
    void *r = CORIO_INT(3);

    cr_assert_eq(corio_task_wait(t, -1), 0);
    cr_assert_eq(corio_task_state(t), CORIO_DONE);
    cr_assert_eq(corio_task_error(t), EIO);
    cr_assert_null(corio_task_result(t));
    expect_fail(corio_task_join(t, &r), EIO);
    cr_assert_null(corio_task_fail(EIO),
                   "on the thread stack: no effect, NULL");
    loop_done(loop);
}

/* ---- Detaching ----------------------------------------------------------- */

static int detached_ran;

static void *detached_body(void *arg)
{
    if (corio_sleep((int64_t)(intptr_t)arg * MS) == 0)
        detached_ran++;
    return NULL;
}

Test(task, detach_frees_the_task_when_it_ends, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *running = spawn(detached_body, CORIO_INT(20));
    corio_task *done = spawn(identity, NULL);

    cr_assert_eq(corio_task_wait(done, -1), 0);
    cr_assert_eq(corio_task_detach(done), 0,
                 "detach of a finished task frees it");
    cr_assert_eq(corio_task_detach(running), 0);
    expect_fail(corio_task_detach(running), EINVAL);
    expect_fail(corio_task_detach(NULL), EINVAL);
    cr_assert_eq(corio_task_count(), 1);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(detached_ran, 1);
    cr_assert_eq(corio_task_count(), 0);
    loop_done(loop);
}

/* ---- Cancelling ---------------------------------------------------------- */

Test(task, cancel_in_sleep, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t = spawn(long_sleeper, &v);
    int64_t t0 = corio_now();

    let_tasks_run();
    cr_assert_eq(v.started, 1);
    cr_assert_eq(corio_task_cancel(t), 1);
    cr_assert_eq(corio_task_wait(t, -1), 0);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS + 10);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(v.cleanup, 1);
    cr_assert_eq(corio_task_state(t), CORIO_CANCELLED);
    cr_assert_eq(corio_task_error(t), ECANCELED);
    cr_assert_eq(corio_future_state(corio_task_future(t)), CORIO_CANCELLED);
    cr_assert_eq(corio_task_cancel(t), 0, "a finished task: 0");
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    expect_fail(corio_task_cancel(NULL), EINVAL);
    loop_done(loop);
}

Test(task, cancel_before_start_never_runs, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t = spawn(long_sleeper, &v);

    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(v.started, 0, "a task cancelled before it started ran");
    /* Through its future too. */
    t = spawn(long_sleeper, &v);
    cr_assert_eq(corio_future_cancel(corio_task_future(t)), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(v.started, 0);
    loop_done(loop);
}

static int pfd[2];

static void *fd_waiter(void *arg)
{
    struct victim *v = arg;

    v->started++;
    if (corio_fd_wait(pfd[0], CORIO_READ, -1) == -1) {
        v->err = errno;
        v->cleanup++;
    }
    return NULL;
}

Test(task, cancel_in_wait_fd, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t;

    cr_assert_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    t = spawn(fd_waiter, &v);
    let_tasks_run();
    cr_assert_eq(v.started, 1);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(v.cleanup, 1);
    /* The cancelled waiter left the fd: a new reader is not EBUSY. */
    cr_assert_eq(write(pfd[1], "x", 1), 1);
    cr_assert_eq(corio_fd_wait(pfd[0], CORIO_READ, corio_now() + CORIO_SECOND),
                 CORIO_READ);
    corio_fd_forget(pfd[0]);
    corio_fd_forget(pfd[1]);
    close(pfd[0]);
    close(pfd[1]);
    loop_done(loop);
}

/* A joins B; cancelling A fails A's join with ECANCELED and cancels B too
 * (B is detached by the join: it frees itself). */
static void *join_victim(void *arg)
{
    struct victim *v = arg;

    v->started++;
    if (corio_task_join(v->other, NULL) == -1) {
        v->err = errno;
        v->cleanup++;
    }
    return NULL;
}

Test(task, cancel_in_join_cancels_the_joined_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim a = {0}, b = {0};
    corio_task *ta;

    a.other = spawn(long_sleeper, &b);
    ta = spawn(join_victim, &a);
    let_tasks_run();
    cr_assert_eq(a.started + b.started, 2);
    cr_assert_eq(corio_task_cancel(ta), 1);
    expect_fail(corio_task_join(ta, NULL), ECANCELED);
    cr_assert_eq(a.err, ECANCELED);
    /* B was cancelled with A: it ends once the loop runs it. */
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(b.err, ECANCELED);
    cr_assert_eq(b.cleanup, 1);
    cr_assert_eq(corio_task_count(), 0, "B ended and freed itself");
    loop_done(loop);
}

static void *future_victim(void *arg)
{
    struct victim *v = arg;

    v->started++;
    if (corio_future_wait(v->f, -1) == -1) {
        v->err = errno;
        v->cleanup++;
    }
    return NULL;
}

Test(task, cancel_in_future_wait, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t;

    v.f = corio_future_new();
    cr_assert_not_null(v.f);
    t = spawn(future_victim, &v);
    let_tasks_run();
    cr_assert_eq(v.started, 1);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(corio_future_state(v.f), CORIO_PENDING,
                 "the future is untouched");
    cr_assert_eq(corio_future_free(v.f), 0, "no waiter is left on it");
    loop_done(loop);
}

/* A task cancels itself: it goes on until its next blocking call, which
 * fails; corio_task_self_cancelled() tells it in between. */
static void *cancel_self(void *arg)
{
    struct victim *v = arg;

    if (corio_task_cancel(corio_task_self()) != 1)
        return CORIO_INT(-1);
    v->started++; /* still running */
    if (!corio_task_self_cancelled())
        return CORIO_INT(-2);
    if (corio_sleep(0) == -1) {
        v->err = errno;
        v->cleanup++;
    }
    return NULL;
}

Test(task, cancel_self_fails_the_next_blocking_call, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t = spawn(cancel_self, &v);

    cr_assert_eq(corio_task_wait(t, -1), 0);
    cr_assert_eq(v.started, 1);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(v.cleanup, 1);
    cr_assert_eq(corio_task_state(t), CORIO_CANCELLED);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    loop_done(loop);
}

/* A task that catches the cancellation, cleans up and returns: its cleanup
 * is observed, and it still ends CANCELLED. */
static int cleanup_flag;

static void *catches_cancel(void *arg)
{
    (void)arg;
    for (;;) {
        if (corio_sleep(5 * MS) == -1) {
            if (errno != ECANCELED)
                return CORIO_INT(-1);
            cleanup_flag = 1; /* release what it held */
            return CORIO_INT(2);
        }
    }
}

Test(task, a_task_catches_ecanceled_and_cleans_up, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(catches_cancel, NULL);

    cr_assert_eq(corio_sleep(12 * MS), 0);
    let_tasks_run();
    cr_assert_eq(cleanup_flag, 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(cleanup_flag, 1);
    loop_done(loop);
}

/* ---- Sleeping ------------------------------------------------------------ */

static void *round_robin(void *arg)
{
    for (int i = 0; i < 4; i++) {
        mark((char)(intptr_t)arg);
        if (corio_sleep(0) == -1)
            return CORIO_INT(-1);
    }
    return NULL;
}

Test(task, sleep_zero_round_robin, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *ts[3];

    ts[0] = spawn(round_robin, CORIO_INT('a'));
    ts[1] = spawn(round_robin, CORIO_INT('b'));
    ts[2] = spawn(round_robin, CORIO_INT('c'));
    cr_assert_eq(corio_task_join_all(ts, 3, NULL), 0);
    cr_assert_str_eq(trace, "abcabcabcabc");
    loop_done(loop);
}

Test(task, sleep_zero_and_negative_on_the_thread_stack, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(round_robin, CORIO_INT('a'));

    /* Each sleep(0) of the thread's stack lets the task take a step. */
    cr_assert_eq(corio_sleep(0), 0);
    cr_assert_eq(corio_sleep(-5), 0);
    cr_assert_geq(ntrace, 1);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_str_eq(trace, "aaaa");
    loop_done(loop);
}

Test(task, sleep_100ms_takes_100ms, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    void *r = NULL;

    cr_assert_eq(corio_task_join(spawn(sleeper, CORIO_INT(100)), &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 100);
    cr_assert_geq(elapsed_ms(t0), 100);
    cr_assert_lt(elapsed_ms(t0), 100 + 2 * SLACK_MS);
    t0 = corio_now();
    cr_assert_eq(corio_sleep(100 * MS), 0, "on the thread stack too");
    cr_assert_geq(elapsed_ms(t0), 100);
    cr_assert_lt(elapsed_ms(t0), 100 + 2 * SLACK_MS);
    t0 = corio_now();
    cr_assert_eq(corio_sleep_until(t0 + 50 * MS), 0);
    cr_assert_geq(corio_now(), t0 + 50 * MS);
    cr_assert_eq(corio_sleep_until(t0 - CORIO_SECOND), 0,
                 "a past time: at once");
    loop_done(loop);
}

/* In parallel: about 500 ms, and below the 1000 ms of one after the other
 * whatever the slack. */
Test(task, two_sleeps_run_in_parallel, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    corio_task *ts[2] = {spawn(sleeper, CORIO_INT(500)),
                         spawn(sleeper, CORIO_INT(500))};

    cr_assert_eq(corio_task_join_all(ts, 2, NULL), 0);
    cr_assert_geq(elapsed_ms(t0), 500);
    cr_assert_lt(elapsed_ms(t0), 500 + test_slack_capped_ms(400),
                 "took %lld ms", (long long)elapsed_ms(t0));
    loop_done(loop);
}

/* ---- Inspection ---------------------------------------------------------- */

static char *dump_inside;

static void *dumper(void *arg)
{
    size_t len;
    FILE *out = open_memstream(&dump_inside, &len);

    (void)arg;
    if (out == NULL)
        return CORIO_INT(-1);
    corio_task_dump_all(out);
    fclose(out);
    return NULL;
}

Test(task, tasks_dump_lists_name_state_and_spawn_site, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *a = spawn_named(sleeper, CORIO_INT(20), "alpha");
    corio_task *b = spawn(sleeper, CORIO_INT(20));
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int n;

    cr_assert_not_null(out);
    n = corio_task_dump_all(out);
    fclose(out);
    cr_assert_eq(n, 2);
    cr_assert_not_null(strstr(text, "alpha"), "dump:\n%s", text);
    cr_assert_not_null(strstr(text, "Task-2"), "dump:\n%s", text);
    cr_assert_not_null(strstr(text, "pending"), "dump:\n%s", text);
    cr_assert_not_null(strstr(text, "test_task_task.c"), "dump:\n%s", text);
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL;
         line = nl + 1) {
        *nl = 0;
        cr_assert_not_null(strstr(line, "pending"), "line: %s", line);
        cr_assert_not_null(strstr(line, "test_task_task.c:"), "line: %s", line);
    }
    free(text);
    /* From inside, the dumping task sees itself running. */
    cr_assert_eq(corio_task_join(spawn_named(dumper, NULL, "dumper"), NULL), 0);
    cr_assert_not_null(dump_inside);
    cr_assert_not_null(strstr(dump_inside, "dumper running"), "dump:\n%s",
                       dump_inside);
    free(dump_inside);
    cr_assert_eq(corio_task_join_all((corio_task *[]){a, b}, 2, NULL), 0);
    cr_assert_eq(corio_task_dump_all(stdout), 0);
    loop_done(loop);
}

Test(task, tasks_count_counts_live_tasks, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *ts[3];

    shared_future = corio_future_new();
    cr_assert_not_null(shared_future);
    cr_assert_eq(corio_task_count(), 0);
    ts[0] = spawn(identity, NULL);
    ts[1] = spawn(future_waiter, CORIO_INT(-1));
    ts[2] = spawn(future_waiter, CORIO_INT(-1));
    cr_assert_eq(corio_task_count(), 3, "not started yet, but live");
    cr_assert_eq(corio_task_join(ts[0], NULL), 0);
    cr_assert_eq(corio_task_count(), 2);
    cr_assert_eq(corio_future_set_result(shared_future, NULL), 0);
    cr_assert_eq(corio_task_wait(ts[2], -1), 0);
    cr_assert_eq(corio_task_count(), 0, "finished, even if not joined yet");
    cr_assert_eq(corio_task_join(ts[1], NULL), 0);
    cr_assert_eq(corio_task_join(ts[2], NULL), 0);
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

/* ---- Futures ------------------------------------------------------------- */

static corio_future *new_future(void)
{
    corio_future *f = corio_future_new();

    cr_assert_not_null(f, "corio_future_new: %s", corio_strerror(errno));
    return f;
}

Test(task, future_set_result_error_cancel, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *a = new_future(), *b = new_future(), *c = new_future();
    int x;

    cr_assert_eq(corio_future_state(a), CORIO_PENDING);
    cr_assert_not(corio_future_is_done(a));
    cr_assert_eq(corio_future_set_result(a, &x), 0);
    cr_assert_eq(corio_future_state(a), CORIO_DONE);
    cr_assert(corio_future_is_done(a));
    cr_assert_eq(corio_future_result(a), &x);
    cr_assert_eq(corio_future_error(a), 0);
    expect_fail(corio_future_set_result(a, NULL), EALREADY);
    expect_fail(corio_future_set_error(a, EIO), EALREADY);
    cr_assert_eq(corio_future_cancel(a), 0, "done: not cancelled");
    cr_assert_eq(corio_future_result(a), &x, "the result stays");

    expect_fail(corio_future_set_error(b, 0), EINVAL);
    expect_fail(corio_future_set_error(b, -EIO), EINVAL);
    cr_assert_eq(corio_future_state(b), CORIO_PENDING);
    cr_assert_eq(corio_future_set_error(b, EIO), 0);
    cr_assert_eq(corio_future_state(b), CORIO_DONE);
    cr_assert_eq(corio_future_error(b), EIO);
    cr_assert_null(corio_future_result(b));

    cr_assert_eq(corio_future_cancel(c), 1);
    cr_assert_eq(corio_future_state(c), CORIO_CANCELLED);
    cr_assert_eq(corio_future_error(c), ECANCELED);
    cr_assert_eq(corio_future_cancel(c), 0);
    expect_fail(corio_future_set_result(c, NULL), EALREADY);

    expect_fail(corio_future_set_result(NULL, NULL), EINVAL);
    expect_fail(corio_future_set_error(NULL, EIO), EINVAL);
    expect_fail(corio_future_cancel(NULL), EINVAL);
    expect_fail(corio_future_wait(NULL, -1), EINVAL);
    cr_assert_eq(corio_future_free(a), 0);
    cr_assert_eq(corio_future_free(b), 0);
    cr_assert_eq(corio_future_free(c), 0);
    cr_assert_eq(corio_future_free(NULL), 0);
    loop_done(loop);
}

Test(task, future_of_a_task_is_not_settable_or_freeable, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(identity, NULL);
    corio_future *f = corio_task_future(t);

    expect_fail(corio_future_set_result(f, NULL), EINVAL);
    expect_fail(corio_future_set_error(f, EIO), EINVAL);
    expect_fail(corio_future_free(f), EINVAL);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert(corio_future_is_done(f));
    cr_assert_eq(corio_task_join(t, NULL), 0);
    loop_done(loop);
}

static void *future_setter(void *arg)
{
    if (corio_sleep(20 * MS) == -1)
        return CORIO_INT(-errno);
    if (corio_future_set_result(shared_future, arg) == -1)
        return CORIO_INT(-errno);
    return NULL;
}

Test(task, future_wait_wakes_every_waiter, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *w[3];
    corio_task *s;
    void *r[3] = {0};

    shared_future = new_future();
    for (int i = 0; i < 3; i++)
        w[i] = spawn(future_waiter, CORIO_INT(-1));
    s = spawn(future_setter, CORIO_INT(77));
    cr_assert_eq(corio_task_join_all(w, 3, r), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(CORIO_TO_INT(r[i]), 77);
    cr_assert_eq(corio_task_join(s, NULL), 0);
    cr_assert_eq(corio_future_wait(shared_future, 0), 0, "done: no wait");
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

Test(task, future_wait_deadline_is_etimedout, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    void *r = NULL;

    shared_future = new_future();
    expect_fail(corio_future_wait(shared_future, t0 + 40 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 40);
    cr_assert_lt(elapsed_ms(t0), 40 + SLACK_MS);
    expect_fail(corio_future_wait(shared_future, 0), ETIMEDOUT);
    cr_assert_eq(
        corio_task_join(spawn(future_waiter, CORIO_INT(corio_now() + 20 * MS)), &r),
        0);
    cr_assert_eq(CORIO_TO_INT(r), -ETIMEDOUT);
    cr_assert_eq(corio_future_state(shared_future), CORIO_PENDING);
    cr_assert_eq(corio_future_free(shared_future), 0, "timed-out waiters left");
    loop_done(loop);
}

static char cb_log[16];
static int ncb;

static void done_cb(corio_future *f, void *arg)
{
    cr_assert(corio_future_is_done(f));
    cb_log[ncb++] = (char)(intptr_t)arg;
}

Test(task, done_callbacks_run_after_completion_in_order, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = new_future();

    cr_assert_eq(corio_future_add_done_callback(f, done_cb, CORIO_INT('a')), 0);
    cr_assert_eq(corio_future_add_done_callback(f, done_cb, CORIO_INT('b')), 0);
    expect_fail(corio_future_add_done_callback(f, NULL, NULL), EINVAL);
    expect_fail(corio_future_add_done_callback(NULL, done_cb, NULL), EINVAL);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(ncb, 0, "not before completion");
    cr_assert_eq(corio_future_set_result(f, NULL), 0);
    cr_assert_eq(ncb, 0, "scheduled, not called, by set_result");
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_str_eq(cb_log, "ab");
    /* On a done future: soon, not now. */
    cr_assert_eq(corio_future_add_done_callback(f, done_cb, CORIO_INT('c')), 0);
    cr_assert_eq(ncb, 2);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_str_eq(cb_log, "abc");
    cr_assert_eq(corio_future_free(f), 0);
    loop_done(loop);
}

Test(task, done_callbacks_of_a_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(sleeper, CORIO_INT(10));

    cr_assert_eq(corio_future_add_done_callback(corio_task_future(t), done_cb,
                                                CORIO_INT('t')),
                 0);
    /* Joined at once: the task is freed only after its callback ran. */
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_str_eq(cb_log, "t");
    loop_done(loop);
}

Test(task, future_free_with_waiters_is_ebusy, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *w;
    void *r = NULL;

    shared_future = new_future();
    w = spawn(future_waiter, CORIO_INT(-1));
    let_tasks_run();
    expect_fail(corio_future_free(shared_future), EBUSY);
    cr_assert_eq(corio_future_set_result(shared_future, CORIO_INT(4)), 0);
    cr_assert_eq(corio_task_join(w, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 4);
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

Test(task, future_free_drops_done_callbacks, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = new_future();

    cr_assert_eq(corio_future_add_done_callback(f, done_cb, CORIO_INT('x')), 0);
    cr_assert_eq(corio_future_free(f), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(ncb, 0);
    loop_done(loop); /* valgrind: the callback record was freed */
}

static void *set_from_thread(void *arg)
{
    msleep(20);
    if (corio_future_set_result_threadsafe(shared_future, arg) == -1)
        return CORIO_INT(-errno);
    /* A second completion is ignored. */
    if (corio_future_set_error_threadsafe(shared_future, EIO) == -1)
        return CORIO_INT(-errno);
    return NULL;
}

Test(task, future_set_result_threadsafe_wakes_a_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *w;
    pthread_t th;
    void *r = NULL, *tr = CORIO_INT(1);

    shared_future = new_future();
    w = spawn(future_waiter, CORIO_INT(-1));
    cr_assert_eq(pthread_create(&th, NULL, set_from_thread, CORIO_INT(55)), 0);
    cr_assert_eq(corio_task_join(w, &r), 0);
    pthread_join(th, &tr);
    cr_assert_null(tr);
    cr_assert_eq(CORIO_TO_INT(r), 55);
    cr_assert_eq(corio_sleep(20 * MS), 0); /* the ignored second completion */
    cr_assert_eq(corio_future_error(shared_future), 0);
    cr_assert_eq(CORIO_TO_INT(corio_future_result(shared_future)), 55);
    expect_fail(corio_future_set_error_threadsafe(shared_future, 0), EINVAL);
    expect_fail(corio_future_set_result_threadsafe(NULL, NULL), EINVAL);
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

/* ---- Deadline scopes ----------------------------------------------------- */

static void *sleep_in_scope(void *arg)
{
    corio_scope s;
    int64_t t0 = corio_now();
    int rc, err;

    corio_scope_enter(&s, t0 + (int64_t)(intptr_t)arg * MS);
    rc = corio_sleep(5 * CORIO_SECOND);
    err = errno;
    if (!corio_scope_exit(&s))
        return CORIO_INT(-1);
    if (rc != -1 || err != ETIMEDOUT)
        return CORIO_INT(-2);
    return CORIO_INT(elapsed_ms(t0));
}

Test(task, scope_ends_a_long_sleep_with_etimedout, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_scope s;
    int64_t t0 = corio_now();
    void *r = NULL;

    /* In a task. */
    cr_assert_eq(corio_task_join(spawn(sleep_in_scope, CORIO_INT(100)), &r), 0);
    cr_assert_geq(CORIO_TO_INT(r), 100, "got %d", (int)CORIO_TO_INT(r));
    cr_assert_lt(CORIO_TO_INT(r), 100 + SLACK_MS);
    /* On the thread's stack. */
    t0 = corio_now();
    corio_scope_enter(&s, t0 + 100 * MS);
    expect_fail(corio_sleep(5 * CORIO_SECOND), ETIMEDOUT);
    cr_assert(corio_scope_exit(&s));
    cr_assert_geq(elapsed_ms(t0), 100);
    cr_assert_lt(elapsed_ms(t0), 100 + SLACK_MS);
    loop_done(loop);
}

Test(task, nested_scopes_earliest_wins, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_scope outer, inner;
    int64_t t0 = corio_now();

    /* The outer deadline is the earlier one. */
    corio_scope_enter(&outer, t0 + 60 * MS);
    corio_scope_enter(&inner, t0 + 5 * CORIO_SECOND);
    expect_fail(corio_sleep(CORIO_SECOND), ETIMEDOUT);
    cr_assert_lt(elapsed_ms(t0), 60 + SLACK_MS);
    cr_assert_not(corio_scope_exit(&inner), "the inner deadline did not pass");
    cr_assert(corio_scope_exit(&outer));
    /* The inner one is. */
    t0 = corio_now();
    corio_scope_enter(&outer, t0 + 5 * CORIO_SECOND);
    corio_scope_enter(&inner, t0 + 60 * MS);
    expect_fail(corio_sleep(CORIO_SECOND), ETIMEDOUT);
    cr_assert(corio_scope_exit(&inner));
    cr_assert_not(corio_scope_exit(&outer));
    /* An unbounded scope changes nothing. */
    corio_scope_enter(&outer, -1);
    cr_assert_eq(corio_sleep(5 * MS), 0);
    cr_assert_not(corio_scope_exit(&outer));
    loop_done(loop);
}

Test(task, scope_not_expired_returns_false, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_scope s;
    corio_future *f = new_future();

    corio_scope_enter(&s, corio_now() + CORIO_SECOND);
    cr_assert_eq(corio_sleep(10 * MS), 0, "the sleep ends first");
    cr_assert_eq(corio_future_set_result(f, NULL), 0);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_not(corio_scope_exit(&s));
    /* A call whose own deadline passes first does not expire the scope. */
    cr_assert_eq(corio_future_free(f), 0);
    f = new_future();
    corio_scope_enter(&s, corio_now() + CORIO_SECOND);
    expect_fail(corio_future_wait(f, corio_now() + 10 * MS), ETIMEDOUT);
    cr_assert_not(corio_scope_exit(&s));
    cr_assert_eq(corio_future_free(f), 0);
    loop_done(loop);
}

/* The thread stack's scope does not reach into tasks: each task has its own. */
Test(task, scopes_belong_to_their_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = spawn(sleeper, CORIO_INT(50));
    corio_scope s;
    void *r = NULL;

    corio_scope_enter(&s, corio_now() + 10 * MS);
    expect_fail(corio_task_join(t, &r), ETIMEDOUT); /* the join is bounded */
    cr_assert(corio_scope_exit(&s));
    /* The task was not in the scope: the failed join cancelled it, waited
     * for its end and freed it (it is not silently detached). */
    cr_assert_eq(corio_task_count(), 0);
    loop_done(loop);
}

/* ---- corio_run ----------------------------------------------------------- */

static void *main_returns(void *arg)
{
    if (corio_sleep(5 * MS) == -1)
        return NULL;
    return arg;
}

Test(task, run_returns_mains_result, .timeout = 30)
{
    void *r = NULL;

    cr_assert_eq(corio_run(main_returns, CORIO_INT(31), &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 31);
    cr_assert_eq(corio_run_signal(), 0);
    cr_assert_eq(corio_run(main_returns, CORIO_INT(32), NULL), 0);
}

Test(task, run_fails_with_mains_error, .timeout = 30)
{
    void *r = CORIO_INT(1);

    expect_fail(corio_run(fail_with, CORIO_INT(EPROTO), &r), EPROTO);
}

static void *run_nested(void *arg)
{
    (void)arg;
    errno = 0;
    if (corio_run(identity, NULL, NULL) != -1)
        return CORIO_INT(-1);
    return CORIO_INT(errno);
}

Test(task, run_inside_run_is_ebusy, .timeout = 30)
{
    void *r = NULL;

    cr_assert_eq(corio_run(run_nested, NULL, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), EBUSY);
}

Test(task, run_restores_the_current_loop, .timeout = 30)
{
    corio_loop *loop = loop_open();

    cr_assert_eq(corio_run(identity, NULL, NULL), 0);
    cr_assert_eq(corio_loop_current(), loop);
    loop_done(loop);
}

/* Main spawns helpers and returns while they sleep: corio_run cancels them
 * and lets their cleanup run before it returns. */
static struct victim helpers[3];

static void *main_leaves_tasks(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        corio_task *t = corio_task_spawn(long_sleeper, &helpers[i], NULL);

        if (t == NULL || corio_task_detach(t) == -1)
            return CORIO_INT(-1);
    }
    if (corio_sleep(10 * MS) == -1)
        return CORIO_INT(-2);
    return CORIO_INT(3);
}

Test(task, run_cancels_tasks_left_when_main_returns, .timeout = 30)
{
    void *r = NULL;
    int64_t t0 = corio_now();

    cr_assert_eq(corio_run(main_leaves_tasks, NULL, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 3);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS + 10);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(helpers[i].started, 1);
        cr_assert_eq(helpers[i].err, ECANCELED, "helper %d: %d", i,
                     helpers[i].err);
        cr_assert_eq(helpers[i].cleanup, 1);
    }
}

/* SIGINT while main sleeps: main is cancelled, its cleanup runs, corio_run
 * fails ECANCELED and tells which signal. Sent by a timer callback of the
 * loop, then by a thread main made (it inherits the blocked mask). */
static int main_cleanup;

static void raise_sigint(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT);
}

static void *main_sigint_timer(void *arg)
{
    (void)arg;
    if (corio_loop_call_later(corio_loop_current(), 30 * MS, raise_sigint, NULL,
                         NULL) == -1)
        return CORIO_INT(-1);
    if (corio_sleep(10 * CORIO_SECOND) == -1 && errno == ECANCELED)
        main_cleanup++;
    return NULL;
}

static void *sigint_thread(void *arg)
{
    (void)arg;
    msleep(30);
    kill(getpid(), SIGINT);
    return NULL;
}

static void *main_sigint_thread(void *arg)
{
    pthread_t th;

    (void)arg;
    if (pthread_create(&th, NULL, sigint_thread, NULL) != 0)
        return CORIO_INT(-1);
    if (corio_sleep(10 * CORIO_SECOND) == -1 && errno == ECANCELED)
        main_cleanup++;
    pthread_join(th, NULL);
    return NULL;
}

Test(task_signal, sigint_cancels_main, .timeout = 30)
{
    int64_t t0 = corio_now();

    expect_fail(corio_run(main_sigint_timer, NULL, NULL), ECANCELED);
    cr_assert_eq(corio_run_signal(), SIGINT);
    cr_assert_eq(main_cleanup, 1);
    cr_assert_lt(elapsed_ms(t0), 30 + SLACK_MS);

    t0 = corio_now();
    expect_fail(corio_run(main_sigint_thread, NULL, NULL), ECANCELED);
    cr_assert_eq(corio_run_signal(), SIGINT);
    cr_assert_eq(main_cleanup, 2);
    cr_assert_lt(elapsed_ms(t0), 30 + SLACK_MS);
    /* The next run starts with no signal. */
    cr_assert_eq(corio_run(identity, NULL, NULL), 0);
    cr_assert_eq(corio_run_signal(), 0);
}

/* loop.h: corio_loop_run_until_idle runs "until there is nothing left to do: no ready
 * callback or task, no timer, no task waiting". A task waiting on a future
 * that another thread completes keeps it running. */
static void *set_later_from_thread(void *arg)
{
    msleep(30);
    if (corio_future_set_result_threadsafe(arg, CORIO_INT(8)) == -1)
        return CORIO_INT(-1);
    return NULL;
}

Test(task, loop_run_waits_for_a_task_waiting_on_a_future, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *w;
    pthread_t th;
    void *r = NULL;

    shared_future = new_future();
    w = spawn(future_waiter, CORIO_INT(-1));
    cr_assert_eq(
        pthread_create(&th, NULL, set_later_from_thread, shared_future), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert(corio_task_is_done(w), "run returned while a task was waiting");
    pthread_join(th, NULL);
    cr_assert_eq(corio_task_join(w, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 8);
    cr_assert_eq(corio_future_free(shared_future), 0);
    loop_done(loop);
}

/* A thread's implicit loop (corio_loop_current) is closed when the thread
 * exits: its tasks still alive are cancelled and their cleanup runs. */
static struct victim thread_victim;

static void *thread_leaves_a_task(void *arg)
{
    corio_task *t = corio_task_spawn(long_sleeper, &thread_victim, NULL);

    (void)arg;
    if (t == NULL || corio_task_detach(t) == -1)
        return CORIO_INT(-1);
    if (corio_sleep(0) == -1) /* it starts, and parks in its sleep */
        return CORIO_INT(-2);
    return NULL;
}

Test(task, thread_exit_closes_its_loop_and_cancels_its_tasks, .timeout = 30)
{
    pthread_t th;
    void *r = CORIO_INT(1);

    cr_assert_eq(pthread_create(&th, NULL, thread_leaves_a_task, NULL), 0);
    cr_assert_eq(pthread_join(th, &r), 0);
    cr_assert_null(r);
    cr_assert_eq(thread_victim.started, 1);
    cr_assert_eq(thread_victim.err, ECANCELED);
    cr_assert_eq(thread_victim.cleanup, 1);
}

/* ---- Scale --------------------------------------------------------------- */

Test(task, ten_thousand_tasks_sleeping_10ms_all_finish, .timeout = 30)
{
    corio_loop *loop = loop_open();
    size_t n = (size_t)SCALE(10000);
    corio_task **ts = calloc(n, sizeof(*ts));
    void **res = calloc(n, sizeof(*res));
    int64_t t0 = corio_now();

    cr_assert_not_null(ts);
    cr_assert_not_null(res);
    for (size_t i = 0; i < n; i++)
        ts[i] = spawn(sleeper, CORIO_INT(10));
    cr_assert_eq(corio_task_count(), n);
    cr_assert_eq(corio_task_join_all(ts, n, res), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(CORIO_TO_INT(res[i]), 10);
    cr_assert_eq(corio_task_count(), 0);
    cr_assert_lt(elapsed_ms(t0),
                 (RUNNING_ON_VALGRIND ? 20000 : 5000) + test_extra_ms());
    free(ts);
    free(res);
    loop_done(loop);
}

/* ---- Tasks inside generators --------------------------------------------- */

/* Yields 0, 1, 2 with a 10 ms sleep before each: the task driving it parks
 * inside the generator's coroutine and resumes there. */
static void *sleepy_gen(corio_gen *g, void *arg)
{
    struct victim *v = arg;

    for (int i = 0; i < 3; i++) {
        if (corio_sleep(10 * MS) == -1) {
            if (v != NULL) {
                v->err = errno;
                v->cleanup++;
            }
            return CORIO_INT(-1);
        }
        if (corio_task_self() == NULL)
            return CORIO_INT(-2);
        if (corio_gen_yield(g, CORIO_INT(i), NULL) == -1)
            return NULL;
    }
    return CORIO_INT(100);
}

static void *drive_gen(void *arg)
{
    corio_gen *g = corio_gen_new(sleepy_gen, NULL, NULL);
    void *v = NULL;
    int rc;

    if (g == NULL)
        return CORIO_INT(-1);
    while ((rc = corio_gen_next(g, &v)) == 1) {
        mark((char)(intptr_t)arg);
        mark((char)('0' + CORIO_TO_INT(v)));
    }
    corio_gen_close(g);
    return rc == 0 ? v : CORIO_INT(-2);
}

Test(task, a_task_sleeps_inside_a_generator, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *ts[2] = {spawn(drive_gen, CORIO_INT('a')),
                         spawn(drive_gen, CORIO_INT('b'))};
    void *res[2] = {0};

    cr_assert_eq(corio_task_join_all(ts, 2, res), 0);
    cr_assert_eq(CORIO_TO_INT(res[0]), 100);
    cr_assert_eq(CORIO_TO_INT(res[1]), 100);
    cr_assert_str_eq(trace, "a0b0a1b1a2b2", "the two tasks interleave: %s",
                     trace);
    loop_done(loop);
}

static void *drive_gen_victim(void *arg)
{
    corio_gen *g = corio_gen_new(sleepy_gen, arg, NULL);
    void *v = NULL;
    int rc;

    if (g == NULL)
        return CORIO_INT(-1);
    while ((rc = corio_gen_next(g, &v)) == 1)
        ;
    corio_gen_close(g);
    return v;
}

Test(task, cancel_a_task_parked_inside_a_generator, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t = spawn(drive_gen_victim, &v);

    cr_assert_eq(corio_sleep(15 * MS), 0);
    let_tasks_run();
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(v.cleanup, 1);
    loop_done(loop);
}

static void *mark_once(void *arg)
{
    mark((char)(intptr_t)arg);
    return NULL;
}

Test(task, a_generator_sleeps_on_the_thread_stack, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_gen *g = corio_gen_new(sleepy_gen, NULL, NULL);
    corio_task *t = spawn(mark_once, CORIO_INT('t'));
    void *v = NULL;

    /* No task drives it: the generator's sleep runs the loop, which runs the
     * task meanwhile. (corio_task_self() is NULL there: it returns -2.) */
    cr_assert_not_null(g);
    cr_assert_eq(corio_gen_next(g, &v), 0);
    cr_assert_eq(CORIO_TO_INT(v), -2);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_str_eq(trace, "t", "the task ran while the generator slept");
    cr_assert_eq(corio_task_join(t, NULL), 0);
    loop_done(loop);
}

/* ========================================================================
 * Bugs: scenarios the current core gets wrong. Each fails before its fix.
 * ======================================================================== */

/* BUG 6 (fails in every build; UBSan also reports the signed overflow).
 * corio_sleep(ns) computes corio_now() + ns without saturating: a sleep
 * "forever" (INT64_MAX) wraps to a negative deadline, which corio_sleep_until
 * clamps to 0 -- the sleep returns 0 at once. */
static void *sleep_forever(void *arg)
{
    struct victim *v = arg;

    v->started++;
    if (corio_sleep(INT64_MAX) == -1) {
        v->err = errno;
        return NULL;
    }
    return CORIO_INT(1); /* woke up: wrong */
}

Test(task_bug, sleep_int64_max_sleeps_until_cancelled, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct victim v = {0};
    corio_task *t = spawn(sleep_forever, &v);
    bool returned_at_once;
    int rc, err;

    let_tasks_run();
    let_tasks_run();
    returned_at_once = corio_task_is_done(t);
    corio_task_cancel(t);
    errno = 0;
    rc = corio_task_join(t, NULL);
    err = errno;
    loop_done(loop); /* before asserting: no leak on failure */
    cr_assert_eq(v.started, 1);
    cr_assert_not(returned_at_once, "corio_sleep(INT64_MAX) returned at once");
    cr_assert_eq(rc, -1);
    cr_assert_eq(err, ECANCELED);
    cr_assert_eq(v.err, ECANCELED);
}

/* BUG 7 (fails under valgrind and LeakSanitizer: 24 bytes definitely lost).
 * A completion posted with corio_future_set_result_threadsafe is a
 * malloc'ed struct remote_set behind a plain callback; when the loop is
 * closed before running it, handle_drop frees the handle but not the
 * struct. */
static void *set_now_from_thread(void *arg)
{
    if (corio_future_set_result_threadsafe(arg, CORIO_INT(1)) == -1)
        return CORIO_INT(-1);
    return NULL;
}

Test(task_bug, threadsafe_completion_dropped_at_close_leaks, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_future *f = new_future();
    pthread_t th;
    void *tr = CORIO_INT(1);

    cr_assert_eq(pthread_create(&th, NULL, set_now_from_thread, f), 0);
    pthread_join(th, &tr);
    cr_assert_null(tr);
    loop_done(loop); /* drops the posted completion */
    cr_assert_eq(corio_future_free(f), 0);
}

/* BUG 8 (the test process dies of SIGINT). corio_run turns SIGINT into the
 * main task's cancellation by blocking the signal in the calling thread only
 * and reading it from a signalfd. A signal sent to the process (kill, or
 * Ctrl+C to the process group) goes to any thread that does not block it:
 * if the program made a thread before corio_run (a logger, a library's
 * worker), that thread takes the signal, and its default action ends the
 * process -- no cleanup runs. */
static void *idle_thread(void *arg)
{
    while (!__atomic_load_n((int *)arg, __ATOMIC_ACQUIRE))
        msleep(5);
    return NULL;
}

Test(task_bug, sigint_with_another_thread_running, .timeout = 30)
{
    int quit = 0;
    pthread_t th;

    cr_assert_eq(pthread_create(&th, NULL, idle_thread, &quit), 0);
    main_cleanup = 0;
    expect_fail(corio_run(main_sigint_timer, NULL, NULL), ECANCELED);
    cr_assert_eq(corio_run_signal(), SIGINT);
    cr_assert_eq(main_cleanup, 1);
    __atomic_store_n(&quit, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
}

/* BUG 9. The inspection calls that work "on the current loop" make one
 * when the thread has none: corio_task_self(), corio_task_self_cancelled(),
 * corio_task_fail(), corio_task_count() and corio_task_dump_all() all go
 * through corio__loop_get(), which opens an epoll fd and an eventfd just to
 * answer NULL/false/0. Besides the cost, the loop they made is now the
 * thread's current one, so a corio_loop_new() that follows does not become
 * current as loop.h promises ("if the thread has none"), and corio_task_spawn
 * with no attr.loop puts tasks on the hidden loop. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    cr_assert_not_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

Test(task_bug, asking_for_the_task_does_not_make_a_loop, .timeout = 30)
{
    int before = count_fds();
    corio_loop *l;

    cr_assert_null(corio_task_self());
    cr_assert_not(corio_task_self_cancelled());
    cr_assert_eq(corio_task_count(), 0);
    cr_assert_eq(count_fds(), before, "a loop was made (%d fds more)",
                 count_fds() - before);
    l = corio_loop_new();
    cr_assert_not_null(l);
    cr_assert_eq(corio_loop_current(), l, "the new loop is not current");
    loop_done(l);
}

/* Joining a task of a loop that is not the caller's used to hang: nothing
 * ran that loop. It fails with EINVAL and leaves the task alone, which its
 * own loop then runs and joins. */
Test(task_bug, join_on_another_loop_fails_with_einval, .timeout = 30)
{
    corio_loop *mine = loop_open(), *other = corio_loop_new();
    corio_task_attr attr = {.loop = NULL};
    corio_task *t;
    void *res = NULL;

    cr_assert_not_null(other);
    attr.loop = other;
    t = corio_task_spawn(identity, (void *)5, &attr);
    cr_assert_not_null(t);
    expect_fail(corio_task_join(t, &res), EINVAL);
    expect_fail(corio_task_wait(t, -1), EINVAL);
    cr_assert_eq(corio_loop_current(), mine);
    cr_assert_eq(corio_loop_set_current(other), 0);
    cr_assert_eq(corio_task_join(t, &res), 0);
    cr_assert_eq(res, (void *)5);
    cr_assert_eq(corio_loop_set_current(mine), 0);
    loop_done(other);
    loop_done(mine);
}

/* The same task twice in corio_task_join_all would be freed twice. */
Test(task, join_all_refuses_a_task_given_twice, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *t = corio_task_spawn(sleeper, CORIO_INT(1), NULL);
    corio_task *ts[3];

    cr_assert_not_null(t);
    ts[0] = t, ts[1] = t, ts[2] = t;
    expect_fail(corio_task_join_all(ts, 3, NULL), EINVAL);
    cr_assert_eq(corio_task_join_all(ts, 1, NULL), 0); /* left as it was */
    loop_done(loop);
}

/* At loop close, a task abandoned in a shield while it waits for another
 * abandoned (detached) task: every waiter leaves before any task is freed
 * (ASan: no write into the freed task). */
static corio_event *never;

static void *waits_forever_shielded(void *arg)
{
    (void)arg;
    {
        CORIO_SHIELD(-1);

        if (corio_event_wait(never, -1) == -1)
            return NULL;
    }
    return NULL;
}

static void *waits_for_it_shielded(void *arg)
{
    (void)arg;
    {
        CORIO_SHIELD(-1);

        if (corio_task_wait(arg, -1) == -1)
            return NULL;
    }
    return NULL;
}

Test(task, loop_close_abandons_a_task_waiting_for_an_abandoned_one,
     .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *b, *a;

    never = corio_event_new();
    cr_assert_not_null(never);
    b = corio_task_spawn(waits_forever_shielded, NULL, NULL);
    cr_assert_not_null(b);
    a = corio_task_spawn(waits_for_it_shielded, b, NULL);
    cr_assert_not_null(a);
    cr_assert_eq(corio_task_detach(b), 0);
    cr_assert_eq(corio_task_detach(a), 0);
    cr_assert_eq(corio_sleep(10 * CORIO_MSEC), 0);
    loop_done(loop);
    cr_assert_eq(corio_event_free(never), 0);
}
