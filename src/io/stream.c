/* src/io/stream.c -- buffered streams (asyncio's StreamReader and
 * StreamWriter in one object): the object, its life, and reading. Writing
 * is stream_write.c; the bytes go through a transport (io_int.h), a plain
 * fd here, TLS later.
 *
 * The read buffer grows up to what a call needs (the limit for lines, n for
 * readexactly), so that a call that fails consumes nothing and leaves the
 * data readable. One task reads at a time: a read call made while another
 * waits fails with EBUSY (asyncio raises RuntimeError), since the waiting
 * one owns the buffer's free space. */
#define _GNU_SOURCE /* memmem */
#include "io_int.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SIZE (64 * 1024)
#define READ_CHUNK 4096

/* ---- The object ---------------------------------------------------------- */

corio_stream *corio__stream_new_transport(struct corio__transport *t,
                                          const corio_stream_opts *opts)
{
    corio_stream *s;

    if (t == NULL || t->ops == NULL || t->fd < 0) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->t = t;
    s->limit = opts && opts->limit ? opts->limit : DEFAULT_SIZE;
    s->high_water = opts && opts->high_water ? opts->high_water : DEFAULT_SIZE;
    s->wwant = CORIO_WRITE;
    corio__list_init(&s->followers);
    return s;
}

corio_stream *corio_stream_new(int fd, const corio_stream_opts *opts)
{
    struct corio__transport fdt = {&corio__transport_fd, fd};
    corio_stream *s = corio__stream_new_transport(&fdt, opts);

    /* the fd transport lives inside the stream */
    if (s != NULL) {
        s->fdt = fdt;
        s->t = &s->fdt;
    }
    return s;
}

corio_stream *corio_stream_connect(const char *addr, int64_t deadline)
{
    int fd = corio_socket_connect(addr, NULL, deadline);
    corio_stream *s;

    if (fd == -1)
        return NULL;
    s = corio_stream_new(fd, NULL);
    if (s == NULL) {
        int err = errno;

        corio_fd_close(fd);
        errno = err;
    }
    return s;
}

int corio_stream_fd(const corio_stream *s)
{
    if (s == NULL || s->closed) {
        errno = EBADF;
        return -1;
    }
    return s->t->fd;
}

size_t corio_stream_buffered(const corio_stream *s)
{
    return s != NULL ? s->rend - s->rpos : 0;
}

static void stream_free(corio_stream *s)
{
    free(s->rbuf);
    free(s->wbuf);
    free(s);
}

int corio__stream_enter(corio_stream *s)
{
    if (s->closed) {
        errno = EBADF;
        return -1;
    }
    s->busy++;
    return 0;
}

ssize_t corio__stream_leave(corio_stream *s, ssize_t rc)
{
    int err = errno;

    if (--s->busy == 0 && s->closed)
        stream_free(s);
    errno = err;
    return rc;
}

int corio_stream_close(corio_stream *s)
{
    int rc, err;

    if (s == NULL)
        return 0;
    if (s->closed) {
        errno = EBADF; /* closed already; calls of other tasks hold it */
        return -1;
    }
    s->closed = true;
    corio__stream_wake_followers(s, EBADF);
    rc = s->t->ops->close(s->t); /* tasks waiting on it fail with EBADF */
    s->t = NULL;
    err = errno;
    if (s->busy == 0)
        stream_free(s);
    errno = err;
    return rc;
}

/* ---- Waiting: one task per direction, the others behind it ------------- */

void corio__stream_wake_followers(corio_stream *s, int err)
{
    struct corio__list *n;

    while ((n = corio__list_pop_front(&s->followers)) != NULL)
        corio__wake(CORIO_CONTAINER_OF(n, struct corio__waiter, node), err);
}

int corio__stream_wait(corio_stream *s, unsigned events, int64_t deadline)
{
    struct corio__waiter w;
    int rc;

    if (s->waiting & events) {
        /* another task waits for this direction: wait until it wakes */
        corio__waiter_init(&w);
        w.unlink = corio__waiter_unlink_node;
        corio__list_push_back(&s->followers, &w.node);
        rc = corio__wait(&w, deadline);
    } else {
        s->waiting |= events;
        rc = s->t->ops->wait(s->t, events, deadline);
        if (!s->closed) {
            s->waiting &= ~events;
            if (!corio__list_empty(&s->followers))
                corio__stream_wake_followers(s, 0); /* one takes over */
        }
    }
    if (s->closed) {
        errno = EBADF;
        return -1;
    }
    return rc;
}

/* ---- The cooperative budget -------------------------------------------- */

int corio__stream_spend(corio_stream *s, size_t bytes)
{
    if (corio__budget_spend(bytes) == -1)
        return -1;
    if (s->closed) { /* by another task while this one yielded */
        errno = EBADF;
        return -1;
    }
    return 0;
}

/* ---- Reading ------------------------------------------------------------- */

/* Start a read call: EBUSY while another task's read call waits. */
static int read_enter(corio_stream *s)
{
    if (s->reading) {
        errno = EBUSY;
        return -1;
    }
    if (corio__stream_enter(s) == -1)
        return -1;
    s->reading = true;
    return 0;
}

static ssize_t read_leave(corio_stream *s, ssize_t rc)
{
    s->reading = false;
    return corio__stream_leave(s, rc);
}

/* Read from the transport into buf, waiting until something comes.
 * Returns the count, 0 at end of stream, or -1 with errno. */
static ssize_t transport_read(corio_stream *s, void *buf, size_t n,
                              int64_t deadline)
{
    for (;;) {
        unsigned want = CORIO_READ;
        ssize_t got = s->t->ops->read(s->t, buf, n, &want);

        if (got >= 0)
            return got;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (corio__stream_wait(s, want, deadline) == -1)
            return -1;
    }
}

/* Make room for at least `want` buffered bytes in all (want >= buffered).
 * Returns 0, or -1 with ENOMEM. */
static int rbuf_room(corio_stream *s, size_t want)
{
    size_t have = s->rend - s->rpos, cap;
    char *p;

    if (s->rpos > 0 && (s->rend == s->rcap || want > s->rcap - s->rpos)) {
        memmove(s->rbuf, s->rbuf + s->rpos, have);
        s->rpos = 0;
        s->rend = have;
    }
    if (want <= s->rcap)
        return 0;
    cap = s->rcap ? s->rcap : READ_CHUNK;
    while (cap < want)
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : want; /* doubling would wrap */
    p = realloc(s->rbuf, cap);
    if (p == NULL)
        return -1;
    s->rbuf = p;
    s->rcap = cap;
    return 0;
}

/* Read more into the buffer, with room for at least `want` bytes in all.
 * Returns the count read, 0 at end of stream (s->eof), -1 with errno. */
static ssize_t fill(corio_stream *s, size_t want, int64_t deadline)
{
    size_t have = s->rend - s->rpos;
    ssize_t got;

    if (s->eof)
        return 0;
    if (want < have + READ_CHUNK)
        want = have + READ_CHUNK;
    if (rbuf_room(s, want) == -1 ||
        corio__stream_spend(s, s->rcap - s->rend) == -1)
        return -1;
    got = transport_read(s, s->rbuf + s->rend, s->rcap - s->rend, deadline);
    if (got > 0)
        s->rend += (size_t)got;
    else if (got == 0)
        s->eof = true;
    return got;
}

static void take(corio_stream *s, void *buf, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
}

ssize_t corio_stream_read(corio_stream *s, void *buf, size_t n,
                          int64_t deadline)
{
    ssize_t got = 0;

    if (s == NULL || (buf == NULL && n > 0) || n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0)
        return 0;
    if (read_enter(s) == -1)
        return -1;
    if (corio__stream_spend(s, 0) == -1)
        return read_leave(s, -1);
    if (s->rend == s->rpos)
        got = fill(s, 0, deadline);
    if (got >= 0 && s->rend > s->rpos) {
        got = (ssize_t)(n < s->rend - s->rpos ? n : s->rend - s->rpos);
        take(s, buf, (size_t)got);
    }
    return read_leave(s, got);
}

ssize_t corio_stream_readexactly(corio_stream *s, void *buf, size_t n,
                                 int64_t deadline)
{
    ssize_t got = 1;

    /* n above SSIZE_MAX could not be returned (nor buffered) */
    if (s == NULL || (buf == NULL && n > 0) || n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (read_enter(s) == -1)
        return -1;
    if (corio__stream_spend(s, 0) == -1)
        return read_leave(s, -1);
    while (s->rend - s->rpos < n && got > 0)
        got = fill(s, n, deadline);
    if (got == 0)
        errno = CORIO_EEOF; /* ended first: what came stays buffered */
    if (got <= 0)
        return read_leave(s, -1);
    take(s, buf, n);
    return read_leave(s, (ssize_t)n);
}

/* readuntil, within a read call. CORIO_EEOF at end of stream. */
static ssize_t readuntil(corio_stream *s, const void *sep, size_t seplen,
                         char *buf, size_t size, int64_t deadline)
{
    size_t most = size - 1 < s->limit ? size - 1 : s->limit;
    size_t scanned = 0;

    if (most > SSIZE_MAX) /* the length is returned as a ssize_t */
        most = SSIZE_MAX;

    for (;;) {
        size_t have = s->rend - s->rpos;
        const char *at = NULL;
        ssize_t got;

        if (have >= seplen)
            at = memmem(s->rbuf + s->rpos + scanned, have - scanned, sep,
                        seplen);
        if (at != NULL) {
            size_t len = (size_t)(at - (s->rbuf + s->rpos)) + seplen;

            if (len > most)
                break;
            take(s, buf, len);
            buf[len] = 0;
            return (ssize_t)len;
        }
        if (have >= most)
            break; /* a separator can only end beyond `most` */
        /* the separator may straddle what was scanned and what comes */
        scanned = have >= seplen ? have - seplen + 1 : 0;
        got = fill(s, 0, deadline);
        if (got == -1)
            return -1;
        if (got == 0) {
            errno = CORIO_EEOF;
            return -1;
        }
    }
    errno = EMSGSIZE; /* nothing consumed */
    return -1;
}

ssize_t corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen,
                               char *buf, size_t size, int64_t deadline)
{
    if (s == NULL || sep == NULL || seplen == 0 || buf == NULL || size == 0) {
        errno = EINVAL;
        return -1;
    }
    if (read_enter(s) == -1)
        return -1;
    if (corio__stream_spend(s, 0) == -1)
        return read_leave(s, -1);
    return read_leave(s, readuntil(s, sep, seplen, buf, size, deadline));
}

ssize_t corio_stream_readline(corio_stream *s, char *buf, size_t size,
                              int64_t deadline)
{
    ssize_t n;
    size_t have;

    if (s == NULL || buf == NULL || size == 0) {
        errno = EINVAL;
        return -1;
    }
    if (read_enter(s) == -1)
        return -1;
    if (corio__stream_spend(s, 0) == -1)
        return read_leave(s, -1);
    n = readuntil(s, "\n", 1, buf, size, deadline);
    if (n >= 0 || errno != CORIO_EEOF)
        return read_leave(s, n);
    /* end of stream: the last line has no newline */
    have = s->rend - s->rpos;
    if (have > size - 1) {
        errno = EMSGSIZE;
        return read_leave(s, -1);
    }
    take(s, buf, have);
    buf[have] = 0;
    return read_leave(s, (ssize_t)have);
}

/* ---- Parsing in place (the http layer) ------------------------------------ */

ssize_t corio__stream_fill(corio_stream *s, int64_t deadline)
{
    ssize_t got;

    if (read_enter(s) == -1)
        return -1;
    got = fill(s, 0, deadline);
    return read_leave(s, got);
}

void corio__stream_consume(corio_stream *s, size_t n)
{
    s->rpos += n;
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
}
