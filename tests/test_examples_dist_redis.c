/* tests/test_examples_dist_redis.c -- the task-queue examples on Redis:
 * d2_redis_workers (the seeds D1 and D2 with --url redis://..., a
 * redis-server of its own) prints what the seeds print, shares the work
 * between the two workers in about five seconds and leaves no server
 * behind; and d1_taskmanager / d2_taskworker against a redis-server of the
 * test's, with Redis's password as the authkey, right and wrong.
 *
 * The examples run through popen (sh -c); their output is read whole. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"
#include "redis_test.h"
#include "timing.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define EX CORIO_EXAMPLES_DIR

static char text[32768];
static int status;
static double wall;

/* Run the shell command; its output (stdout and stderr) in text. */
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    int64_t t0 = corio_now();
    size_t len = 0, k;
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (len < sizeof(text) - 1 &&
           (k = fread(text + len, 1, sizeof(text) - 1 - len, p)) > 0)
        len += k;
    text[len] = '\0';
    status = pclose(p);
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    wall = (double)(corio_now() - t0) / 1e9;
}

/* Lines of text that match the glob pattern. */
static int lines(const char *pattern)
{
    char copy[sizeof(text)];
    int n = 0;

    memcpy(copy, text, sizeof(copy));
    for (char *l = strtok(copy, "\n"); l != NULL; l = strtok(NULL, "\n"))
        n += fnmatch(pattern, l, 0) == 0;
    return n;
}

/* Every "Result: N * N = M" is right; returns how many there are. */
static int right_results(void)
{
    int n = 0;

    for (const char *r = strstr(text, "Result: "); r != NULL;
         r = strstr(r + 1, "Result: ")) {
        long a, b, m;

        cr_assert_eq(sscanf(r, "Result: %ld * %ld = %ld", &a, &b, &m), 3);
        cr_assert(a == b && a * a == m, "%.40s", r);
        n++;
    }
    return n;
}

Test(examples_dist_redis, d1_d2_on_redis_share_the_work, .timeout = 120)
{
    int port, w1, w2;

    sh("%s/d2_redis_workers 2>&1", EX);
    if (status != 0)
        fprintf(stderr, "%s", text);
    cr_assert_eq(status, 0);
    cr_assert_eq(sscanf(strstr(text, "redis-server on 127.0.0.1:"),
                        "redis-server on 127.0.0.1:%d", &port), 1);
    cr_assert_eq(lines("\\[master\\]  Put task *..."), 10);
    cr_assert_eq(right_results(), 10);
    cr_assert_eq(lines("\\[master\\]  master exit."), 1);
    w1 = lines("\\[worker1\\] run task * * *...");
    w2 = lines("\\[worker2\\] run task * * *...");
    cr_assert_eq(w1 + w2, 10, "%d + %d tasks", w1, w2);
    cr_assert(w1 >= 3 && w2 >= 3, "not shared: %d and %d", w1, w2);
    cr_assert_eq(lines("\\[worker?\\] worker exit."), 2);
    cr_assert_eq(lines("\\[redis\\]   redis-server stopped"), 1);
    /* The server is gone with it. */
    cr_assert(!redis_port_open(port));
    /* Ten one-second tasks, two workers: about five seconds. */
    cr_assert(wall >= 4.5, "%.2f s", wall);
    /* valgrind traces the master, the workers and redis-server: seconds
     * longer; the work is still shared (checked above). */
    if (!RUNNING_ON_VALGRIND)
        cr_assert(wall < 8.0 + test_extra_ms() / 1000.0, "%.2f s", wall);
}

Test(examples_dist_redis, d1_d2_authkey_is_the_password, .timeout = 120)
{
    struct redis_proc srv = {.password = "s3cret"};

    redis_start(&srv);
    /* A wrong key: refused, status 1. The right one: served. */
    sh("%s/d1_taskmanager --url redis://127.0.0.1:%d --authkey s3cret "
       "> /dev/null 2>&1 & sleep 0.3; "
       "%s/d2_taskworker --url redis://127.0.0.1:%d --authkey nope 2>&1; "
       "echo status $?; "
       "%s/d2_taskworker --url redis://127.0.0.1:%d/0 --authkey s3cret 2>&1; "
       "echo status $?; wait",
       EX, srv.port, EX, srv.port, EX, srv.port);
    redis_stop(&srv, SIGTERM);
    if (lines("status 0") != 1)
        fprintf(stderr, "%s", text);
    cr_assert_eq(lines("worker: the server refused the authkey*"), 1);
    cr_assert_eq(lines("status 1"), 1);
    cr_assert_eq(lines("run task * * *..."), 10);
    cr_assert_eq(lines("status 0"), 1);
    /* No server: a clear error, status 1. */
    sh("%s/d2_taskworker --url redis://127.0.0.1:%d 2>&1", EX, srv.port);
    cr_assert_eq(status, 1);
    cr_assert_eq(lines("worker: connect *: Connection refused"), 1);
}
