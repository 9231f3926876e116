/* tests/test_task_sync.c -- locks, events, conditions and semaphores
 * (include/corio/sync.h).
 *
 * For each primitive: the documented errors, FIFO order of its waiters,
 * deadlines (ETIMEDOUT no earlier than the deadline, and soon after it),
 * deadline scopes, cancellation of a waiter (ECANCELED, and the object still
 * consistent afterwards), and the hand-off race: a waiter that was given
 * something (the lock, a unit, a notification) and is cancelled before it
 * runs keeps it, or for a condition passes it on. Stress tests run many
 * tasks with sleeps inside critical sections and cancellations at random
 * moments.
 *
 * Tests run either as corio_run's main task or from the thread's own stack,
 * which then drives the loop inside the blocking call. Every test has the
 * same .timeout (Criterion leaks in its runner otherwise, see
 * test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/sync.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include "timing.h"

#define MS CORIO_MSEC
/* Latency allowed after a deadline (helpers/timing.h). */
#define SLACK (test_slack_ms() * MS)
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 10 > 0 ? (n) / 10 : 1) : (n))

/* ---- Helpers ------------------------------------------------------------- */

/* Run fn as corio_run's main task; it returns NULL on success or a message. */
static void run_main(corio_fn fn, void *arg)
{
    void *r = "not run";

    cr_assert_eq(corio_run(fn, arg, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(r, "%s", (const char *)r);
}

/* Let every ready task run until it blocks (a few loop iterations). */
static void settle(void)
{
    for (int i = 0; i < 3; i++)
        corio_sleep(0);
}

static corio_task *spawn(corio_fn fn, void *arg)
{
    corio_task *t = corio_task_spawn(fn, arg, NULL);

    cr_assert_not_null(t);
    return t;
}

/* Join t, which ended with err (0: it succeeded; ECANCELED: it was
 * cancelled). */
static void expect_join(corio_task *t, int err)
{
    int rc;

    errno = 0;
    rc = corio_task_join(t, NULL);
    cr_assert_eq(rc, err == 0 ? 0 : -1, "join: %d (%s)", rc,
                 corio_err_name(errno));
    if (err != 0)
        cr_assert_eq(errno, err, "join: %s", corio_err_name(errno));
}

/* Deterministic pseudo-random numbers for the stress tests. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* What one waiting task saw. */
struct waiter {
    void *obj;          /* the primitive */
    int64_t deadline;
    int id;
    int rc, err;
    int *order;         /* appends its id when it gets through */
    int *norder;
    bool held_after;    /* cond: held the lock after wait returned */
    bool done;
};

static void record(struct waiter *w, int rc)
{
    w->rc = rc;
    w->err = rc == -1 ? errno : 0;
    w->done = true;
    if (rc == 0 && w->order != NULL)
        w->order[(*w->norder)++] = w->id;
}

/* ---- Locks --------------------------------------------------------------- */

Test(sync_lock, errors_and_state, .timeout = 20)
{
    corio_lock *l = corio_lock_new();

    cr_assert_not_null(l);
    cr_assert_not(corio_lock_is_locked(l));
    errno = 0;
    cr_assert_eq(corio_lock_release(l), -1);
    cr_assert_eq(errno, EPERM, "releasing a free lock");
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert(corio_lock_is_locked(l));
    cr_assert_eq(corio_lock_acquire(l, -1), -1);
    cr_assert_eq(errno, EDEADLK, "not recursive");
    cr_assert_eq(corio_lock_try_acquire(l), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(corio_lock_release(l), 0);
    cr_assert_not(corio_lock_is_locked(l));
    cr_assert_eq(corio_lock_try_acquire(l), 0);
    cr_assert_eq(corio_lock_release(l), 0);

    cr_assert_eq(corio_lock_acquire(NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_lock_try_acquire(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_lock_release(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_not(corio_lock_is_locked(NULL));
    cr_assert_eq(corio_lock_free(NULL), 0);
    cr_assert_eq(corio_lock_free(l), 0);
    corio_loop_close(corio_loop_current());
}

static void *lock_waiter(void *arg)
{
    struct waiter *w = arg;

    record(w, corio_lock_acquire(w->obj, w->deadline));
    if (w->rc == 0) {
        corio_sleep(MS);
        corio_lock_release(w->obj);
    }
    return NULL;
}

/* Waiters get the lock in the order they asked for it; a cancelled one in
 * the middle leaves the queue without disturbing it. */
static void *lock_fifo_main(void *arg)
{
    corio_lock *l = corio_lock_new();
    struct waiter w[5];
    corio_task *t[5];
    int order[5], n = 0;

    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    for (int i = 0; i < 5; i++) {
        w[i] = (struct waiter){.obj = l, .deadline = -1, .id = i,
                               .order = order, .norder = &n};
        t[i] = spawn(lock_waiter, &w[i]);
        settle(); /* each queues before the next starts */
    }
    cr_assert_eq(corio_task_cancel(t[2]), 1);
    settle();
    cr_assert(w[2].done);
    cr_assert_eq(w[2].err, ECANCELED);
    cr_assert_eq(corio_lock_free(l), -1);
    cr_assert_eq(errno, EBUSY, "tasks wait on it");
    corio_lock_release(l);
    for (int i = 0; i < 5; i++)
        expect_join(t[i], i == 2 ? ECANCELED : 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(order[0], 0);
    cr_assert_eq(order[1], 1);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 4);
    cr_assert_not(corio_lock_is_locked(l));
    cr_assert_eq(corio_lock_free(l), 0);
    return NULL;
}

Test(sync_lock, fifo_and_cancel_in_the_middle, .timeout = 20)
{
    run_main(lock_fifo_main, NULL);
}

struct mutex_state {
    corio_lock *l;
    int inside, max_inside, total;
    uint32_t seed;
    int iters;
};

static void *mutex_worker(void *arg)
{
    struct mutex_state *s = arg;

    for (int i = 0; i < s->iters; i++) {
        if (corio_lock_acquire(s->l, -1) == -1)
            return corio_task_fail(errno);
        s->inside++;
        if (s->inside > s->max_inside)
            s->max_inside = s->inside;
        /* Yield inside the critical section: others run and must queue. */
        corio_sleep((int64_t)(rnd(&s->seed) % 3) * 100 * CORIO_USEC);
        s->total++;
        s->inside--;
        corio_lock_release(s->l);
        if (rnd(&s->seed) % 2)
            corio_sleep(0);
    }
    return NULL;
}

static void *lock_mutex_main(void *arg)
{
    struct mutex_state s = {.l = corio_lock_new(), .seed = 12345,
                            .iters = SCALE(20)};
    corio_task *t[30];

    for (int i = 0; i < 30; i++)
        t[i] = spawn(mutex_worker, &s);
    cr_assert_eq(corio_task_join_all(t, 30, NULL), 0);
    cr_assert_eq(s.max_inside, 1, "two tasks were inside at once");
    cr_assert_eq(s.total, 30 * s.iters);
    cr_assert_not(corio_lock_is_locked(s.l));
    corio_lock_free(s.l);
    return NULL;
}

Test(sync_lock, mutual_exclusion_with_sleeps_inside, .timeout = 20)
{
    run_main(lock_mutex_main, NULL);
}

static void *hold_lock(void *arg)
{
    struct waiter *w = arg;

    if (corio_lock_acquire(w->obj, -1) == -1)
        return corio_task_fail(errno);
    corio_sleep(w->deadline); /* here: how long to hold it */
    corio_lock_release(w->obj);
    return NULL;
}

static void *lock_timeout_main(void *arg)
{
    corio_lock *l = corio_lock_new();
    struct waiter h = {.obj = l, .deadline = 400 * MS};
    corio_task *t = spawn(hold_lock, &h);
    int64_t start, deadline;

    settle();
    start = corio_now();
    deadline = start + 100 * MS;
    cr_assert_eq(corio_lock_acquire(l, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);

    /* deadline 0: fails at once when it would have to wait. */
    start = corio_now();
    cr_assert_eq(corio_lock_acquire(l, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_lt(corio_now() - start, SLACK);

    /* The lock is still usable: waiting without a deadline gets it. */
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_eq(corio_lock_release(l), 0);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    corio_lock_free(l);
    return NULL;
}

Test(sync_lock, deadline_times_out, .timeout = 20)
{
    run_main(lock_timeout_main, NULL);
}

static void *lock_scope_main(void *arg)
{
    corio_lock *l = corio_lock_new();
    struct waiter h = {.obj = l, .deadline = 400 * MS};
    corio_task *t = spawn(hold_lock, &h);
    corio_scope s;
    int64_t deadline;

    settle();
    deadline = corio_now() + 80 * MS;
    corio_scope_enter(&s, deadline);
    cr_assert_eq(corio_lock_acquire(l, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    cr_assert(corio_scope_exit(&s), "the scope reports it expired");
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_not(corio_lock_is_locked(l));
    corio_lock_free(l);
    return NULL;
}

Test(sync_lock, deadline_scope_times_out, .timeout = 20)
{
    run_main(lock_scope_main, NULL);
}

static void *release_other(void *arg)
{
    struct waiter *w = arg;

    record(w, corio_lock_release(w->obj));
    return NULL;
}

/* The lock is owned: another task cannot release it, the thread's stack is
 * an owner of its own, and a task waiting for it lets the thread's stack
 * run the loop. */
Test(sync_lock, owned_by_task_or_thread_stack, .timeout = 20)
{
    corio_lock *l = corio_lock_new();
    struct waiter w = {.obj = l};
    struct waiter h = {.obj = l, .deadline = 30 * MS};
    corio_task *t;
    int64_t start;

    cr_assert_eq(corio_lock_acquire(l, -1), 0); /* the thread's stack */
    t = spawn(release_other, &w);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(w.rc, -1);
    cr_assert_eq(w.err, EPERM, "a task released the thread's lock");
    cr_assert(corio_lock_is_locked(l));
    cr_assert_eq(corio_lock_release(l), 0);

    /* A task holds it for 30 ms; the thread's stack waits for it. */
    start = corio_now();
    t = spawn(hold_lock, &h);
    corio_sleep(0);
    cr_assert(corio_lock_is_locked(l));
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_geq(corio_now() - start, 30 * MS);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(corio_lock_release(l), 0);
    cr_assert_eq(corio_lock_free(l), 0);
    cr_assert_eq(corio_loop_close(corio_loop_current()), 0);
}

struct handoff {
    void *obj;
    int rc1, err1, rc2, err2;
    bool after;
};

static void *lock_then_sleep(void *arg)
{
    struct handoff *h = arg;

    h->rc1 = corio_lock_acquire(h->obj, -1);
    h->err1 = h->rc1 == -1 ? errno : 0;
    h->after = true;
    h->rc2 = corio_sleep(10 * MS); /* the next blocking call */
    h->err2 = h->rc2 == -1 ? errno : 0;
    if (h->rc1 == 0)
        corio_lock_release(h->obj);
    return NULL;
}

/* Release passes the lock to the waiter; cancelling the waiter before it
 * runs must not lose the lock: acquire succeeds, the cancellation hits the
 * next blocking call, and the task releases the lock. */
static void *lock_handoff_main(void *arg)
{
    corio_lock *l = corio_lock_new();
    struct handoff h = {.obj = l};
    corio_task *t;

    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    t = spawn(lock_then_sleep, &h);
    settle();
    corio_lock_release(l);
    cr_assert(corio_lock_is_locked(l), "handed to the waiter, not freed");
    corio_task_cancel(t);
    expect_join(t, ECANCELED);
    cr_assert_eq(h.rc1, 0, "woken with the lock, acquire succeeds");
    cr_assert_eq(h.rc2, -1);
    cr_assert_eq(h.err2, ECANCELED);
    cr_assert_not(corio_lock_is_locked(l), "released by the cancelled task");
    corio_lock_free(l);
    return NULL;
}

Test(sync_lock, handed_over_then_cancelled_keeps_the_lock, .timeout = 20)
{
    run_main(lock_handoff_main, NULL);
}

/* ---- Events -------------------------------------------------------------- */

static void *event_waiter(void *arg)
{
    struct waiter *w = arg;

    record(w, corio_event_wait(w->obj, w->deadline));
    return NULL;
}

static void *event_main(void *arg)
{
    corio_event *ev = corio_event_new();
    struct waiter w[6];
    corio_task *t[6];
    int order[6], n = 0;

    cr_assert_not(corio_event_is_set(ev));
    for (int i = 0; i < 6; i++) {
        w[i] = (struct waiter){.obj = ev, .deadline = -1, .id = i,
                               .order = order, .norder = &n};
        t[i] = spawn(event_waiter, &w[i]);
    }
    settle();
    cr_assert_eq(n, 0);
    corio_task_cancel(t[4]);
    settle();
    cr_assert_eq(w[4].err, ECANCELED);
    cr_assert_eq(corio_event_free(ev), -1);
    cr_assert_eq(errno, EBUSY);
    /* Set then clear at once: everyone waiting at set still returns 0. */
    cr_assert_eq(corio_event_set(ev), 0);
    cr_assert_eq(corio_event_clear(ev), 0);
    cr_assert_not(corio_event_is_set(ev));
    for (int i = 0; i < 6; i++)
        expect_join(t[i], i == 4 ? ECANCELED : 0);
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(order[i], i < 4 ? i : 5, "woken in FIFO order");
    /* Set: wait returns at once. */
    corio_event_set(ev);
    cr_assert(corio_event_is_set(ev));
    cr_assert_eq(corio_event_wait(ev, 0), 0);
    cr_assert_eq(corio_event_free(ev), 0);
    return NULL;
}

Test(sync_event, set_wakes_every_waiter, .timeout = 20)
{
    run_main(event_main, NULL);
}

static void *event_timeout_main(void *arg)
{
    corio_event *ev = corio_event_new();
    corio_scope s;
    int64_t deadline = corio_now() + 60 * MS;

    cr_assert_eq(corio_event_wait(ev, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    cr_assert_eq(corio_event_wait(ev, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);

    deadline = corio_now() + 40 * MS;
    corio_scope_enter(&s, deadline);
    cr_assert_eq(corio_event_wait(ev, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert(corio_scope_exit(&s));
    cr_assert_eq(corio_event_free(ev), 0);

    cr_assert_eq(corio_event_wait(NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_event_set(NULL), -1);
    cr_assert_eq(corio_event_clear(NULL), -1);
    cr_assert_eq(corio_event_free(NULL), 0);
    return NULL;
}

Test(sync_event, deadline_scope_and_errors, .timeout = 20)
{
    run_main(event_timeout_main, NULL);
}

static void *event_then_sleep(void *arg)
{
    struct handoff *h = arg;

    h->rc1 = corio_event_wait(h->obj, -1);
    h->err1 = h->rc1 == -1 ? errno : 0;
    h->rc2 = corio_sleep(10 * MS);
    h->err2 = h->rc2 == -1 ? errno : 0;
    return NULL;
}

/* Set, then cancel the woken waiter before it runs: its wait still returns
 * 0 (no lost wake-up), the cancellation reaches its next call. */
static void *event_set_cancel_main(void *arg)
{
    corio_event *ev = corio_event_new();
    struct handoff h = {.obj = ev};
    corio_task *t = spawn(event_then_sleep, &h);

    settle();
    corio_event_set(ev);
    corio_event_clear(ev);
    corio_task_cancel(t);
    expect_join(t, ECANCELED);
    cr_assert_eq(h.rc1, 0);
    cr_assert_eq(h.err2, ECANCELED);
    corio_event_free(ev);
    return NULL;
}

Test(sync_event, set_then_cancelled_still_returns_0, .timeout = 20)
{
    run_main(event_set_cancel_main, NULL);
}

/* Waiting from the thread's own stack while a task sets the event. */
static void *set_later(void *arg)
{
    corio_sleep(20 * MS);
    corio_event_set(arg);
    return NULL;
}

Test(sync_event, thread_stack_waits, .timeout = 20)
{
    corio_event *ev = corio_event_new();
    corio_task *t = spawn(set_later, ev);
    int64_t start = corio_now();

    cr_assert_eq(corio_event_wait(ev, start + 5 * CORIO_SECOND), 0);
    cr_assert_geq(corio_now() - start, 15 * MS);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(corio_event_free(ev), 0);
    cr_assert_eq(corio_loop_close(corio_loop_current()), 0);
}

/* ---- Conditions ---------------------------------------------------------- */

static void *cond_waiter(void *arg)
{
    struct waiter *w = arg;
    corio_lock *l = corio_cond_lock(w->obj);

    if (corio_lock_acquire(l, -1) == -1)
        return corio_task_fail(errno);
    record(w, corio_cond_wait(w->obj, w->deadline));
    /* The lock is held after wait, whatever it returned. */
    w->held_after = corio_lock_release(l) == 0;
    return NULL;
}

static void *cond_errors_main(void *arg)
{
    corio_lock *l = corio_lock_new();
    corio_cond *c = corio_cond_new(l);
    corio_cond *own = corio_cond_new(NULL);

    cr_assert_eq(corio_cond_lock(c), l);
    cr_assert_not_null(corio_cond_lock(own));
    cr_assert_neq(corio_cond_lock(own), l);
    cr_assert_eq(corio_cond_wait(c, -1), -1);
    cr_assert_eq(errno, EPERM, "wait without the lock");
    cr_assert_eq(corio_cond_notify(c, 1), -1);
    cr_assert_eq(errno, EPERM, "notify without the lock");
    cr_assert_eq(corio_cond_notify_all(c), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_eq(corio_cond_notify(c, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_cond_notify(c, 3), 0, "nobody waits");
    cr_assert_eq(corio_cond_wait(c, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_lock_release(l), 0, "held again after ETIMEDOUT");
    cr_assert_eq(corio_cond_wait(NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_cond_wait_pred(c, NULL, NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_cond_free(NULL), 0);
    cr_assert_eq(corio_cond_free(own), 0);
    cr_assert_eq(corio_cond_free(c), 0);
    cr_assert_eq(corio_lock_free(l), 0);
    return NULL;
}

Test(sync_cond, errors, .timeout = 20)
{
    run_main(cond_errors_main, NULL);
}

static void *cond_fifo_main(void *arg)
{
    corio_cond *c = corio_cond_new(NULL);
    corio_lock *l = corio_cond_lock(c);
    struct waiter w[5];
    corio_task *t[5];
    int order[5], n = 0;

    for (int i = 0; i < 5; i++) {
        w[i] = (struct waiter){.obj = c, .deadline = -1, .id = i,
                               .order = order, .norder = &n};
        t[i] = spawn(cond_waiter, &w[i]);
    }
    settle();
    cr_assert_eq(corio_cond_free(c), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_eq(corio_cond_notify(c, 1), 1);
    cr_assert_eq(corio_cond_notify(c, 2), 2);
    corio_lock_release(l);
    settle();
    cr_assert_eq(n, 3, "notify woke 3, not more");
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_eq(corio_cond_notify_all(c), 2);
    corio_lock_release(l);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(order[i], i, "notified in FIFO order");
        cr_assert(w[i].held_after);
    }
    cr_assert_eq(corio_cond_free(c), 0);
    return NULL;
}

Test(sync_cond, notify_wakes_n_in_fifo_order, .timeout = 20)
{
    run_main(cond_fifo_main, NULL);
}

static void *cond_timeout_cancel_main(void *arg)
{
    corio_cond *c = corio_cond_new(NULL);
    struct waiter a = {.obj = c, .deadline = corio_now() + 80 * MS};
    struct waiter b = {.obj = c, .deadline = -1};
    corio_task *ta = spawn(cond_waiter, &a);
    corio_task *tb = spawn(cond_waiter, &b);

    settle();
    corio_task_cancel(tb);
    expect_join(tb, ECANCELED);
    cr_assert_eq(b.rc, -1);
    cr_assert_eq(b.err, ECANCELED);
    cr_assert(b.held_after, "the lock is held after ECANCELED");
    cr_assert_eq(corio_task_join(ta, NULL), 0);
    cr_assert_eq(a.err, ETIMEDOUT);
    cr_assert_geq(corio_now(), a.deadline);
    cr_assert_lt(corio_now(), a.deadline + SLACK);
    cr_assert(a.held_after, "the lock is held after ETIMEDOUT");
    cr_assert_not(corio_lock_is_locked(corio_cond_lock(c)));
    cr_assert_eq(corio_cond_free(c), 0);
    return NULL;
}

Test(sync_cond, timeout_and_cancel_return_holding_the_lock, .timeout = 20)
{
    run_main(cond_timeout_cancel_main, NULL);
}

/* An expired scope must not stop wait from taking the lock back, even when
 * another task holds it then: wait returns ETIMEDOUT once it has it. */
static void *grab_lock_later(void *arg)
{
    corio_lock *l = arg;

    corio_sleep(10 * MS);
    if (corio_lock_acquire(l, -1) == -1)
        return corio_task_fail(errno);
    corio_sleep(150 * MS);
    corio_lock_release(l);
    return NULL;
}

static void *cond_scope_main(void *arg)
{
    corio_cond *c = corio_cond_new(NULL);
    corio_lock *l = corio_cond_lock(c);
    corio_task *t = spawn(grab_lock_later, l);
    int64_t start = corio_now();
    corio_scope s;

    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    corio_scope_enter(&s, start + 50 * MS);
    cr_assert_eq(corio_cond_wait(c, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert(corio_scope_exit(&s));
    cr_assert_geq(corio_now() - start, 150 * MS,
                  "returned before the other task let the lock go");
    cr_assert_eq(corio_lock_release(l), 0, "returned holding the lock");
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(corio_cond_free(c), 0);
    return NULL;
}

Test(sync_cond, expired_scope_still_reacquires, .timeout = 20)
{
    run_main(cond_scope_main, NULL);
}

/* notify(1) reaches A, which is then cancelled before it returns. If A
 * cannot return right away (the notifier still holds the lock), the
 * cancellation is reported by A's wait and the notification passes to B:
 * it is not lost. */
static void *cond_pass_on_main(void *arg)
{
    corio_cond *c = corio_cond_new(NULL);
    corio_lock *l = corio_cond_lock(c);
    struct waiter a = {.obj = c, .deadline = -1};
    struct waiter b = {.obj = c, .deadline = -1};
    corio_task *ta = spawn(cond_waiter, &a);
    corio_task *tb = spawn(cond_waiter, &b);

    settle();
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    cr_assert_eq(corio_cond_notify(c, 1), 1);
    corio_task_cancel(ta);
    settle(); /* A runs, and queues for the lock we hold */
    cr_assert_not(a.done);
    corio_lock_release(l);
    expect_join(ta, ECANCELED);
    cr_assert_eq(a.rc, -1);
    cr_assert_eq(a.err, ECANCELED);
    cr_assert(a.held_after);
    /* B got the notification A could not use. */
    cr_assert_eq(corio_task_wait(tb, corio_now() + CORIO_SECOND), 0,
                 "the notification was lost");
    cr_assert_eq(b.rc, 0);
    cr_assert(b.held_after);
    cr_assert_eq(corio_task_join(tb, NULL), 0);
    cr_assert_eq(corio_cond_free(c), 0);
    return NULL;
}

Test(sync_cond, notified_then_cancelled_passes_it_on, .timeout = 20)
{
    run_main(cond_pass_on_main, NULL);
}

/* The same race when the lock is free by the time A runs: A's wait
 * returns 0 (it consumed the notification), the cancellation reaches A's
 * next blocking call. Either way exactly one waiter is woken. */
static void *cond_wait_then_sleep(void *arg)
{
    struct handoff *h = arg;
    corio_lock *l = corio_cond_lock(h->obj);

    if (corio_lock_acquire(l, -1) == -1)
        return corio_task_fail(errno);
    h->rc1 = corio_cond_wait(h->obj, -1);
    h->err1 = h->rc1 == -1 ? errno : 0;
    corio_lock_release(l);
    h->rc2 = corio_sleep(10 * MS);
    h->err2 = h->rc2 == -1 ? errno : 0;
    return NULL;
}

static void *cond_notify_cancel_free_main(void *arg)
{
    corio_cond *c = corio_cond_new(NULL);
    corio_lock *l = corio_cond_lock(c);
    struct handoff h = {.obj = c};
    struct waiter b = {.obj = c, .deadline = corio_now() + 100 * MS};
    corio_task *ta = spawn(cond_wait_then_sleep, &h);
    corio_task *tb;

    settle();
    tb = spawn(cond_waiter, &b);
    settle();
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    corio_cond_notify(c, 1);
    corio_task_cancel(ta);
    corio_lock_release(l);
    expect_join(ta, ECANCELED);
    cr_assert_eq(h.rc1, 0, "A consumed the notification");
    cr_assert_eq(h.err2, ECANCELED, "and saw the cancellation next");
    cr_assert_eq(corio_task_join(tb, NULL), 0);
    cr_assert_eq(b.err, ETIMEDOUT, "B was not woken as well");
    cr_assert_eq(corio_cond_free(c), 0);
    return NULL;
}

Test(sync_cond, notified_then_cancelled_with_lock_free_returns_0, .timeout = 20)
{
    run_main(cond_notify_cancel_free_main, NULL);
}

/* A queue guarded by a condition: consumers wait_for(nonempty), the
 * producer notifies one per item and cancels consumers at random moments
 * (replacing them). Consumer 0 is never cancelled. Every item must be
 * consumed exactly once.
 *
 * The last phase makes each notification count. Before each item, fresh
 * cancellable consumers queue on the condition first and consumer 0 last
 * (it waits for the `go` event before it queues again). The producer
 * notifies one (a cancellable one), cancels every cancellable consumer while
 * it still holds the lock, and waits until the item is consumed. Only
 * consumer 0 can consume it, and only if the cancelled one passed its
 * notification on: a swallowed one leaves consumer 0 asleep. */
#define CQ_CONS 8

struct cq {
    corio_cond *c;
    corio_event *go;
    int items[64];
    int head, len;
    long consumed, sum;
    bool stop, last;
    int live;
};

static bool cq_ready(void *arg)
{
    struct cq *q = arg;

    return q->len > 0 || q->stop;
}

static void *cq_consume(struct cq *q, bool immortal)
{
    corio_lock *l = corio_cond_lock(q->c);

    q->live++;
    for (;;) {
        if (corio_lock_acquire(l, -1) == -1)
            break;
        if (corio_cond_wait_pred(q->c, cq_ready, q, -1) == -1) {
            corio_lock_release(l);
            break;
        }
        if (q->len == 0) { /* stop */
            corio_lock_release(l);
            break;
        }
        q->sum += q->items[q->head];
        q->head = (q->head + 1) % 64;
        q->len--;
        q->consumed++;
        corio_lock_release(l);
        if (corio_sleep(0) == -1)
            break;
        /* consumer 0 is never cancelled: a failed wait fails the test */
        if (immortal && q->last && corio_event_wait(q->go, -1) == -1)
            break;
    }
    q->live--;
    return NULL;
}

static void *cq_consumer(void *arg)
{
    return cq_consume(arg, false);
}

static void *cq_immortal(void *arg)
{
    return cq_consume(arg, true);
}

static void cq_respawn(struct cq *q, corio_task **cons)
{
    for (int k = 1; k < CQ_CONS; k++) {
        if (corio_task_is_done(cons[k])) {
            /* ended by its cancellation, or by the stop */
            cr_assert(corio_task_join(cons[k], NULL) == 0 ||
                      errno == ECANCELED, "%s", corio_strerror(errno));
            cons[k] = spawn(cq_consumer, q);
        }
    }
}

static void *cond_stress_main(void *arg)
{
    struct cq q = {.c = corio_cond_new(NULL), .go = corio_event_new()};
    corio_lock *l = corio_cond_lock(q.c);
    corio_task *cons[CQ_CONS];
    uint32_t seed = 777;
    int n = SCALE(3000), cancels = 0;
    long want = 0;

    for (int k = 0; k < CQ_CONS; k++)
        cons[k] = spawn(k == 0 ? cq_immortal : cq_consumer, &q);
    for (int i = 1; i <= n; i++) {
        q.last = i > n - 30;
        if (q.last) {
            /* Everyone idle; the replacements queue, then consumer 0. */
            settle();
            cq_respawn(&q, cons);
            settle();
            corio_event_set(q.go);
            settle();
            corio_event_clear(q.go);
        }
        cr_assert_eq(corio_lock_acquire(l, -1), 0);
        while (q.len == 64) { /* full: let consumers drain */
            corio_lock_release(l);
            corio_sleep(0);
            cr_assert_eq(corio_lock_acquire(l, -1), 0);
        }
        q.items[(q.head + q.len) % 64] = i;
        q.len++;
        want += i;
        corio_cond_notify(q.c, 1);
        for (int k = 1; k < CQ_CONS; k++) {
            if (q.last || (k == 1 && rnd(&seed) % 4 == 0)) {
                int victim = q.last ? k : 1 + (int)(rnd(&seed) % (CQ_CONS - 1));

                corio_task_cancel(cons[victim]);
                cancels++;
            }
        }
        if (q.last || rnd(&seed) % 2)
            corio_sleep(0); /* the woken consumer runs while we hold l */
        corio_lock_release(l);
        if (q.last) {
            int64_t deadline = corio_now() + 2 * CORIO_SECOND;

            while (q.consumed < i && corio_now() < deadline)
                corio_sleep(100 * CORIO_USEC);
            cr_assert_eq(q.consumed, i, "item %d was not consumed: a lost "
                         "notification", i);
            continue;
        }
        if (rnd(&seed) % 3 == 0)
            corio_sleep(0);
        cq_respawn(&q, cons);
    }
    cr_assert_eq(q.consumed, n);
    cr_assert_eq(q.sum, want, "an item was consumed twice or never");
    cr_assert_gt(cancels, 0);
    q.last = false;
    corio_event_set(q.go);
    cr_assert_eq(corio_lock_acquire(l, -1), 0);
    q.stop = true;
    corio_cond_notify_all(q.c);
    corio_lock_release(l);
    for (int k = 0; k < CQ_CONS; k++) /* 1.. may have been cancelled */
        cr_assert(corio_task_join(cons[k], NULL) == 0 ||
                  (k > 0 && errno == ECANCELED), "%d: %s", k,
                  corio_strerror(errno));
    cr_assert_eq(q.live, 0);
    cr_assert_eq(corio_cond_free(q.c), 0);
    cr_assert_eq(corio_event_free(q.go), 0);
    return NULL;
}

Test(sync_cond, no_lost_notification_under_cancellation, .timeout = 20)
{
    run_main(cond_stress_main, NULL);
}

/* ---- Semaphores ---------------------------------------------------------- */

static void *sem_waiter(void *arg)
{
    struct waiter *w = arg;

    record(w, corio_sem_acquire(w->obj, w->deadline));
    return NULL;
}

Test(sync_sem, counts_and_errors, .timeout = 20)
{
    corio_sem *s = corio_sem_new(2);
    corio_sem *b = corio_sem_new_bounded(1);

    cr_assert_eq(corio_sem_value(s), 2);
    cr_assert_eq(corio_sem_acquire(s, -1), 0);
    cr_assert_eq(corio_sem_try_acquire(s), 0);
    cr_assert_eq(corio_sem_value(s), 0);
    cr_assert_eq(corio_sem_try_acquire(s), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(corio_sem_acquire(s, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    /* Unbounded: release may go above the start value. */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_sem_release(s), 0);
    cr_assert_eq(corio_sem_value(s), 3);

    cr_assert_eq(corio_sem_release(b), -1);
    cr_assert_eq(errno, EOVERFLOW, "bounded: above the initial value");
    cr_assert_eq(corio_sem_value(b), 1);
    cr_assert_eq(corio_sem_acquire(b, -1), 0);
    cr_assert_eq(corio_sem_release(b), 0);
    cr_assert_eq(corio_sem_release(b), -1);
    cr_assert_eq(errno, EOVERFLOW);

    cr_assert_eq(corio_sem_acquire(NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_sem_try_acquire(NULL), -1);
    cr_assert_eq(corio_sem_release(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_sem_free(NULL), 0);
    cr_assert_eq(corio_sem_free(s), 0);
    cr_assert_eq(corio_sem_free(b), 0);
    corio_loop_close(corio_loop_current());
}

static void *sem_fifo_main(void *arg)
{
    corio_sem *s = corio_sem_new_bounded(0);
    corio_sem *u = corio_sem_new(0);
    struct waiter w[5];
    corio_task *t[5];
    int order[5], n = 0;

    cr_assert_eq(corio_sem_release(s), -1, "bounded at 0");
    cr_assert_eq(errno, EOVERFLOW);
    corio_sem_free(s);
    for (int i = 0; i < 5; i++) {
        w[i] = (struct waiter){.obj = u, .deadline = -1, .id = i,
                               .order = order, .norder = &n};
        t[i] = spawn(sem_waiter, &w[i]);
    }
    settle();
    corio_task_cancel(t[1]);
    settle();
    cr_assert_eq(w[1].err, ECANCELED);
    cr_assert_eq(corio_sem_free(u), -1);
    cr_assert_eq(errno, EBUSY);
    for (int i = 0; i < 4; i++)
        corio_sem_release(u);
    cr_assert_eq(corio_sem_value(u), 0, "every unit went to a waiter");
    for (int i = 0; i < 5; i++)
        expect_join(t[i], i == 1 ? ECANCELED : 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(order[0], 0);
    cr_assert_eq(order[1], 2);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 4);
    corio_sem_release(u);
    cr_assert_eq(corio_sem_value(u), 1, "the cancelled waiter took none");
    cr_assert_eq(corio_sem_free(u), 0);
    return NULL;
}

Test(sync_sem, fifo_and_cancelled_waiter_takes_no_unit, .timeout = 20)
{
    run_main(sem_fifo_main, NULL);
}

struct sem_state {
    corio_sem *s;
    int inside, max_inside, total;
    uint32_t seed;
};

static void *sem_worker(void *arg)
{
    struct sem_state *st = arg;

    for (int i = 0; i < 10; i++) {
        if (corio_sem_acquire(st->s, -1) == -1)
            return corio_task_fail(errno);
        st->inside++;
        if (st->inside > st->max_inside)
            st->max_inside = st->inside;
        corio_sleep((int64_t)(rnd(&st->seed) % 4) * 100 * CORIO_USEC);
        st->inside--;
        st->total++;
        corio_sem_release(st->s);
    }
    return NULL;
}

static void *sem_limit_main(void *arg)
{
    struct sem_state st = {.s = corio_sem_new_bounded(3), .seed = 99};
    corio_task *t[20];

    for (int i = 0; i < 20; i++)
        t[i] = spawn(sem_worker, &st);
    cr_assert_eq(corio_task_join_all(t, 20, NULL), 0);
    cr_assert_eq(st.max_inside, 3, "at most 3 at once, and 3 reached");
    cr_assert_eq(st.total, 200);
    cr_assert_eq(corio_sem_value(st.s), 3);
    corio_sem_free(st.s);
    return NULL;
}

Test(sync_sem, bounds_concurrency, .timeout = 20)
{
    run_main(sem_limit_main, NULL);
}

static void *sem_then_sleep(void *arg)
{
    struct handoff *h = arg;

    h->rc1 = corio_sem_acquire(h->obj, -1);
    h->err1 = h->rc1 == -1 ? errno : 0;
    h->rc2 = corio_sleep(10 * MS);
    h->err2 = h->rc2 == -1 ? errno : 0;
    if (h->rc1 == 0)
        corio_sem_release(h->obj);
    return NULL;
}

static void *sem_timeouts_main(void *arg)
{
    corio_sem *s = corio_sem_new(0);
    struct handoff h = {.obj = s};
    int64_t deadline = corio_now() + 70 * MS;
    corio_scope sc;
    corio_task *t;

    cr_assert_eq(corio_sem_acquire(s, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    deadline = corio_now() + 40 * MS;
    corio_scope_enter(&sc, deadline);
    cr_assert_eq(corio_sem_acquire(s, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert(corio_scope_exit(&sc));

    /* A unit handed to a waiter that is cancelled before it runs is kept
     * (and given back by it), not lost. */
    t = spawn(sem_then_sleep, &h);
    settle();
    corio_sem_release(s);
    corio_task_cancel(t);
    expect_join(t, ECANCELED);
    cr_assert_eq(h.rc1, 0);
    cr_assert_eq(h.err2, ECANCELED);
    cr_assert_eq(corio_sem_value(s), 1);
    cr_assert_eq(corio_sem_free(s), 0);
    return NULL;
}

Test(sync_sem, deadline_scope_and_handoff_under_cancel, .timeout = 20)
{
    run_main(sem_timeouts_main, NULL);
}

/* ---- Callbacks may not wait ---------------------------------------------- */

struct cb_state {
    corio_lock *l;
    corio_event *ev;
    int lock_err, event_err;
};

static void blocking_in_callback(void *arg)
{
    struct cb_state *s = arg;

    s->lock_err = corio_lock_acquire(s->l, -1) == -1 ? errno : 0;
    s->event_err = corio_event_wait(s->ev, -1) == -1 ? errno : 0;
}

static void *callback_main(void *arg)
{
    struct cb_state s = {.l = corio_lock_new(), .ev = corio_event_new()};

    cr_assert_eq(corio_lock_acquire(s.l, -1), 0);
    corio_loop_call_soon(corio_loop_current(), blocking_in_callback, &s, NULL);
    corio_sleep(5 * MS);
    cr_assert_eq(s.lock_err, EDEADLK);
    cr_assert_eq(s.event_err, EDEADLK);
    cr_assert_eq(corio_lock_release(s.l), 0, "still the task's lock");
    cr_assert_eq(corio_lock_free(s.l), 0);
    cr_assert_eq(corio_event_free(s.ev), 0);
    return NULL;
}

Test(sync_misc, callbacks_fail_with_edeadlk, .timeout = 20)
{
    run_main(callback_main, NULL);
}
