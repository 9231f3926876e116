/* tests/test_http_interop.c -- real clients from Debian against the
 * server: curl (keep-alive reuse, POST, HEAD, chunked upload,
 * 100-continue, gzip), Python's http.client (one persistent connection)
 * and python3-aiohttp's client (concurrent requests, JSON), and HTTPS
 * through the TLS layer with ALPN http/1.1 (curl, and a corio TLS
 * client checking the protocol chosen; several byte ranges of a static
 * file; the 503 over max_connections through TLS). Each client runs in a thread of the pool while the
 * server runs on the loop. A client that is not installed skips its test
 * (with a message). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "http_test.h"
#include "../examples/devcert.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT 120
#define PYTHON "/usr/bin/python3"

static int h_hello(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)arg;
    return corio_http_response_printf(res, "hello, %s!",
                                      corio_http_request_param(req, "name"));
}

static int h_echo(corio_http_request *req, corio_http_response *res, void *arg)
{
    size_t len;
    const char *body = corio_http_request_body(req, &len, -1);

    (void)arg;
    if (body == NULL)
        return -1;
    corio_http_response_header(res, "Content-Type", "text/plain");
    return corio_http_response_body(res, body, len);
}

static int h_json(corio_http_request *req, corio_http_response *res, void *arg)
{
    json_t *in = corio_http_request_json(req, -1), *out;
    int rc;

    (void)arg;
    if (in == NULL)
        return -1;
    out = json_pack("{s:O,s:b}", "got", in, "ok", 1);
    rc = corio_http_response_json(res, out);
    json_decref(out);
    json_decref(in);
    return rc;
}

static int h_big(corio_http_request *req, corio_http_response *res, void *arg)
{
    static char text[20001];

    (void)req;
    (void)arg;
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = "abcdefghij"[i % 10];
    corio_http_response_header(res, "Content-Type", "text/plain");
    return corio_http_response_body(res, text, sizeof(text) - 1);
}

static char certdir[64];   /* HTTPS: the dev certificate's (served at /certs) */

struct run {
    const char *(*check)(int port, struct ht_job *j);
    struct ht_job job;
    corio_tls *tls;     /* HTTPS: the server's context */
    size_t max_connections;
};

static void *main_task(void *arg)
{
    struct run *r = arg;
    corio_http_app *app = corio_http_app_new();
    corio_http_server_opts o = {.gzip = true, .listen.tls = r->tls,
                                .max_connections = r->max_connections};
    corio_http_server *srv;
    const char *fail;

    if (app == NULL || corio_http_app_route(app, "GET", "/hello/{name}", h_hello, NULL) ||
        corio_http_app_route(app, "POST", "/echo", h_echo, NULL) ||
        corio_http_app_route(app, "PUT", "/echo", h_echo, NULL) ||
        corio_http_app_route(app, "POST", "/json", h_json, NULL) ||
        corio_http_app_route(app, "GET", "/big", h_big, NULL) ||
        (r->tls && corio_http_app_static(app, "/certs", certdir, NULL)))
        return (void *)"app";
    srv = corio_http_server_start("127.0.0.1:0", app, &o);
    if (srv == NULL)
        return (void *)"start";
    fail = r->check(corio_http_server_port(srv), &r->job);
    corio_http_server_stop(srv, corio_now() + 5 * HT_SEC);
    corio_http_app_free(app);
    return (void *)fail;
}

static void run(const char *(*check)(int, struct ht_job *))
{
    static struct run r;

    (void)failure;
    signal(SIGPIPE, SIG_DFL);
    memset(&r, 0, sizeof(r));
    r.check = check;
    run_main_no_fd_leak(main_task, &r);
}

/* ---- curl ------------------------------------------------------------------- */

static const char *check_curl(int port, struct ht_job *j)
{
    const char *fail;

    snprintf(j->cmd, sizeof(j->cmd),
             "set -e; u=http://127.0.0.1:%d;"
             "curl -sS --max-time 20 -w ' [%%{http_code} %%{num_connects}]\\n'"
             " $u/hello/curl $u/hello/again;"
             "curl -sS --max-time 20 -d 'a=1&b=2' $u/echo; echo;"
             "curl -sS --max-time 20 -I $u/hello/head | tr -d '\\r' | grep -i '^content-length';"
             "printf 'chunked body' | curl -sS --max-time 20 -T - $u/echo; echo;"
             "curl -sS --max-time 20 -H 'Expect: 100-continue' --data-binary @/etc/hostname"
             " $u/echo | cmp - /etc/hostname && echo continue-ok;"
             "curl -sS --max-time 20 --compressed -D - $u/big -o /tmp/corio-curl-$$ |"
             " tr -d '\\r' | grep -i '^content-encoding';"
             "wc -c < /tmp/corio-curl-$$; rm -f /tmp/corio-curl-$$",
             port);
    fail = ht_job_run(j);
    if (fail)
        return fail;
    if (!strstr(j->out, "hello, curl! [200 1]\nhello, again! [200 0]\n"))
        return "curl: keep-alive reuse";
    if (!strstr(j->out, "a=1&b=2\n"))
        return "curl: POST";
    if (!strstr(j->out, "Content-Length: 12\n") && !strstr(j->out, "content-length: 12\n"))
        return "curl: HEAD";
    if (!strstr(j->out, "chunked body\n"))
        return "curl: chunked upload";
    if (!strstr(j->out, "continue-ok"))
        return "curl: 100-continue";
    if (!strstr(j->out, "Content-Encoding: gzip\n20000"))
        return "curl: gzip";
    return NULL;
}

Test(http_interop, curl, .timeout = TIMEOUT)
{
    if (access("/usr/bin/curl", X_OK) != 0)
        cr_skip_test("curl is not installed");
    run(check_curl);
}

/* ---- Python's http.client -------------------------------------------------------- */

static const char *check_http_client(int port, struct ht_job *j)
{
    const char *fail;

    snprintf(j->cmd, sizeof(j->cmd),
             PYTHON " -c '\n"
             "import http.client, json\n"
             "c = http.client.HTTPConnection(\"127.0.0.1\", %d, timeout=20)\n"
             "for name in (\"a\", \"b\", \"c%%20d\"):\n"
             "    c.request(\"GET\", \"/hello/\" + name)\n"
             "    r = c.getresponse(); print(r.status, r.read().decode())\n"
             "c.request(\"POST\", \"/json\", body=json.dumps({\"x\": [1, 2]}),\n"
             "          headers={\"Content-Type\": \"application/json\"})\n"
             "r = c.getresponse(); print(r.status, json.loads(r.read()))\n"
             "c.request(\"GET\", \"/nope\"); r = c.getresponse(); r.read(); print(r.status)\n"
             "c.request(\"DELETE\", \"/echo\"); r = c.getresponse(); r.read()\n"
             "print(r.status, r.getheader(\"Allow\"))\n"
             "'", port);
    fail = ht_job_run(j);
    if (fail)
        return fail;
    if (!strstr(j->out, "200 hello, a!\n200 hello, b!\n200 hello, c d!\n"
                        "200 {'got': {'x': [1, 2]}, 'ok': True}\n404\n405 POST, PUT\n"))
        return j->out;
    return NULL;
}

Test(http_interop, python_http_client, .timeout = TIMEOUT)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("python3 is not installed");
    run(check_http_client);
}

/* ---- python3-aiohttp's client --------------------------------------------------------- */

static const char *check_aiohttp(int port, struct ht_job *j)
{
    const char *fail;

    snprintf(j->cmd, sizeof(j->cmd),
             PYTHON " -c '\n"
             "import asyncio, aiohttp\n"
             "async def main():\n"
             "    u = \"http://127.0.0.1:%d\"\n"
             "    async with aiohttp.ClientSession() as s:\n"
             "        async def get(i):\n"
             "            async with s.get(f\"{u}/hello/{i}\") as r:\n"
             "                return r.status, await r.text()\n"
             "        rs = await asyncio.gather(*(get(i) for i in range(20)))\n"
             "        print(sum(1 for i, r in enumerate(rs) if r == (200, f\"hello, {i}!\")))\n"
             "        async with s.post(f\"{u}/json\", json={\"k\": \"v\"}) as r:\n"
             "            print(r.status, await r.json())\n"
             "        async with s.get(f\"{u}/big\") as r:\n"
             "            print(r.headers.get(\"Content-Encoding\"), len(await r.text()))\n"
             "asyncio.run(main())\n"
             "'", port);
    fail = ht_job_run(j);
    if (fail)
        return fail;
    if (!strstr(j->out, "20\n200 {'got': {'k': 'v'}, 'ok': True}\ngzip 20000\n"))
        return j->out;
    return NULL;
}

Test(http_interop, aiohttp_client, .timeout = TIMEOUT)
{
    if (system(PYTHON " -c 'import aiohttp' 2>/dev/null") != 0)
        cr_skip_test("python3-aiohttp is not installed");
    run(check_aiohttp);
}

/* ---- HTTPS ----------------------------------------------------------------------- */

/* Several ranges of a static file over TLS (the parts go through the
 * stream, not sendfile): curl gets them, Python's email parser reads them
 * and compares them with the file. */
static const char *check_https_ranges(int port, struct ht_job *j, const char *ca)
{
    snprintf(j->cmd, sizeof(j->cmd),
             "curl -sS --max-time 20 --cacert %s -r 0-9,100-119,-5 -D - -o %s/parts"
             " https://localhost:%d/certs/ca.pem | tr -d '\\r' | grep -i '^content-type';"
             PYTHON " -c '\n"
             "import email, sys\n"
             "d = sys.argv[1]\n"
             "body = open(d + \"/parts\", \"rb\").read()\n"
             "b = body.split(b\"\\r\\n\", 1)[0][2:]\n"
             "m = email.message_from_bytes(b\"Content-Type: multipart/byteranges; boundary=\"\n"
             "                             + b + b\"\\r\\n\\r\\n\" + body)\n"
             "f = open(d + \"/ca.pem\", \"rb\").read()\n"
             "want = [f[0:10], f[100:120], f[-5:]]\n"
             "got = [p.get_payload(decode=True) for p in m.get_payload()]\n"
             "print(\"parts ok\" if got == want else \"parts differ\")\n"
             "' %s; rm -f %s/parts",
             ca, certdir, port, certdir, certdir);
    if (ht_job_run(j) != NULL)
        return j->out;
    if (!strstr(j->out, "multipart/byteranges; boundary=") || !strstr(j->out, "parts ok\n"))
        return j->out;
    return NULL;
}

static const char *check_https(int port, struct ht_job *j)
{
    char addr[64], out[32768];
    const char *fail, *req = "GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    corio_tls_opts co = {.ca_file = NULL, .alpn = "h2,http/1.1"};
    corio_tls *ctx;
    corio_stream *s;
    size_t len = 0;
    ssize_t n;
    char ca[128];

    snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
    co.ca_file = ca;
    snprintf(j->cmd, sizeof(j->cmd),
             "curl -sS --max-time 20 --cacert %s -w ' [%%{http_version}]\\n'"
             " https://localhost:%d/hello/tls https://localhost:%d/hello/again", ca, port, port);
    fail = ht_job_run(j);
    if (fail)
        return fail;
    if (!strstr(j->out, "hello, tls! [1.1]\nhello, again! [1.1]\n"))
        return j->out;
    /* a corio client: ALPN chose http/1.1; a body bigger than a record */
    ctx = corio_tls_client(&co);
    if (ctx == NULL)
        return "client context";
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    s = corio_tls_connect(ctx, addr, corio_now() + 10 * HT_SEC);
    if (s == NULL) {
        corio_tls_free(ctx);
        return "tls connect";
    }
    fail = corio_tls_alpn(s) && strcmp(corio_tls_alpn(s), "http/1.1") == 0 ? NULL : "alpn";
    if (corio_stream_write(s, req, strlen(req)) == -1)
        fail = "write";
    while (fail == NULL && len < sizeof(out) - 1 &&
           (n = corio_stream_read(s, out + len, sizeof(out) - 1 - len,
                                  corio_now() + 10 * HT_SEC)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    corio_stream_close(s);
    corio_tls_free(ctx);
    if (fail == NULL && (ht_status(out) != 200 || strlen(ht_body(out)) != 20000))
        fail = "the big answer over TLS";
    if (fail == NULL)
        fail = check_https_ranges(port, j, ca);
    return fail;
}

/* max_connections over TLS: the 503 goes through the TLS transport */
static const char *tls_get(corio_tls *ctx, int port, corio_stream **held, char *out,
                           size_t cap)
{
    const char *req = "GET /hello/tls HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int64_t dl = corio_now() + 10 * HT_SEC;
    char addr[64];
    size_t len = 0;
    ssize_t n;

    if (*held == NULL) {
        snprintf(addr, sizeof(addr), "localhost:%d", port);
        *held = corio_tls_connect(ctx, addr, dl);
        if (*held == NULL)
            return "tls connect";
    }
    if (corio_stream_write(*held, req, strlen(req)) == -1)
        return "write";
    out[0] = '\0';
    while (len < cap - 1 && !strstr(out, "hello, tls!") &&
           (n = corio_stream_read(*held, out + len, cap - 1 - len, dl)) > 0) {
        len += (size_t)n;
        out[len] = '\0';
    }
    return NULL;
}

static const char *check_https_busy(int port, struct ht_job *j)
{
    char out[4096], ca[128];
    corio_tls_opts co = {.ca_file = ca};
    corio_stream *a = NULL, *b = NULL;
    corio_tls *ctx;
    const char *fail;

    (void)j;
    snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
    ctx = corio_tls_client(&co);
    if (ctx == NULL)
        return "client context";
    fail = tls_get(ctx, port, &a, out, sizeof(out));
    if (fail == NULL && (ht_status(out) != 200 || !strstr(out, "hello, tls!")))
        fail = "the first connection";
    if (fail == NULL)
        fail = tls_get(ctx, port, &b, out, sizeof(out));
    if (fail == NULL && (ht_status(out) != 503 || !strstr(out, "\r\nRetry-After: 1\r\n") ||
                         strcmp(ht_body(out), "503: Service Unavailable\n") != 0))
        fail = "no 503 over TLS";
    if (fail == NULL)
        fail = tls_get(ctx, port, &a, out, sizeof(out));
    if (fail == NULL && (ht_status(out) != 200 || !strstr(out, "hello, tls!")))
        fail = "the first connection after the 503";
    corio_stream_close(a);
    corio_stream_close(b);
    corio_tls_free(ctx);
    return fail;
}

/* An HTTPS server (a dev certificate in certdir) running check. */
static void run_https(const char *(*check)(int, struct ht_job *), size_t max_connections)
{
    static struct run r;
    char cert[128], key[128];
    corio_tls_opts so = {.cert_file = cert, .key_file = key, .alpn = "http/1.1"};

    (void)failure;
    signal(SIGPIPE, SIG_DFL);
    strcpy(certdir, "/tmp/corio-https-XXXXXX");
    cr_assert_not_null(mkdtemp(certdir));
    cr_assert_eq(devcert_make(certdir), 0);
    snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
    snprintf(key, sizeof(key), "%s/server.key", certdir);
    memset(&r, 0, sizeof(r));
    r.check = check;
    r.max_connections = max_connections;
    r.tls = corio_tls_server(&so);
    cr_assert_not_null(r.tls);
    run_main_no_fd_leak(main_task, &r);
    corio_tls_free(r.tls);
    devcert_remove(certdir);
}

Test(http_interop, https_503_over_max_connections, .timeout = TIMEOUT)
{
    run_https(check_https_busy, 1);
}

Test(http_interop, https_with_alpn, .timeout = TIMEOUT)
{
    run_https(check_https, 0);
}
