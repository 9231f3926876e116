/* src/io/server.c -- a stream server (asyncio's start_server): one task
 * accepts, and each connection runs the handler in a task of the server's
 * task group (corio_group, group.c).
 *
 * The group shapes the stop: corio_server_stop ends the acceptor, closes
 * the listening socket, then waits for the group inside a deadline scope.
 * When the deadline passes, the group cancels the handlers still running
 * and waits for them to return, so nothing outlives the stop. The server
 * also keeps its connections on a list, for the count, and because a
 * connection whose task is cancelled before it first runs never runs: the
 * stop closes those. A TLS server's connection does its handshake in its
 * task before the handler runs. */
#include "corio/io.h"
#include "corio/group.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "corio/tls.h"
#include "io_int.h"
#include "../base/list.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

struct conn {
    struct corio__list node;        /* in srv->conns */
    corio_server *srv;
    corio_stream *stream;           /* the connection, closed with conn */
    corio_task *task;               /* its task, once it runs */
};

struct corio_server {
    int fd;                         /* the listening socket */
    bool nodelay;                   /* TCP_NODELAY on each connection */
    corio_stream_opts stream_opts;  /* for each connection's stream */
    corio_tls *tls;                 /* TLS on each connection, or NULL */
    int64_t tls_timeout;            /* ns a handshake may take */
    corio_conn_fn handler;
    void *arg;
    corio_task *acceptor;
    corio_group *group;             /* the connections' tasks */
    struct corio__list conns;       /* struct conn.node */
    size_t nconns;
};

static void conn_free(struct conn *c)
{
    corio__list_remove(&c->node);
    c->srv->nconns--;
    corio_stream_close(c->stream);
    free(c);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;

    c->task = corio_task_self();
    if (c->srv->tls == NULL ||
        /* saturated: a caller's huge timeout must not wrap to the past */
        corio_stream_start_tls(c->stream, c->srv->tls, NULL,
                               corio__after(c->srv->tls_timeout)) == 0)
        c->srv->handler(c->stream, c->srv->arg);
    conn_free(c);
    return NULL;
}

/* Run the handler on fd in a task of the group. Returns 0, or -1 with
 * errno (ECANCELED: the group has failed); fd is closed then. */
static int conn_start(corio_server *srv, int fd)
{
    static const corio_task_attr attr = {.name = "conn"};
    struct conn *c;
    corio_task *t;
    int one = 1, err;

    if (srv->nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out_close_fd;
    c->stream = corio_stream_new(fd, &srv->stream_opts);
    if (c->stream == NULL)
        goto out_free_conn;
    c->srv = srv;
    corio__list_push_back(&srv->conns, &c->node);
    srv->nconns++;
    t = corio_group_spawn(srv->group, conn_main, c, &attr);
    if (t == NULL) {
        err = errno;
        conn_free(c); /* closes fd */
        errno = err;
        return -1;
    }
    corio_task_detach(t); /* nobody reads its result: freed when it ends */
    return 0;

out_free_conn:
    free(c);
out_close_fd:
    err = errno;
    corio_fd_close(fd);
    errno = err;
    return -1;
}

static void *accept_main(void *arg)
{
    corio_server *srv = arg;

    for (;;) {
        int fd = corio_socket_accept(srv->fd, NULL, -1);

        if (fd >= 0) {
            /* the group failed (a handler's corio_task_fail): stop */
            if (conn_start(srv, fd) == -1 && errno == ECANCELED)
                return NULL;
            continue;
        }
        if (errno == ECANCELED || errno == EBADF || errno == EINVAL)
            return NULL;
        /* out of fds or memory: let the handlers release some */
        if (corio_sleep(10 * CORIO_MSEC) == -1)
            return NULL;
    }
}

corio_server *corio_server_start(const char *addr, const corio_listen_opts *opts,
                          corio_conn_fn handler, void *arg)
{
    static const corio_task_attr attr = {.name = "acceptor"};
    corio_server *srv;
    int err;

    if (handler == NULL ||
        (opts != NULL && opts->tls != NULL &&
         !corio__tls_is_server(opts->tls))) {
        errno = EINVAL;
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->handler = handler;
    srv->arg = arg;
    srv->nodelay = true;
    if (opts != NULL) {
        srv->nodelay = !opts->nagle;
        srv->stream_opts = opts->stream;
        if (opts->tls != NULL)
            srv->tls = corio__tls_ref(opts->tls);
        srv->tls_timeout = opts->tls_timeout > 0 ? opts->tls_timeout
                                                 : 60 * CORIO_SECOND;
    }
    corio__list_init(&srv->conns);
    srv->fd = corio_socket_listen(addr, opts);
    if (srv->fd == -1)
        goto out_free;
    srv->group = corio_group_new(-1);
    if (srv->group == NULL)
        goto out_close;
    srv->acceptor = corio_task_spawn(accept_main, srv, &attr);
    if (srv->acceptor == NULL)
        goto out_free_group;
    return srv;

out_free_group:
    corio_group_free(srv->group);
out_close:
    err = errno;
    corio_fd_close(srv->fd);
    errno = err;
out_free:
    err = errno;
    corio_tls_free(srv->tls);
    free(srv);
    errno = err;
    return NULL;
}

int corio_server_fd(const corio_server *s)
{
    return s != NULL ? s->fd : -1;
}

size_t corio_server_connections(const corio_server *s)
{
    return s != NULL ? s->nconns : 0;
}

/* True if the caller is one of s's handlers (stopping would wait for
 * itself). */
static bool in_handler(const corio_server *s)
{
    corio_task *self = corio_task_self();

    for (const struct corio__list *n = s->conns.next;
         self != NULL && n != &s->conns; n = n->next)
        if (CORIO_CONTAINER_OF(n, struct conn, node)->task == self)
            return true;
    return false;
}

/* A Unix socket's path goes with the server (as asyncio does since 3.13). */
static void unlink_socket_path(int fd)
{
    corio_addr a;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a.ss;

    if (corio_socket_name(fd, &a) == 0 && a.ss.ss_family == AF_UNIX &&
        a.len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0] != 0)
        unlink(un->sun_path);
}

/* End the acceptor and close the listening socket. Returns true if the
 * caller was cancelled meanwhile. */
static bool stop_accepting(corio_server *s)
{
    corio_task_cancel(s->acceptor);
    {
        CORIO_SHIELD(-1); /* it ends at its next call */

        if (corio_task_join(s->acceptor, NULL) == -1) {
            /* it ended CANCELLED, as asked: nothing to report */
        }
    }
    unlink_socket_path(s->fd);
    corio_fd_close(s->fd);
    return corio__checkpoint() == -1 && errno == ECANCELED;
}

int corio_server_stop(corio_server *s, int64_t deadline)
{
    corio_scope scope;
    int rc, err;

    if (s == NULL)
        return 0; /* as every destroy call */
    if (in_handler(s)) {
        errno = EDEADLK;
        return -1;
    }
    if (stop_accepting(s))
        corio_group_cancel(s->group);
    corio_scope_enter(&scope, deadline);
    rc = corio_group_wait(s->group); /* cancels the rest at the deadline */
    err = errno;
    corio_scope_exit(&scope);
    while (!corio__list_empty(&s->conns))
        conn_free(CORIO_CONTAINER_OF(s->conns.next, struct conn, node));
    corio_group_free(s->group);
    corio_tls_free(s->tls);
    free(s);
    errno = err;
    return rc;
}
