/* tests/helpers/proc_test.h -- forking helpers for the proc tests: run a
 * function in a child that ends with _exit(its return value) and dies with
 * the test process, and reap it with a bound (a child that hangs is killed
 * and reported). Include
 * criterion.h first. */
#ifndef CORIO_TEST_PROC_TEST_H
#define CORIO_TEST_PROC_TEST_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corio.h"

/* Fork; the child runs fn(arg) and _exits with its result (0..255). The
 * child is killed when the test process ends (PR_SET_PDEATHSIG), so a test
 * that fails or times out with children still running (a hung put, say)
 * leaves none behind. Call it from the test's own thread: the signal comes
 * when the forking thread ends. */
static inline pid_t fork_run(int (*fn)(void *arg), void *arg)
{
    pid_t parent = getpid(), pid;

    fflush(NULL);
    pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The parent may have ended before the prctl: then die at once. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
            _exit(127);
        _exit(fn(arg));
    }
    return pid;
}

/* Reap pid within timeout_ms (killing it past that); returns its wait
 * status, or -1 if it had to be killed. */
static inline int reap_within(pid_t pid, int timeout_ms)
{
    int status = 0;

    for (int waited = 0; waited <= timeout_ms; waited++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return status;
        cr_assert_neq(r, -1, "waitpid: %s", strerror(errno));
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Expect the child to exit 0 within timeout_ms. */
static inline void reap_ok(pid_t pid, int timeout_ms)
{
    int status = reap_within(pid, timeout_ms);

    cr_assert(status != -1, "child %d hung (killed)", (int)pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child %d: status %#x (exit %d, signal %d)", (int)pid, status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* A task that counts 10 ms ticks until stop is set (or it is cancelled):
 * it shows the loop kept running while another task waited. */
struct ticker {
    atomic_int ticks;
    bool stop;
};

static inline void *tick(void *arg)
{
    struct ticker *t = arg;

    while (!t->stop && corio_sleep(10 * CORIO_MSEC) == 0)
        atomic_fetch_add(&t->ticks, 1);
    return NULL;
}

#endif
