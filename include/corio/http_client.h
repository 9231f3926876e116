/* include/corio/http_client.h -- the HTTP/1.1 client (aiohttp's
 * ClientSession). Part of corio.h (through corio/http.h's types).
 *
 * A client is a session: a keep-alive pool of connections per host (at
 * most limit_per_host open at once; a request past the limit waits for a
 * connection, within its deadline), a cookie jar, and the options shared by
 * its requests. http:// and https:// (TLS through corio/tls.h, the server's
 * certificate verified by default).
 *
 *     corio_http_client *cl = corio_http_client_new(NULL);
 *     corio_http_client_response *r =
 *         corio_http_client_get(cl, "https://example.org/", deadline);
 *     size_t len;
 *     const char *body = corio_http_client_response_body(r, &len, deadline);
 *     ... corio_http_client_response_status(r) ...
 *     corio_http_client_response_close(r);   // the connection goes back
 *     corio_http_client_free(cl);
 *
 * A request returns once the response's head is in (status and headers);
 * the body is then read whole (_body) or in pieces (_read), decoded from
 * chunked and, when the server used it, from gzip or deflate. Redirects
 * (301, 302, 303, 307, 308) are followed up to max_redirects: 303, and 301
 * and 302 after a POST, become GET without a body; 307 and 308 repeat the
 * method and body. A request on a pooled connection that the server had
 * closed meanwhile is sent once more on a new connection, for the
 * idempotent methods only (GET, HEAD, PUT, DELETE, OPTIONS, TRACE).
 *
 * A client and its responses belong to one loop (one thread); any number of
 * tasks of that loop may make requests on one client at once. */
#ifndef CORIO_HTTP_CLIENT_H
#define CORIO_HTTP_CLIENT_H

#include "corio/http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_http_client corio_http_client;
typedef struct corio_http_client_response corio_http_client_response;

/* Options of a client; zero fields (or opts NULL) take the default. */
typedef struct corio_http_client_opts {
    size_t limit_per_host;      /* connections open at once per host
                                   (scheme, host, port); 0: 10 */
    int64_t keepalive_timeout;  /* ns an idle connection is kept; 0: 15 s */
    int max_redirects;          /* 0: 10; negative: redirects are returned,
                                   not followed */
    corio_tls *tls;             /* for https: a client context (kept by the
                                   client); NULL: one made by the client,
                                   verifying against the system's store */
    /* Of each response: status line (request_line), header block, header
     * count; body: the most a whole body may hold (_body, and a redirect's
     * body), decoded; 0: 16 MiB. */
    corio_http_limits limits;
    bool no_cookies;            /* no cookie jar: Set-Cookie is ignored */
    bool no_decompress;         /* no Accept-Encoding, bodies as sent */
    const char *user_agent;     /* copied; NULL: "corio" */
} corio_http_client_opts;

/* Options of one request; zero fields (or opts NULL) take the default. */
typedef struct corio_http_client_req_opts {
    const corio_http_headers *headers; /* extra fields (Host,
                                   Content-Length, Transfer-Encoding and
                                   Connection are the client's own and
                                   refused: EINVAL) */
    const char *const *query;   /* name, value, name, value, ..., NULL:
                                   percent-encoded and appended to the URL */
    const void *body;           /* sent with Content-Length */
    size_t body_len;
    bool no_redirects;          /* return a redirect as it came */
} corio_http_client_req_opts;

/* A new client. Returns it, or NULL with errno ENOMEM, EINVAL (a bad
 * option), or what corio_tls_client fails with. */
CORIO_EXPORT corio_http_client *corio_http_client_new(
    const corio_http_client_opts *opts);

/* Close the idle connections and free the client. Returns 0; -1 with
 * errno EBUSY (nothing done) while a response or request of it is open.
 * NULL returns 0. */
CORIO_EXPORT int corio_http_client_free(corio_http_client *cl);

/* Send method (a token: "GET", "POST", ...) to url ("http://host[:port]
 * /path?query" or https://) and wait for the response's head, until
 * deadline (the wait for a pooled connection, connect, TLS handshake,
 * sending, redirects and every head). Returns the response (close it with
 * corio_http_client_response_close), or NULL with errno: EINVAL (a bad
 * method, URL, scheme or header), ETIMEDOUT, ECANCELED, ECONNREFUSED,
 * CORIO_EUNKNOWNHOST, EPROTO (the server's answer is not HTTP/1.x, or the
 * TLS handshake failed), EMSGSIZE (a head over the limits), CORIO_EEOF (the
 * server closed without an answer), ELOOP (more redirects than
 * max_redirects), ECONNRESET, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_http_client_response *corio_http_client_request(
    corio_http_client *cl, const char *method, const char *url,
    const corio_http_client_req_opts *opts, int64_t deadline);

/* corio_http_client_request(cl, "GET", url, NULL, deadline). */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_http_client_response *corio_http_client_get(
    corio_http_client *cl, const char *url, int64_t deadline);

/* The status code (200), the reason phrase ("OK"), the header fields, the
 * HTTP version (10 or 11), and the URL the response came from (after
 * redirects). Valid until the response is closed. */
CORIO_EXPORT int corio_http_client_response_status(
    const corio_http_client_response *r);
CORIO_EXPORT const char *corio_http_client_response_reason(
    const corio_http_client_response *r);
CORIO_EXPORT const corio_http_headers *corio_http_client_response_headers(
    const corio_http_client_response *r);
CORIO_EXPORT int corio_http_client_response_version(
    const corio_http_client_response *r);
CORIO_EXPORT const char *corio_http_client_response_url(
    const corio_http_client_response *r);

/* Read up to n bytes of the body (decoded), waiting for some until
 * deadline. Returns the count, 0 at the end of the body, or -1 with errno:
 * ETIMEDOUT, ECANCELED (the response is then broken: close it), EPROTO (a
 * bad chunk, bad gzip data), CORIO_EEOF (the connection ended inside the
 * body), ECONNRESET, EINVAL (n is 0, or _body was called), EBUSY (another
 * task is reading it). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_http_client_response_read(
    corio_http_client_response *r, void *buf, size_t n, int64_t deadline);

/* Read the whole (rest of the) body, decoded, and return it (NUL-terminated,
 * *len its length; owned by r, valid until it is closed; calling again
 * returns it again). NULL with errno as _read, or EMSGSIZE (longer than the
 * client's limits.body). */
CORIO_WARN_UNUSED
CORIO_EXPORT const char *corio_http_client_response_body(
    corio_http_client_response *r, size_t *len, int64_t deadline);

/* Free the response. Its connection goes back to the pool when the body
 * was read to its end and the server keeps it alive; otherwise it is
 * closed. Returns 0; -1 with errno EBUSY (nothing done) while another task
 * is reading it (cancel that task first). NULL returns 0. */
CORIO_EXPORT int corio_http_client_response_close(
    corio_http_client_response *r);

/* The value of the cookie called name that a request to url would send,
 * or NULL (errno ENOENT). Valid until the jar changes. */
CORIO_EXPORT const char *corio_http_client_cookie(corio_http_client *cl,
                                                  const char *url,
                                                  const char *name);

/* Connections the client holds open now: idle in its pool and in use. */
CORIO_EXPORT size_t corio_http_client_connections(const corio_http_client *cl);

#ifdef __cplusplus
}
#endif
#endif
