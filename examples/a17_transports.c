/* examples/a17_transports.c -- SEEDS A17: asyncio supports TCP, UDP and SSL;
 * the server side is create_server.
 *
 * Three servers on 127.0.0.1, each answered by a client on the same loop:
 *   TCP  corio_server_start (asyncio's create_server/start_server): one task per
 *        connection echoes lines;
 *   UDP  a task on a datagram socket (corio_udp_open) echoes datagrams;
 *   TLS  corio_server_start with a TLS context (ssl=... in asyncio): the same
 *        echo, encrypted; the client verifies the server's certificate for
 *        "localhost" against a throw-away CA made at start (devcert.h).
 *
 *     build/examples/a17_transports */
#include <corio.h>

#include "devcert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEADLINE (corio_now() + 5 * CORIO_SECOND)

static void echo_lines(corio_stream *s, void *arg)
{
    char line[256];
    ssize_t n;

    (void)arg;
    while ((n = corio_stream_readline(s, line, sizeof(line), -1)) > 0)
        if (corio_stream_write(s, line, (size_t)n) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return;
}

/* The address fd is bound to, as text. Returns 0, or -1 with errno. */
static int fd_addr(int fd, char *buf, size_t size)
{
    corio_addr a;

    if (corio_socket_name(fd, &a) == -1 ||
        corio_addr_format(&a, buf, size) == -1)
        return -1;
    return 0;
}

/* Send one line on s and print what comes back. Returns 0, or -1 with
 * errno. */
static int ask(corio_stream *s, const char *who, const char *text)
{
    char line[256];
    ssize_t n;

    if (corio_stream_write(s, text, strlen(text)) == -1 ||
        corio_stream_drain(s, DEADLINE) == -1)
        return -1;
    n = corio_stream_readline(s, line, sizeof(line), DEADLINE);
    if (n <= 0) {
        if (n == 0)
            errno = CORIO_EEOF; /* the server hung up without answering */
        return -1;
    }
    line[n - 1] = 0;
    printf("  %s sent \"%.*s\", got back \"%s\"\n", who,
           (int)strlen(text) - 1, text, line);
    return 0;
}

static int tcp(void)
{
    corio_server *srv = corio_server_start("127.0.0.1:0", NULL, echo_lines, NULL);
    corio_stream *s = NULL;
    char addr[64];
    int err = 0;

    if (srv == NULL)
        return -1;
    if (fd_addr(corio_server_fd(srv), addr, sizeof(addr)) == -1) {
        err = errno;
    } else {
        printf("TCP server on %s (corio_server_start: create_server)\n", addr);
        s = corio_stream_connect(addr, DEADLINE);
        if (s == NULL || ask(s, "TCP client", "hello over TCP\n") == -1)
            err = errno;
    }
    corio_stream_close(s);
    if (corio_server_stop(srv, DEADLINE) == -1 && err == 0)
        err = errno;
    errno = err;
    return err == 0 ? 0 : -1;
}

/* Echo datagrams until cancelled. */
static void *udp_server(void *arg)
{
    int fd = *(int *)arg;
    char buf[1500];
    corio_addr from;
    ssize_t n;

    while ((n = corio_udp_recvfrom(fd, buf, sizeof(buf), &from, -1)) >= 0)
        if (corio_udp_sendto(fd, buf, (size_t)n, &from, -1) == -1)
            break;
    return NULL;
}

/* Send one datagram from cfd to a and print the echo. Returns 0, or -1
 * with errno. */
static int udp_ask(int cfd, const corio_addr *a)
{
    corio_addr from;
    char got[64], buf[1500];
    ssize_t n;

    if (corio_udp_sendto(cfd, "hello over UDP", 14, a, DEADLINE) == -1)
        return -1;
    n = corio_udp_recvfrom(cfd, buf, sizeof(buf), &from, DEADLINE);
    if (n == -1 || corio_addr_format(&from, got, sizeof(got)) == -1)
        return -1;
    printf("  UDP client sent \"hello over UDP\", got back \"%.*s\" "
           "from %s\n", (int)n, buf, got);
    return 0;
}

static int udp(void)
{
    int sfd = corio_udp_open("127.0.0.1:0"), cfd = -1, err = 0;
    corio_task *t = NULL;
    corio_addr a;
    char addr[64];

    if (sfd == -1)
        return -1;
    if (corio_socket_name(sfd, &a) == -1 ||
        corio_addr_format(&a, addr, sizeof(addr)) == -1) {
        err = errno;
        goto out;
    }
    printf("UDP server on %s (corio_udp_open: create_datagram_endpoint)\n",
           addr);
    t = corio_task_spawn(udp_server, &sfd, NULL);
    if (t != NULL)
        cfd = corio_udp_open(NULL);
    if (t == NULL || cfd == -1 || udp_ask(cfd, &a) == -1)
        err = errno;
out:
    if (t != NULL) {
        corio_task_cancel(t);
        /* it ends cancelled; anything else is its own failure */
        if (corio_task_join(t, NULL) == -1 && errno != ECANCELED && err == 0)
            err = errno;
    }
    if (cfd != -1)
        corio_fd_close(cfd);
    corio_fd_close(sfd);
    errno = err;
    return err == 0 ? 0 : -1;
}

static int tls(const char *dir)
{
    char cert[300], key[300], ca[300], addr[64];
    corio_tls_opts so = {.cert_file = cert, .key_file = key,
                         .alpn = "echo/1"};
    corio_tls_opts co = {.ca_file = ca, .alpn = "echo/1"};
    corio_tls *stls, *ctls;
    corio_listen_opts lo = {0};
    corio_server *srv = NULL;
    corio_stream *s = NULL;
    int err = 0;

    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    stls = corio_tls_server(&so);
    ctls = corio_tls_client(&co);
    lo.tls = stls;
    if (stls != NULL && ctls != NULL)
        srv = corio_server_start("127.0.0.1:0", &lo, echo_lines, NULL);
    if (srv != NULL && fd_addr(corio_server_fd(srv), addr, sizeof(addr)) == 0) {
        printf("TLS server on %s (corio_server_start with a TLS context: "
               "create_server(ssl=...))\n", addr);
        /* connect by name: the certificate is checked for "localhost" */
        snprintf(addr, sizeof(addr), "localhost:%d",
                 atoi(strrchr(addr, ':') + 1));
        s = corio_tls_connect(ctls, addr, DEADLINE);
    }
    if (s != NULL) {
        printf("  TLS client: %s, certificate verified for localhost, "
               "ALPN %s\n", corio_tls_version(s), corio_tls_alpn(s));
        if (ask(s, "TLS client", "hello over TLS\n") == -1)
            err = errno;
    } else {
        err = errno;
        if (err == EPROTO)
            fprintf(stderr, "a17_transports: TLS: %s\n", corio_tls_error());
    }
    corio_stream_close(s);
    if (srv != NULL && corio_server_stop(srv, DEADLINE) == -1 && err == 0)
        err = errno;
    corio_tls_free(stls);
    corio_tls_free(ctls);
    errno = err;
    return err == 0 ? 0 : -1;
}

static void *main_task(void *arg)
{
    const char *dir = arg;

    if (tcp() == -1 || udp() == -1 || tls(dir) == -1)
        return corio_task_fail(errno);
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/corio-a17-XXXXXX";
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "a17_transports: mkdtemp: %s\n",
                corio_strerror(errno));
        return 1;
    }
    rc = devcert_make(dir) == 0 ? corio_run(main_task, dir, NULL) : -1;
    if (rc == -1)
        fprintf(stderr, "a17_transports: %s\n", corio_strerror(errno));
    devcert_remove(dir);
    return rc == 0 ? 0 : 1;
}
