/* tests/test_io_socket.c -- addresses and TCP/Unix/UDP sockets
 * (include/corio/io.h): every call and its error paths, cancellation and
 * deadlines in connect, accept, read, write and recvfrom, deadline scopes,
 * resets and half-close, a close under a waiting task, and no fd leaked.
 * Servers are test_io_server.c, streams test_io_stream.c.
 *
 * Loopback only. Every test has the same .timeout (Criterion leaks in its
 * runner otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"
#include "blackhole.h"
#include "timing.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT 60
#define MS CORIO_MSEC
#define LONG_PATH "a-unix-socket-path-longer-than-sun_path-which-holds-108-" \
                  "bytes-on-linux-is-refused-with-EINVAL-not-truncated.sock"

/* Run fn as the main task; it returns NULL or a failure text. No fd may be
 * left open by it. */
static void run_main(corio_fn fn, void *arg)
{
    signal(SIGPIPE, SIG_DFL); /* a write must never raise it */
    run_main_no_fd_leak(fn, arg);
}

static void addr_of(int fd, char *buf, size_t size)
{
    corio_addr a;

    corio_socket_name(fd, &a);
    corio_addr_format(&a, buf, size);
}

/* ---- Addresses ----------------------------------------------------------- */

Test(socket, addresses_parse_and_format, .timeout = TIMEOUT)
{
    static const char *good[] = {"127.0.0.1:80", "[::1]:8080",
                                 "unix:/tmp/x.sock", "0.0.0.0:0"};
    static const char *bad[] = {"localhost:80", "127.0.0.1",
                                "127.0.0.1:65536", "127.0.0.1:",
                                "127.0.0.1:8x", "[::1]80", "[::1]", "unix:",
                                "[nope]:1", ":", "", "1.2.3.4:-1",
                                "[::1]:99999", "unix:/" LONG_PATH,
                                "127.0.0.1:65616", "127.0.0.1:99999999999",
                                "127.0.0.1:80x", "127.0.0.1: 80",
                                "127.0.0.1:+80", "127.0.0.1:0x50",
                                "[::1]:65616", "[::1]:-1", "[::1]:80x"};
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

/* ---- TCP ----------------------------------------------------------------- */

static void *tcp_roundtrip_main(void *arg)
{
    const char *where = arg;
    char addr[128], buf[16];
    corio_addr peer;
    int lfd, c, s;

    lfd = corio_socket_listen(where, NULL);
    CHECK(lfd >= 0);
    addr_of(lfd, addr, sizeof(addr));
    c = corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND);
    CHECK(c >= 0);
    s = corio_socket_accept(lfd, &peer, corio_now() + CORIO_SECOND);
    CHECK(s >= 0);
    CHECK(corio_fd_write(c, "ping", 4, -1) == 4);
    CHECK(corio_fd_read(s, buf, sizeof(buf), -1) == 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK(corio_fd_write(s, "pong!", 5, -1) == 5);
    CHECK(corio_fd_read(c, buf, sizeof(buf), -1) == 5);
    /* half-close: the server reads the end, still writes, the client reads */
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK(corio_fd_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_fd_write(s, "bye", 3, -1) == 3);
    CHECK(corio_fd_read(c, buf, sizeof(buf), -1) == 3);
    CHECK(corio_fd_close(s) == 0 && corio_fd_close(c) == 0 && corio_fd_close(lfd) == 0);
    return NULL;
}

Test(socket, tcp_ipv4_connect_accept_read_write_half_close, .timeout = TIMEOUT)
{
    run_main(tcp_roundtrip_main, "127.0.0.1:0");
}

Test(socket, tcp_ipv6, .timeout = TIMEOUT)
{
    if (!have_ipv6())
        cr_skip_test("no IPv6 loopback here");
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
    int lfd = corio_socket_listen("127.0.0.1:0", NULL);

    (void)arg;
    CHECK(lfd >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(lfd));
    CHECK(corio_fd_close(lfd) == 0);
    errno = 0;
    CHECK(corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND) == -1);
    CHECK(errno == ECONNREFUSED);
    CHECK(corio_socket_connect("nonsense", NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_socket_connect("unix:", NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_socket_connect(NULL, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_socket_listen("nonsense", NULL) == -1 && errno == EINVAL);
    CHECK(corio_socket_connect_addr(NULL, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_fd_close(-1) == -1 && errno == EBADF);
    /* the port in use */
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(lfd));
    CHECK(corio_socket_listen(addr, NULL) == -1 && errno == EADDRINUSE);
    CHECK(corio_fd_close(lfd) == 0);
    return NULL;
}

Test(socket, connect_refused_and_bad_input, .timeout = TIMEOUT)
{
    run_main(refused_main, NULL);
}

/* A port out of range never wraps into another one. "127.0.0.1:65616" is
 * no address, so connect took it for a name, and the resolver kept the
 * low 16 bits of the number: port 80, past any allow-list of ports. Here
 * the port is the listener's plus 65536, and nothing may reach it. */
static void *port_wrap_main(void *arg)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    static const char *const ports[] = {"-1", "99999999999", "80x", " 80",
                                        "+80", "0x50", "65536"};
    char addr[64];
    int lfd, port, fd;

    (void)arg;
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    port = bound_port(lfd);
    for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
        snprintf(addr, sizeof(addr), "%s:%d", hosts[h], port + 65536);
        errno = 0;
        CHECK(corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND) ==
              -1);
        CHECK(errno == EINVAL);
        errno = 0;
        CHECK(corio_stream_connect(addr, corio_now() + CORIO_SECOND) == NULL);
        CHECK(errno == EINVAL);
        for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++) {
            snprintf(addr, sizeof(addr), "%s:%s", hosts[h], ports[p]);
            errno = 0;
            CHECK(corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND) ==
                  -1);
            CHECK(errno == EINVAL);
        }
    }
    CHECK(corio_socket_listen("127.0.0.1:65616", NULL) == -1 && errno == EINVAL);
    CHECK(corio_udp_open("127.0.0.1:65616") == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_socket_accept(lfd, NULL, corio_now() + 50 * MS) == -1);
    CHECK(errno == ETIMEDOUT); /* nothing came */
    /* in range, leading zeros are decimal digits */
    snprintf(addr, sizeof(addr), "localhost:0%d", port);
    fd = corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND);
    CHECK(fd >= 0);
    corio_fd_close(fd);
    corio_fd_close(lfd);
    return NULL;
}

Test(socket, ports_out_of_range_never_wrap, .timeout = TIMEOUT)
{
    run_main(port_wrap_main, NULL);
}

/* Sizes above SSIZE_MAX (the count could not be returned; the kernel would
 * read or write past the caller's buffer up to a fault) and addresses
 * longer than their storage are EINVAL, before any system call. */
static void *huge_sizes_main(void *arg)
{
    size_t huge = (size_t)SSIZE_MAX + 1;
    corio_addr a;
    char buf[8];
    int sv[2], u;

    (void)arg;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    u = corio_udp_open("127.0.0.1:0");
    CHECK(u >= 0 && corio_socket_name(u, &a) == 0);
    errno = 0;
    CHECK(corio_fd_write(sv[0], buf, huge, -1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_fd_read(sv[1], buf, huge, -1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_udp_sendto(u, buf, huge, &a, -1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_udp_recvfrom(u, buf, huge, NULL, -1) == -1 && errno == EINVAL);
    a.len = sizeof(a.ss) + 1;
    errno = 0;
    CHECK(corio_udp_sendto(u, "x", 1, &a, -1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_socket_connect_addr(&a, NULL, -1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(corio_addr_format(&a, buf, sizeof(buf)) == -1 && errno == EINVAL);
    /* nothing was sent: the pair is empty and still works */
    CHECK(corio_fd_write(sv[0], "ok", 2, -1) == 2);
    CHECK(corio_fd_read(sv[1], buf, sizeof(buf), -1) == 2);
    corio_fd_close(u);
    corio_fd_close(sv[0]);
    corio_fd_close(sv[1]);
    return NULL;
}

Test(socket, sizes_above_ssize_max_and_long_addresses, .timeout = TIMEOUT)
{
    run_main(huge_sizes_main, NULL);
}

static void *connect_timeout_main(void *arg)
{
    struct blackhole b;
    int64_t t0;

    (void)arg;
    CHECK(blackhole_open(&b) == 0);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_socket_connect(b.addr, NULL, t0 + 100 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 100 * MS);
    blackhole_close(&b);
    return NULL;
}

Test(socket, connect_deadline, .timeout = TIMEOUT)
{
    run_main(connect_timeout_main, NULL);
}

/* ---- Cancellation in every wait ------------------------------------------ */

struct victim {
    int kind;           /* 0 connect, 1 accept, 2 read, 3 recvfrom, 4 write */
    const char *addr;
    int fd;
    int err;
};

static void *victim_task(void *arg)
{
    struct victim *v = arg;
    static char big[8 * 1024 * 1024]; /* more than a socket buffer holds */
    char buf[8];
    int rc = -1;

    errno = 0;
    switch (v->kind) {
    case 0:
        rc = corio_socket_connect(v->addr, NULL, -1);
        break;
    case 1:
        rc = corio_socket_accept(v->fd, NULL, -1);
        break;
    case 2:
        rc = (int)corio_fd_read(v->fd, buf, sizeof(buf), -1);
        break;
    case 3:
        rc = (int)corio_udp_recvfrom(v->fd, buf, sizeof(buf), NULL, -1);
        break;
    case 4:
        rc = (int)corio_fd_write(v->fd, big, sizeof(big), -1);
        break;
    }
    v->err = rc == -1 ? errno : 0;
    if (rc >= 0 && v->kind < 2)
        corio_fd_close(rc);
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
    for (int kind = 0; kind < 5; kind++) {
        struct victim v = {.kind = kind, .addr = b.addr, .err = -1};
        int64_t t0 = corio_now();

        v.fd = kind == 3 ? udp : pair[0];
        if (kind == 1) {        /* an accept that waits: a fresh listener */
            v.fd = corio_socket_listen("127.0.0.1:0", NULL);
            CHECK(v.fd >= 0);
        }
        t = corio_task_spawn(victim_task, &v, NULL);
        CHECK(t != NULL);
        CHECK(corio_sleep(20 * MS) == 0);
        CHECK(corio_task_cancel(t) == 1);
        CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
        CHECK(v.err == ECANCELED);
        CHECK(corio_now() - t0 < CORIO_SECOND + test_extra_ms() * MS);
        if (kind == 1)
            corio_fd_close(v.fd);
    }
    /* deadlines in read and in write (the buffer is full now) */
    errno = 0;
    CHECK(corio_fd_read(pair[0], (char[4]){0}, 4, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    errno = 0;
    CHECK(corio_fd_write(pair[0], "x", 1, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    corio_fd_close(pair[0]);
    corio_fd_close(pair[1]);
    corio_fd_close(udp);
    blackhole_close(&b);
    return NULL;
}

Test(socket, cancel_connect_accept_read_recvfrom_write, .timeout = TIMEOUT)
{
    run_main(cancel_main, NULL);
}

/* ---- Resets and writes to a closed peer ---------------------------------- */

static void *reset_main(void *arg)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    char addr[64], buf[4096];
    int lfd, c, s;
    ssize_t n = 0;

    (void)arg;
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    addr_of(lfd, addr, sizeof(addr));
    c = corio_socket_connect(addr, NULL, -1);
    s = corio_socket_accept(lfd, NULL, -1);
    CHECK(c >= 0 && s >= 0);
    /* the client resets: the server's read reports it */
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
    CHECK(corio_fd_close(c) == 0);
    errno = 0;
    CHECK(corio_fd_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND) == -1);
    CHECK(errno == ECONNRESET);
    CHECK(corio_fd_close(s) == 0);
    /* writing to a closed peer: EPIPE or ECONNRESET, never SIGPIPE */
    c = corio_socket_connect(addr, NULL, -1);
    s = corio_socket_accept(lfd, NULL, -1);
    CHECK(c >= 0 && s >= 0);
    CHECK(corio_fd_close(c) == 0);
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100 && n >= 0; i++)
        n = corio_fd_write(s, buf, sizeof(buf), corio_now() + CORIO_SECOND);
    CHECK(n == -1 && (errno == EPIPE || errno == ECONNRESET));
    CHECK(corio_fd_close(s) == 0 && corio_fd_close(lfd) == 0);
    return NULL;
}

Test(socket, peer_reset_and_write_to_closed_peer, .timeout = TIMEOUT)
{
    run_main(reset_main, NULL);
}

/* ---- UDP ----------------------------------------------------------------- */

static void *udp_main(void *arg)
{
    corio_addr srv_addr, from;
    char buf[64];
    int srv, cli;

    (void)arg;
    srv = corio_udp_open("127.0.0.1:0");
    cli = corio_udp_open(NULL);
    CHECK(srv >= 0 && cli >= 0);
    CHECK(corio_socket_name(srv, &srv_addr) == 0);
    /* unconnected: addresses each way */
    CHECK(corio_udp_sendto(cli, "hi", 2, &srv_addr, -1) == 2);
    CHECK(corio_udp_recvfrom(srv, buf, sizeof(buf), &from, -1) == 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    CHECK(corio_udp_sendto(srv, "yo!", 3, &from, -1) == 3);
    CHECK(corio_udp_recvfrom(cli, buf, sizeof(buf), NULL,
                         corio_now() + CORIO_SECOND) == 3);
    /* connected: no address */
    CHECK(corio_addr_format(&srv_addr, buf, sizeof(buf)) > 0);
    CHECK(corio_udp_connect(cli, buf) == 0);
    CHECK(corio_udp_sendto(cli, "abcd", 4, NULL, -1) == 4);
    CHECK(corio_udp_recvfrom(srv, buf, 2, NULL, -1) == 2); /* truncated */
    errno = 0;
    CHECK(corio_udp_recvfrom(srv, buf, sizeof(buf), NULL,
                         corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_udp_open("unix:/tmp/x") == -1 && errno == EINVAL);
    CHECK(corio_udp_open("nonsense") == -1 && errno == EINVAL);
    CHECK(corio_udp_connect(cli, "nonsense") == -1 && errno == EINVAL);
    /* a connected socket hears of a closed port: ECONNREFUSED */
    CHECK(corio_socket_name(srv, &from) == 0);
    corio_fd_close(srv);
    CHECK(corio_udp_sendto(cli, "anyone?", 7, NULL, -1) == 7);
    errno = 0;
    CHECK(corio_udp_recvfrom(cli, buf, sizeof(buf), NULL,
                         corio_now() + CORIO_SECOND) == -1);
    CHECK(errno == ECONNREFUSED);
    corio_fd_close(cli);
    /* unconnected and no address */
    cli = corio_udp_open(NULL);
    CHECK(cli >= 0);
    CHECK(corio_udp_sendto(cli, "x", 1, NULL, -1) == -1 && errno == EDESTADDRREQ);
    corio_fd_close(cli);
    return NULL;
}

Test(socket, udp_connected_and_unconnected, .timeout = TIMEOUT)
{
    run_main(udp_main, NULL);
}

static void *udp6_main(void *arg)
{
    corio_addr to, from;
    char buf[16], text[64];
    int a, b;

    (void)arg;
    a = corio_udp_open("[::1]:0");
    b = corio_udp_open("[::1]:0");
    CHECK(a >= 0 && b >= 0);
    CHECK(corio_socket_name(b, &to) == 0);
    CHECK(corio_udp_sendto(a, "six", 3, &to, -1) == 3);
    CHECK(corio_udp_recvfrom(b, buf, sizeof(buf), &from, -1) == 3);
    CHECK(corio_addr_format(&from, text, sizeof(text)) > 0);
    CHECK(strncmp(text, "[::1]:", 6) == 0);
    corio_fd_close(a);
    corio_fd_close(b);
    return NULL;
}

Test(socket, udp_ipv6, .timeout = TIMEOUT)
{
    if (!have_ipv6())
        cr_skip_test("no IPv6 loopback here");
    run_main(udp6_main, NULL);
}

/* ---- Deadlines, scopes, bad fds, a close under a waiting task ------------ */

struct closed_under {
    int fd;
    int err;
};

static void *reader_of(void *arg)
{
    struct closed_under *c = arg;
    char b;

    errno = 0;
    if (corio_fd_read(c->fd, &b, 1, -1) == -1)
        c->err = errno;
    return NULL;
}

static void *edges_main(void *arg)
{
    struct closed_under cu = {0};
    corio_scope scope;
    corio_addr a;
    corio_task *t;
    int lfd, fd, pair[2];
    int64_t t0;

    (void)arg;
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    /* accept with a deadline, and with one that has passed already */
    errno = 0;
    CHECK(corio_socket_accept(lfd, NULL, corio_now() + 20 * MS) == -1 &&
          errno == ETIMEDOUT);
    CHECK(corio_socket_accept(lfd, NULL, 0) == -1 && errno == ETIMEDOUT);
    /* a scope bounds calls that have no deadline of their own */
    t0 = corio_now();
    corio_scope_enter(&scope, t0 + 30 * MS);
    errno = 0;
    CHECK(corio_socket_accept(lfd, NULL, -1) == -1 && errno == ETIMEDOUT);
    CHECK(corio_scope_exit(&scope));
    CHECK(corio_now() - t0 >= 30 * MS);
    corio_fd_close(lfd);
    /* bad fds and sockets that cannot do it */
    fd = corio_udp_open(NULL);
    CHECK(fd >= 0);
    CHECK(corio_socket_accept(fd, NULL, -1) == -1 && errno == EOPNOTSUPP);
    corio_fd_close(fd);
    CHECK(corio_socket_accept(-1, NULL, -1) == -1 && errno == EBADF);
    CHECK(corio_fd_read(-1, &a, 1, -1) == -1 && errno == EBADF);
    CHECK(corio_fd_write(-1, "x", 1, -1) == -1 && errno == EBADF);
    CHECK(corio_socket_name(-1, &a) == -1 && errno == EBADF);
    CHECK(corio_socket_name(0, NULL) == -1 && errno == EINVAL);
    CHECK(corio_addr_format(NULL, (char[8]){0}, 8) == -1 && errno == EINVAL);
    /* closing an fd a task waits on: its call fails with EBADF */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    cu.fd = pair[0];
    t = corio_task_spawn(reader_of, &cu, NULL);
    CHECK(t != NULL && corio_sleep(10 * MS) == 0);
    CHECK(corio_fd_close(pair[0]) == 0);
    CHECK(corio_task_join(t, NULL) == 0 && cu.err == EBADF);
    corio_fd_close(pair[1]);
    return NULL;
}

Test(socket, deadlines_scopes_bad_fds_and_close_under_a_waiter,
     .timeout = TIMEOUT)
{
    run_main(edges_main, NULL);
}

/* A Unix listener whose queue is full: connect(2) says EAGAIN, and
 * corio_socket_connect tries again until its deadline. */
static void *unix_full_main(void *arg)
{
    const char *addr = arg;
    corio_listen_opts o = {.backlog = 1};
    corio_addr a;
    int lfd, fill[8], nfill = 0, fd;
    int64_t t0;

    lfd = corio_socket_listen(addr, &o);
    CHECK(lfd >= 0);
    CHECK(corio_addr_parse(&a, addr) == 0);
    while (nfill < 8) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&a.ss, a.len) == -1) {
            CHECK(errno == EAGAIN);
            close(fd);
            break;
        }
        fill[nfill++] = fd;
    }
    CHECK(nfill < 8);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_socket_connect(addr, NULL, t0 + 50 * MS) == -1 && errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= 50 * MS);
    /* room again: it connects */
    fd = corio_socket_accept(lfd, NULL, -1);
    CHECK(fd >= 0);
    corio_fd_close(fd);
    fd = corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND);
    CHECK(fd >= 0);
    corio_fd_close(fd);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    corio_fd_close(lfd);
    unlink(addr + 5);
    return NULL;
}

Test(socket, unix_connect_to_a_full_queue_waits_until_its_deadline,
     .timeout = TIMEOUT)
{
    char addr[64];

    snprintf(addr, sizeof(addr), "unix:/tmp/corio-full-%d.sock", (int)getpid());
    run_main(unix_full_main, addr);
}

/* ---- Short reads ----------------------------------------------------------
 * After a read shorter than asked on a TCP socket, the next corio_fd_read
 * waits for the poller's next edge instead of reading to EAGAIN. What must
 * still come through: bytes that arrive later, and an end of stream (or
 * bytes) already queued behind the short read, which brings no new edge. */

static void *send_then_end(void *arg)
{
    int fd = *(int *)arg;

    /* no wait between the two: one edge for both */
    if (write(fd, "abc", 3) != 3 || shutdown(fd, SHUT_WR) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *short_read_main(void *arg)
{
    char addr[64], buf[100];
    int lfd, c, s;
    corio_task *t;

    (void)arg;
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    addr_of(lfd, addr, sizeof(addr));
    c = corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND);
    CHECK(c >= 0);
    s = corio_socket_accept(lfd, NULL, corio_now() + CORIO_SECOND);
    CHECK(s >= 0);
    /* bytes that come after a short read */
    for (int i = 0; i < 3; i++) {
        CHECK(corio_fd_write(c, "ping", 4, -1) == 4);
        CHECK(corio_fd_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND)
              == 4);
    }
    /* two writes queued before the read: one short read takes both */
    CHECK(corio_fd_write(c, "ab", 2, -1) == 2 && corio_fd_write(c, "cd", 2, -1) == 2);
    CHECK(corio_sleep(10 * CORIO_MSEC) == 0);
    CHECK(corio_fd_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND) == 4);
    /* bytes and the end in one edge, while the reader waits: the short read
     * takes the bytes, the next read the end, without waiting */
    t = corio_task_spawn(send_then_end, &c, NULL);
    CHECK(t != NULL);
    CHECK(corio_fd_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND) == 3);
    CHECK(corio_fd_read(s, buf, sizeof(buf), corio_now() + CORIO_SECOND) == 0);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(corio_fd_close(s) == 0 && corio_fd_close(c) == 0 && corio_fd_close(lfd) == 0);
    return NULL;
}

Test(socket, a_short_read_then_more_bytes_or_the_end, .timeout = TIMEOUT)
{
    run_main(short_read_main, NULL);
}
