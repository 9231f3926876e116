/* src/io/stream_write.c -- the writing half of streams (io_int.h): write,
 * drain with a high-water mark (backpressure), shutdown of the write side.
 *
 * write() hands the transport what it takes at once and keeps the rest in
 * the write buffer; it never waits. drain() waits until at most high_water
 * bytes are left. Several tasks may drain one stream (a chat server's
 * broadcasts): the first waits on the transport, the others behind it
 * (corio__stream_wait), and each looks again when that wait ends. */
#include "io_int.h"
#include "corio/loop.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_CHUNK 4096

size_t corio_stream_pending(const corio_stream *s)
{
    return s != NULL ? s->wend - s->wpos : 0;
}

/* Send what the transport takes now. Returns 0, with bytes maybe left (and
 * s->wwant says what to wait for), or -1 with errno, which also sticks in
 * s->werr: after a failed write the stream's write side is broken. */
static int flush_now(corio_stream *s)
{
    while (s->wpos < s->wend) {
        unsigned want = CORIO_WRITE;
        ssize_t put = s->t->ops->write(s->t, s->wbuf + s->wpos,
                                       s->wend - s->wpos, &want);

        if (put > 0) {
            s->wpos += (size_t)put;
            continue;
        }
        if (put == -1 && errno == EINTR)
            continue;
        if (put == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            s->wwant = want;
            break;
        }
        s->werr = errno;
        return -1;
    }
    if (s->wpos == s->wend)
        s->wpos = s->wend = 0;
    return 0;
}

/* Append n > 0 bytes. Returns 0, or -1 with ENOMEM (nothing appended). */
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
        if (n > SIZE_MAX / 2 - s->wend) {
            errno = ENOMEM;
            return -1;
        }
        cap = s->wcap ? s->wcap : WRITE_CHUNK;
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
    if (s == NULL || (buf == NULL && n > 0) || n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (s->closed) {
        errno = EBADF;
        return -1;
    }
    if (s->werr != 0) {
        errno = s->werr;
        return -1;
    }
    if (n == 0)
        return 0;
    if (wbuf_append(s, buf, n) == -1)
        return -1;
    return flush_now(s);
}

/* Wait until at most `most` bytes are left to send. */
int corio__stream_drain_to(corio_stream *s, size_t most, int64_t deadline)
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
        if (corio__stream_wait(s, s->wwant, deadline) == -1)
            return -1;
    }
}

int corio_stream_drain(corio_stream *s, int64_t deadline)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__stream_enter(s) == -1)
        return -1;
    /* a peer that always takes what is sent never makes drain wait */
    if (corio__stream_spend(s, s->wend - s->wpos) == -1)
        return (int)corio__stream_leave(s, -1);
    return (int)corio__stream_leave(
        s, corio__stream_drain_to(s, s->high_water, deadline));
}

int corio_stream_shutdown(corio_stream *s, int64_t deadline)
{
    int rc;

    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__stream_enter(s) == -1)
        return -1;
    rc = corio__stream_drain_to(s, 0, deadline);
    while (rc == 0) {
        unsigned want = CORIO_WRITE;

        rc = s->t->ops->shutdown(s->t, &want);
        if (rc == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        rc = corio__stream_wait(s, want, deadline) == -1 ? -1 : 0;
    }
    if (rc == 0)
        s->werr = EPIPE; /* nothing more can be written */
    return (int)corio__stream_leave(s, rc);
}
