/* src/http/inflate.c -- Content-Encoding gzip and deflate for the client's
 * bodies (zlib). "deflate" is meant to be zlib-wrapped (RFC 9110 8.4.1.2),
 * but some servers send raw deflate: a stream whose first bytes are not a
 * zlib header is decoded raw, as browsers and aiohttp do. */
#include "client_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

int corio__inflate_init(struct corio__inflate *d, const char *enc)
{
    memset(d, 0, sizeof(*d));
    while (enc != NULL && (*enc == ' ' || *enc == '\t'))
        enc++;
    if (enc == NULL || *enc == '\0' || strcasecmp(enc, "identity") == 0)
        return 0;
    if (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0)
        d->windowbits = 16 + MAX_WBITS;
    else if (strcasecmp(enc, "deflate") == 0)
        d->windowbits = MAX_WBITS;
    else {
        errno = EPROTO; /* a coding we cannot undo (br, compress, a list) */
        return -1;
    }
    if (inflateInit2(&d->z, d->windowbits) != Z_OK) {
        errno = ENOMEM;
        return -1;
    }
    d->on = true;
    return 1;
}

ssize_t corio__inflate_run(struct corio__inflate *d, const char *in,
                           size_t *in_len, char *out, size_t out_len)
{
    int rc;
    bool fresh = d->z.total_in == 0;

    if (d->ended) {
        *in_len = 0;
        return 0;
    }
    d->z.next_in = (Bytef *)(uintptr_t)in;
    d->z.avail_in = (uInt)*in_len;
    d->z.next_out = (Bytef *)out;
    d->z.avail_out = (uInt)out_len;
    rc = inflate(&d->z, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR && fresh && d->windowbits == MAX_WBITS &&
        !d->raw_tried) {
        /* not zlib-wrapped: raw deflate */
        d->raw_tried = true;
        if (inflateReset2(&d->z, -MAX_WBITS) != Z_OK) {
            errno = EPROTO;
            return -1;
        }
        return corio__inflate_run(d, in, in_len, out, out_len);
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        errno = EPROTO;
        return -1;
    }
    if (rc == Z_STREAM_END)
        d->ended = true;
    *in_len -= d->z.avail_in;
    return (ssize_t)(out_len - d->z.avail_out);
}

void corio__inflate_free(struct corio__inflate *d)
{
    if (d->on)
        inflateEnd(&d->z);
    d->on = false;
}
