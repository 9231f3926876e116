/* tests/helpers/blackhole.h -- a TCP address that never answers a connect,
 * offline and on loopback: a listener whose accept queue is full and never
 * accepted (Linux drops the further SYNs, so a connect hangs in SYN-SENT).
 * Include corio.h first. */
#ifndef CORIO_TEST_BLACKHOLE_H
#define CORIO_TEST_BLACKHOLE_H

#include "net_test.h"

#include <stdio.h>

struct blackhole {
    int lfd, filler[4], nfill;
    int port;
    char addr[64];      /* "IP:port" */
};

/* A black hole on ip ("127.0.0.1") and port (0: any free one). Returns 0,
 * or -1 with errno. */
static inline int blackhole_open_at(struct blackhole *b, const char *ip,
                                    int port)
{
    corio_listen_opts o = {.backlog = 1};
    char where[64];

    b->nfill = 0;
    snprintf(where, sizeof(where), "%s:%d", ip, port);
    b->lfd = corio_socket_listen(where, &o);
    if (b->lfd < 0)
        return -1;
    b->port = bound_port(b->lfd);
    snprintf(b->addr, sizeof(b->addr), "%s:%d", ip, b->port);
    /* fill the queue: connects that complete, or pend, for 50 ms each */
    for (int i = 0; i < 4; i++) {
        int fd = corio_socket_connect(b->addr, NULL, corio_now() + 50 * CORIO_MSEC);

        if (fd >= 0)
            b->filler[b->nfill++] = fd;
    }
    return 0;
}

static inline int blackhole_open(struct blackhole *b)
{
    return blackhole_open_at(b, "127.0.0.1", 0);
}

static inline void blackhole_close(struct blackhole *b)
{
    for (int i = 0; i < b->nfill; i++)
        corio_fd_close(b->filler[i]);
    corio_fd_close(b->lfd);
}

#endif
