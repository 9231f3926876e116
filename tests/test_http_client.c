/* tests/test_http_client.c -- the HTTP client (include/corio/http_client.h)
 * against real servers: aiohttp (tests/helpers/http_peer.py), Python's
 * http.server (HTTP/1.0, bodies to the end of the connection), nginx (a
 * generated config in a temporary directory, an ephemeral port), and corio
 * servers of the test's own (pool limits, a stale pooled connection,
 * hostile peers). TLS against a corio TLS server with a throw-away CA.
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <zlib.h>

#include "loop_test.h"
#include "net_test.h"
#include "peer_proc.h"
#include "timing.h"
#include "../examples/devcert.h"

#define MS CORIO_MSEC
#define SEC CORIO_SECOND
#define SLACK (test_slack_ms() * MS)
#define TIMEOUT 60

static struct peer_proc peer;
static char base[64];

static void *run_body(void *arg)
{
    ((void (*)(void))arg)();
    return NULL;
}

/* Run fn in a task of a fresh corio_run. */
static void run(void (*fn)(void))
{
    void *r = "not run";

    cr_assert_eq(corio_run(run_body, (void *)fn, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
}

static void aiohttp_start(void)
{
    char dir[512], script[600];
    char *argv[] = {"/usr/bin/python3", script, NULL};

    PEER_TESTS_DIR(dir, sizeof(dir));
    snprintf(script, sizeof(script), "%s/helpers/http_peer.py", dir);
    peer_start(&peer, argv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", peer.port);
}

static void aiohttp_stop(void)
{
    int st = peer_stop(&peer);

    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "peer status %d", st);
}

static char *url(const char *path)
{
    static char buf[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s%s", base, path);
    return buf[i];
}

static corio_http_client *client(const corio_http_client_opts *o)
{
    corio_http_client *cl = corio_http_client_new(o);

    cr_assert_not_null(cl, "corio_http_client_new: %s", corio_strerror(errno));
    return cl;
}

/* GET u, expect status, return the body (a copy, freed by the caller). */
static char *fetch(corio_http_client *cl, const char *method, const char *u,
                   const corio_http_client_req_opts *o, int status)
{
    corio_http_client_response *r =
        corio_http_client_request(cl, method, u, o, corio_now() + 10 * SEC);
    const char *body;
    size_t len;
    char *copy;

    cr_assert_not_null(r, "%s %s: %s", method, u, corio_strerror(errno));
    cr_assert_eq(corio_http_client_response_status(r), status, "%s: %d", u,
                 corio_http_client_response_status(r));
    body = corio_http_client_response_body(r, &len, corio_now() + 10 * SEC);
    cr_assert_not_null(body, "body of %s: %s", u, corio_strerror(errno));
    cr_assert_eq(strlen(body), len);
    copy = strdup(body);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    return copy;
}

static void expect_body(corio_http_client *cl, const char *method,
                        const char *u, const corio_http_client_req_opts *o,
                        int status, const char *want)
{
    char *b = fetch(cl, method, u, o, status);

    cr_assert(strcmp(b, want) == 0, "%s %s: got %.200s", method, u, b);
    free(b);
}

/* ---- Against aiohttp ----------------------------------------------------- */

static void t_basic(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_client_response *r;
    corio_http_headers *h = corio_http_headers_new();
    const char *q[] = {"a", "1 2", "b", "&=/", NULL};
    corio_http_client_req_opts o = {.headers = h, .query = q,
                                    .body = "payload", .body_len = 7};
    char *b;

    expect_body(cl, "GET", url("/hello"), NULL, 200, "hello");
    r = corio_http_client_get(cl, url("/hello"), corio_now() + 5 * SEC);
    cr_assert_not_null(r);
    cr_assert_str_eq(corio_http_client_response_reason(r), "OK");
    cr_assert_eq(corio_http_client_response_version(r), 11);
    cr_assert_str_eq(corio_http_client_response_url(r), url("/hello"));
    cr_assert_str_eq(corio_http_headers_get(corio_http_client_response_headers(r),
                                            "content-type"),
                     "text/plain; charset=utf-8");
    cr_assert_eq(corio_http_client_response_close(r), 0);

    cr_assert_eq(corio_http_headers_add(h, "X-Test", "yes"), 0);
    b = fetch(cl, "POST", url("/echo"), &o, 200);
    cr_assert_str_eq(b, "POST /echo?a=1%202&b=%26%3D%2F\n"
                        "Content-Length: 7\nX-Test: yes\n"
                        "Accept-Encoding: gzip, deflate\nUser-Agent: corio\n\n"
                        "payload");
    free(b);
    o.query = NULL;
    o.body = NULL;
    o.body_len = 0;
    b = fetch(cl, "PUT", url("/echo"), &o, 200);
    cr_assert(strncmp(b, "PUT /echo\nContent-Length: 0\n", 28) == 0, "%s", b);
    free(b);
    b = fetch(cl, "DELETE", url("/echo?x=1"), NULL, 200);
    cr_assert(strncmp(b, "DELETE /echo?x=1\n", 17) == 0, "%s", b);
    free(b);
    /* HEAD: no body, and the connection is still good after it */
    expect_body(cl, "HEAD", url("/hello"), NULL, 200, "");
    expect_body(cl, "GET", url("/nowhere"), NULL, 404, "404: Not Found");
    cr_assert_eq(corio_http_client_connections(cl), 1);
    corio_http_headers_free(h);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, methods_query_headers_body, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_basic);
    aiohttp_stop();
}

static void t_keepalive(void)
{
    corio_http_client *cl = client(NULL);
    char *a = fetch(cl, "GET", url("/peer"), NULL, 200);
    char *b = fetch(cl, "GET", url("/peer"), NULL, 200);

    cr_assert_str_eq(a, b, "a second connection was opened");
    free(a);
    free(b);
    cr_assert_eq(corio_http_client_connections(cl), 1);
    cr_assert_eq(corio_http_client_free(cl), 0);

    /* an idle connection past keepalive_timeout is not reused */
    corio_http_client_opts o = {.keepalive_timeout = 20 * MS};
    cl = client(&o);
    a = fetch(cl, "GET", url("/peer"), NULL, 200);
    cr_assert_eq(corio_sleep(60 * MS), 0);
    b = fetch(cl, "GET", url("/peer"), NULL, 200);
    cr_assert_str_neq(a, b);
    free(a);
    free(b);
    cr_assert_eq(corio_http_client_connections(cl), 1);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, keepalive_pool_reuses_connections, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_keepalive);
    aiohttp_stop();
}

static void t_redirects(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_client_opts lo = {.max_redirects = 2};
    corio_http_client *limited = client(&lo);
    corio_http_client_req_opts post = {.body = "data", .body_len = 4};
    corio_http_client_req_opts noredir = {.no_redirects = true};
    corio_http_client_response *r;
    char *b;

    /* a chain of three 302s ends at /echo, by GET */
    r = corio_http_client_get(cl, url("/redirect/302?n=3"), corio_now() + 5 * SEC);
    cr_assert_not_null(r, "%s", corio_strerror(errno));
    cr_assert_eq(corio_http_client_response_status(r), 200);
    cr_assert_str_eq(corio_http_client_response_url(r), url("/echo"));
    cr_assert_eq(corio_http_client_response_close(r), 0);
    /* 307 and 308 repeat the method and the body */
    b = fetch(cl, "POST", url("/redirect/307"), &post, 200);
    cr_assert(strncmp(b, "POST /echo\nContent-Length: 4\n", 29) == 0, "%s", b);
    cr_assert(strstr(b, "\n\ndata") != NULL, "%s", b);
    free(b);
    b = fetch(cl, "PUT", url("/redirect/308"), &post, 200);
    cr_assert(strncmp(b, "PUT /echo\n", 10) == 0, "%s", b);
    cr_assert(strstr(b, "\n\ndata") != NULL, "%s", b);
    free(b);
    /* 303 always, 301 and 302 after POST: GET without a body */
    b = fetch(cl, "POST", url("/redirect/303"), &post, 200);
    cr_assert(strncmp(b, "GET /echo\n", 10) == 0, "%s", b);
    cr_assert(strstr(b, "Content-Length") == NULL, "%s", b);
    free(b);
    b = fetch(cl, "POST", url("/redirect/301"), &post, 200);
    cr_assert(strncmp(b, "GET /echo\n", 10) == 0, "%s", b);
    free(b);
    b = fetch(cl, "PUT", url("/redirect/302"), &post, 200);
    cr_assert(strncmp(b, "PUT /echo\n", 10) == 0, "%s", b); /* not POST */
    free(b);
    b = fetch(cl, "DELETE", url("/redirect/303"), NULL, 200);
    cr_assert(strncmp(b, "GET /echo\n", 10) == 0, "%s", b);
    free(b);
    /* relative Location */
    b = fetch(cl, "GET", url("/redirect/302?to=../hello"), NULL, 200);
    cr_assert_str_eq(b, "hello");
    free(b);
    /* the limit */
    expect_body(limited, "GET", url("/redirect/302?n=2"), NULL, 200,
                "GET /echo\nAccept-Encoding: gzip, deflate\nUser-Agent: corio\n\n");
    r = corio_http_client_get(limited, url("/redirect/302?n=3"), corio_now() + 5 * SEC);
    cr_assert_null(r);
    cr_assert_eq(errno, ELOOP);
    /* Authorization goes along to the same origin, not to another one
     * (localhost is another origin than 127.0.0.1) */
    {
        corio_http_headers *h = corio_http_headers_new();
        corio_http_client_req_opts ao = {.headers = h};
        char to[160];

        cr_assert_eq(corio_http_headers_add(h, "Authorization", "Bearer t"), 0);
        b = fetch(cl, "GET", url("/redirect/302"), &ao, 200);
        cr_assert(strstr(b, "Authorization: Bearer t\n") != NULL, "%s", b);
        free(b);
        snprintf(to, sizeof(to), "/redirect/302?to=http://localhost:%d/echo",
                 peer.port);
        b = fetch(cl, "GET", url(to), &ao, 200);
        cr_assert(strstr(b, "Authorization") == NULL, "%s", b);
        free(b);
        corio_http_headers_free(h);
    }
    /* not followed when asked */
    expect_body(cl, "GET", url("/redirect/302"), &noredir, 302, "moved");
    cr_assert_eq(corio_http_client_free(limited), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, redirects, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_redirects);
    aiohttp_stop();
}

static char *expected_data(void)
{
    size_t n = 0;
    char *d = malloc(100000);

    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(d + n, "line %d of the compressed body\n", i);
    return d;
}

static void t_decoding(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_client_opts raw = {.no_decompress = true};
    corio_http_client *rawcl = client(&raw);
    char *want = expected_data(), *b;
    corio_http_client_response *r;
    const char *body;
    size_t len;
    char buf[7], all[512];
    size_t got = 0;
    ssize_t k;

    expect_body(cl, "GET", url("/gzip"), NULL, 200, want);
    expect_body(cl, "GET", url("/deflate"), NULL, 200, want);
    expect_body(cl, "GET", url("/rawdeflate"), NULL, 200, want);
    /* no_decompress: the bytes as sent */
    r = corio_http_client_get(rawcl, url("/gzip"), corio_now() + 5 * SEC);
    cr_assert_not_null(r);
    cr_assert_str_eq(corio_http_headers_get(corio_http_client_response_headers(r),
                                            "Content-Encoding"), "gzip");
    body = corio_http_client_response_body(r, &len, corio_now() + 5 * SEC);
    cr_assert_not_null(body);
    cr_assert_eq((unsigned char)body[0], 0x1f);
    cr_assert_eq((unsigned char)body[1], 0x8b);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    /* chunked, read in small pieces */
    r = corio_http_client_get(cl, url("/chunked"), corio_now() + 5 * SEC);
    cr_assert_not_null(r);
    while ((k = corio_http_client_response_read(r, buf, sizeof(buf),
                                                corio_now() + 5 * SEC)) > 0) {
        memcpy(all + got, buf, (size_t)k);
        got += (size_t)k;
    }
    cr_assert_eq(k, 0, "%s", corio_strerror(errno));
    all[got] = '\0';
    b = all;
    for (int i = 0; i < 10; i++) {
        char line[16];

        snprintf(line, sizeof(line), "chunk %d\n", i);
        cr_assert(strncmp(b, line, strlen(line)) == 0, "%s", all);
        b += strlen(line);
    }
    cr_assert_eq(corio_http_client_response_read(r, buf, sizeof(buf), -1), 0);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    /* the connection was kept after each of them */
    cr_assert_eq(corio_http_client_connections(cl), 1);
    free(want);
    cr_assert_eq(corio_http_client_free(rawcl), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, gzip_deflate_chunked, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_decoding);
    aiohttp_stop();
}

static void t_big(void)
{
    corio_http_client_opts o = {.limits = {.body = 1000000}};
    corio_http_client *cl = client(&o);
    corio_http_client_response *r;
    static char buf[100000];
    size_t total = 0;
    ssize_t k;

    /* streamed: no limit */
    r = corio_http_client_get(cl, url("/big?n=3000000"), corio_now() + 10 * SEC);
    cr_assert_not_null(r);
    while ((k = corio_http_client_response_read(r, buf, sizeof(buf),
                                                corio_now() + 10 * SEC)) > 0)
        total += (size_t)k;
    cr_assert_eq(k, 0);
    cr_assert_eq(total, 3000000);
    expect_fail(corio_http_client_response_read(r, buf, 0, -1), EINVAL);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    /* whole: over the limit is EMSGSIZE, and the connection is dropped */
    r = corio_http_client_get(cl, url("/big?n=1000001"), corio_now() + 10 * SEC);
    cr_assert_not_null(r);
    cr_assert_null(corio_http_client_response_body(r, NULL, corio_now() + 10 * SEC));
    cr_assert_eq(errno, EMSGSIZE);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    cr_assert_eq(corio_http_client_connections(cl), 0); /* it was the pooled one */
    /* exactly the limit is fine */
    r = corio_http_client_get(cl, url("/big?n=1000000"), corio_now() + 10 * SEC);
    cr_assert_not_null(corio_http_client_response_body(r, &total, -1));
    cr_assert_eq(total, 1000000);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, big_bodies_streamed_and_limited, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_big);
    aiohttp_stop();
}

static void t_cookies(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_client_opts no = {.no_cookies = true};
    corio_http_client *nocl = client(&no);
    char *b;

    expect_body(cl, "GET", url("/cookie/show"), NULL, 200, "");
    expect_body(cl, "GET", url("/cookie/set"), NULL, 200, "set");
    cr_assert_str_eq(corio_http_client_cookie(cl, url("/"), "session"), "abc");
    cr_assert_null(corio_http_client_cookie(cl, url("/"), "scoped"));
    cr_assert_eq(errno, ENOENT);
    /* the path-scoped cookie goes to /cookie/... only */
    expect_body(cl, "GET", url("/cookie/show"), NULL, 200,
                "scoped=yes; session=abc");
    expect_body(cl, "GET", url("/show"), NULL, 200, "session=abc");
    /* another host (localhost is not 127.0.0.1) gets none */
    b = strdup(url("/show"));
    {
        char other[128];

        snprintf(other, sizeof(other), "http://localhost:%d/show", peer.port);
        expect_body(cl, "GET", other, NULL, 200, "");
    }
    free(b);
    expect_body(cl, "GET", url("/cookie/del"), NULL, 200, "deleted");
    expect_body(cl, "GET", url("/show"), NULL, 200, "");
    /* no jar */
    expect_body(nocl, "GET", url("/cookie/set"), NULL, 200, "set");
    expect_body(nocl, "GET", url("/show"), NULL, 200, "");
    cr_assert_eq(corio_http_client_free(nocl), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, cookie_jar, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_cookies);
    aiohttp_stop();
}

static corio_http_client *shared_cl;

static void *slow_get(void *arg)
{
    corio_http_client_response *r =
        corio_http_client_get(shared_cl, arg, -1);

    cr_assert_null(r);
    return (void *)(intptr_t)errno;
}

static void t_deadline_cancel(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_client_response *r;
    int64_t t0 = corio_now();
    corio_task *t;
    void *res;
    char buf[16];

    r = corio_http_client_get(cl, url("/slow?s=3"), corio_now() + 100 * MS);
    cr_assert_null(r);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(corio_now() - t0, 100 * MS);
    cr_assert_lt(corio_now() - t0, 100 * MS + SLACK);
    cr_assert_eq(corio_http_client_connections(cl), 0);
    /* a scope's deadline too */
    {
        CORIO_SCOPE(corio_now() + 50 * MS);
        r = corio_http_client_get(cl, url("/slow?s=3"), -1);
        cr_assert_null(r);
        cr_assert_eq(errno, ETIMEDOUT);
    }
    /* cancelled while it waits for the head */
    shared_cl = cl;
    t = corio_task_spawn(slow_get, url("/slow?s=3"), NULL);
    cr_assert_eq(corio_sleep(50 * MS), 0);
    cr_assert_eq(corio_task_cancel(t), 1);
    cr_assert_eq(corio_task_join(t, &res), -1);
    cr_assert_eq(errno, ECANCELED);
    /* a deadline while reading a body: the chunked one takes 50 ms */
    r = corio_http_client_get(cl, url("/chunked"), corio_now() + 5 * SEC);
    cr_assert_not_null(r);
    {
        ssize_t k;

        do
            k = corio_http_client_response_read(r, buf, sizeof(buf),
                                                corio_now() + 1 * MS);
        while (k > 0);
        cr_assert_eq(k, -1);
        cr_assert_eq(errno, ETIMEDOUT);
    }
    cr_assert_eq(corio_http_client_response_close(r), 0);
    /* the client still works */
    expect_body(cl, "GET", url("/hello"), NULL, 200, "hello");
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, deadlines_and_cancellation, .timeout = TIMEOUT)
{
    aiohttp_start();
    run(t_deadline_cancel);
    aiohttp_stop();
}

/* ---- Against corio servers of the test's own ------------------------------ */

struct raw_server {
    const char *reply;      /* what each request gets */
    size_t reply_len;
    bool close_after;       /* close without a word after replying */
    int delay_ms;
    int conns, active, max_active;
    bool endless;           /* then an endless body */
    bool reset;             /* end with a reset (RST), not a FIN */
    bool close_on_second;   /* read a second request, then close without
                               a word (the server's keep-alive timeout
                               racing the client's next request) */
};

/* Read a request head (to the blank line); 0 at its end, -1 when the
 * connection ended. */
static int read_request(corio_stream *s)
{
    char line[4096];
    ssize_t n;

    for (;;) {
        n = corio_stream_readline(s, line, sizeof(line), corio_now() + 10 * SEC);
        if (n <= 0)
            return -1;
        if (strcmp(line, "\r\n") == 0)
            return 0;
    }
}

static void raw_handler(corio_stream *s, void *arg)
{
    struct raw_server *rs = arg;

    rs->conns++;
    if (++rs->active > rs->max_active)
        rs->max_active = rs->active;
    for (int n = 0; read_request(s) == 0; n++) {
        if (n == 1 && rs->close_on_second)
            break;
        if (rs->delay_ms && corio_sleep(rs->delay_ms * MS) == -1)
            break;
        if (corio_stream_write(s, rs->reply, rs->reply_len) == -1 ||
            corio_stream_drain(s, corio_now() + 5 * SEC) == -1)
            break;
        while (rs->endless) {
            static const char junk[65536];

            if (corio_stream_write(s, junk, sizeof(junk)) == -1 ||
                corio_stream_drain(s, corio_now() + 5 * SEC) == -1)
                break;
        }
        if (rs->close_after)
            break;
    }
    if (rs->reset) {
        struct linger l = {1, 0};

        setsockopt(corio_stream_fd(s), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    rs->active--;
}

static corio_server *raw_start(struct raw_server *rs, char *u, size_t size)
{
    corio_server *srv = corio_server_start("127.0.0.1:0", NULL, raw_handler, rs);
    char addr[64];

    cr_assert_not_null(srv);
    server_addr(srv, addr, sizeof(addr));
    snprintf(u, size, "http://%s/x", addr);
    return srv;
}

#define OK_REPLY "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void *pool_get(void *arg)
{
    char *b = fetch(shared_cl, "GET", arg, NULL, 200);

    cr_assert_str_eq(b, "ok");
    free(b);
    return NULL;
}

static void t_pool_limit(void)
{
    struct raw_server rs = {.reply = OK_REPLY, .reply_len = strlen(OK_REPLY),
                            .delay_ms = 30};
    char u[128];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client_opts o = {.limit_per_host = 2};
    corio_task *t[8];

    shared_cl = client(&o);
    for (int i = 0; i < 8; i++) {
        t[i] = corio_task_spawn(pool_get, u, NULL);
        cr_assert_not_null(t[i]);
    }
    cr_assert_eq(corio_task_join_all(t, 8, NULL), 0);
    cr_assert_eq(rs.max_active, 2);
    cr_assert_eq(rs.conns, 2);
    cr_assert_eq(corio_http_client_connections(shared_cl), 2);
    /* a request that cannot get a connection within its deadline */
    {
        corio_http_client_response *a = corio_http_client_get(shared_cl, u, -1);
        corio_http_client_response *b = corio_http_client_get(shared_cl, u, -1);

        cr_assert_not_null(a);
        cr_assert_not_null(b);
        cr_assert_null(corio_http_client_get(shared_cl, u, corio_now() + 30 * MS));
        cr_assert_eq(errno, ETIMEDOUT);
        expect_fail(corio_http_client_free(shared_cl), EBUSY);
        cr_assert_eq(corio_http_client_response_close(a), 0);
        cr_assert_eq(corio_http_client_response_close(b), 0);
    }
    cr_assert_eq(corio_http_client_free(shared_cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

Test(http_client, pool_limit_per_host, .timeout = TIMEOUT)
{
    run(t_pool_limit);
}

static void t_stale(void)
{
    struct raw_server rs = {.reply = OK_REPLY, .reply_len = strlen(OK_REPLY),
                            .close_on_second = true};
    char u[128];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client *cl = client(NULL);
    corio_http_client_req_opts post = {.body = "x", .body_len = 1};
    corio_http_client_response *r;

    expect_body(cl, "GET", u, NULL, 200, "ok");
    /* GET on the pooled connection: the server closes it on receipt; sent
     * once more on a new connection */
    expect_body(cl, "GET", u, NULL, 200, "ok");
    cr_assert_eq(rs.conns, 2);
    /* POST is not idempotent: not sent again */
    r = corio_http_client_request(cl, "POST", u, &post, corio_now() + 5 * SEC);
    cr_assert_null(r);
    cr_assert(errno == CORIO_EEOF || errno == ECONNRESET || errno == EPIPE,
              "%s", corio_err_name(errno));
    cr_assert_eq(rs.conns, 2);
    cr_assert_eq(corio_http_client_connections(cl), 0);
    /* a fresh connection that ends without a reply is not retried */
    rs.reply_len = 0;
    rs.close_after = true;
    r = corio_http_client_get(cl, u, corio_now() + 5 * SEC);
    cr_assert_null(r);
    cr_assert_eq(errno, CORIO_EEOF);
    cr_assert_eq(rs.conns, 3);
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

/* A pooled connection the server closed while it was idle is seen closed
 * before it is used: even a POST goes through, on a new connection. */
static void t_closed_idle(void)
{
    struct raw_server rs = {.reply = OK_REPLY, .reply_len = strlen(OK_REPLY),
                            .close_after = true};
    char u[128];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client *cl = client(NULL);
    corio_http_client_req_opts post = {.body = "x", .body_len = 1};

    expect_body(cl, "GET", u, NULL, 200, "ok");
    cr_assert_eq(corio_http_client_connections(cl), 1);
    cr_assert_eq(corio_sleep(30 * MS), 0); /* its FIN arrives */
    expect_body(cl, "POST", u, &post, 200, "ok");
    cr_assert_eq(rs.conns, 2);
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

Test(http_client, idle_connection_closed_by_server_not_used, .timeout = TIMEOUT)
{
    run(t_closed_idle);
}

Test(http_client, stale_connection_retried_once_for_idempotent, .timeout = TIMEOUT)
{
    run(t_stale);
}

static bool reset_peer;

/* Cancel a request at every point it may wait: after k turns of the loop
 * (connect, the pool, sending, the head, the body), for growing k. Each
 * task ends (done or cancelled), nothing stays busy, and the pool stays
 * within its limit. */
static void *get_and_read(void *arg)
{
    corio_http_client_response *r = corio_http_client_get(shared_cl, arg, -1);
    const char *b;

    if (r == NULL)
        return (void *)(intptr_t)errno;
    b = corio_http_client_response_body(r, NULL, -1);
    corio_http_client_response_close(r);
    return b != NULL ? NULL : (void *)(intptr_t)errno;
}

static void t_cancel_sweep(void)
{
    struct raw_server rs = {.reply = OK_REPLY, .reply_len = strlen(OK_REPLY),
                            .delay_ms = 2};
    char u[128];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client_opts o = {.limit_per_host = 2};
    int done = 0, cancelled = 0;

    shared_cl = client(&o);
    /* at least 60 rounds, and until some requests had time to finish (a
     * slow build needs more turns) */
    for (int k = 0; (k < 60 || done < 3) && k < 2000; k++) {
        corio_task *t[3];
        void *res;

        for (int i = 0; i < 3; i++)
            t[i] = corio_task_spawn(get_and_read, u, NULL);
        for (int i = 0; i < k; i++)
            cr_assert_eq(corio_sleep(i % 4 == 0 ? 1 * MS : 0), 0);
        for (int i = 0; i < 3; i++) {
            corio_task_cancel(t[i]);
            if (corio_task_join(t[i], &res) == 0 && res == NULL) {
                done++;
            } else {
                cr_assert(errno == ECANCELED ||
                          (intptr_t)res == ECANCELED, "%s",
                          corio_err_name(errno));
                cancelled++;
            }
        }
        /* (the server may still be finishing connections the client
         * closed: only the client's own count is bounded) */
        cr_assert_leq(corio_http_client_connections(shared_cl), 2);
    }
    cr_assert_gt(done, 0);
    cr_assert_gt(cancelled, 0);
    /* still serves, and nothing is left busy */
    expect_body(shared_cl, "GET", u, NULL, 200, "ok");
    cr_assert_eq(corio_http_client_free(shared_cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

Test(http_client, cancelled_at_every_wait, .timeout = TIMEOUT)
{
    run(t_cancel_sweep);
}

static void hostile(const char *reply, size_t len, bool endless, int err_head,
                    int err_body)
{
    struct raw_server rs = {.reply = reply, .reply_len = len,
                            .close_after = true, .endless = endless,
                            .reset = reset_peer};
    char u[128];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client *cl = client(NULL);
    corio_http_client_response *r = corio_http_client_get(cl, u, corio_now() + 5 * SEC);

    if (err_head) {
        cr_assert_null(r, "%s accepted", reply);
        cr_assert_eq(errno, err_head, "%s: %s", reply, corio_err_name(errno));
    } else {
        cr_assert_not_null(r, "%s", corio_strerror(errno));
        cr_assert_null(corio_http_client_response_body(r, NULL, corio_now() + 5 * SEC));
        cr_assert_eq(errno, err_body, "%s: %s", reply, corio_err_name(errno));
        cr_assert_eq(corio_http_client_response_close(r), 0);
    }
    cr_assert_eq(corio_http_client_connections(cl), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

static void t_hostile(void)
{
    static char huge[40000];
    int n;

    hostile("garbage\r\n\r\n", 11, false, EPROTO, 0);
    hostile("HTTP/2.0 200 OK\r\n\r\n", 19, false, EPROTO, 0);
    hostile("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            57, false, EPROTO, 0);
    n = snprintf(huge, sizeof(huge), "HTTP/1.1 200 OK\r\nX: ");
    memset(huge + n, 'a', 30000);
    memcpy(huge + n + 30000, "\r\n\r\n", 4);
    hostile(huge, (size_t)n + 30004, false, EMSGSIZE, 0);
    /* a body that never ends, over the limit */
    hostile("HTTP/1.1 200 OK\r\n\r\n", 19, true, 0, EMSGSIZE);
    /* the connection ends inside the body */
    hostile("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 45, false,
            0, CORIO_EEOF);
    /* a bad chunk */
    hostile("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 51,
            false, 0, EPROTO);
    /* gzip that is not */
    hostile("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n"
            "\r\nhello", 66, false, 0, EPROTO);
    /* an unknown coding */
    hostile("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 5\r\n"
            "\r\nhello", 64, false, EPROTO, 0);
    /* reset inside the body, and before any answer */
    reset_peer = true;
    hostile("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", 45,
            false, 0, ECONNRESET);
    hostile("", 0, false, ECONNRESET, 0);
    reset_peer = false;
}

Test(http_client, hostile_servers, .timeout = TIMEOUT)
{
    run(t_hostile);
}

static void t_bad_input(void)
{
    corio_http_client *cl = client(NULL);
    corio_http_headers *h = corio_http_headers_new();
    corio_http_client_req_opts o = {.headers = h};
    const char *bad[] = {"ftp://x/", "http://", "http:///x", "http://a b/",
                         "http://u:p@host/", "http://host:99999/",
                         "http://host:x/", "http://[::1/", "localhost/x", NULL};

    for (int i = 0; bad[i]; i++) {
        cr_assert_null(corio_http_client_get(cl, bad[i], -1), "%s", bad[i]);
        cr_assert_eq(errno, EINVAL, "%s: %s", bad[i], corio_err_name(errno));
    }
    cr_assert_null(corio_http_client_request(cl, "GE T", "http://127.0.0.1:1/",
                                             NULL, -1));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_http_headers_add(h, "Content-Length", "5"), 0);
    cr_assert_null(corio_http_client_request(cl, "GET", "http://127.0.0.1:1/",
                                             &o, -1));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_http_client_get(cl, "http://127.0.0.1:1/", -1));
    cr_assert_eq(errno, ECONNREFUSED);
    cr_assert_null(corio_http_client_get(NULL, "http://127.0.0.1:1/", -1));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_http_client_response_close(NULL), 0);
    cr_assert_eq(corio_http_client_free(NULL), 0);
    corio_http_headers_free(h);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, bad_input, .timeout = TIMEOUT)
{
    run(t_bad_input);
}

/* An IPv6 literal: [::1] in the URL, Host with its brackets. */
static void t_ipv6(void)
{
    struct raw_server rs = {.reply = OK_REPLY, .reply_len = strlen(OK_REPLY)};
    corio_server *srv = corio_server_start("[::1]:0", NULL, raw_handler, &rs);
    corio_http_client *cl = client(NULL);
    char u[128], addr[64];
    const char *q[] = {"k", "v", NULL};
    corio_http_client_req_opts o = {.query = q};
    corio_http_client_response *r;

    cr_assert_not_null(srv);
    server_addr(srv, addr, sizeof(addr));
    snprintf(u, sizeof(u), "http://%s/x?a=1#frag", addr);
    r = corio_http_client_request(cl, "GET", u, &o, corio_now() + 5 * SEC);
    cr_assert_not_null(r, "%s: %s", u, corio_strerror(errno));
    cr_assert_str_eq(corio_http_client_response_body(r, NULL, -1), "ok");
    snprintf(u, sizeof(u), "http://%s/x?a=1&k=v", addr);
    cr_assert_str_eq(corio_http_client_response_url(r), u);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

Test(http_client, ipv6_literal_query_and_fragment, .timeout = TIMEOUT)
{
    if (!have_ipv6())
        cr_skip_test("no IPv6 loopback here");
    run(t_ipv6);
}

/* ---- TLS ----------------------------------------------------------------- */

static char certdir[64];

static void tls_handler(corio_stream *s, void *arg)
{
    (void)arg;
    while (read_request(s) == 0)
        if (corio_stream_write(s, OK_REPLY, strlen(OK_REPLY)) == -1 ||
            corio_stream_drain(s, corio_now() + 5 * SEC) == -1)
            break;
}

static void t_https(void)
{
    char cert[128], key[128], ca[128], u[128], addr[64];
    corio_tls_opts so = {.cert_file = cert, .key_file = key};
    corio_tls *stls, *ctls;
    corio_listen_opts lo = {0};
    corio_server *srv;
    corio_http_client *def, *cl;
    corio_http_client_opts co = {0};

    snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
    snprintf(key, sizeof(key), "%s/server.key", certdir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
    stls = corio_tls_server(&so);
    cr_assert_not_null(stls);
    lo.tls = stls;
    srv = corio_server_start("127.0.0.1:0", &lo, tls_handler, NULL);
    cr_assert_not_null(srv);
    server_addr(srv, addr, sizeof(addr));
    snprintf(u, sizeof(u), "https://localhost:%s/", strchr(addr, ':') + 1);
    /* verification is on by default: the throw-away CA is not trusted */
    def = client(NULL);
    cr_assert_null(corio_http_client_get(def, u, corio_now() + 5 * SEC));
    cr_assert_eq(errno, EPROTO);
    cr_assert_eq(corio_http_client_free(def), 0);
    /* trusted */
    ctls = corio_tls_client(&(corio_tls_opts){.ca_file = ca});
    cr_assert_not_null(ctls);
    co.tls = ctls;
    cl = client(&co);
    corio_tls_free(ctls); /* the client keeps its own reference */
    expect_body(cl, "GET", u, NULL, 200, "ok");
    expect_body(cl, "GET", u, NULL, 200, "ok");
    cr_assert_eq(corio_http_client_connections(cl), 1);
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
    corio_tls_free(stls);
}

Test(http_client, https_verified, .timeout = TIMEOUT)
{
    snprintf(certdir, sizeof(certdir), "/tmp/corio-hc-certs-%d", (int)getpid());
    cr_assert_eq(mkdir(certdir, 0700), 0);
    cr_assert_eq(devcert_make(certdir), 0);
    run(t_https);
    devcert_remove(certdir);
}

/* ---- Python's http.server and nginx -------------------------------------- */

static char docroot[64];

static void write_file(const char *dir, const char *name, const char *text,
                       size_t n)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void t_static(void)
{
    corio_http_client *cl = client(NULL);
    char *want = expected_data();
    char *a, *b;

    expect_body(cl, "GET", url("/data.txt"), NULL, 200, want);
    a = fetch(cl, "GET", url("/small.txt"), NULL, 200);
    cr_assert_str_eq(a, "small\n");
    b = fetch(cl, "GET", url("/nope"), NULL, 404);
    free(a);
    free(b);
    free(want);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

static void make_docroot(void)
{
    char *data = expected_data();

    snprintf(docroot, sizeof(docroot), "/tmp/corio-hc-www-%d", (int)getpid());
    cr_assert_eq(mkdir(docroot, 0755), 0); /* nginx workers read it */
    write_file(docroot, "data.txt", data, strlen(data));
    write_file(docroot, "small.txt", "small\n", 6);
    free(data);
}

static void remove_tree(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* http.server answers HTTP/1.0: each body ends with its connection. */
Test(http_client, python_http_server, .timeout = TIMEOUT)
{
    char code[512];
    char *argv[] = {"/usr/bin/python3", "-c", code, NULL};

    make_docroot();
    snprintf(code, sizeof(code),
             "import http.server, sys, threading, os\n"
             "os.chdir('%s')\n"
             "class H(http.server.SimpleHTTPRequestHandler):\n"
             "    def log_message(self, *a): pass\n"
             "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
             "print('PORT', s.server_address[1], flush=True)\n"
             "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
             "sys.stdin.read()\n"
             "s.shutdown()\n",
             docroot);
    peer_start(&peer, argv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", peer.port);
    run(t_static);
    cr_assert_eq(peer_stop(&peer), 0);
    remove_tree(docroot);
}

/* nginx as an upstream: keep-alive, gzip on, chunked for gzip. */
static void t_nginx(void)
{
    corio_http_client *cl = client(NULL);
    char *want = expected_data(), *a, *b;
    corio_http_client_response *r;

    r = corio_http_client_get(cl, url("/data.txt"), corio_now() + 5 * SEC);
    cr_assert_not_null(r, "%s", corio_strerror(errno));
    cr_assert_eq(corio_http_client_response_status(r), 200);
    cr_assert_str_eq(corio_http_headers_get(corio_http_client_response_headers(r),
                                            "Content-Encoding"), "gzip");
    { const char *got_ = corio_http_client_response_body(r, NULL, -1); cr_assert(got_ != NULL && strcmp(got_, want) == 0, "%s %zu %zu", got_ ? "differs" : corio_strerror(errno), got_ ? strlen(got_) : 0, strlen(want)); }
    cr_assert_eq(corio_http_client_response_close(r), 0);
    a = fetch(cl, "GET", url("/small.txt"), NULL, 200);
    b = fetch(cl, "GET", url("/small.txt"), NULL, 200);
    cr_assert_str_eq(a, "small\n");
    cr_assert_str_eq(b, "small\n");
    cr_assert_eq(corio_http_client_connections(cl), 1);
    expect_body(cl, "HEAD", url("/data.txt"), NULL, 200, "");
    free(b);
    b = fetch(cl, "GET", url("/missing"), NULL, 404);
    free(b);
    free(a);
    free(want);
    cr_assert_eq(corio_http_client_connections(cl), 1);
    cr_assert_eq(corio_http_client_free(cl), 0);
}

Test(http_client, nginx_upstream, .timeout = TIMEOUT)
{
    char conf[128], prefix[64], code[1024], text[1024];
    char *argv[] = {"/usr/bin/python3", "-c", code, NULL};

    make_docroot();
    snprintf(prefix, sizeof(prefix), "/tmp/corio-hc-nginx-%d", (int)getpid());
    cr_assert_eq(mkdir(prefix, 0700), 0);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", prefix);
    /* the port: python finds a free one, writes the config, runs nginx in
     * the foreground and stops it when stdin closes */
    snprintf(code, sizeof(code),
             "import socket, subprocess, sys\n"
             "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
             "conf = open('%s').read().replace('PORT', str(port))\n"
             "open('%s', 'w').write(conf)\n"
             "p = subprocess.Popen(['/usr/sbin/nginx', '-p', '%s', '-c', '%s', '-g', 'daemon off;'])\n"
             "import time\n"
             "for i in range(200):\n"
             "    try: socket.create_connection(('127.0.0.1', port)).close(); break\n"
             "    except OSError: time.sleep(0.02)\n"
             "print('PORT', port, flush=True)\n"
             "sys.stdin.read()\n"
             "p.terminate(); p.wait()\n",
             conf, conf, prefix, conf);
    snprintf(text, sizeof(text),
             "error_log %s/error.log;\n"
             "pid %s/nginx.pid;\n"
             "worker_processes 1;\n"
             "events { worker_connections 64; }\n"
             "http {\n"
             "  access_log off;\n"
             "  client_body_temp_path %s; proxy_temp_path %s;\n"
             "  fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
             "  gzip on; gzip_types text/plain; gzip_min_length 100;\n"
             "  keepalive_timeout 30;\n"
             "  types { text/plain txt; }\n"
             "  server { listen 127.0.0.1:PORT; root %s; }\n"
             "}\n",
             prefix, prefix, prefix, prefix, prefix, prefix, prefix, docroot);
    write_file(prefix, "nginx.conf", text, strlen(text));
    peer_start(&peer, argv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", peer.port);
    run(t_nginx);
    cr_assert_eq(peer_stop(&peer), 0);
    remove_tree(docroot);
    remove_tree(prefix);
}
