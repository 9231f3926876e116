/* tests/test_examples_asyncio.c -- the asyncio and gevent examples (seeds
 * A1-A3, A5-A10, A14, A15, A17, C2, C3) print what their seeds print, in order,
 * and take the time their seeds take.
 *
 * Each test runs a built example (CORIO_EXAMPLES_DIR/<name>) with its
 * stdout on a pipe and checks every line against a pattern (fnmatch: `*`
 * masks times, thread ids and addresses), then its exit status and, where
 * the seed's point is timing, how long it took: two 1 s sleeps in A3 take
 * about 1 s, not 2. A15 is sent SIGINT while its tasks sleep.
 *
 * Timing bounds are checked on the example's own TIME line where it has
 * one (its startup is not in it), else on the wall clock. Under valgrind
 * (scripts/test traces the children) only the lower bounds are kept, and C3
 * runs 5000 turns instead of 500000.
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
#include <stdarg.h>
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

#define MAX_ARGS 4
#define MAX_LINES 128

/* A running or finished example. */
struct run {
    pid_t pid;
    int fd;              /* its stdout */
    int64_t start;       /* corio_now() at fork */
    char out[16384];     /* everything it printed */
    size_t len;
    char *lines[MAX_LINES]; /* out, split (after finish) */
    int nlines;
    int status;          /* from waitpid */
    double wall;         /* seconds, fork to exit */
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

/* Start CORIO_EXAMPLES_DIR/name with the NULL-terminated arguments. */
static void start(struct run *r, const char *name, ...)
{
    char path[512];
    char *argv[MAX_ARGS + 2];
    int p[2], argc = 0;
    va_list ap;

    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/%s", CORIO_EXAMPLES_DIR, name);
    argv[argc++] = path;
    va_start(ap, name);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc <= MAX_ARGS;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", corio_strerror(errno));
    r->start = corio_now();
    r->pid = fork();
    cr_assert_neq(r->pid, -1, "fork: %s", corio_strerror(errno));
    if (r->pid == 0) {
        sigset_t none;

        /* A15 must die of, or handle, SIGINT as a shell would let it. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        dup2(p[1], STDOUT_FILENO);
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    r->fd = p[0];
}

/* Read what the example prints, for at most timeout_ms; stop early once
 * the output contains `until` (NULL: read to the end). Returns true if it
 * does (or reached the end, for NULL). */
static bool read_output(struct run *r, const char *until, int timeout_ms)
{
    int64_t deadline = corio_now() + timeout_ms * CORIO_MSEC;

    for (;;) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int64_t left = (deadline - corio_now()) / CORIO_MSEC;
        ssize_t n;

        if (until != NULL && strstr(r->out, until) != NULL)
            return true;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return false;
        cr_assert_lt(r->len, sizeof(r->out) - 1, "too much output");
        n = read(r->fd, r->out + r->len, sizeof(r->out) - 1 - r->len);
        if (n <= 0)
            return until == NULL;
        r->len += (size_t)n;
        r->out[r->len] = '\0';
    }
}

/* Read the rest, reap the example, split its output into lines (a last
 * line without its newline counts too). */
static void finish(struct run *r)
{
    char *s = r->out;

    cr_assert(read_output(r, NULL, 60000),
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

/* Run an example to its end. */
#define RUN(r, ...)                     \
    do {                                \
        start((r), __VA_ARGS__, NULL);  \
        finish(r);                      \
    } while (0)

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
    cr_assert_eq(r->nlines, n, "%d lines, not %d", r->nlines, n);
}

#define EXPECT_LINES(r, ...)                                            \
    do {                                                                \
        static const char *const pat_[] = {__VA_ARGS__};                \
        expect_lines((r), pat_, (int)(sizeof(pat_) / sizeof(pat_[0]))); \
    } while (0)

/* The seconds on the line starting with prefix ("TIME:"), which is
 * followed by a number. */
static double time_line(const struct run *r, const char *prefix)
{
    for (int i = 0; i < r->nlines; i++) {
        double t;

        if (strncmp(r->lines[i], prefix, strlen(prefix)) == 0 &&
            sscanf(r->lines[i] + strlen(prefix), "%lf", &t) == 1)
            return t;
    }
    cr_assert_fail("no \"%s\" line", prefix);
    return -1;
}

static void expect_between(double t, double lo, double hi, const char *what)
{
    cr_expect_geq(t, lo, "%s took %.3f s, less than %.2f s", what, t, lo);
    cr_expect_lt(t, hi + slack(), "%s took %.3f s, %.2f s or more", what, t,
                 hi + slack());
}

/* ---- A1, A2, A3, A5: the loop, hello, two hellos, await ---------------- */

Test(examples_asyncio, a1_event_loop, .timeout = 120)
{
    struct run r;
    int ms;

    RUN(&r, "a1_event_loop");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "event 1: key press 'a'",
                 "event 2: read request for data.txt: sent, not waiting for "
                 "the answer",
                 "event 3: mouse click at (10, 20)",
                 "event 4: key press 'b'",
                 "event 5: I/O complete: 1024 bytes of data.txt, * ms after "
                 "the request",
                 "no event left: the loop returned");
    cr_assert_eq(sscanf(r.lines[4], "event 5: I/O complete: 1024 bytes of "
                                    "data.txt, %d ms", &ms), 1);
    cr_expect(ms >= 100 && ms < 400 + slack() * 1000, "%d ms", ms);
}

Test(examples_asyncio, a2_hello, .timeout = 120)
{
    struct run r;

    start(&r, "a2_hello", NULL);
    /* "Hello world!" comes at once, "Hello again!" a second later. */
    cr_assert(read_output(&r, "Hello world!\n", 30000));
    cr_expect_null(strstr(r.out, "again"), "no pause before Hello again!");
    finish(&r);
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Hello world!", "Hello again!");
    expect_between(r.wall, 0.95, 1.6, "a2_hello");
}

Test(examples_asyncio, a3_two_hellos_one_second_one_thread, .timeout = 120)
{
    struct run r;
    unsigned long ident[4];

    RUN(&r, "a3_two_hellos");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Hello world! (<_MainThread(MainThread, started *)>)",
                 "Hello world! (<_MainThread(MainThread, started *)>)",
                 "Hello again! (<_MainThread(MainThread, started *)>)",
                 "Hello again! (<_MainThread(MainThread, started *)>)",
                 "TIME: * s for two 1 s sleeps: they overlapped, on 1 thread");
    /* The same thread on every line. */
    for (int i = 0; i < 4; i++) {
        const char *p = strstr(r.lines[i], "started ");

        cr_assert_not_null(p);
        cr_assert_eq(sscanf(p, "started %lu", &ident[i]), 1);
        cr_expect_eq(ident[i], ident[0], "line %d: another thread", i + 1);
    }
    /* Both sleeps overlap: about 1 s, not 2. */
    expect_between(time_line(&r, "TIME:"), 0.95, 1.6, "two 1 s hellos");
    expect_between(r.wall, 0.95, 1.6, "a3_two_hellos");
}

Test(examples_asyncio, a5_await_chain, .timeout = 120)
{
    struct run r;

    RUN(&r, "a5_await_chain");
    expect_exit(&r, 0);
    EXPECT_LINES(&r,
                 "1. await by calling: hello -> pause_for(1) -> corio_sleep",
                 "Hello world!", "Hello again!",
                 "2. await a task: hello joins a task running pause_for(1)",
                 "Hello world!", "Hello again!");
    expect_between(r.wall, 1.95, 2.8, "two awaited 1 s sleeps");
}

/* ---- A6-A10: coroutine, task, callback, result, sleep ------------------ */

Test(examples_asyncio, a6_coroutine_vs_task, .timeout = 120)
{
    struct run r;

    RUN(&r, "a6_coroutine_vs_task");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "waiting:2", "TIME:  0.*");
    expect_between(time_line(&r, "TIME:"), 0, 0.5, "do_work(2), no sleep");
}

Test(examples_asyncio, a7_create_task_pending_then_done, .timeout = 120)
{
    struct run r;

    RUN(&r, "a7_create_task");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "<Task pending name=Task-1 coro=do_work(2)>",
                 "Waiting:  2",
                 "<Task done name=Task-1 coro=do_work(2) result=NULL>",
                 "TIME:  0.*");
    expect_between(time_line(&r, "TIME:"), 0, 0.5, "do_work(2), no sleep");
}

Test(examples_asyncio, a8_done_callback, .timeout = 120)
{
    struct run r;

    RUN(&r, "a8_done_callback");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  2", "Callback:  Done after 2s", "TIME:  0.*");
}

Test(examples_asyncio, a9_task_result, .timeout = 120)
{
    struct run r;

    RUN(&r, "a9_task_result");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting 2", "Task ret: Done after 2s", "TIME: 0.*");
}

Test(examples_asyncio, a10_sleep_two_seconds, .timeout = 120)
{
    struct run r;

    start(&r, "a10_sleep", NULL);
    cr_assert(read_output(&r, "Waiting:  2\n", 30000));
    cr_expect_null(strstr(r.out, "Task ret"), "the result came at once");
    finish(&r);
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  2", "Task ret:  Done after 2s", "TIME:  2.*");
    expect_between(time_line(&r, "TIME:"), 1.95, 2.5, "sleep(2)");
}

/* ---- A14: the four states ---------------------------------------------- */

Test(examples_asyncio, a14_future_states, .timeout = 120)
{
    struct run r;

    RUN(&r, "a14_future_states");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Task-1 do_some_work(1): pending",
                 "Task-2 do_some_work(2): pending",
                 "Task-3 do_some_work(3): pending",
                 "Task-3 cancel(): True",
                 "Waiting:  1",
                 "Task-1 do_some_work(1): running",
                 "Waiting:  2",
                 "Task-2 do_some_work(2): running",
                 "Task-1 do_some_work(1): pending",
                 "Task-2 do_some_work(2): pending",
                 "Task-3 do_some_work(3): cancelled",
                 "Task-2 cancel(): True",
                 "Task-2: cancelled while it slept",
                 "Task-2 do_some_work(2): cancelled",
                 "Task-1 do_some_work(1): done, result 'Done after 1s'",
                 "future: pending",
                 "future: done, result 'ready'",
                 "other future cancel(): True",
                 "other future: cancelled");
    /* Task-1 slept its 1 s; the cancelled ones did not hold it up. */
    expect_between(r.wall, 0.95, 1.6, "a14_future_states");
}

/* ---- A15: Ctrl+C ------------------------------------------------------- */

/* Start a15_cancel (with arg, or none), wait until its three tasks sleep,
 * let them sleep for half a second, send SIGINT, and collect what it
 * printed. */
static void a15_interrupt(struct run *r, const char *arg)
{
    start(r, "a15_cancel", arg, NULL);
    cr_assert(read_output(r, "Waiting:  4\n", 30000),
              "the tasks did not start; printed:\n%s", r->out);
    usleep(500000);
    cr_assert_eq(kill(r->pid, SIGINT), 0);
    finish(r);
}

Test(examples_asyncio, a15_runs_to_the_end_without_a_signal, .timeout = 120)
{
    struct run r;

    RUN(&r, "a15_cancel");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s", "TIME:  4.*");
    /* Concurrent: about 4 s, not 1 + 2 + 4. */
    expect_between(time_line(&r, "TIME:"), 3.95, 4.6, "1, 2 and 4 s at once");
}

Test(examples_asyncio, a15_main_runs_to_the_end_without_a_signal,
     .timeout = 120)
{
    struct run r;

    RUN(&r, "a15_cancel", "--main");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "Task ret:  Done after 1s", "Task ret:  Done after 2s",
                 "Task ret:  Done after 4s", "TIME:  4.*");
    expect_between(time_line(&r, "TIME:"), 3.95, 4.6, "1, 2 and 4 s at once");
}

Test(examples_asyncio, a15_sigint_cancels_each_task, .timeout = 120)
{
    struct run r;

    a15_interrupt(&r, NULL);
    expect_exit(&r, 0); /* a clean cancellation: the documented 0 */
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "KeyboardInterrupt (SIGINT): the main task is cancelled. "
                 "All tasks:",
                 "task #* main running, cancelling (spawned at *run.c:*)",
                 "task #* do_some_work(1) pending (spawned at *a15_cancel.c:*)",
                 "task #* do_some_work(2) pending (spawned at *a15_cancel.c:*)",
                 "task #* do_some_work(4) pending (spawned at *a15_cancel.c:*)",
                 "task #* wait pending (spawned at *a15_cancel.c:*)",
                 "cancel do_some_work(1): True",
                 "cancel do_some_work(2): True",
                 "cancel do_some_work(4): True",
                 "cancel wait: True",
                 "do_some_work(1): cancelled",
                 "do_some_work(2): cancelled",
                 "do_some_work(4): cancelled",
                 "wait: cancelled",
                 "TIME:  0.*");
    /* It ended at the signal, not after the 4 s sleep. */
    expect_between(time_line(&r, "TIME:"), 0.45, 1.5, "cancelled at 0.5 s");
}

Test(examples_asyncio, a15_sigint_cancels_the_outer_task, .timeout = 120)
{
    struct run r;

    a15_interrupt(&r, "--main");
    expect_exit(&r, 0);
    EXPECT_LINES(&r, "Waiting:  1", "Waiting:  2", "Waiting:  4",
                 "KeyboardInterrupt (SIGINT): the main task is cancelled. "
                 "All tasks:",
                 "task #* main running, cancelling (spawned at *run.c:*)",
                 "task #* outer pending (spawned at *a15_cancel.c:*)",
                 "task #* do_some_work(1) pending (spawned at *a15_cancel.c:*)",
                 "task #* do_some_work(2) pending (spawned at *a15_cancel.c:*)",
                 "task #* do_some_work(4) pending (spawned at *a15_cancel.c:*)",
                 "cancel outer: True",
                 "do_some_work(1): cancelled",
                 "do_some_work(2): cancelled",
                 "do_some_work(4): cancelled",
                 "outer: cancelled, and so were the tasks it was joining",
                 "TIME:  0.*");
    expect_between(time_line(&r, "TIME:"), 0.45, 1.5, "cancelled at 0.5 s");
}

Test(examples_asyncio, a15_rejects_a_bad_argument, .timeout = 120)
{
    struct run r;

    RUN(&r, "a15_cancel", "--bogus");
    expect_exit(&r, 2);
    cr_expect_eq(r.nlines, 0);
}

/* ---- C2, C3: greenlets ------------------------------------------------- */

/* "<Greenlet "gN" at 0x...: f(5)> i": the name, the address and i. */
static void greenlet_line(const char *line, char *name, void **addr, int *i)
{
    cr_assert_eq(sscanf(line, "<Greenlet \"%2s\" at %p: f(5)> %d", name, addr,
                        i), 3, "not a greenlet line: \"%s\"", line);
}

/* The first 15 lines are f(5)'s, three greenlets' worth: line k comes from
 * g(who[k] + 1) and prints count[k]. Each greenlet keeps one address, and
 * the three have different ones. */
static void expect_greenlets(const struct run *r, const int *who,
                             const int *count)
{
    void *addr[3] = {NULL, NULL, NULL};

    cr_assert_geq(r->nlines, 15);
    for (int k = 0; k < 15; k++) {
        char name[3], want[16];
        void *a;
        int i;

        greenlet_line(r->lines[k], name, &a, &i);
        snprintf(want, sizeof(want), "g%d", who[k] + 1);
        cr_expect_str_eq(name, want, "line %d: %s, not %s", k + 1, name, want);
        cr_expect_eq(i, count[k], "line %d: %s printed %d, not %d", k + 1,
                     name, i, count[k]);
        if (addr[who[k]] == NULL)
            addr[who[k]] = a;
        cr_expect_eq(a, addr[who[k]], "line %d: %s moved", k + 1, name);
    }
    cr_expect_neq(addr[0], addr[1]);
    cr_expect_neq(addr[1], addr[2]);
}

Test(examples_asyncio, c2_greenlets_run_one_after_another, .timeout = 120)
{
    struct run r;
    int who[15], count[15];

    RUN(&r, "c2_greenlets_serial");
    expect_exit(&r, 0);
    cr_assert_eq(r.nlines, 15);
    for (int k = 0; k < 15; k++) {
        who[k] = k / 5;   /* g1 x5, g2 x5, g3 x5 */
        count[k] = k % 5; /* 0..4 each */
    }
    expect_greenlets(&r, who, count);
}

Test(examples_asyncio, c3_greenlets_take_turns_on_one_thread, .timeout = 120)
{
    struct run r;
    int who[15], count[15];
    const char *n = RUNNING_ON_VALGRIND ? "5000" : "500000";
    char want[128];
    int pid_a, pid_b;

    RUN(&r, "c3_greenlets_sleep0", n);
    expect_exit(&r, 0);
    cr_assert_eq(r.nlines, 18);
    for (int k = 0; k < 15; k++) {
        who[k] = k % 3;   /* g1 g2 g3, g1 g2 g3, ... */
        count[k] = k / 3; /* round by round */
    }
    expect_greenlets(&r, who, count);

    snprintf(want, sizeof(want), "3 greenlets x f(%s): %ld turns in * s, "
             "all in order", n, 3 * atol(n));
    cr_expect_eq(fnmatch(want, r.lines[15], 0), 0, "\"%s\"", r.lines[15]);
    cr_assert_eq(sscanf(r.lines[16], "g1, g2, g3 all ran on thread %d (main "
                                     "is %d): 1 OS thread", &pid_a, &pid_b), 2,
                 "\"%s\"", r.lines[16]);
    cr_expect_eq(pid_a, pid_b);
    cr_expect_eq(pid_a, r.pid, "the main thread's id is the pid");
    cr_expect_str_eq(r.lines[17], "/proc/self/status while they ran: "
                                  "Threads: 1");
}

/* A4: three wgets start in one order (the servers answer after 300, 100 and
 * 200 ms) and their header lines arrive in the order of the delays, each
 * host's block whole, with the servers' header lines. */
Test(examples_asyncio, a4_wget_results_arrive_out_of_order, .timeout = 120)
{
    struct run r;
    static const char *delays[3] = {"100 ms", "200 ms", "300 ms"};
    char hosts[3][64];

    start(&r, "a4_wget", NULL);
    finish(&r);
    expect_exit(&r, 0);
    cr_assert_eq(r.nlines, 3 + 3 * 5, "%s", r.out);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sscanf(r.lines[i], "wget %63s ...", hosts[i]), 1, "%s",
                     r.lines[i]);
    }
    /* by delay: the second host first, then the third, then the first */
    for (int k = 0; k < 3; k++) {
        const char *host = hosts[(k + 1) % 3];
        char want[128];

        for (int j = 0; j < 5; j++) {
            const char *line = r.lines[3 + k * 5 + j];

            cr_assert(strncmp(line, host, strlen(host)) == 0 &&
                      strncmp(line + strlen(host), " header > ", 10) == 0,
                      "line %d: %s (want %s)", 3 + k * 5 + j, line, host);
        }
        snprintf(want, sizeof(want), "%s header > X-Delay: %s", host, delays[k]);
        cr_assert_str_eq(r.lines[3 + k * 5 + 2], want);
        snprintf(want, sizeof(want), "%s header > HTTP/1.0 200 OK", host);
        cr_assert_str_eq(r.lines[3 + k * 5], want);
    }
    expect_between(r.wall, 0.25, 2.0, "a4_wget");
}

/* A17: a TCP, a UDP and a TLS server on 127.0.0.1, each answered; the TLS
 * client verified the certificate and agreed on ALPN. */
Test(examples_asyncio, a17_tcp_udp_and_tls_servers, .timeout = 120)
{
    struct run r;

    RUN(&r, "a17_transports");
    expect_exit(&r, 0);
    EXPECT_LINES(&r,
        "TCP server on 127.0.0.1:* (corio_server_start: create_server)",
        "  TCP client sent \"hello over TCP\", got back \"hello over TCP\"",
        "UDP server on 127.0.0.1:* (corio_udp_open: create_datagram_endpoint)",
        "  UDP client sent \"hello over UDP\", got back \"hello over UDP\" "
        "from 127.0.0.1:*",
        "TLS server on 127.0.0.1:* (corio_server_start with a TLS context: "
        "create_server(ssl=...))",
        "  TLS client: TLSv1.3, certificate verified for localhost, ALPN echo/1",
        "  TLS client sent \"hello over TLS\", got back \"hello over TLS\"");
}
