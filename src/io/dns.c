/* src/io/dns.c -- name resolution with c-ares, driven by the loop.
 *
 * Each lookup has a c-ares channel of its own (it reads /etc/hosts and
 * resolv.conf when made), so cancelling one lookup -- destroying its
 * channel -- touches no other. The calling task waits on the channel's
 * socket with corio_fd_wait, bounded by c-ares's own retry timeout, and
 * hands whatever is ready to ares_process_fd. c-ares opens and closes its
 * sockets through our functions, so the loop forgets an fd before it is
 * closed and a reused fd number is never mistaken for the old one. */
#include "corio/io.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "io_int.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ares.h's ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit for
 * the last socket: these do it unsigned. */
#define READABLE(b, i) (((unsigned)(b) >> (i)) & 1u)
#define WRITABLE(b, i) (((unsigned)(b) >> ((i) + ARES_GETSOCK_MAXNUM)) & 1u)

/* A c-ares retry may cap a wait on one socket while others are open. */
#define MULTI_SOCKET_POLL (10 * CORIO_MSEC)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status;
static __thread char *servers; /* corio_dns_set_servers, per thread */

static void library_init(void)
{
    init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int corio_dns_set_servers(const char *csv)
{
    char *copy = NULL;

    if (csv != NULL && (copy = strdup(csv)) == NULL)
        return -1;
    free(servers);
    servers = copy;
    return 0;
}

/* ---- c-ares's sockets, opened and closed through the loop --------------------- */

static ares_socket_t sock_open(int domain, int type, int protocol, void *u)
{
    (void)u;
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

static int sock_close(ares_socket_t fd, void *u)
{
    (void)u;
    return corio_fd_close(fd);
}

static int sock_connect(ares_socket_t fd, const struct sockaddr *a,
                        ares_socklen_t len, void *u)
{
    (void)u;
    return connect(fd, a, len);
}

static ares_ssize_t sock_recvfrom(ares_socket_t fd, void *buf, size_t n,
                                  int flags, struct sockaddr *from,
                                  ares_socklen_t *fromlen, void *u)
{
    (void)u;
    return recvfrom(fd, buf, n, flags, from, fromlen);
}

static ares_ssize_t sock_sendv(ares_socket_t fd, const struct iovec *iov,
                               int n, void *u)
{
    (void)u;
    return writev(fd, iov, n);
}

static const struct ares_socket_functions sock_funcs = {
    sock_open, sock_close, sock_connect, sock_recvfrom, sock_sendv,
};

/* ---- One lookup ------------------------------------------------------------------- */

struct lookup {
    bool done;
    int status;
    struct ares_addrinfo *res;
};

static void on_result(void *arg, int status, int timeouts,
                      struct ares_addrinfo *res)
{
    struct lookup *q = arg;

    (void)timeouts;
    q->done = true;
    q->status = status;
    q->res = res;
}

static int errno_of(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        return CORIO_EUNKNOWNHOST;
    case ARES_ETIMEOUT:
        return ETIMEDOUT;
    case ARES_ECONNREFUSED:
        return ECONNREFUSED;
    case ARES_ENOMEM:
        return ENOMEM;
    case ARES_EBADNAME:
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS:
    case ARES_ESERVICE:
    case ARES_EBADFAMILY:
        return EINVAL;
    default:
        return EIO;
    }
}

/* Give c-ares what is ready on its sockets now (none: its timeouts). */
static void process_ready(ares_channel ch)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
    bool any = false;

    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
        struct pollfd p = {.fd = socks[i]};

        if (READABLE(bits, i))
            p.events |= POLLIN;
        if (WRITABLE(bits, i))
            p.events |= POLLOUT;
        if (p.events == 0 || poll(&p, 1, 0) != 1)
            continue;
        any = true;
        ares_process_fd(ch, p.revents & (POLLIN | POLLERR | POLLHUP)
                                ? socks[i] : ARES_SOCKET_BAD,
                        p.revents & POLLOUT ? socks[i] : ARES_SOCKET_BAD);
    }
    if (!any)
        ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* Wait for c-ares's first socket, or its next timeout, or deadline.
 * Returns 0 to go on, -1 with errno to give up. */
static int wait_step(ares_channel ch, int64_t deadline)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), fd = -1;
    unsigned events = 0;
    int nsocks = 0;
    struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
    int64_t until = -1;

    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
        unsigned ev = (READABLE(bits, i) ? CORIO_READ : 0) |
                      (WRITABLE(bits, i) ? CORIO_WRITE : 0);

        if (ev == 0)
            continue;
        if (nsocks++ == 0) {
            fd = socks[i];
            events = ev;
        }
    }
    if (tvp != NULL)
        until = corio_now() + tv.tv_sec * CORIO_SECOND + tv.tv_usec * 1000;
    if (nsocks > 1 && (until < 0 || until > corio_now() + MULTI_SOCKET_POLL))
        until = corio_now() + MULTI_SOCKET_POLL;
    if (deadline >= 0 && (until < 0 || deadline <= until))
        until = deadline;
    if (until < 0 && fd < 0) {
        errno = EIO; /* nothing to wait for and no result: cannot happen */
        return -1;
    }
    if ((fd >= 0 ? corio_fd_wait(fd, events, until)
                 : corio_sleep_until(until)) == -1) {
        /* c-ares's timeout or our poll cap: not the caller's deadline, nor
         * a deadline scope's (which fails before `until`) */
        if (errno != ETIMEDOUT || until == deadline || corio_now() < until)
            return -1;
    }
    process_ready(ch);
    return 0;
}

static int lookup_run(const char *host, const char *port, int family,
                      int64_t deadline, struct ares_addrinfo **res)
{
    struct ares_addrinfo_hints hints = {.ai_family = family,
                                        .ai_socktype = SOCK_STREAM};
    struct ares_options opts = {.timeout = 2000, .tries = 2};
    struct lookup q = {0};
    ares_channel ch;
    int err = 0;

    pthread_once(&init_once, library_init);
    if (init_status != ARES_SUCCESS) {
        errno = ENOMEM;
        return -1;
    }
    if (ares_init_options(&ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
        ARES_SUCCESS) {
        errno = ENOMEM;
        return -1;
    }
    ares_set_socket_functions(ch, &sock_funcs, NULL);
    if (servers != NULL && ares_set_servers_ports_csv(ch, servers) !=
                               ARES_SUCCESS) {
        ares_destroy(ch);
        errno = EINVAL;
        return -1;
    }
    ares_getaddrinfo(ch, host, port, &hints, on_result, &q);
    while (!q.done && err == 0)
        if (wait_step(ch, deadline) == -1)
            err = errno;
    ares_destroy(ch); /* a lookup still running ends (ARES_EDESTRUCTION) */
    if (err == 0 && q.status != ARES_SUCCESS)
        err = errno_of(q.status);
    if (err != 0) {
        if (q.res != NULL)
            ares_freeaddrinfo(q.res);
        errno = err;
        return -1;
    }
    *res = q.res;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A lookup's port: decimal digits up to 65535 (*num receives it), or a
 * service name of /etc/services (RFC 6335: letters, digits and hyphens,
 * a letter first; *num = -1). Anything else is EINVAL. Numbers never
 * reach c-ares, which reads them with strtoul(3) and keeps the low 16
 * bits ("65616" would be port 80, past an allow-list of ports), the
 * digits before junk ("80x") and hex or octal ("0x50", "010"). */
static int port_check(const char *port, long *num)
{
    const char *p = port;
    uint16_t v;

    if (is_digit(*p)) {
        if (corio__port_parse(p, &v) == -1)
            goto bad;
        *num = v;
        return 0;
    }
    if (!is_alpha(*p))
        goto bad;
    for (; *p != 0; p++)
        if (!is_alpha(*p) && !is_digit(*p) && *p != '-')
            goto bad;
    *num = -1;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* Copy a c-ares address into *a, with the port if the caller gave a
 * number. false if it does not fit. */
static bool addr_take(corio_addr *a, const struct ares_addrinfo_node *ai,
                      long port)
{
    if ((size_t)ai->ai_addrlen > sizeof(a->ss))
        return false;
    memset(a, 0, sizeof(*a));
    memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
    a->len = (socklen_t)ai->ai_addrlen;
    if (port >= 0 && a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    if (port >= 0 && a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
    return true;
}

int corio_dns_resolve(const char *host, const char *port, int family,
                  corio_addr *out, size_t max, int64_t deadline)
{
    struct ares_addrinfo *res;
    size_t n = 0;
    long num;

    if (host == NULL || *host == 0 || port == NULL || out == NULL ||
        max == 0 || (family != AF_UNSPEC && family != AF_INET &&
                     family != AF_INET6)) {
        errno = EINVAL;
        return -1;
    }
    if (port_check(port, &num) == -1)
        return -1;
    if (lookup_run(host, num >= 0 ? NULL : port, family, deadline, &res) ==
        -1)
        return -1;
    /* never more than max: out may be an array of exactly max */
    for (struct ares_addrinfo_node *ai = res->nodes; ai != NULL && n < max;
         ai = ai->ai_next)
        if (addr_take(&out[n], ai, num))
            n++;
    ares_freeaddrinfo(res);
    if (n == 0) {
        errno = CORIO_EUNKNOWNHOST;
        return -1;
    }
    return (int)n;
}
