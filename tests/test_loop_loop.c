/* tests/test_loop_loop.c -- the event loop of include/corio/loop.h: loops and
 * the thread's current loop, run/run_forever/stop/close, the loop's clock,
 * callbacks (call_soon, call_later, call_at) and their handles, calls from
 * other threads (corio_loop_call_soon_threadsafe), waiting on file descriptors
 * (corio_fd_wait, corio_fd_forget), fairness between a ping-pong and the
 * timers and fd waiters, a cancellation before parking, the fd table
 * growing under parked waiters, the peer's end with the last data (the
 * short-read path), and the timer heap under load.
 *
 * Suites: "loop" holds what the contract promises and the core does. Suite
 * "loop_bug" holds scenarios where the core breaks the contract today (each
 * one names the bug it shows); they fail before the fix and pass after it.
 * Some of them fail only under ASan/valgrind (use-after-free), or only under
 * UBSan (signed overflow), as noted.
 *
 * Timing bounds carry slack for load, sanitizers and valgrind (see
 * helpers/timing.h): they prove the shape (a timer fires after its delay,
 * soon after), not exact latency.
 *
 * Every test has the same .timeout: Criterion 2.4.1's runner leaks 48 bytes
 * when the tests of one file have different timeouts and run with --jobs=2
 * (see tests/test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
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

/* What callbacks saw. Each test runs in its own process, so plain statics
 * start at zero every time. */
static int order[20000];
static int norder;
static corio_loop *the_loop;

/* Append the callback's number to order[]. */
static void note(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}

static void stop_cb(void *arg)
{
    corio_loop_stop(arg);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* ---- Loops and the current loop ------------------------------------------ */

Test(loop, new_loop_becomes_current_only_if_none, .timeout = 30)
{
    corio_loop *a = corio_loop_new(), *b;

    cr_assert_not_null(a);
    cr_assert_eq(corio_loop_current(), a, "the first loop is the current one");
    b = corio_loop_new();
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    cr_assert_eq(corio_loop_current(), a, "a second loop does not replace it");
    cr_assert_eq(corio_loop_set_current(b), 0);
    cr_assert_eq(corio_loop_current(), b);
    cr_assert_eq(corio_loop_set_current(a), 0);
    loop_done(b);
    cr_assert_eq(corio_loop_current(), a);
    loop_done(a);
}

Test(loop, current_is_made_on_first_use_and_stays, .timeout = 30)
{
    corio_loop *l = corio_loop_current();

    cr_assert_not_null(l);
    cr_assert_eq(corio_loop_current(), l);
    cr_assert_not(corio_loop_is_running(l));
    /* set_current(NULL): the next corio_loop_current() makes a new loop. */
    cr_assert_eq(corio_loop_set_current(NULL), 0);
    corio_loop *m = corio_loop_current();
    cr_assert_not_null(m);
    cr_assert_neq(m, l);
    loop_done(m);
    loop_done(l);
}

static void *thread_current(void *arg)
{
    corio_loop *l = corio_loop_current();

    (void)arg;
    /* Made implicitly: the thread owns it and closes it when it exits
     * (valgrind would report it lost otherwise). */
    cr_assert_eq(corio_loop_call_soon(l, nothing, NULL, NULL), 0);
    return l;
}

Test(loop, each_thread_has_its_own_loop, .timeout = 30)
{
    corio_loop *mine = loop_open();
    pthread_t th;
    void *theirs = NULL;

    cr_assert_eq(pthread_create(&th, NULL, thread_current, NULL), 0);
    cr_assert_eq(pthread_join(th, &theirs), 0);
    cr_assert_not_null(theirs);
    cr_assert_neq(theirs, mine);
    cr_assert_eq(corio_loop_current(), mine);
    loop_done(mine);
}

Test(loop, close_null_is_a_noop, .timeout = 30)
{
    cr_assert_eq(corio_loop_close(NULL), 0);
    cr_assert_not(corio_loop_is_running(NULL));
}

/* A NULL loop is bad input, not a crash; its clock is corio_now(). */
Test(loop, null_loop_fails_with_einval, .timeout = 30)
{
    int64_t t0 = corio_now();

    expect_fail(corio_loop_run_until_idle(NULL), EINVAL);
    expect_fail(corio_loop_run_forever(NULL), EINVAL);
    expect_fail(corio_loop_stop(NULL), EINVAL);
    cr_assert_geq(corio_loop_time(NULL), t0);
    cr_assert_leq(corio_loop_time(NULL), corio_now());
}

/* Inside a running loop: every call that needs it stopped fails EBUSY. */
static corio_loop *other_loop;
static int busy_checked;

static void busy_cb(void *arg)
{
    corio_loop *loop = arg;

    cr_assert(corio_loop_is_running(loop));
    expect_fail(corio_loop_close(loop), EBUSY);
    expect_fail(corio_loop_run_until_idle(loop), EBUSY);
    expect_fail(corio_loop_run_forever(loop), EBUSY);
    expect_fail(corio_loop_set_current(other_loop), EBUSY);
    expect_fail(corio_loop_set_current(NULL), EBUSY);
    cr_assert_eq(corio_loop_current(), loop);
    busy_checked = 1;
}

Test(loop, close_run_set_current_ebusy_while_running, .timeout = 30)
{
    corio_loop *loop = loop_open();

    other_loop = corio_loop_new();
    cr_assert_not_null(other_loop);
    cr_assert_eq(corio_loop_call_soon(loop, busy_cb, loop, NULL), 0);
    cr_assert_not(corio_loop_is_running(loop));
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(busy_checked, 1);
    cr_assert_not(corio_loop_is_running(loop));
    loop_done(other_loop);
    loop_done(loop);
}

/* ---- run, run_forever, stop ---------------------------------------------- */

Test(loop, run_with_nothing_to_do_returns_at_once, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();

    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS);
    loop_done(loop);
}

/* A chain: a callback arms a timer, whose callback schedules a callback. run
 * returns only once the last one ran. */
static void chain3(void *arg)
{
    note(CORIO_INT(3));
}

static void chain2(void *arg)
{
    note(CORIO_INT(2));
    cr_assert_eq(corio_loop_call_soon(arg, chain3, NULL, NULL), 0);
}

static void chain1(void *arg)
{
    note(CORIO_INT(1));
    cr_assert_eq(corio_loop_call_later(arg, 20 * MS, chain2, arg, NULL), 0);
}

Test(loop, run_returns_when_nothing_is_left, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();

    cr_assert_eq(corio_loop_call_soon(loop, chain1, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 3);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 2);
    cr_assert_eq(order[2], 3);
    cr_assert_geq(elapsed_ms(t0), 20);
    loop_done(loop);
}

Test(loop, run_forever_until_stop, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();

    cr_assert_eq(corio_loop_call_later(loop, 50 * MS, stop_cb, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_lt(elapsed_ms(t0), 50 + SLACK_MS);
    cr_assert_not(corio_loop_is_running(loop));
    /* run_forever can run again, and waits with no work until stopped. */
    cr_assert_eq(corio_loop_call_later(loop, 10 * MS, stop_cb, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    loop_done(loop);
}

/* A stops the loop and schedules C; B was ready with A. run_forever returns
 * after A and B: C belongs to the next iteration. */
static void stop_and_schedule(void *arg)
{
    note(CORIO_INT(1));
    corio_loop_stop(arg);
    cr_assert_eq(corio_loop_call_soon(arg, note, CORIO_INT(3), NULL), 0);
}

Test(loop, stop_returns_after_the_ready_callbacks, .timeout = 30)
{
    corio_loop *loop = loop_open();

    cr_assert_eq(corio_loop_call_soon(loop, stop_and_schedule, loop, NULL), 0);
    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(2), NULL), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    cr_assert_eq(norder, 2, "ran %d callbacks", norder);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 2);
    /* C is still scheduled: the next run runs it. */
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 3);
    cr_assert_eq(order[2], 3);
    loop_done(loop);
}

static int64_t seen_time, seen_now;

static void clock_cb(void *arg)
{
    seen_time = corio_loop_time(arg);
    seen_now = corio_now();
}

Test(loop, loop_time_is_the_iteration_clock, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();

    cr_assert_leq(corio_loop_time(loop), corio_now());
    cr_assert_eq(corio_loop_call_later(loop, 30 * MS, clock_cb, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_geq(seen_time, t0 + 30 * MS, "the clock moved with the loop");
    cr_assert_leq(seen_time, seen_now);
    cr_assert_lt(seen_now - seen_time, SLACK_MS * MS);
    loop_done(loop);
}

/* ---- call_soon ----------------------------------------------------------- */

Test(loop, call_soon_runs_in_fifo_order, .timeout = 30)
{
    corio_loop *loop = loop_open();

    for (int i = 0; i < 1000; i++)
        cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(i), NULL), 0);
    cr_assert_eq(norder, 0, "call_soon runs nothing by itself");
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(order[i], i);
    loop_done(loop);
}

/* A schedules C while B is already ready: C runs after B. */
static void schedule_next(void *arg)
{
    note(CORIO_INT(1));
    cr_assert_eq(corio_loop_call_soon(arg, note, CORIO_INT(3), NULL), 0);
}

Test(loop, callbacks_scheduled_by_callbacks_run_after, .timeout = 30)
{
    corio_loop *loop = loop_open();

    cr_assert_eq(corio_loop_call_soon(loop, schedule_next, loop, NULL), 0);
    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(2), NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 3);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 2);
    cr_assert_eq(order[2], 3);
    loop_done(loop);
}

/* A callback that schedules itself again forever does not starve timers:
 * what a callback schedules waits for the next iteration, which polls and
 * fires timers first. */
static long spins;

static void spin(void *arg)
{
    spins++;
    cr_assert_eq(corio_loop_call_soon(arg, spin, arg, NULL), 0);
}

Test(loop, self_rescheduling_callback_lets_timers_fire, .timeout = 30)
{
    corio_loop *loop = loop_open();

    cr_assert_eq(corio_loop_call_soon(loop, spin, loop, NULL), 0);
    cr_assert_eq(corio_loop_call_later(loop, 20 * MS, stop_cb, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    cr_assert_gt(spins, 1);
    loop_done(loop); /* the pending spin is dropped and freed */
}

Test(loop, call_soon_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *h = NULL;

    expect_fail(corio_loop_call_soon(loop, NULL, NULL, NULL), EINVAL);
    expect_fail(corio_loop_call_soon(loop, NULL, NULL, &h), EINVAL);
    cr_assert_null(h, "no handle on failure");
    expect_fail(corio_loop_call_soon(NULL, note, NULL, NULL), EINVAL);
    loop_done(loop);
}

/* ---- call_later, call_at ------------------------------------------------- */

Test(loop, timers_fire_in_time_order, .timeout = 30)
{
    corio_loop *loop = loop_open();
    static const int delays[] = {50, 10, 40, 0, 30, 20, 5};
    int n = (int)(sizeof(delays) / sizeof(delays[0]));
    int64_t base = corio_now();

    /* call_at from one base: call_later would measure each delay from its
     * own call, which under valgrind can be milliseconds apart. */
    for (int i = 0; i < n; i++)
        cr_assert_eq(corio_loop_call_at(loop, base + delays[i] * MS, note,
                                   CORIO_INT(delays[i]), NULL),
                     0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, n);
    for (int i = 1; i < n; i++)
        cr_assert_lt(order[i - 1], order[i], "fired %d before %d", order[i - 1],
                     order[i]);
    loop_done(loop);
}

Test(loop, equal_times_fire_in_scheduling_order, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t when = corio_now() + 20 * MS;

    /* Interleave two times so that the heap has to reorder them. */
    for (int i = 0; i < 200; i++) {
        int64_t w = i % 2 == 0 ? when : when - 5 * MS;

        cr_assert_eq(corio_loop_call_at(loop, w, note, CORIO_INT(i), NULL), 0);
    }
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 200);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(order[i], 2 * i + 1, "earlier time first, in order");
        cr_assert_eq(order[100 + i], 2 * i, "then the later time, in order");
    }
    loop_done(loop);
}

static int64_t fired_at[16];
static int nfired;

static void stamp(void *arg)
{
    (void)arg;
    fired_at[nfired++] = corio_now();
}

Test(loop, timers_fire_late_by_little, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    int64_t at = t0 + 70 * MS;

    cr_assert_eq(corio_loop_call_later(loop, 40 * MS, stamp, NULL, NULL), 0);
    cr_assert_eq(corio_loop_call_at(loop, at, stamp, NULL, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(nfired, 2);
    cr_assert_geq(fired_at[0], t0 + 40 * MS, "never early");
    cr_assert_lt(fired_at[0], t0 + (40 + SLACK_MS) * MS);
    cr_assert_geq(fired_at[1], at, "never early");
    cr_assert_lt(fired_at[1], at + SLACK_MS * MS);
    loop_done(loop);
}

Test(loop, call_at_in_the_past_fires_at_once, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();

    cr_assert_eq(
        corio_loop_call_at(loop, t0 - CORIO_SECOND, note, CORIO_INT(1), NULL), 0);
    cr_assert_eq(corio_loop_call_later(loop, 0, note, CORIO_INT(2), NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 2);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 2);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS);
    loop_done(loop);
}

Test(loop, call_later_call_at_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *h = NULL;

    expect_fail(corio_loop_call_later(loop, -1, note, NULL, &h), EINVAL);
    expect_fail(corio_loop_call_later(loop, -CORIO_SECOND, note, NULL, NULL),
                EINVAL);
    expect_fail(corio_loop_call_later(loop, MS, NULL, NULL, &h), EINVAL);
    expect_fail(corio_loop_call_later(NULL, MS, note, NULL, NULL), EINVAL);
    expect_fail(corio_loop_call_at(loop, corio_now(), NULL, NULL, &h), EINVAL);
    expect_fail(corio_loop_call_at(NULL, corio_now(), note, NULL, NULL), EINVAL);
    cr_assert_null(h, "no handle on failure");
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 0, "nothing was scheduled");
    loop_done(loop);
}

/* Timers with random delays fire in time order. */
static int64_t when_of[1000];
static int64_t last_when;
static int out_of_order;

static void timer_check(void *arg)
{
    int i = (int)(intptr_t)arg;

    if (when_of[i] < last_when)
        out_of_order++;
    last_when = when_of[i];
    norder++;
}

Test(loop, thousand_timers_fire_in_order, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t base = corio_now() + 5 * MS;

    srand(7);
    for (int i = 0; i < 1000; i++) {
        when_of[i] = base + (rand() % 50000) * CORIO_USEC;
        cr_assert_eq(
            corio_loop_call_at(loop, when_of[i], timer_check, CORIO_INT(i), NULL),
            0);
    }
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 1000);
    cr_assert_eq(out_of_order, 0);
    loop_done(loop);
}

/* ---- Handles ------------------------------------------------------------- */

Test(loop, cancel_before_run_never_runs, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *soon = NULL, *later = NULL;
    int64_t t0 = corio_now();

    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(1), &soon), 0);
    cr_assert_eq(
        corio_loop_call_later(loop, 10 * CORIO_SECOND, note, CORIO_INT(2), &later),
        0);
    cr_assert_not_null(soon);
    cr_assert_not_null(later);
    cr_assert_not(corio_handle_is_cancelled(soon));
    cr_assert_eq(corio_handle_cancel(soon), 0);
    cr_assert_eq(corio_handle_cancel(later), 0);
    cr_assert(corio_handle_is_cancelled(soon));
    cr_assert(corio_handle_is_cancelled(later));
    expect_fail(corio_handle_cancel(soon), EALREADY);
    expect_fail(corio_handle_cancel(later), EALREADY);
    /* The cancelled timer is gone: run has nothing to wait for. */
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 0);
    cr_assert_lt(elapsed_ms(t0), test_slack_capped_ms(5000),
                 "run waited for a cancelled timer");
    corio_handle_free(soon);
    corio_handle_free(later);
    loop_done(loop);
}

Test(loop, cancel_after_run_is_ealready, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *soon = NULL, *later = NULL;

    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(1), &soon), 0);
    cr_assert_eq(corio_loop_call_later(loop, MS, note, CORIO_INT(2), &later), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 2);
    expect_fail(corio_handle_cancel(soon), EALREADY);
    expect_fail(corio_handle_cancel(later), EALREADY);
    cr_assert_not(corio_handle_is_cancelled(soon), "it ran, it was not cancelled");
    cr_assert_not(corio_handle_is_cancelled(later));
    corio_handle_free(soon);
    corio_handle_free(later);
    loop_done(loop);
}

static corio_handle *victim;

static void cancel_victim(void *arg)
{
    note(arg);
    cr_assert_eq(corio_handle_cancel(victim), 0);
}

Test(loop, cancel_from_a_callback_in_the_same_batch, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t when = corio_now() + 5 * MS;

    cr_assert_eq(corio_loop_call_at(loop, when, cancel_victim, CORIO_INT(1), NULL),
                 0);
    cr_assert_eq(corio_loop_call_at(loop, when, note, CORIO_INT(2), &victim), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 1, "the cancelled callback ran");
    cr_assert(corio_handle_is_cancelled(victim));
    corio_handle_free(victim);
    loop_done(loop);
}

Test(loop, handle_free_of_a_pending_handle_still_runs, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *soon = NULL, *later = NULL;

    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(1), &soon), 0);
    cr_assert_eq(corio_loop_call_later(loop, 10 * MS, note, CORIO_INT(2), &later),
                 0);
    corio_handle_free(soon);
    corio_handle_free(later);
    corio_handle_free(NULL);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 2, "freeing the handle does not cancel");
    loop_done(loop); /* valgrind: both handles were freed by the loop */
}

Test(loop, handle_free_after_cancel_before_run, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *soon = NULL, *later = NULL;

    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(1), &soon), 0);
    cr_assert_eq(corio_loop_call_later(loop, 10 * MS, note, CORIO_INT(2), &later),
                 0);
    cr_assert_eq(corio_handle_cancel(soon), 0);
    cr_assert_eq(corio_handle_cancel(later), 0);
    corio_handle_free(soon); /* still in the ready queue */
    corio_handle_free(later);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 0);
    loop_done(loop);
}

Test(loop, close_drops_pending_callbacks_and_handles_survive, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *soon = NULL, *later = NULL;

    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(1), NULL), 0);
    cr_assert_eq(corio_loop_call_later(loop, CORIO_SECOND, note, CORIO_INT(2), NULL),
                 0);
    cr_assert_eq(corio_loop_call_soon(loop, note, CORIO_INT(3), &soon), 0);
    cr_assert_eq(
        corio_loop_call_later(loop, CORIO_SECOND, note, CORIO_INT(4), &later), 0);
    loop_done(loop);
    cr_assert_eq(norder, 0, "close runs no callback");
    /* The caller's handles stay valid until freed: not cancelled, done. */
    cr_assert_not(corio_handle_is_cancelled(soon));
    expect_fail(corio_handle_cancel(soon), EALREADY);
    expect_fail(corio_handle_cancel(later), EALREADY);
    corio_handle_free(soon);
    corio_handle_free(later);
}

/* ---- Calls from other threads -------------------------------------------- */

#define NPRODUCERS 4

static unsigned char *ts_seen;
static int ts_total, ts_received, ts_off_thread;
static int ts_errors;
static pthread_t loop_thread;

static void ts_cb(void *arg)
{
    int id = (int)(intptr_t)arg;

    if (!pthread_equal(pthread_self(), loop_thread))
        ts_off_thread++;
    ts_seen[id]++;
    if (++ts_received == ts_total)
        corio_loop_stop(the_loop);
}

static void *producer(void *arg)
{
    int base = (int)(intptr_t)arg * (ts_total / NPRODUCERS);

    for (int i = 0; i < ts_total / NPRODUCERS; i++)
        if (corio_loop_call_soon_threadsafe(the_loop, ts_cb, CORIO_INT(base + i)) ==
            -1)
            __atomic_fetch_add(&ts_errors, 1, __ATOMIC_RELAXED);
    return NULL;
}

Test(loop, threadsafe_from_four_threads_all_run_once_on_the_loop, .timeout = 30)
{
    corio_loop *loop = loop_open();
    pthread_t th[NPRODUCERS];
    corio_handle *guard = NULL;

    the_loop = loop;
    loop_thread = pthread_self();
    ts_total = NPRODUCERS * SCALE(10000);
    ts_seen = calloc((size_t)ts_total, 1);
    cr_assert_not_null(ts_seen);
    /* If some callback were lost, the guard stops the loop anyway. */
    cr_assert_eq(
        corio_loop_call_later(loop, 20 * CORIO_SECOND, stop_cb, loop, &guard), 0);
    for (int i = 0; i < NPRODUCERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, producer, CORIO_INT(i)), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    for (int i = 0; i < NPRODUCERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(ts_errors, 0);
    cr_assert_eq(ts_received, ts_total, "received %d of %d", ts_received,
                 ts_total);
    cr_assert_eq(ts_off_thread, 0, "a callback ran on another thread");
    for (int i = 0; i < ts_total; i++)
        cr_assert_eq(ts_seen[i], 1, "callback %d ran %d times", i, ts_seen[i]);
    cr_assert_eq(corio_handle_cancel(guard), 0);
    corio_handle_free(guard);
    free(ts_seen);
    loop_done(loop);
}

/* The loop sleeps (its only timer is 20 s away); another thread posts a
 * callback every 30 ms. Each wakes the loop soon: well within the slack,
 * where a missed wake-up would wait for the timer. */
#define WAKE_ROUNDS 5

static int64_t posted_at, worst_latency;
static int wakes;

static void wake_cb(void *arg)
{
    int64_t lat = corio_now() - __atomic_load_n(&posted_at, __ATOMIC_ACQUIRE);

    (void)arg;
    if (lat > worst_latency)
        worst_latency = lat;
    if (++wakes == WAKE_ROUNDS)
        corio_loop_stop(the_loop);
}

static void *waker(void *arg)
{
    (void)arg;
    for (int i = 0; i < WAKE_ROUNDS; i++) {
        msleep(30);
        __atomic_store_n(&posted_at, corio_now(), __ATOMIC_RELEASE);
        if (corio_loop_call_soon_threadsafe(the_loop, wake_cb, NULL) == -1)
            __atomic_fetch_add(&ts_errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

Test(loop, threadsafe_wakes_a_sleeping_loop_quickly, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *guard = NULL;
    pthread_t th;

    the_loop = loop;
    cr_assert_eq(
        corio_loop_call_later(loop, 20 * CORIO_SECOND, stop_cb, loop, &guard), 0);
    cr_assert_eq(pthread_create(&th, NULL, waker, NULL), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    pthread_join(th, NULL);
    cr_assert_eq(ts_errors, 0);
    cr_assert_eq(wakes, WAKE_ROUNDS);
    /* A missed wake-up would wait for the guard, 20 s away. */
    cr_assert_lt(worst_latency, SLACK_MS * MS, "worst wake-up latency %lld us",
                 (long long)(worst_latency / 1000));
    cr_assert_eq(corio_handle_cancel(guard), 0);
    corio_handle_free(guard);
    loop_done(loop);
}

/* corio_loop_run_until_idle runs callbacks posted with corio_loop_call_soon_threadsafe
 * before it returns: one posted by another thread before run, and one posted
 * by a callback of the running loop (both sit in the loop's thread-safe
 * queue, not in its ready queue). */
static void post_threadsafe(void *arg)
{
    note(CORIO_INT(1));
    cr_assert_eq(corio_loop_call_soon_threadsafe(arg, note, CORIO_INT(2)), 0);
}

static void *post_from_thread(void *arg)
{
    if (corio_loop_call_soon_threadsafe(arg, note, CORIO_INT(9)) == -1)
        return CORIO_INT(-1);
    return NULL;
}

Test(loop, run_runs_threadsafe_callbacks, .timeout = 30)
{
    corio_loop *loop = loop_open();
    pthread_t th;
    void *rc = CORIO_INT(1);

    /* Posted by another thread before run. */
    cr_assert_eq(pthread_create(&th, NULL, post_from_thread, loop), 0);
    pthread_join(th, &rc);
    cr_assert_null(rc);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 1, "run returned before the posted callback ran");
    cr_assert_eq(order[0], 9);
    /* Posted from a callback while run runs. */
    norder = 0;
    cr_assert_eq(corio_loop_call_soon(loop, post_threadsafe, loop, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(norder, 2, "run returned before the posted callback ran");
    cr_assert_eq(order[1], 2);
    loop_done(loop);
}

/* CORIO_ECLOSED is what a post gets once the loop is closing, a call's
 * and a future's: a task cancelled by corio_loop_close posts from its
 * cleanup. */
struct closing {
    corio_loop *loop;
    corio_future *f;    /* of loop */
    int rc[2], err[2];  /* the call's, the future's */
};

static void *post_in_cleanup(void *arg)
{
    struct closing *c = arg;

    if (corio_sleep(10 * CORIO_SECOND) == 0)
        return NULL;
    errno = 0;
    c->rc[0] = corio_loop_call_soon_threadsafe(c->loop, note, CORIO_INT(1));
    c->err[0] = errno;
    errno = 0;
    c->rc[1] = corio_future_set_result_threadsafe(c->f, NULL);
    c->err[1] = errno;
    return NULL;
}

Test(loop, threadsafe_while_closing_is_eclosed, .timeout = 30)
{
    struct closing c = {.loop = loop_open(), .f = corio_future_new()};
    corio_task *t = corio_task_spawn(post_in_cleanup, &c, NULL);

    cr_assert_not_null(c.f);
    cr_assert_not_null(t);
    cr_assert_eq(corio_task_detach(t), 0);
    cr_assert_eq(corio_sleep(0), 0); /* it starts and parks */
    loop_done(c.loop);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(c.rc[i], -1);
        cr_assert_eq(c.err[i], CORIO_ECLOSED, "errno %s",
                     corio_err_name(c.err[i]));
    }
    cr_assert_eq(norder, 0);
    cr_assert_eq(corio_future_free(c.f), 0);
}

Test(loop, threadsafe_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();

    expect_fail(corio_loop_call_soon_threadsafe(loop, NULL, NULL), EINVAL);
    expect_fail(corio_loop_call_soon_threadsafe(NULL, note, NULL), EINVAL);
    loop_done(loop);
}

/* ---- Waiting on file descriptors ----------------------------------------- */

static int fds[2];

static void pipe_open(void)
{
    cr_assert_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void pipe_close(void)
{
    cr_assert_eq(corio_fd_forget(fds[0]), 0);
    cr_assert_eq(corio_fd_forget(fds[1]), 0);
    close(fds[0]);
    close(fds[1]);
}

static corio_task *spawn(corio_fn fn, void *arg)
{
    corio_task *t = corio_task_spawn(fn, arg, NULL);

    cr_assert_not_null(t, "corio_task_spawn: %s", corio_strerror(errno));
    return t;
}

/* Returns what corio_fd_wait returned, or -errno. */
static void *wait_reader(void *arg)
{
    int rc = corio_fd_wait(fds[0], CORIO_READ, (int64_t)(intptr_t)arg);

    return CORIO_INT(rc == -1 ? -errno : rc);
}

static void *write_later(void *arg)
{
    if (corio_sleep(20 * MS) == -1)
        return CORIO_INT(-errno);
    return CORIO_INT(write(fds[1], "x", 1));
}

Test(loop, wait_fd_readable_after_a_write_from_another_task, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *r, *w;
    void *rres = NULL, *wres = NULL;
    char c;

    pipe_open();
    r = spawn(wait_reader, CORIO_INT(-1));
    w = spawn(write_later, NULL);
    cr_assert_eq(corio_task_join(r, &rres), 0);
    cr_assert_eq(corio_task_join(w, &wres), 0);
    cr_assert_eq(CORIO_TO_INT(wres), 1);
    cr_assert_eq(CORIO_TO_INT(rres), CORIO_READ, "wait_fd gave %d",
                 (int)CORIO_TO_INT(rres));
    cr_assert_eq(read(fds[0], &c, 1), 1);
    pipe_close();
    loop_done(loop);
}

Test(loop, wait_fd_on_the_thread_stack_drives_the_loop, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *w;
    int64_t t0 = corio_now();

    pipe_open();
    w = spawn(write_later, NULL);
    cr_assert_eq(corio_fd_wait(fds[0], CORIO_READ, -1), CORIO_READ);
    cr_assert_geq(elapsed_ms(t0), 20);
    cr_assert_eq(corio_task_join(w, NULL), 0);
    pipe_close();
    loop_done(loop);
}

Test(loop, wait_fd_writable, .timeout = 30)
{
    corio_loop *loop = loop_open();

    pipe_open();
    cr_assert_eq(corio_fd_wait(fds[1], CORIO_WRITE, corio_now() + CORIO_SECOND),
                 CORIO_WRITE);
    /* Asking for both: only what is ready is reported. */
    cr_assert_eq(write(fds[1], "x", 1), 1);
    int rc = corio_fd_wait(fds[0], CORIO_READ | CORIO_WRITE,
                           corio_now() + CORIO_SECOND);
    cr_assert_eq(rc, CORIO_READ, "read end: %d", rc);
    pipe_close();
    loop_done(loop);
}

Test(loop, wait_fd_deadline_is_etimedout, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t t0 = corio_now();
    corio_task *r;
    void *res = NULL;

    pipe_open();
    expect_fail(corio_fd_wait(fds[0], CORIO_READ, t0 + 50 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_lt(elapsed_ms(t0), 50 + SLACK_MS);
    /* The same in a task, and a deadline already past fails at once. */
    r = spawn(wait_reader, CORIO_INT(corio_now() + 30 * MS));
    cr_assert_eq(corio_task_join(r, &res), 0);
    cr_assert_eq(CORIO_TO_INT(res), -ETIMEDOUT);
    t0 = corio_now();
    expect_fail(corio_fd_wait(fds[0], CORIO_READ, t0 - MS), ETIMEDOUT);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS);
    /* The waiter left: a new wait is not EBUSY. */
    cr_assert_eq(write(fds[1], "x", 1), 1);
    cr_assert_eq(corio_fd_wait(fds[0], CORIO_READ, corio_now() + CORIO_SECOND),
                 CORIO_READ);
    pipe_close();
    loop_done(loop);
}

Test(loop, wait_fd_ebadf_einval, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int closed;

    pipe_open();
    expect_fail(corio_fd_wait(-1, CORIO_READ, -1), EBADF);
    expect_fail(corio_fd_wait(-5, CORIO_WRITE, 0), EBADF);
    closed = dup(fds[0]);
    cr_assert_geq(closed, 0);
    close(closed);
    expect_fail(corio_fd_wait(closed, CORIO_READ, corio_now() + 10 * MS),
                EBADF);
    expect_fail(corio_fd_wait(fds[0], 0, -1), EINVAL);
    expect_fail(corio_fd_wait(fds[0], 4, -1), EINVAL);
    expect_fail(corio_fd_wait(fds[0], CORIO_READ | 8, -1), EINVAL);
    pipe_close();
    loop_done(loop);
}

static void *second_reader(void *arg)
{
    int rc;

    (void)arg;
    corio_sleep(0); /* let the first reader park */
    rc = corio_fd_wait(fds[0], CORIO_READ, corio_now() + CORIO_SECOND);
    if (rc == -1)
        rc = -errno;
    /* Unblock the first reader. */
    if (write(fds[1], "x", 1) != 1)
        return CORIO_INT(-1000);
    return CORIO_INT(rc);
}

Test(loop, wait_fd_second_reader_is_ebusy, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *a, *b;
    void *ra = NULL, *rb = NULL;

    pipe_open();
    a = spawn(wait_reader, CORIO_INT(corio_now() + 5 * CORIO_SECOND));
    b = spawn(second_reader, NULL);
    cr_assert_eq(corio_task_join(b, &rb), 0);
    cr_assert_eq(corio_task_join(a, &ra), 0);
    cr_assert_eq(CORIO_TO_INT(rb), -EBUSY, "second reader got %d",
                 (int)CORIO_TO_INT(rb));
    cr_assert_eq(CORIO_TO_INT(ra), CORIO_READ);
    pipe_close();
    loop_done(loop);
}

static void *forget_later(void *arg)
{
    (void)arg;
    if (corio_sleep(20 * MS) == -1)
        return CORIO_INT(-errno);
    return CORIO_INT(corio_fd_forget(fds[0]));
}

Test(loop, fd_forget_wakes_the_waiter_with_ebadf, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *r, *f;
    void *res = NULL, *fres = NULL;
    int64_t t0 = corio_now();

    pipe_open();
    r = spawn(wait_reader, CORIO_INT(-1));
    f = spawn(forget_later, NULL);
    cr_assert_eq(corio_task_join(r, &res), 0);
    cr_assert_eq(corio_task_join(f, &fres), 0);
    cr_assert_eq(CORIO_TO_INT(fres), 0);
    cr_assert_eq(CORIO_TO_INT(res), -EBADF, "waiter got %d",
                 (int)CORIO_TO_INT(res));
    cr_assert_lt(elapsed_ms(t0), 20 + SLACK_MS);
    /* Forgotten, the fd can be waited on again (it is registered anew). */
    cr_assert_eq(write(fds[1], "x", 1), 1);
    cr_assert_eq(corio_fd_wait(fds[0], CORIO_READ, corio_now() + CORIO_SECOND),
                 CORIO_READ);
    cr_assert_eq(corio_fd_forget(12345), 0, "an unknown fd is fine");
    pipe_close();
    loop_done(loop);
}

Test(loop, run_waits_for_fd_waiters, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *r, *w;
    void *res = NULL;

    pipe_open();
    r = spawn(wait_reader, CORIO_INT(-1));
    w = spawn(write_later, NULL);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert(corio_task_is_done(r),
              "run returned while a task waited on an fd");
    cr_assert_eq(corio_task_join(r, &res), 0);
    cr_assert_eq(CORIO_TO_INT(res), CORIO_READ);
    cr_assert_eq(corio_task_join(w, NULL), 0);
    pipe_close();
    loop_done(loop);
}

/* ---- Fairness: a ping-pong does not starve timers or fds ------------------
 * Two tasks hand a value back and forth as fast as they can: each hand-off
 * parks one and switches straight to the other (corio__task_park), and the
 * loop skips its poll while they are ready (CORIO__SPIN_MAX). A callback
 * timer, a sleeping task and a task waiting on a timerfd must still run on
 * time. The ping-pong stops by itself after PINGPONG_MS at most. */

#define PINGPONG_MS 2000

static corio_chan *ping_ch, *pong_ch;
static int pingpong_stop;
static long handoffs;
static int64_t timer_at, sleeper_at, timerfd_at;

static void *pinger(void *arg)
{
    int64_t until = corio_now() + PINGPONG_MS * MS;
    void *v = NULL;

    (void)arg;
    while (!pingpong_stop && corio_now() < until) {
        if (corio_chan_send(ping_ch, v, -1) == -1 ||
            corio_chan_recv(pong_ch, &v, -1) == -1)
            return CORIO_INT(-errno);
        handoffs++;
    }
    corio_chan_close(ping_ch);
    return NULL;
}

static void *ponger(void *arg)
{
    void *v;

    (void)arg;
    while (corio_chan_recv(ping_ch, &v, -1) == 0)
        if (corio_chan_send(pong_ch, v, -1) == -1)
            return CORIO_INT(-errno);
    return errno == CORIO_ECLOSED ? NULL : CORIO_INT(-errno);
}

static void stamp_timer(void *arg)
{
    (void)arg;
    timer_at = corio_now();
}

static void *sleep_10ms(void *arg)
{
    (void)arg;
    if (corio_sleep(10 * MS) == -1)
        return CORIO_INT(-errno);
    sleeper_at = corio_now();
    return NULL;
}

/* Wait on a timerfd due in 20 ms: only the poller can report it. */
static void *timerfd_20ms(void *arg)
{
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}};
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int rc;

    (void)arg;
    if (fd == -1 || timerfd_settime(fd, 0, &its, NULL) == -1)
        return CORIO_INT(-errno);
    rc = corio_fd_wait(fd, CORIO_READ, -1);
    timerfd_at = corio_now();
    corio_fd_forget(fd);
    close(fd);
    return CORIO_INT(rc == -1 ? -errno : rc);
}

Test(loop, a_ping_pong_does_not_starve_timers_or_fd_waiters, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_task *a, *b, *s, *f;
    void *ra = NULL, *rb = NULL, *rs = NULL, *rf = NULL;
    int64_t t0;

    ping_ch = corio_chan_new(1);
    pong_ch = corio_chan_new(1);
    cr_assert(ping_ch != NULL && pong_ch != NULL);
    a = spawn(pinger, NULL);
    b = spawn(ponger, NULL);
    t0 = corio_now();
    cr_assert_eq(corio_loop_call_later(loop, 10 * MS, stamp_timer, NULL, NULL),
                 0);
    s = spawn(sleep_10ms, NULL);
    f = spawn(timerfd_20ms, NULL);
    cr_assert_eq(corio_task_join(s, &rs), 0);
    cr_assert_eq(corio_task_join(f, &rf), 0);
    pingpong_stop = 1;
    cr_assert_eq(corio_task_join(a, &ra), 0);
    cr_assert_eq(corio_task_join(b, &rb), 0);
    corio_chan_free(ping_ch);
    corio_chan_free(pong_ch);
    loop_done(loop);
    cr_assert_eq(CORIO_TO_INT(ra), 0, "pinger: %s",
                 corio_strerror(-(int)CORIO_TO_INT(ra)));
    cr_assert_eq(CORIO_TO_INT(rb), 0, "ponger: %s",
                 corio_strerror(-(int)CORIO_TO_INT(rb)));
    cr_assert_eq(CORIO_TO_INT(rs), 0);
    cr_assert_eq(CORIO_TO_INT(rf), CORIO_READ);
    /* (valgrind makes a hand-off ~100 times slower: a handful shows it ran
     * beside the timers, which is the point) */
    cr_assert_gt(handoffs, 10, "the ping-pong hardly ran: %ld", handoffs);
    cr_assert(timer_at >= t0 + 10 * MS && timer_at < t0 + (10 + SLACK_MS) * MS,
              "the 10 ms timer fired after %lld ms",
              (long long)((timer_at - t0) / MS));
    cr_assert(sleeper_at >= t0 + 10 * MS &&
                  sleeper_at < t0 + (10 + SLACK_MS) * MS,
              "the 10 ms sleep ended after %lld ms",
              (long long)((sleeper_at - t0) / MS));
    cr_assert(timerfd_at >= t0 + 20 * MS &&
                  timerfd_at < t0 + (20 + SLACK_MS) * MS,
              "the 20 ms timerfd was seen after %lld ms",
              (long long)((timerfd_at - t0) / MS));
}

/* ---- A cancellation that arrives before the task parks ---------------------
 * A task that is running, or ready to run, is not waiting: the request
 * stays pending, and its next blocking call fails with ECANCELED at once
 * (not at that call's deadline). */

struct cancelled_early {
    corio_task *t;
    int yield_rc;           /* the sleep(0) during which it was cancelled */
    bool flagged;           /* corio_task_self_cancelled before blocking */
    int err;                /* the next blocking call's errno */
    int64_t took;           /* how long that call took */
};

static void *cancel_self_then_block(void *arg)
{
    struct cancelled_early *c = arg;
    int64_t t0;

    if (corio_task_cancel(corio_task_self()) != 1)
        return CORIO_INT(-1);
    c->flagged = corio_task_self_cancelled();
    t0 = corio_now();
    errno = 0;
    c->err = corio_sleep(5 * CORIO_SECOND) == -1 ? errno : 0;
    c->took = corio_now() - t0;
    return NULL;
}

/* Yields once; is cancelled while woken but not yet running again. */
static void *yield_then_block(void *arg)
{
    struct cancelled_early *c = arg;
    int64_t t0;

    c->yield_rc = corio_sleep(0);
    c->flagged = corio_task_self_cancelled();
    t0 = corio_now();
    errno = 0;
    c->err = corio_fd_wait(fds[0], CORIO_READ, corio_now() + 5 * CORIO_SECOND) ==
                     -1
                 ? errno
                 : 0;
    c->took = corio_now() - t0;
    return NULL;
}

/* Runs first, yields, and wakes before the victim does: then the victim is
 * ready (its sleep(0) done) but has not run, and is not waiting. */
static void *canceller(void *arg)
{
    struct cancelled_early *c = arg;

    if (corio_sleep(0) == -1)
        return CORIO_INT(-errno);
    return CORIO_INT(corio_task_cancel(c->t));
}

Test(loop, a_cancel_before_parking_fails_the_next_wait_at_once, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct cancelled_early self = {0}, queued = {0};
    corio_task *t, *c;
    void *rc = NULL;

    pipe_open();
    t = spawn(cancel_self_then_block, &self);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    c = spawn(canceller, &queued);
    queued.t = spawn(yield_then_block, &queued);
    cr_assert_eq(corio_task_join(c, &rc), 0);
    cr_assert_eq(CORIO_TO_INT(rc), 1, "the victim was not alive to cancel");
    expect_fail(corio_task_join(queued.t, NULL), ECANCELED);
    pipe_close();
    loop_done(loop);
    cr_assert(self.flagged);
    cr_assert_eq(self.err, ECANCELED, "errno %d", self.err);
    cr_assert_lt(self.took, SLACK_MS * MS, "the sleep took %lld ms",
                 (long long)(self.took / MS));
    cr_assert_eq(queued.yield_rc, 0, "the cancel reached the sleep(0)");
    cr_assert(queued.flagged);
    cr_assert_eq(queued.err, ECANCELED, "errno %d", queued.err);
    cr_assert_lt(queued.took, SLACK_MS * MS, "the wait took %lld ms",
                 (long long)(queued.took / MS));
}

/* ---- The fd table grows under parked waiters ------------------------------
 * The loop's per-fd table is indexed by fd and grows by realloc (64, 128,
 * ... entries). Waiters parked on low fds must survive the table moving
 * under them when a wait on a high fd (dup2'd above 64, 128 and 1024) grows
 * it: each still wakes on its own fd's event, and one that times out or is
 * cancelled after the move unlinks itself from the new table. */

enum { NHIGH = 5 };

struct high_wait {
    int fd;
    int64_t deadline;
    int rc;                 /* the events, or -errno */
};

static void *wait_high(void *arg)
{
    struct high_wait *w = arg;
    int rc = corio_fd_wait(w->fd, CORIO_READ, w->deadline);

    w->rc = rc == -1 ? -errno : rc;
    return NULL;
}

/* The first fd number from n up that is not open (dup3 would close it). */
static int free_fd_from(int n)
{
    while (fcntl(n, F_GETFD) != -1)
        n++;
    return n;
}

Test(loop, waiters_survive_the_fd_table_growing_under_them, .timeout = 30)
{
    static const int at[NHIGH] = {0, 40, 100, 200, 1100};
    corio_loop *loop = loop_open();
    struct high_wait w[NHIGH];
    int wr[NHIGH], p[2];
    corio_task *t[NHIGH];
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 1200) {
        rl.rlim_cur = rl.rlim_max < 1200 ? rl.rlim_max : 1200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 1200)
        cr_skip_test("RLIMIT_NOFILE below 1200");
    /* One pipe per waiter; the first stays where pipe2 put it, the others
     * move up: the table has 64 entries after the first two waits, then
     * 128, 256 and 2048. The one on fd 40 has a deadline: it times out
     * after the table has moved three times. */
    for (int i = 0; i < NHIGH; i++) {
        cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        w[i].fd = p[0];
        if (at[i] != 0) {
            int to = free_fd_from(at[i]);

            cr_assert_eq(dup3(p[0], to, O_CLOEXEC), to);
            close(p[0]);
            w[i].fd = to;
        }
        wr[i] = p[1];
        w[i].deadline = i == 1 ? corio_now() + 100 * MS : -1;
        w[i].rc = 1000;
    }
    /* Park each before the next grows the table. */
    for (int i = 0; i < NHIGH; i++) {
        t[i] = spawn(wait_high, &w[i]);
        cr_assert_eq(corio_sleep(MS), 0);
        cr_assert_eq(w[i].rc, 1000, "waiter %d did not park", i);
    }
    /* Wake the high ones first, the low one last; cancel the fd 200 one. */
    cr_assert_eq(write(wr[4], "x", 1), 1);
    cr_assert_eq(write(wr[2], "x", 1), 1);
    cr_assert_eq(corio_task_cancel(t[3]), 1);
    cr_assert_eq(write(wr[0], "x", 1), 1);
    for (int i = 0; i < NHIGH; i++) /* the cancelled one ends CANCELLED */
        cr_assert_eq(corio_task_join(t[i], NULL), i == 3 ? -1 : 0);
    for (int i = 0; i < NHIGH; i++) {
        corio_fd_forget(w[i].fd);
        close(w[i].fd);
        close(wr[i]);
    }
    loop_done(loop);
    cr_assert_eq(w[0].rc, CORIO_READ, "fd %d: %d", w[0].fd, w[0].rc);
    cr_assert_eq(w[1].rc, -ETIMEDOUT, "fd %d: %d", w[1].fd, w[1].rc);
    cr_assert_eq(w[2].rc, CORIO_READ, "fd %d: %d", w[2].fd, w[2].rc);
    cr_assert_eq(w[3].rc, -ECANCELED, "fd %d: %d", w[3].fd, w[3].rc);
    cr_assert_eq(w[4].rc, CORIO_READ, "fd %d: %d", w[4].fd, w[4].rc);
    cr_assert_geq(w[4].fd, 1024);
}

/* ---- The peer's end arrives with the last data ----------------------------
 * corio__read_fd skips the read that would end in EAGAIN after a short
 * read of a TCP socket, and waits for the poller's next edge instead. A
 * peer that writes and closes at once sends its FIN with (or right after)
 * the last bytes: the reader must get every byte, then 0, never wait for
 * an edge that already came. Over loopback TCP, the reader parked before
 * the bytes come (one edge for data and end) or not (the bytes and the
 * end already there at its first read), small and large. */

struct eof_case {
    size_t size;            /* bytes the peer sends before closing */
    bool reader_first;      /* the reader parks before the peer writes */
};

struct eof_read {
    int fd;
    size_t got;
    int last;               /* the last read's result: 0, or -errno */
};

static void *read_to_end(void *arg)
{
    struct eof_read *r = arg;
    char buf[4096];
    ssize_t n;

    while ((n = corio_fd_read(r->fd, buf, sizeof(buf),
                              corio_now() + 2 * CORIO_SECOND)) > 0)
        r->got += (size_t)n;
    r->last = n == 0 ? 0 : -errno;
    return NULL;
}

static void eof_run(const struct eof_case *c)
{
    corio_loop *loop = loop_open();
    struct eof_read r = {0};
    corio_addr a;
    char *data = calloc(1, c->size + 1);
    int lfd, cfd;
    corio_task *t = NULL;

    cr_assert_not_null(data);
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(corio_socket_name(lfd, &a), 0);
    cfd = corio_socket_connect_addr(&a, NULL, corio_now() + CORIO_SECOND);
    cr_assert_geq(cfd, 0);
    r.fd = corio_socket_accept(lfd, NULL, corio_now() + CORIO_SECOND);
    cr_assert_geq(r.fd, 0);
    if (c->reader_first) {
        t = spawn(read_to_end, &r);
        cr_assert_eq(corio_sleep(MS), 0); /* it parks on an empty socket */
    }
    /* write and close at once: the FIN follows the last segment */
    cr_assert_eq(corio_fd_write(cfd, data, c->size, -1), (ssize_t)c->size);
    cr_assert_eq(corio_fd_close(cfd), 0);
    if (!c->reader_first)
        t = spawn(read_to_end, &r);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    corio_fd_close(r.fd);
    corio_fd_close(lfd);
    free(data);
    loop_done(loop);
    cr_assert_eq(r.last, 0, "the last read failed: %s",
                 corio_strerror(-r.last));
    cr_assert_eq(r.got, c->size, "read %zu of %zu bytes", r.got, c->size);
}

Test(loop, peer_end_with_the_last_data_small_reader_parked, .timeout = 30)
{
    eof_run(&(struct eof_case){100, true});
}

Test(loop, peer_end_with_the_last_data_small_already_there, .timeout = 30)
{
    eof_run(&(struct eof_case){100, false});
}

Test(loop, peer_end_with_the_last_data_large_reader_parked, .timeout = 30)
{
    eof_run(&(struct eof_case){100 * 1000 + 7, true});
}

Test(loop, peer_end_with_the_last_data_large_already_there, .timeout = 30)
{
    eof_run(&(struct eof_case){100 * 1000 + 7, false});
}

/* ---- The timer heap under load ------------------------------------------- */

/* 10,000 timers armed with call_at at random times (many equal), with random
 * cancellations mixed into the arming and into the callbacks. Every timer
 * not cancelled fires exactly once, in (time, arming order); no cancelled
 * one fires. */
struct stimer {
    corio_handle *h;
    int64_t when;
    int fired;
    int cancelled;
};

static struct stimer *st;
static int nst, last_idx = -1, st_order_errors, st_fired;
static unsigned st_rand = 12345;

static unsigned next_rand(void)
{
    st_rand = st_rand * 1103515245u + 12345u;
    return st_rand >> 8;
}

static void stress_cb(void *arg)
{
    int i = (int)(intptr_t)arg;

    st[i].fired++;
    st_fired++;
    if (last_idx >= 0) {
        struct stimer *p = &st[last_idx];

        if (p->when > st[i].when || (p->when == st[i].when && last_idx > i))
            st_order_errors++;
    }
    last_idx = i;
    /* One callback in eight cancels a random timer: pending ones leave the
     * heap while it is being emptied. */
    if (next_rand() % 8 == 0) {
        int j = (int)(next_rand() % (unsigned)nst);

        if (corio_handle_cancel(st[j].h) == 0)
            st[j].cancelled = 1;
        else
            cr_assert(st[j].fired || st[j].cancelled,
                      "cancel of pending timer %d failed", j);
    }
}

Test(loop, heap_stress_random_insert_and_cancel, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int64_t base;

    nst = SCALE(10000);
    st = calloc((size_t)nst, sizeof(*st));
    cr_assert_not_null(st);
    base = corio_now() + 20 * MS;
    for (int i = 0; i < nst; i++) {
        /* 500 distinct times over 100 ms: about 20 timers share each. */
        st[i].when = base + (int64_t)(next_rand() % 500) * 200 * CORIO_USEC;
        cr_assert_eq(
            corio_loop_call_at(loop, st[i].when, stress_cb, CORIO_INT(i), &st[i].h),
            0);
        if (next_rand() % 3 == 0) {
            int j = (int)(next_rand() % (unsigned)(i + 1));

            if (corio_handle_cancel(st[j].h) == 0)
                st[j].cancelled = 1;
            else
                cr_assert(st[j].cancelled);
        }
    }
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(st_order_errors, 0, "%d timers fired out of order",
                 st_order_errors);
    for (int i = 0; i < nst; i++) {
        if (st[i].cancelled)
            cr_assert_eq(st[i].fired, 0, "cancelled timer %d fired", i);
        else
            cr_assert_eq(st[i].fired, 1, "timer %d fired %d times", i,
                         st[i].fired);
        cr_assert_eq(corio_handle_is_cancelled(st[i].h), st[i].cancelled != 0);
        corio_handle_free(st[i].h);
    }
    cr_assert_gt(st_fired, nst / 3);
    free(st);
    loop_done(loop);
}

/* ========================================================================
 * Bugs: scenarios the current core gets wrong. Each fails before its fix.
 * ======================================================================== */

/* BUG 1 (fails under ASan and valgrind: heap-use-after-free). A callback
 * that frees its own handle -- the usual way to release a one-shot timer's
 * handle -- frees it inside handle_run, which reads h->owned afterwards. */
struct self_free {
    corio_handle *h;
    int ran;
};

static void free_own_handle(void *arg)
{
    struct self_free *s = arg;

    s->ran++;
    expect_fail(corio_handle_cancel(s->h), EALREADY);
    corio_handle_free(s->h);
}

Test(loop_bug, callback_frees_its_own_handle, .timeout = 30)
{
    corio_loop *loop = loop_open();
    struct self_free a = {0}, b = {0};

    cr_assert_eq(corio_loop_call_soon(loop, free_own_handle, &a, &a.h), 0);
    cr_assert_eq(corio_loop_call_later(loop, MS, free_own_handle, &b, &b.h), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(a.ran, 1);
    cr_assert_eq(b.ran, 1);
    loop_done(loop);
}

/* BUG 3 (the ETIMEDOUT is seen in every build). corio_fd_wait learns
 * readiness only from epoll edges (EPOLLET) and clears what it reports, so
 * it misses readiness that is still there: a second wait for a pipe that is
 * still writable, or for data left after a partial read, blocks until the
 * deadline (or forever) although the fd is ready. And a first wait with a
 * deadline already past (a poll) fails ETIMEDOUT on a ready fd, since the fd
 * is registered but epoll not asked. */
Test(loop_bug, wait_fd_second_wait_on_a_still_writable_fd, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int rc;

    pipe_open();
    cr_assert_eq(corio_fd_wait(fds[1], CORIO_WRITE, corio_now() + CORIO_SECOND),
                 CORIO_WRITE);
    errno = 0;
    rc = corio_fd_wait(fds[1], CORIO_WRITE, corio_now() + 300 * MS);
    cr_assert_eq(rc, CORIO_WRITE, "pipe still writable: got %d (%s)", rc,
                 corio_strerror(errno));
    pipe_close();
    loop_done(loop);
}

Test(loop_bug, wait_fd_after_a_partial_read, .timeout = 30)
{
    corio_loop *loop = loop_open();
    char c;
    int rc;

    pipe_open();
    cr_assert_eq(write(fds[1], "ab", 2), 2);
    cr_assert_eq(corio_fd_wait(fds[0], CORIO_READ, corio_now() + CORIO_SECOND),
                 CORIO_READ);
    cr_assert_eq(read(fds[0], &c, 1), 1);
    errno = 0;
    rc = corio_fd_wait(fds[0], CORIO_READ, corio_now() + 300 * MS);
    cr_assert_eq(rc, CORIO_READ, "one byte is left: got %d (%s)", rc,
                 corio_strerror(errno));
    pipe_close();
    loop_done(loop);
}

Test(loop_bug, wait_fd_poll_with_past_deadline_on_a_ready_fd, .timeout = 30)
{
    corio_loop *loop = loop_open();
    int rc;

    pipe_open();
    cr_assert_eq(write(fds[1], "a", 1), 1);
    errno = 0;
    rc = corio_fd_wait(fds[0], CORIO_READ, 0);
    cr_assert_eq(rc, CORIO_READ, "fd is readable: got %d (%s)", rc,
                 corio_strerror(errno));
    pipe_close();
    loop_done(loop);
}

/* BUG 4 (fails in every build; UBSan also reports the signed overflow).
 * corio_loop_call_later computes corio_now() + delay_ns without saturating: a
 * "never" delay such as INT64_MAX wraps to a time far in the past, so the
 * callback fires at once; and corio__loop_run_once then computes the poll
 * timeout as min->when - corio_now(), which wraps again to a huge positive
 * value: the loop sleeps "forever" past its other timers. (call_at with a
 * very negative time hangs the same way.) A watchdog thread ends the hang so
 * that the test fails instead of timing out. */
static int watchdog_quit;

static void *watchdog(void *arg)
{
    /* Twice the bound the test asserts: a hang shows as a failure. */
    int64_t until = corio_now() + 2 * (20 + SLACK_MS) * MS;

    while (corio_now() < until) {
        if (__atomic_load_n(&watchdog_quit, __ATOMIC_ACQUIRE))
            return NULL;
        msleep(10);
    }
    if (corio_loop_call_soon_threadsafe(arg, stop_cb, arg) == -1)
        return CORIO_INT(-1);
    return NULL;
}

Test(loop_bug, call_later_huge_delay_does_not_wrap, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_handle *h = NULL;
    int64_t t0 = corio_now(), took;
    pthread_t th;

    cr_assert_eq(corio_loop_call_later(loop, INT64_MAX, note, CORIO_INT(1), &h), 0);
    cr_assert_eq(corio_loop_call_later(loop, 20 * MS, stop_cb, loop, NULL), 0);
    cr_assert_eq(pthread_create(&th, NULL, watchdog, loop), 0);
    cr_assert_eq(corio_loop_run_forever(loop), 0);
    took = elapsed_ms(t0);
    __atomic_store_n(&watchdog_quit, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    corio_handle_cancel(h);
    corio_handle_free(h);
    loop_done(loop); /* before asserting: no leak on failure */
    cr_assert_eq(norder, 0, "a callback due in 292 years ran now");
    cr_assert_lt(took, 20 + SLACK_MS, "the 20 ms timer fired after %lld ms",
                 (long long)took);
}

/* BUG 5. corio_loop_run_until_idle (and run_forever) make the loop they run the
 * thread's current loop and never restore the previous one (enter() sets
 * current_loop). After running a second loop, corio_loop_current(),
 * corio_task_spawn(NULL attr), corio_future_new() and every blocking call use
 * that loop; and once it is closed the thread has no current loop at all,
 * so the next corio_loop_current() silently makes a third one. asyncio's
 * run_until_complete sets the running loop only while it runs. */
Test(loop_bug, running_another_loop_keeps_the_current_loop, .timeout = 30)
{
    corio_loop *a = loop_open();
    corio_loop *b = corio_loop_new();
    corio_loop *after_run;

    cr_assert_not_null(b);
    cr_assert_eq(corio_loop_current(), a);
    cr_assert_eq(corio_loop_call_soon(b, note, CORIO_INT(1), NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(b), 0);
    cr_assert_eq(norder, 1);
    after_run = corio_loop_current();
    loop_done(b);
    loop_done(a); /* both closed before asserting: no leak on failure */
    cr_assert_eq(after_run, a, "running b made it the current loop");
}

/* BUG 6. Calls taking a loop crashed on NULL. run, run_forever and stop fail
 * with EINVAL; the callbacks' calls too; is_running says no, close is a
 * no-op and the clock of no loop is corio_now() (as the header says). */
Test(loop_bug, every_loop_call_survives_a_null_loop, .timeout = 30)
{
    int64_t t0 = corio_now();
    corio_handle *h = NULL;

    expect_fail(corio_loop_run_until_idle(NULL), EINVAL);
    expect_fail(corio_loop_run_forever(NULL), EINVAL);
    expect_fail(corio_loop_stop(NULL), EINVAL);
    expect_fail(corio_loop_call_soon(NULL, note, NULL, &h), EINVAL);
    expect_fail(corio_loop_call_soon_threadsafe(NULL, note, NULL), EINVAL);
    cr_assert_null(h);
    cr_assert_not(corio_loop_is_running(NULL));
    cr_assert_eq(corio_loop_close(NULL), 0);
    cr_assert_geq(corio_loop_time(NULL), t0);
    cr_assert_leq(corio_loop_time(NULL), corio_now());
    cr_assert_eq(norder, 0);
}

/* BUG 7. corio_loop_close read pthread_getspecific(loop_key) even when the
 * key had never been made (no corio_loop_current() on a thread without a
 * loop yet): loop_key was then 0, another library's key, and close could
 * clear that library's value. The test makes sure key 0 exists (its own, or
 * borrowed from whoever made it), stores the loop's address in it, and
 * checks that closing the loop leaves it there. */
Test(loop_bug, close_leaves_other_thread_keys_alone, .timeout = 30)
{
    corio_loop *loop = corio_loop_new();
    pthread_key_t mine;
    void *old;

    cr_assert_not_null(loop);
    cr_assert_eq(pthread_key_create(&mine, NULL), 0); /* the lowest free */
    old = pthread_getspecific(0);
    cr_assert_eq(pthread_setspecific(0, loop), 0, "key 0 exists now");
    cr_assert_eq(corio_loop_close(loop), 0);
    cr_assert_eq(pthread_getspecific(0), (void *)loop,
                 "closing the loop cleared thread key 0");
    cr_assert_eq(pthread_setspecific(0, old), 0);
    cr_assert_eq(pthread_key_delete(mine), 0);
}

/* BUG 8. corio_task_join of a task of another loop hung: only the task's own
 * loop runs it, and the caller ran its own. From the thread's stack and from
 * a task, it fails with EINVAL and leaves the task alone; its own loop then
 * runs it, and joining it there works. */
static corio_task *foreign;

static void *return_arg(void *arg)
{
    return arg;
}

static void *join_foreign(void *arg)
{
    (void)arg;
    errno = 0;
    if (corio_task_join(foreign, NULL) == -1)
        return CORIO_INT(-errno);
    return CORIO_INT(0);
}

Test(loop_bug, join_of_another_loops_task_fails_with_einval, .timeout = 30)
{
    corio_loop *mine = loop_open();
    corio_loop *other = corio_loop_new();
    corio_task_attr attr = {.loop = NULL};
    void *res = NULL;

    cr_assert_not_null(other);
    attr.loop = other;
    foreign = corio_task_spawn(return_arg, CORIO_INT(5), &attr);
    cr_assert_not_null(foreign);
    /* From the thread's own stack, mine being the current loop. */
    expect_fail(corio_task_join(foreign, &res), EINVAL);
    cr_assert_null(res);
    /* From a task of mine. */
    cr_assert_eq(corio_task_join(spawn(join_foreign, NULL), &res), 0);
    cr_assert_eq(CORIO_TO_INT(res), -EINVAL);
    /* The task was left alone: its own loop runs it and joins it. */
    cr_assert_eq(corio_loop_set_current(other), 0);
    res = NULL;
    cr_assert_eq(corio_task_join(foreign, &res), 0);
    cr_assert_eq(CORIO_TO_INT(res), 5);
    cr_assert_eq(corio_loop_set_current(mine), 0);
    loop_done(other);
    loop_done(mine);
}
