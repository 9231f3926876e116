/* src/io/socket.c -- addresses, and TCP, Unix and UDP sockets whose calls
 * suspend the calling task instead of blocking the thread.
 *
 * Every socket is non-blocking. A call first tries the system call; on
 * EAGAIN it waits for readiness with corio_fd_wait (deadline and
 * cancellation come from there) and tries again. EINTR is retried. */
#define _GNU_SOURCE /* accept4, memmem */
#include "corio/io.h"
#include "corio/loop.h"
#include "corio/sync.h"
#include "corio/task.h"
#include "../loop/loop_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- Addresses ----------------------------------------------------------- */

int corio__port_parse(const char *s, uint16_t *port)
{
    unsigned v = 0;

    if (*s == 0)
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (*s != 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* A port in network order, into a sockaddr. */
static int parse_port(const char *s, in_port_t *port)
{
    uint16_t v;

    if (corio__port_parse(s, &v) == -1)
        return -1;
    *port = htons(v);
    return 0;
}

int corio_addr_parse(corio_addr *a, const char *text)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hlen;

    if (a == NULL || text == NULL)
        goto bad;
    memset(a, 0, sizeof(*a));
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
        size_t plen = strlen(text + 5);

        if (plen == 0 || plen >= sizeof(un->sun_path))
            goto bad;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, text + 5, plen + 1);
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
        return 0;
    }
    if (text[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
        const char *close = strchr(text, ']');

        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, text + 1, hlen);
        host[hlen] = 0;
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1 ||
            parse_port(close + 2, &in6->sin6_port) == -1)
            goto bad;
        a->len = sizeof(*in6);
        return 0;
    }
    colon = strrchr(text, ':');
    if (colon == NULL)
        goto bad;
    hlen = (size_t)(colon - text);
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, text, hlen);
    host[hlen] = 0;
    {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

        in->sin_family = AF_INET;
        if (hlen == 0)
            in->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            goto bad;
        if (parse_port(colon + 1, &in->sin_port) == -1)
            goto bad;
        a->len = sizeof(*in);
    }
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* A caller's corio_addr: its length must stay within its storage (the
 * kernel and an AF_UNIX path's strnlen read that many bytes). */
static bool addr_len_ok(const corio_addr *a)
{
    return a->len <= sizeof(a->ss);
}

int corio_addr_format(const corio_addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    if (a == NULL || buf == NULL || !addr_len_ok(a)) {
        errno = EINVAL;
        return -1;
    }
    switch (a->ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        n = snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        n = snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
        size_t plen = a->len > offsetof(struct sockaddr_un, sun_path)
                          ? strnlen(un->sun_path, a->len -
                                    offsetof(struct sockaddr_un, sun_path))
                          : 0;

        n = snprintf(buf, size, "unix:%.*s", (int)plen, un->sun_path);
        break;
    }
    default:
        errno = EINVAL;
        return -1;
    }
    if (n < 0 || (size_t)n >= size) {
        errno = ENOSPC;
        return -1;
    }
    return n;
}

/* ---- Sockets ------------------------------------------------------------- */

/* A non-blocking call failed: 0 to try it again (EINTR, or fd has become
 * ready for events), -1 to fail with errno. */
static int again(int fd, unsigned events, int64_t deadline)
{
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    return corio__wait_fd(fd, events, deadline, true) == -1 ? -1 : 0;
}

static int socket_for(const corio_addr *a, int type)
{
    return socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void set_nodelay(int fd, const corio_addr *a)
{
    int one = 1;

    if (a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Close fd keeping errno (the error being reported). */
static int fail_close(int fd)
{
    int err = errno;

    corio_fd_close(fd);
    errno = err;
    return -1;
}

/* A Unix socket path left by a server that is gone: remove it, so that
 * listening again works (nothing else is ever removed). */
static void unlink_stale(const corio_addr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
    struct stat st;

    if (a->ss.ss_family == AF_UNIX && un->sun_path[0] != 0 &&
        stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);

        if (fd >= 0) {
            if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
                errno == ECONNREFUSED)
                unlink(un->sun_path);
            close(fd);
        }
    }
}

int corio_socket_listen(const char *addr, const corio_listen_opts *opts)
{
    static const corio_listen_opts defaults;
    corio_addr a;
    int fd, one = 1;

    if (opts == NULL)
        opts = &defaults;
    if (corio_addr_parse(&a, addr) == -1 || opts->backlog < 0)
        goto bad;
    unlink_stale(&a);
    fd = socket_for(&a, SOCK_STREAM);
    if (fd == -1)
        return -1;
    if (a.ss.ss_family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (opts->reuseport &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
            return fail_close(fd);
    }
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) == -1 ||
        listen(fd, opts->backlog ? opts->backlog : SOMAXCONN) == -1)
        return fail_close(fd);
    return fd;
bad:
    errno = EINVAL;
    return -1;
}

int corio_socket_name(int fd, corio_addr *a)
{
    if (a == NULL) {
        errno = EINVAL;
        return -1;
    }
    a->len = sizeof(a->ss);
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
}

int corio_socket_accept(int lfd, corio_addr *peer, int64_t deadline)
{
    corio_addr tmp;

    if (peer == NULL)
        peer = &tmp;
    if (corio__budget_spend(0) == -1)
        return -1;
    for (;;) {
        int fd;

        peer->len = sizeof(peer->ss);
        fd = accept4(lfd, (struct sockaddr *)&peer->ss, &peer->len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == ECONNABORTED)
            continue;
        if (again(lfd, CORIO_READ, deadline) == -1)
            return -1;
    }
}

/* TCP_NODELAY unless the options keep Nagle's algorithm (asyncio's
 * default: a small answer is not held back for the peer's delayed ACK). */
static bool want_nodelay(const corio_connect_opts *opts)
{
    return opts == NULL || !opts->nagle;
}

static int connect_addr(const corio_addr *a, bool nodelay, int64_t deadline);

int corio_socket_connect_addr(const corio_addr *a,
                              const corio_connect_opts *opts, int64_t deadline)
{
    return connect_addr(a, want_nodelay(opts), deadline);
}

static int connect_addr(const corio_addr *a, bool nodelay, int64_t deadline)
{
    int fd, err = 0;
    socklen_t len = sizeof(err);

    if (a == NULL || !addr_len_ok(a)) {
        errno = EINVAL;
        return -1;
    }
    fd = socket_for(a, SOCK_STREAM);
    if (fd == -1)
        return -1;
    if (nodelay)
        set_nodelay(fd, a);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EINTR && errno != EAGAIN)
        return fail_close(fd);
    /* EAGAIN: a Unix socket whose server's backlog is full. Nothing will
     * say when it has room: try again every millisecond until deadline. */
    while (errno == EAGAIN) {
        if (deadline >= 0 && corio_now() >= deadline) {
            errno = ETIMEDOUT;
            return fail_close(fd);
        }
        if (corio_sleep(CORIO_MSEC) == -1)
            return fail_close(fd);
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
            return fd;
        if (errno != EAGAIN && errno != EINPROGRESS)
            return fail_close(fd);
    }
    if (corio_fd_wait(fd, CORIO_WRITE, deadline) == -1)
        return fail_close(fd);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        return fail_close(fd);
    if (err != 0) {
        errno = err;
        return fail_close(fd);
    }
    return fd;
}

/* ---- Happy eyeballs (RFC 8305) ---------------------------------------------
 *
 * A name's addresses are raced: the first attempt starts at once, each
 * next one when the previous fails or after ATTEMPT_DELAY without an
 * answer, while the earlier ones go on; the first to connect wins and the
 * others are cancelled. Families alternate (IPv6, IPv4, IPv6, ...: in the
 * resolver's order, the first address's family first), so a broken IPv6
 * path costs 250 ms, not a timeout. Each attempt is a task; the caller
 * waits on an event that every finished attempt sets. */

#define ATTEMPT_DELAY (250 * CORIO_MSEC)
#define MAX_ADDRS 16

struct race;

/* One attempt: its task's argument. */
struct attempt {
    struct race *r;
    int i;
};

struct race {
    corio_addr as[MAX_ADDRS];
    struct attempt at[MAX_ADDRS];
    int n;
    bool nodelay;
    int64_t deadline;
    corio_task *tasks[MAX_ADDRS];
    int started, finished;
    int fd;                         /* the winner, or -1 */
    int err;                        /* the last attempt's failure */
    bool over;                      /* a late success is closed */
    corio_event *ev;
};

static void *attempt_main(void *arg)
{
    struct race *r = ((struct attempt *)arg)->r;
    int i = ((struct attempt *)arg)->i;
    int fd = connect_addr(&r->as[i], r->nodelay, r->deadline);

    if (fd >= 0 && (r->fd >= 0 || r->over))
        corio_fd_close(fd);
    else if (fd >= 0)
        r->fd = fd;
    else if (errno != ECANCELED)
        r->err = errno;
    r->finished++;
    corio_event_set(r->ev);
    return NULL;
}

static int attempt_start(struct race *r)
{
    static const corio_task_attr attr = {.name = "connect attempt"};
    struct attempt *at = &r->at[r->started];

    at->r = r;
    at->i = r->started;
    r->tasks[r->started] = corio_task_spawn(attempt_main, at, &attr);
    if (r->tasks[r->started] == NULL)
        return -1;
    r->started++;
    return 0;
}

/* Reorder as[] so that families alternate, the first one's first. */
static void interleave(corio_addr *as, int n)
{
    corio_addr out[MAX_ADDRS];
    int first = as[0].ss.ss_family, k = 0;
    int a = 0, b = 0; /* next of the first family, next of the others */

    while (k < n) {
        while (a < n && as[a].ss.ss_family != first)
            a++;
        if (a < n)
            out[k++] = as[a++];
        while (b < n && as[b].ss.ss_family == first)
            b++;
        if (b < n)
            out[k++] = as[b++];
    }
    memcpy(as, out, (size_t)n * sizeof(*as));
}

/* Race r's addresses. Returns the fd, or -1 with errno. */
static int race(struct race *r)
{
    int64_t next_at = 0;
    bool cancelled = false;
    int err = 0;

    r->fd = -1;
    r->ev = corio_event_new();
    if (r->ev == NULL)
        return -1;
    interleave(r->as, r->n);
    while (r->fd < 0) {
        int64_t now = corio_now(), until;

        if (r->started < r->n &&
            (r->finished == r->started || now >= next_at)) {
            if (attempt_start(r) == -1) {
                err = errno;
                break;
            }
            next_at = now + ATTEMPT_DELAY;
            continue;
        }
        if (r->finished == r->n) {
            err = r->err ? r->err : ECONNREFUSED;
            break;
        }
        until = r->started < r->n ? next_at : -1;
        if (r->deadline >= 0 && (until < 0 || r->deadline < until))
            until = r->deadline;
        if (corio_event_wait(r->ev, until) == -1 &&
            (errno != ETIMEDOUT || until == r->deadline ||
             corio_now() < until)) {
            err = errno; /* cancelled, the deadline, a deadline scope's */
            break;
        }
        corio_event_clear(r->ev);
    }
    /* cancel the rest and wait for them: nothing outlives the call */
    r->over = true;
    for (int i = 0; i < r->started; i++)
        corio_task_cancel(r->tasks[i]);
    {
        CORIO_SHIELD(-1); /* the attempts end at their next call */

        for (int i = 0; i < r->started; i++) {
            if (corio_task_join(r->tasks[i], NULL) == -1) {
                /* it ended CANCELLED, as asked: nothing to report */
            }
        }
    }
    cancelled = corio__checkpoint() == -1 && errno == ECANCELED;
    corio_event_free(r->ev);
    if (cancelled && r->fd >= 0) {
        corio_fd_close(r->fd);
        r->fd = -1;
        err = ECANCELED;
    }
    if (r->fd < 0)
        errno = err;
    return r->fd;
}

/* "name:port": resolve, then race the addresses; the error of the last
 * attempt to fail is reported. */
static int connect_name(const char *addr, bool nodelay, int64_t deadline)
{
    struct race r = {.nodelay = nodelay, .deadline = deadline};
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hlen = colon ? (size_t)(colon - addr) : 0;

    if (colon == NULL || hlen == 0 || hlen >= sizeof(host) || addr[0] == '[' ||
        strncmp(addr, "unix:", 5) == 0 || colon[1] == 0) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = 0;
    r.n = corio_dns_resolve(host, colon + 1, AF_UNSPEC, r.as, MAX_ADDRS, deadline);
    if (r.n == -1)
        return -1;
    if (r.n == 1)
        return connect_addr(&r.as[0], nodelay, deadline);
    return race(&r);
}

int corio_socket_connect(const char *addr, const corio_connect_opts *opts,
                         int64_t deadline)
{
    bool nodelay = want_nodelay(opts);
    corio_addr a;

    if (addr == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio_addr_parse(&a, addr) == -1)
        return connect_name(addr, nodelay, deadline);
    return connect_addr(&a, nodelay, deadline);
}

ssize_t corio_fd_read(int fd, void *buf, size_t n, int64_t deadline)
{
    if (n > SSIZE_MAX) { /* POSIX leaves read(2) undefined there */
        errno = EINVAL;
        return -1;
    }
    if (corio__budget_spend(n) == -1)
        return -1;
    for (;;) {
        ssize_t got = corio__read_fd(fd, buf, n);

        if (got >= 0)
            return got;
        if (again(fd, CORIO_READ, deadline) == -1)
            return -1;
    }
}

ssize_t corio_fd_write(int fd, const void *buf, size_t n, int64_t deadline)
{
    const char *p = buf;
    size_t left = n;

    if (n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    while (left > 0) {
        ssize_t put;

        if (corio__budget_spend(left) == -1)
            return -1;
        put = send(fd, p, left, MSG_NOSIGNAL);

        if (put == -1 && errno == ENOTSOCK)
            put = write(fd, p, left); /* a pipe: SIGPIPE is the caller's */
        if (put >= 0) {
            p += put;
            left -= (size_t)put;
            continue;
        }
        if (again(fd, CORIO_WRITE, deadline) == -1)
            return -1;
    }
    return (ssize_t)n;
}

int corio_fd_close(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    corio_fd_forget(fd);
    return close(fd);
}

/* ---- UDP ----------------------------------------------------------------- */

int corio_udp_open(const char *addr)
{
    corio_addr a;
    int fd;

    if (addr == NULL) {
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        return fd;
    }
    if (corio_addr_parse(&a, addr) == -1 || a.ss.ss_family == AF_UNIX) {
        errno = EINVAL;
        return -1;
    }
    fd = socket_for(&a, SOCK_DGRAM);
    if (fd == -1)
        return -1;
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) == -1)
        return fail_close(fd);
    return fd;
}

int corio_udp_connect(int fd, const char *addr)
{
    corio_addr a;

    if (corio_addr_parse(&a, addr) == -1 || a.ss.ss_family == AF_UNIX) {
        errno = EINVAL;
        return -1;
    }
    /* a datagram connect only records the peer: it never waits */
    return connect(fd, (struct sockaddr *)&a.ss, a.len);
}

ssize_t corio_udp_sendto(int fd, const void *buf, size_t n, const corio_addr *to,
                     int64_t deadline)
{
    if (n > SSIZE_MAX || (to != NULL && !addr_len_ok(to))) {
        errno = EINVAL;
        return -1;
    }
    if (corio__budget_spend(n) == -1)
        return -1;
    for (;;) {
        ssize_t put = sendto(fd, buf, n, MSG_NOSIGNAL,
                             to ? (const struct sockaddr *)&to->ss : NULL,
                             to ? to->len : 0);

        if (put >= 0)
            return put;
        if (again(fd, CORIO_WRITE, deadline) == -1)
            return -1;
    }
}

ssize_t corio_udp_recvfrom(int fd, void *buf, size_t n, corio_addr *from,
                       int64_t deadline)
{
    if (n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (corio__budget_spend(n) == -1)
        return -1;
    for (;;) {
        ssize_t got;

        if (from != NULL)
            from->len = sizeof(from->ss);
        got = recvfrom(fd, buf, n, 0,
                       from ? (struct sockaddr *)&from->ss : NULL,
                       from ? &from->len : NULL);
        if (got >= 0)
            return got;
        if (again(fd, CORIO_READ, deadline) == -1)
            return -1;
    }
}
