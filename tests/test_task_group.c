/* tests/test_task_group.c -- task groups (corio_group_*, include/corio/
 * group.h): structured concurrency.
 *
 * Children sleep, fail or get cancelled and record it, with a cleanup that
 * blocks for a while after a cancellation, so the tests can see that
 * corio_group_wait returns only after every cleanup has run. Covered: all
 * succeed; a failure cancels the siblings (also before anyone waits); the
 * group's deadline; cancelling the waiting task; corio_group_cancel; an
 * expired deadline scope; spawning from a child; errors (EBUSY,
 * CORIO_ECLOSED, ECANCELED, EDEADLK); many children; the task
 * corio_group_spawn returns (cancelled alone, waited for and read, detached
 * and freed at its end); the first of two failures in one loop iteration;
 * corio_group_start and corio_task_started. Timing asserts use slack.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "corio/group.h"

#include <errno.h>
#include <malloc.h>
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
    void *result;       /* returned when it succeeds */
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
    return c->result;
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

/* ---- The task corio_group_spawn returns --------------------------------------- */

/* One child cancelled alone: the others go on, and the group's wait
 * succeeds (a child cancelled by someone else is not a failure). Each
 * child's state, result and error can be read after the wait, until
 * corio_group_free. */
static void *cancel_one_main(void *arg)
{
    struct child cs[3] = {
        {.sleep_ns = 60 * MS, .result = CORIO_INT(1)},
        {.sleep_ns = 5000 * MS, .cleanup_ns = 10 * MS, .result = CORIO_INT(2)},
        {.sleep_ns = 80 * MS, .result = CORIO_INT(3)},
    };
    corio_group *g = corio_group_new(-1);
    corio_task *t[3];

    CHECK(g != NULL);
    for (int i = 0; i < 3; i++)
        CHECK((t[i] = corio_group_spawn(g, child_fn, &cs[i], NULL)) != NULL);
    CHECK(corio_sleep(20 * MS) == 0);
    CHECK(corio_task_cancel(t[1]) == 1);
    /* A child can be waited for alone. */
    CHECK(corio_task_wait(t[1], -1) == 0);
    CHECK(corio_task_state(t[1]) == CORIO_CANCELLED);
    CHECK(cs[1].cancelled && cs[1].cleaned);
    CHECK(!cs[0].cancelled && !cs[0].finished);
    CHECK(!cs[2].cancelled && !cs[2].finished);
    CHECK(corio_group_wait(g) == 0);
    CHECK(cs[0].finished && !cs[0].cancelled);
    CHECK(cs[2].finished && !cs[2].cancelled);
    CHECK(corio_task_state(t[0]) == CORIO_DONE);
    CHECK(corio_task_result(t[0]) == CORIO_INT(1));
    CHECK(corio_task_error(t[0]) == 0);
    CHECK(corio_task_error(t[1]) == ECANCELED);
    CHECK(corio_task_result(t[1]) == NULL);
    CHECK(corio_task_result(t[2]) == CORIO_INT(3));
    CHECK(corio_future_result(corio_task_future(t[2])) == CORIO_INT(3));
    CHECK(corio_task_wait(t[0], 0) == 0);
    CHECK(corio_task_cancel(t[0]) == 0); /* finished */
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, cancel_one_child_alone, .timeout = TIMEOUT)
{
    run_main(cancel_one_main);
}

/* A failed child's task tells its error after the wait. */
static void *failed_child_main(void *arg)
{
    struct child cs[2] = {{.sleep_ns = 10 * MS, .fail = EIO},
                          {.sleep_ns = 5000 * MS}};
    corio_group *g = corio_group_new(-1);
    corio_task *t[2];

    CHECK(g != NULL);
    for (int i = 0; i < 2; i++)
        CHECK((t[i] = corio_group_spawn(g, child_fn, &cs[i], NULL)) != NULL);
    CHECK(corio_group_wait(g) == -1 && errno == EIO);
    CHECK(corio_task_state(t[0]) == CORIO_DONE);
    CHECK(corio_task_error(t[0]) == EIO);
    CHECK(corio_task_state(t[1]) == CORIO_CANCELLED);
    CHECK(corio_task_error(t[1]) == ECANCELED);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, a_failed_childs_task_tells_its_error, .timeout = TIMEOUT)
{
    run_main(failed_child_main);
}

/* Detached children are freed as soon as they end, while the group lives:
 * 10,000 short ones spawned in a loop leave no task, no count and no heap
 * behind (the group does not keep them for a result nobody will read). */
static void *short_child(void *arg)
{
    int *ended = arg;

    if (corio_sleep(0) == -1)
        return NULL;
    (*ended)++;
    return NULL;
}

static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

static void *many_detached_main(void *arg)
{
    int n = RUNNING_ON_VALGRIND ? 2000 : 10000, ended = 0;
    corio_group *g = corio_group_new(-1);
    size_t heap_warm = 0, heap_end;

    CHECK(g != NULL);
    for (int i = 1; i <= n; i++) {
        corio_task *t = corio_group_spawn(g, short_child, &ended, NULL);

        CHECK(t != NULL);
        CHECK(corio_task_detach(t) == 0);
        CHECK(corio_task_detach(t) == -1 && errno == EINVAL);
        if (i % 100 == 0) {
            CHECK(corio_task_count() == 101); /* main and the batch */
            /* The batch starts, ends, and the group sees it end. */
            for (int k = 0; k < 3; k++)
                CHECK(corio_sleep(0) == 0);
            CHECK(ended == i);
            CHECK(corio_task_count() == 1);
            CHECK(corio_group_count(g) == 0);
        }
        if (i == 1000)
            heap_warm = heap_in_use();
    }
    heap_end = heap_in_use();
    CHECK(corio_group_wait(g) == 0);
    CHECK(ended == n);
    /* 9,000 tasks kept would be megabytes. */
    if (heap_end > heap_warm)
        CHECK(heap_end - heap_warm < 64 * 1024);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, detached_children_are_freed_at_their_end, .timeout = TIMEOUT)
{
    run_main(many_detached_main);
}

/* Detached after it ended: freed then; detached while running: freed at its
 * end; neither is freed again by corio_group_free (valgrind, ASan). */
static void *detach_late_main(void *arg)
{
    struct child cs[3] = {{.sleep_ns = 0}, {.sleep_ns = 30 * MS},
                          {.sleep_ns = 30 * MS, .result = CORIO_INT(6)}};
    corio_group *g = corio_group_new(-1);
    corio_task *t[3];

    CHECK(g != NULL);
    for (int i = 0; i < 3; i++)
        CHECK((t[i] = corio_group_spawn(g, child_fn, &cs[i], NULL)) != NULL);
    CHECK(corio_task_wait(t[0], -1) == 0);
    CHECK(corio_sleep(0) == 0); /* the group sees it end */
    CHECK(corio_task_detach(t[0]) == 0);
    CHECK(corio_task_detach(t[1]) == 0);
    CHECK(corio_group_wait(g) == 0);
    CHECK(cs[0].finished && cs[1].finished && cs[2].finished);
    CHECK(corio_task_result(t[2]) == CORIO_INT(6)); /* kept: not detached */
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, detach_before_and_after_the_end, .timeout = TIMEOUT)
{
    run_main(detach_late_main);
}

/* ---- Two failures in one loop iteration ---------------------------------------
 * The group's error is the first failure the group sees (its done callbacks
 * run in the order the children ended), not the last, and not the first
 * spawned: two children woken by one event fail in the same iteration, in
 * the order they waited. */
static int end_order[4], nend;

struct failer {
    corio_event *go;
    int err;
    bool wait_late;     /* yield once first: wait behind the other */
};

static void *fail_on_event(void *arg)
{
    struct failer *f = arg;

    if (f->wait_late && corio_sleep(0) == -1)
        return NULL;
    if (corio_event_wait(f->go, -1) == -1)
        return NULL;
    end_order[nend++] = f->err;
    return corio_task_fail(f->err);
}

static char *same_iteration(bool second_waits_first, int want)
{
    corio_event *go = corio_event_new();
    struct failer fa = {.go = go, .err = EMLINK, .wait_late = second_waits_first};
    struct failer fb = {.go = go, .err = EXDEV};
    corio_group *g = corio_group_new(-1);
    corio_task *ta, *tb;

    CHECK(go != NULL && g != NULL);
    nend = 0;
    CHECK((ta = corio_group_spawn(g, fail_on_event, &fa, NULL)) != NULL);
    CHECK((tb = corio_group_spawn(g, fail_on_event, &fb, NULL)) != NULL);
    for (int k = 0; k < 3; k++)
        CHECK(corio_sleep(0) == 0);
    CHECK(corio_event_set(go) == 0);
    CHECK(corio_group_wait(g) == -1);
    CHECK(errno == want);
    CHECK(nend == 2 && end_order[0] == want);
    /* Both failed (neither was cancelled: both had ended when the group
     * saw the first failure). */
    CHECK(corio_task_error(ta) == EMLINK && corio_task_error(tb) == EXDEV);
    CHECK(corio_group_free(g) == 0);
    CHECK(corio_event_free(go) == 0);
    return NULL;
}

static void *same_iteration_main(void *arg)
{
    char *r = same_iteration(false, EMLINK); /* A waited first: A's */

    if (r != NULL)
        return r;
    return same_iteration(true, EXDEV); /* B waited first: B's */
}

Test(group, two_failures_in_one_iteration_first_seen_wins, .timeout = TIMEOUT)
{
    run_main(same_iteration_main);
}

/* ---- corio_group_start, corio_task_started -------------------------------------- */

struct startable {
    int64_t before_ns;  /* then it says it started (or fails, or returns) */
    int64_t after_ns;   /* then it returns 9 */
    bool call_started;
    void *value;
    int fail;           /* fail instead of starting */
    int fail_after;     /* fail after starting */
    int started_rc, again_rc, again_err;
    bool cancelled, ran_after;
};

static void *startable_fn(void *arg)
{
    struct startable *s = arg;

    if (corio_sleep(s->before_ns) == -1) {
        s->cancelled = errno == ECANCELED;
        return NULL;
    }
    if (s->fail > 0)
        return corio_task_fail(s->fail);
    if (s->call_started) {
        s->started_rc = corio_task_started(s->value);
        errno = 0;
        s->again_rc = corio_task_started(s->value);
        s->again_err = errno;
    }
    if (s->fail_after > 0)
        return corio_task_fail(s->fail_after);
    if (corio_sleep(s->after_ns) == -1) {
        s->cancelled = errno == ECANCELED;
        return NULL;
    }
    s->ran_after = true;
    return CORIO_INT(9);
}

/* start returns once the child has started, with its value; the child
 * keeps running in the group. */
static void *start_main(void *arg)
{
    struct startable s = {.before_ns = 30 * MS, .after_ns = 60 * MS,
                          .call_started = true, .value = CORIO_INT(7)};
    corio_group *g = corio_group_new(-1);
    int64_t start = corio_now();
    void *value = NULL;
    corio_task *t;

    CHECK(g != NULL);
    t = corio_group_start(g, startable_fn, &s, NULL, &value, -1);
    CHECK(t != NULL);
    CHECK(value == CORIO_INT(7));
    CHECK(elapsed_ms(start) >= 30 && elapsed_ms(start) < UPPER(250));
    CHECK(s.started_rc == 0);
    CHECK(s.again_rc == -1 && s.again_err == EINVAL); /* said it already */
    CHECK(!s.ran_after && !corio_task_is_done(t));
    CHECK(corio_group_count(g) == 1);
    CHECK(corio_group_wait(g) == 0);
    CHECK(s.ran_after && !s.cancelled);
    CHECK(elapsed_ms(start) >= 90);
    CHECK(corio_task_result(t) == CORIO_INT(9));
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, start_returns_the_started_value_child_keeps_running, .timeout = TIMEOUT)
{
    run_main(start_main);
}

/* A child that returns without calling corio_task_started: ECHILD (the
 * group's wait succeeds: the child did); one that fails first: its error
 * (the group's too); one that starts and then fails: start succeeds, the
 * group's wait reports the failure. */
static void *start_no_value_main(void *arg)
{
    struct startable quiet = {.before_ns = 20 * MS};
    struct startable failing = {.before_ns = 20 * MS, .fail = EIO};
    struct startable late = {.before_ns = 20 * MS, .call_started = true,
                             .fail_after = ENOSPC};
    corio_group *g = corio_group_new(-1);
    void *value = CORIO_INT(1);

    CHECK(g != NULL);
    CHECK(corio_group_start(g, startable_fn, &quiet, NULL, &value, -1) == NULL);
    CHECK(errno == ECHILD);
    CHECK(quiet.ran_after);
    CHECK(corio_group_wait(g) == 0);
    CHECK(corio_group_free(g) == 0);

    g = corio_group_new(-1);
    CHECK(g != NULL);
    CHECK(corio_group_start(g, startable_fn, &failing, NULL, &value, -1) ==
          NULL);
    CHECK(errno == EIO);
    CHECK(corio_group_wait(g) == -1 && errno == EIO);
    CHECK(corio_group_free(g) == 0);

    g = corio_group_new(-1);
    CHECK(g != NULL);
    CHECK(corio_group_start(g, startable_fn, &late, NULL, NULL, -1) != NULL);
    CHECK(corio_group_wait(g) == -1 && errno == ENOSPC);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, start_without_started_is_echild_or_the_error, .timeout = TIMEOUT)
{
    run_main(start_no_value_main);
}

/* start's deadline passes: ETIMEDOUT, and the child is cancelled (at once,
 * not at the group's wait); the group still reaps it, and a child cancelled
 * that way is no failure of the group. */
static void *start_deadline_main(void *arg)
{
    struct startable s = {.before_ns = 5000 * MS, .call_started = true};
    corio_group *g = corio_group_new(-1);
    int64_t start = corio_now();

    CHECK(g != NULL);
    CHECK(corio_group_start(g, startable_fn, &s, NULL, NULL,
                            start + 50 * MS) == NULL);
    CHECK(errno == ETIMEDOUT);
    CHECK(elapsed_ms(start) >= 50 && elapsed_ms(start) < UPPER(250));
    for (int k = 0; k < 3; k++)
        CHECK(corio_sleep(0) == 0);
    CHECK(s.cancelled);
    CHECK(corio_group_count(g) == 0);
    CHECK(corio_group_wait(g) == 0);
    CHECK(corio_group_free(g) == 0);
    return NULL;
}

Test(group, start_deadline_cancels_the_child, .timeout = TIMEOUT)
{
    run_main(start_deadline_main);
}

/* The task in corio_group_start is cancelled: ECANCELED, the child too. */
struct start_arg {
    corio_group *g;
    struct startable s;
    corio_task *t;
    int err;
};

static void *starts(void *arg)
{
    struct start_arg *a = arg;

    a->t = corio_group_start(a->g, startable_fn, &a->s, NULL, NULL, -1);
    a->err = errno;
    return NULL;
}

static void *start_cancelled_main(void *arg)
{
    struct start_arg a = {.g = corio_group_new(-1),
                          .s = {.before_ns = 5000 * MS, .call_started = true}};
    corio_task *st;

    CHECK(a.g != NULL);
    CHECK((st = corio_task_spawn(starts, &a, NULL)) != NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    CHECK(corio_task_cancel(st) == 1);
    CHECK(corio_task_join(st, NULL) == -1 && errno == ECANCELED);
    CHECK(a.t == NULL && a.err == ECANCELED);
    CHECK(corio_group_wait(a.g) == 0);
    CHECK(a.s.cancelled);
    CHECK(corio_group_free(a.g) == 0);
    return NULL;
}

Test(group, start_cancelled_cancels_the_child, .timeout = TIMEOUT)
{
    run_main(start_cancelled_main);
}

/* corio_task_started outside a start: EINVAL (a plain task, a child spawned
 * with corio_group_spawn, the thread's stack). */
static void *calls_started(void *arg)
{
    int *err = arg;

    errno = 0;
    if (corio_task_started(CORIO_INT(1)) != -1)
        *err = -1;
    else
        *err = errno;
    return NULL;
}

static void *started_outside_main(void *arg)
{
    int plain = 0, spawned = 0;
    corio_group *g = corio_group_new(-1);
    corio_task *t;

    CHECK(g != NULL);
    CHECK((t = corio_task_spawn(calls_started, &plain, NULL)) != NULL);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(plain == EINVAL);
    CHECK(corio_group_spawn(g, calls_started, &spawned, NULL) != NULL);
    CHECK(corio_group_wait(g) == 0);
    CHECK(spawned == EINVAL);
    CHECK(corio_group_free(g) == 0);
    CHECK(corio_task_started(NULL) == -1 && errno == EINVAL); /* main */
    return NULL;
}

Test(group, started_outside_a_start_is_einval, .timeout = TIMEOUT)
{
    run_main(started_outside_main);
    cr_assert_eq(corio_task_started(NULL), -1, "on the thread's stack");
    cr_assert_eq(errno, EINVAL);
}

/* From the thread's own stack. */
Test(group, start_from_the_thread_stack, .timeout = TIMEOUT)
{
    corio_loop *loop = corio_loop_new();
    struct startable s = {.before_ns = 20 * MS, .after_ns = 20 * MS,
                          .call_started = true, .value = CORIO_INT(4)};
    corio_group *g = corio_group_new(-1);
    void *value = NULL;
    corio_task *t;

    cr_assert_not_null(g);
    t = corio_group_start(g, startable_fn, &s, NULL, &value, -1);
    cr_assert_not_null(t, "corio_group_start: %s", strerror(errno));
    cr_assert_eq(CORIO_TO_INT(value), 4);
    cr_assert_not(s.ran_after);
    cr_assert_eq(corio_group_wait(g), 0);
    cr_assert(s.ran_after);
    cr_assert_eq(corio_task_result(t), CORIO_INT(9));
    cr_assert_eq(corio_group_free(g), 0);
    cr_assert_eq(corio_loop_close(loop), 0);
}
