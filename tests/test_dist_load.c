/* tests/test_dist_load.c -- the manager under load: 1,000 workers
 * connected at once, each taking and acking a task (the soft RLIMIT_NOFILE
 * is raised for the test: the manager runs in its own process, which
 * inherits it); and the manager restarted while workers take and ack in a
 * loop: every worker sees its connection fail clearly (never a hang),
 * reconnects to the new manager, and the new tasks are all done, each
 * result recorded once.
 *
 * Labelled novalgrind (tests/CMakeLists.txt): thousands of coroutines and
 * connections are too slow under valgrind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"

#define KEY "abc"
#define NWORKERS 1000

static char url[128];
static int connected;          /* workers connected so far */
static corio_event *all_in;    /* set when all are */

static void *one_worker(void *arg)
{
    corio_dist_opts o = {.authkey = KEY};
    int64_t dl = corio_now() + 60 * CORIO_SECOND;
    corio_dist *d = corio_dist_connect(url, &o, dl);
    corio_dist_queue *q;
    corio_dist_msg m;
    int err = 0;

    (void)arg;
    if (d == NULL)
        return corio_task_fail(errno);
    if (++connected == NWORKERS && corio_event_set(all_in) == -1)
        err = errno;
    q = corio_dist_queue_new(d, "load");
    if (err == 0 && (q == NULL || corio_event_wait(all_in, dl) == -1 ||
                     corio_dist_queue_take(q, &m, dl) == -1))
        err = errno;
    if (err == 0) {
        /* The result: the task's payload, twice. */
        char r[64];
        int len = snprintf(r, sizeof(r), "%s%s", (char *)m.data, (char *)m.data);

        if (corio_dist_queue_ack(q, m.id, r, (size_t)len, dl) == -1)
            err = errno;
        corio_dist_msg_clear(&m);
    }
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return err ? corio_task_fail(err) : NULL;
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, 2 * NWORKERS + 64,
                  "RLIMIT_NOFILE's hard limit is too low: %ld",
                  (long)rl.rlim_max);
}

static void *thousand_body(void *arg)
{
    corio_dist_manager_opts mo = {.authkey = KEY, .process = true};
    corio_dist_opts o = {.authkey = KEY};
    static corio_task *ts[NWORKERS];
    static uint64_t ids[NWORKERS];
    corio_dist_manager *m;
    corio_dist *d;
    corio_dist_queue *q;
    char addr[100];

    (void)arg;
    CHECK((m = corio_dist_manager_start("127.0.0.1:0", &mo)) != NULL);
    CHECK(corio_dist_manager_addr(m, addr, sizeof(addr)) > 0);
    snprintf(url, sizeof(url), "corio://%s", addr);
    CHECK((d = corio_dist_connect(url, &o, -1)) != NULL);
    CHECK((q = corio_dist_queue_new(d, "load")) != NULL);
    for (int i = 0; i < NWORKERS; i++) {
        char n[16];
        int len = snprintf(n, sizeof(n), "%d", i);

        CHECK(corio_dist_queue_put(q, n, (size_t)len, &ids[i], -1) == 0);
    }
    CHECK((all_in = corio_event_new()) != NULL);
    for (int i = 0; i < NWORKERS; i++)
        CHECK((ts[i] = corio_task_spawn(one_worker, NULL, NULL)) != NULL);
    CHECK(corio_task_join_all(ts, NWORKERS, NULL) == 0);
    CHECK(connected == NWORKERS);
    CHECK(corio_dist_queue_size(q, -1) == 0);
    for (int i = 0; i < NWORKERS; i++) {
        corio_dist_msg r;
        char want[40];

        snprintf(want, sizeof(want), "%d%d", i, i);
        CHECK(corio_dist_result_take(d, ids[i], &r, corio_now() + 10 * CORIO_SECOND) == 0);
        CHECK(strcmp(r.data, want) == 0);
        corio_dist_msg_clear(&r);
    }
    corio_event_free(all_in);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    CHECK(corio_dist_manager_stop(m, corio_now() + 10 * CORIO_SECOND) == 0);
    return NULL;
}

Test(dist_load, thousand_workers_connected, .timeout = 120)
{
    raise_nofile(4 * NWORKERS);
    run_main_no_fd_leak(thousand_body, NULL);
}

/* ---- A restart under load ---------------------------------------------------- */

#define NLOOPERS 16

static int broken;         /* workers that saw their connection fail */
static bool stopping;      /* the test is over: workers leave */

/* Take and ack in batches until told to stop; on a broken connection,
 * count it and connect again (to whatever manager is there now). */
static void *looper(void *arg)
{
    corio_dist_opts o = {.authkey = KEY};

    (void)arg;
    while (!stopping) {
        corio_dist *d = corio_dist_connect(url, &o, corio_now() + CORIO_SECOND);
        corio_dist_queue *q;
        int err = 0;

        if (d == NULL) {
            if (corio_sleep(20 * CORIO_MSEC) == -1)
                return corio_task_fail(errno);
            continue;   /* the new manager is not up yet */
        }
        q = corio_dist_queue_new(d, "work");
        while (!stopping && err == 0 && q != NULL) {
            corio_dist_msg m[8];
            uint64_t ids[8];
            corio_dist_buf res[8];
            ssize_t n = corio_dist_queue_take_many(q, m, 8,
                                                   corio_now() + 100 * CORIO_MSEC);

            if (n == -1) {
                if (errno != ETIMEDOUT)
                    err = errno;
                continue;
            }
            for (ssize_t i = 0; i < n; i++) {
                ids[i] = m[i].id;
                res[i] = (corio_dist_buf){m[i].data, m[i].len};
            }
            if (corio_dist_queue_ack_many(q, ids, res, (size_t)n, -1) == -1)
                err = errno;
            for (ssize_t i = 0; i < n; i++)
                corio_dist_msg_clear(&m[i]);
        }
        if (err == CORIO_EEOF || err == ECONNRESET || err == EPIPE)
            broken++;
        else if (err != 0)
            return corio_task_fail(err);
        corio_dist_queue_free(q);
        corio_dist_close(d);
    }
    return NULL;
}

/* Put n tasks and wait for every result (each the task's own payload). */
static const char *round_trip(int n, int64_t deadline)
{
    corio_dist_opts o = {.authkey = KEY};
    corio_dist *d;
    corio_dist_queue *q;
    uint64_t *ids = calloc((size_t)n, sizeof(*ids));
    const char *fail = NULL;

    if (ids == NULL)
        return "calloc";
    d = corio_dist_connect(url, &o, deadline);
    q = d != NULL ? corio_dist_queue_new(d, "work") : NULL;
    for (int i = 0; q != NULL && fail == NULL && i < n; i++) {
        char p[16];
        int len = snprintf(p, sizeof(p), "t%d", i);

        if (corio_dist_queue_put(q, p, (size_t)len, &ids[i], deadline) == -1)
            fail = "put";
    }
    for (int i = 0; q != NULL && fail == NULL && i < n; i++) {
        corio_dist_msg r;
        char want[16];

        snprintf(want, sizeof(want), "t%d", i);
        if (corio_dist_result_take(d, ids[i], &r, deadline) == -1 ||
            strcmp(r.data, want) != 0)
            fail = "result";
        corio_dist_msg_clear(&r);
    }
    if (q == NULL)
        fail = "connect";
    corio_dist_queue_free(q);
    corio_dist_close(d);
    free(ids);
    return fail;
}

static void *restart_body(void *arg)
{
    corio_dist_manager_opts mo = {.authkey = KEY, .process = true};
    static corio_task *ts[NLOOPERS];
    corio_dist_manager *m;
    char addr[100];
    const char *fail;

    (void)arg;
    CHECK((m = corio_dist_manager_start("127.0.0.1:0", &mo)) != NULL);
    CHECK(corio_dist_manager_addr(m, addr, sizeof(addr)) > 0);
    snprintf(url, sizeof(url), "corio://%s", addr);
    for (int i = 0; i < NLOOPERS; i++)
        CHECK((ts[i] = corio_task_spawn(looper, NULL, NULL)) != NULL);
    fail = round_trip(2000, corio_now() + 30 * CORIO_SECOND);
    CHECK(fail == NULL);
    /* Restart it on the same address while the workers take. */
    CHECK(corio_dist_manager_stop(m, corio_now() + 10 * CORIO_SECOND) == 0);
    CHECK((m = corio_dist_manager_start(addr, &mo)) != NULL);
    fail = round_trip(2000, corio_now() + 30 * CORIO_SECOND);
    CHECK(fail == NULL);
    CHECK(broken == NLOOPERS);
    stopping = true;
    CHECK(corio_task_join_all(ts, NLOOPERS, NULL) == 0);
    CHECK(corio_dist_manager_stop(m, corio_now() + 10 * CORIO_SECOND) == 0);
    return NULL;
}

Test(dist_load, manager_restarted_under_load, .timeout = 120)
{
    run_main_no_fd_leak(restart_body, NULL);
}
