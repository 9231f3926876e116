/* src/dist/auth.c -- the manager's handshake: a mutual challenge-response
 * with HMAC-SHA256 over the shared authkey, before anything else is read.
 *
 *   server -> client  hello:  "CORIODST" | version u8 | Ns (32 random bytes)
 *   client -> server  answer: "CORIODST" | version u8 | Nc (32) |
 *                             HMAC(key, "corio-dist-v1 client" | Ns | Nc)
 *   server -> client  verdict: 'Y' | HMAC(key, "corio-dist-v1 server F" | Ns | Nc) |
 *                             F (u32: the largest frame it accepts; in
 *                             the proof as decimal text)
 *                          or 'N' | 36 zero bytes (and the server closes)
 *
 * Each side proves it knows the key for the other's fresh nonce, so neither
 * a recorded handshake nor a server without the key passes. Proofs are
 * compared in constant time. The session keys are HMAC(key, label | Ns |
 * Nc) with the labels "c2s" and "s2c": each direction has its own key, so a
 * frame cannot be reflected back to its sender.
 *
 * "key" above is SHA-256(len u32 | authkey), not the authkey itself: HMAC
 * pads a key with zeros, so "abc" and "abc\0" would otherwise be one key. */
#include "wire_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define MAGIC_LEN 8
#define HELLO_LEN (MAGIC_LEN + 1 + CORIO__WIRE_NONCE)
#define ANSWER_LEN (HELLO_LEN + CORIO__WIRE_MAC)
#define VERDICT_LEN (1 + CORIO__WIRE_MAC + 4)

/* The HMAC key of an authkey: SHA-256(len u32 | authkey). */
static int prep_key(const void *authkey, size_t len, uint8_t out[32])
{
    uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8), (uint8_t)len};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned outlen = 0;
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(ctx, n, sizeof(n)) &&
         EVP_DigestUpdate(ctx, authkey, len) &&
         EVP_DigestFinal_ex(ctx, out, &outlen) && outlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* HMAC(key, label | ns | nc) into out. */
static int derive(const void *key, size_t keylen, const char *label,
                  const uint8_t *ns, const uint8_t *nc, uint8_t out[32])
{
    /* (labels are at most 48 bytes: the server's with its number) */
    uint8_t msg[48 + 2 * CORIO__WIRE_NONCE];
    size_t ll = strlen(label);
    unsigned outlen = 0;

    memcpy(msg, label, ll);
    memcpy(msg + ll, ns, CORIO__WIRE_NONCE);
    memcpy(msg + ll + CORIO__WIRE_NONCE, nc, CORIO__WIRE_NONCE);
    if (HMAC(EVP_sha256(), key, (int)keylen, msg, ll + 2 * CORIO__WIRE_NONCE,
             out, &outlen) == NULL ||
        outlen != 32) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static int session_keys(const void *key, size_t keylen, const uint8_t *ns,
                        const uint8_t *nc, bool server, uint8_t tx[32],
                        uint8_t rx[32])
{
    if (derive(key, keylen, "corio-dist-v1 c2s", ns, nc, server ? rx : tx) ==
            -1 ||
        derive(key, keylen, "corio-dist-v1 s2c", ns, nc, server ? tx : rx) ==
            -1)
        return -1;
    return 0;
}

static void hello_header(uint8_t *p)
{
    memcpy(p, CORIO__WIRE_MAGIC, MAGIC_LEN);
    p[MAGIC_LEN] = CORIO__WIRE_VERSION;
}

static bool hello_ok(const uint8_t *p)
{
    return memcmp(p, CORIO__WIRE_MAGIC, MAGIC_LEN) == 0 &&
           p[MAGIC_LEN] == CORIO__WIRE_VERSION;
}

static int send_all(corio_stream *s, const void *p, size_t n, int64_t deadline)
{
    if (corio_stream_write(s, p, n) == -1)
        return -1;
    return corio_stream_drain(s, deadline);
}

/* The stream's end during the handshake means the peer left: EPROTO for
 * the caller, with no partial bytes taken for a proof. */
static int recv_all(corio_stream *s, void *p, size_t n, int64_t deadline)
{
    if (corio_stream_readexactly(s, p, n, deadline) == -1) {
        if (errno == CORIO_EEOF)
            errno = EPROTO;
        return -1;
    }
    return 0;
}

/* The server's proof label, with the frame limit it announces. */
static void server_label(char *buf, size_t size, uint32_t max_frame)
{
    snprintf(buf, size, "corio-dist-v1 server %u", (unsigned)max_frame);
}

static int client_side(corio_stream *s, const void *key, size_t keylen,
                       uint8_t tx[32], uint8_t rx[32], uint32_t *max_frame,
                       int64_t deadline)
{
    char label[48];
    uint8_t hello[HELLO_LEN], answer[ANSWER_LEN], verdict[VERDICT_LEN];
    uint8_t proof[32];
    const uint8_t *ns = hello + MAGIC_LEN + 1;
    uint8_t *nc = answer + MAGIC_LEN + 1;

    if (recv_all(s, hello, sizeof(hello), deadline) == -1)
        return -1;
    if (!hello_ok(hello)) {
        errno = EPROTO;
        return -1;
    }
    hello_header(answer);
    if (RAND_bytes(nc, CORIO__WIRE_NONCE) != 1) {
        errno = EIO;
        return -1;
    }
    if (derive(key, keylen, "corio-dist-v1 client", ns, nc,
               answer + HELLO_LEN) == -1 ||
        send_all(s, answer, sizeof(answer), deadline) == -1)
        return -1;
    if (recv_all(s, verdict, sizeof(verdict), deadline) == -1) {
        /* The server closes at once after a refusal it could not send. */
        if (errno == EPROTO || errno == ECONNRESET)
            errno = EACCES;
        return -1;
    }
    if (verdict[0] != 'Y') {
        errno = verdict[0] == 'N' ? EACCES : EPROTO;
        return -1;
    }
    *max_frame = (uint32_t)verdict[33] << 24 | (uint32_t)verdict[34] << 16 |
                 (uint32_t)verdict[35] << 8 | verdict[36];
    server_label(label, sizeof(label), *max_frame);
    if (derive(key, keylen, label, ns, nc, proof) == -1)
        return -1;
    if (CRYPTO_memcmp(proof, verdict + 1, sizeof(proof)) != 0) {
        /* The server does not know the key. */
        errno = EACCES;
        return -1;
    }
    return session_keys(key, keylen, ns, nc, false, tx, rx);
}

static int server_side(corio_stream *s, const void *key, size_t keylen,
                       uint8_t tx[32], uint8_t rx[32], uint32_t *max_frame,
                       int64_t deadline)
{
    char label[48];
    uint8_t hello[HELLO_LEN], answer[ANSWER_LEN], verdict[VERDICT_LEN] = {0};
    uint8_t proof[32];
    const uint8_t *ns = hello + MAGIC_LEN + 1;
    const uint8_t *nc = answer + MAGIC_LEN + 1;

    hello_header(hello);
    if (RAND_bytes(hello + MAGIC_LEN + 1, CORIO__WIRE_NONCE) != 1) {
        errno = EIO;
        return -1;
    }
    if (send_all(s, hello, sizeof(hello), deadline) == -1 ||
        recv_all(s, answer, sizeof(answer), deadline) == -1)
        return -1;
    if (!hello_ok(answer)) {
        errno = EPROTO;
        return -1;
    }
    if (derive(key, keylen, "corio-dist-v1 client", ns, nc, proof) == -1)
        return -1;
    if (CRYPTO_memcmp(proof, answer + HELLO_LEN, sizeof(proof)) != 0) {
        verdict[0] = 'N';
        (void)send_all(s, verdict, sizeof(verdict), deadline);
        errno = EACCES;
        return -1;
    }
    verdict[0] = 'Y';
    server_label(label, sizeof(label), *max_frame);
    verdict[33] = (uint8_t)(*max_frame >> 24);
    verdict[34] = (uint8_t)(*max_frame >> 16);
    verdict[35] = (uint8_t)(*max_frame >> 8);
    verdict[36] = (uint8_t)*max_frame;
    if (derive(key, keylen, label, ns, nc, verdict + 1) == -1 ||
        send_all(s, verdict, sizeof(verdict), deadline) == -1)
        return -1;
    return session_keys(key, keylen, ns, nc, true, tx, rx);
}

typedef int side_fn(corio_stream *s, const void *key, size_t keylen,
                    uint8_t tx[32], uint8_t rx[32], uint32_t *max_frame,
                    int64_t deadline);

static int with_key(side_fn *side, corio_stream *s, const void *authkey,
                    size_t len, uint8_t tx[32], uint8_t rx[32],
                    uint32_t *max_frame, int64_t deadline)
{
    uint8_t key[32];

    if (prep_key(authkey, len, key) == -1)
        return -1;
    return side(s, key, sizeof(key), tx, rx, max_frame, deadline);
}

int corio__auth_client(corio_stream *s, const void *authkey, size_t len,
                       uint8_t tx[32], uint8_t rx[32], uint32_t *max_frame,
                       int64_t deadline)
{
    return with_key(client_side, s, authkey, len, tx, rx, max_frame,
                    deadline);
}

int corio__auth_server(corio_stream *s, const void *authkey, size_t len,
                       uint8_t tx[32], uint8_t rx[32], uint32_t max_frame,
                       int64_t deadline)
{
    return with_key(server_side, s, authkey, len, tx, rx, &max_frame,
                    deadline);
}
