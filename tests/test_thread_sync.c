/* tests/test_thread_sync.c -- the thread-safe lock, recursive lock,
 * condition, semaphore, event and barrier: their calls and errors, a
 * deadline on each, tasks parked on them while their loop runs other
 * tasks, and wake-ups from plain threads.
 *
 * Labelled "thread": scripts/test runs it under TSan too. Every test has the
 * same .timeout (see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "corio.h"
#include "corio/thread.h"
#include "timing.h"
#include "loop_test.h"
#include "thread_test.h"

#define MS CORIO_MSEC

/* Expect a wait to fail with ETIMEDOUT after about ms milliseconds. */
#define expect_timeout(call, ms)                                               \
    do {                                                                       \
        int64_t t0_ = corio_now();                                             \
        expect_fail(call, ETIMEDOUT);                                          \
        cr_assert_geq(elapsed_ms(t0_), (ms));                                  \
        cr_assert_lt(elapsed_ms(t0_), (ms) + test_slack_ms());                \
    } while (0)

/* ---- Locks ------------------------------------------------------------------ */

Test(thread_sync, tlock_calls_and_errors, .timeout = 30)
{
    corio_tlock *l = corio_tlock_new();

    cr_assert_not_null(l);
    cr_assert(!corio_tlock_is_locked(l));
    expect_fail(corio_tlock_release(l), EPERM);
    cr_assert_eq(corio_tlock_acquire(l, -1), 0);
    cr_assert(corio_tlock_is_locked(l));
    expect_fail(corio_tlock_try_acquire(l), EAGAIN);
    expect_timeout(corio_tlock_acquire(l, corio_now() + 40 * MS), 40);
    expect_fail(corio_tlock_acquire(l, 0), ETIMEDOUT);
    expect_fail(corio_tlock_free(l), EBUSY);
    cr_assert_eq(corio_tlock_release(l), 0);
    cr_assert_eq(corio_tlock_try_acquire(l), 0);
    cr_assert_eq(corio_tlock_release(l), 0);
    cr_assert_eq(corio_tlock_free(l), 0);
    cr_assert_eq(corio_tlock_free(NULL), 0);
    expect_fail(corio_tlock_acquire(NULL, -1), EINVAL);
    expect_fail(corio_tlock_try_acquire(NULL), EINVAL);
    expect_fail(corio_tlock_release(NULL), EINVAL);
}

struct counter {
    corio_tlock *lock;
    long value;
    int rounds;
};

static void *count_up(void *arg)
{
    struct counter *c = arg;

    for (int i = 0; i < c->rounds; i++) {
        if (corio_tlock_acquire(c->lock, -1) == -1)
            return (void *)1;
        c->value++;
        corio_tlock_release(c->lock);
    }
    return NULL;
}

/* Threads on plain stacks and tasks on two loops increment one counter. */
static void *count_up_tasks(void *arg)
{
    corio_task *t[3];

    for (int i = 0; i < 3; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(count_up, arg, NULL));
    for (int i = 0; i < 3; i++) {
        void *res;

        cr_assert_eq(corio_task_join(t[i], &res), 0);
        cr_assert_null(res);
    }
    return NULL;
}

Test(thread_sync, tlock_mutual_exclusion, .timeout = 30)
{
    struct counter c = {.lock = corio_tlock_new(), .rounds = 5000};
    corio_thread *t[6];

    cr_assert_not_null(c.lock);
    for (int i = 0; i < 4; i++)
        t[i] = start(count_up, &c, false);
    t[4] = start(count_up_tasks, &c, true);
    t[5] = start(count_up_tasks, &c, true);
    for (int i = 0; i < 6; i++)
        cr_assert_null(join_free(t[i]));
    cr_assert_eq(c.value, 10L * 5000);
    cr_assert_eq(corio_tlock_free(c.lock), 0);
}

/* A task parked on a lock: its loop keeps running other tasks; a plain
 * thread's release wakes it. */
static atomic_int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (;;) {
        if (corio_sleep(5 * MS) == -1)
            return NULL;
        atomic_fetch_add(&ticks, 1);
    }
}

static void *hold_then_release(void *arg)
{
    msleep(150);
    cr_assert_eq(corio_tlock_release(arg), 0);
    return NULL;
}

static void *take_lock(void *arg)
{
    if (corio_tlock_acquire(arg, -1) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *parked_main(void *arg)
{
    corio_tlock *l = arg;
    corio_task *tick = corio_task_spawn(ticker, NULL, NULL);
    corio_task *waiter = corio_task_spawn(take_lock, l, NULL);
    corio_thread *releaser;
    int64_t t0 = corio_now();

    cr_assert_not_null(tick);
    cr_assert_not_null(waiter);
    releaser = start(hold_then_release, l, false);
    cr_assert_eq(corio_task_join(waiter, NULL), 0);
    cr_assert_geq(elapsed_ms(t0), 140);
    cr_assert_geq(atomic_load(&ticks), 5, "loop ran %d ticks",
                  atomic_load(&ticks));
    cr_assert(corio_tlock_is_locked(l));
    cr_assert_eq(corio_tlock_release(l), 0);
    join_free(releaser);
    cr_assert_eq(corio_task_cancel(tick), 1);
    expect_fail(corio_task_join(tick, NULL), ECANCELED);
    return NULL;
}

Test(thread_sync, task_parks_on_tlock_released_by_thread, .timeout = 30)
{
    corio_tlock *l = corio_tlock_new();

    cr_assert_not_null(l);
    cr_assert_eq(corio_tlock_acquire(l, -1), 0);
    atomic_store(&ticks, 0);
    cr_assert_eq(corio_run(parked_main, l, NULL), 0);
    cr_assert_eq(corio_tlock_free(l), 0);
}

static void *deadline_and_cancel_main(void *arg)
{
    corio_tlock *l = arg;
    corio_task *t;

    /* The lock is held by the test's thread. */
    expect_timeout(corio_tlock_acquire(l, corio_now() + 30 * MS), 30);
    t = corio_task_spawn(take_lock, l, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_sleep(10 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    return NULL;
}

Test(thread_sync, task_tlock_deadline_and_cancel, .timeout = 30)
{
    corio_tlock *l = corio_tlock_new();
    corio_thread *t;

    cr_assert_not_null(l);
    cr_assert_eq(corio_tlock_acquire(l, -1), 0);
    t = start(deadline_and_cancel_main, l, true);
    join_free(t);
    cr_assert_eq(corio_tlock_release(l), 0);
    cr_assert_eq(corio_tlock_free(l), 0);
}

/* Cancellation sticks: a cancelled task fails even on a free lock. */
static void *cancel_self_then_take(void *arg)
{
    cr_assert_eq(corio_task_cancel(corio_task_self()), 1);
    expect_fail(corio_tlock_acquire(arg, -1), ECANCELED);
    cr_assert(!corio_tlock_is_locked(arg));
    return NULL;
}

static void *sticky_main(void *arg)
{
    corio_task *t = corio_task_spawn(cancel_self_then_take, arg, NULL);

    cr_assert_not_null(t);
    (void)!corio_task_join(t, NULL);
    return NULL;
}

Test(thread_sync, cancellation_sticks, .timeout = 30)
{
    corio_tlock *l = corio_tlock_new();

    cr_assert_not_null(l);
    cr_assert_eq(corio_run(sticky_main, l, NULL), 0);
    cr_assert_eq(corio_tlock_free(l), 0);
}

/* In a loop callback a call that would wait fails with EDEADLK. */
static void try_in_callback(void *arg)
{
    expect_fail(corio_tlock_acquire(arg, -1), EDEADLK);
}

Test(thread_sync, callback_would_wait_edeadlk, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_tlock *l = corio_tlock_new();

    cr_assert_not_null(l);
    cr_assert_eq(corio_tlock_acquire(l, -1), 0);
    cr_assert_eq(corio_loop_call_soon(loop, try_in_callback, l, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(corio_tlock_release(l), 0);
    cr_assert_eq(corio_tlock_free(l), 0);
    loop_done(loop);
}

/* ---- Recursive locks ------------------------------------------------------- */

static void *rlock_other(void *arg)
{
    expect_fail(corio_rlock_release(arg), EPERM);
    expect_fail(corio_rlock_try_acquire(arg), EAGAIN);
    cr_assert(!corio_rlock_is_owned(arg));
    return NULL;
}

Test(thread_sync, rlock_recursion_and_owner, .timeout = 30)
{
    corio_rlock *l = corio_rlock_new();

    cr_assert_not_null(l);
    expect_fail(corio_rlock_release(l), EPERM);
    cr_assert_eq(corio_rlock_acquire(l, -1), 0);
    cr_assert_eq(corio_rlock_acquire(l, -1), 0);
    cr_assert_eq(corio_rlock_try_acquire(l), 0);
    cr_assert(corio_rlock_is_owned(l));
    join_free(start(rlock_other, l, false));
    expect_fail(corio_rlock_free(l), EBUSY);
    cr_assert_eq(corio_rlock_release(l), 0);
    cr_assert_eq(corio_rlock_release(l), 0);
    cr_assert(corio_rlock_is_owned(l));
    cr_assert_eq(corio_rlock_release(l), 0);
    cr_assert(!corio_rlock_is_owned(l));
    expect_fail(corio_rlock_release(l), EPERM);
    cr_assert_eq(corio_rlock_free(l), 0);
    cr_assert_eq(corio_rlock_free(NULL), 0);
    expect_fail(corio_rlock_acquire(NULL, -1), EINVAL);
}

/* The owner is the task: another task of the same thread waits. */
static void *rlock_second_task(void *arg)
{
    expect_fail(corio_rlock_try_acquire(arg), EAGAIN);
    if (corio_rlock_acquire(arg, -1) == -1)
        return corio_task_fail(errno);
    cr_assert_eq(corio_rlock_release(arg), 0);
    return NULL;
}

static void *rlock_tasks_main(void *arg)
{
    corio_task *t;

    cr_assert_eq(corio_rlock_acquire(arg, -1), 0);
    t = corio_task_spawn(rlock_second_task, arg, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    cr_assert(!corio_task_is_done(t));
    cr_assert_eq(corio_rlock_release(arg), 0);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    return NULL;
}

Test(thread_sync, rlock_owned_by_task, .timeout = 30)
{
    corio_rlock *l = corio_rlock_new();

    cr_assert_not_null(l);
    cr_assert_eq(corio_run(rlock_tasks_main, l, NULL), 0);
    cr_assert_eq(corio_rlock_free(l), 0);
}

/* ---- Conditions ------------------------------------------------------------- */

struct box {
    corio_tlock *lock;
    corio_tcond *cond;
    int items;
    int taken;
};

static void *box_consumer(void *arg)
{
    struct box *b = arg;

    if (corio_tlock_acquire(b->lock, -1) == -1)
        return corio_task_fail(errno);
    while (b->items == 0) {
        if (corio_tcond_wait(b->cond, corio_now() + 5 * CORIO_SECOND) == -1) {
            corio_tlock_release(b->lock);
            return corio_task_fail(errno);
        }
    }
    b->items--;
    b->taken++;
    corio_tlock_release(b->lock);
    return NULL;
}

static void *box_tasks(void *arg)
{
    corio_task *t[2];

    for (int i = 0; i < 2; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(box_consumer, arg, NULL));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_sync, tcond_threads_and_tasks_notified, .timeout = 30)
{
    struct box b = {0};
    corio_thread *t[3];

    cr_assert_not_null(b.lock = corio_tlock_new());
    cr_assert_not_null(b.cond = corio_tcond_new(b.lock));
    t[0] = start(box_consumer, &b, false);
    t[1] = start(box_consumer, &b, false);
    t[2] = start(box_tasks, &b, true);
    msleep(50);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(corio_tlock_acquire(b.lock, -1), 0);
        b.items++;
        cr_assert_eq(corio_tcond_notify(b.cond, 1), 0);
        cr_assert_eq(corio_tlock_release(b.lock), 0);
        msleep(5);
    }
    for (int i = 0; i < 3; i++)
        join_free(t[i]);
    cr_assert_eq(b.taken, 4);
    cr_assert_eq(b.items, 0);
    cr_assert_eq(corio_tcond_free(b.cond), 0);
    cr_assert_eq(corio_tlock_free(b.lock), 0);
}

Test(thread_sync, tcond_notify_all_and_errors, .timeout = 30)
{
    struct box b = {0};
    corio_thread *t[4];

    cr_assert_not_null(b.lock = corio_tlock_new());
    cr_assert_not_null(b.cond = corio_tcond_new(b.lock));
    expect_fail(corio_tcond_wait(b.cond, -1), EPERM);
    cr_assert_eq(corio_tlock_acquire(b.lock, -1), 0);
    expect_timeout(corio_tcond_wait(b.cond, corio_now() + 30 * MS), 30);
    cr_assert(corio_tlock_is_locked(b.lock), "held again after a timeout");
    cr_assert_eq(corio_tlock_release(b.lock), 0);
    for (int i = 0; i < 4; i++)
        t[i] = start(box_consumer, &b, i >= 2);
    msleep(50);
    cr_assert_eq(corio_tlock_acquire(b.lock, -1), 0);
    b.items = 4;
    cr_assert_eq(corio_tcond_notify_all(b.cond), 0);
    cr_assert_eq(corio_tlock_release(b.lock), 0);
    for (int i = 0; i < 4; i++)
        join_free(t[i]);
    cr_assert_eq(b.taken, 4);
    expect_fail(corio_tcond_notify(b.cond, -1), EINVAL);
    errno = 0;
    cr_assert_null(corio_tcond_new(NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_tcond_free(b.cond), 0);
    cr_assert_eq(corio_tlock_free(b.lock), 0);
    cr_assert_eq(corio_tcond_free(NULL), 0);
}

/* ---- Semaphores ------------------------------------------------------------ */

Test(thread_sync, tsem_calls_and_errors, .timeout = 30)
{
    corio_tsem *s = corio_tsem_new(1);
    corio_tsem *b = corio_tsem_new_bounded(1);

    cr_assert_not_null(s);
    cr_assert_not_null(b);
    cr_assert_eq(corio_tsem_value(s), 1);
    cr_assert_eq(corio_tsem_acquire(s, -1), 0);
    expect_fail(corio_tsem_try_acquire(s), EAGAIN);
    expect_timeout(corio_tsem_acquire(s, corio_now() + 30 * MS), 30);
    cr_assert_eq(corio_tsem_release(s), 0);
    cr_assert_eq(corio_tsem_release(s), 0);
    cr_assert_eq(corio_tsem_value(s), 2);
    expect_fail(corio_tsem_release(b), EOVERFLOW);
    cr_assert_eq(corio_tsem_try_acquire(b), 0);
    cr_assert_eq(corio_tsem_release(b), 0);
    cr_assert_eq(corio_tsem_free(s), 0);
    cr_assert_eq(corio_tsem_free(b), 0);
    cr_assert_eq(corio_tsem_free(NULL), 0);
    expect_fail(corio_tsem_acquire(NULL, -1), EINVAL);
    expect_fail(corio_tsem_release(NULL), EINVAL);
}

struct limit {
    corio_tsem *sem;
    atomic_int inside, most;
};

static void *limited(void *arg)
{
    struct limit *l = arg;

    for (int i = 0; i < 20; i++) {
        int n;

        if (corio_tsem_acquire(l->sem, -1) == -1)
            return corio_task_fail(errno);
        n = atomic_fetch_add(&l->inside, 1) + 1;
        for (int m = atomic_load(&l->most); n > m;)
            atomic_compare_exchange_weak(&l->most, &m, n);
        if (corio_task_self() != NULL)
            (void)!corio_sleep(0);
        atomic_fetch_sub(&l->inside, 1);
        cr_assert_eq(corio_tsem_release(l->sem), 0);
    }
    return NULL;
}

static void *limited_tasks(void *arg)
{
    corio_task *t[3];

    for (int i = 0; i < 3; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(limited, arg, NULL));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_sync, tsem_bounds_concurrency, .timeout = 30)
{
    struct limit l = {.sem = corio_tsem_new(2)};
    corio_thread *t[5];

    cr_assert_not_null(l.sem);
    for (int i = 0; i < 3; i++)
        t[i] = start(limited, &l, false);
    t[3] = start(limited_tasks, &l, true);
    t[4] = start(limited_tasks, &l, true);
    for (int i = 0; i < 5; i++)
        join_free(t[i]);
    cr_assert_leq(atomic_load(&l.most), 2);
    cr_assert_eq(corio_tsem_value(l.sem), 2);
    cr_assert_eq(corio_tsem_free(l.sem), 0);
}

/* ---- Events ------------------------------------------------------------------ */

static void *wait_event(void *arg)
{
    if (corio_tevent_wait(arg, corio_now() + 5 * CORIO_SECOND) == -1)
        return corio_task_fail(errno);
    return (void *)1;
}

static void *event_tasks(void *arg)
{
    corio_task *t[3];
    corio_task *tick = corio_task_spawn(ticker, NULL, NULL);

    cr_assert_not_null(tick);
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(wait_event, arg, NULL));
    for (int i = 0; i < 3; i++) {
        void *res;

        cr_assert_eq(corio_task_join(t[i], &res), 0);
        cr_assert_eq((intptr_t)res, 1);
    }
    cr_assert_eq(corio_task_cancel(tick), 1);
    expect_fail(corio_task_join(tick, NULL), ECANCELED);
    return NULL;
}

Test(thread_sync, tevent_wakes_threads_and_tasks_on_two_loops, .timeout = 30)
{
    corio_tevent *ev = corio_tevent_new();
    corio_thread *t[4];

    cr_assert_not_null(ev);
    cr_assert(!corio_tevent_is_set(ev));
    expect_timeout(corio_tevent_wait(ev, corio_now() + 30 * MS), 30);
    atomic_store(&ticks, 0);
    t[0] = start(wait_event, ev, false);
    t[1] = start(wait_event, ev, false);
    t[2] = start(event_tasks, ev, true);
    t[3] = start(event_tasks, ev, true);
    msleep(100);
    cr_assert_eq(corio_tevent_set(ev), 0);
    cr_assert(corio_tevent_is_set(ev));
    for (int i = 0; i < 2; i++)
        cr_assert_eq((intptr_t)join_free(t[i]), 1);
    join_free(t[2]);
    join_free(t[3]);
    cr_assert_geq(atomic_load(&ticks), 3, "loops ran while waiting");
    cr_assert_eq(corio_tevent_wait(ev, 0), 0);
    cr_assert_eq(corio_tevent_clear(ev), 0);
    cr_assert(!corio_tevent_is_set(ev));
    cr_assert_eq(corio_tevent_free(ev), 0);
    cr_assert_eq(corio_tevent_free(NULL), 0);
    expect_fail(corio_tevent_set(NULL), EINVAL);
    expect_fail(corio_tevent_wait(NULL, -1), EINVAL);
}

/* An object freed right after the wake-up of its waiters: they still leave
 * it safely (the free is deferred until they have). A barrier makes it
 * certain that every waiter is in before the free: the test's thread is
 * the last party, or returns once the last has come. */
static void *bar_wait_free(void *arg)
{
    if (corio_barrier_wait(arg, corio_now() + 5 * CORIO_SECOND) < 0)
        return corio_task_fail(errno);
    return NULL;
}

static void *bar_wait_free_tasks(void *arg)
{
    corio_task *t[2];

    for (int i = 0; i < 2; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(bar_wait_free, arg, NULL));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_sync, free_right_after_the_wake_up, .timeout = 30)
{
    for (int round = 0; round < 20; round++) {
        corio_barrier *b = corio_barrier_new(4);
        corio_thread *t[2];

        cr_assert_not_null(b);
        t[0] = start(bar_wait_free, b, false);
        t[1] = start(bar_wait_free_tasks, b, true);
        if (round % 2 == 0)
            msleep(2); /* the test's thread comes last, or not */
        cr_assert_geq(corio_barrier_wait(b, corio_now() + 5 * CORIO_SECOND),
                      0);
        cr_assert_eq(corio_barrier_free(b), 0);
        join_free(t[0]);
        join_free(t[1]);
    }
}

/* ---- Barriers ---------------------------------------------------------------- */

struct bar {
    corio_barrier *b;
    atomic_int seen; /* a bit per index */
};

static void *bar_wait(void *arg)
{
    struct bar *b = arg;
    int i = corio_barrier_wait(b->b, corio_now() + 5 * CORIO_SECOND);

    if (i < 0)
        return corio_task_fail(errno);
    atomic_fetch_or(&b->seen, 1 << i);
    return NULL;
}

static void *bar_tasks(void *arg)
{
    corio_task *t[2];

    for (int i = 0; i < 2; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(bar_wait, arg, NULL));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_sync, barrier_rounds, .timeout = 30)
{
    struct bar b = {.b = corio_barrier_new(4)};

    cr_assert_not_null(b.b);
    cr_assert_eq(corio_barrier_parties(b.b), 4);
    for (int round = 0; round < 3; round++) {
        corio_thread *t[3];

        atomic_store(&b.seen, 0);
        t[0] = start(bar_wait, &b, false);
        t[1] = start(bar_wait, &b, false);
        t[2] = start(bar_tasks, &b, true);
        for (int i = 0; i < 3; i++)
            join_free(t[i]);
        cr_assert_eq(atomic_load(&b.seen), 0xf, "indexes %x",
                     atomic_load(&b.seen));
    }
    cr_assert_eq(corio_barrier_free(b.b), 0);
    errno = 0;
    cr_assert_null(corio_barrier_new(0));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_barrier_free(NULL), 0);
    expect_fail(corio_barrier_wait(NULL, -1), EINVAL);
}

static void *bar_wait_err(void *arg)
{
    if (corio_barrier_wait(arg, corio_now() + 5 * CORIO_SECOND) == -1)
        return (void *)(intptr_t)errno;
    return NULL;
}

/* Wait until n callers wait on b. */
static void until_waiting(corio_barrier *b, unsigned n)
{
    while (corio_barrier_n_waiting(b) < n)
        msleep(1);
}

Test(thread_sync, barrier_timeout_breaks_abort_reset, .timeout = 30)
{
    corio_barrier *b = corio_barrier_new(3);
    corio_thread *t;

    cr_assert_not_null(b);
    t = start(bar_wait_err, b, false);
    until_waiting(b, 1);
    cr_assert_eq(corio_barrier_n_waiting(b), 1);
    /* This caller gives up: the barrier breaks, the other waiter fails. */
    expect_timeout(corio_barrier_wait(b, corio_now() + 30 * MS), 30);
    cr_assert_eq((intptr_t)join_free(t), ENOTRECOVERABLE);
    cr_assert(corio_barrier_is_broken(b));
    expect_fail(corio_barrier_wait(b, -1), ENOTRECOVERABLE);
    cr_assert_eq(corio_barrier_reset(b), 0);
    cr_assert(!corio_barrier_is_broken(b));

    t = start(bar_wait_err, b, false);
    until_waiting(b, 1);
    cr_assert_eq(corio_barrier_abort(b), 0);
    cr_assert_eq((intptr_t)join_free(t), ENOTRECOVERABLE);

    cr_assert_eq(corio_barrier_reset(b), 0);
    t = start(bar_wait_err, b, false);
    until_waiting(b, 1);
    cr_assert_eq(corio_barrier_reset(b), 0); /* the waiter's round breaks */
    cr_assert_eq(corio_barrier_n_waiting(b), 0);
    cr_assert_eq((intptr_t)join_free(t), ENOTRECOVERABLE);
    cr_assert(!corio_barrier_is_broken(b));
    cr_assert_eq(corio_barrier_free(b), 0);
}

/* ---- More deadlines and callers ------------------------------------------- */

static void *rlock_hold(void *arg)
{
    cr_assert_eq(corio_rlock_acquire(arg, -1), 0);
    msleep(150);
    cr_assert_eq(corio_rlock_release(arg), 0);
    return NULL;
}

Test(thread_sync, rlock_deadline, .timeout = 30)
{
    corio_rlock *l = corio_rlock_new();
    corio_thread *t;

    cr_assert_not_null(l);
    t = start(rlock_hold, l, false);
    msleep(30);
    expect_timeout(corio_rlock_acquire(l, corio_now() + 30 * MS), 30);
    expect_fail(corio_rlock_acquire(l, 0), ETIMEDOUT);
    cr_assert_eq(corio_rlock_acquire(l, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert(corio_rlock_is_owned(l));
    cr_assert_eq(corio_rlock_release(l), 0);
    join_free(t);
    cr_assert_eq(corio_rlock_free(l), 0);
}

static void *set_later(void *arg)
{
    msleep(100);
    cr_assert_eq(corio_tevent_set(arg), 0);
    return NULL;
}

/* On a thread's own stack with a current loop, a wait runs that loop: its
 * tasks keep going until a plain thread's set wakes the wait. */
Test(thread_sync, own_stack_with_a_loop_runs_it_while_waiting, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_tevent *ev = corio_tevent_new();
    corio_task *tick;
    corio_thread *t;

    cr_assert_not_null(ev);
    atomic_store(&ticks, 0);
    tick = corio_task_spawn(ticker, NULL, NULL);
    cr_assert_not_null(tick);
    t = start(set_later, ev, false);
    cr_assert_eq(corio_tevent_wait(ev, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_geq(atomic_load(&ticks), 3, "the loop ran %d ticks",
                  atomic_load(&ticks));
    join_free(t);
    cr_assert_eq(corio_task_cancel(tick), 1);
    expect_fail(corio_task_join(tick, NULL), ECANCELED);
    cr_assert_eq(corio_tevent_free(ev), 0);
    loop_done(loop);
}

/* Two tasks of one loop hand a semaphore unit back and forth: the wake-ups
 * stay on the loop's thread (no post to itself). */
struct pingpong {
    corio_tsem *ping, *pong;
    int rounds;
};

static void *pinger(void *arg)
{
    struct pingpong *p = arg;

    for (int i = 0; i < p->rounds; i++) {
        if (corio_tsem_release(p->ping) == -1 ||
            corio_tsem_acquire(p->pong, -1) == -1)
            return corio_task_fail(errno);
    }
    return NULL;
}

static void *ponger(void *arg)
{
    struct pingpong *p = arg;

    for (int i = 0; i < p->rounds; i++) {
        if (corio_tsem_acquire(p->ping, -1) == -1 ||
            corio_tsem_release(p->pong) == -1)
            return corio_task_fail(errno);
    }
    return NULL;
}

static void *pingpong_main(void *arg)
{
    corio_task *a = corio_task_spawn(ponger, arg, NULL);
    corio_task *b = corio_task_spawn(pinger, arg, NULL);

    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(corio_task_join(a, NULL), 0);
    cr_assert_eq(corio_task_join(b, NULL), 0);
    return NULL;
}

Test(thread_sync, tasks_of_one_loop_ping_pong, .timeout = 30)
{
    struct pingpong p = {corio_tsem_new(0), corio_tsem_new(0), 10000};

    cr_assert_not_null(p.ping);
    cr_assert_not_null(p.pong);
    cr_assert_eq(corio_run(pingpong_main, &p, NULL), 0);
    cr_assert_eq(corio_tsem_value(p.ping), 0);
    cr_assert_eq(corio_tsem_value(p.pong), 0);
    cr_assert_eq(corio_tsem_free(p.ping), 0);
    cr_assert_eq(corio_tsem_free(p.pong), 0);
}

/* A pool job (a thread with no loop) waits on an event on its futex; a
 * task sets it. */
static void *job_waits(void *arg)
{
    if (corio_tevent_wait(arg, corio_now() + 5 * CORIO_SECOND) == -1)
        return (void *)(intptr_t)errno;
    return NULL;
}

static void *set_soon(void *arg)
{
    if (corio_sleep(30 * MS) == -1)
        return corio_task_fail(errno);
    cr_assert_eq(corio_tevent_set(arg), 0);
    return NULL;
}

static void *pool_job_main(void *arg)
{
    corio_task *setter = corio_task_spawn(set_soon, arg, NULL);
    void *res = (void *)1;

    cr_assert_not_null(setter);
    cr_assert_eq(corio_pool_run(NULL, job_waits, arg, &res, -1), 0);
    cr_assert_null(res, "job: %s", corio_strerror((int)(intptr_t)res));
    cr_assert_eq(corio_task_join(setter, NULL), 0);
    return NULL;
}

Test(thread_sync, pool_job_waits_for_a_task, .timeout = 30)
{
    corio_tevent *ev = corio_tevent_new();

    cr_assert_not_null(ev);
    cr_assert_eq(corio_run(pool_job_main, ev, NULL), 0);
    cr_assert_eq(corio_tevent_free(ev), 0);
}
