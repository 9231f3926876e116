/* src/loop/poller.h -- the interface of the poller backend. epoll today
 * (poller_epoll.c); io_uring will be a second file implementing the same
 * calls, chosen when a loop is made. */
#ifndef CORIO_POLLER_H
#define CORIO_POLLER_H

#include <stdint.h>

struct corio_loop;

struct corio__poller {
    int fd;        /* the epoll fd */
    int wakefd;    /* eventfd that wakes a sleeping wait */
};

/* Readiness reported for one fd: CORIO_READ, CORIO_WRITE, and ERR for
 * errors and hang-ups (which wake readers and writers alike). */
#define CORIO__POLL_ERR 4u
/* The peer's end (EPOLLRDHUP) or urgent data (EPOLLPRI): a short read no
 * longer means the socket is empty (see corio__read_fd). */
#define CORIO__POLL_HUP 8u

int corio__poller_open(struct corio__poller *p);
void corio__poller_close(struct corio__poller *p);

/* Watch fd for readiness, edge-triggered, until corio__poller_del. */
int corio__poller_add(struct corio__poller *p, int fd);
int corio__poller_del(struct corio__poller *p, int fd);

/* Wake a poller_wait in progress, from any thread. */
void corio__poller_wake_threadsafe(struct corio__poller *p);

/* Wait up to timeout_ns (-1: forever, 0: do not block) and call
 * on_fd(loop, fd, events) for each fd event, on_wake(loop) if woken. Returns
 * the number of events, or -1 with errno (EINTR is not an error: 0). */
int corio__poller_wait(struct corio__poller *p, int64_t timeout_ns,
                       struct corio_loop *loop,
                       void (*on_fd)(struct corio_loop *, int, unsigned),
                       void (*on_wake)(struct corio_loop *));

#endif
