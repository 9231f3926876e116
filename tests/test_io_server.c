/* tests/test_io_server.c -- stream servers (corio_server_start and its stop):
 * handlers in a task group, a graceful stop and one cut short by its
 * deadline or by the stopper's cancellation, a handler that fails the
 * group, stopping from a handler, the listen options (backlog,
 * SO_REUSEPORT, TCP_NODELAY, stream limits), Unix socket paths, and 10,000
 * connections to one server on one loop. No fd is leaked.
 *
 * Loopback only. Every test has the same .timeout (Criterion leaks in its
 * runner otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#define TIMEOUT 120
#define MS CORIO_MSEC

/* Run fn as the main task; it returns NULL or a failure text. No fd may be
 * left open by it. */
static void run_main(corio_fn fn, void *arg)
{
    signal(SIGPIPE, SIG_DFL); /* a write must never raise it */
    run_main_no_fd_leak(fn, arg);
}

/* ---- Stopping ------------------------------------------------------------ */

static int handler_cancelled;

/* Answer one line, then wait for another forever. */
static void slow_handler(corio_stream *s, void *arg)
{
    char line[64];

    (void)arg;
    if (corio_stream_readline(s, line, sizeof(line), -1) > 0 &&
        corio_stream_write(s, line, strlen(line)) == 0 &&
        corio_stream_drain(s, -1) == 0 &&
        corio_stream_readline(s, line, sizeof(line), -1) == -1 &&
        errno == ECANCELED)
        handler_cancelled++;
}

/* A client of slow_handler that has had its answer. */
static corio_stream *answered_client(corio_server *srv)
{
    char addr[64], line[64];
    corio_stream *c;

    server_addr(srv, addr, sizeof(addr));
    c = corio_stream_connect(addr, -1);
    if (c == NULL)
        return NULL;
    if (corio_stream_write(c, "hi\n", 3) == -1 ||
        corio_stream_readline(c, line, sizeof(line), -1) != 3) {
        corio_stream_close(c);
        return NULL;
    }
    return c;
}

static void *stop_deadline_main(void *arg)
{
    corio_server *srv;
    corio_stream *c;
    char line[64];
    int64_t t0;

    (void)arg;
    handler_cancelled = 0;
    srv = corio_server_start("127.0.0.1:0", NULL, slow_handler, NULL);
    CHECK(srv != NULL);
    c = answered_client(srv);
    CHECK(c != NULL);
    CHECK(corio_server_connections(srv) == 1);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_server_stop(srv, t0 + 50 * MS) == -1 && errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 50 * MS);
    CHECK(handler_cancelled == 1);
    /* the server closed its side: the client reads the end */
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 0);
    corio_stream_close(c);
    /* no connection: returns at once */
    srv = corio_server_start("127.0.0.1:0", NULL, slow_handler, NULL);
    CHECK(srv != NULL);
    CHECK(corio_server_stop(srv, -1) == 0);
    CHECK(corio_server_start("127.0.0.1:0", NULL, NULL, NULL) == NULL &&
          errno == EINVAL);
    CHECK(corio_server_start("nonsense", NULL, slow_handler, NULL) == NULL &&
          errno == EINVAL);
    CHECK(corio_server_stop(NULL, -1) == 0); /* as every destroy call */
    CHECK(corio_server_fd(NULL) == -1 && corio_server_connections(NULL) == 0);
    return NULL;
}

Test(server, stop_cancels_handlers_after_the_deadline, .timeout = TIMEOUT)
{
    run_main(stop_deadline_main, NULL);
}

struct late {
    corio_stream *c;
    int ok;
};

/* While the server stops, finish the conversation and hang up. */
static void *late_client(void *arg)
{
    struct late *l = arg;
    char line[64];

    if (corio_sleep(20 * MS) == 0 &&
        corio_stream_write(l->c, "bye\n", 4) == 0 &&
        corio_stream_readline(l->c, line, sizeof(line), -1) == 4 &&
        corio_stream_shutdown(l->c, -1) == 0 &&
        corio_stream_readline(l->c, line, sizeof(line), -1) == 0)
        l->ok = 1;
    return NULL;
}

static void *stop_graceful_main(void *arg)
{
    struct late l = {0};
    char addr[64], line[64];
    corio_server *srv;
    corio_task *t;

    (void)arg;
    srv = corio_server_start("127.0.0.1:0", NULL, echo_lines, NULL);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    l.c = corio_stream_connect(addr, -1);
    CHECK(l.c != NULL);
    /* an answer: the connection has been accepted (a stop drops those
     * still in the listening socket's queue) */
    CHECK(corio_stream_write(l.c, "hi\n", 3) == 0);
    CHECK(corio_stream_readline(l.c, line, sizeof(line), -1) == 3);
    t = corio_task_spawn(late_client, &l, NULL);
    CHECK(t != NULL);
    /* the handler finishes by itself within the deadline: 0 */
    CHECK(corio_server_stop(srv, corio_now() + 10 * CORIO_SECOND) == 0);
    CHECK(corio_task_join(t, NULL) == 0 && l.ok == 1);
    /* the listening socket is closed: no new connection */
    CHECK(corio_socket_connect(addr, NULL, -1) == -1 && errno == ECONNREFUSED);
    corio_stream_close(l.c);
    return NULL;
}

Test(server, a_graceful_stop_waits_for_the_handlers, .timeout = TIMEOUT)
{
    run_main(stop_graceful_main, NULL);
}

struct stopper {
    corio_server *srv;
    int rc, err;
};

static void *stopper_task(void *arg)
{
    struct stopper *st = arg;

    st->rc = corio_server_stop(st->srv, -1);
    st->err = errno;
    return NULL;
}

static void *stop_cancelled_main(void *arg)
{
    struct stopper st = {0};
    corio_stream *c;
    corio_task *t;

    (void)arg;
    handler_cancelled = 0;
    st.srv = corio_server_start("127.0.0.1:0", NULL, slow_handler, NULL);
    CHECK(st.srv != NULL);
    c = answered_client(st.srv);
    CHECK(c != NULL);
    /* the stopper gives the handler forever, until it is cancelled */
    t = corio_task_spawn(stopper_task, &st, NULL);
    CHECK(t != NULL && corio_sleep(20 * MS) == 0);
    CHECK(corio_task_cancel(t) == 1);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
    CHECK(st.rc == -1 && st.err == ECANCELED);
    CHECK(handler_cancelled == 1);
    corio_stream_close(c);
    return NULL;
}

Test(server, cancelling_the_stopper_cancels_the_handlers, .timeout = TIMEOUT)
{
    run_main(stop_cancelled_main, NULL);
}

/* A handler that stops its own server: EDEADLK. */
static void self_stop_handler(corio_stream *s, void *arg)
{
    corio_server **srv = arg;
    char msg[32];
    int n, rc;

    errno = 0;
    rc = corio_server_stop(*srv, -1);
    n = snprintf(msg, sizeof(msg), "%d %d\n", rc, errno);
    if (corio_stream_write(s, msg, (size_t)n) == -1 ||
        corio_stream_drain(s, -1) == -1)
        corio_task_fail(errno); /* the server's stop reports it */
}

/* A handler that ends its task failed: the group cancels the others. */
static void failing_handler(corio_stream *s, void *arg)
{
    char line[64];

    (void)arg;
    if (corio_stream_readline(s, line, sizeof(line), -1) <= 0)
        return;
    if (strcmp(line, "fail\n") == 0) {
        corio_task_fail(EPROTO);
        return;
    }
    if (corio_stream_write(s, line, strlen(line)) == 0 &&
        corio_stream_drain(s, -1) == 0 &&
        corio_stream_readline(s, line, sizeof(line), -1) == -1 &&
        errno == ECANCELED)
        handler_cancelled++;
}

static void *handler_stop_and_failure_main(void *arg)
{
    corio_server *srv;
    corio_stream *a, *b;
    char addr[64], line[64];
    int rc, err;

    (void)arg;
    srv = corio_server_start("127.0.0.1:0", NULL, self_stop_handler, &srv);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    a = corio_stream_connect(addr, -1);
    CHECK(a != NULL);
    CHECK(corio_stream_readline(a, line, sizeof(line), -1) > 0);
    CHECK(sscanf(line, "%d %d", &rc, &err) == 2);
    CHECK(rc == -1 && err == EDEADLK);
    corio_stream_close(a);
    CHECK(corio_server_stop(srv, -1) == 0);

    handler_cancelled = 0;
    srv = corio_server_start("127.0.0.1:0", NULL, failing_handler, NULL);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    a = corio_stream_connect(addr, -1);
    b = corio_stream_connect(addr, -1);
    CHECK(a != NULL && b != NULL);
    CHECK(corio_stream_write(a, "wait\n", 5) == 0);
    CHECK(corio_stream_readline(a, line, sizeof(line), -1) == 5);
    CHECK(corio_stream_write(b, "fail\n", 5) == 0);
    /* a's handler is cancelled: a reads the end */
    CHECK(corio_stream_readline(a, line, sizeof(line), -1) == 0);
    CHECK(handler_cancelled == 1);
    errno = 0;
    CHECK(corio_server_stop(srv, -1) == -1 && errno == EPROTO);
    corio_stream_close(a);
    corio_stream_close(b);
    return NULL;
}

Test(server, stopping_from_a_handler_and_a_handler_that_fails,
     .timeout = TIMEOUT)
{
    run_main(handler_stop_and_failure_main, NULL);
}

/* ---- Options ------------------------------------------------------------- */

/* Report TCP_NODELAY of the connection, then echo. */
static void nodelay_handler(corio_stream *s, void *arg)
{
    int on = 0;
    socklen_t len = sizeof(on);

    getsockopt(corio_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &on, &len);
    if (corio_stream_write(s, on ? "1\n" : "0\n", 2) == -1) {
        corio_task_fail(errno); /* the server's stop reports it */
        return;
    }
    echo_lines(s, arg);
}

static void *options_main(void *arg)
{
    corio_listen_opts o = {.reuseport = true, .stream = {.limit = 8}};
    corio_connect_opts nagle = {.nagle = true};
    corio_server *srv;
    corio_stream *c;
    char addr[64], line[64];
    int fd, on = 0;
    socklen_t len = sizeof(on);

    (void)arg;
    srv = corio_server_start("127.0.0.1:0", &o, nodelay_handler, NULL);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    /* SO_REUSEPORT: a second listener on the same port */
    fd = corio_socket_listen(addr, &o);
    CHECK(fd >= 0);
    corio_fd_close(fd);
    o.reuseport = false;
    CHECK(corio_socket_listen(addr, &o) == -1 && errno == EADDRINUSE);
    c = corio_stream_connect(addr, -1);
    CHECK(c != NULL);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 2);
    CHECK(strcmp(line, "1\n") == 0);
    /* the connections' streams have the limit: a long line ends it */
    CHECK(corio_stream_write(c, "short\n", 6) == 0);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 6);
    CHECK(corio_stream_write(c, "far too long\n", 13) == 0);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 0);
    corio_stream_close(c);
    CHECK(corio_server_stop(srv, -1) == 0);
    /* the client side of TCP_NODELAY, and a bad backlog */
    srv = corio_server_start("127.0.0.1:0", NULL, echo_lines, NULL);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    fd = corio_socket_connect(addr, NULL, -1);
    CHECK(fd >= 0);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && on);
    corio_fd_close(fd);
    fd = corio_socket_connect(addr, &nagle, -1);  /* Nagle kept on request */
    CHECK(fd >= 0);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && !on);
    corio_fd_close(fd);
    CHECK(corio_server_stop(srv, -1) == 0);
    /* a server that keeps Nagle's algorithm on its connections */
    o.nagle = true;
    srv = corio_server_start("127.0.0.1:0", &o, nodelay_handler, NULL);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    c = corio_stream_connect(addr, -1);
    CHECK(c != NULL);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 2);
    CHECK(strcmp(line, "0\n") == 0);
    corio_stream_close(c);
    CHECK(corio_server_stop(srv, -1) == 0);
    o.backlog = -1;
    CHECK(corio_socket_listen("127.0.0.1:0", &o) == -1 && errno == EINVAL);
    return NULL;
}

Test(server, listen_options, .timeout = TIMEOUT)
{
    run_main(options_main, NULL);
}

static void *unix_main(void *arg)
{
    const char *addr = arg;
    corio_server *srv;
    corio_stream *c;
    struct stat st;
    char line[64];
    int fd;

    /* a stale socket file (its server is gone) is replaced */
    fd = corio_socket_listen(addr, NULL);
    CHECK(fd >= 0);
    corio_fd_close(fd);
    CHECK(stat(addr + 5, &st) == 0);
    srv = corio_server_start(addr, NULL, echo_lines, NULL);
    CHECK(srv != NULL);
    /* a live one is not */
    CHECK(corio_socket_listen(addr, NULL) == -1 && errno == EADDRINUSE);
    c = corio_stream_connect(addr, -1);
    CHECK(c != NULL);
    CHECK(corio_stream_write(c, "unix\n", 5) == 0);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 5);
    corio_stream_close(c);
    CHECK(corio_server_stop(srv, -1) == 0);
    /* the path went with the server */
    CHECK(stat(addr + 5, &st) == -1 && errno == ENOENT);
    return NULL;
}

Test(server, unix_socket_path, .timeout = TIMEOUT)
{
    char addr[64];

    snprintf(addr, sizeof(addr), "unix:/tmp/corio-srv-%d.sock", (int)getpid());
    run_main(unix_main, addr);
}

/* ---- 10,000 connections on one loop -----------------------------------------
 *
 * The clients run in a child process, so each process needs one fd per
 * connection (10,000 fit under a hard limit of 20,000). Every client holds
 * its connection until all have had their echo, so the server handles all
 * of them at once. */

struct many {
    int n;
    int wfd;                /* the server writes its address to the child */
    char addr[64];
    corio_event *all_in, *all_done;
    int connected, echoed, ok;
    corio_server *srv;
    size_t peak;
    int finished;
};

static void *many_client(void *arg)
{
    struct many *m = arg;
    int64_t deadline = corio_now() + 60 * CORIO_SECOND;
    int fd = corio_socket_connect(m->addr, NULL, deadline);
    char b = 'x';

    if (fd == -1)
        return corio_task_fail(errno);
    if (++m->connected == m->n)
        corio_event_set(m->all_in);
    if (corio_event_wait(m->all_in, deadline) == 0 &&
        corio_fd_write(fd, &b, 1, deadline) == 1 &&
        corio_fd_read(fd, &b, 1, deadline) == 1 && b == 'x')
        m->ok++;
    if (++m->echoed == m->n)
        corio_event_set(m->all_done);
    if (corio_event_wait(m->all_done, deadline) == -1) {
        int err = errno;

        corio_fd_close(fd);
        return corio_task_fail(err);
    }
    corio_fd_close(fd);
    return NULL;
}

static void *many_clients_main(void *arg)
{
    struct many *m = arg;
    corio_task_attr a = {.stack_mode = CORIO_STACK_COMPACT};
    corio_task **ts = calloc((size_t)m->n, sizeof(*ts));

    m->all_in = corio_event_new();
    m->all_done = corio_event_new();
    CHECK(ts != NULL && m->all_in != NULL && m->all_done != NULL);
    for (int i = 0; i < m->n; i++) {
        ts[i] = corio_task_spawn(many_client, m, &a);
        CHECK(ts[i] != NULL);
    }
    CHECK(corio_task_join_all(ts, (size_t)m->n, NULL) == 0);
    CHECK(m->ok == m->n);
    corio_event_free(m->all_in);
    corio_event_free(m->all_done);
    free(ts);
    return NULL;
}

/* The child: read the address, run the clients, exit 0 if all did well. */
static void many_child(struct many *m, int rfd)
{
    void *res = (void *)1;
    ssize_t got = read(rfd, m->addr, sizeof(m->addr) - 1);

    if (got <= 0)
        _exit(2);
    m->addr[got] = 0;
    if (corio_run(many_clients_main, m, &res) == -1 || res != NULL) {
        if (res != NULL && res != (void *)1)
            fprintf(stderr, "clients: %s\n", (char *)res);
        _exit(1);
    }
    _exit(0);
}

static void byte_handler(corio_stream *s, void *arg)
{
    struct many *m = arg;
    char b;

    if (corio_stream_readexactly(s, &b, 1, -1) == 1 &&
        corio_stream_write(s, &b, 1) == 0 && corio_stream_drain(s, -1) == 0) {
        size_t now = corio_server_connections(m->srv);

        if (now > m->peak)
            m->peak = now;
    }
    while (corio_stream_read(s, &b, 1, -1) > 0) /* until the client hangs up */
        ;
    if (++m->finished == m->n)
        corio_event_set(m->all_done);
}

static void *many_server_main(void *arg)
{
    struct many *m = arg;
    corio_listen_opts o = {.backlog = 4096};
    m->all_done = corio_event_new();
    CHECK(m->all_done != NULL);
    m->srv = corio_server_start("127.0.0.1:0", &o, byte_handler, m);
    CHECK(m->srv != NULL);
    server_addr(m->srv, m->addr, sizeof(m->addr));
    CHECK(write(m->wfd, m->addr, strlen(m->addr)) ==
          (ssize_t)strlen(m->addr));
    CHECK(corio_event_wait(m->all_done, corio_now() + 100 * CORIO_SECOND) == 0);
    CHECK(m->peak == (size_t)m->n);
    CHECK(corio_server_stop(m->srv, corio_now() + 5 * CORIO_SECOND) == 0);
    corio_event_free(m->all_done);
    return NULL;
}

Test(server, ten_thousand_connections_on_one_loop, .timeout = TIMEOUT)
{
    static struct many m;
    struct rlimit rl;
    rlim_t need;
    int pipefd[2], status;
    pid_t pid;

    m.n = RUNNING_ON_VALGRIND ? 500 : 10000;
    need = (rlim_t)m.n + 512;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            cr_skip_test("RLIMIT_NOFILE hard limit %lu < %lu",
                         (unsigned long)rl.rlim_max, (unsigned long)need);
        rl.rlim_cur = need;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_eq(pipe(pipefd), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(pipefd[1]);
        many_child(&m, pipefd[0]);
    }
    close(pipefd[0]);
    m.wfd = pipefd[1];
    run_main(many_server_main, &m);
    close(pipefd[1]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the clients failed (status %d)", status);
}
