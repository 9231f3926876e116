/* C3: examples/c3_greenlets_sleep0.c -- gevent.sleep(0) makes greenlets take
 * turns, and they all share one OS thread.
 *
 * The seed (001) adds gevent.sleep(0) to C2's f:
 *
 *     def f(n):
 *         for i in range(n):
 *             print gevent.getcurrent(), i
 *             gevent.sleep(0)
 *
 * and the three greenlets now take turns: each prints one line and hands
 * the thread on. "Change the count to 500000 so that they run longer, and
 * the process manager shows a single thread."
 *
 * corio_sleep(0) is gevent.sleep(0): the task goes to the back of the
 * loop's ready queue, so the others run first; the loop takes them in
 * order, so the turns are exactly g1, g2, g3, g1, g2, g3, ... (gevent's own
 * order within a round may vary; corio's does not).
 *
 * The second part runs the 500000-iteration version, printing only a
 * summary: how many switches there were, whether the turns stayed in
 * order, the kernel thread id each greenlet ran on (gettid, checked at every
 * iteration), and the process's thread count read from /proc/self/status
 * while they run: the task manager's view. An optional argument changes the
 * count.
 *
 * Prints (addresses, times and ids vary):
 *     <Greenlet "g1" at 0x7f1c8a9fff00: f(5)> 0
 *     <Greenlet "g2" at 0x7f1c8a9dff00: f(5)> 0
 *     <Greenlet "g3" at 0x7f1c8a9bff00: f(5)> 0
 *     <Greenlet "g1" at 0x7f1c8a9fff00: f(5)> 1
 *     ...
 *     <Greenlet "g3" at 0x7f1c8a9bff00: f(5)> 4
 *     3 greenlets x f(500000): 1500000 turns in 0.62 s, all in order
 *     g1, g2, g3 all ran on thread 41377 (main is 41377): 1 OS thread
 *     /proc/self/status while they ran: Threads: 1
 */
#define _GNU_SOURCE
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Part 1: five turns each, printed ---------------------------------- */

static void *f(void *arg)
{
    int n = (int)(intptr_t)arg;
    corio_task *self = corio_task_self(); /* gevent.getcurrent() */

    for (int i = 0; i < n; i++) {
        printf("<Greenlet \"%s\" at %p: f(%d)> %d\n", corio_task_name(self),
               (void *)self, n, i);
        corio_sleep(0); /* gevent.sleep(0): the others go first */
    }
    return NULL;
}

/* ---- Part 2: 500000 turns each, summarised ----------------------------- */

/* What the greenlets of part 2 share (one thread: no lock needed). */
static struct {
    int last;          /* index of the greenlet that took the last turn */
    long turns;        /* turns taken, by all */
    long out_of_order; /* turns not taken right after the previous greenlet */
    pid_t tid[3];      /* the thread each ran on; -1 if it ever changed */
    int threads;       /* the process's thread count, read halfway */
} run = {.last = 2};

/* The "Threads:" line of /proc/self/status: what a task manager shows. */
static int os_threads(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(fp);
    return n;
}

struct quiet_arg {
    int index; /* 0, 1, 2 for g1, g2, g3 */
    long n;
};

static void *f_quiet(void *arg)
{
    struct quiet_arg *a = arg;

    run.tid[a->index] = gettid();
    for (long i = 0; i < a->n; i++) {
        if (run.last != (a->index + 2) % 3)
            run.out_of_order++;
        run.last = a->index;
        run.turns++;
        if (gettid() != run.tid[a->index])
            run.tid[a->index] = -1;
        if (i == a->n / 2 && a->index == 0)
            run.threads = os_threads();
        corio_sleep(0);
    }
    return NULL;
}

/* ---- main -------------------------------------------------------------- */

static const char *names[3] = {"g1", "g2", "g3"};

/* Spawn g1, g2, g3 running fn(args[i]), then join all three. Returns 0,
 * or -1 with errno. */
static int spawn_join(corio_fn fn, void **args)
{
    corio_task *g[3];
    int err;

    for (int i = 0; i < 3; i++) {
        corio_task_attr attr = {.name = names[i]};

        g[i] = corio_task_spawn(fn, args[i], &attr);
        if (g[i] == NULL) {
            err = errno;
            while (i-- > 0) { /* give up those already spawned */
                corio_task_cancel(g[i]);
                corio_task_detach(g[i]);
            }
            errno = err;
            return -1;
        }
    }
    return corio_task_join_all(g, 3, NULL); /* gevent.joinall */
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 500000;
    struct quiet_arg qa[3];
    void *args[3];
    corio_loop *loop = corio_loop_current();
    int64_t start;
    int one;

    if (n <= 0) {
        fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
        return 2;
    }
    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    for (int i = 0; i < 3; i++)
        args[i] = (void *)5;
    if (spawn_join(f, args) == -1) {
        fprintf(stderr, "part 1: %s\n", corio_strerror(errno));
        return 1;
    }

    for (int i = 0; i < 3; i++) {
        qa[i] = (struct quiet_arg){.index = i, .n = n};
        args[i] = &qa[i];
    }
    start = corio_now();
    if (spawn_join(f_quiet, args) == -1) {
        fprintf(stderr, "part 2: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("3 greenlets x f(%ld): %ld turns in %.2f s, %s\n", n, run.turns,
           (double)(corio_now() - start) / CORIO_SECOND,
           run.out_of_order == 0 ? "all in order" : "NOT in order");
    one = run.tid[0] == run.tid[1] && run.tid[1] == run.tid[2] &&
          run.tid[0] == gettid();
    if (one)
        printf("g1, g2, g3 all ran on thread %d (main is %d): 1 OS thread\n",
               (int)run.tid[0], (int)gettid());
    else
        printf("threads: g1 %d, g2 %d, g3 %d, main %d\n", (int)run.tid[0],
               (int)run.tid[1], (int)run.tid[2], (int)gettid());
    printf("/proc/self/status while they ran: Threads: %d\n", run.threads);
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
