/* tests/test_dist_results.c -- corio_dist_result_take_many on both
 * backends (the manager in a task of the test's loop, and a redis-server of
 * the test's own): the results there are taken at once and only once; a
 * call with none there waits for the first to come (from any of the ids,
 * not only the first); the deadline with nothing taken; ENOENT only when
 * none has a result and one never will; ids given twice; the argument
 * errors; a waiting call cancelled; many ids in one call; and the queue's
 * size through batched, repeated and early acks (Redis keeps acked entries
 * until it trims the stream's head). No fd leaked. */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/dist.h"
#include "check.h"
#include "redis_test.h"
#include "timing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "abc"
#define MS CORIO_MSEC
#define SEC CORIO_SECOND
#define MANY 3000

static char url[200];
static struct redis_proc srv;

static corio_dist *dconnect(void)
{
    corio_dist_opts o = {.authkey = KEY};

    return corio_dist_connect(url, &o, corio_now() + 5 * SEC);
}

/* Take one task of q and ack it with result "r<data>". */
static int work_one(corio_dist_queue *q)
{
    corio_dist_msg m;
    char res[64];
    int n;

    if (corio_dist_queue_take(q, &m, corio_now() + 5 * SEC) == -1)
        return -1;
    n = snprintf(res, sizeof(res), "r%s", (char *)m.data);
    if (corio_dist_queue_ack(q, m.id, res, (size_t)n, -1) == -1) {
        corio_dist_msg_clear(&m);
        return -1;
    }
    corio_dist_msg_clear(&m);
    return 0;
}

struct late {
    const char *queue;
    int64_t ms;
};

/* After ms, take and ack one task (on its own connection). */
static void *late_worker(void *arg)
{
    struct late *l = arg;
    corio_dist *d;
    corio_dist_queue *q;
    int rc = -1;

    if (corio_sleep(l->ms * MS) == -1)
        return corio_task_fail(errno);
    d = dconnect();
    q = d != NULL ? corio_dist_queue_new(d, l->queue) : NULL;
    if (q != NULL)
        rc = work_one(q);
    int err = errno;
    (void)corio_dist_queue_free(q);
    (void)corio_dist_close(d);
    return rc == 0 ? NULL : corio_task_fail(err);
}

static void *basics(void *arg)
{
    corio_dist *d = dconnect();
    corio_dist_queue *q;
    corio_dist_msg out[8];
    uint64_t ids[4], twice[3];
    corio_dist_buf items[4] = {{"0", 1}, {"1", 1}, {"2", 1}, {"3", 1}};
    ssize_t k;
    int64_t t0;

    (void)arg;
    CHECK(d != NULL);
    q = corio_dist_queue_new(d, "res");
    CHECK(q != NULL);
    CHECK(corio_dist_queue_put_many(q, items, 4, ids, -1) == 0);

    /* none there: the deadline passes, nothing taken */
    t0 = corio_now();
    CHECK(corio_dist_result_take_many(d, ids, 4, out, corio_now() + 200 * MS) ==
              -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 150 * MS);
    CHECK(corio_dist_result_take_many(d, ids, 4, out, 0) == -1 &&
          errno == ETIMEDOUT);

    /* two done: both taken in one call, each once */
    CHECK(work_one(q) == 0 && work_one(q) == 0);
    k = corio_dist_result_take_many(d, ids, 4, out, corio_now() + 5 * SEC);
    CHECK(k == 2);
    CHECK((out[0].id == ids[0] && out[1].id == ids[1]) ||
          (out[0].id == ids[1] && out[1].id == ids[0]));
    for (int i = 0; i < 2; i++) {
        char want[8];

        snprintf(want, sizeof(want), "r%d", out[i].id == ids[0] ? 0 : 1);
        CHECK(out[i].len == 2 && memcmp(out[i].data, want, 2) == 0);
        corio_dist_msg_clear(&out[i]);
    }
    /* taken: alone they have no result to come */
    CHECK(corio_dist_result_take_many(d, ids, 2, out, -1) == -1 &&
          errno == ENOENT);
    CHECK(out[0].data == NULL && out[0].id == 0);

    /* none there: the call waits for the first to come, here the last id */
    {
        struct late l = {"res", 150};
        corio_task *w = corio_task_spawn(late_worker, &l, NULL);
        uint64_t rest[3] = {ids[2], ids[3], ids[3]};

        CHECK(w != NULL);
        t0 = corio_now();
        k = corio_dist_result_take_many(d, rest, 3, out, corio_now() + 10 * SEC);
        CHECK(k == 1 && out[0].id == ids[2]);
        CHECK(corio_now() - t0 >= 100 * MS);
        corio_dist_msg_clear(&out[0]);
        CHECK(corio_task_join(w, NULL) == 0);
    }

    /* an id given twice comes once; a taken one beside it is no error */
    CHECK(work_one(q) == 0);
    twice[0] = ids[3];
    twice[1] = ids[0];
    twice[2] = ids[3];
    k = corio_dist_result_take_many(d, twice, 3, out, corio_now() + 5 * SEC);
    CHECK(k == 1 && out[0].id == ids[3] && out[0].len == 2 &&
          memcmp(out[0].data, "r3", 2) == 0);
    corio_dist_msg_clear(&out[0]);

    /* unknown ids (never given out) */
    twice[0] = ids[3] + 1000000;
    CHECK(corio_dist_result_take_many(d, twice, 1, out, -1) == -1 &&
          errno == ENOENT);

    /* bad arguments */
    CHECK(corio_dist_result_take_many(d, ids, 0, out, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dist_result_take_many(d, NULL, 1, out, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dist_result_take_many(d, ids, 1, NULL, -1) == -1 &&
          errno == EINVAL);
    twice[0] = 0;
    CHECK(corio_dist_result_take_many(d, twice, 1, out, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dist_result_take_many(NULL, ids, 1, out, -1) == -1 &&
          errno == EINVAL);

    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

struct waiter {
    corio_dist *d;
    uint64_t id;
};

static void *waiting(void *arg)
{
    struct waiter *w = arg;
    corio_dist_msg out[1];

    if (corio_dist_result_take_many(w->d, &w->id, 1, out, -1) == -1)
        return corio_task_fail(errno);
    corio_dist_msg_clear(&out[0]);
    return NULL;
}

/* A waiting call cancelled; the connection goes on; then many at once. */
static void *cancel_many(void *arg)
{
    corio_dist *d = dconnect();
    corio_dist_queue *q;
    corio_dist_buf *items = calloc(MANY, sizeof(*items));
    uint64_t *ids = calloc(MANY, sizeof(*ids));
    corio_dist_msg *out = calloc(MANY, sizeof(*out));
    bool *seen = calloc(MANY, sizeof(*seen));
    struct waiter w;
    corio_task *t;
    corio_dist_msg m;
    size_t got = 0;

    (void)arg;
    CHECK(d != NULL && items != NULL && ids != NULL && out != NULL &&
          seen != NULL);
    q = corio_dist_queue_new(d, "many");
    CHECK(q != NULL);
    for (size_t i = 0; i < MANY; i++)
        items[i] = (corio_dist_buf){"x", 1};
    CHECK(corio_dist_queue_put_many(q, items, MANY, ids, -1) == 0);

    w = (struct waiter){d, ids[0]};
    t = corio_task_spawn(waiting, &w, NULL);
    CHECK(t != NULL);
    CHECK(corio_sleep(100 * MS) == 0);
    CHECK(corio_task_cancel(t) == 1);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);

    /* every task done, in batches; then all the results in few calls */
    for (size_t done = 0; done < MANY;) {
        corio_dist_msg b[100];
        uint64_t bid[100];
        corio_dist_buf res[100];
        ssize_t n = corio_dist_queue_take_many(q, b, 100, corio_now() + 5 * SEC);

        CHECK(n >= 1);
        for (ssize_t i = 0; i < n; i++) {
            bid[i] = b[i].id;
            res[i] = (corio_dist_buf){"ok", 2};
            corio_dist_msg_clear(&b[i]);
        }
        CHECK(corio_dist_queue_ack_many(q, bid, res, (size_t)n, -1) == 0);
        done += (size_t)n;
    }
    for (int calls = 0; got < MANY; calls++) {
        ssize_t k = corio_dist_result_take_many(d, ids, MANY, out,
                                                corio_now() + 5 * SEC);

        CHECK(calls < 1 && k == MANY);
        for (ssize_t i = 0; i < k; i++) {
            uint64_t off = out[i].id - ids[0];

            CHECK(out[i].id >= ids[0] && off < MANY && !seen[off]);
            CHECK(out[i].len == 2 && memcmp(out[i].data, "ok", 2) == 0);
            seen[off] = true;
            corio_dist_msg_clear(&out[i]);
        }
        got += (size_t)k;
    }
    CHECK(corio_dist_queue_get(q, &m, 0) == -1 && errno == ETIMEDOUT);
    free(items);
    free(ids);
    free(out);
    free(seen);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

/* Take up to n tasks of q (in batches) and ack them all; returns the count
 * or -1. */
static ssize_t take_ack(corio_dist_queue *q, size_t n)
{
    corio_dist_msg b[64];
    uint64_t id[64];
    size_t done = 0;

    while (done < n) {
        size_t want = n - done < 64 ? n - done : 64;
        ssize_t k = corio_dist_queue_take_many(q, b, want, corio_now() + 2 * SEC);

        if (k == -1)
            return -1;
        for (ssize_t i = 0; i < k; i++) {
            id[i] = b[i].id;
            corio_dist_msg_clear(&b[i]);
        }
        if (corio_dist_queue_ack_many(q, id, NULL, (size_t)k, -1) == -1)
            return -1;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

/* The size counts the tasks waiting, not leased, not done, through acks
 * in batches, a repeated ack, and an ack of a task never taken. */
static void *sizes(void *arg)
{
    corio_dist *d = dconnect();
    corio_dist_queue *q;
    corio_dist_buf items[300];
    uint64_t ids[300];
    corio_dist_msg m;

    (void)arg;
    CHECK(d != NULL);
    q = corio_dist_queue_new(d, "sizes");
    CHECK(q != NULL);
    for (int i = 0; i < 300; i++)
        items[i] = (corio_dist_buf){"t", 1};
    CHECK(corio_dist_queue_put_many(q, items, 300, ids, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 300);
    CHECK(take_ack(q, 150) == 150);
    CHECK(corio_dist_queue_size(q, -1) == 150);
    /* acked again (and with a task not acked yet): no change but that one */
    uint64_t again[2] = {ids[3], ids[3]};
    CHECK(corio_dist_queue_ack_many(q, again, NULL, 2, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 150);
    /* the last task, never taken, acked: it leaves the queue */
    CHECK(corio_dist_queue_ack(q, ids[299], "x", 1, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 149);
    /* one taken and held: not counted; the rest done */
    CHECK(corio_dist_queue_take(q, &m, corio_now() + 2 * SEC) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 148);
    CHECK(take_ack(q, 148) == 148);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_ack(q, m.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_put_many(q, items, 5, ids, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 5);
    CHECK(take_ack(q, 5) == 5);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_get(q, &m, 0) == -1 && errno == ETIMEDOUT);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

/* The manager in a task beside the body. */
struct with_manager {
    corio_fn body;
};

static void *under_manager(void *arg)
{
    struct with_manager *wm = arg;
    corio_dist_manager_opts o = {.authkey = KEY};
    corio_dist_manager *m = corio_dist_manager_start("127.0.0.1:0", &o);
    char addr[128];
    void *res;

    if (m == NULL || corio_dist_manager_addr(m, addr, sizeof(addr)) == -1)
        return "manager_start";
    snprintf(url, sizeof(url), "corio://%s", addr);
    res = wm->body(NULL);
    if (corio_dist_manager_stop(m, -1) == -1 && res == NULL)
        return "manager_stop";
    return res;
}

static void on_manager(corio_fn body)
{
    struct with_manager wm = {body};

    run_main_no_fd_leak(under_manager, &wm);
}

static void on_redis(corio_fn body)
{
    srv = (struct redis_proc){0};
    snprintf(srv.password, sizeof(srv.password), "%s", KEY);
    redis_start(&srv);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", srv.port);
    run_main_no_fd_leak(body, NULL);
    redis_stop(&srv, SIGTERM);
}

Test(dist_results, manager_basics, .timeout = 60)
{
    on_manager(basics);
}

Test(dist_results, manager_cancel_and_many, .timeout = 60)
{
    on_manager(cancel_many);
}

Test(dist_results, manager_sizes, .timeout = 60)
{
    on_manager(sizes);
}

Test(dist_results, redis_sizes, .timeout = 60)
{
    on_redis(sizes);
}

Test(dist_results, redis_basics, .timeout = 60)
{
    on_redis(basics);
}

Test(dist_results, redis_cancel_and_many, .timeout = 60)
{
    on_redis(cancel_many);
}
