/* tests/test_http_parse.c -- the header list (order, case-insensitive
 * lookups, repeated fields, tokens) and the llhttp glue for requests and
 * responses: request vectors fed whole and byte by byte, pipelined
 * messages, chunked bodies, every strict rule of RFC 9112 that the server
 * answers 400 (smuggling vectors), the limits (414, 431, 413) and 505. */
#include <criterion/criterion.h>

#include "corio.h"
#include "http/http_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* ---- Header list --------------------------------------------------------- */

Test(headers, order_case_and_repeats)
{
    corio_http_headers *h = corio_http_headers_new();
    const char *n, *v;
    size_t pos = 0;

    cr_assert_not_null(h);
    cr_assert_eq(corio_http_headers_add(h, "Set-Cookie", "a=1"), 0);
    cr_assert_eq(corio_http_headers_add(h, "Content-Type", "  text/plain \t"), 0);
    cr_assert_eq(corio_http_headers_add(h, "set-cookie", "b=2"), 0);
    cr_assert_eq(corio_http_headers_count(h), 3);
    cr_assert_str_eq(corio_http_headers_get(h, "CONTENT-TYPE"), "text/plain");
    cr_assert_str_eq(corio_http_headers_next(h, "Set-Cookie", &pos), "a=1");
    cr_assert_str_eq(corio_http_headers_next(h, "Set-Cookie", &pos), "b=2");
    cr_assert_null(corio_http_headers_next(h, "Set-Cookie", &pos));
    cr_assert_eq(corio_http_headers_at(h, 2, &n, &v), 0);
    cr_assert_str_eq(n, "set-cookie");
    cr_assert_str_eq(v, "b=2");
    cr_assert_eq(corio_http_headers_at(h, 3, &n, &v), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_http_headers_get(h, "X-None"));
    cr_assert_eq(errno, ENOENT);

    cr_assert_eq(corio_http_headers_set(h, "SET-COOKIE", "c=3"), 0);
    cr_assert_eq(corio_http_headers_count(h), 2);
    cr_assert_str_eq(corio_http_headers_get(h, "set-cookie"), "c=3");
    cr_assert_eq(corio_http_headers_remove(h, "content-type"), 1);
    cr_assert_eq(corio_http_headers_count(h), 1);
    corio_http_headers_clear(h);
    cr_assert_eq(corio_http_headers_count(h), 0);
    cr_assert_eq(corio_http_headers_free(h), 0);
    cr_assert_eq(corio_http_headers_free(NULL), 0);
}

Test(headers, bad_names_and_values)
{
    corio_http_headers *h = corio_http_headers_new();

    cr_assert_eq(corio_http_headers_add(h, "Bad Name", "x"), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_http_headers_add(h, "", "x"), -1);
    cr_assert_eq(corio_http_headers_add(h, "X:", "x"), -1);
    cr_assert_eq(corio_http_headers_add(h, "X", "a\r\nInjected: 1"), -1);
    cr_assert_eq(corio_http_headers_add(h, "X", "a\nb"), -1);
    cr_assert_eq(corio_http_headers_add_n(h, "X", 1, "a\0b", 3), -1);
    cr_assert_eq(corio_http_headers_add(h, "X", NULL), -1);
    cr_assert_eq(corio_http_headers_set(h, "X", "a\rb"), -1);
    cr_assert_eq(corio_http_headers_count(h), 0);
    cr_assert_eq(corio_http_headers_add(h, "X", ""), 0);
    cr_assert_str_eq(corio_http_headers_get(h, "x"), "");
    corio_http_headers_free(h);
}

Test(headers, many_fields_grow)
{
    corio_http_headers *h = corio_http_headers_new();
    char name[32], value[64];

    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "X-H%d", i);
        snprintf(value, sizeof(value), "value number %d", i);
        cr_assert_eq(corio_http_headers_add(h, name, value), 0);
    }
    cr_assert_str_eq(corio_http_headers_get(h, "x-h499"), "value number 499");
    cr_assert_str_eq(corio_http_headers_get(h, "X-H0"), "value number 0");
    corio_http_headers_free(h);
}

Test(headers, tokens)
{
    corio_http_headers *h = corio_http_headers_new();

    corio_http_headers_add(h, "Connection", "keep-alive, Upgrade");
    corio_http_headers_add(h, "Accept-Encoding", "deflate");
    corio_http_headers_add(h, "accept-encoding", " br ,GZIP");
    cr_assert(corio_http_headers_has_token(h, "connection", "upgrade"));
    cr_assert(corio_http_headers_has_token(h, "connection", "keep-alive"));
    cr_assert_not(corio_http_headers_has_token(h, "connection", "keep"));
    cr_assert(corio_http_headers_has_token(h, "Accept-Encoding", "gzip"));
    cr_assert_not(corio_http_headers_has_token(h, "X", "gzip"));
    corio_http_headers_free(h);
}

/* ---- Parser -------------------------------------------------------------- */

struct msg {
    enum corio__http_event ev;
    int status;
    char body[4096];
    size_t body_len;
    size_t used;         /* bytes taken in all */
};

/* Parse one message from data (fed in pieces of `step` bytes; 0: whole)
 * up to DONE or ERROR. */
static struct msg parse_one(struct corio__http_parser *p, const char *data,
                            size_t n, size_t step)
{
    struct msg m = {0};
    char out[4096];
    size_t off = 0;

    for (;;) {
        size_t k = n - off, used = 0;

        if (step && k > step)
            k = step;
        p->body = out;
        m.ev = corio__http_parse(p, data + off, k, &used);
        memcpy(m.body + m.body_len, out, p->body_len);
        m.body_len += p->body_len;
        off += used;
        if (m.ev == CORIO__HTTP_ERROR) {
            m.status = p->status;
            break;
        }
        if (m.ev == CORIO__HTTP_DONE)
            break;
        if (m.ev == CORIO__HTTP_MORE && off == n)
            break;
    }
    m.used = off;
    return m;
}

static struct corio__http_parser parser;
static corio_http_headers *hdrs;

static void req_setup(const corio_http_limits *lim)
{
    hdrs = corio_http_headers_new();
    cr_assert_eq(corio__http_parser_init(&parser, HTTP_REQUEST, lim, hdrs), 0);
}

static void teardown(void)
{
    corio__http_parser_free(&parser);
    corio_http_headers_free(hdrs);
}

/* The status a lone request gets: 0 if it parses. */
static int verdict(const char *req)
{
    struct msg m;

    req_setup(NULL);
    m = parse_one(&parser, req, strlen(req), 0);
    teardown();
    if (m.ev == CORIO__HTTP_ERROR)
        return m.status;
    cr_assert_eq(m.ev, CORIO__HTTP_DONE, "not complete: %s", req);
    return 0;
}

static int verdict_limits(const char *req, const corio_http_limits *lim)
{
    struct msg m;

    req_setup(lim);
    m = parse_one(&parser, req, strlen(req), 0);
    teardown();
    return m.ev == CORIO__HTTP_ERROR ? m.status : 0;
}

Test(parse, simple_get_whole_and_bytewise)
{
    const char *req = "GET /hello/w%20x?a=1&b=2 HTTP/1.1\r\n"
                      "Host: example.com\r\nUser-Agent: t\r\n"
                      "Cookie: a=1\r\nCookie: b=2\r\n\r\n";

    for (size_t step = 0; step <= 1; step++) {
        struct msg m;
        size_t pos = 0;

        req_setup(NULL);
        m = parse_one(&parser, req, strlen(req), step);
        cr_assert_eq(m.ev, CORIO__HTTP_DONE);
        cr_assert_eq(m.used, strlen(req));
        cr_assert(parser.head_done);
        cr_assert_str_eq(corio__http_method(&parser), "GET");
        cr_assert_str_eq(corio__http_target(&parser), "/hello/w%20x?a=1&b=2");
        cr_assert_eq(parser.version, 11);
        cr_assert_str_eq(corio_http_headers_get(hdrs, "host"), "example.com");
        cr_assert_str_eq(corio_http_headers_next(hdrs, "cookie", &pos), "a=1");
        cr_assert_str_eq(corio_http_headers_next(hdrs, "cookie", &pos), "b=2");
        cr_assert(corio__http_keep_alive(&parser));
        cr_assert_eq(corio__http_content_length(&parser), -1);
        teardown();
    }
}

Test(parse, head_event_then_body)
{
    const char *req = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    char out[64];
    size_t used, n = strlen(req);

    req_setup(NULL);
    parser.body = out;
    cr_assert_eq(corio__http_parse(&parser, req, n, &used), CORIO__HTTP_HEAD);
    cr_assert_eq(used, n - 5);
    cr_assert_eq(parser.body_len, 0);
    cr_assert_eq(corio__http_content_length(&parser), 5);
    cr_assert_eq(corio__http_parse(&parser, req + used, 5, &used), CORIO__HTTP_DONE);
    cr_assert_eq(used, 5);
    cr_assert_eq(parser.body_len, 5);
    cr_assert_eq(memcmp(out, "hello", 5), 0);
    teardown();
}

Test(parse, no_body_done_after_head_with_nothing_more)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    char out[16];
    size_t used, n = strlen(req);

    req_setup(NULL);
    parser.body = out;
    cr_assert_eq(corio__http_parse(&parser, req, n, &used), CORIO__HTTP_HEAD);
    cr_assert_eq(used, n);
    /* the end of a message without a body needs no more bytes */
    cr_assert_eq(corio__http_parse(&parser, req + n, 0, &used), CORIO__HTTP_DONE);
    cr_assert_eq(used, 0);
    teardown();
}

Test(parse, pipelined_and_chunked)
{
    const char *reqs =
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        "GET /c HTTP/1.0\r\n\r\n";
    size_t n = strlen(reqs), off = 0;
    struct msg m;

    for (size_t step = 0; step <= 3; step += 3) {
        off = 0;
        req_setup(NULL);
        m = parse_one(&parser, reqs, n, step);
        cr_assert_eq(m.ev, CORIO__HTTP_DONE);
        cr_assert(corio__http_chunked(&parser));
        cr_assert_eq(m.body_len, 11);
        cr_assert_eq(memcmp(m.body, "hello world", 11), 0);
        off += m.used;
        m = parse_one(&parser, reqs + off, n - off, step);
        cr_assert_eq(m.ev, CORIO__HTTP_DONE);
        cr_assert_str_eq(corio__http_target(&parser), "/b");
        cr_assert_eq(corio_http_headers_count(hdrs), 1);
        off += m.used;
        m = parse_one(&parser, reqs + off, n - off, step);
        cr_assert_eq(m.ev, CORIO__HTTP_DONE);
        cr_assert_str_eq(corio__http_target(&parser), "/c");
        cr_assert_eq(parser.version, 10);
        cr_assert_not(corio__http_keep_alive(&parser));
        cr_assert_eq(off + m.used, n);
        teardown();
    }
}

Test(parse, valid_requests_pass)
{
    cr_assert_eq(verdict("GET / HTTP/1.0\r\n\r\n"), 0);
    cr_assert_eq(verdict("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    cr_assert_eq(verdict("GET http://h:8/x HTTP/1.1\r\nHost: h:8\r\n\r\n"), 0);
    cr_assert_eq(verdict("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n"), 0);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), 0);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"), 0);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: ,chunked \r\n\r\n0\r\n\r\n"), 0);
}

/* RFC 9112 6.1: chunked is the one transfer coding decoded; another one
 * before it is 501 (not implemented: the body would reach the handler
 * still coded); chunked not once and last, or in HTTP/1.0, is 400. */
Test(parse, transfer_codings)
{
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: gzip\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 501);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: foo\r\n\r\n"), 400);
    cr_assert_eq(verdict("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400);
    cr_assert_eq(verdict("POST / HTTP/1.0\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
}

/* Each rule of RFC 9112 the server enforces: 400 and nothing after. */
Test(parse, smuggling_vectors_are_400)
{
#define V(lit) {lit, sizeof(lit) - 1}
    static const struct { const char *s; size_t len; } bad[] = {
        /* Content-Length and Transfer-Encoding */
        V("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        /* two different lengths */
        V("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
            "Content-Length: 6\r\n\r\nhello!"),
        /* a list of lengths */
        V("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello"),
        /* a length that is not digits */
        V("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello"),
        /* Transfer-Encoding not chunked last */
        V("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        V("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
        /* bad chunk sizes */
        V("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "zz\r\nhello\r\n0\r\n\r\n"),
        V("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "-5\r\nhello\r\n0\r\n\r\n"),
        V("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        /* obs-fold */
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"),
        /* whitespace before the colon */
        V("GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 0\r\n\r\n"),
        /* bare CR, bare LF in the middle of a value, NUL, controls */
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
        V("GET / HTTP/1.1\rHost: h\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f" "b\r\n\r\n"),
        /* no Host, two Hosts */
        V("GET / HTTP/1.1\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        /* absolute-form target for another host */
        V("GET http://evil.example/x HTTP/1.1\r\nHost: good.example\r\n\r\n"),
        /* garbage */
        V("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"),
        V("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"),
        V("GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n"),

    };

    /* whole, then a byte at a time */
    for (size_t step = 0; step <= 1; step++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct msg m;

            req_setup(NULL);
            m = parse_one(&parser, bad[i].s, bad[i].len, step);
            cr_expect_eq(m.ev, CORIO__HTTP_ERROR, "vector %zu passed: %s", i,
                         bad[i].s);
            cr_expect_eq(m.status, 400, "vector %zu: %d", i, m.status);
            teardown();
        }
}

Test(parse, error_sticks)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"
                      "GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
    struct msg m;

    req_setup(NULL);
    m = parse_one(&parser, req, strlen(req), 0);
    cr_assert_eq(m.ev, CORIO__HTTP_ERROR);
    m = parse_one(&parser, req + 36, strlen(req) - 36, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_ERROR);
    teardown();
}

Test(parse, versions)
{
    cr_assert_eq(verdict("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    cr_assert_eq(verdict("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
    cr_assert_eq(verdict("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
    cr_assert_eq(verdict("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), 505);
}

Test(parse, limits)
{
    corio_http_limits lim = {.request_line = 64, .header_bytes = 128,
                             .header_count = 3, .body = 10};
    char big[512];

    snprintf(big, sizeof(big), "GET /%0100d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    cr_assert_eq(verdict_limits(big, &lim), 414);
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX: %0130d\r\n\r\n", 0);
    cr_assert_eq(verdict_limits(big, &lim), 431);
    cr_assert_eq(verdict_limits("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n"
                                "C: 3\r\n\r\n", &lim), 431);
    cr_assert_eq(verdict_limits("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
                                &lim), 0);
    cr_assert_eq(verdict_limits("POST / HTTP/1.1\r\nHost: h\r\n"
                                "Content-Length: 11\r\n\r\nhello world", &lim), 413);
    cr_assert_eq(verdict_limits("POST / HTTP/1.1\r\nHost: h\r\n"
                                "Content-Length: 10\r\n\r\nhelloworld", &lim), 0);
    cr_assert_eq(verdict_limits("POST / HTTP/1.1\r\nHost: h\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", &lim), 413);
}

/* ---- Responses (the client's side) --------------------------------------- */

Test(parse, responses)
{
    const char *res = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabc"
                      "HTTP/1.1 204 No Content\r\n\r\n"
                      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nnot\r\n0\r\n\r\n"
                      "HTTP/1.0 200 OK\r\n\r\nto the end";
    size_t n = strlen(res), off = 0;
    struct msg m;

    hdrs = corio_http_headers_new();
    cr_assert_eq(corio__http_parser_init(&parser, HTTP_RESPONSE, NULL, hdrs), 0);
    m = parse_one(&parser, res, n, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_DONE);
    cr_assert_eq(parser.status, 200);
    cr_assert_str_eq(parser.line, "OK");
    cr_assert_eq(m.body_len, 3);
    cr_assert_str_eq(corio_http_headers_get(hdrs, "x"), "y");
    off += m.used;
    m = parse_one(&parser, res + off, n - off, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_DONE);
    cr_assert_eq(parser.status, 204);
    off += m.used;
    m = parse_one(&parser, res + off, n - off, 1);
    cr_assert_eq(m.ev, CORIO__HTTP_DONE);
    cr_assert_eq(parser.status, 404);
    cr_assert_eq(m.body_len, 3);
    off += m.used;
    m = parse_one(&parser, res + off, n - off, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_MORE); /* until the connection's end */
    cr_assert_eq(m.body_len, 10);
    cr_assert_eq(corio__http_parse_eof(&parser), CORIO__HTTP_DONE);
    teardown();
}

Test(parse, response_to_head_has_no_body)
{
    const char *res = "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    size_t n = strlen(res);
    struct msg m;

    hdrs = corio_http_headers_new();
    corio__http_parser_init(&parser, HTTP_RESPONSE, NULL, hdrs);
    parser.skip_body = true;
    m = parse_one(&parser, res, n, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_DONE);
    cr_assert_eq(m.body_len, 0);
    m = parse_one(&parser, res + m.used, n - m.used, 0);
    cr_assert_eq(m.ev, CORIO__HTTP_DONE);
    cr_assert_eq(m.body_len, 1);
    teardown();
}

Test(parse, truncated_response_is_an_error)
{
    const char *res = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabc";
    struct msg m;

    hdrs = corio_http_headers_new();
    corio__http_parser_init(&parser, HTTP_RESPONSE, NULL, hdrs);
    m = parse_one(&parser, res, strlen(res), 0);
    cr_assert_eq(m.ev, CORIO__HTTP_MORE);
    cr_assert_eq(corio__http_parse_eof(&parser), CORIO__HTTP_ERROR);
    teardown();
}

/* ---- Dates ------------------------------------------------------------------ */

Test(parse, http_date_matches_strftime)
{
    char mine[30], ref[64];

    for (int64_t t = 0; t < 4102444800; t += 86400 * 7 + 3671) { /* to 2100 */
        struct tm tm;
        time_t tt = (time_t)t;

        corio__http_date(t, mine);
        gmtime_r(&tt, &tm);
        strftime(ref, sizeof(ref), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cr_assert_str_eq(mine, ref, "t=%lld", (long long)t);
    }
}
