/* bench/dist/dist_bench.c -- the task-queue benchmark's corio side
 * (scripts/bench-dist, driver.py): one program, three roles.
 *
 *   dist_bench manager ADDR             a manager in this process's loop;
 *                                       prints READY, serves until SIGTERM
 *   dist_bench worker URL BATCH         takes up to BATCH tasks per
 *                                       exchange, acks them with their
 *                                       results ("n * n = m"), until the
 *                                       queue is closed and empty
 *   dist_bench producer URL N BATCH     puts N tasks (BATCH per exchange),
 *                                       closes the queue, waits for every
 *                                       result (64 tasks pipelining on one
 *                                       connection); prints "TASKS N SECONDS s"
 *
 * The authkey is "bench". */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "bench"
#define FETCHERS 64

static const char *url;
static size_t batch;
static size_t ntasks;
static uint64_t *ids;

static corio_dist *connect_or_die(void)
{
    corio_dist_opts o = {.authkey = KEY};
    corio_dist *d = corio_dist_connect(url, &o, corio_now() + 10 * CORIO_SECOND);

    if (d == NULL) {
        fprintf(stderr, "connect %s: %s\n", url, corio_strerror(errno));
        exit(1);
    }
    return d;
}

static void *manager(void *arg)
{
    corio_dist_manager_opts o = {.authkey = KEY};
    corio_dist_manager *m = corio_dist_manager_start(arg, &o);

    if (m == NULL) {
        fprintf(stderr, "manager %s: %s\n", (char *)arg, corio_strerror(errno));
        return corio_task_fail(errno);
    }
    printf("READY\n");
    fflush(stdout);
    while (corio_sleep(3600 * CORIO_SECOND) == 0)
        ;
    corio_dist_manager_stop(m, -1);
    return NULL;
}

static void *worker(void *arg)
{
    corio_dist *d = connect_or_die();
    corio_dist_queue *q = corio_dist_queue_new(d, "bench");
    corio_dist_msg *m = calloc(batch, sizeof(*m));
    corio_dist_buf *res = calloc(batch, sizeof(*res));
    uint64_t *got = calloc(batch, sizeof(*got));
    char (*text)[48] = calloc(batch, sizeof(*text));
    int err = 0;

    (void)arg;
    if (q == NULL || m == NULL || res == NULL || got == NULL || text == NULL)
        return corio_task_fail(ENOMEM);
    for (;;) {
        ssize_t n = corio_dist_queue_take_many(q, m, batch, -1);

        if (n == -1) {
            if (errno != CORIO_ECLOSED)
                err = errno;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            long v = strtol(m[i].data, NULL, 10);
            int len = snprintf(text[i], sizeof(text[i]), "%ld * %ld = %ld", v,
                               v, v * v);

            got[i] = m[i].id;
            res[i] = (corio_dist_buf){text[i], (size_t)len};
            corio_dist_msg_clear(&m[i]);
        }
        if (corio_dist_queue_ack_many(q, got, res, (size_t)n, -1) == -1) {
            err = errno;
            break;
        }
    }
    if (err)
        fprintf(stderr, "worker: %s\n", corio_strerror(err));
    free(m);
    free(res);
    free(got);
    free(text);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return err ? corio_task_fail(err) : NULL;
}

struct fetch {
    corio_dist *d;
    size_t first;
};

/* Take the results of ids first, first + FETCHERS, ... */
static void *fetcher(void *arg)
{
    struct fetch *f = arg;

    for (size_t i = f->first; i < ntasks; i += FETCHERS) {
        corio_dist_msg r;

        if (corio_dist_result_take(f->d, ids[i], &r, -1) == -1)
            return corio_task_fail(errno);
        corio_dist_msg_clear(&r);
    }
    return NULL;
}

static void *producer(void *arg)
{
    corio_dist *d = connect_or_die();
    corio_dist_queue *q = corio_dist_queue_new(d, "bench");
    corio_dist_buf *items = calloc(batch, sizeof(*items));
    char (*text)[16] = calloc(batch, sizeof(*text));
    static struct fetch fs[FETCHERS];
    corio_task *ts[FETCHERS];
    int64_t t0;

    (void)arg;
    ids = calloc(ntasks, sizeof(*ids));
    if (q == NULL || items == NULL || text == NULL || ids == NULL)
        return corio_task_fail(ENOMEM);
    t0 = corio_now();
    for (size_t done = 0; done < ntasks;) {
        size_t n = ntasks - done < batch ? ntasks - done : batch;

        for (size_t i = 0; i < n; i++) {
            int len = snprintf(text[i], sizeof(text[i]), "%zu", (done + i) % 10001);

            items[i] = (corio_dist_buf){text[i], (size_t)len};
        }
        if (corio_dist_queue_put_many(q, items, n, ids + done, -1) == -1) {
            fprintf(stderr, "put: %s\n", corio_strerror(errno));
            return corio_task_fail(errno);
        }
        done += n;
    }
    if (corio_dist_queue_close(q, -1) == -1)
        return corio_task_fail(errno);
    for (size_t i = 0; i < FETCHERS; i++) {
        fs[i] = (struct fetch){d, i};
        ts[i] = corio_task_spawn(fetcher, &fs[i], NULL);
        if (ts[i] == NULL)
            return corio_task_fail(errno);
    }
    if (corio_task_join_all(ts, FETCHERS, NULL) == -1) {
        fprintf(stderr, "results: %s\n", corio_strerror(errno));
        return corio_task_fail(errno);
    }
    printf("TASKS %zu SECONDS %.6f\n", ntasks,
           (double)(corio_now() - t0) / 1e9);
    free(items);
    free(text);
    free(ids);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return NULL;
}

int main(int argc, char **argv)
{
    corio_fn fn = NULL;
    void *arg = NULL;

    if (argc == 3 && strcmp(argv[1], "manager") == 0) {
        fn = manager;
        arg = argv[2];
    } else if (argc == 4 && strcmp(argv[1], "worker") == 0) {
        fn = worker;
        url = argv[2];
        batch = strtoul(argv[3], NULL, 10);
    } else if (argc == 5 && strcmp(argv[1], "producer") == 0) {
        fn = producer;
        url = argv[2];
        ntasks = strtoul(argv[3], NULL, 10);
        batch = strtoul(argv[4], NULL, 10);
    }
    if (fn == NULL || (fn != manager && batch == 0)) {
        fprintf(stderr, "usage: dist_bench manager ADDR | worker URL BATCH | "
                        "producer URL N BATCH\n");
        return 2;
    }
    return corio_run(fn, arg, NULL) == 0 ? 0 : 1;
}
