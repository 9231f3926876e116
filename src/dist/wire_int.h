/* src/dist/wire_int.h -- the manager's wire protocol, version 1
 * (docs/dist.md "Wire format"): the authenticated frames, their fields,
 * and the connection object that the manager (manager.c) and its client
 * (manager_client.c) share: a stream, the session's MAC keys and sequence
 * numbers, and a writer task that sends the frames sealed by anyone.
 *
 *   frame = header (12 bytes) | payload (len bytes) | mac (32 bytes)
 *   header = len u32 | rid u32 | op u8 | status u8 | zero u16  (big-endian)
 *   mac = HMAC-SHA256(direction key, seq u64 | header | payload)
 *
 * seq counts the frames of one direction from 0 and is not sent: a frame
 * replayed, dropped, reordered or reflected fails its MAC, and the
 * connection is closed. */
#ifndef CORIO_DIST_WIRE_INT_H
#define CORIO_DIST_WIRE_INT_H

#include "corio/dist.h"
#include "corio/sync.h"
#include "corio/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORIO__WIRE_VERSION 1
#define CORIO__WIRE_MAGIC "CORIODST"      /* 8 bytes, no NUL sent */
#define CORIO__WIRE_HEADER 12
#define CORIO__WIRE_MAC 32
#define CORIO__WIRE_NONCE 32
#define CORIO__WIRE_MAX_FRAME (16u << 20) /* default payload limit */

/* Requests (client to manager); a reply has its request's op and rid. */
enum corio__wire_op {
    CORIO__OP_PUT = 1,    /* name, n u32, n x (len u32, bytes) -> n x id u64 */
    CORIO__OP_GET,        /* name, lease u8, max u32, timeout i64, lease_ns
                             i64, max_deliveries u32 -> count u32, count x
                             (id u64, deliveries u32, len u32, bytes) */
    CORIO__OP_ACK,        /* name, n u32, has_results u8, n x (id u64
                             [, len u32, bytes]) */
    CORIO__OP_NACK,       /* name, id u64 */
    CORIO__OP_TOUCH,      /* name, id u64 */
    CORIO__OP_SIZE,       /* name -> size u64 */
    CORIO__OP_QCLOSE,     /* name */
    CORIO__OP_RESULT,     /* id u64, remove u8, timeout i64 -> len u32, bytes */
    CORIO__OP_MSET,       /* name, key, len u32, bytes */
    CORIO__OP_MGET,       /* name, key -> len u32, bytes */
    CORIO__OP_MDEL,       /* name, key */
    CORIO__OP_CANCEL,     /* (empty) give up the waiting request rid: it is
                             answered ECANCELED if it still waits */
    CORIO__OP_UNGET,      /* name, count u32, count x (id u64, deliveries
                             u32, len u32, bytes): back to the queue's front
                             (a get whose caller gave up); no reply */
    CORIO__OP_RESULTS,    /* remove u8, timeout i64, n u32 (1 to
                             CORIO_DIST_MANY_MAX), n x id u64 ->
                             count u32, count x (id u64, len u32, bytes):
                             those of the n tasks done, at least one */
    CORIO__OP_MAX
};

/* A reply's status: 0, or an error, mapped to errno on each side. */
enum corio__wire_status {
    CORIO__ST_OK = 0,
    CORIO__ST_ETIMEDOUT,
    CORIO__ST_ECLOSED,
    CORIO__ST_ENOENT,
    CORIO__ST_EINVAL,
    CORIO__ST_EMSGSIZE,
    CORIO__ST_ENOMEM,
    CORIO__ST_ECANCELED,
    CORIO__ST_MAX
};
int corio__wire_status_errno(unsigned status);
unsigned corio__wire_errno_status(int err);

/* A growable byte buffer. */
struct corio__wbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
};
int corio__wbuf_reserve(struct corio__wbuf *b, size_t more);
void corio__wbuf_free(struct corio__wbuf *b);
/* Appenders (big-endian): 0, or -1 with ENOMEM leaving b as it was. */
int corio__wbuf_u8(struct corio__wbuf *b, uint8_t v);
int corio__wbuf_u32(struct corio__wbuf *b, uint32_t v);
int corio__wbuf_u64(struct corio__wbuf *b, uint64_t v);
int corio__wbuf_bytes(struct corio__wbuf *b, const void *p, size_t n);
int corio__wbuf_name(struct corio__wbuf *b, const char *name); /* u8 len */
int corio__wbuf_blob(struct corio__wbuf *b, const void *p, size_t n);

/* A bounds-checked reader over a payload: a read past the end, or a name
 * that is empty or too long, sets bad and returns zeroes. */
struct corio__rd {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
};
uint8_t corio__rd_u8(struct corio__rd *r);
uint32_t corio__rd_u32(struct corio__rd *r);
uint64_t corio__rd_u64(struct corio__rd *r);
const uint8_t *corio__rd_bytes(struct corio__rd *r, size_t n);
/* A name into out (CORIO_DIST_NAME_MAX + 1 bytes, NUL-terminated). */
void corio__rd_name(struct corio__rd *r, char *out);
/* A u32 length and that many bytes. */
const uint8_t *corio__rd_blob(struct corio__rd *r, uint32_t *len);

/* A decoded request (the manager's view; pointers into the payload). */
struct corio__wire_req {
    uint32_t rid;
    uint8_t op;
    char name[CORIO_DIST_NAME_MAX + 1];
    char key[CORIO_DIST_NAME_MAX + 1];
    uint32_t n;                /* PUT, ACK, UNGET, RESULTS: items; GET: max */
    bool flag;                 /* GET: lease; ACK: has_results; RESULT,
                                  RESULTS: remove */
    uint64_t id;
    int64_t timeout;           /* GET, RESULT, RESULTS: ns, -1 none */
    int64_t lease;             /* GET */
    uint32_t max_deliveries;   /* GET */
    const uint8_t *items;      /* PUT, ACK, UNGET, RESULTS: the items,
                                  checked */
    const uint8_t *items_end;
    const uint8_t *value;      /* MSET */
    uint32_t value_len;
};

/* Decode a request payload (op and rid from its header). Every field and
 * item is checked, so the executor iterates without checks. Returns 0, or
 * -1 with EPROTO. */
int corio__wire_req_decode(uint8_t op, uint32_t rid, const uint8_t *payload,
                           size_t len, struct corio__wire_req *req);

/* ---- The session: keys, sequence numbers, frames -------------------------- */

struct corio__wire_mac;  /* OpenSSL's keyed HMAC, per direction */

struct corio__wire_frame {
    uint32_t rid;
    uint8_t op;
    uint8_t status;
    const uint8_t *payload;   /* in the connection's input buffer, valid
                                 until the next read */
    size_t len;
};

/* A connection after the handshake. */
struct corio__wire_conn {
    corio_stream *s;
    struct corio__wire_mac *tx;   /* sealing key (our direction) */
    struct corio__wire_mac *rx;   /* opening key (the peer's) */
    uint64_t seq_tx;
    uint64_t seq_rx;
    size_t max_frame;             /* payload limit for frames read */
    struct corio__wbuf out;       /* sealed frames not yet written */
    struct corio__wbuf spare;     /* the writer's buffer being written */
    struct corio__wbuf in;        /* the frame being read */
    corio_event *wake;            /* set: out has frames */
    corio_task *writer;
    int err;                      /* the error that broke it, sticky */
};

/* Keys from the handshake: 32 bytes each. */
int corio__wire_conn_init(struct corio__wire_conn *c, corio_stream *s,
                          const uint8_t tx_key[32], const uint8_t rx_key[32],
                          size_t max_frame);
/* Stop the writer (what it has not sent is dropped), free the keys and
 * buffers and close the stream. */
void corio__wire_conn_fini(struct corio__wire_conn *c);
/* Send what is sealed, then stop the writer (a graceful end). */
void corio__wire_conn_flush(struct corio__wire_conn *c, int64_t deadline);

/* Begin a frame in c->out: returns its offset, or -1 (ENOMEM). Append the
 * payload with corio__wbuf_* on &c->out, then seal it (length, MAC, wake
 * the writer); on an error in between, corio__wire_abort(c, off). */
ssize_t corio__wire_begin(struct corio__wire_conn *c, uint32_t rid,
                          uint8_t op, uint8_t status);
int corio__wire_seal(struct corio__wire_conn *c, size_t off);
void corio__wire_abort(struct corio__wire_conn *c, size_t off);

/* Read and authenticate the next frame. Returns 0, or -1 with errno:
 * CORIO_EEOF/ECONNRESET (closed), EPROTO (bad MAC, bad header),
 * EMSGSIZE (over max_frame), ETIMEDOUT, ECANCELED, ENOMEM. */
int corio__wire_read(struct corio__wire_conn *c, struct corio__wire_frame *f,
                     int64_t deadline);

/* Check a frame held whole in buf (header, payload, mac) against key and
 * seq: the frame decoder, without a stream (the fuzz target's entry).
 * Returns 0 and fills f, or -1 with EPROTO / EMSGSIZE. */
int corio__wire_open(struct corio__wire_mac *key, uint64_t seq,
                     const uint8_t *buf, size_t n, size_t max_frame,
                     struct corio__wire_frame *f);
/* Check a frame header: known op and status, zero field, len within
 * max_frame (EMSGSIZE) into *len. Returns 0 or -1 (EPROTO). */
int corio__wire_header_check(const uint8_t *h, size_t max_frame, size_t *len);
void corio__wire_put32(uint8_t *p, uint32_t v);
struct corio__wire_mac *corio__wire_mac_new(const uint8_t key[32]);
void corio__wire_mac_free(struct corio__wire_mac *m);
/* HMAC-SHA256 of (seq, data) into out (32 bytes). Returns 0 or -1. */
int corio__wire_mac_compute(struct corio__wire_mac *m, uint64_t seq,
                            const uint8_t *data, size_t n, uint8_t out[32]);

/* ---- The handshake (auth.c) ------------------------------------------------ */

/* Client and server sides of the mutual challenge-response over s; on
 * success the session keys (tx, rx: our sealing and opening keys), and
 * the largest frame payload the server accepts (it announces max_frame;
 * the client gets it in *max_frame).
 * Client: -1 with EACCES (refused, or the server does not know the key),
 * EPROTO (not a corio manager, another version), the stream's errors.
 * Server: -1 with EACCES (wrong key: the refusal is sent), EPROTO. */
int corio__auth_client(corio_stream *s, const void *key, size_t keylen,
                       uint8_t tx[32], uint8_t rx[32], uint32_t *max_frame,
                       int64_t deadline);
int corio__auth_server(corio_stream *s, const void *key, size_t keylen,
                       uint8_t tx[32], uint8_t rx[32], uint32_t max_frame,
                       int64_t deadline);

#endif
