/* tests/test_io_stream.c -- buffered streams (corio_stream_*): read,
 * readline, readuntil, readexactly and their limits and end-of-stream
 * cases; write, drain and backpressure against a slow reader; shutdown;
 * cancellation in read and drain; bad input. Streams run over socketpairs
 * and loopback TCP.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
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

/* ---- Reading ---------------------------------------------------------------- */

static void *late_writer(void *arg)
{
    int fd = *(int *)arg;

    if (corio_sleep(10 * MS) == -1 || corio_write(fd, "-cdx", 4, -1) != 4)
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
    CHECK(corio_write(peer, "one\ntwo\r\n\r\nthree", 16, -1) == 16);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4);
    CHECK(strcmp(buf, "one\n") == 0);
    CHECK(corio_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof(buf), -1) == 7);
    CHECK(strcmp(buf, "two\r\n\r\n") == 0);
    CHECK(corio_stream_buffered(s) == 5);
    CHECK(corio_stream_readexactly(s, buf, 5, -1) == 5);
    CHECK(memcmp(buf, "three", 5) == 0);
    /* a separator split across two arrivals: "ab-" now, "-cdx" later */
    CHECK(corio_write(peer, "ab-", 3, -1) == 3);
    {
        int p2 = peer;
        corio_task *w = corio_spawn(late_writer, &p2, NULL);

        CHECK(w != NULL);
        CHECK(corio_stream_readuntil(s, "--", 2, buf, sizeof(buf), -1) == 4);
        CHECK(strcmp(buf, "ab--") == 0);
        CHECK(corio_join(w, NULL) == 0);
    }
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 3);
    CHECK(memcmp(buf, "cdx", 3) == 0);
    /* a line longer than the limit: EMSGSIZE, nothing consumed */
    CHECK(corio_write(peer, "0123456789abcdefghij\n", 21, -1) == 21);
    errno = 0;
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == -1);
    CHECK(errno == EMSGSIZE);
    CHECK(corio_stream_read(s, buf, 10, -1) == 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 11);
    /* a line longer than the caller's buffer: EMSGSIZE, still usable */
    CHECK(corio_write(peer, "abcdef\n", 7, -1) == 7);
    CHECK(corio_stream_readline(s, buf, 4, -1) == -1 && errno == EMSGSIZE);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 7);
    /* the end: readexactly fails with EPIPE, the partial data stays */
    CHECK(corio_write(peer, "tail", 4, -1) == 4);
    CHECK(close(peer) == 0);
    errno = 0;
    CHECK(corio_stream_readexactly(s, buf, 10, -1) == -1 && errno == EPIPE);
    CHECK(corio_stream_buffered(s) == 4);
    CHECK(corio_stream_readuntil(s, "\n", 1, buf, sizeof(buf), -1) == -1);
    CHECK(errno == EPIPE);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 4);
    CHECK(strcmp(buf, "tail") == 0);
    CHECK(corio_stream_readline(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, read_readline_readuntil_readexactly_limits_and_end, .timeout = TIMEOUT)
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
    CHECK(corio_stream_readuntil(s, "", 0, buf, 8, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_readuntil(s, "\n", 1, buf, 0, -1) == -1 && errno == EINVAL);
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

/* ---- Writing: backpressure ------------------------------------------------------ */

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
        ssize_t n = corio_read(r->fd, buf, sizeof(buf), -1);

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
    t = corio_spawn(slow_reader, &r, NULL);
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
    CHECK(corio_join(t, NULL) == 0);
    CHECK(r.got == TOTAL && r.bad == 0);
    close(r.fd);
    CHECK(corio_stream_close(s) == 0);
    return NULL;
}

Test(stream, a_fast_writer_drains_to_a_slow_reader_in_bounded_memory, .timeout = TIMEOUT)
{
    run_main(backpressure_main, NULL);
}

/* ---- Cancellation and resets ---------------------------------------------------------- */

struct victim {
    corio_stream *s;
    int what;   /* 0 readline, 1 drain */
    int err;
};

static void *victim_task(void *arg)
{
    struct victim *v = arg;
    static char big[8 * 1024 * 1024]; /* more than any socket buffer */
    char line[64];
    int rc;

    errno = 0;
    if (v->what == 0) {
        rc = (int)corio_stream_readline(v->s, line, sizeof(line), -1);
    } else {
        rc = corio_stream_write(v->s, big, sizeof(big));
        if (rc == 0)
            rc = corio_stream_drain(v->s, -1);
    }
    v->err = rc == -1 ? errno : 0;
    return NULL;
}

static void *cancel_main(void *arg)
{
    for (int what = 0; what < 2; what++) {
        struct victim v = {.what = what, .err = -1};
        corio_task *t;
        int peer;

        v.s = pair_stream(&peer, NULL);
        CHECK(v.s != NULL);
        t = corio_spawn(victim_task, &v, NULL);
        CHECK(t != NULL);
        CHECK(corio_sleep(20 * MS) == 0);
        CHECK(corio_task_cancel(t) == 1);
        CHECK(corio_join(t, NULL) == -1 && errno == ECANCELED);
        CHECK(v.err == ECANCELED);
        close(peer);
        corio_stream_close(v.s);
    }
    (void)arg;
    return NULL;
}

Test(stream, cancel_readline_and_drain, .timeout = TIMEOUT)
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
