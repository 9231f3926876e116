/* src/io/stream.c -- buffered streams over a connected socket (asyncio's
 * StreamReader and StreamWriter in one object).
 *
 * The read buffer holds bytes [rpos, rend) of rbuf; it grows up to what a
 * call needs (the limit for lines, n for readexactly), so that a call that
 * fails consumes nothing and leaves the data readable. The write buffer
 * holds bytes [wpos, wend) of wbuf not yet taken by the socket; write()
 * sends what the socket takes at once and keeps the rest, drain() waits
 * until at most high_water bytes are left. */
#define _GNU_SOURCE /* accept4, memmem */
#include "corio/io.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LIMIT (64 * 1024)
#define READ_CHUNK 4096

struct corio_stream {
    int fd;
    size_t limit, high_water;
    char *rbuf;
    size_t rcap, rpos, rend;
    char *wbuf;
    size_t wcap, wpos, wend;
    int werr;       /* sticky: a write failed (or EPIPE after shutdown) */
    bool eof;       /* the peer's end of stream was read */
};

corio_stream *corio_stream_new(int fd, const corio_stream_opts *opts)
{
    corio_stream *s;

    if (fd < 0) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = fd;
    s->limit = opts && opts->limit ? opts->limit : DEFAULT_LIMIT;
    s->high_water = opts && opts->high_water ? opts->high_water
                                             : DEFAULT_LIMIT;
    return s;
}

corio_stream *corio_stream_connect(const char *addr, int64_t deadline)
{
    int fd = corio_connect(addr, 0, deadline);
    corio_stream *s;

    if (fd == -1)
        return NULL;
    s = corio_stream_new(fd, NULL);
    if (s == NULL) {
        int err = errno;

        corio_close(fd);
        errno = err;
    }
    return s;
}

int corio_stream_fd(const corio_stream *s)
{
    return s != NULL ? s->fd : -1;
}

size_t corio_stream_buffered(const corio_stream *s)
{
    return s != NULL ? s->rend - s->rpos : 0;
}

size_t corio_stream_pending(const corio_stream *s)
{
    return s != NULL ? s->wend - s->wpos : 0;
}

int corio_stream_close(corio_stream *s)
{
    int rc;

    if (s == NULL)
        return 0;
    rc = corio_close(s->fd);
    free(s->rbuf);
    free(s->wbuf);
    free(s);
    return rc;
}

/* ---- Reading ---------------------------------------------------------------- */

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
        cap *= 2;
    p = realloc(s->rbuf, cap);
    if (p == NULL)
        return -1;
    s->rbuf = p;
    s->rcap = cap;
    return 0;
}

/* Read more into the buffer, keeping at least `want` bytes of room for what
 * is buffered plus the new data. Returns the count read, 0 at end of stream
 * (s->eof), -1 with errno. */
static ssize_t fill(corio_stream *s, size_t want, int64_t deadline)
{
    ssize_t got;

    if (s->eof)
        return 0;
    if (want < s->rend - s->rpos + READ_CHUNK)
        want = s->rend - s->rpos + READ_CHUNK;
    if (rbuf_room(s, want) == -1)
        return -1;
    got = corio_read(s->fd, s->rbuf + s->rend, s->rcap - s->rend, deadline);
    if (got > 0)
        s->rend += (size_t)got;
    else if (got == 0)
        s->eof = true;
    return got;
}

static void take(corio_stream *s, void *buf, size_t n)
{
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
}

ssize_t corio_stream_read(corio_stream *s, void *buf, size_t n,
                          int64_t deadline)
{
    size_t have;

    if (s == NULL || (buf == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0)
        return 0;
    if (s->rend == s->rpos) {
        ssize_t got = fill(s, 0, deadline);

        if (got <= 0)
            return got;
    }
    have = s->rend - s->rpos;
    if (n > have)
        n = have;
    take(s, buf, n);
    return (ssize_t)n;
}

ssize_t corio_stream_readexactly(corio_stream *s, void *buf, size_t n,
                                 int64_t deadline)
{
    if (s == NULL || (buf == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    while (s->rend - s->rpos < n) {
        ssize_t got = fill(s, n, deadline);

        if (got == -1)
            return -1;
        if (got == 0) {
            errno = EPIPE; /* ended first: what came stays buffered */
            return -1;
        }
    }
    take(s, buf, n);
    return (ssize_t)n;
}

ssize_t corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen,
                               char *buf, size_t size, int64_t deadline)
{
    size_t scanned = 0;

    if (s == NULL || sep == NULL || seplen == 0 || buf == NULL || size == 0) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        size_t have = s->rend - s->rpos;
        const char *at = NULL;

        if (have >= seplen)
            at = memmem(s->rbuf + s->rpos + scanned, have - scanned, sep,
                        seplen);
        if (at != NULL) {
            size_t len = (size_t)(at - (s->rbuf + s->rpos)) + seplen;

            if (len > size - 1 || len > s->limit) {
                errno = EMSGSIZE; /* nothing consumed */
                return -1;
            }
            take(s, buf, len);
            buf[len] = 0;
            return (ssize_t)len;
        }
        if (have >= s->limit) {
            errno = EMSGSIZE;
            return -1;
        }
        /* the separator may straddle what was scanned and what comes */
        scanned = have >= seplen ? have - seplen + 1 : 0;
        {
            ssize_t got = fill(s, 0, deadline);

            if (got == -1)
                return -1;
            if (got == 0) {
                errno = EPIPE;
                return -1;
            }
        }
    }
}

ssize_t corio_stream_readline(corio_stream *s, char *buf, size_t size,
                              int64_t deadline)
{
    ssize_t n = corio_stream_readuntil(s, "\n", 1, buf, size, deadline);
    size_t have;

    if (n >= 0 || errno != EPIPE)
        return n;
    /* end of stream: the last line has no newline */
    have = s->rend - s->rpos;
    if (have > size - 1) {
        errno = EMSGSIZE;
        return -1;
    }
    take(s, buf, have);
    buf[have] = 0;
    return (ssize_t)have;
}

/* ---- Writing ------------------------------------------------------------------ */

/* Send what the socket takes now. Returns 0 (possibly with bytes left), or
 * -1 with errno, which also sticks in s->werr. */
static int flush_now(corio_stream *s)
{
    while (s->wpos < s->wend) {
        ssize_t put = send(s->fd, s->wbuf + s->wpos, s->wend - s->wpos,
                           MSG_NOSIGNAL);

        if (put >= 0) {
            s->wpos += (size_t)put;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        s->werr = errno;
        return -1;
    }
    if (s->wpos == s->wend)
        s->wpos = s->wend = 0;
    return 0;
}

static int wbuf_append(corio_stream *s, const void *buf, size_t n)
{
    size_t have = s->wend - s->wpos, cap;
    char *p;

    if (s->wpos > 0 && n > s->wcap - s->wend) {
        memmove(s->wbuf, s->wbuf + s->wpos, have);
        s->wpos = 0;
        s->wend = have;
    }
    if (n > s->wcap - s->wend) {
        cap = s->wcap ? s->wcap : READ_CHUNK;
        while (cap - s->wend < n)
            cap *= 2;
        p = realloc(s->wbuf, cap);
        if (p == NULL)
            return -1;
        s->wbuf = p;
        s->wcap = cap;
    }
    memcpy(s->wbuf + s->wend, buf, n);
    s->wend += n;
    return 0;
}

int corio_stream_write(corio_stream *s, const void *buf, size_t n)
{
    if (s == NULL || (buf == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (s->werr != 0) {
        errno = s->werr;
        return -1;
    }
    if (wbuf_append(s, buf, n) == -1)
        return -1;
    return flush_now(s);
}

/* Wait until at most `most` bytes are left to send. */
static int drain_to(corio_stream *s, size_t most, int64_t deadline)
{
    for (;;) {
        if (s->werr != 0) {
            errno = s->werr;
            return -1;
        }
        if (flush_now(s) == -1)
            return -1;
        if (s->wend - s->wpos <= most)
            return 0;
        /* flush_now stopped at EAGAIN */
        if (corio__wait_fd(s->fd, CORIO_WRITE, deadline, true) == -1)
            return -1;
    }
}

int corio_stream_drain(corio_stream *s, int64_t deadline)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    return drain_to(s, s->high_water, deadline);
}

int corio_stream_shutdown(corio_stream *s, int64_t deadline)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (drain_to(s, 0, deadline) == -1)
        return -1;
    if (shutdown(s->fd, SHUT_WR) == -1)
        return -1;
    s->werr = EPIPE; /* nothing more can be written */
    return 0;
}
