/* src/dist/redis_adapter.c -- hiredis's asynchronous API driven by the
 * corio loop: a reader and a writer task per connection, replies handed
 * to the waiting task, connect with AUTH/SELECT, reconnect with backoff.
 * See redis_int.h. */
#include "redis_int.h"

#include "corio/io.h"
#include "corio/loop.h"
#include "corio/sync.h"
#include "corio/task.h"
#include "corio/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/async.h>

#define DEF_CONNECT_TIMEOUT (5 * CORIO_SECOND)
#define DEF_BACKOFF_MIN (50 * CORIO_MSEC)
#define DEF_BACKOFF_MAX (2 * CORIO_SECOND)

/* One connection: lives until both its tasks have ended (conn_reap). */
struct conn {
    redisAsyncContext *ac;      /* NULL once hiredis has freed it */
    int fd;
    corio_task *reader, *writer;
    corio_event *wake;          /* the writer's: a write wanted, or the end */
    bool want_write;            /* hiredis's addWrite/delWrite */
    bool ready;                 /* AUTH/SELECT done: commands may go */
    int err;                    /* why it ended, once known (errno) */
    /* TLS: hiredis 0.14 has none, so it talks over a Unix socket to
     * `local`, and two relay tasks carry the bytes to and from the TLS
     * stream to Redis. */
    int local;
    corio_stream *tls;
    corio_task *up, *down;
};

struct corio__redis {
    char *host, *unix_path, *user, *password;
    int port, db;
    int64_t connect_timeout, backoff_min, backoff_max;
    struct conn *conn;          /* the current one, or NULL */
    corio_lock *lock;           /* one connect at a time */
    int64_t backoff;            /* the wait after the next failure */
    int64_t next_try;           /* no attempt before (after a failure) */
    int last_err;               /* the last attempt's error */
    uint64_t connects;
    corio_tls *tls;             /* the caller's: NULL for plain TCP */
    char *tls_name;
    struct conn *connecting;    /* the attempt under way, or NULL */
    corio_event *shut_ev;       /* set by corio__redis_shutdown */
    bool shut;
};

/* Commands sent together and the task waiting for their replies. If that
 * task gives up (deadline, cancel), the batch is abandoned: the last reply
 * frees it. */
struct batch;
struct slot {
    struct batch *b;
    size_t i;
};
struct batch {
    corio_future *done;         /* set when left reaches 0 */
    size_t n, left;
    int err;                    /* the first missing reply's reason */
    bool abandoned;
    redisReply **replies;
    struct slot slots[];
};

/* ---- Replies: handed over, not copied ------------------------------------
 * hiredis frees a reply right after its callback returns. The reader of
 * every connection gets object functions whose free skips the one reply a
 * callback has just taken. */
static __thread void *taken;
static redisReplyObjectFunctions reply_fns;
static pthread_once_t reply_fns_once = PTHREAD_ONCE_INIT;

static void free_object(void *reply)
{
    if (reply == taken) {
        taken = NULL;
        return;
    }
    freeReplyObject(reply);
}

static void reply_fns_init(void)
{
    redisReader *rd = redisReaderCreate();

    if (rd == NULL)
        return; /* freeObject stays NULL: conn_start fails with ENOMEM */
    reply_fns = *rd->fn;
    reply_fns.freeObject = free_object;
    redisReaderFree(rd);
}

/* The errno for a connection that ended without a reply. */
static int conn_error(const struct conn *c, const redisAsyncContext *ac)
{
    if (c->err != 0)
        return c->err;
    switch (ac->c.err) {
    case REDIS_ERR_PROTOCOL:
        return EPROTO;
    case REDIS_ERR_OOM:
        return ENOMEM;
    default:
        return ECONNRESET;
    }
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; b->replies != NULL && i < b->n; i++)
        freeReplyObject(b->replies[i]);
    free(b->replies);
    corio_future_free(b->done);
    free(b);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct slot *s = privdata;
    struct batch *b = s->b;
    struct conn *c = ac->ev.data;

    if (reply != NULL) {
        taken = reply;
        b->replies[s->i] = reply;
    } else if (b->err == 0) {
        b->err = conn_error(c, ac);
    }
    if (--b->left > 0)
        return;
    if (b->abandoned)
        batch_free(b);
    else
        corio_future_set_result(b->done, NULL);
}

/* ---- hiredis's event hooks ------------------------------------------- */

static void ev_add_read(void *data)
{
    (void)data; /* the reader always reads while connected */
}

static void ev_del_read(void *data)
{
    (void)data;
}

static void ev_add_write(void *data)
{
    struct conn *c = data;

    c->want_write = true;
    corio_event_set(c->wake);
}

static void ev_del_write(void *data)
{
    struct conn *c = data;

    c->want_write = false;
}

/* hiredis frees the context (an error, or redisAsyncFree): the fd leaves
 * the loop before hiredis closes it, and both tasks end. */
static void ev_cleanup(void *data)
{
    struct conn *c = data;

    if (c->err == 0)
        c->err = conn_error(c, c->ac);
    corio_fd_forget(c->fd);
    c->ac = NULL;
    c->ready = false;
    corio_event_set(c->wake);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->ev.data;

    if (status != REDIS_OK && c->err == 0)
        c->err = errno != 0 ? errno : ECONNREFUSED;
}

/* ---- The connection's tasks ------------------------------------------- */

/* A task of c ends: if the connection still stands (its wait failed for
 * another reason than the connection's end: ENOMEM, ...), nobody would
 * read or write it any more, so it ends too. */
static void conn_stop(struct conn *c)
{
    if (c->ac == NULL)
        return;
    if (c->err == 0)
        c->err = errno != 0 && errno != ECANCELED ? errno : ECONNRESET;
    redisAsyncFree(c->ac); /* fails what is in flight, ev_cleanup */
}

static void *reader_main(void *arg)
{
    struct conn *c = arg;

    while (c->ac != NULL) {
        if (corio_fd_wait(c->fd, CORIO_READ, -1) == -1 || c->ac == NULL)
            break;
        redisAsyncHandleRead(c->ac);
    }
    conn_stop(c);
    return NULL;
}

/* hiredis writes with write(2): a peer that has gone would raise SIGPIPE,
 * which kills a program that did not ignore it. corio never raises it
 * (as its own sends), so the signal is blocked in this thread for the
 * write, and one it raised is taken before unblocking (libpq's way). */
static void write_nosigpipe(redisAsyncContext *ac)
{
    sigset_t pipe, old, pending;
    bool was_pending;
    int saved;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    redisAsyncHandleWrite(ac);
    saved = errno;
    if (!was_pending) {
        struct timespec zero = {0, 0};

        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            while (sigtimedwait(&pipe, NULL, &zero) == -1 && errno == EINTR)
                ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
}

static void *writer_main(void *arg)
{
    struct conn *c = arg;

    while (c->ac != NULL) {
        if (!c->want_write) {
            corio_event_clear(c->wake);
            if (corio_event_wait(c->wake, -1) == -1)
                break;
            continue;
        }
        write_nosigpipe(c->ac);
        if (c->ac != NULL && c->want_write &&
            corio_fd_wait(c->fd, CORIO_WRITE, -1) == -1)
            break;
    }
    conn_stop(c);
    return NULL;
}

/* ---- TLS: relays between hiredis's Unix socket and the TLS stream ---- */

/* hiredis -> Redis. */
static void *relay_up(void *arg)
{
    struct conn *c = arg;
    char buf[16384];
    ssize_t n;

    while ((n = corio_fd_read(c->local, buf, sizeof(buf), -1)) > 0) {
        if (corio_stream_write(c->tls, buf, (size_t)n) == -1 ||
            corio_stream_drain(c->tls, -1) == -1)
            break;
    }
    shutdown(c->local, SHUT_RDWR); /* hiredis sees the end */
    return NULL;
}

/* Redis -> hiredis. */
static void *relay_down(void *arg)
{
    struct conn *c = arg;
    char buf[16384];
    ssize_t n;

    while ((n = corio_stream_read(c->tls, buf, sizeof(buf), -1)) > 0) {
        if (corio_fd_write(c->local, buf, (size_t)n, -1) != n)
            break;
    }
    shutdown(c->local, SHUT_RDWR);
    return NULL;
}

/* Cancel *t, wait for its end, and forget it. */
static void task_stop(corio_task **t)
{
    if (*t == NULL)
        return;
    corio_task_cancel(*t);
    if (corio_task_join(*t, NULL) == -1)
        errno = 0; /* cancelled: it has ended and is freed all the same */
    *t = NULL;
}

static void relays_stop(struct conn *c)
{
    task_stop(&c->up);
    task_stop(&c->down);
    if (c->tls != NULL)
        corio_stream_close(c->tls);
    if (c->local >= 0)
        corio_fd_close(c->local);
    c->tls = NULL;
    c->local = -1;
}

/* Connect to Redis over TLS, and hiredis to a Unix socket whose other end
 * (c->local) the relays carry over it. Returns hiredis's context, or NULL
 * with errno (c->tls, c->local: closed by the caller). */
static redisAsyncContext *connect_tls(corio__redis *r, struct conn *c,
                                      int64_t deadline)
{
    static unsigned seq;
    char hostport[300], path[96], addr[104];
    redisAsyncContext *ac;
    int lfd, err;

    snprintf(hostport, sizeof(hostport),
             strchr(r->host, ':') != NULL ? "[%s]:%d" : "%s:%d", r->host,
             r->port);
    c->tls = corio_stream_connect(hostport, deadline);
    if (c->tls == NULL ||
        corio_stream_start_tls(c->tls, r->tls,
                               r->tls_name != NULL ? r->tls_name : r->host,
                               deadline) == -1)
        return NULL;
    snprintf(path, sizeof(path), "/tmp/corio-redis-%ld-%u.sock",
             (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    snprintf(addr, sizeof(addr), "unix:%s", path);
    lfd = corio_socket_listen(addr, NULL);
    if (lfd == -1)
        return NULL;
    errno = 0;
    ac = redisAsyncConnectUnix(path); /* done at once: lfd listens */
    unlink(path);
    if (ac != NULL && ac->err == 0)
        c->local = corio_socket_accept(lfd, NULL, deadline);
    err = errno;
    corio_fd_close(lfd);
    if (ac == NULL || ac->err != 0 || c->local == -1) {
        if (ac != NULL)
            redisAsyncFree(ac);
        errno = ac == NULL ? ENOMEM : (err != 0 ? err : EIO);
        return NULL;
    }
    return ac;
}

/* Wait for a dead connection's tasks and free it. */
static void conn_reap(struct conn *c)
{
    if (c == NULL)
        return;
    if (c->ac != NULL) {
        if (c->err == 0)
            c->err = CORIO_ECLOSED;
        redisAsyncFree(c->ac); /* fails what is in flight, ev_cleanup */
    }
    task_stop(&c->reader);
    task_stop(&c->writer);
    relays_stop(c);
    corio_event_free(c->wake);
    free(c);
}

/* The numeric address to give hiredis (which would resolve a name with a
 * blocking getaddrinfo): names are resolved by corio first. */
static int numeric_host(const char *host, int port, char *out, size_t size,
                        int64_t deadline)
{
    struct in6_addr a6;
    struct in_addr a4;
    corio_addr addr;
    char portstr[8];

    if (inet_pton(AF_INET, host, &a4) == 1 ||
        inet_pton(AF_INET6, host, &a6) == 1) {
        snprintf(out, size, "%s", host);
        return 0;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (corio_dns_resolve(host, portstr, AF_UNSPEC, &addr, 1, deadline) == -1)
        return -1;
    if (getnameinfo((struct sockaddr *)&addr.ss, addr.len, out, (socklen_t)size,
                    NULL, 0, NI_NUMERICHOST) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Send cmds on c and wait for their replies (see corio__redis_exec). */
static int conn_exec(struct conn *c, size_t n,
                     const struct corio__redis_cmd *cmds,
                     redisReply **replies, int64_t deadline);

/* An error reply at connect: the errno it stands for. */
static int setup_error(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(rep->str, "LOADING", 7) == 0 ||
        strncmp(rep->str, "BUSY", 4) == 0)
        return EAGAIN; /* starting (or a script runs): try again */
    if (strncmp(rep->str, "WRONGPASS", 9) == 0 ||
        strncmp(rep->str, "NOAUTH", 6) == 0 ||
        strstr(rep->str, "invalid password") != NULL ||
        strstr(rep->str, "no password is set") != NULL ||
        strstr(rep->str, "AUTH") != NULL)
        return EACCES;
    return EIO;
}

/* The commands a new connection sends first: AUTH, SELECT, PING. */
static size_t setup_cmds(corio__redis *r, struct corio__redis_cmd *cmds,
                         const char **argv, char *dbstr, size_t dbsize)
{
    size_t n = 0;

    if (r->password != NULL) {
        argv[0] = "AUTH";
        argv[1] = r->user != NULL ? r->user : r->password;
        argv[2] = r->password;
        cmds[n++] = (struct corio__redis_cmd){r->user != NULL ? 3 : 2, argv,
                                              NULL};
    }
    if (r->db != 0) {
        snprintf(dbstr, dbsize, "%d", r->db);
        argv[3] = "SELECT";
        argv[4] = dbstr;
        cmds[n++] = (struct corio__redis_cmd){2, argv + 3, NULL};
    }
    /* PING last: it fails while Redis loads its data (AUTH and SELECT
     * do not), so the connection is ready only once Redis is. */
    argv[5] = "PING";
    cmds[n++] = (struct corio__redis_cmd){1, argv + 5, NULL};
    return n;
}

/* Start a connection: hiredis's context, its hooks and tasks. */
static struct conn *conn_start(corio__redis *r, int64_t deadline)
{
    struct conn *c = calloc(1, sizeof(*c));
    char host[INET6_ADDRSTRLEN + 1];
    int err;

    if (c == NULL)
        return NULL;
    c->local = -1;
    c->wake = corio_event_new();
    if (c->wake == NULL)
        goto fail;
    if (r->tls != NULL) {
        c->ac = connect_tls(r, c, deadline);
        if (c->ac == NULL)
            goto fail;
    } else if (r->host != NULL) {
        if (numeric_host(r->host, r->port, host, sizeof(host), deadline) == -1)
            goto fail;
        errno = 0;
        c->ac = redisAsyncConnect(host, r->port);
    } else {
        errno = 0;
        c->ac = redisAsyncConnectUnix(r->unix_path);
    }
    if (c->ac == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    if (c->ac->err != 0) {
        err = errno != 0 ? errno : ECONNREFUSED;
        redisAsyncFree(c->ac);
        errno = err;
        goto fail;
    }
    pthread_once(&reply_fns_once, reply_fns_init);
    if (reply_fns.freeObject == NULL) {
        redisAsyncFree(c->ac);
        errno = ENOMEM;
        goto fail;
    }
    c->ac->c.reader->fn = &reply_fns;
    c->fd = c->ac->c.fd;
    c->ac->ev.data = c;
    c->ac->ev.addRead = ev_add_read;
    c->ac->ev.delRead = ev_del_read;
    c->ac->ev.addWrite = ev_add_write;
    c->ac->ev.delWrite = ev_del_write;
    c->ac->ev.cleanup = ev_cleanup;
    c->reader = corio_task_spawn(reader_main, c, NULL);
    c->writer = corio_task_spawn(writer_main, c, NULL);
    if (c->tls != NULL) {
        c->up = corio_task_spawn(relay_up, c, NULL);
        c->down = corio_task_spawn(relay_down, c, NULL);
    }
    if (c->reader == NULL || c->writer == NULL ||
        (c->tls != NULL && (c->up == NULL || c->down == NULL))) {
        err = errno;
        conn_reap(c);
        errno = err;
        return NULL;
    }
    redisAsyncSetConnectCallback(c->ac, on_connect); /* asks for a write */
    return c;

fail:
    err = errno;
    relays_stop(c);
    corio_event_free(c->wake);
    free(c);
    errno = err;
    return NULL;
}

/* One attempt: connect, AUTH, SELECT. Returns 0 (r->conn ready) or -1. */
static int try_connect(corio__redis *r, int64_t deadline)
{
    struct corio__redis_cmd cmds[3];
    redisReply *replies[3] = {NULL, NULL, NULL};
    const char *argv[6];
    char dbstr[16];
    int64_t until = corio_now() + r->connect_timeout;
    struct conn *c;
    size_t n;
    int err = 0;

    if (deadline != -1 && deadline < until)
        until = deadline;
    c = conn_start(r, until);
    if (c == NULL)
        return -1;
    n = setup_cmds(r, cmds, argv, dbstr, sizeof(dbstr));
    r->connecting = c;
    if (conn_exec(c, n, cmds, replies, until) == -1)
        err = errno;
    r->connecting = NULL;
    if (r->shut)
        err = CORIO_ECLOSED;
    for (size_t i = 0; i < n && err == 0; i++)
        err = setup_error(replies[i]);
    for (size_t i = 0; i < n; i++)
        freeReplyObject(replies[i]);
    if (err != 0) {
        c->err = err;
        conn_reap(c);
        errno = err;
        return -1;
    }
    c->ready = true;
    r->conn = c;
    r->connects++;
    return 0;
}

/* Make sure r->conn is ready, connecting (and waiting out the backoff)
 * until deadline. Called with r->lock held. */
static int ensure_connected(corio__redis *r, int64_t deadline)
{
    for (;;) {
        if (r->shut) {
            errno = CORIO_ECLOSED;
            return -1;
        }
        if (r->conn != NULL && r->conn->ready && r->conn->ac != NULL)
            return 0;
        conn_reap(r->conn);
        r->conn = NULL;
        if (r->next_try > corio_now()) {
            if (deadline != -1 && deadline < r->next_try) {
                errno = r->last_err != 0 && r->last_err != EAGAIN
                            ? r->last_err
                            : ETIMEDOUT;
                return -1;
            }
            /* the backoff, cut short by a shutdown */
            if (corio_event_wait(r->shut_ev, r->next_try) == 0)
                continue;
            if (errno != ETIMEDOUT)
                return -1;
        }
        if (try_connect(r, deadline) == 0) {
            r->backoff = r->backoff_min;
            r->next_try = 0;
            r->last_err = 0;
            return 0;
        }
        if (errno == ECANCELED || errno == ENOMEM ||
            (errno == ETIMEDOUT && deadline != -1 && corio_now() >= deadline))
            return -1;
        r->last_err = errno;
        r->next_try = corio_now() + r->backoff;
        r->backoff = r->backoff * 2 > r->backoff_max ? r->backoff_max
                                                     : r->backoff * 2;
        if (r->last_err == EACCES || r->last_err == EIO)
            return -1; /* refused by Redis: retrying will not help */
    }
}

static int conn_exec(struct conn *c, size_t n,
                     const struct corio__redis_cmd *cmds,
                     redisReply **replies, int64_t deadline)
{
    struct batch *b;
    size_t sent;
    int err;

    b = calloc(1, sizeof(*b) + n * sizeof(struct slot));
    if (b == NULL)
        return -1;
    b->replies = calloc(n, sizeof(*b->replies));
    b->done = corio_future_new();
    if (b->replies == NULL || b->done == NULL) {
        batch_free(b);
        errno = ENOMEM;
        return -1;
    }
    b->n = n;
    b->left = n;
    for (sent = 0; sent < n && c->ac != NULL; sent++) {
        b->slots[sent] = (struct slot){b, sent};
        if (redisAsyncCommandArgv(c->ac, on_reply, &b->slots[sent],
                                  cmds[sent].argc, cmds[sent].argv,
                                  cmds[sent].argvlen) != REDIS_OK)
            break;
    }
    if (sent < n) {
        /* Those not queued fail now; the queued ones still get replies. */
        b->err = b->err != 0 ? b->err : (c->err != 0 ? c->err : ECONNRESET);
        b->left -= n - sent;
        if (b->left == 0) {
            err = b->err;
            batch_free(b);
            errno = err;
            return -1;
        }
    }
    if (corio_future_wait(b->done, deadline) == -1) {
        err = errno;
        if (b->left > 0) {
            b->abandoned = true; /* the last reply frees it */
            errno = err;
            return -1;
        }
    }
    if (b->err != 0 || sent < n) {
        err = b->err;
        batch_free(b);
        errno = err;
        return -1;
    }
    memcpy(replies, b->replies, n * sizeof(*replies));
    free(b->replies);
    corio_future_free(b->done);
    free(b);
    return 0;
}

/* ---- The calls ------------------------------------------------------- */

static char *dup_opt(const char *s, bool *ok)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

corio__redis *corio__redis_new(const struct corio__redis_conf *conf)
{
    corio__redis *r;
    bool ok = true;

    if (conf == NULL || (conf->host == NULL && conf->unix_path == NULL) ||
        (conf->tls != NULL && conf->host == NULL) ||
        conf->port < 0 || conf->port > 65535 || conf->db < 0 ||
        conf->connect_timeout < 0 || conf->backoff_min < 0 ||
        conf->backoff_max < 0) {
        errno = EINVAL;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->host = dup_opt(conf->host, &ok);
    r->unix_path = dup_opt(conf->unix_path, &ok);
    r->user = dup_opt(conf->user, &ok);
    r->password = dup_opt(conf->password, &ok);
    r->tls_name = dup_opt(conf->tls_name, &ok);
    r->tls = conf->tls;
    r->lock = corio_lock_new();
    r->shut_ev = corio_event_new();
    if (!ok || r->lock == NULL || r->shut_ev == NULL) {
        corio__redis_free(r);
        errno = ENOMEM;
        return NULL;
    }
    r->port = conf->port != 0 ? conf->port : 6379;
    r->db = conf->db;
    r->connect_timeout = conf->connect_timeout != 0 ? conf->connect_timeout
                                                    : DEF_CONNECT_TIMEOUT;
    r->backoff_min = conf->backoff_min != 0 ? conf->backoff_min
                                            : DEF_BACKOFF_MIN;
    r->backoff_max = conf->backoff_max != 0 ? conf->backoff_max
                                            : DEF_BACKOFF_MAX;
    if (r->backoff_max < r->backoff_min)
        r->backoff_max = r->backoff_min;
    r->backoff = r->backoff_min;
    return r;
}

int corio__redis_free(corio__redis *r)
{
    if (r == NULL)
        return 0;
    conn_reap(r->conn);
    corio_lock_free(r->lock);
    corio_event_free(r->shut_ev);
    free(r->host);
    free(r->unix_path);
    free(r->user);
    free(r->password);
    free(r->tls_name);
    free(r);
    return 0;
}

int corio__redis_connect(corio__redis *r, int64_t deadline)
{
    int rc;

    if (r == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__redis_is_connected(r))
        return 0;
    if (corio_lock_acquire(r->lock, deadline) == -1)
        return -1;
    rc = ensure_connected(r, deadline);
    corio_lock_release(r->lock);
    return rc;
}

int corio__redis_exec(corio__redis *r, size_t n,
                      const struct corio__redis_cmd *cmds,
                      redisReply **replies, int64_t deadline)
{
    if (r == NULL || n == 0 || cmds == NULL || replies == NULL) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        replies[i] = NULL;
        if (cmds[i].argc < 1 || cmds[i].argv == NULL) {
            errno = EINVAL;
            return -1;
        }
    }
    if (corio__redis_connect(r, deadline) == -1)
        return -1;
    return conn_exec(r->conn, n, cmds, replies, deadline);
}

redisReply *corio__redis_call(corio__redis *r, int64_t deadline,
                              const char *arg0, ...)
{
    const char *argv[32];
    struct corio__redis_cmd cmd = {0, argv, NULL};
    redisReply *rep;
    va_list ap;

    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL; a = va_arg(ap, const char *)) {
        if (cmd.argc == 32) {
            va_end(ap);
            errno = EINVAL;
            return NULL;
        }
        argv[cmd.argc++] = a;
    }
    va_end(ap);
    if (corio__redis_exec(r, 1, &cmd, &rep, deadline) == -1)
        return NULL;
    return rep;
}

uint64_t corio__redis_connects(const corio__redis *r)
{
    return r->connects;
}

bool corio__redis_is_connected(const corio__redis *r)
{
    return r->conn != NULL && r->conn->ready && r->conn->ac != NULL;
}

void corio__redis_shutdown(corio__redis *r)
{
    r->shut = true;
    corio_event_set(r->shut_ev);
    if (r->connecting != NULL && r->connecting->ac != NULL) {
        r->connecting->err = CORIO_ECLOSED;
        redisAsyncFree(r->connecting->ac);
    }
    if (r->conn != NULL && r->conn->ac != NULL) {
        r->conn->err = CORIO_ECLOSED;
        redisAsyncFree(r->conn->ac);
    }
}

void corio__redis_drop(corio__redis *r)
{
    struct conn *c = r->conn;

    if (c == NULL || c->ac == NULL)
        return;
    c->err = ECONNRESET;
    redisAsyncFree(c->ac);
}
