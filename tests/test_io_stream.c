/* tests/test_io_stream.c -- buffered streams (corio_stream_*): read,
 * readline, readuntil, readexactly and their limits and end-of-stream
 * cases; write, drain and backpressure against a slow reader; shutdown and
 * half-close; resets mid-stream; cancellation and deadlines in every call
 * that waits; several tasks on one stream, and a close under them; a
 * transport of the test's own (the interface TLS plugs into); bad input.
 * Streams run over socketpairs, pipes, loopback TCP (IPv4, IPv6) and Unix
 * sockets.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
#define _GNU_SOURCE /* pipe2 */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"
#include "timing.h"
#include "io/io_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT 60
#define MS CORIO_MSEC

static void run_main(corio_fn fn, void *arg)
{
    run_main_no_fd_leak(fn, arg);
}

/* A stream on one end of a socketpair; the other end is a plain fd. */
static corio_stream *pair_stream(int *peer, const corio_stream_opts *o)
{
    int sv[2];
    corio_stream *s;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) == -1)
        return NULL;
    s = corio_stream_new(sv[0], o);
    *peer = sv[1];
    return s;
}

/* ---- Reading ------------------------------------------------------------- */

static void *late_writer(void *arg)
{
    int fd = *(int *)arg;

    if (corio_sleep(10 * MS) == -1 || corio_fd_write(fd, "-cdx", 4, -1) != 4)
        return corio_task_fail(errno);
    return NULL;
}

static void *read_main(void *arg)
{
    corio_stream_opts o = {.limit = 16};
    char buf[64];
    corio_stream *s;
    int peer;

    (void)arg;
    s = pair_stream(&peer, &o);
    CHECK(s != NULL);
    CHECK(corio_fd_write(peer, "one\ntwo\r\n\r\nthree", 16, -1) == 16);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4);
    CHECK(strcmp(buf, "one\n") == 0);
    CHECK(corio_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof(buf), -1) == 7);
    CHECK(strcmp(buf, "two\r\n\r\n") == 0);
    CHECK(corio_stream_buffered(s) == 5);
    CHECK(corio_stream_readexactly(s, buf, 5, -1) == 5);
    CHECK(memcmp(buf, "three", 5) == 0);
    /* a separator split across two arrivals: "ab-" now, "-cdx" later */
    CHECK(corio_fd_write(peer, "ab-", 3, -1) == 3);
    {
        int p2 = peer;
        corio_task *w = corio_task_spawn(late_writer, &p2, NULL);

        CHECK(w != NULL);
        CHECK(corio_stream_readuntil(s, "--", 2, buf, sizeof(buf), -1) == 4);
        CHECK(strcmp(buf, "ab--") == 0);
        CHECK(corio_task_join(w, NULL) == 0);
    }
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 3);
    CHECK(memcmp(buf, "cdx", 3) == 0);
    /* a line longer than the limit: EMSGSIZE, nothing consumed */
    CHECK(corio_fd_write(peer, "0123456789abcdefghij\n", 21, -1) == 21);
    errno = 0;
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == -1);
    CHECK(errno == EMSGSIZE);
    CHECK(corio_stream_read(s, buf, 10, -1) == 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 11);
    /* a line longer than the caller's buffer: EMSGSIZE, still usable */
    CHECK(corio_fd_write(peer, "abcdef\n", 7, -1) == 7);
    CHECK(corio_stream_readline(s, buf, 4, -1) == -1 && errno == EMSGSIZE);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 7);
    /* the end: readexactly fails with CORIO_EEOF, the partial data stays */
    CHECK(corio_fd_write(peer, "tail", 4, -1) == 4);
    CHECK(close(peer) == 0);
    errno = 0;
    CHECK(corio_stream_readexactly(s, buf, 10, -1) == -1 &&
          errno == CORIO_EEOF);
    CHECK(corio_stream_buffered(s) == 4);
    CHECK(corio_stream_readuntil(s, "\n", 1, buf, sizeof(buf), -1) == -1);
    CHECK(errno == CORIO_EEOF);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4);
    CHECK(strcmp(buf, "tail") == 0);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, read_readline_readuntil_readexactly_limits_and_end,
     .timeout = TIMEOUT)
{
    run_main(read_main, NULL);
}

static void *bad_input_main(void *arg)
{
    char buf[8];
    corio_stream *s;
    int peer;

    (void)arg;
    errno = 0;
    CHECK(corio_stream_new(-1, NULL) == NULL && errno == EINVAL);
    CHECK(corio_stream_read(NULL, buf, 1, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_readline(NULL, buf, 8, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_write(NULL, "x", 1) == -1 && errno == EINVAL);
    CHECK(corio_stream_drain(NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_close(NULL) == 0);
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    CHECK(corio_stream_readuntil(s, "", 0, buf, 8, -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_stream_readuntil(s, "\n", 1, buf, 0, -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_stream_read(s, buf, 0, -1) == 0);
    CHECK(corio_stream_connect("no-port", -1) == NULL && errno == EINVAL);
    close(peer);
    corio_stream_close(s);
    return NULL;
}

Test(stream, bad_input, .timeout = TIMEOUT)
{
    run_main(bad_input_main, NULL);
}

/* Sizes a caller cannot mean: above SSIZE_MAX the count could not be
 * returned. readexactly used to double its buffer's size until it wrapped
 * to 0, and spin there for ever. Each fails at once, and the stream is
 * still usable. */
static void *huge_sizes_main(void *arg)
{
    static const size_t huge[] = {(size_t)-1, SIZE_MAX / 2 + 1,
                                  (size_t)SSIZE_MAX + 1};
    char buf[8];
    corio_stream *s;
    int peer;

    (void)arg;
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    CHECK(corio_fd_write(peer, "abcdef", 6, -1) == 6);
    CHECK(corio_stream_readexactly(s, buf, 2, -1) == 2); /* buffered now */
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        errno = 0;
        CHECK(corio_stream_readexactly(s, buf, huge[i], -1) == -1);
        CHECK(errno == EINVAL);
        errno = 0;
        CHECK(corio_stream_read(s, buf, huge[i], -1) == -1 && errno == EINVAL);
        errno = 0;
        CHECK(corio_stream_write(s, buf, huge[i]) == -1 && errno == EINVAL);
        CHECK(corio_stream_buffered(s) == 4 && corio_stream_pending(s) == 0);
    }
    CHECK(corio_stream_readexactly(s, buf, 4, -1) == 4);
    CHECK(memcmp(buf, "cdef", 4) == 0);
    CHECK(corio_stream_write(s, "ok", 2) == 0);
    CHECK(corio_stream_drain(s, -1) == 0);
    CHECK(corio_fd_read(peer, buf, sizeof(buf), -1) == 2);
    close(peer);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, sizes_above_ssize_max_fail_at_once, .timeout = TIMEOUT)
{
    run_main(huge_sizes_main, NULL);
}

/* ---- Writing: backpressure ----------------------------------------------- */

#define CHUNK (16 * 1024)
#define TOTAL (4 * 1024 * 1024)

struct slow {
    int fd;
    size_t got;
    int bad;
};

static void *slow_reader(void *arg)
{
    struct slow *r = arg;
    char buf[4096];

    for (;;) {
        ssize_t n = corio_fd_read(r->fd, buf, sizeof(buf), -1);

        if (n <= 0)
            return n == 0 ? NULL : corio_task_fail(errno);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (char)('a' + (r->got + (size_t)i) % 26))
                r->bad++;
        r->got += (size_t)n;
        if ((r->got / sizeof(buf)) % 64 == 0 && corio_sleep(MS) == -1)
            return corio_task_fail(errno);
    }
}

static void *backpressure_main(void *arg)
{
    corio_stream_opts o = {.high_water = 32 * 1024};
    static char chunk[CHUNK];
    struct slow r = {0};
    size_t most = 0;
    corio_stream *s;
    corio_task *t;

    (void)arg;
    s = pair_stream(&r.fd, &o);
    CHECK(s != NULL);
    t = corio_task_spawn(slow_reader, &r, NULL);
    CHECK(t != NULL);
    for (size_t sent = 0; sent < TOTAL; sent += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = (char)('a' + (sent + i) % 26);
        CHECK(corio_stream_write(s, chunk, CHUNK) == 0);
        if (corio_stream_pending(s) > most)
            most = corio_stream_pending(s);
        CHECK(corio_stream_drain(s, -1) == 0);
        CHECK(corio_stream_pending(s) <= o.high_water);
    }
    /* memory stayed bounded: never more than high water + one chunk */
    CHECK(most <= o.high_water + CHUNK);
    CHECK(corio_stream_shutdown(s, -1) == 0);
    CHECK(corio_stream_write(s, "x", 1) == -1 && errno == EPIPE);
    CHECK(corio_task_join(t, NULL) == 0);
    CHECK(r.got == TOTAL && r.bad == 0);
    close(r.fd);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, a_fast_writer_drains_to_a_slow_reader_in_bounded_memory,
     .timeout = TIMEOUT)
{
    run_main(backpressure_main, NULL);
}

/* ---- Cancellation and resets --------------------------------------------- */

/* Cancellation sticks at the calls that need not wait too (a buffered
 * line, bytes on the socket, a connection in the queue): they fail with
 * ECANCELED before they start, and take nothing; in a shield they work. A
 * scope whose deadline has passed fails them with ETIMEDOUT. */
static char *cancelled_checks(void)
{
    char buf[16];
    corio_stream *s;
    int peer, lfd, c;
    corio_addr a;

    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0 && corio_socket_name(lfd, &a) == 0);
    c = corio_socket_connect_addr(&a, NULL, corio_now() + CORIO_SECOND);
    CHECK(c >= 0);
    CHECK(corio_fd_write(peer, "one\ntwo\n", 8, -1) == 8);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4); /* buffers */
    CHECK(corio_fd_write(s->t->fd, "x", 1, -1) == 1);         /* to peer */
    {
        CORIO_SCOPE_NAMED(sc, corio_now() - 1); /* expired */

        errno = 0;
        CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == -1);
        CHECK(errno == ETIMEDOUT);
        CHECK(corio_scope_exit(&sc));
    }
    /* cancelled */
    CHECK(corio_task_cancel(corio_task_self()) == 1);
    errno = 0;
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == -1);
    CHECK(errno == ECANCELED);
    errno = 0;
    CHECK(corio_stream_drain(s, -1) == -1 && errno == ECANCELED);
    errno = 0;
    CHECK(corio_fd_read(peer, buf, sizeof(buf), -1) == -1 && errno == ECANCELED);
    errno = 0;
    CHECK(corio_fd_write(peer, "y", 1, -1) == -1 && errno == ECANCELED);
    errno = 0;
    CHECK(corio_socket_accept(lfd, NULL, -1) == -1 && errno == ECANCELED);
    {
        CORIO_SHIELD(corio_now() + CORIO_SECOND);
        int fd;

        CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4);
        CHECK(strcmp(buf, "two\n") == 0);
        CHECK(corio_fd_read(peer, buf, sizeof(buf), -1) == 1);
        fd = corio_socket_accept(lfd, NULL, -1);
        CHECK(fd >= 0);
        corio_fd_close(fd);
    }
    corio_fd_close(c);
    corio_fd_close(lfd);
    close(peer);
    corio_stream_close(s);
    return NULL;
}

/* The checks, in a task that ends cancelled; *arg gets their failure. */
static void *cancelled_task(void *arg)
{
    *(char **)arg = cancelled_checks();
    return NULL;
}

static void *cancelled_main(void *arg)
{
    char *fail = "did not run";
    corio_task *t = corio_task_spawn(cancelled_task, &fail, NULL);
    int rc;

    (void)arg;
    CHECK(t != NULL);
    rc = corio_task_join(t, NULL);
    if (fail != NULL)
        return fail;
    CHECK(rc == -1 && errno == ECANCELED);
    return NULL;
}

Test(stream, a_cancelled_task_s_calls_fail_even_when_they_need_not_wait,
     .timeout = TIMEOUT)
{
    run_main(cancelled_main, NULL);
}

/* A call that waits: 0 readline, 1 drain, 2 readexactly, 3 readuntil,
 * 4 read, 5 shutdown (it drains first). */
struct victim {
    corio_stream *s;
    int what;
    int err;
};

static void *victim_task(void *arg)
{
    struct victim *v = arg;
    static char big[8 * 1024 * 1024]; /* more than any socket buffer */
    char line[64];
    int rc;

    errno = 0;
    switch (v->what) {
    case 0:
        rc = (int)corio_stream_readline(v->s, line, sizeof(line), -1);
        break;
    case 2:
        rc = (int)corio_stream_readexactly(v->s, line, sizeof(line), -1);
        break;
    case 3:
        rc = (int)corio_stream_readuntil(v->s, "--", 2, line, sizeof(line), -1);
        break;
    case 4:
        rc = (int)corio_stream_read(v->s, line, sizeof(line), -1);
        break;
    default: /* 1, 5 */
        rc = corio_stream_write(v->s, big, sizeof(big));
        if (rc == 0 && v->what == 1)
            rc = corio_stream_drain(v->s, -1);
        else if (rc == 0)
            rc = corio_stream_shutdown(v->s, -1);
        break;
    }
    v->err = rc == -1 ? errno : 0;
    return NULL;
}

static void *cancel_main(void *arg)
{
    for (int what = 0; what < 6; what++) {
        struct victim v = {.what = what, .err = -1};
        corio_task *t;
        char buf[8];
        int peer;
        bool reads_a_line = what == 0 || what == 2 || what == 3;

        v.s = pair_stream(&peer, NULL);
        CHECK(v.s != NULL);
        if (reads_a_line) /* some, not enough */
            CHECK(corio_fd_write(peer, "part", 4, -1) == 4);
        t = corio_task_spawn(victim_task, &v, NULL);
        CHECK(t != NULL);
        CHECK(corio_sleep(20 * MS) == 0);
        CHECK(corio_task_cancel(t) == 1);
        CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
        CHECK(v.err == ECANCELED);
        /* nothing consumed */
        if (reads_a_line)
            CHECK(corio_stream_readexactly(v.s, buf, 4, -1) == 4);
        close(peer);
        corio_stream_close(v.s);
    }
    (void)arg;
    return NULL;
}

Test(stream, cancel_every_call_that_waits, .timeout = TIMEOUT)
{
    run_main(cancel_main, NULL);
}

static void *reset_main(void *arg)
{
    static char big[256 * 1024];
    corio_stream *s;
    int peer, rc;

    (void)arg;
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    close(peer);
    /* the peer is gone: the write or the drain fails, and stays failed */
    rc = corio_stream_write(s, big, sizeof(big));
    if (rc == 0)
        rc = corio_stream_drain(s, corio_now() + CORIO_SECOND);
    CHECK(rc == -1 && (errno == EPIPE || errno == ECONNRESET));
    CHECK(corio_stream_write(s, "x", 1) == -1);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, writes_to_a_vanished_peer_fail_and_stay_failed, .timeout = TIMEOUT)
{
    run_main(reset_main, NULL);
}

/* ---- Over TCP (IPv4, IPv6), Unix sockets and pipes ----------------------- */

static void *transports_main(void *arg)
{
    const char *where = arg;
    corio_server *srv;
    corio_stream *c;
    corio_addr a;
    char addr[128], line[128];

    srv = corio_server_start(where, NULL, echo_lines, NULL);
    CHECK(srv != NULL);
    CHECK(corio_socket_name(corio_server_fd(srv), &a) == 0);
    CHECK(corio_addr_format(&a, addr, sizeof(addr)) > 0);
    c = corio_stream_connect(addr, corio_now() + CORIO_SECOND);
    CHECK(c != NULL);
    CHECK(corio_stream_fd(c) >= 0);
    for (int i = 0; i < 3; i++) {
        char out[32];
        int n = snprintf(out, sizeof(out), "line %d\n", i);

        CHECK(corio_stream_write(c, out, (size_t)n) == 0);
    }
    CHECK(corio_stream_drain(c, -1) == 0);
    for (int i = 0; i < 3; i++) {
        char want[32];

        snprintf(want, sizeof(want), "line %d\n", i);
        CHECK(corio_stream_readline(c, line, sizeof(line), -1) > 0);
        CHECK(strcmp(line, want) == 0);
    }
    CHECK(corio_stream_close(c) == 0);
    CHECK(corio_server_stop(srv, -1) == 0);
    return NULL;
}

Test(stream, over_tcp_ipv4, .timeout = TIMEOUT)
{
    run_main(transports_main, "127.0.0.1:0");
}

Test(stream, over_tcp_ipv6, .timeout = TIMEOUT)
{
    if (!have_ipv6())
        cr_skip_test("no IPv6 loopback here");
    run_main(transports_main, "[::1]:0");
}

Test(stream, over_unix_sockets, .timeout = TIMEOUT)
{
    char addr[64];

    snprintf(addr, sizeof(addr), "unix:/tmp/corio-stream-%d.sock",
             (int)getpid());
    run_main(transports_main, addr);
}

static void *pipe_main(void *arg)
{
    corio_stream *r, *w;
    char line[32];
    int p[2];

    (void)arg;
    CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    r = corio_stream_new(p[0], NULL);
    w = corio_stream_new(p[1], NULL);
    CHECK(r != NULL && w != NULL);
    CHECK(corio_stream_write(w, "through a pipe\n", 15) == 0);
    CHECK(corio_stream_drain(w, -1) == 0);
    CHECK(corio_stream_readline(r, line, sizeof(line), -1) == 15);
    CHECK(corio_stream_shutdown(w, -1) == -1 && errno == ENOTSOCK);
    CHECK(corio_stream_close(w) == 0);
    CHECK(corio_stream_read(r, line, sizeof(line), -1) == 0);
    CHECK(corio_stream_close(r) == 0);
    return NULL;
}

Test(stream, over_pipes, .timeout = TIMEOUT)
{
    run_main(pipe_main, NULL);
}

/* ---- Half-close and resets mid-stream ------------------------------------ */

static void *half_close_main(void *arg)
{
    corio_stream *s;
    char buf[32];
    int peer;

    (void)arg;
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    /* our write side ends (after what is buffered): the peer reads it all,
     * then the end, and can still answer */
    CHECK(corio_stream_write(s, "last words", 10) == 0);
    CHECK(corio_stream_shutdown(s, -1) == 0);
    CHECK(corio_fd_read(peer, buf, sizeof(buf), -1) == 10);
    CHECK(corio_fd_read(peer, buf, sizeof(buf), -1) == 0);
    CHECK(corio_fd_write(peer, "reply\n", 6, -1) == 6);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 6);
    CHECK(corio_stream_write(s, "more", 4) == -1 && errno == EPIPE);
    CHECK(corio_stream_drain(s, -1) == -1 && errno == EPIPE);
    CHECK(corio_stream_shutdown(s, -1) == -1 && errno == EPIPE);
    /* the peer's write side ends too */
    CHECK(shutdown(peer, SHUT_WR) == 0);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_readexactly(s, buf, 1, -1) == -1 &&
          errno == CORIO_EEOF);
    close(peer);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, half_close_both_ways, .timeout = TIMEOUT)
{
    run_main(half_close_main, NULL);
}

/* A TCP connection: *c to the client side, returns the server side. */
static int tcp_pair(corio_stream **c)
{
    char addr[64];
    corio_addr a;
    int lfd = corio_socket_listen("127.0.0.1:0", NULL), s;

    if (lfd == -1 || corio_socket_name(lfd, &a) == -1 ||
        corio_addr_format(&a, addr, sizeof(addr)) == -1)
        return -1;
    *c = corio_stream_connect(addr, -1);
    s = corio_socket_accept(lfd, NULL, -1);
    corio_fd_close(lfd);
    return *c != NULL ? s : -1;
}

static void reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    corio_fd_close(fd);
}

static void *reset_mid_stream_main(void *arg)
{
    static char big[1024 * 1024];
    corio_stream *c;
    int s, rc;

    (void)arg;
    /* the peer sends some, then resets: readexactly reports it */
    s = tcp_pair(&c);
    CHECK(s >= 0);
    CHECK(corio_fd_write(s, big, 1000, -1) == 1000);
    CHECK(corio_stream_readexactly(c, big, 500, -1) == 500);
    reset(s);
    errno = 0;
    CHECK(corio_stream_readexactly(c, big, sizeof(big), -1) == -1);
    CHECK(errno == ECONNRESET);
    CHECK(corio_stream_close(c) == 0);
    /* the peer reads some of a long transfer, then resets: drain reports
     * it, and the write side stays broken */
    s = tcp_pair(&c);
    CHECK(s >= 0);
    rc = corio_stream_write(c, big, sizeof(big));
    CHECK(rc == 0);
    CHECK(corio_fd_read(s, big, 4096, -1) > 0);
    reset(s);
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = corio_stream_drain(c, corio_now() + CORIO_SECOND);
        if (rc == 0)
            rc = corio_stream_write(c, big, sizeof(big));
    }
    CHECK(rc == -1 && (errno == ECONNRESET || errno == EPIPE));
    CHECK(corio_stream_write(c, "x", 1) == -1);
    CHECK(errno == ECONNRESET || errno == EPIPE);
    CHECK(corio_stream_close(c) == 0);
    return NULL;
}

Test(stream, a_peer_that_resets_mid_stream, .timeout = TIMEOUT)
{
    run_main(reset_mid_stream_main, NULL);
}

/* ---- Deadlines and scopes ------------------------------------------------ */

static void *deadlines_main(void *arg)
{
    static char big[8 * 1024 * 1024];
    corio_scope scope;
    corio_stream *s;
    char buf[64];
    int peer;
    int64_t t0;

    (void)arg;
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    CHECK(corio_fd_write(peer, "no newline yet", 14, -1) == 14);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_stream_readline(s, buf, sizeof(buf), t0 + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT && corio_now() - t0 >= 20 * MS);
    CHECK(corio_stream_buffered(s) == 14); /* nothing consumed */
    CHECK(corio_stream_readexactly(s, buf, 15, 0) == -1 && errno == ETIMEDOUT);
    /* a scope bounds the calls without a deadline of their own */
    corio_scope_enter(&scope, corio_now() + 20 * MS);
    errno = 0;
    CHECK(corio_stream_readuntil(s, "!", 1, buf, sizeof(buf), -1) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_stream_write(s, big, sizeof(big)) == 0);
    CHECK(corio_stream_drain(s, -1) == -1 && errno == ETIMEDOUT);
    CHECK(corio_scope_exit(&scope));
    CHECK(corio_stream_pending(s) > 64 * 1024); /* still to send */
    CHECK(corio_stream_shutdown(s, corio_now() + 10 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_stream_readexactly(s, buf, 14, -1) == 14);
    close(peer);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, deadlines_and_scopes, .timeout = TIMEOUT)
{
    run_main(deadlines_main, NULL);
}

/* A line that cannot fit the caller's buffer fails at once, without
 * waiting for the rest of it. */
static void *small_buffer_main(void *arg)
{
    corio_stream *s;
    char buf[8];
    int peer;
    int64_t t0;

    (void)arg;
    s = pair_stream(&peer, NULL);
    CHECK(s != NULL);
    CHECK(corio_fd_write(peer, "abcdefghijkl", 12, -1) == 12);
    t0 = corio_now();
    CHECK(corio_stream_readline(s, buf, sizeof(buf), t0 + CORIO_SECOND) == -1);
    /* At once: waiting would end at the deadline, 1 s away. */
    CHECK(errno == EMSGSIZE);
    CHECK(corio_now() - t0 < test_slack_capped_ms(800) * MS);
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 8);
    CHECK(corio_stream_readexactly(s, buf, 0, -1) == 0);
    CHECK(corio_stream_write(s, NULL, 0) == 0);
    CHECK(corio_stream_readline(s, buf, 1, -1) == -1 && errno == EMSGSIZE);
    CHECK(corio_stream_readline(s, NULL, 8, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_readexactly(NULL, buf, 1, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_shutdown(NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_write(s, NULL, 1) == -1 && errno == EINVAL);
    CHECK(corio_stream_buffered(NULL) == 0 && corio_stream_pending(NULL) == 0);
    CHECK(corio_stream_fd(NULL) == -1);
    close(peer);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, a_line_longer_than_the_buffer_fails_at_once, .timeout = TIMEOUT)
{
    run_main(small_buffer_main, NULL);
}

/* ---- Several tasks on one stream ----------------------------------------- */

struct sharer {
    corio_stream *s;
    int rc, err;
};

static void *drainer(void *arg)
{
    static char chunk[256 * 1024];
    struct sharer *d = arg;

    d->rc = corio_stream_write(d->s, chunk, sizeof(chunk));
    if (d->rc == 0)
        d->rc = corio_stream_drain(d->s, -1);
    d->err = errno;
    return NULL;
}

static void *liner(void *arg)
{
    struct sharer *d = arg;
    char line[32];

    d->rc = (int)corio_stream_readline(d->s, line, sizeof(line), -1);
    d->err = errno;
    return NULL;
}

static void *sharing_main(void *arg)
{
    corio_stream_opts o = {.high_water = 1024};
    struct sharer d[3], r;
    corio_task *t[3], *rt;
    struct slow sr = {0};
    char line[32];

    (void)arg;
    /* three drainers wait together; a slow reader takes it all */
    r.s = pair_stream(&sr.fd, &o);
    CHECK(r.s != NULL);
    for (int i = 0; i < 3; i++) {
        d[i] = (struct sharer){.s = r.s, .rc = 1};
        t[i] = corio_task_spawn(drainer, &d[i], NULL);
        CHECK(t[i] != NULL);
    }
    CHECK(corio_sleep(10 * MS) == 0);
    CHECK(corio_stream_pending(r.s) > 0);
    rt = corio_task_spawn(slow_reader, &sr, NULL);
    CHECK(rt != NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(corio_task_join(t[i], NULL) == 0);
        CHECK(d[i].rc == 0);
    }
    CHECK(corio_stream_shutdown(r.s, -1) == 0);
    CHECK(corio_task_join(rt, NULL) == 0 && sr.got == 3 * 256 * 1024);
    /* one reader at a time: a second one fails with EBUSY */
    rt = corio_task_spawn(liner, &r, NULL);
    CHECK(rt != NULL && corio_sleep(5 * MS) == 0);
    CHECK(corio_stream_readline(r.s, line, sizeof(line), -1) == -1);
    CHECK(errno == EBUSY);
    CHECK(corio_stream_read(r.s, line, 1, -1) == -1 && errno == EBUSY);
    CHECK(corio_fd_write(sr.fd, "for the first\n", 14, -1) == 14);
    CHECK(corio_task_join(rt, NULL) == 0 && r.rc == 14);
    close(sr.fd);
    CHECK(corio_stream_close(r.s) == 0);
    return NULL;
}

Test(stream, several_drainers_and_one_reader_at_a_time, .timeout = TIMEOUT)
{
    run_main(sharing_main, NULL);
}

/* Close the stream while a reader and two drainers wait in calls on it:
 * each call fails with EBADF, and the memory goes once they have left
 * (ASan and valgrind watch). */
static void *close_under_waiters_main(void *arg)
{
    corio_stream_opts o = {.high_water = 1024};
    struct sharer d[2], r;
    corio_task *t[2], *rt;
    int peer;

    (void)arg;
    r.s = pair_stream(&peer, &o);
    CHECK(r.s != NULL);
    rt = corio_task_spawn(liner, &r, NULL);
    CHECK(rt != NULL);
    for (int i = 0; i < 2; i++) {
        d[i] = (struct sharer){.s = r.s, .rc = 1};
        t[i] = corio_task_spawn(drainer, &d[i], NULL);
        CHECK(t[i] != NULL);
    }
    CHECK(corio_sleep(10 * MS) == 0);
    CHECK(corio_stream_close(r.s) == 0);
    CHECK(corio_task_join(rt, NULL) == 0 && r.rc == -1 && r.err == EBADF);
    for (int i = 0; i < 2; i++) {
        CHECK(corio_task_join(t[i], NULL) == 0);
        errno = d[i].err;
        CHECK(d[i].rc == -1 && d[i].err == EBADF);
    }
    close(peer);
    return NULL;
}

Test(stream, close_while_other_tasks_wait, .timeout = TIMEOUT)
{
    run_main(close_under_waiters_main, NULL);
}

/* ---- The transport interface (what TLS plugs into) --------------------------
 *
 * A transport over a socket that moves at most 3 bytes a call, and whose
 * every other call wants the opposite readiness first (as a TLS read that
 * must write, SSL_ERROR_WANT_WRITE): the stream's calls work unchanged. */

struct trickle {
    struct corio__transport base;
    unsigned calls;
    int closed;
};

static ssize_t trickle_read(struct corio__transport *t, void *buf, size_t n,
                            unsigned *want)
{
    struct trickle *tr = (struct trickle *)t;

    if (tr->calls++ % 2 == 0) {
        *want = CORIO_WRITE;
        errno = EAGAIN;
        return -1;
    }
    *want = CORIO_READ;
    return read(t->fd, buf, n < 3 ? n : 3);
}

static ssize_t trickle_write(struct corio__transport *t, const void *buf,
                             size_t n, unsigned *want)
{
    struct trickle *tr = (struct trickle *)t;

    if (tr->calls++ % 2 == 0) {
        *want = CORIO_READ | CORIO_WRITE;
        errno = EAGAIN;
        return -1;
    }
    *want = CORIO_WRITE;
    return send(t->fd, buf, n < 3 ? n : 3, MSG_NOSIGNAL);
}

static int trickle_wait(struct corio__transport *t, unsigned events,
                        int64_t deadline)
{
    return corio_fd_wait(t->fd, events, deadline);
}

static int trickle_shutdown(struct corio__transport *t, unsigned *want)
{
    *want = CORIO_WRITE;
    return shutdown(t->fd, SHUT_WR);
}

static int trickle_close(struct corio__transport *t)
{
    struct trickle *tr = (struct trickle *)t;

    tr->closed++;
    return corio_fd_close(t->fd);
}

static const struct corio__transport_ops trickle_ops = {
    "trickle", trickle_read, trickle_write, trickle_wait, trickle_shutdown,
    trickle_close,
};

static void *transport_main(void *arg)
{
    struct trickle tr = {.base = {&trickle_ops, -1}};
    corio_stream *s;
    char buf[64];
    int sv[2];

    (void)arg;
    CHECK(corio__stream_new_transport(NULL, NULL) == NULL && errno == EINVAL);
    CHECK(corio__stream_new_transport(&tr.base, NULL) == NULL);
    CHECK(errno == EINVAL);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    tr.base.fd = sv[0];
    s = corio__stream_new_transport(&tr.base, NULL);
    CHECK(s != NULL);
    CHECK(corio_stream_fd(s) == sv[0]);
    CHECK(corio_fd_write(sv[1], "hello, transport\nrest", 21, -1) == 21);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 17);
    CHECK(strcmp(buf, "hello, transport\n") == 0);
    CHECK(corio_stream_readexactly(s, buf, 4, -1) == 4);
    CHECK(memcmp(buf, "rest", 4) == 0);
    CHECK(corio_stream_write(s, "written in threes", 17) == 0);
    CHECK(corio_stream_shutdown(s, -1) == 0);
    CHECK(corio_fd_read(sv[1], buf, sizeof(buf), -1) > 0);
    CHECK(corio_stream_close(s) == 0 && tr.closed == 1);
    close(sv[1]);
    return NULL;
}

Test(stream, a_transport_of_its_own, .timeout = TIMEOUT)
{
    run_main(transport_main, NULL);
}

/* A transport whose first read must wait for the socket to be writable
 * first, as a TLS read may (a key update to answer). */
static ssize_t crossed_read(struct corio__transport *t, void *buf, size_t n,
                            unsigned *want)
{
    struct trickle *tr = (struct trickle *)t;

    if (tr->calls++ == 0) {
        *want = CORIO_WRITE;
        errno = EAGAIN;
        return -1;
    }
    *want = CORIO_READ;
    return read(t->fd, buf, n);
}

static ssize_t crossed_write(struct corio__transport *t, const void *buf,
                             size_t n, unsigned *want)
{
    *want = CORIO_WRITE;
    return send(t->fd, buf, n, MSG_NOSIGNAL);
}

static const struct corio__transport_ops crossed_ops = {
    "crossed", crossed_read, crossed_write, trickle_wait, trickle_shutdown,
    trickle_close,
};

static void *crossed_reader(void *arg)
{
    char line[16];
    ssize_t n = corio_stream_readline(arg, line, sizeof(line), -1);

    if (n != 3 || strcmp(line, "ok\n") != 0)
        return corio_task_fail(n == -1 ? errno : EPROTO);
    return NULL;
}

static void *crossed_drainer(void *arg)
{
    static char big[1 << 20];

    if (corio_stream_write(arg, big, sizeof(big)) == -1 ||
        corio_stream_drain(arg, -1) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *crossed_main(void *arg)
{
    struct trickle tr = {.base = {&crossed_ops, -1}};
    corio_stream *s;
    corio_task *drainer, *reader;
    char buf[4096];
    size_t got = 0;
    int sv[2];

    (void)arg;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    tr.base.fd = sv[0];
    s = corio__stream_new_transport(&tr.base, NULL);
    CHECK(s != NULL);
    drainer = corio_task_spawn(crossed_drainer, s, NULL);
    CHECK(drainer != NULL);
    CHECK(corio_sleep(5 * MS) == 0); /* the drainer waits to write */
    reader = corio_task_spawn(crossed_reader, s, NULL);
    CHECK(reader != NULL);
    CHECK(corio_sleep(5 * MS) == 0); /* the reader waits behind it */
    while (got < (1 << 20)) {
        ssize_t n = corio_fd_read(sv[1], buf, sizeof(buf), -1);

        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(corio_task_join(drainer, NULL) == 0);
    CHECK(corio_fd_write(sv[1], "ok\n", 3, -1) == 3);
    CHECK(corio_task_join(reader, NULL) == 0);
    CHECK(corio_stream_close(s) == 0 && tr.closed == 1);
    close(sv[1]);
    return NULL;
}

Test(stream, a_read_that_must_write_waits_behind_a_drainer, .timeout = TIMEOUT)
{
    run_main(crossed_main, NULL);
}
