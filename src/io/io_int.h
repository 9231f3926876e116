/* src/io/io_int.h -- the io layer's internals: the transport interface that
 * streams are built on, and the stream object shared by stream.c (the
 * object and reading) and stream_write.c (writing, drain, shutdown).
 *
 * A transport moves bytes for one stream. transport_fd.c is the transport
 * of plain sockets (TCP, Unix) and pipes; tls.c's (OpenSSL over a socket)
 * implements the same five calls and takes a plain stream's place once its
 * handshake is done (corio_stream_start_tls), so every stream call
 * (readline, drain, ...) works over TLS unchanged. A transport of one's own
 * embeds struct corio__transport as its first member and is given to
 * corio__stream_new_transport (the tests do). */
#ifndef CORIO_IO_INT_H
#define CORIO_IO_INT_H

#include "corio/io.h"
#include "../base/list.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct corio__transport;

/* What a transport does. read and write never wait: when they cannot move
 * a byte now they fail with EAGAIN and set *want to what must happen first
 * (CORIO_READ or CORIO_WRITE: a TLS read may need the socket writable); the
 * stream then calls wait(want) and tries again. EINTR is tried again too.
 * Other errors are the stream's errors (ECONNRESET, EPIPE, ...). */
struct corio__transport_ops {
    const char *name;   /* "fd", "tls" */

    /* Read up to n bytes. Returns the count, 0 at end of stream, or -1. */
    ssize_t (*read)(struct corio__transport *t, void *buf, size_t n,
                    unsigned *want);

    /* Write up to n (> 0) bytes. Returns the count (> 0), or -1. Never
     * raises SIGPIPE. After EAGAIN the same bytes are offered again, maybe
     * at another address (for OpenSSL: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
     * and SSL_MODE_ENABLE_PARTIAL_WRITE). */
    ssize_t (*write)(struct corio__transport *t, const void *buf, size_t n,
                     unsigned *want);

    /* Wait until `events` (one direction) may let read or write
     * progress, or deadline (corio_fd_wait's contract: the ready events,
     * or -1 with ETIMEDOUT, ECANCELED, EBADF). If the stream is closed
     * meanwhile the wait fails with EBADF; it must not touch t once
     * woken. The stream calls it for at most one task per direction (the
     * loop takes one waiter per direction of an fd): a TLS read that
     * wants CORIO_WRITE while another task drains waits behind the
     * drainer instead (corio__stream_wait). */
    int (*wait)(struct corio__transport *t, unsigned events,
                int64_t deadline);

    /* End the write side: the peer reads end of stream (TLS: close_notify,
     * then the socket's shutdown). Never waits: -1 with EAGAIN and *want
     * as read and write. Returns 0 or -1. */
    int (*shutdown)(struct corio__transport *t, unsigned *want);

    /* Release the transport and close its fd (corio_fd_close: waiters on it
     * fail with EBADF) without waiting. Returns close's result. */
    int (*close)(struct corio__transport *t);
};

/* A transport: ops and the fd the loop waits on. Transports that need more
 * state embed this as their first member. */
struct corio__transport {
    const struct corio__transport_ops *ops;
    int fd;
};

/* The transport of plain file descriptors (sockets, pipes). Its close
 * closes the fd and frees nothing: it lives inside the stream. */
extern const struct corio__transport_ops corio__transport_fd;

/* A stream over t, which the stream then owns (its close is called by
 * corio_stream_close). On failure (NULL, errno ENOMEM or EINVAL) t is left
 * to the caller. */
corio_stream *corio__stream_new_transport(struct corio__transport *t,
                                          const corio_stream_opts *opts);

/* A port as text: decimal digits only, 0 to 65535, nothing after
 * (socket.c). Returns 0, or -1 (no errno): out of range, a sign, hex,
 * junk. */
int corio__port_parse(const char *s, uint16_t *port);

/* Take a reference to a TLS context (tls.c); corio_tls_free drops one. */
corio_tls *corio__tls_ref(corio_tls *tls);

/* True if tls is a server context. */
bool corio__tls_is_server(const corio_tls *tls);

/* ---- The stream object ----------------------------------------------------
 *
 *   rbuf: [ consumed | buffered for reading | room ]
 *         0          rpos                   rend   rcap
 *   wbuf: [ sent     | pending, not yet sent | room ]
 *         0          wpos                    wend   wcap
 *
 * A call that waits holds the stream (busy > 0): if another task closes it
 * meanwhile, the call fails with EBADF when it wakes, and the last call to
 * leave frees the memory.
 *
 * One task at a time waits on the transport for each direction (`waiting`);
 * another call that needs the same direction (a second drainer, a TLS read
 * that must write) waits in `followers` until that wait ends, then tries
 * again. */
struct corio_stream {
    struct corio__transport *t;     /* what the bytes go through */
    struct corio__transport fdt;    /* t for a plain fd */
    size_t limit;                   /* longest line a readuntil buffers */
    size_t high_water;              /* drain waits while more is pending */
    char *rbuf;                     /* the read buffer, NULL until used */
    size_t rcap, rpos, rend;
    char *wbuf;                     /* the write buffer, NULL until used */
    size_t wcap, wpos, wend;
    unsigned wwant;                 /* what the last short write waits for */
    unsigned waiting;               /* directions a task waits on t for */
    struct corio__list followers;   /* tasks waiting behind those waits */
    int werr;                       /* sticky write error (EPIPE after a
                                       shutdown); 0: none */
    bool eof;                       /* the peer's end of stream was read */
    bool reading;                   /* a read call is in progress */
    bool closed;                    /* corio_stream_close was called */
    unsigned busy;                  /* calls in progress that may wait */
};

/* Start a call that may wait: -1 with EBADF if the stream is closed. */
int corio__stream_enter(corio_stream *s);

/* End it: returns rc with errno kept, and frees a closed stream that no
 * other call holds. */
ssize_t corio__stream_leave(corio_stream *s, ssize_t rc);

/* Wait until the transport may move bytes in direction `events`
 * (CORIO_READ or CORIO_WRITE), or until the task already waiting for that
 * direction wakes: either way the caller tries again. Returns >= 0, or -1
 * with errno (ETIMEDOUT, ECANCELED; EBADF if the stream was closed
 * meanwhile). */
int corio__stream_wait(corio_stream *s, unsigned events, int64_t deadline);

/* The cooperative budget (corio__budget_spend) before a step of a call
 * that may complete without waiting, bytes its most: -1 with errno
 * (ECANCELED; EBADF if another task closed the stream while this one
 * yielded). The caller holds the stream (corio__stream_enter). */
int corio__stream_spend(corio_stream *s, size_t bytes);

/* Wake the followers (err 0: try again; EBADF: the stream is closed). */
void corio__stream_wake_followers(corio_stream *s, int err);

/* Parsing in place (the http layer reads a request where the stream
 * buffered it: s->rbuf + s->rpos up to s->rend). _fill reads more into
 * the buffer (growing it when it is full), waiting for some, and takes
 * nothing: the count, 0 at end of stream, or -1 with errno as
 * corio_stream_read. _consume takes n buffered bytes (n at most
 * s->rend - s->rpos). */
ssize_t corio__stream_fill(corio_stream *s, int64_t deadline);
void corio__stream_consume(corio_stream *s, size_t n);

/* Wait until at most `most` bytes are left to write (stream_write.c). */
int corio__stream_drain_to(corio_stream *s, size_t most, int64_t deadline);

#endif
