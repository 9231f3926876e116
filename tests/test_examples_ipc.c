/* tests/test_examples_ipc.c -- the examples of the Queue, the Pipe and the
 * prefork server (seeds P4, P5, P6) print what their seeds print, with the
 * real pids of their processes.
 *
 * Each test runs the built example (CORIO_EXAMPLES_DIR/<name>) through
 * popen, reads all it prints, and checks the lines: in order where the
 * seed's order is fixed, as sets where two processes interleave. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINES 64

struct output {
    char text[16384];
    char *lines[MAX_LINES];
    int n;
};

/* Run the example (with args, a string) to its end; expect exit 0. */
static void run(struct output *o, const char *name, const char *args)
{
    char cmd[512];
    size_t len = 0, r;
    FILE *f;
    int status;

    snprintf(cmd, sizeof(cmd), "%s/%s %s", CORIO_EXAMPLES_DIR, name, args);
    memset(o, 0, sizeof(*o));
    f = popen(cmd, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    while ((r = fread(o->text + len, 1, sizeof(o->text) - 1 - len, f)) > 0)
        len += r;
    status = pclose(f);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: status %#x; it printed:\n%s", name, status, o->text);
    for (char *s = strtok(o->text, "\n"); s != NULL; s = strtok(NULL, "\n")) {
        cr_assert_lt(o->n, MAX_LINES);
        o->lines[o->n++] = s;
    }
}

/* The index of the first line starting with prefix, or -1. */
static int find(const struct output *o, const char *prefix)
{
    for (int i = 0; i < o->n; i++)
        if (strncmp(o->lines[i], prefix, strlen(prefix)) == 0)
            return i;
    return -1;
}

static int pid_after(const struct output *o, const char *prefix)
{
    int i = find(o, prefix);

    cr_assert_geq(i, 0, "no line \"%s...\"", prefix);
    return atoi(o->lines[i] + strlen(prefix));
}

Test(examples_ipc, p4_queue, .timeout = 60)
{
    struct output o;

    run(&o, "p4_queue", "");
    cr_assert_eq(o.n, 8, "%d lines", o.n);
    int w = pid_after(&o, "Process to write: ");
    int r = pid_after(&o, "Process to read: ");
    cr_assert(w > 1 && r > 1 && w != r);
    const char *v[] = {"A", "B", "C"};
    int last_put = -1, last_get = -1;
    for (int i = 0; i < 3; i++) {
        char put[32], get[32];
        snprintf(put, sizeof(put), "Put %s to queue...", v[i]);
        snprintf(get, sizeof(get), "Get %s from queue.", v[i]);
        int p = find(&o, put), g = find(&o, get);
        cr_assert(p > last_put && g > last_get && g > p,
                  "%s: put at line %d, got at line %d", v[i], p, g);
        last_put = p;
        last_get = g;
    }
}

Test(examples_ipc, p5_pipe, .timeout = 60)
{
    struct output o;

    run(&o, "p5_pipe", "");
    const char *expect[] = {
        "Parent process ",
        "Child process ",
        "[42, None, 'hello']",
        "Child got 2, answers \"2 squared is 4\"",
        "Parent got \"2 squared is 4\"",
        "Child got 3, answers \"3 squared is 9\"",
        "Parent got \"3 squared is 9\"",
        "Child got 4, answers \"4 squared is 16\"",
        "Parent got \"4 squared is 16\"",
        "Child: the parent closed its end (EOF)",
        "Child exited with 0",
    };
    cr_assert_eq(o.n, 11, "%d lines", o.n);
    for (int i = 0; i < 11; i++)
        cr_assert_eq(strncmp(o.lines[i], expect[i], strlen(expect[i])), 0,
                     "line %d: \"%s\"", i + 1, o.lines[i]);
    int parent = pid_after(&o, "Parent process ");
    int child = pid_after(&o, "Child process ");
    cr_assert(parent > 1 && child > 1 && parent != child);
}

Test(examples_ipc, p6_prefork, .timeout = 60)
{
    struct output o;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = ncpu > 0 ? (int)ncpu : 1;

    /* It checks itself (exit 0: enough different workers answered). */
    run(&o, "p6_prefork", "");
    cr_assert_eq(o.n, workers + 3, "%d lines", o.n);
    for (int i = 0; i < workers; i++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "Worker %d (pid ", i);
        cr_assert_eq(strncmp(o.lines[i], prefix, strlen(prefix)), 0,
                     "line %d: \"%s\"", i + 1, o.lines[i]);
    }
    cr_assert_eq(strncmp(o.lines[workers], "Supervisor ", 11), 0);
    int distinct = 0;
    cr_assert_eq(sscanf(o.lines[workers + 1],
                        "Client: 16 connections, answered by %d", &distinct),
                 1, "\"%s\"", o.lines[workers + 1]);
    cr_assert_geq(distinct, workers > 1 ? 2 : 1);
    /* The pids the client lists are the workers'. */
    char *list = strchr(o.lines[workers + 1], ':');
    list = strchr(list + 1, ':');
    for (char *t = strtok(list + 1, " "); t != NULL; t = strtok(NULL, " ")) {
        char want[32];
        snprintf(want, sizeof(want), "(pid %s)", t);
        bool found = false;
        for (int i = 0; i < workers; i++)
            found |= strstr(o.lines[i], want) != NULL;
        cr_assert(found, "pid %s is no worker's", t);
    }
    cr_assert_str_eq(o.lines[workers + 2], "Supervisor: every worker stopped");
}
