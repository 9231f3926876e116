/* src/http/ws.c -- WebSockets (include/corio/ws.h): the opening handshake
 * (client over corio streams and TLS; server through the HTTP server's
 * upgrade), framing by wslay's event API, blocking calls with deadlines.
 *
 * wslay assumes non-blocking I/O driven by its user: its recv callback
 * takes bytes from ws->in (filled by one corio_stream_read), and says
 * WOULDBLOCK when they are used up; its send callback appends to the
 * stream's write buffer (never blocking), which the caller then drains
 * with its deadline. So wslay_event_recv and _send never block, and one
 * task may receive while others send. The framing side (wslay's context,
 * its callbacks, the queue of messages) is ws_frame.c. */
#include "client_int.h"
#include "http_int.h"
#include "ws_int.h"
#include "corio/tls.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The error that ends the connection: why wslay stopped reading, or
 * why the connection broke. */
static int end_error(corio_ws *ws)
{
    uint16_t sent;

    if (ws->failed != 0)
        return ws->failed;
    if (wslay_event_get_close_received(ws->ctx))
        return CORIO_ECLOSED;
    sent = wslay_event_get_status_code_sent(ws->ctx);
    if (sent == 1009)
        return EMSGSIZE;
    if (sent == 1002 || sent == 1007)
        return EPROTO;
    return ws->dead != 0 ? ws->dead : EPROTO;
}

/* Send what wslay has queued and wait for it to leave. */
static int flush(corio_ws *ws, int64_t deadline)
{
    /* a broken write side sends nothing more: a fragmented message left
     * queued by the failure is never read from its (gone) source */
    if (ws->write_err != 0) {
        errno = ws->write_err;
        return -1;
    }
    if (wslay_event_send(ws->ctx) != 0) {
        errno = ws->write_err ? ws->write_err : ENOMEM;
        return -1;
    }
    if (ws->write_err != 0) {
        errno = ws->write_err;
        return -1;
    }
    return corio_stream_drain(ws->s, deadline);
}

/* Read once from the connection and run the bytes through wslay. */
static int pump(corio_ws *ws, int64_t deadline)
{
    ssize_t k;

    if (ws->in_pos == ws->in_len) {
        k = corio_stream_read(ws->s, ws->in, CORIO__WS_IN_BUF, deadline);
        if (k == -1) {
            if (errno != ETIMEDOUT && errno != ECANCELED)
                ws->dead = errno;
            return -1;
        }
        if (k == 0) {
            /* ended without a close frame */
            if (ws->close_code == 0)
                ws->close_code = 1006;
            ws->dead = CORIO_ECLOSED;
            errno = CORIO_ECLOSED;
            return -1;
        }
        ws->in_pos = 0;
        ws->in_len = (size_t)k;
    }
    if (wslay_event_recv(ws->ctx) != 0) {
        ws->dead = ws->failed ? ws->failed : EPROTO;
        errno = ws->dead;
        return -1;
    }
    /* pongs and a close reply go out now; a write error shows later */
    if (flush(ws, deadline) == -1 && errno != ETIMEDOUT && errno != ECANCELED)
        ws->dead = errno;
    return 0;
}

int corio_ws_recv(corio_ws *ws, corio_ws_msg *msg, int64_t deadline)
{
    if (ws == NULL || msg == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ws->receiving) {
        errno = EBUSY;
        return -1;
    }
    ws->receiving = true;
    for (;;) {
        if (corio__ws_pop(ws, msg)) {
            ws->receiving = false;
            return 0;
        }
        if (ws->dead != 0 || !wslay_event_get_read_enabled(ws->ctx)) {
            errno = end_error(ws);
            break;
        }
        if (pump(ws, deadline) == -1)
            break;
    }
    ws->receiving = false;
    return -1;
}

/* A message sent in fragments: its bytes, a fragment at a time. */
struct fragments {
    const uint8_t *p;
    size_t left, size;
};

static ssize_t next_fragment(wslay_event_context_ptr ctx, uint8_t *buf,
                             size_t len, const union wslay_event_msg_source *src,
                             int *eof, void *user)
{
    struct fragments *f = src->data;
    size_t n = f->left < f->size ? f->left : f->size;

    (void)ctx;
    (void)user;
    if (n > len)
        n = len;
    if (n > 0)
        memcpy(buf, f->p, n);
    f->p += n;
    f->left -= n;
    *eof = f->left == 0;
    return (ssize_t)n;
}

int corio_ws_send(corio_ws *ws, enum corio_ws_type type, const void *data,
                  size_t len, int64_t deadline)
{
    struct wslay_event_msg m;
    int rc;

    if (ws == NULL || (data == NULL && len > 0) ||
        (type != CORIO_WS_TEXT && type != CORIO_WS_BINARY &&
         type != CORIO_WS_PING) ||
        (type == CORIO_WS_PING && len > 125) ||
        (type == CORIO_WS_TEXT && !corio__ws_utf8_valid(data, len))) {
        errno = EINVAL;
        return -1;
    }
    if (ws->dead != 0 && ws->dead != CORIO_ECLOSED) {
        errno = ws->dead;
        return -1;
    }
    if (ws->fragment_size > 0 && len > ws->fragment_size &&
        type != CORIO_WS_PING) {
        /* sent at once by flush (wslay reads the fragments while it sends,
         * and the stream takes everything): f outlives its use */
        struct fragments f = {data, len, ws->fragment_size};
        struct wslay_event_fragmented_msg fm = {
            .opcode = (uint8_t)type, .source.data = &f,
            .read_callback = next_fragment};

        rc = wslay_event_queue_fragmented_msg(ws->ctx, &fm);
        if (rc == 0) {
            ws->senders++;
            rc = flush(ws, deadline);
            ws->senders--;
            assert(rc == -1 || f.left == 0);
            return rc;
        }
    } else {
        m.opcode = (uint8_t)type;
        m.msg = data;
        m.msg_length = len;
        rc = wslay_event_queue_msg(ws->ctx, &m);
    }
    if (rc != 0) {
        errno = rc == WSLAY_ERR_NOMEM ? ENOMEM : EPIPE; /* closing */
        return -1;
    }
    ws->senders++;
    rc = flush(ws, deadline);
    ws->senders--;
    return rc;
}

int corio_ws_close_code(const corio_ws *ws)
{
    return ws->close_code;
}

const char *corio_ws_protocol(const corio_ws *ws)
{
    return ws->protocol;
}

int corio_ws_close(corio_ws *ws, int code, const char *reason,
                   int64_t deadline)
{
    int rc = 0, err = 0;
    size_t rlen = reason != NULL ? strlen(reason) : 0;
    int64_t until;

    if (ws == NULL)
        return 0;
    if (ws->receiving || ws->senders > 0) {
        errno = EBUSY; /* another task is in a call on it */
        return -1;
    }
    until = corio_now() + ws->close_timeout;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    if (code == 0)
        code = 1000;
    if (code < 1000 || code > 4999 || code == 1004 || code == 1005 ||
        code == 1006 || code == 1015 || rlen > 123 ||
        (reason && !corio__ws_utf8_valid((const unsigned char *)reason, rlen))) {
        err = EINVAL;
        code = 1000;
        reason = NULL;
        rlen = 0;
    }
    if (ws->dead == 0 || ws->dead == CORIO_ECLOSED) {
        if (!wslay_event_get_close_sent(ws->ctx))
            wslay_event_queue_close(ws->ctx, (uint16_t)code,
                                    (const uint8_t *)reason, rlen);
        if (ws->dead == 0 && flush(ws, until) == -1)
            rc = -1, err = err ? err : errno;
        /* wait for the peer's close frame */
        while (rc == 0 && ws->dead == 0 &&
               wslay_event_get_read_enabled(ws->ctx) &&
               !wslay_event_get_close_received(ws->ctx)) {
            if (pump(ws, until) == -1) {
                if (errno == ETIMEDOUT || errno == ECANCELED)
                    rc = -1, err = err ? err : errno;
                break;
            }
        }
    }
    corio__ws_free(ws);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- Opening handshake ---------------------------------------------------- */

/* base64(SHA-1(key + GUID)) into out (29 bytes). */
static int accept_key(const char *key, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "%s" WS_GUID, key);

    if (n < 0 || (size_t)n >= sizeof(buf) ||
        EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

/* True if list (comma-separated) holds token (case-sensitive, as
 * subprotocols are). */
static const char *pick_protocol(const char *ours, const char *offered)
{
    static __thread char pick[64];

    for (const char *o = ours; o != NULL && *o;) {
        size_t n;

        while (*o == ' ' || *o == ',')
            o++;
        n = strcspn(o, ", ");
        for (const char *t = offered; t != NULL && *t;) {
            size_t m;

            while (*t == ' ' || *t == ',' || *t == '\t')
                t++;
            m = strcspn(t, ", \t");
            if (m == n && n > 0 && n < sizeof(pick) && strncmp(o, t, n) == 0) {
                memcpy(pick, o, n);
                pick[n] = '\0';
                return pick;
            }
            t += m;
        }
        o += n;
    }
    return NULL;
}

corio_ws *corio_ws_upgrade(corio_http_request *req, corio_http_response *res,
                           const corio_ws_opts *opts, int64_t deadline)
{
    corio_ws_opts z = {0};
    const corio_http_headers *h = corio_http_request_headers(req);
    const char *key = corio_http_headers_get(h, "Sec-WebSocket-Key");
    const char *ver = corio_http_headers_get(h, "Sec-WebSocket-Version");
    const char *proto = NULL;
    unsigned char raw[32];
    char acc[32];
    corio_stream *s;
    corio_ws *ws;

    if (opts == NULL)
        opts = &z;
    if (ver == NULL || strcmp(ver, "13") != 0) {
        if (corio_http_response_status(res, 426) == -1 ||
            corio_http_response_header(res, "Sec-WebSocket-Version", "13") == -1 ||
            corio_http_response_header(res, "Content-Type", "text/plain") == -1 ||
            corio_http_response_body(res, "WebSocket version 13 only\n", 26) == -1)
            return NULL;
        errno = EPROTO;
        return NULL;
    }
    if (strcmp(corio_http_request_method(req), "GET") != 0 ||
        corio_http_request_version(req) != 11 ||
        !corio_http_headers_has_token(h, "Upgrade", "websocket") ||
        !corio_http_headers_has_token(h, "Connection", "upgrade") ||
        key == NULL || strlen(key) != 24 ||
        EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18 ||
        accept_key(key, acc) == -1) {
        if (corio_http_response_status(res, 400) == -1 ||
            corio_http_response_header(res, "Content-Type", "text/plain") == -1 ||
            corio_http_response_body(res, "not a WebSocket handshake\n", 26) == -1)
            return NULL;
        errno = EPROTO;
        return NULL;
    }
    if (opts->protocols != NULL)
        proto = pick_protocol(opts->protocols,
                              corio_http_headers_get(h, "Sec-WebSocket-Protocol"));
    if (corio_http_response_status(res, 101) == -1 ||
        corio_http_response_header(res, "Upgrade", "websocket") == -1 ||
        corio_http_response_header(res, "Connection", "Upgrade") == -1 ||
        corio_http_response_header(res, "Sec-WebSocket-Accept", acc) == -1 ||
        (proto != NULL &&
         corio_http_response_header(res, "Sec-WebSocket-Protocol", proto) == -1))
        return NULL;
    s = corio_http_response_upgrade(res, deadline);
    if (s == NULL)
        return NULL;
    ws = corio__ws_new(s, false, false, opts->max_message);
    if (ws == NULL)
        return NULL;
    if (opts->close_timeout > 0)
        ws->close_timeout = opts->close_timeout;
    ws->fragment_size = opts->fragment_size;
    if (proto != NULL && (ws->protocol = strdup(proto)) == NULL) {
        corio__ws_free(ws);
        errno = ENOMEM;
        return NULL;
    }
    return ws;
}

/* Read the handshake's response head from s into p; leftover bytes (the
 * first frames) go to ws->in. */
static int read_101(corio_stream *s, struct corio__http_parser *p, char *buf,
                    size_t *left_pos, size_t *left_len, int64_t deadline)
{
    size_t used;

    for (;;) {
        ssize_t k = corio_stream_read(s, buf, CORIO__WS_IN_BUF, deadline);
        enum corio__http_event ev;

        if (k == -1)
            return -1;
        if (k == 0) {
            errno = EPROTO;
            return -1;
        }
        p->body = NULL;
        ev = corio__http_parse(p, buf, (size_t)k, &used);
        if (ev == CORIO__HTTP_ERROR) {
            errno = EPROTO;
            return -1;
        }
        if (ev != CORIO__HTTP_MORE) {
            *left_pos = used;
            *left_len = (size_t)k;
            return 0;
        }
    }
}

corio_ws *corio_ws_connect(const char *url, const corio_ws_opts *opts,
                           int64_t deadline)
{
    corio_ws_opts z = {0};
    struct corio__url u;
    struct corio__http_parser p;
    corio_http_headers *rh = NULL;
    corio_tls *tls = NULL;
    corio_stream *s = NULL;
    corio_ws *ws = NULL;
    unsigned char nonce[16];
    char key[32], acc[32], addr[300], *head = NULL, http[2048];
    const char *v;
    size_t len = 0, n;
    int err = EPROTO;

    if (opts == NULL)
        opts = &z;
    if (url == NULL || (strncasecmp(url, "ws://", 5) != 0 &&
                        strncasecmp(url, "wss://", 6) != 0) ||
        strlen(url) > sizeof(http) - 8) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(http, sizeof(http), "http%s", url + 2);
    if (corio__url_parse(&u, http, NULL) == -1)
        return NULL;
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
        corio__url_free(&u);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    if (accept_key(key, acc) == -1)
        goto fail;
    snprintf(addr, sizeof(addr),
             strchr(u.host, ':') != NULL ? "[%s]:%s" : "%s:%s", u.host, u.port);
    if (u.https) {
        tls = opts->tls != NULL ? opts->tls : corio_tls_client(NULL);
        if (tls == NULL)
            goto fail_errno;
        s = corio_tls_connect(tls, addr, deadline);
        if (tls != opts->tls)
            corio_tls_free(tls);
    } else {
        s = corio_stream_connect(addr, deadline);
    }
    if (s == NULL)
        goto fail_errno;
    n = corio_http_headers_count(opts->headers);
    head = malloc(1024 + strlen(u.target) + strlen(u.authority) +
                  (opts->protocols ? strlen(opts->protocols) : 0));
    if (head == NULL)
        goto fail_errno;
    len = (size_t)sprintf(head,
                          "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n",
                          u.target, u.authority, key);
    if (opts->protocols != NULL)
        len += (size_t)sprintf(head + len, "Sec-WebSocket-Protocol: %s\r\n",
                               opts->protocols);
    if (corio_stream_write(s, head, len) == -1)
        goto fail_errno;
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;

        corio_http_headers_at(opts->headers, i, &name, &value);
        if (corio_stream_write(s, name, strlen(name)) == -1 ||
            corio_stream_write(s, ": ", 2) == -1 ||
            corio_stream_write(s, value, strlen(value)) == -1 ||
            corio_stream_write(s, "\r\n", 2) == -1)
            goto fail_errno;
    }
    if (corio_stream_write(s, "\r\n", 2) == -1 ||
        corio_stream_drain(s, deadline) == -1)
        goto fail_errno;
    ws = corio__ws_new(s, true, true, opts->max_message);
    if (ws == NULL)
        goto fail_errno;
    s = NULL; /* ws owns it */
    if (opts->close_timeout > 0)
        ws->close_timeout = opts->close_timeout;
    ws->fragment_size = opts->fragment_size;
    rh = corio_http_headers_new();
    if (rh == NULL ||
        corio__http_parser_init(&p, HTTP_RESPONSE, NULL, rh) == -1)
        goto fail_errno;
    if (read_101(ws->s, &p, ws->in, &ws->in_pos, &ws->in_len, deadline) == -1) {
        err = errno;
        corio__http_parser_free(&p);
        goto fail;
    }
    v = corio_http_headers_get(rh, "Sec-WebSocket-Accept");
    if (p.status != 101 || !corio_http_headers_has_token(rh, "Upgrade", "websocket") ||
        !corio_http_headers_has_token(rh, "Connection", "upgrade") ||
        v == NULL || strcmp(v, acc) != 0) {
        corio__http_parser_free(&p);
        goto fail;
    }
    corio__http_parser_free(&p);
    v = corio_http_headers_get(rh, "Sec-WebSocket-Protocol");
    if (v != NULL) {
        if (opts->protocols == NULL || pick_protocol(opts->protocols, v) == NULL)
            goto fail; /* a protocol we did not offer */
        if ((ws->protocol = strdup(v)) == NULL)
            goto fail_errno;
    }
    corio_http_headers_free(rh);
    free(head);
    corio__url_free(&u);
    return ws;
fail_errno:
    err = errno;
fail:
    corio_http_headers_free(rh);
    free(head);
    if (ws != NULL)
        corio__ws_free(ws);
    corio_stream_close(s);
    corio__url_free(&u);
    errno = err;
    return NULL;
}
