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
 *                                       closes the queue, takes every
 *                                       result (FETCHERS tasks on one
 *                                       connection, each taking those of
 *                                       up to BATCH tasks at once with
 *                                       corio_dist_result_take_many; with
 *                                       BATCH 1, 64 tasks taking one each);
 *                                       prints "TASKS N SECONDS s"
 *
 * The authkey is "bench". */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "bench"
#define FETCHERS 64       /* BATCH 1: one result per call */
#define MANY_FETCHERS 4   /* BATCH > 1: corio_dist_result_take_many */

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
    size_t first, stride;
};

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Take the results of the tasks in blocks first, first + stride, ...
 * (blocks of batch ids), a window of up to batch ids per exchange. */
static void *fetcher_many(void *arg)
{
    struct fetch *f = arg;
    size_t cap = batch, wn = 0, block = f->first, at = 0;
    uint64_t *win = calloc(cap, sizeof(*win)), *taken = calloc(cap, sizeof(*taken));
    corio_dist_msg *out = calloc(cap, sizeof(*out));
    int err = 0;

    if (win == NULL || taken == NULL || out == NULL)
        err = ENOMEM;
    for (;;) {
        ssize_t k;
        size_t keep = 0;

        /* fill the window from this fetcher's blocks */
        while (err == 0 && wn < cap && block * batch < ntasks) {
            size_t i = block * batch + at;

            win[wn++] = ids[i];
            if (++at == batch || i + 1 == ntasks) {
                at = 0;
                block += f->stride;
            }
        }
        if (err != 0 || wn == 0)
            break;
        k = corio_dist_result_take_many(f->d, win, wn, out, -1);
        if (k == -1) {
            err = errno;
            break;
        }
        for (ssize_t i = 0; i < k; i++) {
            taken[i] = out[i].id;
            corio_dist_msg_clear(&out[i]);
        }
        qsort(taken, (size_t)k, sizeof(*taken), id_cmp);
        for (size_t i = 0; i < wn; i++)
            if (bsearch(&win[i], taken, (size_t)k, sizeof(*taken), id_cmp) ==
                NULL)
                win[keep++] = win[i];
        wn = keep;
    }
    free(win);
    free(taken);
    free(out);
    return err ? corio_task_fail(err) : NULL;
}

/* Take the results of ids first, first + FETCHERS, ... */
static void *fetcher(void *arg)
{
    struct fetch *f = arg;

    for (size_t i = f->first; i < ntasks; i += f->stride) {
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
    size_t nf = batch > 1 ? MANY_FETCHERS : FETCHERS;
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
    for (size_t i = 0; i < nf; i++) {
        fs[i] = (struct fetch){d, i, nf};
        ts[i] = corio_task_spawn(batch > 1 ? fetcher_many : fetcher, &fs[i],
                                 NULL);
        if (ts[i] == NULL)
            return corio_task_fail(errno);
    }
    if (corio_task_join_all(ts, nf, NULL) == -1) {
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
