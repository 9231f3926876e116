/* src/io/tls.c -- TLS on streams with OpenSSL (include/corio/tls.h).
 *
 * A TLS stream is a stream whose transport (io_int.h) is an SSL object over
 * the socket: read and write are SSL_read and SSL_write, which never block
 * here and say what they wait for (WANT_READ, WANT_WRITE); the stream
 * waits and tries again, as over a plain fd. The SSL talks to the socket
 * through a small BIO of our own, so that a write to a closed peer is
 * EPIPE (send with MSG_NOSIGNAL) and never SIGPIPE, and so that the
 * system's errno survives OpenSSL.
 *
 * corio_stream_start_tls swaps a plain stream's transport for a TLS one
 * once the handshake is done; corio_tls_connect and TLS servers are built
 * on it. A context is reference-counted (atomically: one context may serve
 * loops on several threads): each TLS stream and server holds it. */
#include "corio/tls.h"
#include "corio/loop.h"
#include "io_int.h"
#include "../loop/loop_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct corio_tls {
    SSL_CTX *ctx;
    unsigned refs;                  /* atomic */
    bool server;
    bool verify;                    /* a client checks the server */
    unsigned char *alpn;            /* wire format: length-prefixed names */
    size_t alpn_len;
};

struct tls {
    struct corio__transport base;
    SSL *ssl;
    corio_tls *ctx;
    int sys_err;                    /* errno of the BIO's last failure */
    bool eof;                       /* the socket's end was read */
    bool broken;                    /* a fatal error: no close_notify */
    bool notified;                  /* our close_notify is sent */
    char alpn[256];                 /* the chosen protocol, NUL-ended */
};

static _Thread_local char last_error[256];

const char *corio_tls_error(void)
{
    return last_error;
}

/* Note what failed, in words, from OpenSSL's error queue and the peer's
 * certificate check, and clear the queue. */
static void note_error(SSL *ssl, const char *during)
{
    unsigned long e = ERR_peek_last_error();
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (ssl != NULL && v != X509_V_OK && ERR_GET_REASON(e) ==
        SSL_R_CERTIFICATE_VERIFY_FAILED)
        snprintf(last_error, sizeof(last_error),
                 "%s: certificate verify failed: %s", during,
                 X509_verify_cert_error_string(v));
    else if (why != NULL)
        snprintf(last_error, sizeof(last_error), "%s: %s", during, why);
    else if (e != 0)
        snprintf(last_error, sizeof(last_error), "%s: OpenSSL error %lx",
                 during, e);
    else
        snprintf(last_error, sizeof(last_error), "%s: failed", during);
    ERR_clear_error();
}

/* ---- The BIO: the socket, with errno kept --------------------------------- */

static int bio_write(BIO *b, const char *buf, int n)
{
    struct tls *t = BIO_get_data(b);
    ssize_t put = send(t->base.fd, buf, (size_t)n, MSG_NOSIGNAL);

    BIO_clear_retry_flags(b);
    if (put == -1) {
        t->sys_err = errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
    }
    return (int)put;
}

static int bio_read(BIO *b, char *buf, int n)
{
    struct tls *t = BIO_get_data(b);
    ssize_t got = recv(t->base.fd, buf, (size_t)n, 0);

    BIO_clear_retry_flags(b);
    if (got == 0)
        t->eof = true;
    if (got == -1) {
        t->sys_err = errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
    }
    return (int)got;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    if (cmd == BIO_CTRL_EOF) /* an end without close_notify is told apart */
        return ((struct tls *)BIO_get_data(b))->eof;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "corio socket");

    if (m == NULL)
        return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    bio_method = m;
}

/* ---- Contexts ------------------------------------------------------------- */

static void ctx_unref(corio_tls *tls)
{
    if (__atomic_sub_fetch(&tls->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls->alpn);
    free(tls);
}

int corio_tls_free(corio_tls *tls)
{
    if (tls != NULL)
        ctx_unref(tls);
    return 0;
}

corio_tls *corio__tls_ref(corio_tls *tls)
{
    __atomic_add_fetch(&tls->refs, 1, __ATOMIC_RELAXED);
    return tls;
}

bool corio__tls_is_server(const corio_tls *tls)
{
    return tls->server;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1". Returns 0, or -1 with EINVAL (an
 * empty name, or one longer than 255 bytes) or ENOMEM. */
static int alpn_parse(corio_tls *tls, const char *list)
{
    size_t n = strlen(list), at = 0;
    unsigned char *w = malloc(n + 1);
    const char *p = list;

    if (w == NULL)
        return -1;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == 0 || len > 255) {
            free(w);
            snprintf(last_error, sizeof(last_error),
                     "ALPN list \"%s\": empty or too long name", list);
            errno = EINVAL;
            return -1;
        }
        w[at++] = (unsigned char)len;
        memcpy(w + at, p, len);
        at += len;
        if (end == NULL)
            break;
        p = end + 1;
    }
    tls->alpn = w;
    tls->alpn_len = at;
    return 0;
}

/* A server picks the first of its own protocols that the client offers. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    const corio_tls *tls = arg;
    const unsigned char *p = tls->alpn, *pend = p + tls->alpn_len;
    const unsigned char *iend = in + inlen;

    (void)ssl;
    for (; p < pend; p += 1 + *p)
        for (const unsigned char *q = in; q < iend && q + 1 + *q <= iend;
             q += 1 + *q)
            if (*q == *p && memcmp(q + 1, p + 1, *p) == 0) {
                *out = q + 1;
                *outlen = *q;
                return SSL_TLSEXT_ERR_OK;
            }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Fail a context's set-up: errno from a file we cannot read (ENOENT,
 * EACCES), or EPROTO with OpenSSL's reason. */
static int file_failed(const char *what, const char *path)
{
    int err = access(path, R_OK) == -1 ? errno : EPROTO;
    char during[160];

    snprintf(during, sizeof(during), "%s %s", what, path);
    if (err != EPROTO) {
        snprintf(last_error, sizeof(last_error), "%s: %s", during,
                 strerror(err));
        ERR_clear_error();
    } else {
        note_error(NULL, during);
    }
    errno = err;
    return -1;
}

static int ctx_setup(corio_tls *tls, const corio_tls_opts *o)
{
    SSL_CTX *ctx = tls->ctx;
    uint64_t options = SSL_OP_NO_RENEGOTIATION;

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* release buffers: an idle connection holds no 16 KiB record buffers
     * (as nginx; 25 KiB an end instead of 57) */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (o->allow_truncation)
        options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_read_ahead(ctx, 1); /* fewer recv calls per record */

    if ((o->cert_file == NULL) != (o->key_file == NULL) ||
        (tls->server && o->cert_file == NULL)) {
        snprintf(last_error, sizeof(last_error), "%s",
                 tls->server ? "a TLS server needs cert_file and key_file"
                             : "cert_file and key_file go together");
        errno = EINVAL;
        return -1;
    }
    if (o->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
            return file_failed("certificate", o->cert_file);
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file,
                                        SSL_FILETYPE_PEM) != 1)
            return file_failed("private key", o->key_file);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return file_failed("private key", o->key_file);
    }

    if (tls->server && o->ca_file != NULL) { /* mutual TLS */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);

        if (names == NULL ||
            SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return file_failed("CA file", o->ca_file);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                                    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else if (!tls->server && tls->verify) {
        if (o->ca_file != NULL) {
            if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
                return file_failed("CA file", o->ca_file);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            note_error(NULL, "the system's trust store");
            errno = EPROTO;
            return -1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }

    if (o->alpn != NULL) {
        if (alpn_parse(tls, o->alpn) == -1)
            return -1;
        if (tls->server)
            SSL_CTX_set_alpn_select_cb(ctx, alpn_select, tls);
        else if (SSL_CTX_set_alpn_protos(ctx, tls->alpn,
                                         (unsigned)tls->alpn_len) != 0) {
            errno = ENOMEM;
            return -1;
        }
    }
    return 0;
}

static corio_tls *ctx_new(const corio_tls_opts *opts, bool server)
{
    static const corio_tls_opts none;
    const corio_tls_opts *o = opts != NULL ? opts : &none;
    corio_tls *tls = calloc(1, sizeof(*tls));
    int err;

    if (tls == NULL)
        return NULL;
    tls->refs = 1;
    tls->server = server;
    tls->verify = !o->no_verify;
    tls->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (tls->ctx == NULL) {
        note_error(NULL, "SSL_CTX_new");
        free(tls);
        errno = ENOMEM;
        return NULL;
    }
    if (ctx_setup(tls, o) == -1) {
        err = errno;
        ctx_unref(tls);
        errno = err;
        return NULL;
    }
    return tls;
}

corio_tls *corio_tls_client(const corio_tls_opts *opts)
{
    return ctx_new(opts, false);
}

corio_tls *corio_tls_server(const corio_tls_opts *opts)
{
    return ctx_new(opts, true);
}

/* ---- The transport -------------------------------------------------------- */

static const struct corio__transport_ops tls_ops;

/* After an SSL call returned r <= 0: -1 with errno EAGAIN and *want when it
 * must wait, 0 at a clean end (close_notify), -1 with the failure's errno
 * otherwise (the connection is broken then). */
static ssize_t ssl_result(struct tls *t, int r, const char *during,
                          unsigned *want)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *want = CORIO_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = CORIO_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        t->broken = true;
        ERR_clear_error();
        if (t->sys_err != 0) {
            snprintf(last_error, sizeof(last_error), "%s: %s", during,
                     strerror(t->sys_err));
            errno = t->sys_err;
            return -1;
        }
        break; /* an end of stream where a record was due */
    default:
        t->broken = true;
        if (ERR_GET_REASON(ERR_peek_last_error()) !=
            SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            note_error(t->ssl, during);
            errno = EPROTO;
            return -1;
        }
        ERR_clear_error();
        break;
    }
    snprintf(last_error, sizeof(last_error),
             "%s: the peer closed the connection without close_notify",
             during);
    errno = ECONNRESET;
    return -1;
}

static ssize_t tls_read(struct corio__transport *base, void *buf, size_t n,
                        unsigned *want)
{
    struct tls *t = (struct tls *)base;
    size_t got;
    int r;

    t->sys_err = 0;
    ERR_clear_error(); /* SSL_get_error reads the thread's queue */
    r = SSL_read_ex(t->ssl, buf, n, &got);
    return r == 1 ? (ssize_t)got : ssl_result(t, r, "TLS read", want);
}

static ssize_t tls_write(struct corio__transport *base, const void *buf,
                         size_t n, unsigned *want)
{
    struct tls *t = (struct tls *)base;
    size_t put;
    ssize_t rc;
    int r;

    t->sys_err = 0;
    ERR_clear_error(); /* SSL_get_error reads the thread's queue */
    r = SSL_write_ex(t->ssl, buf, n, &put);
    if (r == 1)
        return (ssize_t)put;
    rc = ssl_result(t, r, "TLS write", want);
    if (rc == 0) {
        errno = EPIPE;
        rc = -1;
    }
    return rc;
}

static int tls_wait(struct corio__transport *base, unsigned events,
                    int64_t deadline)
{
    /* SSL_ERROR_WANT_* come after the BIO's EAGAIN: no need to poll */
    return corio__wait_fd(base->fd, events, deadline, true);
}

static int tls_shutdown(struct corio__transport *base, unsigned *want)
{
    struct tls *t = (struct tls *)base;
    int r;

    if (!t->broken && !t->notified) {
        t->sys_err = 0;
        ERR_clear_error();
        r = SSL_shutdown(t->ssl); /* 0: close_notify sent; again if it
                                     could not be written yet */
        if (r < 0) {
            if (ssl_result(t, r, "TLS shutdown", want) == 0)
                errno = EPIPE;
            return -1;
        }
        t->notified = true;
    }
    *want = CORIO_WRITE;
    return shutdown(base->fd, SHUT_WR);
}

static void tls_free(struct tls *t)
{
    SSL_free(t->ssl);
    ctx_unref(t->ctx);
    free(t);
}

static int tls_close(struct corio__transport *base)
{
    struct tls *t = (struct tls *)base;
    int fd = base->fd;

    /* a close_notify if the socket takes it now; closing does not wait */
    if (!t->broken && !t->notified)
        SSL_shutdown(t->ssl);
    ERR_clear_error();
    tls_free(t);
    return corio_fd_close(fd);
}

static const struct corio__transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .wait = tls_wait,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

static bool is_ip(const char *name)
{
    unsigned char a[16];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Name the server for a client: SNI for a host name, and what its
 * certificate must match when verifying. Returns 0, or -1 with EINVAL (a
 * name OpenSSL refuses, e.g. longer than 255 bytes). */
static int tls_name(SSL *ssl, const corio_tls *ctx, const char *name)
{
    int ok = 1;

    if (name == NULL)
        return 0;
    if (is_ip(name)) {
        ok = !ctx->verify || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                           name) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name) == 1 &&
             (!ctx->verify || SSL_set1_host(ssl, name) == 1);
    }
    if (!ok) {
        snprintf(last_error, sizeof(last_error),
                 "TLS: \"%.200s\" is not a server name", name);
        ERR_clear_error();
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* A TLS transport over fd, before its handshake. NULL with errno. */
static struct tls *tls_new(corio_tls *ctx, int fd, const char *server_name)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct tls *t;
    BIO *bio;

    pthread_once(&once, bio_method_init);
    t = bio_method != NULL ? calloc(1, sizeof(*t)) : NULL;
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    t->base.ops = &tls_ops;
    t->base.fd = fd;
    t->ssl = SSL_new(ctx->ctx);
    bio = BIO_new(bio_method);
    if (t->ssl == NULL || bio == NULL) {
        note_error(NULL, "TLS set-up");
        BIO_free(bio);
        SSL_free(t->ssl);
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (tls_name(t->ssl, ctx, server_name) == -1) {
            SSL_free(t->ssl);
            free(t);
            return NULL;
        }
    }
    t->ctx = corio__tls_ref(ctx);
    return t;
}

/* Run the handshake, waiting on the socket. Returns 0 or -1 with errno. */
static int handshake(struct tls *t, int64_t deadline)
{
    for (;;) {
        unsigned want = CORIO_READ;
        int r;

        t->sys_err = 0;
    ERR_clear_error(); /* SSL_get_error reads the thread's queue */
        r = SSL_do_handshake(t->ssl);
        if (r == 1)
            return 0;
        if (ssl_result(t, r, "TLS handshake", &want) == 0) {
            snprintf(last_error, sizeof(last_error),
                     "TLS handshake: the peer closed the connection");
            errno = ECONNRESET;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -1;
        if (corio__wait_fd(t->base.fd, want, deadline, true) == -1)
            return -1;
    }
}

int corio_stream_start_tls(corio_stream *s, corio_tls *tls,
                           const char *server_name, int64_t deadline)
{
    struct tls *t;
    const unsigned char *alpn;
    unsigned alpn_len;
    int rc, err;

    if (s == NULL || tls == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (s->closed) {
        errno = EBADF;
        return -1;
    }
    if (s->busy > 0 || s->reading) {
        errno = EBUSY;
        return -1;
    }
    if (s->t->ops != &corio__transport_fd || s->rend > s->rpos ||
        (!tls->server && tls->verify && server_name == NULL)) {
        snprintf(last_error, sizeof(last_error), "start_tls: %s",
                 s->t->ops != &corio__transport_fd ? "TLS already"
                 : s->rend > s->rpos ? "bytes are buffered for reading"
                                     : "no server name to verify");
        errno = EINVAL;
        return -1;
    }
    t = tls_new(tls, s->t->fd, server_name); /* EINVAL: nothing changed */
    if (t == NULL)
        return -1;
    corio__stream_enter(s); /* open: checked above */
    s->reading = true;
    rc = corio__stream_drain_to(s, 0, deadline);
    if (rc == 0) {
        s->werr = EBUSY; /* writes wait for the handshake */
        rc = handshake(t, deadline);
    }
    err = errno;
    if (s->closed) {
        tls_free(t); /* the stream's close closed the fd */
        err = EBADF;
        rc = -1;
    } else if (rc == 0) {
        s->t = &t->base;
        s->werr = 0;
        SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
        if (alpn != NULL)
            memcpy(t->alpn, alpn, alpn_len);
        t->alpn[alpn != NULL ? alpn_len : 0] = 0;
    } else {
        tls_free(t);
        shutdown(s->t->fd, SHUT_RDWR); /* reads end, writes fail */
        s->werr = err;
    }
    s->reading = false;
    errno = err;
    return (int)corio__stream_leave(s, rc);
}

/* The host part of "host:port", "[v6]:port" into buf. NULL if none. */
static const char *host_of(const char *addr, char *buf, size_t size)
{
    const char *colon = strrchr(addr, ':');
    size_t len;

    if (strncmp(addr, "unix:", 5) == 0 || colon == NULL || colon == addr)
        return NULL;
    if (addr[0] == '[' && colon[-1] == ']') {
        addr++;
        colon--;
    }
    len = (size_t)(colon - addr);
    if (len >= size)
        return NULL;
    memcpy(buf, addr, len);
    buf[len] = 0;
    return buf;
}

corio_stream *corio_tls_connect(corio_tls *tls, const char *addr,
                                int64_t deadline)
{
    char host[256];
    const char *name;
    corio_stream *s;
    int err;

    if (tls == NULL || addr == NULL || tls->server) {
        errno = EINVAL;
        return NULL;
    }
    name = host_of(addr, host, sizeof(host));
    if (name == NULL && tls->verify) {
        snprintf(last_error, sizeof(last_error),
                 "%s: no host name to verify the certificate for", addr);
        errno = EINVAL;
        return NULL;
    }
    s = corio_stream_connect(addr, deadline);
    if (s == NULL)
        return NULL;
    if (corio_stream_start_tls(s, tls, name, deadline) == -1) {
        err = errno;
        corio_stream_close(s);
        errno = err;
        return NULL;
    }
    return s;
}

/* ---- About a stream ------------------------------------------------------- */

static const struct tls *tls_of(const corio_stream *s)
{
    if (s == NULL || s->closed || s->t->ops != &tls_ops)
        return NULL;
    return (const struct tls *)s->t;
}

const char *corio_tls_alpn(const corio_stream *s)
{
    const struct tls *t = tls_of(s);

    return t != NULL && t->alpn[0] != 0 ? t->alpn : NULL;
}

const char *corio_tls_server_name(const corio_stream *s)
{
    const struct tls *t = tls_of(s);

    return t != NULL ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name)
                     : NULL;
}

const char *corio_tls_version(const corio_stream *s)
{
    const struct tls *t = tls_of(s);

    return t != NULL ? SSL_get_version(t->ssl) : NULL;
}
