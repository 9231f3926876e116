/* tests/test_thread_thread.c -- threads: starting, names (MainThread,
 * Thread-N, given, Dummy-N), the current thread, join with a deadline,
 * detach, free, a loop of the thread's own, and joining from a task.
 *
 * Labelled "thread": scripts/test runs it under TSan too. Every test has the
 * same .timeout (see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "corio.h"
#include "corio/thread.h"
#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

static void *ret_arg(void *arg)
{
    return arg;
}

static void *sleep_ms(void *arg)
{
    msleep((int64_t)(intptr_t)arg);
    return arg;
}

/* What a thread sees of itself. */
struct seen {
    char name[64];
    char os_name[16];
    corio_thread *self;
    bool is_main;
};

static void *look(void *arg)
{
    struct seen *s = arg;

    snprintf(s->name, sizeof(s->name), "%s", corio_thread_name(NULL));
    pthread_getname_np(pthread_self(), s->os_name, sizeof(s->os_name));
    s->self = corio_thread_self();
    s->is_main = corio_thread_is_main();
    return s;
}

static corio_thread *start_named(corio_fn fn, void *arg, const char *name)
{
    corio_thread_opts o = {.name = name};
    corio_thread *t = corio_thread_start(fn, arg, &o);

    cr_assert_not_null(t, "corio_thread_start: %s", corio_strerror(errno));
    return t;
}

static void join_free(corio_thread *t, void **result)
{
    cr_assert_eq(corio_thread_join(t, result, -1), 0, "join: %s",
                 corio_strerror(errno));
    cr_assert_eq(corio_thread_free(t), 0);
}

Test(thread_thread, start_join_result, .timeout = 30)
{
    corio_thread *t = corio_thread_start(ret_arg, (void *)42, NULL);
    void *res = NULL;

    cr_assert_not_null(t);
    join_free(t, &res);
    cr_assert_eq((intptr_t)res, 42);
}

Test(thread_thread, names_default_given_main_and_os, .timeout = 30)
{
    struct seen a = {0}, b = {0}, c = {0};
    corio_thread *ta = start_named(look, &a, NULL);
    corio_thread *tb = start_named(look, &b, NULL);
    corio_thread *tc = start_named(look, &c, "LoopThread-with-a-long-name");
    unsigned na, nb;

    join_free(ta, NULL);
    join_free(tb, NULL);
    cr_assert_eq(sscanf(a.name, "Thread-%u", &na), 1, "%s", a.name);
    cr_assert_eq(sscanf(b.name, "Thread-%u", &nb), 1, "%s", b.name);
    cr_assert_eq(nb, na + 1, "%s then %s", a.name, b.name);
    cr_assert_str_eq(a.os_name, a.name);
    cr_assert_eq(a.self, ta, "corio_thread_self in the thread");
    cr_assert(!a.is_main);
    cr_assert_str_eq(corio_thread_name(tc), "LoopThread-with-a-long-name");
    join_free(tc, NULL);
    cr_assert_str_eq(c.name, "LoopThread-with-a-long-name");
    cr_assert_str_eq(c.os_name, "LoopThread-with", "15 bytes: %s", c.os_name);

    /* The test runs on the process's main thread. */
    cr_assert(corio_thread_is_main());
    cr_assert_str_eq(corio_thread_name(NULL), "MainThread");
    cr_assert_null(corio_thread_self());
}

static void *foreign(void *arg)
{
    snprintf(arg, 64, "%s", corio_thread_name(NULL));
    return NULL;
}

Test(thread_thread, threads_corio_did_not_start_are_dummy, .timeout = 30)
{
    char name[64] = "";
    pthread_t pt;

    cr_assert_eq(pthread_create(&pt, NULL, foreign, name), 0);
    pthread_join(pt, NULL);
    cr_assert_eq(strncmp(name, "Dummy-", 6), 0, "%s", name);
}

Test(thread_thread, bad_arguments, .timeout = 30)
{
    char longname[CORIO_THREAD_NAME_MAX + 2];
    corio_thread_opts o = {.name = longname};

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    errno = 0;
    cr_assert_null(corio_thread_start(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_thread_start(ret_arg, NULL, &o));
    cr_assert_eq(errno, EINVAL);
    o.name = NULL;
    o.stack_size = 1;
    errno = 0;
    cr_assert_null(corio_thread_start(ret_arg, NULL, &o));
    cr_assert_eq(errno, EINVAL);
    expect_fail(corio_thread_join(NULL, NULL, -1), EINVAL);
    expect_fail(corio_thread_detach(NULL), EINVAL);
    cr_assert_eq(corio_thread_free(NULL), 0);
    cr_assert(!corio_thread_is_alive(NULL));
    cr_assert_eq(corio_thread_error(NULL), 0);
}

Test(thread_thread, join_deadline_then_join_again, .timeout = 30)
{
    corio_thread *t = corio_thread_start(sleep_ms, (void *)300, NULL);
    int64_t t0 = corio_now();
    void *res = NULL;

    cr_assert_not_null(t);
    cr_assert(corio_thread_is_alive(t));
    expect_fail(corio_thread_join(t, NULL, corio_now() + 50 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_lt(elapsed_ms(t0), 50 + test_slack_capped_ms(250));
    expect_fail(corio_thread_join(t, NULL, 0), ETIMEDOUT);
    join_free(t, &res);
    cr_assert_eq((intptr_t)res, 300);
}

Test(thread_thread, join_twice_detach_then_join, .timeout = 30)
{
    corio_thread *t = corio_thread_start(ret_arg, NULL, NULL);
    corio_thread *u = corio_thread_start(sleep_ms, (void *)20, NULL);

    cr_assert_not_null(t);
    cr_assert_not_null(u);
    cr_assert_eq(corio_thread_join(t, NULL, -1), 0);
    cr_assert(!corio_thread_is_alive(t));
    expect_fail(corio_thread_join(t, NULL, -1), EINVAL);
    expect_fail(corio_thread_detach(t), EINVAL);
    cr_assert_eq(corio_thread_free(t), 0);

    cr_assert_eq(corio_thread_detach(u), 0);
    expect_fail(corio_thread_detach(u), EINVAL);
    expect_fail(corio_thread_join(u, NULL, -1), EINVAL);
    while (corio_thread_is_alive(u))
        msleep(5);
    cr_assert_eq(corio_thread_free(u), 0);
}

static void *join_self(void *arg)
{
    (void)arg;
    if (corio_thread_join(corio_thread_self(), NULL, -1) == -1)
        return (void *)(intptr_t)errno;
    return NULL;
}

Test(thread_thread, join_self_is_edeadlk, .timeout = 30)
{
    corio_thread *t = corio_thread_start(join_self, NULL, NULL);
    void *res;

    cr_assert_not_null(t);
    join_free(t, &res);
    cr_assert_eq((intptr_t)res, EDEADLK);
}

Test(thread_thread, free_while_running_detaches, .timeout = 30)
{
    corio_tevent *ev = corio_tevent_new();
    corio_thread *t;

    cr_assert_not_null(ev);
    t = corio_thread_start(sleep_ms, (void *)30, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_thread_free(t), 0); /* it runs on and cleans up */
    msleep(100);
    cr_assert_eq(corio_tevent_free(ev), 0);
}

/* ---- A loop of the thread's own ------------------------------------------ */

static void *child_task(void *arg)
{
    if (corio_sleep(10 * MS) == -1)
        return NULL;
    return (void *)((intptr_t)arg * 2);
}

static void *loop_main(void *arg)
{
    corio_task *t = corio_task_spawn(child_task, arg, NULL);
    void *res;

    if (t == NULL || corio_task_join(t, &res) == -1)
        return corio_task_fail(errno);
    return res;
}

static void *loop_fails(void *arg)
{
    (void)arg;
    return corio_task_fail(EPROTO);
}

Test(thread_thread, loop_thread_runs_tasks, .timeout = 30)
{
    corio_thread_opts o = {.name = "LoopThread", .loop = true};
    corio_thread *t = corio_thread_start(loop_main, (void *)21, &o);
    corio_thread *u;
    void *res = NULL;

    cr_assert_not_null(t);
    cr_assert_eq(corio_thread_join(t, &res, -1), 0);
    cr_assert_eq((intptr_t)res, 42);
    cr_assert_eq(corio_thread_error(t), 0);
    cr_assert_eq(corio_thread_free(t), 0);

    u = corio_thread_start(loop_fails, NULL, &o);
    cr_assert_not_null(u);
    cr_assert_eq(corio_thread_join(u, &res, -1), 0);
    cr_assert_null(res);
    cr_assert_eq(corio_thread_error(u), EPROTO);
    cr_assert_eq(corio_thread_free(u), 0);
}

/* ---- Joining from a task ---------------------------------------------------- */

static atomic_int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (;;) {
        if (corio_sleep(10 * MS) == -1)
            return NULL;
        atomic_fetch_add(&ticks, 1);
    }
}

struct join_arg {
    corio_thread *t;
    int64_t deadline;
    int rc, err;
    void *res;
};

static void *joiner(void *arg)
{
    struct join_arg *j = arg;

    j->rc = corio_thread_join(j->t, &j->res, j->deadline);
    j->err = errno;
    return NULL;
}

static void *join_in_task_main(void *arg)
{
    struct join_arg *j = arg;
    corio_task *tick = corio_task_spawn(ticker, NULL, NULL);
    corio_task *jt = corio_task_spawn(joiner, j, NULL);

    cr_assert_not_null(tick);
    cr_assert_not_null(jt);
    cr_assert_eq(corio_task_join(jt, NULL), 0);
    cr_assert_eq(corio_task_cancel(tick), 1);
    cr_assert_eq(corio_task_join(tick, NULL), -1); /* ECANCELED */
    return NULL;
}

Test(thread_thread, task_join_parks_loop_runs, .timeout = 30)
{
    struct join_arg j = {.deadline = -1};

    j.t = corio_thread_start(sleep_ms, (void *)300, NULL);
    cr_assert_not_null(j.t);
    atomic_store(&ticks, 0);
    cr_assert_eq(corio_run(join_in_task_main, &j, NULL), 0);
    cr_assert_eq(j.rc, 0, "join: %s", corio_strerror(j.err));
    cr_assert_eq((intptr_t)j.res, 300);
    cr_assert_geq(atomic_load(&ticks), 5, "the loop ran %d ticks",
                  atomic_load(&ticks));
    cr_assert_eq(corio_thread_free(j.t), 0);
}

Test(thread_thread, task_join_deadline, .timeout = 30)
{
    struct join_arg j = {0};

    j.t = corio_thread_start(sleep_ms, (void *)300, NULL);
    cr_assert_not_null(j.t);
    j.deadline = corio_now() + 30 * MS;
    cr_assert_eq(corio_run(join_in_task_main, &j, NULL), 0);
    cr_assert_eq(j.rc, -1);
    cr_assert_eq(j.err, ETIMEDOUT);
    join_free(j.t, NULL);
}

static void *cancelled_joiner_main(void *arg)
{
    struct join_arg *j = arg;
    corio_task *jt = corio_task_spawn(joiner, j, NULL);

    cr_assert_not_null(jt);
    if (corio_sleep(20 * MS) == -1)
        return NULL;
    /* A join waits: the handle cannot be freed now. */
    cr_assert_eq(corio_thread_free(j->t), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(corio_task_cancel(jt), 1);
    (void)!corio_task_join(jt, NULL); /* a cancelled task: ECANCELED */
    return NULL;
}

Test(thread_thread, task_join_cancelled_and_free_busy, .timeout = 30)
{
    struct join_arg j = {.deadline = -1};

    j.t = corio_thread_start(sleep_ms, (void *)200, NULL);
    cr_assert_not_null(j.t);
    cr_assert_eq(corio_run(cancelled_joiner_main, &j, NULL), 0);
    cr_assert_eq(j.rc, -1);
    cr_assert_eq(j.err, ECANCELED);
    join_free(j.t, NULL);
}

/* Signals stay the main thread's: a SIGINT cancels the main thread's
 * corio_run task, not the main task of a loop thread. */
static void *sleep_in_loop(void *arg)
{
    (void)arg;
    if (corio_sleep(300 * MS) == -1)
        return corio_task_fail(errno);
    return (void *)7;
}

static void *signalled_main(void *arg)
{
    corio_thread_opts o = {.loop = true};
    corio_thread **t = arg;

    *t = corio_thread_start(sleep_in_loop, NULL, &o);
    cr_assert_not_null(*t);
    if (corio_sleep(50 * MS) == -1)
        return corio_task_fail(errno);
    kill(getpid(), SIGINT);
    if (corio_sleep(5 * CORIO_SECOND) == -1)
        return corio_task_fail(errno);
    return NULL;
}

Test(thread_thread, sigint_goes_to_the_main_thread_loop, .timeout = 30)
{
    corio_thread *t = NULL;
    void *res = NULL;

    expect_fail(corio_run(signalled_main, &t, NULL), ECANCELED);
    cr_assert_eq(corio_run_signal(), SIGINT);
    cr_assert_eq(corio_thread_join(t, &res, -1), 0);
    cr_assert_eq(corio_thread_error(t), 0);
    cr_assert_eq((intptr_t)res, 7);
    cr_assert_eq(corio_thread_free(t), 0);
}
