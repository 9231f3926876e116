/* tests/test_task_chan.c -- channels and select (include/corio/sync.h).
 *
 * Buffered, unbounded and unbuffered channels: FIFO order of items and of
 * waiting senders and receivers, the ring buffer growing and wrapping,
 * deadlines and deadline scopes, cancellation of a blocked send, receive and
 * select (ECANCELED, and the channel still consistent: no phantom waiter
 * left behind), close waking everyone, task_done/join, and select
 * completing exactly one operation. The stress tests cancel consumers (and
 * producers) at random moments and check that every item sent was received
 * exactly once.
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/sync.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include "timing.h"

#define MS CORIO_MSEC
/* Latency allowed after a deadline (helpers/timing.h). */
#define SLACK (test_slack_ms() * MS)
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 10 > 0 ? (n) / 10 : 1) : (n))
#define I(n) ((void *)(intptr_t)(n))
#define N(p) ((intptr_t)(p))

/* ---- Helpers ------------------------------------------------------------- */

static void run_main(corio_fn fn, void *arg)
{
    void *r = "not run";

    cr_assert_eq(corio_run(fn, arg, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(r, "%s", (const char *)r);
}

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

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static corio_chan *chan(size_t cap)
{
    corio_chan *ch = corio_chan_new(cap);

    cr_assert_not_null(ch);
    return ch;
}

/* One blocked sender or receiver, and what it saw. */
struct party {
    corio_chan *ch;
    void *item;         /* send: the item; recv: what was received */
    int64_t deadline;
    int id;
    int rc, err;
    int *order, *norder;
    bool done;
};

static void party_done(struct party *p, int rc)
{
    p->rc = rc;
    p->err = rc == -1 ? errno : 0;
    p->done = true;
    if (rc == 0 && p->order != NULL)
        p->order[(*p->norder)++] = p->id;
}

static void *sender(void *arg)
{
    struct party *p = arg;

    party_done(p, corio_chan_send(p->ch, p->item, p->deadline));
    return NULL;
}

static void *receiver(void *arg)
{
    struct party *p = arg;

    party_done(p, corio_chan_recv(p->ch, &p->item, p->deadline));
    return NULL;
}

/* ---- Basics -------------------------------------------------------------- */

Test(chan, buffered_fifo_len_cap, .timeout = 20)
{
    corio_chan *ch = chan(3);
    void *item = NULL;

    cr_assert_eq(corio_chan_cap(ch), 3);
    cr_assert_eq(corio_chan_len(ch), 0);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(corio_chan_try_send(ch, I(i)), 0);
    cr_assert_eq(corio_chan_len(ch), 3);
    cr_assert_eq(corio_chan_try_send(ch, I(4)), -1);
    cr_assert_eq(errno, EAGAIN, "full");
    cr_assert_eq(corio_chan_send(ch, I(4), 0), -1);
    cr_assert_eq(errno, ETIMEDOUT, "deadline 0 does not wait");
    /* Wrap the ring around. */
    for (int i = 1; i <= 2; i++) {
        cr_assert_eq(corio_chan_try_recv(ch, &item), 0);
        cr_assert_eq(N(item), i);
    }
    cr_assert_eq(corio_chan_send(ch, I(4), -1), 0);
    cr_assert_eq(corio_chan_send(ch, NULL, -1), 0, "NULL is an item too");
    for (int i = 3; i <= 5; i++) {
        cr_assert_eq(corio_chan_recv(ch, &item, -1), 0);
        cr_assert_eq(N(item), i == 5 ? 0 : i);
    }
    cr_assert_eq(corio_chan_try_recv(ch, &item), -1);
    cr_assert_eq(errno, EAGAIN, "empty");
    cr_assert_eq(corio_chan_recv(ch, &item, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_chan_try_send(ch, I(9)), 0);
    cr_assert_eq(corio_chan_try_recv(ch, NULL), 0, "item may be NULL");
    cr_assert_eq(corio_chan_len(ch), 0);
    cr_assert_eq(corio_chan_free(ch), 0);
    corio_loop_close(corio_loop_current());
}

Test(chan, errors, .timeout = 20)
{
    corio_chan *ch = chan(1);
    corio_chan_op op = {.chan = ch, .dir = 7};
    void *item;

    cr_assert_eq(corio_chan_send(NULL, NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_recv(NULL, &item, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_try_send(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_try_recv(NULL, &item), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_close(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_mark_done(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_wait_done(NULL, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_select(NULL, 1, -1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_chan_select(&op, 1, -1), -1);
    cr_assert_eq(errno, EINVAL, "bad dir");
    cr_assert_eq(corio_chan_len(NULL), 0);
    cr_assert_eq(corio_chan_cap(NULL), 0);
    cr_assert_not(corio_chan_is_closed(NULL));
    cr_assert_eq(corio_chan_free(NULL), 0);
    /* Freeing drops buffered items. */
    cr_assert_eq(corio_chan_try_send(ch, I(1)), 0);
    cr_assert_eq(corio_chan_free(ch), 0);
    corio_loop_close(corio_loop_current());
}

/* Unbounded: senders never wait; the buffer grows while wrapped and keeps
 * the order. */
Test(chan, unbounded_grows_in_order, .timeout = 20)
{
    corio_chan *ch = chan(CORIO_CHAN_UNBOUNDED);
    intptr_t next_in = 1, next_out = 1;
    void *item;

    cr_assert_eq(corio_chan_cap(ch), CORIO_CHAN_UNBOUNDED);
    for (int round = 0; round < 12; round++) {
        int put = 7 << (round % 6), get = put - 3;

        for (int i = 0; i < put; i++)
            cr_assert_eq(corio_chan_send(ch, I(next_in++), 0), 0);
        for (int i = 0; i < get; i++) {
            cr_assert_eq(corio_chan_try_recv(ch, &item), 0);
            cr_assert_eq(N(item), next_out++);
        }
    }
    cr_assert_eq(corio_chan_len(ch), (size_t)(next_in - next_out));
    while (corio_chan_try_recv(ch, &item) == 0)
        cr_assert_eq(N(item), next_out++);
    cr_assert_eq(next_out, next_in);
    cr_assert_eq(corio_chan_free(ch), 0);
    corio_loop_close(corio_loop_current());
}

/* ---- Waiting senders and receivers --------------------------------------- */

static void *sender_fifo_main(void *arg)
{
    corio_chan *ch = chan(1);
    struct party p[5];
    corio_task *t[5];
    void *item;

    cr_assert_eq(corio_chan_send(ch, I(100), -1), 0);
    for (int i = 0; i < 5; i++) {
        p[i] = (struct party){.ch = ch, .item = I(i), .deadline = -1};
        t[i] = spawn(sender, &p[i]);
        settle();
    }
    corio_task_cancel(t[3]);
    settle();
    cr_assert_eq(p[3].err, ECANCELED);
    cr_assert_eq(corio_chan_len(ch), 1, "the cancelled item was not sent");
    cr_assert_eq(corio_chan_free(ch), -1);
    cr_assert_eq(errno, EBUSY);
    /* Buffered first, then the senders' items in the order they came. */
    intptr_t want[] = {100, 0, 1, 2, 4};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(corio_chan_recv(ch, &item, -1), 0);
        cr_assert_eq(N(item), want[i]);
    }
    for (int i = 0; i < 5; i++)
        expect_join(t[i], i == 3 ? ECANCELED : 0);
    cr_assert_eq(corio_chan_len(ch), 0);
    cr_assert_eq(corio_chan_free(ch), 0);
    return NULL;
}

Test(chan, waiting_senders_fifo_and_cancel, .timeout = 20)
{
    run_main(sender_fifo_main, NULL);
}

static void *receiver_fifo_main(void *arg)
{
    corio_chan *ch = chan(4);
    struct party p[5];
    corio_task *t[5];

    for (int i = 0; i < 5; i++) {
        p[i] = (struct party){.ch = ch, .deadline = -1, .item = I(-1)};
        t[i] = spawn(receiver, &p[i]);
        settle();
    }
    corio_task_cancel(t[1]);
    settle();
    cr_assert_eq(p[1].err, ECANCELED);
    cr_assert_eq(N(p[1].item), -1, "the cancelled receiver got nothing");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(corio_chan_send(ch, I(10 + i), -1), 0);
    for (int i = 0; i < 5; i++)
        expect_join(t[i], i == 1 ? ECANCELED : 0);
    cr_assert_eq(N(p[0].item), 10);
    cr_assert_eq(N(p[2].item), 11);
    cr_assert_eq(N(p[3].item), 12);
    cr_assert_eq(N(p[4].item), 13);
    cr_assert_eq(corio_chan_len(ch), 1, "no phantom receiver took 14");
    cr_assert_eq(corio_chan_free(ch), 0);
    return NULL;
}

Test(chan, waiting_receivers_fifo_and_cancel, .timeout = 20)
{
    run_main(receiver_fifo_main, NULL);
}

/* A receiver woken with an item and cancelled before it runs keeps the
 * item: its recv returns 0. */
static void *recv_then_sleep(void *arg)
{
    struct party *p = arg;

    party_done(p, corio_chan_recv(p->ch, &p->item, -1));
    p->err = corio_sleep(10 * MS) == -1 ? errno : 0;
    return NULL;
}

static void *handoff_cancel_main(void *arg)
{
    corio_chan *ch = chan(0);
    struct party p = {.ch = ch};
    corio_task *t = spawn(recv_then_sleep, &p);

    settle();
    cr_assert_eq(corio_chan_try_send(ch, I(42)), 0, "a receiver waits");
    corio_task_cancel(t);
    expect_join(t, ECANCELED);
    cr_assert_eq(p.rc, 0);
    cr_assert_eq(N(p.item), 42, "the item was not lost");
    cr_assert_eq(p.err, ECANCELED, "the next call saw the cancellation");
    cr_assert_eq(corio_chan_free(ch), 0);
    return NULL;
}

Test(chan, handed_item_then_cancelled_keeps_it, .timeout = 20)
{
    run_main(handoff_cancel_main, NULL);
}

/* Unbuffered: a send waits for a receiver and returns once it has taken the
 * item. */
static void *rendezvous_main(void *arg)
{
    corio_chan *ch = chan(0);
    struct party s = {.ch = ch, .item = I(7), .deadline = -1};
    corio_task *t;
    void *item;
    int64_t start;

    cr_assert_eq(corio_chan_try_send(ch, I(1)), -1);
    cr_assert_eq(errno, EAGAIN, "nobody receives");
    cr_assert_eq(corio_chan_try_recv(ch, &item), -1);
    cr_assert_eq(errno, EAGAIN);
    t = spawn(sender, &s);
    corio_sleep(20 * MS);
    cr_assert_not(s.done, "send returned with nobody receiving");
    cr_assert_eq(corio_chan_len(ch), 0);
    start = corio_now();
    cr_assert_eq(corio_chan_recv(ch, &item, -1), 0);
    cr_assert_eq(N(item), 7);
    cr_assert_lt(corio_now() - start, SLACK, "the sender was waiting");
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(s.rc, 0);

    /* A sender that gives up leaves nothing behind. */
    cr_assert_eq(corio_chan_send(ch, I(8), corio_now() + 20 * MS), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_chan_try_recv(ch, &item), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(corio_chan_free(ch), 0);
    return NULL;
}

Test(chan, unbuffered_is_a_rendezvous, .timeout = 20)
{
    run_main(rendezvous_main, NULL);
}

static void *deadline_main(void *arg)
{
    corio_chan *ch = chan(1);
    int64_t deadline = corio_now() + 80 * MS;
    corio_scope s;
    void *item;

    cr_assert_eq(corio_chan_recv(ch, &item, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    cr_assert_eq(corio_chan_send(ch, I(1), -1), 0);
    deadline = corio_now() + 60 * MS;
    cr_assert_eq(corio_chan_send(ch, I(2), deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);

    deadline = corio_now() + 50 * MS;
    corio_scope_enter(&s, deadline);
    cr_assert_eq(corio_chan_send(ch, I(3), -1), -1);
    cr_assert_eq(errno, ETIMEDOUT, "the scope's deadline applies");
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    /* An expired scope sticks: even a ready operation fails in it... */
    cr_assert_eq(corio_chan_recv(ch, &item, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_chan_len(ch), 1, "nothing was taken");
    cr_assert(corio_scope_exit(&s));
    /* ...and completes once the scope is left; a ready operation
     * completes past its own deadline. */
    cr_assert_eq(corio_chan_recv(ch, &item, 0), 0);
    cr_assert_eq(N(item), 1);
    cr_assert_eq(corio_chan_len(ch), 0);
    cr_assert_eq(corio_chan_free(ch), 0);
    return NULL;
}

Test(chan, deadlines_and_scopes, .timeout = 20)
{
    run_main(deadline_main, NULL);
}

/* The thread's own stack receives from a task: the call runs the loop. */
static void *send_later(void *arg)
{
    corio_sleep(20 * MS);
    return corio_chan_send(arg, I(5), -1) == 0 ? NULL : "send failed";
}

Test(chan, thread_stack_receives, .timeout = 20)
{
    corio_chan *ch = chan(0);
    corio_task *t = spawn(send_later, ch);
    void *item = NULL;

    cr_assert_eq(corio_chan_recv(ch, &item, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq(N(item), 5);
    cr_assert_eq(corio_task_join(t, &item), 0);
    cr_assert_null(item);
    cr_assert_eq(corio_chan_free(ch), 0);
    cr_assert_eq(corio_loop_close(corio_loop_current()), 0);
}

/* ---- Close --------------------------------------------------------------- */

static void *close_main(void *arg)
{
    corio_chan *in = chan(0), *out = chan(1);
    struct party r[3], s[3];
    corio_task *tr[3], *ts[3];
    void *item;

    cr_assert_eq(corio_chan_send(out, I(1), -1), 0);
    for (int i = 0; i < 3; i++) {
        r[i] = (struct party){.ch = in, .deadline = -1};
        s[i] = (struct party){.ch = out, .deadline = -1, .item = I(2 + i)};
        tr[i] = spawn(receiver, &r[i]);
        ts[i] = spawn(sender, &s[i]);
    }
    settle();
    cr_assert_eq(corio_chan_close(in), 0);
    cr_assert_eq(corio_chan_close(out), 0);
    cr_assert(corio_chan_is_closed(in));
    cr_assert_eq(corio_chan_close(in), -1);
    cr_assert_eq(errno, EALREADY);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(corio_task_join(tr[i], NULL), 0);
        cr_assert_eq(corio_task_join(ts[i], NULL), 0);
        cr_assert_eq(r[i].err, CORIO_ECLOSED, "receiver %d woken by close",
                     i);
        cr_assert_eq(s[i].err, CORIO_ECLOSED, "sender %d woken by close", i);
    }
    /* Sends fail; what was buffered is still received, then CORIO_ECLOSED. */
    cr_assert_eq(corio_chan_send(out, I(9), -1), -1);
    cr_assert_eq(errno, CORIO_ECLOSED);
    cr_assert_eq(corio_chan_try_send(out, I(9)), -1);
    cr_assert_eq(errno, CORIO_ECLOSED);
    cr_assert_eq(corio_chan_recv(out, &item, -1), 0);
    cr_assert_eq(N(item), 1);
    cr_assert_eq(corio_chan_recv(out, &item, -1), -1);
    cr_assert_eq(errno, CORIO_ECLOSED);
    cr_assert_eq(corio_chan_try_recv(out, &item), -1);
    cr_assert_eq(errno, CORIO_ECLOSED);
    cr_assert_eq(corio_chan_free(in), 0);
    cr_assert_eq(corio_chan_free(out), 0);
    return NULL;
}

Test(chan, close_wakes_all, .timeout = 20)
{
    run_main(close_main, NULL);
}

/* ---- task_done / join ---------------------------------------------------- */

struct worker_state {
    corio_chan *ch;
    int processed;
};

static void *queue_worker(void *arg)
{
    struct worker_state *w = arg;
    void *item;

    while (corio_chan_recv(w->ch, &item, -1) == 0) {
        corio_sleep((int64_t)N(item) * MS);
        w->processed++;
        corio_chan_mark_done(w->ch);
    }
    return NULL;
}

static void *join_main(void *arg)
{
    struct worker_state w = {.ch = chan(CORIO_CHAN_UNBOUNDED)};
    corio_task *t[3];
    int64_t deadline;

    cr_assert_eq(corio_chan_wait_done(w.ch, 0), 0, "nothing unfinished");
    cr_assert_eq(corio_chan_mark_done(w.ch), -1);
    cr_assert_eq(errno, EINVAL, "more task_done than items");
    for (int i = 0; i < 3; i++)
        t[i] = spawn(queue_worker, &w);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(corio_chan_send(w.ch, I(1 + i % 4), -1), 0);
    deadline = corio_now() + 5 * MS;
    cr_assert_eq(corio_chan_wait_done(w.ch, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(corio_chan_wait_done(w.ch, -1), 0);
    cr_assert_eq(w.processed, 12, "join returned before the work was done");
    corio_chan_close(w.ch);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_task_join(t[i], NULL), 0);
    cr_assert_eq(corio_chan_free(w.ch), 0);
    return NULL;
}

Test(chan, task_done_and_join, .timeout = 20)
{
    run_main(join_main, NULL);
}

/* ---- Select -------------------------------------------------------------- */

static void *select_ready_main(void *arg)
{
    corio_chan *a = chan(1), *b = chan(1), *full = chan(1);
    corio_chan_op ops[3];
    int64_t start, deadline;

    cr_assert_eq(corio_chan_send(full, I(0), -1), 0);
    cr_assert_eq(corio_chan_send(b, I(22), -1), 0);
    ops[0] = (corio_chan_op){.chan = a, .dir = CORIO_CHAN_RECV};
    ops[1] = (corio_chan_op){.chan = full, .dir = CORIO_CHAN_SEND,
                             .item = I(5)};
    ops[2] = (corio_chan_op){.chan = b, .dir = CORIO_CHAN_RECV};
    cr_assert_eq(corio_chan_select(ops, 3, -1), 2, "only b is ready");
    cr_assert_eq(N(ops[2].item), 22);
    cr_assert_eq(ops[2].err, 0);

    /* Both ready: the earlier entry wins, the other does nothing. */
    cr_assert_eq(corio_chan_send(a, I(11), -1), 0);
    cr_assert_eq(corio_chan_send(b, I(33), -1), 0);
    ops[2].item = NULL;
    cr_assert_eq(corio_chan_select(ops, 3, 0), 0);
    cr_assert_eq(N(ops[0].item), 11);
    cr_assert_eq(corio_chan_len(b), 1, "b's item is still there");
    cr_assert_eq(corio_chan_len(full), 1, "the send did not happen");

    /* Nothing ready: deadline 0 is Go's default case. */
    cr_assert_eq(corio_chan_try_recv(b, NULL), 0);
    start = corio_now();
    cr_assert_eq(corio_chan_select(ops, 3, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_lt(corio_now() - start, SLACK);
    deadline = corio_now() + 70 * MS;
    cr_assert_eq(corio_chan_select(ops, 3, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    /* No entry (or only NULL channels): it just waits for the deadline. */
    deadline = corio_now() + 30 * MS;
    cr_assert_eq(corio_chan_select(NULL, 0, deadline), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    ops[0].chan = NULL;
    ops[1].chan = NULL;
    ops[2].chan = NULL;
    cr_assert_eq(corio_chan_select(ops, 3, 0), -1);
    cr_assert_eq(errno, ETIMEDOUT);

    /* Nothing was left parked on the channels. */
    cr_assert_eq(corio_chan_free(a), 0);
    cr_assert_eq(corio_chan_free(b), 0);
    cr_assert_eq(corio_chan_free(full), 0);
    return NULL;
}

Test(select, picks_ready_ops_in_order_and_honours_deadline, .timeout = 20)
{
    run_main(select_ready_main, NULL);
}

struct select_party {
    corio_chan_op ops[3];
    size_t n;
    int64_t deadline;
    int rc, err;
    bool done;
};

static void *selector(void *arg)
{
    struct select_party *s = arg;

    s->rc = corio_chan_select(s->ops, s->n, s->deadline);
    s->err = s->rc == -1 ? errno : 0;
    s->done = true;
    return NULL;
}

/* A select waiting on several channels completes the first one that
 * becomes ready, and only that one: a second sender in the same instant
 * keeps waiting and its item is not lost. */
static void *select_wait_main(void *arg)
{
    corio_chan *a = chan(0), *b = chan(0), *full = chan(1);
    struct select_party s = {.n = 3, .deadline = -1};
    struct party pa = {.ch = a, .item = I(1), .deadline = -1};
    struct party pb = {.ch = b, .item = I(2), .deadline = -1};
    corio_task *ts, *ta, *tb;
    void *item;

    cr_assert_eq(corio_chan_send(full, I(0), -1), 0);
    s.ops[0] = (corio_chan_op){.chan = a, .dir = CORIO_CHAN_RECV};
    s.ops[1] = (corio_chan_op){.chan = full, .dir = CORIO_CHAN_SEND,
                               .item = I(9)};
    s.ops[2] = (corio_chan_op){.chan = b, .dir = CORIO_CHAN_RECV};
    ts = spawn(selector, &s);
    settle();
    cr_assert_not(s.done);
    tb = spawn(sender, &pb); /* both start in the same iteration */
    ta = spawn(sender, &pa);
    cr_assert_eq(corio_task_join(ts, NULL), 0);
    cr_assert_eq(s.rc, 2, "b's sender ran first");
    cr_assert_eq(N(s.ops[2].item), 2);
    cr_assert(pb.done);
    settle();
    cr_assert_not(pa.done, "a's sender must still wait");
    cr_assert_eq(corio_chan_len(full), 1, "the select's send did not happen");
    cr_assert_eq(corio_chan_recv(a, &item, -1), 0);
    cr_assert_eq(N(item), 1);
    cr_assert_eq(corio_task_join(ta, NULL), 0);
    cr_assert_eq(corio_task_join(tb, NULL), 0);

    /* A select that sends: completes when the channel gets room. */
    s.ops[0].chan = NULL;
    s.ops[2].chan = NULL;
    s.done = false;
    ts = spawn(selector, &s);
    settle();
    cr_assert_not(s.done);
    cr_assert_eq(corio_chan_recv(full, &item, -1), 0);
    cr_assert_eq(N(item), 0);
    cr_assert_eq(corio_task_join(ts, NULL), 0);
    cr_assert_eq(s.rc, 1);
    cr_assert_eq(s.ops[1].err, 0);
    cr_assert_eq(corio_chan_recv(full, &item, 0), 0);
    cr_assert_eq(N(item), 9, "the select's item went in behind");

    cr_assert_eq(corio_chan_free(a), 0);
    cr_assert_eq(corio_chan_free(b), 0);
    cr_assert_eq(corio_chan_free(full), 0);
    return NULL;
}

Test(select, waits_and_completes_exactly_one, .timeout = 20)
{
    run_main(select_wait_main, NULL);
}

/* Two selects meet on one unbuffered channel; one of them also offers a
 * receive on the same channel, which must not match its own send. */
static void *select_rendezvous_main(void *arg)
{
    corio_chan *c = chan(0);
    struct select_party s1 = {.n = 2, .deadline = -1};
    struct select_party s2 = {.n = 1, .deadline = -1};
    corio_task *t1, *t2;

    s1.ops[0] = (corio_chan_op){.chan = c, .dir = CORIO_CHAN_SEND,
                                .item = I(3)};
    s1.ops[1] = (corio_chan_op){.chan = c, .dir = CORIO_CHAN_RECV};
    s2.ops[0] = (corio_chan_op){.chan = c, .dir = CORIO_CHAN_RECV};
    t1 = spawn(selector, &s1);
    settle();
    cr_assert_not(s1.done, "a select does not meet itself");
    t2 = spawn(selector, &s2);
    cr_assert_eq(corio_task_join(t1, NULL), 0);
    cr_assert_eq(corio_task_join(t2, NULL), 0);
    cr_assert_eq(s1.rc, 0);
    cr_assert_eq(s2.rc, 0);
    cr_assert_eq(N(s2.ops[0].item), 3);
    cr_assert_eq(corio_chan_free(c), 0, "the recv op was unlinked too");
    return NULL;
}

Test(select, rendezvous_between_selects, .timeout = 20)
{
    run_main(select_rendezvous_main, NULL);
}

static void *select_cancel_close_main(void *arg)
{
    corio_chan *a = chan(1), *b = chan(0), *many[12];
    struct select_party s = {.n = 2, .deadline = -1};
    corio_chan_op big[12];
    corio_task *t;
    corio_scope sc;
    int64_t deadline;

    /* Cancelled: ECANCELED, and nothing left parked on a or b. */
    s.ops[0] = (corio_chan_op){.chan = a, .dir = CORIO_CHAN_RECV};
    s.ops[1] = (corio_chan_op){.chan = b, .dir = CORIO_CHAN_SEND, .item = I(1)};
    t = spawn(selector, &s);
    settle();
    corio_task_cancel(t);
    expect_join(t, ECANCELED);
    cr_assert_eq(s.rc, -1);
    cr_assert_eq(s.err, ECANCELED);
    cr_assert_eq(corio_chan_try_send(a, I(5)), 0);
    cr_assert_eq(corio_chan_len(a), 1, "no phantom receiver took the item");
    cr_assert_eq(corio_chan_try_recv(b, NULL), -1);
    cr_assert_eq(errno, EAGAIN, "no phantom sender");
    cr_assert_eq(corio_chan_try_recv(a, NULL), 0);

    /* Closing a channel completes the select with that entry, CORIO_ECLOSED. */
    s.done = false;
    t = spawn(selector, &s);
    settle();
    corio_chan_close(b);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    cr_assert_eq(s.rc, 1);
    cr_assert_eq(s.ops[1].err, CORIO_ECLOSED);
    cr_assert_eq(corio_chan_select(s.ops, 2, 0), 1,
                 "a closed channel is ready");
    cr_assert_eq(s.ops[1].err, CORIO_ECLOSED);

    /* A scope's deadline applies; many entries (past the stack array). */
    for (int i = 0; i < 12; i++) {
        many[i] = chan(0);
        big[i] = (corio_chan_op){.chan = many[i], .dir = CORIO_CHAN_RECV};
    }
    deadline = corio_now() + 40 * MS;
    corio_scope_enter(&sc, deadline);
    cr_assert_eq(corio_chan_select(big, 12, -1), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now(), deadline);
    cr_assert_lt(corio_now(), deadline + SLACK);
    cr_assert(corio_scope_exit(&sc));
    for (int i = 0; i < 12; i++)
        cr_assert_eq(corio_chan_free(many[i]), 0);
    cr_assert_eq(corio_chan_free(a), 0);
    cr_assert_eq(corio_chan_free(b), 0);
    return NULL;
}

Test(select, cancel_close_scope, .timeout = 20)
{
    run_main(select_cancel_close_main, NULL);
}

static void *send_to_last(void *arg)
{
    corio_chan **many = arg;

    corio_sleep(5 * MS);
    if (corio_chan_send(many[11], I(77), -1) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *select_many_main(void *arg)
{
    corio_chan *many[12];
    corio_chan_op big[12];
    corio_task *t;

    for (int i = 0; i < 12; i++) {
        many[i] = chan(0);
        big[i] = (corio_chan_op){.chan = many[i], .dir = CORIO_CHAN_RECV};
    }
    t = spawn(send_to_last, many);
    cr_assert_eq(corio_chan_select(big, 12, corio_now() + 5 * CORIO_SECOND),
                 11);
    cr_assert_eq(N(big[11].item), 77);
    cr_assert_eq(corio_task_join(t, NULL), 0);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(corio_chan_free(many[i]), 0);
    return NULL;
}

Test(select, many_entries, .timeout = 20)
{
    run_main(select_many_main, NULL);
}

/* ---- No lost item under cancellation ----------------------------------------
 * Producers send the numbers 1..N; consumers (plain recv, and select over
 * two channels) are cancelled at random moments and replaced; in the second
 * variant producers are cancelled too and retry the item they could not
 * send. At the end every number was received exactly once. */

struct stress {
    corio_chan *ch[2];
    int n;
    int next;               /* the next number to send */
    unsigned char *seen;    /* times each number was received */
    long received;
    bool cancel_producers;
    uint32_t seed;
    int ncancel;
    int send_errors;        /* sends that failed other than ECANCELED */
};

static void got(struct stress *s, void *item)
{
    intptr_t v = N(item);

    cr_assert(v >= 1 && v <= s->n, "bogus item %ld", (long)v);
    s->seen[v]++;
    s->received++;
}

static void *stress_consumer(void *arg)
{
    struct stress *s = arg;
    void *item;

    while (corio_chan_recv(s->ch[0], &item, -1) == 0) {
        got(s, item);
        if (rnd(&s->seed) % 4 == 0 && corio_sleep(0) == -1)
            break;
    }
    return NULL;
}

static void *stress_selector(void *arg)
{
    struct stress *s = arg;
    corio_chan_op ops[2] = {
        {.chan = s->ch[1], .dir = CORIO_CHAN_RECV},
        {.chan = s->ch[0], .dir = CORIO_CHAN_RECV},
    };

    for (;;) {
        int i = corio_chan_select(ops, 2, -1);

        if (i == -1)
            break;
        if (ops[i].err != 0) { /* closed: drop it, keep the other */
            ops[i].chan = NULL;
            if (ops[1 - i].chan == NULL)
                break;
            continue;
        }
        got(s, ops[i].item);
    }
    return NULL;
}

static void *stress_producer(void *arg)
{
    struct stress *s = arg;

    while (s->next <= s->n) {
        int v = s->next++;
        corio_chan *ch = s->ch[v % 2];

        /* A cancelled send did not send: the item is still ours, and
         * goes in a shield (cancellation sticks: a plain retry would fail
         * at once again). */
        if (corio_chan_send(ch, I(v), -1) == -1) {
            CORIO_SHIELD(-1);

            if (errno != ECANCELED ||
                corio_chan_send(ch, I(v), -1) == -1) {
                s->send_errors++;
                return NULL;
            }
        }
        if (rnd(&s->seed) % 3 == 0)
            corio_sleep(0);
    }
    return NULL;
}

static void stress_replace(struct stress *s, corio_task **cons)
{
    for (int i = 0; i < 6; i++) {
        if (corio_task_is_done(cons[i])) {
            /* ended by its cancellation */
            cr_assert(corio_task_join(cons[i], NULL) == 0 ||
                      errno == ECANCELED, "%s", corio_strerror(errno));
            cons[i] = spawn(i % 2 ? stress_selector : stress_consumer, s);
        }
    }
}

static void *stress_main(void *arg)
{
    struct stress *s = arg;
    corio_task *cons[6], *prod[3];

    s->seen = calloc((size_t)s->n + 1, 1);
    s->next = 1;
    for (int i = 0; i < 6; i++)
        cons[i] = spawn(i % 2 ? stress_selector : stress_consumer, s);
    for (int i = 0; i < 3; i++)
        prod[i] = spawn(stress_producer, s);
    /* Chaos: cancel a random consumer (or producer) every few iterations,
     * replace consumers that ended. */
    while (s->next <= s->n) {
        int k = (int)(rnd(&s->seed) % 6);

        for (int j = (int)(rnd(&s->seed) % 4); j >= 0; j--)
            corio_sleep(0);
        corio_task_cancel(cons[k]);
        s->ncancel++;
        if (s->cancel_producers && rnd(&s->seed) % 2)
            corio_task_cancel(prod[rnd(&s->seed) % 3]);
        stress_replace(s, cons);
    }
    /* No more cancellations: let the last victims end, replace them, so
     * that the producers' last items find receivers. */
    for (int round = 0; round < 3; round++) {
        settle();
        stress_replace(s, cons);
    }
    for (int i = 0; i < 3; i++) /* ECANCELED if it was ever cancelled */
        cr_assert(corio_task_join(prod[i], NULL) == 0 || errno == ECANCELED,
                  "%s", corio_strerror(errno));
    cr_assert_eq(s->send_errors, 0);
    /* Every item is sent: close, and the consumers drain what is left. */
    corio_chan_close(s->ch[0]);
    corio_chan_close(s->ch[1]);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(corio_task_join(cons[i], NULL), 0);
    cr_assert_eq(corio_chan_len(s->ch[0]) + corio_chan_len(s->ch[1]), 0);
    cr_assert_eq(s->received, s->n);
    for (int v = 1; v <= s->n; v++)
        cr_assert_eq(s->seen[v], 1, "item %d received %d times", v, s->seen[v]);
    cr_assert_gt(s->ncancel, 10);
    cr_assert_eq(corio_chan_free(s->ch[0]), 0);
    cr_assert_eq(corio_chan_free(s->ch[1]), 0);
    free(s->seen);
    return NULL;
}

static void stress(size_t cap, bool cancel_producers, uint32_t seed)
{
    struct stress s = {.ch = {chan(cap), chan(cap)}, .n = SCALE(20000),
                       .cancel_producers = cancel_producers, .seed = seed};

    run_main(stress_main, &s);
}

Test(chan_stress, no_lost_item_unbuffered, .timeout = 20)
{
    stress(0, false, 1);
}

Test(chan_stress, no_lost_item_buffered, .timeout = 20)
{
    stress(4, false, 2);
}

Test(chan_stress, no_lost_item_unbounded, .timeout = 20)
{
    stress(CORIO_CHAN_UNBOUNDED, false, 3);
}

Test(chan_stress, no_lost_item_producers_cancelled_too, .timeout = 20)
{
    stress(0, true, 4);
}

Test(chan_stress, no_lost_item_buffered_producers_cancelled_too, .timeout = 20)
{
    stress(2, true, 5);
}
