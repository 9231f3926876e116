/* tests/test_examples_proc.c -- the process examples (seeds P1-P3) print
 * what their seeds print, with real pids: P1's child names its parent, P2's
 * child line comes between "will start" and "end", P3 runs every task once
 * on at most as many workers as the pool has, none in the parent, and with
 * --size 5 (Pool(5)) the five tasks run at once: the whole run takes about
 * the longest task, not their sum.
 *
 * Each test runs a built example (CORIO_EXAMPLES_DIR/<name>) with stdout
 * on a pipe, reads it to the end and reaps it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

struct run {
    char out[8192];
    char *lines[64];
    int nlines;
    int status;
    double wall;
};

static void run(struct run *r, const char *name, const char *a1, const char *a2)
{
    char path[512];
    int p[2];
    pid_t pid;
    size_t len = 0;
    ssize_t n;
    int64_t t0 = corio_now();

    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/%s", CORIO_EXAMPLES_DIR, name);
    cr_assert_eq(pipe(p), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(path, path, a1, a2, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    while ((n = read(p[0], r->out + len, sizeof(r->out) - 1 - len)) > 0)
        len += (size_t)n;
    close(p[0]);
    cr_assert_eq(waitpid(pid, &r->status, 0), pid);
    r->wall = (double)(corio_now() - t0) / 1e9;
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
              "%s exited with status %#x; printed:\n%s", name, r->status, r->out);
    for (char *s = strtok(r->out, "\n"); s != NULL && r->nlines < 64;
         s = strtok(NULL, "\n"))
        r->lines[r->nlines++] = s;
}

/* The index of the first line that starts with prefix, or -1. */
static int find(const struct run *r, const char *prefix)
{
    for (int i = 0; i < r->nlines; i++)
        if (strncmp(r->lines[i], prefix, strlen(prefix)) == 0)
            return i;
    return -1;
}

Test(examples_proc, p1_fork, .timeout = 60)
{
    struct run r;
    int parent, me, child, cpid, ppid, i, j;

    run(&r, "p1_fork", NULL, NULL);
    cr_assert_eq(r.nlines, 3, "printed:\n%s", r.out);
    cr_assert_eq(sscanf(r.lines[0], "Process (%d) start...", &parent), 1);
    i = find(&r, "I (");
    j = find(&r, "I am child");
    cr_assert(i > 0 && j > 0, "printed:\n%s", r.out);
    cr_assert_eq(sscanf(r.lines[i], "I (%d) just created a child process (%d).",
                        &me, &child), 2);
    cr_assert_eq(sscanf(r.lines[j], "I am child process (%d) and my parent is %d.",
                        &cpid, &ppid), 2);
    cr_assert_eq(me, parent);
    cr_assert_eq(ppid, parent);
    cr_assert_eq(cpid, child);
    cr_assert_neq(child, parent);
}

Test(examples_proc, p2_process, .timeout = 60)
{
    struct run r;
    int parent, child;

    run(&r, "p2_process", NULL, NULL);
    cr_assert_eq(r.nlines, 4, "printed:\n%s", r.out);
    cr_assert_eq(sscanf(r.lines[0], "Parent process %d.", &parent), 1);
    cr_assert_str_eq(r.lines[1], "Process will start.");
    cr_assert_eq(sscanf(r.lines[2], "Run child process test (%d)...", &child), 1);
    cr_assert_neq(child, parent);
    cr_assert_str_eq(r.lines[3], "Process end.");
}

/* P3's lines: every task runs once, on a worker (not the parent), ends
 * after it began; returns how many workers ran tasks. */
static int check_p3(const struct run *r)
{
    int parent, pids[5], nworkers = 0;
    int distinct[5];

    cr_assert_eq(r->nlines, 13, "printed:\n%s", r->out);
    cr_assert_eq(sscanf(r->lines[0], "Parent process %d.", &parent), 1);
    /* The parent prints it after submitting; a worker may print first
     * (Python's workers start too slowly to show that race). */
    int w = find(r, "Waiting for all subprocesses done...");
    cr_assert(w >= 1 && w < 12, "printed:\n%s", r->out);
    cr_assert_str_eq(r->lines[12], "All subprocesses done.");
    for (int t = 0; t < 5; t++) {
        char run_prefix[32], end_prefix[32];
        int i, j, k;
        double secs;

        snprintf(run_prefix, sizeof(run_prefix), "Run task %d (", t);
        snprintf(end_prefix, sizeof(end_prefix), "Task %d runs ", t);
        i = find(r, run_prefix);
        j = find(r, end_prefix);
        cr_assert(i >= 1 && j > i, "task %d; printed:\n%s", t, r->out);
        cr_assert_eq(sscanf(r->lines[i] + strlen(run_prefix), "%d)...", &pids[t]), 1);
        cr_assert_eq(sscanf(r->lines[j] + strlen(end_prefix), "%lf seconds.", &secs), 1);
        cr_assert(secs >= 0 && secs < 0.6 + 0.5, "task %d: %f s", t, secs);
        cr_assert_neq(pids[t], parent);
        for (k = 0; k < nworkers && distinct[k] != pids[t]; k++)
            ;
        if (k == nworkers)
            distinct[nworkers++] = pids[t];
    }
    return nworkers;
}

Test(examples_proc, p3_pool_default, .timeout = 60)
{
    struct run r;
    cpu_set_t set;

    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    run(&r, "p3_pool", NULL, NULL);
    cr_assert_leq(check_p3(&r), CPU_COUNT(&set));
}

Test(examples_proc, p3_pool_5, .timeout = 60)
{
    struct run r;

    run(&r, "p3_pool", "--size", "5");
    check_p3(&r);
    /* all at once: the longest task (< 0.6 s) and the start, not a sum */
    cr_assert_lt(r.wall, 0.6 + 0.4 + (RUNNING_ON_VALGRIND ? 30 : test_slack_ms() / 1000.0));
}
