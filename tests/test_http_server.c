/* tests/test_http_server.c -- the HTTP server over loopback, with a raw
 * client that sends bytes exactly as written: routes (parameters, regex
 * segments, a tail, HEAD, 404, 405 and Allow), sub-apps, middlewares,
 * request data (query, cookies, repeated headers, bodies whole, chunked
 * and streamed, JSON, forms, multipart files), responses (streamed,
 * produced, gzip, upgrade), keep-alive, pipelining, HTTP/1.0,
 * 100-continue, every parser rule answered with its status and nothing
 * run after it (smuggling), limits, timeouts and slowloris, a failing
 * handler, the access log, the graceful stop and corio_http_serve. No fd
 * is leaked by any test. */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "http_test.h"
#include "timing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* failure texts quote what came back, cut to the buffer */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define TIMEOUT 60
#define MS CORIO_MSEC


typedef const char *(*check_fn)(int port);

struct run {
    corio_http_app *app;
    const corio_http_server_opts *opts;
    check_fn check;
    FILE *log;
};

static void *run_main_task(void *arg)
{
    struct run *r = arg;
    corio_http_server *srv = corio_http_server_start("127.0.0.1:0", r->app, r->opts);
    const char *fail;

    if (srv == NULL)
        return (void *)"server did not start";
    if (r->log)
        corio_http_server_log(srv, r->log);
    fail = r->check(corio_http_server_port(srv));
    if (corio_http_server_stop(srv, corio_now() + 5 * HT_SEC) == -1 && fail == NULL)
        fail = "stop failed";
    return (void *)fail;
}

static void serve_check(corio_http_app *app, const corio_http_server_opts *opts,
                        check_fn check)
{
    struct run r = {app, opts, check, NULL};

    (void)failure; /* check.h's; these tests have their own */
    signal(SIGPIPE, SIG_DFL); /* a write must never raise it */
    run_main_no_fd_leak(run_main_task, &r);
    cr_assert_eq(corio_http_app_free(app), 0);
}

/* ---- Handlers ------------------------------------------------------------- */

static int runs_admin; /* the handler of /admin ran */

static int h_text(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    return corio_http_response_printf(res, "%s", (const char *)arg);
}

static int h_param(corio_http_request *req, corio_http_response *res, void *arg)
{
    return corio_http_response_printf(res, "[%s]",
                                      corio_http_request_param(req, (const char *)arg));
}

static int h_admin(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    runs_admin++;
    return corio_http_response_printf(res, "admin");
}

static int h_info(corio_http_request *req, corio_http_response *res, void *arg)
{
    const corio_http_headers *h = corio_http_request_headers(req);
    size_t pos = 0;
    const char *v1 = corio_http_headers_next(h, "x-multi", &pos);
    const char *v2 = corio_http_headers_next(h, "X-MULTI", &pos);
    const char *c = corio_http_request_cookie(req, "b");
    char remote[64] = "";

    (void)arg;
    corio_addr_format(corio_http_request_remote(req), remote, sizeof(remote));
    return corio_http_response_printf(
        res, "path=%s q=%s x=%s multi=%s,%s cookie=%s remote=%.9s v=%d",
        corio_http_request_path(req),
        corio_http_request_query(req, "q") ? corio_http_request_query(req, "q") : "-",
        corio_http_request_query(req, "x") ? corio_http_request_query(req, "x") : "-",
        v1 ? v1 : "-", v2 ? v2 : "-", c ? c : "-", remote,
        corio_http_request_version(req));
}

static int h_echo(corio_http_request *req, corio_http_response *res, void *arg)
{
    size_t len;
    const char *body = corio_http_request_body(req, &len, -1);

    (void)arg;
    if (body == NULL)
        return -1;
    return corio_http_response_body(res, body, len);
}

static int h_fail(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)res;
    (void)arg;
    errno = ENOTRECOVERABLE; /* "secret" internals: never sent */
    return -1;
}

static corio_http_app *basic_app(void)
{
    corio_http_app *app = corio_http_app_new();

    cr_assert_not_null(app);
    cr_assert_eq(corio_http_app_route(app, "GET", "/", h_text, "index"), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/hello/{name}", h_param, "name"), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/users/{id:[0-9]+}", h_param, "id"), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/users/me", h_text, "me"), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/files/{tail:.*}", h_param, "tail"), 0);
    cr_assert_eq(corio_http_app_route(app, "POST", "/echo", h_echo, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "PUT", "/echo", h_echo, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/info", h_info, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/admin", h_admin, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/fail", h_fail, NULL), 0);
    return app;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

/* ---- Routing -------------------------------------------------------------- */

static const char *check_routes(int port)
{
    char out[8192];

    EXPECT(ht_get(port, GET("/"), out, sizeof(out)) > 0, "no answer");
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "index") == 0, "%s", out);
    EXPECT(strstr(out, "Content-Length: 5\r\n"), "%s", out);
    EXPECT(strstr(out, "Connection: close\r\n"), "%s", out);
    ht_get(port, GET("/hello/w%20x%2Fy"), out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "[w x/y]") == 0, "%s", out);
    ht_get(port, GET("/users/42"), out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "[42]") == 0, "%s", out);
    ht_get(port, GET("/users/me"), out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "me") == 0, "%s", out);
    ht_get(port, GET("/users/4x2"), out, sizeof(out));
    EXPECT(ht_status(out) == 404, "%s", out);
    ht_get(port, GET("/files/a/b/c.txt"), out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "[a/b/c.txt]") == 0, "%s", out);
    ht_get(port, GET("/files/"), out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "[]") == 0, "%s", out);
    ht_get(port, GET("/nowhere"), out, sizeof(out));
    EXPECT(ht_status(out) == 404, "%s", out);
    ht_get(port, GET("/hello/"), out, sizeof(out));
    EXPECT(ht_status(out) == 404, "%s", out);
    ht_get(port, "DELETE /hello/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_status(out) == 405 && strstr(out, "Allow: GET, HEAD\r\n"), "%s", out);
    ht_get(port, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", out,
           sizeof(out));
    EXPECT(ht_status(out) == 405 && strstr(out, "Allow: POST, PUT\r\n"), "%s", out);
    ht_get(port, "HEAD /hello/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strstr(out, "Content-Length: 3\r\n") &&
               strcmp(ht_body(out), "") == 0, "%s", out);
    ht_get(port, GET("/hello/bad%zz"), out, sizeof(out));
    EXPECT(ht_status(out) == 400, "%s", out);
    ht_get(port, GET("/hello/nul%00"), out, sizeof(out));
    EXPECT(ht_status(out) == 400, "%s", out);
    return NULL;
}

Test(http_server, routes, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_routes);
}

Test(http_server, route_errors)
{
    corio_http_app *app = corio_http_app_new();

    cr_assert_eq(corio_http_app_route(app, "GET", "nope", h_admin, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a/{x", h_admin, NULL), -1);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a/b{x}", h_admin, NULL), -1);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a/{x:(}", h_admin, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_http_app_route(app, "G T", "/a", h_admin, NULL), -1);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a", NULL, NULL), -1);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a", h_admin, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/a", h_admin, NULL), -1);
    cr_assert_eq(errno, EEXIST);
    cr_assert_eq(corio_http_app_mount(app, "/x/", app), -1);
    cr_assert_eq(corio_http_app_static(app, "/s", "/no/such/dir", NULL), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(corio_http_app_free(app), 0);
    cr_assert_eq(corio_http_app_free(NULL), 0);
}

static const char *check_request_data(int port)
{
    char out[8192];

    ht_get(port, "GET /info?q=a+b%26c&x=1&q=2 HTTP/1.1\r\nHost: t\r\n"
                 "X-Multi: one\r\nCookie: a=1; b=two\r\nx-multi: two\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(strstr(ht_body(out), "path=/info q=a b&c x=1 multi=one,two cookie=two "
                                "remote=127.0.0.1 v=11"), "%s", out);
    ht_get(port, "GET /info HTTP/1.0\r\n\r\n", out, sizeof(out));
    EXPECT(strstr(ht_body(out), "q=- x=- multi=-,- cookie=-") &&
               strstr(ht_body(out), "v=10"), "%s", out);
    EXPECT(strstr(out, "HTTP/1.1 200 OK\r\n") && strstr(out, "Connection: close"),
           "%s", out);
    ht_get(port, "GET http://t/info?q=abs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(strstr(ht_body(out), "path=/info q=abs"), "%s", out);
    return NULL;
}

Test(http_server, request_data, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_request_data);
}

/* ---- Sub-apps and middlewares ------------------------------------------------ */

static char trail[256];

static int mw_trace(corio_http_request *req, corio_http_response *res,
                    corio_http_next *next, void *arg)
{
    int rc;

    strcat(trail, (const char *)arg);
    strcat(trail, ">");
    rc = corio_http_next_call(next, req, res);
    strcat(trail, "<");
    strcat(trail, (const char *)arg);
    corio_http_response_header(res, "X-Trace", (const char *)arg);
    return rc;
}

static int mw_auth(corio_http_request *req, corio_http_response *res,
                   corio_http_next *next, void *arg)
{
    const char *tok = corio_http_request_header(req, "Authorization");

    (void)arg;
    if (tok == NULL || strcmp(tok, "Bearer good") != 0) {
        corio_http_response_status(res, 401);
        return corio_http_response_printf(res, "no");
    }
    return corio_http_next_call(next, req, res);
}

static int mw_errors(corio_http_request *req, corio_http_response *res,
                     corio_http_next *next, void *arg)
{
    (void)arg;
    if (corio_http_next_call(next, req, res) == -1) {
        corio_http_response_status(res, 503);
        return corio_http_response_printf(res, "mapped: %s", corio_err_name(errno));
    }
    return 0;
}

static const char *check_onion(int port)
{
    char out[8192];

    trail[0] = '\0';
    ht_get(port, GET("/api/hello/x"), out, sizeof(out));
    EXPECT(ht_status(out) == 401, "%s", out);
    EXPECT(strcmp(trail, "outer>inner><inner<outer") == 0, "%s", trail);
    trail[0] = '\0';
    ht_get(port, "GET /api/hello/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "[x]") == 0, "%s", out);
    EXPECT(strstr(out, "X-Trace: inner\r\nX-Trace: outer\r\n"), "%s", out);
    ht_get(port, "GET /api/fail HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 503 && strstr(ht_body(out), "mapped: ENOTRECOVERABLE"),
           "%s", out);
    ht_get(port, GET("/top"), out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "top") == 0, "%s", out);
    ht_get(port, GET("/apix"), out, sizeof(out));
    EXPECT(ht_status(out) == 404, "%s", out);
    return NULL;
}

Test(http_server, subapps_and_middlewares, .timeout = TIMEOUT)
{
    corio_http_app *app = corio_http_app_new(), *api = corio_http_app_new();

    cr_assert_eq(corio_http_app_route(app, "GET", "/top", h_text, "top"), 0);
    cr_assert_eq(corio_http_app_use(app, mw_trace, "outer"), 0);
    cr_assert_eq(corio_http_app_route(api, "GET", "/hello/{name}", h_param, "name"), 0);
    cr_assert_eq(corio_http_app_route(api, "GET", "/fail", h_fail, NULL), 0);
    cr_assert_eq(corio_http_app_use(api, mw_trace, "inner"), 0);
    cr_assert_eq(corio_http_app_use(api, mw_auth, NULL), 0);
    cr_assert_eq(corio_http_app_use(api, mw_errors, NULL), 0);
    cr_assert_eq(corio_http_app_mount(app, "/api", api), 0);
    serve_check(app, NULL, check_onion);
    cr_assert_eq(corio_http_app_free(api), 0);
}

/* ---- A failing handler ------------------------------------------------------- */

static const char *check_fail(int port)
{
    char out[8192];

    ht_get(port, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 500, "%s", out);
    EXPECT(!strstr(out, "recoverable") && !strstr(out, "ENOTRECOVERABLE"), "%s", out);
    EXPECT(strstr(out, "\r\n\r\nindex"), "the next request was not served: %s", out);
    return NULL;
}

Test(http_server, failing_handler_is_500, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_fail);
}

/* ---- Keep-alive, pipelining, HTTP/1.0, 100-continue --------------------------- */

static const char *check_pipeline(int port)
{
    char out[16384];
    const char *reqs = "GET /hello/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                       "HEAD /hello/4 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello/5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    const char *a, *b, *c, *d, *e;

    ht_get(port, reqs, out, sizeof(out));
    EXPECT(ht_count(out, "HTTP/1.1 200 OK") == 5, "%s", out);
    a = strstr(out, "[1]");
    b = strstr(out, "\r\n\r\nhello");
    c = strstr(out, "\r\n\r\nabcde");
    d = strstr(out, "Content-Length: 3\r\n");
    e = strstr(out, "[5]");
    EXPECT(a && b && c && d && e && a < b && b < c && c < e, "%s", out);
    EXPECT(ht_count(out, "Connection: close") == 1, "%s", out);
    /* HTTP/1.0: one request unless keep-alive is asked for */
    ht_get(port, "GET /hello/a HTTP/1.0\r\n\r\nGET /hello/b HTTP/1.0\r\n\r\n", out,
           sizeof(out));
    EXPECT(ht_count(out, "HTTP/1.1 200") == 1 && strstr(out, "[a]"), "%s", out);
    ht_get(port, "GET /hello/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                 "GET /hello/b HTTP/1.0\r\n\r\n", out, sizeof(out));
    EXPECT(ht_count(out, "HTTP/1.1 200") == 2 && strstr(out, "Connection: keep-alive"),
           "%s", out);
    return NULL;
}

Test(http_server, keepalive_and_pipelining, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_pipeline);
}

static const char *check_continue(int port)
{
    char addr[64], out[4096];
    const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\nConnection: close\r\n\r\n";
    corio_stream *s;
    ssize_t n;
    size_t len = 0;
    int64_t dl = corio_now() + 5 * HT_SEC;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_stream_connect(addr, dl);
    EXPECT(s != NULL, "connect");
    EXPECT(corio_stream_write(s, head, strlen(head)) == 0, "write");
    n = corio_stream_readuntil(s, "\r\n\r\n", 4, out, sizeof(out), dl);
    EXPECT(n > 0 && strcmp(out, "HTTP/1.1 100 Continue\r\n\r\n") == 0, "%s", out);
    EXPECT(corio_stream_write(s, "ping", 4) == 0, "write");
    while ((n = corio_stream_read(s, out + len, sizeof(out) - 1 - len, dl)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    corio_stream_close(s);
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "ping") == 0, "%s", out);
    ht_get(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                 "Expect: something\r\n\r\nping", out, sizeof(out));
    EXPECT(ht_status(out) == 417, "%s", out);
    return NULL;
}

Test(http_server, expect_100_continue, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_continue);
}

/* One request at a time on one connection, each sent after the previous
 * answer came: the connection's idle wait (without a buffer) must see
 * each new request at once. */
static const char *check_sequential(int port)
{
    char addr[64], out[4096] = "";
    int64_t dl = corio_now() + 5 * HT_SEC;
    corio_stream *s;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_stream_connect(addr, dl);
    EXPECT(s != NULL, "connect");
    for (int i = 0; i < 5; i++) {
        static const char req[] = "GET /hello/seq HTTP/1.1\r\nHost: t\r\n\r\n";
        ssize_t n;
        size_t len = 0;

        EXPECT(corio_stream_write(s, req, sizeof(req) - 1) == 0, "write");
        while (!strstr(out, "[seq]") || len == 0) {
            n = corio_stream_read(s, out + len, sizeof(out) - 1 - len,
                                  corio_now() + 2 * HT_SEC);
            EXPECT(n > 0, "request %d: no answer (%s)", i, corio_err_name(errno));
            len += (size_t)n;
            out[len] = '\0';
        }
        EXPECT(ht_status(out) == 200, "%s", out);
        out[0] = '\0';
        corio_sleep(20 * MS);
    }
    corio_stream_close(s);
    return NULL;
}

Test(http_server, keepalive_one_at_a_time, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_sequential);
}

/* ---- Strict parsing: each rule's answer, and nothing after it runs --------- */

static const char *check_rules(int port)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         400},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: foo\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "3\r\nabc\r\n0\r\n\r\n", 501},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX : a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01" "b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET http://other/ HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505},
    };
    char out[8192], req[2048];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        runs_admin = 0;
        /* a request for /admin smuggled behind each bad one */
        snprintf(req, sizeof(req), "%sGET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
                 cases[i].req);
        ht_get(port, req, out, sizeof(out));
        EXPECT(ht_status(out) == cases[i].status, "case %zu: %s", i, out);
        EXPECT(strstr(out, "Connection: close\r\n"), "case %zu: %s", i, out);
        EXPECT(ht_count(out, "HTTP/1.1") == 1, "case %zu: %s", i, out);
        EXPECT(runs_admin == 0, "case %zu: the smuggled request ran", i);
    }
    /* a NUL in a header: written with its length */
    {
        static const char nul[] = "GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n"
                                  "GET /admin HTTP/1.1\r\nHost: t\r\n\r\n";

        runs_admin = 0;
        ht_exchange(port, nul, sizeof(nul) - 1, out, sizeof(out), NULL);
        EXPECT(ht_status(out) == 400 && runs_admin == 0, "%s", out);
    }
    return NULL;
}

Test(http_server, strict_rules_and_smuggling, .timeout = TIMEOUT)
{
    serve_check(basic_app(), NULL, check_rules);
}

static const char *check_limits(int port)
{
    char out[8192], req[8192];

    snprintf(req, sizeof(req), "GET /%0200d HTTP/1.1\r\nHost: t\r\n\r\n", 0);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 414, "%s", out);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX: %0600d\r\n\r\n", 0);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 431, "%s", out);
    ht_get(port, "GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
                 "E: 5\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 431, "%s", out);
    ht_get(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", out,
           sizeof(out));
    EXPECT(ht_status(out) == 413, "%s", out);
    /* chunked: the limit is found while reading */
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: t\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n64\r\n%0100d\r\n"
                               "1\r\nx\r\n0\r\n\r\n", 0);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 413, "%s", out);
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
                               "Connection: close\r\n\r\n%0100d", 0);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strlen(ht_body(out)) == 100, "%s", out);
    return NULL;
}

Test(http_server, limits, .timeout = TIMEOUT)
{
    corio_http_server_opts o = {.limits = {.request_line = 128, .header_bytes = 512,
                                           .header_count = 5, .body = 100}};

    serve_check(basic_app(), &o, check_limits);
}

/* ---- Timeouts and slowloris -------------------------------------------------- */

static const char *check_timeouts(int port)
{
    char addr[64], out[4096];
    corio_stream *slow, *idle;
    int64_t t0 = corio_now(), dl = t0 + 5 * HT_SEC;
    ssize_t n;
    size_t len = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    /* slowloris: a byte at a time, never a whole head */
    slow = corio_stream_connect(addr, dl);
    idle = corio_stream_connect(addr, dl);
    EXPECT(slow && idle, "connect");
    for (int i = 0; i < 4; i++) {
        int64_t t1 = corio_now();

        /* (a loaded machine may bring the 408 before the 4th byte) */
        if (corio_stream_write(slow, "GET / HTTP/1.1\r\n" + i, 1) == -1)
            break;
        /* others are served meanwhile, at once */
        ht_get(port, GET("/"), out, sizeof(out));
        EXPECT(ht_status(out) == 200, "%s", out);
        EXPECT(corio_now() - t1 < (200 + test_slack_ms()) * MS, "slow to serve others");
        corio_sleep(50 * MS);
    }
    while ((n = corio_stream_read(slow, out + len, sizeof(out) - 1 - len, dl)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    EXPECT(ht_status(out) == 408, "slowloris: %s", out);
    EXPECT(corio_now() - t0 < (1000 + test_slack_ms()) * MS, "408 too late");
    corio_stream_close(slow);
    /* an idle connection is closed after idle_timeout (no answer) */
    n = corio_stream_read(idle, out, sizeof(out), dl);
    EXPECT(n == 0, "idle connection: %zd", n);
    corio_stream_close(idle);
    return NULL;
}

Test(http_server, timeouts_and_slowloris, .timeout = TIMEOUT)
{
    corio_http_server_opts o = {.head_timeout = 250 * MS, .idle_timeout = 300 * MS,
                                .body_timeout = 200 * MS};

    serve_check(basic_app(), &o, check_timeouts);
}

static const char *check_body_timeout(int port)
{
    char out[4096];
    int64_t t0 = corio_now();

    /* a body that never comes: the connection is closed */
    ht_get(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc", out,
           sizeof(out));
    EXPECT(ht_status(out) == -1 || ht_status(out) >= 400, "%s", out);
    EXPECT(corio_now() - t0 < (1000 + test_slack_ms()) * MS, "too late");
    return NULL;
}

Test(http_server, body_timeout, .timeout = TIMEOUT)
{
    corio_http_server_opts o = {.body_timeout = 200 * MS};

    serve_check(basic_app(), &o, check_body_timeout);
}

/* ---- Bodies: JSON, forms, multipart, streamed ----------------------------------- */

static int h_json(corio_http_request *req, corio_http_response *res, void *arg)
{
    json_t *in = corio_http_request_json(req, -1), *out;
    int rc;

    (void)arg;
    if (in == NULL) {
        corio_http_response_status(res, 400);
        return corio_http_response_printf(res, "bad json");
    }
    out = json_pack("{s:i}", "sum", (int)(json_integer_value(json_object_get(in, "a")) +
                                          json_integer_value(json_object_get(in, "b"))));
    rc = corio_http_response_json(res, out);
    json_decref(in);
    json_decref(out);
    return rc;
}

static int h_form(corio_http_request *req, corio_http_response *res, void *arg)
{
    const char *a = corio_http_request_form(req, "a", -1);
    const char *b = corio_http_request_form(req, "b", -1);

    (void)arg;
    return corio_http_response_printf(res, "a=%s b=%s", a ? a : "-", b ? b : "-");
}

static char upload_dir[64];

static int h_upload(corio_http_request *req, corio_http_response *res, void *arg)
{
    corio_http_part part;
    char line[512] = "", path[256], data[64];
    int rc;

    (void)arg;
    while ((rc = corio_http_request_next_part(req, &part, -1)) == 1) {
        size_t l = strlen(line);

        if (part.filename) {
            snprintf(path, sizeof(path), "%s/%s", upload_dir, part.filename);
            ssize_t n = corio_http_request_save_part(req, path, -1);

            snprintf(line + l, sizeof(line) - l, "%s:file(%s,%zd,%s) ", part.name,
                     part.filename, n, part.content_type);
        } else {
            ssize_t n = corio_http_request_read_part(req, data, sizeof(data) - 1, -1);

            data[n > 0 ? n : 0] = '\0';
            snprintf(line + l, sizeof(line) - l, "%s=%s ", part.name, data);
        }
    }
    if (rc == -1) {
        corio_http_response_status(res, 400);
        return corio_http_response_printf(res, "bad multipart: %s", corio_err_name(errno));
    }
    return corio_http_response_printf(res, "%s", line);
}

static int h_stream(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (corio_http_response_header(res, "Content-Type", "text/plain") == -1 ||
        corio_http_response_prepare(res, -1, -1) == -1)
        return -1;
    for (int i = 0; i < 3; i++) {
        char piece[16];
        int n = snprintf(piece, sizeof(piece), "piece%d;", i);

        if (corio_http_response_write(res, piece, (size_t)n, -1) == -1)
            return -1;
        corio_sleep(10 * MS);
    }
    return corio_http_response_finish(res, -1);
}

static int produce_events(corio_http_response *res, void *arg)
{
    int *count = arg;

    for (int i = 0; i < *count; i++) {
        char ev[32];
        int n = snprintf(ev, sizeof(ev), "data: %d\n\n", i);

        if (corio_http_response_write(res, ev, (size_t)n, -1) == -1)
            return -1;
    }
    return 0;
}

static int produced_done;

static void produce_done(void *arg)
{
    (void)arg;
    produced_done++;
}

static int h_events(corio_http_request *req, corio_http_response *res, void *arg)
{
    static int count = 3;

    (void)req;
    (void)arg;
    corio_http_response_header(res, "Content-Type", "text/event-stream");
    return corio_http_response_produce(res, -1, produce_events, produce_done, &count);
}

static int h_fixed(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (corio_http_response_prepare(res, 6, -1) == -1 ||
        corio_http_response_write(res, "abc", 3, -1) == -1)
        return -1;
    if (corio_http_response_write(res, "defg", 4, -1) != -1 || errno != EMSGSIZE)
        return -1;
    return corio_http_response_write(res, "def", 3, -1);
}

static int h_big(corio_http_request *req, corio_http_response *res, void *arg)
{
    static char text[4096];

    (void)req;
    (void)arg;
    for (size_t i = 0; i + 1 < sizeof(text); i++)
        text[i] = "corio http gzip "[i % 16];
    corio_http_response_header(res, "Content-Type", "text/plain");
    return corio_http_response_body(res, text, sizeof(text) - 1);
}

static int h_upgrade(corio_http_request *req, corio_http_response *res, void *arg)
{
    corio_stream *s;
    char line[128];
    ssize_t n;

    (void)req;
    (void)arg;
    corio_http_response_header(res, "Upgrade", "echo");
    s = corio_http_response_upgrade(res, -1);
    if (s == NULL)
        return -1;
    /* speak the new protocol: echo one line, upper-cased */
    n = corio_stream_readline(s, line, sizeof(line), corio_now() + 5 * HT_SEC);
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; i < n; i++)
        if (line[i] >= 'a' && line[i] <= 'z')
            line[i] -= 32;
    if (corio_stream_write(s, line, (size_t)n) == -1 || corio_stream_drain(s, -1) == -1)
        return -1;
    return 0;
}

static corio_http_app *body_app(void)
{
    corio_http_app *app = basic_app();

    cr_assert_eq(corio_http_app_route(app, "POST", "/json", h_json, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "POST", "/form", h_form, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "POST", "/upload", h_upload, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/stream", h_stream, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/events", h_events, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/fixed", h_fixed, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/big", h_big, NULL), 0);
    cr_assert_eq(corio_http_app_route(app, "GET", "/upgrade", h_upgrade, NULL), 0);
    return app;
}

static const char *check_bodies(int port)
{
    char out[16384], req[4096];
    const char *mp_body =
        "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
        "hello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; "
        "filename=\"up.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        "line one\r\n--Xy not yet\r\nline two\r\n--XyZ--\r\n";
    struct stat sb;

    ht_get(port, "POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 15\r\n"
                 "Connection: close\r\n\r\n{\"a\":2, \"b\":40}", out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "{\"sum\":42}") == 0 &&
               strstr(out, "Content-Type: application/json"), "%s", out);
    ht_get(port, "POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                 "Connection: close\r\n\r\n{x}", out, sizeof(out));
    EXPECT(ht_status(out) == 400, "%s", out);
    ht_get(port, "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 15\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\n"
                 "Connection: close\r\n\r\na=x+y%21&b=&c=1", out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "a=x y! b=") == 0, "%s", out);
    snprintf(req, sizeof(req), "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n"
                               "Content-Type: multipart/form-data; boundary=XyZ\r\n"
                               "Connection: close\r\n\r\n%s", strlen(mp_body), mp_body);
    ht_get(port, req, out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "title=hello doc:file(up.txt,32,text/plain) ") == 0,
           "%s", out);
    snprintf(req, sizeof(req), "%s/up.txt", upload_dir);
    EXPECT(stat(req, &sb) == 0 && sb.st_size == 32, "upload not saved");
    unlink(req);
    ht_get(port, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                 "Content-Type: text/plain\r\nConnection: close\r\n\r\nabc", out, sizeof(out));
    EXPECT(ht_status(out) == 400 && strstr(out, "EBADMSG"), "%s", out);
    ht_get(port, GET("/stream"), out, sizeof(out));
    EXPECT(strstr(out, "Transfer-Encoding: chunked\r\n") &&
               strstr(out, "\r\n\r\n7\r\npiece0;\r\n7\r\npiece1;\r\n7\r\npiece2;\r\n0\r\n\r\n"),
           "%s", out);
    produced_done = 0;
    ht_get(port, GET("/events"), out, sizeof(out));
    EXPECT(strstr(out, "text/event-stream") && strstr(out, "9\r\ndata: 2\n\n\r\n0\r\n\r\n") &&
               produced_done == 1, "%s", out);
    ht_get(port, GET("/fixed"), out, sizeof(out));
    EXPECT(strstr(out, "Content-Length: 6\r\n") && strcmp(ht_body(out), "abcdef") == 0,
           "%s", out);
    ht_get(port, "GET /stream HTTP/1.0\r\n\r\n", out, sizeof(out));
    EXPECT(strcmp(ht_body(out), "piece0;piece1;piece2;") == 0, "%s", out);
    return NULL;
}

Test(http_server, bodies_and_streams, .timeout = TIMEOUT)
{
    snprintf(upload_dir, sizeof(upload_dir), "/tmp/corio-upload-%d", (int)getpid());
    mkdir(upload_dir, 0700);
    serve_check(body_app(), NULL, check_bodies);
    rmdir(upload_dir);
}

static const char *check_gzip(int port)
{
    char out[16384], plain[8192];
    const char *body;
    uLongf plen = sizeof(plain);
    z_stream z = {0};
    ssize_t n;

    n = ht_get(port, "GET /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br, gzip\r\n"
                     "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(strstr(out, "Content-Encoding: gzip\r\n") && strstr(out, "Vary: Accept-Encoding"),
           "%s", out);
    body = ht_body(out);
    inflateInit2(&z, 31);
    z.next_in = (Bytef *)body;
    z.avail_in = (uInt)(out + n - body);
    z.next_out = (Bytef *)plain;
    z.avail_out = (uInt)plen;
    EXPECT(inflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out == 4095,
           "gunzip gave %lu", z.total_out);
    inflateEnd(&z);
    ht_get(port, GET("/big"), out, sizeof(out));
    EXPECT(!strstr(out, "Content-Encoding") && strlen(ht_body(out)) == 4095, "plain");
    return NULL;
}

Test(http_server, gzip, .timeout = TIMEOUT)
{
    corio_http_server_opts o = {.gzip = true};

    serve_check(body_app(), &o, check_gzip);
}

static const char *check_upgrade(int port)
{
    char out[4096];

    ht_get(port, "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                 "Upgrade: echo\r\n\r\nhello there\n", out, sizeof(out));
    EXPECT(ht_status(out) == 101 && strstr(out, "Upgrade: echo\r\n") &&
               strcmp(ht_body(out), "HELLO THERE\n") == 0, "%s", out);
    ht_get(port, GET("/upgrade"), out, sizeof(out));
    EXPECT(ht_status(out) == 500, "not an upgrade request: %s", out);
    return NULL;
}

Test(http_server, upgrade_takes_the_stream, .timeout = TIMEOUT)
{
    serve_check(body_app(), NULL, check_upgrade);
}

/* ---- Access log --------------------------------------------------------------- */

static const char *check_log(int port)
{
    char out[4096];

    ht_get(port, GET("/hello/log"), out, sizeof(out));
    ht_get(port, GET("/nowhere"), out, sizeof(out));
    return NULL;
}

Test(http_server, access_log, .timeout = TIMEOUT)
{
    char *text = NULL;
    size_t size = 0;
    FILE *log = open_memstream(&text, &size);
    struct run r = {basic_app(), NULL, check_log, log};

    run_main_no_fd_leak(run_main_task, &r);
    fclose(log);
    cr_assert(strstr(text, "127.0.0.1 - - ["), "%s", text);
    cr_assert(strstr(text, "+0000] \"GET /hello/log HTTP/1.1\" 200 5\n"), "%s", text);
    cr_assert(strstr(text, "\"GET /nowhere HTTP/1.1\" 404 15\n"), "%s", text);
    free(text);
    corio_http_app_free(r.app);
}

/* ---- Graceful stop -------------------------------------------------------------- */

static int h_slow(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (corio_sleep(300 * MS) == -1)
        return -1;
    return corio_http_response_printf(res, "finished");
}

struct stop_client {
    int port;
    char out[4096];
};

static void *slow_client(void *arg)
{
    struct stop_client *c = arg;

    ht_get(c->port, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", c->out, sizeof(c->out));
    return NULL;
}

static void *idle_client(void *arg)
{
    struct stop_client *c = arg;

    /* one request, then the connection stays open, idle */
    ht_exchange(c->port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27, c->out, sizeof(c->out),
                NULL);
    return NULL;
}

static void *stop_main(void *arg)
{
    corio_http_app *app = arg;
    corio_http_server *srv = corio_http_server_start("127.0.0.1:0", app, NULL);
    struct stop_client slow = {0}, idle = {0};
    corio_task *ts[2];
    int64_t t0;

    if (srv == NULL)
        return (void *)"start";
    slow.port = idle.port = corio_http_server_port(srv);
    ts[0] = corio_task_spawn(slow_client, &slow, NULL);
    ts[1] = corio_task_spawn(idle_client, &idle, NULL);
    corio_sleep(100 * MS);
    t0 = corio_now();
    if (corio_http_server_stop(srv, corio_now() + 5 * HT_SEC) != 0)
        return (void *)"stop failed";
    if (corio_now() - t0 > (1000 + test_slack_ms()) * MS)
        return (void *)"stop waited for the idle connection";
    if (corio_task_join_all(ts, 2, NULL) == -1)
        return (void *)"join";
    if (ht_status(slow.out) != 200 || strcmp(ht_body(slow.out), "finished") != 0 ||
        !strstr(slow.out, "Connection: close"))
        return (void *)"the request in flight did not finish";
    if (ht_status(idle.out) != 200)
        return (void *)"idle";
    return NULL;
}

Test(http_server, graceful_stop, .timeout = TIMEOUT)
{
    corio_http_app *app = basic_app();

    cr_assert_eq(corio_http_app_route(app, "GET", "/slow", h_slow, NULL), 0);
    run_main_no_fd_leak(stop_main, app);
    cr_assert_eq(corio_http_app_free(app), 0);
}

/* ---- corio_http_serve: N loops until SIGTERM --------------------------------------- */

static void *serve_client(void *arg)
{
    int port = *(int *)arg;
    char out[4096];
    int ok = 0;

    /* until the child listens: a loaded machine may take seconds to start it */
    for (int i = 0; i < 1500 && ht_get(port, GET("/"), out, sizeof(out)) <= 0; i++)
        corio_sleep(10 * MS);
    if (ht_status(out) != 200)
        return (void *)"the server child did not answer within 15 s";
    for (int i = 0; i < 20; i++) {
        ssize_t n = ht_get(port, GET("/hello/n"), out, sizeof(out));

        if (strcmp(ht_body(out), "[n]") != 0) {
            snprintf(failbuf, sizeof(failbuf), "request %d: %zd bytes (%s): %s", i, n,
                     corio_err_name(errno), out);
            return failbuf;
        }
        ok++;
    }
    return NULL;
}

/* A free port, held: a socket bound to it with SO_REUSEPORT and never
 * listening keeps every other program off it, while the server's
 * SO_REUSEPORT listeners can still bind it (and alone get connections). */
static int hold_free_port(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

Test(http_server, serve_on_n_loops, .timeout = TIMEOUT)
{
    int port, status, held = hold_free_port(&port);
    char addr[64];
    pid_t pid;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(held);
        corio_http_app *app = basic_app();
        int rc = corio_http_serve(addr, app, NULL, 2, NULL);

        if (rc != 0)
            fprintf(stderr, "corio_http_serve: %s\n", corio_strerror(errno));
        corio_http_app_free(app);
        _exit(rc == 0 ? 0 : 1);
    }
    run_main_no_fd_leak(serve_client, &port);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    close(held);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* ---- Refusals: app in use, stop from a handler, max_connections ---------------- */

static corio_http_server *self_srv;

static int h_stop_self(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (corio_http_server_stop(self_srv, -1) != -1 || errno != EDEADLK)
        return corio_http_response_printf(res, "stop did not refuse");
    return corio_http_response_printf(res, "EDEADLK");
}

static void *refusals_main(void *arg)
{
    corio_http_app *app = arg;
    corio_http_server_opts o = {.max_connections = 1};
    char addr[64], out[4096];
    corio_stream *held;
    int port;

    self_srv = corio_http_server_start("127.0.0.1:0", app, &o);
    if (self_srv == NULL)
        return (void *)"start";
    if (corio_http_app_free(app) != -1 || errno != EBUSY)
        return (void *)"the app was freed while its server runs";
    port = corio_http_server_port(self_srv);
    ht_get(port, GET("/stop"), out, sizeof(out));
    if (strcmp(ht_body(out), "EDEADLK") != 0)
        return (void *)"stop from a handler";
    /* one connection held open: a second one is answered 503 at once */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    held = corio_stream_connect(addr, corio_now() + 5 * HT_SEC);
    if (held == NULL)
        return (void *)"connect";
    corio_sleep(50 * MS);
    ht_get(port, GET("/"), out, sizeof(out));
    if (ht_status(out) != 503)
        return (void *)"a connection over max_connections was not answered 503";
    corio_stream_close(held);
    corio_sleep(50 * MS);
    ht_get(port, GET("/"), out, sizeof(out));
    if (ht_status(out) != 200)
        return (void *)"not served once the other closed";
    if (corio_http_server_stop(self_srv, corio_now() + 5 * HT_SEC) != 0)
        return (void *)"stop";
    return NULL;
}

/* A keep-alive GET / on s; NULL if "index" came back with 200. */
static const char *held_get(corio_stream *s, char *out, size_t cap)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    int64_t dl = corio_now() + 5 * HT_SEC;
    size_t len = 0;
    ssize_t got;

    if (corio_stream_write(s, req, sizeof(req) - 1) == -1 || corio_stream_drain(s, dl) == -1)
        return "write";
    out[0] = '\0';
    while (!strstr(out, "\r\n\r\nindex") && len < cap - 1 &&
           (got = corio_stream_read(s, out + len, cap - 1 - len, dl)) > 0) {
        len += (size_t)got;
        out[len] = '\0';
    }
    return ht_status(out) == 200 && strstr(out, "\r\n\r\nindex") ? NULL : "held GET";
}

static const char *check_busy(const char *out)
{
    EXPECT(ht_status(out) == 503 && strstr(out, "\r\nRetry-After: 1\r\n") &&
               strstr(out, "\r\nConnection: close\r\n") &&
               strcmp(ht_body(out), "503: Service Unavailable\n") == 0, "%s", out);
    return NULL;
}

static void *busy_main(void *arg)
{
    corio_http_app *app = arg;
    corio_http_server_opts o = {.max_connections = 2};
    corio_http_server *srv = corio_http_server_start("127.0.0.1:0", app, &o);
    corio_stream *a = NULL, *b = NULL;
    char addr[64], out[4096];
    const char *fail = NULL;
    int port, fds;

    if (srv == NULL)
        return (void *)"start";
    port = corio_http_server_port(srv);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    a = corio_stream_connect(addr, corio_now() + 5 * HT_SEC);
    b = corio_stream_connect(addr, corio_now() + 5 * HT_SEC);
    if (a == NULL || b == NULL) {
        fail = "connect";
        goto out;
    }
    if ((fail = held_get(a, out, sizeof(out))) != NULL ||
        (fail = held_get(b, out, sizeof(out))) != NULL)
        goto out;
    fds = count_fds();
    /* a third client: 503 at once, whether it sent its request or not
     * (the server waits neither for the request nor for the head timeout) */
    for (int i = 0; i < 5; i++) {
        int64_t t0 = corio_now();

        if (i % 2 == 0)
            ht_get(port, GET("/"), out, sizeof(out));
        else
            ht_exchange(port, NULL, 0, out, sizeof(out), NULL);
        if ((fail = check_busy(out)) != NULL)
            goto out;
        if (corio_now() - t0 > 2 * HT_SEC) {
            fail = "the 503 waited";
            goto out;
        }
    }
    corio_sleep(50 * MS);
    if (count_fds() != fds) {
        fail = "fds leaked by the refused connections";
        goto out;
    }
    /* the first two still work */
    if ((fail = held_get(a, out, sizeof(out))) != NULL ||
        (fail = held_get(b, out, sizeof(out))) != NULL)
        goto out;
    /* one gone: a new one is served */
    corio_stream_close(a);
    a = NULL;
    corio_sleep(50 * MS);
    ht_get(port, GET("/"), out, sizeof(out));
    if (ht_status(out) != 200 || strcmp(ht_body(out), "index") != 0)
        fail = "not served once one closed";
out:
    corio_stream_close(a);
    corio_stream_close(b);
    if (corio_http_server_stop(srv, corio_now() + 5 * HT_SEC) != 0 && fail == NULL)
        fail = "stop";
    return (void *)fail;
}

Test(http_server, busy_503_over_max_connections, .timeout = TIMEOUT)
{
    corio_http_app *app = basic_app();

    run_main_no_fd_leak(busy_main, app);
    cr_assert_eq(corio_http_app_free(app), 0);
}

Test(http_server, refusals, .timeout = TIMEOUT)
{
    corio_http_app *app = basic_app();

    cr_assert_eq(corio_http_app_route(app, "GET", "/stop", h_stop_self, NULL), 0);
    run_main_no_fd_leak(refusals_main, app);
    cr_assert_eq(corio_http_app_free(app), 0);
}
