/* tests/test_thread_chan.c -- the channel across threads and loops
 * (corio_tchan): its calls and errors, deadlines, close waking everyone,
 * and many producers and consumers on plain threads and on several loops
 * with no message lost or duplicated (count, checksum, and a bitmap of the
 * messages seen).
 *
 * Labelled "thread": scripts/test runs it under TSan too. Every test has the
 * same .timeout (see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "corio.h"
#include "corio/thread.h"
#include "timing.h"
#include "loop_test.h"
#include "thread_test.h"

#define MS CORIO_MSEC

Test(thread_chan, calls_and_errors, .timeout = 30)
{
    corio_tchan *ch = corio_tchan_new(2);
    void *item = NULL;
    int64_t t0;

    cr_assert_not_null(ch);
    cr_assert_eq(corio_tchan_cap(ch), 2);
    expect_fail(corio_tchan_try_recv(ch, &item), EAGAIN);
    t0 = corio_now();
    expect_fail(corio_tchan_recv(ch, &item, corio_now() + 30 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 30);
    cr_assert_eq(corio_tchan_send(ch, (void *)1, -1), 0);
    cr_assert_eq(corio_tchan_try_send(ch, (void *)2), 0);
    cr_assert_eq(corio_tchan_len(ch), 2);
    expect_fail(corio_tchan_try_send(ch, (void *)3), EAGAIN);
    t0 = corio_now();
    expect_fail(corio_tchan_send(ch, (void *)3, corio_now() + 30 * MS),
                ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 30);
    cr_assert_lt(elapsed_ms(t0), 30 + test_slack_ms());
    cr_assert_eq(corio_tchan_recv(ch, &item, -1), 0);
    cr_assert_eq((intptr_t)item, 1);
    cr_assert_eq(corio_tchan_close(ch), 0);
    cr_assert(corio_tchan_is_closed(ch));
    expect_fail(corio_tchan_close(ch), CORIO_ECLOSED);
    expect_fail(corio_tchan_send(ch, (void *)4, -1), CORIO_ECLOSED);
    expect_fail(corio_tchan_try_send(ch, (void *)4), CORIO_ECLOSED);
    cr_assert_eq(corio_tchan_try_recv(ch, &item), 0); /* buffered first */
    cr_assert_eq((intptr_t)item, 2);
    expect_fail(corio_tchan_recv(ch, &item, -1), CORIO_ECLOSED);
    expect_fail(corio_tchan_try_recv(ch, NULL), CORIO_ECLOSED);
    cr_assert_eq(corio_tchan_free(ch), 0);

    errno = 0;
    cr_assert_null(corio_tchan_new(0));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_tchan_new(SIZE_MAX));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_tchan_free(NULL), 0);
    expect_fail(corio_tchan_send(NULL, NULL, -1), EINVAL);
    expect_fail(corio_tchan_recv(NULL, NULL, -1), EINVAL);
    expect_fail(corio_tchan_close(NULL), EINVAL);
    cr_assert_eq(corio_tchan_len(NULL), 0);
}

/* ---- Many producers and consumers ------------------------------------------ */

#define PRODUCERS 8        /* 4 plain threads, 2 loops x 2 tasks */
#define PER_PRODUCER 3000
#define TOTAL (PRODUCERS * PER_PRODUCER)

struct mpmc {
    corio_tchan *ch;
    atomic_int next_producer;
    atomic_int producers_left;
    atomic_long count;
    atomic_ullong sum;
    atomic_uchar seen[TOTAL + 1];
    atomic_int dups;
};

static void *produce(void *arg)
{
    struct mpmc *m = arg;
    int p = atomic_fetch_add(&m->next_producer, 1);

    for (int i = 0; i < PER_PRODUCER; i++) {
        uintptr_t v = (uintptr_t)p * PER_PRODUCER + (uintptr_t)i + 1;

        if (corio_tchan_send(m->ch, (void *)v, -1) == -1)
            return corio_task_fail(errno);
    }
    /* The last producer closes: consumers drain, then see CORIO_ECLOSED. */
    if (atomic_fetch_sub(&m->producers_left, 1) == 1)
        cr_assert_eq(corio_tchan_close(m->ch), 0);
    return NULL;
}

static void *consume(void *arg)
{
    struct mpmc *m = arg;
    void *item;

    for (;;) {
        uintptr_t v;

        if (corio_tchan_recv(m->ch, &item, -1) == -1) {
            if (errno == CORIO_ECLOSED)
                return NULL;
            return corio_task_fail(errno);
        }
        v = (uintptr_t)item;
        cr_assert(v >= 1 && v <= TOTAL, "item %lu", (unsigned long)v);
        if (atomic_exchange(&m->seen[v], 1) != 0)
            atomic_fetch_add(&m->dups, 1);
        atomic_fetch_add(&m->count, 1);
        atomic_fetch_add(&m->sum, v);
    }
}

/* A loop with two producers and two consumers, as tasks. */
static void *mixed_tasks(void *arg)
{
    corio_task *t[4];

    for (int i = 0; i < 4; i++) {
        t[i] = corio_task_spawn(i < 2 ? produce : consume, arg, NULL);
        cr_assert_not_null(t[i]);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0, "%s",
                     corio_strerror(errno));
    return NULL;
}

Test(thread_chan, mpmc_threads_and_loops_nothing_lost, .timeout = 30)
{
    struct mpmc *m = calloc(1, sizeof(*m));
    corio_thread *t[9];
    unsigned long long want = (unsigned long long)TOTAL * (TOTAL + 1) / 2;

    cr_assert_not_null(m);
    cr_assert_not_null(m->ch = corio_tchan_new(16));
    atomic_store(&m->producers_left, PRODUCERS);
    for (int i = 0; i < 4; i++)
        t[i] = start(produce, m, false);
    for (int i = 4; i < 7; i++)
        t[i] = start(consume, m, false);
    t[7] = start(mixed_tasks, m, true);
    t[8] = start(mixed_tasks, m, true);
    for (int i = 0; i < 9; i++)
        join_free(t[i]);
    cr_assert_eq(atomic_load(&m->count), TOTAL);
    cr_assert_eq(atomic_load(&m->sum), want);
    cr_assert_eq(atomic_load(&m->dups), 0);
    for (int v = 1; v <= TOTAL; v++)
        cr_assert_eq(atomic_load(&m->seen[v]), 1, "item %d lost", v);
    cr_assert_eq(corio_tchan_free(m->ch), 0);
    free(m);
}

/* Receivers that give up often (short deadlines) while items flow: an item
 * is never lost to a receiver that timed out. */
static void *impatient(void *arg)
{
    struct mpmc *m = arg;
    void *item;

    for (;;) {
        if (corio_tchan_recv(m->ch, &item, corio_now() + 50 * CORIO_USEC) ==
            -1) {
            if (errno == ETIMEDOUT)
                continue;
            if (errno == CORIO_ECLOSED)
                return NULL;
            return corio_task_fail(errno);
        }
        atomic_fetch_add(&m->count, 1);
        atomic_fetch_add(&m->sum, (uintptr_t)item);
    }
}

static void *impatient_tasks(void *arg)
{
    corio_task *t[3];

    for (int i = 0; i < 3; i++)
        cr_assert_not_null(t[i] = corio_task_spawn(impatient, arg, NULL));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_chan, receivers_that_time_out_lose_nothing, .timeout = 30)
{
    struct mpmc *m = calloc(1, sizeof(*m));
    corio_thread *t[4];
    const long n = 4000;

    cr_assert_not_null(m);
    cr_assert_not_null(m->ch = corio_tchan_new(4));
    t[0] = start(impatient, m, false);
    t[1] = start(impatient, m, false);
    t[2] = start(impatient_tasks, m, true);
    t[3] = start(impatient_tasks, m, true);
    for (long i = 1; i <= n; i++) {
        cr_assert_eq(corio_tchan_send(m->ch, (void *)(uintptr_t)i, -1), 0);
        if (i % 500 == 0)
            msleep(1);
    }
    cr_assert_eq(corio_tchan_close(m->ch), 0);
    for (int i = 0; i < 4; i++)
        join_free(t[i]);
    cr_assert_eq(atomic_load(&m->count), n);
    cr_assert_eq(atomic_load(&m->sum), (unsigned long long)n * (n + 1) / 2);
    cr_assert_eq(corio_tchan_free(m->ch), 0);
    free(m);
}

/* ---- Close wakes everyone ---------------------------------------------------- */

struct closing {
    corio_tchan *full;   /* senders wait here */
    corio_tchan *empty;  /* receivers wait here */
    atomic_int woken;
};

static void *blocked_send(void *arg)
{
    struct closing *c = arg;

    if (corio_tchan_send(c->full, (void *)1, -1) == -1 &&
        errno == CORIO_ECLOSED)
        atomic_fetch_add(&c->woken, 1);
    return NULL;
}

static void *blocked_recv(void *arg)
{
    struct closing *c = arg;
    void *item;

    if (corio_tchan_recv(c->empty, &item, -1) == -1 &&
        errno == CORIO_ECLOSED)
        atomic_fetch_add(&c->woken, 1);
    return NULL;
}

static void *blocked_tasks(void *arg)
{
    corio_task *t[4];

    for (int i = 0; i < 4; i++) {
        t[i] = corio_task_spawn(i % 2 ? blocked_send : blocked_recv, arg,
                                NULL);
        cr_assert_not_null(t[i]);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    return NULL;
}

Test(thread_chan, close_wakes_every_waiter, .timeout = 30)
{
    struct closing c = {0};
    corio_thread *t[6];

    cr_assert_not_null(c.full = corio_tchan_new(1));
    cr_assert_not_null(c.empty = corio_tchan_new(1));
    cr_assert_eq(corio_tchan_send(c.full, NULL, -1), 0);
    t[0] = start(blocked_send, &c, false);
    t[1] = start(blocked_send, &c, false);
    t[2] = start(blocked_recv, &c, false);
    t[3] = start(blocked_recv, &c, false);
    t[4] = start(blocked_tasks, &c, true);
    t[5] = start(blocked_tasks, &c, true);
    msleep(100); /* most wait by now; one that comes late fails at once */
    cr_assert_eq(atomic_load(&c.woken), 0);
    cr_assert_eq(corio_tchan_close(c.full), 0);
    cr_assert_eq(corio_tchan_close(c.empty), 0);
    for (int i = 0; i < 6; i++)
        join_free(t[i]);
    cr_assert_eq(atomic_load(&c.woken), 12);
    cr_assert_eq(corio_tchan_free(c.full), 0);
    cr_assert_eq(corio_tchan_free(c.empty), 0);
}

/* A channel waited on cannot be freed: a task of the test thread's own
 * loop waits (it ran and parked during the sleep). */
static void *recv_closed(void *arg)
{
    void *item;

    if (corio_tchan_recv(arg, &item, -1) == -1 && errno == CORIO_ECLOSED)
        return (void *)1;
    return NULL;
}

Test(thread_chan, free_refused_while_waited_on, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_tchan *ch = corio_tchan_new(1);
    corio_task *t;
    void *res = NULL;

    cr_assert_not_null(ch);
    t = corio_task_spawn(recv_closed, ch, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_sleep(10 * MS), 0);
    expect_fail(corio_tchan_free(ch), EBUSY);
    cr_assert_eq(corio_tchan_close(ch), 0);
    cr_assert_eq(corio_task_join(t, &res), 0);
    cr_assert_eq((intptr_t)res, 1);
    cr_assert_eq(corio_tchan_free(ch), 0);
    loop_done(loop);
}

/* A task's deadline and cancellation on a channel. */
static void *recv_forever(void *arg)
{
    void *item;

    if (corio_tchan_recv(arg, &item, -1) == -1)
        return corio_task_fail(errno);
    return item;
}

static void *task_deadline_cancel_main(void *arg)
{
    corio_tchan *ch = arg;
    corio_task *t;
    void *item;
    int64_t t0 = corio_now();

    expect_fail(corio_tchan_recv(ch, &item, corio_now() + 30 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 30);
    t = corio_task_spawn(recv_forever, ch, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(corio_sleep(10 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    return NULL;
}

Test(thread_chan, task_deadline_and_cancel, .timeout = 30)
{
    corio_tchan *ch = corio_tchan_new(1);

    cr_assert_not_null(ch);
    cr_assert_eq(corio_run(task_deadline_cancel_main, ch, NULL), 0);
    /* Nobody took the item sent after the cancel: it is still there. */
    cr_assert_eq(corio_tchan_len(ch), 0);
    cr_assert_eq(corio_tchan_free(ch), 0);
}
