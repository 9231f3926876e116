/* tests/test_task_agen.c -- async generators (include/corio/agen.h).
 *
 * A body that sleeps, waits on a pipe and joins a task between yields;
 * exhaustion and CORIO_EDONE; the body's errno raised out of next; a
 * deadline on next (ETIMEDOUT, the body ends); the consumer cancelled while
 * the body waits (ECANCELED); close running the cleanup (blocking, in a
 * shield), close before the start, a body that yields after close (EPROTO);
 * a body scope held across yields while two tasks consume it in turn;
 * EBUSY for a second consumer, EINVAL for a body that nexts itself. */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/agen.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "loop_test.h"
#include "timing.h"

#define MS CORIO_MSEC
#define SLACK (test_slack_ms() * MS)

static void run_main(corio_fn fn, void *arg)
{
    void *r = "not run";

    cr_assert_eq(corio_run(fn, arg, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(r, "%s", (const char *)r);
}

/* ---- Values, sleeps, I/O and tasks between yields --------------------- */

static void *helper_task(void *arg)
{
    corio_sleep(5 * MS);
    return arg;
}

struct io_state {
    int fds[2];
    int cleaned;
};

static int mixed_body(corio_agen *ag, void *arg)
{
    struct io_state *st = arg;
    char c;
    void *r;
    corio_task *t;

    if (corio_sleep(10 * MS) == -1 || corio_agen_yield(ag, CORIO_INT(1)) == -1)
        return -1;
    /* wait on I/O: the consumer writes after it has received 1 */
    if (corio_fd_wait(st->fds[0], CORIO_READ, -1) == -1 ||
        read(st->fds[0], &c, 1) != 1)
        return -1;
    if (corio_agen_yield(ag, CORIO_INT(c)) == -1)
        return -1;
    t = corio_task_spawn(helper_task, CORIO_INT(3), NULL);
    if (t == NULL || corio_task_join(t, &r) == -1)
        return -1;
    if (corio_agen_yield(ag, r) == -1)
        return -1;
    st->cleaned = 1;
    return 0;
}

static void *writer_task(void *arg)
{
    struct io_state *st = arg;

    corio_sleep(10 * MS);
    cr_assert_eq(write(st->fds[1], "\2", 1), 1);
    return NULL;
}

static void *mixed_main(void *arg)
{
    struct io_state st = {0};
    corio_agen *ag;
    corio_task *w = NULL;
    void *v;
    int n = 0;

    (void)arg;
    cr_assert_eq(pipe(st.fds), 0);
    ag = corio_agen_new(mixed_body, &st, NULL);
    cr_assert_not_null(ag);
    while (corio_agen_next(ag, &v, -1) == 1) {
        cr_assert_eq(CORIO_TO_INT(v), ++n);
        if (n == 1) {
            w = corio_task_spawn(writer_task, &st, NULL);
            cr_assert_not_null(w);
        }
    }
    cr_assert_eq(n, 3);
    cr_assert(corio_agen_is_done(ag));
    cr_assert_eq(st.cleaned, 1);
    expect_fail(corio_agen_next(ag, &v, -1), CORIO_EDONE);
    cr_assert_eq(corio_task_join(w, NULL), 0);
    cr_assert_eq(corio_agen_close(ag), 0);
    close(st.fds[0]);
    close(st.fds[1]);
    return NULL;
}

Test(agen, sleeps_io_and_tasks_between_yields, .timeout = 30)
{
    run_main(mixed_main, NULL);
}

/* The thread's own stack consumes too (no task). */
static int count_body(corio_agen *ag, void *arg)
{
    for (intptr_t i = 0; i < CORIO_TO_INT(arg); i++) {
        if (corio_sleep(1 * MS) == -1 || corio_agen_yield(ag, CORIO_INT(i)))
            return -1;
    }
    return 0;
}

Test(agen, thread_stack_consumer, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_agen *ag = corio_agen_new(count_body, CORIO_INT(5), NULL);
    void *v;
    int n = 0, rc;

    cr_assert_not_null(ag);
    while ((rc = corio_agen_next(ag, &v, -1)) == 1)
        cr_assert_eq(CORIO_TO_INT(v), n++);
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(corio_agen_close(ag), 0);
    loop_done(loop);
}

/* ---- Errors ------------------------------------------------------------- */

static int failing_body(corio_agen *ag, void *arg)
{
    (void)arg;
    if (corio_agen_yield(ag, CORIO_INT(7)) == -1)
        return -1;
    errno = ENOSPC;
    return -1;
}

static void *error_main(void *arg)
{
    corio_agen *ag = corio_agen_new(failing_body, NULL, NULL);
    void *v;

    (void)arg;
    cr_assert_eq(corio_agen_next(ag, &v, -1), 1);
    cr_assert_eq(CORIO_TO_INT(v), 7);
    expect_fail(corio_agen_next(ag, &v, -1), ENOSPC);
    cr_assert(corio_agen_is_done(ag));
    expect_fail(corio_agen_next(ag, &v, -1), CORIO_EDONE);
    cr_assert_eq(corio_agen_close(ag), 0);
    expect_fail(corio_agen_next(NULL, &v, -1), EINVAL);
    cr_assert_eq(corio_agen_close(NULL), 0);
    cr_assert_null(corio_agen_new(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    return NULL;
}

Test(agen, body_error_is_raised, .timeout = 30)
{
    run_main(error_main, NULL);
}

/* ---- Deadline and cancellation ----------------------------------------- */

struct slow {
    int err;      /* the errno the body's sleep failed with */
    int cleaned;
};

static int slow_body(corio_agen *ag, void *arg)
{
    struct slow *s = arg;

    if (corio_agen_yield(ag, CORIO_INT(1)) == -1)
        return -1;
    if (corio_sleep(10 * CORIO_SECOND) == -1) {
        s->err = errno;
        s->cleaned = 1;
        return -1;
    }
    return corio_agen_yield(ag, CORIO_INT(2));
}

static void *deadline_main(void *arg)
{
    struct slow s = {0};
    corio_agen *ag = corio_agen_new(slow_body, &s, NULL);
    int64_t t0;
    void *v;

    (void)arg;
    cr_assert_eq(corio_agen_next(ag, &v, corio_now() + 5 * MS), 1);
    t0 = corio_now();
    expect_fail(corio_agen_next(ag, &v, corio_now() + 50 * MS), ETIMEDOUT);
    cr_assert_geq(corio_now() - t0, 50 * MS);
    cr_assert_lt(corio_now() - t0, 50 * MS + SLACK);
    cr_assert_eq(s.err, ETIMEDOUT);
    cr_assert_eq(s.cleaned, 1);
    /* the scope of the deadline is gone: the task blocks again freely */
    cr_assert_eq(corio_sleep(1 * MS), 0);
    cr_assert_eq(corio_agen_close(ag), 0);
    return NULL;
}

Test(agen, deadline_on_next, .timeout = 30)
{
    run_main(deadline_main, NULL);
}

static void *consumer_task(void *arg)
{
    corio_agen *ag = arg;
    void *v;
    int rc;

    cr_assert_eq(corio_agen_next(ag, &v, -1), 1);
    rc = corio_agen_next(ag, &v, -1);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, ECANCELED);
    return NULL;
}

static void *other_consumer(void *arg)
{
    void *v;

    expect_fail(corio_agen_next(arg, &v, -1), EBUSY);
    expect_fail(corio_agen_close(arg), EBUSY);
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct slow s = {0};
    corio_agen *ag = corio_agen_new(slow_body, &s, NULL);
    corio_task *t, *o;

    (void)arg;
    t = corio_task_spawn(consumer_task, ag, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    o = corio_task_spawn(other_consumer, ag, NULL);
    cr_assert_eq(corio_task_join(o, NULL), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(s.err, ECANCELED);
    cr_assert(corio_agen_is_done(ag));
    cr_assert_eq(corio_agen_close(ag), 0);
    return NULL;
}

Test(agen, cancelled_consumer, .timeout = 30)
{
    run_main(cancel_main, NULL);
}

/* ---- Close ------------------------------------------------------------ */

struct closing {
    int started;
    int cleaned;
    int slept; /* the cleanup's shielded sleep succeeded */
};

static int closing_body(corio_agen *ag, void *arg)
{
    struct closing *c = arg;

    c->started = 1;
    for (int i = 0;; i++) {
        if (corio_agen_yield(ag, CORIO_INT(i)) == -1) {
            cr_assert_eq(errno, ECANCELED);
            {
                CORIO_SHIELD(corio_now() + CORIO_SECOND);
                c->slept = corio_sleep(5 * MS) == 0;
            }
            c->cleaned = 1;
            return -1;
        }
    }
}

static void *close_main(void *arg)
{
    struct closing c = {0};
    corio_agen *ag = corio_agen_new(closing_body, &c, NULL);
    void *v;

    (void)arg;
    cr_assert_eq(corio_agen_close(ag), 0); /* never started */
    cr_assert_eq(c.started, 0);

    ag = corio_agen_new(closing_body, &c, NULL);
    cr_assert_eq(corio_agen_next(ag, &v, -1), 1);
    cr_assert_eq(corio_agen_next(ag, &v, -1), 1);
    cr_assert_eq(CORIO_TO_INT(v), 1);
    cr_assert_eq(corio_agen_close(ag), 0);
    cr_assert_eq(c.cleaned, 1);
    cr_assert_eq(c.slept, 1);
    return NULL;
}

Test(agen, close_runs_cleanup, .timeout = 30)
{
    run_main(close_main, NULL);
}

static int stubborn_body(corio_agen *ag, void *arg)
{
    (void)arg;
    for (;;)
        if (corio_agen_yield(ag, NULL) == -1 && corio_agen_yield(ag, NULL))
            return -1;
}

static void *stubborn_main(void *arg)
{
    corio_agen *ag = corio_agen_new(stubborn_body, NULL, NULL);
    void *v;

    (void)arg;
    cr_assert_eq(corio_agen_next(ag, &v, -1), 1);
    expect_fail(corio_agen_close(ag), EPROTO);
    return NULL;
}

Test(agen, yield_after_close_is_eproto, .timeout = 30)
{
    run_main(stubborn_main, NULL);
}

/* ---- Scopes travel with the body --------------------------------------- */

static int scoped_body(corio_agen *ag, void *arg)
{
    int *timed_out = arg;
    /* long enough for two steps of 20 ms however slow the run (valgrind) */
    CORIO_SCOPE(corio_now() + 1000 * MS);

    for (int i = 0;; i++) {
        if (corio_sleep(20 * MS) == -1) {
            *timed_out = errno;
            return 0;
        }
        if (corio_agen_yield(ag, CORIO_INT(i)) == -1)
            return -1;
    }
}

static void *take_one(void *arg)
{
    void *v;

    CORIO_SCOPE(corio_now() + 10 * CORIO_SECOND);
    return (void *)(intptr_t)corio_agen_next(arg, &v, -1);
}

static void *scoped_main(void *arg)
{
    int timed_out = 0, rc;
    corio_agen *ag = corio_agen_new(scoped_body, &timed_out, NULL);
    void *r;

    (void)arg;
    /* two tasks take a value each, in turn: the body's scope moves */
    for (int i = 0; i < 2; i++) {
        corio_task *t = corio_task_spawn(take_one, ag, NULL);

        cr_assert_eq(corio_task_join(t, &r), 0);
        cr_assert_eq(CORIO_TO_INT(r), 1);
    }
    /* the body's own 1 s deadline applies, not ours */
    while ((rc = corio_agen_next(ag, &r, -1)) == 1)
        ;
    cr_assert_eq(rc, 0);
    cr_assert_eq(timed_out, ETIMEDOUT);
    cr_assert_eq(corio_sleep(1 * MS), 0);
    cr_assert_eq(corio_agen_close(ag), 0);
    return NULL;
}

Test(agen, body_scope_moves_between_tasks, .timeout = 30)
{
    run_main(scoped_main, NULL);
}

static int self_body(corio_agen *ag, void *arg)
{
    void *v;

    (void)arg;
    expect_fail(corio_agen_next(ag, &v, -1), EINVAL);
    expect_fail(corio_agen_close(ag), EINVAL);
    return 0;
}

static void *self_main(void *arg)
{
    corio_agen *ag = corio_agen_new(self_body, NULL, NULL);
    void *v;

    (void)arg;
    expect_fail(corio_agen_yield(ag, NULL), EINVAL); /* not in the body */
    cr_assert_eq(corio_agen_next(ag, &v, -1), 0);
    cr_assert_eq(corio_agen_close(ag), 0);
    return NULL;
}

Test(agen, misuse, .timeout = 30)
{
    run_main(self_main, NULL);
}
