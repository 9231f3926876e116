/* tests/test_proc_pool.c -- the pool of worker processes or threads
 * (corio_workers_*): apply_async futures waited on from plain code and in
 * tasks, errors of the work, map, imap and imap_unordered with chunks,
 * close/join/terminate, initializer, maxtasksperchild, workers that die in
 * the middle of an item (kill -9, segfault, abort). The kill -9 storm is
 * test_proc_storm.c. Each test checks that no child is left. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corio.h"
#include "corio/proc.h"
#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

static void expect_no_children(void)
{
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

static void no_core(void)
{
    struct rlimit r = {0, 0};

    setrlimit(RLIMIT_CORE, &r);
}

/* ---- Work ----------------------------------------------------------------- */

static int bytes_set(corio_bytes *r, const void *p, size_t n)
{
    r->data = malloc(n);
    if (r->data == NULL)
        return ENOMEM;
    memcpy(r->data, p, n);
    r->len = n;
    return 0;
}

/* The argument (an int) times two, as an int. */
static int twice(const void *arg, size_t len, corio_bytes *r)
{
    int v;

    if (len != sizeof(v))
        return EINVAL;
    memcpy(&v, arg, sizeof(v));
    v *= 2;
    return bytes_set(r, &v, sizeof(v));
}

/* The worker's pid. */
static int whoami(const void *arg, size_t len, corio_bytes *r)
{
    pid_t pid = getpid();

    return bytes_set(r, &pid, sizeof(pid));
}

static int fails(const void *arg, size_t len, corio_bytes *r)
{
    return EDOM;
}

/* Sleeps the argument (ms, an int). */
static int sleeper(const void *arg, size_t len, corio_bytes *r)
{
    int ms;

    memcpy(&ms, arg, sizeof(ms));
    msleep(ms);
    return 0;
}

/* Dies by the signal in its argument (an int). */
static int dies(const void *arg, size_t len, corio_bytes *r)
{
    int sig;

    memcpy(&sig, arg, sizeof(sig));
    no_core();
    if (sig == SIGSEGV)
        raise(SIGSEGV);
    else if (sig == SIGABRT)
        abort();
    else
        kill(getpid(), sig);
    return 0;
}

static int init_value;

static void init(void *arg)
{
    init_value = (int)(intptr_t)arg;
}

static int get_init(const void *arg, size_t len, corio_bytes *r)
{
    return bytes_set(r, &init_value, sizeof(init_value));
}

static corio_future *submit_int(corio_workers *w, corio_work_fn fn, int v)
{
    corio_future *f = corio_workers_submit(w, fn, &v, sizeof(v));

    cr_assert_not_null(f, "submit: %s", corio_strerror(errno));
    return f;
}

/* The int result of a done future. */
static int result_int(corio_future *f)
{
    const corio_bytes *b;
    int v;

    cr_assert_eq(corio_future_error(f), 0, "error %s",
                 corio_strerror(corio_future_error(f)));
    b = corio_future_result(f);
    cr_assert_not_null(b);
    cr_assert_eq(b->len, sizeof(v));
    memcpy(&v, b->data, sizeof(v));
    return v;
}

static corio_workers *pool(size_t size, bool threads)
{
    corio_workers_opts o = {.size = size, .threads = threads};
    corio_workers *w = corio_workers_new(&o);

    cr_assert_not_null(w, "corio_workers_new: %s", corio_strerror(errno));
    cr_assert_eq(corio_workers_size(w), size);
    return w;
}

static void finish(corio_workers *w)
{
    cr_assert_eq(corio_workers_close(w), 0);
    cr_assert_eq(corio_workers_join(w), 0);
    cr_assert_eq(corio_workers_free(w), 0);
}

/* ---- apply_async ------------------------------------------------------------ */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void apply_plain(bool threads)
{
    corio_loop *loop = corio_loop_current(); /* the futures' loop: no leak */
    int fds = count_fds();
    corio_workers *w = pool(2, threads);
    corio_future *f[8];
    corio_future *p;
    pid_t pid;

    for (int i = 0; i < 8; i++)
        f[i] = submit_int(w, twice, i);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(corio_future_wait(f[i], corio_now() + 10 * CORIO_SECOND), 0);
        cr_assert_eq(result_int(f[i]), 2 * i);
        cr_assert_eq(corio_workers_exitcode(f[i]), 0);
        cr_assert_eq(corio_future_free(f[i]), 0);
    }
    p = corio_workers_submit(w, whoami, NULL, 0);
    cr_assert_not_null(p);
    cr_assert_eq(corio_future_wait(p, -1), 0);
    memcpy(&pid, ((const corio_bytes *)corio_future_result(p))->data, sizeof(pid));
    if (threads)
        cr_assert_eq(pid, getpid());
    else
        cr_assert_neq(pid, getpid());
    cr_assert_eq(corio_future_free(p), 0);
    finish(w);
    cr_assert_eq(count_fds(), fds, "an fd is left");
    cr_assert_not_null(loop);
    expect_no_children();
}

Test(proc_pool, apply_plain) { apply_plain(false); }
Test(proc_pool, apply_plain_threads) { apply_plain(true); }

Test(proc_pool, default_size)
{
    corio_workers *w = corio_workers_new(NULL);
    cpu_set_t set;

    cr_assert_not_null(w);
    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    cr_assert_eq(corio_workers_size(w), (size_t)CPU_COUNT(&set));
    cr_assert_eq(corio_workers_pids(w, NULL, 0), 0);
    finish(w);
    expect_no_children();
}

static int ticks;

static void *ticker(void *arg)
{
    while (corio_sleep(5 * MS) == 0)
        ticks++;
    return NULL;
}

static void *apply_in_task(void *arg)
{
    corio_workers *w = arg;
    corio_task *t = corio_task_spawn(ticker, NULL, NULL);
    int ms = 200;
    corio_future *f = corio_workers_submit(w, sleeper, &ms, sizeof(ms));
    corio_future *g;

    cr_assert_not_null(f);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_eq(corio_future_error(f), 0);
    cr_assert_geq(ticks, 10, "the loop was blocked: %d ticks", ticks);
    cr_assert_eq(corio_future_free(f), 0);
    /* a deadline ends the wait; the item is left to run */
    g = corio_workers_submit(w, sleeper, &ms, sizeof(ms));
    expect_fail(corio_future_wait(g, corio_now() + 20 * MS), ETIMEDOUT);
    cr_assert_eq(corio_future_free(g), 0);
    corio_task_cancel(t);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    return NULL;
}

Test(proc_pool, apply_in_task)
{
    corio_workers *w = pool(2, false);

    cr_assert_eq(corio_run(apply_in_task, w, NULL), 0);
    finish(w);
    expect_no_children();
}

Test(proc_pool, work_error_and_bad_input)
{
    corio_workers *w = pool(1, false);
    corio_future *f = corio_workers_submit(w, fails, "x", 1);
    int v = 1;

    cr_assert_not_null(f);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_eq(corio_future_error(f), EDOM);
    cr_assert_null(corio_future_result(f));
    cr_assert_eq(corio_future_free(f), 0);
    errno = 0;
    cr_assert_null(corio_workers_submit(NULL, twice, &v, sizeof(v)));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_workers_submit(w, NULL, &v, sizeof(v)));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_workers_submit(w, twice, NULL, 4));
    cr_assert_eq(errno, EINVAL);
    expect_fail(corio_workers_join(w), EINVAL); /* not closed */
    expect_fail(corio_workers_close(NULL), EINVAL);
    expect_fail(corio_workers_terminate(NULL), EINVAL);
    cr_assert_eq(corio_workers_free(NULL), 0);
    cr_assert_eq(corio_workers_size(NULL), 0);
    finish(w);
    expect_no_children();
}

Test(proc_pool, close_then_submit)
{
    corio_workers *w = pool(2, false);
    corio_future *f[4];
    int v = 3;

    for (int i = 0; i < 4; i++)
        f[i] = submit_int(w, twice, i);
    cr_assert_eq(corio_workers_close(w), 0);
    errno = 0;
    cr_assert_null(corio_workers_submit(w, twice, &v, sizeof(v)));
    cr_assert_eq(errno, CORIO_ECLOSED);
    cr_assert_eq(corio_workers_join(w), 0);
    /* the queued work ran before the workers ended */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(corio_future_wait(f[i], -1), 0);
        cr_assert_eq(result_int(f[i]), 2 * i);
        corio_future_free(f[i]);
    }
    cr_assert_eq(corio_workers_pids(w, (pid_t[2]){0}, 2), 0);
    cr_assert_eq(corio_workers_free(w), 0);
    expect_no_children();
}

static void terminate(bool threads)
{
    corio_workers *w = pool(2, threads);
    corio_future *f[6];
    int64_t t0 = corio_now();

    for (int i = 0; i < 6; i++)
        f[i] = submit_int(w, sleeper, 300);
    msleep(50);
    cr_assert_eq(corio_workers_terminate(w), 0);
    cr_assert_eq(corio_workers_join(w), 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(corio_future_wait(f[i], -1), 0);
        if (!threads || i >= 2)
            cr_assert_eq(corio_future_error(f[i]), ECANCELED, "item %d: %s", i,
                         corio_strerror(corio_future_error(f[i])));
        corio_future_free(f[i]);
    }
    cr_assert_lt(elapsed_ms(t0), (threads ? 300 : 0) + 50 + test_slack_ms());
    cr_assert_eq(corio_workers_free(w), 0);
    expect_no_children();
}

Test(proc_pool, terminate) { terminate(false); }
Test(proc_pool, terminate_threads) { terminate(true); }

/* Freeing a pool with work pending cancels it: no hang, no child left. */
Test(proc_pool, free_pending)
{
    corio_workers *w = pool(1, false);
    corio_future *f = submit_int(w, sleeper, 10000);
    corio_future *g = submit_int(w, sleeper, 10000);

    msleep(20);
    cr_assert_eq(corio_workers_free(w), 0);
    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_eq(corio_future_error(f), ECANCELED);
    cr_assert_eq(corio_future_wait(g, -1), 0);
    cr_assert_eq(corio_future_error(g), ECANCELED);
    corio_future_free(f);
    corio_future_free(g);
    expect_no_children();
}

/* ---- Workers that die ----------------------------------------------------- */

Test(proc_pool, worker_dies)
{
    corio_workers *w = pool(2, false);
#ifdef __SANITIZE_ADDRESS__
    /* ASan's handler would report a SIGSEGV (a failure for ctest) and exit
     * with 1: another fault signal it leaves alone stands in */
    int sigs[3] = {SIGKILL, SIGILL, SIGABRT};
#else
    int sigs[3] = {SIGKILL, SIGSEGV, SIGABRT};
#endif
    corio_future *d[3], *ok[10];
    pid_t after[2];

    for (int i = 0; i < 3; i++)
        d[i] = submit_int(w, dies, sigs[i]);
    for (int i = 0; i < 10; i++)
        ok[i] = submit_int(w, twice, i);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(corio_future_wait(d[i], corio_now() + 10 * CORIO_SECOND), 0);
        cr_assert_eq(corio_future_error(d[i]), EOWNERDEAD);
        cr_assert_eq(corio_workers_exitcode(d[i]), -sigs[i]);
        corio_future_free(d[i]);
    }
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(corio_future_wait(ok[i], corio_now() + 10 * CORIO_SECOND), 0);
        cr_assert_eq(result_int(ok[i]), 2 * i);
        corio_future_free(ok[i]);
    }
    /* replaced: still two workers */
    msleep(20);
    cr_assert_eq(corio_workers_pids(w, after, 2), 2);
    finish(w);
    expect_no_children();
}

/* ---- results larger than a worker's answer ring (256 KiB) -------------------- */

static unsigned char pattern(size_t i, size_t n)
{
    return (unsigned char)(i * 7 + n);
}

/* n bytes (the argument, a size_t) of pattern(i, n). */
static int big(const void *arg, size_t len, corio_bytes *r)
{
    size_t n;
    unsigned char *p;

    if (len != sizeof(n))
        return EINVAL;
    memcpy(&n, arg, sizeof(n));
    p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(i, n);
    r->data = p;
    r->len = n;
    return 0;
}

static void expect_pattern(const corio_bytes *b, size_t n)
{
    cr_assert_eq(b->len, n);
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)b->data)[i] != pattern(i, n))
            cr_assert_fail("byte %zu of %zu differs", i, n);
}

/* Answers that fill the ring many times over arrive whole and in order,
 * applied one by one, together with small ones, and in chunks of a map. */
Test(proc_pool, results_larger_than_the_ring, .timeout = 60)
{
    static const size_t sizes[] = {0, 1, (256 << 10) - 16, 256 << 10,
                                   (256 << 10) + 3, 1 << 20, (3 << 20) + 5,
                                   24, 100000};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]), N = 64 };
    corio_workers *w = pool(2, false);
    corio_future *f[NS];
    size_t each[N];
    corio_bytes args[N], res[N];
    int errs[N];

    for (size_t i = 0; i < NS; i++) {
        f[i] = corio_workers_submit(w, big, &sizes[i], sizeof(sizes[i]));
        cr_assert_not_null(f[i]);
    }
    for (size_t i = 0; i < NS; i++) {
        cr_assert_eq(corio_future_wait(f[i], corio_now() + 30 * CORIO_SECOND), 0);
        cr_assert_eq(corio_future_error(f[i]), 0);
        expect_pattern(corio_future_result(f[i]), sizes[i]);
        cr_assert_eq(corio_future_free(f[i]), 0);
    }
    /* 64 results of 40 KiB in chunks of 16: 640 KiB per chunk's answer */
    for (size_t i = 0; i < N; i++) {
        each[i] = (40 << 10) + i;
        args[i] = (corio_bytes){&each[i], sizeof(each[i])};
    }
    cr_assert_eq(corio_workers_map(w, big, args, N, 16, res, errs, -1), 0,
                 "map: %s", corio_strerror(errno));
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(errs[i], 0);
        expect_pattern(&res[i], each[i]);
        free(res[i].data);
    }
    finish(w);
    expect_no_children();
}

/* ---- map, imap, imap_unordered ------------------------------------------------ */

static corio_bytes *int_args(int n, int *vals)
{
    corio_bytes *a = calloc((size_t)n, sizeof(*a));

    for (int i = 0; i < n; i++) {
        vals[i] = i;
        a[i] = (corio_bytes){&vals[i], sizeof(int)};
    }
    return a;
}

static void map(bool threads, size_t chunksize)
{
    enum { N = 1000 };
    corio_workers *w = pool(2, threads);
    int *vals = calloc(N, sizeof(int));
    corio_bytes *args = int_args(N, vals);
    corio_bytes *res = calloc(N, sizeof(*res));
    int *errs = calloc(N, sizeof(int));

    cr_assert_eq(corio_workers_map(w, twice, args, N, chunksize, res, errs, -1), 0,
                 "map: %s", corio_strerror(errno));
    for (int i = 0; i < N; i++) {
        int v;

        cr_assert_eq(errs[i], 0);
        cr_assert_eq(res[i].len, sizeof(v));
        memcpy(&v, res[i].data, sizeof(v));
        cr_assert_eq(v, 2 * i);
        free(res[i].data);
    }
    /* an empty map */
    cr_assert_eq(corio_workers_map(w, twice, NULL, 0, 0, NULL, NULL, -1), 0);
    finish(w);
    free(vals);
    free(args);
    free(res);
    free(errs);
    expect_no_children();
}

Test(proc_pool, map_chunks) { map(false, 7); }
Test(proc_pool, map_default_chunks) { map(false, 0); }
Test(proc_pool, map_one_by_one) { map(false, 1); }
Test(proc_pool, map_threads) { map(true, 5); }

Test(proc_pool, map_errors)
{
    corio_workers *w = pool(2, false);
    int vals[4] = {1, 2, 3, 4};
    corio_bytes args[4] = {{&vals[0], 4}, {&vals[1], 3}, {&vals[2], 4}, {&vals[3], 4}};
    corio_bytes res[4];
    int errs[4];

    /* item 1 has the wrong length: twice fails it with EINVAL */
    expect_fail(corio_workers_map(w, twice, args, 4, 2, res, errs, -1), EINVAL);
    cr_assert_eq(errs[0], 0);
    cr_assert_eq(errs[1], EINVAL);
    cr_assert_eq(errs[2], 0);
    cr_assert_eq(errs[3], 0);
    for (int i = 0; i < 4; i++)
        free(res[i].data);
    expect_fail(corio_workers_map(w, NULL, args, 4, 2, res, errs, -1), EINVAL);
    finish(w);
    expect_no_children();
}

static void imap(bool ordered)
{
    enum { N = 200 };
    corio_workers *w = pool(2, false);
    int vals[N];
    corio_bytes *args = int_args(N, vals);
    corio_workers_iter *it = corio_workers_imap(w, twice, args, N, 3, ordered);
    bool seen[N] = {false};
    corio_bytes r;
    size_t idx;

    cr_assert_not_null(it);
    for (int k = 0; k < N; k++) {
        int v;

        cr_assert_eq(corio_workers_iter_next(it, &idx, &r, -1), 0);
        if (ordered)
            cr_assert_eq(idx, (size_t)k);
        cr_assert_lt(idx, N);
        cr_assert(!seen[idx]);
        seen[idx] = true;
        memcpy(&v, r.data, sizeof(v));
        cr_assert_eq(v, 2 * (int)idx);
        free(r.data);
    }
    expect_fail(corio_workers_iter_next(it, &idx, &r, -1), CORIO_EDONE);
    cr_assert_eq(corio_workers_iter_free(it), 0);
    /* freed before the end: the rest is dropped */
    it = corio_workers_imap(w, twice, args, N, 1, ordered);
    cr_assert_eq(corio_workers_iter_next(it, &idx, &r, -1), 0);
    free(r.data);
    cr_assert_eq(corio_workers_iter_free(it), 0);
    cr_assert_eq(corio_workers_iter_free(NULL), 0);
    free(args);
    finish(w);
    expect_no_children();
}

Test(proc_pool, imap) { imap(true); }
Test(proc_pool, imap_unordered) { imap(false); }

/* ---- initializer, maxtasksperchild ---------------------------------------------- */

static void initializer(bool threads)
{
    corio_workers_opts o = {.size = 2, .threads = threads, .initializer = init,
                            .initarg = (void *)(intptr_t)42};
    corio_workers *w = corio_workers_new(&o);
    corio_future *f = corio_workers_submit(w, get_init, NULL, 0);

    cr_assert_eq(corio_future_wait(f, -1), 0);
    cr_assert_eq(result_int(f), 42);
    corio_future_free(f);
    finish(w);
    expect_no_children();
}

Test(proc_pool, initializer) { initializer(false); }
Test(proc_pool, initializer_threads) { initializer(true); }

Test(proc_pool, maxtasksperchild)
{
    corio_workers_opts o = {.size = 1, .maxtasksperchild = 2};
    corio_workers *w = corio_workers_new(&o);
    corio_future *f[6];
    pid_t pids[6];

    for (int i = 0; i < 6; i++)
        f[i] = corio_workers_submit(w, whoami, NULL, 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(corio_future_wait(f[i], -1), 0);
        memcpy(&pids[i], ((const corio_bytes *)corio_future_result(f[i]))->data,
               sizeof(pid_t));
        corio_future_free(f[i]);
    }
    /* two items a worker */
    cr_assert_eq(pids[0], pids[1]);
    cr_assert_neq(pids[1], pids[2]);
    cr_assert_eq(pids[2], pids[3]);
    cr_assert_neq(pids[3], pids[4]);
    finish(w);
    expect_no_children();
}

Test(proc_pool, maxtasksperchild_threads)
{
    corio_workers_opts o = {.size = 1, .threads = true, .maxtasksperchild = 1,
                            .initializer = init, .initarg = (void *)(intptr_t)7};
    corio_workers *w = corio_workers_new(&o);
    corio_future *f[5];

    for (int i = 0; i < 5; i++)
        f[i] = submit_int(w, twice, i);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(corio_future_wait(f[i], -1), 0);
        cr_assert_eq(result_int(f[i]), 2 * i);
        corio_future_free(f[i]);
    }
    finish(w);
}

