/* tests/test_dist_redis.c -- the task queue on Redis (redis:// URLs,
 * src/dist/redis.c): put/take/ack and results, get, batches, size, leases
 * that expire (the task is delivered again, its result recorded once),
 * nack and touch, dead-letter after N deliveries, closing a queue (a
 * waiting taker is woken), results waited for, the map, AUTH right and
 * wrong, a refused connection, a worker process killed with SIGKILL
 * mid-task, and Redis killed and restarted under load (nothing that was
 * acknowledged is lost). No fd is leaked.
 *
 * Each test starts its own redis-server on a free loopback port. */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/dist.h"
#include "check.h"
#include "redis_test.h"
#include "child.h"
#include "timing.h"
#include "../examples/devcert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TIMEOUT 60
#define MS CORIO_MSEC
#define SEC CORIO_SECOND
/* How long a connection may take to be made: never the figure under test,
 * and a TLS handshake under valgrind (with another test beside it) took
 * more than 5 s on a slow machine. */
#define CONNECT_DL (20 * SEC)

static struct redis_proc srv;
static char url[64];

static void start(void)
{
    redis_start(&srv);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", srv.port);
}

static corio_dist *dconnect(int64_t lease, unsigned max_deliveries)
{
    corio_dist_opts o = {.lease = lease, .max_deliveries = max_deliveries};

    return corio_dist_connect(url, &o, corio_now() + CONNECT_DL);
}

static bool msg_is(const corio_dist_msg *m, const char *text)
{
    return m->len == strlen(text) && memcmp(m->data, text, m->len) == 0 &&
           ((char *)m->data)[m->len] == '\0';
}

/* ---- Queues and results -------------------------------------------------- */

static void *basic_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q;
    corio_dist_msg m, r;
    uint64_t id1, id2;

    (void)arg;
    CHECK(d != NULL);
    CHECK(strcmp(corio_dist_backend(d), "redis") == 0);
    CHECK((q = corio_dist_queue_new(d, "tasks")) != NULL);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_put(q, "7", 1, &id1, -1) == 0);
    CHECK(corio_dist_queue_put(q, "", 0, &id2, -1) == 0);
    CHECK(id1 != 0 && id2 == id1 + 1);
    CHECK(corio_dist_queue_size(q, -1) == 2);
    CHECK(corio_dist_queue_take(q, &m, corio_now() + SEC) == 0);
    CHECK(m.id == id1 && msg_is(&m, "7") && m.deliveries == 1);
    CHECK(corio_dist_queue_size(q, -1) == 1); /* the leased one not counted */
    CHECK(corio_dist_queue_ack(q, m.id, "49", 2, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_result_get(d, id1, &r, corio_now() + SEC) == 0);
    CHECK(r.id == id1 && msg_is(&r, "49"));
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_result_take(d, id1, &r, corio_now() + SEC) == 0);
    CHECK(msg_is(&r, "49"));
    corio_dist_msg_clear(&r);
    /* Taken: gone, and a late ack is accepted and dropped. */
    CHECK(corio_dist_result_get(d, id1, &r, corio_now() + SEC) == -1 &&
          errno == ENOENT && r.data == NULL);
    CHECK(corio_dist_queue_ack(q, id1, "50", 2, -1) == 0);
    CHECK(corio_dist_result_get(d, id1, &r, -1) == -1 && errno == ENOENT);
    /* get removes: no ack expected (ENOENT), no result. */
    CHECK(corio_dist_queue_get(q, &m, corio_now() + SEC) == 0);
    CHECK(m.id == id2 && m.len == 0 && m.deliveries == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_ack(q, id2, "x", 1, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_ack(q, 999999, NULL, 0, -1) == -1 &&
          errno == ENOENT);
    /* Empty: a get times out (queue.Empty). */
    int64_t t0 = corio_now();
    CHECK(corio_dist_queue_get(q, &m, t0 + 100 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 90 * MS && corio_now() - t0 < 2 * SEC);
    /* No such task. */
    CHECK(corio_dist_result_get(d, 123456789, &r, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_queue_nack(q, 424242, -1) == -1 && errno == ENOENT);
    /* Longer than a Redis string (512 MiB): refused before anything is
     * read or sent. */
    CHECK(corio_dist_queue_put(q, "x", (size_t)600 << 20, NULL, -1) == -1 &&
          errno == EMSGSIZE);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_touch(q, 424242, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_close(d) == -1 && errno == EBUSY);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, put_take_ack_result, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(basic_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *batch_main(void *arg)
{
    enum { N = 500 };
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "batch");
    corio_dist_buf items[N], results[N];
    char text[N][16];
    uint64_t ids[N], acks[N];
    corio_dist_msg *ms = calloc(N, sizeof(*ms)), r;
    size_t got = 0;

    (void)arg;
    CHECK(d != NULL && q != NULL && ms != NULL);
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "%d", i);
        items[i] = (corio_dist_buf){text[i], strlen(text[i])};
    }
    CHECK(corio_dist_queue_put_many(q, items, N, ids, -1) == 0);
    for (int i = 1; i < N; i++)
        CHECK(ids[i] == ids[0] + (uint64_t)i);
    CHECK(corio_dist_queue_size(q, -1) == N);
    while (got < N) {
        size_t want = N - got < 128 ? N - got : 128;
        ssize_t n = corio_dist_queue_take_many(q, ms + got, want,
                                               corio_now() + SEC);


        CHECK(n >= 1 && (size_t)n <= want);
        got += (size_t)n;
    }
    for (int i = 0; i < N; i++) {
        CHECK(ms[i].id == ids[i] && msg_is(&ms[i], text[i]));
        acks[i] = ms[i].id;
        results[i] = (corio_dist_buf){ms[i].data, ms[i].len};
    }
    CHECK(corio_dist_queue_ack_many(q, acks, results, N, -1) == 0);
    for (int i = 0; i < N; i++)
        corio_dist_msg_clear(&ms[i]);
    CHECK(corio_dist_result_take(d, ids[N - 1], &r, -1) == 0);
    CHECK(msg_is(&r, text[N - 1]));
    corio_dist_msg_clear(&r);
    /* One unknown id among known ones: ENOENT, the others acked. */
    CHECK(corio_dist_queue_put(q, "a", 1, &ids[0], -1) == 0);
    CHECK(corio_dist_queue_take(q, &ms[0], -1) == 0);
    acks[0] = ms[0].id;
    acks[1] = 77777777;
    CHECK(corio_dist_queue_ack_many(q, acks, NULL, 2, -1) == -1 &&
          errno == ENOENT);
    CHECK(corio_dist_result_get(d, acks[0], &r, -1) == 0 && r.len == 0);
    corio_dist_msg_clear(&r);
    corio_dist_msg_clear(&ms[0]);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    free(ms);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, batches, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(batch_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Leases -------------------------------------------------------------- */

static void *lease_main(void *arg)
{
    corio_dist *a = dconnect(600 * MS, 5), *b = dconnect(600 * MS, 5);
    corio_dist_queue *qa = corio_dist_queue_new(a, "lease");
    corio_dist_queue *qb = corio_dist_queue_new(b, "lease");
    corio_dist_msg m1, m2, r;
    uint64_t id;

    (void)arg;
    CHECK(qa != NULL && qb != NULL);
    CHECK(corio_dist_queue_put(qa, "job", 3, &id, -1) == 0);
    CHECK(corio_dist_queue_take(qa, &m1, -1) == 0 && m1.deliveries == 1);
    /* Leased: b sees nothing until the lease expires, then gets it. */
    CHECK(corio_dist_queue_take(qb, &m2, corio_now() + 50 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_dist_queue_take(qb, &m2, corio_now() + 3 * SEC) == 0);
    CHECK(m2.id == id && m2.deliveries == 2 && msg_is(&m2, "job"));
    /* Both finish: the first ack's result is kept, the second dropped. */
    CHECK(corio_dist_queue_ack(qb, id, "second-run", 10, -1) == 0);
    CHECK(corio_dist_queue_ack(qa, id, "first-run", 9, -1) == 0);
    CHECK(corio_dist_result_get(a, id, &r, -1) == 0 && msg_is(&r, "second-run"));
    corio_dist_msg_clear(&r);
    corio_dist_msg_clear(&m1);
    corio_dist_msg_clear(&m2);

    /* nack: delivered again at once. touch: the lease is renewed. */
    CHECK(corio_dist_queue_put(qa, "n", 1, &id, -1) == 0);
    CHECK(corio_dist_queue_take(qa, &m1, -1) == 0);
    CHECK(corio_dist_queue_nack(qa, id, -1) == 0);
    corio_dist_msg_clear(&m1);
    CHECK(corio_dist_queue_take(qb, &m2, corio_now() + 50 * MS) == 0);
    CHECK(m2.id == id && m2.deliveries == 2);
    for (int i = 0; i < 7; i++) {
        CHECK(corio_sleep(100 * MS) == 0);
        CHECK(corio_dist_queue_touch(qb, id, -1) == 0);
    }
    /* 700 ms after the take, past a lease of 600: still b's. */
    CHECK(corio_dist_queue_take(qa, &m1, corio_now() + 60 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_dist_queue_ack(qb, id, NULL, 0, -1) == 0);
    CHECK(corio_dist_queue_nack(qb, id, -1) == -1 && errno == ENOENT);
    corio_dist_msg_clear(&m2);
    CHECK(corio_dist_queue_free(qa) == 0);
    CHECK(corio_dist_queue_free(qb) == 0);
    CHECK(corio_dist_close(a) == 0);
    CHECK(corio_dist_close(b) == 0);
    return NULL;
}

Test(dist_redis, lease_nack_touch, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(lease_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *dead_main(void *arg)
{
    corio_dist *d = dconnect(80 * MS, 2);
    corio_dist_queue *q = corio_dist_queue_new(d, "poison");
    corio_dist_queue *dq = corio_dist_queue_new(d, "poison.dead");
    corio_dist_msg m;
    uint64_t id, id2;

    (void)arg;
    CHECK(q != NULL && dq != NULL);
    CHECK(corio_dist_queue_put(q, "bad", 3, &id, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0 && m.deliveries == 1);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_take(q, &m, corio_now() + 3 * SEC) == 0);
    CHECK(m.id == id && m.deliveries == 2);
    corio_dist_msg_clear(&m);
    /* Delivered twice without an ack: the third time it goes dead. */
    CHECK(corio_dist_queue_take(q, &m, corio_now() + 400 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_dist_queue_get(dq, &m, -1) == 0);
    CHECK(m.id == id && msg_is(&m, "bad"));
    corio_dist_msg_clear(&m);
    /* A nack at the last delivery sends it there too. */
    CHECK(corio_dist_queue_put(q, "bad2", 4, &id2, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_nack(q, id2, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0 && m.deliveries == 2);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_nack(q, id2, -1) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_take(dq, &m, -1) == 0 && m.id == id2);
    CHECK(corio_dist_queue_ack(dq, id2, NULL, 0, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_queue_free(dq) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, dead_letter, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(dead_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Closing, waiting ---------------------------------------------------- */

static corio_dist_queue *waitq;

static void *taker(void *arg)
{
    corio_dist_msg m;

    (void)arg;
    if (corio_dist_queue_take(waitq, &m, corio_now() + 10 * SEC) == 0) {
        corio_dist_msg_clear(&m);
        return corio_task_fail(EPROTO);
    }
    return corio_task_fail(errno);
}

static void *close_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "closing");
    corio_task *t;
    corio_dist_msg m;
    int64_t t0;

    (void)arg;
    waitq = q;
    CHECK(q != NULL);
    CHECK(corio_dist_queue_put(q, "left", 4, NULL, -1) == 0);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK((t = corio_task_spawn(taker, NULL, NULL)) != NULL);
    CHECK(corio_sleep(100 * MS) == 0);
    t0 = corio_now();
    CHECK(corio_dist_queue_put(q, "one", 3, NULL, -1) == 0);
    CHECK(corio_dist_queue_put(q, "two", 3, NULL, -1) == 0);
    CHECK(corio_task_join(t, NULL) == -1 && errno == EPROTO); /* it took one */
    CHECK(corio_now() - t0 < (300 + test_slack_capped_ms(600)) * MS);
    CHECK(corio_dist_queue_close(q, -1) == 0);
    CHECK(corio_dist_queue_close(q, -1) == 0);
    CHECK(corio_dist_queue_put(q, "x", 1, NULL, -1) == -1 &&
          errno == CORIO_ECLOSED);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0 && msg_is(&m, "two"));
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_queue_get(q, &m, -1) == -1 && errno == CORIO_ECLOSED);
    /* A taker waiting on a queue is woken by its close. */
    corio_dist_queue *q2 = corio_dist_queue_new(d, "closing2");
    waitq = q2;
    CHECK((t = corio_task_spawn(taker, NULL, NULL)) != NULL);
    CHECK(corio_sleep(100 * MS) == 0);
    t0 = corio_now();
    CHECK(corio_dist_queue_close(q2, -1) == 0);
    CHECK(corio_task_join(t, NULL) == -1 && errno == CORIO_ECLOSED);
    CHECK(corio_now() - t0 < (300 + test_slack_capped_ms(600)) * MS);
    CHECK(corio_dist_queue_free(q2) == 0);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, close_queue, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(close_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* A result waited for before the ack comes (two waiters). */
static corio_dist *resd;
static uint64_t resid;

static void *result_waiter(void *arg)
{
    corio_dist_msg r;

    (void)arg;
    if (corio_dist_result_get(resd, resid, &r, corio_now() + 5 * SEC) == -1)
        return corio_task_fail(errno);
    if (!msg_is(&r, "done")) {
        corio_dist_msg_clear(&r);
        return corio_task_fail(EPROTO);
    }
    corio_dist_msg_clear(&r);
    return NULL;
}

static void *result_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "res");
    corio_task *ts[2];
    corio_dist_msg m, r;
    int64_t t0;

    (void)arg;
    resd = d;
    CHECK(q != NULL);
    CHECK(corio_dist_queue_put(q, "w", 1, &resid, -1) == 0);
    t0 = corio_now();
    CHECK(corio_dist_result_get(d, resid, &r, t0 + 100 * MS) == -1 &&
          errno == ETIMEDOUT);
    for (int i = 0; i < 2; i++)
        CHECK((ts[i] = corio_task_spawn(result_waiter, NULL, NULL)) != NULL);
    CHECK(corio_sleep(100 * MS) == 0);
    CHECK(corio_dist_queue_take(q, &m, -1) == 0);
    t0 = corio_now();
    CHECK(corio_dist_queue_ack(q, m.id, "done", 4, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_task_join_all(ts, 2, NULL) == 0);
    CHECK(corio_now() - t0 < (300 + test_slack_capped_ms(600)) * MS);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

/* Closing the connection while another task waits on it for a result:
 * that call fails with EBADF, and the close waits for it. */
static void *closed_waiter(void *arg)
{
    corio_dist_msg r;

    (void)arg;
    if (corio_dist_result_get(resd, resid, &r, corio_now() + 10 * SEC) == 0) {
        corio_dist_msg_clear(&r);
        return corio_task_fail(EPROTO);
    }
    return corio_task_fail(errno);
}

static void *close_busy_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "res");
    corio_task *t;
    int64_t t0;

    (void)arg;
    resd = d;
    CHECK(q != NULL);
    CHECK(corio_dist_queue_put(q, "w", 1, &resid, -1) == 0);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK((t = corio_task_spawn(closed_waiter, NULL, NULL)) != NULL);
    CHECK(corio_sleep(100 * MS) == 0);
    t0 = corio_now();
    CHECK(corio_dist_close(d) == 0);
    CHECK(corio_now() - t0 < (300 + test_slack_capped_ms(600)) * MS);
    CHECK(corio_task_join(t, NULL) == -1 && errno == EBADF);
    return NULL;
}

Test(dist_redis, close_while_waiting, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(close_busy_main, NULL);
    redis_stop(&srv, SIGTERM);
}

Test(dist_redis, result_wait, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(result_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- The map ------------------------------------------------------------- */

static void *map_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_map *m = corio_dist_map_new(d, "conf");
    corio_dist_msg v;

    (void)arg;
    CHECK(m != NULL);
    CHECK(corio_dist_map_get(m, "k", &v, -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_map_set(m, "k", "a\0b", 3, -1) == 0);
    CHECK(corio_dist_map_get(m, "k", &v, -1) == 0);
    CHECK(v.len == 3 && memcmp(v.data, "a\0b", 3) == 0 && v.id == 0);
    corio_dist_msg_clear(&v);
    CHECK(corio_dist_map_set(m, "k", NULL, 0, -1) == 0);
    CHECK(corio_dist_map_get(m, "k", &v, -1) == 0 && v.len == 0);
    corio_dist_msg_clear(&v);
    CHECK(corio_dist_map_del(m, "k", -1) == 0);
    CHECK(corio_dist_map_del(m, "k", -1) == -1 && errno == ENOENT);
    CHECK(corio_dist_map_set(m, "k", "v", (size_t)600 << 20, -1) == -1 &&
          errno == EMSGSIZE);
    CHECK(corio_dist_map_free(m) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, map, .timeout = TIMEOUT)
{
    start();
    run_main_no_fd_leak(map_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Connecting ---------------------------------------------------------- */

static void *auth_main(void *arg)
{
    corio_dist_opts o = {.authkey = "sesame"};
    corio_dist *d;

    (void)arg;
    CHECK((d = corio_dist_connect(url, &o, corio_now() + CONNECT_DL)) != NULL);
    CHECK(corio_dist_close(d) == 0);
    o.authkey = "wrong";
    CHECK(corio_dist_connect(url, &o, corio_now() + CONNECT_DL) == NULL &&
          errno == EACCES);
    CHECK(corio_dist_connect(url, NULL, corio_now() + CONNECT_DL) == NULL &&
          errno == EACCES);
    return NULL;
}

Test(dist_redis, auth, .timeout = TIMEOUT)
{
    snprintf(srv.password, sizeof(srv.password), "sesame");
    start();
    run_main_no_fd_leak(auth_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *refused_main(void *arg)
{
    (void)arg;
    CHECK(corio_dist_connect(url, NULL, corio_now() + 2 * SEC) == NULL &&
          errno == ECONNREFUSED);
    CHECK(corio_dist_connect("redis://127.0.0.1:1/x", NULL, -1) == NULL &&
          errno == EINVAL);
    return NULL;
}

Test(dist_redis, refused, .timeout = TIMEOUT)
{
    srv.port = redis_free_port();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", srv.port);
    run_main_no_fd_leak(refused_main, NULL);
}

/* ---- Failures: a worker killed, Redis restarted --------------------------- */

/* The worker: takes the task, says so, and sleeps until killed. */
static void *doomed_worker(void *arg)
{
    corio_dist *d = dconnect(200 * MS, 5);
    corio_dist_queue *q = corio_dist_queue_new(d, "jobs");
    corio_dist_msg m;

    (void)arg;
    if (q == NULL || corio_dist_queue_take(q, &m, corio_now() + 5 * SEC) == -1)
        _exit(3);
    child_ready();
    corio_sleep(60 * SEC);
    _exit(4);
}

static void doomed_child(void *arg)
{
    if (corio_run(doomed_worker, arg, NULL) != 0)
        _exit(2);
}

static void *killed_main(void *arg)
{
    corio_dist *d = dconnect(200 * MS, 5);
    corio_dist_queue *q = corio_dist_queue_new(d, "jobs");
    corio_dist_msg m, r;
    uint64_t id;
    pid_t pid = *(pid_t *)arg;

    CHECK(q != NULL);
    (void)pid;
    CHECK(corio_dist_queue_take(q, &m, corio_now() + 5 * SEC) == 0);
    CHECK(m.deliveries == 2 && msg_is(&m, "6"));
    id = m.id;
    CHECK(corio_dist_queue_ack(q, id, "36", 2, -1) == 0);
    CHECK(corio_dist_queue_ack(q, id, "again", 5, -1) == 0);
    corio_dist_msg_clear(&m);
    CHECK(corio_dist_result_take(d, id, &r, -1) == 0 && msg_is(&r, "36"));
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

static void *put_one(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "jobs");

    (void)arg;
    CHECK(q != NULL);
    CHECK(corio_dist_queue_put(q, "6", 1, NULL, -1) == 0);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, worker_killed, .timeout = TIMEOUT)
{
    struct child_proc c;

    start();
    run_main_no_fd_leak(put_one, NULL);
    child_start(&c, doomed_child, NULL);
    cr_assert(child_wait_ready(&c, 5000), "the worker did not take the task");
    kill(c.pid, SIGKILL);
    child_finish(&c, 5000);
    cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGKILL);
    run_main_no_fd_leak(killed_main, &c.pid);
    redis_stop(&srv, SIGTERM);
}

/* Redis killed (SIGKILL) and restarted on the same port and append-only
 * file under load: calls in flight fail (ECONNRESET), the connections come
 * back by themselves, and every task whose put Redis acknowledged gets
 * its result, recorded once. */
enum { RS_TASKS = 600 };
static uint64_t rs_ids[RS_TASKS];
static int rs_put;
static bool rs_stop;

static bool transient(int err)
{
    return err == ECONNRESET || err == ECONNREFUSED || err == ETIMEDOUT;
}

static void *rs_worker(void *arg)
{
    corio_dist *d = NULL;
    corio_dist_queue *q;
    corio_dist_msg m;

    (void)arg;
    while (d == NULL)
        if ((d = dconnect(300 * MS, 100)) == NULL && !transient(errno))
            return corio_task_fail(errno);
    if ((q = corio_dist_queue_new(d, "rs")) == NULL)
        return corio_task_fail(errno);
    while (!rs_stop) {
        if (corio_dist_queue_take(q, &m, corio_now() + 100 * MS) == -1) {
            if (!transient(errno))
                return corio_task_fail(errno);
            continue;
        }
        /* The result is the payload; an ack lost with the connection is
         * sent again (a result is recorded once). */
        while (corio_dist_queue_ack(q, m.id, m.data, m.len, -1) == -1)
            if (!transient(errno))
                return corio_task_fail(errno);
        corio_dist_msg_clear(&m);
    }
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return NULL;
}

static void *restart_main(void *arg)
{
    corio_dist *d = dconnect(0, 0);
    corio_dist_queue *q = corio_dist_queue_new(d, "rs");
    corio_task *ws[4];
    char text[16];

    (void)arg;
    CHECK(q != NULL);
    for (int i = 0; i < 4; i++)
        CHECK((ws[i] = corio_task_spawn(rs_worker, NULL, NULL)) != NULL);
    for (int i = 0; i < RS_TASKS; i++) {
        snprintf(text, sizeof(text), "t%d", i);
        if (i == RS_TASKS / 3) {
            redis_stop(&srv, SIGKILL);
            CHECK(corio_sleep(100 * MS) == 0);
            redis_start(&srv);
        }
        if (corio_dist_queue_put(q, text, strlen(text), &rs_ids[rs_put], -1) == 0)
            rs_put++;
        else
            CHECK(transient(errno)); /* in flight: maybe put, maybe not */
    }
    CHECK(rs_put >= RS_TASKS - 4);
    for (int i = 0; i < rs_put; i++) {
        corio_dist_msg r;

        CHECK(corio_dist_result_get(d, rs_ids[i], &r, corio_now() + 10 * SEC) == 0);
        CHECK(r.len >= 2 && r.len < 16 && ((char *)r.data)[0] == 't');
        corio_dist_msg_clear(&r);
    }
    rs_stop = true;
    CHECK(corio_task_join_all(ws, 4, NULL) == 0);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    return NULL;
}

Test(dist_redis, redis_restarted, .timeout = TIMEOUT)
{
    char cmd[200];

    snprintf(srv.dir, sizeof(srv.dir), "/tmp/corio-redis-test-XXXXXX");
    cr_assert_not_null(mkdtemp(srv.dir));
    start();
    run_main_no_fd_leak(restart_main, NULL);
    redis_stop(&srv, SIGTERM);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv.dir);
    cr_assert_eq(system(cmd), 0);
}

/* TLS to Redis (hiredis 0.14 has none: it talks to a Unix socket whose
 * bytes two relay tasks carry over corio's TLS stream). */
static char tls_dir[128];

static void *tls_main(void *arg)
{
    char ca[192], bad[192];
    corio_tls_opts to = {.ca_file = ca};
    corio_tls *tls, *other;
    corio_dist_opts o = {0};
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m, r;
    uint64_t id;

    (void)arg;
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    snprintf(bad, sizeof(bad), "%s/self.pem", tls_dir);
    CHECK((tls = corio_tls_client(&to)) != NULL);
    o.tls = tls;
    CHECK((d = corio_dist_connect(url, &o, corio_now() + CONNECT_DL)) != NULL);
    CHECK((q = corio_dist_queue_new(d, "secure")) != NULL);
    CHECK(corio_dist_queue_put(q, "12", 2, &id, -1) == 0);
    CHECK(corio_dist_queue_take(q, &m, corio_now() + 2 * SEC) == 0);
    CHECK(corio_dist_queue_ack(q, m.id, "144", 3, -1) == 0);
    corio_dist_msg_clear(&m);
    /* a wait, on a connection of its own (TLS too) */
    CHECK(corio_dist_queue_get(q, &m, corio_now() + 100 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_dist_result_take(d, id, &r, -1) == 0 && msg_is(&r, "144"));
    corio_dist_msg_clear(&r);
    CHECK(corio_dist_queue_free(q) == 0);
    CHECK(corio_dist_close(d) == 0);
    /* The server's certificate checked: another trust anchor refuses. */
    to.ca_file = bad;
    CHECK((other = corio_tls_client(&to)) != NULL);
    o.tls = other;
    CHECK(corio_dist_connect(url, &o, corio_now() + CONNECT_DL) == NULL &&
          errno == EPROTO);
    CHECK(corio_tls_free(other) == 0);
    /* Plain TCP to a TLS port: no answer that Redis would give. */
    CHECK(corio_dist_connect(url, NULL, corio_now() + 2 * SEC) == NULL);
    CHECK(corio_tls_free(tls) == 0);
    return NULL;
}

Test(dist_redis, tls, .timeout = TIMEOUT)
{
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/corio-redis-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(tls_dir));
    cr_assert_eq(devcert_make(tls_dir), 0);
    snprintf(srv.tls_dir, sizeof(srv.tls_dir), "%s", tls_dir);
    start();
    run_main_no_fd_leak(tls_main, NULL);
    redis_stop(&srv, SIGTERM);
    devcert_remove(tls_dir);
}
