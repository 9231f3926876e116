/* src/http/multipart.c -- multipart/form-data read as a stream: parts one
 * after the other, each part's data read in pieces or saved to a file,
 * never the whole body in memory. The body is read through
 * corio__http_body_read into a window of the request's own; the boundary
 * ("\r\n--" boundary) is searched there, keeping back the bytes that may
 * be the start of one. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "http_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WINDOW 16384

struct corio__http_multipart {
    char delim[80];         /* "\r\n--" boundary */
    size_t dlen;
    char *buf;              /* the window: [pos, end) unread */
    size_t pos, end;
    bool eof;               /* the body is all in the window */
    bool in_part;           /* data of a part is being read */
    bool done;              /* the closing delimiter was seen */
    corio_http_headers *headers;
    char *name, *filename, *type;
};

void corio__http_multipart_free(struct corio__http_multipart *mp)
{
    if (mp == NULL)
        return;
    corio_http_headers_free(mp->headers);
    free(mp->buf);
    free(mp->name);
    free(mp->filename);
    free(mp->type);
    free(mp);
}

/* The boundary parameter of a multipart/form-data Content-Type. */
static int boundary_of(const char *ct, char *out, size_t size)
{
    const char *b;
    size_t n;

    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
        (b = strcasestr(ct, "boundary=")) == NULL)
        return -1;
    b += 9;
    if (*b == '"') {
        b++;
        n = strcspn(b, "\"");
    } else {
        n = strcspn(b, "; \t");
    }
    if (n == 0 || n > 70 || n + 1 > size)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

/* Read more of the body into the window. 0, or -1 with errno. */
static int more(corio_http_request *req, struct corio__http_multipart *mp,
                int64_t deadline)
{
    ssize_t got;

    if (mp->eof)
        return 0;
    if (mp->pos > 0) {
        memmove(mp->buf, mp->buf + mp->pos, mp->end - mp->pos);
        mp->end -= mp->pos;
        mp->pos = 0;
    }
    got = corio__http_body_read(req->c, mp->buf + mp->end, WINDOW - mp->end,
                                deadline);
    if (got < 0)
        return -1;
    if (got == 0)
        mp->eof = true;
    mp->end += (size_t)got;
    return 0;
}

static struct corio__http_multipart *mp_open(corio_http_request *req)
{
    struct corio__http_multipart *mp;
    char b[72];

    if (req->mp != NULL)
        return req->mp;
    if (boundary_of(corio_http_request_header(req, "Content-Type"), b,
                    sizeof(b)) == -1) {
        errno = EBADMSG;
        return NULL;
    }
    mp = calloc(1, sizeof(*mp));
    if (mp == NULL || (mp->buf = malloc(WINDOW)) == NULL ||
        (mp->headers = corio_http_headers_new()) == NULL) {
        corio__http_multipart_free(mp);
        return NULL;
    }
    /* the first delimiter has no CRLF before it: pretend one came */
    mp->dlen = (size_t)snprintf(mp->delim, sizeof(mp->delim), "\r\n--%s", b);
    mp->buf[0] = '\r';
    mp->buf[1] = '\n';
    mp->end = 2;
    mp->in_part = true; /* the preamble is skipped as a part's data */
    req->mp = mp;
    return mp;
}

ssize_t corio_http_request_read_part(corio_http_request *req, void *buf,
                                     size_t n, int64_t deadline)
{
    struct corio__http_multipart *mp = req ? req->mp : NULL;

    if (mp == NULL || (buf == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    while (mp->in_part) {
        size_t have = mp->end - mp->pos, safe;
        char *at = memmem(mp->buf + mp->pos, have, mp->delim, mp->dlen);

        if (at != NULL) {
            safe = (size_t)(at - (mp->buf + mp->pos));
            if (safe == 0) {
                mp->in_part = false; /* the delimiter is next */
                return 0;
            }
        } else {
            /* keep back what may be the start of the delimiter */
            safe = have > mp->dlen ? have - mp->dlen : 0;
        }
        if (safe > 0) {
            if (safe > n)
                safe = n;
            memcpy(buf, mp->buf + mp->pos, safe);
            mp->pos += safe;
            return (ssize_t)safe;
        }
        if (mp->eof) {
            errno = EBADMSG; /* the body ended inside a part */
            return -1;
        }
        if (n == 0)
            return 0;
        if (more(req, mp, deadline) == -1)
            return -1;
    }
    return 0;
}

/* Read a line of the part's head (up to CRLF) from the window. */
static int head_line(corio_http_request *req, struct corio__http_multipart *mp,
                     char **line, size_t *len, int64_t deadline)
{
    for (;;) {
        char *crlf = memmem(mp->buf + mp->pos, mp->end - mp->pos, "\r\n", 2);

        if (crlf != NULL) {
            *line = mp->buf + mp->pos;
            *len = (size_t)(crlf - *line);
            mp->pos += *len + 2;
            return 0;
        }
        if (mp->eof || (mp->pos == 0 && mp->end == WINDOW)) {
            errno = EBADMSG;
            return -1;
        }
        if (more(req, mp, deadline) == -1)
            return -1;
    }
}

/* A parameter of Content-Disposition (name="x"), copied, or NULL. */
static char *disposition_param(const char *v, const char *param)
{
    size_t plen = strlen(param);

    for (const char *p = v; (p = strcasestr(p, param)) != NULL; p += plen) {
        const char *val;
        size_t n;

        if ((p != v && p[-1] != ';' && p[-1] != ' ') || p[plen] != '=')
            continue;
        val = p + plen + 1;
        if (*val == '"') {
            val++;
            n = strcspn(val, "\"");
        } else {
            n = strcspn(val, "; ");
        }
        return strndup(val, n);
    }
    return NULL;
}

int corio_http_request_next_part(corio_http_request *req, corio_http_part *part,
                                 int64_t deadline)
{
    struct corio__http_multipart *mp;
    char skip[4096], *line;
    size_t len;
    ssize_t got;

    if (req == NULL || part == NULL) {
        errno = EINVAL;
        return -1;
    }
    mp = mp_open(req);
    if (mp == NULL)
        return -1;
    if (mp->done)
        return 0;
    while ((got = corio_http_request_read_part(req, skip, sizeof(skip), deadline)) > 0)
        ;
    if (got < 0)
        return -1;
    /* at the delimiter: "--" ends the body, CRLF starts a part */
    while (mp->end - mp->pos < mp->dlen + 2) {
        if (mp->eof) {
            errno = EBADMSG;
            return -1;
        }
        if (more(req, mp, deadline) == -1)
            return -1;
    }
    mp->pos += mp->dlen;
    if (memcmp(mp->buf + mp->pos, "--", 2) == 0) {
        mp->done = true;
        return 0;
    }
    if (memcmp(mp->buf + mp->pos, "\r\n", 2) != 0) {
        errno = EBADMSG;
        return -1;
    }
    mp->pos += 2;
    corio_http_headers_clear(mp->headers);
    for (;;) {
        const char *colon;

        if (head_line(req, mp, &line, &len, deadline) == -1)
            return -1;
        if (len == 0)
            break;
        colon = memchr(line, ':', len);
        if (colon == NULL ||
            corio_http_headers_add_n(mp->headers, line, (size_t)(colon - line),
                                     colon + 1, len - (size_t)(colon - line) - 1) == -1 ||
            corio_http_headers_count(mp->headers) > 32) {
            errno = EBADMSG;
            return -1;
        }
    }
    free(mp->name);
    free(mp->filename);
    free(mp->type);
    {
        const char *cd = corio_http_headers_get(mp->headers, "Content-Disposition");
        const char *ct = corio_http_headers_get(mp->headers, "Content-Type");

        mp->name = cd ? disposition_param(cd, "name") : NULL;
        mp->filename = cd ? disposition_param(cd, "filename") : NULL;
        mp->type = strdup(ct ? ct : "text/plain");
        if (mp->name == NULL)
            mp->name = strdup("");
    }
    if (mp->name == NULL || mp->type == NULL)
        return -1;
    mp->in_part = true;
    part->name = mp->name;
    part->filename = mp->filename;
    part->content_type = mp->type;
    part->headers = mp->headers;
    return 1;
}

ssize_t corio_http_request_save_part(corio_http_request *req, const char *path,
                                     int64_t deadline)
{
    char buf[16384];
    ssize_t got, total = 0;
    int fd, err;

    if (req == NULL || req->mp == NULL || path == NULL) {
        errno = EINVAL;
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    while ((got = corio_http_request_read_part(req, buf, sizeof(buf), deadline)) > 0) {
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(fd, buf + off, (size_t)(got - off));

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                goto fail;
            off += w;
        }
        total += got;
    }
    if (got < 0)
        goto fail;
    if (close(fd) == -1) {
        fd = -1;
        goto fail;
    }
    return total;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    unlink(path);
    errno = err;
    return -1;
}
