/* tests/helpers/net_test.h -- what the io tests share: the port a socket
 * is bound to, a server's address as text, whether IPv6 loopback works
 * here, and a handler that echoes lines. Include corio.h first. */
#ifndef CORIO_TEST_NET_TEST_H
#define CORIO_TEST_NET_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

/* The port fd is bound to (IPv4 or IPv6), or -1. */
static inline int bound_port(int fd)
{
    corio_addr a;

    if (corio_socket_name(fd, &a) == -1)
        return -1;
    if (a.ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
}

/* The address srv listens on, as text ("127.0.0.1:40000"). */
static inline void server_addr(corio_server *srv, char *buf, size_t size)
{
    corio_addr a;

    corio_socket_name(corio_server_fd(srv), &a);
    corio_addr_format(&a, buf, size);
}

/* True if a socket can be bound to [::1]. */
static inline bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    corio_addr a;
    bool ok;

    if (fd == -1)
        return false;
    ok = corio_addr_parse(&a, "[::1]:0") == 0 &&
         bind(fd, (struct sockaddr *)&a.ss, a.len) == 0;
    close(fd);
    return ok;
}

/* A server handler: echo lines until the end of the stream. */
static inline void echo_lines(corio_stream *s, void *arg)
{
    char line[256];
    ssize_t n;

    (void)arg;
    while ((n = corio_stream_readline(s, line, sizeof(line), -1)) > 0)
        if (corio_stream_write(s, line, (size_t)n) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return;
}

#endif
