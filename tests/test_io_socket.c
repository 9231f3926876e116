/* tests/test_io_socket.c -- addresses, TCP/Unix/UDP sockets and servers
 * (include/corio/io.h): every call and its error paths, cancellation and
 * deadlines in connect, accept and read, resets and half-close, 10,000
 * connections to one server on one loop, and no fd leaked.
 *
 * Loopback only. Every test has the same .timeout (Criterion leaks in its
 * runner otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#define TIMEOUT 60
#define MS CORIO_MSEC

/* Run fn as the main task; it returns NULL or a failure text. No fd may be
 * left open by it. */
static void run_main(corio_fn fn, void *arg)
{
    signal(SIGPIPE, SIG_DFL); /* a write must never raise it */
    run_main_no_fd_leak(fn, arg);
}

static int bound_port(int fd)
{
    corio_addr a;

    if (corio_sockname(fd, &a) == -1)
        return -1;
    return ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
}

static void addr_of(int fd, char *buf, size_t size)
{
    corio_addr a;

    corio_sockname(fd, &a);
    corio_addr_format(&a, buf, size);
}

/* ---- Addresses -------------------------------------------------------------- */

Test(socket, addresses_parse_and_format, .timeout = TIMEOUT)
{
    static const char *good[] = {"127.0.0.1:80", "[::1]:8080", "unix:/tmp/x.sock",
                                 "0.0.0.0:0"};
    static const char *bad[] = {"localhost:80", "127.0.0.1", "127.0.0.1:65536",
                                "127.0.0.1:", "127.0.0.1:8x", "[::1]80", "[::1]",
                                "unix:", "[nope]:1", ":", ""};
    corio_addr a;
    char buf[128];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(corio_addr_parse(&a, good[i]), 0, "%s", good[i]);
        cr_assert_gt(corio_addr_format(&a, buf, sizeof(buf)), 0);
        cr_assert_str_eq(buf, good[i]);
    }
    cr_assert_eq(corio_addr_parse(&a, ":8080"), 0);
    cr_assert_eq(corio_addr_format(&a, buf, sizeof(buf)), 12);
    cr_assert_str_eq(buf, "0.0.0.0:8080");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        cr_assert_eq(corio_addr_parse(&a, bad[i]), -1, "%s", bad[i]);
        cr_assert_eq(errno, EINVAL, "%s", bad[i]);
    }
    errno = 0;
    cr_assert_eq(corio_addr_parse(NULL, "1.2.3.4:5"), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_addr_parse(&a, "1.2.3.4:5"), 0);
    cr_assert_eq(corio_addr_format(&a, buf, 5), -1);
    cr_assert_eq(errno, ENOSPC);
}

/* ---- TCP ------------------------------------------------------------------------ */

static void *tcp_roundtrip_main(void *arg)
{
    const char *where = arg;
    char addr[128], buf[16];
    corio_addr peer;
    int lfd, c, s;

    lfd = corio_listen(where, NULL);
    CHECK(lfd >= 0);
    addr_of(lfd, addr, sizeof(addr));
    c = corio_connect(addr, 1, corio_now() + CORIO_SECOND);
    CHECK(c >= 0);
    s = corio_accept(lfd, &peer, corio_now() + CORIO_SECOND);
    CHECK(s >= 0);
    CHECK(corio_write(c, "ping", 4, -1) == 4);
    CHECK(corio_read(s, buf, sizeof(buf), -1) == 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK(corio_write(s, "pong!", 5, -1) == 5);
    CHECK(corio_read(c, buf, sizeof(buf), -1) == 5);
    /* half-close: the server reads the end, still writes, the client reads */
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK(corio_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_write(s, "bye", 3, -1) == 3);
    CHECK(corio_read(c, buf, sizeof(buf), -1) == 3);
    CHECK(corio_close(s) == 0 && corio_close(c) == 0 && corio_close(lfd) == 0);
    return NULL;
}

Test(socket, tcp_ipv4_connect_accept_read_write_half_close, .timeout = TIMEOUT)
{
    run_main(tcp_roundtrip_main, "127.0.0.1:0");
}

Test(socket, tcp_ipv6, .timeout = TIMEOUT)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    corio_addr a;

    if (fd == -1 || corio_addr_parse(&a, "[::1]:0") == -1 ||
        bind(fd, (struct sockaddr *)&a.ss, a.len) == -1) {
        if (fd >= 0)
            close(fd);
        cr_skip_test("no IPv6 loopback here");
    }
    close(fd);
    run_main(tcp_roundtrip_main, "[::1]:0");
}

Test(socket, unix_stream, .timeout = TIMEOUT)
{
    char path[64];

    snprintf(path, sizeof(path), "unix:/tmp/corio-test-%d.sock", (int)getpid());
    run_main(tcp_roundtrip_main, path);
    unlink(path + 5);
}

static void *refused_main(void *arg)
{
    char addr[64];
    int lfd = corio_listen("127.0.0.1:0", NULL);

    (void)arg;
    CHECK(lfd >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(lfd));
    CHECK(corio_close(lfd) == 0);
    errno = 0;
    CHECK(corio_connect(addr, 0, corio_now() + CORIO_SECOND) == -1);
    CHECK(errno == ECONNREFUSED);
    CHECK(corio_connect("nonsense", 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_connect("unix:", 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_connect(NULL, 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_listen("nonsense", NULL) == -1 && errno == EINVAL);
    CHECK(corio_connect_addr(NULL, 0, -1) == -1 && errno == EINVAL);
    CHECK(corio_close(-1) == -1 && errno == EBADF);
    /* the port in use */
    lfd = corio_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(lfd));
    CHECK(corio_listen(addr, NULL) == -1 && errno == EADDRINUSE);
    CHECK(corio_close(lfd) == 0);
    return NULL;
}

Test(socket, connect_refused_and_bad_input, .timeout = TIMEOUT)
{
    run_main(refused_main, NULL);
}

/* A listener whose accept queue is full and never accepted: a further
 * connect hangs in SYN-SENT (Linux drops the SYNs), offline and loopback. */
struct blackhole {
    int lfd, filler[4], nfill;
    char addr[64];
};

static int blackhole_open(struct blackhole *b)
{
    corio_listen_opts o = {.backlog = 1};

    b->nfill = 0;
    b->lfd = corio_listen("127.0.0.1:0", &o);
    if (b->lfd < 0)
        return -1;
    snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%d", bound_port(b->lfd));
    /* fill the queue: connects that complete, or pend, for 50 ms each */
    for (int i = 0; i < 4; i++) {
        int fd = corio_connect(b->addr, 0, corio_now() + 50 * MS);

        if (fd >= 0)
            b->filler[b->nfill++] = fd;
    }
    return 0;
}

static void blackhole_close(struct blackhole *b)
{
    for (int i = 0; i < b->nfill; i++)
        corio_close(b->filler[i]);
    corio_close(b->lfd);
}

static void *connect_timeout_main(void *arg)
{
    struct blackhole b;
    int64_t t0;

    (void)arg;
    CHECK(blackhole_open(&b) == 0);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_connect(b.addr, 0, t0 + 100 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 100 * MS);
    blackhole_close(&b);
    return NULL;
}

Test(socket, connect_deadline, .timeout = TIMEOUT)
{
    run_main(connect_timeout_main, NULL);
}

/* ---- Cancellation in every wait ------------------------------------------------ */

struct victim {
    int kind;           /* 0 connect, 1 accept, 2 read, 3 recvfrom */
    const char *addr;
    int fd;
    int err;
};

static void *victim_task(void *arg)
{
    struct victim *v = arg;
    char buf[8];
    int rc = -1;

    errno = 0;
    switch (v->kind) {
    case 0:
        rc = corio_connect(v->addr, 0, -1);
        break;
    case 1:
        rc = corio_accept(v->fd, NULL, -1);
        break;
    case 2:
        rc = (int)corio_read(v->fd, buf, sizeof(buf), -1);
        break;
    case 3:
        rc = (int)corio_recvfrom(v->fd, buf, sizeof(buf), NULL, -1);
        break;
    }
    v->err = rc == -1 ? errno : 0;
    if (rc >= 0 && v->kind < 2)
        corio_close(rc);
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct blackhole b;
    int pair[2], udp;
    corio_task *t;

    (void)arg;
    CHECK(blackhole_open(&b) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    udp = corio_udp_open("127.0.0.1:0");
    CHECK(udp >= 0);
    for (int kind = 0; kind < 4; kind++) {
        struct victim v = {.kind = kind, .addr = b.addr, .err = -1};
        int64_t t0 = corio_now();

        v.fd = kind == 1 ? b.lfd : kind == 2 ? pair[0] : udp;
        if (kind == 1) {        /* an accept that waits: a fresh listener */
            v.fd = corio_listen("127.0.0.1:0", NULL);
            CHECK(v.fd >= 0);
        }
        t = corio_spawn(victim_task, &v, NULL);
        CHECK(t != NULL);
        CHECK(corio_sleep(20 * MS) == 0);
        CHECK(corio_task_cancel(t) == 1);
        CHECK(corio_join(t, NULL) == -1 && errno == ECANCELED);
        CHECK(v.err == ECANCELED);
        CHECK(corio_now() - t0 < CORIO_SECOND);
        if (kind == 1)
            corio_close(v.fd);
    }
    /* a deadline in read */
    errno = 0;
    CHECK(corio_read(pair[0], (char[4]){0}, 4, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    corio_close(pair[0]);
    corio_close(pair[1]);
    corio_close(udp);
    blackhole_close(&b);
    return NULL;
}

Test(socket, cancel_connect_accept_read_recvfrom, .timeout = TIMEOUT)
{
    run_main(cancel_main, NULL);
}

/* ---- Resets and writes to a closed peer -------------------------------------------- */

static void *reset_main(void *arg)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    char addr[64], buf[4096];
    int lfd, c, s;
    ssize_t n = 0;

    (void)arg;
    lfd = corio_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    addr_of(lfd, addr, sizeof(addr));
    c = corio_connect(addr, 0, -1);
    s = corio_accept(lfd, NULL, -1);
    CHECK(c >= 0 && s >= 0);
    /* the client resets: the server's read reports it */
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
    CHECK(corio_close(c) == 0);
    errno = 0;
    CHECK(corio_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND) == -1);
    CHECK(errno == ECONNRESET);
    CHECK(corio_close(s) == 0);
    /* writing to a closed peer: EPIPE or ECONNRESET, never SIGPIPE */
    c = corio_connect(addr, 0, -1);
    s = corio_accept(lfd, NULL, -1);
    CHECK(c >= 0 && s >= 0);
    CHECK(corio_close(c) == 0);
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100 && n >= 0; i++)
        n = corio_write(s, buf, sizeof(buf), corio_now() + CORIO_SECOND);
    CHECK(n == -1 && (errno == EPIPE || errno == ECONNRESET));
    CHECK(corio_close(s) == 0 && corio_close(lfd) == 0);
    return NULL;
}

Test(socket, peer_reset_and_write_to_closed_peer, .timeout = TIMEOUT)
{
    run_main(reset_main, NULL);
}

/* ---- UDP ------------------------------------------------------------------------------ */

static void *udp_main(void *arg)
{
    corio_addr srv_addr, from;
    char buf[64];
    int srv, cli;

    (void)arg;
    srv = corio_udp_open("127.0.0.1:0");
    cli = corio_udp_open(NULL);
    CHECK(srv >= 0 && cli >= 0);
    CHECK(corio_sockname(srv, &srv_addr) == 0);
    /* unconnected: addresses each way */
    CHECK(corio_sendto(cli, "hi", 2, &srv_addr, -1) == 2);
    CHECK(corio_recvfrom(srv, buf, sizeof(buf), &from, -1) == 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    CHECK(corio_sendto(srv, "yo!", 3, &from, -1) == 3);
    CHECK(corio_recvfrom(cli, buf, sizeof(buf), NULL, corio_now() + CORIO_SECOND) == 3);
    /* connected: no address */
    CHECK(connect(cli, (struct sockaddr *)&srv_addr.ss, srv_addr.len) == 0);
    CHECK(corio_sendto(cli, "abcd", 4, NULL, -1) == 4);
    CHECK(corio_recvfrom(srv, buf, 2, NULL, -1) == 2); /* truncated */
    errno = 0;
    CHECK(corio_recvfrom(srv, buf, sizeof(buf), NULL, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_udp_open("unix:/tmp/x") == -1 && errno == EINVAL);
    corio_close(srv);
    corio_close(cli);
    return NULL;
}

Test(socket, udp_connected_and_unconnected, .timeout = TIMEOUT)
{
    run_main(udp_main, NULL);
}

/* ---- Servers ---------------------------------------------------------------------------- */

static int handler_cancelled;

static void slow_handler(corio_stream *s, void *arg)
{
    char line[64];

    (void)arg;
    /* answer one line, then wait for another forever */
    if (corio_stream_readline(s, line, sizeof(line), -1) > 0 &&
        corio_stream_write(s, line, strlen(line)) == 0 &&
        corio_stream_drain(s, -1) == 0 &&
        corio_stream_readline(s, line, sizeof(line), -1) == -1 &&
        errno == ECANCELED)
        handler_cancelled++;
}

static void *server_stop_main(void *arg)
{
    corio_server *srv;
    corio_stream *c;
    char addr[64], line[64];
    int64_t t0;

    (void)arg;
    handler_cancelled = 0;
    srv = corio_serve("127.0.0.1:0", NULL, slow_handler, NULL);
    CHECK(srv != NULL);
    addr_of(corio_server_fd(srv), addr, sizeof(addr));
    c = corio_stream_connect(addr, -1);
    CHECK(c != NULL);
    CHECK(corio_stream_write(c, "hi\n", 3) == 0);
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 3);
    CHECK(corio_server_connections(srv) == 1);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_server_stop(srv, t0 + 50 * MS) == -1 && errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 50 * MS);
    CHECK(handler_cancelled == 1);
    /* the server closed its side: the client reads the end */
    CHECK(corio_stream_readline(c, line, sizeof(line), -1) == 0);
    corio_stream_close(c);
    /* a graceful stop: no connection, returns at once */
    srv = corio_serve("127.0.0.1:0", NULL, slow_handler, NULL);
    CHECK(srv != NULL);
    CHECK(corio_server_stop(srv, -1) == 0);
    CHECK(corio_serve("127.0.0.1:0", NULL, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(corio_server_stop(NULL, -1) == -1 && errno == EINVAL);
    return NULL;
}

Test(socket, server_stop_cancels_handlers_after_the_deadline, .timeout = TIMEOUT)
{
    run_main(server_stop_main, NULL);
}

/* ---- 10,000 connections on one loop ------------------------------------------------------ */

struct many {
    char addr[64];
    corio_event *go;        /* set when every client is connected */
    int connected, ok;
};

static void byte_handler(corio_stream *s, void *arg)
{
    char b;

    (void)arg;
    if (corio_stream_readexactly(s, &b, 1, -1) == 1 &&
        corio_stream_write(s, &b, 1) == 0)
        corio_stream_drain(s, -1);
    corio_stream_read(s, &b, 1, -1); /* until the client closes */
}

static int many_n;

static void *many_client(void *arg)
{
    struct many *m = arg;
    char b = 'x';
    int fd = corio_connect(m->addr, 0, corio_now() + 30 * CORIO_SECOND);

    if (fd == -1)
        return corio_task_fail(errno);
    if (++m->connected == many_n)
        corio_event_set(m->go);
    if (corio_event_wait(m->go, -1) == 0 && corio_write(fd, &b, 1, -1) == 1 &&
        corio_read(fd, &b, 1, -1) == 1 && b == 'x')
        m->ok++;
    corio_close(fd);
    return NULL;
}

static void *many_main(void *arg)
{
    corio_listen_opts o = {.backlog = 4096};
    static struct many m;
    corio_server *srv;
    corio_task **ts;
    size_t peak;

    (void)arg;
    memset(&m, 0, sizeof(m));
    srv = corio_serve("127.0.0.1:0", &o, byte_handler, NULL);
    CHECK(srv != NULL);
    addr_of(corio_server_fd(srv), m.addr, sizeof(m.addr));
    m.go = corio_event_new();
    ts = calloc((size_t)many_n, sizeof(*ts));
    CHECK(m.go != NULL && ts != NULL);
    for (int i = 0; i < many_n; i++) {
        corio_task_attr a = {.stack_mode = CORIO_STACK_COMPACT};

        ts[i] = corio_spawn(many_client, &m, &a);
        CHECK(ts[i] != NULL);
    }
    CHECK(corio_event_wait(m.go, corio_now() + 50 * CORIO_SECOND) == 0);
    CHECK(corio_sleep(0) == 0);
    peak = corio_server_connections(srv);
    CHECK(corio_joinall(ts, (size_t)many_n, NULL) == 0);
    CHECK(m.ok == many_n);
    CHECK(peak >= (size_t)many_n * 9 / 10); /* accepted while all were open */
    CHECK(corio_server_stop(srv, corio_now() + 5 * CORIO_SECOND) == 0);
    corio_event_free(m.go);
    free(ts);
    return NULL;
}

Test(socket, ten_thousand_connections_on_one_loop, .timeout = TIMEOUT)
{
    struct rlimit rl;
    rlim_t need;

    many_n = RUNNING_ON_VALGRIND ? 500 : 10000;
    need = (rlim_t)many_n * 2 + 256;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            cr_skip_test("RLIMIT_NOFILE hard limit %lu < %lu",
                         (unsigned long)rl.rlim_max, (unsigned long)need);
        rl.rlim_cur = need;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    run_main(many_main, NULL);
}
