/* tests/test_proc_prefork.c -- the prefork supervisor
 * (corio_prefork_serve): workers on every slot serve one address (different
 * pids answer; threads: different thread ids), a killed worker is started again, SIGTERM stops them all
 * within the deadline (killing those that do not stop), SIGHUP replaces
 * them one at a time without the address going unserved, errors, and no
 * worker left behind.
 *
 * The supervisor runs in a forked child (it blocks signals and waits for
 * them); the test talks to the workers over loopback with plain blocking
 * sockets, and learns the port through a pipe from on_ready. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "corio.h"
#include "loop_test.h"
#include "proc_test.h"
#include "timing.h"

#define MS CORIO_MSEC

static void pid_handler(corio_stream *s, void *arg)
{
    char line[64], reply[64];
    ssize_t n;
    int len;

    (void)arg;
    while ((n = corio_stream_readline(s, line, sizeof(line), -1)) > 0) {
        if (strncmp(line, "block", 5) == 0)
            sleep(30); /* the whole worker is stuck: it cannot stop */
        /* gettid: a process worker's pid, a thread worker's thread. */
        len = snprintf(reply, sizeof(reply), "%d\n", (int)gettid());
        if (corio_stream_write(s, reply, (size_t)len) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return;
    }
}

struct sup {
    int port_pipe[2];
    size_t workers;
    int64_t stop_timeout;
    bool threads;
    pid_t pid;
    int port;
};

static void on_ready(const corio_addr *bound, void *arg)
{
    struct sup *s = arg;
    int port = ntohs(((const struct sockaddr_in *)&bound->ss)->sin_port);
    ssize_t r = write(s->port_pipe[1], &port, sizeof(port));

    (void)r;
}

static int supervisor(void *arg)
{
    struct sup *s = arg;
    corio_prefork_opts o = {
        .workers = s->workers,
        .threads = s->threads,
        .stop_timeout = s->stop_timeout,
        .on_ready = on_ready,
        .ready_arg = s,
    };

    close(s->port_pipe[0]);
    if (corio_prefork_serve("127.0.0.1:0", pid_handler, NULL, &o) == 0)
        return 0;
    return errno == ETIMEDOUT ? 3 : 4;
}

static void sup_start(struct sup *s, size_t workers, int64_t stop_timeout)
{
    s->workers = workers;
    s->stop_timeout = stop_timeout;
    cr_assert_eq(pipe(s->port_pipe), 0);
    s->pid = fork_run(supervisor, s);
    close(s->port_pipe[1]);
    cr_assert_eq(read(s->port_pipe[0], &s->port, sizeof(s->port)),
                 sizeof(s->port), "the supervisor did not get ready");
    close(s->port_pipe[0]);
}

/* One connection: the pid of the worker that answers, or -1. */
static int ask(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    char buf[32] = "";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), pid = -1;
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, "?\n", 2) == 2 && (n = read(fd, buf, sizeof(buf) - 1)) > 0)
        pid = atoi(buf);
    close(fd);
    return pid;
}

/* Ask n times; the distinct pids that answered into pids (up to max). */
static int ask_many(int port, int n, int *pids, int max)
{
    int count = 0;

    for (int i = 0; i < n; i++) {
        int p = ask(port), seen = 0;

        /* A connection queued on a worker that is stopping (a reload) is
         * reset with that worker's listening socket: SO_REUSEPORT does not
         * move it to the others (unless net.ipv4.tcp_migrate_req is set).
         * The client tries again, as a browser would. */
        for (int retry = 0; p <= 0 && retry < 3; retry++)
            p = ask(port);

        cr_assert_gt(p, 0, "connection %d was not answered", i);
        for (int j = 0; j < count; j++)
            seen |= pids[j] == p;
        if (!seen && count < max)
            pids[count++] = p;
    }
    return count;
}

/* Ask until only workers not in old[0..nold) answer, and want of them
 * (0: any number), for at most 10 s; returns how many answered (into now).
 * Every connection must be answered meanwhile (ask_many asserts it). */
static int wait_new_workers(int port, const int *old, int nold, int want,
                            int *now)
{
    int64_t deadline = corio_now() + 10000 * MS;
    bool done = false;
    int m = 0;

    while (!done && corio_now() < deadline) {
        msleep(20);
        m = ask_many(port, 12, now, 8);
        done = want == 0 || m == want;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < nold; j++)
                done &= now[i] != old[j];
    }
    cr_assert(done, "the old workers still answer (%d answered)", m);
    return m;
}

static void expect_gone(int pid)
{
    cr_assert(kill(pid, 0) == -1 && errno == ESRCH, "worker %d is left",
              pid);
}

Test(proc_prefork, workers_serve_and_sigterm_stops_all, .timeout = 60)
{
    struct sup s = {0};
    int pids[8];

    sup_start(&s, 3, 2000 * MS);
    int n = ask_many(s.port, 24, pids, 8);
    cr_assert_geq(n, 2, "one worker answered everything");
    cr_assert_leq(n, 3);
    int64_t t0 = corio_now();
    kill(s.pid, SIGTERM);
    reap_ok(s.pid, 2000 + (int)test_slack_ms());
    cr_assert_lt(elapsed_ms(t0), 2000 + test_slack_ms());
    for (int i = 0; i < n; i++)
        expect_gone(pids[i]);
    cr_assert_eq(ask(s.port), -1);
}

Test(proc_prefork, a_killed_worker_is_restarted, .timeout = 60)
{
    struct sup s = {0};
    int pids[8], fresh[8];

    sup_start(&s, 2, 2000 * MS);
    int n = ask_many(s.port, 16, pids, 8);
    cr_assert_eq(n, 2);
    kill(pids[0], SIGKILL);
    /* Soon two workers answer again. */
    int m = wait_new_workers(s.port, pids, 1, 2, fresh);
    kill(s.pid, SIGTERM);
    reap_ok(s.pid, 5000);
    for (int i = 0; i < m; i++)
        expect_gone(fresh[i]);
}

Test(proc_prefork, sighup_reloads_one_at_a_time, .timeout = 60)
{
    struct sup s = {0};
    int old[8], now[8];

    sup_start(&s, 2, 2000 * MS);
    int n = ask_many(s.port, 16, old, 8);
    cr_assert_eq(n, 2);
    kill(s.pid, SIGHUP);
    /* Every request is answered during the reload (one may need to be
     * sent again: see ask_many); in the end only new workers answer, and
     * the old ones are gone. */
    wait_new_workers(s.port, old, 2, 0, now);
    msleep(100);
    expect_gone(old[0]);
    expect_gone(old[1]);
    kill(s.pid, SIGTERM);
    reap_ok(s.pid, 5000);
}

Test(proc_prefork, stubborn_workers_are_killed_at_the_deadline,
     .timeout = 60)
{
    struct sup s = {0};
    int pids[4];

    sup_start(&s, 2, 300 * MS);
    int n = ask_many(s.port, 8, pids, 4);
    /* One worker gets stuck in a handler that never yields. */
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(write(fd, "block\n", 6), 6);
    msleep(100);
    int64_t t0 = corio_now();
    kill(s.pid, SIGTERM);
    int status = reap_within(s.pid, 5000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3,
              "status %#x: not ETIMEDOUT", status);
    cr_assert_geq(elapsed_ms(t0), 300);
    cr_assert_lt(elapsed_ms(t0), 300 + test_slack_ms());
    for (int i = 0; i < n; i++)
        expect_gone(pids[i]);
    close(fd);
}

Test(proc_prefork, thread_workers, .timeout = 60)
{
    struct sup s = {.threads = true};
    int tids[8];

    sup_start(&s, 3, 2000 * MS);
    int n = ask_many(s.port, 24, tids, 8);
    cr_assert_geq(n, 2, "one thread answered everything");
    cr_assert_leq(n, 3);
    /* Threads of the supervisor: not processes of their own. */
    for (int i = 0; i < n; i++)
        cr_assert_neq(tids[i], s.pid);
    int64_t t0 = corio_now();
    kill(s.pid, SIGTERM);
    reap_ok(s.pid, 2000 + (int)test_slack_ms());
    cr_assert_lt(elapsed_ms(t0), 2000 + test_slack_ms());
    cr_assert_eq(ask(s.port), -1);
}

Test(proc_prefork, thread_workers_reload, .timeout = 60)
{
    struct sup s = {.threads = true};
    int old[8], now[8];

    sup_start(&s, 2, 2000 * MS);
    cr_assert_eq(ask_many(s.port, 16, old, 8), 2);
    kill(s.pid, SIGHUP);
    wait_new_workers(s.port, old, 2, 0, now);
    kill(s.pid, SIGTERM);
    reap_ok(s.pid, 5000);
}

static int failing_worker(size_t slot, void *arg)
{
    (void)slot;
    (void)arg;
    return 7;
}

static void *in_task(void *arg)
{
    (void)arg;
    expect_fail(corio_prefork_serve("127.0.0.1:0", pid_handler, NULL, NULL),
                EBUSY);
    return NULL;
}

Test(proc_prefork, errors, .timeout = 60)
{
    corio_prefork_opts o = {.workers = 1, .on_worker = failing_worker};

    expect_fail(corio_prefork_serve(NULL, pid_handler, NULL, NULL), EINVAL);
    expect_fail(corio_prefork_serve("127.0.0.1:0", NULL, NULL, NULL), EINVAL);
    expect_fail(corio_prefork_serve("localhost:80", pid_handler, NULL, NULL),
                EINVAL);
    expect_fail(corio_prefork_serve("unix:/tmp/x", pid_handler, NULL, NULL),
                EINVAL);
    /* A worker that cannot start: ECHILD, and nothing is left running. */
    expect_fail(corio_prefork_serve("127.0.0.1:0", pid_handler, NULL, &o),
                ECHILD);
    /* The port is taken by a socket without SO_REUSEPORT. */
    int lfd = corio_socket_listen("127.0.0.1:0", NULL);
    corio_addr a;
    char text[64];
    cr_assert_geq(lfd, 0);
    cr_assert_eq(corio_socket_name(lfd, &a), 0);
    cr_assert_gt(corio_addr_format(&a, text, sizeof(text)), 0);
    expect_fail(corio_prefork_serve(text, pid_handler, NULL, NULL),
                EADDRINUSE);
    cr_assert_eq(corio_fd_close(lfd), 0);
    cr_assert_eq(corio_run(in_task, NULL, NULL), 0);
    /* No child of ours is left (ECHILD: none at all). */
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1);
    cr_assert_eq(errno, ECHILD);
}
