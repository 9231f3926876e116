/* src/io/transport_fd.c -- the transport of plain file descriptors, for
 * streams (io_int.h): connected TCP and Unix sockets, and pipes.
 *
 * Each call is one system call on a non-blocking fd (or none: a read after
 * a short read of a TCP socket waits for the next edge first, see
 * corio__read_fd); waiting is the loop's corio__wait_fd. Writes use send(MSG_NOSIGNAL), so a closed peer is
 * EPIPE and never SIGPIPE; a pipe (ENOTSOCK) falls back to write(2). */
#include "io_int.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t fd_read(struct corio__transport *t, void *buf, size_t n,
                       unsigned *want)
{
    *want = CORIO_READ;
    return corio__read_fd(t->fd, buf, n);
}

static ssize_t fd_write(struct corio__transport *t, const void *buf,
                        size_t n, unsigned *want)
{
    ssize_t put = send(t->fd, buf, n, MSG_NOSIGNAL);

    if (put == -1 && errno == ENOTSOCK)
        put = write(t->fd, buf, n); /* a pipe: SIGPIPE is the caller's */
    *want = CORIO_WRITE;
    return put;
}

/* The stream waits only after read or write failed with EAGAIN: the fd is
 * known not ready, so the loop need not poll it before parking. */
static int fd_wait(struct corio__transport *t, unsigned events,
                   int64_t deadline)
{
    return corio__wait_fd(t->fd, events, deadline, true);
}

static int fd_shutdown(struct corio__transport *t, unsigned *want)
{
    *want = CORIO_WRITE;
    return shutdown(t->fd, SHUT_WR);
}

static int fd_close(struct corio__transport *t)
{
    return corio_fd_close(t->fd);
}

const struct corio__transport_ops corio__transport_fd = {
    .name = "fd",
    .read = fd_read,
    .write = fd_write,
    .wait = fd_wait,
    .shutdown = fd_shutdown,
    .close = fd_close,
};
