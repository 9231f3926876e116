/* src/io/server.c -- a stream server: one task accepts, one task per
 * connection runs the handler on a corio_stream (asyncio's start_server).
 *
 * The connection tasks are detached and kept on the server's list while
 * they run; the last one to end during a stop sets `idle`. Stopping cancels
 * the acceptor, closes the listening socket, gives the handlers until the
 * deadline, then cancels the rest and waits for them: nothing outlives
 * corio_server_stop. */
#include "corio/io.h"
#include "corio/sync.h"
#include "corio/task.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

struct conn {
    struct conn *prev, *next;
    corio_server *srv;
    corio_stream *stream;
    corio_task *task;
};

struct corio_server {
    int fd;
    bool nodelay;
    corio_conn_fn handler;
    void *arg;
    corio_task *acceptor;
    struct conn *conns;
    size_t nconns;
    corio_event *idle;      /* set when the last connection ends */
};

static void conn_unlink(corio_server *srv, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (--srv->nconns == 0)
        corio_event_set(srv->idle);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    corio_server *srv = c->srv;

    srv->handler(c->stream, srv->arg);
    corio_stream_close(c->stream);
    conn_unlink(srv, c);
    free(c);
    return NULL;
}

/* Start a task for fd; on failure fd is closed. */
static void conn_start(corio_server *srv, int fd)
{
    static const corio_task_attr attr = {.name = "conn"};
    struct conn *c = calloc(1, sizeof(*c));
    int one = 1;

    if (srv->nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c == NULL || (c->stream = corio_stream_new(fd, NULL)) == NULL) {
        free(c);
        corio_close(fd);
        return;
    }
    c->srv = srv;
    c->task = corio_spawn(conn_main, c, &attr);
    if (c->task == NULL) {
        corio_stream_close(c->stream);
        free(c);
        return;
    }
    corio_task_detach(c->task);
    c->next = srv->conns;
    if (c->next != NULL)
        c->next->prev = c;
    srv->conns = c;
    if (srv->nconns++ == 0)
        corio_event_clear(srv->idle);
}

static void *accept_main(void *arg)
{
    corio_server *srv = arg;

    for (;;) {
        int fd = corio_accept(srv->fd, NULL, -1);

        if (fd >= 0) {
            conn_start(srv, fd);
            continue;
        }
        if (errno == ECANCELED || errno == EBADF)
            return NULL;
        /* out of fds or memory: let the handlers release some */
        if (corio_sleep(10 * CORIO_MSEC) == -1)
            return NULL;
    }
}

corio_server *corio_serve(const char *addr, const corio_listen_opts *opts,
                          corio_conn_fn handler, void *arg)
{
    static const corio_task_attr attr = {.name = "acceptor"};
    corio_server *srv;
    int err;

    if (handler == NULL) {
        errno = EINVAL;
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->handler = handler;
    srv->arg = arg;
    srv->nodelay = opts != NULL && opts->nodelay;
    srv->fd = corio_listen(addr, opts);
    if (srv->fd == -1)
        goto fail;
    srv->idle = corio_event_new();
    if (srv->idle == NULL)
        goto fail;
    corio_event_set(srv->idle);
    srv->acceptor = corio_spawn(accept_main, srv, &attr);
    if (srv->acceptor == NULL)
        goto fail;
    return srv;
fail:
    err = errno;
    if (srv->fd >= 0)
        corio_close(srv->fd);
    corio_event_free(srv->idle);
    free(srv);
    errno = err;
    return NULL;
}

/* A Unix socket's path goes with the server (as asyncio does since 3.13). */
static void unlink_socket_path(int fd)
{
    corio_addr a;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a.ss;

    if (corio_sockname(fd, &a) == 0 && a.ss.ss_family == AF_UNIX &&
        a.len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0] != 0)
        unlink(un->sun_path);
}

int corio_server_fd(const corio_server *s)
{
    return s != NULL ? s->fd : -1;
}

size_t corio_server_connections(const corio_server *s)
{
    return s != NULL ? s->nconns : 0;
}

int corio_server_stop(corio_server *s, int64_t deadline)
{
    int rc = 0;

    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    corio_task_cancel(s->acceptor);
    /* wait, not join: join would give the acceptor up if we were cancelled */
    while (corio_task_wait(s->acceptor, -1) == -1 && errno == ECANCELED)
        ;
    corio_join(s->acceptor, NULL);
    unlink_socket_path(s->fd);
    corio_close(s->fd);
    if (s->nconns > 0 && corio_event_wait(s->idle, deadline) == -1) {
        int err = errno; /* ETIMEDOUT, or ECANCELED: stop now */

        for (struct conn *c = s->conns; c != NULL; c = c->next)
            corio_task_cancel(c->task);
        while (s->nconns > 0)
            corio_event_wait(s->idle, -1);
        errno = err;
        rc = -1;
    }
    corio_event_free(s->idle);
    free(s);
    return rc;
}
