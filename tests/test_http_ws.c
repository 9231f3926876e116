/* tests/test_http_ws.c -- WebSockets (include/corio/ws.h): corio's client
 * and server with each other (fragmented messages, ping and pong, close
 * codes, the message size limit, deadlines and cancellation, wss://), the
 * masking and UTF-8 rules against raw peers, failed handshakes. Interop
 * with python3-websockets and aiohttp: test_http_ws_interop.c.
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/ws.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_test.h"
#include "timing.h"
#include "ws_test.h"
#include "../examples/devcert.h"

/* ---- corio with corio ---------------------------------------------------- */

static void t_corio_pair(void)
{
    corio_ws_opts o = {.protocols = "chat"};
    corio_ws *ws;
    corio_ws_msg m;
    char *big = malloc(3000000);

    server_up();
    ws = corio_ws_connect(wsurl, &o, in(5000));
    cr_assert_not_null(ws, "%s", corio_strerror(errno));
    cr_assert_str_eq(corio_ws_protocol(ws), "chat");
    expect_echo(ws, CORIO_WS_TEXT, "hello", 5);
    expect_echo(ws, CORIO_WS_TEXT, "", 0);
    expect_echo(ws, CORIO_WS_BINARY, "\0\1\2\377", 4);
    memset(big, 'z', 3000000);
    expect_echo(ws, CORIO_WS_BINARY, big, 3000000);
    /* a ping: answered by the server's side, not delivered */
    cr_assert_eq(corio_ws_send(ws, CORIO_WS_PING, "p", 1, in(5000)), 0);
    expect_echo(ws, CORIO_WS_TEXT, "after the ping", 14);
    /* bad input */
    expect_fail(corio_ws_send(ws, CORIO_WS_TEXT, "\xff\xfe", 2, -1), EINVAL);
    expect_fail(corio_ws_send(ws, CORIO_WS_PING, big, 126, -1), EINVAL);
    expect_fail(corio_ws_send(ws, (enum corio_ws_type)8, "x", 1, -1), EINVAL);
    /* a recv deadline leaves the connection usable */
    expect_fail(corio_ws_recv(ws, &m, in(30)), ETIMEDOUT);
    expect_echo(ws, CORIO_WS_TEXT, "still here", 10);
    /* the server closes with 4001 "bye" */
    cr_assert_eq(corio_ws_send(ws, CORIO_WS_TEXT, "close-me", 8, in(5000)), 0);
    expect_fail(corio_ws_recv(ws, &m, in(5000)), CORIO_ECLOSED);
    cr_assert_eq(corio_ws_close_code(ws), 4001);
    cr_assert_eq(corio_ws_close(ws, 1000, NULL, in(2000)), 0);
    /* a client that sends its messages in fragments (a multi-byte
     * character split between two of them): reassembled by the server */
    {
        corio_ws_opts fo = {.fragment_size = 1000};
        char text[6001];

        text[0] = 'a'; /* then é é ...: byte 1000 is inside an é */
        for (int i = 0; i < 2999; i++)
            memcpy(text + 1 + 2 * i, "\xc3\xa9", 2);
        text[5999] = '\0';
        ws = corio_ws_connect(wsurl, &fo, in(5000));
        cr_assert_not_null(ws);
        expect_echo(ws, CORIO_WS_TEXT, text, 5999);
        cr_assert_eq(corio_ws_close(ws, 1000, NULL, in(2000)), 0);
    }
    /* and a client that closes first: the server sees 1000 */
    ws = corio_ws_connect(wsurl, NULL, in(5000));
    cr_assert_not_null(ws);
    cr_assert_null(corio_ws_protocol(ws));
    expect_echo(ws, CORIO_WS_TEXT, "x", 1);
    cr_assert_eq(corio_ws_close(ws, 1000, "done", in(2000)), 0);
    cr_assert_eq(corio_sleep(50 * MS), 0);
    cr_assert_eq(conf.last_err, CORIO_ECLOSED);
    cr_assert_eq(conf.last_code, 1000);
    free(big);
    server_down();
}

Test(ws, corio_client_and_server, .timeout = TIMEOUT)
{
    run(t_corio_pair);
}

static void t_limit(void)
{
    corio_ws *ws;
    corio_ws_msg m;
    static char data[2000];

    conf.max_message = 1000;
    server_up();
    ws = corio_ws_connect(wsurl, NULL, in(5000));
    cr_assert_not_null(ws);
    expect_echo(ws, CORIO_WS_BINARY, data, 1000);
    cr_assert_eq(corio_ws_send(ws, CORIO_WS_BINARY, data, 1001, in(5000)), 0);
    expect_fail(corio_ws_recv(ws, &m, in(5000)), CORIO_ECLOSED);
    cr_assert_eq(corio_ws_close_code(ws), 1009);
    cr_assert_eq(corio_ws_close(ws, 0, NULL, in(2000)), 0);
    cr_assert_eq(corio_sleep(50 * MS), 0);
    cr_assert_eq(conf.last_err, EMSGSIZE);
    /* the client's own limit */
    {
        corio_ws_opts o = {.max_message = 100};

        ws = corio_ws_connect(wsurl, &o, in(5000));
        cr_assert_not_null(ws);
        cr_assert_eq(corio_ws_send(ws, CORIO_WS_BINARY, data, 101, in(5000)), 0);
        expect_fail(corio_ws_recv(ws, &m, in(5000)), EMSGSIZE);
        corio_ws_close(ws, 0, NULL, in(1000));
    }
    server_down();
}

Test(ws, message_size_limit, .timeout = TIMEOUT)
{
    run(t_limit);
}

static corio_ws *shared_ws;

static void *recv_task(void *arg)
{
    corio_ws_msg m;

    (void)arg;
    cr_assert_eq(corio_ws_recv(shared_ws, &m, -1), -1);
    return (void *)(intptr_t)errno;
}

static void t_cancel(void)
{
    corio_task *t;
    corio_ws_msg m;

    server_up();
    shared_ws = corio_ws_connect(wsurl, NULL, in(5000));
    cr_assert_not_null(shared_ws);
    t = corio_task_spawn(recv_task, NULL, NULL);
    cr_assert_eq(corio_sleep(20 * MS), 0);
    /* a second receiver is refused while the first waits, and so is a
     * close (it would free what the receiver uses) */
    expect_fail(corio_ws_recv(shared_ws, &m, in(10)), EBUSY);
    expect_fail(corio_ws_close(shared_ws, 1000, NULL, in(10)), EBUSY);
    cr_assert_eq(corio_task_cancel(t), 1);
    expect_fail(corio_task_join(t, NULL), ECANCELED);
    /* usable afterwards */
    expect_echo(shared_ws, CORIO_WS_TEXT, "after", 5);
    cr_assert_eq(corio_ws_close(shared_ws, 1000, NULL, in(2000)), 0);
    server_down();
}

Test(ws, cancelled_receive, .timeout = TIMEOUT)
{
    run(t_cancel);
}

/* A server that upgrades and then neither reads nor answers: the client's
 * close waits for the peer's close frame until its deadline only. */
static int mute_ws(corio_http_request *req, corio_http_response *res, void *arg)
{
    corio_ws *ws = corio_ws_upgrade(req, res, NULL, in(5000));

    (void)arg;
    if (ws == NULL)
        return -1;
    corio_sleep(3 * SEC); /* until the server's stop cancels it */
    corio_ws_close(ws, 1000, NULL, in(100)); /* frees ws; the client is gone */
    return 0;
}

static void t_close_timeout(void)
{
    corio_http_app *a = corio_http_app_new();
    corio_http_server *s;
    corio_ws *ws;
    char u[96];
    int64_t t0;

    cr_assert_eq(corio_http_app_route(a, "GET", "/", mute_ws, NULL), 0);
    s = corio_http_server_start("127.0.0.1:0", a, NULL);
    cr_assert_not_null(s);
    snprintf(u, sizeof(u), "ws://127.0.0.1:%d/", corio_http_server_port(s));
    ws = corio_ws_connect(u, NULL, in(5000));
    cr_assert_not_null(ws);
    t0 = corio_now();
    expect_fail(corio_ws_close(ws, 1000, NULL, in(100)), ETIMEDOUT);
    cr_assert_geq(corio_now() - t0, 100 * MS);
    cr_assert_lt(corio_now() - t0, 100 * MS + SLACK);
    /* close_timeout bounds it too */
    {
        corio_ws_opts o = {.close_timeout = 50 * MS};

        ws = corio_ws_connect(u, &o, in(5000));
        cr_assert_not_null(ws);
        t0 = corio_now();
        expect_fail(corio_ws_close(ws, 1000, NULL, -1), ETIMEDOUT);
        cr_assert_lt(corio_now() - t0, 50 * MS + SLACK);
    }
    /* the mute handlers are cancelled: ETIMEDOUT says so */
    cr_assert(corio_http_server_stop(s, in(100)) == 0 || errno == ETIMEDOUT);
    cr_assert_eq(corio_http_app_free(a), 0);
}

Test(ws, close_waits_for_the_peer_until_its_deadline, .timeout = TIMEOUT)
{
    run(t_close_timeout);
}

/* ---- Raw peers: masking, UTF-8, handshakes -------------------------------- */

/* Send req on a new raw connection to the server; its answer's head goes
 * to buf. */
static corio_stream *raw_request(const char *req, char *buf, size_t size)
{
    char addr[64];
    corio_stream *s;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", corio_http_server_port(srv));
    s = corio_stream_connect(addr, in(5000));
    cr_assert_not_null(s);
    cr_assert_eq(corio_stream_write(s, req, strlen(req)), 0);
    cr_assert_gt(corio_stream_readuntil(s, "\r\n\r\n", 4, buf, size, in(5000)), 0);
    return s;
}

/* Send the upgrade request on a raw connection and read the 101. */
static corio_stream *raw_upgrade(void)
{
    char buf[1024];
    corio_stream *s = raw_request(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n", buf, sizeof(buf));

    cr_assert(strncmp(buf, "HTTP/1.1 101", 12) == 0, "%s", buf);
    /* RFC 6455's own example key and answer */
    cr_assert(strstr(buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL,
              "%s", buf);
    return s;
}

/* Send a frame as raw bytes; read the server's close frame's code. */
static int raw_close_code(corio_stream *s, const void *frame, size_t n)
{
    unsigned char hdr[4];

    cr_assert_eq(corio_stream_write(s, frame, n), 0);
    cr_assert_eq(corio_stream_drain(s, in(5000)), 0);
    cr_assert_eq(corio_stream_readexactly(s, hdr, 4, in(5000)), 4);
    cr_assert_eq(hdr[0], 0x88, "not a close frame: %02x", hdr[0]);
    cr_assert(!(hdr[1] & 0x80), "the server masked its frame");
    return hdr[2] << 8 | hdr[3];
}

static void t_raw(void)
{
    corio_stream *s;
    /* "hi", unmasked: a client must mask */
    static const unsigned char unmasked[] = {0x81, 0x02, 'h', 'i'};
    /* masked text with invalid UTF-8 (0xff ^ 0 = 0xff) */
    static const unsigned char badutf8[] = {0x81, 0x81, 0, 0, 0, 0, 0xff};
    /* a fragmented masked text, with a ping between its fragments */
    static const unsigned char frags[] = {
        0x01, 0x82, 0, 0, 0, 0, 'a', 'b',       /* text, not final */
        0x89, 0x80, 0, 0, 0, 0,                 /* ping */
        0x80, 0x81, 0, 0, 0, 0, 'c',            /* continuation, final */
    };
    unsigned char got[16];

    server_up();
    s = raw_upgrade();
    cr_assert_eq(raw_close_code(s, unmasked, sizeof(unmasked)), 1002);
    corio_stream_close(s);
    cr_assert_eq(corio_sleep(30 * MS), 0);
    cr_assert_eq(conf.last_err, EPROTO);

    s = raw_upgrade();
    cr_assert_eq(raw_close_code(s, badutf8, sizeof(badutf8)), 1007);
    corio_stream_close(s);
    cr_assert_eq(corio_sleep(30 * MS), 0);
    cr_assert_eq(conf.last_err, EPROTO);

    /* the pong comes first, then the reassembled "abc" echoed */
    s = raw_upgrade();
    cr_assert_eq(corio_stream_write(s, frags, sizeof(frags)), 0);
    cr_assert_eq(corio_stream_readexactly(s, got, 2, in(5000)), 2);
    cr_assert_eq(got[0], 0x8a);
    cr_assert_eq(got[1], 0);
    cr_assert_eq(corio_stream_readexactly(s, got, 5, in(5000)), 5);
    cr_assert(memcmp(got, "\x81\x03" "abc", 5) == 0);
    corio_stream_close(s);
    server_down();
}

Test(ws, masking_utf8_fragments_raw, .timeout = TIMEOUT)
{
    run(t_raw);
}

static void t_handshakes(void)
{
    char u[128], buf[512];
    corio_stream *s;
    static const char v12[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 12\r\n\r\n";
    static const char nokey[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";

    server_up();
    /* no such route: 404, not 101 */
    snprintf(u, sizeof(u), "ws://127.0.0.1:%d/nowhere", corio_http_server_port(srv));
    cr_assert_null(corio_ws_connect(u, NULL, in(5000)));
    cr_assert_eq(errno, EPROTO);
    cr_assert_null(corio_ws_connect("http://127.0.0.1:1/", NULL, -1));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_ws_connect("ws://127.0.0.1:1/", NULL, -1));
    cr_assert_eq(errno, ECONNREFUSED);
    /* a server that refuses bad requests */
    s = raw_request(v12, buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 426", 12) == 0, "%s", buf);
    cr_assert(strstr(buf, "Sec-WebSocket-Version: 13") != NULL, "%s", buf);
    corio_stream_close(s);
    s = raw_request(nokey, buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 400", 12) == 0, "%s", buf);
    corio_stream_close(s);
    s = raw_request("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n", buf, sizeof(buf));
    cr_assert(strstr(buf, " 400 ") != NULL, "%s", buf);
    corio_stream_close(s);
    cr_assert_eq(conf.conns, 0);
    cr_assert_eq(corio_ws_close(NULL, 0, NULL, -1), 0);
    server_down();
}

Test(ws, failed_handshakes, .timeout = TIMEOUT)
{
    run(t_handshakes);
}

/* ---- wss:// ------------------------------------------------------------ */

static char certdir[64];

static void t_wss(void)
{
    char cert[128], key[128], ca[128], u[128];
    corio_tls *stls, *ctls;
    corio_http_server_opts so = {0};
    corio_ws_opts co = {0};
    corio_ws *ws;

    snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
    snprintf(key, sizeof(key), "%s/server.key", certdir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
    stls = corio_tls_server(&(corio_tls_opts){.cert_file = cert, .key_file = key});
    cr_assert_not_null(stls);
    so.listen.tls = stls;
    app = corio_http_app_new();
    cr_assert_eq(corio_http_app_route(app, "GET", "/ws", echo_ws, &conf), 0);
    srv = corio_http_server_start("127.0.0.1:0", app, &so);
    cr_assert_not_null(srv, "%s", corio_strerror(errno));
    snprintf(u, sizeof(u), "wss://localhost:%d/ws", corio_http_server_port(srv));
    /* verified by default: the throw-away CA is not trusted */
    cr_assert_null(corio_ws_connect(u, NULL, in(5000)));
    cr_assert_eq(errno, EPROTO);
    ctls = corio_tls_client(&(corio_tls_opts){.ca_file = ca});
    cr_assert_not_null(ctls);
    co.tls = ctls;
    ws = corio_ws_connect(u, &co, in(5000));
    cr_assert_not_null(ws, "%s", corio_strerror(errno));
    expect_echo(ws, CORIO_WS_TEXT, "over TLS", 8);
    cr_assert_eq(corio_ws_close(ws, 1000, NULL, in(2000)), 0);
    corio_tls_free(ctls);
    server_down();
    corio_tls_free(stls);
}

Test(ws, wss_verified, .timeout = TIMEOUT)
{
    snprintf(certdir, sizeof(certdir), "/tmp/corio-ws-certs-%d", (int)getpid());
    cr_assert_eq(mkdir(certdir, 0700), 0);
    cr_assert_eq(devcert_make(certdir), 0);
    run(t_wss);
    devcert_remove(certdir);
}

