/* tests/test_proc_pipe.c -- the duplex Pipe (corio_pipe_*) and shared
 * memory by name (corio_shm_*): framing and sizes, both directions, a full
 * ring's wait and wake-up across processes, the end of the stream when the
 * other end is closed or its process dies, deadlines, tasks that wait while
 * others run, and every error. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corio.h"
#include "corio/ipc.h"
#include "loop_test.h"
#include "proc_test.h"
#include "timing.h"

#define MS CORIO_MSEC

static void pipe_pair(corio_pipe **a, corio_pipe **b, size_t ring)
{
    corio_pipe_opts o = {.ring_size = ring};

    cr_assert_eq(corio_pipe_new(a, b, &o), 0, "corio_pipe_new: %s",
                 corio_strerror(errno));
}

/* ---- One process -------------------------------------------------------- */

Test(proc_pipe, framing_both_ways, .timeout = 30)
{
    corio_pipe *a, *b;
    char buf[64];

    pipe_pair(&a, &b, 0);
    cr_assert_not(corio_pipe_poll(b));
    cr_assert_eq(corio_pipe_send(a, "hello", 5, -1), 0);
    cr_assert_eq(corio_pipe_send(a, "", 0, -1), 0);
    cr_assert_eq(corio_pipe_send(a, NULL, 0, -1), 0);
    cr_assert_eq(corio_pipe_send(a, "0123456789", 10, -1), 0);
    cr_assert(corio_pipe_poll(b));
    cr_assert_eq(corio_pipe_recv(b, buf, sizeof(buf), -1), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    cr_assert_eq(corio_pipe_recv(b, buf, sizeof(buf), -1), 0);
    cr_assert_eq(corio_pipe_recv(b, NULL, 0, -1), 0);
    expect_fail(corio_pipe_recv(b, buf, 9, -1), EMSGSIZE);
    cr_assert_eq(corio_pipe_recv(b, buf, 10, -1), 10);
    cr_assert_eq(memcmp(buf, "0123456789", 10), 0);
    cr_assert_not(corio_pipe_poll(b));
    /* The other way. */
    cr_assert_eq(corio_pipe_send(b, "back", 4, -1), 0);
    cr_assert_not(corio_pipe_poll(b));
    cr_assert_eq(corio_pipe_recv(a, buf, sizeof(buf), -1), 4);
    cr_assert_eq(memcmp(buf, "back", 4), 0);
    cr_assert_eq(corio_pipe_close(a), 0);
    cr_assert_eq(corio_pipe_close(b), 0);
    cr_assert_eq(corio_pipe_close(NULL), 0);
}

Test(proc_pipe, wraps_around_the_ring, .timeout = 30)
{
    corio_pipe *a, *b;
    unsigned char out[1000], in[1000];

    pipe_pair(&a, &b, 4096);
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i * 131) % sizeof(out);

        for (size_t j = 0; j < n; j++)
            out[j] = (unsigned char)(i + j);
        cr_assert_eq(corio_pipe_send(a, out, n, -1), 0);
        cr_assert_eq(corio_pipe_recv(b, in, sizeof(in), -1), (ssize_t)n);
        cr_assert_eq(memcmp(in, out, n), 0, "message %d", i);
    }
    cr_assert_eq(corio_pipe_close(a), 0);
    cr_assert_eq(corio_pipe_close(b), 0);
}

/* Both ends used here, then by a child (which moves the counters on past a
 * whole ring), then here again: what each end remembers of the other side's
 * counter is a bound only, never trusted past the shared counters (a stale
 * one would read old bytes as a message, or write over unread ones). */
struct turns {
    corio_pipe *a, *b;
};

static int ring_laps(corio_pipe *a, corio_pipe *b, int first, int count)
{
    unsigned char out[700], in[700];

    for (int i = first; i < first + count; i++) {
        size_t n = (size_t)(i * 37) % sizeof(out);

        memset(out, i & 0xff, n);
        if (corio_pipe_send(a, out, n, -1) != 0 ||
            corio_pipe_recv(b, in, sizeof(in), -1) != (ssize_t)n ||
            memcmp(in, out, n) != 0)
            return 1;
    }
    return corio_pipe_poll(b) ? 2 : 0;
}

/* The child: takes what was left, laps the ring, then fills it (100-byte
 * messages until one finds no room) and exits with how many it put. */
static int laps_child_first(void *arg)
{
    struct turns *t = arg;
    unsigned char in[16], out[100];
    int n = 0;

    if (corio_pipe_recv(t->b, in, sizeof(in), -1) != 4 ||
        memcmp(in, "left", 4) != 0 || ring_laps(t->a, t->b, 100, 50) != 0)
        return 255;
    for (;; n++) {
        memset(out, n + 1, sizeof(out));
        if (corio_pipe_send(t->a, out, sizeof(out), 0) == -1)
            return errno == ETIMEDOUT ? n : 254;
    }
}

Test(proc_pipe, ends_used_in_turn_by_two_processes, .timeout = 30)
{
    struct turns t;
    unsigned char in[16];

    pipe_pair(&t.a, &t.b, 4096);
    cr_assert_eq(ring_laps(t.a, t.b, 0, 7), 0);
    /* leave one message unread, then the child takes it and goes on */
    cr_assert_eq(corio_pipe_send(t.a, "left", 4, -1), 0);
    pid_t pid = fork_run(laps_child_first, &t);
    int status, put;
    unsigned char full[100];

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    put = WEXITSTATUS(status);
    cr_assert(put > 10 && put < 254, "the child put %d", put);
    /* full: no room for ours; the child's messages intact, then nothing */
    expect_fail(corio_pipe_send(t.a, full, sizeof(full), 0), ETIMEDOUT);
    for (int i = 0; i < put; i++) {
        cr_assert_eq(corio_pipe_recv(t.b, full, sizeof(full), -1), 100);
        for (int j = 0; j < 100; j++)
            cr_assert_eq(full[j], (unsigned char)(i + 1), "message %d", i);
    }
    expect_fail(corio_pipe_recv(t.b, in, sizeof(in), corio_now() + 50 * MS),
                ETIMEDOUT);
    cr_assert_eq(ring_laps(t.a, t.b, 200, 50), 0);
    cr_assert_not(corio_pipe_poll(t.b));
    cr_assert_eq(corio_pipe_send(t.a, "end", 3, -1), 0);
    cr_assert_eq(corio_pipe_recv(t.b, in, sizeof(in), -1), 3);
    cr_assert_eq(memcmp(in, "end", 3), 0);
    cr_assert_eq(corio_pipe_close(t.a), 0);
    cr_assert_eq(corio_pipe_close(t.b), 0);
}

Test(proc_pipe, errors_and_deadlines, .timeout = 30)
{
    corio_pipe *a, *b;
    char buf[4096];
    corio_pipe_opts big = {.ring_size = (1u << 30) + 1};

    expect_fail(corio_pipe_new(NULL, &b, NULL), EINVAL);
    expect_fail(corio_pipe_new(&a, NULL, NULL), EINVAL);
    expect_fail(corio_pipe_new(&a, &b, &big), EINVAL);
    pipe_pair(&a, &b, 4096);
    expect_fail(corio_pipe_send(NULL, "x", 1, -1), EINVAL);
    expect_fail(corio_pipe_send(a, NULL, 1, -1), EINVAL);
    expect_fail(corio_pipe_recv(NULL, buf, 1, -1), EINVAL);
    expect_fail(corio_pipe_recv(a, NULL, 1, -1), EINVAL);
    cr_assert_not(corio_pipe_poll(NULL));
    /* 4096-byte ring: a message takes its length + 8. */
    expect_fail(corio_pipe_send(a, buf, 4089, -1), EMSGSIZE);
    cr_assert_eq(corio_pipe_send(a, buf, 4088, -1), 0);
    int64_t t0 = corio_now();
    expect_fail(corio_pipe_send(a, buf, 1, t0 + 50 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_leq(elapsed_ms(t0), 50 + test_slack_ms());
    cr_assert_eq(corio_pipe_recv(b, buf, sizeof(buf), -1), 4088);
    t0 = corio_now();
    expect_fail(corio_pipe_recv(b, buf, sizeof(buf), t0 + 50 * MS),
                ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    expect_fail(corio_pipe_recv(b, buf, sizeof(buf), 0), ETIMEDOUT);
    cr_assert_eq(corio_pipe_close(a), 0);
    cr_assert_eq(corio_pipe_close(b), 0);
}

Test(proc_pipe, eof_after_close_in_one_process, .timeout = 30)
{
    corio_pipe *a, *b;
    char buf[8];

    pipe_pair(&a, &b, 0);
    cr_assert_eq(corio_pipe_send(a, "last", 4, -1), 0);
    cr_assert_eq(corio_pipe_close(a), 0);
    /* What was sent first is still received, then the end. */
    cr_assert_eq(corio_pipe_recv(b, buf, sizeof(buf), -1), 4);
    expect_fail(corio_pipe_recv(b, buf, sizeof(buf), -1), CORIO_EEOF);
    expect_fail(corio_pipe_recv(b, buf, sizeof(buf), -1), CORIO_EEOF);
    cr_assert_eq(corio_pipe_close(b), 0);
}

/* ---- Across processes --------------------------------------------------- */

struct ends {
    corio_pipe *a, *b;
};

/* Child: keeps b, sends every message back. */
static int echo_child(void *arg)
{
    struct ends *e = arg;
    char buf[70000];
    ssize_t n;

    corio_pipe_close(e->a);
    while ((n = corio_pipe_recv(e->b, buf, sizeof(buf), -1)) >= 0)
        if (corio_pipe_send(e->b, buf, (size_t)n, -1) != 0)
            return 1;
    corio_pipe_close(e->b);
    return errno == CORIO_EEOF ? 0 : 2;
}

Test(proc_pipe, echo_across_processes_and_eof, .timeout = 30)
{
    struct ends e;
    static unsigned char out[65536], in[70000];

    pipe_pair(&e.a, &e.b, 16384);
    pid_t pid = fork_run(echo_child, &e);
    cr_assert_eq(corio_pipe_close(e.b), 0);
    /* Messages bigger than half the ring: the two sides take turns. */
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(i * 997) % 16000;

        memset(out, i & 0xff, n);
        cr_assert_eq(corio_pipe_send(e.a, out, n, -1), 0);
        cr_assert_eq(corio_pipe_recv(e.a, in, sizeof(in), -1), (ssize_t)n);
        cr_assert_eq(memcmp(in, out, n), 0);
    }
    /* Many in flight: the child's replies fill our ring while we send (a
     * message takes 16 bytes: 1024 fill a ring, 2000 fill both). */
    for (int i = 0; i < 2000; i++)
        cr_assert_eq(corio_pipe_send(e.a, &i, sizeof(i), -1), 0);
    for (int i = 0; i < 2000; i++) {
        int v = -1;
        cr_assert_eq(corio_pipe_recv(e.a, &v, sizeof(v), -1), sizeof(v));
        cr_assert_eq(v, i);
    }
    (void)out;
    /* Closing our end ends the child's loop with CORIO_EEOF. */
    cr_assert_eq(corio_pipe_close(e.a), 0);
    reap_ok(pid, 5000);
}

static int die_child(void *arg)
{
    struct ends *e = arg;

    corio_pipe_close(e->a);
    if (corio_pipe_send(e->b, "bye", 3, -1) != 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

Test(proc_pipe, eof_when_the_other_process_dies, .timeout = 30)
{
    struct ends e;
    char buf[8];
    static char big[8192];

    pipe_pair(&e.a, &e.b, 4096);
    pid_t pid = fork_run(die_child, &e);
    cr_assert_eq(corio_pipe_close(e.b), 0);
    cr_assert_eq(corio_pipe_recv(e.a, buf, sizeof(buf), corio_now() + 5000 * MS), 3);
    int64_t t0 = corio_now();
    expect_fail(corio_pipe_recv(e.a, buf, sizeof(buf), t0 + 5000 * MS),
                CORIO_EEOF);
    /* A send that must wait for a gone reader fails with EPIPE. */
    cr_assert_eq(corio_pipe_send(e.a, big, 4000, -1), 0);
    expect_fail(corio_pipe_send(e.a, big, 4000, t0 + 5000 * MS), EPIPE);
    int status = reap_within(pid, 5000);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(corio_pipe_close(e.a), 0);
}

/* ---- From tasks --------------------------------------------------------- */

static int slow_echo(void *arg)
{
    struct ends *e = arg;
    char buf[64];
    ssize_t n;

    corio_pipe_close(e->a);
    while ((n = corio_pipe_recv(e->b, buf, sizeof(buf), -1)) >= 0) {
        msleep(100);
        if (corio_pipe_send(e->b, buf, (size_t)n, -1) != 0)
            return 1;
    }
    corio_pipe_close(e->b);
    return 0;
}

static void *recv_task(void *arg)
{
    char buf[64];

    if (corio_pipe_recv(arg, buf, sizeof(buf), -1) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *pipe_task_main(void *arg)
{
    struct ends *e = arg;
    struct ticker t = {0};
    corio_task *ticker = corio_task_spawn(tick, &t, NULL);
    char buf[64];

    cr_assert_not_null(ticker);
    cr_assert_eq(corio_pipe_send(e->a, "ping", 4, -1), 0);
    cr_assert_eq(corio_pipe_recv(e->a, buf, sizeof(buf), -1), 4);
    cr_assert_geq(atomic_load(&t.ticks), 4, "ticks %d",
                  atomic_load(&t.ticks));
    /* Two tasks receiving on one end: the second is refused. */
    corio_task *r = corio_task_spawn(recv_task, e->a, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    expect_fail(corio_pipe_recv(e->a, buf, sizeof(buf), -1), EBUSY);
    expect_fail(corio_pipe_close(e->a), EBUSY);
    cr_assert_eq(corio_task_cancel(r), 1);
    expect_fail(corio_task_join(r, NULL), ECANCELED);
    /* A deadline from a task. */
    int64_t t0 = corio_now();
    expect_fail(corio_pipe_recv(e->a, buf, sizeof(buf), t0 + 30 * MS),
                ETIMEDOUT);
    t.stop = true;
    cr_assert_eq(corio_task_join(ticker, NULL), 0);
    return NULL;
}

Test(proc_pipe, awaitable_from_a_task, .timeout = 30)
{
    struct ends e;

    pipe_pair(&e.a, &e.b, 0);
    pid_t pid = fork_run(slow_echo, &e);
    cr_assert_eq(corio_pipe_close(e.b), 0);
    cr_assert_eq(corio_run(pipe_task_main, &e, NULL), 0);
    cr_assert_eq(corio_pipe_close(e.a), 0);
    reap_ok(pid, 5000);
}

static void in_callback(void *arg)
{
    char buf[8];
    int *err = ((void **)arg)[1];

    *err = corio_pipe_recv(((void **)arg)[0], buf, sizeof(buf), -1) == -1
               ? errno
               : 0;
}

Test(proc_pipe, callback_must_not_wait, .timeout = 30)
{
    corio_loop *loop = loop_open();
    corio_pipe *a, *b;
    int err = -1;

    pipe_pair(&a, &b, 0);
    void *args[2] = {b, &err};
    cr_assert_eq(corio_loop_call_soon(loop, in_callback, args, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(err, EDEADLK);
    cr_assert_eq(corio_pipe_close(a), 0);
    cr_assert_eq(corio_pipe_close(b), 0);
    loop_done(loop);
}

/* ---- Shared memory by name ---------------------------------------------- */

struct shm_case {
    const char *name;
    corio_shm *parents;         /* the parent's handle: our copy is freed */
};

static int shm_child(void *arg)
{
    struct shm_case *c = arg;
    corio_shm *s = corio_shm_attach(c->name);
    int rc = 0;

    corio_shm_close(c->parents);
    if (s == NULL || corio_shm_size(s) != 8192)
        rc = 1;
    else if (strcmp(corio_shm_data(s), "from the parent") != 0)
        rc = 2;
    else
        strcpy((char *)corio_shm_data(s) + 4096, "from the child");
    corio_shm_close(s);
    return rc;
}

Test(proc_shm, create_attach_unlink, .timeout = 30)
{
    char name[64];
    snprintf(name, sizeof(name), "corio-test-%d", (int)getpid());
    corio_shm *s = corio_shm_create(name, 8192);

    cr_assert_not_null(s, "corio_shm_create: %s", corio_strerror(errno));
    cr_assert_str_eq(corio_shm_name(s), name);
    cr_assert_eq(corio_shm_size(s), 8192);
    cr_assert_eq(((char *)corio_shm_data(s))[100], 0);
    strcpy(corio_shm_data(s), "from the parent");
    /* Another process maps it by name (not inherited: attach). */
    struct shm_case c = {name, s};
    pid_t pid = fork_run(shm_child, &c);
    reap_ok(pid, 5000);
    cr_assert_str_eq((char *)corio_shm_data(s) + 4096, "from the child");
    /* The name is taken. */
    cr_assert_null(corio_shm_create(name, 10));
    cr_assert_eq(errno, EEXIST);
    cr_assert_eq(corio_shm_unlink(s), 0);
    expect_fail(corio_shm_unlink(s), ENOENT);
    cr_assert_null(corio_shm_attach(name));
    cr_assert_eq(errno, ENOENT);
    /* Still mapped here after the unlink. */
    cr_assert_str_eq(corio_shm_data(s), "from the parent");
    cr_assert_eq(corio_shm_close(s), 0);
    cr_assert_eq(corio_shm_close(NULL), 0);
}

Test(proc_shm, fresh_names_and_errors, .timeout = 30)
{
    corio_shm *a = corio_shm_create(NULL, 100), *b = corio_shm_create(NULL, 1);

    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_str_neq(corio_shm_name(a), corio_shm_name(b));
    corio_shm *a2 = corio_shm_attach(corio_shm_name(a));
    cr_assert_not_null(a2);
    cr_assert_eq(corio_shm_size(a2), 100);
    ((char *)corio_shm_data(a))[7] = 'q';
    cr_assert_eq(((char *)corio_shm_data(a2))[7], 'q');
    cr_assert_eq(corio_shm_close(a2), 0);
    cr_assert_eq(corio_shm_unlink(a), 0);
    cr_assert_eq(corio_shm_unlink(b), 0);
    cr_assert_eq(corio_shm_close(a), 0);
    cr_assert_eq(corio_shm_close(b), 0);

    cr_assert_null(corio_shm_create("x", 0));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_shm_create("a/b", 10));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_shm_create("", 10));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_shm_create("..", 10));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_shm_attach(NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_shm_attach("no-such-corio-block"));
    cr_assert_eq(errno, ENOENT);
    expect_fail(corio_shm_unlink(NULL), EINVAL);
    cr_assert_null(corio_shm_data(NULL));
    cr_assert_eq(corio_shm_size(NULL), 0);
    cr_assert_null(corio_shm_name(NULL));
}
