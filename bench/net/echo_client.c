/* bench/net/echo_client.c -- the one client every echo server is measured
 * with: plain epoll, no corio, so it favours no server.
 *
 *   echo_client PORT CONNS SIZE SECONDS
 *       CONNS connections to 127.0.0.1:PORT, each doing request/response:
 *       send SIZE bytes, wait for all SIZE to come back, again. After
 *       SECONDS, prints "RESULT roundtrips=N seconds=S".
 *   echo_client PORT idle CONNS
 *       open CONNS connections and hold them until stdin closes; prints
 *       "READY" once all are connected. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t sent, got;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd == -1)
        die("socket");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_some(struct conn *c, const char *msg, size_t size)
{
    while (c->sent < size) {
        ssize_t n = write(c->fd, msg + c->sent, size - c->sent);

        if (n == -1) {
            if (errno == EAGAIN)
                return;
            die("write");
        }
        c->sent += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    int port, nconns, ep;
    size_t size;
    double secs, t0, t1;
    long trips = 0;
    struct conn *cs;
    char *msg, *buf;
    struct epoll_event evs[256];

    raise_nofile();
    if (argc == 4 && strcmp(argv[2], "idle") == 0) {
        char c;

        port = atoi(argv[1]);
        nconns = atoi(argv[3]);
        for (int i = 0; i < nconns; i++)
            dial(port);
        printf("READY\n");
        fflush(stdout);
        while (read(0, &c, 1) > 0)
            ;
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: echo_client PORT CONNS SIZE SECONDS | PORT idle CONNS\n");
        return 2;
    }
    port = atoi(argv[1]);
    nconns = atoi(argv[2]);
    size = (size_t)atol(argv[3]);
    secs = atof(argv[4]);
    cs = calloc((size_t)nconns, sizeof(*cs));
    msg = malloc(size);
    buf = malloc(size);
    ep = epoll_create1(0);
    if (cs == NULL || msg == NULL || buf == NULL || ep == -1)
        die("setup");
    memset(msg, 'x', size);
    for (int i = 0; i < nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};

        cs[i].fd = dial(port);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) == -1)
            die("epoll_ctl");
        send_some(&cs[i], msg, size);
    }
    t0 = now_s();
    t1 = t0 + secs;
    while (now_s() < t1) {
        int n = epoll_wait(ep, evs, 256, 100);

        for (int k = 0; k < n; k++) {
            struct conn *c = &cs[evs[k].data.u32];
            ssize_t got = read(c->fd, buf, size - c->got);

            if (got <= 0) {
                if (got == -1 && errno == EAGAIN)
                    continue;
                die("read");
            }
            c->got += (size_t)got;
            if (c->got < size)
                continue;
            trips++;
            c->got = c->sent = 0;
            send_some(c, msg, size);
        }
    }
    printf("RESULT roundtrips=%ld seconds=%.3f\n", trips, now_s() - t0);
    return 0;
}
