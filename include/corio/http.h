/* include/corio/http.h -- HTTP/1.1: headers, the server framework
 * (aiohttp.web's model) and, later, the client. Part of corio.h.
 *
 * Parsing is llhttp's (Node.js's parser), in strict mode: a request that
 * RFC 9112 calls invalid (Content-Length with Transfer-Encoding, two
 * different lengths, a Transfer-Encoding that does not end in chunked, a
 * bad chunk size, obs-fold, space before a colon, a bare CR, a NUL or
 * another control byte in a header, HTTP/1.1 without Host, an
 * absolute-form target naming another host) is answered 400 with
 * `Connection: close`, and nothing after it on that connection runs.
 * Limits (corio_http_limits) answer 414 (request line), 431 (header block,
 * header count), 413 (body) and 505 (a version other than 1.0 and 1.1).
 *
 * The server runs one task per connection; a handler is a coroutine: it
 * may sleep, read the body, call other servers, without blocking the
 * loop. It fills the response it is given and returns 0; a handler that
 * returns -1 gets a 500 without details (what errno said goes to the
 * access log's stream, stderr by default, never to the client), and the
 * server goes on.
 *
 *     static int hello(corio_http_request *req, corio_http_response *res,
 *                      void *arg)
 *     {
 *         return corio_http_response_printf(res, "<h1>hello, %s!</h1>",
 *                                           corio_http_request_param(req, "name"));
 *     }
 *     corio_http_app *app = corio_http_app_new();
 *     corio_http_app_route(app, "GET", "/hello/{name}", hello, NULL);
 *     corio_http_server *srv = corio_http_server_start("127.0.0.1:8000", app, NULL);
 *     ...
 *     corio_http_server_stop(srv, corio_now() + 5 * CORIO_SECOND);
 *     corio_http_app_free(app);
 *
 * Strings given out by a request or response (header values, parameters,
 * the path) live until the handler returns; copy what must live longer. */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H

#include "corio/io.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* jansson's value (<jansson.h>); corio does not include it here. */
struct json_t;

/* ---- Headers ------------------------------------------------------------- */

/* An ordered list of header fields: lookups ignore the case of the name,
 * repeated fields are kept in the order they came (Set-Cookie, Via, ...).
 * Names and values are copied in; the strings given out are NUL-terminated
 * and live until the list changes or is freed. */
typedef struct corio_http_headers corio_http_headers;

/* A new empty list, or NULL with ENOMEM. */
CORIO_EXPORT corio_http_headers *corio_http_headers_new(void);

/* Free the list. Returns 0; NULL returns 0. */
CORIO_EXPORT int corio_http_headers_free(corio_http_headers *h);

/* Empty the list (its memory is kept for reuse). */
CORIO_EXPORT void corio_http_headers_clear(corio_http_headers *h);

/* Append a field. name must be a token (RFC 9110: letters, digits and
 * !#$%&'*+-.^_`|~), value must hold no CR, LF or NUL (leading and
 * trailing spaces and tabs are dropped). Returns 0, or -1 with errno:
 * EINVAL (a bad name or value), ENOMEM. _add_n takes lengths (the value
 * may then hold anything but CR, LF and NUL). */
CORIO_EXPORT int corio_http_headers_add(corio_http_headers *h, const char *name,
                                        const char *value);
CORIO_EXPORT int corio_http_headers_add_n(corio_http_headers *h,
                                          const char *name, size_t name_len,
                                          const char *value, size_t value_len);

/* Replace every field called name by one field (appended). Returns 0, or
 * -1 with errno as _add. */
CORIO_EXPORT int corio_http_headers_set(corio_http_headers *h, const char *name,
                                        const char *value);

/* Remove every field called name. Returns how many were removed. */
CORIO_EXPORT size_t corio_http_headers_remove(corio_http_headers *h,
                                              const char *name);

/* The value of the first field called name, or NULL (errno ENOENT). */
CORIO_EXPORT const char *corio_http_headers_get(const corio_http_headers *h,
                                                const char *name);

/* Iterate the fields called name: *pos starts at 0; each call returns the
 * next value and advances *pos, then NULL when there are no more. */
CORIO_EXPORT const char *corio_http_headers_next(const corio_http_headers *h,
                                                 const char *name, size_t *pos);

/* True if a field called name holds token in its comma-separated list,
 * ignoring case ("Connection: keep-alive, Upgrade" has "upgrade"). */
CORIO_EXPORT bool corio_http_headers_has_token(const corio_http_headers *h,
                                               const char *name,
                                               const char *token);

/* The number of fields, and the i-th one (in order): 0, or -1 with
 * EINVAL (i out of range). name or value may be NULL. */
CORIO_EXPORT size_t corio_http_headers_count(const corio_http_headers *h);
CORIO_EXPORT int corio_http_headers_at(const corio_http_headers *h, size_t i,
                                       const char **name, const char **value);

/* ---- Limits -------------------------------------------------------------- */

/* What a parser accepts; zero fields take the default. */
typedef struct corio_http_limits {
    size_t request_line;   /* method + target + version; 0: 8 KiB (414) */
    size_t header_bytes;   /* the whole header block; 0: 16 KiB (431) */
    size_t header_count;   /* fields; 0: 100 (431) */
    size_t body;           /* a body read whole, or streamed: 0: 1 MiB (413) */
} corio_http_limits;

/* The reason phrase of a status ("Not Found"), "" for an unknown one. */
CORIO_EXPORT const char *corio_http_status_reason(int status);

/* ---- Server: applications, routes, middlewares --------------------------- */

typedef struct corio_http_app corio_http_app;
typedef struct corio_http_request corio_http_request;
typedef struct corio_http_response corio_http_response;
typedef struct corio_http_server corio_http_server;
typedef struct corio_http_next corio_http_next;

/* A handler fills res and returns 0; -1 (errno set) answers 500 unless
 * the response was already sent (then the connection is closed). */
typedef int (*corio_http_handler_fn)(corio_http_request *req,
                                     corio_http_response *res, void *arg);

/* A middleware wraps what comes after it (the next middlewares and the
 * handler): it may look at the request, answer by itself (not calling
 * next), call corio_http_next_call and then change the response, or map
 * an error to a response of its own. Returns as a handler. */
typedef int (*corio_http_middleware_fn)(corio_http_request *req,
                                        corio_http_response *res,
                                        corio_http_next *next, void *arg);

/* Run the rest of the onion (the next middleware, finally the handler).
 * Returns what it returned. Call it at most once per middleware call. */
CORIO_EXPORT int corio_http_next_call(corio_http_next *next,
                                      corio_http_request *req,
                                      corio_http_response *res);

/* A new application (a router and its middlewares), or NULL with ENOMEM.
 * An app is set up before its server starts and left unchanged while it
 * serves; one app may serve several servers (and threads: it is only
 * read). */
CORIO_EXPORT corio_http_app *corio_http_app_new(void);

/* Free an app (not its mounted sub-apps: their creator frees them).
 * Returns 0; -1 with EBUSY while a server uses it. NULL returns 0. */
CORIO_EXPORT int corio_http_app_free(corio_http_app *app);

/* Route method ("GET", "POST", ...; "*" for any) on pattern to handler.
 * A pattern is a path of segments: plain text ("/users"), a parameter
 * that takes one segment ("{name}"), a typed one ("{id:\\d+}", a POSIX
 * extended regex the whole segment must match), or a tail that takes the
 * rest of the path, slashes and all ("{tail:.*}", last only). Plain
 * routes are tried before patterns, patterns in the order added. HEAD is
 * answered by the GET route (without the body) unless HEAD is routed. A
 * path with no route is 404; a path routed for other methods only is 405
 * with `Allow`. Returns 0, or -1 with errno: EINVAL (a bad method,
 * pattern or regex), EEXIST (the same method and pattern twice), ENOMEM. */
CORIO_EXPORT int corio_http_app_route(corio_http_app *app, const char *method,
                                      const char *pattern,
                                      corio_http_handler_fn handler, void *arg);

/* Add a middleware; the first added is the outermost. Returns 0 or -1
 * (EINVAL, ENOMEM). */
CORIO_EXPORT int corio_http_app_use(corio_http_app *app,
                                    corio_http_middleware_fn mw, void *arg);

/* Mount sub under prefix ("/api": "/api/users" goes to sub's "/users"):
 * sub's routes see the path without the prefix (corio_http_request_path
 * still gives the whole path), and its middlewares run inside app's. sub
 * must outlive app. Returns 0 or -1 (EINVAL: a prefix not starting with
 * '/' or ending with one, sub == app; ENOMEM). */
CORIO_EXPORT int corio_http_app_mount(corio_http_app *app, const char *prefix,
                                      corio_http_app *sub);

/* Options of a static directory; zero fields take the default. */
typedef struct corio_http_static_opts {
    bool follow_symlinks;   /* serve symlinks that stay inside root */
    const char *index;      /* file served for a directory; NULL: none (404) */
} corio_http_static_opts;

/* Serve the files under root at prefix (GET and HEAD): sendfile on plain
 * connections, ETag and Last-Modified with 304 (If-None-Match first, then
 * If-Modified-Since in any of RFC 9110's three date forms; an invalid
 * date is ignored), Range with 206 and 416 (If-Range by strong ETag or
 * exact date, else the whole file; several ranges: multipart/byteranges,
 * but more than 16 or more bytes than the file: 200), a Content-Type by
 * extension. No path escapes root: `..` (also encoded),
 * NUL, and symlinks that lead out are 404 (403 for a symlink when
 * follow_symlinks is off). Returns 0 or -1 (EINVAL, ENOENT: no such root,
 * ENOMEM). */
CORIO_EXPORT int corio_http_app_static(corio_http_app *app, const char *prefix,
                                       const char *root,
                                       const corio_http_static_opts *opts);

/* ---- Server: running it -------------------------------------------------- */

/* Options of a server; zero fields take the default, opts may be NULL. */
typedef struct corio_http_server_opts {
    corio_listen_opts listen;  /* backlog, reuseport, tls: HTTPS (make
                                  the server context with .alpn =
                                  "http/1.1" to answer ALPN) */
    corio_http_limits limits;
    int64_t head_timeout;   /* ns to receive a request's head once its
                               first byte came; 0: 10 s (408, closed) */
    int64_t body_timeout;   /* ns between two pieces of a body; 0: 30 s */
    int64_t idle_timeout;   /* ns a keep-alive connection may wait for
                               the next request; 0: 15 s (closed) */
    int64_t write_timeout;  /* ns a response may take to be sent; 0: 60 s */
    bool gzip;              /* compress bodies of compressible types
                               (text, json, js, xml, svg) when the client
                               accepts gzip: whole bodies of 256 bytes or
                               more, and chunked streams (length -1) as a
                               stream flushed at each write */
    size_t max_connections; /* connections at once, 0: no limit; one
                               more is answered 503 with Retry-After: 1
                               and Connection: close in one write that
                               never waits (its request is not read),
                               then closed */
} corio_http_server_opts;

/* Listen on addr and serve app, in tasks of the calling thread's loop.
 * Returns the server, or NULL with errno (EINVAL: a bad address, app
 * NULL; EADDRINUSE, ENOMEM, ...). */
CORIO_EXPORT corio_http_server *corio_http_server_start(
    const char *addr, corio_http_app *app, const corio_http_server_opts *opts);

/* The listening socket (for corio_socket_name), and its port. */
CORIO_EXPORT int corio_http_server_fd(const corio_http_server *srv);
CORIO_EXPORT int corio_http_server_port(const corio_http_server *srv);

/* Graceful stop: stop accepting, close idle keep-alive connections, let
 * requests in flight finish until deadline (their connections close after
 * the response), then cancel what still runs; free the server. Returns 0,
 * or -1 with errno: ETIMEDOUT (some requests had to be cancelled),
 * ECANCELED (the caller was cancelled), EDEADLK (called from one of the
 * server's own handlers: nothing is done). NULL returns 0. */
CORIO_EXPORT int corio_http_server_stop(corio_http_server *srv, int64_t deadline);

/* Write an access log line per request in Common Log Format to f
 * (NULL: stop logging). Off by default. */
CORIO_EXPORT void corio_http_server_log(corio_http_server *srv, FILE *f);

/* Serve app on addr with n loops, one thread each, each with its own
 * listening socket (SO_REUSEPORT: the kernel spreads connections), until
 * SIGINT or SIGTERM, then stop them gracefully (5 s). n 0: one per CPU.
 * log: an access log (NULL: none). Call it on a thread outside any loop.
 * Returns 0, or -1 with errno (as corio_http_server_start; EINVAL: n too
 * big). */
CORIO_EXPORT int corio_http_serve(const char *addr, corio_http_app *app,
                                  const corio_http_server_opts *opts,
                                  unsigned n, FILE *log);

/* ---- Requests ------------------------------------------------------------ */

/* The method ("GET"), the raw target ("/a%20b?x=1"), the path
 * percent-decoded ("/a b"), the raw query ("x=1", "" when none), the
 * version (10 or 11). */
CORIO_EXPORT const char *corio_http_request_method(const corio_http_request *req);
CORIO_EXPORT const char *corio_http_request_target(const corio_http_request *req);
CORIO_EXPORT const char *corio_http_request_path(const corio_http_request *req);
CORIO_EXPORT const char *corio_http_request_query_string(const corio_http_request *req);
CORIO_EXPORT int corio_http_request_version(const corio_http_request *req);

/* A path parameter of the route, percent-decoded, or NULL. */
CORIO_EXPORT const char *corio_http_request_param(const corio_http_request *req,
                                                  const char *name);

/* The first query parameter called name, decoded ('+' is a space), or
 * NULL; _next iterates repeated ones as corio_http_headers_next. */
CORIO_EXPORT const char *corio_http_request_query(corio_http_request *req,
                                                  const char *name);
CORIO_EXPORT const char *corio_http_request_query_next(corio_http_request *req,
                                                       const char *name,
                                                       size_t *pos);

/* A header's first value (NULL if none), and all the headers. */
CORIO_EXPORT const char *corio_http_request_header(const corio_http_request *req,
                                                   const char *name);
CORIO_EXPORT const corio_http_headers *corio_http_request_headers(
    const corio_http_request *req);

/* The cookie called name (the Cookie header's pairs), or NULL. */
CORIO_EXPORT const char *corio_http_request_cookie(corio_http_request *req,
                                                   const char *name);

/* The peer's address. */
CORIO_EXPORT const corio_addr *corio_http_request_remote(const corio_http_request *req);

/* The body's length from Content-Length, or -1 (chunked, or none: then 0
 * bytes come). */
CORIO_EXPORT int64_t corio_http_request_content_length(const corio_http_request *req);

/* Read the next piece of the body (decoded from chunked), at most n
 * bytes: Returns the count, 0 at its end, or -1 with errno (EALREADY: the
 * body was read whole by corio_http_request_body; EMSGSIZE: over
 * the body limit: the server answers 413 if nothing was sent yet;
 * ETIMEDOUT: the body timeout; ECONNRESET, CORIO_EEOF: the client went
 * away; EPROTO: a bad chunk: 400). `Expect: 100-continue` is answered
 * at the first read. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_http_request_read(corio_http_request *req, void *buf,
                                             size_t n, int64_t deadline);

/* Read the whole body (at most the body limit) and give it out: *len its
 * length; NUL-terminated; it lives until the handler returns. Reading it
 * twice gives it again. NULL with errno as _read. */
CORIO_EXPORT const char *corio_http_request_body(corio_http_request *req,
                                                 size_t *len, int64_t deadline);

/* The body as JSON (jansson), or NULL with errno: EBADMSG (not JSON), and
 * as _body. The caller owns the value (json_decref). */
CORIO_EXPORT struct json_t *corio_http_request_json(corio_http_request *req,
                                                    int64_t deadline);

/* A field of an application/x-www-form-urlencoded body (read whole at
 * the first call), decoded; NULL if absent, or with errno as _body
 * (EBADMSG: not a url-encoded form; check errno == 0 for "absent"). */
CORIO_EXPORT const char *corio_http_request_form(corio_http_request *req,
                                                 const char *name,
                                                 int64_t deadline);

/* multipart/form-data, streamed: each call moves to the next part (the
 * rest of the previous one is skipped). Returns 1 (a part), 0 (no more),
 * or -1 with errno: EBADMSG (not multipart, a bad boundary), and as
 * _read. */
typedef struct corio_http_part {
    const char *name;          /* the field's name ("" if none) */
    const char *filename;      /* NULL for a plain field */
    const char *content_type;  /* "text/plain" if none */
    const corio_http_headers *headers;
} corio_http_part;
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_http_request_next_part(corio_http_request *req,
                                              corio_http_part *part,
                                              int64_t deadline);
/* Read the current part's data: as corio_http_request_read. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_http_request_read_part(corio_http_request *req,
                                                  void *buf, size_t n,
                                                  int64_t deadline);
/* Stream the current part's data into a new file at path (mode 0600;
 * EEXIST if it exists). Returns the bytes written, or -1 with errno (and
 * the file is removed). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_http_request_save_part(corio_http_request *req,
                                                  const char *path,
                                                  int64_t deadline);

/* ---- Responses ----------------------------------------------------------- */

/* A response starts as 200 with no headers and an empty body. Setting a
 * body replaces the previous one. Returns 0 or -1 (EINVAL: a status
 * outside 100..999, a bad header; ENOMEM; EALREADY once the head was
 * sent). */
CORIO_EXPORT int corio_http_response_status(corio_http_response *res, int status);
CORIO_EXPORT int corio_http_response_header(corio_http_response *res,
                                            const char *name, const char *value);
CORIO_EXPORT corio_http_headers *corio_http_response_headers(corio_http_response *res);
CORIO_EXPORT int corio_http_response_body(corio_http_response *res,
                                          const void *data, size_t n);
/* A formatted body, Content-Type "text/html; charset=utf-8" unless set. */
CORIO_EXPORT int corio_http_response_printf(corio_http_response *res,
                                            const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON body (compact), Content-Type application/json. json is not
 * stolen. */
CORIO_EXPORT int corio_http_response_json(corio_http_response *res,
                                          const struct json_t *json);
/* A cookie (Set-Cookie: name=value; attrs): attrs may be NULL or e.g.
 * "Path=/; HttpOnly". EINVAL for a name or value with ;, CR, LF. */
CORIO_EXPORT int corio_http_response_cookie(corio_http_response *res,
                                            const char *name,
                                            const char *value,
                                            const char *attrs);
/* The status set so far. */
CORIO_EXPORT int corio_http_response_get_status(const corio_http_response *res);

/* Streamed responses (aiohttp's StreamResponse). _prepare sends the head
 * now: with length >= 0 as Content-Length, with -1 chunked (HTTP/1.1; an
 * HTTP/1.0 client gets the body up to the connection's close). Then
 * _write sends pieces (each a chunk), waiting while the client is slow,
 * and _finish ends the body (the server finishes it when the handler
 * returns). Returns 0 or -1 with errno (EPIPE, ECONNRESET: the client went
 * away; ETIMEDOUT; EMSGSIZE: more than the length announced; EPROTO:
 * _finish before length bytes; EALREADY: prepared twice). */
CORIO_EXPORT int corio_http_response_prepare(corio_http_response *res,
                                             int64_t length, int64_t deadline);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_http_response_write(corio_http_response *res,
                                           const void *data, size_t n,
                                           int64_t deadline);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_http_response_finish(corio_http_response *res,
                                            int64_t deadline);

/* A body from a producer, run after the handler and the middlewares have
 * returned (so they may still change the head): produce(res, arg) calls
 * corio_http_response_write for each piece (an async generator's values,
 * server-sent events) and returns 0 at the end or -1 (the connection is
 * closed). length as _prepare. done(arg), if given, runs afterwards
 * whatever happened (to free arg). Returns 0 or -1 (EALREADY). */
typedef int (*corio_http_produce_fn)(corio_http_response *res, void *arg);
CORIO_EXPORT int corio_http_response_produce(corio_http_response *res,
                                             int64_t length,
                                             corio_http_produce_fn produce,
                                             void (*done)(void *arg), void *arg);

/* Protocol upgrade (WebSocket): send the head now with status 101 (the
 * handler has set Upgrade, Connection and the protocol's headers), and
 * give the connection's stream to the handler, which then speaks the new
 * protocol on it until it returns; bytes the client sent after the
 * request are in the stream's buffer already. The server closes the
 * stream when the handler returns (the handler must not). Returns the
 * stream, or NULL with errno (EALREADY: the head was sent; EINVAL: the
 * request is not an upgrade request (no Connection: upgrade) or HTTP/1.0;
 * EPIPE, ...). */
CORIO_EXPORT corio_stream *corio_http_response_upgrade(corio_http_response *res,
                                                       int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
