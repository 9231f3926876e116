/* include/corio/io.h -- sockets and buffered streams. Part of corio.h.
 *
 * Every call here suspends only the calling task (or, on the thread's own
 * stack, runs the loop until it is done), takes an absolute deadline
 * (-1: none) where it may wait, and fails with -1 and errno: ETIMEDOUT when
 * the deadline passes, ECANCELED when the task is cancelled, the system's
 * errno otherwise (ECONNREFUSED, ECONNRESET, EPIPE: the peer closed, ...),
 * and corio's own codes (corio/error.h) where the system has none:
 * CORIO_EUNKNOWNHOST, CORIO_EEOF. Sockets are plain file descriptors,
 * non-blocking and close-on-exec; close them with corio_fd_close, which
 * also tells the loop.
 *
 * Addresses are text: "127.0.0.1:8080", "[::1]:8080", ":8080" (every IPv4
 * address, for listening), "unix:/path/to/socket". corio_socket_connect and
 * corio_stream_connect also take "host.name:port": the name is resolved
 * without blocking the loop (c-ares: /etc/hosts, then resolv.conf's
 * servers) and its addresses are raced (happy eyeballs, RFC 8305: the
 * next starts when one fails or after 250 ms without an answer; the first
 * to connect wins). A port is decimal digits up to 65535; anything else
 * ("65616", "80x", "-1") is EINVAL, never another port.
 *
 * A size above SSIZE_MAX is EINVAL. Cancellation sticks at every call that
 * may wait, even when it need not: once the task is cancelled (or its
 * scope's deadline has passed) the call fails with ECANCELED (ETIMEDOUT)
 * before it starts, and takes nothing. A task whose calls keep completing
 * without waiting yields to the rest of its loop after a budget (128
 * operations or 1 MiB, docs/io.md "Fairness"). */
#ifndef CORIO_IO_H
#define CORIO_IO_H

#include "corio/coro.h"
#include "corio/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Addresses ----------------------------------------------------------- */

typedef struct corio_addr {
    socklen_t len;
    struct sockaddr_storage ss;
} corio_addr;

/* Parse text (see above) into *a. Returns 0, or -1 with EINVAL. */
CORIO_EXPORT int corio_addr_parse(corio_addr *a, const char *text);

/* Write a as text ("1.2.3.4:80", "[::1]:80", "unix:/p") into buf. Returns
 * the length, or -1 with EINVAL (unknown family) or ENOSPC (buf too small). */
CORIO_EXPORT int corio_addr_format(const corio_addr *a, char *buf, size_t size);

/* ---- Names --------------------------------------------------------------- */

/* Resolve host (a name, or a numeric address) and port (decimal digits up
 * to 65535, or a service name such as "http") into at most max addresses
 * (family AF_UNSPEC, AF_INET or AF_INET6), in the resolver's order.
 * Returns the count (>= 1), or -1 with errno: CORIO_EUNKNOWNHOST (no such
 * name, or no address of that family; corio_strerror says "unknown
 * host"), ETIMEDOUT (deadline, or the servers did not answer), ECANCELED,
 * ECONNREFUSED, EINVAL (bad input, a port out of range), EIO (another
 * resolver failure), ENOSYS (built without c-ares). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dns_resolve(const char *host, const char *port, int family,
                               corio_addr *out, size_t max, int64_t deadline);

/* The DNS servers this thread's lookups ask, as c-ares's CSV
 * ("127.0.0.1:5353,[::1]:53"); NULL: resolv.conf's again. Returns 0 or -1. */
CORIO_EXPORT int corio_dns_set_servers(const char *csv);

/* ---- Stream sockets: TCP and Unix ---------------------------------------- */

/* Options of a stream (corio_stream_new); zero fields take the default. */
typedef struct corio_stream_opts {
    size_t limit;       /* longest line/readuntil/buffered read; 0: 64 KiB */
    size_t high_water;  /* drain waits while more is buffered; 0: 64 KiB */
} corio_stream_opts;

/* A TLS context (corio/tls.h). */
typedef struct corio_tls corio_tls;

/* Options of a listening socket and a server; zero fields take the
 * default, and opts may be NULL for all defaults. */
typedef struct corio_listen_opts {
    int backlog;        /* 0: SOMAXCONN */
    bool reuseport;     /* SO_REUSEPORT (SO_REUSEADDR is always on) */
    bool nagle;         /* keep Nagle's algorithm on accepted connections:
                           TCP_NODELAY is set on them unless this is true */
    corio_stream_opts stream; /* the streams of a server's connections */
    /* Servers: TLS on every connection (a server context, kept until the
     * server stops). The handshake runs in the connection's task before
     * the handler; a connection whose handshake fails or takes longer
     * than tls_timeout (ns; 0: 60 s, asyncio's default) is closed without
     * calling the handler. */
    corio_tls *tls;
    int64_t tls_timeout;
} corio_listen_opts;

/* A listening socket on addr (opts may be NULL). A Unix socket's path is
 * unlinked first if it is a stale socket. Returns the fd, or -1 with errno
 * (EADDRINUSE, EINVAL, EACCES, ...). */
CORIO_EXPORT int corio_socket_listen(const char *addr, const corio_listen_opts *opts);

/* The address a socket is bound to (its port, after listening on port 0). */
CORIO_EXPORT int corio_socket_name(int fd, corio_addr *a);

/* Accept a connection on lfd, waiting until one comes or deadline. peer
 * (may be NULL) receives its address. Returns the new fd (non-blocking,
 * close-on-exec), or -1 with errno (ETIMEDOUT, ECANCELED, EMFILE, ...). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_socket_accept(int lfd, corio_addr *peer, int64_t deadline);

/* Options of an outgoing connection; zero fields (or opts NULL) take the
 * default. */
typedef struct corio_connect_opts {
    bool nagle;         /* keep Nagle's algorithm: TCP_NODELAY is set on a
                           TCP connection unless this is true (asyncio's
                           default) */
} corio_connect_opts;

/* Connect to addr (a host name is resolved, and its addresses raced as
 * above). Returns the fd, or -1 with errno (ECONNREFUSED, ETIMEDOUT,
 * ECANCELED, ENETUNREACH, CORIO_EUNKNOWNHOST: no such name, ...); nothing is
 * left open on failure. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_socket_connect(const char *addr,
                                      const corio_connect_opts *opts,
                                      int64_t deadline);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_socket_connect_addr(const corio_addr *a,
                                           const corio_connect_opts *opts,
                                           int64_t deadline);

/* Read up to n bytes, waiting for some. Returns the count, 0 at end of
 * stream, or -1 with errno (ECONNRESET, ETIMEDOUT, ECANCELED, ...). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_fd_read(int fd, void *buf, size_t n, int64_t deadline);

/* Write all n bytes (partial writes are continued). Returns n, or -1 with
 * errno (EPIPE: the peer closed; ECONNRESET, ETIMEDOUT, ECANCELED). A write
 * that fails part-way has sent an unknown prefix: treat the connection as
 * broken. Never raises SIGPIPE. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_fd_write(int fd, const void *buf, size_t n,
                                 int64_t deadline);

/* Close fd after telling the loop (waiters on it fail with EBADF). */
CORIO_EXPORT int corio_fd_close(int fd);

/* ---- Datagram sockets: UDP ----------------------------------------------- */

/* A UDP socket bound to addr (port 0: a free port; NULL: an IPv4 socket
 * that the system binds when it first sends). Returns the fd, or -1 with
 * errno (EINVAL for a Unix address). */
CORIO_EXPORT int corio_udp_open(const char *addr);

/* Connect a UDP socket to addr: datagrams go there when corio_udp_sendto gets
 * no address, only its datagrams are received, and an ICMP error from it
 * fails the next call with ECONNREFUSED. Returns 0, or -1 with errno. */
CORIO_EXPORT int corio_udp_connect(int fd, const char *addr);

/* Send one datagram to `to` (NULL: the connected peer), waiting while the
 * socket's buffer is full. Returns n, or -1 with errno (EMSGSIZE: too big
 * for one datagram; EDESTADDRREQ: no address and not connected). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_udp_sendto(int fd, const void *buf, size_t n,
                                  const corio_addr *to, int64_t deadline);

/* Receive one datagram, waiting for it; from (may be NULL) gets the
 * sender. Returns the bytes copied (at most n: the rest of a longer
 * datagram is dropped), or -1 with errno (ECONNREFUSED on a connected
 * socket whose peer has no such port, ETIMEDOUT, ECANCELED). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_udp_recvfrom(int fd, void *buf, size_t n,
                                    corio_addr *from, int64_t deadline);

/* ---- Servers ------------------------------------------------------------- */

/* A server accepts in a task of its own and runs handler(stream, arg) in a
 * task per connection, all in one task group (asyncio's start_server, with
 * Trio's structure); the stream is closed when the handler returns. A
 * handler that returns, whatever happened on its connection, ends only its
 * own connection. A handler that ends its task with corio_task_fail fails
 * the group, as in Trio: the other handlers are cancelled, the server stops
 * accepting, and corio_server_stop reports the error. */
typedef struct corio_server corio_server;
typedef struct corio_stream corio_stream;
typedef void (*corio_conn_fn)(corio_stream *s, void *arg);

/* Listen on addr (opts as corio_socket_listen; opts->stream for the connections'
 * streams) and start serving. Returns the server, or NULL with errno
 * (EINVAL: no handler, a bad address; EADDRINUSE, ENOMEM, ...). */
CORIO_EXPORT corio_server *corio_server_start(const char *addr,
                                       const corio_listen_opts *opts,
                                       corio_conn_fn handler, void *arg);

/* The listening socket (for corio_socket_name). */
CORIO_EXPORT int corio_server_fd(const corio_server *s);

/* Connections being handled now. */
CORIO_EXPORT size_t corio_server_connections(const corio_server *s);

/* Stop: close the listening socket, let the handlers finish until deadline,
 * then cancel those still running and wait for them (asyncio's close and
 * wait_closed); free the server. Returns 0, or -1 with errno: ETIMEDOUT if
 * some handlers had to be cancelled, ECANCELED if the caller was cancelled
 * (the handlers are cancelled then), a handler's corio_task_fail error; the
 * server is freed all the same. EDEADLK (called from one of s's own
 * handlers, which it would wait for: the refusal of an object in use)
 * leaves s as it was. corio_server_stop(NULL) returns 0. */
CORIO_EXPORT int corio_server_stop(corio_server *s, int64_t deadline);

/* ---- Streams: buffered reading and writing (asyncio's StreamReader and
 * StreamWriter, in one object) ------------------------------------------ */

/* A stream is used by one task at a time for reading (a read call made
 * while another task's waits fails with EBUSY) and by any number of tasks
 * for writing and draining. Closing it while other tasks wait in calls on
 * it makes those calls fail with EBADF. The calls that wait take an
 * absolute deadline and honour deadline scopes (ETIMEDOUT), fail with
 * ECANCELED when the task is cancelled, and consume nothing on failure. */

/* A stream over a connected socket or a pipe, which the stream then owns
 * (closed by corio_stream_close). opts may be NULL. NULL with errno ENOMEM,
 * EINVAL (fd < 0). corio_stream_connect is corio_socket_connect (addr as there)
 * and corio_stream_new with default options. */
CORIO_EXPORT corio_stream *corio_stream_new(int fd,
                                            const corio_stream_opts *opts);
CORIO_WARN_UNUSED
CORIO_EXPORT corio_stream *corio_stream_connect(const char *addr,
                                                int64_t deadline);

/* Read up to n bytes: what is buffered, else what one read brings. Returns
 * the count, 0 at end of stream, or -1 with errno. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_stream_read(corio_stream *s, void *buf, size_t n,
                                       int64_t deadline);

/* Read exactly n bytes. Returns n, or -1 with errno: CORIO_EEOF if the
 * stream ended first (asyncio's IncompleteReadError: the bytes that came
 * stay buffered: corio_stream_buffered tells how many, corio_stream_read
 * takes them, as IncompleteReadError.partial). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_stream_readexactly(corio_stream *s, void *buf,
                                              size_t n, int64_t deadline);

/* Read up to and including sep (seplen bytes) into buf (size bytes; a NUL
 * is added, so size must exceed the length). Returns the length with sep,
 * or -1 with errno: CORIO_EEOF if the stream ended before sep (the partial
 * data stays buffered), EMSGSIZE if no sep within the limit or within size - 1
 * bytes (nothing is consumed: the stream stays usable, e.g. to read the
 * data in pieces with corio_stream_read). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_stream_readuntil(corio_stream *s, const void *sep,
                                            size_t seplen, char *buf,
                                            size_t size, int64_t deadline);

/* readuntil(s, "\n", ...). At end of stream, returns what is left (without
 * a newline), then 0: asyncio's readline. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_stream_readline(corio_stream *s, char *buf,
                                           size_t size, int64_t deadline);

/* Bytes buffered for reading. */
CORIO_EXPORT size_t corio_stream_buffered(const corio_stream *s);

/* Buffer n bytes for writing (sending what the socket takes now). Does not
 * wait: call corio_stream_drain. Returns 0, or -1 with errno: EPIPE after a
 * shutdown, the error of a failed write (EPIPE, ECONNRESET: it sticks, the
 * write side is broken), ENOMEM (nothing buffered). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_stream_write(corio_stream *s, const void *buf, size_t n);

/* Wait until the write buffer is at or below the high-water mark
 * (backpressure). Returns 0, or -1 with errno (EPIPE, ECONNRESET,
 * ETIMEDOUT, ECANCELED, EBADF: closed by another task). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_stream_drain(corio_stream *s, int64_t deadline);

/* Bytes buffered for writing. */
CORIO_EXPORT size_t corio_stream_pending(const corio_stream *s);

/* Send everything buffered, then shut the write side (the peer reads end of
 * stream; reading still works). Returns 0 or -1 with errno. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_stream_shutdown(corio_stream *s, int64_t deadline);

/* The socket under the stream, or -1 with EBADF once it is closed. */
CORIO_EXPORT int corio_stream_fd(const corio_stream *s);

/* Close the socket and free the stream (once the calls of other tasks on
 * it have failed with EBADF); what is still buffered for writing is dropped
 * (drain first). Call it once. Returns close's result; NULL returns 0. */
CORIO_EXPORT int corio_stream_close(corio_stream *s);

#ifdef __cplusplus
}
#endif
#endif
