/* src/dist/wire.c -- the manager's frames (wire_int.h): buffers and
 * bounds-checked field readers, request decoding, and opening frames with
 * HMAC-SHA256 over a per-direction sequence number. Pure functions over
 * bytes (no loop, no I/O: the fuzz target builds this file alone);
 * wire_conn.c moves the frames. It knows no queue: manager.c and
 * manager_client.c give the frames their meaning. */
#include "wire_int.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- Status codes ------------------------------------------------------- */

static const int status_errno[CORIO__ST_MAX] = {
    [CORIO__ST_OK] = 0,
    [CORIO__ST_ETIMEDOUT] = ETIMEDOUT,
    [CORIO__ST_ECLOSED] = CORIO_ECLOSED,
    [CORIO__ST_ENOENT] = ENOENT,
    [CORIO__ST_EINVAL] = EINVAL,
    [CORIO__ST_EMSGSIZE] = EMSGSIZE,
    [CORIO__ST_ENOMEM] = ENOMEM,
    [CORIO__ST_ECANCELED] = ECANCELED,
};

int corio__wire_status_errno(unsigned status)
{
    return status < CORIO__ST_MAX ? status_errno[status] : EPROTO;
}

unsigned corio__wire_errno_status(int err)
{
    for (unsigned i = 1; i < CORIO__ST_MAX; i++) {
        if (status_errno[i] == err)
            return i;
    }
    return CORIO__ST_EINVAL;
}

/* ---- Buffers ------------------------------------------------------------- */

int corio__wbuf_reserve(struct corio__wbuf *b, size_t more)
{
    size_t cap;
    uint8_t *p;

    if (b->cap - b->len >= more)
        return 0;
    if (more > SIZE_MAX / 4 - b->len) {
        errno = ENOMEM;
        return -1;
    }
    cap = b->cap > 0 ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void corio__wbuf_free(struct corio__wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int corio__wbuf_bytes(struct corio__wbuf *b, const void *p, size_t n)
{
    if (corio__wbuf_reserve(b, n) == -1)
        return -1;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int corio__wbuf_u8(struct corio__wbuf *b, uint8_t v)
{
    return corio__wbuf_bytes(b, &v, 1);
}

void corio__wire_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int corio__wbuf_u32(struct corio__wbuf *b, uint32_t v)
{
    uint8_t p[4];

    corio__wire_put32(p, v);
    return corio__wbuf_bytes(b, p, 4);
}

int corio__wbuf_u64(struct corio__wbuf *b, uint64_t v)
{
    uint8_t p[8];

    corio__wire_put32(p, (uint32_t)(v >> 32));
    corio__wire_put32(p + 4, (uint32_t)v);
    return corio__wbuf_bytes(b, p, 8);
}

int corio__wbuf_name(struct corio__wbuf *b, const char *name)
{
    size_t n = strlen(name);

    if (corio__wbuf_reserve(b, 1 + n) == -1)
        return -1;
    b->p[b->len++] = (uint8_t)n;
    return corio__wbuf_bytes(b, name, n);
}

int corio__wbuf_blob(struct corio__wbuf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    if (corio__wbuf_reserve(b, 4 + n) == -1)
        return -1;
    corio__wire_put32(b->p + b->len, (uint32_t)n);
    b->len += 4;
    return corio__wbuf_bytes(b, p, n);
}

/* ---- Readers ------------------------------------------------------------- */

const uint8_t *corio__rd_bytes(struct corio__rd *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    return p;
}

uint8_t corio__rd_u8(struct corio__rd *r)
{
    const uint8_t *p = corio__rd_bytes(r, 1);

    return p == NULL ? 0 : p[0];
}

uint32_t corio__rd_u32(struct corio__rd *r)
{
    const uint8_t *p = corio__rd_bytes(r, 4);

    return p == NULL ? 0 : get32(p);
}

uint64_t corio__rd_u64(struct corio__rd *r)
{
    const uint8_t *p = corio__rd_bytes(r, 8);

    return p == NULL ? 0 : (uint64_t)get32(p) << 32 | get32(p + 4);
}

void corio__rd_name(struct corio__rd *r, char *out)
{
    uint8_t n = corio__rd_u8(r);
    const uint8_t *p = corio__rd_bytes(r, n);

    out[0] = '\0';
    if (p == NULL || n == 0 || n > CORIO_DIST_NAME_MAX ||
        memchr(p, '\0', n) != NULL) {
        r->bad = true;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

const uint8_t *corio__rd_blob(struct corio__rd *r, uint32_t *len)
{
    *len = corio__rd_u32(r);
    return corio__rd_bytes(r, *len);
}

/* ---- Requests ------------------------------------------------------------ */

/* Check n items of the form the op says; each is (id u64)? (deliveries
 * u32)? (len u32, bytes)?. */
static void items_check(struct corio__rd *r, struct corio__wire_req *q,
                        bool id, bool deliveries, bool blob)
{
    uint32_t len;

    q->items = r->p;
    for (uint32_t i = 0; i < q->n && !r->bad; i++) {
        if (id && corio__rd_u64(r) == 0)
            r->bad = true;
        if (deliveries)
            (void)corio__rd_u32(r);
        if (blob)
            (void)corio__rd_blob(r, &len);
    }
    q->items_end = r->p;
}

static bool timeout_ok(int64_t t)
{
    return t >= -1;
}

int corio__wire_req_decode(uint8_t op, uint32_t rid, const uint8_t *payload,
                           size_t len, struct corio__wire_req *q)
{
    struct corio__rd r = {payload, payload + len, false};

    memset(q, 0, sizeof(*q));
    q->rid = rid;
    q->op = op;
    switch (op) {
    case CORIO__OP_PUT:
        corio__rd_name(&r, q->name);
        q->n = corio__rd_u32(&r);
        r.bad |= q->n == 0;
        items_check(&r, q, false, false, true);
        break;
    case CORIO__OP_GET:
        corio__rd_name(&r, q->name);
        q->flag = corio__rd_u8(&r) != 0;
        q->n = corio__rd_u32(&r);
        q->timeout = (int64_t)corio__rd_u64(&r);
        q->lease = (int64_t)corio__rd_u64(&r);
        q->max_deliveries = corio__rd_u32(&r);
        r.bad |= q->n == 0 || !timeout_ok(q->timeout) || q->lease <= 0 ||
                 q->max_deliveries == 0 || (!q->flag && q->n != 1);
        break;
    case CORIO__OP_ACK:
        corio__rd_name(&r, q->name);
        q->n = corio__rd_u32(&r);
        q->flag = corio__rd_u8(&r) != 0;
        r.bad |= q->n == 0;
        items_check(&r, q, true, false, q->flag);
        break;
    case CORIO__OP_NACK:
    case CORIO__OP_TOUCH:
        corio__rd_name(&r, q->name);
        q->id = corio__rd_u64(&r);
        r.bad |= q->id == 0;
        break;
    case CORIO__OP_SIZE:
    case CORIO__OP_QCLOSE:
        corio__rd_name(&r, q->name);
        break;
    case CORIO__OP_RESULT:
        q->id = corio__rd_u64(&r);
        q->flag = corio__rd_u8(&r) != 0;
        q->timeout = (int64_t)corio__rd_u64(&r);
        r.bad |= q->id == 0 || !timeout_ok(q->timeout);
        break;
    case CORIO__OP_MSET:
    case CORIO__OP_MGET:
    case CORIO__OP_MDEL:
        corio__rd_name(&r, q->name);
        corio__rd_name(&r, q->key);
        if (op == CORIO__OP_MSET)
            q->value = corio__rd_blob(&r, &q->value_len);
        break;
    case CORIO__OP_CANCEL:
        break;
    case CORIO__OP_RESULTS:
        q->flag = corio__rd_u8(&r) != 0;
        q->timeout = (int64_t)corio__rd_u64(&r);
        q->n = corio__rd_u32(&r);
        r.bad |= q->n == 0 || q->n > CORIO_DIST_MANY_MAX ||
                 !timeout_ok(q->timeout);
        items_check(&r, q, true, false, false);
        break;
    case CORIO__OP_UNGET:
        corio__rd_name(&r, q->name);
        q->n = corio__rd_u32(&r);
        r.bad |= q->n == 0;
        items_check(&r, q, true, true, true);
        break;
    default:
        r.bad = true;
    }
    if (r.bad || r.p != r.end) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* ---- MACs ---------------------------------------------------------------- */

struct corio__wire_mac {
    EVP_MAC_CTX *ctx;
};

struct corio__wire_mac *corio__wire_mac_new(const uint8_t key[32])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end()};
    struct corio__wire_mac *m;
    EVP_MAC *mac;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac != NULL)
        m->ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (m->ctx == NULL || !EVP_MAC_init(m->ctx, key, 32, params)) {
        corio__wire_mac_free(m);
        errno = ENOMEM;
        return NULL;
    }
    return m;
}

void corio__wire_mac_free(struct corio__wire_mac *m)
{
    if (m == NULL)
        return;
    EVP_MAC_CTX_free(m->ctx);
    free(m);
}

int corio__wire_mac_compute(struct corio__wire_mac *m, uint64_t seq,
                            const uint8_t *data, size_t n, uint8_t out[32])
{
    uint8_t s[8];
    size_t outlen = 0;

    corio__wire_put32(s, (uint32_t)(seq >> 32));
    corio__wire_put32(s + 4, (uint32_t)seq);
    /* A NULL key restarts the MAC with the key given at init. */
    if (!EVP_MAC_init(m->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(m->ctx, s, sizeof(s)) ||
        !EVP_MAC_update(m->ctx, data, n) ||
        !EVP_MAC_final(m->ctx, out, &outlen, 32) || outlen != 32) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* ---- Frames -------------------------------------------------------------- */

/* Check a header: the zero field, a known status, the length limit. */
int corio__wire_header_check(const uint8_t *h, size_t max_frame, size_t *len)
{
    *len = get32(h);
    if (h[9] >= CORIO__ST_MAX || h[10] != 0 || h[11] != 0 || h[8] == 0 ||
        h[8] >= CORIO__OP_MAX) {
        errno = EPROTO;
        return -1;
    }
    if (*len > max_frame) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

int corio__wire_open(struct corio__wire_mac *key, uint64_t seq,
                     const uint8_t *buf, size_t n, size_t max_frame,
                     struct corio__wire_frame *f)
{
    uint8_t mac[CORIO__WIRE_MAC];
    size_t len;

    if (n < CORIO__WIRE_HEADER + CORIO__WIRE_MAC) {
        errno = EPROTO;
        return -1;
    }
    if (corio__wire_header_check(buf, max_frame, &len) == -1)
        return -1;
    if (len != n - CORIO__WIRE_HEADER - CORIO__WIRE_MAC) {
        errno = EPROTO;
        return -1;
    }
    if (corio__wire_mac_compute(key, seq, buf, CORIO__WIRE_HEADER + len, mac) ==
        -1)
        return -1;
    if (CRYPTO_memcmp(mac, buf + CORIO__WIRE_HEADER + len, sizeof(mac)) != 0) {
        errno = EPROTO;
        return -1;
    }
    f->rid = get32(buf + 4);
    f->op = buf[8];
    f->status = buf[9];
    f->payload = buf + CORIO__WIRE_HEADER;
    f->len = len;
    return 0;
}

