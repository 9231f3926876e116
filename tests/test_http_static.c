/* tests/test_http_static.c -- static files: content, type by extension,
 * HEAD, ETag and Last-Modified with 304, If-Modified-Since by date (the
 * three date forms, a future date, garbage ignored, If-None-Match first),
 * If-Range by ETag and by date, Range with 206 and 416, several ranges
 * (multipart/byteranges, checked byte for byte, and read by curl and
 * Python's email parser; too many or too much: 200), an index
 * file, and every way out of the root refused: `..` plain and encoded
 * (%2e%2e, %2E%2e, %2f), a NUL, a backslash, an absolute path, a symlink
 * that leads out (and one that stays in, followed only when asked). */
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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define TIMEOUT 60

static char root[128], outside[128];

/* big.txt: BIG_SIZE letters, byte i is big_byte(i) */
#define BIG_SIZE 100000
static char big_byte(size_t i)
{
    return (char)('a' + (i * 7 + i / 97) % 26);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void make_tree(void)
{
    char path[256];

    snprintf(root, sizeof(root), "/tmp/corio-static-%d/root", (int)getpid());
    snprintf(outside, sizeof(outside), "/tmp/corio-static-%d", (int)getpid());
    mkdir(outside, 0700);
    mkdir(root, 0700);
    snprintf(path, sizeof(path), "%s/sub", root);
    mkdir(path, 0700);
    write_file(root, "hello.txt", "hello, static world\n");
    write_file(root, "page.html", "<p>page</p>");
    write_file(root, "sub/index.html", "<p>index</p>");
    write_file(outside, "secret.txt", "SECRET");
    write_file(root, "dated.txt", "0123456789");
    {
        static char big[BIG_SIZE + 1];

        for (size_t i = 0; i < BIG_SIZE; i++)
            big[i] = big_byte(i);
        write_file(root, "big.txt", big);
    }
    {   /* mtime Thu, 02 Jan 2020 03:04:05 GMT */
        struct timespec ts[2] = {{1577934245, 0}, {1577934245, 0}};

        snprintf(path, sizeof(path), "%s/dated.txt", root);
        cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
    snprintf(path, sizeof(path), "%s/out-link", root);
    cr_assert_eq(symlink("../secret.txt", path), 0);
    snprintf(path, sizeof(path), "%s/in-link", root);
    cr_assert_eq(symlink("hello.txt", path), 0);
}

static void remove_tree(void)
{
    char path[256];
    static const char *files[] = {"root/hello.txt", "root/page.html",
                                  "root/sub/index.html", "root/out-link",
                                  "root/in-link", "root/dated.txt", "root/big.txt",
                                  "secret.txt"};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", outside, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/sub", root);
    rmdir(path);
    rmdir(root);
    rmdir(outside);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

static const char *check_files(int port)
{
    char out[8192], req[1024], etag[128] = "", lm[64] = "";
    const char *p;

    ht_get(port, GET("/static/hello.txt"), out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "hello, static world\n") == 0,
           "%s", out);
    EXPECT(strstr(out, "Content-Type: text/plain; charset=utf-8\r\n") &&
               strstr(out, "Content-Length: 20\r\n") && strstr(out, "Accept-Ranges: bytes"),
           "%s", out);
    p = strstr(out, "ETag: ");
    EXPECT(p && sscanf(p, "ETag: %127[^\r]", etag) == 1, "%s", out);
    p = strstr(out, "Last-Modified: ");
    EXPECT(p && sscanf(p, "Last-Modified: %63[^\r]", lm) == 1, "%s", out);
    ht_get(port, GET("/static/page.html"), out, sizeof(out));
    EXPECT(strstr(out, "Content-Type: text/html"), "%s", out);
    ht_get(port, "HEAD /static/hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strstr(out, "Content-Length: 20\r\n") &&
               *ht_body(out) == '\0', "%s", out);
    /* conditional requests */
    snprintf(req, sizeof(req), "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\n"
                               "If-None-Match: %s\r\nConnection: close\r\n\r\n", etag);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 304 && *ht_body(out) == '\0' &&
               !strstr(out, "Content-Length"), "%s", out);
    snprintf(req, sizeof(req), "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\n"
                               "If-Modified-Since: %s\r\nConnection: close\r\n\r\n", lm);
    ht_get(port, req, out, sizeof(out));
    EXPECT(ht_status(out) == 304, "%s", out);
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\"\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 200, "%s", out);
    /* ranges */
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=7-12\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 206 && strcmp(ht_body(out), "static") == 0 &&
               strstr(out, "Content-Range: bytes 7-12/20\r\n"), "%s", out);
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=-6\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 206 && strcmp(ht_body(out), "world\n") == 0, "%s", out);
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=15-\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 206 && strcmp(ht_body(out), "orld\n") == 0, "%s", out);
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=50-60\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 416 && strstr(out, "Content-Range: bytes */20\r\n"), "%s", out);
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: lines=1-2\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 200, "%s", out);
    /* a directory: its index */
    ht_get(port, GET("/static/sub/"), out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "<p>index</p>") == 0, "%s", out);
    ht_get(port, GET("/static/nope.txt"), out, sizeof(out));
    EXPECT(ht_status(out) == 404, "%s", out);
    /* keep-alive across static responses (sendfile, then the next request) */
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /static/page.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    EXPECT(ht_count(out, "HTTP/1.1 200") == 2 && strstr(out, "world\n") &&
               strstr(out, "<p>page</p>"), "%s", out);
    return NULL;
}

/* GET /static/dated.txt (mtime Thu, 02 Jan 2020 03:04:05 GMT) with the
 * extra header lines hdrs; the status. */
static int dated(int port, const char *hdrs, char *out, size_t cap)
{
    char req[1024];

    snprintf(req, sizeof(req), "GET /static/dated.txt HTTP/1.1\r\nHost: t\r\n%s"
                               "Connection: close\r\n\r\n", hdrs);
    ht_get(port, req, out, cap);
    return ht_status(out);
}

static const char *check_dates(int port)
{
    static const struct {
        const char *hdrs;
        int status;
    } cases[] = {
        /* If-Modified-Since: 304 when the mtime is not after the date */
        {"If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT\r\n", 304},
        {"If-Modified-Since: Fri, 03 Jan 2020 00:00:00 GMT\r\n", 304},
        {"If-Modified-Since: Thu, 02 Jan 2020 03:04:04 GMT\r\n", 200},
        {"If-Modified-Since: Thursday, 02-Jan-20 03:04:05 GMT\r\n", 304},
        {"If-Modified-Since: Wednesday, 01-Jan-20 03:04:05 GMT\r\n", 200},
        {"If-Modified-Since: Thu Jan  2 03:04:05 2020\r\n", 304},
        {"If-Modified-Since: Thu Jan  2 03:04:04 2020\r\n", 200},
        {"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n", 304}, /* future */
        /* not a date: ignored */
        {"If-Modified-Since: yesterday\r\n", 200},
        {"If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT junk\r\n", 200},
        {"If-Modified-Since: Thu, 31 Feb 2020 03:04:05 GMT\r\n", 200},
        {"If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT\r\n"
         "If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT\r\n", 200},
        /* If-None-Match decides when both are there */
        {"If-None-Match: \"other\"\r\n"
         "If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT\r\n", 200},
        {"If-None-Match: *\r\n"
         "If-Modified-Since: Thu, 02 Jan 2020 03:04:04 GMT\r\n", 304},
        /* a Range with If-Range: applied only when If-Range matches */
        {"Range: bytes=2-4\r\nIf-Range: Thu, 02 Jan 2020 03:04:05 GMT\r\n", 206},
        {"Range: bytes=2-4\r\nIf-Range: Thu, 02 Jan 2020 03:04:06 GMT\r\n", 200},
        {"Range: bytes=2-4\r\nIf-Range: Thu, 02 Jan 2020 03:04:04 GMT\r\n", 200},
        {"Range: bytes=2-4\r\nIf-Range: \"other\"\r\n", 200},
        {"Range: bytes=2-4\r\nIf-Range: garbage\r\n", 200},
        {"Range: bytes=2-4\r\n", 206},
    };
    char out[8192], etag[128] = "", hdrs[512];
    const char *p;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = dated(port, cases[i].hdrs, out, sizeof(out));

        EXPECT(status == cases[i].status, "case %zu: %s: %s", i, cases[i].hdrs, out);
        EXPECT(strstr(out, "Last-Modified: Thu, 02 Jan 2020 03:04:05 GMT\r\n"), "%s", out);
        if (status == 304)
            EXPECT(*ht_body(out) == '\0' && strstr(out, "ETag: "), "%s", out);
        if (status == 200)
            EXPECT(strcmp(ht_body(out), "0123456789") == 0, "%s", out);
        if (status == 206)
            EXPECT(strcmp(ht_body(out), "234") == 0 &&
                       strstr(out, "Content-Range: bytes 2-4/10\r\n"), "%s", out);
    }
    /* the entity tag: a match in If-None-Match wins over a modified date;
     * If-Range by the strong tag applies the range, the weak one does not */
    dated(port, "", out, sizeof(out));
    p = strstr(out, "ETag: ");
    EXPECT(p && sscanf(p, "ETag: %127[^\r]", etag) == 1, "%s", out);
    snprintf(hdrs, sizeof(hdrs), "If-None-Match: W/%s\r\n"
                                 "If-Modified-Since: Thu, 02 Jan 2020 03:04:04 GMT\r\n", etag);
    EXPECT(dated(port, hdrs, out, sizeof(out)) == 304, "%s", out);
    snprintf(hdrs, sizeof(hdrs), "Range: bytes=2-4\r\nIf-Range: %s\r\n", etag);
    EXPECT(dated(port, hdrs, out, sizeof(out)) == 206 && strcmp(ht_body(out), "234") == 0,
           "%s", out);
    snprintf(hdrs, sizeof(hdrs), "Range: bytes=2-4\r\nIf-Range: W/%s\r\n", etag);
    EXPECT(dated(port, hdrs, out, sizeof(out)) == 200 &&
               strcmp(ht_body(out), "0123456789") == 0, "%s", out);
    return NULL;
}

/* The multipart/byteranges body the server must send for the ranges
 * (off, len pairs, n of them) of a file of size bytes made by byte(i),
 * with the boundary of the response resp: into out (room for cap).
 * Returns its length, or 0 if resp names no boundary. */
static size_t expected_parts(const char *resp, const int64_t *r, int n, int64_t size,
                             char (*byte)(size_t), const char *type, char *out,
                             size_t cap)
{
    char boundary[80];
    const char *b = strstr(resp, "Content-Type: multipart/byteranges; boundary=");
    size_t len = 0;

    if (b == NULL || sscanf(b + 45, "%79[^\r]", boundary) != 1)
        return 0;
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len,
                                "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %lld-%lld/%lld\r\n\r\n",
                                i ? "\r\n" : "", boundary, type, (long long)r[2 * i],
                                (long long)(r[2 * i] + r[2 * i + 1] - 1), (long long)size);
        for (int64_t k = 0; k < r[2 * i + 1]; k++)
            out[len++] = byte((size_t)(r[2 * i] + k));
    }
    len += (size_t)snprintf(out + len, cap - len, "\r\n--%s--\r\n", boundary);
    return len;
}

static char hello_byte(size_t i)
{
    return "hello, static world\n"[i];
}

static const char *check_ranges(int port)
{
    static const struct {
        const char *path, *range;
        int status;
        int n;              /* parts expected (206), 0: not multipart */
        int64_t r[8];       /* their offsets and lengths */
    } cases[] = {
        {"hello.txt", "bytes=0-1,5-6", 206, 2, {0, 2, 5, 2}},
        {"big.txt", "bytes=0-9, 50000-50009 ,-10", 206, 3, {0, 10, 50000, 10, 99990, 10}},
        /* open ranges; unsatisfiable ones dropped; empty elements skipped */
        {"big.txt", "bytes=200000-300000,,0-4, 99990-", 206, 2, {0, 5, 99990, 10}},
        /* overlapping, but no more bytes than the file: as asked */
        {"hello.txt", "bytes=0-5,3-8", 206, 2, {0, 6, 3, 6}},
        /* one satisfiable left: a plain 206 */
        {"big.txt", "bytes=0-4,200000-", 206, 0, {0}},
        {"big.txt", "bytes=200000-,300000-400000,-0", 416, 0, {0}},
        /* more bytes than the file, bad syntax: the whole file */
        {"hello.txt", "bytes=0-19,0-19", 200, 0, {0}},
        {"hello.txt", "bytes=-20,-20", 200, 0, {0}},
        {"hello.txt", "bytes=0-1,x", 200, 0, {0}},
        {"hello.txt", "bytes=0-1,5-2", 200, 0, {0}},
        {"hello.txt", "bytes=0-1;5-6", 200, 0, {0}},
    };
    static char out[65536], want[65536];
    char req[1024], cr[64];
    size_t wl;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool hello = strcmp(cases[i].path, "hello.txt") == 0;
        char (*byte)(size_t) = hello ? hello_byte : big_byte;
        int64_t size = hello ? 20 : BIG_SIZE;
        ssize_t got;

        snprintf(req, sizeof(req), "GET /static/%s HTTP/1.1\r\nHost: t\r\nRange: %s\r\n"
                                   "Connection: close\r\n\r\n", cases[i].path, cases[i].range);
        got = ht_get(port, req, out, sizeof(out));
        EXPECT(ht_status(out) == cases[i].status, "%s: %s", cases[i].range, out);
        if (cases[i].n > 0) {
            const char *body = ht_body(out);

            wl = expected_parts(out, cases[i].r, cases[i].n, size, byte,
                                "text/plain; charset=utf-8", want, sizeof(want));
            snprintf(cr, sizeof(cr), "Content-Length: %zu\r\n", wl);
            const char *cr0 = strstr(out, "Content-Range");

            EXPECT(wl > 0 && strstr(out, cr) && cr0 > body, /* none in the head */
                   "%s: %s", cases[i].range, out);
            EXPECT((size_t)(out + got - body) == wl && memcmp(body, want, wl) == 0,
                   "%s: got %s\nwant %.*s", cases[i].range, out, (int)wl, want);
        } else if (cases[i].status == 200) {
            snprintf(cr, sizeof(cr), "Content-Length: %lld\r\n", (long long)size);
            EXPECT(strstr(out, cr) && strlen(ht_body(out)) == (size_t)size &&
                       !strstr(out, "multipart"), "%s: %s", cases[i].range, out);
        }
    }
    /* 16 ranges are served, 17 are too many */
    {
        char range[512] = "bytes=0-0";
        int64_t r[32] = {0, 1};

        for (int k = 1; k < 16; k++) {
            snprintf(range + strlen(range), sizeof(range) - strlen(range), ",%d-%d", 2 * k, 2 * k);
            r[2 * k] = 2 * k;
            r[2 * k + 1] = 1;
        }
        snprintf(req, sizeof(req), "GET /static/big.txt HTTP/1.1\r\nHost: t\r\nRange: %s\r\n"
                                   "Connection: close\r\n\r\n", range);
        ht_get(port, req, out, sizeof(out));
        wl = expected_parts(out, r, 16, BIG_SIZE, big_byte, "text/plain; charset=utf-8",
                            want, sizeof(want));
        EXPECT(ht_status(out) == 206 && wl > 0 && strcmp(ht_body(out), want) == 0, "%s", out);
        snprintf(req, sizeof(req), "GET /static/big.txt HTTP/1.1\r\nHost: t\r\nRange: %s,40-40\r\n"
                                   "Connection: close\r\n\r\n", range);
        ht_get(port, req, out, sizeof(out));
        EXPECT(ht_status(out) == 200 && strstr(out, "Content-Length: 100000\r\n"), "%.300s", out);
    }
    /* HEAD: the same head, no body; If-Range that does not match: 200 */
    ht_get(port, "HEAD /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1,5-6\r\n"
                 "Connection: close\r\n\r\n", out, sizeof(out));
    {
        int64_t r[4] = {0, 2, 5, 2};
        wl = expected_parts(out, r, 2, 20, hello_byte, "text/plain; charset=utf-8",
                                   want, sizeof(want));

        snprintf(cr, sizeof(cr), "Content-Length: %zu\r\n", wl);
        EXPECT(ht_status(out) == 206 && wl > 0 && strstr(out, cr) && *ht_body(out) == '\0',
               "%s", out);
    }
    ht_get(port, "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1,5-6\r\n"
                 "If-Range: \"nope\"\r\nConnection: close\r\n\r\n", out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "hello, static world\n") == 0,
           "%s", out);
    /* the Content-Length is exact: the next request on the connection follows */
    ht_get(port, "GET /static/big.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=1-3,-3\r\n\r\n"
                 "GET /static/hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
           out, sizeof(out));
    {
        char *second = strstr(out, "HTTP/1.1 200 OK\r\n");

        EXPECT(ht_status(out) == 206 && second &&
                   second - out > 4 && memcmp(second - 4, "--\r\n", 4) == 0 &&
                   strcmp(ht_body(second), "hello, static world\n") == 0, "%s", out);
    }
    return NULL;
}

/* curl asks for several ranges; Python's email parser reads the parts */
static const char *check_ranges_curl(int port)
{
    static struct ht_job j;
    const char *fail;
    char want[128];

    snprintf(j.cmd, sizeof(j.cmd),
             "set -e; t=/tmp/corio-ranges-$$; u=http://127.0.0.1:%d/static;"
             "curl -sS --max-time 20 -r 0-1,5-6 $u/hello.txt -D $t.h -o $t.b;"
             "curl -sS --max-time 20 -r 0-9,50000-50009,-10 $u/big.txt -D $t.h2 -o $t.b2;"
             "for n in '' 2; do python3 -c '\n"
             "import sys, email\n"
             "h = open(sys.argv[1], \"rb\").read().decode()\n"
             "ct = [l.split(\":\", 1)[1].strip() for l in h.split(\"\\r\\n\")\n"
             "      if l.lower().startswith(\"content-type:\")][0]\n"
             "m = email.message_from_bytes(b\"Content-Type: \" + ct.encode() + b\"\\r\\n\\r\\n\"\n"
             "                             + open(sys.argv[2], \"rb\").read())\n"
             "print(h.split(\"\\r\\n\")[0], m.get_content_type(), len(m.get_payload()))\n"
             "for p in m.get_payload():\n"
             "    print(p[\"Content-Type\"], p[\"Content-Range\"], p.get_payload(decode=True).decode())\n"
             "' $t.h$n $t.b$n; done; rm -f $t.h $t.b $t.h2 $t.b2",
             port);
    fail = ht_job_run(&j);
    EXPECT(fail == NULL, "%s: %s", fail, j.out);
    EXPECT(strstr(j.out, "HTTP/1.1 206 Partial Content multipart/byteranges 2\n"
                         "text/plain; charset=utf-8 bytes 0-1/20 he\n"
                         "text/plain; charset=utf-8 bytes 5-6/20 , \n"), "%s", j.out);
    EXPECT(strstr(j.out, "HTTP/1.1 206 Partial Content multipart/byteranges 3\n"), "%s", j.out);
    for (int k = 0; k < 3; k++) {
        static const int offs[] = {0, 50000, 99990};
        size_t n = (size_t)snprintf(want, sizeof(want), "bytes %d-%d/100000 ", offs[k],
                                    offs[k] + 9);

        for (int i = 0; i < 10; i++)
            want[n++] = big_byte((size_t)(offs[k] + i));
        want[n] = '\0';
        EXPECT(strstr(j.out, want), "%s: %s", want, j.out);
    }
    return NULL;
}

static const char *check_escapes(int port)
{
    static const char *attempts[] = {
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2e/secret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/..%5csecret.txt",
        "/static/hello.txt%00.html",
        "/static/out-link",
        "/static/./hello.txt",
    };
    char out[8192], req[1024];

    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 attempts[i]);
        ht_get(port, req, out, sizeof(out));
        EXPECT(ht_status(out) >= 400 && ht_status(out) < 500 && !strstr(out, "SECRET") &&
                   !strstr(out, "root:"), "%s: %s", attempts[i], out);
    }
    /* a symlink that stays inside: refused unless symlinks are followed */
    ht_get(port, GET("/static/in-link"), out, sizeof(out));
    EXPECT(ht_status(out) == 403, "%s", out);
    ht_get(port, GET("/follow/in-link"), out, sizeof(out));
    EXPECT(ht_status(out) == 200 && strcmp(ht_body(out), "hello, static world\n") == 0,
           "%s", out);
    ht_get(port, GET("/follow/out-link"), out, sizeof(out));
    EXPECT(ht_status(out) == 404 && !strstr(out, "SECRET"), "%s", out);
    return NULL;
}


typedef const char *(*check_fn)(int port);

static void *main_task(void *arg)
{
    check_fn check = (check_fn)arg;
    corio_http_app *app = corio_http_app_new();
    corio_http_static_opts idx = {.index = "index.html"};
    corio_http_static_opts follow = {.follow_symlinks = true};
    corio_http_server *srv;
    const char *fail;

    if (app == NULL || corio_http_app_static(app, "/static", root, &idx) == -1 ||
        corio_http_app_static(app, "/follow/", root, &follow) == -1)
        return (void *)"app";
    srv = corio_http_server_start("127.0.0.1:0", app, NULL);
    if (srv == NULL)
        return (void *)"start";
    fail = check(corio_http_server_port(srv));
    corio_http_server_stop(srv, corio_now() + 5 * HT_SEC);
    corio_http_app_free(app);
    return (void *)fail;
}

static void run(check_fn check)
{
    (void)failure;
    signal(SIGPIPE, SIG_DFL);
    make_tree();
    run_main_no_fd_leak(main_task, (void *)check);
    remove_tree();
}

Test(http_static, files_conditionals_ranges, .timeout = TIMEOUT)
{
    run(check_files);
}

Test(http_static, no_escape_from_the_root, .timeout = TIMEOUT)
{
    run(check_escapes);
}

Test(http_static, conditionals_by_date_and_if_range, .timeout = TIMEOUT)
{
    run(check_dates);
}

Test(http_static, several_ranges, .timeout = TIMEOUT)
{
    run(check_ranges);
}

Test(http_static, several_ranges_curl, .timeout = TIMEOUT)
{
    if (access("/usr/bin/curl", X_OK) != 0 || access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("curl or python3 is not installed");
    if (RUNNING_ON_VALGRIND) /* it would trace the clients (as test_http_interop) */
        cr_skip_test("real clients: not under valgrind");
    run(check_ranges_curl);
}
