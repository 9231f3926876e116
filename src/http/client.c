/* src/http/client.c -- the HTTP/1.1 client (include/corio/http_client.h):
 * sessions, the keep-alive pool, requests, redirects, responses read whole
 * or streamed.
 *
 * The pool: one host entry per origin (scheme, host, port) with a
 * semaphore of limit_per_host permits and a stack of idle connections. A
 * request takes a permit (waiting within its deadline), then the most
 * recently idle connection that has not outlived keepalive_timeout (nor
 * been closed by its server: a peek at the socket), else a new one; its response holds both until it is closed, when the connection
 * goes back on the stack if its body was read to the end and the server
 * keeps it alive. So a host never has more than limit_per_host connections
 * open.
 *
 * Each response gets a fresh llhttp parser (src/http/parse.c's glue, in
 * strict mode) over the connection's read buffer: the head is parsed in
 * corio_http_client_request, the body as it is read; chunked framing is
 * undone by the parser, gzip and deflate by inflate.c. */
#include "client_int.h"
#include "http_int.h"
#include "corio/sync.h"
#include "corio/tls.h"
#include "../io/io_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define CONN_BUF 16384
#define RAW_BUF 16384
#define BODY_LIMIT (16u * 1024 * 1024)
#define LIMIT_PER_HOST 10
#define KEEPALIVE (15 * CORIO_SECOND)
#define MAX_REDIRECTS 10

struct host;

struct conn {
    struct conn *next;          /* in its host's idle stack */
    struct host *host;
    corio_stream *s;
    struct corio__http_parser p;
    bool parser_on;
    int64_t idle_since;
    size_t start, end;          /* unparsed bytes of buf */
    char buf[CONN_BUF];
};

struct host {
    struct host *next;
    char *origin;
    corio_sem *slots;           /* limit_per_host permits */
    struct conn *idle;
    size_t open;                /* idle and in use */
};

struct corio_http_client {
    size_t limit_per_host;
    int64_t keepalive;
    int max_redirects;
    corio_http_limits limits;   /* the parser's (body: unlimited) */
    size_t body_limit;
    bool no_cookies, no_decompress;
    char *user_agent;
    corio_tls *tls;
    struct host *hosts;
    struct corio__jar jar;
    size_t busy;                /* requests running and responses open */
};

struct corio_http_client_response {
    corio_http_client *cl;
    struct conn *c;             /* held until close */
    corio_http_headers *headers;
    int status, version;
    char *reason;
    char *url;
    bool raw_eof;               /* the body's last byte is parsed */
    bool keep_alive;
    bool broken;                /* a read failed: the connection goes */
    struct corio__inflate inf;
    char *raw;                  /* encoded bytes not yet inflated */
    size_t raw_start, raw_end;
    char *body;                 /* the whole body, once read */
    size_t body_len;
    bool body_read, streamed;
    bool reading;               /* a task is in _read or _body */
};

/* ---- Client --------------------------------------------------------------- */

corio_http_client *corio_http_client_new(const corio_http_client_opts *opts)
{
    corio_http_client_opts z = {0};
    corio_http_client *cl;

    if (opts == NULL)
        opts = &z;
    if (opts->keepalive_timeout < 0) {
        errno = EINVAL;
        return NULL;
    }
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->limit_per_host = opts->limit_per_host ? opts->limit_per_host
                                              : LIMIT_PER_HOST;
    cl->keepalive = opts->keepalive_timeout ? opts->keepalive_timeout
                                            : KEEPALIVE;
    cl->max_redirects = opts->max_redirects == 0 ? MAX_REDIRECTS
                                                 : opts->max_redirects;
    corio__http_limits_fill(&cl->limits, &opts->limits);
    cl->body_limit = opts->limits.body ? opts->limits.body : BODY_LIMIT;
    cl->limits.body = SIZE_MAX; /* a streamed body has no limit */
    cl->no_cookies = opts->no_cookies;
    cl->no_decompress = opts->no_decompress;
    cl->user_agent = strdup(opts->user_agent ? opts->user_agent : "corio");
    if (cl->user_agent == NULL)
        goto fail;
    if (opts->tls != NULL) {
        cl->tls = opts->tls;
        corio__tls_ref(cl->tls);
    }
    return cl;
fail:
    free(cl->user_agent);
    free(cl);
    errno = ENOMEM;
    return NULL;
}

static void conn_close(struct conn *c)
{
    c->host->open--;
    corio_stream_close(c->s);
    if (c->parser_on)
        corio__http_parser_free(&c->p);
    free(c);
}

int corio_http_client_free(corio_http_client *cl)
{
    if (cl == NULL)
        return 0;
    if (cl->busy > 0) {
        errno = EBUSY;
        return -1;
    }
    while (cl->hosts != NULL) {
        struct host *h = cl->hosts;

        cl->hosts = h->next;
        while (h->idle != NULL) {
            struct conn *c = h->idle;

            h->idle = c->next;
            conn_close(c);
        }
        corio_sem_free(h->slots);
        free(h->origin);
        free(h);
    }
    corio__jar_free(&cl->jar);
    corio_tls_free(cl->tls);
    free(cl->user_agent);
    free(cl);
    return 0;
}

size_t corio_http_client_connections(const corio_http_client *cl)
{
    size_t n = 0;

    for (const struct host *h = cl->hosts; h != NULL; h = h->next)
        n += h->open;
    return n;
}

const char *corio_http_client_cookie(corio_http_client *cl, const char *url,
                                     const char *name)
{
    struct corio__url u;
    const char *v;

    if (cl == NULL || name == NULL || corio__url_parse(&u, url, NULL) == -1) {
        errno = EINVAL;
        return NULL;
    }
    v = corio__jar_get(&cl->jar, &u, name);
    corio__url_free(&u);
    if (v == NULL)
        errno = ENOENT;
    return v;
}

/* ---- Pool ----------------------------------------------------------------- */

static struct host *host_get(corio_http_client *cl, const char *origin)
{
    struct host *h;

    for (h = cl->hosts; h != NULL; h = h->next)
        if (strcmp(h->origin, origin) == 0)
            return h;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->origin = strdup(origin);
    h->slots = corio_sem_new((unsigned)cl->limit_per_host);
    if (h->origin == NULL || h->slots == NULL) {
        corio_sem_free(h->slots);
        free(h->origin);
        free(h);
        errno = ENOMEM;
        return NULL;
    }
    h->next = cl->hosts;
    cl->hosts = h;
    return h;
}

/* True if an idle connection has heard from its server: its end (the
 * server closed it meanwhile) or bytes nobody asked for. Either way it
 * cannot carry a request. */
static bool idle_heard(struct conn *c)
{
    char b;
    int fd = corio_stream_fd(c->s);

    if (corio_stream_buffered(c->s) > 0 || fd < 0)
        return true;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != -1 ||
           (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* The freshest idle connection of h, or NULL; outlived ones, and those the
 * server has closed meanwhile, are closed. */
static struct conn *idle_take(corio_http_client *cl, struct host *h)
{
    int64_t now = corio_now();

    while (h->idle != NULL) {
        struct conn *c = h->idle;

        h->idle = c->next;
        if (now - c->idle_since < cl->keepalive && !idle_heard(c))
            return c;
        conn_close(c);
    }
    return NULL;
}

static struct conn *conn_open(corio_http_client *cl, struct host *h,
                              const struct corio__url *u, int64_t deadline)
{
    char addr[300];
    struct conn *c;

    snprintf(addr, sizeof(addr),
             strchr(u->host, ':') != NULL ? "[%s]:%s" : "%s:%s", u->host,
             u->port);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (u->https) {
        if (cl->tls == NULL && (cl->tls = corio_tls_client(NULL)) == NULL) {
            free(c);
            return NULL;
        }
        c->s = corio_tls_connect(cl->tls, addr, deadline);
    } else {
        c->s = corio_stream_connect(addr, deadline);
    }
    if (c->s == NULL) {
        free(c);
        return NULL;
    }
    c->host = h;
    h->open++;
    return c;
}

/* ---- Sending -------------------------------------------------------------- */

/* The fields a caller may not set: the client frames the message. */
static bool reserved_field(const char *name)
{
    return strcasecmp(name, "Host") == 0 ||
           strcasecmp(name, "Content-Length") == 0 ||
           strcasecmp(name, "Transfer-Encoding") == 0 ||
           strcasecmp(name, "Connection") == 0;
}

struct req {
    const char *method;
    const struct corio__url *u;
    const corio_http_headers *headers;
    const void *body;
    size_t body_len;
    bool has_body;
    bool strip_auth;            /* redirected to another origin */
    bool head;
};

/* Append printf output to a growing buffer. */
static int put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return 0;
        }
        char *b = realloc(*buf, *cap * 2 + (size_t)n);

        if (b == NULL)
            return -1;
        *buf = b;
        *cap = *cap * 2 + (size_t)n;
    }
}

static int send_request(corio_http_client *cl, struct conn *c,
                        const struct req *q, int64_t deadline)
{
    size_t len = 0, cap = 1024, n = corio_http_headers_count(q->headers);
    char *head = malloc(cap), *cookie = NULL;
    int rc = -1;

    if (head == NULL)
        return -1;
    if (put(&head, &len, &cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", q->method,
            q->u->target, q->u->authority) == -1)
        goto out;
    if (!corio_http_headers_get(q->headers, "User-Agent") &&
        put(&head, &len, &cap, "User-Agent: %s\r\n", cl->user_agent) == -1)
        goto out;
    if (!corio_http_headers_get(q->headers, "Accept") &&
        put(&head, &len, &cap, "Accept: */*\r\n") == -1)
        goto out;
    if (!cl->no_decompress &&
        !corio_http_headers_get(q->headers, "Accept-Encoding") &&
        put(&head, &len, &cap, "Accept-Encoding: gzip, deflate\r\n") == -1)
        goto out;
    if (!cl->no_cookies) {
        cookie = corio__jar_header(&cl->jar, q->u);
        if (cookie == NULL && errno == ENOMEM)
            goto out;
        if (cookie != NULL &&
            put(&head, &len, &cap, "Cookie: %s\r\n", cookie) == -1)
            goto out;
    }
    if (q->has_body &&
        put(&head, &len, &cap, "Content-Length: %zu\r\n", q->body_len) == -1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;

        corio_http_headers_at(q->headers, i, &name, &value);
        if (q->strip_auth && strcasecmp(name, "Authorization") == 0)
            continue;
        if (put(&head, &len, &cap, "%s: %s\r\n", name, value) == -1)
            goto out;
    }
    if (put(&head, &len, &cap, "\r\n") == -1)
        goto out;
    if (corio_stream_write(c->s, head, len) == -1 ||
        (q->has_body && q->body_len > 0 &&
         corio_stream_write(c->s, q->body, q->body_len) == -1) ||
        corio_stream_drain(c->s, deadline) == -1)
        goto out;
    rc = 0;
out:
    if (rc == -1 && errno == 0)
        errno = ENOMEM;
    free(head);
    free(cookie);
    return rc;
}

/* ---- Receiving -------------------------------------------------------------- */

static int parse_error(const struct corio__http_parser *p)
{
    errno = (p->status == 414 || p->status == 431 || p->status == 413)
                ? EMSGSIZE
                : EPROTO;
    return -1;
}

/* Read the head of the response into r. *nothing: the connection gave not
 * one byte (closed or reset: a stale pooled connection). */
static int read_head(corio_http_client *cl, struct conn *c,
                     corio_http_client_response *r, bool head_method,
                     int64_t deadline, bool *nothing)
{
    size_t used;
    bool got = c->start < c->end;

    *nothing = false;
    if (c->parser_on)
        corio__http_parser_free(&c->p);
    corio__http_parser_init(&c->p, HTTP_RESPONSE, &cl->limits, r->headers);
    c->parser_on = true;
    for (;;) {
        enum corio__http_event ev;

        if (c->start == c->end) {
            ssize_t k = corio_stream_read(c->s, c->buf, sizeof(c->buf),
                                          deadline);

            if (k == -1) {
                *nothing = !got && (errno == ECONNRESET || errno == EPIPE);
                return -1;
            }
            if (k == 0) {
                *nothing = !got;
                errno = got ? EPROTO : CORIO_EEOF;
                return -1;
            }
            got = true;
            c->start = 0;
            c->end = (size_t)k;
        }
        c->p.skip_body = head_method;
        c->p.body = NULL;
        ev = corio__http_parse(&c->p, c->buf + c->start, c->end - c->start,
                               &used);
        c->start += used;
        if (ev == CORIO__HTTP_ERROR)
            return parse_error(&c->p);
        if (ev == CORIO__HTTP_MORE)
            continue;
        if (c->p.status >= 100 && c->p.status < 200 && c->p.status != 101) {
            /* an interim response (100 Continue): the real one follows */
            corio__http_parser_free(&c->p);
            corio__http_parser_init(&c->p, HTTP_RESPONSE, &cl->limits,
                                    r->headers);
            continue;
        }
        r->status = c->p.status;
        r->version = c->p.version;
        r->reason = strdup(c->p.line ? c->p.line : "");
        if (r->reason == NULL)
            return -1;
        r->keep_alive = corio__http_keep_alive(&c->p);
        if (ev == CORIO__HTTP_DONE || head_method || r->status == 204 ||
            r->status == 304 || r->status == 101 ||
            (c->p.length == 0 && !corio__http_chunked(&c->p)))
            r->raw_eof = true;
        return 0;
    }
}

/* Read up to n bytes of the raw (still encoded) body: 0 at its end. */
static ssize_t raw_read(corio_http_client_response *r, char *out, size_t n,
                        int64_t deadline)
{
    struct conn *c = r->c;

    while (!r->raw_eof) {
        enum corio__http_event ev;
        size_t used, feed;

        if (c->start == c->end) {
            ssize_t k = corio_stream_read(c->s, c->buf, sizeof(c->buf),
                                          deadline);

            if (k == -1)
                goto broken;
            if (k == 0) {
                if (corio__http_parse_eof(&c->p) == CORIO__HTTP_DONE) {
                    r->raw_eof = true; /* a body that ends with the
                                          connection */
                    r->keep_alive = false;
                    return 0;
                }
                errno = CORIO_EEOF;
                goto broken;
            }
            c->start = 0;
            c->end = (size_t)k;
        }
        feed = c->end - c->start < n ? c->end - c->start : n;
        c->p.body = out;
        ev = corio__http_parse(&c->p, c->buf + c->start, feed, &used);
        c->start += used;
        if (ev == CORIO__HTTP_ERROR) {
            parse_error(&c->p);
            goto broken;
        }
        if (ev == CORIO__HTTP_DONE) {
            r->raw_eof = true;
            r->keep_alive = corio__http_keep_alive(&c->p);
        }
        if (c->p.body_len > 0)
            return (ssize_t)c->p.body_len;
    }
    return 0;
broken:
    r->broken = true;
    return -1;
}

static ssize_t decoded_read(corio_http_client_response *r, char *buf,
                            size_t n, int64_t deadline)
{
    if (!r->inf.on)
        return raw_read(r, buf, n, deadline);
    for (;;) {
        size_t in_len;
        ssize_t out;

        if (r->raw_start == r->raw_end && !r->raw_eof) {
            ssize_t k = raw_read(r, r->raw, RAW_BUF, deadline);

            if (k == -1)
                return -1;
            r->raw_start = 0;
            r->raw_end = (size_t)k;
        }
        in_len = r->raw_end - r->raw_start;
        out = corio__inflate_run(&r->inf, r->raw + r->raw_start, &in_len,
                                 buf, n);
        if (out == -1) {
            r->broken = true;
            return -1;
        }
        r->raw_start += in_len;
        if (out > 0)
            return out;
        if (r->inf.ended) {
            /* bytes after the compressed stream are dropped; the raw
             * body is still read to its end, for the connection's sake */
            while (!r->raw_eof)
                if (raw_read(r, r->raw, RAW_BUF, deadline) == -1)
                    return -1;
            r->raw_start = r->raw_end = 0;
            return 0;
        }
        if (r->raw_eof && r->raw_start == r->raw_end) {
            if (r->inf.z.total_in == 0)
                return 0; /* an empty body, though marked as encoded */
            errno = EPROTO; /* the compressed stream was cut short */
            r->broken = true;
            return -1;
        }
    }
}

ssize_t corio_http_client_response_read(corio_http_client_response *r,
                                        void *buf, size_t n, int64_t deadline)
{
    ssize_t k;

    if (r == NULL || buf == NULL || n == 0 || r->body_read) {
        errno = EINVAL;
        return -1;
    }
    if (r->broken) {
        errno = EPROTO;
        return -1;
    }
    if (r->reading) {
        errno = EBUSY;
        return -1;
    }
    r->streamed = true;
    r->reading = true;
    k = decoded_read(r, buf, n, deadline);
    r->reading = false;
    return k;
}

static const char *body_read(corio_http_client_response *r, size_t *len,
                             int64_t deadline);

const char *corio_http_client_response_body(corio_http_client_response *r,
                                            size_t *len, int64_t deadline)
{
    const char *b;

    if (r == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (r->reading) {
        errno = EBUSY;
        return NULL;
    }
    r->reading = true;
    b = body_read(r, len, deadline);
    r->reading = false;
    return b;
}

static const char *body_read(corio_http_client_response *r, size_t *len,
                             int64_t deadline)
{
    size_t cap;

    if (r->body_read) {
        if (len != NULL)
            *len = r->body_len;
        return r->body;
    }
    if (r->broken) {
        errno = EPROTO;
        return NULL;
    }
    cap = r->body != NULL ? r->body_len + 1 : 0;
    for (;;) {
        ssize_t k;

        if (r->body_len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            char *b;

            if (cap > r->cl->body_limit + 1) {
                r->broken = true;
                errno = EMSGSIZE;
                return NULL;
            }
            b = realloc(r->body, ncap);
            if (b == NULL)
                return NULL;
            r->body = b;
            cap = ncap;
        }
        k = decoded_read(r, r->body + r->body_len, cap - 1 - r->body_len,
                         deadline);
        if (k == -1)
            return NULL;
        if (k == 0)
            break;
        r->body_len += (size_t)k;
        if (r->body_len > r->cl->body_limit) {
            r->broken = true;
            errno = EMSGSIZE;
            return NULL;
        }
    }
    r->body[r->body_len] = '\0';
    r->body_read = true;
    if (len != NULL)
        *len = r->body_len;
    return r->body;
}

/* ---- Responses ---------------------------------------------------------------- */

/* Let go of r's connection: back to the pool if it is reusable. */
static void release(corio_http_client_response *r)
{
    struct conn *c = r->c;
    struct host *h;

    if (c == NULL)
        return;
    r->c = NULL;
    h = c->host;
    if (r->raw_eof && r->keep_alive && !r->broken && c->start == c->end &&
        r->status != 101) {
        c->idle_since = corio_now();
        c->next = h->idle;
        h->idle = c;
    } else {
        conn_close(c);
    }
    corio_sem_release(h->slots);
}

static void response_free(corio_http_client_response *r)
{
    corio_http_headers_free(r->headers);
    corio__inflate_free(&r->inf);
    free(r->raw);
    free(r->body);
    free(r->reason);
    free(r->url);
    free(r);
}

int corio_http_client_response_close(corio_http_client_response *r)
{
    if (r == NULL)
        return 0;
    if (r->reading) {
        errno = EBUSY; /* it would free what that task reads into */
        return -1;
    }
    release(r);
    r->cl->busy--;
    response_free(r);
    return 0;
}

int corio_http_client_response_status(const corio_http_client_response *r)
{
    return r->status;
}

const char *corio_http_client_response_reason(const corio_http_client_response *r)
{
    return r->reason;
}

const corio_http_headers *
corio_http_client_response_headers(const corio_http_client_response *r)
{
    return r->headers;
}

int corio_http_client_response_version(const corio_http_client_response *r)
{
    return r->version;
}

const char *corio_http_client_response_url(const corio_http_client_response *r)
{
    return r->url;
}

/* ---- Requests ------------------------------------------------------------------- */

static bool idempotent(const char *m)
{
    static const char *const list[] = {"GET", "HEAD", "PUT", "DELETE",
                                       "OPTIONS", "TRACE"};

    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (strcmp(m, list[i]) == 0)
            return true;
    return false;
}

/* One exchange on a pooled or new connection: the response with its head
 * read, holding the connection and a permit of its host. A pooled
 * connection that turns out closed is replaced once, for an idempotent
 * method. */
static corio_http_client_response *exchange(corio_http_client *cl,
                                            const struct req *q,
                                            int64_t deadline)
{
    struct host *h = host_get(cl, q->u->origin);
    corio_http_client_response *r;

    if (h == NULL)
        return NULL;
    if (corio_sem_acquire(h->slots, deadline) == -1)
        return NULL;
    for (int attempt = 0;; attempt++) {
        struct conn *c = attempt == 0 ? idle_take(cl, h) : NULL;
        bool reused = c != NULL, nothing = false;
        int err;

        if (c == NULL && (c = conn_open(cl, h, q->u, deadline)) == NULL)
            break;
        r = calloc(1, sizeof(*r));
        if (r == NULL || (r->headers = corio_http_headers_new()) == NULL) {
            free(r);
            conn_close(c);
            errno = ENOMEM;
            break;
        }
        r->cl = cl;
        if (send_request(cl, c, q, deadline) == -1) {
            /* the write found it closed */
            nothing = errno == EPIPE || errno == ECONNRESET;
        } else if (read_head(cl, c, r, q->head, deadline, &nothing) == 0) {
            r->c = c;
            return r;
        }
        err = errno;
        conn_close(c);
        response_free(r);
        errno = err;
        if (!(reused && nothing && idempotent(q->method)))
            break;
    }
    corio_sem_release(h->slots);
    return NULL;
}

/* Store r's cookies, set up its decoding. */
static int accept_response(corio_http_client *cl, corio_http_client_response *r,
                           const struct corio__url *u)
{
    size_t pos = 0;
    const char *v;

    if (!cl->no_cookies)
        while ((v = corio_http_headers_next(r->headers, "Set-Cookie", &pos)))
            if (corio__jar_store(&cl->jar, u, v) == -1)
                return -1;
    if (!cl->no_decompress && !r->raw_eof) {
        int on = corio__inflate_init(
            &r->inf, corio_http_headers_get(r->headers, "Content-Encoding"));

        if (on == -1)
            return -1;
        if (on == 1 && (r->raw = malloc(RAW_BUF)) == NULL)
            return -1;
    }
    return 0;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 ||
           status == 307 || status == 308;
}

corio_http_client_response *corio_http_client_request(
    corio_http_client *cl, const char *method, const char *url,
    const corio_http_client_req_opts *opts, int64_t deadline)
{
    corio_http_client_req_opts z = {0};
    struct corio__url u, next;
    struct req q = {0};
    corio_http_client_response *r = NULL;
    char *meth = NULL;
    int redirects = 0, err;

    if (opts == NULL)
        opts = &z;
    if (cl == NULL || method == NULL ||
        !corio__http_is_token(method, strlen(method)) ||
        (opts->body == NULL && opts->body_len > 0)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < corio_http_headers_count(opts->headers); i++) {
        const char *name;

        corio_http_headers_at(opts->headers, i, &name, NULL);
        if (reserved_field(name)) {
            errno = EINVAL;
            return NULL;
        }
    }
    if (corio__url_parse(&u, url, opts->query) == -1)
        return NULL;
    meth = strdup(method);
    if (meth == NULL) {
        corio__url_free(&u);
        return NULL;
    }
    cl->busy++;
    q.headers = opts->headers;
    q.body = opts->body;
    q.body_len = opts->body_len;
    q.has_body = opts->body != NULL || strcmp(meth, "POST") == 0 ||
                 strcmp(meth, "PUT") == 0 || strcmp(meth, "PATCH") == 0;
    for (;;) {
        const char *loc;
        char *target;
        int status;

        q.method = meth;
        q.u = &u;
        q.head = strcmp(meth, "HEAD") == 0;
        r = exchange(cl, &q, deadline);
        if (r == NULL)
            goto fail;
        if (accept_response(cl, r, &u) == -1)
            goto fail;
        status = r->status;
        loc = corio_http_headers_get(r->headers, "Location");
        if (!is_redirect(status) || loc == NULL || opts->no_redirects ||
            cl->max_redirects < 0)
            break;
        if (redirects++ == cl->max_redirects) {
            errno = ELOOP;
            goto fail;
        }
        target = corio__url_resolve(&u, loc);
        if (target == NULL)
            goto fail;
        err = corio__url_parse(&next, target, NULL);
        free(target);
        if (err == -1)
            goto fail;
        /* the redirect's own body: read to keep the connection (bounded
         * by the body limit; a failure only costs the connection) */
        if (corio_http_client_response_body(r, NULL, deadline) == NULL &&
            (errno == ETIMEDOUT || errno == ECANCELED)) {
            corio__url_free(&next);
            goto fail;
        }
        corio_http_client_response_close(r);
        cl->busy++;
        r = NULL;
        if (status == 303 || ((status == 301 || status == 302) &&
                              strcmp(meth, "POST") == 0)) {
            if (!q.head) {
                free(meth);
                meth = strdup("GET");
                if (meth == NULL) {
                    corio__url_free(&next);
                    goto fail;
                }
            }
            q.body = NULL;
            q.body_len = 0;
            q.has_body = false;
        }
        if (strcmp(next.origin, u.origin) != 0)
            q.strip_auth = true;
        corio__url_free(&u);
        u = next;
    }
    r->url = strdup(u.text);
    if (r->url == NULL)
        goto fail;
    corio__url_free(&u);
    free(meth);
    return r;
fail:
    err = errno;
    if (r != NULL)
        corio_http_client_response_close(r);
    else
        cl->busy--;
    corio__url_free(&u);
    free(meth);
    errno = err;
    return NULL;
}

corio_http_client_response *corio_http_client_get(corio_http_client *cl,
                                                  const char *url,
                                                  int64_t deadline)
{
    return corio_http_client_request(cl, "GET", url, NULL, deadline);
}
