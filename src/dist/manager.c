/* src/dist/manager.c -- the manager (corio://): a server that holds named
 * queues, task leases and results, and a map (manager_store.c), and serves
 * them over TCP (or TLS) to authenticated clients (auth.c, wire.c), in a
 * task of the calling thread's loop or in a process of its own
 * (manager_proc.c). One task per connection reads its requests and does
 * them at once; a request that must wait (a get on an empty queue, a
 * result not yet recorded) leaves a waiter that a put, an ack, a close or
 * its timer answers later. Replies go through the connection's writer, so
 * a waiter answered from a timer callback never blocks. */
#include "manager_int.h"

#include "corio/io.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "corio/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REAP_PERIOD (CORIO_SECOND / 20)   /* lease expiry checks */


struct mconn {
    struct corio__list node;      /* in m->conns */
    corio_dist_manager *m;
    struct corio__wire_conn w;
    struct corio__list leased;    /* its LEASED tasks */
    struct corio__list waits;     /* its waiting requests */
};

struct mwait {
    struct corio__list node;      /* in the queue's or the task's waiters */
    struct corio__list cnode;     /* in the connection's waits */
    struct mconn *c;
    uint32_t rid;
    uint8_t op;
    bool flag;                    /* GET: lease; RESULT: remove */
    uint32_t max;
    int64_t lease_ns;
    uint32_t max_deliveries;
    struct mtask *t;              /* RESULT: the task */
    corio_handle *timer;
    /* RESULTS: a waiter per task not done, in one array whose first is
     * the lead (in the connection's waits, with the timer and the ids);
     * each points to the lead. NULL for the others. */
    struct mwait *group;
    uint32_t members;             /* the lead: the array's length */
    uint64_t *ids;                /* the lead: the request's ids */
    uint32_t nids;
};

/* ---- Replies -------------------------------------------------------------- */

/* The connection cannot be answered (no memory for a reply): end it, so
 * that its client sees a broken connection, not a missing reply. */
static void conn_break(struct mconn *c, int err)
{
    if (c->w.err == 0)
        c->w.err = err;
    if (c->w.s != NULL)
        (void)shutdown(corio_stream_fd(c->w.s), SHUT_RDWR);
}

static void reply_status(struct mconn *c, uint32_t rid, uint8_t op, int err)
{
    ssize_t off = corio__wire_begin(&c->w, rid, op,
                                    err == 0 ? CORIO__ST_OK
                                             : corio__wire_errno_status(err));

    if (off == -1 || corio__wire_seal(&c->w, (size_t)off) == -1)
        conn_break(c, ENOMEM);
}

/* Reply OK with one blob (a result, a map value) or a u64 (size). */
static void reply_blob(struct mconn *c, uint32_t rid, uint8_t op,
                       const void *p, uint32_t len)
{
    ssize_t off = corio__wire_begin(&c->w, rid, op, CORIO__ST_OK);

    if (off == -1)
        goto fail;
    if (corio__wbuf_blob(&c->w.out, p, len) == -1) {
        corio__wire_abort(&c->w, (size_t)off);
        goto fail;
    }
    if (corio__wire_seal(&c->w, (size_t)off) == 0)
        return;
fail:
    conn_break(c, ENOMEM);
}

static void reply_u64(struct mconn *c, uint32_t rid, uint8_t op, uint64_t v)
{
    ssize_t off = corio__wire_begin(&c->w, rid, op, CORIO__ST_OK);

    if (off == -1 || corio__wbuf_u64(&c->w.out, v) == -1 ||
        corio__wire_seal(&c->w, (size_t)off) == -1)
        conn_break(c, ENOMEM);
}

/* ---- Leases ----------------------------------------------------------------- */

static void serve_waiters(corio_dist_manager *m, struct mqueue *q);
static void task_drop(corio_dist_manager *m, struct mtask *t);

/* A leased task comes back: to its queue's front, or to the dead-letter
 * queue after max_deliveries. */
static void lease_end(corio_dist_manager *m, struct mtask *t)
{
    struct mqueue *q = t->q;

    bool dead = t->deliveries >= t->max_deliveries;

    corio__list_remove(&t->node);
    t->owner = NULL;
    t->state = MTASK_READY;
    if (dead) {
        struct mqueue *d = corio__mstore_dead(&m->st, q);

        if (d != NULL)
            q = d;
        else
            dead = false;   /* no memory for it: delivered again */
    }
    t->q = q;
    if (dead)
        corio__list_push_back(&q->ready, &t->node);
    else
        corio__list_push_front(&q->ready, &t->node);
    q->size++;
    serve_waiters(m, q);
}

/* Take up to max ready tasks of q for c: leased (lease) or removed. The
 * reply lists them; removed tasks are freed after it is sealed. */
static void deliver(corio_dist_manager *m, struct mconn *c, uint32_t rid,
                    struct mqueue *q, bool lease, uint32_t max,
                    int64_t lease_ns, uint32_t max_deliveries)
{
    ssize_t off = corio__wire_begin(&c->w, rid, CORIO__OP_GET, CORIO__ST_OK);
    size_t count_at;
    uint32_t n = 0;
    int64_t now = corio_now();
    struct corio__list gone;
    bool sealed = false;

    corio__list_init(&gone);
    if (off == -1) {
        conn_break(c, ENOMEM);
        return;
    }
    if (corio__wbuf_u32(&c->w.out, 0) == -1)
        goto fail;
    count_at = c->w.out.len - 4;
    while (n < max && !corio__list_empty(&q->ready)) {
        struct mtask *t =
            CORIO_CONTAINER_OF(q->ready.next, struct mtask, node);

        if (corio__wbuf_u64(&c->w.out, t->id) == -1 ||
            corio__wbuf_u32(&c->w.out, lease ? t->deliveries + 1 : 0) == -1 ||
            corio__wbuf_blob(&c->w.out, t->data, t->len) == -1)
            goto fail;
        n++;
        corio__list_remove(&t->node);
        q->size--;
        if (!lease) {
            /* Freed once the reply is sealed: dropping it answers its
             * result waiters, maybe on c, whose frame would land inside
             * this one. */
            corio__list_push_back(&gone, &t->node);
            continue;
        }
        t->state = MTASK_LEASED;
        t->deliveries++;
        t->owner = c;
        t->expires = now + lease_ns;
        t->lease_ns = lease_ns;
        t->max_deliveries = max_deliveries;
        corio__list_push_back(&c->leased, &t->node);
    }
    c->w.out.p[count_at] = (uint8_t)(n >> 24);
    c->w.out.p[count_at + 1] = (uint8_t)(n >> 16);
    c->w.out.p[count_at + 2] = (uint8_t)(n >> 8);
    c->w.out.p[count_at + 3] = (uint8_t)n;
    if (corio__wire_seal(&c->w, (size_t)off) == 0)
        sealed = true;
fail:
    /* Tasks already taken stay with c (leased) or are gone (get): a
     * broken connection gives leases back; a get's loss is its own. */
    if (!sealed) {
        corio__wire_abort(&c->w, (size_t)off);
        conn_break(c, ENOMEM);
    }
    while (!corio__list_empty(&gone)) {
        struct mtask *t = CORIO_CONTAINER_OF(gone.next, struct mtask, node);

        corio__list_remove(&t->node);
        t->state = MTASK_DONE;   /* so that task_free unlinks nothing */
        task_drop(m, t);
    }
}

/* ---- Waiters ---------------------------------------------------------------- */

/* A RESULTS group leaves every list (and its timer stops); the memory
 * stays until group_free. */
static void group_unlink(struct mwait *lead)
{
    for (uint32_t i = 0; i < lead->members; i++)
        corio__list_remove(&lead[i].node);
    corio__list_remove(&lead->cnode);
    if (lead->timer != NULL) {
        (void)corio_handle_cancel(lead->timer);
        corio_handle_free(lead->timer);
        lead->timer = NULL;
    }
}

static void group_free(struct mwait *lead)
{
    group_unlink(lead);
    free(lead->ids);
    free(lead);
}

static void wait_free(struct mwait *w)
{
    if (w->group != NULL) {
        group_free(w->group);
        return;
    }
    corio__list_remove(&w->node);
    corio__list_remove(&w->cnode);
    if (w->timer != NULL) {
        (void)corio_handle_cancel(w->timer);
        corio_handle_free(w->timer);
    }
    free(w);
}

static void wait_expire(void *arg)
{
    struct mwait *w = arg;

    reply_status(w->c, w->rid, w->op, ETIMEDOUT);
    wait_free(w);
}

/* Free a task that a get removed: whoever waits for its result learns
 * that there will be none. */
static void task_drop(corio_dist_manager *m, struct mtask *t)
{
    while (!corio__list_empty(&t->waiters)) {
        struct mwait *w =
            CORIO_CONTAINER_OF(t->waiters.next, struct mwait, node);

        if (w->group != NULL)
            w = w->group;
        reply_status(w->c, w->rid, w->op, ENOENT);
        wait_free(w);
    }
    corio__mstore_task_free(&m->st, t);
}

/* Leave a waiter for request r on list (a queue's or a task's). */
static void wait_add(struct mconn *c, const struct corio__wire_req *r,
                     struct corio__list *list, struct mtask *t)
{
    struct mwait *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    w->c = c;
    w->rid = r->rid;
    w->op = r->op;
    w->flag = r->flag;
    w->max = r->n;
    w->lease_ns = r->lease;
    w->max_deliveries = r->max_deliveries;
    w->t = t;
    corio__list_init(&w->node);
    corio__list_init(&w->cnode);
    if (r->timeout > 0 &&
        corio_loop_call_at(corio_loop_current(), corio_now() + r->timeout,
                           wait_expire, w, &w->timer) == -1) {
        free(w);
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    corio__list_push_back(list, &w->node);
    corio__list_push_back(&c->waits, &w->cnode);
}

/* Answer q's waiters while it has tasks; a closed, empty queue fails
 * them. */
static void serve_waiters(corio_dist_manager *m, struct mqueue *q)
{
    while (!corio__list_empty(&q->waiters) &&
           (!corio__list_empty(&q->ready) || q->closed)) {
        struct mwait *w =
            CORIO_CONTAINER_OF(q->waiters.next, struct mwait, node);

        if (w->c->w.err != 0) {
            /* Its connection is broken: tasks sent there would be lost. */
            wait_free(w);
            continue;
        }
        if (corio__list_empty(&q->ready))
            reply_status(w->c, w->rid, w->op, CORIO_ECLOSED);
        else
            deliver(m, w->c, w->rid, q, w->flag, w->max, w->lease_ns,
                    w->max_deliveries);
        wait_free(w);
    }
}

/* Answer a result request on done task t; remove: take the result. */
static void result_send(struct mconn *c, uint32_t rid, struct mtask *t,
                        bool remove)
{
    if (t->result_taken) {
        reply_status(c, rid, CORIO__OP_RESULT, ENOENT);
        return;
    }
    reply_blob(c, rid, CORIO__OP_RESULT, t->result, t->result_len);
    if (remove) {
        free(t->result);
        t->result = NULL;
        t->result_len = 0;
        t->result_taken = true;
    }
}

/* ---- Requests ---------------------------------------------------------------- */

static void do_put(corio_dist_manager *m, struct mconn *c,
                   const struct corio__wire_req *r)
{
    struct corio__rd rd = {r->items, r->items_end, false};
    struct mqueue *q = corio__mstore_queue(&m->st, r->name);
    ssize_t off;
    uint32_t i, added = 0;

    if (q == NULL || q->closed) {
        reply_status(c, r->rid, r->op, q == NULL ? ENOMEM : CORIO_ECLOSED);
        return;
    }
    off = corio__wire_begin(&c->w, r->rid, r->op, CORIO__ST_OK);
    if (off == -1) {
        conn_break(c, ENOMEM);
        return;
    }
    for (i = 0; i < r->n; i++) {
        uint32_t len;
        const uint8_t *p = corio__rd_blob(&rd, &len);
        uint8_t *data = malloc(len > 0 ? len : 1);
        struct mtask *t = NULL;

        if (data != NULL) {
            memcpy(data, p, len);
            t = corio__mstore_task_new(&m->st, q, 0, data, len, false);
            if (t == NULL)
                free(data);
        }
        if (t == NULL)
            break;
        added++;
        if (corio__wbuf_u64(&c->w.out, t->id) == -1)
            break;
    }
    if (i < r->n) {
        /* All or none: take back the tasks of this put (the newest). */
        corio__wire_abort(&c->w, (size_t)off);
        while (added-- > 0)
            corio__mstore_task_free(
                &m->st, CORIO_CONTAINER_OF(q->ready.prev, struct mtask, node));
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    if (corio__wire_seal(&c->w, (size_t)off) == -1)
        conn_break(c, ENOMEM);
    serve_waiters(m, q);
}

static void do_get(corio_dist_manager *m, struct mconn *c,
                   const struct corio__wire_req *r)
{
    struct mqueue *q = corio__mstore_queue(&m->st, r->name);

    if (q == NULL)
        reply_status(c, r->rid, r->op, ENOMEM);
    else if (!corio__list_empty(&q->ready))
        deliver(m, c, r->rid, q, r->flag, r->n, r->lease, r->max_deliveries);
    else if (q->closed)
        reply_status(c, r->rid, r->op, CORIO_ECLOSED);
    else if (r->timeout == 0)
        reply_status(c, r->rid, r->op, ETIMEDOUT);
    else
        wait_add(c, r, &q->waiters, NULL);
}

/* ---- Results of many tasks ------------------------------------------- */

/* Answer a RESULTS request: the done ones of ids[n] (an id given twice,
 * once), taken if remove; if none is done, ENOENT if one has no result to
 * come (unknown, or taken). Returns false if none is done and all may
 * be: nothing sent. Taken tasks are
 * dropped, but for keep (its caller drops it), and only once group lead
 * (NULL: none) is off every list, so that a drop does not find it. */
static bool results_answer(corio_dist_manager *m, struct mconn *c,
                           uint32_t rid, bool remove, const uint64_t *ids,
                           uint32_t n, struct mwait *lead, struct mtask *keep)
{
    uint32_t done = 0, i;
    size_t at;
    ssize_t off;

    bool gone = false;

    for (i = 0; i < n; i++) {
        struct mtask *t = corio__mstore_task(&m->st, ids[i]);

        if (t == NULL || t->result_taken)
            gone = true;
        else
            done += t->state == MTASK_DONE;
    }
    if (done == 0 && gone) {
        if (lead != NULL)
            group_unlink(lead);
        reply_status(c, rid, CORIO__OP_RESULTS, ENOENT);
        return true;
    }
    if (done == 0)
        return false;
    if (lead != NULL)
        group_unlink(lead);
    off = corio__wire_begin(&c->w, rid, CORIO__OP_RESULTS, CORIO__ST_OK);
    if (off == -1)
        goto fail;
    at = c->w.out.len;
    if (corio__wbuf_u32(&c->w.out, 0) == -1)
        goto abort;
    done = 0;
    for (i = 0; i < n; i++) {
        struct mtask *t = corio__mstore_task(&m->st, ids[i]);

        if (t == NULL || t->state != MTASK_DONE || t->result_taken)
            continue;   /* unknown, not done, or given twice and taken */
        if (corio__wbuf_u64(&c->w.out, t->id) == -1 ||
            corio__wbuf_blob(&c->w.out, t->result, t->result_len) == -1)
            goto abort;
        done++;
        if (remove) {
            free(t->result);
            t->result = NULL;
            t->result_len = 0;
            t->result_taken = true;
        }
    }
    corio__wire_put32(c->w.out.p + at, done);
    if (corio__wire_seal(&c->w, (size_t)off) == -1)
        goto fail;
    for (i = 0; remove && i < n; i++) {
        struct mtask *t = corio__mstore_task(&m->st, ids[i]);

        if (t != NULL && t->result_taken && t != keep)
            task_drop(m, t);
    }
    return true;
abort:
    corio__wire_abort(&c->w, (size_t)off);
fail:
    conn_break(c, ENOMEM);
    return true;
}

/* A task of group lead is done (cur: its caller drops it). */
static void results_fire(corio_dist_manager *m, struct mwait *lead,
                         struct mtask *cur)
{
    (void)results_answer(m, lead->c, lead->rid, lead->flag, lead->ids,
                         lead->nids, lead, cur);
    free(lead->ids);
    free(lead);
}

/* Leave a group of waiters for RESULTS request r (ids: its ids, none
 * done; owned by the group from now). */
static void results_wait(struct mconn *c, const struct corio__wire_req *r,
                         uint64_t *ids)
{
    corio_dist_manager *m = c->m;
    struct mwait *lead = calloc(r->n, sizeof(*lead));
    uint32_t i;

    if (lead == NULL) {
        free(ids);
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    lead->c = c;
    lead->rid = r->rid;
    lead->op = r->op;
    lead->flag = r->flag;
    lead->members = r->n;
    lead->ids = ids;
    lead->nids = r->n;
    for (i = 0; i < r->n; i++) {
        struct mtask *t = corio__mstore_task(&m->st, ids[i]);

        lead[i].group = lead;
        corio__list_push_back(&t->waiters, &lead[i].node);
        if (i > 0)
            corio__list_init(&lead[i].cnode);
    }
    corio__list_push_back(&c->waits, &lead->cnode);
    if (r->timeout > 0 &&
        corio_loop_call_at(corio_loop_current(), corio_now() + r->timeout,
                           wait_expire, lead, &lead->timer) == -1) {
        group_free(lead);
        reply_status(c, r->rid, r->op, ENOMEM);
    }
}

static void do_results(corio_dist_manager *m, struct mconn *c,
                       const struct corio__wire_req *r)
{
    struct corio__rd rd = {r->items, r->items_end, false};
    uint64_t *ids = malloc((size_t)r->n * sizeof(*ids));

    if (ids == NULL) {
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    for (uint32_t i = 0; i < r->n; i++)
        ids[i] = corio__rd_u64(&rd);
    if (results_answer(m, c, r->rid, r->flag, ids, r->n, NULL, NULL)) {
        free(ids);
    } else if (r->timeout == 0) {
        free(ids);
        reply_status(c, r->rid, r->op, ETIMEDOUT);
    } else {
        results_wait(c, r, ids);
    }
}

/* Record the result of one acked task (p, len: the result). */
static void ack_one(corio_dist_manager *m, struct mtask *t, const uint8_t *p,
                    uint32_t len)
{
    if (t->state == MTASK_DONE)
        return;   /* ran twice: the first result stays */
    t->result = malloc(len > 0 ? len : 1);
    if (t->result == NULL)
        return;   /* left as it was: the task will be delivered again */
    if (len > 0)
        memcpy(t->result, p, len);
    t->result_len = len;
    t->has_result = true;
    if (t->state == MTASK_READY)
        t->q->size--;
    corio__list_remove(&t->node);
    t->state = MTASK_DONE;
    t->owner = NULL;
    free(t->data);
    t->data = NULL;
    while (!corio__list_empty(&t->waiters)) {
        struct mwait *w =
            CORIO_CONTAINER_OF(t->waiters.next, struct mwait, node);

        if (w->group != NULL) {
            results_fire(m, w->group, t);
            continue;
        }
        result_send(w->c, w->rid, t, w->flag);
        wait_free(w);
    }
    if (t->result_taken)
        task_drop(m, t);   /* its result is taken: forgotten */
}

static void do_ack(corio_dist_manager *m, struct mconn *c,
                   const struct corio__wire_req *r)
{
    struct corio__rd rd = {r->items, r->items_end, false};
    int err = 0;

    for (uint32_t i = 0; i < r->n; i++) {
        uint64_t id = corio__rd_u64(&rd);
        uint32_t len = 0;
        const uint8_t *p = r->flag ? corio__rd_blob(&rd, &len) : NULL;
        struct mtask *t = corio__mstore_task(&m->st, id);

        if (t == NULL)
            err = ENOENT;
        else
            ack_one(m, t, p, len);
    }
    reply_status(c, r->rid, r->op, err);
}

/* The task id leased by c, or NULL. */
static struct mtask *leased_by(corio_dist_manager *m, struct mconn *c,
                               uint64_t id)
{
    struct mtask *t = corio__mstore_task(&m->st, id);

    return t != NULL && t->state == MTASK_LEASED && t->owner == c ? t : NULL;
}

static void do_nack_touch(corio_dist_manager *m, struct mconn *c,
                          const struct corio__wire_req *r)
{
    struct mtask *t = leased_by(m, c, r->id);

    if (t == NULL) {
        reply_status(c, r->rid, r->op, ENOENT);
        return;
    }
    if (r->op == CORIO__OP_TOUCH)
        t->expires = corio_now() + t->lease_ns;
    reply_status(c, r->rid, r->op, 0);
    if (r->op == CORIO__OP_NACK)
        lease_end(m, t);
}

static void do_qclose(corio_dist_manager *m, struct mconn *c,
                      const struct corio__wire_req *r)
{
    struct mqueue *q = corio__mstore_queue(&m->st, r->name);

    if (q == NULL) {
        reply_status(c, r->rid, r->op, ENOMEM);
        return;
    }
    q->closed = true;
    reply_status(c, r->rid, r->op, 0);
    serve_waiters(m, q);
}

static void do_result(corio_dist_manager *m, struct mconn *c,
                      const struct corio__wire_req *r)
{
    struct mtask *t = corio__mstore_task(&m->st, r->id);

    if (t == NULL)
        reply_status(c, r->rid, r->op, ENOENT);
    else if (t->state == MTASK_DONE) {
        result_send(c, r->rid, t, r->flag);
        if (t->result_taken)
            task_drop(m, t);   /* its result is taken: forgotten */
    } else if (r->timeout == 0)
        reply_status(c, r->rid, r->op, ETIMEDOUT);
    else
        wait_add(c, r, &t->waiters, t);
}

static void do_map(corio_dist_manager *m, struct mconn *c,
                   const struct corio__wire_req *r)
{
    struct mentry *e;
    uint8_t *v;

    switch (r->op) {
    case CORIO__OP_MSET:
        v = malloc(r->value_len > 0 ? r->value_len : 1);
        if (v != NULL)
            memcpy(v, r->value, r->value_len);
        if (v == NULL ||
            corio__mstore_entry_set(&m->st, r->name, r->key, v,
                                    r->value_len) == -1) {
            free(v);
            reply_status(c, r->rid, r->op, ENOMEM);
        } else {
            reply_status(c, r->rid, r->op, 0);
        }
        break;
    case CORIO__OP_MGET:
        e = corio__mstore_entry(&m->st, r->name, r->key);
        if (e == NULL)
            reply_status(c, r->rid, r->op, ENOENT);
        else
            reply_blob(c, r->rid, r->op, e->value, e->len);
        break;
    default:
        reply_status(c, r->rid, r->op,
                     corio__mstore_entry_del(&m->st, r->name, r->key) == -1
                         ? ENOENT
                         : 0);
    }
}

static void do_cancel(struct mconn *c, uint32_t rid)
{
    struct corio__list *n;

    for (n = c->waits.next; n != &c->waits; n = n->next) {
        struct mwait *w = CORIO_CONTAINER_OF(n, struct mwait, cnode);

        if (w->rid == rid) {
            reply_status(c, rid, w->op, ECANCELED);
            wait_free(w);
            return;
        }
    }
}

/* Tasks a client got but could not hand to its caller come back first,
 * in their order. */
static void do_unget(corio_dist_manager *m, const struct corio__wire_req *r)
{
    struct corio__rd rd = {r->items, r->items_end, false};
    struct mqueue *q = corio__mstore_queue(&m->st, r->name);
    struct mtask *prev = NULL;

    for (uint32_t i = 0; q != NULL && i < r->n; i++) {
        uint64_t id = corio__rd_u64(&rd);
        uint32_t deliveries = corio__rd_u32(&rd), len;
        const uint8_t *p = corio__rd_blob(&rd, &len);
        uint8_t *data;
        struct mtask *t;

        if (corio__mstore_task(&m->st, id) != NULL)
            continue;
        data = malloc(len > 0 ? len : 1);
        if (data == NULL)
            break;
        memcpy(data, p, len);
        t = corio__mstore_task_new(&m->st, q, id, data, len, true);
        if (t == NULL) {
            free(data);
            break;
        }
        t->deliveries = deliveries;
        if (prev != NULL) {
            corio__list_remove(&t->node);
            corio__list_push_front(&prev->node, &t->node);
        }
        prev = t;
    }
    if (q != NULL)
        serve_waiters(m, q);
}

static void execute(corio_dist_manager *m, struct mconn *c,
                    const struct corio__wire_req *r)
{
    switch (r->op) {
    case CORIO__OP_PUT:
        do_put(m, c, r);
        break;
    case CORIO__OP_GET:
        do_get(m, c, r);
        break;
    case CORIO__OP_ACK:
        do_ack(m, c, r);
        break;
    case CORIO__OP_NACK:
    case CORIO__OP_TOUCH:
        do_nack_touch(m, c, r);
        break;
    case CORIO__OP_SIZE: {
        struct mqueue *q = corio__mstore_queue_find(&m->st, r->name);

        reply_u64(c, r->rid, r->op, q == NULL ? 0 : q->size);
        break;
    }
    case CORIO__OP_QCLOSE:
        do_qclose(m, c, r);
        break;
    case CORIO__OP_RESULT:
        do_result(m, c, r);
        break;
    case CORIO__OP_CANCEL:
        do_cancel(c, r->rid);
        break;
    case CORIO__OP_UNGET:
        do_unget(m, r);
        break;
    case CORIO__OP_RESULTS:
        do_results(m, c, r);
        break;
    default:
        do_map(m, c, r);
    }
}

/* ---- Connections -------------------------------------------------------- */

/* A connection's end: its waiters go, its leases come back. */
static void conn_end(corio_dist_manager *m, struct mconn *c)
{
    while (!corio__list_empty(&c->waits))
        wait_free(CORIO_CONTAINER_OF(c->waits.next, struct mwait, cnode));
    while (!corio__list_empty(&c->leased))
        lease_end(m, CORIO_CONTAINER_OF(c->leased.next, struct mtask, node));
    corio__list_remove(&c->node);
    c->w.s = NULL;   /* the server closes the stream */
    corio__wire_conn_fini(&c->w);
    free(c);
}

/* A client that sends requests and does not read the replies would make
 * the manager buffer them without end: past this many bytes waiting to be
 * sent, its next request is read only once they have gone out. */
static size_t backlog_limit(const corio_dist_manager *m)
{
    return 2 * m->max_frame + (1u << 20);
}

static void conn_serve(corio_dist_manager *m, struct mconn *c)
{
    struct corio__wire_frame f;
    struct corio__wire_req r;

    while (c->w.err == 0) {
        while (c->w.out.len + c->w.spare.len > backlog_limit(m)) {
            if (corio_sleep(CORIO_SECOND / 1000) == -1 || c->w.err != 0)
                return;
        }
        if (corio__wire_read(&c->w, &f, -1) == -1)
            return;
        if (f.status != CORIO__ST_OK ||
            corio__wire_req_decode(f.op, f.rid, f.payload, f.len, &r) == -1)
            return;   /* a malformed request ends the connection */
        execute(m, c, &r);
    }
}

static void conn_main(corio_stream *s, void *arg)
{
    corio_dist_manager *m = arg;
    uint8_t tx[32], rx[32];
    struct mconn *c;

    if (m->nconns >= m->max_conns)
        return;
    m->nconns++;
    if (corio__auth_server(s, m->key, m->keylen, tx, rx,
                           m->max_frame > UINT32_MAX ? UINT32_MAX
                                                     : (uint32_t)m->max_frame,
                           corio_now() + m->auth_timeout) == -1)
        goto out;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    if (corio__wire_conn_init(&c->w, s, tx, rx, m->max_frame) == -1) {
        free(c);
        goto out;
    }
    c->m = m;
    corio__list_init(&c->leased);
    corio__list_init(&c->waits);
    corio__list_push_back(&m->conns, &c->node);
    conn_serve(m, c);
    conn_end(m, c);
out:
    m->nconns--;
}

/* Give back the leases that expired, every REAP_PERIOD. */
static void *reaper_main(void *arg)
{
    corio_dist_manager *m = arg;

    while (corio_sleep(REAP_PERIOD) == 0) {
        int64_t now = corio_now();

        for (struct corio__list *n = m->conns.next; n != &m->conns;
             n = n->next) {
            struct mconn *c = CORIO_CONTAINER_OF(n, struct mconn, node);
            struct corio__list *p = c->leased.next;

            while (p != &c->leased) {
                struct mtask *t = CORIO_CONTAINER_OF(p, struct mtask, node);

                p = p->next;
                if (t->expires <= now)
                    lease_end(m, t);
            }
        }
    }
    return NULL;
}

/* ---- Starting and stopping ------------------------------------------------ */

int corio__manager_opts_check(const corio_dist_manager_opts *o)
{
    if (o == NULL || o->authkey == NULL ||
        (o->authkey_len == 0 && o->authkey[0] == '\0') ||
        o->auth_timeout < 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* The manager in a task of this thread's loop. */
corio_dist_manager *corio__manager_start_here(const char *addr,
                                              const corio_dist_manager_opts *o)
{
    corio_listen_opts lo = {.tls = o->tls};
    corio_task_attr attr = {.name = "dist-reaper"};
    corio_dist_manager *m;
    corio_addr a;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->keylen = o->authkey_len > 0 ? o->authkey_len : strlen(o->authkey);
    m->key = malloc(m->keylen);
    if (m->key == NULL)
        goto fail;
    memcpy(m->key, o->authkey, m->keylen);
    m->max_frame = o->max_frame > 0 ? o->max_frame : CORIO__WIRE_MAX_FRAME;
    m->max_conns = o->max_connections > 0 ? o->max_connections : 4096;
    m->auth_timeout = o->auth_timeout > 0 ? o->auth_timeout : 5 * CORIO_SECOND;
    corio__mstore_init(&m->st);
    corio__list_init(&m->conns);
    m->srv = corio_server_start(addr, &lo, conn_main, m);
    if (m->srv == NULL)
        goto fail;
    if (corio_socket_name(corio_server_fd(m->srv), &a) == -1 ||
        corio_addr_format(&a, m->addr, sizeof(m->addr)) == -1)
        goto fail_server;
    m->reaper = corio_task_spawn(reaper_main, m, &attr);
    if (m->reaper == NULL)
        goto fail_server;
    return m;

fail_server:
    corio_server_stop(m->srv, corio_now());
fail:
    {
        int err = errno;

        free(m->key);
        free(m);
        errno = err;
    }
    return NULL;
}

int corio__manager_stop_here(corio_dist_manager *m)
{
    /* Connections end now: their handlers are cancelled at once. */
    (void)corio_server_stop(m->srv, corio_now());
    (void)corio_task_cancel(m->reaper);
    {
        CORIO_SHIELD(-1);
        if (corio_task_join(m->reaper, NULL) == -1) {
            /* it ended cancelled, as asked */
        }
    }
    corio__mstore_fini(&m->st);
    free(m->key);
    free(m);
    return 0;
}

int corio_dist_manager_addr(const corio_dist_manager *m, char *buf,
                            size_t size)
{
    size_t n;

    if (m == NULL || buf == NULL) {
        errno = EINVAL;
        return -1;
    }
    n = strlen(m->addr);
    if (n >= size) {
        errno = ENOSPC;
        return -1;
    }
    memcpy(buf, m->addr, n + 1);
    return (int)n;
}

pid_t corio_dist_manager_pid(const corio_dist_manager *m)
{
    return m == NULL ? 0 : m->pid;
}
