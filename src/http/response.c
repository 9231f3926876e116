/* src/http/response.c -- what a handler sets of its response, and how it
 * goes out: the head and a whole body in one write (with the responses of
 * pipelined requests before it when they are ready together), gzip when
 * the server has it on and the client accepts it (whole bodies at once,
 * chunked streams as a stream flushed at each write), HEAD without a
 * body, streamed bodies (Content-Length or chunked), producers run after the
 * middlewares, and the upgrade that hands the stream over. */
#define _GNU_SOURCE /* strcasestr */
#include "http_int.h"
#include "../io/io_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

const char *corio_http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

void corio__http_response_reset(corio_http_response *res)
{
    corio__http_response_gzip_end(res);
    res->status = 200;
    corio_http_headers_clear(res->headers);
    res->body_len = 0;
    res->file_fd = -1;
    res->file_off = res->file_len = 0;
    res->produce = NULL;
    res->produce_done = NULL;
    res->produce_arg = NULL;
    res->length = -1;
    res->sent = 0;
    res->head_sent = res->chunked = res->finished = false;
    res->upgraded = res->no_body = false;
}

static int not_sent(const corio_http_response *res)
{
    if (res == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (res->head_sent) {
        errno = EALREADY;
        return -1;
    }
    return 0;
}

int corio_http_response_status(corio_http_response *res, int status)
{
    if (not_sent(res) == -1)
        return -1;
    if (status < 100 || status > 999) {
        errno = EINVAL;
        return -1;
    }
    res->status = status;
    return 0;
}

int corio_http_response_get_status(const corio_http_response *res)
{
    return res->status;
}

int corio_http_response_header(corio_http_response *res, const char *name,
                               const char *value)
{
    if (not_sent(res) == -1)
        return -1;
    return corio_http_headers_add(res->headers, name, value);
}

corio_http_headers *corio_http_response_headers(corio_http_response *res)
{
    return res->headers;
}

/* Room for n body bytes. */
static int body_room(corio_http_response *res, size_t n)
{
    if (n > res->body_cap) {
        size_t cap = res->body_cap ? res->body_cap : 256;
        char *b;

        while (cap < n)
            cap *= 2;
        b = realloc(res->body, cap);
        if (b == NULL)
            return -1;
        res->body = b;
        res->body_cap = cap;
    }
    return 0;
}

int corio_http_response_body(corio_http_response *res, const void *data,
                             size_t n)
{
    if (not_sent(res) == -1)
        return -1;
    if (data == NULL && n > 0) {
        errno = EINVAL;
        return -1;
    }
    if (body_room(res, n) == -1)
        return -1;
    if (n)
        memcpy(res->body, data, n);
    res->body_len = n;
    return 0;
}

static int default_type(corio_http_response *res, const char *type)
{
    if (corio_http_headers_get(res->headers, "Content-Type") != NULL)
        return 0;
    return corio_http_headers_add(res->headers, "Content-Type", type);
}

int corio_http_response_printf(corio_http_response *res, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (not_sent(res) == -1)
        return -1;
    if (fmt == NULL) {
        errno = EINVAL;
        return -1;
    }
    va_start(ap, fmt);
    n = vsnprintf(res->body, res->body_cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= res->body_cap) {
        if (body_room(res, (size_t)n + 1) == -1)
            return -1;
        va_start(ap, fmt);
        vsnprintf(res->body, res->body_cap, fmt, ap);
        va_end(ap);
    }
    res->body_len = (size_t)n;
    return default_type(res, "text/html; charset=utf-8");
}

static int dump_cb(const char *buf, size_t n, void *arg)
{
    corio_http_response *res = arg;

    if (body_room(res, res->body_len + n) == -1)
        return -1;
    memcpy(res->body + res->body_len, buf, n);
    res->body_len += n;
    return 0;
}

int corio_http_response_json(corio_http_response *res, const json_t *json)
{
    if (not_sent(res) == -1)
        return -1;
    if (json == NULL) {
        errno = EINVAL;
        return -1;
    }
    res->body_len = 0;
    if (json_dump_callback(json, dump_cb, res, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        res->body_len = 0;
        if (errno != ENOMEM)
            errno = EINVAL;
        return -1;
    }
    return default_type(res, "application/json");
}

int corio_http_response_cookie(corio_http_response *res, const char *name,
                               const char *value, const char *attrs)
{
    char buf[4096];

    if (not_sent(res) == -1)
        return -1;
    if (name == NULL || value == NULL ||
        !corio__http_is_token(name, strlen(name)) ||
        strpbrk(value, ";,\r\n \"\\") != NULL ||
        (attrs != NULL && strpbrk(attrs, "\r\n") != NULL)) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)snprintf(buf, sizeof(buf), "%s=%s%s%s", name, value,
                         attrs ? "; " : "", attrs ? attrs : "") >= sizeof(buf)) {
        errno = EMSGSIZE;
        return -1;
    }
    return corio_http_headers_add(res->headers, "Set-Cookie", buf);
}

/* ---- The head ------------------------------------------------------------ */

/* The hot path formats by hand: printf's and strftime's frames would
 * touch pages of every connection's stack that then stay resident while
 * the connection idles. */

/* Write v in decimal at the end of buf (size 24); returns the start. */
static char *dec(char *end, unsigned long long v)
{
    *--end = '\0';
    do
        *--end = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return end;
}

/* The Date header's text, made once a second per thread. */
static const char *http_date(void)
{
    static __thread char text[30];
    static __thread time_t made;
    time_t now = time(NULL);

    if (now != made) {
        corio__http_date(now, text);
        made = now;
    }
    return text;
}

/* True for a status whose response never has a body. */
static bool bodiless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* A header the server writes itself (it drops the handler's). */
static bool server_own(const char *name, size_t n)
{
    return corio__http_ieq(name, n, "Content-Length") ||
           corio__http_ieq(name, n, "Transfer-Encoding") ||
           corio__http_ieq(name, n, "Connection") ||
           corio__http_ieq(name, n, "Date");
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof(lit) - 1)

/* Append the head: status line, the handler's headers, then Date,
 * Content-Length or Transfer-Encoding, Connection. length -1: chunked (or
 * up to the close for HTTP/1.0); -2: no length at all (101, 1xx, 204).
 * One reservation and straight copies: this runs once per response. */
static int head_append(corio_http_response *res, int64_t length)
{
    struct corio__http_conn *c = res->c;
    const char *reason = corio_http_status_reason(res->status);
    const char *date = http_date();
    const char *name, *value;
    size_t reason_len = strlen(reason), date_len = strlen(date), need;
    char num[24], *status = dec(num + 24, (unsigned)res->status), *p, *start;

    /* the status line, Date, Content-Length (20 digits) or
     * Transfer-Encoding, Connection, the blank line: under 160 bytes */
    need = 160 + reason_len + date_len;
    for (size_t i = 0; corio_http_headers_at(res->headers, i, &name, &value) == 0;
         i++)
        need += strlen(name) + strlen(value) + 4;
    start = p = corio__http_out_space(c, need);
    if (p == NULL)
        return -1;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put(p, status, strlen(status));
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    for (size_t i = 0; corio_http_headers_at(res->headers, i, &name, &value) == 0;
         i++) {
        size_t n = strlen(name);

        if (server_own(name, n))
            continue;
        p = put(p, name, n);
        p = PUT_LIT(p, ": ");
        p = put(p, value, strlen(value));
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_LIT(p, "Date: ");
    p = put(p, date, date_len);
    p = PUT_LIT(p, "\r\n");
    if (length >= 0) {
        char *len = dec(num + 24, (unsigned long long)length);

        p = PUT_LIT(p, "Content-Length: ");
        p = put(p, len, strlen(len));
        p = PUT_LIT(p, "\r\n");
    } else if (length == -1) {
        if (c->p.version == 11) {
            res->chunked = true;
            p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
        } else {
            c->keep_alive = false; /* the body ends with the connection */
        }
    }
    if (res->status == 101)
        p = PUT_LIT(p, "Connection: upgrade\r\n\r\n");
    else if (!c->keep_alive)
        p = PUT_LIT(p, "Connection: close\r\n\r\n");
    else if (c->p.version == 10)
        p = PUT_LIT(p, "Connection: keep-alive\r\n\r\n");
    else
        p = PUT_LIT(p, "\r\n");
    c->out_len += (size_t)(p - start);
    return 0;
}

/* ---- gzip ---------------------------------------------------------------- */

static bool compressible(const char *type)
{
    if (type == NULL)
        return false;
    return strncasecmp(type, "text/", 5) == 0 || strcasestr(type, "json") ||
           strcasestr(type, "javascript") || strcasestr(type, "xml") ||
           strcasestr(type, "svg");
}

/* True if the server compresses and the client takes gzip, for a
 * response with a body of a compressible type not encoded already. */
static bool gzip_wanted(const corio_http_response *res)
{
    const struct corio__http_conn *c = res->c;

    return corio__http_gzip_on(c) && res->status >= 200 && !bodiless(res->status) &&
           res->status != 206 &&
           corio_http_headers_get(res->headers, "Content-Encoding") == NULL &&
           compressible(corio_http_headers_get(res->headers, "Content-Type")) &&
           corio_http_headers_has_token(c->hin, "Accept-Encoding", "gzip");
}

/* Replace the body by its gzip form when that is wanted and pays. */
static int maybe_gzip(corio_http_response *res)
{
    z_stream z = {0};
    char *out;
    size_t cap;
    int rc;

    if (res->body_len < 256 || !gzip_wanted(res))
        return 0;
    if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0; /* sent as it is */
    cap = deflateBound(&z, res->body_len);
    out = malloc(cap);
    if (out == NULL) {
        deflateEnd(&z);
        return 0;
    }
    z.next_in = (Bytef *)res->body;
    z.avail_in = (uInt)res->body_len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out >= res->body_len) {
        free(out);
        return 0;
    }
    free(res->body);
    res->body = out;
    res->body_cap = cap;
    res->body_len = z.total_out;
    if (corio_http_headers_add(res->headers, "Content-Encoding", "gzip") == -1 ||
        corio_http_headers_add(res->headers, "Vary", "Accept-Encoding") == -1)
        return -1;
    return 0;
}

/* A streamed body (length -1) is compressed as a stream: each _write is
 * deflated and flushed with Z_SYNC_FLUSH, so that what was written can
 * be decoded as soon as it arrives (server-sent events stay live); its
 * output goes out as the chunks of that write. */
struct corio__http_gzip {
    z_stream z;
    unsigned char out[8192];
};

void corio__http_response_gzip_end(corio_http_response *res)
{
    if (res->gz != NULL) {
        deflateEnd(&res->gz->z);
        free(res->gz);
        res->gz = NULL;
    }
}

/* Set up the stream's compression if wanted (a HEAD gets the same head,
 * without the compressor). Returns 0, or -1 (ENOMEM adding headers). */
static int gzip_stream_start(corio_http_response *res)
{
    if (!gzip_wanted(res))
        return 0;
    if (!res->no_body) {
        res->gz = calloc(1, sizeof(*res->gz));
        if (res->gz == NULL)
            return 0; /* sent as it is */
        /* a 4 KiB window and memLevel 5: about 32 KiB of zlib state for
         * a stream that may stay open for hours (the defaults take 256) */
        if (deflateInit2(&res->gz->z, 6, Z_DEFLATED, 16 + 12, 5, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(res->gz);
            res->gz = NULL;
            return 0;
        }
    }
    corio_http_headers_remove(res->headers, "Content-Length");
    if (corio_http_headers_add(res->headers, "Content-Encoding", "gzip") == -1 ||
        corio_http_headers_add(res->headers, "Vary", "Accept-Encoding") == -1)
        return -1;
    return 0;
}

/* Append n bytes as a piece of the body: a chunk, or as they are (an
 * HTTP/1.0 body that ends with the connection). */
static int piece_append(corio_http_response *res, const void *data, size_t n)
{
    struct corio__http_conn *c = res->c;
    char size[24];
    int k;

    if (n == 0)
        return 0;
    c->bytes_out += n;
    if (!res->chunked)
        return corio__http_out_append(c, data, n);
    k = snprintf(size, sizeof(size), "%zx\r\n", n);
    if (corio__http_out_append(c, size, (size_t)k) == -1 ||
        corio__http_out_append(c, data, n) == -1 ||
        corio__http_out_append(c, "\r\n", 2) == -1)
        return -1;
    return 0;
}

/* Deflate n bytes of data with flush (Z_SYNC_FLUSH, Z_FINISH) and append
 * what comes out. */
static int gzip_append(corio_http_response *res, const void *data, size_t n,
                       int flush)
{
    z_stream *z = &res->gz->z;
    const char *p = data;

    do { /* zlib counts in uInt: pieces of 1 GiB at most */
        size_t k = n > (1u << 30) ? (1u << 30) : n;

        z->next_in = (Bytef *)(uintptr_t)p;
        z->avail_in = (uInt)k;
        p += k;
        n -= k;
        do {
            z->next_out = res->gz->out;
            z->avail_out = sizeof(res->gz->out);
            if (deflate(z, n > 0 ? Z_NO_FLUSH : flush) == Z_STREAM_ERROR) {
                errno = EIO;
                return -1;
            }
            if (piece_append(res, res->gz->out, sizeof(res->gz->out) - z->avail_out) == -1)
                return -1;
        } while (z->avail_out == 0 || z->avail_in > 0);
    } while (n > 0);
    return 0;
}

/* ---- Sending ------------------------------------------------------------- */

int corio__http_response_send(corio_http_response *res, int64_t deadline)
{
    struct corio__http_conn *c = res->c;
    bool nobody = bodiless(res->status);

    if (res->head_sent)
        return 0;
    if (!nobody && maybe_gzip(res) == -1)
        return -1;
    res->head_sent = true;
    if (head_append(res, nobody ? -2 : (int64_t)res->body_len) == -1)
        return -1;
    if (!nobody && !res->no_body) {
        c->bytes_out += res->body_len;
        if (corio__http_out_append(c, res->body, res->body_len) == -1)
            return -1;
    }
    (void)deadline;
    return 0;
}

int corio_http_response_prepare(corio_http_response *res, int64_t length,
                                int64_t deadline)
{
    struct corio__http_conn *c;

    if (not_sent(res) == -1)
        return -1;
    if (length < -1) {
        errno = EINVAL;
        return -1;
    }
    c = res->c;
    if (length == -1 && gzip_stream_start(res) == -1)
        return -1;
    res->head_sent = true;
    res->length = length;
    if (head_append(res, length) == -1 ||
        corio__http_out_flush(c, deadline) == -1) {
        c->broken = true;
        return -1;
    }
    return 0;
}

int corio_http_response_write(corio_http_response *res, const void *data,
                              size_t n, int64_t deadline)
{
    struct corio__http_conn *c;

    if (res == NULL || (data == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    c = res->c;
    if (!res->head_sent && corio_http_response_prepare(res, -1, deadline) == -1)
        return -1;
    if (res->finished || c->broken || res->upgraded) {
        errno = EPIPE;
        return -1;
    }
    if (res->length >= 0 && (uint64_t)res->sent + n > (uint64_t)res->length) {
        errno = EMSGSIZE;
        return -1;
    }
    if (n == 0)
        return 0;
    res->sent += (int64_t)n;
    if (res->no_body) {
        c->bytes_out += n;
        return 0;
    }
    if ((res->gz ? gzip_append(res, data, n, Z_SYNC_FLUSH) : piece_append(res, data, n)) == -1 ||
        corio__http_out_flush(c, deadline) == -1)
        goto broken;
    return 0;
broken:
    c->broken = true;
    return -1;
}

int corio_http_response_finish(corio_http_response *res, int64_t deadline)
{
    struct corio__http_conn *c;

    if (res == NULL) {
        errno = EINVAL;
        return -1;
    }
    c = res->c;
    if (!res->head_sent && corio_http_response_prepare(res, -1, deadline) == -1)
        return -1;
    if (res->finished)
        return 0;
    res->finished = true;
    if (c->broken) {
        errno = EPIPE;
        return -1;
    }
    if (res->length >= 0 && res->sent < res->length && !res->no_body) {
        c->broken = true; /* the client waits for bytes that never come */
        errno = EPROTO;
        return -1;
    }
    if (res->gz != NULL) {
        int rc = gzip_append(res, NULL, 0, Z_FINISH);

        corio__http_response_gzip_end(res);
        if (rc == -1 || (!res->chunked && corio__http_out_flush(c, deadline) == -1)) {
            c->broken = true;
            return -1;
        }
    }
    if (res->chunked && !res->no_body &&
        (corio__http_out_append(c, "0\r\n\r\n", 5) == -1 ||
         corio__http_out_flush(c, deadline) == -1)) {
        c->broken = true;
        return -1;
    }
    return 0;
}

int corio_http_response_produce(corio_http_response *res, int64_t length,
                                corio_http_produce_fn produce,
                                void (*done)(void *arg), void *arg)
{
    if (not_sent(res) == -1)
        return -1;
    if (produce == NULL || length < -1) {
        errno = EINVAL;
        return -1;
    }
    if (res->produce_done != NULL)
        res->produce_done(res->produce_arg); /* replaced */
    res->produce = produce;
    res->produce_done = done;
    res->produce_arg = arg;
    res->length = length;
    return 0;
}

corio_stream *corio_http_response_upgrade(corio_http_response *res,
                                          int64_t deadline)
{
    struct corio__http_conn *c;

    if (not_sent(res) == -1)
        return NULL;
    c = res->c;
    if (c->p.version != 11 ||
        !corio_http_headers_has_token(c->hin, "Connection", "upgrade")) {
        errno = EINVAL;
        return NULL;
    }
    res->status = 101;
    res->head_sent = true;
    res->upgraded = true;
    c->keep_alive = false;
    if (head_append(res, -2) == -1 || corio__http_out_flush(c, deadline) == -1) {
        c->broken = true;
        return NULL;
    }
    return c->s;
}
