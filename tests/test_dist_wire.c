/* tests/test_dist_wire.c -- the manager's wire protocol under attack: the
 * request decoder and the frame check on malformed bytes, and a live
 * manager fed replayed, reordered, truncated, oversized, forged and
 * malformed frames, garbage instead of a handshake, a client that never
 * authenticates, and more connections than its limit. Each must cost the
 * manager one closed connection, never a crash, and leave it serving.
 *
 * The raw client does the handshake (corio__auth_client) and then writes
 * frames it seals itself (corio__wire_mac_compute), so it can seal them
 * wrongly on purpose. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"
#include "dist/wire_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "timing.h"

#define KEY "abc"

/* ---- The decoder, without a connection --------------------------------------- */

/* A PUT payload: name "q", 2 items "ab", "". */
static size_t put_payload(uint8_t *buf)
{
    struct corio__wbuf b = {0};
    size_t n;

    cr_assert_eq(corio__wbuf_name(&b, "q"), 0);
    cr_assert_eq(corio__wbuf_u32(&b, 2), 0);
    cr_assert_eq(corio__wbuf_blob(&b, "ab", 2), 0);
    cr_assert_eq(corio__wbuf_blob(&b, "", 0), 0);
    n = b.len;
    memcpy(buf, b.p, n);
    corio__wbuf_free(&b);
    return n;
}

Test(dist_wire, decoder_rejects_every_truncation)
{
    uint8_t buf[64];
    size_t n = put_payload(buf);
    struct corio__wire_req r;

    cr_assert_eq(corio__wire_req_decode(CORIO__OP_PUT, 1, buf, n, &r), 0);
    cr_assert_str_eq(r.name, "q");
    cr_assert_eq(r.n, 2);
    for (size_t k = 0; k < n; k++) {
        errno = 0;
        cr_assert_eq(corio__wire_req_decode(CORIO__OP_PUT, 1, buf, k, &r), -1,
                     "truncated at %zu", k);
        cr_assert_eq(errno, EPROTO);
    }
    /* Trailing bytes, unknown ops. */
    buf[n] = 0;
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_PUT, 1, buf, n + 1, &r), -1);
    cr_assert_eq(corio__wire_req_decode(0, 1, buf, n, &r), -1);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_MAX, 1, buf, n, &r), -1);
    cr_assert_eq(corio__wire_req_decode(200, 1, buf, n, &r), -1);
}

Test(dist_wire, decoder_rejects_bad_fields)
{
    struct corio__wire_req r;
    struct corio__wbuf b = {0};

    /* An item count that the payload does not hold. */
    cr_assert_eq(corio__wbuf_name(&b, "q"), 0);
    cr_assert_eq(corio__wbuf_u32(&b, 0xffffffffu), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_PUT, 1, b.p, b.len, &r), -1);
    /* A blob length past the end. */
    b.len = 0;
    cr_assert_eq(corio__wbuf_name(&b, "q"), 0);
    cr_assert_eq(corio__wbuf_u32(&b, 1), 0);
    cr_assert_eq(corio__wbuf_u32(&b, 1000), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_PUT, 1, b.p, b.len, &r), -1);
    /* An empty name, a name with a NUL. */
    b.len = 0;
    cr_assert_eq(corio__wbuf_u8(&b, 0), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_SIZE, 1, b.p, b.len, &r), -1);
    b.len = 0;
    cr_assert_eq(corio__wbuf_u8(&b, 0), 0);   /* a zero length, then bytes */
    cr_assert_eq(corio__wbuf_bytes(&b, "q", 1), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_SIZE, 1, b.p, b.len, &r), -1);
    b.len = 0;
    cr_assert_eq(corio__wbuf_u8(&b, 2), 0);
    cr_assert_eq(corio__wbuf_bytes(&b, "a\0", 2), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_SIZE, 1, b.p, b.len, &r), -1);
    /* GET: a lease of 0, a timeout below -1, max 0, a get of 2. */
    for (int k = 0; k < 4; k++) {
        b.len = 0;
        cr_assert_eq(corio__wbuf_name(&b, "q"), 0);
        cr_assert_eq(corio__wbuf_u8(&b, k == 3 ? 0 : 1), 0);
        cr_assert_eq(corio__wbuf_u32(&b, k == 2 ? 0 : 2), 0);
        cr_assert_eq(corio__wbuf_u64(&b, k == 1 ? (uint64_t)-5 : 0), 0);
        cr_assert_eq(corio__wbuf_u64(&b, k == 0 ? 0 : 1000), 0);
        cr_assert_eq(corio__wbuf_u32(&b, 3), 0);
        cr_assert_eq(corio__wire_req_decode(CORIO__OP_GET, 1, b.p, b.len, &r),
                     -1, "case %d", k);
    }
    /* ACK of id 0. */
    b.len = 0;
    cr_assert_eq(corio__wbuf_name(&b, "q"), 0);
    cr_assert_eq(corio__wbuf_u32(&b, 1), 0);
    cr_assert_eq(corio__wbuf_u8(&b, 0), 0);
    cr_assert_eq(corio__wbuf_u64(&b, 0), 0);
    cr_assert_eq(corio__wire_req_decode(CORIO__OP_ACK, 1, b.p, b.len, &r), -1);
    corio__wbuf_free(&b);
}

/* Seal a frame by hand into out: header, payload, MAC with key and seq. */
static size_t seal(struct corio__wire_mac *key, uint64_t seq, uint32_t rid,
                   uint8_t op, const uint8_t *payload, size_t len, uint8_t *out)
{
    memset(out, 0, CORIO__WIRE_HEADER);
    corio__wire_put32(out, (uint32_t)len);
    corio__wire_put32(out + 4, rid);
    out[8] = op;
    memcpy(out + CORIO__WIRE_HEADER, payload, len);
    cr_assert_eq(corio__wire_mac_compute(key, seq, out, CORIO__WIRE_HEADER + len,
                                         out + CORIO__WIRE_HEADER + len),
                 0);
    return CORIO__WIRE_HEADER + len + CORIO__WIRE_MAC;
}

Test(dist_wire, frame_open_checks)
{
    uint8_t k[32] = {1}, frame[128], payload[8] = {0};
    struct corio__wire_mac *key = corio__wire_mac_new(k);
    struct corio__wire_frame f;
    size_t n = seal(key, 5, 9, CORIO__OP_SIZE, payload, sizeof(payload), frame);

    cr_assert_eq(corio__wire_open(key, 5, frame, n, 1024, &f), 0);
    cr_assert_eq(f.rid, 9);
    cr_assert_eq(f.len, 8);
    /* Another sequence number: replayed or reordered. */
    cr_assert_eq(corio__wire_open(key, 4, frame, n, 1024, &f), -1);
    cr_assert_eq(errno, EPROTO);
    cr_assert_eq(corio__wire_open(key, 6, frame, n, 1024, &f), -1);
    /* Truncated, oversized, every single bit flipped. */
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(corio__wire_open(key, 5, frame, i, 1024, &f), -1);
    cr_assert_eq(corio__wire_open(key, 5, frame, n, 4, &f), -1);
    cr_assert_eq(errno, EMSGSIZE);
    for (size_t i = 0; i < n * 8; i++) {
        frame[i / 8] ^= (uint8_t)(1u << (i % 8));
        cr_assert_eq(corio__wire_open(key, 5, frame, n, 1024, &f), -1,
                     "bit %zu", i);
        frame[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    corio__wire_mac_free(key);
}

/* ---- A live manager -------------------------------------------------------------- */

struct raw {
    corio_stream *s;
    struct corio__wire_mac *tx, *rx;
};

static int raw_open(struct raw *r, const char *addr)
{
    uint8_t tx[32], rx[32];
    uint32_t max_frame;

    r->s = corio_stream_connect(addr, corio_now() + 5 * CORIO_SECOND);
    if (r->s == NULL ||
        corio__auth_client(r->s, KEY, 3, tx, rx, &max_frame,
                           corio_now() + 5 * CORIO_SECOND) == -1)
        return -1;
    r->tx = corio__wire_mac_new(tx);
    r->rx = corio__wire_mac_new(rx);
    return 0;
}

static void raw_close(struct raw *r)
{
    corio__wire_mac_free(r->tx);
    corio__wire_mac_free(r->rx);
    corio_stream_close(r->s);
}

static int raw_send(struct raw *r, const uint8_t *p, size_t n)
{
    if (corio_stream_write(r->s, p, n) == -1)
        return -1;
    return corio_stream_drain(r->s, corio_now() + 5 * CORIO_SECOND);
}

/* A SIZE request for "q", sealed with seq. */
static size_t size_frame(struct raw *r, uint64_t seq, uint32_t rid,
                         uint8_t *out)
{
    uint8_t p[2] = {1, 'q'};

    return seal(r->tx, seq, rid, CORIO__OP_SIZE, p, sizeof(p), out);
}

/* Read one reply (seq: its number); 0 if it is an OK reply to rid. */
static int raw_reply(struct raw *r, uint64_t seq, uint32_t rid)
{
    uint8_t buf[256];
    struct corio__wire_frame f;
    size_t len;
    int64_t dl = corio_now() + 5 * CORIO_SECOND;

    if (corio_stream_readexactly(r->s, buf, CORIO__WIRE_HEADER, dl) == -1)
        return -1;
    len = (size_t)buf[2] << 8 | buf[3];
    if (len > 100 || corio_stream_readexactly(r->s, buf + CORIO__WIRE_HEADER,
                                              len + CORIO__WIRE_MAC, dl) == -1)
        return -1;
    if (corio__wire_open(r->rx, seq, buf,
                         CORIO__WIRE_HEADER + len + CORIO__WIRE_MAC, 1024,
                         &f) == -1)
        return -1;
    return f.rid == rid && f.status == CORIO__ST_OK ? 0 : -1;
}

/* The manager closed the connection: reading finds its end, soon. */
static bool raw_closed(struct raw *r)
{
    uint8_t b;
    ssize_t n = corio_stream_read(r->s, &b, 1, corio_now() + 5 * CORIO_SECOND);

    return n == 0 || (n == -1 && errno == ECONNRESET);
}

struct env {
    corio_dist_manager *m;
    char addr[128];
};

static const char *up(struct env *e, size_t max_conns, int64_t auth_timeout)
{
    corio_dist_manager_opts o = {.authkey = KEY, .max_frame = 1024,
                                 .max_connections = max_conns,
                                 .auth_timeout = auth_timeout};

    e->m = corio_dist_manager_start("127.0.0.1:0", &o);
    if (e->m == NULL ||
        corio_dist_manager_addr(e->m, e->addr, sizeof(e->addr)) == -1)
        return "manager";
    return NULL;
}

/* The manager still serves a proper client. */
static bool still_serves(struct env *e)
{
    char url[160];
    corio_dist_opts o = {.authkey = KEY};
    corio_dist *d;
    corio_dist_queue *q;
    bool ok;

    snprintf(url, sizeof(url), "corio://%s", e->addr);
    d = corio_dist_connect(url, &o, corio_now() + 5 * CORIO_SECOND);
    if (d == NULL)
        return false;
    q = corio_dist_queue_new(d, "q");
    ok = q != NULL && corio_dist_queue_size(q, -1) >= 0;
    corio_dist_queue_free(q);
    corio_dist_close(d);
    return ok;
}

enum attack { REPLAY, REORDER, TRUNCATE, OVERSIZE, FORGE, MALFORMED, STATUS };

static void *attack_body(void *arg)
{
    enum attack a = (enum attack)(intptr_t)arg;
    struct env e;
    struct raw r;
    uint8_t f1[128], f2[128], big[CORIO__WIRE_HEADER] = {0};
    size_t n1, n2;

    CHECK(up(&e, 0, 0) == NULL);
    CHECK(raw_open(&r, e.addr) == 0);
    n1 = size_frame(&r, 0, 1, f1);
    CHECK(raw_send(&r, f1, n1) == 0);
    CHECK(raw_reply(&r, 0, 1) == 0);   /* a proper frame is answered */
    switch (a) {
    case REPLAY:
        CHECK(raw_send(&r, f1, n1) == 0);
        break;
    case REORDER:
        n2 = size_frame(&r, 2, 3, f2);   /* seq 2 before seq 1 */
        CHECK(raw_send(&r, f2, n2) == 0);
        break;
    case TRUNCATE:
        n2 = size_frame(&r, 1, 2, f2);
        CHECK(raw_send(&r, f2, n2 - 5) == 0);
        CHECK(corio_stream_shutdown(r.s, -1) == 0);
        break;
    case OVERSIZE:
        corio__wire_put32(big, 1025);
        big[8] = CORIO__OP_PUT;
        CHECK(raw_send(&r, big, sizeof(big)) == 0);
        break;
    case FORGE:
        n2 = size_frame(&r, 1, 2, f2);
        f2[CORIO__WIRE_HEADER + 1] ^= 1;   /* another queue name */
        CHECK(raw_send(&r, f2, n2) == 0);
        break;
    case MALFORMED: {
        uint8_t p[3] = {5, 'q', 'x'};   /* a name longer than its bytes */

        n2 = seal(r.tx, 1, 2, CORIO__OP_SIZE, p, sizeof(p), f2);
        CHECK(raw_send(&r, f2, n2) == 0);
        break;
    }
    case STATUS:
        n2 = size_frame(&r, 1, 2, f2);
        f2[9] = CORIO__ST_ENOENT;   /* requests carry no status */
        CHECK(corio__wire_mac_compute(r.tx, 1, f2, n2 - CORIO__WIRE_MAC,
                                      f2 + n2 - CORIO__WIRE_MAC) == 0);
        CHECK(raw_send(&r, f2, n2) == 0);
        break;
    }
    CHECK(raw_closed(&r));
    raw_close(&r);
    CHECK(still_serves(&e));
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_wire, replayed_frame_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)REPLAY);
}

Test(dist_wire, reordered_frame_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)REORDER);
}

Test(dist_wire, truncated_frame_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)TRUNCATE);
}

Test(dist_wire, oversized_frame_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)OVERSIZE);
}

Test(dist_wire, forged_frame_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)FORGE);
}

Test(dist_wire, malformed_request_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)MALFORMED);
}

Test(dist_wire, request_with_status_closes, .timeout = 30)
{
    run_main_no_fd_leak(attack_body, (void *)(intptr_t)STATUS);
}

static void *garbage_body(void *arg)
{
    struct env e;
    struct raw r = {0};
    uint8_t junk[200];

    (void)arg;
    memset(junk, 'x', sizeof(junk));
    CHECK(up(&e, 0, 0) == NULL);
    /* Not the handshake: the manager's hello, then it closes. */
    CHECK((r.s = corio_stream_connect(e.addr, -1)) != NULL);
    CHECK(raw_send(&r, junk, sizeof(junk)) == 0);
    CHECK(corio_stream_readexactly(r.s, junk, 41, corio_now() + 5 * CORIO_SECOND) == 41);
    CHECK(memcmp(junk, "CORIODST", 8) == 0);
    CHECK(raw_closed(&r));
    corio_stream_close(r.s);
    CHECK(still_serves(&e));
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_wire, garbage_handshake_closes, .timeout = 30)
{
    run_main_no_fd_leak(garbage_body, NULL);
}

static void *silent_body(void *arg)
{
    struct env e;
    struct raw r = {0};
    uint8_t hello[41];
    int64_t t0 = corio_now();

    (void)arg;
    CHECK(up(&e, 0, 300 * CORIO_MSEC) == NULL);
    CHECK((r.s = corio_stream_connect(e.addr, -1)) != NULL);
    CHECK(corio_stream_readexactly(r.s, hello, sizeof(hello), -1) == 41);
    /* Says nothing: closed after the time to authenticate. */
    CHECK(raw_closed(&r));
    CHECK((corio_now() - t0) / CORIO_MSEC >= 250);
    CHECK((corio_now() - t0) / CORIO_MSEC < 300 + test_slack_ms() + 2000);
    corio_stream_close(r.s);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_wire, silent_client_closed_after_auth_timeout, .timeout = 30)
{
    run_main_no_fd_leak(silent_body, NULL);
}

static void *limit_body(void *arg)
{
    struct env e;
    corio_stream *held[2];
    struct raw r = {0};
    uint8_t hello[41];

    (void)arg;
    CHECK(up(&e, 2, 0) == NULL);
    for (int i = 0; i < 2; i++) {
        CHECK((held[i] = corio_stream_connect(e.addr, -1)) != NULL);
        CHECK(corio_stream_readexactly(held[i], hello, 41, -1) == 41);
    }
    /* A third is closed at once, without a hello. */
    CHECK((r.s = corio_stream_connect(e.addr, -1)) != NULL);
    CHECK(raw_closed(&r));
    corio_stream_close(r.s);
    corio_stream_close(held[0]);
    corio_stream_close(held[1]);
    /* Their slots come back. */
    CHECK(corio_sleep(100 * CORIO_MSEC) == 0);
    CHECK(still_serves(&e));
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_wire, connection_limit, .timeout = 30)
{
    run_main_no_fd_leak(limit_body, NULL);
}

/* A request bigger than the manager's frame limit (it announces it in the
 * handshake) is EMSGSIZE on the client, before it is sent: the connection
 * stays up. */
static void *too_big_body(void *arg)
{
    struct env e;
    char url[160], big[2000];
    corio_dist_opts o = {.authkey = KEY};
    corio_dist *d;
    corio_dist_queue *q;
    corio_dist_msg m;

    (void)arg;
    memset(big, 'b', sizeof(big));
    CHECK(up(&e, 0, 0) == NULL);
    snprintf(url, sizeof(url), "corio://%s", e.addr);
    CHECK((d = corio_dist_connect(url, &o, corio_now() + 5 * CORIO_SECOND)) != NULL);
    CHECK((q = corio_dist_queue_new(d, "q")) != NULL);
    CHECK(corio_dist_queue_put(q, big, sizeof(big), NULL, -1) == -1 &&
          errno == EMSGSIZE);
    CHECK(corio_dist_queue_put(q, big, 900, NULL, -1) == 0);
    CHECK(corio_dist_queue_get(q, &m, -1) == 0 && m.len == 900);
    corio_dist_msg_clear(&m);
    corio_dist_queue_free(q);
    corio_dist_close(d);
    CHECK(corio_dist_manager_stop(e.m, -1) == 0);
    return NULL;
}

Test(dist_wire, request_over_the_limit_is_emsgsize, .timeout = 30)
{
    run_main_no_fd_leak(too_big_body, NULL);
}
