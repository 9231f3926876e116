/* tests/test_task_cancel.c -- sticky cancellation, cancel scopes and
 * shields, and joining when the joiner is cancelled (include/corio/loop.h,
 * "Sleeping" and "Scopes"; include/corio/task.h, corio_task_join).
 *
 * The rules under test:
 *   - once a task is cancelled, every blocking call it makes fails with
 *     ECANCELED (outside a shield), so a task that ignores one failure and
 *     retries still ends: its next call fails at once;
 *   - calls that could complete without waiting (a buffered item, a free
 *     lock, a set event, a ready fd) fail too (corio__checkpoint): suite
 *     "checkpoint" (see its comment: several primitives do not check yet);
 *   - a woken waiter's call succeeds (what it was handed is never lost),
 *     the cancellation reaches its next call;
 *   - a scope whose deadline has passed, or that was cancelled, fails every
 *     blocking call made in it at once until it is left; nested scopes: the
 *     earliest deadline wins; corio_scope_cancel and
 *     corio_scope_set_deadline act on a call parked in the scope, from
 *     another task; CORIO_SCOPE exits by itself however its block is left;
 *   - a shield keeps out the task's cancellation and the outer scopes, not
 *     its own deadline;
 *   - misuse (an exit out of order or by another task, a task or a thread
 *     ending with a scope entered) is reported with where the scope was
 *     entered and aborts: death tests, in a forked child (helpers/child.h);
 *   - corio_task_join and join_all, when the caller is cancelled or its
 *     scope expires, cancel the joined tasks and return only once their
 *     cleanup has run, leaking nothing.
 *
 * Task bodies cannot call cr_assert (Criterion would longjmp across their
 * stacks): they record what they saw, or CHECK (helpers/check.h), and the
 * thread's stack asserts. Timing bounds carry slack (helpers/timing.h).
 * Every test has the same .timeout (Criterion 2.4.1 leaks when timeouts
 * differ within a file under --jobs=2, see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "loop_test.h"
#include "timing.h"

#define MS CORIO_MSEC
#define TIMEOUT 30
/* Latency allowed after a due time, in ms (helpers/timing.h). */
#define SLACK_MS test_slack_ms()
/* "At once": well below any sleep the tests make (60 s), with the slack. */
#define AT_ONCE_MS SLACK_MS

static corio_task *spawn(corio_fn fn, void *arg)
{
    corio_task *t = corio_task_spawn(fn, arg, NULL);

    cr_assert_not_null(t, "corio_task_spawn: %s", strerror(errno));
    return t;
}

static corio_task *spawn_named(corio_fn fn, void *arg, const char *name)
{
    corio_task_attr attr = {.name = name};
    corio_task *t = corio_task_spawn(fn, arg, &attr);

    cr_assert_not_null(t, "corio_task_spawn: %s", strerror(errno));
    return t;
}

/* Let every ready task run to its next blocking call (a few iterations of
 * the loop, driven from the thread's stack). */
static void let_tasks_run(void)
{
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_sleep(0), 0);
}

/* Returns arg. */
static void *identity(void *arg)
{
    return arg;
}

/* Sleeps 60 s (until cancelled). */
static void *sleep_long(void *arg)
{
    (void)arg;
    if (corio_sleep(60 * CORIO_SECOND) == -1)
        return CORIO_INT(-errno);
    return NULL;
}

/* ======================================================================
 * The primitives, each in a state where a call on it must wait (env_open)
 * or could complete at once (ready_open).
 * ====================================================================== */

enum prim {
    P_SLEEP,        /* corio_sleep(60 s) */
    P_SLEEP_UNTIL,  /* corio_sleep_until(now + 60 s) */
    P_SLEEP0,       /* corio_sleep(0) */
    P_CHAN_RECV,    /* an empty channel */
    P_CHAN_SEND,    /* a full channel */
    P_SELECT,       /* both */
    P_WAIT_DONE,    /* corio_chan_wait_done with an item not marked done */
    P_LOCK,         /* a lock held by another task */
    P_SEM,          /* a semaphore at 0 */
    P_EVENT,        /* an event not set */
    P_COND,         /* a condition nobody notifies (its lock held) */
    P_FUTURE,       /* a pending future */
    P_TASK_WAIT,    /* a task that sleeps 60 s */
    P_FD_WAIT,      /* an empty pipe */
    P_FD_READ,      /* the same, corio_fd_read */
    P_STREAM_READ,  /* a stream over a socketpair nobody writes to */
};

static const char *prim_name(enum prim p)
{
    static const char *const names[] = {
        "sleep",     "sleep_until", "sleep(0)",  "chan_recv", "chan_send",
        "select",    "wait_done",   "lock",      "sem",       "event",
        "cond_wait", "future_wait", "task_wait", "fd_wait",   "fd_read",
        "stream_read",
    };

    return names[p];
}

static struct {
    corio_chan *empty;      /* unbuffered, nobody sends */
    corio_chan *full;       /* capacity 1, one item in it, nobody receives */
    corio_lock *held;       /* held by the task `holder` */
    corio_event *release;   /* makes `holder` release it and end */
    corio_task *holder;
    corio_sem *zero;
    corio_event *unset;
    corio_cond *cond;       /* with its own lock */
    corio_future *pending;
    corio_task *sleeper;    /* sleeps 60 s */
    int pipe[2];            /* nothing written */
    int sp[2];              /* socketpair; sp[0] is the stream's */
    corio_stream *stream;
} env;

static void *lock_holder(void *arg)
{
    int rc;

    (void)arg;
    if (corio_lock_acquire(env.held, -1) == -1)
        return CORIO_INT(-1);
    rc = corio_event_wait(env.release, -1);
    corio_lock_release(env.held);
    return rc == 0 ? NULL : CORIO_INT(-errno);
}

/* Every primitive in a state where a call must wait. On the thread's stack
 * with a loop current. */
static void env_open(void)
{
    memset(&env, 0, sizeof(env));
    env.empty = corio_chan_new(0);
    env.full = corio_chan_new(1);
    env.held = corio_lock_new();
    env.release = corio_event_new();
    env.zero = corio_sem_new(0);
    env.unset = corio_event_new();
    env.cond = corio_cond_new(NULL);
    env.pending = corio_future_new();
    cr_assert(env.empty && env.full && env.held && env.release && env.zero &&
              env.unset && env.cond && env.pending);
    cr_assert_eq(corio_chan_send(env.full, CORIO_INT(1), -1), 0);
    env.holder = spawn(lock_holder, NULL);
    env.sleeper = spawn(sleep_long, NULL);
    cr_assert_eq(pipe2(env.pipe, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            0, env.sp),
                 0);
    env.stream = corio_stream_new(env.sp[0], NULL);
    cr_assert_not_null(env.stream);
    let_tasks_run();
    cr_assert(corio_lock_is_locked(env.held));
}

static void env_close(void)
{
    void *item = NULL;

    cr_assert_eq(corio_event_set(env.release), 0);
    cr_assert_eq(corio_task_join(env.holder, NULL), 0);
    corio_task_cancel(env.sleeper);
    expect_fail(corio_task_join(env.sleeper, NULL), ECANCELED);
    cr_assert_eq(corio_chan_recv(env.full, &item, 0), 0);
    cr_assert_eq(CORIO_TO_INT(item), 1);
    cr_assert_eq(corio_chan_free(env.empty), 0, "a waiter was left on it");
    cr_assert_eq(corio_chan_free(env.full), 0, "a waiter was left on it");
    cr_assert_eq(corio_lock_free(env.held), 0, "a waiter was left on it");
    cr_assert_eq(corio_event_free(env.release), 0);
    cr_assert_eq(corio_sem_free(env.zero), 0, "a waiter was left on it");
    cr_assert_eq(corio_event_free(env.unset), 0, "a waiter was left on it");
    cr_assert_eq(corio_cond_free(env.cond), 0, "a waiter was left on it");
    cr_assert_eq(corio_future_free(env.pending), 0, "a waiter was left on it");
    corio_fd_forget(env.pipe[0]);
    close(env.pipe[0]);
    close(env.pipe[1]);
    corio_stream_close(env.stream);
    close(env.sp[1]);
}

/* One call of p on env, that must wait. Returns 0 or -1 with errno. */
static int block_once(enum prim p)
{
    char buf[8];
    void *item = NULL;
    corio_chan_op ops[2] = {
        {.chan = env.empty, .dir = CORIO_CHAN_RECV},
        {.chan = env.full, .dir = CORIO_CHAN_SEND, .item = CORIO_INT(2)},
    };
    ssize_t n;
    int rc;

    switch (p) {
    case P_SLEEP:
        return corio_sleep(60 * CORIO_SECOND);
    case P_SLEEP_UNTIL:
        return corio_sleep_until(corio_now() + 60 * CORIO_SECOND);
    case P_SLEEP0:
        return corio_sleep(0);
    case P_CHAN_RECV:
        return corio_chan_recv(env.empty, &item, -1);
    case P_CHAN_SEND:
        return corio_chan_send(env.full, CORIO_INT(2), -1);
    case P_SELECT:
        rc = corio_chan_select(ops, 2, -1);
        return rc >= 0 ? 0 : -1;
    case P_WAIT_DONE:
        return corio_chan_wait_done(env.full, -1);
    case P_LOCK:
        rc = corio_lock_acquire(env.held, -1);
        if (rc == 0) /* should not happen: do not keep it */
            corio_lock_release(env.held);
        return rc;
    case P_SEM:
        return corio_sem_acquire(env.zero, -1);
    case P_EVENT:
        return corio_event_wait(env.unset, -1);
    case P_COND:
        return corio_cond_wait(env.cond, -1);
    case P_FUTURE:
        return corio_future_wait(env.pending, -1);
    case P_TASK_WAIT:
        return corio_task_wait(env.sleeper, -1);
    case P_FD_WAIT:
        return corio_fd_wait(env.pipe[0], CORIO_READ, -1) > 0 ? 0 : -1;
    case P_FD_READ:
        n = corio_fd_read(env.pipe[0], buf, 1, -1);
        return n >= 0 ? 0 : -1;
    case P_STREAM_READ:
        n = corio_stream_read(env.stream, buf, 1, -1);
        return n >= 0 ? 0 : -1;
    }
    return 0;
}

/* ======================================================================
 * Sticky cancellation: a task that ignores ECANCELED and retries.
 * ====================================================================== */

/* Calls p n times, ignoring the outcome (the bug the rule protects
 * against: a retry loop that would block forever after a cancellation). */
struct retrier {
    enum prim p;
    int n;
    bool started;
    int ok, fails, wrong;   /* wrong: failures with another errno */
    int wrong_err;
};

static void *retrier(void *arg)
{
    struct retrier *r = arg;
    corio_lock *cl = corio_cond_lock(env.cond);

    if (r->p == P_COND && corio_lock_acquire(cl, -1) == -1)
        return CORIO_INT(-1);
    r->started = true;
    for (int i = 0; i < r->n; i++) {
        errno = 0;
        if (block_once(r->p) == 0) {
            r->ok++;
            continue;
        }
        r->fails++;
        if (errno != ECANCELED) {
            r->wrong++;
            r->wrong_err = errno;
        }
    }
    if (r->p == P_COND)
        corio_lock_release(cl); /* a failed cond wait returns holding it */
    return NULL;
}

/* The task parks in p; it is cancelled; its 99 retries fail at once and it
 * ends, in bounded time. */
static void retry_after_cancel(enum prim p)
{
    corio_loop *loop = loop_open();
    struct retrier r = {.p = p, .n = 100};
    corio_task *t;
    int64_t t0;
    int rc;

    env_open();
    t = spawn(retrier, &r);
    let_tasks_run();
    cr_assert(r.started);
    cr_assert_eq(r.ok + r.fails, 0, "%s: the first call did not wait",
                 prim_name(p));
    t0 = corio_now();
    cr_assert_eq(corio_task_cancel(t), 1);
    rc = corio_task_wait(t, t0 + (2000 + SLACK_MS) * MS);
    cr_assert_eq(rc, 0, "%s: the task did not end: a retry blocked again "
                 "(%d calls failed, %d succeeded)", prim_name(p), r.fails,
                 r.ok);
    cr_assert_lt(elapsed_ms(t0), AT_ONCE_MS, "%s: %lld ms", prim_name(p),
                 (long long)elapsed_ms(t0));
    cr_assert_eq(r.ok, 0, "%s: %d calls succeeded", prim_name(p), r.ok);
    cr_assert_eq(r.fails, 100, "%s", prim_name(p));
    cr_assert_eq(r.wrong, 0, "%s: failed with %s, not ECANCELED",
                 prim_name(p), strerror(r.wrong_err));
    cr_assert_eq(corio_task_state(t), CORIO_CANCELLED);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    env_close();
    loop_done(loop);
}

Test(sticky, retried_sleep, .timeout = TIMEOUT) { retry_after_cancel(P_SLEEP); }
Test(sticky, retried_sleep_until, .timeout = TIMEOUT) { retry_after_cancel(P_SLEEP_UNTIL); }
Test(sticky, retried_chan_recv, .timeout = TIMEOUT) { retry_after_cancel(P_CHAN_RECV); }
Test(sticky, retried_chan_send, .timeout = TIMEOUT) { retry_after_cancel(P_CHAN_SEND); }
Test(sticky, retried_select, .timeout = TIMEOUT) { retry_after_cancel(P_SELECT); }
Test(sticky, retried_chan_wait_done, .timeout = TIMEOUT) { retry_after_cancel(P_WAIT_DONE); }
Test(sticky, retried_lock_acquire, .timeout = TIMEOUT) { retry_after_cancel(P_LOCK); }
Test(sticky, retried_sem_acquire, .timeout = TIMEOUT) { retry_after_cancel(P_SEM); }
Test(sticky, retried_event_wait, .timeout = TIMEOUT) { retry_after_cancel(P_EVENT); }
Test(sticky, retried_cond_wait, .timeout = TIMEOUT) { retry_after_cancel(P_COND); }
Test(sticky, retried_future_wait, .timeout = TIMEOUT) { retry_after_cancel(P_FUTURE); }
Test(sticky, retried_task_wait, .timeout = TIMEOUT) { retry_after_cancel(P_TASK_WAIT); }
Test(sticky, retried_fd_wait, .timeout = TIMEOUT) { retry_after_cancel(P_FD_WAIT); }
Test(sticky, retried_fd_read, .timeout = TIMEOUT) { retry_after_cancel(P_FD_READ); }
Test(sticky, retried_stream_read, .timeout = TIMEOUT) { retry_after_cancel(P_STREAM_READ); }

/* A task that cancels itself and then only yields: every sleep(0) fails. */
static void *self_cancel_then_yield(void *arg)
{
    struct retrier *r = arg;

    corio_task_cancel(corio_task_self());
    r->started = true;
    for (int i = 0; i < r->n; i++) {
        if (corio_sleep(0) == 0)
            r->ok++;
        else if (errno == ECANCELED)
            r->fails++;
        else
            r->wrong++;
    }
    return NULL;
}

Test(sticky, sleep0_fails_after_a_self_cancel, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct retrier r = {.n = 50};
    corio_task *t = spawn(self_cancel_then_yield, &r);

    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(r.ok, 0);
    cr_assert_eq(r.fails, 50);
    cr_assert_eq(r.wrong, 0);
    loop_done(loop);
}

/* corio_task_self_cancelled() is not consumed by reading it: a cancelled
 * task is told so every time it asks. */
static void *polls_cancelled(void *arg)
{
    int *seen = arg;

    corio_task_cancel(corio_task_self());
    for (int i = 0; i < 1000; i++)
        if (corio_task_self_cancelled())
            (*seen)++;
    return NULL;
}

Test(sticky, self_cancelled_stays_true, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    int seen = 0;
    corio_task *t = spawn(polls_cancelled, &seen);

    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(seen, 1000);
    loop_done(loop);
}

/* ======================================================================
 * Checkpoints: calls that could complete without waiting -- a free lock,
 * a semaphore unit, a set event, a buffered item, room in a channel, a
 * receiver waiting for the item, a done future, a finished task, a ready
 * fd, bytes in a stream -- fail too once the caller is cancelled
 * (ECANCELED) or its scope has expired (ETIMEDOUT), and take nothing.
 * That is Trio's rule (every blocking call is a checkpoint), which the
 * commit states ("corio__checkpoint in calls that can complete without
 * waiting") and loop.h's Scopes section promises ("every blocking call
 * inside it fails at once"); a loop of such calls would otherwise never
 * see its cancellation.
 *
 * NOTE: sync.c and chan.c check since ffb07b0 (and sync.h says so: "every
 * blocking call fails at once ..., ready or not"). Still not checked, and
 * failing here: corio_future_wait on a done future (future.c),
 * corio_task_wait on a finished task (task.c), corio_fd_wait on a ready fd
 * and corio_fd_read with bytes waiting (loop/wait.c, io/socket.c),
 * corio_stream_read with bytes waiting (io/stream.c).
 * ====================================================================== */

enum ready_prim {
    R_LOCK,         /* a free lock */
    R_SEM,          /* a semaphore at 1 */
    R_EVENT,        /* a set event */
    R_CHAN_RECV,    /* an item buffered */
    R_CHAN_SEND,    /* room in the buffer */
    R_HANDOFF,      /* a receiver waits on an unbuffered channel */
    R_SELECT,       /* select: a receive with an item buffered */
    R_WAIT_DONE,    /* no item unfinished */
    R_FUTURE,       /* a done future */
    R_TASK_WAIT,    /* a finished task */
    R_FD_WAIT,      /* a pipe with a byte */
    R_FD_READ,      /* the same, corio_fd_read */
    R_STREAM_READ,  /* a stream with a byte to read */
    R_COUNT
};

static const char *ready_name(enum ready_prim p)
{
    static const char *const names[] = {
        "lock_acquire", "sem_acquire", "event_wait", "chan_recv",
        "chan_send",    "chan_send to a waiting receiver", "chan_select",
        "chan_wait_done", "future_wait", "task_wait", "fd_wait", "fd_read",
        "stream_read",
    };

    return names[p];
}

static struct {
    corio_lock *lock;
    corio_sem *one;
    corio_event *set;
    corio_chan *buffered;   /* capacity 2, one item */
    corio_chan *room;       /* capacity 1, empty */
    corio_chan *handoff;    /* unbuffered; `receiver` waits on it */
    corio_task *receiver;
    corio_chan *finished_items; /* wait_done returns at once */
    corio_future *done;
    corio_task *finished;
    int pipe[2];            /* one byte in it */
    int sp[2];              /* one byte sent to sp[0] */
    corio_stream *stream;   /* over sp[0] */
} rdy;

static void *handoff_receiver(void *arg)
{
    void *item = NULL;

    (void)arg;
    if (corio_chan_recv(rdy.handoff, &item, -1) == -1)
        return CORIO_INT(-errno);
    return item;
}

static void ready_open(void)
{
    memset(&rdy, 0, sizeof(rdy));
    rdy.lock = corio_lock_new();
    rdy.one = corio_sem_new(1);
    rdy.set = corio_event_new();
    rdy.buffered = corio_chan_new(2);
    rdy.room = corio_chan_new(1);
    rdy.handoff = corio_chan_new(0);
    rdy.finished_items = corio_chan_new(1);
    rdy.done = corio_future_new();
    cr_assert(rdy.lock && rdy.one && rdy.set && rdy.buffered && rdy.room &&
              rdy.handoff && rdy.finished_items && rdy.done);
    cr_assert_eq(corio_event_set(rdy.set), 0);
    cr_assert_eq(corio_chan_send(rdy.buffered, CORIO_INT(11), -1), 0);
    cr_assert_eq(corio_future_set_result(rdy.done, CORIO_INT(12)), 0);
    rdy.receiver = spawn(handoff_receiver, NULL);
    rdy.finished = spawn(identity, CORIO_INT(13));
    cr_assert_eq(pipe2(rdy.pipe, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(write(rdy.pipe[1], "p", 1), 1);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            0, rdy.sp),
                 0);
    cr_assert_eq(write(rdy.sp[1], "s", 1), 1);
    rdy.stream = corio_stream_new(rdy.sp[0], NULL);
    cr_assert_not_null(rdy.stream);
    let_tasks_run();
    cr_assert(corio_task_is_done(rdy.finished));
    cr_assert_not(corio_task_is_done(rdy.receiver));
}

static void ready_close(void)
{
    void *r = NULL;

    /* Release the receiver if nothing was handed to it (one handed an
     * item but not run yet is off the queue: this send then times out). */
    if (corio_chan_send(rdy.handoff, CORIO_INT(99), 0) == -1)
        cr_assert_eq(errno, ETIMEDOUT, "%s", strerror(errno));
    cr_assert_eq(corio_task_join(rdy.receiver, &r), 0);
    cr_assert_eq(corio_task_join(rdy.finished, NULL), 0);
    while (corio_chan_try_recv(rdy.buffered, &r) == 0)
        ;
    while (corio_chan_try_recv(rdy.room, &r) == 0)
        ;
    cr_assert_eq(corio_lock_free(rdy.lock), 0);
    cr_assert_eq(corio_sem_free(rdy.one), 0);
    cr_assert_eq(corio_event_free(rdy.set), 0);
    cr_assert_eq(corio_chan_free(rdy.buffered), 0);
    cr_assert_eq(corio_chan_free(rdy.room), 0);
    cr_assert_eq(corio_chan_free(rdy.handoff), 0);
    cr_assert_eq(corio_chan_free(rdy.finished_items), 0);
    cr_assert_eq(corio_future_free(rdy.done), 0);
    corio_fd_forget(rdy.pipe[0]);
    close(rdy.pipe[0]);
    close(rdy.pipe[1]);
    corio_stream_close(rdy.stream);
    close(rdy.sp[1]);
}

/* One call of p on rdy. Returns 0 or -1 with errno. */
static int ready_once(enum ready_prim p)
{
    char buf[8];
    void *item = NULL;
    corio_chan_op op = {.chan = rdy.buffered, .dir = CORIO_CHAN_RECV};

    switch (p) {
    case R_LOCK:
        return corio_lock_acquire(rdy.lock, -1);
    case R_SEM:
        return corio_sem_acquire(rdy.one, -1);
    case R_EVENT:
        return corio_event_wait(rdy.set, -1);
    case R_CHAN_RECV:
        return corio_chan_recv(rdy.buffered, &item, -1);
    case R_CHAN_SEND:
        return corio_chan_send(rdy.room, CORIO_INT(21), -1);
    case R_HANDOFF:
        return corio_chan_send(rdy.handoff, CORIO_INT(22), -1);
    case R_SELECT:
        return corio_chan_select(&op, 1, -1) == 0 ? 0 : -1;
    case R_WAIT_DONE:
        return corio_chan_wait_done(rdy.finished_items, -1);
    case R_FUTURE:
        return corio_future_wait(rdy.done, -1);
    case R_TASK_WAIT:
        return corio_task_wait(rdy.finished, -1);
    case R_FD_WAIT:
        return corio_fd_wait(rdy.pipe[0], CORIO_READ, -1) > 0 ? 0 : -1;
    case R_FD_READ:
        return corio_fd_read(rdy.pipe[0], buf, 1, -1) == 1 ? 0 : -1;
    case R_STREAM_READ:
        return corio_stream_read(rdy.stream, buf, 1, -1) == 1 ? 0 : -1;
    case R_COUNT:
        break;
    }
    return 0;
}

/* Nothing was taken: the state ready_open made is still there. Returns a
 * description of what changed, or NULL. */
static const char *ready_untouched(enum ready_prim p)
{
    char c;

    switch (p) {
    case R_LOCK:
        return corio_lock_is_locked(rdy.lock) ? "the lock was taken" : NULL;
    case R_SEM:
        return corio_sem_value(rdy.one) != 1 ? "the unit was taken" : NULL;
    case R_CHAN_RECV:
    case R_SELECT:
        return corio_chan_len(rdy.buffered) != 1 ? "the item was taken" : NULL;
    case R_CHAN_SEND:
        return corio_chan_len(rdy.room) != 0 ? "the item was sent" : NULL;
    case R_HANDOFF:
        return corio_task_is_done(rdy.receiver) ? "the item was handed over"
                                                : NULL;
    case R_FD_READ:
        return read(rdy.pipe[0], &c, 1) != 1 ? "the byte was read" : NULL;
    case R_STREAM_READ:
        return corio_stream_read(rdy.stream, &c, 1, 0) != 1 ? "the byte was read"
                                                            : NULL;
    default:
        return NULL;
    }
}

struct ready_call {
    enum ready_prim p;
    bool shielded;          /* the call is made in a shield */
    int rc, err;
};

/* Cancels itself, then makes the call that could complete at once. */
static void *cancelled_ready_call(void *arg)
{
    struct ready_call *c = arg;

    corio_task_cancel(corio_task_self());
    errno = 0;
    if (c->shielded) {
        CORIO_SHIELD(-1);

        c->rc = ready_once(c->p);
    } else {
        c->rc = ready_once(c->p);
    }
    c->err = errno;
    if (c->rc == 0 && c->p == R_LOCK)
        corio_lock_release(rdy.lock);
    if (c->rc == 0 && c->p == R_SEM)
        corio_sem_release(rdy.one);
    return NULL;
}

enum how { BY_CANCEL, BY_SCOPE };

static void ready_call_fails(enum ready_prim p, enum how how)
{
    corio_loop *loop = loop_open();
    struct ready_call c = {.p = p};
    const char *changed;

    ready_open();
    if (how == BY_CANCEL) {
        corio_task *t = spawn(cancelled_ready_call, &c);

        expect_fail(corio_task_join(t, NULL), ECANCELED);
    } else {
        /* On the thread's own stack, in a scope whose deadline has passed. */
        corio_scope s;

        corio_scope_enter(&s, corio_now() - MS);
        errno = 0;
        c.rc = ready_once(p);
        c.err = errno;
        cr_assert_eq(corio_scope_exit(&s), c.rc == -1,
                     "exit tells whether the scope failed a call");
        if (c.rc == 0 && p == R_LOCK)
            corio_lock_release(rdy.lock);
        if (c.rc == 0 && p == R_SEM)
            corio_sem_release(rdy.one);
    }
    changed = ready_untouched(p);
    cr_assert_eq(c.rc, -1, "%s completed in a %s (it must fail: %s)",
                 ready_name(p),
                 how == BY_CANCEL ? "cancelled task" : "expired scope",
                 changed != NULL ? changed : "nothing taken");
    cr_assert_eq(c.err, how == BY_CANCEL ? ECANCELED : ETIMEDOUT,
                 "%s: errno %s", ready_name(p), strerror(c.err));
    cr_assert_null(changed, "%s failed, but %s", ready_name(p), changed);
    /* The control: uncancelled, out of the scope, the call completes. */
    if (p != R_FD_READ && p != R_STREAM_READ && p != R_CHAN_RECV &&
        p != R_SELECT) { /* ready_untouched consumed those */
        cr_assert_eq(ready_once(p), 0, "%s: %s", ready_name(p),
                     strerror(errno));
        if (p == R_LOCK)
            cr_assert_eq(corio_lock_release(rdy.lock), 0);
    }
    ready_close();
    loop_done(loop);
}

#define CHECKPOINT_TESTS(name, p)                                              \
    Test(checkpoint, name##_when_cancelled, .timeout = TIMEOUT)               \
    {                                                                          \
        ready_call_fails(p, BY_CANCEL);                                        \
    }                                                                          \
    Test(checkpoint, name##_in_an_expired_scope, .timeout = TIMEOUT)          \
    {                                                                          \
        ready_call_fails(p, BY_SCOPE);                                         \
    }

CHECKPOINT_TESTS(free_lock, R_LOCK)
CHECKPOINT_TESTS(sem_unit, R_SEM)
CHECKPOINT_TESTS(set_event, R_EVENT)
CHECKPOINT_TESTS(buffered_item, R_CHAN_RECV)
CHECKPOINT_TESTS(room_to_send, R_CHAN_SEND)
CHECKPOINT_TESTS(waiting_receiver, R_HANDOFF)
CHECKPOINT_TESTS(ready_select, R_SELECT)
CHECKPOINT_TESTS(nothing_unfinished, R_WAIT_DONE)
CHECKPOINT_TESTS(done_future, R_FUTURE)
CHECKPOINT_TESTS(finished_task, R_TASK_WAIT)
CHECKPOINT_TESTS(ready_fd, R_FD_WAIT)
CHECKPOINT_TESTS(fd_with_a_byte, R_FD_READ)
CHECKPOINT_TESTS(stream_with_a_byte, R_STREAM_READ)

/* In a shield the same calls complete: the cancellation does not reach
 * them. (Passes with or without the checkpoints.) */
Test(checkpoint, a_shield_lets_ready_calls_through, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();

    for (int p = 0; p < R_COUNT; p++) {
        struct ready_call c = {.p = (enum ready_prim)p, .shielded = true};

        ready_open();
        expect_fail(corio_task_join(spawn(cancelled_ready_call, &c), NULL),
                    ECANCELED);
        cr_assert_eq(c.rc, 0, "%s in a shield: %s", ready_name(c.p),
                     strerror(c.err));
        ready_close();
    }
    loop_done(loop);
}

/* The calls that never block (try_*) are not checkpoints: a cancelled task
 * can still use them, in its cleanup say. */
static void *cancelled_tries(void *arg)
{
    corio_chan *ch = arg;
    corio_lock *l = corio_lock_new();
    corio_sem *s = corio_sem_new(1);
    void *item = NULL;

    corio_task_cancel(corio_task_self());
    CHECK(l != NULL && s != NULL);
    CHECK(corio_chan_try_send(ch, CORIO_INT(3)) == 0);
    CHECK(corio_chan_try_recv(ch, &item) == 0 && CORIO_TO_INT(item) == 3);
    CHECK(corio_lock_try_acquire(l) == 0);
    CHECK(corio_lock_release(l) == 0);
    CHECK(corio_sem_try_acquire(s) == 0);
    CHECK(corio_sem_release(s) == 0);
    CHECK(corio_lock_free(l) == 0 && corio_sem_free(s) == 0);
    return NULL;
}

Test(checkpoint, try_calls_work_when_cancelled, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    corio_chan *ch = corio_chan_new(1);
    corio_task *t = spawn(cancelled_tries, ch);

    cr_assert_eq(corio_task_wait(t, -1), 0);
    cr_assert_null(corio_task_result(t), "%s", (char *)corio_task_result(t));
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(corio_chan_free(ch), 0);
    loop_done(loop);
}

/* ======================================================================
 * Hand-offs: a woken waiter's call succeeds, the next one fails.
 * ====================================================================== */

struct handoff {
    corio_chan *ch;
    int rc1, rc2, err2;
    void *item1, *item2;
};

static void *recv_twice(void *arg)
{
    struct handoff *h = arg;

    h->rc1 = corio_chan_recv(h->ch, &h->item1, -1);
    errno = 0;
    h->rc2 = corio_chan_recv(h->ch, &h->item2, -1);
    h->err2 = errno;
    return NULL;
}

/* The receiver is handed item 1 and cancelled before it runs: it gets item
 * 1; its next receive would wait (nothing more is sent) and fails. */
Test(handoff, handed_item_kept_next_wait_fails, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct handoff h = {.ch = corio_chan_new(0)};
    corio_task *t;
    int64_t t0;

    cr_assert_not_null(h.ch);
    t = spawn(recv_twice, &h);
    let_tasks_run();
    cr_assert_eq(corio_chan_send(h.ch, CORIO_INT(1), 0), 0, "handed over");
    cr_assert_eq(corio_task_cancel(t), 1);
    t0 = corio_now();
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_lt(elapsed_ms(t0), AT_ONCE_MS);
    cr_assert_eq(h.rc1, 0, "the handed item was lost to the cancellation");
    cr_assert_eq(CORIO_TO_INT(h.item1), 1);
    cr_assert_eq(h.rc2, -1);
    cr_assert_eq(h.err2, ECANCELED);
    cr_assert_eq(corio_chan_free(h.ch), 0);
    loop_done(loop);
}

/* The same, with item 2 buffered behind item 1: the next receive could
 * complete at once, and fails all the same (a checkpoint), leaving item 2.
 * (Failed at 3d94e3d; passes since ffb07b0.) */
Test(checkpoint, handed_item_kept_next_buffered_receive_fails, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct handoff h = {.ch = corio_chan_new(1)};
    corio_task *t;
    void *item = NULL;

    cr_assert_not_null(h.ch);
    t = spawn(recv_twice, &h);
    let_tasks_run();
    cr_assert_eq(corio_chan_send(h.ch, CORIO_INT(1), 0), 0, "handed over");
    cr_assert_eq(corio_chan_send(h.ch, CORIO_INT(2), 0), 0, "buffered");
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(h.rc1, 0, "the handed item was lost to the cancellation");
    cr_assert_eq(CORIO_TO_INT(h.item1), 1);
    cr_assert_eq(h.rc2, -1, "the second receive took item %d",
                 (int)CORIO_TO_INT(h.item2));
    cr_assert_eq(h.err2, ECANCELED);
    cr_assert_eq(corio_chan_try_recv(h.ch, &item), 0, "item 2 was lost");
    cr_assert_eq(CORIO_TO_INT(item), 2);
    cr_assert_eq(corio_chan_free(h.ch), 0);
    loop_done(loop);
}

/* A lock handed over to a waiter cancelled before it runs: its acquire
 * succeeds (it owns the lock), its next blocking call fails. */
struct lock_handoff {
    corio_lock *l;
    int rc1, rc2, err2;
    bool held;
};

static void *acquire_then_sleep(void *arg)
{
    struct lock_handoff *h = arg;

    h->rc1 = corio_lock_acquire(h->l, -1);
    h->held = corio_lock_is_locked(h->l);
    errno = 0;
    h->rc2 = corio_sleep(60 * CORIO_SECOND);
    h->err2 = errno;
    if (h->rc1 == 0)
        corio_lock_release(h->l);
    return NULL;
}

Test(handoff, handed_lock_kept_next_sleep_fails, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct lock_handoff h = {.l = corio_lock_new()};
    corio_task *t;

    cr_assert_not_null(h.l);
    cr_assert_eq(corio_lock_acquire(h.l, -1), 0);
    t = spawn(acquire_then_sleep, &h);
    let_tasks_run();
    cr_assert_eq(corio_lock_release(h.l), 0, "passes it to the task");
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(h.rc1, 0, "the handed lock was lost to the cancellation");
    cr_assert(h.held);
    cr_assert_eq(h.rc2, -1);
    cr_assert_eq(h.err2, ECANCELED);
    cr_assert_not(corio_lock_is_locked(h.l));
    cr_assert_eq(corio_lock_free(h.l), 0);
    loop_done(loop);
}

/* ======================================================================
 * Scopes: an expired scope fails every blocking call in it at once.
 * ====================================================================== */

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Every kind of blocking call on env (P_COND needs the lock: not here). */
static const enum prim all_blocking[] = {
    P_SLEEP, P_SLEEP_UNTIL, P_SLEEP0,  P_CHAN_RECV, P_CHAN_SEND,
    P_SELECT, P_WAIT_DONE, P_LOCK,     P_SEM,       P_EVENT,
    P_FUTURE, P_TASK_WAIT, P_FD_WAIT,  P_FD_READ,   P_STREAM_READ,
};

/* A scope expires during a sleep; then every blocking call in it fails at
 * once with ETIMEDOUT until it is left; after that they wait again. In a
 * task or on the thread's stack. Returns NULL or what went wrong. */
static char *expired_scope_body(void)
{
    int64_t t0 = corio_now();

    {
        CORIO_SCOPE_NAMED(s, t0 + 30 * MS);

        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS);
        for (size_t i = 0; i < NELEMS(all_blocking); i++) {
            int64_t t1 = corio_now();
            int rc, err;

            errno = 0;
            rc = block_once(all_blocking[i]);
            err = errno;
            if (rc != -1 || err != ETIMEDOUT || elapsed_ms(t1) >= AT_ONCE_MS) {
                snprintf(failure, sizeof(failure),
                         "%s in the expired scope: rc %d, errno %s, %lld ms",
                         prim_name(all_blocking[i]), rc, strerror(err),
                         (long long)elapsed_ms(t1));
                return failure;
            }
        }
        CHECK(corio_scope_exit(&s));
    }
    t0 = corio_now();
    CHECK(corio_sleep(20 * MS) == 0);
    CHECK(elapsed_ms(t0) >= 20);
    CHECK(corio_event_wait(env.unset, corio_now() + 10 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(elapsed_ms(t0) >= 30);
    return NULL;
}

static void *expired_scope_task(void *arg)
{
    (void)arg;
    return expired_scope_body();
}

Test(scope, expired_fails_every_call_until_left_in_a_task, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    void *r = "not run";

    env_open();
    cr_assert_eq(corio_task_join(spawn(expired_scope_task, NULL), &r), 0);
    cr_assert_null(r, "%s", (char *)r);
    env_close();
    loop_done(loop);
}

Test(scope, expired_fails_every_call_until_left_on_the_thread_stack,
     .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    char *r;

    env_open();
    r = expired_scope_body();
    cr_assert_null(r, "%s", r);
    env_close();
    loop_done(loop);
}

/* A scope entered with its deadline already past fails the first call. */
Test(scope, entered_expired_fails_the_first_call, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    corio_scope s;
    int64_t t0 = corio_now();

    corio_scope_enter(&s, t0 - CORIO_SECOND);
    expect_fail(corio_sleep(60 * CORIO_SECOND), ETIMEDOUT);
    expect_fail(corio_sleep(0), ETIMEDOUT);
    cr_assert_lt(elapsed_ms(t0), AT_ONCE_MS);
    cr_assert(corio_scope_exit(&s));
    cr_assert_eq(corio_sleep(0), 0);
    /* Deadline 0 is a time long past too, not "none". */
    corio_scope_enter(&s, 0);
    expect_fail(corio_sleep(MS), ETIMEDOUT);
    cr_assert(corio_scope_exit(&s));
    loop_done(loop);
}

/* ---- Nesting ------------------------------------------------------------ */

static void *nested_body(void *arg)
{
    int64_t t0 = corio_now(), t1;

    (void)arg;
    /* The outer expires; the inner (no deadline) does not shelter from it,
     * in the inner or after it. */
    {
        CORIO_SCOPE_NAMED(outer, t0 + 30 * MS);
        {
            CORIO_SCOPE_NAMED(inner, -1);

            CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
            CHECK(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS);
            t1 = corio_now();
            CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
            CHECK(elapsed_ms(t1) < AT_ONCE_MS);
            CHECK(!corio_scope_exit(&inner)); /* it was not the cause */
        }
        t1 = corio_now();
        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t1) < AT_ONCE_MS);
        CHECK(corio_scope_exit(&outer));
    }
    CHECK(corio_sleep(5 * MS) == 0);

    /* An inner deadline later than the outer one does not extend it. */
    t0 = corio_now();
    {
        CORIO_SCOPE_NAMED(outer, t0 + 30 * MS);
        CORIO_SCOPE_NAMED(inner, t0 + 60 * CORIO_SECOND);

        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS);
        CHECK(!corio_scope_exit(&inner));
        CHECK(corio_scope_exit(&outer));
    }

    /* The inner expires first: leaving it, the outer goes on. */
    t0 = corio_now();
    {
        CORIO_SCOPE_NAMED(outer, t0 + 60 * CORIO_SECOND);
        {
            CORIO_SCOPE_NAMED(inner, t0 + 30 * MS);

            CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
            CHECK(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS);
            CHECK(corio_scope_exit(&inner));
        }
        t1 = corio_now();
        CHECK(corio_sleep(20 * MS) == 0);
        CHECK(elapsed_ms(t1) >= 20);
        CHECK(!corio_scope_exit(&outer));
    }

    /* Three deep, the middle one earliest. */
    t0 = corio_now();
    {
        CORIO_SCOPE_NAMED(a, t0 + 60 * CORIO_SECOND);
        CORIO_SCOPE_NAMED(b, t0 + 40 * MS);
        CORIO_SCOPE_NAMED(c, t0 + 30 * CORIO_SECOND);

        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t0) >= 40 && elapsed_ms(t0) < 40 + SLACK_MS);
        CHECK(!corio_scope_exit(&c));
        CHECK(corio_scope_exit(&b));
        CHECK(!corio_scope_exit(&a));
    }
    return NULL;
}

Test(scope, nested_earliest_deadline_wins, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    void *r = "not run";

    cr_assert_eq(corio_task_join(spawn(nested_body, NULL), &r), 0);
    cr_assert_null(r, "%s", (char *)r);
    r = nested_body(NULL); /* and on the thread's stack */
    cr_assert_null(r, "%s", (char *)r);
    loop_done(loop);
}

/* ---- corio_scope_cancel -------------------------------------------------- */

struct scoped {
    corio_scope *scope;     /* published while entered */
    bool shield_inside;     /* park in a shield nested in the scope */
    bool scope_inside;      /* park in a plain scope nested in it */
    int rc1, err1, rc2, err2, rc3;
    int64_t ms1, ms2;
    bool inner_caught, caught;
};

/* Enters a scope, parks in a 60 s sleep (or 100 ms in a shield), then
 * sleeps again in the scope, leaves it, and sleeps 10 ms. Returns 5. */
static void *parks_in_scope(void *arg)
{
    struct scoped *sc = arg;
    corio_scope s, in;
    int64_t t0;

    corio_scope_enter(&s, -1);
    sc->scope = &s;
    t0 = corio_now();
    if (sc->shield_inside) {
        corio_scope_shield(&in, -1);
        sc->rc1 = corio_sleep(100 * MS);
        sc->err1 = errno;
        sc->inner_caught = corio_scope_exit(&in);
    } else if (sc->scope_inside) {
        corio_scope_enter(&in, -1);
        sc->rc1 = corio_sleep(60 * CORIO_SECOND);
        sc->err1 = errno;
        sc->inner_caught = corio_scope_exit(&in);
    } else {
        sc->rc1 = corio_sleep(60 * CORIO_SECOND);
        sc->err1 = errno;
    }
    sc->ms1 = elapsed_ms(t0);
    t0 = corio_now();
    sc->rc2 = corio_sleep(60 * CORIO_SECOND);
    sc->err2 = errno;
    sc->ms2 = elapsed_ms(t0);
    sc->scope = NULL;
    sc->caught = corio_scope_exit(&s);
    sc->rc3 = corio_sleep(10 * MS);
    return CORIO_INT(5);
}

/* After 30 ms, cancels the scope published in arg. */
static void *cancels_scope(void *arg)
{
    struct scoped *sc = arg;

    if (corio_sleep(30 * MS) == -1 || sc->scope == NULL)
        return CORIO_INT(-1);
    return CORIO_INT(corio_scope_cancel(sc->scope));
}

static void scope_cancelled_by_another_task(struct scoped *sc)
{
    corio_loop *loop = loop_open();
    corio_task *p = spawn_named(parks_in_scope, sc, "parker");
    corio_task *c = spawn(cancels_scope, sc);
    void *r = NULL;

    cr_assert_eq(corio_task_join(c, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 0, "corio_scope_cancel failed");
    cr_assert_eq(corio_task_join(p, &r), 0,
                 "a cancelled scope is not a cancelled task: %s",
                 strerror(errno));
    cr_assert_eq(CORIO_TO_INT(r), 5);
    loop_done(loop);
}

Test(scope, cancel_from_another_task_wakes_the_parked_call, .timeout = TIMEOUT)
{
    struct scoped sc = {0};

    scope_cancelled_by_another_task(&sc);
    cr_assert_eq(sc.rc1, -1);
    cr_assert_eq(sc.err1, ECANCELED);
    cr_assert(sc.ms1 >= 30 && sc.ms1 < 30 + SLACK_MS, "woken at %lld ms",
              (long long)sc.ms1);
    cr_assert_eq(sc.rc2, -1, "the next call in the cancelled scope waited");
    cr_assert_eq(sc.err2, ECANCELED);
    cr_assert_lt(sc.ms2, AT_ONCE_MS);
    cr_assert(sc.caught, "exit returns true");
    cr_assert_eq(sc.rc3, 0, "out of the scope, calls work again");
}

/* Parked in a plain scope nested in the cancelled one: woken too; the inner
 * scope was not the cause. */
Test(scope, cancel_reaches_a_call_in_a_nested_scope, .timeout = TIMEOUT)
{
    struct scoped sc = {.scope_inside = true};

    scope_cancelled_by_another_task(&sc);
    cr_assert_eq(sc.rc1, -1);
    cr_assert_eq(sc.err1, ECANCELED);
    cr_assert_lt(sc.ms1, 30 + SLACK_MS);
    cr_assert_not(sc.inner_caught);
    cr_assert_eq(sc.rc2, -1);
    cr_assert_eq(sc.err2, ECANCELED);
    cr_assert(sc.caught);
    cr_assert_eq(sc.rc3, 0);
}

/* Parked in a shield nested in the cancelled scope: not woken; the first
 * call after the shield fails at once. */
Test(scope, cancel_does_not_reach_into_a_nested_shield, .timeout = TIMEOUT)
{
    struct scoped sc = {.shield_inside = true};

    scope_cancelled_by_another_task(&sc);
    cr_assert_eq(sc.rc1, 0, "the shielded sleep was cut: %s",
                 strerror(sc.err1));
    cr_assert_geq(sc.ms1, 100);
    cr_assert_not(sc.inner_caught);
    cr_assert_eq(sc.rc2, -1);
    cr_assert_eq(sc.err2, ECANCELED);
    cr_assert_lt(sc.ms2, AT_ONCE_MS);
    cr_assert(sc.caught);
    cr_assert_eq(sc.rc3, 0);
}

/* The thread's own stack parks in its scope; a task cancels it. */
Test(scope, cancel_of_the_thread_stacks_scope_by_a_task, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct scoped sc = {0};
    corio_scope s;
    corio_task *c;
    int64_t t0 = corio_now();
    void *r = NULL;

    corio_scope_enter(&s, -1);
    sc.scope = &s;
    c = spawn(cancels_scope, &sc);
    expect_fail(corio_sleep(60 * CORIO_SECOND), ECANCELED);
    cr_assert(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS);
    expect_fail(corio_sleep(60 * CORIO_SECOND), ECANCELED);
    cr_assert_lt(elapsed_ms(t0), 30 + SLACK_MS);
    cr_assert(corio_scope_exit(&s));
    cr_assert_eq(corio_sleep(5 * MS), 0);
    cr_assert_eq(corio_task_join(c, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 0);
    loop_done(loop);
}

/* A scope cancelled by its own task: the next call fails. One cancelled but
 * left without a blocking call in it caught nothing: exit is false. */
Test(scope, cancel_by_its_own_task_and_uncaught, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    corio_scope s;

    corio_scope_enter(&s, -1);
    cr_assert_eq(corio_scope_cancel(&s), 0);
    expect_fail(corio_sleep(0), ECANCELED);
    cr_assert(corio_scope_exit(&s));

    corio_scope_enter(&s, -1);
    cr_assert_eq(corio_scope_cancel(&s), 0);
    cr_assert_not(corio_scope_exit(&s), "no call failed in it");
    cr_assert_eq(corio_sleep(0), 0);
    loop_done(loop);
}

Test(scope, cancel_and_set_deadline_of_a_scope_not_entered, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    corio_scope s;

    expect_fail(corio_scope_cancel(NULL), EINVAL);
    expect_fail(corio_scope_set_deadline(NULL, -1), EINVAL);
    corio_scope_enter(&s, -1);
    cr_assert_not(corio_scope_exit(&s));
    expect_fail(corio_scope_cancel(&s), EINVAL);
    expect_fail(corio_scope_set_deadline(&s, corio_now()), EINVAL);
    cr_assert_eq(corio_sleep(0), 0, "nothing happened to the thread");
    loop_done(loop);
}

/* ---- corio_scope_set_deadline --------------------------------------------- */

struct moved {
    int64_t first_ns;       /* the scope's deadline, from entry */
    int64_t sleep_ns;       /* the call parked in it */
    int64_t move_after_ns;  /* when the mover moves it */
    int64_t move_to_ns;     /* from the move; -1: no deadline */
    corio_scope *scope;
    int set_rc;
    int rc, err;
    int64_t entered, moved, ended; /* corio_now() at each */
    bool caught;
};

static void *parks_in_moved_scope(void *arg)
{
    struct moved *m = arg;
    corio_scope s;

    m->entered = corio_now();
    corio_scope_enter(&s, m->entered + m->first_ns);
    m->scope = &s;
    errno = 0;
    m->rc = corio_sleep(m->sleep_ns);
    m->err = errno;
    m->ended = corio_now();
    m->scope = NULL;
    m->caught = corio_scope_exit(&s);
    return NULL;
}

static void *moves_deadline(void *arg)
{
    struct moved *m = arg;

    if (corio_sleep(m->move_after_ns) == -1 || m->scope == NULL) {
        m->set_rc = -2;
        return NULL;
    }
    m->moved = corio_now();
    m->set_rc = corio_scope_set_deadline(
        m->scope, m->move_to_ns < 0 ? -1 : m->moved + m->move_to_ns);
    return NULL;
}

/* The parked call is in a task (or on the thread's stack); another task
 * moves its scope's deadline. */
static void move_deadline(struct moved *m, bool on_thread_stack)
{
    corio_loop *loop = loop_open();

    if (on_thread_stack) {
        corio_task *mover;

        /* The mover starts once the thread's stack has entered and
         * parked: the thread's sleep runs the loop. */
        m->scope = NULL;
        mover = spawn(moves_deadline, m);
        parks_in_moved_scope(m);
        cr_assert_eq(corio_task_join(mover, NULL), 0);
    } else {
        corio_task *p = spawn(parks_in_moved_scope, m);
        corio_task *mover = spawn(moves_deadline, m);

        cr_assert_eq(corio_task_join(mover, NULL), 0);
        cr_assert_eq(corio_task_join(p, NULL), 0);
    }
    cr_assert_eq(m->set_rc, 0, "corio_scope_set_deadline: %d", m->set_rc);
    /* The test means something only if the move came while the call was
     * parked, before its first deadline (a slow machine may miss it). */
    cr_assert_lt(m->moved, m->entered + m->first_ns,
                 "the move came %lld ms after the first deadline: too slow "
                 "a machine for this test (raise CORIO_TEST_SLACK_MS)",
                 (long long)((m->moved - m->entered - m->first_ns) / MS));
    loop_done(loop);
}

/* ms from the move to the end of the call. */
static int64_t after_move_ms(const struct moved *m)
{
    return (m->ended - m->moved) / MS;
}

/* 1 s moved, at 30 ms, to 30 ms from then. */
static void moved_earlier(bool on_thread_stack)
{
    struct moved m = {.first_ns = CORIO_SECOND + test_extra_ms() * MS,
                      .sleep_ns = 60 * CORIO_SECOND,
                      .move_after_ns = 30 * MS,
                      .move_to_ns = 30 * MS};

    move_deadline(&m, on_thread_stack);
    cr_assert_eq(m.rc, -1);
    cr_assert_eq(m.err, ETIMEDOUT);
    cr_assert(after_move_ms(&m) >= 30 && after_move_ms(&m) < 30 + SLACK_MS,
              "ended %lld ms after the move", (long long)after_move_ms(&m));
    cr_assert(m.caught);
}

/* 100 ms (and the slack) moved, at 20 ms, to 200 ms past the first: it
 * ends then, not at the first. */
static void moved_later(bool on_thread_stack)
{
    int64_t first = (100 + test_extra_ms()) * MS;
    struct moved m = {.first_ns = first,
                      .sleep_ns = 60 * CORIO_SECOND,
                      .move_after_ns = 20 * MS,
                      .move_to_ns = first + 200 * MS};

    move_deadline(&m, on_thread_stack);
    cr_assert_eq(m.rc, -1);
    cr_assert_eq(m.err, ETIMEDOUT);
    cr_assert_geq(m.ended - m.entered, first + 200 * MS,
                  "ended at %lld ms: the first deadline cut it",
                  (long long)((m.ended - m.entered) / MS));
    cr_assert(after_move_ms(&m) >= m.move_to_ns / MS &&
                  after_move_ms(&m) < m.move_to_ns / MS + SLACK_MS,
              "ended %lld ms after the move", (long long)after_move_ms(&m));
    cr_assert(m.caught);
}

Test(scope, set_deadline_earlier_on_a_parked_task, .timeout = TIMEOUT)
{
    moved_earlier(false);
}

Test(scope, set_deadline_later_on_a_parked_task, .timeout = TIMEOUT)
{
    moved_later(false);
}

Test(scope, set_deadline_earlier_on_the_thread_stack, .timeout = TIMEOUT)
{
    moved_earlier(true);
}

Test(scope, set_deadline_later_on_the_thread_stack, .timeout = TIMEOUT)
{
    moved_later(true);
}

/* Removed (-1): the call ends by its own time, and the scope caught
 * nothing. */
Test(scope, set_deadline_none_lets_the_call_finish, .timeout = TIMEOUT)
{
    int64_t first = (100 + test_extra_ms()) * MS;
    struct moved m = {.first_ns = first,
                      .sleep_ns = first + 100 * MS,
                      .move_after_ns = 20 * MS,
                      .move_to_ns = -1};

    move_deadline(&m, false);
    cr_assert_eq(m.rc, 0, "the sleep failed: %s", strerror(m.err));
    cr_assert_geq(m.ended - m.entered, m.sleep_ns);
    cr_assert_not(m.caught);
}

/* Moved later than the call's own end: the call ends by its own time and
 * succeeds (its scope's timer is not the one left armed). */
Test(scope, set_deadline_past_the_calls_own, .timeout = TIMEOUT)
{
    int64_t first = (100 + test_extra_ms()) * MS;
    struct moved m = {.first_ns = first,
                      .sleep_ns = first + 100 * MS,
                      .move_after_ns = 20 * MS,
                      .move_to_ns = first + CORIO_SECOND};

    move_deadline(&m, false);
    cr_assert_eq(m.rc, 0, "the sleep failed: %s", strerror(m.err));
    cr_assert((m.ended - m.entered) / MS >= m.sleep_ns / MS &&
                  (m.ended - m.entered) / MS < m.sleep_ns / MS + SLACK_MS,
              "ended at %lld ms", (long long)((m.ended - m.entered) / MS));
    cr_assert_not(m.caught);
}

/* Moved into the past: the parked call fails now. */
Test(scope, set_deadline_in_the_past_fails_the_call_now, .timeout = TIMEOUT)
{
    struct moved m = {.first_ns = CORIO_SECOND + test_extra_ms() * MS,
                      .sleep_ns = 60 * CORIO_SECOND,
                      .move_after_ns = 20 * MS,
                      .move_to_ns = 0}; /* "now": passed once checked */

    move_deadline(&m, false);
    cr_assert_eq(m.rc, -1);
    cr_assert_eq(m.err, ETIMEDOUT);
    cr_assert_lt(after_move_ms(&m), SLACK_MS, "ended %lld ms after the move",
                 (long long)after_move_ms(&m));
    cr_assert(m.caught);
}

/* ---- CORIO_SCOPE exits by itself ------------------------------------------ */

/* A function whose scope has expired: it returns from inside the block. */
static int returns_from_inside(int64_t deadline, bool leave)
{
    CORIO_SCOPE(deadline);

    if (leave)
        return 1;
    return corio_sleep(60 * CORIO_SECOND) == -1 ? 2 : 3;
}

static void *scope_macros_body(void *arg)
{
    corio_scope outer;
    int i;

    (void)arg;
    corio_scope_enter(&outer, -1);
    /* return */
    CHECK(returns_from_inside(corio_now() - MS, true) == 1);
    CHECK(corio_sleep(MS) == 0); /* the expired scope is gone */
    CHECK(returns_from_inside(corio_now() - MS, false) == 2);
    CHECK(corio_sleep(MS) == 0);
    /* break */
    for (i = 0; i < 3; i++) {
        CORIO_SCOPE(corio_now() - MS);

        if (i == 1)
            break;
    }
    CHECK(i == 1);
    CHECK(corio_sleep(MS) == 0);
    /* continue, and a failing call in each round */
    for (i = 0; i < 3; i++) {
        CORIO_SCOPE(corio_now() - MS);

        if (corio_sleep(60 * CORIO_SECOND) == -1)
            continue;
        CHECK(!"the sleep in an expired scope succeeded");
    }
    CHECK(corio_sleep(MS) == 0);
    /* goto out of the block */
    {
        CORIO_SHIELD(corio_now() - MS);

        if (corio_sleep(60 * CORIO_SECOND) == -1)
            goto out;
        CHECK(!"the sleep in an expired shield succeeded");
    }
out:
    CHECK(corio_sleep(MS) == 0);
    /* A second scope entered now has `outer` around it, nothing else:
     * exiting both in order would abort if a CORIO_SCOPE were left. */
    {
        corio_scope second;

        corio_scope_enter(&second, -1);
        CHECK(!corio_scope_exit(&second));
    }
    CHECK(!corio_scope_exit(&outer));
    return NULL;
}

Test(scope, scope_macro_exits_on_return_break_continue_goto, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    void *r = "not run";

    cr_assert_eq(corio_task_join(spawn(scope_macros_body, NULL), &r), 0);
    cr_assert_null(r, "%s", (char *)r);
    r = scope_macros_body(NULL); /* on the thread's stack too */
    cr_assert_null(r, "%s", (char *)r);
    loop_done(loop);
}

/* A task whose function returns from inside a CORIO_SCOPE block ends
 * without a scope entered (no abort), with its result. */
static void *task_returns_in_scope(void *arg)
{
    CORIO_SCOPE(corio_now() + 60 * CORIO_SECOND);
    CORIO_SHIELD(-1);

    if (arg != NULL)
        return arg;
    corio_sleep(MS);
    return CORIO_INT(8);
}

Test(scope, a_task_returning_inside_scope_macros_ends_cleanly, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    void *r = NULL;

    cr_assert_eq(corio_task_join(spawn(task_returns_in_scope, CORIO_INT(7)), &r),
                 0);
    cr_assert_eq(CORIO_TO_INT(r), 7);
    cr_assert_eq(corio_task_join(spawn(task_returns_in_scope, NULL), &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 8);
    loop_done(loop);
}

/* ======================================================================
 * Shields: the task's cancellation and the outer scopes stay out; the
 * shield's own deadline (and its own cancellation) get in.
 * ====================================================================== */

static char *shield_failure; /* a cancelled task's result is lost: here */

static char *cancelled_task_in_shields_body(void)
{
    int64_t t0;

    corio_task_cancel(corio_task_self());
    {
        CORIO_SHIELD_NAMED(sh, -1);

        t0 = corio_now();
        CHECK(corio_sleep(30 * MS) == 0);
        CHECK(elapsed_ms(t0) >= 30);
        {   /* a deadline scope inside the shield works */
            CORIO_SCOPE_NAMED(in, corio_now() + 20 * MS);

            CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
            CHECK(corio_scope_exit(&in));
        }
        {   /* a shield in the shield */
            CORIO_SHIELD_NAMED(in, -1);

            CHECK(corio_sleep(MS) == 0);
            CHECK(!corio_scope_exit(&in));
        }
        {   /* a scope cancelled in the shield */
            CORIO_SCOPE_NAMED(in, -1);

            CHECK(corio_scope_cancel(&in) == 0);
            CHECK(corio_sleep(MS) == -1 && errno == ECANCELED);
            CHECK(corio_scope_exit(&in));
        }
        CHECK(corio_sleep(MS) == 0);
        CHECK(!corio_scope_exit(&sh));
    }
    t0 = corio_now();
    CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ECANCELED);
    CHECK(elapsed_ms(t0) < AT_ONCE_MS);
    /* The shield's own deadline ends its calls, and sticks. */
    t0 = corio_now();
    {
        CORIO_SHIELD_NAMED(sh, t0 + 40 * MS);

        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t0) >= 40 && elapsed_ms(t0) < 40 + SLACK_MS);
        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t0) < 40 + SLACK_MS);
        CHECK(corio_scope_exit(&sh));
    }
    CHECK(corio_sleep(0) == -1 && errno == ECANCELED);
    return NULL;
}

static void *cancelled_task_in_shields(void *arg)
{
    (void)arg;
    shield_failure = cancelled_task_in_shields_body();
    return NULL;
}

Test(shield, keeps_the_tasks_cancellation_out, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();

    shield_failure = "not run";
    expect_fail(corio_task_join(spawn(cancelled_task_in_shields, NULL), NULL),
                ECANCELED);
    cr_assert_null(shield_failure, "%s", shield_failure);
    loop_done(loop);
}

/* An outer scope that has expired does not reach into a shield; nor does
 * its earlier deadline cut a call there short. */
static void *outer_scope_and_shield(void *arg)
{
    int64_t t0 = corio_now(), t1;

    (void)arg;
    {
        CORIO_SCOPE_NAMED(outer, t0 + 20 * MS);

        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        {
            CORIO_SHIELD_NAMED(sh, -1);

            t1 = corio_now();
            CHECK(corio_sleep(30 * MS) == 0);
            CHECK(elapsed_ms(t1) >= 30);
            CHECK(!corio_scope_exit(&sh));
        }
        t1 = corio_now();
        CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
        CHECK(elapsed_ms(t1) < AT_ONCE_MS);
        CHECK(corio_scope_exit(&outer));
    }
    t0 = corio_now();
    {
        CORIO_SCOPE_NAMED(outer, t0 + 20 * MS);
        {
            CORIO_SHIELD_NAMED(sh, t0 + 100 * MS);

            CHECK(corio_sleep(60 * CORIO_SECOND) == -1 && errno == ETIMEDOUT);
            CHECK(elapsed_ms(t0) >= 100 && elapsed_ms(t0) < 100 + SLACK_MS);
            CHECK(corio_scope_exit(&sh));
        }
        CHECK(corio_sleep(0) == -1 && errno == ETIMEDOUT);
        CHECK(corio_scope_exit(&outer));
    }
    return NULL;
}

Test(shield, keeps_an_expired_outer_scope_out, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    void *r = "not run";

    cr_assert_eq(corio_task_join(spawn(outer_scope_and_shield, NULL), &r), 0);
    cr_assert_null(r, "%s", (char *)r);
    r = outer_scope_and_shield(NULL); /* on the thread's stack */
    cr_assert_null(r, "%s", (char *)r);
    loop_done(loop);
}

/* A task parked in a shield, acted on from outside. */
struct shield_park {
    corio_scope *shield;    /* published while entered */
    int64_t shield_ns;      /* its deadline, from entry; -1: none */
    int64_t sleep_ns, after_ns;
    int rc1, err1, rc2, err2;
    int64_t ms1, ms2;
    int64_t end1;           /* when the first call ended (corio_now) */
    bool caught;
};

static void *parks_in_shield(void *arg)
{
    struct shield_park *sp = arg;
    corio_scope sh;
    int64_t t0 = corio_now();

    corio_scope_shield(&sh, sp->shield_ns < 0 ? -1 : t0 + sp->shield_ns);
    sp->shield = &sh;
    errno = 0;
    sp->rc1 = corio_sleep(sp->sleep_ns);
    sp->err1 = errno;
    sp->end1 = corio_now();
    sp->ms1 = elapsed_ms(t0);
    sp->shield = NULL;
    sp->caught = corio_scope_exit(&sh);
    t0 = corio_now();
    errno = 0;
    sp->rc2 = corio_sleep(sp->after_ns);
    sp->err2 = errno;
    sp->ms2 = elapsed_ms(t0);
    return NULL;
}

/* The task is cancelled at 30 ms: the shielded 100 ms sleep completes;
 * the call after the shield fails at once. */
Test(shield, task_cancelled_while_parked_in_a_shield, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct shield_park sp = {.shield_ns = -1, .sleep_ns = 100 * MS,
                             .after_ns = 60 * CORIO_SECOND};
    corio_task *t = spawn(parks_in_shield, &sp);

    cr_assert_eq(corio_sleep(30 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(sp.rc1, 0, "the shielded sleep was cut: %s",
                 strerror(sp.err1));
    cr_assert_geq(sp.ms1, 100);
    cr_assert_not(sp.caught);
    cr_assert_eq(sp.rc2, -1);
    cr_assert_eq(sp.err2, ECANCELED);
    cr_assert_lt(sp.ms2, AT_ONCE_MS);
    loop_done(loop);
}

/* Cancelled at 20 ms, its shield ending at 60 ms: the sleep goes on to the
 * shield's deadline (ETIMEDOUT), then the cancellation. */
Test(shield, task_cancelled_in_a_shield_with_a_deadline, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct shield_park sp = {.shield_ns = 60 * MS,
                             .sleep_ns = 60 * CORIO_SECOND,
                             .after_ns = 60 * CORIO_SECOND};
    corio_task *t = spawn(parks_in_shield, &sp);

    cr_assert_eq(corio_sleep(20 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(sp.rc1, -1);
    cr_assert_eq(sp.err1, ETIMEDOUT);
    cr_assert(sp.ms1 >= 60 && sp.ms1 < 60 + SLACK_MS, "ended at %lld ms",
              (long long)sp.ms1);
    cr_assert(sp.caught);
    cr_assert_eq(sp.rc2, -1);
    cr_assert_eq(sp.err2, ECANCELED);
    cr_assert_lt(sp.ms2, AT_ONCE_MS);
    loop_done(loop);
}

/* The shield's own cancellation reaches the call parked in it. */
Test(shield, its_own_cancellation_gets_in, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct shield_park sp = {.shield_ns = -1, .sleep_ns = 60 * CORIO_SECOND,
                             .after_ns = 20 * MS};
    corio_task *t = spawn(parks_in_shield, &sp);

    cr_assert_eq(corio_sleep(30 * MS), 0);
    cr_assert_not_null(sp.shield);
    cr_assert_eq(corio_scope_cancel(sp.shield), 0);
    cr_assert_eq(corio_task_join(t, NULL), 0, "the task is not cancelled");
    cr_assert_eq(sp.rc1, -1);
    cr_assert_eq(sp.err1, ECANCELED);
    cr_assert_lt(sp.ms1, 30 + SLACK_MS);
    cr_assert(sp.caught);
    cr_assert_eq(sp.rc2, 0, "after the shield: %s", strerror(sp.err2));
    loop_done(loop);
}

/* The shield's deadline, moved from outside, reaches the call. */
Test(shield, its_deadline_moved_gets_in, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct shield_park sp = {.shield_ns = -1, .sleep_ns = 60 * CORIO_SECOND,
                             .after_ns = 20 * MS};
    corio_task *t = spawn(parks_in_shield, &sp);
    int64_t moved;

    cr_assert_eq(corio_sleep(30 * MS), 0);
    cr_assert_not_null(sp.shield);
    moved = corio_now();
    cr_assert_eq(corio_scope_set_deadline(sp.shield, moved + 20 * MS), 0);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(sp.rc1, -1);
    cr_assert_eq(sp.err1, ETIMEDOUT);
    cr_assert(sp.end1 - moved >= 20 * MS &&
                  sp.end1 - moved < (20 + SLACK_MS) * MS,
              "ended %lld ms after the move",
              (long long)((sp.end1 - moved) / MS));
    cr_assert(sp.caught);
    cr_assert_eq(sp.rc2, 0);
    loop_done(loop);
}

/* A cancelled task cleans up in a shield until the shield's deadline: it
 * sleeps, sends on a channel (to a receiver that comes later), drains a
 * stream (to a reader that comes later), then a call past the deadline
 * fails with ETIMEDOUT; after the shield, ECANCELED again. */
#define DRAIN_BYTES (512 * 1024)

struct cleanup {
    corio_chan *ch;
    corio_stream *st;
    int peer;               /* the other end of the stream's socketpair */
    int64_t shield_ns;
    int first_err;
    int sleep_rc, send_rc, drain_rc, late_rc, late_err, after_rc, after_err;
    int64_t late_ms, after_ms;
    bool caught;
    size_t got;             /* bytes the reader read */
    void *received;
};

static char drain_buf[DRAIN_BYTES];

static void *cleans_up_in_a_shield(void *arg)
{
    struct cleanup *c = arg;
    corio_scope sh;
    int64_t t0;

    if (corio_sleep(60 * CORIO_SECOND) == 0)
        return NULL;
    c->first_err = errno;
    t0 = corio_now();
    corio_scope_shield(&sh, t0 + c->shield_ns);
    c->sleep_rc = corio_sleep(20 * MS);
    c->send_rc = corio_chan_send(c->ch, CORIO_INT(5), -1);
    c->drain_rc = corio_stream_write(c->st, drain_buf, sizeof(drain_buf));
    if (c->drain_rc == 0)
        c->drain_rc = corio_stream_drain(c->st, -1);
    errno = 0;
    c->late_rc = corio_sleep(60 * CORIO_SECOND);
    c->late_err = errno;
    c->late_ms = elapsed_ms(t0);
    c->caught = corio_scope_exit(&sh);
    t0 = corio_now();
    errno = 0;
    c->after_rc = corio_sleep(60 * CORIO_SECOND);
    c->after_err = errno;
    c->after_ms = elapsed_ms(t0);
    return NULL;
}

static void *late_receiver(void *arg)
{
    struct cleanup *c = arg;

    if (corio_sleep(30 * MS) == -1 ||
        corio_chan_recv(c->ch, &c->received, -1) == -1)
        return CORIO_INT(-errno);
    return NULL;
}

static void *late_reader(void *arg)
{
    struct cleanup *c = arg;
    static char buf[65536]; /* not on the task's 64 KiB stack */
    ssize_t n;

    if (corio_sleep(30 * MS) == -1)
        return CORIO_INT(-errno);
    while (c->got < DRAIN_BYTES &&
           (n = corio_fd_read(c->peer, buf, sizeof(buf), -1)) > 0)
        c->got += (size_t)n;
    return NULL;
}

Test(shield, cancelled_task_sleeps_sends_and_drains_until_its_deadline,
     .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    corio_stream_opts opts = {.high_water = 1};
    struct cleanup c = {.shield_ns = (500 + test_extra_ms()) * MS};
    int sp[2];
    corio_task *t, *rcv, *rd;
    void *r1 = CORIO_INT(1), *r2 = CORIO_INT(1);

    c.ch = corio_chan_new(0);
    cr_assert_not_null(c.ch);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            0, sp),
                 0);
    c.st = corio_stream_new(sp[0], &opts);
    c.peer = sp[1];
    cr_assert_not_null(c.st);
    t = spawn(cleans_up_in_a_shield, &c);
    let_tasks_run();
    cr_assert_eq(corio_task_cancel(t), 1);
    rcv = spawn(late_receiver, &c);
    rd = spawn(late_reader, &c);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(corio_task_join(rcv, &r1), 0);
    cr_assert_eq(corio_task_join(rd, &r2), 0);
    cr_assert_null(r1);
    cr_assert_null(r2);
    cr_assert_eq(c.first_err, ECANCELED);
    cr_assert_eq(c.sleep_rc, 0, "sleep in the shield");
    cr_assert_eq(c.send_rc, 0, "send in the shield");
    cr_assert_eq(CORIO_TO_INT(c.received), 5);
    cr_assert_eq(c.drain_rc, 0, "drain in the shield");
    cr_assert_eq(c.got, DRAIN_BYTES);
    cr_assert_eq(c.late_rc, -1, "a sleep past the shield's deadline");
    cr_assert_eq(c.late_err, ETIMEDOUT);
    cr_assert(c.late_ms >= c.shield_ns / MS &&
                  c.late_ms < c.shield_ns / MS + SLACK_MS,
              "ended at %lld ms", (long long)c.late_ms);
    cr_assert(c.caught);
    cr_assert_eq(c.after_rc, -1);
    cr_assert_eq(c.after_err, ECANCELED);
    cr_assert_lt(c.after_ms, AT_ONCE_MS);
    corio_stream_close(c.st);
    corio_fd_forget(sp[1]);
    close(sp[1]);
    cr_assert_eq(corio_chan_free(c.ch), 0);
    loop_done(loop);
}

/* corio_loop_close cancels the tasks still alive and runs them until they
 * end, "bounded: a task that keeps blocking after cancellation is
 * abandoned" (loop.h). One that sleeps in a shield without deadline keeps
 * blocking after its cancellation: close must abandon it, not wait for its
 * sleep (60 s). Run in a child, so that the wait is bounded here.
 * FAILS at 3d94e3d (src/loop/fiber.c, corio__fibers_cancel_all): the
 * shielded sleep's timer keeps corio__loop_busy() true, and each
 * corio__loop_run_once(loop, true) blocks until that timer fires: close
 * waits for the whole sleep (up to 8 x 1000 such waits for a task that
 * sleeps in a loop), and so does corio_run when it closes its loop. */
static void *sleeps_in_a_shield_forever(void *arg)
{
    (void)arg;
    CORIO_SHIELD(-1);
    for (;;)
        corio_sleep(60 * CORIO_SECOND);
    return NULL;
}

static void child_closes_a_loop_with_a_shielded_sleeper(void *arg)
{
    corio_loop *loop = corio_loop_new();
    corio_task *t;
    int64_t t0;

    (void)arg;
    if (loop == NULL)
        _exit(3);
    t = corio_task_spawn(sleeps_in_a_shield_forever, NULL, NULL);
    if (t == NULL || corio_task_detach(t) == -1)
        _exit(4);
    corio_sleep(0); /* it starts and parks in its sleep */
    t0 = corio_now();
    corio_loop_close(loop);
    dprintf(STDERR_FILENO, "closed in %lld ms\n",
            (long long)((corio_now() - t0) / MS));
    _exit(0);
}

Test(shield, loop_close_abandons_a_task_asleep_in_a_shield, .timeout = TIMEOUT)
{
    static struct child_proc c;
    int bound_ms = (int)(2000 + 2 * test_slack_ms());
    char st[64];

    child_start(&c, child_closes_a_loop_with_a_shielded_sleeper, NULL);
    cr_assert(child_finish(&c, bound_ms),
              "corio_loop_close did not return within %d ms: it waits for "
              "the shielded sleep", bound_ms);
    cr_assert(WIFEXITED(c.status) &&
                  (WEXITSTATUS(c.status) == 0 || RUNNING_ON_VALGRIND),
              "the child ended with %s; stderr:\n%s",
              child_status_text(c.status, st, sizeof(st)), c.err);
    cr_assert_not_null(strstr(c.err, "closed in"), "stderr:\n%s", c.err);
}

/* ======================================================================
 * Misuse: reported with where the scope was entered (and by which task),
 * then abort. Each runs in a forked child (helpers/child.h).
 * ====================================================================== */

/* In the child: print "tag=file:line" for the line it is on, for the
 * parent to look for in the report. Used on the line of the scope's entry. */
#define HERE(tag) dprintf(STDERR_FILENO, "%s=%s:%d\n", (tag), __FILE__, __LINE__)

static corio_scope *published_scope;

static void *exits_out_of_order(void *arg)
{
    corio_scope a, b;

    (void)arg;
    HERE("outer"); corio_scope_enter(&a, -1);
    HERE("inner"); corio_scope_enter(&b, -1);
    corio_scope_exit(&a);
    dprintf(STDERR_FILENO, "survived the exit\n");
    corio_scope_exit(&b);
    return NULL;
}

static void *returns_with_a_scope(void *arg)
{
    corio_scope s;

    (void)arg;
    HERE("leaked"); corio_scope_enter(&s, -1);
    return NULL;
}

static void *enters_and_parks(void *arg)
{
    corio_scope s;

    (void)arg;
    HERE("owner"); corio_scope_enter(&s, -1);
    published_scope = &s;
    corio_sleep(60 * CORIO_SECOND);
    corio_scope_exit(&s);
    return NULL;
}

static void *exits_the_published_scope(void *arg)
{
    (void)arg;
    corio_sleep(10 * MS);
    corio_scope_exit(published_scope);
    dprintf(STDERR_FILENO, "survived the exit\n");
    return NULL;
}

/* Child bodies. */
static void child_task(void *arg)
{
    corio_task_attr attr = {.name = "scoper"};
    corio_task *t;

    if (corio_loop_new() == NULL)
        _exit(3);
    t = corio_task_spawn((corio_fn)arg, NULL, &attr);
    if (t == NULL)
        _exit(4);
    if (corio_task_join(t, NULL) == -1)
        dprintf(STDERR_FILENO, "join: %s\n", strerror(errno));
    dprintf(STDERR_FILENO, "the task ended\n");
    _exit(5);
}

static void child_intruder_task(void *arg)
{
    corio_task_attr attr = {.name = "intruder"};
    corio_task *owner, *intruder;

    (void)arg;
    if (corio_loop_new() == NULL)
        _exit(3);
    owner = corio_task_spawn(enters_and_parks, NULL, NULL);
    intruder = corio_task_spawn(exits_the_published_scope, NULL, &attr);
    if (owner == NULL || intruder == NULL)
        _exit(4);
    if (corio_task_join(intruder, NULL) == -1)
        dprintf(STDERR_FILENO, "join: %s\n", strerror(errno));
    _exit(5);
}

static void child_thread_stack_scope_exited_by_a_task(void *arg)
{
    corio_task_attr attr = {.name = "intruder"};
    corio_scope s;

    (void)arg;
    if (corio_loop_new() == NULL)
        _exit(3);
    HERE("owner"); corio_scope_enter(&s, -1);
    published_scope = &s;
    if (corio_task_spawn(exits_the_published_scope, NULL, &attr) == NULL)
        _exit(4);
    corio_sleep(CORIO_SECOND);
    _exit(5);
}

static void child_thread_stack_out_of_order(void *arg)
{
    corio_scope a, b;

    (void)arg;
    HERE("outer"); corio_scope_enter(&a, -1);
    HERE("inner"); corio_scope_enter(&b, -1);
    corio_scope_exit(&a);
    _exit(5);
}

static void child_exit_twice(void *arg)
{
    corio_scope a;

    (void)arg;
    HERE("twice"); corio_scope_enter(&a, -1);
    corio_scope_exit(&a);
    corio_scope_exit(&a);
    _exit(5);
}

static void *thread_leaves_a_scope(void *arg)
{
    corio_scope s;

    (void)arg;
    HERE("thread"); corio_scope_enter(&s, -1);
    return NULL;
}

static void child_thread_ends_in_scope(void *arg)
{
    pthread_t th;

    (void)arg;
    if (pthread_create(&th, NULL, thread_leaves_a_scope, NULL) != 0)
        _exit(3);
    pthread_join(th, NULL);
    dprintf(STDERR_FILENO, "the thread ended\n");
    _exit(5);
}

/* The "file:line" the child printed for tag. */
static const char *where_printed(const struct child_proc *c, const char *tag,
                                 char *buf, size_t size)
{
    char key[32];
    const char *p;
    size_t n;

    snprintf(key, sizeof(key), "%s=", tag);
    p = strstr(c->err, key);
    cr_assert_not_null(p, "the child did not print %s; stderr:\n%s", tag,
                       c->err);
    p += strlen(key);
    n = strcspn(p, "\n");
    cr_assert_lt(n, size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* Run body in a child; it must abort with a report containing `what`,
 * "entered at <where tag was printed>" (and "innermost entered at" the
 * inner tag's), and `who` (the task, or the thread's stack). */
static void expect_report(void (*body)(void *), void *arg, const char *what,
                          const char *tag, const char *inner_tag,
                          const char *who)
{
    static struct child_proc child; /* 16 KiB: not on the stack */
    struct child_proc *c = &child;
    char loc[256], want[320], st[64];

    child_start(c, body, arg);
    cr_assert(child_finish(c, (int)(10000 + test_extra_ms())),
              "the child hung; stderr:\n%s", c->err);
    cr_assert(WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT,
              "the child ended with %s, not SIGABRT; stderr:\n%s",
              child_status_text(c->status, st, sizeof(st)), c->err);
    cr_assert_null(strstr(c->err, "survived"), "stderr:\n%s", c->err);
    cr_assert_not_null(strstr(c->err, what), "no \"%s\" in:\n%s", what,
                       c->err);
    snprintf(want, sizeof(want), "entered at %s",
             where_printed(c, tag, loc, sizeof(loc)));
    cr_assert_not_null(strstr(c->err, want), "no \"%s\" in:\n%s", want,
                       c->err);
    if (inner_tag != NULL) {
        snprintf(want, sizeof(want), "innermost entered at %s",
                 where_printed(c, inner_tag, loc, sizeof(loc)));
        cr_assert_not_null(strstr(c->err, want), "no \"%s\" in:\n%s", want,
                           c->err);
    }
    cr_assert_not_null(strstr(c->err, who), "no \"%s\" in:\n%s", who, c->err);
}

Test(scope_misuse, exit_not_innermost_in_a_task, .timeout = TIMEOUT)
{
    expect_report(child_task, (void *)exits_out_of_order,
                  "exit of a scope that is not the innermost", "outer",
                  "inner", "in task 'scoper'");
}

Test(scope_misuse, exit_not_innermost_on_the_thread_stack, .timeout = TIMEOUT)
{
    expect_report(child_thread_stack_out_of_order, NULL,
                  "exit of a scope that is not the innermost", "outer",
                  "inner", "on the thread's own stack");
}

Test(scope_misuse, task_returns_with_a_scope_entered, .timeout = TIMEOUT)
{
    expect_report(child_task, (void *)returns_with_a_scope,
                  "ended with a scope still entered", "leaked", NULL,
                  "task 'scoper'");
}

Test(scope_misuse, thread_ends_with_a_scope_entered, .timeout = TIMEOUT)
{
    expect_report(child_thread_ends_in_scope, NULL,
                  "a thread ended with a scope still entered", "thread", NULL,
                  "on the thread's own stack");
}

Test(scope_misuse, exit_by_another_task, .timeout = TIMEOUT)
{
    expect_report(child_intruder_task, NULL,
                  "exit of a scope entered by another task", "owner", NULL,
                  "in task 'intruder'");
}

Test(scope_misuse, exit_of_the_thread_stacks_scope_by_a_task, .timeout = TIMEOUT)
{
    expect_report(child_thread_stack_scope_exited_by_a_task, NULL,
                  "exit of a scope entered by another task", "owner", NULL,
                  "in task 'intruder'");
}

Test(scope_misuse, exit_twice, .timeout = TIMEOUT)
{
    expect_report(child_exit_twice, NULL, "exit of a scope that is not entered",
                  "twice", NULL, "on the thread's own stack");
}

/* ======================================================================
 * corio_task_join / join_all when the joiner is cancelled, or its scope
 * expires: the joined tasks are cancelled, their cleanup (in a shield)
 * runs before the join returns, and they are freed.
 * ====================================================================== */

struct victim {
    int64_t cleanup_ns;     /* its cleanup blocks this long, in a shield */
    bool started, cancelled, cleaned;
};

static void *victim_fn(void *arg)
{
    struct victim *v = arg;

    v->started = true;
    if (corio_sleep(60 * CORIO_SECOND) == 0)
        return CORIO_INT(1);
    v->cancelled = errno == ECANCELED;
    {
        CORIO_SHIELD(-1);

        if (corio_sleep(v->cleanup_ns) == -1)
            return NULL;
    }
    v->cleaned = true;
    return NULL;
}

struct joiner {
    corio_task *ts[4];
    struct victim *vs[4];   /* each task's victim record, or NULL */
    size_t n;
    bool all;               /* corio_task_join_all, else join ts[0] */
    int64_t scope_ns;       /* > 0: join in a scope ending that much later */
    bool cancel_self;       /* cancel itself before joining */
    void *results[4];
    int rc, err;
    bool cleaned_at_return; /* every victim's cleanup had run */
    size_t count_at_return; /* corio_task_count() then */
    bool caught;
};

static void *joiner_fn(void *arg)
{
    struct joiner *j = arg;
    corio_scope s;

    if (j->scope_ns > 0)
        corio_scope_enter(&s, corio_now() + j->scope_ns);
    if (j->cancel_self)
        corio_task_cancel(corio_task_self());
    errno = 0;
    if (j->all)
        j->rc = corio_task_join_all(j->ts, j->n, j->results);
    else
        j->rc = corio_task_join(j->ts[0], &j->results[0]);
    j->err = errno;
    j->cleaned_at_return = true;
    for (size_t i = 0; i < j->n; i++)
        if (j->vs[i] != NULL && !j->vs[i]->cleaned)
            j->cleaned_at_return = false;
    j->count_at_return = corio_task_count();
    if (j->scope_ns > 0)
        j->caught = corio_scope_exit(&s);
    return NULL;
}

/* The joiner (a task) waits in its join; it is cancelled (or its scope
 * expires): the join fails, after the victims' cleanup, leaving only the
 * joiner alive. */
static void joiner_gives_up(struct joiner *j, int want_err)
{
    corio_task *jt;
    int64_t t0;

    jt = spawn_named(joiner_fn, j, "joiner");
    let_tasks_run();
    for (size_t i = 0; i < j->n; i++)
        if (j->vs[i] != NULL)
            cr_assert(j->vs[i]->started);
    t0 = corio_now();
    if (want_err == ECANCELED && !j->cancel_self) {
        cr_assert_eq(corio_task_cancel(jt), 1);
        expect_fail(corio_task_join(jt, NULL), ECANCELED);
    } else if (want_err == ECANCELED) {
        expect_fail(corio_task_join(jt, NULL), ECANCELED);
    } else {
        cr_assert_eq(corio_task_join(jt, NULL), 0,
                     "an expired scope does not cancel the joiner");
    }
    cr_assert_eq(j->rc, -1);
    cr_assert_eq(j->err, want_err, "errno %s", strerror(j->err));
    for (size_t i = 0; i < j->n; i++)
        if (j->vs[i] != NULL)
            cr_assert(j->vs[i]->cancelled, "task %zu was not cancelled", i);
    cr_assert(j->cleaned_at_return,
              "the join returned before a joined task's cleanup ran");
    cr_assert_eq(j->count_at_return, 1,
                 "%zu tasks alive when the join returned (the joiner only)",
                 j->count_at_return);
    cr_assert_lt(elapsed_ms(t0), 50 + (int64_t)j->scope_ns / MS + SLACK_MS);
    cr_assert_eq(corio_task_count(), 0);
}

Test(join, cancelled_joiner_waits_for_the_cleanup, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v = {.cleanup_ns = 50 * MS};
    struct joiner j = {.n = 1, .vs = {&v}};

    j.ts[0] = spawn(victim_fn, &v);
    joiner_gives_up(&j, ECANCELED);
    cr_assert(v.cleaned);
    loop_done(loop);
}

Test(join, joiner_cancelled_before_it_joins, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v = {.cleanup_ns = 50 * MS};
    struct joiner j = {.n = 1, .vs = {&v}, .cancel_self = true};

    j.ts[0] = spawn(victim_fn, &v);
    joiner_gives_up(&j, ECANCELED);
    loop_done(loop);
}

Test(join, expired_scope_of_the_joiner, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v = {.cleanup_ns = 50 * MS};
    struct joiner j = {.n = 1, .vs = {&v}, .scope_ns = 40 * MS};

    j.ts[0] = spawn(victim_fn, &v);
    joiner_gives_up(&j, ETIMEDOUT);
    cr_assert(j.caught);
    loop_done(loop);
}

Test(join, join_all_cancelled_joiner_waits_for_every_cleanup, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v1 = {.cleanup_ns = 30 * MS}, v2 = {.cleanup_ns = 60 * MS};
    struct joiner j = {.n = 3, .all = true, .vs = {NULL, &v1, &v2}};

    j.ts[0] = spawn(identity, CORIO_INT(7));
    j.ts[1] = spawn(victim_fn, &v1);
    j.ts[2] = spawn(victim_fn, &v2);
    joiner_gives_up(&j, ECANCELED);
    cr_assert_eq(CORIO_TO_INT(j.results[0]), 7, "the finished one's result");
    loop_done(loop);
}

Test(join, join_all_joiner_cancelled_before, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v1 = {.cleanup_ns = 30 * MS}, v2 = {.cleanup_ns = 30 * MS};
    struct joiner j = {.n = 2, .all = true, .vs = {&v1, &v2},
                       .cancel_self = true};

    j.ts[0] = spawn(victim_fn, &v1);
    j.ts[1] = spawn(victim_fn, &v2);
    joiner_gives_up(&j, ECANCELED);
    loop_done(loop);
}

Test(join, join_all_expired_scope, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v1 = {.cleanup_ns = 30 * MS}, v2 = {.cleanup_ns = 30 * MS};
    struct joiner j = {.n = 2, .all = true, .vs = {&v1, &v2},
                       .scope_ns = 40 * MS};

    j.ts[0] = spawn(victim_fn, &v1);
    j.ts[1] = spawn(victim_fn, &v2);
    joiner_gives_up(&j, ETIMEDOUT);
    cr_assert(j.caught);
    loop_done(loop);
}

/* From the thread's own stack, in an expired scope. */
Test(join, thread_stack_scope_expires_in_join_and_join_all, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v = {.cleanup_ns = 40 * MS}, v1 = {.cleanup_ns = 20 * MS},
                  v2 = {.cleanup_ns = 40 * MS};
    corio_task *ts[2];
    corio_scope s;

    ts[0] = spawn(victim_fn, &v);
    corio_scope_enter(&s, corio_now() + 30 * MS);
    expect_fail(corio_task_join(ts[0], NULL), ETIMEDOUT);
    cr_assert(v.cancelled && v.cleaned, "join returned before the cleanup");
    cr_assert_eq(corio_task_count(), 0);
    cr_assert(corio_scope_exit(&s));

    ts[0] = spawn(victim_fn, &v1);
    ts[1] = spawn(victim_fn, &v2);
    corio_scope_enter(&s, corio_now() + 30 * MS);
    expect_fail(corio_task_join_all(ts, 2, NULL), ETIMEDOUT);
    cr_assert(v1.cleaned && v2.cleaned, "join_all returned before a cleanup");
    cr_assert_eq(corio_task_count(), 0);
    cr_assert(corio_scope_exit(&s));
    loop_done(loop);
}

/* A detached task and a group's child cannot be joined; join_all with one
 * of them among others fails before touching any. */
Test(join, detached_or_group_child_is_einval, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct victim v = {.cleanup_ns = 0}, gv = {.cleanup_ns = 0};
    corio_task *d = spawn(victim_fn, &v);
    corio_task *other = spawn(identity, CORIO_INT(4));
    corio_group *g = corio_group_new(-1);
    corio_task *child, *ts[2];
    void *r = NULL;

    cr_assert_not_null(g);
    child = corio_group_spawn(g, victim_fn, &gv, NULL);
    cr_assert_not_null(child);
    let_tasks_run();
    cr_assert_eq(corio_task_detach(d), 0);
    expect_fail(corio_task_join(d, NULL), EINVAL);
    expect_fail(corio_task_join(child, NULL), EINVAL);
    ts[0] = other;
    ts[1] = child;
    expect_fail(corio_task_join_all(ts, 2, NULL), EINVAL);
    ts[1] = d;
    expect_fail(corio_task_join_all(ts, 2, NULL), EINVAL);
    /* Nothing was done: other is still joinable, the child still the
     * group's, the detached task still running. */
    cr_assert_eq(corio_task_join(other, &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 4);
    cr_assert_not(gv.cancelled);
    cr_assert_eq(corio_task_cancel(child), 1);
    cr_assert_eq(corio_group_wait(g), 0);
    cr_assert_eq(corio_group_free(g), 0);
    cr_assert_eq(corio_task_cancel(d), 1);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert(v.cleaned);
    cr_assert_eq(corio_task_count(), 0);
    loop_done(loop);
}

/* join_all in a callback fails with EDEADLK and must leave every task as it
 * was (task.h: "EDEADLK in a callback"; join_all's own comment: "nothing
 * done"), including the ones already finished, which stay joinable.
 * BUG at 3d94e3d (src/task/task.c, corio_task_join_all): the loop reaps
 * (frees) ts[0] when it is finished before it reaches the unfinished ts[1],
 * whose wait fails with EDEADLK: the caller is told nothing was done and
 * later joins a freed task (use after free, double free). */
struct cb_join {
    corio_task *ts[2];
    int rc, err;
};

static void join_all_in_a_callback(void *arg)
{
    struct cb_join *c = arg;

    errno = 0;
    c->rc = corio_task_join_all(c->ts, 2, NULL);
    c->err = errno;
}

Test(join, join_all_edeadlk_in_a_callback_leaves_the_tasks, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct cb_join c = {0};
    struct victim v = {0};
    void *r = NULL;
    size_t finished_count;

    c.ts[0] = spawn(identity, CORIO_INT(9));
    c.ts[1] = spawn(victim_fn, &v);
    let_tasks_run();
    cr_assert(corio_task_is_done(c.ts[0]));
    finished_count = corio_task_count();
    cr_assert_eq(corio_loop_call_soon(loop, join_all_in_a_callback, &c, NULL),
                 0);
    cr_assert_eq(corio_sleep(0), 0); /* runs the callback */
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, EDEADLK);
    cr_assert_eq(corio_task_count(), finished_count);
    /* Under ASan or valgrind, the bug shows here as a use after free. */
    cr_assert_eq(corio_task_state(c.ts[0]), CORIO_DONE,
                 "ts[0] was freed by the failed join_all");
    cr_assert_eq(corio_task_join(c.ts[0], &r), 0);
    cr_assert_eq(CORIO_TO_INT(r), 9);
    corio_task_cancel(c.ts[1]);
    expect_fail(corio_task_join(c.ts[1], NULL), ECANCELED);
    loop_done(loop);
}

/* A NULL scope is reported, not a crash on a NULL pointer. */
static void enters_a_null_scope(void *arg)
{
    (void)arg;
    corio_scope_enter(NULL, -1);
}

static void exits_a_null_scope(void *arg)
{
    (void)arg;
    corio_scope_exit(NULL);
}

Test(scope_misuse, a_null_scope_is_reported, .timeout = TIMEOUT)
{
    static struct child_proc c;
    char st[64];
    void (*bodies[2])(void *) = {enters_a_null_scope, exits_a_null_scope};
    const char *what[2] = {"corio_scope_enter of a NULL scope",
                           "corio_scope_exit of a NULL scope"};

    for (int i = 0; i < 2; i++) {
        child_start(&c, bodies[i], NULL);
        cr_assert(child_finish(&c, (int)(10000 + test_extra_ms())),
                  "the child hung; stderr:\n%s", c.err);
        cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
                  "the child ended with %s, not SIGABRT; stderr:\n%s",
                  child_status_text(c.status, st, sizeof(st)), c.err);
        cr_assert_not_null(strstr(c.err, what[i]), "stderr:\n%s", c.err);
    }
}
