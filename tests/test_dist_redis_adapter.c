/* tests/test_dist_redis_adapter.c -- hiredis's async API on the corio loop
 * (src/dist/redis_adapter.c): commands and replies, pipelines, many tasks
 * on one connection, deadlines and cancellation of a command in flight,
 * AUTH right and wrong, SELECT, a refused connection, Redis killed and
 * restarted (the command in flight fails, the next one reconnects after
 * the backoff), bad input. No fd is leaked.
 *
 * Each test starts its own redis-server on a free loopback port. */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "redis_test.h"
#include "timing.h"

#include "dist/redis_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT 60
#define MS CORIO_MSEC

static struct redis_proc srv;

static corio__redis *open_conn(const char *password, int db)
{
    struct corio__redis_conf conf = {.host = "127.0.0.1", .port = srv.port,
                                     .password = password, .db = db,
                                     .backoff_min = 20 * MS,
                                     .backoff_max = 200 * MS};

    return corio__redis_new(&conf);
}

static bool reply_is(const redisReply *rep, int type, const char *str)
{
    return rep != NULL && rep->type == type &&
           (str == NULL || strcmp(rep->str, str) == 0);
}

/* ---- Commands ------------------------------------------------------------ */

static void *basic_main(void *arg)
{
    corio__redis *r = open_conn(NULL, 0);
    redisReply *rep;

    (void)arg;
    CHECK(r != NULL);
    CHECK(!corio__redis_is_connected(r));
    rep = corio__redis_call(r, -1, "SET", "k", "v1", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    CHECK(corio__redis_is_connected(r));
    rep = corio__redis_call(r, -1, "GET", "k", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STRING, "v1"));
    freeReplyObject(rep);
    /* An error reply is a reply. */
    rep = corio__redis_call(r, -1, "INCR", "k", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_ERROR, NULL));
    freeReplyObject(rep);
    rep = corio__redis_call(r, -1, "GET", "nothing", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_NIL, NULL));
    freeReplyObject(rep);
    CHECK(corio__redis_connects(r) == 1);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, commands_and_replies, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(basic_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* Binary-safe arguments, and 2,000 commands in one pipeline. */
static void *pipeline_main(void *arg)
{
    enum { N = 2000 };
    corio__redis *r = open_conn(NULL, 0);
    struct corio__redis_cmd *cmds = calloc(N, sizeof(*cmds));
    redisReply **reps = calloc(N, sizeof(*reps));
    const char *argv[3] = {"SET", "bin", "a\0b"};
    const size_t lens[3] = {3, 3, 3};
    const char *incr[2] = {"INCR", "n"};
    redisReply *rep;

    (void)arg;
    CHECK(r != NULL && cmds != NULL && reps != NULL);
    cmds[0] = (struct corio__redis_cmd){3, argv, lens};
    for (int i = 1; i < N; i++)
        cmds[i] = (struct corio__redis_cmd){2, incr, NULL};
    CHECK(corio__redis_exec(r, N, cmds, reps, corio_now() + 10 * CORIO_SECOND) == 0);
    CHECK(reply_is(reps[0], REDIS_REPLY_STATUS, "OK"));
    for (int i = 1; i < N; i++) {
        CHECK(reps[i] != NULL && reps[i]->type == REDIS_REPLY_INTEGER);
        CHECK(reps[i]->integer == i);
    }
    for (int i = 0; i < N; i++)
        freeReplyObject(reps[i]);
    rep = corio__redis_call(r, -1, "GET", "bin", NULL);
    CHECK(rep != NULL && rep->len == 3 && memcmp(rep->str, "a\0b", 3) == 0);
    freeReplyObject(rep);
    free(cmds);
    free(reps);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, pipeline, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(pipeline_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* 50 tasks share one connection, 200 INCRs each. */
static corio__redis *shared;

static void *incr_task(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        redisReply *rep = corio__redis_call(shared, -1, "INCR", "c", NULL);

        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER)
            return corio_task_fail(EPROTO);
        freeReplyObject(rep);
    }
    return NULL;
}

static void *tasks_main(void *arg)
{
    corio_task *ts[50];
    redisReply *rep;

    (void)arg;
    shared = open_conn(NULL, 0);
    CHECK(shared != NULL);
    for (int i = 0; i < 50; i++)
        CHECK((ts[i] = corio_task_spawn(incr_task, NULL, NULL)) != NULL);
    CHECK(corio_task_join_all(ts, 50, NULL) == 0);
    rep = corio__redis_call(shared, -1, "GET", "c", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STRING, "10000"));
    freeReplyObject(rep);
    CHECK(corio__redis_connects(shared) == 1);
    CHECK(corio__redis_free(shared) == 0);
    return NULL;
}

Test(redis_adapter, many_tasks_one_connection, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(tasks_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Deadlines and cancellation ------------------------------------------ */

static void *deadline_main(void *arg)
{
    corio__redis *r = open_conn(NULL, 0);
    redisReply *rep;
    int64_t t0;

    (void)arg;
    CHECK(r != NULL);
    /* BLPOP blocks 300 ms on the server; the caller gives up at 50 ms. */
    t0 = corio_now();
    rep = corio__redis_call(r, t0 + 50 * MS, "BLPOP", "q", "0.3", NULL);
    CHECK(rep == NULL && errno == ETIMEDOUT);
    CHECK(corio_now() - t0 < 250 * MS);
    /* The connection goes on: the next reply comes after BLPOP's. */
    rep = corio__redis_call(r, -1, "PING", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STATUS, "PONG"));
    freeReplyObject(rep);
    /* Given up again, and the connection closed with it in flight: the
     * abandoned command is freed with the connection. */
    rep = corio__redis_call(r, corio_now() + 20 * MS, "BLPOP", "q", "1", NULL);
    CHECK(rep == NULL && errno == ETIMEDOUT);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, deadline, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(deadline_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *blpop_task(void *arg)
{
    redisReply *rep = corio__redis_call(arg, -1, "BLPOP", "q", "5", NULL);

    if (rep != NULL) {
        freeReplyObject(rep);
        return corio_task_fail(EPROTO);
    }
    return corio_task_fail(errno);
}

static void *cancel_main(void *arg)
{
    corio__redis *r = open_conn(NULL, 0);
    corio_task *t;
    redisReply *rep;

    (void)arg;
    CHECK(r != NULL);
    CHECK((t = corio_task_spawn(blpop_task, r, NULL)) != NULL);
    CHECK(corio_sleep(50 * MS) == 0);
    CHECK(corio_task_cancel(t) == 1);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
    /* A command in flight when the connection closes fails with
     * CORIO_ECLOSED. */
    CHECK((t = corio_task_spawn(blpop_task, r, NULL)) != NULL);
    CHECK(corio_sleep(20 * MS) == 0);
    /* The first BLPOP (5 s) still holds the connection: drop it. */
    corio__redis_drop(r);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECONNRESET);
    rep = corio__redis_call(r, -1, "PING", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STATUS, "PONG"));
    freeReplyObject(rep);
    CHECK(corio__redis_connects(r) == 2);
    CHECK((t = corio_task_spawn(blpop_task, r, NULL)) != NULL);
    CHECK(corio_sleep(20 * MS) == 0);
    /* Closing with a task's command in flight: that task fails first. */
    corio__redis_drop(r);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECONNRESET);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, cancel_and_drop, .timeout = TIMEOUT)
{
    /* The drop must come while the second BLPOP is in flight, 20 ms after
     * it starts: under valgrind (which also traces redis-server) it comes
     * before or after. Plain and ASan runs check it. */
    if (RUNNING_ON_VALGRIND)
        cr_skip_test("timing: not under valgrind");
    redis_start(&srv);
    run_main_no_fd_leak(cancel_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Connecting ---------------------------------------------------------- */

static void *auth_main(void *arg)
{
    corio__redis *r;
    redisReply *rep;

    (void)arg;
    r = open_conn("right", 0);
    CHECK(r != NULL);
    rep = corio__redis_call(r, -1, "PING", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STATUS, "PONG"));
    freeReplyObject(rep);
    CHECK(corio__redis_free(r) == 0);

    r = open_conn("wrong", 0);
    CHECK(r != NULL);
    rep = corio__redis_call(r, corio_now() + 2 * CORIO_SECOND, "PING", NULL);
    CHECK(rep == NULL && errno == EACCES);
    CHECK(corio__redis_free(r) == 0);

    r = open_conn(NULL, 0); /* none given, one required */
    CHECK(r != NULL);
    rep = corio__redis_call(r, corio_now() + 2 * CORIO_SECOND, "PING", NULL);
    CHECK(rep == NULL && errno == EACCES);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, auth, .timeout = TIMEOUT)
{
    snprintf(srv.password, sizeof(srv.password), "right");
    redis_start(&srv);
    run_main_no_fd_leak(auth_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *select_main(void *arg)
{
    corio__redis *r3 = open_conn(NULL, 3), *r0 = open_conn(NULL, 0);
    redisReply *rep;

    (void)arg;
    CHECK(r3 != NULL && r0 != NULL);
    rep = corio__redis_call(r3, -1, "SET", "k", "in3", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    rep = corio__redis_call(r0, -1, "GET", "k", NULL);
    CHECK(reply_is(rep, REDIS_REPLY_NIL, NULL));
    freeReplyObject(rep);
    CHECK(corio__redis_free(r0) == 0);
    CHECK(corio__redis_free(r3) == 0);

    r3 = open_conn(NULL, 100000); /* no such db */
    CHECK(r3 != NULL);
    rep = corio__redis_call(r3, corio_now() + 2 * CORIO_SECOND, "PING", NULL);
    CHECK(rep == NULL && errno == EIO);
    CHECK(corio__redis_free(r3) == 0);
    return NULL;
}

Test(redis_adapter, select_db, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(select_main, NULL);
    redis_stop(&srv, SIGTERM);
}

static void *refused_main(void *arg)
{
    corio__redis *r = open_conn(NULL, 0);
    redisReply *rep;
    int64_t t0 = corio_now();

    (void)arg;
    CHECK(r != NULL);
    rep = corio__redis_call(r, t0 + 300 * MS, "PING", NULL);
    CHECK(rep == NULL && errno == ECONNREFUSED);
    CHECK(corio_now() - t0 < 2 * CORIO_SECOND);
    CHECK(!corio__redis_is_connected(r));
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, refused, .timeout = TIMEOUT)
{
    srv.port = redis_free_port(); /* nothing listens there */
    run_main_no_fd_leak(refused_main, NULL);
}

/* Redis killed under load and started again: the commands in flight fail
 * with ECONNRESET, the next ones wait for the reconnection. A BLPOP that
 * Redis holds is sure to be in flight at the kill (and the INCRs behind it
 * on the connection wait for it); without it, the INCRs alone could all be
 * between two commands at that instant, and none would see the reset. */
static int acked, resets;
static bool stop;

static void *restart_task(void *arg)
{
    (void)arg;
    while (!stop) {
        redisReply *rep = corio__redis_call(shared, corio_now() + 10 * CORIO_SECOND,
                                            "INCR", "n", NULL);

        if (rep == NULL && errno != ECONNRESET)
            return corio_task_fail(errno);
        if (rep == NULL)
            resets++;
        else
            acked++;
        freeReplyObject(rep);
    }
    return NULL;
}

/* Wait until Redis holds a blocked client (asked on a connection of its
 * own). Returns 0, or -1 at the deadline. */
static int blpop_held(int64_t deadline)
{
    corio__redis *probe = open_conn(NULL, 0);
    bool held = false;

    while (probe != NULL && !held && corio_now() < deadline) {
        redisReply *rep = corio__redis_call(probe, deadline, "INFO", "clients",
                                            NULL);

        held = rep != NULL && rep->str != NULL &&
               strstr(rep->str, "blocked_clients:1") != NULL;
        freeReplyObject(rep);
        if (!held && corio_sleep(5 * MS) == -1)
            break;
    }
    corio__redis_free(probe);
    return held ? 0 : -1;
}

static void *restart_main(void *arg)
{
    corio_task *ts[4], *blocked;
    redisReply *rep;
    int before;

    (void)arg;
    shared = open_conn(NULL, 0);
    CHECK(shared != NULL);
    for (int i = 0; i < 4; i++)
        CHECK((ts[i] = corio_task_spawn(restart_task, NULL, NULL)) != NULL);
    while (acked < 1000)
        CHECK(corio_sleep(5 * MS) == 0);
    CHECK((blocked = corio_task_spawn(blpop_task, shared, NULL)) != NULL);
    CHECK(blpop_held(corio_now() + 10 * CORIO_SECOND) == 0);
    redis_stop(&srv, SIGKILL);
    CHECK(corio_sleep(100 * MS) == 0);
    redis_start(&srv); /* same port, empty */
    before = acked;
    while (acked < before + 1000)
        CHECK(corio_sleep(5 * MS) == 0);
    stop = true;
    CHECK(corio_task_join_all(ts, 4, NULL) == 0);
    CHECK(corio_task_join(blocked, NULL) == -1 && errno == ECONNRESET);
    CHECK(resets <= 4);
    CHECK(corio__redis_connects(shared) == 2);
    rep = corio__redis_call(shared, -1, "GET", "n", NULL);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_STRING);
    /* What was acknowledged since the restart is there. */
    CHECK(atoi(rep->str) >= acked - before);
    freeReplyObject(rep);
    CHECK(corio__redis_free(shared) == 0);
    return NULL;
}

Test(redis_adapter, restart, .timeout = TIMEOUT)
{
    redis_start(&srv);
    run_main_no_fd_leak(restart_main, NULL);
    redis_stop(&srv, SIGTERM);
}

/* ---- Bad input ----------------------------------------------------------- */

static void *bad_main(void *arg)
{
    struct corio__redis_conf conf = {0};
    corio__redis *r;
    struct corio__redis_cmd cmd = {0, NULL, NULL};
    redisReply *rep = (void *)1;

    (void)arg;
    CHECK(corio__redis_new(NULL) == NULL && errno == EINVAL);
    CHECK(corio__redis_new(&conf) == NULL && errno == EINVAL);
    conf.host = "127.0.0.1";
    conf.port = 70000;
    CHECK(corio__redis_new(&conf) == NULL && errno == EINVAL);
    conf.port = srv.port;
    conf.db = -1;
    CHECK(corio__redis_new(&conf) == NULL && errno == EINVAL);
    CHECK(corio__redis_free(NULL) == 0);
    r = open_conn(NULL, 0);
    CHECK(r != NULL);
    CHECK(corio__redis_exec(r, 0, &cmd, &rep, -1) == -1 && errno == EINVAL);
    CHECK(corio__redis_exec(r, 1, &cmd, &rep, -1) == -1 && errno == EINVAL);
    CHECK(rep == NULL);
    CHECK(corio__redis_exec(NULL, 1, &cmd, &rep, -1) == -1 && errno == EINVAL);
    CHECK(corio__redis_free(r) == 0);
    return NULL;
}

Test(redis_adapter, bad_input, .timeout = TIMEOUT)
{
    srv.port = redis_free_port();
    run_main_no_fd_leak(bad_main, NULL);
}
