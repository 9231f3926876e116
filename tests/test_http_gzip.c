/* tests/test_http_gzip.c -- streamed responses gzipped as a stream (the
 * server's gzip on, the client accepting it): a chunked body written in
 * many small pieces decodes (zlib, here) to what was written, with
 * Content-Encoding: gzip, Vary and no Content-Length; server-sent events
 * arrive one by one (each write is flushed: the handler writes the next
 * event only once the client has decoded the one before, so a server that
 * held compressed bytes back would stall the test); HTTP/1.0 (to the
 * close), HEAD, keep-alive after a gzipped stream; and what stays plain:
 * no Accept-Encoding, a type not compressible, a stream with a
 * Content-Length, the server's gzip off. curl --compressed reads one too. */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "http_test.h"
#include "timing.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define TIMEOUT 60
#define PIECES 300

/* ---- Handlers ------------------------------------------------------------ */

/* Piece i of /stream: a short compressible line. */
static int piece(int i, char *buf, size_t size)
{
    return snprintf(buf, size, "line %d of a stream that compresses well\n", i);
}

/* The whole of /stream. */
static size_t stream_text(char *buf, size_t size)
{
    size_t n = 0;

    for (int i = 0; i < PIECES; i++)
        n += (size_t)piece(i, buf + n, size - n);
    return n;
}

static int h_stream(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    corio_http_response_header(res, "Content-Type", arg ? (const char *)arg : "text/plain");
    if (corio_http_response_prepare(res, -1, -1) == -1)
        return -1;
    for (int i = 0; i < PIECES; i++) {
        char line[96];
        int n = piece(i, line, sizeof(line));

        if (corio_http_response_write(res, line, (size_t)n, -1) == -1)
            return -1;
    }
    return 0;
}

static int h_fixed(corio_http_request *req, corio_http_response *res, void *arg)
{
    static const char text[] = "a stream with a length is sent as it is";

    (void)req;
    (void)arg;
    corio_http_response_header(res, "Content-Type", "text/plain");
    if (corio_http_response_prepare(res, sizeof(text) - 1, -1) == -1)
        return -1;
    return corio_http_response_write(res, text, sizeof(text) - 1, -1);
}

/* Server-sent events: event i goes out, then the producer waits until the
 * client says it decoded it. */
#define EVENTS 10
static corio_sem *acked;

static int produce_events(corio_http_response *res, void *arg)
{
    (void)arg;
    for (int i = 0; i < EVENTS; i++) {
        char ev[64];
        int n = snprintf(ev, sizeof(ev), "event: tick\ndata: %d\n\n", i);

        if (corio_http_response_write(res, ev, (size_t)n, -1) == -1 ||
            corio_sem_acquire(acked, corio_now() + 5 * HT_SEC) == -1)
            return -1;
    }
    return 0;
}

static int h_events(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    corio_http_response_header(res, "Content-Type", "text/event-stream");
    corio_http_response_header(res, "Cache-Control", "no-cache");
    return corio_http_response_produce(res, -1, produce_events, NULL, NULL);
}

/* ---- A client that reads chunks and inflates them as they come ---------- */

struct reader {
    corio_stream *s;
    z_stream z;
    bool gz;                /* inflate the body */
    char text[32768];       /* the body decoded so far */
    size_t len;
    int64_t dl;
};

/* Connect, send req, read the head into head (room for cap). */
static const char *rd_open(struct reader *r, int port, const char *req, char *head,
                           size_t cap)
{
    char addr[64];
    ssize_t n;

    memset(r, 0, sizeof(*r));
    r->dl = corio_now() + 10 * HT_SEC;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    r->s = corio_stream_connect(addr, r->dl);
    if (r->s == NULL)
        return "connect";
    if (corio_stream_write(r->s, req, strlen(req)) == -1 ||
        corio_stream_drain(r->s, r->dl) == -1)
        return "write";
    n = corio_stream_readuntil(r->s, "\r\n\r\n", 4, head, cap, r->dl);
    if (n <= 0)
        return "no head";
    head[n] = '\0';
    r->gz = strstr(head, "\r\nContent-Encoding: gzip\r\n") != NULL;
    if (r->gz && inflateInit2(&r->z, 31) != Z_OK)
        return "inflateInit2";
    return NULL;
}

static void rd_close(struct reader *r)
{
    if (r->gz)
        inflateEnd(&r->z);
    corio_stream_close(r->s);
}

/* Add n body bytes (decoded if gzipped) to r->text. */
static const char *rd_add(struct reader *r, const char *data, size_t n)
{
    if (!r->gz) {
        if (r->len + n >= sizeof(r->text))
            return "too long";
        memcpy(r->text + r->len, data, n);
        r->len += n;
        r->text[r->len] = '\0';
        return NULL;
    }
    r->z.next_in = (Bytef *)(uintptr_t)data;
    r->z.avail_in = (uInt)n;
    while (r->z.avail_in > 0) {
        int rc;

        r->z.next_out = (Bytef *)r->text + r->len;
        r->z.avail_out = (uInt)(sizeof(r->text) - 1 - r->len);
        rc = inflate(&r->z, Z_SYNC_FLUSH);
        r->len = sizeof(r->text) - 1 - r->z.avail_out;
        r->text[r->len] = '\0';
        if (rc == Z_STREAM_END)
            return r->z.avail_in == 0 ? NULL : "bytes after the gzip stream";
        if (rc != Z_OK)
            return "inflate";
    }
    return NULL;
}

/* Read one chunk and add it; *last on the last (empty) one. */
static const char *rd_chunk(struct reader *r, bool *last)
{
    char line[64], data[8192];
    ssize_t n = corio_stream_readline(r->s, line, sizeof(line), r->dl);
    unsigned long size;
    char *end;

    if (n <= 0)
        return "no chunk";
    line[n] = '\0';
    size = strtoul(line, &end, 16);
    if (end == line || *end != '\r')
        return "bad chunk size";
    *last = size == 0;
    if (size + 2 > sizeof(data) || corio_stream_readexactly(r->s, data, size + 2, r->dl) == -1 ||
        memcmp(data + size, "\r\n", 2) != 0)
        return "bad chunk";
    return size ? rd_add(r, data, size) : NULL;
}

/* Read chunks to the last one. */
static const char *rd_all_chunks(struct reader *r)
{
    bool last = false;
    const char *fail;

    while (!last)
        if ((fail = rd_chunk(r, &last)) != NULL)
            return fail;
    return NULL;
}

/* ---- Checks -------------------------------------------------------------- */

#define ACCEPT "Accept-Encoding: gzip, deflate\r\n"

static const char *check_stream(int port)
{
    static char want[32768];
    size_t wl = stream_text(want, sizeof(want));
    struct reader r;
    char head[2048];
    const char *fail;
    int chunks = 0;
    bool last = false;

    fail = rd_open(&r, port, "GET /stream HTTP/1.1\r\nHost: t\r\n" ACCEPT "\r\n", head,
                   sizeof(head));
    EXPECT(fail == NULL, "%s", fail);
    EXPECT(ht_status(head) == 200 && r.gz && strstr(head, "\r\nVary: Accept-Encoding\r\n") &&
               strstr(head, "\r\nTransfer-Encoding: chunked\r\n") &&
               !strstr(head, "Content-Length"), "%s", head);
    while (!last) {
        EXPECT((fail = rd_chunk(&r, &last)) == NULL, "%s after %zu bytes", fail, r.len);
        chunks++;
    }
    /* each write its own chunk; the whole decodes to what was written */
    EXPECT(chunks >= PIECES, "%d chunks", chunks);
    EXPECT(r.len == wl && memcmp(r.text, want, wl) == 0, "decoded %zu of %zu bytes", r.len,
           wl);
    EXPECT(r.z.total_in < wl, "not smaller: %lu", (unsigned long)r.z.total_in);
    /* keep-alive: the connection serves another request after it */
    rd_close(&r);
    fail = rd_open(&r, port, "GET /stream HTTP/1.1\r\nHost: t\r\n" ACCEPT "\r\n", head,
                   sizeof(head));
    if (fail == NULL)
        fail = rd_all_chunks(&r);
    EXPECT(fail == NULL, "%s", fail);
    {
        static const char req[] = "GET /stream HTTP/1.1\r\nHost: t\r\n" ACCEPT "\r\n";
        ssize_t n;

        EXPECT(corio_stream_write(r.s, req, sizeof(req) - 1) == 0, "write again");
        inflateEnd(&r.z);
        r.len = 0;
        n = corio_stream_readuntil(r.s, "\r\n\r\n", 4, head, sizeof(head), r.dl);
        EXPECT(n > 0, "no second head");
        head[n] = '\0';
        EXPECT(ht_status(head) == 200 && inflateInit2(&r.z, 31) == Z_OK, "%s", head);
        fail = rd_all_chunks(&r);
        EXPECT(fail == NULL && r.len == wl && memcmp(r.text, want, wl) == 0,
               "second: %s", fail ? fail : "differs");
    }
    rd_close(&r);
    return NULL;
}

static const char *check_events(int port)
{
    struct reader r;
    char head[2048], want[64];
    const char *fail;
    bool last = false;

    fail = rd_open(&r, port, "GET /events HTTP/1.1\r\nHost: t\r\n" ACCEPT
                             "Connection: close\r\n\r\n", head, sizeof(head));
    EXPECT(fail == NULL && r.gz && strstr(head, "text/event-stream"), "%s: %s", fail, head);
    for (int i = 0; i < EVENTS; i++) {
        snprintf(want, sizeof(want), "data: %d\n\n", i);
        /* the event decodes from what came, before the next is written */
        while (!strstr(r.text, want)) {
            fail = rd_chunk(&r, &last);
            EXPECT(fail == NULL && !last, "event %d: %s", i, fail ? fail : "ended");
        }
        corio_sem_release(acked);
    }
    fail = rd_all_chunks(&r);
    EXPECT(fail == NULL, "%s", fail);
    rd_close(&r);
    return NULL;
}

/* What is not compressed, and HTTP/1.0, HEAD. */
static const char *check_others(int port)
{
    static char out[65536], want[32768];
    size_t wl = stream_text(want, sizeof(want));
    struct reader r;
    char head[2048];
    const char *fail;
    ssize_t n;

    ht_get(port, "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", out,
           sizeof(out));
    EXPECT(ht_status(out) == 200 && !strstr(out, "Content-Encoding") &&
               strstr(out, "\r\n\r\n28\r\nline 0 of"), "%.300s", out);
    ht_get(port, "GET /png HTTP/1.1\r\nHost: t\r\n" ACCEPT "Connection: close\r\n\r\n", out,
           sizeof(out));
    EXPECT(ht_status(out) == 200 && !strstr(out, "Content-Encoding") &&
               strstr(out, "Content-Type: image/png\r\n"), "%.300s", out);
    ht_get(port, "GET /fixed HTTP/1.1\r\nHost: t\r\n" ACCEPT "Connection: close\r\n\r\n", out,
           sizeof(out));
    EXPECT(!strstr(out, "Content-Encoding") && strstr(out, "Content-Length: 39\r\n") &&
               strcmp(ht_body(out), "a stream with a length is sent as it is") == 0, "%s", out);
    /* HEAD: the head a GET would get, no body */
    ht_get(port, "HEAD /stream HTTP/1.1\r\nHost: t\r\n" ACCEPT "Connection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strstr(out, "Content-Encoding: gzip\r\n") &&
               *ht_body(out) == '\0', "%s", out);
    /* HTTP/1.0: one gzip stream to the close */
    fail = rd_open(&r, port, "GET /stream HTTP/1.0\r\n" ACCEPT "\r\n", head, sizeof(head));
    EXPECT(fail == NULL && r.gz && !strstr(head, "chunked"), "%s: %s", fail, head);
    while ((n = corio_stream_read(r.s, out, sizeof(out), r.dl)) > 0)
        EXPECT((fail = rd_add(&r, out, (size_t)n)) == NULL, "%s", fail);
    EXPECT(r.len == wl && memcmp(r.text, want, wl) == 0, "1.0: %zu of %zu", r.len, wl);
    rd_close(&r);
    return NULL;
}

static const char *check_off(int port)
{
    static char out[65536];

    ht_get(port, "GET /stream HTTP/1.1\r\nHost: t\r\n" ACCEPT "Connection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_status(out) == 200 && !strstr(out, "Content-Encoding") &&
               strstr(out, "Transfer-Encoding: chunked\r\n"), "%.300s", out);
    return NULL;
}

static const char *check_curl(int port)
{
    static struct ht_job j;
    static char want[32768], got[32768];
    size_t wl = stream_text(want, sizeof(want)), gl = 0;
    char path[64], body[80];
    const char *fail;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/corio-gzip-%d", (int)getpid());
    snprintf(body, sizeof(body), "%s.b", path);
    snprintf(j.cmd, sizeof(j.cmd),
             "curl -sS --max-time 20 --compressed -D %s.h -o %s http://127.0.0.1:%d/stream"
             " && tr -d '\\r' < %s.h | tr A-Z a-z | grep '^content-encoding'; rm -f %s.h",
             path, body, port, path, path);
    fail = ht_job_run(&j);
    f = fopen(body, "r");
    if (f != NULL) {
        gl = fread(got, 1, sizeof(got), f);
        fclose(f);
    }
    unlink(body);
    EXPECT(fail == NULL && strcmp(j.out, "content-encoding: gzip\n") == 0, "%s: %s", fail, j.out);
    EXPECT(gl == wl && memcmp(got, want, wl) == 0, "curl decoded %zu of %zu bytes", gl, wl);
    return NULL;
}

/* ---- Running ------------------------------------------------------------- */

typedef const char *(*check_fn)(int port);

struct run {
    check_fn check;
    bool gzip;
};

static void *main_task(void *arg)
{
    struct run *r = arg;
    corio_http_server_opts o = {.gzip = r->gzip};
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv;
    const char *fail;

    acked = corio_sem_new(0);
    if (app == NULL || acked == NULL ||
        corio_http_app_route(app, "GET", "/stream", h_stream, NULL) == -1 ||
        corio_http_app_route(app, "GET", "/png", h_stream, "image/png") == -1 ||
        corio_http_app_route(app, "GET", "/fixed", h_fixed, NULL) == -1 ||
        corio_http_app_route(app, "GET", "/events", h_events, NULL) == -1)
        return (void *)"app";
    srv = corio_http_server_start("127.0.0.1:0", app, &o);
    if (srv == NULL)
        return (void *)"start";
    fail = r->check(corio_http_server_port(srv));
    if (corio_http_server_stop(srv, corio_now() + 5 * HT_SEC) != 0 && fail == NULL)
        fail = "stop";
    corio_http_app_free(app);
    corio_sem_free(acked);
    return (void *)fail;
}

static void run(check_fn check, bool gzip)
{
    struct run r = {check, gzip};

    (void)failure;
    signal(SIGPIPE, SIG_DFL);
    run_main_no_fd_leak(main_task, &r);
}

Test(http_gzip, chunked_stream_decodes, .timeout = TIMEOUT)
{
    run(check_stream, true);
}

Test(http_gzip, events_arrive_one_by_one, .timeout = TIMEOUT)
{
    run(check_events, true);
}

Test(http_gzip, plain_when_not_wanted, .timeout = TIMEOUT)
{
    run(check_others, true);
}

Test(http_gzip, server_gzip_off, .timeout = TIMEOUT)
{
    run(check_off, false);
}

Test(http_gzip, curl_compressed, .timeout = TIMEOUT)
{
    if (access("/usr/bin/curl", X_OK) != 0)
        cr_skip_test("curl is not installed");
    if (RUNNING_ON_VALGRIND) /* it would trace the clients (as test_http_interop) */
        cr_skip_test("real clients: not under valgrind");
    run(check_curl, true);
}
