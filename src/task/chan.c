/* src/task/chan.c -- channels: FIFO queues of `void *` items between the
 * tasks of one loop (asyncio.Queue, Go's chan), bounded, unbounded or
 * unbuffered, with close, task_done/join, and select.
 *
 * A blocked send or receive is an operation (struct chan_op) parked in the
 * channel's sendq or recvq. A select parks one operation per entry, all
 * sharing one waiter (struct chan_wait), which is woken at most once. The
 * party that completes an operation does the whole exchange itself: it
 * copies the item into or out of the parked operation, unlinks every
 * operation of that select (so no second one can complete), records which
 * one completed, and wakes the waiter. A waiter that is cancelled or times
 * out first has all its operations unlinked by corio__wait (the unlink
 * callback), so nothing is ever handed to it and no item is lost: a parked
 * sender's item stays its own, a parked receiver was given nothing.
 *
 * Invariants, outside the middle of a call:
 *   - recvq is non-empty only while the buffer is empty;
 *   - sendq is non-empty only while the buffer is full (len == cap), so a
 *     receive that takes from the buffer refills it from the first sender,
 *     keeping the items in the order they were sent;
 *   - once closed, sendq and recvq are empty and stay so.
 * (A select sending and receiving on one unbuffered channel can be in both
 * queues at once; the first peer to come completes one and unlinks both.)
 *
 * Nothing here is thread-safe: a channel belongs to one thread's loop. */
#include "task_int.h"
#include "corio/sync.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct corio_chan {
    void **buf;                     /* ring buffer of the items */
    size_t size;                    /* slots allocated in buf (<= cap) */
    size_t head;                    /* slot of the oldest item */
    size_t len;                     /* items buffered */
    size_t cap;                     /* as given to corio_chan_new */
    size_t unfinished;              /* sent and not yet task_done */
    bool closed;
    struct corio__list sendq;       /* struct chan_op.node, FIFO */
    struct corio__list recvq;       /* struct chan_op.node, FIFO */
    struct corio__list joinq;       /* struct corio__waiter.node */
};

struct chan_wait;

/* A send or receive parked on a channel. */
struct chan_op {
    struct corio__list node;        /* in chan->sendq or chan->recvq */
    struct chan_wait *cw;           /* the select it belongs to */
    corio_chan *chan;
    enum corio_chan_dir dir;
    void *item;                     /* send: to give; recv: what was given */
    size_t index;                   /* the entry of the caller's array */
};

/* A parked select (a plain send or receive is a select of one). */
struct chan_wait {
    struct corio__waiter w;         /* woken once, by the op that completes */
    struct chan_op *ops;
    size_t n;
    struct chan_op *fired;          /* the op that completed */
    int err;                        /* its outcome: 0, or CORIO_ECLOSED */
};

/* The number of ops a select parks without allocating. */
#define SELECT_STACK_OPS 8

/* ---- The buffer ---------------------------------------------------------- */

/* Make room for one more item: grow buf (doubling, at most to cap). The
 * caller has checked len < cap. Returns 0, or -1 with errno ENOMEM. */
static int buf_reserve(corio_chan *ch)
{
    size_t size, tail;
    void **buf;

    if (ch->len < ch->size)
        return 0;
    size = ch->size != 0 ? ch->size : 8;
    if (ch->size != 0) {
        if (size > SIZE_MAX / 2 / sizeof(void *)) {
            errno = ENOMEM;
            return -1;
        }
        size *= 2;
    }
    if (size > ch->cap)
        size = ch->cap;
    buf = malloc(size * sizeof(void *));
    if (buf == NULL)
        return -1;
    /* Unwrap the ring into the new array: items in order from slot 0. */
    tail = ch->size - ch->head;
    if (tail > ch->len)
        tail = ch->len;
    if (ch->len > 0) {
        memcpy(buf, ch->buf + ch->head, tail * sizeof(void *));
        memcpy(buf + tail, ch->buf, (ch->len - tail) * sizeof(void *));
    }
    free(ch->buf);
    ch->buf = buf;
    ch->size = size;
    ch->head = 0;
    return 0;
}

static int buf_push(corio_chan *ch, void *item)
{
    if (buf_reserve(ch) == -1)
        return -1;
    /* head + len < 2 * size: a subtraction, not a division, wraps it */
    size_t at = ch->head + ch->len;

    ch->buf[at < ch->size ? at : at - ch->size] = item;
    ch->len++;
    return 0;
}

static void *buf_pop(corio_chan *ch)
{
    void *item = ch->buf[ch->head];

    ch->head = ch->head + 1 < ch->size ? ch->head + 1 : 0;
    ch->len--;
    return item;
}

/* ---- Parked operations --------------------------------------------------- */

static struct chan_op *op_first(struct corio__list *q)
{
    if (corio__list_empty(q))
        return NULL;
    return CORIO_CONTAINER_OF(q->next, struct chan_op, node);
}

static void wait_unlink_ops(struct chan_wait *cw)
{
    for (size_t i = 0; i < cw->n; i++) {
        if (corio__list_linked(&cw->ops[i].node))
            corio__list_remove(&cw->ops[i].node);
    }
}

/* corio__wait's unlink callback: on cancellation or timeout. */
static void wait_unlink(struct corio__waiter *w)
{
    wait_unlink_ops(CORIO_CONTAINER_OF(w, struct chan_wait, w));
}

/* op has completed with err (its item already exchanged): take its select
 * off every channel and wake it. */
static void op_complete(struct chan_op *op, int err)
{
    struct chan_wait *cw = op->cw;

    assert(!cw->w.done);
    wait_unlink_ops(cw);
    cw->fired = op;
    cw->err = err;
    corio__wake(&cw->w, 0);
}

/* ---- Sending and receiving without waiting ------------------------------- */

/* send_now and recv_now return 0 or the error (CORIO_ECLOSED, EAGAIN, ENOMEM),
 * leaving errno alone: a hand-off that must wait is the common case, and
 * errno is a call away. */

/* Returns 0 (sent), CORIO_ECLOSED, EAGAIN or ENOMEM. */
static int send_now(corio_chan *ch, void *item)
{
    struct chan_op *op;

    if (ch->closed)
        return CORIO_ECLOSED;
    op = op_first(&ch->recvq);
    if (op != NULL) {
        assert(ch->len == 0);
        op->item = item;
        op_complete(op, 0);
    } else if (ch->len < ch->cap) {
        if (buf_push(ch, item) == -1)
            return ENOMEM;
    } else {
        return EAGAIN;
    }
    ch->unfinished++;
    return 0;
}

/* Returns 0 (*item received), CORIO_ECLOSED or EAGAIN. */
static int recv_now(corio_chan *ch, void **item)
{
    struct chan_op *op = op_first(&ch->sendq);

    if (ch->len > 0) {
        *item = buf_pop(ch);
        if (op != NULL) {
            /* The buffer was full: the first waiting sender's item goes
             * in behind the others. buf has room: it just gave a slot. */
            int rc = buf_push(ch, op->item);

            assert(rc == 0);
            (void)rc;
            op_complete(op, 0);
        }
        return 0;
    }
    if (op != NULL) {
        *item = op->item;   /* unbuffered: straight from the sender */
        op_complete(op, 0);
        return 0;
    }
    return ch->closed ? CORIO_ECLOSED : EAGAIN;
}

/* Try ops[i] now. Returns 1 if it completed (ops[i].err set), 0 if it
 * would have to wait, -1 with errno on an error of the call (ENOMEM). */
static int op_try(corio_chan_op *op)
{
    void *item;
    int rc;

    if (op->dir == CORIO_CHAN_SEND)
        rc = send_now(op->chan, op->item);
    else
        rc = recv_now(op->chan, &item);
    if (rc == 0) {
        op->err = 0;
        if (op->dir == CORIO_CHAN_RECV)
            op->item = item;
        return 1;
    }
    if (rc == CORIO_ECLOSED) {
        op->err = CORIO_ECLOSED;
        return 1;
    }
    if (rc == EAGAIN)
        return 0;
    errno = rc;
    return -1;
}

/* A plain send or receive that must wait: a select of one, without the
 * select's set-up. *item: what to send; on return, what was received.
 * Returns 0, or -1 with errno (CORIO_ECLOSED, ETIMEDOUT, ECANCELED, ...). */
static int op_wait(corio_chan *ch, enum corio_chan_dir dir, void **item, int64_t deadline)
{
    struct chan_wait cw;
    struct chan_op op;

    corio__waiter_init(&cw.w);
    cw.w.unlink = wait_unlink;
    cw.ops = &op;
    cw.n = 1;
    cw.fired = NULL;
    cw.err = 0;
    op.cw = &cw;
    op.chan = ch;
    op.dir = dir;
    op.item = *item;
    op.index = 0;
    corio__list_push_back(dir == CORIO_CHAN_SEND ? &ch->sendq : &ch->recvq,
                          &op.node);
    if (corio__wait(&cw.w, deadline) == -1) {
        if (corio__list_linked(&op.node)) /* corio__wait without a loop */
            corio__list_remove(&op.node);
        return -1;
    }
    if (cw.err != 0) {
        errno = cw.err;
        return -1;
    }
    *item = op.item;
    return 0;
}

/* ---- Channels ------------------------------------------------------------ */

corio_chan *corio_chan_new(size_t cap)
{
    corio_chan *ch = calloc(1, sizeof(*ch));

    if (ch == NULL)
        return NULL;
    ch->cap = cap;
    corio__list_init(&ch->sendq);
    corio__list_init(&ch->recvq);
    corio__list_init(&ch->joinq);
    return ch;
}

int corio_chan_free(corio_chan *ch)
{
    if (ch == NULL)
        return 0;
    if (!corio__list_empty(&ch->sendq) || !corio__list_empty(&ch->recvq) ||
        !corio__list_empty(&ch->joinq)) {
        errno = EBUSY;
        return -1;
    }
    free(ch->buf);
    free(ch);
    return 0;
}

int corio_chan_send(corio_chan *ch, void *item, int64_t deadline)
{
    int rc;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    rc = send_now(ch, item);
    if (rc == 0)
        return 0;
    if (rc != EAGAIN) {
        errno = rc;
        return -1;
    }
    return op_wait(ch, CORIO_CHAN_SEND, &item, deadline);
}

int corio_chan_recv(corio_chan *ch, void **item, int64_t deadline)
{
    void *got = NULL;
    int rc;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    rc = recv_now(ch, &got);
    if (rc == EAGAIN) {
        if (op_wait(ch, CORIO_CHAN_RECV, &got, deadline) == -1)
            return -1;
    } else if (rc != 0) {
        errno = rc;
        return -1;
    }
    if (item != NULL)
        *item = got;
    return 0;
}

int corio_chan_try_send(corio_chan *ch, void *item)
{
    int rc;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    rc = send_now(ch, item);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

int corio_chan_try_recv(corio_chan *ch, void **item)
{
    void *got;
    int rc;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    rc = recv_now(ch, &got);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    if (item != NULL)
        *item = got;
    return 0;
}

int corio_chan_close(corio_chan *ch)
{
    struct chan_op *op;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ch->closed) {
        errno = EALREADY;
        return -1;
    }
    ch->closed = true;
    /* op_complete unlinks the op (and its siblings): each loop ends. */
    while ((op = op_first(&ch->recvq)) != NULL)
        op_complete(op, CORIO_ECLOSED);
    while ((op = op_first(&ch->sendq)) != NULL)
        op_complete(op, CORIO_ECLOSED);
    return 0;
}

bool corio_chan_is_closed(const corio_chan *ch)
{
    return ch != NULL && ch->closed;
}

size_t corio_chan_len(const corio_chan *ch)
{
    return ch != NULL ? ch->len : 0;
}

size_t corio_chan_cap(const corio_chan *ch)
{
    return ch != NULL ? ch->cap : 0;
}

/* ---- task_done / join ---------------------------------------------------- */

int corio_chan_mark_done(corio_chan *ch)
{
    struct corio__list *n;

    if (ch == NULL || ch->unfinished == 0) {
        errno = EINVAL;
        return -1;
    }
    if (--ch->unfinished > 0)
        return 0;
    while ((n = corio__list_pop_front(&ch->joinq)) != NULL)
        corio__wake(CORIO_CONTAINER_OF(n, struct corio__waiter, node), 0);
    return 0;
}

int corio_chan_wait_done(corio_chan *ch, int64_t deadline)
{
    struct corio__waiter w;
    int rc;

    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    if (ch->unfinished == 0)
        return 0;
    corio__waiter_init(&w);
    w.unlink = corio__waiter_unlink_node;
    corio__list_push_back(&ch->joinq, &w.node);
    rc = corio__wait(&w, deadline);
    if (rc == -1 && corio__list_linked(&w.node))
        corio__list_remove(&w.node);
    return rc;
}

/* ---- Select -------------------------------------------------------------- */

static int select_check(const corio_chan_op *ops, size_t n, size_t *live)
{
    *live = 0;
    if (ops == NULL && n > 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].chan == NULL)
            continue;
        if (ops[i].dir != CORIO_CHAN_SEND && ops[i].dir != CORIO_CHAN_RECV) {
            errno = EINVAL;
            return -1;
        }
        (*live)++;
    }
    return 0;
}

/* Park one op per live entry of ops, all on cw, and wait. Returns the index
 * of the entry that completed, or -1 with errno. */
static int select_wait(corio_chan_op *ops, size_t n, size_t live,
                       int64_t deadline)
{
    struct chan_op local[SELECT_STACK_OPS], *cops = local;
    struct chan_wait cw;
    size_t k = 0;
    int rc, err;

    if (live > SELECT_STACK_OPS) {
        cops = malloc(live * sizeof(*cops));
        if (cops == NULL)
            return -1;
    }
    corio__waiter_init(&cw.w);
    cw.w.unlink = wait_unlink;
    cw.ops = cops;
    cw.n = live;
    cw.fired = NULL;
    cw.err = 0;
    for (size_t i = 0; i < n; i++) {
        struct chan_op *op = &cops[k];
        corio_chan *ch = ops[i].chan;

        if (ch == NULL)
            continue;
        op->cw = &cw;
        op->chan = ch;
        op->dir = ops[i].dir;
        op->item = op->dir == CORIO_CHAN_SEND ? ops[i].item : NULL;
        op->index = i;
        corio__list_push_back(op->dir == CORIO_CHAN_SEND ? &ch->sendq
                                                         : &ch->recvq,
                              &op->node);
        k++;
    }
    rc = corio__wait(&cw.w, deadline);
    err = errno;
    wait_unlink_ops(&cw); /* corio__wait without a loop does not */
    if (rc == 0) {
        struct chan_op *op = cw.fired;

        rc = (int)op->index;
        ops[rc].err = cw.err;
        if (op->dir == CORIO_CHAN_RECV && cw.err == 0)
            ops[rc].item = op->item;
    }
    if (cops != local)
        free(cops);
    errno = err;
    return rc;
}

int corio_chan_select(corio_chan_op *ops, size_t n, int64_t deadline)
{
    size_t live;

    if (select_check(ops, n, &live) == -1)
        return -1;
    if (n > (size_t)INT_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int rc;

        if (ops[i].chan == NULL)
            continue;
        rc = op_try(&ops[i]);
        if (rc == 1)
            return (int)i;
        if (rc == -1)
            return -1;
    }
    return select_wait(ops, n, live, deadline);
}
