/* tests/test_proc_storm.c -- a kill -9 storm: a random worker of a pool of
 * processes is killed every 50 ms during a 10,000-item map (chunksize 1).
 * Each item completes exactly once (a shared-memory counter of how often
 * each began), or is reported failed with EOWNERDEAD (and began at most
 * once); the map ends (no hang) and no child is left. Labelled novalgrind
 * (tests/CMakeLists.txt): thousands of forks and kills. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corio.h"
#include "corio/proc.h"
#include "loop_test.h"

static corio_bytes *int_args(int n, int *vals)
{
    corio_bytes *a = calloc((size_t)n, sizeof(*a));

    for (int i = 0; i < n; i++) {
        vals[i] = i;
        a[i] = (corio_bytes){&vals[i], sizeof(int)};
    }
    return a;
}

/* ---- The kill -9 storm ------------------------------------------------------ */

/* Counts, in memory shared with the workers, how often each item began. */
static _Atomic int *began;

static int counted(const void *arg, size_t len, corio_bytes *r)
{
    int v;

    memcpy(&v, arg, sizeof(v));
    atomic_fetch_add(&began[v], 1);
    usleep(200);
    r->data = malloc(sizeof(v));
    if (r->data == NULL)
        return ENOMEM;
    memcpy(r->data, &v, sizeof(v));
    r->len = sizeof(v);
    return 0;
}

struct storm {
    corio_workers *w;
    atomic_bool stop;
    int kills;
};

static void *killer(void *arg)
{
    struct storm *s = arg;
    unsigned seed = 1;

    while (!atomic_load(&s->stop)) {
        pid_t pids[4];
        size_t n;

        msleep(50);
        n = corio_workers_pids(s->w, pids, 4);
        if (n > 0 && kill(pids[rand_r(&seed) % n], SIGKILL) == 0)
            s->kills++;
    }
    return NULL;
}

Test(proc_pool, kill_storm, .timeout = 120)
{
    enum { N = 10000 };
    corio_workers_opts o = {.size = 2};
    struct storm s = {0};
    int *vals = calloc(N, sizeof(int));
    corio_bytes *args = int_args(N, vals);
    corio_bytes *res = calloc(N, sizeof(*res));
    int *errs = calloc(N, sizeof(int));
    int failed = 0;
    pthread_t t;

    /* before the pool: its workers are forks, they see memory as it was */
    began = mmap(NULL, N * sizeof(int), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(began, MAP_FAILED);
    s.w = corio_workers_new(&o);
    cr_assert_not_null(s.w);
    cr_assert_eq(pthread_create(&t, NULL, killer, &s), 0);
    (void)!corio_workers_map(s.w, counted, args, N, 1, res, errs,
                             corio_now() + 100 * CORIO_SECOND);
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++) {
        if (errs[i] == 0) {
            int v;

            memcpy(&v, res[i].data, sizeof(v));
            cr_assert_eq(v, i);
            cr_assert_eq(began[i], 1, "item %d began %d times", i, began[i]);
        } else {
            cr_assert_eq(errs[i], EOWNERDEAD, "item %d: %s", i,
                         corio_strerror(errs[i]));
            cr_assert_leq(began[i], 1, "failed item %d began %d times", i,
                          began[i]);
            failed++;
        }
        free(res[i].data);
    }
    cr_assert_leq(failed, s.kills);
    cr_log_info("%d kills, %d items failed", s.kills, failed);
    fprintf(stderr, "storm: %d kills, %d items failed\n", s.kills, failed);
    cr_assert_gt(s.kills, 5, "only %d kills", s.kills);
    cr_assert_eq(corio_workers_close(s.w), 0);
    cr_assert_eq(corio_workers_join(s.w), 0);
    cr_assert_eq(corio_workers_free(s.w), 0);
    munmap((void *)began, N * sizeof(int));
    free(vals);
    free(args);
    free(res);
    free(errs);
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}
