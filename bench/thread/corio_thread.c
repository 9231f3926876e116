/* bench/thread/corio_thread.c -- corio's side of scripts/bench-thread.
 *
 *   corio_bench_thread handoff N      N messages through a corio_tchan of
 *                                     CAP slots, three ways: plain thread to
 *                                     plain thread, a task (on a loop
 *                                     thread) to a plain thread, and a
 *                                     plain thread to a task;
 *   corio_bench_thread pool N         a task awaits corio_pool_run of an
 *                                     empty job N times in a row: the
 *                                     round trip's latency.
 *
 * Each prints RESULT lines (bench/benchlib.py parses them):
 *   RESULT kind=handoff way=<thread-thread|task-thread|thread-task> n=N
 *          ns=<total> msgs_per_s=<rate>
 *   RESULT kind=pool n=N ns=<total> us_per_call=<latency> */
#include "corio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 128

static long n_msgs;
static corio_tchan *ch;

static void die(const char *what)
{
    fprintf(stderr, "corio_bench_thread: %s: %s\n", what,
            corio_strerror(errno));
    exit(1);
}

/* Sends 1..n, then closes. In a task or on a plain thread. */
static void *producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= n_msgs; i++)
        if (corio_tchan_send(ch, (void *)(intptr_t)i, -1) == -1)
            die("send");
    if (corio_tchan_close(ch) == -1)
        die("close");
    return NULL;
}

/* Receives until closed; returns the sum (checked by the caller). */
static void *consumer(void *arg)
{
    unsigned long sum = 0;
    void *item;

    (void)arg;
    while (corio_tchan_recv(ch, &item, -1) == 0)
        sum += (uintptr_t)item;
    if (errno != CORIO_ECLOSED)
        die("recv");
    return (void *)sum;
}

static void handoff(const char *way, bool producer_loop, bool consumer_loop)
{
    corio_thread_opts po = {.loop = producer_loop};
    corio_thread_opts co = {.loop = consumer_loop};
    corio_thread *p, *c;
    void *sum;
    int64_t t0, ns;

    ch = corio_tchan_new(CAP);
    if (ch == NULL)
        die("corio_tchan_new");
    t0 = corio_now();
    c = corio_thread_start(consumer, NULL, &co);
    p = corio_thread_start(producer, NULL, &po);
    if (c == NULL || p == NULL)
        die("corio_thread_start");
    if (corio_thread_join(p, NULL, -1) == -1 ||
        corio_thread_join(c, &sum, -1) == -1)
        die("corio_thread_join");
    ns = corio_now() - t0;
    if (corio_thread_error(p) != 0 || corio_thread_error(c) != 0 ||
        (unsigned long)sum != (unsigned long)n_msgs * (n_msgs + 1) / 2) {
        fprintf(stderr, "corio_bench_thread: %s: lost messages\n", way);
        exit(1);
    }
    if (corio_thread_free(p) == -1 || corio_thread_free(c) == -1 ||
        corio_tchan_free(ch) == -1)
        die("free");
    printf("RESULT kind=handoff way=%s n=%ld ns=%lld msgs_per_s=%.0f\n", way,
           n_msgs, (long long)ns, (double)n_msgs * CORIO_SECOND / ns);
}

static void *empty_job(void *arg)
{
    return arg;
}

static void *pool_main(void *arg)
{
    long n = (long)arg;
    int64_t t0;

    /* The first call makes the default pool: not timed. */
    if (corio_pool_run(NULL, empty_job, NULL, NULL, -1) == -1)
        die("corio_pool_run");
    t0 = corio_now();
    for (long i = 0; i < n; i++)
        if (corio_pool_run(NULL, empty_job, NULL, NULL, -1) == -1)
            die("corio_pool_run");
    printf("RESULT kind=pool n=%ld ns=%lld us_per_call=%.2f\n", n,
           (long long)(corio_now() - t0),
           (double)(corio_now() - t0) / n / CORIO_USEC);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 0;

    if (argc != 3 || n <= 0) {
        fprintf(stderr, "usage: corio_bench_thread handoff|pool N\n");
        return 2;
    }
    if (strcmp(argv[1], "handoff") == 0) {
        n_msgs = n;
        handoff("thread-thread", false, false);
        handoff("task-thread", true, false);
        handoff("thread-task", false, true);
    } else if (strcmp(argv[1], "pool") == 0) {
        if (corio_run(pool_main, (void *)n, NULL) == -1)
            die("corio_run");
    } else {
        fprintf(stderr, "corio_bench_thread: unknown workload %s\n", argv[1]);
        return 2;
    }
    return 0;
}
