/* tests/test_http_client.c -- the HTTP client
 * (include/corio/http_client.h) against corio servers of the test's own:
 * the per-host limit, a stale pooled connection (retried for idempotent
 * methods only), an idle connection the server closed, cancellation at
 * every wait, hostile servers (garbage, huge heads, endless and cut bodies,
 * bad chunks and gzip, resets), bad input, IPv6, https with a throw-away
 * CA. The tests against aiohttp, http.server and nginx are in
 * test_http_client_interop.c.
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "loop_test.h"
#include "net_test.h"
#include "timing.h"
#include "http_client_test.h"
#include "../examples/devcert.h"

static corio_http_client *shared_cl;

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

/* A response read by one task is not closed or read by another. */
static corio_http_client_response *shared_r;

static void *read_whole(void *arg)
{
    (void)arg;
    return corio_http_client_response_body(shared_r, NULL, -1) == NULL
               ? (void *)(intptr_t)errno
               : NULL;
}

static void t_busy_response(void)
{
    /* a head, then a body that never comes */
    struct raw_server rs = {.reply = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                            .reply_len = 38};
    char u[128], buf[4];
    corio_server *srv = raw_start(&rs, u, sizeof(u));
    corio_http_client *cl = client(NULL);
    corio_task *t;
    void *res;

    shared_r = corio_http_client_get(cl, u, corio_now() + 5 * SEC);
    cr_assert_not_null(shared_r);
    t = corio_task_spawn(read_whole, NULL, NULL);
    cr_assert_eq(corio_sleep(10 * MS), 0);
    expect_fail(corio_http_client_response_close(shared_r), EBUSY);
    expect_fail(corio_http_client_response_read(shared_r, buf, 4, -1), EBUSY);
    cr_assert_null(corio_http_client_response_body(shared_r, NULL, -1));
    cr_assert_eq(errno, EBUSY);
    expect_fail(corio_http_client_free(cl), EBUSY);
    cr_assert_eq(corio_task_cancel(t), 1);
    cr_assert_eq(corio_task_join(t, &res), -1);
    cr_assert_eq(errno, ECANCELED);
    cr_assert_eq(corio_http_client_response_close(shared_r), 0);
    cr_assert_eq(corio_http_client_connections(cl), 0); /* mid-body: closed */
    cr_assert_eq(corio_http_client_free(cl), 0);
    cr_assert_eq(corio_server_stop(srv, corio_now() + SEC), 0);
}

Test(http_client, response_in_use_is_not_closed, .timeout = TIMEOUT)
{
    run(t_busy_response);
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
    /* verification is on by default: the throw-away CA is not trusted (the
     * deadline is not under test: a handshake under valgrind can take
     * more than 5 s on a slow machine, and would end in ETIMEDOUT) */
    def = client(NULL);
    cr_assert_null(corio_http_client_get(def, u, corio_now() + 20 * SEC));
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

