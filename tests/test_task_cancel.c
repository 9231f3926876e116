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
    (void)arg;
    if (corio_lock_acquire(env.held, -1) == -1)
        return CORIO_INT(-1);
    corio_event_wait(env.release, -1);
    corio_lock_release(env.held);
    return NULL;
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
    cr_assert(corio_lock_locked(env.held));
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
 * NOTE: at 3d94e3d no entry point of sync.c, chan.c, future.c, task.c
 * (corio_task_wait), wait.c (corio_fd_wait on a ready fd) or the stream
 * reads calls corio__checkpoint: these tests fail there, and pass once the
 * checks are added. include/corio/sync.h still says the opposite ("A call
 * that can complete at once ... completes, even past its deadline or with
 * a cancellation pending"): it must change with them.
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

    if (!corio_task_is_done(rdy.receiver))
        cr_assert_eq(corio_chan_send(rdy.handoff, CORIO_INT(99), -1), 0);
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
        return corio_lock_locked(rdy.lock) ? "the lock was taken" : NULL;
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
 * Fails at 3d94e3d (see the "checkpoint" suite). */
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
    h->held = corio_lock_locked(h->l);
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
    cr_assert_not(corio_lock_locked(h.l));
    cr_assert_eq(corio_lock_free(h.l), 0);
    loop_done(loop);
}
