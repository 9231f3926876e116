/* src/dist/manager_client.c -- the corio:// backend (dist_int.h): a client
 * of the manager. One connection carries the calls of any number of tasks:
 * each call seals a request frame with a fresh request id and waits on an
 * event; a reader task matches replies to calls by id. A call that gives
 * up (its deadline passed, or its task was cancelled) tells the manager to
 * drop it (CANCEL), and the reader gives back what a late reply brought
 * (a leased task is nacked, a removed one put back at the queue's front),
 * so that nothing is lost with it. */
#include "dist_int.h"
#include "wire_int.h"
#include "../base/list.h"

#include "corio/io.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "corio/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* How long past its deadline a call waits for the manager's own timeout
 * reply before giving up on its own. */
#define GRACE (2 * CORIO_SECOND)

struct mclient {
    struct corio__wire_conn w;
    corio_task *reader;
    struct corio__list calls;   /* struct call, waiting for replies */
    uint32_t next_rid;
    uint32_t max_frame;         /* the manager's frame limit */
};

struct call {
    struct corio__list node;    /* in calls */
    uint32_t rid;
    uint8_t op;
    bool lease;                 /* GET: a take */
    bool abandoned;             /* its caller left: the reader frees it */
    bool done;
    int err;                    /* the connection broke */
    uint8_t status;
    uint8_t *reply;
    size_t len;
    corio_event *ev;
    char name[CORIO_DIST_NAME_MAX + 1];
};

static struct mclient *client(corio_dist *d)
{
    return d->impl;
}

static void call_free(struct call *c)
{
    corio__list_remove(&c->node);
    corio_event_free(c->ev);
    free(c->reply);
    free(c);
}

/* ---- Calls ---------------------------------------------------------------- */

/* Start a request: a call record and the frame's header in the output.
 * ev false: nobody waits (the reply is only consumed). */
static struct call *call_begin(struct mclient *mc, uint8_t op, bool ev,
                               ssize_t *off)
{
    struct call *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    corio__list_init(&c->node);
    if (ev) {
        c->ev = corio_event_new();
        if (c->ev == NULL) {
            free(c);
            return NULL;
        }
    } else {
        c->abandoned = true;
    }
    c->op = op;
    c->rid = ++mc->next_rid;
    *off = corio__wire_begin(&mc->w, c->rid, op, CORIO__ST_OK);
    if (*off == -1) {
        call_free(c);
        return NULL;
    }
    return c;
}

/* Seal the frame and register the call. On failure the call is freed:
 * EMSGSIZE for a request bigger than the manager takes (it would close the
 * connection on it). */
static int call_send(struct mclient *mc, struct call *c, ssize_t off)
{
    if (mc->w.out.len - (size_t)off - CORIO__WIRE_HEADER > mc->max_frame) {
        corio__wire_abort(&mc->w, (size_t)off);
        call_free(c);
        errno = EMSGSIZE;
        return -1;
    }
    if (corio__wire_seal(&mc->w, (size_t)off) == -1) {
        call_free(c);
        return -1;
    }
    corio__list_push_back(&mc->calls, &c->node);
    return 0;
}

/* A payload that could not be appended. */
static int call_abort(struct mclient *mc, struct call *c, ssize_t off)
{
    int err = errno;

    corio__wire_abort(&mc->w, (size_t)off);
    call_free(c);
    errno = err;
    return -1;
}

/* A frame nobody answers (CANCEL, UNGET). */
static void send_oneway(struct mclient *mc, uint32_t rid, uint8_t op,
                        const void *payload, size_t len)
{
    ssize_t off = corio__wire_begin(&mc->w, rid, op, CORIO__ST_OK);

    if (off == -1)
        return;
    if (corio__wbuf_bytes(&mc->w.out, payload, len) == -1) {
        corio__wire_abort(&mc->w, (size_t)off);
        return;
    }
    (void)corio__wire_seal(&mc->w, (size_t)off);
}

/* Wait for c's reply until deadline (plus the grace for requests the
 * manager times out itself). Returns 0 with c done and OK (the caller
 * reads c->reply, then frees c), or -1 with errno (c is freed, or left to
 * the reader when abandoned). */
static int call_wait(corio_dist *d, struct call *c, int64_t deadline,
                     bool server_timeout)
{
    struct mclient *mc = client(d);
    int64_t until = deadline;

    /* The manager answers a wait that timed out itself (even one whose
     * deadline had passed when it was sent: a poll); the grace covers the
     * trip back. */
    if (server_timeout && deadline >= 0)
        until = (deadline > corio_now() ? deadline : corio_now()) + GRACE;
    if (corio_event_wait(c->ev, until) == -1 && !c->done) {
        int err = errno;

        c->abandoned = true;
        if (server_timeout)
            send_oneway(mc, c->rid, CORIO__OP_CANCEL, NULL, 0);
        errno = err;
        return -1;
    }
    if (c->err != 0 || c->status != CORIO__ST_OK) {
        errno = c->err != 0 ? c->err : corio__wire_status_errno(c->status);
        call_free(c);
        return -1;
    }
    return 0;
}

/* The timeout field: what is left of deadline, in ns (-1: none). */
static int64_t timeout_of(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - corio_now();
    return left > 0 ? left : 0;
}

/* Send c's request (sealed at off) and wait for its reply: *out gets c
 * (the caller reads its reply and frees it), or with out NULL it is
 * freed. Returns 0 or -1 (c is gone then). */
static int call_finish(corio_dist *d, struct call *c, ssize_t off,
                       struct call **out, int64_t deadline,
                       bool server_timeout)
{
    if (call_send(client(d), c, off) == -1 ||
        call_wait(d, c, deadline, server_timeout) == -1)
        return -1;
    if (out != NULL)
        *out = c;
    else
        call_free(c);
    return 0;
}

/* ---- The reader ----------------------------------------------------------- */

/* A reply for a caller that left: give back what it brought. */
static void give_back(struct mclient *mc, struct call *c)
{
    struct corio__rd r = {c->reply, c->reply + c->len, false};
    struct corio__wbuf b = {0};
    uint32_t n;

    if (c->op != CORIO__OP_GET || c->status != CORIO__ST_OK)
        return;
    n = corio__rd_u32(&r);
    if (!c->lease) {
        /* UNGET: name, count, the items as they came. */
        if (corio__wbuf_name(&b, c->name) == 0 &&
            corio__wbuf_bytes(&b, c->reply, c->len) == 0)
            send_oneway(mc, 0, CORIO__OP_UNGET, b.p, b.len);
        corio__wbuf_free(&b);
        return;
    }
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        uint64_t id = corio__rd_u64(&r);
        uint32_t len;
        ssize_t off;
        struct call *nk;

        (void)corio__rd_u32(&r);
        (void)corio__rd_blob(&r, &len);
        nk = call_begin(mc, CORIO__OP_NACK, false, &off);
        if (nk == NULL)
            continue;
        if (corio__wbuf_name(&mc->w.out, c->name) == -1 ||
            corio__wbuf_u64(&mc->w.out, id) == -1) {
            call_abort(mc, nk, off);
            continue;
        }
        (void)call_send(mc, nk, off);
    }
}

static struct call *call_find(struct mclient *mc, uint32_t rid)
{
    for (struct corio__list *n = mc->calls.next; n != &mc->calls; n = n->next) {
        struct call *c = CORIO_CONTAINER_OF(n, struct call, node);

        if (c->rid == rid)
            return c;
    }
    return NULL;
}

/* The connection broke: every call fails with err, now and later. */
static void fail_all(corio_dist *d, int err)
{
    struct mclient *mc = client(d);
    struct corio__list *n = mc->calls.next;

    if (d->err == 0)
        d->err = err;
    while (n != &mc->calls) {
        struct call *c = CORIO_CONTAINER_OF(n, struct call, node);

        n = n->next;
        if (c->abandoned) {
            call_free(c);
            continue;
        }
        corio__list_remove(&c->node);
        c->done = true;
        c->err = d->err;
        (void)corio_event_set(c->ev);
    }
}

static void *reader_main(void *arg)
{
    corio_dist *d = arg;
    struct mclient *mc = client(d);
    struct corio__wire_frame f;
    struct call *c;

    for (;;) {
        if (corio__wire_read(&mc->w, &f, -1) == -1)
            break;
        c = call_find(mc, f.rid);
        if (c == NULL || f.op != c->op) {
            errno = EPROTO;
            break;
        }
        c->reply = malloc(f.len > 0 ? f.len : 1);
        if (c->reply == NULL)
            break;
        memcpy(c->reply, f.payload, f.len);
        c->len = f.len;
        c->status = f.status;
        c->done = true;
        corio__list_remove(&c->node);
        if (c->abandoned) {
            give_back(mc, c);
            call_free(c);
        } else {
            (void)corio_event_set(c->ev);
        }
    }
    /* Cancelled by close: the calls are failed there. */
    if (errno != ECANCELED)
        fail_all(d, errno == CORIO_EEOF || errno == ECONNRESET ||
                            errno == EPIPE || errno == EPROTO
                        ? errno
                        : ECONNRESET);
    return NULL;
}

/* ---- Opening and closing -------------------------------------------------- */

static corio_stream *dial(const struct corio__dist_url *u,
                          const corio_dist_opts *o, int64_t deadline)
{
    corio_stream *s;

    if (o->tls == NULL)
        return corio_stream_connect(u->hostport, deadline);
    s = corio_stream_connect(u->hostport, deadline);
    if (s == NULL)
        return NULL;
    if (corio_stream_start_tls(s, o->tls,
                               o->tls_name != NULL ? o->tls_name : u->host,
                               deadline) == -1) {
        int err = errno;

        corio_stream_close(s);
        errno = err;
        return NULL;
    }
    return s;
}

static int mc_open(corio_dist *d, const struct corio__dist_url *u,
                   const corio_dist_opts *o, int64_t deadline)
{
    corio_task_attr attr = {.name = "dist-reader"};
    size_t keylen;
    uint8_t tx[32], rx[32];
    struct mclient *mc;
    corio_stream *s;
    int err;

    keylen = o->authkey == NULL ? 0
             : o->authkey_len > 0 ? o->authkey_len
                                  : strlen(o->authkey);
    if (keylen == 0) {
        errno = EINVAL;
        return -1;
    }
    mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return -1;
    corio__list_init(&mc->calls);
    s = dial(u, o, deadline);
    if (s == NULL)
        goto fail;
    if (corio__auth_client(s, o->authkey, keylen, tx, rx, &mc->max_frame,
                           deadline) == -1 ||
        corio__wire_conn_init(&mc->w, s, tx, rx, SIZE_MAX / 2) == -1) {
        err = errno;
        corio_stream_close(s);
        errno = err;
        goto fail;
    }
    d->impl = mc;
    mc->reader = corio_task_spawn(reader_main, d, &attr);
    if (mc->reader == NULL) {
        err = errno;
        corio__wire_conn_fini(&mc->w);
        errno = err;
        goto fail;
    }
    return 0;

fail:
    err = errno;
    free(mc);
    d->impl = NULL;
    errno = err;
    return -1;
}

static void mc_close(corio_dist *d)
{
    struct mclient *mc = client(d);

    {
        CORIO_SHIELD(-1);
        (void)corio_task_cancel(mc->reader);
        if (corio_task_join(mc->reader, NULL) == -1) {
            /* it ended cancelled, as asked */
        }
    }
    fail_all(d, EBADF);
    corio__wire_conn_fini(&mc->w);
    free(mc);
    d->impl = NULL;
}

/* ---- Operations ------------------------------------------------------------ */

/* A request with a name (and maybe more fields appended by fill). */
static int simple(corio_dist *d, uint8_t op, const char *name,
                  const uint64_t *id, struct call **out, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off;
    struct call *c = call_begin(mc, op, true, &off);

    if (c == NULL)
        return -1;
    if ((name != NULL && corio__wbuf_name(&mc->w.out, name) == -1) ||
        (id != NULL && corio__wbuf_u64(&mc->w.out, *id) == -1))
        return call_abort(mc, c, off);
    return call_finish(d, c, off, out, deadline, false);
}

/* Begin a PUT or ACK of n items of a queue: its name and n written. NULL
 * with errno (EMSGSIZE: more than the wire's count can say). */
static struct call *batch_begin(struct mclient *mc, uint8_t op,
                                const char *queue, size_t n, ssize_t *off)
{
    struct call *c;

    if (n > UINT32_MAX) {
        errno = EMSGSIZE;
        return NULL;
    }
    c = call_begin(mc, op, true, off);
    if (c == NULL)
        return NULL;
    if (corio__wbuf_name(&mc->w.out, queue) == -1 ||
        corio__wbuf_u32(&mc->w.out, (uint32_t)n) == -1) {
        call_abort(mc, c, *off);
        return NULL;
    }
    return c;
}

static int mc_put(corio_dist *d, const char *queue, const corio_dist_buf *items,
                  size_t n, uint64_t *ids, int64_t deadline)
{
    struct mclient *mc = client(d);
    struct corio__rd r;
    ssize_t off;
    struct call *c = batch_begin(mc, CORIO__OP_PUT, queue, n, &off);

    if (c == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (corio__wbuf_blob(&mc->w.out, items[i].data, items[i].len) == -1)
            return call_abort(mc, c, off);
    }
    if (call_finish(d, c, off, &c, deadline, false) == -1)
        return -1;
    r = (struct corio__rd){c->reply, c->reply + c->len, false};
    for (size_t i = 0; i < n; i++) {
        uint64_t id = corio__rd_u64(&r);

        if (ids != NULL)
            ids[i] = id;
    }
    call_free(c);
    if (r.bad) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* Parse a GET reply (deliveries: with each item's count) or a RESULTS
 * reply into out[]; -1 EPROTO (out cleared). */
static ssize_t msgs_parse(struct call *c, corio_dist_msg *out, size_t max,
                          bool deliveries)
{
    struct corio__rd r = {c->reply, c->reply + c->len, false};
    uint32_t n = corio__rd_u32(&r), i;

    if (n == 0 || n > max)
        r.bad = true;
    for (i = 0; i < n && !r.bad; i++) {
        uint32_t len;
        const uint8_t *p;

        out[i].id = corio__rd_u64(&r);
        if (deliveries)
            out[i].deliveries = corio__rd_u32(&r);
        p = corio__rd_blob(&r, &len);
        if (p == NULL)
            break;
        out[i].data = malloc((size_t)len + 1);
        if (out[i].data == NULL) {
            r.bad = true;
            break;
        }
        memcpy(out[i].data, p, len);
        ((uint8_t *)out[i].data)[len] = '\0';
        out[i].len = len;
    }
    if (r.bad) {
        for (uint32_t k = 0; k < max && k <= i; k++)
            corio_dist_msg_clear(&out[k]);
        errno = EPROTO;
        return -1;
    }
    return n;
}

static ssize_t mc_get(corio_dist *d, const char *queue, bool lease,
                      corio_dist_msg *out, size_t max, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off, n;
    struct call *c;

    if (max > UINT32_MAX)
        max = UINT32_MAX;
    c = call_begin(mc, CORIO__OP_GET, true, &off);
    if (c == NULL)
        return -1;
    c->lease = lease;
    strcpy(c->name, queue);
    if (corio__wbuf_name(&mc->w.out, queue) == -1 ||
        corio__wbuf_u8(&mc->w.out, lease) == -1 ||
        corio__wbuf_u32(&mc->w.out, (uint32_t)max) == -1 ||
        corio__wbuf_u64(&mc->w.out, (uint64_t)timeout_of(deadline)) == -1 ||
        corio__wbuf_u64(&mc->w.out, (uint64_t)d->lease) == -1 ||
        corio__wbuf_u32(&mc->w.out, d->max_deliveries) == -1)
        return call_abort(mc, c, off);
    if (call_finish(d, c, off, &c, deadline, true) == -1)
        return -1;
    n = msgs_parse(c, out, max, true);
    if (n == -1)
        give_back(mc, c);
    call_free(c);
    return n;
}

static int mc_ack(corio_dist *d, const char *queue, const uint64_t *ids,
                  const corio_dist_buf *results, size_t n, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off;
    struct call *c = batch_begin(mc, CORIO__OP_ACK, queue, n, &off);

    if (c == NULL)
        return -1;
    if (corio__wbuf_u8(&mc->w.out, results != NULL) == -1)
        return call_abort(mc, c, off);
    for (size_t i = 0; i < n; i++) {
        if (corio__wbuf_u64(&mc->w.out, ids[i]) == -1 ||
            (results != NULL &&
             corio__wbuf_blob(&mc->w.out, results[i].data, results[i].len) ==
                 -1))
            return call_abort(mc, c, off);
    }
    return call_finish(d, c, off, NULL, deadline, false);
}

static int mc_nack(corio_dist *d, const char *queue, uint64_t id,
                   int64_t deadline)
{
    return simple(d, CORIO__OP_NACK, queue, &id, NULL, deadline);
}

static int mc_touch(corio_dist *d, const char *queue, uint64_t id,
                    int64_t deadline)
{
    return simple(d, CORIO__OP_TOUCH, queue, &id, NULL, deadline);
}

static ssize_t mc_size(corio_dist *d, const char *queue, int64_t deadline)
{
    struct call *c;
    struct corio__rd r;
    uint64_t v;

    if (simple(d, CORIO__OP_SIZE, queue, NULL, &c, deadline) == -1)
        return -1;
    r = (struct corio__rd){c->reply, c->reply + c->len, false};
    v = corio__rd_u64(&r);
    call_free(c);
    if (r.bad || v > SSIZE_MAX) {
        errno = EPROTO;
        return -1;
    }
    return (ssize_t)v;
}

static int mc_close_queue(corio_dist *d, const char *queue, int64_t deadline)
{
    return simple(d, CORIO__OP_QCLOSE, queue, NULL, NULL, deadline);
}

/* Copy a reply's blob into *out. */
static int blob_out(struct call *c, corio_dist_msg *out)
{
    struct corio__rd r = {c->reply, c->reply + c->len, false};
    uint32_t len;
    const uint8_t *p = corio__rd_blob(&r, &len);

    if (p == NULL || r.p != r.end) {
        call_free(c);
        errno = EPROTO;
        return -1;
    }
    out->data = malloc((size_t)len + 1);
    if (out->data == NULL) {
        call_free(c);
        return -1;
    }
    memcpy(out->data, p, len);
    ((uint8_t *)out->data)[len] = '\0';
    out->len = len;
    call_free(c);
    return 0;
}

static int mc_result(corio_dist *d, uint64_t id, bool remove,
                     corio_dist_msg *out, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off;
    struct call *c = call_begin(mc, CORIO__OP_RESULT, true, &off);

    if (c == NULL)
        return -1;
    if (corio__wbuf_u64(&mc->w.out, id) == -1 ||
        corio__wbuf_u8(&mc->w.out, remove) == -1 ||
        corio__wbuf_u64(&mc->w.out, (uint64_t)timeout_of(deadline)) == -1)
        return call_abort(mc, c, off);
    if (call_finish(d, c, off, &c, deadline, true) == -1)
        return -1;
    if (blob_out(c, out) == -1)
        return -1;
    out->id = id;
    return 0;
}

static ssize_t mc_results(corio_dist *d, const uint64_t *ids, size_t n,
                          corio_dist_msg *out, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off;
    struct call *c;

    if (n > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    c = call_begin(mc, CORIO__OP_RESULTS, true, &off);
    if (c == NULL)
        return -1;
    if (corio__wbuf_u8(&mc->w.out, 1) == -1 ||
        corio__wbuf_u64(&mc->w.out, (uint64_t)timeout_of(deadline)) == -1 ||
        corio__wbuf_u32(&mc->w.out, (uint32_t)n) == -1)
        return call_abort(mc, c, off);
    for (size_t i = 0; i < n; i++)
        if (corio__wbuf_u64(&mc->w.out, ids[i]) == -1)
            return call_abort(mc, c, off);
    ssize_t k;

    if (call_finish(d, c, off, &c, deadline, true) == -1)
        return -1;
    k = msgs_parse(c, out, n, false);
    call_free(c);
    return k;
}

/* A map request: name, key, then a value for MSET. */
static int map_call(corio_dist *d, uint8_t op, const char *map,
                    const char *key, const void *value, size_t len,
                    struct call **out, int64_t deadline)
{
    struct mclient *mc = client(d);
    ssize_t off;
    struct call *c = call_begin(mc, op, true, &off);

    if (c == NULL)
        return -1;
    if (corio__wbuf_name(&mc->w.out, map) == -1 ||
        corio__wbuf_name(&mc->w.out, key) == -1 ||
        (op == CORIO__OP_MSET &&
         corio__wbuf_blob(&mc->w.out, value, len) == -1))
        return call_abort(mc, c, off);
    return call_finish(d, c, off, out, deadline, false);
}

static int mc_map_set(corio_dist *d, const char *map, const char *key,
                      const void *value, size_t len, int64_t deadline)
{
    return map_call(d, CORIO__OP_MSET, map, key, value, len, NULL, deadline);
}

static int mc_map_get(corio_dist *d, const char *map, const char *key,
                      corio_dist_msg *out, int64_t deadline)
{
    struct call *c;

    if (map_call(d, CORIO__OP_MGET, map, key, NULL, 0, &c, deadline) == -1)
        return -1;
    return blob_out(c, out);
}

static int mc_map_del(corio_dist *d, const char *map, const char *key,
                      int64_t deadline)
{
    return map_call(d, CORIO__OP_MDEL, map, key, NULL, 0, NULL, deadline);
}

const struct corio__dist_ops corio__dist_manager_ops = {
    .scheme = "corio",
    .open = mc_open,
    .close = mc_close,
    .put = mc_put,
    .get = mc_get,
    .ack = mc_ack,
    .nack = mc_nack,
    .touch = mc_touch,
    .size = mc_size,
    .close_queue = mc_close_queue,
    .result = mc_result,
    .results = mc_results,
    .map_set = mc_map_set,
    .map_get = mc_map_get,
    .map_del = mc_map_del,
};
