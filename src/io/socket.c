/* src/io/socket.c -- addresses, and TCP, Unix and UDP sockets whose calls
 * suspend the calling task instead of blocking the thread.
 *
 * Every socket is non-blocking. A call first tries the system call; on
 * EAGAIN it waits for readiness with corio_wait_fd (deadline and
 * cancellation come from there) and tries again. EINTR is retried. */
#define _GNU_SOURCE /* accept4, memmem */
#include "corio/io.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "../loop/loop_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- Addresses ----------------------------------------------------------- */

static int parse_port(const char *s, in_port_t *port)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtol(s, &end, 10);
    if (*end != 0 || v < 0 || v > 65535)
        return -1;
    *port = htons((in_port_t)v);
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

int corio_addr_format(const corio_addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    if (a == NULL || buf == NULL) {
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

    corio_close(fd);
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

int corio_listen(const char *addr, const corio_listen_opts *opts)
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

int corio_sockname(int fd, corio_addr *a)
{
    if (a == NULL) {
        errno = EINVAL;
        return -1;
    }
    a->len = sizeof(a->ss);
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
}

int corio_accept(int lfd, corio_addr *peer, int64_t deadline)
{
    corio_addr tmp;

    if (peer == NULL)
        peer = &tmp;
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

int corio_connect_addr(const corio_addr *a, int nodelay, int64_t deadline)
{
    int fd, err = 0;
    socklen_t len = sizeof(err);

    if (a == NULL) {
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
    if (corio_wait_fd(fd, CORIO_WRITE, deadline) == -1)
        return fail_close(fd);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        return fail_close(fd);
    if (err != 0) {
        errno = err;
        return fail_close(fd);
    }
    return fd;
}

/* "name:port": resolve, then try each address until one connects; the
 * error of the last one is reported. */
static int connect_name(const char *addr, int nodelay, int64_t deadline)
{
    corio_addr as[16];
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    int n, fd = -1;

    if (colon == NULL || hlen == 0 || hlen >= sizeof(host) || addr[0] == '[' ||
        strncmp(addr, "unix:", 5) == 0 || colon[1] == 0) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = 0;
    n = corio_resolve(host, colon + 1, AF_UNSPEC, as, 16, deadline);
    for (int i = 0; i < n && fd == -1; i++) {
        fd = corio_connect_addr(&as[i], nodelay, deadline);
        if (fd == -1 && (errno == ECANCELED || errno == ETIMEDOUT))
            break;
    }
    return fd;
}

int corio_connect(const char *addr, int nodelay, int64_t deadline)
{
    corio_addr a;

    if (addr == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio_addr_parse(&a, addr) == -1)
        return connect_name(addr, nodelay, deadline);
    return corio_connect_addr(&a, nodelay, deadline);
}

ssize_t corio_read(int fd, void *buf, size_t n, int64_t deadline)
{
    for (;;) {
        ssize_t got = corio__read_fd(fd, buf, n);

        if (got >= 0)
            return got;
        if (again(fd, CORIO_READ, deadline) == -1)
            return -1;
    }
}

ssize_t corio_write(int fd, const void *buf, size_t n, int64_t deadline)
{
    const char *p = buf;
    size_t left = n;

    while (left > 0) {
        ssize_t put = send(fd, p, left, MSG_NOSIGNAL);

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

int corio_close(int fd)
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

ssize_t corio_sendto(int fd, const void *buf, size_t n, const corio_addr *to,
                     int64_t deadline)
{
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

ssize_t corio_recvfrom(int fd, void *buf, size_t n, corio_addr *from,
                       int64_t deadline)
{
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
