/* tests/test_proc_subprocess.c -- corio_subprocess_*: exec with argv, env
 * and cwd, the standard streams as pipes (a slow reader of a fast writer,
 * a fast writer to a slow reader), /dev/null and stderr into stdout,
 * communicate (with input, with a deadline), exit codes and signals, a
 * wait cancelled kills the child, an exec that fails, and no child or fd
 * left behind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corio.h"
#include "corio/proc.h"
#include "timing.h"
#include "loop_test.h"

#define MS CORIO_MSEC

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void expect_no_children(void)
{
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

static corio_subprocess *sh(const char *script, const corio_subprocess_opts *o)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    corio_subprocess *p = corio_subprocess_exec("sh", argv, o);

    cr_assert_not_null(p, "exec: %s", corio_strerror(errno));
    cr_assert_gt(corio_subprocess_pid(p), 0);
    return p;
}

static const corio_subprocess_opts piped = {
    .in = CORIO_STDIO_PIPE, .out = CORIO_STDIO_PIPE, .err = CORIO_STDIO_PIPE};

Test(proc_subprocess, echo_communicate, .timeout = 30)
{
    /* the thread's loop (communicate runs tasks on it) is not a leak */
    corio_loop *loop = corio_loop_current();
    int fds = count_fds();
    corio_subprocess_opts o = {.out = CORIO_STDIO_PIPE};
    char *argv[] = {"echo", "hello", NULL};
    corio_subprocess *p = corio_subprocess_exec("echo", argv, &o);
    corio_bytes out;
    int code = -1;

    cr_assert_not_null(p);
    cr_assert_null(corio_subprocess_stdin(p));
    cr_assert_not_null(corio_subprocess_stdout(p));
    cr_assert_null(corio_subprocess_stderr(p));
    cr_assert_eq(corio_subprocess_communicate(p, NULL, 0, &out, NULL, &code, -1), 0);
    cr_assert_eq(code, 0);
    cr_assert_eq(out.len, 6);
    cr_assert_eq(memcmp(out.data, "hello\n", 6), 0);
    free(out.data);
    cr_assert_eq(corio_subprocess_free(p), 0);
    cr_assert_eq(corio_subprocess_free(NULL), 0);
    cr_assert_eq(count_fds(), fds, "an fd is left");
    cr_assert_not_null(loop);
    expect_no_children();
}

static void *cat_roundtrip(void *arg)
{
    size_t n = 3 << 20;
    char *in = malloc(n);
    corio_bytes out, err;
    int code = -1;
    corio_subprocess *p = sh("cat; echo done >&2", &piped);

    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i * 7);
    cr_assert_eq(corio_subprocess_communicate(p, in, n, &out, &err, &code,
                                              corio_now() + 20 * CORIO_SECOND), 0,
                 "communicate: %s", corio_strerror(errno));
    cr_assert_eq(code, 0);
    cr_assert_eq(out.len, n);
    cr_assert_eq(memcmp(out.data, in, n), 0);
    cr_assert_eq(err.len, 5);
    cr_assert_eq(memcmp(err.data, "done\n", 5), 0);
    free(out.data);
    free(err.data);
    free(in);
    cr_assert_eq(corio_subprocess_free(p), 0);
    return NULL;
}

/* 3 MiB through cat: the child fills stdout while the parent still writes
 * stdin; communicate reads both at once. */
Test(proc_subprocess, communicate_input_in_task, .timeout = 30)
{
    cr_assert_eq(corio_run(cat_roundtrip, NULL, NULL), 0);
    expect_no_children();
}

Test(proc_subprocess, communicate_input_plain, .timeout = 30)
{
    cat_roundtrip(NULL);
    expect_no_children();
}

/* A fast writer (the child) and a slow reader (the parent): nothing lost. */
static void *slow_reader(void *arg)
{
    corio_subprocess_opts o = {.out = CORIO_STDIO_PIPE};
    corio_subprocess *p = sh("exec head -c 2000000 /dev/zero", &o);
    corio_stream *s = corio_subprocess_stdout(p);
    static char buf[65536];
    size_t total = 0;
    int code = -1;
    ssize_t n;

    while ((n = corio_stream_read(s, buf, sizeof(buf), -1)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            cr_assert_eq(buf[i], 0);
        total += (size_t)n;
        if (total < 600000)
            cr_assert_eq(corio_sleep(2 * MS), 0);
    }
    cr_assert_eq(n, 0);
    cr_assert_eq(total, 2000000);
    cr_assert_eq(corio_subprocess_wait(p, &code, -1), 0);
    cr_assert_eq(code, 0);
    cr_assert_eq(corio_subprocess_free(p), 0);
    return NULL;
}

Test(proc_subprocess, slow_reader_fast_writer, .timeout = 30)
{
    cr_assert_eq(corio_run(slow_reader, NULL, NULL), 0);
    expect_no_children();
}

/* A fast writer (the parent) and a slow reader (the child): backpressure,
 * then every byte arrives. */
static void *slow_child(void *arg)
{
    corio_subprocess_opts o = {.in = CORIO_STDIO_PIPE, .out = CORIO_STDIO_PIPE};
    corio_subprocess *p = sh("sleep 0.2; wc -c", &o);
    corio_stream *in = corio_subprocess_stdin(p);
    char *chunk = calloc(1, 100000);
    char line[64];
    int code = -1;

    for (int i = 0; i < 20; i++) {
        cr_assert_eq(corio_stream_write(in, chunk, 100000), 0);
        cr_assert_eq(corio_stream_drain(in, -1), 0);
    }
    cr_assert_eq(corio_subprocess_close_stdin(p, -1), 0);
    cr_assert_null(corio_subprocess_stdin(p));
    cr_assert_gt(corio_stream_readline(corio_subprocess_stdout(p), line,
                                       sizeof(line), -1), 0);
    cr_assert_eq(atoi(line), 2000000, "wc says %s", line);
    cr_assert_eq(corio_subprocess_wait(p, &code, -1), 0);
    cr_assert_eq(code, 0);
    free(chunk);
    cr_assert_eq(corio_subprocess_free(p), 0);
    return NULL;
}

Test(proc_subprocess, fast_writer_slow_reader, .timeout = 30)
{
    cr_assert_eq(corio_run(slow_child, NULL, NULL), 0);
    expect_no_children();
}

Test(proc_subprocess, env_cwd_stderr, .timeout = 30)
{
    char *env[] = {"FOO=bar", "PATH=/usr/bin:/bin", NULL};
    corio_subprocess_opts o = {.in = CORIO_STDIO_DEVNULL, .out = CORIO_STDIO_PIPE,
                               .err = CORIO_STDIO_PIPE, .env = env, .cwd = "/"};
    corio_subprocess *p = sh("echo $FOO; pwd; cat; echo oops >&2", &o);
    corio_bytes out, err;
    int code = -1;

    cr_assert_eq(corio_subprocess_communicate(p, NULL, 0, &out, &err, &code, -1), 0);
    cr_assert_eq(out.len, 6);
    cr_assert_eq(memcmp(out.data, "bar\n/\n", 6), 0);
    cr_assert_eq(err.len, 5);
    free(out.data);
    free(err.data);
    corio_subprocess_free(p);

    /* stderr into stdout */
    o = (corio_subprocess_opts){.out = CORIO_STDIO_PIPE, .err = CORIO_STDIO_STDOUT};
    p = sh("echo a; echo b >&2", &o);
    cr_assert_null(corio_subprocess_stderr(p));
    cr_assert_eq(corio_subprocess_communicate(p, NULL, 0, &out, NULL, &code, -1), 0);
    cr_assert_eq(out.len, 4);
    cr_assert_eq(memcmp(out.data, "a\nb\n", 4), 0);
    free(out.data);
    corio_subprocess_free(p);
    expect_no_children();
}

Test(proc_subprocess, codes_and_signals, .timeout = 30)
{
    corio_subprocess *p = sh("exit 3", NULL);
    int code = -1;
    int64_t t0;

    cr_assert_eq(corio_subprocess_wait(p, &code, -1), 0);
    cr_assert_eq(code, 3);
    cr_assert_eq(corio_subprocess_signal(p, SIGTERM), 0); /* reaped: nothing */
    corio_subprocess_free(p);

    p = sh("exec sleep 10", NULL);
    t0 = corio_now();
    expect_fail(corio_subprocess_wait(p, &code, corio_now() + 50 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_eq(corio_subprocess_signal(p, SIGTERM), 0);
    cr_assert_eq(corio_subprocess_wait(p, &code, -1), 0);
    cr_assert_eq(code, -SIGTERM);
    corio_subprocess_free(p);

    /* free kills one that still runs */
    p = sh("exec sleep 10", NULL);
    t0 = corio_now();
    cr_assert_eq(corio_subprocess_free(p), 0);
    cr_assert_lt(elapsed_ms(t0), test_slack_ms());
    expect_no_children();
}

Test(proc_subprocess, errors, .timeout = 30)
{
    char *argv[] = {"no-such-program-corio", NULL};
    corio_subprocess_opts bad = {.out = CORIO_STDIO_STDOUT};
    corio_subprocess_opts cwd = {.cwd = "/no/such/dir"};
    int fds = count_fds();

    errno = 0;
    cr_assert_null(corio_subprocess_exec("no-such-program-corio", argv, NULL));
    cr_assert_eq(errno, ENOENT);
    cr_assert_null(corio_subprocess_exec("true", (char *[]){"true", NULL}, &cwd));
    cr_assert_eq(errno, ENOENT);
    cr_assert_null(corio_subprocess_exec(NULL, argv, NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_subprocess_exec("true", NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_subprocess_exec("true", argv, &bad));
    cr_assert_eq(errno, EINVAL);
    expect_fail(corio_subprocess_wait(NULL, NULL, -1), EINVAL);
    expect_fail(corio_subprocess_signal(NULL, SIGTERM), EINVAL);
    expect_fail(corio_subprocess_communicate(NULL, NULL, 0, NULL, NULL, NULL, -1),
                EINVAL);
    cr_assert_eq(count_fds(), fds, "an fd is left");
    expect_no_children();
}

static pid_t victim;

static void *wait_forever(void *arg)
{
    corio_subprocess *p = arg;

    victim = corio_subprocess_pid(p);
    return (void *)(intptr_t)corio_subprocess_wait(p, NULL, -1);
}

static void *cancel_kills(void *arg)
{
    corio_subprocess *p = sh("exec sleep 10", NULL);
    corio_subprocess_opts o = {.out = CORIO_STDIO_PIPE};
    corio_subprocess *q;
    corio_task *t = corio_task_spawn(wait_forever, p, NULL);
    int code = 0;

    cr_assert_eq(corio_sleep(20 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    /* the child was killed and reaped by the cancelled wait */
    cr_assert_eq(kill(victim, 0), -1);
    cr_assert_eq(corio_subprocess_wait(p, &code, -1), 0);
    cr_assert_eq(code, -SIGKILL);
    corio_subprocess_free(p);

    /* communicate with a deadline: the child runs on */
    q = sh("exec sleep 10", &o);
    expect_fail(corio_subprocess_communicate(q, NULL, 0, NULL, NULL, NULL,
                                             corio_now() + 50 * MS), ETIMEDOUT);
    cr_assert_eq(kill(corio_subprocess_pid(q), 0), 0);
    corio_subprocess_free(q);
    return NULL;
}

Test(proc_subprocess, cancel_kills, .timeout = 30)
{
    cr_assert_eq(corio_run(cancel_kills, NULL, NULL), 0);
    expect_no_children();
}
