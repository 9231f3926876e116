/* include/corio/tls.h -- TLS on streams (OpenSSL). Part of corio.h.
 *
 * A TLS stream is a corio_stream: read, readline, write, drain, shutdown
 * and close work as on plain TCP. A context (corio_tls) holds what the
 * connections share: the role, certificates, the trust store, ALPN. Make
 * one per configuration and reuse it; free it after its streams.
 *
 *     corio_tls *tls = corio_tls_client(NULL);   // system trust store
 *     corio_stream *s = corio_tls_connect(tls, "example.com:443", dl);
 *
 *     corio_tls_opts o = {.cert_file = "cert.pem", .key_file = "key.pem"};
 *     corio_listen_opts l = {.tls = corio_tls_server(&o)};
 *     corio_server *srv = corio_server_start(":8443", &l, handler, NULL);
 *
 * TLS failures (a certificate that does not verify, a protocol error, an
 * alert from the peer) fail the call with EPROTO; corio_tls_error() then
 * tells what happened, in words. A peer that closes the connection
 * without TLS's close_notify makes reads fail with ECONNRESET (a
 * truncation), unless the context allows it (allow_truncation). Built
 * without OpenSSL (a cross build), every call fails with ENOSYS. */
#ifndef CORIO_TLS_H
#define CORIO_TLS_H

#include "corio/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of a context; zero fields take the default. */
typedef struct corio_tls_opts {
    /* A client verifies the server against the system's trust store and
     * the name it connects to. ca_file (PEM) replaces the store; no_verify
     * turns verification off (tests, never production). A server with
     * ca_file asks each client for a certificate and verifies it (mutual
     * TLS); without it, clients are not asked. */
    const char *ca_file;
    bool no_verify;
    /* Certificate chain (PEM, leaf first) and its private key: required
     * for a server, optional for a client (mutual TLS). */
    const char *cert_file;
    const char *key_file;
    /* Application protocols, most preferred first, comma-separated
     * ("h2,http/1.1"): a client offers them, a server picks the first of
     * its own list that the client offers (none: no protocol is chosen,
     * the handshake goes on). corio_tls_alpn tells the outcome. */
    const char *alpn;
    /* A peer's end of connection without close_notify is a plain end of
     * stream (read returns 0) instead of ECONNRESET. */
    bool allow_truncation;
} corio_tls_opts;

/* A client or server context (opts may be NULL for a client). Returns it,
 * or NULL with errno: EINVAL (bad options: a server without cert_file or
 * key_file, a bad ALPN list), ENOENT (a file not found), EPROTO (a file
 * that is not PEM, a key that does not match the certificate: see
 * corio_tls_error), ENOMEM, ENOSYS (built without OpenSSL). */
CORIO_EXPORT corio_tls *corio_tls_client(const corio_tls_opts *opts);
CORIO_EXPORT corio_tls *corio_tls_server(const corio_tls_opts *opts);

/* Free a context: the streams and servers using it keep a reference of
 * their own, so it may be freed while they run. Returns 0;
 * corio_tls_free(NULL) returns 0. */
CORIO_EXPORT int corio_tls_free(corio_tls *tls);

/* Connect to addr (as corio_socket_connect) and do a client handshake, sending
 * the host part of addr as the server name (SNI) and verifying the
 * server's certificate for it. Returns the stream, or NULL with errno
 * (EPROTO: the handshake failed; ETIMEDOUT, ECANCELED, ECONNREFUSED, ...);
 * nothing is left open on failure. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_stream *corio_tls_connect(corio_tls *tls, const char *addr,
                                             int64_t deadline);

/* Turn a plain stream into a TLS one (asyncio's start_tls; STARTTLS): do
 * the handshake of tls's role on s's connection, after sending what s has
 * buffered for writing. server_name: for a client, the name to send and
 * verify the certificate for (an IP address is verified, not sent; NULL
 * only with no_verify); ignored for a server. Returns 0, or -1 with errno:
 * EPROTO (the handshake failed), ETIMEDOUT, ECANCELED, ECONNRESET, EBUSY
 * (another task is in a call on s), EINVAL (s is TLS already, bytes are
 * buffered for reading, or no server_name to verify). After a failure
 * other than EBUSY and EINVAL the connection is shut down: close s. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_stream_start_tls(corio_stream *s, corio_tls *tls,
                                        const char *server_name,
                                        int64_t deadline);

/* About a TLS stream (NULL for a plain one): the protocol ALPN chose
 * (NULL: none), the server name the client sent (SNI; on either side),
 * the TLS version ("TLSv1.3"). Valid while the stream is open. */
CORIO_EXPORT const char *corio_tls_alpn(const corio_stream *s);
CORIO_EXPORT const char *corio_tls_server_name(const corio_stream *s);
CORIO_EXPORT const char *corio_tls_version(const corio_stream *s);

/* What the last TLS failure of this thread was, in words ("certificate
 * verify failed: self-signed certificate"); "" if none yet. Read it right
 * after the failing call, as errno. */
CORIO_EXPORT const char *corio_tls_error(void);

#ifdef __cplusplus
}
#endif
#endif
