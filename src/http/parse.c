/* src/http/parse.c -- the llhttp glue, for requests and responses: limits,
 * the checks strict mode leaves to its user (a version other than 1.0 and
 * 1.1, Host, an absolute-form target naming another host, control bytes
 * in a value), and a feed that stops at the end of a head and of a
 * message, so the caller can answer, read a body at its pace, or stop
 * reading (an upgrade). llhttp is built with LLHTTP_STRICT_MODE
 * (CMakeLists.txt): no lenient flag is ever turned on here. */
#include "http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void corio__http_limits_fill(corio_http_limits *out, const corio_http_limits *in)
{
    corio_http_limits z = {0};

    if (in == NULL)
        in = &z;
    out->request_line = in->request_line ? in->request_line : 8192;
    out->header_bytes = in->header_bytes ? in->header_bytes : 16384;
    out->header_count = in->header_count ? in->header_count : 100;
    out->body = in->body ? in->body : 1024 * 1024;
}

static struct corio__http_parser *P(llhttp_t *ll)
{
    return (struct corio__http_parser *)ll;
}

/* Stop parsing with an answer: llhttp's error becomes HPE_USER. */
static int fail(struct corio__http_parser *p, int status, const char *reason)
{
    p->status = status;
    p->reason = reason;
    p->failed = true;
    llhttp_set_error_reason(&p->ll, reason);
    return HPE_USER;
}

/* Append n bytes to a growing buffer (room for a NUL kept). */
static int grow_append(char **buf, size_t *len, size_t *cap, const char *at,
                       size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 128;
        char *b;

        while (c < *len + n + 1)
            c *= 2;
        b = realloc(*buf, c);
        if (b == NULL)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int line_append(struct corio__http_parser *p, const char *at, size_t n)
{
    /* "METHOD SP target SP HTTP/1.1": the text plus 10 bytes */
    if (p->line_len + n + 10 > p->limits.request_line)
        return fail(p, 414, "request line too long");
    if (grow_append(&p->line, &p->line_len, &p->line_cap, at, n) == -1)
        return fail(p, 500, "out of memory");
    return 0;
}

static int on_message_begin(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    p->line_len = p->method_len = p->target_len = 0;
    if (p->line)
        p->line[0] = '\0';
    p->cur_len = p->cur_name_len = 0;
    p->val_end = NULL;
    p->head_bytes = 0;
    p->body_bytes = 0;
    p->status = 0;
    p->version = 0;
    p->reason = NULL;
    corio_http_headers_clear(p->headers);
    return 0;
}

static int on_method(llhttp_t *ll, const char *at, size_t n)
{
    struct corio__http_parser *p = P(ll);
    int rc = line_append(p, at, n);

    p->method_len = p->line_len;
    return rc;
}

static int on_method_complete(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    /* method\0target\0: the NUL after the method is part of line_len */
    if (grow_append(&p->line, &p->line_len, &p->line_cap, "", 1) == -1)
        return fail(p, 500, "out of memory");
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n)
{
    struct corio__http_parser *p = P(ll);
    int rc = line_append(p, at, n);

    p->target_len = p->line_len - p->method_len - 1;
    return rc;
}

static int on_status(llhttp_t *ll, const char *at, size_t n)
{
    return line_append(P(ll), at, n);
}

static int on_version_complete(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    if (ll->http_major != 1 || ll->http_minor > 1)
        return fail(p, 505, "unsupported HTTP version");
    p->version = ll->http_major * 10 + ll->http_minor;
    return 0;
}

/* Count a piece of the header block against its limit. */
static int head_count(struct corio__http_parser *p, size_t n)
{
    p->head_bytes += n;
    if (p->head_bytes > p->limits.header_bytes)
        return fail(p, 431, "header block too large");
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    struct corio__http_parser *p = P(ll);

    if (head_count(p, n) != 0)
        return HPE_USER;
    if (grow_append(&p->cur, &p->cur_len, &p->cur_cap, at, n) == -1)
        return fail(p, 500, "out of memory");
    p->cur_name_len = p->cur_len;
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    struct corio__http_parser *p = P(ll);

    if (head_count(p, n) != 0)
        return HPE_USER;
    /* llhttp joins an obs-fold's lines into one value, in two pieces with
     * the CRLF skipped between them; pieces of one value are otherwise
     * contiguous, or split only where a feed ended */
    if (p->val_end != NULL && at != p->val_end &&
        !(p->val_end == p->prev_feed_end && at == p->feed))
        return fail(p, 400, "obs-fold in a header value");
    p->val_end = at + n;
    /* control bytes other than HTAB, and DEL, are invalid in a field
     * value (RFC 9110 5.5); a CR or LF here is obs-fold or a bare CR */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)at[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(p, 400, "invalid byte in a header value");
    }
    if (grow_append(&p->cur, &p->cur_len, &p->cur_cap, at, n) == -1)
        return fail(p, 500, "out of memory");
    return 0;
}

static int on_header_value_complete(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    if (corio_http_headers_count(p->headers) >= p->limits.header_count)
        return fail(p, 431, "too many header fields");
    if (head_count(p, 4) != 0) /* ": " and CRLF */
        return HPE_USER;
    if (corio_http_headers_add_n(p->headers, p->cur, p->cur_name_len,
                                 p->cur + p->cur_name_len,
                                 p->cur_len - p->cur_name_len) == -1)
        return fail(p, errno == ENOMEM ? 500 : 400, "invalid header field");
    p->cur_len = p->cur_name_len = 0;
    p->val_end = NULL;
    return 0;
}

/* The authority of an absolute-form target ("http://host:80/x" gives
 * "host:80"), or NULL for origin-form. */
static const char *absolute_authority(const char *t, size_t *len)
{
    const char *a;

    if (*t == '/')
        return NULL; /* origin-form, the usual one: no library calls */
    if (strncasecmp(t, "http://", 7) == 0)
        a = t + 7;
    else if (strncasecmp(t, "https://", 8) == 0)
        a = t + 8;
    else
        return NULL;
    *len = strcspn(a, "/?#");
    return a;
}

/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; an
 * absolute-form target names the host the request is for, and a Host
 * that differs makes the request ambiguous (a smuggling vector). */
static int check_host(struct corio__http_parser *p)
{
    size_t pos = 0, alen;
    const char *host = corio_http_headers_next(p->headers, "Host", &pos);
    const char *auth;

    if (host != NULL && corio_http_headers_next(p->headers, "Host", &pos))
        return fail(p, 400, "more than one Host");
    if (host == NULL && p->version == 11)
        return fail(p, 400, "no Host in an HTTP/1.1 request");
    auth = absolute_authority(corio__http_target(p), &alen);
    if (auth != NULL && host != NULL &&
        (strlen(host) != alen || strncasecmp(host, auth, alen) != 0))
        return fail(p, 400, "absolute-form target for another host");
    return 0;
}

/* RFC 9112 6.1 and 6.3: a request's transfer codings. chunked, once and
 * last, is the framing this server decodes; another coding before it
 * (gzip, chunked) is one it does not implement: 501, as nginx answers,
 * with the connection closed, since the handler would get coded bytes for
 * the body. chunked missing, not last or twice, or any coding in an
 * HTTP/1.0 request, leaves the body's length unknown: 400 (llhttp finds
 * some of these too, but only once the body is read; this answers before
 * the request is routed). */
static int check_transfer_coding(struct corio__http_parser *p)
{
    size_t pos = 0, n, t;
    const char *v;
    bool other = false, last = false;
    int chunked = 0;

    if (!(p->ll.flags & F_TRANSFER_ENCODING))
        return 0;
    if (p->version == 10)
        return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
    while ((v = corio_http_headers_next(p->headers, "Transfer-Encoding",
                                        &pos)) != NULL) {
        for (;;) {
            v += strspn(v, " \t,");
            if (*v == '\0')
                break;
            n = strcspn(v, ",");
            for (t = n; t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'); t--)
                ;
            last = t == 7 && strncasecmp(v, "chunked", 7) == 0;
            chunked += last;
            other |= !last;
            v += n;
        }
    }
    if (!last || chunked != 1)
        return fail(p, 400, "Transfer-Encoding not chunked once and last");
    if (other)
        return fail(p, 501, "a transfer coding other than chunked");
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    if (p->version == 0 && on_version_complete(ll) != 0)
        return HPE_USER;
    if (p->request) {
        if (check_host(p) != 0 || check_transfer_coding(p) != 0)
            return HPE_USER;
    } else {
        p->status = ll->status_code;
    }
    p->length = (ll->flags & F_CONTENT_LENGTH) ? (int64_t)ll->content_length
                                                : -1;
    if (p->length > 0 && (uint64_t)p->length > (uint64_t)p->limits.body)
        return fail(p, 413, "body too large");
    p->head_done = true;
    p->paused = true;
    if (!p->request && p->skip_body)
        return 1; /* no pause: the message is complete at once */
    return HPE_PAUSED;
}

static int on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct corio__http_parser *p = P(ll);

    p->body_bytes += n;
    if (p->body_bytes > (uint64_t)p->limits.body)
        return fail(p, 413, "body too large");
    memcpy(p->body + p->body_len, at, n);
    p->body_len += n;
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct corio__http_parser *p = P(ll);

    p->msg_done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings_request = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_method_complete = on_method_complete,
    .on_url = on_url,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static const llhttp_settings_t settings_response = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int corio__http_parser_init(struct corio__http_parser *p, llhttp_type_t type,
                            const corio_http_limits *limits,
                            corio_http_headers *headers)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->ll, type,
                type == HTTP_REQUEST ? &settings_request : &settings_response);
    corio__http_limits_fill(&p->limits, limits);
    p->headers = headers;
    p->request = type == HTTP_REQUEST;
    return 0;
}

void corio__http_parser_free(struct corio__http_parser *p)
{
    free(p->line);
    free(p->cur);
    p->line = p->cur = NULL;
}

void corio__http_parser_next(struct corio__http_parser *p)
{
    p->head_done = p->msg_done = false;
    p->skip_body = false;
    p->body_len = 0;
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
}

static enum corio__http_event error(struct corio__http_parser *p,
                                    llhttp_errno_t err)
{
    if (!p->failed) {
        p->reason = llhttp_get_error_reason(&p->ll);
        /* "Invalid HTTP version": a well-formed version llhttp knows of
         * none of (its other version errors are malformed lines) */
        p->status = err == HPE_INVALID_VERSION && p->reason &&
                            strcmp(p->reason, "Invalid HTTP version") == 0
                        ? 505
                        : 400;
    }
    return CORIO__HTTP_ERROR;
}

enum corio__http_event corio__http_parse(struct corio__http_parser *p,
                                         const char *data, size_t n,
                                         size_t *used)
{
    llhttp_errno_t err;

    p->body_len = 0;
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
    if (p->msg_done) { /* the previous message was taken: a new one */
        p->head_done = p->msg_done = false;
        p->skip_body = false;
    }
    p->prev_feed_end = p->feed_end;
    p->feed = data;
    p->feed_end = data + n;
    err = llhttp_execute(&p->ll, data, n);
    if (err == HPE_OK) {
        *used = n;
        return p->msg_done ? CORIO__HTTP_DONE : CORIO__HTTP_MORE;
    }
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        *used = (size_t)(llhttp_get_error_pos(&p->ll) - data);
        p->paused = true;
        if (err == HPE_PAUSED_UPGRADE)
            p->msg_done = true;
        return p->msg_done ? CORIO__HTTP_DONE : CORIO__HTTP_HEAD;
    }
    *used = 0;
    return error(p, err);
}

enum corio__http_event corio__http_parse_eof(struct corio__http_parser *p)
{
    llhttp_errno_t err;

    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
    err = llhttp_finish(&p->ll);
    if (err == HPE_OK || err == HPE_PAUSED)
        return p->msg_done ? CORIO__HTTP_DONE : CORIO__HTTP_MORE;
    return error(p, err);
}

bool corio__http_chunked(const struct corio__http_parser *p)
{
    return (p->ll.flags & F_CHUNKED) != 0;
}

int64_t corio__http_content_length(const struct corio__http_parser *p)
{
    return p->length;
}

bool corio__http_keep_alive(const struct corio__http_parser *p)
{
    return llhttp_should_keep_alive(&p->ll) != 0;
}

bool corio__http_upgrade(const struct corio__http_parser *p)
{
    return p->ll.upgrade != 0;
}
