/* tests/test_http_client_interop.c -- the HTTP client
 * (include/corio/http_client.h) against real servers from Debian: aiohttp
 * (tests/helpers/http_peer.py), Python's http.server (HTTP/1.0, bodies to
 * the end of the connection) and nginx (a generated config in a temporary
 * directory, an ephemeral port). Not run under valgrind (label
 * novalgrind): valgrind traces the children, and would test Python and
 * nginx, not corio, for minutes; test_http_client.c holds the client's
 * tests against corio servers, which do run there.
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "loop_test.h"
#include "peer_proc.h"
#include "timing.h"
#include "http_client_test.h"

static struct peer_proc peer;
static char base[64];

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
