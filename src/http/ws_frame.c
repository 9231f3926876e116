/* src/http/ws_frame.c -- the framing side of a WebSocket connection
 * (include/corio/ws.h; the handshakes and blocking calls are ws.c's):
 * wslay's event context and its callbacks, the queue of received
 * messages, UTF-8 checks. Nothing here waits, and with no stream it runs
 * on bytes in memory: the frame fuzzer (tests/fuzz/fuzz_ws_frames.c)
 * builds this file alone.
 *
 * wslay's recv callback takes bytes from ws->in (filled by the caller) and
 * says WOULDBLOCK when they are used up; its send callback appends to the
 * stream's write buffer, never blocking (the caller drains it). */
#include "ws_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_MESSAGE (4u * 1024 * 1024)
#define CLOSE_TIMEOUT (5 * CORIO_SECOND)

/* ---- UTF-8 ----------------------------------------------------------------- */

bool corio__ws_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user)
{
    corio_ws *ws = user;
    size_t n = ws->in_len - ws->in_pos;

    (void)flags;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n > len)
        n = len;
    memcpy(buf, ws->in + ws->in_pos, n);
    ws->in_pos += n;
    return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user)
{
    corio_ws *ws = user;

    (void)flags;
    if (ws->s == NULL) /* a context without a connection (the fuzzer) */
        return (ssize_t)len;
    if (corio_stream_write(ws->s, data, len) == -1) {
        ws->write_err = errno;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *user)
{
    (void)user;
    if (getrandom(buf, len, 0) != (ssize_t)len) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    corio_ws *ws = user;
    struct corio__ws_queued *q;

    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->close_code = arg->status_code ? arg->status_code : 1005;
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping (answered by wslay), pong */
    if (ws->failed != 0)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME &&
        !corio__ws_utf8_valid(arg->msg, arg->msg_length)) {
        ws->failed = EPROTO;
        wslay_event_queue_close(ctx, 1007, NULL, 0);
        wslay_event_shutdown_read(ctx);
        return;
    }
    q = malloc(sizeof(*q) + arg->msg_length + 1);
    if (q == NULL) {
        ws->failed = ENOMEM;
        wslay_event_queue_close(ctx, 1011, NULL, 0);
        wslay_event_shutdown_read(ctx);
        return;
    }
    q->next = NULL;
    q->type = arg->opcode == WSLAY_TEXT_FRAME ? CORIO_WS_TEXT : CORIO_WS_BINARY;
    q->len = arg->msg_length;
    if (arg->msg_length > 0)
        memcpy(q->data, arg->msg, arg->msg_length);
    q->data[q->len] = '\0';
    *ws->tail = q;
    ws->tail = &q->next;
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .genmask_callback = on_genmask,
    .on_msg_recv_callback = on_msg,
};

corio_ws *corio__ws_new(corio_stream *s, bool owned, bool client,
                        size_t max_message)
{
    corio_ws *ws = calloc(1, sizeof(*ws));

    if (ws == NULL)
        return NULL;
    ws->in = malloc(CORIO__WS_IN_BUF);
    if (ws->in == NULL ||
        (client ? wslay_event_context_client_init(&ws->ctx, &callbacks, ws)
                : wslay_event_context_server_init(&ws->ctx, &callbacks, ws)) != 0) {
        free(ws->in);
        free(ws);
        errno = ENOMEM;
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(
        ws->ctx, max_message ? max_message : MAX_MESSAGE);
    ws->s = s;
    ws->owned = owned;
    ws->tail = &ws->head;
    ws->close_timeout = CLOSE_TIMEOUT;
    return ws;
}

void corio__ws_free(corio_ws *ws)
{
    while (ws->head != NULL) {
        struct corio__ws_queued *q = ws->head;

        ws->head = q->next;
        free(q);
    }
    free(ws->cur);
    wslay_event_context_free(ws->ctx);
    if (ws->owned)
        corio_stream_close(ws->s);
    free(ws->protocol);
    free(ws->in);
    free(ws);
}

int corio__ws_feed(corio_ws *ws, const void *data, size_t n)
{
    ws->in_pos = 0;
    ws->in_len = n < CORIO__WS_IN_BUF ? n : CORIO__WS_IN_BUF;
    if (ws->in_len > 0)
        memcpy(ws->in, data, ws->in_len);
    if (wslay_event_recv(ws->ctx) != 0)
        return -1;
    if (wslay_event_send(ws->ctx) != 0)
        return -1;
    return 0;
}

bool corio__ws_pop(corio_ws *ws, corio_ws_msg *msg)
{
    struct corio__ws_queued *q = ws->head;

    free(ws->cur);
    ws->cur = NULL;
    if (q == NULL)
        return false;
    ws->head = q->next;
    if (ws->head == NULL)
        ws->tail = &ws->head;
    ws->cur = q;
    msg->type = q->type;
    msg->data = q->data;
    msg->len = q->len;
    return true;
}
