/* include/corio/ws.h -- WebSockets (RFC 6455), client and server
 * (aiohttp's ws_connect and WebSocketResponse). Part of corio.h.
 *
 * Framing is wslay's (Debian's libwslay): masking by the client and its
 * check by the server (an unmasked client frame, a masked server frame is
 * a protocol error), fragmented messages reassembled, pings answered with
 * pongs, the close handshake. corio adds the opening handshake (over its
 * HTTP client's URLs and TLS, and its HTTP server's upgrade), a message
 * size limit, UTF-8 checks of text messages, and the blocking calls with
 * deadlines.
 *
 *     // client
 *     corio_ws *ws = corio_ws_connect("ws://127.0.0.1:8080/chat", NULL, dl);
 *     corio_ws_send(ws, CORIO_WS_TEXT, "hi", 2, dl);
 *     corio_ws_msg m;
 *     while (corio_ws_recv(ws, &m, dl) == 0) { ... m.data, m.len ... }
 *     corio_ws_close(ws, 1000, "bye", dl);
 *
 *     // server: in a corio_http_app handler
 *     corio_ws *ws = corio_ws_upgrade(req, res, NULL, dl);
 *     ... the same calls ...; corio_ws_close(ws, 1000, NULL, dl); return 0;
 *
 * One task may receive while others send. */
#ifndef CORIO_WS_H
#define CORIO_WS_H

#include "corio/http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_ws corio_ws;

/* Message types (the frame opcodes). */
enum corio_ws_type {
    CORIO_WS_TEXT = 1,      /* UTF-8, checked on both sides */
    CORIO_WS_BINARY = 2,
    CORIO_WS_PING = 9,      /* send only: the peer answers with a pong */
};

/* A received message: data (NUL-terminated after len bytes) lives until
 * the next corio_ws_recv or corio_ws_close. */
typedef struct corio_ws_msg {
    enum corio_ws_type type;
    const char *data;
    size_t len;
} corio_ws_msg;

/* Options; zero fields (or opts NULL) take the default. */
typedef struct corio_ws_opts {
    size_t max_message;     /* longest message received, reassembled;
                               0: 4 MiB (aiohttp's); a longer one closes
                               the connection with 1009 (EMSGSIZE) */
    const char *protocols;  /* subprotocols, comma-separated: a client
                               offers them, a server picks the first of
                               its list that the client offers */
    const corio_http_headers *headers; /* client: extra handshake fields */
    corio_tls *tls;         /* client, wss://: NULL: a verifying default */
    int64_t close_timeout;  /* ns corio_ws_close waits for the peer's close
                               at most (within its deadline); 0: 5 s */
    size_t fragment_size;   /* send longer messages as fragments of this
                               many bytes (at most 4 KiB: wslay's frame
                               buffer); 0: every message in one frame */
} corio_ws_opts;

/* Connect to url ("ws://host[:port]/path?query" or wss://) and do the
 * opening handshake, until deadline. Returns the connection, or NULL with
 * errno: EINVAL (a bad URL or option), EPROTO (the server refused the
 * upgrade or answered it wrongly: a status other than 101, a bad
 * Sec-WebSocket-Accept; or the TLS handshake failed), ETIMEDOUT,
 * ECANCELED, ECONNREFUSED, CORIO_EUNKNOWNHOST, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_ws *corio_ws_connect(const char *url,
                                        const corio_ws_opts *opts,
                                        int64_t deadline);

/* In an HTTP server handler: check that req is a WebSocket opening
 * handshake, answer 101 and take the connection over (the handler then
 * speaks WebSocket until it closes ws and returns). Returns the
 * connection, or NULL with errno: EPROTO (not a valid WebSocket request:
 * the response is set to 400, or 426 for another version, and the handler
 * should return 0 to send it), EPIPE, ETIMEDOUT, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_ws *corio_ws_upgrade(corio_http_request *req,
                                        corio_http_response *res,
                                        const corio_ws_opts *opts,
                                        int64_t deadline);

/* Send one message (TEXT must be valid UTF-8; PING at most 125 bytes) and
 * wait until it is on its way (the stream's backpressure). Returns 0, or
 * -1 with errno: EINVAL (bad type, bad UTF-8, a ping too long), EPIPE (the
 * closing handshake has begun), ECONNRESET, ETIMEDOUT, ECANCELED. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_ws_send(corio_ws *ws, enum corio_ws_type type,
                               const void *data, size_t len, int64_t deadline);

/* Wait for the next text or binary message (pings are answered on the
 * way, pongs dropped). Returns 0, or -1 with errno: CORIO_ECLOSED (the peer
 * closed: corio_ws_close_code tells its code; 1006 when the connection
 * ended without a close frame), EMSGSIZE (a message over max_message: the
 * connection is closed with 1009), EPROTO (a protocol error or bad UTF-8:
 * closed with 1002 or 1007), ETIMEDOUT and ECANCELED (the connection stays
 * usable), EBUSY (another task is receiving). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_ws_recv(corio_ws *ws, corio_ws_msg *msg,
                               int64_t deadline);

/* The close code the peer sent (0 until then), and the subprotocol agreed
 * on (NULL: none). */
CORIO_EXPORT int corio_ws_close_code(const corio_ws *ws);
CORIO_EXPORT const char *corio_ws_protocol(const corio_ws *ws);

/* Close: send a close frame with code (1000..4999; 0: 1000) and reason
 * (NULL: none; at most 123 bytes), wait for the peer's close frame (at
 * most close_timeout, within deadline; data messages meanwhile are
 * dropped), then close the connection and free ws. Returns 0, or -1 with
 * errno ETIMEDOUT or ECANCELED (the peer did not answer in time), EINVAL
 * (a bad code or reason: sent as 1000 without reason); ws is freed in
 * every case but one: EBUSY, another task is in a call on ws (receiving,
 * or sending and waiting): nothing is done (cancel that task first).
 * NULL returns 0. */
CORIO_EXPORT int corio_ws_close(corio_ws *ws, int code, const char *reason,
                                int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
