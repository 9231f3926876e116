/* src/http/server.c -- the HTTP server: one task per connection (a
 * corio_server underneath: its group, its graceful stop, TLS), which reads
 * requests where the stream buffered them (parsing in place), runs the
 * app, and writes the responses, the head and a whole body in one write
 * and the responses of pipelined requests together.
 *
 * Time limits make a slow client cost one idle connection and nothing
 * else: a head must come whole within head_timeout of its first byte (a
 * new connection's first request within head_timeout of the accept), the
 * pieces of a body within body_timeout of each other, the next request
 * within idle_timeout, and the responses go out within write_timeout.
 * A request the parser refuses is answered (400, 413, 414, 431, 505) with
 * `Connection: close`, nothing after it is read, and the connection
 * lingers briefly so that the answer is not lost to a reset. A
 * connection over max_connections gets a 503 that never waits on it. */
#include "http_int.h"
#include "corio/group.h"
#include "corio/loop.h"
#include "corio/sync.h"
#include "corio/task.h"
#include "../io/io_int.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct corio_http_server {
    corio_server *srv;
    corio_http_app *app;
    corio_http_limits limits;
    int64_t head_timeout, body_timeout, idle_timeout, write_timeout;
    bool gzip;
    size_t max_connections;
    FILE *log;
    struct corio__http_pages pages; /* shared by the connections */
    bool stopping;
    struct corio__list conns;       /* struct corio__http_conn.node */
    size_t nconns;
};

#define LINGER_NS (2 * CORIO_SECOND)    /* reading after an answer that closes */
#define OUT_BATCH 65536                 /* pipelined responses sent together */

bool corio__http_gzip_on(const struct corio__http_conn *c)
{
    return c->srv->gzip;
}

int64_t corio__http_write_deadline(const struct corio__http_conn *c)
{
    return corio__after(c->srv->write_timeout);
}

/* ---- Output -------------------------------------------------------------- */

char *corio__http_out_space(struct corio__http_conn *c, size_t n)
{
    if (c->out == NULL && n <= CORIO__HTTP_PAGE) {
        c->out = corio__http_page_get(&c->srv->pages);
        if (c->out == NULL)
            return NULL;
        c->out_cap = CORIO__HTTP_PAGE;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : CORIO__HTTP_PAGE;
        char *o;

        while (cap < c->out_len + n)
            cap *= 2;
        o = realloc(c->out, cap);
        if (o == NULL)
            return NULL;
        c->out = o;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

int corio__http_out_append(struct corio__http_conn *c, const void *data,
                           size_t n)
{
    char *p;

    if (n == 0)
        return 0; /* an empty body: data may be NULL */
    p = corio__http_out_space(c, n);
    if (p == NULL)
        return -1;
    memcpy(p, data, n);
    c->out_len += n;
    return 0;
}

int corio__http_out_flush(struct corio__http_conn *c, int64_t deadline)
{
    int64_t wd = corio__http_write_deadline(c);

    if (deadline < 0 || deadline > wd)
        deadline = wd;
    if (c->out_len > 0) {
        corio_stream *s = c->s;
        size_t sent = 0;
        int rc = 0;

        /* straight from the page to the socket when nothing waits before
         * it (no copy into the stream's buffer); the rest, if the socket
         * took less, through the stream */
        while (s->wpos == s->wend && s->werr == 0 && !s->closed &&
               sent < c->out_len) {
            unsigned want = CORIO_WRITE;
            ssize_t put = s->t->ops->write(s->t, c->out + sent, c->out_len - sent,
                                           &want);

            if (put > 0)
                sent += (size_t)put;
            else if (put == -1 && errno == EINTR)
                continue;
            else if (put == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
                rc = -1;
            else
                break;
            if (rc == -1)
                break;
        }
        if (rc == 0 && sent < c->out_len)
            rc = corio_stream_write(s, c->out + sent, c->out_len - sent);
        c->out_len = 0;
        if (rc == -1)
            return -1;
    }
    /* a page kept between requests: give back a bigger buffer */
    if (c->out_cap > CORIO__HTTP_PAGE) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return corio_stream_drain(c->s, deadline);
}

/* ---- Reading ------------------------------------------------------------- */

static size_t buffered(const struct corio__http_conn *c)
{
    return c->s->rend - c->s->rpos;
}

/* Answer status with Connection: close (a request that cannot be served:
 * nothing after it on the connection is read). */
static void answer_error(struct corio__http_conn *c, int status)
{
    corio_http_response *res = &c->res;

    c->keep_alive = false;
    if (res->head_sent)
        return;
    corio__http_response_reset(res);
    res->status = status;
    corio_http_response_printf(res, "%d: %s\n", status,
                               corio_http_status_reason(status));
    corio_http_headers_set(res->headers, "Content-Type",
                           "text/plain; charset=utf-8");
    if (corio__http_response_send(res, -1) == -1)
        c->broken = true;
}

/* Going idle with nothing buffered: give the pages back (a plain socket
 * is then waited on without a buffer; a TLS stream keeps its buffer, as
 * OpenSSL may hold decrypted bytes the socket does not show). */
static void release_idle(struct corio__http_conn *c)
{
    corio_stream *s = c->s;

    corio__http_arena_release(&c->arena);
    if (c->out != NULL && c->out_len == 0) {
        corio__http_page_put(&c->srv->pages, c->out, c->out_cap);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (s->t == &s->fdt && s->rbuf != NULL && s->rpos == s->rend) {
        corio__http_page_put(&c->srv->pages, s->rbuf, s->rcap);
        s->rbuf = NULL;
        s->rcap = s->rpos = s->rend = 0;
    }
}

/* Read more of a request: after an idle wait without a buffer, take a
 * page for it. As corio__stream_fill. */
static ssize_t conn_fill(struct corio__http_conn *c, int64_t deadline)
{
    corio_stream *s = c->s;

    if (s->rbuf == NULL && s->t == &s->fdt && !s->eof) {
        int fd = corio_stream_fd(s);

        /* after a short read the socket is known empty: park at once */
        if (corio__wait_fd(fd, CORIO_READ, deadline, corio__fd_known_empty(fd)) == -1)
            return -1;
        s->rbuf = corio__http_page_get(&c->srv->pages);
        if (s->rbuf == NULL)
            return -1;
        s->rcap = CORIO__HTTP_PAGE;
        s->rpos = s->rend = 0;
    }
    return corio__stream_fill(s, deadline);
}

/* Read until a request's head is parsed. Returns 1 (a head), 0 (the
 * client closed, or went idle too long: close quietly), -1 (answered with
 * an error: close). */
static int read_head(struct corio__http_conn *c, bool first)
{
    struct corio_http_server *srv = c->srv;
    bool started = buffered(c) > 0;
    int64_t dl = first ? corio__after(srv->head_timeout)
                       : corio__after(srv->idle_timeout);

    if (started) {
        dl = corio__after(srv->head_timeout);
        c->idle = false; /* a request in flight: a stop lets it finish */
    }
    for (;;) {
        size_t have = buffered(c), used = 0;
        ssize_t got;

        if (have > 0) {
            enum corio__http_event ev;

            c->p.body = NULL; /* no body before the head's end */
            ev = corio__http_parse(&c->p, c->s->rbuf + c->s->rpos, have, &used);
            corio__stream_consume(c->s, used);
            if (ev == CORIO__HTTP_HEAD || ev == CORIO__HTTP_DONE)
                return 1;
            if (ev == CORIO__HTTP_ERROR) {
                answer_error(c, c->p.status);
                return -1;
            }
        }
        if (c->out_len > 0 && corio__http_out_flush(c, -1) == -1)
            return 0;
        if (!started && have == 0)
            release_idle(c);
        got = conn_fill(c, dl);
        if (got == 0)
            return 0;
        if (got < 0) {
            if (errno == ETIMEDOUT && started) {
                answer_error(c, 408);
                return -1;
            }
            return 0;
        }
        if (!started) {
            started = true;
            c->idle = false;
            dl = corio__after(srv->head_timeout);
        }
    }
}

ssize_t corio__http_body_read(struct corio__http_conn *c, void *buf, size_t n,
                              int64_t deadline)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (c->err_status) {
        errno = c->err_status == 413 ? EMSGSIZE : EPROTO;
        return -1;
    }
    if (c->msg_done || n == 0)
        return 0;
    if (!c->continue_sent) {
        c->continue_sent = true;
        if (corio__http_out_append(c, cont, sizeof(cont) - 1) == -1 ||
            corio__http_out_flush(c, deadline) == -1) {
            c->broken = true;
            return -1;
        }
    }
    for (;;) {
        size_t have = buffered(c), k = have < n ? have : n, used = 0;
        enum corio__http_event ev;
        int64_t dl;
        ssize_t got;

        c->p.body = buf;
        ev = corio__http_parse(&c->p, c->s->rbuf + c->s->rpos, k, &used);
        corio__stream_consume(c->s, used);
        if (ev == CORIO__HTTP_ERROR) {
            c->err_status = c->p.status;
            c->keep_alive = false;
            errno = c->err_status == 413 ? EMSGSIZE : EPROTO;
            return -1;
        }
        if (ev == CORIO__HTTP_DONE)
            c->msg_done = true;
        if (c->p.body_len > 0 || c->msg_done)
            return (ssize_t)c->p.body_len;
        if (k < have)
            continue;
        dl = corio__after(c->srv->body_timeout);
        if (deadline >= 0 && deadline < dl)
            dl = deadline;
        got = conn_fill(c, dl);
        if (got <= 0) {
            if (got == 0)
                errno = CORIO_EEOF;
            c->broken = true;
            return -1;
        }
    }
}

/* Read and drop what the handler left of the body, so that the next
 * request can be read. False if the connection cannot go on. */
__attribute__((noinline)) static bool skip_body(struct corio__http_conn *c)
{
    char scratch[512]; /* small: it is on every request's stack */
    ssize_t got;

    if (c->msg_done)
        return true;
    if (c->err_status || c->broken)
        return false;
    /* a client that sent no 100-continue wait gets no body read */
    if (!c->continue_sent) {
        int64_t left = corio__http_content_length(&c->p);

        if (left != 0 || corio__http_chunked(&c->p))
            return false;
        c->continue_sent = true;
    }
    while ((got = corio__http_body_read(c, scratch, sizeof(scratch), -1)) > 0)
        ;
    return got == 0;
}

/* ---- One request --------------------------------------------------------- */

/* Set up req from the parsed head. Returns 0, or the status to answer. */
static int request_init(struct corio__http_conn *c)
{
    corio_http_request *req = &c->req;
    const char *t = corio__http_target(&c->p), *q, *path = t;
    const char *expect;
    size_t plen;
    ssize_t n;

    memset(req, 0, sizeof(*req));
    req->c = c;
    req->method = corio__http_method(&c->p);
    req->target = t;
    if (*t != '/' &&
        (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
        path = strchr(t, ':') + 3;
        path += strcspn(path, "/?#");
        if (*path != '/')
            path = "/";
    }
    q = path + strcspn(path, "?#");
    plen = (size_t)(q - path);
    if (strcmp(t, "*") != 0 && path[0] != '/')
        return 400;
    req->raw_path = corio__http_arena_strndup(&c->arena, path, plen);
    req->path = corio__http_arena_alloc(&c->arena, plen + 1);
    if (req->raw_path == NULL || req->path == NULL)
        return 500;
    n = corio__http_unescape(path, plen, req->path, false);
    if (n == -1)
        return 400;
    req->query_string = *q == '?' ? q + 1 : "";
    if (*q == '?') {
        size_t qlen = strcspn(q + 1, "#");

        req->query_string = corio__http_arena_strndup(&c->arena, q + 1, qlen);
        if (req->query_string == NULL)
            return 500;
    }
    req->rel = req->raw_path;
    c->keep_alive = corio__http_keep_alive(&c->p) && !c->srv->stopping;
    c->continue_sent = true;
    expect = corio_http_headers_get(c->hin, "Expect");
    if (expect != NULL) {
        if (strcasecmp(expect, "100-continue") != 0)
            return 417;
        c->continue_sent = c->p.version < 11;
    }
    return 0;
}

/* Write one Common Log Format line. */
__attribute__((noinline)) static void log_request(struct corio__http_conn *c)
{
    char host[64] = "-", when[40], *colon;
    time_t now = time(NULL);
    struct tm tm;
    const char *m = c->p.line ? corio__http_method(&c->p) : "-";

    if (corio_addr_format(&c->peer, host, sizeof(host)) > 0 &&
        (colon = strrchr(host, ':')) != NULL)
        *colon = '\0'; /* the host without its port */
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    fprintf(c->srv->log, "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu\n", host,
            when, m, c->p.line ? corio__http_target(&c->p) : "-",
            c->p.version == 10 ? 0 : 1, c->res.status,
            (unsigned long long)c->bytes_out);
    fflush(c->srv->log);
}

/* Send what the handler left: a whole response, a producer's, the end of
 * a streamed one. */
static void respond(struct corio__http_conn *c)
{
    corio_http_response *res = &c->res;
    int64_t wd = corio__http_write_deadline(c);

    if (res->upgraded)
        return;
    if (!res->head_sent && res->produce != NULL) {
        if (corio_http_response_prepare(res, res->length, wd) == -1 ||
            res->produce(res, res->produce_arg) == -1 ||
            corio_http_response_finish(res, corio__http_write_deadline(c)) == -1)
            c->broken = true;
    } else if (!res->head_sent) {
        if (corio__http_response_send(res, wd) == -1)
            c->broken = true;
    } else if (!res->finished &&
               corio_http_response_finish(res, wd) == -1) {
        c->broken = true;
    }
    if (res->produce_done != NULL) {
        res->produce_done(res->produce_arg);
        res->produce_done = NULL;
    }
}

/* Run the app for the request just parsed. */
__attribute__((noinline)) static void handle(struct corio__http_conn *c)
{
    corio_http_response *res = &c->res;
    int status = request_init(c), rc;

    if (status != 0) {
        answer_error(c, status);
        return;
    }
    if (strcmp(c->req.method, "HEAD") == 0)
        res->no_body = true;
    rc = corio__http_app_dispatch(c->srv->app, &c->req, res);
    if (c->req.head)
        res->no_body = true;
    if (rc == -1 && !res->head_sent) {
        int err = errno;

        if (c->err_status) {
            answer_error(c, c->err_status);
        } else if (!c->broken) {
            /* details go to the log, never to the client */
            fprintf(c->srv->log ? c->srv->log : stderr,
                    "corio http: %s %s: handler failed: %s\n", c->req.method,
                    c->req.target, corio_strerror(err));
            answer_error(c, 500);
            c->keep_alive = corio__http_keep_alive(&c->p) && !c->srv->stopping;
        }
    } else if (rc == -1) {
        c->broken = true; /* half a response went out: end it by closing */
    }
    if (c->err_status && !res->head_sent)
        answer_error(c, c->err_status);
    if (c->srv->stopping)
        c->keep_alive = false; /* the response says the connection closes */
    respond(c);
    if (c->srv->log)
        log_request(c);
}

/* ---- The connection ------------------------------------------------------ */

static int conn_init(struct corio__http_conn *c, corio_http_server *srv,
                     corio_stream *s)
{
    socklen_t len = sizeof(c->peer.ss);

    c->srv = srv;
    c->s = s;
    c->arena.pool = &srv->pages;
    if (getpeername(corio_stream_fd(s), (struct sockaddr *)&c->peer.ss, &len) == 0)
        c->peer.len = len;
    c->hin = corio_http_headers_new();
    c->res.headers = corio_http_headers_new();
    c->res.c = c;
    if (c->hin == NULL || c->res.headers == NULL ||
        corio__http_parser_init(&c->p, HTTP_REQUEST, &srv->limits, c->hin) == -1)
        return -1;
    corio__http_response_reset(&c->res);
    return 0;
}

static void conn_free(struct corio__http_conn *c)
{
    corio__http_parser_free(&c->p);
    corio_http_headers_free(c->hin);
    corio_http_headers_free(c->res.headers);
    corio__http_response_gzip_end(&c->res);
    free(c->res.body);
    corio__http_page_put(&c->srv->pages, c->out, c->out_cap);
    corio__http_arena_release(&c->arena);
}

/* Send what is left, shut the write side, and read what the client still
 * sends for a moment, so that closing does not reset the connection
 * before the client has read the answer. */
static void conn_close(struct corio__http_conn *c, bool linger)
{
    CORIO_SHIELD(corio__after(linger ? LINGER_NS : c->srv->write_timeout));
    size_t dropped = 0;

    if (c->out_len > 0 && corio_stream_write(c->s, c->out, c->out_len) == -1)
        return;
    c->out_len = 0;
    if (corio_stream_shutdown(c->s, -1) == -1 || !linger)
        return;
    corio__stream_consume(c->s, buffered(c));
    /* what comes is dropped in the stream's own buffer */
    while (dropped < 1024 * 1024 && corio__stream_fill(c->s, -1) > 0) {
        dropped += buffered(c);
        corio__stream_consume(c->s, buffered(c));
    }
}

/* A connection over max_connections: 503 in one write that never waits
 * (what the socket takes now, TLS included, else nothing), no request
 * read, then the write side shut (the answer ends with a FIN). What the
 * client sent already is dropped, without waiting for more, so that the
 * close does not reset the connection over unread bytes. Not inlined:
 * its scratch buffer in conn_main's frame would put every connection's
 * stack 2 KiB deeper (a page more of memory per idle connection). */
__attribute__((noinline, cold)) static void reject_busy(corio_stream *s)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Retry-After: 1\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 25\r\n"
                               "Connection: close\r\n\r\n"
                               "503: Service Unavailable\n";
    unsigned want = CORIO_WRITE;
    int fd = corio_stream_fd(s);
    char scratch[2048];

    if (s->t->ops->write(s->t, busy, sizeof(busy) - 1, &want) > 0)
        shutdown(fd, SHUT_WR);
    for (int i = 0; i < 32 && recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
        ;
}

static void conn_main(corio_stream *s, void *arg)
{
    corio_http_server *srv = arg;
    struct corio__http_conn c = {0};
    bool linger = false;

    if (srv->max_connections && srv->nconns >= srv->max_connections) {
        reject_busy(s);
        return;
    }
    c.task = corio_task_self();
    corio__list_push_back(&srv->conns, &c.node);
    srv->nconns++;
    if (conn_init(&c, srv, s) == -1)
        goto out;
    for (bool first = true; !srv->stopping; first = false) {
        int r;

        c.idle = true;
        r = read_head(&c, first);
        c.idle = false;
        if (r <= 0) {
            linger = r < 0;
            break;
        }
        c.err_status = 0;
        c.msg_done = false;
        c.bytes_out = 0;
        handle(&c);
        if (c.res.upgraded || c.broken)
            break;
        if (!c.keep_alive || !skip_body(&c)) {
            linger = true;
            break;
        }
        /* a new request: its strings and response start over */
        if (c.req.mp != NULL)
            corio__http_multipart_free(c.req.mp);
        c.req.mp = NULL;
        corio__http_arena_reset(&c.arena);
        corio__http_response_reset(&c.res);
        corio__http_parser_next(&c.p);
        /* pipelined requests waiting: answer them before writing */
        if ((buffered(&c) == 0 || c.out_len > OUT_BATCH) &&
            corio__http_out_flush(&c, -1) == -1)
            break;
    }
    if (!c.broken && !c.res.upgraded)
        conn_close(&c, linger);
out:
    if (c.req.mp != NULL)
        corio__http_multipart_free(c.req.mp);
    if (c.res.produce_done != NULL)
        c.res.produce_done(c.res.produce_arg);
    if (c.res.file_fd >= 0)
        close(c.res.file_fd);
    corio__list_remove(&c.node);
    srv->nconns--;
    conn_free(&c);
}

/* ---- Starting and stopping ----------------------------------------------- */

corio_http_server *corio_http_server_start(const char *addr, corio_http_app *app,
                                           const corio_http_server_opts *opts)
{
    static const corio_http_server_opts none = {0};
    corio_http_server *srv;
    corio_listen_opts lo;

    if (addr == NULL || app == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (opts == NULL)
        opts = &none;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->app = app;
    corio__http_limits_fill(&srv->limits, &opts->limits);
    srv->head_timeout = opts->head_timeout > 0 ? opts->head_timeout : 10 * CORIO_SECOND;
    srv->body_timeout = opts->body_timeout > 0 ? opts->body_timeout : 30 * CORIO_SECOND;
    srv->idle_timeout = opts->idle_timeout > 0 ? opts->idle_timeout : 15 * CORIO_SECOND;
    srv->write_timeout = opts->write_timeout > 0 ? opts->write_timeout : 60 * CORIO_SECOND;
    srv->gzip = opts->gzip;
    srv->max_connections = opts->max_connections;
    corio__list_init(&srv->conns);
    lo = opts->listen;
    srv->srv = corio_server_start(addr, &lo, conn_main, srv);
    if (srv->srv == NULL) {
        int err = errno;

        free(srv);
        errno = err;
        return NULL;
    }
    corio__http_app_hold(app, 1);
    return srv;
}

int corio_http_server_fd(const corio_http_server *srv)
{
    return srv ? corio_server_fd(srv->srv) : -1;
}

int corio_http_server_port(const corio_http_server *srv)
{
    corio_addr a;

    if (srv == NULL || corio_socket_name(corio_http_server_fd(srv), &a) == -1)
        return -1;
    if (a.ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
    if (a.ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
    errno = EINVAL;
    return -1;
}

void corio_http_server_log(corio_http_server *srv, FILE *f)
{
    if (srv != NULL)
        srv->log = f;
}

int corio_http_server_stop(corio_http_server *srv, int64_t deadline)
{
    corio_task *self = corio_task_self();
    int rc;

    if (srv == NULL)
        return 0;
    for (struct corio__list *n = srv->conns.next; self && n != &srv->conns;
         n = n->next)
        if (CORIO_CONTAINER_OF(n, struct corio__http_conn, node)->task == self) {
            errno = EDEADLK;
            return -1;
        }
    srv->stopping = true;
    /* idle connections end now; busy ones after their response */
    for (struct corio__list *n = srv->conns.next; n != &srv->conns; n = n->next) {
        struct corio__http_conn *c = CORIO_CONTAINER_OF(n, struct corio__http_conn, node);

        if (c->idle && c->task != NULL)
            corio_task_cancel(c->task);
    }
    rc = corio_server_stop(srv->srv, deadline);
    corio__http_app_hold(srv->app, -1);
    corio__http_pages_free(&srv->pages);
    free(srv);
    return rc;
}
