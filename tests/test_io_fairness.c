/* tests/test_io_fairness.c -- one busy connection does not stall its loop
 * (the cooperative budget, docs/io.md "Fairness"): a client in another
 * thread floods one connection of a server, over TCP and over a Unix
 * socket, for a bounded time, while on the server's loop a second
 * connection does round trips and a task sleeps 10 ms at a time. The
 * round trips and the sleeps stay within a few ms of due; a flooded
 * handler can be cancelled (the server stops at its deadline).
 *
 * The flooder is a plain thread with a blocking socket, so that the
 * socket always has data: a flooder on the loop itself would park and let
 * the loop poll. Every test has the same .timeout (Criterion leaks in its
 * runner otherwise, see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"
#include "timing.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define TIMEOUT 60
#define MS CORIO_MSEC
#define UPPER(ms) ((ms) + test_extra_ms())

/* How long a flood lasts, and how late a wake-up may be in a plain build
 * (what a loaded machine adds to "a few ms"; without the budget the
 * flooded loop woke its timer seconds late). */
#define FLOOD_MS 1000
#ifndef LATE_MS
#define LATE_MS 100
#endif

/* ---- The flooder: a thread writing lines as fast as the socket takes -- */

struct flood {
    char addr[128];
    int64_t until;          /* corio_now() clock */
    long long bytes;        /* sent */
    int err;                /* why it stopped early, or 0 */
    int done;               /* atomic: the thread has finished */
    pthread_t thread;
};

static void *flood_thread(void *arg)
{
    struct flood *f = arg;
    struct timeval tv = {0, 100 * 1000}; /* a send never blocks for long */
    static char buf[64 * 1024];
    corio_addr a;
    int fd = -1;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = i % 64 == 63 ? '\n' : 'x';
    if (corio_addr_parse(&a, f->addr) == -1 ||
        (fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
        connect(fd, (struct sockaddr *)&a.ss, a.len) == -1) {
        f->err = errno;
        goto out;
    }
    while (corio_now() < f->until) {
        ssize_t put = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);

        if (put > 0)
            f->bytes += put;
        else if (errno != EAGAIN && errno != EINTR) {
            f->err = errno;
            break;
        }
    }
out:
    if (fd != -1)
        close(fd);
    __atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int flood_start(struct flood *f, const char *addr, int64_t ms)
{
    snprintf(f->addr, sizeof(f->addr), "%s", addr);
    f->until = corio_now() + ms * MS;
    f->bytes = 0;
    f->err = 0;
    f->done = 0;
    errno = pthread_create(&f->thread, NULL, flood_thread, f);
    return errno == 0 ? 0 : -1;
}

/* Wait for the thread without blocking the loop (it may be in a send that
 * the loop's handler must make room for). */
static int flood_join(struct flood *f)
{
    while (!__atomic_load_n(&f->done, __ATOMIC_ACQUIRE))
        if (corio_sleep(MS) == -1)
            return -1;
    return pthread_join(f->thread, NULL) == 0 ? 0 : -1;
}

/* ---- The server: sinks the flood, answers "ping" lines ------------------
 * A connection whose first line is the flood's is read a byte at a time,
 * slower than the flooder writes, so that its socket never empties and its
 * reads never wait; the others are echoed line by line. */

struct sink {
    long long bytes;        /* flood bytes read */
    int handlers_cancelled;
};

static void sink_or_echo(corio_stream *s, void *arg)
{
    struct sink *k = arg;
    char line[256];
    ssize_t n = corio_stream_readline(s, line, sizeof(line), -1);

    if (n > 0 && line[0] == 'x') {
        while ((n = corio_stream_read(s, line, 1, -1)) > 0)
            k->bytes++;
    } else {
        for (; n > 0; n = corio_stream_readline(s, line, sizeof(line), -1))
            if (corio_stream_write(s, line, (size_t)n) == -1 ||
                corio_stream_drain(s, -1) == -1)
                return;
    }
    if (n == -1 && errno == ECANCELED)
        k->handlers_cancelled++;
}

/* ---- The others on the loop: a sleeper and a round-tripper -------------- */

/* A task measuring how late the loop lets it run, from `start` (before it
 * was spawned: a task that cannot start is late too) until `until`. */
struct probe {
    const char *what;       /* for the failure's text */
    int min;                /* how many times it must have run */
    const char *addr;       /* the round-tripper's server */
    int64_t start, until;
    int64_t worst_ns;       /* latest wake-up, slowest round trip */
    int count;
    int err;
};

static void probe_start(struct probe *p, const char *what, int min,
                        int64_t until)
{
    p->what = what;
    p->min = min;
    p->start = corio_now();
    p->until = until;
    p->worst_ns = 0;
    p->count = 0;
    p->err = 0;
}

static void *sleeper(void *arg)
{
    struct probe *p = arg;
    int64_t due = p->start + 10 * MS;

    for (; corio_now() < p->until; due = corio_now() + 10 * MS) {
        if (corio_sleep_until(due) == -1) {
            p->err = errno;
            return NULL;
        }
        if (corio_now() - due > p->worst_ns)
            p->worst_ns = corio_now() - due;
        p->count++;
    }
    return NULL;
}

static void *round_tripper(void *arg)
{
    struct probe *p = arg;
    corio_stream *c = corio_stream_connect(p->addr, corio_now() + CORIO_SECOND);
    int64_t t0 = p->start;
    char line[64];

    if (c == NULL) {
        p->err = errno;
        return NULL;
    }
    for (; corio_now() < p->until; t0 = corio_now()) {
        if (corio_stream_write(c, "ping\n", 5) == -1 ||
            corio_stream_drain(c, -1) == -1 ||
            corio_stream_readline(c, line, sizeof(line), -1) != 5) {
            p->err = errno;
            break;
        }
        if (corio_now() - t0 > p->worst_ns)
            p->worst_ns = corio_now() - t0;
        p->count++;
        if (corio_sleep(MS) == -1) {
            p->err = errno;
            break;
        }
    }
    corio_stream_close(c);
    return NULL;
}

static bool on_time(const struct probe *p)
{
    return p->worst_ns < UPPER(LATE_MS) * MS && p->count >= p->min;
}

/* NULL if the n probes ran on time, often enough; else what they saw. */
static char *check_late(const struct probe *ps, int n)
{
    size_t len = 0;
    bool ok = true;

    for (int i = 0; i < n; i++) {
        ok = ok && on_time(&ps[i]);
        len += (size_t)snprintf(failure + len, sizeof(failure) - len,
                                "%s%s: %lld ms late at worst (%d done)",
                                i > 0 ? "; " : "", ps[i].what,
                                (long long)(ps[i].worst_ns / MS), ps[i].count);
        if (len >= sizeof(failure))
            break;
    }
    return ok ? NULL : failure;
}

static void *flood_main(void *arg)
{
    const char *where = arg;
    struct sink k = {0};
    struct flood f;
    struct probe p[2], *timer = &p[0], *rt = &p[1];
    corio_task *ts, *tr;
    corio_server *srv;
    char addr[128];

    srv = corio_server_start(where, NULL, sink_or_echo, &k);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    /* the probes run as long as the flood, from before it starts: a stall
     * anywhere in it makes one of them late, or run too few times */
    probe_start(timer, "the 10 ms sleep", FLOOD_MS / 10 / 2,
                corio_now() + FLOOD_MS * MS);
    probe_start(rt, "the round trip", FLOOD_MS / 10 / 2, timer->until);
    rt->addr = addr;
    ts = corio_task_spawn(sleeper, timer, NULL);
    tr = corio_task_spawn(round_tripper, rt, NULL);
    CHECK(ts != NULL && tr != NULL);
    CHECK(flood_start(&f, addr, FLOOD_MS) == 0);
    CHECK(corio_task_join(ts, NULL) == 0 && corio_task_join(tr, NULL) == 0);
    CHECK(flood_join(&f) == 0);
    /* what the flood left buffered may still be read a byte at a time
     * (slowly, under valgrind): its handler is then cancelled */
    CHECK(corio_server_stop(srv, corio_now() + 100 * MS) == 0 ||
          errno == ETIMEDOUT);
    errno = f.err;
    CHECK(f.err == 0 && timer->err == 0);
    errno = rt->err;
    CHECK(rt->err == 0);
    CHECK(f.bytes > 64 * 1024 && k.bytes > 64 * 1024);
    return check_late(p, 2);
}

Test(fairness, a_tcp_flood_does_not_stall_timers_or_other_connections,
     .timeout = TIMEOUT)
{
    run_main_no_fd_leak(flood_main, "127.0.0.1:0");
}

Test(fairness, a_unix_flood_does_not_stall_timers_or_other_connections,
     .timeout = TIMEOUT)
{
    char path[64];

    snprintf(path, sizeof(path), "unix:/tmp/corio-fair-%d.sock", (int)getpid());
    run_main_no_fd_leak(flood_main, path);
}

/* A handler whose reads never wait still meets its cancellation: the
 * server's stop cancels it at the deadline, during the flood. */
static void *stop_main(void *arg)
{
    const char *where = arg;
    struct sink k = {0};
    struct flood f;
    corio_server *srv;
    char addr[128];
    int64_t t0;

    srv = corio_server_start(where, NULL, sink_or_echo, &k);
    CHECK(srv != NULL);
    server_addr(srv, addr, sizeof(addr));
    CHECK(flood_start(&f, addr, FLOOD_MS) == 0);
    /* well into the flood: the socket's buffers are full */
    CHECK(corio_sleep(FLOOD_MS / 3 * MS) == 0);
    CHECK(k.bytes > 0);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_server_stop(srv, t0 + 20 * MS) == -1 && errno == ETIMEDOUT);
    CHECK(k.handlers_cancelled == 1);
    if (corio_now() - t0 >= UPPER(20 + LATE_MS) * MS) {
        snprintf(failure, sizeof(failure), "the stop took %lld ms",
                 (long long)((corio_now() - t0) / MS));
        return failure;
    }
    CHECK(flood_join(&f) == 0);
    return NULL;
}

Test(fairness, a_flooded_handler_is_cancelled_at_the_stop_deadline,
     .timeout = TIMEOUT)
{
    run_main_no_fd_leak(stop_main, "127.0.0.1:0");
}

/* ---- A source that is always ready: /dev/zero -------------------------------
 * Every read returns at once, whoever else runs: the flood without a
 * flooder, so that the reader never parks by chance. A task reads it (with
 * corio_fd_read, or through a stream) for at most READ_MS, while a task
 * sleeps 10 ms at a time and another waits on a timerfd (an fd that only
 * the poller can report); then the reader is cancelled. */

#define READ_MS 2000

struct reader {
    int fd;
    corio_stream *s;        /* NULL: corio_fd_read(fd) */
    int64_t until;
    long long reads;
    int err;                /* why it stopped (ECANCELED), 0 at until */
};

static void *zero_reader(void *arg)
{
    struct reader *r = arg;
    char buf[4096];

    while (corio_now() < r->until) {
        ssize_t n = r->s != NULL
                        ? corio_stream_read(r->s, buf, sizeof(buf), -1)
                        : corio_fd_read(r->fd, buf, sizeof(buf), -1);

        if (n <= 0) {
            r->err = n == 0 ? EPIPE : errno;
            break;
        }
        r->reads++;
    }
    return NULL;
}

/* Waits on a timerfd due 30 ms after p->start; worst_ns is how late. */
static void *timerfd_waiter(void *arg)
{
    struct probe *p = arg;
    struct itimerspec its = {.it_value = {0, 30 * 1000 * 1000}};
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    uint64_t ticks;

    if (fd == -1 || timerfd_settime(fd, 0, &its, NULL) == -1 ||
        corio_fd_read(fd, &ticks, sizeof(ticks), -1) != sizeof(ticks))
        p->err = errno;
    p->worst_ns = corio_now() - (p->start + 30 * MS);
    p->count = 1;
    if (fd != -1)
        corio_fd_close(fd);
    return NULL;
}

static void *zero_main(void *arg)
{
    bool stream = arg != NULL;
    struct reader r = {.fd = open("/dev/zero", O_RDONLY | O_CLOEXEC)};
    struct probe p[3], *timer = &p[0], *fdw = &p[1], *cancel = &p[2];
    corio_task *tr, *ts, *tf;

    CHECK(r.fd >= 0);
    if (stream) {
        r.s = corio_stream_new(r.fd, NULL);
        CHECK(r.s != NULL);
    }
    r.until = corio_now() + READ_MS * MS;
    tr = corio_task_spawn(zero_reader, &r, NULL);
    probe_start(timer, "the 10 ms sleep", 10, corio_now() + 300 * MS);
    probe_start(fdw, "the timerfd", 1, -1);
    ts = corio_task_spawn(sleeper, timer, NULL);
    tf = corio_task_spawn(timerfd_waiter, fdw, NULL);
    CHECK(tr != NULL && ts != NULL && tf != NULL);
    CHECK(corio_task_join(ts, NULL) == 0 && corio_task_join(tf, NULL) == 0);
    errno = timer->err ? timer->err : fdw->err;
    CHECK(timer->err == 0 && fdw->err == 0);
    /* cancelled while its reads never wait: it ends at its next yield */
    probe_start(cancel, "the cancellation", 1, -1);
    CHECK(corio_task_cancel(tr) == 1);
    CHECK(corio_task_join(tr, NULL) == -1 && errno == ECANCELED);
    cancel->worst_ns = corio_now() - cancel->start;
    cancel->count = 1;
    CHECK(r.err == ECANCELED);
    CHECK(r.reads > 1000);
    if (stream)
        CHECK(corio_stream_close(r.s) == 0);
    else
        CHECK(close(r.fd) == 0);
    return check_late(p, 3);
}

Test(fairness, reads_that_never_wait_let_timers_and_fds_run, .timeout = TIMEOUT)
{
    run_main_no_fd_leak(zero_main, NULL);
}

Test(fairness, stream_reads_that_never_wait_let_timers_and_fds_run,
     .timeout = TIMEOUT)
{
    run_main_no_fd_leak(zero_main, "stream");
}
