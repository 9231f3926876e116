/* src/dist/wire_conn.c -- a connection of the manager's protocol
 * (wire_int.h): sealing frames into the output buffer, reading and
 * authenticating frames from the stream, and the writer task, which sends
 * what any task or callback sealed, many frames per write when busy. */
#include "wire_int.h"

#include "corio/io.h"
#include "corio/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

ssize_t corio__wire_begin(struct corio__wire_conn *c, uint32_t rid,
                          uint8_t op, uint8_t status)
{
    size_t off = c->out.len;
    uint8_t h[CORIO__WIRE_HEADER] = {0};

    corio__wire_put32(h + 4, rid);
    h[8] = op;
    h[9] = status;
    if (corio__wbuf_bytes(&c->out, h, sizeof(h)) == -1)
        return -1;
    return (ssize_t)off;
}

void corio__wire_abort(struct corio__wire_conn *c, size_t off)
{
    c->out.len = off;
}

int corio__wire_seal(struct corio__wire_conn *c, size_t off)
{
    size_t len = c->out.len - off - CORIO__WIRE_HEADER;

    if (c->err != 0) {
        /* The writer is gone: the frame would never leave. */
        corio__wire_abort(c, off);
        errno = c->err;
        return -1;
    }
    if (len > UINT32_MAX) {
        corio__wire_abort(c, off);
        errno = EMSGSIZE;
        return -1;
    }
    corio__wire_put32(c->out.p + off, (uint32_t)len);
    if (corio__wbuf_reserve(&c->out, CORIO__WIRE_MAC) == -1 ||
        corio__wire_mac_compute(c->tx, c->seq_tx, c->out.p + off,
                                c->out.len - off,
                                c->out.p + c->out.len) == -1) {
        corio__wire_abort(c, off);
        return -1;
    }
    c->out.len += CORIO__WIRE_MAC;
    c->seq_tx++;
    return corio_event_set(c->wake);
}

int corio__wire_read(struct corio__wire_conn *c, struct corio__wire_frame *f,
                     int64_t deadline)
{
    size_t len;

    if (corio__wbuf_reserve(&c->in, CORIO__WIRE_HEADER) == -1)
        return -1;
    c->in.len = 0;
    if (corio_stream_readexactly(c->s, c->in.p, CORIO__WIRE_HEADER,
                                 deadline) == -1)
        return -1;
    if (corio__wire_header_check(c->in.p, c->max_frame, &len) == -1)
        return -1;
    c->in.len = CORIO__WIRE_HEADER;
    if (corio__wbuf_reserve(&c->in, len + CORIO__WIRE_MAC) == -1)
        return -1;
    if (corio_stream_readexactly(c->s, c->in.p + CORIO__WIRE_HEADER,
                                 len + CORIO__WIRE_MAC, deadline) == -1)
        return -1;
    c->in.len += len + CORIO__WIRE_MAC;
    if (corio__wire_open(c->rx, c->seq_rx, c->in.p, c->in.len, c->max_frame,
                         f) == -1)
        return -1;
    c->seq_rx++;
    return 0;
}

/* ---- The writer ---------------------------------------------------------- */

/* Swap the sealed frames out and write them, until cancelled or broken.
 * Frames sealed while a write waits go in the next one: a busy
 * connection sends many frames per system call. */
static void *writer_main(void *arg)
{
    struct corio__wire_conn *c = arg;
    struct corio__wbuf b;

    for (;;) {
        if (c->out.len == 0) {
            if (corio_event_clear(c->wake) == -1 ||
                corio_event_wait(c->wake, -1) == -1)
                return NULL;
            continue;
        }
        b = c->spare;
        c->spare = c->out;
        c->out = b;
        c->out.len = 0;
        if (corio_stream_write(c->s, c->spare.p, c->spare.len) == -1 ||
            corio_stream_drain(c->s, -1) == -1) {
            if (c->err == 0)
                c->err = errno;
            return NULL;
        }
        c->spare.len = 0;
    }
}

int corio__wire_conn_init(struct corio__wire_conn *c, corio_stream *s,
                          const uint8_t tx_key[32], const uint8_t rx_key[32],
                          size_t max_frame)
{
    corio_task_attr attr = {.name = "dist-writer"};

    memset(c, 0, sizeof(*c));
    c->s = s;
    c->max_frame = max_frame;
    c->tx = corio__wire_mac_new(tx_key);
    c->rx = corio__wire_mac_new(rx_key);
    c->wake = corio_event_new();
    if (c->tx == NULL || c->rx == NULL || c->wake == NULL)
        goto fail;
    c->writer = corio_task_spawn(writer_main, c, &attr);
    if (c->writer == NULL)
        goto fail;
    return 0;

fail:
    c->s = NULL;   /* the caller keeps its stream */
    corio__wire_conn_fini(c);
    errno = ENOMEM;
    return -1;
}

void corio__wire_conn_flush(struct corio__wire_conn *c, int64_t deadline)
{
    CORIO_SHIELD(deadline);
    while (c->writer != NULL && c->err == 0 &&
           (c->out.len > 0 || c->spare.len > 0) &&
           (deadline < 0 || corio_now() < deadline)) {
        if (corio_sleep(CORIO_SECOND / 1000) == -1)
            break;
    }
}

void corio__wire_conn_fini(struct corio__wire_conn *c)
{
    if (c->writer != NULL) {
        CORIO_SHIELD(-1); /* it ends at its next call */

        (void)corio_task_cancel(c->writer);
        if (corio_task_join(c->writer, NULL) == -1) {
            /* it ended cancelled, as asked */
        }
    }
    corio_event_free(c->wake);
    corio__wire_mac_free(c->tx);
    corio__wire_mac_free(c->rx);
    corio__wbuf_free(&c->out);
    corio__wbuf_free(&c->spare);
    corio__wbuf_free(&c->in);
    if (c->s != NULL)
        corio_stream_close(c->s);
    memset(c, 0, sizeof(*c));
}
