/* tests/test_dist_manager.c -- the task-queue API over the manager
 * (corio://): queues, leases and acks, results, the map, closing, the
 * argument and connection errors, process mode, a worker killed with
 * kill -9 mid-task, the manager going away under its clients, and many
 * connected workers.
 *
 * Each test runs its body as corio_run's main task (CHECK returns a failure
 * text), with a manager in a task of the same loop on an ephemeral
 * loopback port, and checks that no fd is left open. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define KEY "abc"

struct env {
    corio_dist_manager *m;
    char url[200];
};

static corio_dist_manager *manager_up(struct env *e, bool process)
{
    corio_dist_manager_opts o = {.authkey = KEY, .process = process};
    char addr[128];

    e->m = corio_dist_manager_start("127.0.0.1:0", &o);
    if (e->m == NULL || corio_dist_manager_addr(e->m, addr, sizeof(addr)) == -1)
        return NULL;
    snprintf(e->url, sizeof(e->url), "corio://%s", addr);
    return e->m;
}

static corio_dist *client(struct env *e, const corio_dist_opts *o)
{
    corio_dist_opts def = {.authkey = KEY};

    return corio_dist_connect(e->url, o != NULL ? o : &def,
                              corio_now() + 5 * CORIO_SECOND);
}

/* The usual start of a body: a manager (in a task of this loop, or a
 * process), a client of it, and one queue of that client. NULL with errno
 * if one of them failed. */
static corio_dist_queue *one_queue(struct env *e, bool process,
                                   corio_dist **d, const char *name)
{
    if (manager_up(e, process) == NULL || (*d = client(e, NULL)) == NULL)
        return NULL;
    return corio_dist_queue_new(*d, name);
}

/* Its end: the queue and the client closed, the manager stopped. */
static int one_queue_end(struct env *e, corio_dist *d, corio_dist_queue *q)
{
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return corio_dist_manager_stop(e->m, -1);
}

static int64_t in_ms(int64_t ms)
{
    return corio_now() + ms * CORIO_MSEC;
}

/* In a task: after ms, fn(arg); its failure fails the task. */
struct later {
    int64_t ms;
    int (*fn)(void *arg);
    void *arg;
};

static void *later_main(void *arg)
{
    struct later *l = arg;

    if (corio_sleep(l->ms * CORIO_MSEC) == -1 || l->fn(l->arg) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static corio_task *later(struct later *l, int64_t ms, int (*fn)(void *),
                         void *arg)
{
    *l = (struct later){ms, fn, arg};
    return corio_task_spawn(later_main, l, NULL);
}

static int put_late(void *q)
{
    return corio_dist_queue_put(q, "late", 4, NULL, -1);
}

static int close_queue(void *q)
{
    return corio_dist_queue_close(q, -1);
}

static int stop_manager(void *m)
{
    return corio_dist_manager_stop(m, -1);
}

/* The task to ack, and the queue. */
struct acker {
    corio_dist_queue *q;
    uint64_t id;
};

static int ack_done(void *arg)
{
    struct acker *a = arg;

    return corio_dist_queue_ack(a->q, a->id, "done", 4, -1);
}

/* ---- Queues ----------------------------------------------------------------- */

static void *put_get_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    uint64_t id1 = 0, id2 = 0;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK((d = client(&e, NULL)) != NULL);
    CHECK(strcmp(corio_dist_backend(d), "corio") == 0);
    CHECK((q = corio_dist_queue_new(d, "q")) != NULL);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_put(q, "one", 3, &id1, -1) == 0);
    CHECK(corio_dist_queue_put(q, "two", 3, &id2, -1) == 0);
    CHECK(corio_dist_queue_put(q, NULL, 0, NULL, -1) == 0);
    CHECK(id1 != 0 && id2 != 0 && id1 != id2);
    CHECK(corio_dist_queue_size(q, -1) == 3);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0);
    CHECK(m.id == id1 && m.len == 3 && strcmp(m.data, "one") == 0);
    CHECK(m.deliveries == 0);
    corio_dist_msg_clear(&m);
    CHECK(m.data == NULL);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0 && strcmp(m.data, "two") == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0 && m.len == 0);
    CHECK(((char *)m.data)[0] == '\0');
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    /* A gotten task is gone: no ack for it. */
    CHECK(corio_dist_queue_ack(q, id1, "x", 1, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, put_get_size_in_order, .timeout = 30)
{
    run_main_no_fd_leak(put_get_body, NULL);
}

static void *timeout_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m = {.id = 7};
    int64_t t0;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "empty")) != NULL);
    t0 = corio_now();
    CHECK(corio_dist_queue_get(q, &m, in_ms(200)) == -1 && errno == ETIMEDOUT);
    CHECK(m.id == 0 && m.data == NULL);
    CHECK((corio_now() - t0) / CORIO_MSEC >= 190);
    CHECK((corio_now() - t0) / CORIO_MSEC < 200 + test_slack_ms() + 1000);
    /* A deadline already passed does not wait. */
    CHECK(corio_dist_queue_take(q, &m, 0) == -1 && errno == ETIMEDOUT);
    /* The connection still works after timeouts. */
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, 0) == 0 && m.deliveries == 1);
    CHECK(corio_dist_queue_ack(q, m.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, get_times_out, .timeout = 30)
{
    run_main_no_fd_leak(timeout_body, NULL);
}

static void *wakeup_body(void *arg)
{
    struct env e;
    corio_dist *d1, *d2;
    corio_dist_queue *q1, *q2;
    corio_dist_msg m;
    struct later l;
    corio_task *t;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK((d1 = client(&e, NULL)) != NULL);
    CHECK((d2 = client(&e, NULL)) != NULL);
    CHECK((q1 = corio_dist_queue_new(d1, "w")) != NULL);
    CHECK((q2 = corio_dist_queue_new(d2, "w")) != NULL);
    /* From another connection. */
    CHECK((t = later(&l, 100, put_late, q2)) != NULL);
    CHECK(corio_dist_queue_get(q1, &m, in_ms(5000)) == 0);
    CHECK(strcmp(m.data, "late") == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_task_join(t, NULL) == 0);
    /* From another task on the same connection, while this one waits: the
     * calls are pipelined, the put is not stuck behind the get. */
    CHECK((t = later(&l, 50, put_late, q1)) != NULL);
    CHECK(corio_dist_queue_take(q1, &m, in_ms(5000)) == 0);
    CHECK(corio_dist_queue_ack(q1, m.id, "r", 1, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_task_join(t, NULL) == 0);
    corio_dist_queue_free(q1);
    corio_dist_queue_free(q2);
    corio_dist_close(d1);
    corio_dist_close(d2);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, waiting_get_woken_by_put, .timeout = 30)
{
    run_main_no_fd_leak(wakeup_body, NULL);
}

/* ---- Leases, acks, results ---------------------------------------------------- */

static void *ack_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m, r;
    uint64_t id;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "tasks")) != NULL);
    CHECK(corio_dist_queue_put(q, "7", 1, &id, -1) == 0);
    /* No result yet. */
    CHECK(corio_dist_result_get(d, id, &r, 0) == -1 && errno == ETIMEDOUT);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    CHECK(m.id == id && m.deliveries == 1 && strcmp(m.data, "7") == 0);
    /* Leased: not in the queue, not in its size. */
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_touch(q, id, -1) == 0);
    CHECK(corio_dist_queue_ack(q, id, "49", 2, -1) == 0);
    /* A second ack (the task ran twice) is accepted and dropped. */
    CHECK(corio_dist_queue_ack(q, id, "50", 2, -1) == 0);
    CHECK(corio_dist_result_get(d, id, &r, -1) == 0);
    CHECK(r.id == id && strcmp(r.data, "49") == 0);
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_result_take(d, id, &r, -1) == 0 && strcmp(r.data, "49") == 0);
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_result_take(d, id, &r, -1) == -1 && errno == ENOENT);
    /* Taken: the task is forgotten, a late ack too. */
    CHECK(corio_dist_queue_ack(q, id, "51", 2, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_result_get(d, id, &r, -1) == -1 && errno == ENOENT);
    /* Unknown ids. */
    CHECK(corio_dist_result_get(d, 999999, &r, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_ack(q, 999999, NULL, 0, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_nack(q, id, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_touch(q, id, -1) == -1 && errno == ENOENT);
    corio_dist_msg_clear(&m);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, take_ack_result_once, .timeout = 30)
{
    run_main_no_fd_leak(ack_body, NULL);
}

static void *result_wait_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m, r;
    struct acker a;
    struct later l;
    corio_task *t;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "tasks")) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, &a.id, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    a.q = q;
    CHECK((t = later(&l, 100, ack_done, &a)) != NULL);
    CHECK(corio_dist_result_take(d, a.id, &r, in_ms(5000)) == 0);
    CHECK(strcmp(r.data, "done") == 0);
    corio_dist_msg_clear(&r);
    corio_dist_msg_clear(&m);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, result_waits_for_ack, .timeout = 30)
{
    run_main_no_fd_leak(result_wait_body, NULL);
}

static void *redeliver_body(void *arg)
{
    struct env e;
    corio_dist_opts o = {.authkey = KEY, .lease = 150 * CORIO_MSEC,
                         .max_deliveries = 3};
    corio_dist *d;
    corio_dist_queue *q, *dead;
    corio_dist_msg m;
    uint64_t id;
    int64_t t0;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK((d = client(&e, &o)) != NULL);
    CHECK((q = corio_dist_queue_new(d, "jobs")) != NULL);
    CHECK((dead = corio_dist_queue_new(d, "jobs.dead")) != NULL);
    CHECK(corio_dist_queue_put(q, "a", 1, &id, -1) == 0);
    CHECK(corio_dist_queue_put(q, "b", 1, NULL, -1) == 0);
    /* A nack puts it back at the front, at once. */
    CHECK(corio_dist_queue_take(q, &m, -1) == 0 && m.id == id);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_nack(q, id, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0 && m.id == id);
    CHECK(m.deliveries == 2);
    corio_dist_msg_clear(&m);
    /* Not acked: the lease expires and it comes again, first. */
    t0 = corio_now();
    CHECK(corio_dist_queue_take(q, &m, -1) == 0 && strcmp(m.data, "b") == 0);
    CHECK(corio_dist_queue_ack(q, m.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_take(q, &m, in_ms(5000)) == 0 && m.id == id);
    CHECK(m.deliveries == 3);
    CHECK((corio_now() - t0) / CORIO_MSEC >= 100);
    corio_dist_msg_clear(&m);
    /* The third delivery expires too: max_deliveries reached, dead letter. */
    CHECK(corio_dist_queue_take(q, &m, in_ms(600)) == -1 && errno == ETIMEDOUT);
    CHECK(corio_dist_queue_size(dead, -1) == 1);
    CHECK(corio_dist_queue_get(dead, &m, -1) == 0 && m.id == id);
    CHECK(strcmp(m.data, "a") == 0);
    corio_dist_msg_clear(&m);
    corio_dist_queue_free(q);
    corio_dist_queue_free(dead);
    corio_dist_close(d);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, nack_expiry_dead_letter, .timeout = 30)
{
    run_main_no_fd_leak(redeliver_body, NULL);
}

static void *disconnect_body(void *arg)
{
    struct env e;
    corio_dist *d1, *d2;
    corio_dist_queue *q1, *q2;
    corio_dist_msg m;
    uint64_t id;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK((d1 = client(&e, NULL)) != NULL);
    CHECK((d2 = client(&e, NULL)) != NULL);
    CHECK((q1 = corio_dist_queue_new(d1, "jobs")) != NULL);
    CHECK((q2 = corio_dist_queue_new(d2, "jobs")) != NULL);
    CHECK(corio_dist_queue_put(q1, "t", 1, &id, -1) == 0);
    CHECK(corio_dist_queue_take(q1, &m, -1) == 0 && m.id == id);
    corio_dist_msg_clear(&m);
    /* Another worker may not nack it. */
    CHECK(corio_dist_queue_nack(q2, id, -1) == -1 && errno == ENOENT);
    /* The taker leaves without acking: the task comes back at once (the
     * default lease is 30 s). */
    corio_dist_queue_free(q1);
    CHECK(corio_dist_close(d1) == 0);
    CHECK(corio_dist_queue_take(q2, &m, in_ms(5000)) == 0 && m.id == id);
    CHECK(m.deliveries == 2);
    CHECK(corio_dist_queue_ack(q2, id, "ok", 2, -1) == 0);
    corio_dist_msg_clear(&m);
    corio_dist_queue_free(q2);
    corio_dist_close(d2);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, disconnected_worker_task_redelivered, .timeout = 30)
{
    run_main_no_fd_leak(disconnect_body, NULL);
}

static void *batch_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_buf items[5] = {{"0", 1}, {"1", 1}, {"2", 1}, {"3", 1}, {"4", 1}};
    corio_dist_buf res[5] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}};
    corio_dist_msg m[8], r;
    uint64_t ids[5], got[5];
    ssize_t n;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "batch")) != NULL);
    CHECK(corio_dist_queue_put_many(q, items, 5, ids, -1) == 0);
    CHECK(ids[4] == ids[0] + 4);
    n = corio_dist_queue_take_many(q, m, 3, -1);
    CHECK(n == 3);
    n = corio_dist_queue_take_many(q, m + 3, 5, -1);
    CHECK(n == 2);
    for (int i = 0; i < 5; i++) {
        CHECK(m[i].id == ids[i] && ((char *)m[i].data)[0] == '0' + i);
        got[i] = m[i].id;
        corio_dist_msg_clear(&m[i]);
    }
    CHECK(corio_dist_queue_ack_many(q, got, res, 5, -1) == 0);
    for (int i = 0; i < 5; i++) {
        CHECK(corio_dist_result_take(d, ids[i], &r, -1) == 0);
        CHECK(((char *)r.data)[0] == 'a' + i);
        corio_dist_msg_clear(&r);
    }
    /* Acks without results record empty ones; an unknown id among them
     * is ENOENT, the others are acked all the same. */
    CHECK(corio_dist_queue_put_many(q, items, 2, ids, -1) == 0);
    CHECK(corio_dist_queue_take_many(q, m, 2, -1) == 2);
    corio_dist_msg_clear(&m[0]);
    corio_dist_msg_clear(&m[1]);
    got[0] = ids[0];
    got[1] = 123456789;
    got[2] = ids[1];
    CHECK(corio_dist_queue_ack_many(q, got, NULL, 3, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_result_get(d, ids[1], &r, 0) == 0 && r.len == 0);
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_queue_take_many(q, m, 0, -1) == -1 && errno == EINVAL);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, batches, .timeout = 30)
{
    run_main_no_fd_leak(batch_body, NULL);
}

/* ---- Closing a queue, the map ---------------------------------------------- */

static void *close_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    struct later l;
    corio_task *t;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "c")) != NULL);
    /* A waiting get is woken by the close. */
    CHECK((t = later(&l, 100, close_queue, q)) != NULL);
    CHECK(corio_dist_queue_get(q, &m, in_ms(5000)) == -1 &&
          errno == CORIO_ECLOSED);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == -1 &&
          errno == CORIO_ECLOSED);
    CHECK(corio_dist_queue_close(q, -1) == 0);
    corio_dist_queue_free(q);
    /* What was put before the close is still gotten, then ECLOSED. */
    CHECK((q = corio_dist_queue_new(d, "c2")) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_close(q, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    CHECK(corio_dist_queue_ack(q, m.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_take(q, &m, -1) == -1 && errno == CORIO_ECLOSED);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, close_queue, .timeout = 30)
{
    run_main_no_fd_leak(close_body, NULL);
}

static void *map_body(void *arg)
{
    struct env e;
    corio_dist *d1, *d2;
    corio_dist_map *a, *b, *other;
    corio_dist_msg v;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK((d1 = client(&e, NULL)) != NULL);
    CHECK((d2 = client(&e, NULL)) != NULL);
    CHECK((a = corio_dist_map_new(d1, "conf")) != NULL);
    CHECK((b = corio_dist_map_new(d2, "conf")) != NULL);
    CHECK((other = corio_dist_map_new(d2, "other")) != NULL);
    CHECK(corio_dist_map_get(b, "k", &v, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_map_set(a, "k", "v1", 2, -1) == 0);
    CHECK(corio_dist_map_get(b, "k", &v, -1) == 0 && strcmp(v.data, "v1") == 0);
    corio_dist_msg_clear(&v);
    CHECK(corio_dist_map_set(a, "k", "v22", 3, -1) == 0);
    CHECK(corio_dist_map_get(b, "k", &v, -1) == 0 && v.len == 3);
    corio_dist_msg_clear(&v);
    CHECK(corio_dist_map_get(other, "k", &v, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_map_set(a, "empty", NULL, 0, -1) == 0);
    CHECK(corio_dist_map_get(a, "empty", &v, -1) == 0 && v.len == 0);
    corio_dist_msg_clear(&v);
    CHECK(corio_dist_map_del(b, "k", -1) == 0);
    CHECK(corio_dist_map_del(b, "k", -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_map_get(a, "k", &v, -1) == -1 && errno == ENOENT);
    corio_dist_map_free(a);
    corio_dist_map_free(b);
    corio_dist_map_free(other);
    corio_dist_close(d1);
    corio_dist_close(d2);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, map, .timeout = 30)
{
    run_main_no_fd_leak(map_body, NULL);
}

/* ---- Errors ---------------------------------------------------------------------- */

static void *args_body(void *arg)
{
    struct env e;
    corio_dist_opts o = {.authkey = KEY};
    char longname[CORIO_DIST_NAME_MAX + 2];
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_map *mp;
    corio_dist_msg m;

    (void)arg;
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(manager_up(&e, false) != NULL);
    /* URLs. */
    CHECK(corio_dist_connect(NULL, &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio:/x:1", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio://:1", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio://h:99999", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio://h:12x", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio://u@h:1", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("corio://h:1/x", &o, -1) == NULL && errno == EINVAL);
    CHECK(corio_dist_connect("ftp://h:1", &o, -1) == NULL &&
          errno == EPROTONOSUPPORT);
    /* Keys: none, empty. */
    CHECK(corio_dist_connect(e.url, NULL, -1) == NULL && errno == EINVAL);
    o.authkey = "";
    CHECK(corio_dist_connect(e.url, &o, -1) == NULL && errno == EINVAL);
    o.authkey = KEY;
    o.lease = -1;
    CHECK(corio_dist_connect(e.url, &o, -1) == NULL && errno == EINVAL);
    o.lease = 0;
    /* Handles. */
    CHECK((d = client(&e, NULL)) != NULL);
    CHECK(corio_dist_queue_new(NULL, "q") == NULL && errno == EINVAL);
    CHECK(corio_dist_queue_new(d, "") == NULL && errno == EINVAL);
    CHECK(corio_dist_queue_new(d, NULL) == NULL && errno == EINVAL);
    CHECK(corio_dist_queue_new(d, longname) == NULL && errno == EINVAL);
    longname[CORIO_DIST_NAME_MAX] = '\0';
    CHECK((q = corio_dist_queue_new(d, longname)) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_put(q, NULL, 1, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_put(NULL, "x", 1, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_put_many(q, NULL, 1, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_get(q, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_ack(q, 0, NULL, 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_nack(q, 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_queue_touch(q, 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_result_get(d, 0, &m, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_result_get(d, 1, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_result_take(NULL, 1, &m, -1) == -1 && errno == EINVAL);
    CHECK((mp = corio_dist_map_new(d, "m")) != NULL);
    CHECK(corio_dist_map_set(mp, "", "v", 1, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_map_set(mp, "k", NULL, 1, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_map_get(mp, NULL, &m, -1) == -1 && errno == EINVAL);
    CHECK(corio_dist_map_del(NULL, "k", -1) == -1 && errno == EINVAL);
    /* Handles open: the connection refuses to close. */
    CHECK(corio_dist_close(d) == -1 && errno == EBUSY);
    CHECK(corio_dist_queue_free(q) == 0 && corio_dist_map_free(mp) == 0);
    CHECK(corio_dist_queue_free(NULL) == 0 && corio_dist_map_free(NULL) == 0);
    CHECK(corio_dist_close(d) == 0 && corio_dist_close(NULL) == 0);
    corio_dist_msg_clear(NULL);
    /* The manager's own options. */
    CHECK(corio_dist_manager_start("127.0.0.1:0", NULL) == NULL && errno == EINVAL);
    CHECK(corio_dist_manager_start("127.0.0.1:0",
                                   &(corio_dist_manager_opts){.authkey = ""}) ==
              NULL &&
          errno == EINVAL);
    CHECK(corio_dist_manager_start("nonsense", &(corio_dist_manager_opts){
                                                   .authkey = KEY}) == NULL);
    CHECK(corio_dist_manager_stop(NULL, -1) == 0);
    CHECK(corio_dist_manager_pid(e.m) == 0);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_manager, bad_arguments, .timeout = 30)
{
    run_main_no_fd_leak(args_body, NULL);
}

static void *keys_body(void *arg)
{
    struct env e;
    corio_dist_opts o = {.authkey = "abd"};
    corio_dist *d;

    (void)arg;
    CHECK(manager_up(&e, false) != NULL);
    CHECK(corio_dist_connect(e.url, &o, in_ms(5000)) == NULL && errno == EACCES);
    /* The key is bytes, with its length: "abc\0" is not "abc". */
    o = (corio_dist_opts){.authkey = "abc", .authkey_len = 4};
    CHECK(corio_dist_connect(e.url, &o, in_ms(5000)) == NULL && errno == EACCES);
    o = (corio_dist_opts){.authkey = "ab", .authkey_len = 2};
    CHECK(corio_dist_connect(e.url, &o, in_ms(5000)) == NULL && errno == EACCES);
    /* The refusals cost the manager nothing: the right key still works. */
    CHECK((d = client(&e, NULL)) != NULL);
    corio_dist_close(d);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    /* Nobody there. */
    CHECK(corio_dist_connect(e.url, &(corio_dist_opts){.authkey = KEY},
                             in_ms(5000)) == NULL &&
          errno == ECONNREFUSED);
    return NULL;
}

Test(dist_manager, wrong_keys_refused, .timeout = 30)
{
    run_main_no_fd_leak(keys_body, NULL);
}

static void *gone_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    int err;

    (void)arg;
    CHECK(manager_up(&e, true) != NULL);
    CHECK(corio_dist_manager_pid(e.m) > 0);
    CHECK((d = client(&e, NULL)) != NULL);
    CHECK((q = corio_dist_queue_new(d, "q")) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 1);
    /* The manager's process ends (as at a restart): calls fail clearly,
     * the waiting one too, and the error sticks. */
    CHECK(corio_dist_manager_stop(e.m, in_ms(5000)) == 0);
    CHECK(corio_dist_queue_get(q, &m, in_ms(5000)) == -1);
    err = errno;
    CHECK(err == CORIO_EEOF || err == ECONNRESET || err == EPIPE);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == -1 && errno == err);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return NULL;
}

Test(dist_manager, manager_process_gone, .timeout = 30)
{
    run_main_no_fd_leak(gone_body, NULL);
}

/* The manager in a task of this loop, stopped: its connections end at
 * once, a get waiting on one of them too. */
static void *stopped_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    struct later l;
    corio_task *t;
    int err;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "q")) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK((t = later(&l, 100, stop_manager, e.m)) != NULL);
    CHECK(corio_dist_queue_get(q, &m, in_ms(5000)) == -1);
    err = errno;
    CHECK(err == CORIO_EEOF || err == ECONNRESET || err == EPIPE);
    CHECK(corio_task_join(t, NULL) == 0);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return NULL;
}

Test(dist_manager, manager_task_stopped, .timeout = 30)
{
    run_main_no_fd_leak(stopped_body, NULL);
}

/* ---- kill -9 mid-task ------------------------------------------------------------- */

/* The child: take the task, tell the parent, and wait to be killed. */
static void *doomed_worker(void *arg)
{
    const char *url = arg;
    corio_dist_opts o = {.authkey = KEY};
    corio_dist *d = corio_dist_connect(url, &o, in_ms(5000));
    corio_dist_queue *q = d != NULL ? corio_dist_queue_new(d, "jobs") : NULL;
    corio_dist_msg m;

    if (q == NULL || corio_dist_queue_take(q, &m, in_ms(5000)) == -1)
        _exit(3);
    if (write(1, "T", 1) != 1)
        _exit(4);
    for (;;)
        pause();
}

static void *doomed_thread(void *arg)
{
    (void)corio_run(doomed_worker, arg, NULL);
    return NULL;
}

static void *killed_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m, r;
    uint64_t id;
    int fds[2], status;
    char c;
    pid_t pid;

    (void)arg;
    CHECK((q = one_queue(&e, true, &d, "jobs")) != NULL);
    CHECK(corio_dist_queue_put(q, "6", 1, &id, -1) == 0);
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid != -1);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        /* A fresh loop in a thread of its own (this one's loop is the
         * parent's), as the manager's process does. */
        pthread_t th;

        if (pthread_create(&th, NULL, doomed_thread, e.url) != 0)
            _exit(6);
        pthread_join(th, NULL);
        _exit(5);
    }
    close(fds[1]);
    CHECK(read(fds[0], &c, 1) == 1 && c == 'T');
    close(fds[0]);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    /* The lease dies with the connection: delivered again. */
    CHECK(corio_dist_queue_take(q, &m, in_ms(5000)) == 0 && m.id == id);
    CHECK(m.deliveries == 2);
    CHECK(corio_dist_queue_ack(q, id, "36", 2, -1) == 0);
    CHECK(corio_dist_queue_ack(q, id, "37", 2, -1) == 0);
    CHECK(corio_dist_result_take(d, id, &r, -1) == 0 && strcmp(r.data, "36") == 0);
    corio_dist_msg_clear(&r);
    corio_dist_msg_clear(&m);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    CHECK(corio_dist_manager_stop(e.m, in_ms(5000)) == 0);
    return NULL;
}

Test(dist_manager, worker_killed_mid_task, .timeout = 30)
{
    run_main_no_fd_leak(killed_body, NULL);
}

/* ---- Cancellation: a withdrawn call loses nothing --------------------------- */

static void *getter(void *arg)
{
    corio_dist_msg m;

    if (corio_dist_queue_get(arg, &m, -1) == -1)
        return corio_task_fail(errno);
    corio_dist_msg_clear(&m);
    return NULL;
}

static void *cancel_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    corio_task *t;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "c")) != NULL);
    CHECK((t = corio_task_spawn(getter, q, NULL)) != NULL);
    CHECK(corio_sleep(100 * CORIO_MSEC) == 0);
    CHECK(corio_task_cancel(t) == 1);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
    /* The cancelled get was withdrawn: the next task is not eaten by it. */
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_get(q, &m, in_ms(5000)) == 0);
    CHECK(strcmp(m.data, "x") == 0);
    corio_dist_msg_clear(&m);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, cancelled_get_withdrawn, .timeout = 30)
{
    run_main_no_fd_leak(cancel_body, NULL);
}

/* A manager that stops answering (SIGSTOP) while a get waits and a put
 * is on its way: the get gives up 2 s after its deadline; when the manager
 * runs again, the task is either still queued or delivered to the
 * abandoned get and given back by its client. Either way it is not lost. */
static void *frozen_body(void *arg)
{
    struct env e;
    corio_dist *d1, *d2;
    corio_dist_queue *q1, *q2;
    corio_dist_msg m;
    bool lease = arg != NULL;
    int64_t t0, waited;
    int rc, err, put_rc, put_err;

    CHECK(manager_up(&e, true) != NULL);
    CHECK((d1 = client(&e, NULL)) != NULL);
    CHECK((d2 = client(&e, NULL)) != NULL);
    CHECK((q1 = corio_dist_queue_new(d1, "f")) != NULL);
    CHECK((q2 = corio_dist_queue_new(d2, "f")) != NULL);
    CHECK(corio_dist_queue_size(q1, -1) == 0);   /* d1 is in */
    CHECK(kill(corio_dist_manager_pid(e.m), SIGSTOP) == 0);
    /* (It is our child: wait until it has stopped.) */
    CHECK(waitpid(corio_dist_manager_pid(e.m), &rc, WUNTRACED) ==
              corio_dist_manager_pid(e.m) &&
          WIFSTOPPED(rc));
    /* d2's put waits in the manager's socket; so does d1's get. (No CHECK
     * until the manager runs again: a stopped process must not be left.) */
    put_rc = corio_dist_queue_put(q2, "kept", 4, NULL, in_ms(100));
    put_err = errno;
    t0 = corio_now();
    rc = lease ? corio_dist_queue_take(q1, &m, in_ms(200))
               : corio_dist_queue_get(q1, &m, in_ms(200));
    err = errno;
    waited = (corio_now() - t0) / CORIO_MSEC;
    CHECK(kill(corio_dist_manager_pid(e.m), SIGCONT) == 0);
    CHECK(put_rc == -1 && put_err == ETIMEDOUT);
    CHECK(rc == -1 && err == ETIMEDOUT);
    CHECK(waited >= 2000);
    /* d2 (a fresh wait) finds the task, now or once d1 gave it back. */
    CHECK(corio_dist_queue_take(q2, &m, in_ms(5000)) == 0);
    CHECK(strcmp(m.data, "kept") == 0);
    CHECK(corio_dist_queue_ack(q2, m.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_size(q1, -1) == 0);
    corio_dist_queue_free(q1);
    corio_dist_queue_free(q2);
    corio_dist_close(d1);
    corio_dist_close(d2);
    CHECK(corio_dist_manager_stop(e.m, in_ms(5000)) == 0);
    return NULL;
}

Test(dist_manager, abandoned_get_loses_nothing, .timeout = 30)
{
    run_main_no_fd_leak(frozen_body, NULL);
}

Test(dist_manager, abandoned_take_loses_nothing, .timeout = 30)
{
    run_main_no_fd_leak(frozen_body, (void *)1);
}

/* ---- TLS ------------------------------------------------------------------------ */

#include "../examples/devcert.h"

static char certdir[64];

static void *tls_body(void *arg)
{
    char path[2][128];
    corio_tls_opts so, co;
    corio_tls *stls, *ctls;
    corio_dist_manager_opts mo = {.authkey = KEY};
    corio_dist_opts o = {.authkey = KEY};
    corio_dist_manager *m;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg msg;
    char addr[100], url[160];

    (void)arg;
    snprintf(path[0], sizeof(path[0]), "%s/server.pem", certdir);
    snprintf(path[1], sizeof(path[1]), "%s/server.key", certdir);
    so = (corio_tls_opts){.cert_file = path[0], .key_file = path[1]};
    CHECK((stls = corio_tls_server(&so)) != NULL);
    snprintf(path[0], sizeof(path[0]), "%s/ca.pem", certdir);
    co = (corio_tls_opts){.ca_file = path[0]};
    CHECK((ctls = corio_tls_client(&co)) != NULL);
    mo.tls = stls;
    CHECK((m = corio_dist_manager_start("127.0.0.1:0", &mo)) != NULL);
    CHECK(corio_dist_manager_addr(m, addr, sizeof(addr)) > 0);
    snprintf(url, sizeof(url), "corio://%s", addr);
    /* Plain TCP against a TLS manager: refused, clearly. */
    CHECK(corio_dist_connect(url, &o, in_ms(500)) == NULL);
    CHECK(errno == ETIMEDOUT || errno == EPROTO || errno == ECONNRESET);
    /* TLS, verified for 127.0.0.1 (the URL's host), then a wrong key. */
    o.tls = ctls;
    o.authkey = "abd";
    CHECK(corio_dist_connect(url, &o, in_ms(5000)) == NULL && errno == EACCES);
    o.authkey = KEY;
    CHECK((d = corio_dist_connect(url, &o, in_ms(5000))) != NULL);
    CHECK((q = corio_dist_queue_new(d, "tls")) != NULL);
    CHECK(corio_dist_queue_put(q, "secret", 6, NULL, -1) == 0);
    CHECK(corio_dist_queue_take(q, &msg, -1) == 0);
    CHECK(strcmp(msg.data, "secret") == 0);
    CHECK(corio_dist_queue_ack(q, msg.id, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&msg);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    /* A name the certificate does not hold. */
    o.tls_name = "other.example";
    CHECK(corio_dist_connect(url, &o, in_ms(5000)) == NULL && errno == EPROTO);
    CHECK(corio_dist_manager_stop(m, -1) == 0);
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(dist_manager, over_tls, .timeout = 30)
{
    snprintf(certdir, sizeof(certdir), "/tmp/corio-dist-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(certdir));
    cr_assert_eq(devcert_make(certdir), 0);
    run_main_no_fd_leak(tls_body, NULL);
    devcert_remove(certdir);
}

/* ---- The manager's process ends with its parent ------------------------------- */

/* The child exits without stopping its manager, on purpose: kept here so
 * that valgrind (tracing the child) sees it reachable, not lost. */
corio_dist_manager *volatile abandoned;

Test(dist_manager, process_ends_with_parent, .timeout = 30)
{
    int fds[2];
    pid_t child, mpid = 0;
    char state = 0;

    cr_assert_eq(pipe(fds), 0);
    child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        corio_dist_manager_opts mo = {.authkey = KEY, .process = true};
        pid_t pid;

        abandoned = corio_dist_manager_start("127.0.0.1:0", &mo);
        pid = abandoned != NULL ? corio_dist_manager_pid(abandoned) : 0;

        if (write(fds[1], &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
            _exit(2);
        _exit(0);   /* without stopping it */
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &mpid, sizeof(mpid)), (ssize_t)sizeof(mpid));
    close(fds[0]);
    cr_assert_gt(mpid, 0);
    cr_assert_eq(waitpid(child, NULL, 0), child);
    /* Gone, or a zombie waiting for init: not serving. */
    for (int i = 0; i < 500; i++) {
        char path[64], buf[256];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)mpid);
        f = fopen(path, "r");
        if (f == NULL) {
            state = 'X';
            break;
        }
        if (fgets(buf, sizeof(buf), f) != NULL && strrchr(buf, ')') != NULL)
            state = strrchr(buf, ')')[2];
        fclose(f);
        if (state == 'Z' || state == 'X')
            break;
        usleep(10000);
    }
    cr_assert(state == 'Z' || state == 'X', "manager %d still %c", (int)mpid,
              state);
}

/* ---- Blocking from plain code -------------------------------------------------- */

/* No task, no corio_run: each call runs the thread's loop until it is
 * done (the manager in a process of its own). */
Test(dist_manager, blocking_from_plain_code, .timeout = 30)
{
    corio_dist_manager_opts mo = {.authkey = KEY, .process = true};
    corio_dist_opts o = {.authkey = KEY};
    corio_dist_manager *m;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg msg, r;
    char addr[100], url[160];
    uint64_t id;
    int64_t t0;
    int before;

    /* The thread's loop (made on first use) keeps its own fds. */
    cr_assert_not_null(corio_loop_current());
    before = count_fds();
    m = corio_dist_manager_start("127.0.0.1:0", &mo);
    cr_assert_not_null(m, "%s", corio_strerror(errno));
    cr_assert_gt(corio_dist_manager_addr(m, addr, sizeof(addr)), 0);
    snprintf(url, sizeof(url), "corio://%s", addr);
    d = corio_dist_connect(url, &o, in_ms(5000));
    cr_assert_not_null(d, "%s", corio_strerror(errno));
    q = corio_dist_queue_new(d, "plain");
    cr_assert_not_null(q);
    cr_assert_eq(corio_dist_queue_put(q, "9", 1, &id, -1), 0);
    cr_assert_eq(corio_dist_queue_take(q, &msg, in_ms(5000)), 0);
    cr_assert_eq(msg.id, id);
    cr_assert_eq(corio_dist_queue_ack(q, id, "81", 2, -1), 0);
    cr_assert_eq(corio_dist_result_take(d, id, &r, in_ms(5000)), 0);
    cr_assert_str_eq(r.data, "81");
    corio_dist_msg_clear(&r);
    corio_dist_msg_clear(&msg);
    t0 = corio_now();
    cr_assert_eq(corio_dist_queue_get(q, &msg, in_ms(150)), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq((corio_now() - t0) / CORIO_MSEC, 140);
    cr_assert_eq(corio_dist_queue_free(q), 0);
    cr_assert_eq(corio_dist_close(d), 0);
    cr_assert_eq(corio_dist_manager_stop(m, in_ms(5000)), 0);
    cr_assert_eq(count_fds(), before, "fds leaked: %d", count_fds() - before);
}

/* A result waited for, of a task that a get then removes: ENOENT, at once
 * (the get's task has no result to come). */
struct waiter_arg {
    corio_dist *d;
    uint64_t id;
    int err;
};

static void *result_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    corio_dist_msg r;

    if (corio_dist_result_get(w->d, w->id, &r, in_ms(5000)) == 0) {
        corio_dist_msg_clear(&r);
        return NULL;
    }
    w->err = errno;
    return NULL;
}

static void *gotten_body(void *arg)
{
    struct env e;
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;
    struct waiter_arg w = {0};
    corio_task *t;
    int64_t t0;

    (void)arg;
    CHECK((q = one_queue(&e, false, &d, "g")) != NULL);
    CHECK(corio_dist_queue_put(q, "x", 1, &w.id, -1) == 0);
    w.d = d;
    CHECK((t = corio_task_spawn(result_waiter, &w, NULL)) != NULL);
    CHECK(corio_sleep(50 * CORIO_MSEC) == 0);
    t0 = corio_now();
    CHECK(corio_dist_queue_get(q, &m, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(w.err == ENOENT);
    CHECK((corio_now() - t0) / CORIO_MSEC < 1000);
    CHECK(one_queue_end(&e, d, q) == 0);
    return NULL;
}

Test(dist_manager, result_of_gotten_task_is_enoent, .timeout = 30)
{
    run_main_no_fd_leak(gotten_body, NULL);
}
