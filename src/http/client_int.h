/* src/http/client_int.h -- the client's internals shared by its files:
 * URLs (url.c), the cookie jar (cookie.c), body decoding (inflate.c). */
#ifndef CORIO_HTTP_CLIENT_INT_H
#define CORIO_HTTP_CLIENT_INT_H

#include "corio/http_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* ---- URLs ------------------------------------------------------------------ */

/* An absolute http(s) URL, split. Every string points into buf. */
struct corio__url {
    char *buf;
    bool https;
    const char *host;       /* name or address, without brackets */
    const char *port;       /* decimal */
    const char *target;     /* "/path?query" (fragment dropped) */
    const char *authority;  /* "host[:port]" for Host (port if not default) */
    const char *origin;     /* "http[s]://host:port", the pool's key */
    const char *text;       /* the whole URL, normalised */
};

/* Parse text. Returns 0, or -1 with errno EINVAL (not http or https, no
 * host, a port out of range, user info, a space or control byte) or
 * ENOMEM. query (may be NULL): name, value, ..., NULL, percent-encoded and
 * appended. */
int corio__url_parse(struct corio__url *u, const char *text,
                     const char *const *query);
void corio__url_free(struct corio__url *u);

/* The absolute URL that ref (a Location: absolute, //host/x, /x, x, ?q)
 * names relative to base; malloc'd, or NULL with errno ENOMEM. */
char *corio__url_resolve(const struct corio__url *base, const char *ref);

/* ---- Cookie jar ------------------------------------------------------------ */

struct corio__cookie;

struct corio__jar {
    struct corio__cookie *list;
};

/* Store the cookie of one Set-Cookie value received from u (a bad one is
 * ignored, as browsers do). Returns 0, or -1 with ENOMEM. */
int corio__jar_store(struct corio__jar *jar, const struct corio__url *u,
                     const char *set_cookie);

/* The Cookie header value for a request to u ("a=1; b=2"), malloc'd, or
 * NULL: no cookie to send (errno 0), or ENOMEM. */
char *corio__jar_header(struct corio__jar *jar, const struct corio__url *u);

/* The value of name that a request to u would send, or NULL. */
const char *corio__jar_get(struct corio__jar *jar, const struct corio__url *u,
                           const char *name);

void corio__jar_free(struct corio__jar *jar);

/* ---- Content decoding ------------------------------------------------------ */

struct corio__inflate {
    z_stream z;
    bool on, raw_tried, ended;
    int windowbits;
};

/* Set up for Content-Encoding value enc: 1 (gzip or deflate: decode), 0
 * (identity or none: pass through), -1 with errno EPROTO (an unknown
 * coding) or ENOMEM. */
int corio__inflate_init(struct corio__inflate *d, const char *enc);

/* Decode *in_len bytes of in into out (room out_len). Returns the bytes
 * written (0 is possible: more input needed), *in_len receives the bytes
 * taken; -1 with errno EPROTO (corrupt data). d->ended once the stream's
 * end was seen. */
ssize_t corio__inflate_run(struct corio__inflate *d, const char *in,
                           size_t *in_len, char *out, size_t out_len);
void corio__inflate_free(struct corio__inflate *d);

#endif
