/* src/http/ws_int.h -- the WebSocket connection's state (ws.c), and what
 * the frame fuzzer (tests/fuzz/fuzz_ws_frames.c) reaches: ws_frame.c. */
#ifndef CORIO_HTTP_WS_INT_H
#define CORIO_HTTP_WS_INT_H

#include "corio/ws.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

/* The most bytes fed to wslay at once. */
#define CORIO__WS_IN_BUF 16384

struct corio__ws_queued {
    struct corio__ws_queued *next;
    enum corio_ws_type type;
    size_t len;
    char data[];
};

struct corio_ws {
    wslay_event_context_ptr ctx;
    corio_stream *s;                /* NULL: no connection (fuzzing) */
    bool owned;                     /* closed with ws (client side) */
    bool receiving;                 /* a task is in corio_ws_recv */
    unsigned senders;               /* tasks in corio_ws_send */
    char *in;                       /* bytes read, for wslay */
    size_t in_pos, in_len;
    struct corio__ws_queued *head, **tail; /* messages received */
    struct corio__ws_queued *cur;   /* the one given out last */
    int close_code;                 /* the peer's */
    int failed;                     /* EPROTO (bad UTF-8), ENOMEM */
    int write_err;                  /* a write's errno */
    int dead;                       /* the connection's end (errno) */
    char *protocol;
    int64_t close_timeout;
    size_t fragment_size;           /* send longer messages in pieces */
};

/* A connection over s (owned: closed with it), client or server side. */
corio_ws *corio__ws_new(corio_stream *s, bool owned, bool client,
                        size_t max_message);
void corio__ws_free(corio_ws *ws);

/* Run n bytes (at most 16 KiB) through the framing as if they came from
 * the peer; what wslay answers is dropped when ws has no stream. Returns
 * 0, or -1 when the framing failed. */
int corio__ws_feed(corio_ws *ws, const void *data, size_t n);

/* Take the next received message into msg (valid until the next pop or
 * free; the previous one is freed). False: none queued. */
bool corio__ws_pop(corio_ws *ws, corio_ws_msg *msg);

/* True if s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates). */
bool corio__ws_utf8_valid(const unsigned char *s, size_t n);

#endif
