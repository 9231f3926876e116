/* src/loop/poller_epoll.c -- Linux epoll(7) backend of poller.h. File
 * descriptors are added once, edge-triggered for both directions, and stay
 * until deleted: a wait costs no epoll_ctl. */
#include "poller.h"
#include "corio/loop.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifdef CORIO_VALGRIND
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define BATCH 256
#define WAKE_TAG (-1)

int corio__poller_open(struct corio__poller *p)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = WAKE_TAG};
    int err;

    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd == -1)
        return -1;
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wakefd == -1)
        goto out_close_epoll;
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, p->wakefd, &ev) == -1)
        goto out_close_wake;
    return 0;

out_close_wake:
    err = errno;
    close(p->wakefd);
    errno = err;
out_close_epoll:
    err = errno;
    close(p->fd);
    errno = err;
    return -1;
}

void corio__poller_close(struct corio__poller *p)
{
    close(p->wakefd);
    close(p->fd);
}

int corio__poller_add(struct corio__poller *p, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.fd = fd,
    };

    return epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev);
}

int corio__poller_del(struct corio__poller *p, int fd)
{
    return epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL);
}

void corio__poller_wake_threadsafe(struct corio__poller *p)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is already non-zero: a wake-up is pending. */
    if (write(p->wakefd, &one, sizeof(one)) < 0)
        return;
}

/* epoll_pwait2 (Linux 5.11) takes nanoseconds; epoll_wait only whole
 * milliseconds, rounded up so that a wait never ends before its timer. */
static int wait_events(struct corio__poller *p, struct epoll_event *evs,
                       int64_t timeout_ns)
{
    static int no_pwait2 = -1; /* unknown yet */
    int timeout_ms;

    /* valgrind 3.19 does not know epoll_pwait2, and says so loudly */
    if (__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED) == -1)
        __atomic_store_n(&no_pwait2, RUNNING_ON_VALGRIND ? 1 : 0,
                         __ATOMIC_RELAXED);

    if (__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED) == 0) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        int n = epoll_pwait2(p->fd, evs, BATCH, timeout_ns < 0 ? NULL : &ts,
                             NULL);

        if (n >= 0 || errno != ENOSYS)
            return n;
        __atomic_store_n(&no_pwait2, 1, __ATOMIC_RELAXED);
    }
    if (timeout_ns < 0)
        timeout_ms = -1;
    else if (timeout_ns > (int64_t)INT32_MAX * 1000000)
        timeout_ms = INT32_MAX;
    else
        timeout_ms = (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(p->fd, evs, BATCH, timeout_ms);
}

int corio__poller_wait(struct corio__poller *p, int64_t timeout_ns,
                       struct corio_loop *loop,
                       void (*on_fd)(struct corio_loop *, int, unsigned),
                       void (*on_wake)(struct corio_loop *))
{
    struct epoll_event evs[BATCH];
    int n;

    n = wait_events(p, evs, timeout_ns);
    if (n == -1)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        unsigned ready = 0;

        if (evs[i].data.fd == WAKE_TAG) {
            uint64_t v;

            if (read(p->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return -1;
            on_wake(loop);
            continue;
        }
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
            ready |= CORIO_READ;
        if (e & EPOLLOUT)
            ready |= CORIO_WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            ready |= CORIO__POLL_ERR;
        if (e & (EPOLLRDHUP | EPOLLPRI))
            ready |= CORIO__POLL_HUP;
        on_fd(loop, evs[i].data.fd, ready);
    }
    return n;
}
