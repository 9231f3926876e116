/* bench/loop/corio_loop.c -- corio's side of the event-loop benchmarks: one
 * workload per process, chosen on the command line, printing "RESULT
 * key=value ..." lines that scripts/bench-loop (bench/loop/driver.py)
 * collects into its table. uv_loop.c is the libuv side, peers.py the
 * asyncio, uvloop and gevent side; the three measure the same things.
 *
 *   corio_bench_loop spawn N
 *       (a) inside corio_run, spawn N tasks (compact stacks:
 *       attr.stack_mode = CORIO_STACK_COMPACT, default 64 KiB size) that
 *       each corio_sleep(1 s), then corio_task_join_all them. Prints the wall time
 *       of the spawn loop, the time from its start until every task was
 *       joined, and the growth of the memory high-water mark (VmHWM).
 *   corio_bench_loop timers N SEED
 *       (b) on a new loop, N corio_loop_call_later callbacks at whole-millisecond
 *       delays 0..1000 drawn from SEED (the generator of driver.py); run the
 *       loop until they have all fired. Prints the process CPU time used
 *       (getrusage, user + sys, from the first call_later to the last
 *       callback) and every callback's lateness (actual - scheduled) as
 *       mean, p50, p99 and max.
 *   corio_bench_loop timers-tasks N SEED
 *       (b') the same schedule, but N tasks (compact stacks) that each
 *       corio_sleep their delay.
 *   corio_bench_loop pingpong chan1|chan0|event HANDOFFS REPS
 *       (c) two tasks pass a token back and forth, HANDOFFS hand-offs (one
 *       hand-off = one task giving the token to the other: a round trip is
 *       two), after a warm-up of 10,000; REPS timed runs in the process.
 *       chan1/chan0: two corio_chan of capacity 1 / 0 (ping sends on one,
 *       receives on the other). event: two corio_event (set, wait, clear).
 *
 * Times come from CLOCK_MONOTONIC; nothing is printed inside a timed part. */
#define _GNU_SOURCE
#include <corio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"

static void die(const char *what)
{
    fprintf(stderr, "corio_bench_loop: %s: %s\n", what, corio_strerror(errno));
    exit(1);
}

/* ---- (a) spawn N sleeping tasks ------------------------------------------- */

struct spawn_run {
    long n;
    int64_t spawn_ns;   /* the spawn loop */
    int64_t total_ns;   /* spawn start to the last join */
    int64_t spawn2_ns;  /* the spawn loop of a second round, memory reused */
    long hwm0_kib;      /* VmHWM before spawning */
    long hwm1_kib;      /* VmHWM after the joins */
};

static void *sleeper(void *arg)
{
    (void)arg;
    if (corio_sleep(CORIO_SECOND) == -1)
        return corio_task_fail(errno);
    return NULL;
}

/* One round: spawn n sleepers into ts, join them all. Returns the spawn
 * loop's time; *total_ns is to the last join. */
static int64_t spawn_round(corio_task **ts, long n, int64_t *total_ns)
{
    corio_task_attr attr = {.stack_mode = CORIO_STACK_COMPACT};
    int64_t t0, t1;

    t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        ts[i] = corio_task_spawn(sleeper, NULL, &attr);
        if (ts[i] == NULL)
            die("corio_task_spawn");
    }
    t1 = bench_now_ns();
    if (corio_task_join_all(ts, (size_t)n, NULL) == -1)
        die("corio_task_join_all");
    *total_ns = bench_now_ns() - t0;
    return t1 - t0;
}

static void *spawn_main(void *arg)
{
    struct spawn_run *r = arg;
    corio_task **ts = malloc((size_t)r->n * sizeof(*ts));
    int64_t total2;

    if (ts == NULL)
        die("malloc");
    /* The array (8 bytes a task, touched by the spawn loop) counts in the
     * memory growth, as Python's list of tasks does. */
    r->hwm0_kib = bench_vm_kib("VmHWM:");
    r->spawn_ns = spawn_round(ts, r->n, &r->total_ns);
    r->hwm1_kib = bench_vm_kib("VmHWM:");
    /* A second round in the same process: what a long-running program pays
     * once its memory has been touched (the first round's cost is mostly
     * the kernel's first-touch page faults). */
    r->spawn2_ns = spawn_round(ts, r->n, &total2);
    free(ts);
    return NULL;
}

static void run_spawn(long n)
{
    struct spawn_run r = {.n = n};

    if (corio_run(spawn_main, &r, NULL) == -1)
        die("corio_run");
    printf("RESULT impl=corio workload=spawn n=%ld spawn_ns=%lld total_ns=%lld "
           "hwm0_kib=%ld hwm1_kib=%ld spawn2_ns=%lld\n",
           n, (long long)r.spawn_ns, (long long)r.total_ns, r.hwm0_kib,
           r.hwm1_kib, (long long)r.spawn2_ns);
}

/* ---- (b) timers ------------------------------------------------------------ */

struct timer_run {
    long n;
    long fired;
    int64_t *sched;     /* when each should fire (clock at arming + delay) */
    int64_t *late;      /* actual - scheduled, per timer */
    int64_t *delay;     /* the schedule, in ns */
};

struct timer_slot {
    struct timer_run *run;
    long i;
};

static void on_timer(void *arg)
{
    struct timer_slot *s = arg;

    s->run->late[s->i] = bench_now_ns() - s->run->sched[s->i];
    s->run->fired++;
}

static void timer_run_init(struct timer_run *r, long n, uint64_t seed)
{
    r->n = n;
    r->fired = 0;
    r->sched = calloc((size_t)n, sizeof(int64_t));
    r->late = calloc((size_t)n, sizeof(int64_t));
    r->delay = calloc((size_t)n, sizeof(int64_t));
    if (r->sched == NULL || r->late == NULL || r->delay == NULL)
        die("calloc");
    bench_delays_ms(r->delay, n, seed);
    for (long i = 0; i < n; i++)
        r->delay[i] *= 1000000;
}

static void timer_report(const char *impl, struct timer_run *r, int64_t cpu_ns,
                         int64_t wall_ns)
{
    struct bench_stats st;

    if (r->fired != r->n) {
        fprintf(stderr, "corio_bench_loop: %ld of %ld timers fired\n", r->fired,
                r->n);
        exit(1);
    }
    bench_stats(r->late, r->n, &st);
    printf("RESULT impl=%s workload=timers n=%ld cpu_ns=%lld wall_ns=%lld "
           "late_mean_ns=%lld late_p50_ns=%lld late_p99_ns=%lld "
           "late_max_ns=%lld late_min_ns=%lld\n",
           impl, r->n, (long long)cpu_ns, (long long)wall_ns,
           (long long)st.mean, (long long)st.p50, (long long)st.p99,
           (long long)st.max, (long long)st.min);
}

static void run_timers(long n, uint64_t seed)
{
    struct timer_run r;
    struct timer_slot *slots = calloc((size_t)n, sizeof(*slots));
    corio_loop *loop = corio_loop_new();
    int64_t c0, c1, w0, w1;

    if (slots == NULL || loop == NULL)
        die("setup");
    timer_run_init(&r, n, seed);
    c0 = bench_cpu_ns();
    w0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        slots[i].run = &r;
        slots[i].i = i;
        r.sched[i] = bench_now_ns() + r.delay[i];
        if (corio_loop_call_later(loop, r.delay[i], on_timer, &slots[i], NULL) == -1)
            die("corio_loop_call_later");
    }
    if (corio_loop_run_until_idle(loop) == -1)
        die("corio_loop_run_until_idle");
    c1 = bench_cpu_ns();
    w1 = bench_now_ns();
    timer_report("corio", &r, c1 - c0, w1 - w0);
    corio_loop_close(loop);
}

/* (b') the same schedule as sleeping tasks. */
static struct timer_run *task_run;

static void *timer_task(void *arg)
{
    long i = (long)(intptr_t)arg;

    task_run->sched[i] = bench_now_ns() + task_run->delay[i];
    if (corio_sleep(task_run->delay[i]) == -1)
        return corio_task_fail(errno);
    task_run->late[i] = bench_now_ns() - task_run->sched[i];
    task_run->fired++;
    return NULL;
}

static void *timers_tasks_main(void *arg)
{
    corio_task_attr attr = {.stack_mode = CORIO_STACK_COMPACT};
    long n = task_run->n;
    corio_task **ts = malloc((size_t)n * sizeof(*ts));

    (void)arg;
    if (ts == NULL)
        die("malloc");
    for (long i = 0; i < n; i++) {
        ts[i] = corio_task_spawn(timer_task, (void *)(intptr_t)i, &attr);
        if (ts[i] == NULL)
            die("corio_task_spawn");
    }
    if (corio_task_join_all(ts, (size_t)n, NULL) == -1)
        die("corio_task_join_all");
    free(ts);
    return NULL;
}

static void run_timers_tasks(long n, uint64_t seed)
{
    struct timer_run r;
    int64_t c0, c1, w0, w1;

    timer_run_init(&r, n, seed);
    task_run = &r;
    c0 = bench_cpu_ns();
    w0 = bench_now_ns();
    if (corio_run(timers_tasks_main, NULL, NULL) == -1)
        die("corio_run");
    c1 = bench_cpu_ns();
    w1 = bench_now_ns();
    timer_report("corio_tasks", &r, c1 - c0, w1 - w0);
}

/* ---- (c) ping-pong ----------------------------------------------------------- */

enum pp_kind { PP_CHAN, PP_EVENT };

struct pingpong {
    enum pp_kind kind;
    corio_chan *ping, *pong;    /* PP_CHAN */
    corio_event *e1, *e2;       /* PP_EVENT: e1 ping -> pong, e2 back */
    long rounds;                /* round trips of the current run */
};

/* One round trip (2 hand-offs), from the ping side. */
static void ping_once(struct pingpong *p, long i)
{
    void *item;

    if (p->kind == PP_CHAN) {
        if (corio_chan_send(p->ping, (void *)(intptr_t)i, -1) == -1 ||
            corio_chan_recv(p->pong, &item, -1) == -1)
            die("ping");
        return;
    }
    if (corio_event_set(p->e1) == -1 || corio_event_wait(p->e2, -1) == -1 ||
        corio_event_clear(p->e2) == -1)
        die("ping");
}

/* The pong side, until ping closes its channel (or sets rounds to -1). */
static void *pong_task(void *arg)
{
    struct pingpong *p = arg;
    void *item;

    for (;;) {
        if (p->kind == PP_CHAN) {
            if (corio_chan_recv(p->ping, &item, -1) == -1)
                return NULL; /* closed: done */
            if (corio_chan_send(p->pong, item, -1) == -1)
                die("pong");
            continue;
        }
        if (corio_event_wait(p->e1, -1) == -1 || corio_event_clear(p->e1) == -1)
            die("pong");
        if (p->rounds < 0)
            return NULL;
        if (corio_event_set(p->e2) == -1)
            die("pong");
    }
}

struct pp_args {
    struct pingpong *p;
    long warmup, n;     /* round trips */
    int reps;
    int64_t *ns;        /* per rep */
};

static void *ping_task(void *arg)
{
    struct pp_args *a = arg;

    for (long i = 0; i < a->warmup; i++)
        ping_once(a->p, i);
    for (int r = 0; r < a->reps; r++) {
        int64_t t0 = bench_now_ns();

        for (long i = 0; i < a->n; i++)
            ping_once(a->p, i);
        a->ns[r] = bench_now_ns() - t0;
    }
    /* Stop pong. */
    if (a->p->kind == PP_CHAN) {
        corio_chan_close(a->p->ping);
    } else {
        a->p->rounds = -1;
        corio_event_set(a->p->e1);
    }
    return NULL;
}

static void *pingpong_main(void *arg)
{
    struct pp_args *a = arg;
    corio_task *ts[2];

    ts[0] = corio_task_spawn(pong_task, a->p, NULL);
    ts[1] = corio_task_spawn(ping_task, a, NULL);
    if (ts[0] == NULL || ts[1] == NULL || corio_task_join_all(ts, 2, NULL) == -1)
        die("pingpong tasks");
    return NULL;
}

static void run_pingpong(const char *kind, long handoffs, int reps)
{
    struct pingpong p = {0};
    struct pp_args a = {.p = &p, .warmup = 5000, .n = handoffs / 2,
                        .reps = reps};
    int64_t ns[64];

    if (reps < 1 || reps > 64)
        reps = a.reps = 1;
    a.ns = ns;
    if (strcmp(kind, "chan1") == 0 || strcmp(kind, "chan0") == 0) {
        size_t cap = kind[4] == '1' ? 1 : 0;

        p.kind = PP_CHAN;
        p.ping = corio_chan_new(cap);
        p.pong = corio_chan_new(cap);
        if (p.ping == NULL || p.pong == NULL)
            die("corio_chan_new");
    } else if (strcmp(kind, "event") == 0) {
        p.kind = PP_EVENT;
        p.e1 = corio_event_new();
        p.e2 = corio_event_new();
        if (p.e1 == NULL || p.e2 == NULL)
            die("corio_event_new");
    } else {
        fprintf(stderr, "corio_bench_loop: pingpong: chan1, chan0 or event\n");
        exit(2);
    }
    if (corio_run(pingpong_main, &a, NULL) == -1)
        die("corio_run");
    printf("RESULT impl=corio workload=pingpong kind=%s handoffs=%ld ns=", kind,
           2 * a.n);
    for (int r = 0; r < reps; r++)
        printf("%s%lld", r ? "," : "", (long long)ns[r]);
    printf("\n");
    corio_chan_free(p.ping);
    corio_chan_free(p.pong);
    corio_event_free(p.e1);
    corio_event_free(p.e2);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: corio_bench_loop spawn N\n"
            "       corio_bench_loop timers|timers-tasks N SEED\n"
            "       corio_bench_loop pingpong chan1|chan0|event HANDOFFS REPS\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "spawn") == 0)
        run_spawn(bench_count(argv[2]));
    else if (argc == 4 && strcmp(argv[1], "timers") == 0)
        run_timers(bench_count(argv[2]), (uint64_t)bench_count(argv[3]));
    else if (argc == 4 && strcmp(argv[1], "timers-tasks") == 0)
        run_timers_tasks(bench_count(argv[2]), (uint64_t)bench_count(argv[3]));
    else if (argc == 5 && strcmp(argv[1], "pingpong") == 0)
        run_pingpong(argv[2], bench_count(argv[3]), (int)bench_count(argv[4]));
    else
        usage();
    return 0;
}
