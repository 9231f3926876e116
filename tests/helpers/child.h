/* tests/helpers/child.h -- run a function in a forked child process, for
 * death tests (a misuse that aborts) and for tests that send the child
 * signals: its stderr is captured, it can tell the parent it is ready, and
 * the parent waits for its end with a bound (a child that hangs is killed
 * and the test fails, instead of hanging until Criterion's timeout).
 *
 * Include criterion.h (or the shim) first. In the child: signals unblocked,
 * SIGINT and SIGTERM at their default action (a test worker may have
 * changed them), no core file. The child ends with _exit(0) if fn returns. */
#ifndef CORIO_TEST_CHILD_H
#define CORIO_TEST_CHILD_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct child_proc {
    pid_t pid;
    int err_fd;         /* read end of the child's stderr */
    int ready_fd;       /* read end: a byte per child_ready() */
    char err[16384];    /* what the child wrote to stderr */
    size_t len;
    int status;         /* from waitpid, once child_finish returned true */
    bool reaped;
};

/* The child's end of the ready pipe (in the child only). */
static int child_ready_wfd = -1;

/* In the child: tell the parent it is ready (child_wait_ready returns). */
static inline void child_ready(void)
{
    ssize_t r = write(child_ready_wfd, "r", 1);

    (void)r;
}

static inline int64_t child_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork; the child runs fn(arg) with stderr going to the parent. */
static inline void child_start(struct child_proc *c, void (*fn)(void *arg),
                               void *arg)
{
    int errp[2], readyp[2];

    memset(c, 0, sizeof(*c));
    cr_assert_eq(pipe(errp), 0, "pipe: %s", strerror(errno));
    cr_assert_eq(pipe(readyp), 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    c->pid = fork();
    cr_assert_neq(c->pid, -1, "fork: %s", strerror(errno));
    if (c->pid == 0) {
        struct rlimit no_core = {0, 0};
        sigset_t none;

        setrlimit(RLIMIT_CORE, &no_core);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close(errp[0]);
        close(readyp[0]);
        dup2(errp[1], STDERR_FILENO);
        close(errp[1]);
        child_ready_wfd = readyp[1];
        fn(arg);
        _exit(0);
    }
    close(errp[1]);
    close(readyp[1]);
    c->err_fd = errp[0];
    c->ready_fd = readyp[0];
}

/* Wait until the child called child_ready(), at most timeout_ms. */
static inline bool child_wait_ready(struct child_proc *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->ready_fd, .events = POLLIN};
    char b;
    int rc;

    do
        rc = poll(&p, 1, timeout_ms);
    while (rc == -1 && errno == EINTR);
    return rc == 1 && read(c->ready_fd, &b, 1) == 1;
}

/* True if the child is still running (not reaped). */
static inline bool child_alive(struct child_proc *c)
{
    if (c->reaped)
        return false;
    if (waitpid(c->pid, &c->status, WNOHANG) == c->pid)
        c->reaped = true;
    return !c->reaped;
}

/* Read the child's stderr to its end and reap it, at most timeout_ms in
 * all. Returns false (and kills the child) if it did not end in time. */
static inline bool child_finish(struct child_proc *c, int timeout_ms)
{
    int64_t deadline = child_now_ms() + timeout_ms;
    bool ended = false;

    for (;;) {
        struct pollfd p = {.fd = c->err_fd, .events = POLLIN};
        int64_t left = deadline - child_now_ms();
        ssize_t n;

        if (left <= 0)
            break;
        if (poll(&p, 1, (int)left) <= 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (c->len + 1 >= sizeof(c->err)) {
            char sink[512];

            n = read(c->err_fd, sink, sizeof(sink)); /* keep the pipe open */
        } else {
            n = read(c->err_fd, c->err + c->len, sizeof(c->err) - 1 - c->len);
            if (n > 0)
                c->len += (size_t)n;
        }
        if (n == 0) {
            ended = true;
            break;
        }
        if (n < 0 && errno != EINTR)
            break;
    }
    c->err[c->len] = '\0';
    /* stderr closed: the child is ending (or closed it itself). */
    while (ended && !c->reaped) {
        pid_t r = waitpid(c->pid, &c->status, WNOHANG);

        if (r == c->pid) {
            c->reaped = true;
            break;
        }
        if (r == -1 || child_now_ms() >= deadline) {
            ended = false;
            break;
        }
        usleep(1000);
    }
    if (!ended && !c->reaped) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &c->status, 0);
        c->reaped = true;
    }
    close(c->err_fd);
    close(c->ready_fd);
    return ended;
}

/* Describe a wait status, for messages. */
static inline const char *child_status_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "status %#x", status);
    return buf;
}

#endif
