/* tests/test_examples_a11_13.c -- the combinator examples (seeds A11, A12,
 * A13) print what their seeds print, in order, and take the time their
 * seeds take.
 *
 * Each test runs a built example (CORIO_EXAMPLES_DIR/<name>) with its
 * stdout on a pipe, notes when each line arrived, and checks every line
 * against a pattern (fnmatch: `*` masks the measured times), the exit
 * status, the TIME lines and the wall clock: the three tasks of A11 and A13
 * (1 s, 2 s, 4 s) take about 4 s together, not 7, and in A13 each result
 * arrives when its task ends. Under valgrind (the valgrind stage traces the
 * children) upper bounds get more slack.
 *
 * Every test has the same .timeout: Criterion 2.4.1's runner leaks when the
 * tests of one file have different timeouts and run with --jobs=2. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "timing.h"

#ifndef CORIO_EXAMPLES_DIR
#error "tests/CMakeLists.txt defines CORIO_EXAMPLES_DIR"
#endif

#define MAX_LINES 64
#define TIMEOUT 120

/* A running or finished example. */
struct run {
    pid_t pid;
    int fd;                     /* its stdout */
    int64_t start;              /* corio_now() at fork */
    char out[8192];             /* everything it printed */
    size_t len;
    int ncomplete;              /* complete lines seen while reading */
    double at[MAX_LINES];       /* when each line arrived, s from start */
    char *lines[MAX_LINES];     /* out, split (after finish) */
    int nlines;
    int status;                 /* from waitpid */
    double wall;                /* s, fork to exit */
};

/* Extra seconds on upper bounds, which are written for a plain build with
 * half a second or more to spare: a little more under sanitizers or
 * CORIO_TEST_SLACK_MS (helpers/timing.h; at most 0.2 s, so that a bound
 * stays below the next duration that matters, such as the 2 s result after
 * the 1 s one), and much more under valgrind, which is slow to start a
 * program and slower to run it (there only the lower bounds count). */
static double slack(void)
{
    int64_t extra = test_extra_ms() < 200 ? test_extra_ms() : 200;

    return RUNNING_ON_VALGRIND ? 30.0 : (double)extra / 1000.0;
}

static void start(struct run *r, const char *name, const char *arg)
{
    char path[512];
    char *argv[3] = {path, (char *)arg, NULL};
    int p[2];

    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/%s", CORIO_EXAMPLES_DIR, name);
    cr_assert_eq(access(path, X_OK), 0, "%s: %s (is the example built?)", path,
                 corio_strerror(errno));
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", corio_strerror(errno));
    fflush(NULL);
    r->start = corio_now();
    r->pid = fork();
    cr_assert_neq(r->pid, -1, "fork: %s", corio_strerror(errno));
    if (r->pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        dup2(p[1], STDOUT_FILENO); /* clears close-on-exec */
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    r->fd = p[0];
}

/* Read for at most timeout_ms, or until the output contains `until` (NULL:
 * to the end). Returns true if it does (or reached the end, for NULL). */
static bool read_output(struct run *r, const char *until, int timeout_ms)
{
    int64_t deadline = corio_now() + timeout_ms * CORIO_MSEC;

    for (;;) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int64_t left = (deadline - corio_now()) / CORIO_MSEC;
        double now;
        ssize_t n;

        if (until != NULL && strstr(r->out, until) != NULL)
            return true;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return false;
        cr_assert_lt(r->len, sizeof(r->out) - 1, "too much output");
        n = read(r->fd, r->out + r->len, sizeof(r->out) - 1 - r->len);
        if (n <= 0)
            return until == NULL;
        now = (double)(corio_now() - r->start) / CORIO_SECOND;
        for (ssize_t i = 0; i < n; i++)
            if (r->out[r->len + i] == '\n' && r->ncomplete < MAX_LINES)
                r->at[r->ncomplete++] = now;
        r->len += (size_t)n;
        r->out[r->len] = '\0';
    }
}

/* Read the rest, reap the example, split its output into lines. */
static void finish(struct run *r)
{
    char *s = r->out;

    cr_assert(read_output(r, NULL, 90000),
              "the example did not finish; it printed:\n%s", r->out);
    close(r->fd);
    cr_assert_eq(waitpid(r->pid, &r->status, 0), r->pid);
    r->wall = (double)(corio_now() - r->start) / CORIO_SECOND;
    while (*s != '\0') {
        char *nl = strchr(s, '\n');

        cr_assert_lt(r->nlines, MAX_LINES, "too many lines");
        r->lines[r->nlines++] = s;
        if (nl == NULL)
            break;
        *nl = '\0';
        s = nl + 1;
    }
}

static void expect_exit(const struct run *r, int code)
{
    cr_assert(WIFEXITED(r->status), "killed by signal %d",
              WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
    cr_assert_eq(WEXITSTATUS(r->status), code, "exit status %d, not %d",
                 WEXITSTATUS(r->status), code);
}

/* Every line matches its pattern, in order, and there are no more. */
static void expect_lines(const struct run *r, const char *const *pat, int n)
{
    for (int i = 0; i < n && i < r->nlines; i++)
        cr_expect_eq(fnmatch(pat[i], r->lines[i], 0), 0,
                     "line %d: \"%s\" does not match \"%s\"", i + 1,
                     r->lines[i], pat[i]);
    cr_assert_eq(r->nlines, n, "%d lines, not %d:\n%s", r->nlines, n, r->out);
}

#define EXPECT_LINES(r, ...)                                            \
    do {                                                                \
        static const char *const pat_[] = {__VA_ARGS__};                \
        expect_lines((r), pat_, (int)(sizeof(pat_) / sizeof(pat_[0]))); \
    } while (0)

/* The seconds on line i, which is "TIME:  <seconds>". */
static double time_on(const struct run *r, int i)
{
    double t = -1;

    cr_assert_lt(i, r->nlines);
    cr_assert_eq(sscanf(r->lines[i], "TIME: %lf", &t), 1,
                 "line %d is not a TIME line: %s", i + 1, r->lines[i]);
    return t;
}

static void expect_between(double t, double lo, double hi, const char *what)
{
    cr_expect_geq(t, lo, "%s: %.3f s, less than %.2f s", what, t, lo);
    cr_expect_lt(t, hi + slack(), "%s: %.3f s, %.2f s or more", what, t,
                 hi + slack());
}

/* ---- A11: wait(tasks) ------------------------------------------------------ */

Test(examples_a11_13, a11_wait_takes_four_seconds_not_seven, .timeout = TIMEOUT)
{
    static struct run r;

    start(&r, "a11_wait", NULL);
    finish(&r);
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s", "TIME:  4.*");
    expect_between(time_on(&r, 6), 3.9, 6.0, "TIME");
    expect_between(r.wall, 3.9, 6.0, "the run");
    /* The three start at once; the results come together, at the end. */
    cr_expect_lt(r.at[2], 1.0 + slack(), "Waiting lines at %.3f s", r.at[2]);
    cr_expect_geq(r.at[3], 3.9, "first result at %.3f s", r.at[3]);
}

/* ---- A12: nesting, four versions --------------------------------------------- */

Test(examples_a11_13, a12_nesting_four_versions, .timeout = TIMEOUT)
{
    static struct run r;

    start(&r, "a12_nesting", NULL);
    finish(&r);
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "1 s of the seed = 0.25 s here (--seconds: 1 s)",
                 "-- 1. main() awaits wait(tasks), prints the done set",
                 "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 /* the done set, in completion order */
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s", "TIME:  1.*",
                 "-- 2. main() awaits gather(*tasks), prints the results",
                 "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 /* the results, in argument order */
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s", "TIME:  1.*",
                 "-- 3. return await gather(*tasks): run returns the results",
                 "Waiting:  1", "Waiting:  2", "Waiting:  2",
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 2s",
                 "-- 4. return await wait(tasks): run returns (done, pending)",
                 "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s");
    /* 4 s of the seed at 0.25 s each: about 1 s per version, not 1.75. */
    expect_between(time_on(&r, 8), 0.98, 1.5, "version 1");
    expect_between(time_on(&r, 16), 0.98, 1.5, "version 2");
    expect_between(r.wall, 3.45, 5.5, "the four versions");
}

Test(examples_a11_13, a12_rejects_a_bad_argument, .timeout = TIMEOUT)
{
    static struct run r;

    start(&r, "a12_nesting", "--minutes");
    finish(&r);
    expect_exit(&r, 2);
    cr_expect_eq(r.nlines, 0);
}

/* ---- A13: as_completed --------------------------------------------------------- */

Test(examples_a11_13, a13_results_in_completion_order, .timeout = TIMEOUT)
{
    static struct run r;

    start(&r, "a13_as_completed", NULL);
    finish(&r);
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret: Done after 1s", "Task ret: Done after 2s",
                 "Task ret: Done after 4s", "TIME:  4.*");
    expect_between(time_on(&r, 6), 3.9, 6.0, "TIME");
    expect_between(r.wall, 3.9, 6.0, "the run");
    /* Each result as soon as its task is done. */
    expect_between(r.at[3], 0.95, 1.8, "the 1 s result");
    expect_between(r.at[4], 1.95, 2.8, "the 2 s result");
    expect_between(r.at[5], 3.9, 4.8, "the 4 s result");
}

Test(examples_a11_13, a13_sigint_cancels_the_rest, .timeout = TIMEOUT)
{
    static struct run r;
    double sent;

    start(&r, "a13_as_completed", NULL);
    cr_assert(read_output(&r, "Task ret: Done after 1s\n", 30000),
              "no first result; it printed:\n%s", r.out);
    sent = (double)(corio_now() - r.start) / CORIO_SECOND;
    cr_assert_eq(kill(r.pid, SIGINT), 0);
    finish(&r);
    expect_exit(&r, 1); /* it printed: Operation canceled */
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret: Done after 1s");
    cr_expect_lt(r.wall - sent, 0.8 + slack(), "it took %.3f s to stop",
                 r.wall - sent);
}
