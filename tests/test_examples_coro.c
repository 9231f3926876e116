/* tests/test_examples_coro.c -- the generator and coroutine examples (seed
 * ids G1-G5 and C1) print exactly what the seeds show.
 *
 * Each example is run as its own process (fork and exec of
 * CORIO_EXAMPLES_DIR/<name>, no shell), its standard output is read through
 * a pipe with the arrival time of every line, and it must exit with status 0.
 * Under the valgrind stage (--trace-children=yes) the examples run under
 * valgrind too, and an error in one makes its exit status 99. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CORIO_EXAMPLES_DIR
#error "tests/CMakeLists.txt defines CORIO_EXAMPLES_DIR"
#endif

#define MAX_LINES 64

/* One run of an example. */
struct run {
    char out[16384];            /* everything it wrote to stdout, 0-ended */
    size_t len;
    int nlines;
    int64_t line_ns[MAX_LINES]; /* when each line arrived, from the start */
    int64_t total_ns;           /* from fork to exit */
    pid_t pid;
};

/* Run CORIO_EXAMPLES_DIR/name to completion; fails the test unless it
 * exits with status 0. */
static void run_example(const char *name, struct run *r)
{
    char path[1024];
    int fd[2], status;
    int64_t start;

    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/%s", CORIO_EXAMPLES_DIR, name);
    cr_assert_eq(access(path, X_OK), 0, "%s: %s (is the example built?)", path,
                 corio_strerror(errno));
    cr_assert_eq(pipe2(fd, O_CLOEXEC), 0);
    fflush(NULL);
    start = corio_now();
    r->pid = fork();
    cr_assert_neq(r->pid, -1, "fork: %s", corio_strerror(errno));
    if (r->pid == 0) {
        /* dup2 clears close-on-exec on the new descriptor. */
        if (dup2(fd[1], STDOUT_FILENO) == -1)
            _exit(126);
        execl(path, name, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    for (;;) {
        ssize_t n = read(fd[0], r->out + r->len, sizeof(r->out) - 1 - r->len);
        int64_t now = corio_now() - start;

        if (n == -1 && errno == EINTR)
            continue;
        cr_assert_geq(n, 0, "read: %s", corio_strerror(errno));
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (r->out[r->len + i] == '\n' && r->nlines < MAX_LINES)
                r->line_ns[r->nlines++] = now;
        r->len += (size_t)n;
        cr_assert_lt(r->len, sizeof(r->out) - 1, "%s: too much output", name);
    }
    r->out[r->len] = 0;
    close(fd[0]);
    while (waitpid(r->pid, &status, 0) == -1)
        cr_assert_eq(errno, EINTR, "waitpid: %s", corio_strerror(errno));
    r->total_ns = corio_now() - start;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: exit status %d, signal %d; output:\n%s", name,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, r->out);
}

/* G1: the 15 lines of the seed, in order. */
Test(examples_coro, g1_producer_consumer, .timeout = 60)
{
    static struct run r;
    char want[2048];
    size_t n = 0;

    for (int i = 1; i <= 5; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n,
                              "[PRODUCER] Producing %d...\n"
                              "[CONSUMER] Consuming %d...\n"
                              "[PRODUCER] Consumer return: 200 OK\n",
                              i, i);
    run_example("g1_producer_consumer", &r);
    cr_assert_str_eq(r.out, want);
    cr_assert_eq(r.nlines, 15);
}

/* G2: send(None) -> 1, next -> 2, next -> StopIteration. */
Test(examples_coro, g2_num, .timeout = 60)
{
    static struct run r;

    run_example("g2_num", &r);
    cr_assert_str_eq(r.out, "1\n"
                            "2\n"
                            "StopIteration\n");
}

/* G3: send(None) -> 1, send(5) -> 5, send(100) -> 100. */
Test(examples_coro, g3_echo, .timeout = 60)
{
    static struct run r;

    run_example("g3_echo", &r);
    cr_assert_str_eq(r.out, "1\n"
                            "5\n"
                            "100\n");
}

/* G4: starting... 4, then res: None 4 after next, res: 10 4 after send. */
Test(examples_coro, g4_foo, .timeout = 60)
{
    static struct run r;

    run_example("g4_foo", &r);
    cr_assert_str_eq(r.out, "starting...\n"
                            "4\n"
                            "********************\n"
                            "res: None\n"
                            "4\n"
                            "********************\n"
                            "res: 10\n"
                            "4\n");
}

/* G5: the ten Chinese lines, each product a second after the previous one;
 * five one-second pauses in all. */
#define G5_PRODUCTS 5

Test(examples_coro, g5_chinese_producer, .timeout = 60)
{
    static struct run r;
    char want[2048];
    size_t n = 0;

    for (int i = 1; i <= G5_PRODUCTS; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n,
                              "生产者生产 %d 产品\n"
                              "消费者消费 %d 产品\n",
                              i, i);
    run_example("g5_chinese_producer", &r);
    cr_assert_str_eq(r.out, want);
    cr_assert_eq(r.nlines, 2 * G5_PRODUCTS);
    /* Each product line comes about a second after the one before it (a
     * little slack for the reader being scheduled late), and its
     * consumer's line right after it. */
    for (int i = 1; i < G5_PRODUCTS; i++) {
        int64_t gap = r.line_ns[2 * i] - r.line_ns[2 * (i - 1)];

        cr_assert_geq(gap, 900 * CORIO_MSEC, "product %d came %lld ms after %d",
                      i + 1, (long long)(gap / CORIO_MSEC), i);
        cr_assert_lt(gap, 2 * CORIO_SECOND, "product %d came %lld ms after %d",
                     i + 1, (long long)(gap / CORIO_MSEC), i);
    }
    /* nanosleep never returns early: at least G5_PRODUCTS seconds in all;
     * and well under G5_PRODUCTS + 2 (process start, valgrind). */
    cr_assert_geq(r.total_ns, G5_PRODUCTS * CORIO_SECOND, "took %lld ms",
                  (long long)(r.total_ns / CORIO_MSEC));
    cr_assert_lt(r.total_ns, (G5_PRODUCTS + 2) * CORIO_SECOND, "took %lld ms",
                 (long long)(r.total_ns / CORIO_MSEC));
}

/* C1: A's 1 2 3 and B's x y z interleave as 1 2 x y 3 z, and the one
 * thread they ran on is the process's main thread (its tid is the pid). */
Test(examples_coro, c1_interleave, .timeout = 60)
{
    static struct run r;
    char want[256];

    run_example("c1_interleave", &r);
    snprintf(want, sizeof(want),
             "1\n"
             "2\n"
             "x\n"
             "y\n"
             "3\n"
             "z\n"
             "A and B ran in one thread (tid %ld)\n",
             (long)r.pid);
    cr_assert_str_eq(r.out, want);
}

/* The echo example (the io layer's first program, in this file to share its
 * runner): a server and three concurrent clients, output in client order. */
Test(examples_coro, echo, .timeout = 60)
{
    static struct run r;
    char want[2048];
    size_t n = 0;

    n += (size_t)snprintf(want + n, sizeof(want) - n,
                          "echo server on 127.0.0.1 (a free port)\n");
    for (int c = 1; c <= 3; c++)
        for (int i = 1; i <= 3; i++)
            n += (size_t)snprintf(want + n, sizeof(want) - n,
                                  "client %d got: hello %d from client %d\n",
                                  c, i, c);
    snprintf(want + n, sizeof(want) - n, "server stopped\n");
    run_example("echo", &r);
    cr_assert_str_eq(r.out, want);
}

/* The chat example: each client hears the other two, in turn order. */
Test(examples_coro, chat, .timeout = 60)
{
    static struct run r;

    run_example("chat", &r);
    cr_assert_str_eq(r.out, "chat server on 127.0.0.1 (a free port)\n"
                            "client 1 heard \"> hello from client 2\"\n"
                            "client 1 heard \"> hello from client 3\"\n"
                            "client 2 heard \"> hello from client 1\"\n"
                            "client 2 heard \"> hello from client 3\"\n"
                            "client 3 heard \"> hello from client 1\"\n"
                            "client 3 heard \"> hello from client 2\"\n"
                            "server stopped\n");
}
