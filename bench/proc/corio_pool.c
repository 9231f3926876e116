/* bench/proc/corio_pool.c -- the process pool's workloads, one per run:
 *
 *   corio_pool apply N SIZE      N trivial apply_async (chunksize 1) from
 *                                plain code, then wait for all: items/s
 *   corio_pool map N SIZE CHUNK  a map of N trivial items in chunks: items/s
 *   corio_pool latency N SIZE    a task awaits one trivial item at a time,
 *                                N times: the median round trip (us)
 *
 * Prints one line: `<workload> <value> <unit>`. scripts/bench-proc runs it
 * against Python's multiprocessing (bench/proc/peer.py). */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trivial task: its argument (an int) plus one. */
static int inc(const void *arg, size_t len, corio_bytes *r)
{
    int v;

    memcpy(&v, arg, sizeof(v));
    v++;
    r->data = malloc(sizeof(v));
    if (r->data == NULL)
        return ENOMEM;
    memcpy(r->data, &v, sizeof(v));
    r->len = sizeof(v);
    return 0;
}

static void die(const char *what)
{
    fprintf(stderr, "corio_pool: %s: %s\n", what, corio_strerror(errno));
    exit(1);
}

static double apply(corio_workers *w, int n)
{
    corio_future **fs = malloc((size_t)n * sizeof(*fs));
    int64_t t0 = corio_now();

    if (fs == NULL)
        die("malloc");
    for (int i = 0; i < n; i++)
        if ((fs[i] = corio_workers_submit(w, inc, &i, sizeof(i))) == NULL)
            die("submit");
    for (int i = 0; i < n; i++) {
        if (corio_future_wait(fs[i], -1) == -1 || corio_future_error(fs[i]) != 0)
            die("apply");
        corio_future_free(fs[i]);
    }
    free(fs);
    return n / ((double)(corio_now() - t0) / 1e9);
}

static double map(corio_workers *w, int n, int chunk)
{
    int *vals = malloc((size_t)n * sizeof(int));
    corio_bytes *args = malloc((size_t)n * sizeof(*args));
    corio_bytes *res = malloc((size_t)n * sizeof(*res));
    int64_t t0;

    if (vals == NULL || args == NULL || res == NULL)
        die("malloc");
    for (int i = 0; i < n; i++) {
        vals[i] = i;
        args[i] = (corio_bytes){&vals[i], sizeof(int)};
    }
    t0 = corio_now();
    if (corio_workers_map(w, inc, args, (size_t)n, (size_t)chunk, res, NULL, -1) == -1)
        die("map");
    double rate = n / ((double)(corio_now() - t0) / 1e9);
    for (int i = 0; i < n; i++)
        free(res[i].data);
    free(vals);
    free(args);
    free(res);
    return rate;
}

struct lat {
    corio_workers *w;
    int n;
    int64_t *ns;
};

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void *latency_task(void *arg)
{
    struct lat *l = arg;

    for (int i = 0; i < l->n; i++) {
        int64_t t0 = corio_now();
        corio_future *f = corio_workers_submit(l->w, inc, &i, sizeof(i));

        if (f == NULL || corio_future_wait(f, -1) == -1 || corio_future_error(f) != 0)
            die("latency");
        corio_future_free(f);
        l->ns[i] = corio_now() - t0;
    }
    return NULL;
}

static double latency(corio_workers *w, int n)
{
    struct lat l = {w, n, malloc((size_t)n * sizeof(int64_t))};

    if (l.ns == NULL)
        die("malloc");
    if (corio_run(latency_task, &l, NULL) == -1)
        die("corio_run");
    qsort(l.ns, (size_t)n, sizeof(int64_t), cmp64);
    double us = (double)l.ns[n / 2] / 1e3;
    free(l.ns);
    return us;
}

int main(int argc, char **argv)
{
    corio_workers_opts o = {0};
    corio_workers *w;
    int n;

    if (argc < 4) {
        fprintf(stderr, "usage: corio_pool apply|map|latency N SIZE [CHUNK]\n");
        return 2;
    }
    n = atoi(argv[2]);
    o.size = (size_t)atoi(argv[3]);
    if ((w = corio_workers_new(&o)) == NULL)
        die("corio_workers_new");
    apply(w, 1); /* the workers are up, as the peer's */
    if (strcmp(argv[1], "apply") == 0)
        printf("apply %.0f items/s\n", apply(w, n));
    else if (strcmp(argv[1], "map") == 0)
        printf("map %.0f items/s\n", map(w, n, argc > 4 ? atoi(argv[4]) : 0));
    else
        printf("latency %.1f us\n", latency(w, n));
    if (corio_workers_close(w) == -1 || corio_workers_join(w) == -1)
        die("close");
    corio_workers_free(w);
    return 0;
}
