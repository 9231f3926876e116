/* bench/loop/uv_loop.c -- the libuv peer of the event-loop benchmarks (see
 * corio_loop.c, whose RESULT lines it mirrors).
 *
 * libuv has no tasks: the closest thing to "a task that sleeps 1 s" is one
 * uv_timer_t per task, and that is what (a) measures. (c) has no libuv
 * version (libuv has no channels or events between coroutines).
 *
 *   uv_bench_loop spawn N
 *       (a) N uv_timer_t (one calloc'd array), uv_timer_init + uv_timer_start
 *       at 1000 ms each; uv_run until they have all fired.
 *   uv_bench_loop timers N SEED
 *       (b) N timers at the schedule of common.h (whole milliseconds, libuv's
 *       unit). libuv arms timers from the loop's cached clock, which is
 *       stale while a long loop arms them all: uv_update_time before each
 *       uv_timer_start keeps "scheduled" honest (a careful libuv user does
 *       the same; corio and asyncio read the clock at every call_later). */
#define _GNU_SOURCE
#include <uv.h>

#include "common.h"

static void die(const char *what, int err)
{
    fprintf(stderr, "uv_bench_loop: %s: %s\n", what, uv_strerror(err));
    exit(1);
}

/* ---- (a) ------------------------------------------------------------------ */

static long spawn_fired;

static void on_spawn_timer(uv_timer_t *t)
{
    (void)t;
    spawn_fired++;
}

/* One round: n timers armed for 1 s, run to the end. Returns the arming
 * time in ns; *total_ns is to the last callback. */
static int64_t spawn_round(uv_loop_t *loop, uv_timer_t *ts, long n,
                           int64_t *total_ns)
{
    int64_t t0, t1;
    int rc;

    spawn_fired = 0;
    t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        rc = uv_timer_init(loop, &ts[i]);
        if (rc == 0)
            rc = uv_timer_start(&ts[i], on_spawn_timer, 1000, 0);
        if (rc != 0)
            die("uv_timer_start", rc);
    }
    t1 = bench_now_ns();
    uv_run(loop, UV_RUN_DEFAULT);
    *total_ns = bench_now_ns() - t0;
    if (spawn_fired != n) {
        fprintf(stderr, "uv_bench_loop: %ld of %ld timers fired\n",
                spawn_fired, n);
        exit(1);
    }
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&ts[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return t1 - t0;
}

static void run_spawn(long n)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t *ts;
    long hwm0, hwm1;
    int64_t spawn, total, spawn2, total2;

    hwm0 = bench_vm_kib("VmHWM:");
    ts = calloc((size_t)n, sizeof(*ts));
    if (ts == NULL)
        die("calloc", UV_ENOMEM);
    spawn = spawn_round(loop, ts, n, &total);
    hwm1 = bench_vm_kib("VmHWM:");
    spawn2 = spawn_round(loop, ts, n, &total2); /* memory reused */
    printf("RESULT impl=libuv workload=spawn n=%ld spawn_ns=%lld total_ns=%lld "
           "hwm0_kib=%ld hwm1_kib=%ld spawn2_ns=%lld\n",
           n, (long long)spawn, (long long)total, hwm0, hwm1,
           (long long)spawn2);
    free(ts);
}

/* ---- (b) ------------------------------------------------------------------ */

static int64_t *sched, *late;
static long fired;

static void on_timer(uv_timer_t *t)
{
    long i = (long)(intptr_t)t->data;

    late[i] = bench_now_ns() - sched[i];
    fired++;
}

static void run_timers(long n, uint64_t seed)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t *ts = calloc((size_t)n, sizeof(*ts));
    int64_t *delay_ms = calloc((size_t)n, sizeof(int64_t));
    struct bench_stats st;
    int64_t c0, c1, w0, w1;
    int rc;

    sched = calloc((size_t)n, sizeof(int64_t));
    late = calloc((size_t)n, sizeof(int64_t));
    if (ts == NULL || delay_ms == NULL || sched == NULL || late == NULL)
        die("calloc", UV_ENOMEM);
    bench_delays_ms(delay_ms, n, seed);
    c0 = bench_cpu_ns();
    w0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        ts[i].data = (void *)(intptr_t)i;
        uv_update_time(loop);
        sched[i] = bench_now_ns() + delay_ms[i] * 1000000;
        rc = uv_timer_init(loop, &ts[i]);
        if (rc == 0)
            rc = uv_timer_start(&ts[i], on_timer, (uint64_t)delay_ms[i], 0);
        if (rc != 0)
            die("uv_timer_start", rc);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    c1 = bench_cpu_ns();
    w1 = bench_now_ns();
    if (fired != n) {
        fprintf(stderr, "uv_bench_loop: %ld of %ld timers fired\n", fired, n);
        exit(1);
    }
    bench_stats(late, n, &st);
    printf("RESULT impl=libuv workload=timers n=%ld cpu_ns=%lld wall_ns=%lld "
           "late_mean_ns=%lld late_p50_ns=%lld late_p99_ns=%lld "
           "late_max_ns=%lld late_min_ns=%lld\n",
           n, (long long)(c1 - c0), (long long)(w1 - w0), (long long)st.mean,
           (long long)st.p50, (long long)st.p99, (long long)st.max,
           (long long)st.min);
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&ts[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    free(ts);
    free(delay_ms);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "spawn") == 0) {
        run_spawn(bench_count(argv[2]));
    } else if (argc == 4 && strcmp(argv[1], "timers") == 0) {
        run_timers(bench_count(argv[2]), (uint64_t)bench_count(argv[3]));
    } else {
        fprintf(stderr, "usage: uv_bench_loop spawn N | timers N SEED\n");
        return 2;
    }
    return 0;
}
