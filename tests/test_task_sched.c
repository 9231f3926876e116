/* tests/test_task_sched.c -- the scheduler's fast paths: a task that parks
 * switches straight to the next ready task, and the loop skips its poll for
 * I/O while jobs keep being ready (CORIO__SPIN_MAX in src/loop/loop_int.h).
 * Neither may change the order tasks run in, starve timers, fds or
 * callbacks, or lose a task that ends after a direct switch.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#define TIMEOUT 30
/* Hand-offs a ping-pong may make before what it must not starve has run:
 * a poll comes every 64 iterations at most, so this is generous. */
#define MAX_ROUNDS 200000

static void run_main(corio_fn fn, void *arg)
{
    void *res = (void *)1;

    cr_assert_eq(corio_run(fn, arg, &res), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(res, "%s", (char *)res);
}

/* ---- A ping-pong that runs until something else has happened ------------- */

struct pp {
    corio_event *ping, *pong;
    volatile bool stop;         /* set by what must not be starved */
    long rounds;
};

static void *pong_task(void *arg)
{
    struct pp *p = arg;

    while (!p->stop) {
        if (corio_event_wait(p->ping, -1) == -1 || corio_event_clear(p->ping) == -1)
            return corio_task_fail(errno);
        if (corio_event_set(p->pong) == -1)
            return corio_task_fail(errno);
    }
    return (void *)7;
}

/* Ping until p->stop; returns the round trips made (-1 on error). */
static long ping(struct pp *p)
{
    while (!p->stop && p->rounds < MAX_ROUNDS) {
        if (corio_event_set(p->ping) == -1 || corio_event_wait(p->pong, -1) == -1 ||
            corio_event_clear(p->pong) == -1)
            return -1;
        p->rounds++;
    }
    return p->rounds;
}

static int pp_init(struct pp *p)
{
    memset(p, 0, sizeof(*p));
    p->ping = corio_event_new();
    p->pong = corio_event_new();
    return p->ping != NULL && p->pong != NULL ? 0 : -1;
}

/* Let pong see stop, then join it: it ends right after a direct switch. */
static char *pp_finish(struct pp *p, corio_task *t)
{
    void *res = NULL;

    p->stop = true;
    CHECK(corio_event_set(p->ping) == 0);
    CHECK(corio_task_join(t, &res) == 0);
    CHECK(res == (void *)7);
    corio_event_free(p->ping);
    corio_event_free(p->pong);
    return NULL;
}

/* ---- Timers ----------------------------------------------------------------- */

static void on_timer(void *arg)
{
    ((struct pp *)arg)->stop = true;
}

static void *timer_main(void *arg)
{
    struct pp p;
    corio_task *t;
    int64_t t0 = corio_now();
    long n;

    (void)arg;
    CHECK(pp_init(&p) == 0);
    CHECK(corio_loop_call_later(corio_loop_current(), 2 * CORIO_MSEC, on_timer, &p, NULL) == 0);
    t = corio_task_spawn(pong_task, &p, NULL);
    CHECK(t != NULL);
    n = ping(&p);
    CHECK(n > 0);
    CHECK(p.stop);                  /* the timer fired, rounds were left */
    CHECK(corio_now() - t0 >= 2 * CORIO_MSEC);
    return pp_finish(&p, t);
}

Test(sched, busy_ping_pong_does_not_starve_timers, .timeout = TIMEOUT)
{
    run_main(timer_main, NULL);
}

/* ---- File descriptors and callbacks ------------------------------------------- */

static void *reader_task(void *arg)
{
    struct pp *p = arg;
    int *fds = (int *)&p[1];
    char c;

    if (corio_fd_wait(fds[0], CORIO_READ, -1) == -1)
        return corio_task_fail(errno);
    if (read(fds[0], &c, 1) != 1 || c != 'x')
        return corio_task_fail(EIO);
    p->stop = true;
    return NULL;
}

static void *fd_main(void *arg)
{
    struct {
        struct pp p;
        int fds[2];
    } s;
    corio_task *r, *t;
    long n;

    (void)arg;
    CHECK(pp_init(&s.p) == 0);
    CHECK(pipe(s.fds) == 0);
    r = corio_task_spawn(reader_task, &s.p, NULL);
    CHECK(r != NULL);
    CHECK(corio_sleep(0) == 0);     /* the reader parks on the pipe */
    t = corio_task_spawn(pong_task, &s.p, NULL);
    CHECK(t != NULL);
    CHECK(write(s.fds[1], "x", 1) == 1);
    n = ping(&s.p);
    CHECK(n > 0);
    CHECK(s.p.stop);                /* the reader saw its byte and ran */
    CHECK(corio_task_join(r, NULL) == 0);
    close(s.fds[0]);
    close(s.fds[1]);
    return pp_finish(&s.p, t);
}

Test(sched, busy_ping_pong_does_not_starve_fds, .timeout = TIMEOUT)
{
    run_main(fd_main, NULL);
}

static void on_soon(void *arg)
{
    ((struct pp *)arg)->stop = true;
}

static void *callback_main(void *arg)
{
    struct pp p;
    corio_task *t;

    (void)arg;
    CHECK(pp_init(&p) == 0);
    t = corio_task_spawn(pong_task, &p, NULL);
    CHECK(t != NULL);
    CHECK(corio_sleep(0) == 0);     /* pong parks on its event */
    CHECK(corio_loop_call_soon(corio_loop_current(), on_soon, &p, NULL) == 0);
    CHECK(ping(&p) > 0);
    CHECK(p.stop);
    CHECK(p.rounds < 10);           /* the callback ran in the next batch */
    return pp_finish(&p, t);
}

Test(sched, callbacks_keep_their_turn, .timeout = TIMEOUT)
{
    run_main(callback_main, NULL);
}

/* ---- Order ---------------------------------------------------------------- */

static char order[64];
static size_t norder;

static void *turn_task(void *arg)
{
    for (int i = 0; i < 3; i++) {
        order[norder++] = (char)(intptr_t)arg;
        if (corio_sleep(0) == -1)
            return corio_task_fail(errno);
    }
    return NULL;
}

static void *lock_task(void *arg)
{
    corio_lock *l = arg;

    for (int i = 0; i < 3; i++) {
        if (corio_lock_acquire(l, -1) == -1)
            return corio_task_fail(errno);
        order[norder] = 'x';
        norder++;
        if (corio_sleep(0) == -1)
            return corio_task_fail(errno);
        corio_lock_release(l);
    }
    return NULL;
}

static void *order_main(void *arg)
{
    corio_task *ts[3];
    corio_lock *l;

    (void)arg;
    norder = 0;
    for (int i = 0; i < 3; i++) {
        ts[i] = corio_task_spawn(turn_task, (void *)(intptr_t)('A' + i), NULL);
        CHECK(ts[i] != NULL);
    }
    CHECK(corio_task_join_all(ts, 3, NULL) == 0);
    order[norder] = 0;
    CHECK(strcmp(order, "ABCABCABC") == 0);

    /* Tasks woken by a lock hand-off run one at a time, all of them. */
    norder = 0;
    l = corio_lock_new();
    CHECK(l != NULL);
    for (int i = 0; i < 3; i++) {
        ts[i] = corio_task_spawn(lock_task, l, NULL);
        CHECK(ts[i] != NULL);
    }
    CHECK(corio_task_join_all(ts, 3, NULL) == 0);
    CHECK(norder == 9);
    corio_lock_free(l);
    return NULL;
}

Test(sched, tasks_keep_fifo_order, .timeout = TIMEOUT)
{
    run_main(order_main, NULL);
}

/* ---- Many tasks ending right after a direct switch ---------------------------- */

static void *relay_task(void *arg)
{
    corio_chan **ch = arg;
    void *v;

    if (corio_chan_recv(ch[0], &v, -1) == -1)
        return corio_task_fail(errno);
    if (corio_chan_send(ch[1], (void *)((intptr_t)v + 1), -1) == -1)
        return corio_task_fail(errno);
    return v;
}

static void *relay_main(void *arg)
{
    enum { N = 1000 };
    static corio_chan *chans[N + 1];
    static corio_task *ts[N];
    void *v;

    (void)arg;
    for (int i = 0; i <= N; i++) {
        chans[i] = corio_chan_new(0);
        CHECK(chans[i] != NULL);
    }
    for (int i = 0; i < N; i++) {
        ts[i] = corio_task_spawn(relay_task, &chans[i], NULL);
        CHECK(ts[i] != NULL);
    }
    CHECK(corio_chan_send(chans[0], (void *)0, -1) == 0);
    CHECK(corio_chan_recv(chans[N], &v, -1) == 0);
    CHECK((intptr_t)v == N);
    for (int i = 0; i < N; i++) {
        void *r = NULL;

        CHECK(corio_task_join(ts[i], &r) == 0);
        CHECK((intptr_t)r == i);
    }
    for (int i = 0; i <= N; i++)
        CHECK(corio_chan_free(chans[i]) == 0);
    return NULL;
}

Test(sched, a_relay_of_1000_tasks_passes_the_token_and_ends, .timeout = TIMEOUT)
{
    run_main(relay_main, NULL);
}

/* ---- A sleep always yields ------------------------------------------------------ */

static int flag_set;

static void *set_flag(void *arg)
{
    (void)arg;
    flag_set = 1;
    return NULL;
}

static void *sleep_past_main(void *arg)
{
    corio_task *t;

    (void)arg;
    flag_set = 0;
    t = corio_task_spawn(set_flag, NULL, NULL);
    CHECK(t != NULL);
    /* a deadline already passed (as after a preemption longer than a short
     * sleep): the sleep still lets the ready task run */
    CHECK(corio_sleep_until(corio_now() - CORIO_MSEC) == 0);
    CHECK(flag_set == 1);
    CHECK(corio_task_join(t, NULL) == 0);
    return NULL;
}

Test(sched, a_sleep_whose_deadline_has_passed_still_yields, .timeout = TIMEOUT)
{
    run_main(sleep_past_main, NULL);
}
