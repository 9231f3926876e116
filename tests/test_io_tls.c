/* tests/test_io_tls.c -- TLS streams (corio/tls.h): a verified echo over
 * TCP (IPv4, IPv6) with SNI and ALPN; every way verification fails (self-
 * signed, wrong name, expired, unknown CA in the system store) and its
 * message; mutual TLS; bad options and misuse; clean shutdown, close_notify
 * and truncation; cancellation and deadlines during the handshake on both
 * sides; STARTTLS on a plain stream; a reader and a drainer on one TLS
 * stream at once with backpressure; a server stopped under TLS
 * connections. Certificates are made at test time (examples/devcert.h) in
 * a temporary directory.
 *
 * Every test has the same .timeout (Criterion leaks in its runner
 * otherwise, see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"
#include "timing.h"
#include "../examples/devcert.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT 120
#define MS CORIO_MSEC

static char dir[64];

static const char *path(const char *name)
{
    static char buf[8][128];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void setup(void)
{
    strcpy(dir, "/tmp/corio-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(devcert_make(dir), 0);
}

static void teardown(void)
{
    unlink(path("junk.pem")); /* the tests' own files */
    unlink(path("sock"));
    devcert_remove(dir);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = TIMEOUT);

static void run_main(corio_fn fn, void *arg)
{
    signal(SIGPIPE, SIG_DFL); /* a write must never raise it */
    run_main_no_fd_leak(fn, arg);
}

static corio_tls *server_ctx(const char *stem, const char *alpn)
{
    char cert[32], key[32];
    corio_tls_opts o = {.alpn = alpn};

    snprintf(cert, sizeof(cert), "%s.pem", stem);
    snprintf(key, sizeof(key), "%s.key", stem);
    o.cert_file = path(cert);
    o.key_file = path(key);
    return corio_tls_server(&o);
}

static corio_tls *client_ctx(void)
{
    corio_tls_opts o = {.ca_file = path("ca.pem")};

    return corio_tls_client(&o);
}

/* A TLS server on 127.0.0.1 (or addr) with handler; *port gets its port. */
static corio_server *serve_tls(corio_tls *tls, const char *addr,
                               corio_conn_fn handler, void *arg, int *port)
{
    corio_listen_opts l = {.tls = tls, .tls_timeout = 2000 * MS};
    corio_server *srv = corio_server_start(addr ? addr : "127.0.0.1:0", &l, handler,
                                    arg);

    if (srv != NULL)
        *port = bound_port(corio_server_fd(srv));
    return srv;
}

/* What the echo handler saw. */
struct seen {
    int calls;
    char server_name[64];
    char alpn[32];
    char version[16];
    int end;            /* the last read's result: 0 clean end, -1 error */
    int end_errno;
};

/* Echo lines until the end; note what TLS said. */
static void echo_handler(corio_stream *s, void *arg)
{
    struct seen *seen = arg;
    char line[256];
    ssize_t n;

    if (seen != NULL) {
        seen->calls++;
        snprintf(seen->server_name, sizeof(seen->server_name), "%s",
                 corio_tls_server_name(s) ? corio_tls_server_name(s) : "");
        snprintf(seen->alpn, sizeof(seen->alpn), "%s",
                 corio_tls_alpn(s) ? corio_tls_alpn(s) : "");
        snprintf(seen->version, sizeof(seen->version), "%s",
                 corio_tls_version(s) ? corio_tls_version(s) : "");
    }
    while ((n = corio_stream_readline(s, line, sizeof(line), -1)) > 0)
        if (corio_stream_write(s, line, (size_t)n) == -1 ||
            corio_stream_drain(s, -1) == -1)
            break;
    if (seen != NULL) {
        seen->end = (int)n;
        seen->end_errno = n == -1 ? errno : 0;
    }
    /* answer the peer's end with ours (close_notify); a peer already gone
     * fails it, and the tests that care see that on their side */
    if (n == 0 && corio_stream_shutdown(s, corio_now() + 1000 * MS) == -1)
        return;
}

static const char *echo_line(corio_stream *s, const char *text)
{
    char line[256];

    CHECK(corio_stream_write(s, text, strlen(text)) == 0);
    CHECK(corio_stream_drain(s, -1) == 0);
    CHECK(corio_stream_readline(s, line, sizeof(line), -1) ==
          (ssize_t)strlen(text));
    CHECK(strcmp(line, text) == 0);
    return NULL;
}

/* ---- A verified echo ------------------------------------------------------ */

static void *echo_main(void *arg)
{
    struct seen seen = {0};
    corio_tls *stls = server_ctx("server", "h2,echo/1");
    corio_tls_opts co = {.ca_file = path("ca.pem"), .alpn = "x/0,echo/1"};
    corio_tls *ctls = corio_tls_client(&co);
    corio_server *srv;
    corio_stream *s;
    const char *f;
    char addr[64], line[64];
    int port;

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    srv = serve_tls(stls, "[::]:0", echo_handler, &seen, &port);
    CHECK(srv != NULL);
    corio_tls_free(stls); /* the server keeps its reference */

    /* by name: SNI sent, the certificate verified for "localhost" */
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(strcmp(corio_tls_alpn(s), "echo/1") == 0);
    CHECK(strcmp(corio_tls_version(s), "TLSv1.3") == 0);
    CHECK(strcmp(corio_tls_server_name(s), "localhost") == 0);
    if ((f = echo_line(s, "hello over TLS\n")) != NULL)
        return (void *)f;
    if ((f = echo_line(s, "second line\n")) != NULL)
        return (void *)f;
    CHECK(seen.calls == 1);
    CHECK(strcmp(seen.server_name, "localhost") == 0);
    CHECK(strcmp(seen.alpn, "echo/1") == 0);
    CHECK(strcmp(seen.version, "TLSv1.3") == 0);
    /* a clean end: our close_notify, the server's end, its close_notify */
    CHECK(corio_stream_shutdown(s, -1) == 0);
    CHECK(corio_stream_read(s, line, sizeof(line), -1) == 0);
    CHECK(corio_stream_close(s) == 0);
    CHECK(seen.end == 0);

    /* by IP address (v4 and v6): verified against the certificate's IPs,
     * no SNI */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(corio_tls_server_name(s) == NULL);
    if ((f = echo_line(s, "by v4\n")) != NULL)
        return (void *)f;
    CHECK(corio_stream_close(s) == 0);
    snprintf(addr, sizeof(addr), "[::1]:%d", port);
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    if (s != NULL) { /* no IPv6 loopback here: skip that part */
        if ((f = echo_line(s, "by v6\n")) != NULL)
            return (void *)f;
        CHECK(corio_stream_close(s) == 0);
    }
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, echo_verified_with_sni_and_alpn)
{
    run_main(echo_main, NULL);
}

/* ---- Bulk both ways at once: a reader and a drainer on one stream --------- */

#define BULK (420 * 5000) /* 2 MB in 5,000-byte writes */

struct bulk {
    corio_stream *s;
    size_t got;
    unsigned sum;
};

static void *bulk_reader(void *arg)
{
    struct bulk *b = arg;
    char buf[7000];
    ssize_t n;

    while ((n = corio_stream_read(b->s, buf, sizeof(buf), -1)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            b->sum = b->sum * 31 + (unsigned char)buf[i];
        b->got += (size_t)n;
    }
    return n == 0 ? NULL : corio_task_fail(errno);
}

static int bulk_write(corio_stream *s)
{
    static char chunk[5000];

    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)(i * 7 + 3);
    for (size_t sent = 0; sent < BULK; sent += sizeof(chunk))
        if (corio_stream_write(s, chunk, sizeof(chunk)) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return -1;
    return corio_stream_shutdown(s, -1);
}

static unsigned bulk_sum(void)
{
    unsigned sum = 0;

    for (size_t sent = 0; sent < BULK; sent += 5000)
        for (size_t i = 0; i < 5000; i++)
            sum = sum * 31 + (unsigned char)(char)(i * 7 + 3);
    return sum;
}

/* Read everything in a task of its own while writing BULK bytes. */
static void bulk_handler(corio_stream *s, void *arg)
{
    struct bulk *b = arg;
    corio_task *r;

    b->s = s;
    r = corio_task_spawn(bulk_reader, b, NULL);
    if (r == NULL || bulk_write(s) == -1)
        b->got = 0;
    if (r != NULL && corio_task_join(r, NULL) == -1)
        b->got = 0;
}

static void *bulk_main(void *arg)
{
    struct bulk server = {0}, client = {0};
    corio_tls *stls = server_ctx("server", NULL), *ctls = client_ctx();
    corio_server *srv;
    corio_task *r;
    char addr[64];
    int port;

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    srv = serve_tls(stls, NULL, bulk_handler, &server, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    client.s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(client.s != NULL);
    r = corio_task_spawn(bulk_reader, &client, NULL);
    CHECK(r != NULL);
    CHECK(bulk_write(client.s) == 0);
    CHECK(corio_task_join(r, NULL) == 0);
    CHECK(client.got == BULK && client.sum == bulk_sum());
    CHECK(corio_stream_close(client.s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 5000 * MS) == 0);
    CHECK(server.got == BULK && server.sum == bulk_sum());
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, bulk_both_ways_with_backpressure)
{
    run_main(bulk_main, NULL);
}

/* ---- Verification failures ------------------------------------------------ */

struct refusal {
    const char *server;     /* the server's certificate stem */
    const char *connect;    /* "localhost" or another name for the address */
    bool system_store;      /* the client trusts the system store only */
    const char *message;    /* expected in corio_tls_error() */
};

static void *refusal_main(void *arg)
{
    const struct refusal *r = arg;
    struct seen seen = {0};
    corio_tls *stls = server_ctx(r->server, NULL);
    corio_tls *ctls = r->system_store ? corio_tls_client(NULL) : client_ctx();
    corio_server *srv;
    char addr[64];
    int port;

    CHECK(stls != NULL && ctls != NULL);
    srv = serve_tls(stls, NULL, echo_handler, &seen, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "%s:%d", r->connect, port);
    errno = 0;
    CHECK(corio_tls_connect(ctls, addr, corio_now() + 5000 * MS) == NULL);
    CHECK(errno == EPROTO);
    if (strstr(corio_tls_error(), r->message) == NULL) {
        snprintf(failure, sizeof(failure), "message \"%s\", expected \"%s\"",
                 corio_tls_error(), r->message);
        return failure;
    }
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    CHECK(seen.calls == 0); /* the handler never ran */
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, refuses_self_signed)
{
    struct refusal r = {"self", "localhost", false,
                        "certificate verify failed: self-signed certificate"};

    run_main(refusal_main, &r);
}

Test(tls, refuses_wrong_name)
{
    struct refusal r = {"other", "localhost", false,
                        "certificate verify failed: hostname mismatch"};

    run_main(refusal_main, &r);
}

Test(tls, refuses_wrong_ip)
{
    struct refusal r = {"other", "127.0.0.1", false,
                        "certificate verify failed: IP address mismatch"};

    run_main(refusal_main, &r);
}

Test(tls, refuses_expired)
{
    struct refusal r = {"expired", "localhost", false,
                        "certificate verify failed: certificate has expired"};

    run_main(refusal_main, &r);
}

Test(tls, system_store_does_not_trust_the_test_ca)
{
    struct refusal r = {"server", "localhost", true,
                        "certificate verify failed: unable to get local issuer"};

    run_main(refusal_main, &r);
}

static void *no_verify_main(void *arg)
{
    corio_tls_opts o = {.no_verify = 1};
    corio_tls *stls = server_ctx("self", NULL), *ctls = corio_tls_client(&o);
    corio_server *srv;
    corio_stream *s;
    const char *f;
    char addr[64];
    int port;

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    srv = serve_tls(stls, NULL, echo_handler, NULL, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    if ((f = echo_line(s, "unverified\n")) != NULL)
        return (void *)f;
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, no_verify_accepts_self_signed)
{
    run_main(no_verify_main, NULL);
}

/* ---- Mutual TLS ----------------------------------------------------------- */

static void *mutual_main(void *arg)
{
    corio_tls_opts so = {.cert_file = path("server.pem"),
                         .key_file = path("server.key"),
                         .ca_file = path("ca.pem")};
    corio_tls_opts co = {.ca_file = path("ca.pem"),
                         .cert_file = path("client.pem"),
                         .key_file = path("client.key")};
    corio_tls *stls = corio_tls_server(&so), *with = corio_tls_client(&co);
    corio_tls *without = client_ctx();
    struct seen seen = {0};
    corio_server *srv;
    corio_stream *s;
    const char *f;
    char addr[64], line[64];
    int port;

    (void)arg;
    CHECK(stls != NULL && with != NULL && without != NULL);
    srv = serve_tls(stls, NULL, echo_handler, &seen, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    s = corio_tls_connect(with, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    if ((f = echo_line(s, "with a certificate\n")) != NULL)
        return (void *)f;
    CHECK(corio_stream_close(s) == 0);
    /* without one: TLS 1.3 ends the client's handshake before the server
     * checks, so the refusal may come with the first read */
    s = corio_tls_connect(without, addr, corio_now() + 5000 * MS);
    if (s != NULL) {
        errno = 0;
        CHECK(corio_stream_write(s, "x\n", 2) == 0 || errno == EPROTO);
        CHECK(corio_stream_read(s, line, sizeof(line), -1) == -1);
        CHECK(errno == EPROTO || errno == ECONNRESET);
        CHECK(corio_stream_close(s) == 0);
    } else {
        CHECK(errno == EPROTO || errno == ECONNRESET);
    }
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    CHECK(seen.calls == 1);
    corio_tls_free(stls);
    corio_tls_free(with);
    corio_tls_free(without);
    return NULL;
}

Test(tls, mutual_tls_asks_for_a_client_certificate)
{
    run_main(mutual_main, NULL);
}

/* ---- Bad options and misuse ----------------------------------------------- */

Test(tls, bad_options)
{
    corio_tls_opts o = {0};
    FILE *f;

    errno = 0;
    cr_assert_null(corio_tls_server(NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, EINVAL);
    o.cert_file = path("server.pem"); /* no key */
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, EINVAL);
    o.key_file = path("missing.key");
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, ENOENT);
    cr_assert(strstr(corio_tls_error(), "missing.key") != NULL, "%s",
              corio_tls_error());
    o.key_file = path("other.key"); /* not the certificate's key */
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, EPROTO);
    cr_assert(strstr(corio_tls_error(), "private key") != NULL, "%s",
              corio_tls_error());
    f = fopen(path("junk.pem"), "w");
    cr_assert_not_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    o.cert_file = path("junk.pem");
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, EPROTO);
    o.cert_file = path("server.pem");
    o.key_file = path("server.key");
    o.alpn = "h2,,http/1.1";
    cr_assert_null(corio_tls_server(&o));
    cr_assert_eq(errno, EINVAL);
    o.alpn = "h2,http/1.1";
    corio_tls *ok = corio_tls_server(&o);
    cr_assert_not_null(ok, "%s", corio_tls_error());
    corio_tls_free(ok);
    corio_tls_opts c = {.ca_file = path("missing.pem")};
    cr_assert_null(corio_tls_client(&c));
    cr_assert_eq(errno, ENOENT);
    c.ca_file = path("junk.pem");
    cr_assert_null(corio_tls_client(&c));
    cr_assert_eq(errno, EPROTO);
    corio_tls_free(NULL);
}

static void noop_handler(corio_stream *s, void *arg)
{
    (void)s, (void)arg;
}

static void *misuse_main(void *arg)
{
    corio_tls *ctls = client_ctx(), *stls = server_ctx("server", NULL);
    corio_listen_opts l = {.tls = ctls};
    corio_stream *s;
    int sv[2], port;
    corio_server *srv;
    char addr[64];

    (void)arg;
    CHECK(ctls != NULL && stls != NULL);
    /* a server needs a server context */
    errno = 0;
    CHECK(corio_server_start("127.0.0.1:0", &l, noop_handler, NULL) == NULL);
    CHECK(errno == EINVAL);
    /* a client verifies a name: none in a Unix address */
    errno = 0;
    CHECK(corio_tls_connect(ctls, "unix:/tmp/nothing", -1) == NULL);
    CHECK(errno == EINVAL);
    CHECK(corio_tls_connect(stls, "localhost:1", -1) == NULL);
    CHECK(errno == EINVAL);
    CHECK(corio_tls_connect(NULL, "localhost:1", -1) == NULL);
    CHECK(errno == EINVAL);
    /* start_tls: no name to verify; bytes buffered; NULL */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    s = corio_stream_new(sv[0], NULL);
    CHECK(s != NULL);
    CHECK(corio_stream_start_tls(s, ctls, NULL, -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_start_tls(NULL, ctls, "x", -1) == -1 && errno == EINVAL);
    CHECK(corio_stream_start_tls(s, NULL, "x", -1) == -1 && errno == EINVAL);
    {
        char longname[300];

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        CHECK(corio_stream_start_tls(s, ctls, longname, -1) == -1);
        CHECK(errno == EINVAL);
        /* nothing changed: the plain stream still works */
        CHECK(write(sv[1], "ok\n", 3) == 3);
        CHECK(corio_stream_readline(s, longname, sizeof(longname), -1) == 3);
    }
    CHECK(write(sv[1], "ab\nc", 4) == 4);
    {
        char line[8];

        CHECK(corio_stream_readline(s, line, sizeof(line), -1) == 3);
    }
    CHECK(corio_stream_start_tls(s, ctls, "localhost", -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(strstr(corio_tls_error(), "buffered") != NULL);
    CHECK(corio_stream_close(s) == 0);
    CHECK(close(sv[1]) == 0);
    /* a plain stream: no TLS facts */
    CHECK(corio_tls_alpn(NULL) == NULL && corio_tls_version(NULL) == NULL);
    /* start_tls on a TLS stream */
    srv = serve_tls(stls, NULL, echo_handler, NULL, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(corio_stream_start_tls(s, ctls, "localhost", -1) == -1);
    CHECK(errno == EINVAL);
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(ctls);
    corio_tls_free(stls);
    return NULL;
}

Test(tls, misuse_is_einval)
{
    run_main(misuse_main, NULL);
}

/* ---- Garbage and truncation ----------------------------------------------- */

/* A plain server that answers anything with an HTTP error. */
static void plain_http_handler(corio_stream *s, void *arg)
{
    char buf[512];

    (void)arg;
    if (corio_stream_read(s, buf, sizeof(buf), -1) > 0 &&
        (corio_stream_write(s, "HTTP/1.0 400 Bad Request\r\n\r\n", 28) == -1 ||
         corio_stream_drain(s, -1) == -1))
        corio_task_fail(errno); /* the server's stop reports it */
}

/* Handshake, answer one line, then close the socket without
 * close_notify. */
static void truncating_handler(corio_stream *s, void *arg)
{
    char line[64];

    (void)arg;
    if (corio_stream_readline(s, line, sizeof(line), -1) > 0 &&
        corio_stream_write(s, "partial", 7) == 0 &&
        corio_stream_drain(s, -1) == 0)
        shutdown(corio_stream_fd(s), SHUT_RDWR); /* no close_notify */
}

static void *garbage_main(void *arg)
{
    corio_tls *ctls = client_ctx(), *stls = server_ctx("server", NULL);
    corio_tls_opts lax = {.ca_file = path("ca.pem"), .allow_truncation = 1};
    corio_tls *ltls = corio_tls_client(&lax);
    corio_server *plain, *srv;
    corio_stream *s;
    char addr[64], buf[64];
    int port;

    (void)arg;
    CHECK(ctls != NULL && stls != NULL && ltls != NULL);
    /* a TLS client talking to a plain server */
    plain = corio_server_start("127.0.0.1:0", NULL, plain_http_handler, NULL);
    CHECK(plain != NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", bound_port(corio_server_fd(plain)));
    errno = 0;
    CHECK(corio_tls_connect(ctls, addr, corio_now() + 5000 * MS) == NULL);
    CHECK(errno == EPROTO);
    CHECK(strstr(corio_tls_error(), "TLS handshake: ") == corio_tls_error());
    CHECK(corio_server_stop(plain, corio_now() + 2000 * MS) == 0);
    /* a plain client talking to a TLS server: the handshake fails there */
    srv = serve_tls(stls, NULL, truncating_handler, NULL, &port);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    s = corio_stream_connect(addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(corio_stream_write(s, "GET / HTTP/1.0\r\n\r\n", 18) == 0);
    CHECK(corio_stream_drain(s, -1) == 0);
    {
        ssize_t n;

        while ((n = corio_stream_read(s, buf, sizeof(buf), -1)) > 0)
            ; /* maybe an alert, then the end */
        CHECK(n == 0 || errno == ECONNRESET);
    }
    CHECK(corio_stream_close(s) == 0);
    /* truncation: ECONNRESET, or the end where the client allows it */
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(corio_stream_write(s, "go\n", 3) == 0);
    CHECK(corio_stream_readexactly(s, buf, 7, -1) == 7);
    errno = 0;
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == -1);
    CHECK(errno == ECONNRESET);
    CHECK(strstr(corio_tls_error(), "without close_notify") != NULL);
    CHECK(corio_stream_close(s) == 0);
    s = corio_tls_connect(ltls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    CHECK(corio_stream_write(s, "go\n", 3) == 0);
    CHECK(corio_stream_readexactly(s, buf, 7, -1) == 7);
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(ctls);
    corio_tls_free(stls);
    corio_tls_free(ltls);
    return NULL;
}

Test(tls, garbage_and_truncation)
{
    run_main(garbage_main, NULL);
}

/* ---- Handshakes that wait: cancellation and deadlines --------------------- */

/* A plain server that accepts and says nothing until the client leaves. */
static void silent_handler(corio_stream *s, void *arg)
{
    char buf[512];

    (void)arg;
    while (corio_stream_read(s, buf, sizeof(buf), -1) > 0)
        ;
}

struct dial {
    corio_tls *tls;
    char addr[64];
    int64_t deadline;
};

static void *dial_main(void *arg)
{
    struct dial *d = arg;
    corio_stream *s = corio_tls_connect(d->tls, d->addr, d->deadline);

    if (s != NULL) {
        corio_stream_close(s);
        return corio_task_fail(EEXIST);
    }
    return corio_task_fail(errno);
}

static void *handshake_wait_main(void *arg)
{
    struct dial d = {.tls = client_ctx(), .deadline = -1};
    corio_server *silent;
    corio_task *t;
    int64_t t0;

    (void)arg;
    CHECK(d.tls != NULL);
    silent = corio_server_start("127.0.0.1:0", NULL, silent_handler, NULL);
    CHECK(silent != NULL);
    snprintf(d.addr, sizeof(d.addr), "localhost:%d", bound_port(corio_server_fd(silent)));
    /* cancelled while waiting for the server's hello */
    t = corio_task_spawn(dial_main, &d, NULL);
    CHECK(t != NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    CHECK(corio_server_connections(silent) == 1);
    CHECK(corio_task_cancel(t) == 1);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ECANCELED);
    /* a deadline */
    t0 = corio_now();
    d.deadline = t0 + 50 * MS;
    t = corio_task_spawn(dial_main, &d, NULL);
    CHECK(t != NULL);
    CHECK(corio_task_join(t, NULL) == -1 && errno == ETIMEDOUT);
    CHECK((corio_now() - t0) / MS >= 50);
    CHECK((corio_now() - t0) / MS < 50 + test_slack_ms());
    CHECK(corio_server_stop(silent, corio_now() + 2000 * MS) == 0);
    corio_tls_free(d.tls);
    return NULL;
}

Test(tls, client_handshake_cancelled_and_timed_out)
{
    run_main(handshake_wait_main, NULL);
}

static void *server_handshake_main(void *arg)
{
    corio_tls *stls = server_ctx("server", NULL);
    corio_listen_opts l = {.tls = stls, .tls_timeout = 80 * MS};
    struct seen seen = {0};
    corio_server *srv;
    corio_stream *s;
    char addr[64], buf[16];
    int64_t t0;

    (void)arg;
    CHECK(stls != NULL);
    srv = corio_server_start("127.0.0.1:0", &l, echo_handler, &seen);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(corio_server_fd(srv)));
    /* a client that never says hello is dropped after tls_timeout */
    s = corio_stream_connect(addr, -1);
    CHECK(s != NULL);
    t0 = corio_now();
    CHECK(corio_stream_read(s, buf, sizeof(buf), corio_now() + 5000 * MS) == 0);
    CHECK((corio_now() - t0) / MS >= 70);
    CHECK((corio_now() - t0) / MS < 80 + test_slack_ms());
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_connections(srv) == 0);
    /* a server stopped while a handshake waits cancels it */
    s = corio_stream_connect(addr, -1);
    CHECK(s != NULL);
    CHECK(corio_sleep(20 * MS) == 0);
    CHECK(corio_server_connections(srv) == 1);
    CHECK(corio_server_stop(srv, corio_now()) == -1 && errno == ETIMEDOUT);
    CHECK(seen.calls == 0);
    CHECK(corio_stream_read(s, buf, sizeof(buf), -1) == 0);
    CHECK(corio_stream_close(s) == 0);
    corio_tls_free(stls);
    return NULL;
}

Test(tls, server_handshake_timeout_and_stop)
{
    run_main(server_handshake_main, NULL);
}

/* A handshake timeout too big to add to the clock is "never" (it was
 * added as it came: a signed overflow, which UBSan reports). */
static void *huge_timeout_main(void *arg)
{
    corio_tls *stls = server_ctx("server", NULL), *ctls = client_ctx();
    corio_listen_opts l = {.tls = stls, .tls_timeout = INT64_MAX};
    corio_server *srv;
    corio_stream *s;
    const char *f;
    char addr[64];

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    srv = corio_server_start("127.0.0.1:0", &l, echo_handler, NULL);
    CHECK(srv != NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(corio_server_fd(srv)));
    s = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
    CHECK(s != NULL);
    if ((f = echo_line(s, "still there\n")) != NULL)
        return (void *)f;
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, a_huge_handshake_timeout_is_never)
{
    run_main(huge_timeout_main, NULL);
}

/* ---- STARTTLS ------------------------------------------------------------- */

/* A plain line protocol that upgrades on "STARTTLS". */
static void starttls_handler(corio_stream *s, void *arg)
{
    corio_tls *stls = arg;
    char line[64];

    if (corio_stream_readline(s, line, sizeof(line), -1) <= 0 ||
        strcmp(line, "STARTTLS\n") != 0 ||
        corio_stream_write(s, "GO AHEAD\n", 9) == -1 ||
        corio_stream_start_tls(s, stls, NULL, corio_now() + 5000 * MS) == -1)
        return;
    echo_handler(s, NULL);
}

static void *starttls_main(void *arg)
{
    corio_tls *stls = server_ctx("server", NULL), *ctls = client_ctx();
    corio_server *srv;
    corio_stream *s;
    char line[64], addr[80];
    const char *f;

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    snprintf(addr, sizeof(addr), "unix:%s", path("sock"));
    srv = corio_server_start(addr, NULL, starttls_handler, stls);
    CHECK(srv != NULL);
    s = corio_stream_connect(addr, -1);
    CHECK(s != NULL);
    CHECK(corio_tls_version(s) == NULL);
    CHECK(corio_stream_write(s, "STARTTLS\n", 9) == 0);
    CHECK(corio_stream_readline(s, line, sizeof(line), -1) == 9);
    CHECK(corio_stream_start_tls(s, ctls, "localhost", corio_now() + 5000 * MS)
          == 0);
    CHECK(strcmp(corio_tls_version(s), "TLSv1.3") == 0);
    if ((f = echo_line(s, "now private\n")) != NULL)
        return (void *)f;
    CHECK(corio_stream_close(s) == 0);
    CHECK(corio_server_stop(srv, corio_now() + 2000 * MS) == 0);
    corio_tls_free(stls);
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, starttls_over_a_unix_socket)
{
    run_main(starttls_main, NULL);
}

/* ---- Stopping a server with TLS connections ------------------------------- */

static void *stop_main(void *arg)
{
    corio_tls *stls = server_ctx("server", NULL), *ctls = client_ctx();
    struct seen seen = {0};
    corio_stream *c[5];
    corio_server *srv;
    char addr[64], buf[8];
    const char *f;
    int port;

    (void)arg;
    CHECK(stls != NULL && ctls != NULL);
    srv = serve_tls(stls, NULL, echo_handler, &seen, &port);
    CHECK(srv != NULL);
    corio_tls_free(stls);
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    for (int i = 0; i < 5; i++) {
        c[i] = corio_tls_connect(ctls, addr, corio_now() + 5000 * MS);
        CHECK(c[i] != NULL);
        if ((f = echo_line(c[i], "ping\n")) != NULL)
            return (void *)f;
    }
    CHECK(corio_server_connections(srv) == 5);
    /* the handlers wait in readline: cancelled at the deadline */
    CHECK(corio_server_stop(srv, corio_now() + 20 * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    for (int i = 0; i < 5; i++) {
        /* closed by the server: a close_notify, then the end */
        CHECK(corio_stream_read(c[i], buf, sizeof(buf), -1) == 0);
        CHECK(corio_stream_close(c[i]) == 0);
    }
    corio_tls_free(ctls);
    return NULL;
}

Test(tls, server_stop_closes_tls_connections)
{
    run_main(stop_main, NULL);
}
