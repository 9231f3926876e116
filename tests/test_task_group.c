/* tests/test_task_group.c -- task groups (corio_group_*, include/corio/
 * group.h): structured concurrency.
 *
 * Children sleep, fail or get cancelled and record it, with a cleanup that
 * blocks for a while after a cancellation, so the tests can see that
 * corio_group_wait returns only after every cleanup has run. Covered: all
 * succeed; a failure cancels the siblings (also before anyone waits); the
 * group's deadline; cancelling the waiting task; corio_group_cancel; an
 * expired deadline scope; spawning from a child; errors (EBUSY,
 * CORIO_ECLOSED, ECANCELED, EDEADLK); many children. Timing asserts use slack.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
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

static void run_main(corio_fn fn)
{
    void *r = "not run";

    cr_assert_eq(corio_run(fn, NULL, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(r, "%s", (const char *)r);
}

static int64_t elapsed_ms(int64_t start)
{
    return (corio_now() - start) / MS;
}

/* What one child did. */
struct child {
    int64_t sleep_ns;   /* then it succeeds, or fails */
    int fail;           /* > 0: end with corio_task_fail(fail) */
    int64_t cleanup_ns; /* when cancelled: block this long cleaning up */
    bool self_cancel;   /* cancel itself first (not a group failure) */
    bool finished, cancelled, cleaned;
};

static void *child_fn(void *arg)
{
    struct child *c = arg;

    if (c->self_cancel)
        corio_task_cancel(corio_task_self());
    if (corio_sleep(c->sleep_ns) == -1) {
        c->cancelled = errno == ECANCELED;
        if (c->cleanup_ns > 0) {
            /* a blocking cleanup: in a shield, cancellation sticks */
            CORIO_SHIELD(-1);

            if (corio_sleep(c->cleanup_ns) == -1)
                return NULL;
        }
        c->cleaned = true;
        return NULL;
    }
    c->finished = true;
    if (c->fail > 0)
        return corio_task_fail(c->fail);
    return NULL;
}

static int spawn_all(corio_group *g, struct child *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (corio_group_spawn(g, child_fn, &cs[i], NULL) == NULL)
            return -1;
    return 0;
}

/* ---- Tests -------------------------------------------------------------------- */

static void *all_succeed_main(void *arg)
{
    struct child cs[3] = {{.sleep_ns = 50 * MS}, {.sleep_ns = 200 * MS},
                          {.sleep_ns = 100 * MS}};
    corio_group *g = corio_group_new(-1);
    int64_t start = corio_now();

    CHECK(g != NULL);
    CHECK(spawn_all(g, cs, 3) == 0);
    CHECK(corio_group_count(g) == 3);
    CHECK(corio_group_free(g) == -1 && errno == EBUSY);
    CHECK(corio_group_wait(g) == 0);
    CHECK(elapsed_ms(start) >= 190 && elapsed_ms(start) < UPPER(400));
    for (int i = 0; i < 3; i++)
        CHECK(cs[i].finished && !cs[i].cancelled);
    CHECK(corio_group_count(g) == 0);
    /* Closed: no more spawns. */
    CHECK(corio_group_spawn(g, child_fn, &cs[0], NULL) == NULL &&
          errno == CORIO_ECLOSED);
    CHECK(corio_group_wait(g) == 0);
    CHECK(corio_group_free(g) == 0);
    CHECK(corio_group_free(NULL) == 0);
    return NULL;
}

Test(group, all_children_succeed, .timeout = TIMEOUT)
{
    run_main(all_succeed_main);
}

static void *failure_main(void *arg)
{
    struct child cs[4] = {
        {.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS},
        {.sleep_ns = 50 * MS, .fail = EIO},
        {.sleep_ns = 300 * MS, .fail = EPROTO}, /* cancelled before it fails */
        {.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS},
    };
    corio_group *g = corio_group_new(-1);
    int64_t start = corio_now();

    CHECK(spawn_all(g, cs, 4) == 0);
    CHECK(corio_group_wait(g) == -1 && errno == EIO);
    CHECK(elapsed_ms(start) >= 75 && elapsed_ms(start) < UPPER(500));
    CHECK(cs[0].cancelled && cs[0].cleaned);
    CHECK(cs[2].cancelled && !cs[2].finished);
    CHECK(cs[3].cancelled && cs[3].cleaned);
    CHECK(corio_group_count(g) == 0);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, failure_cancels_siblings_and_waits_for_cleanup, .timeout = TIMEOUT)
{
    run_main(failure_main);
}

static void *failure_before_wait_main(void *arg)
{
    struct child cs[2] = {{.sleep_ns = 20 * MS, .fail = ENOSPC},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 10 * MS}};
    corio_group *g = corio_group_new(-1);

    CHECK(spawn_all(g, cs, 2) == 0);
    CHECK(corio_sleep(150 * MS) == 0); /* the body does something else */
    /* The sibling was cancelled when the failure happened, not at wait. */
    CHECK(cs[1].cancelled && cs[1].cleaned);
    CHECK(corio_group_spawn(g, child_fn, &cs[1], NULL) == NULL);
    CHECK(errno == ECANCELED);
    CHECK(corio_group_wait(g) == -1 && errno == ENOSPC);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, failure_before_wait_cancels_at_once, .timeout = TIMEOUT)
{
    run_main(failure_before_wait_main);
}

static void *deadline_main(void *arg)
{
    struct child cs[2] = {{.sleep_ns = 30 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS}};
    int64_t start = corio_now();
    corio_group *g = corio_group_new(start + 100 * MS);

    CHECK(spawn_all(g, cs, 2) == 0);
    CHECK(corio_group_wait(g) == -1 && errno == ETIMEDOUT);
    CHECK(elapsed_ms(start) >= 125 && elapsed_ms(start) < UPPER(500));
    CHECK(cs[0].finished);
    CHECK(cs[1].cancelled && cs[1].cleaned);
    CHECK(corio_group_free(g) == 0);

    /* A deadline that does not pass changes nothing. */
    cs[0] = (struct child){.sleep_ns = 20 * MS};
    g = corio_group_new(corio_now() + 5000 * MS);
    CHECK(spawn_all(g, cs, 1) == 0);
    CHECK(corio_group_wait(g) == 0);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, deadline_cancels_the_children, .timeout = TIMEOUT)
{
    run_main(deadline_main);
}

struct waiter_arg {
    corio_group *g;
    int rc, err;
};

static void *group_waiter(void *arg)
{
    struct waiter_arg *w = arg;

    w->rc = corio_group_wait(w->g);
    w->err = errno;
    return NULL;
}

static void *caller_cancelled_main(void *arg)
{
    struct child cs[3] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 10 * MS},
                          {.sleep_ns = 10 * MS}};
    struct waiter_arg w = {.g = corio_group_new(-1)};
    corio_task *wt;

    CHECK(spawn_all(w.g, cs, 3) == 0);
    wt = corio_task_spawn(group_waiter, &w, NULL);
    CHECK(corio_sleep(50 * MS) == 0);
    CHECK(corio_task_cancel(wt) == 1);
    CHECK(corio_task_join(wt, NULL) == -1 && errno == ECANCELED);
    CHECK(w.rc == -1 && w.err == ECANCELED);
    /* Every child had ended, cleanups included, when wait returned. */
    CHECK(cs[0].cancelled && cs[0].cleaned);
    CHECK(cs[1].cancelled && cs[1].cleaned);
    CHECK(cs[2].finished);
    CHECK(corio_group_count(w.g) == 0);
    CHECK(corio_group_free(w.g) == 0);
    return NULL;
}

Test(group, cancelling_the_waiter_cancels_and_waits_for_children, .timeout = TIMEOUT)
{
    run_main(caller_cancelled_main);
}

static void cancel_cb(void *arg)
{
    corio_group_cancel(arg);
}

static void *group_cancel_main(void *arg)
{
    struct child cs[2] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS},
                          {.sleep_ns = 5000 * MS}};
    corio_group *g = corio_group_new(-1);
    int64_t start = corio_now();

    CHECK(spawn_all(g, cs, 2) == 0);
    corio_loop_call_later(corio_loop_current(), 40 * MS, cancel_cb, g, NULL);
    CHECK(corio_group_wait(g) == -1 && errno == ECANCELED);
    CHECK(elapsed_ms(start) >= 55 && elapsed_ms(start) < UPPER(400));
    CHECK(cs[0].cleaned && cs[1].cancelled);
    CHECK(corio_group_free(g) == 0);
    CHECK(corio_group_cancel(NULL) == -1 && errno == EINVAL);
    return NULL;
}

Test(group, group_cancel, .timeout = TIMEOUT)
{
    run_main(group_cancel_main);
}

static void *scope_main(void *arg)
{
    struct child cs[1] = {{.sleep_ns = 5000 * MS, .cleanup_ns = 30 * MS}};
    corio_group *g = corio_group_new(-1);
    corio_scope scope;
    int rc, err;

    CHECK(spawn_all(g, cs, 1) == 0);
    corio_scope_enter(&scope, corio_now() + 50 * MS);
    rc = corio_group_wait(g);
    err = errno;
    CHECK(corio_scope_exit(&scope));
    CHECK(rc == -1 && err == ETIMEDOUT);
    CHECK(cs[0].cancelled && cs[0].cleaned);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, expired_scope_cancels_and_still_waits, .timeout = TIMEOUT)
{
    run_main(scope_main);
}

/* A child spawns a sibling into its own group while the parent waits; a
 * child that cancels itself is not a failure. */
static corio_group *shared_group;
static struct child grandchild = {.sleep_ns = 80 * MS};

static void *spawner(void *arg)
{
    if (corio_sleep(20 * MS) == -1)
        return NULL;
    if (corio_group_spawn(shared_group, child_fn, &grandchild, NULL) == NULL)
        return corio_task_fail(errno);
    return NULL;
}

static void *nested_spawn_main(void *arg)
{
    struct child self_cancel = {.sleep_ns = 5000 * MS, .self_cancel = true};
    corio_task_attr attr = {.name = "spawner"};
    int64_t start = corio_now();

    shared_group = corio_group_new(-1);
    CHECK(corio_group_spawn(shared_group, spawner, NULL, &attr) != NULL);
    CHECK(corio_group_spawn(shared_group, child_fn, &self_cancel, NULL) != NULL);
    CHECK(corio_group_wait(shared_group) == 0);
    CHECK(grandchild.finished);
    CHECK(self_cancel.cancelled);
    CHECK(elapsed_ms(start) >= 95 && elapsed_ms(start) < UPPER(400));
    CHECK(corio_group_free(shared_group) == 0);
    return NULL;
}

Test(group, child_spawns_sibling_and_self_cancel_is_no_failure, .timeout = TIMEOUT)
{
    run_main(nested_spawn_main);
}

static void *first_error_wins_main(void *arg)
{
    struct child cs[3] = {{.sleep_ns = 300 * MS, .fail = EMLINK},
                          {.sleep_ns = 300 * MS, .fail = EXDEV},
                          {.sleep_ns = 10 * MS, .fail = EROFS}};
    corio_group *g = corio_group_new(-1);

    CHECK(spawn_all(g, cs, 3) == 0);
    CHECK(corio_group_wait(g) == -1 && errno == EROFS);
    CHECK(cs[0].cancelled && cs[1].cancelled);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, first_error_wins, .timeout = TIMEOUT)
{
    run_main(first_error_wins_main);
}

static void *bad_arguments_main(void *arg)
{
    corio_group *g = corio_group_new(-1);
    corio_loop *other = corio_loop_new(); /* not current: run sets its own */
    corio_task_attr attr = {.loop = other};

    CHECK(corio_group_spawn(NULL, child_fn, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(corio_group_spawn(g, NULL, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(corio_group_spawn(g, child_fn, NULL, &attr) == NULL && errno == EINVAL);
    CHECK(corio_group_wait(NULL) == -1 && errno == EINVAL);
    CHECK(corio_group_wait(g) == 0); /* no children */
    CHECK(corio_group_free(g) == 0);
    CHECK(corio_loop_close(other) == 0);
    return NULL;
}

Test(group, bad_arguments, .timeout = TIMEOUT)
{
    run_main(bad_arguments_main);
}

#define MANY 2000

static void *many_main(void *arg)
{
    static struct child cs[MANY];
    corio_group *g = corio_group_new(-1);
    corio_task_attr attr = {.stack_mode = CORIO_STACK_COMPACT};
    int64_t start = corio_now();

    for (int i = 0; i < MANY; i++) {
        cs[i] = (struct child){.sleep_ns = (i % 50) * MS};
        if (i == MANY / 2)
            cs[i].fail = EIO, cs[i].sleep_ns = 100 * MS;
        else if (i % 2)
            cs[i].sleep_ns = 5000 * MS;
        CHECK(corio_group_spawn(g, child_fn, &cs[i], &attr) != NULL);
    }
    CHECK(corio_group_wait(g) == -1 && errno == EIO);
    CHECK(elapsed_ms(start) < UPPER(3000));
    for (int i = 1; i < MANY; i += 2)
        CHECK(cs[i].cancelled);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, many_children, .timeout = TIMEOUT)
{
    run_main(many_main);
}

Test(group, from_the_thread_stack, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    struct child cs[2] = {{.sleep_ns = 30 * MS, .fail = EPERM},
                          {.sleep_ns = 5000 * MS, .cleanup_ns = 20 * MS}};
    corio_group *g = corio_group_new(-1);

    cr_assert_not_null(g);
    cr_assert_eq(spawn_all(g, cs, 2), 0);
    cr_assert_eq(corio_group_wait(g), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert(cs[1].cancelled && cs[1].cleaned);
    cr_assert_eq(corio_group_free(g), 0);
    cr_assert_eq(corio_loop_close(loop), 0);
}

static void wait_in_callback(void *arg)
{
    struct waiter_arg *w = arg;

    w->rc = corio_group_wait(w->g);
    w->err = errno;
}

Test(group, edeadlk_in_a_callback, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    struct child cs[1] = {{.sleep_ns = 20 * MS}};
    struct waiter_arg w = {.g = corio_group_new(-1)};

    cr_assert_eq(spawn_all(w.g, cs, 1), 0);
    corio_loop_call_soon(loop, wait_in_callback, &w, NULL);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(w.rc, -1);
    cr_assert_eq(w.err, EDEADLK);
    cr_assert(cs[0].finished && !cs[0].cancelled); /* nothing was cancelled */
    cr_assert_eq(corio_group_wait(w.g), 0);
    cr_assert_eq(corio_group_free(w.g), 0);
    cr_assert_eq(corio_loop_close(loop), 0);
}
