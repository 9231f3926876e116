/* tests/test_proc_process.c -- corio_fork and the Process object: start,
 * wait (plain, with a loop, in a task, with a deadline), exit codes and
 * signals, terminate/kill, daemon children dying with their parent, fork
 * from inside a running loop, and every error path. Each test checks that
 * it leaves no child behind (no zombie). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corio.h"
#include "corio/proc.h"
#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

/* No child of this process is left, reaped or not. */
static void expect_no_children(void)
{
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

/* Children that would outlive a failed test die with it. */
static const corio_process_opts dies_with_us = {.daemon = true};

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int sleep_forever(void *arg)
{
    for (;;)
        pause();
    return 0;
}

static int sleep_ms(void *arg)
{
    msleep((int64_t)(intptr_t)arg);
    return 0;
}

static int do_abort(void *arg)
{
    struct rlimit no_core = {0, 0};

    setrlimit(RLIMIT_CORE, &no_core);
    abort();
}

/* ---- Basics ------------------------------------------------------------ */

Test(proc_process, start_wait_exitcode, .timeout = 30)
{
    corio_process *p = corio_process_new(return_arg, (void *)(intptr_t)7, NULL);
    int code = -1;

    cr_assert_not_null(p);
    cr_assert_eq(corio_process_pid(p), 0);
    cr_assert(!corio_process_is_alive(p));
    cr_assert_eq(corio_process_start(p), 0);
    cr_assert_gt(corio_process_pid(p), 0);
    cr_assert_neq(corio_process_pid(p), getpid());
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert(!corio_process_is_alive(p));
    cr_assert_eq(corio_process_exitcode(p, &code), 0);
    cr_assert_eq(code, 7);
    /* waiting again, signalling a reaped child: nothing to do */
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(corio_process_kill(p), 0);
    cr_assert_eq(corio_process_free(p), 0);
    expect_no_children();
}

Test(proc_process, errors, .timeout = 30)
{
    corio_process *p;
    int code;

    errno = 0;
    cr_assert_null(corio_process_new(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    p = corio_process_new(sleep_forever, NULL, &dies_with_us);
    cr_assert_not_null(p);
    expect_fail(corio_process_wait(p, -1), ECHILD);
    expect_fail(corio_process_exitcode(p, &code), ECHILD);
    expect_fail(corio_process_terminate(p), ECHILD);
    expect_fail(corio_process_kill(p), ECHILD);
    expect_fail(corio_process_start(NULL), EINVAL);
    expect_fail(corio_process_wait(NULL, -1), EINVAL);
    cr_assert(!corio_process_is_alive(NULL));
    cr_assert_eq(corio_process_pid(NULL), 0);
    cr_assert_eq(corio_process_start(p), 0);
    expect_fail(corio_process_start(p), EALREADY);
    cr_assert(corio_process_is_alive(p));
    expect_fail(corio_process_exitcode(p, &code), EAGAIN);
    expect_fail(corio_process_free(p), EBUSY);
    cr_assert_eq(corio_process_kill(p), 0);
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(corio_process_free(p), 0);
    cr_assert_eq(corio_process_free(NULL), 0);
    expect_no_children();
}

Test(proc_process, terminate_kill_abort, .timeout = 30)
{
    corio_process *t = corio_process_new(sleep_forever, NULL, &dies_with_us);
    corio_process *k = corio_process_new(sleep_forever, NULL, &dies_with_us);
    corio_process *a = corio_process_new(do_abort, NULL, NULL);
    int code;

    cr_assert_eq(corio_process_start(t), 0);
    cr_assert_eq(corio_process_start(k), 0);
    cr_assert_eq(corio_process_start(a), 0);
    cr_assert_eq(corio_process_terminate(t), 0);
    cr_assert_eq(corio_process_kill(k), 0);
    cr_assert_eq(corio_process_wait(t, -1), 0);
    cr_assert_eq(corio_process_wait(k, -1), 0);
    cr_assert_eq(corio_process_wait(a, -1), 0);
    cr_assert_eq(corio_process_exitcode(t, &code), 0);
    cr_assert_eq(code, -SIGTERM);
    cr_assert_eq(corio_process_exitcode(k, &code), 0);
    cr_assert_eq(code, -SIGKILL);
    cr_assert_eq(corio_process_exitcode(a, &code), 0);
    cr_assert_eq(code, -SIGABRT);
    cr_assert_eq(corio_process_free(t), 0);
    cr_assert_eq(corio_process_free(k), 0);
    cr_assert_eq(corio_process_free(a), 0);
    expect_no_children();
}

/* A child that has ended but was never waited for is reaped by free. */
Test(proc_process, free_reaps, .timeout = 30)
{
    corio_process *p = corio_process_new(return_arg, NULL, NULL);

    cr_assert_eq(corio_process_start(p), 0);
    while (corio_process_is_alive(p))
        msleep(1);
    cr_assert_eq(corio_process_free(p), 0);
    expect_no_children();
}

/* ---- Waiting --------------------------------------------------------------- */

Test(proc_process, wait_deadline_plain, .timeout = 30)
{
    corio_process *p = corio_process_new(sleep_forever, NULL, &dies_with_us);
    int64_t t0;

    cr_assert_eq(corio_process_start(p), 0);
    t0 = corio_now();
    expect_fail(corio_process_wait(p, corio_now() + 100 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 100);
    cr_assert_lt(elapsed_ms(t0), 100 + test_slack_ms());
    expect_fail(corio_process_wait(p, corio_now() - 1), ETIMEDOUT);
    cr_assert(corio_process_is_alive(p));
    cr_assert_eq(corio_process_kill(p), 0);
    cr_assert_eq(corio_process_wait(p, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq(corio_process_free(p), 0);
    expect_no_children();
}

static int ticks;

static void *ticker(void *arg)
{
    while (corio_sleep(10 * MS) == 0)
        ticks++;
    return NULL;
}

static void *wait_in_task(void *arg)
{
    corio_process *p = corio_process_new(sleep_ms, (void *)(intptr_t)200, NULL);
    corio_task *t = corio_task_spawn(ticker, NULL, NULL);
    int code = -1;

    cr_assert_not_null(t);
    cr_assert_eq(corio_process_start(p), 0);
    /* a deadline first, while the ticker goes on */
    expect_fail(corio_process_wait(p, corio_now() + 50 * MS), ETIMEDOUT);
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(corio_process_exitcode(p, &code), 0);
    cr_assert_eq(code, 0);
    cr_assert_geq(ticks, 5, "the loop was blocked: %d ticks", ticks);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    cr_assert_eq(corio_process_free(p), 0);
    return NULL;
}

Test(proc_process, wait_in_task, .timeout = 30)
{
    cr_assert_eq(corio_run(wait_in_task, NULL, NULL), 0);
    expect_no_children();
}

static void *cancel_wait(void *arg)
{
    corio_process *p = arg;

    return (void *)(intptr_t)(corio_process_wait(p, -1) == -1 ? errno : 0);
}

static void *wait_cancelled(void *arg)
{
    corio_process *p = corio_process_new(sleep_forever, NULL, &dies_with_us);
    corio_task *t;
    void *res;

    cr_assert_eq(corio_process_start(p), 0);
    t = corio_task_spawn(cancel_wait, p, NULL);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, &res), ECANCELED);
    cr_assert(corio_process_is_alive(p));
    cr_assert_eq(corio_process_terminate(p), 0);
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(corio_process_free(p), 0);
    return NULL;
}

Test(proc_process, wait_cancelled, .timeout = 30)
{
    cr_assert_eq(corio_run(wait_cancelled, NULL, NULL), 0);
    expect_no_children();
}

/* A thread with a loop (not in a task): the loop runs while it waits. */
static void on_timer(void *arg)
{
    (*(int *)arg)++;
}

Test(proc_process, wait_on_loop_thread, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_process *p = corio_process_new(sleep_ms, (void *)(intptr_t)100, NULL);
    int fired = 0;

    cr_assert_eq(corio_loop_call_later(loop, 10 * MS, on_timer, &fired, NULL), 0);
    cr_assert_eq(corio_process_start(p), 0);
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(fired, 1);
    cr_assert_eq(corio_process_free(p), 0);
    loop_done(loop);
    expect_no_children();
}

/* ---- Fork and the loop -------------------------------------------------- */

static void *child_sleeps(void *arg)
{
    return corio_sleep(10 * MS) == 0 ? arg : NULL;
}

/* The child of a fork made inside a task: no loop, a new one works, and
 * SIGTERM (which corio_run blocks and forwards in the parent) kills it. */
static int child_in_fork(void)
{
    void *res = NULL;

    if (corio_run(child_sleeps, (void *)1, &res) != 0 || res != (void *)1)
        return 1;
    return 0;
}

static void *fork_in_task(void *arg)
{
    int fds[2], status;
    char b = 0;
    pid_t pid;
    corio_task *t;
    ssize_t n;

    cr_assert_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    /* the parent's loop waits on fds[0] across the fork */
    cr_assert_eq(corio_fd_wait(fds[1], CORIO_WRITE, -1), CORIO_WRITE);
    pid = corio_fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(child_in_fork());
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child status %#x", status);
    /* the child closed its copy of the epoll set without touching ours */
    cr_assert_eq(write(fds[1], "x", 1), 1);
    cr_assert_eq(corio_fd_wait(fds[0], CORIO_READ, corio_now() + CORIO_SECOND),
                 CORIO_READ);
    n = read(fds[0], &b, 1);
    cr_assert_eq(n, 1);
    corio_fd_forget(fds[0]);
    corio_fd_forget(fds[1]);
    close(fds[0]);
    close(fds[1]);
    (void)t;
    return NULL;
}

Test(proc_process, fork_in_task, .timeout = 30)
{
    cr_assert_eq(corio_run(fork_in_task, NULL, NULL), 0);
    expect_no_children();
}

static void *terminate_from_run(void *arg)
{
    corio_process *p = corio_process_new(sleep_forever, NULL, &dies_with_us);
    int code = 0;

    cr_assert_eq(corio_process_start(p), 0);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    cr_assert_eq(corio_process_terminate(p), 0);
    cr_assert_eq(corio_process_wait(p, corio_now() + 5 * CORIO_SECOND), 0);
    cr_assert_eq(corio_process_exitcode(p, &code), 0);
    cr_assert_eq(code, -SIGTERM, "exit code %d", code);
    cr_assert_eq(corio_process_free(p), 0);
    return NULL;
}

Test(proc_process, terminate_child_of_run, .timeout = 30)
{
    cr_assert_eq(corio_run(terminate_from_run, NULL, NULL), 0);
    expect_no_children();
}

/* stdio buffered before the fork is written once. */
Test(proc_process, stdio_flushed, .timeout = 30)
{
    char path[] = "/tmp/corio-proc-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    corio_process *p;
    char buf[64] = {0};

    cr_assert_neq(fd, -1);
    f = fdopen(fd, "w+");
    cr_assert_not_null(f);
    fputs("once\n", f); /* buffered */
    p = corio_process_new(return_arg, NULL, NULL);
    cr_assert_eq(corio_process_start(p), 0);
    cr_assert_eq(corio_process_wait(p, -1), 0);
    cr_assert_eq(corio_process_free(p), 0);
    fflush(f);
    rewind(f);
    cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 5);
    cr_assert_str_eq(buf, "once\n");
    fclose(f);
    unlink(path);
    expect_no_children();
}

/* ---- Daemons ------------------------------------------------------------ */

/* A middle process starts a child (daemon or not) that sleeps, sends its
 * pid, and exits at once. */
/* The middle's process object, reachable until it exits (no leak; not
 * static, so that the store is not optimised away). */
corio_process *test_middle_child;

static int middle(void *arg)
{
    int *fds = arg;
    corio_process_opts o = {.daemon = fds[2] != 0};
    corio_process *p = test_middle_child = corio_process_new(sleep_forever, NULL, &o);
    pid_t pid;

    if (p == NULL || corio_process_start(p) == -1)
        return 1;
    pid = corio_process_pid(p);
    if (write(fds[1], &pid, sizeof(pid)) != sizeof(pid))
        return 2;
    return 0; /* the object goes with the process */
}

/* True once pid has ended (gone, or a zombie of its new parent). */
static bool ended(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    char *rp;
    bool dead;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return true;
    dead = fgets(buf, sizeof(buf), f) == NULL ||
           ((rp = strrchr(buf, ')')) != NULL && (rp[2] == 'Z' || rp[2] == 'X'));
    fclose(f);
    return dead;
}

static pid_t start_middle(bool daemon, int *code)
{
    int fds[3];
    corio_process *m;
    pid_t pid = 0;

    cr_assert_eq(pipe(fds), 0);
    fds[2] = daemon;
    m = corio_process_new(middle, fds, NULL);
    cr_assert_eq(corio_process_start(m), 0);
    cr_assert_eq(read(fds[0], &pid, sizeof(pid)), sizeof(pid));
    cr_assert_eq(corio_process_wait(m, -1), 0);
    cr_assert_eq(corio_process_exitcode(m, code), 0);
    cr_assert_eq(corio_process_free(m), 0);
    close(fds[0]);
    close(fds[1]);
    return pid;
}

Test(proc_process, daemon_dies_with_parent, .timeout = 30)
{
    int code = -1;
    pid_t pid = start_middle(true, &code);
    int64_t t0 = corio_now();

    cr_assert_eq(code, 0);
    while (!ended(pid) && elapsed_ms(t0) < 5000)
        msleep(5);
    cr_assert(ended(pid), "daemon child %d outlived its parent", (int)pid);
    expect_no_children();
}

Test(proc_process, non_daemon_survives, .timeout = 30)
{
    int code = -1;
    pid_t pid = start_middle(false, &code);
    bool alive;

    msleep(100);
    alive = !ended(pid);
    kill(pid, SIGKILL);
    cr_assert_eq(code, 0);
    cr_assert(alive, "child %d died with its parent", (int)pid);
    expect_no_children();
}
