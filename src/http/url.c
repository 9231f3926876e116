/* src/http/url.c -- the client's URLs: split an absolute http(s) URL,
 * append an encoded query, resolve a redirect's Location against it
 * (RFC 3986 section 5.2, with its dot-segment removal). */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Percent-encode s onto out (which has room: 3 bytes per byte). */
static char *encode(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (unreserved(c)) {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

static int bad(void)
{
    errno = EINVAL;
    return -1;
}

int corio__url_parse(struct corio__url *u, const char *text,
                     const char *const *query)
{
    const char *p, *host, *host_end, *port = NULL, *port_end = NULL, *rest;
    size_t hlen, plen, tlen, qlen = 0, size;
    char *b, portbuf[8];
    bool bracket = false;
    long portnum;

    memset(u, 0, sizeof(*u));
    if (text == NULL)
        return bad();
    for (p = text; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return bad();
    if (strncasecmp(text, "http://", 7) == 0) {
        host = text + 7;
    } else if (strncasecmp(text, "https://", 8) == 0) {
        host = text + 8;
        u->https = true;
    } else {
        return bad();
    }
    rest = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(rest - host)) != NULL)
        return bad(); /* user info: credentials in URLs are refused */
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(rest - host));
        if (host_end == NULL)
            return bad();
        host++;
        bracket = true;
        p = host_end + 1;
    } else {
        host_end = memchr(host, ':', (size_t)(rest - host));
        if (host_end == NULL)
            host_end = rest;
        p = host_end;
    }
    if (p < rest) {
        if (*p != ':')
            return bad();
        port = p + 1;
        port_end = rest;
    }
    hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen > 255)
        return bad();
    for (size_t i = 0; i < hlen; i++)
        if (strchr("/\\%<>\"{}|^`", host[i]) != NULL ||
            (!bracket && host[i] == ':'))
            return bad();
    if (port != NULL) {
        char *end;

        if (port == port_end || port_end - port > 5)
            return bad();
        for (const char *q = port; q < port_end; q++)
            if (*q < '0' || *q > '9')
                return bad();
        portnum = strtol(port, &end, 10);
        if (portnum < 1 || portnum > 65535)
            return bad();
    } else {
        portnum = u->https ? 443 : 80;
    }
    snprintf(portbuf, sizeof(portbuf), "%ld", portnum);
    plen = strlen(portbuf);
    tlen = strcspn(rest, "#");
    for (const char *const *q = query; q != NULL && *q != NULL; q += 2) {
        if (q[1] == NULL)
            return bad(); /* a name without its value */
        qlen += 3 * (strlen(q[0]) + strlen(q[1])) + 2;
    }
    /* host, port, target, authority, origin, text: each NUL-ended */
    size = hlen + 1 + plen + 1 + (tlen + qlen + 2) + (hlen + plen + 4) +
           (8 + hlen + 3 + plen + 1) * 2 + tlen + qlen + 2;
    b = malloc(size);
    if (b == NULL)
        return -1;
    u->buf = b;
    memcpy(b, host, hlen);
    b[hlen] = '\0';
    u->host = b;
    b += hlen + 1;
    memcpy(b, portbuf, plen + 1);
    u->port = b;
    b += plen + 1;
    u->target = b;
    if (tlen == 0 || rest[0] != '/')
        *b++ = '/';
    memcpy(b, rest, tlen);
    b += tlen;
    if (qlen > 0) {
        bool first = memchr(u->target, '?', (size_t)(b - u->target)) == NULL;

        for (const char *const *q = query; *q != NULL; q += 2) {
            *b++ = first ? '?' : '&';
            first = false;
            b = encode(b, q[0]);
            *b++ = '=';
            b = encode(b, q[1]);
        }
    }
    *b++ = '\0';
    u->authority = b;
    b += sprintf(b, bracket ? "[%s]" : "%s", u->host);
    if (port != NULL && portnum != (u->https ? 443 : 80))
        b += sprintf(b, ":%s", u->port);
    b++;
    u->origin = b;
    b += sprintf(b, bracket ? "%s://[%s]:%s" : "%s://%s:%s",
                 u->https ? "https" : "http", u->host, u->port) + 1;
    u->text = b;
    sprintf(b, "%s://%s%s", u->https ? "https" : "http", u->authority,
            u->target);
    return 0;
}

void corio__url_free(struct corio__url *u)
{
    free(u->buf);
    u->buf = NULL;
}

/* Remove "." and ".." segments from path (in place; RFC 3986 5.2.4). */
static void remove_dots(char *path)
{
    char *in = path, *out = path;

    while (*in) {
        if (strncmp(in, "../", 3) == 0) {
            in += 3;
        } else if (strncmp(in, "./", 2) == 0) {
            in += 2;
        } else if (strncmp(in, "/./", 3) == 0) {
            in += 2;
        } else if (strcmp(in, "/.") == 0) {
            in[1] = '\0';
        } else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
            in += 3;
            if (*in == '\0')
                *--in = '/';
            else
                *in = '/'; /* "/../x": continue at "/x" */
            while (out > path && *--out != '/')
                ;
            *out = '\0';
        } else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
            break;
        } else {
            do
                *out++ = *in++;
            while (*in && *in != '/');
        }
    }
    *out = '\0';
}

char *corio__url_resolve(const struct corio__url *base, const char *ref)
{
    const char *scheme = base->https ? "https:" : "http:";
    size_t rlen = strlen(ref), size;
    char *out, *path, *q;
    const char *bq;

    if (strncasecmp(ref, "http://", 7) == 0 ||
        strncasecmp(ref, "https://", 8) == 0)
        return strdup(ref);
    if (ref[0] == '/' && ref[1] == '/') {
        out = malloc(strlen(scheme) + rlen + 1);
        if (out != NULL)
            sprintf(out, "%s%s", scheme, ref);
        return out;
    }
    size = strlen(base->text) + rlen + 2;
    out = malloc(size);
    if (out == NULL)
        return NULL;
    path = out + sprintf(out, "%s//%s", scheme, base->authority);
    if (ref[0] == '/') {
        strcpy(path, ref);
    } else if (ref[0] == '?' || ref[0] == '\0') {
        bq = base->target + strcspn(base->target, "?");
        memcpy(path, base->target, (size_t)(bq - base->target));
        strcpy(path + (bq - base->target), ref[0] ? ref : bq);
    } else {
        /* merge: the base's path up to its last '/', then ref */
        bq = base->target + strcspn(base->target, "?");
        while (bq > base->target && bq[-1] != '/')
            bq--;
        memcpy(path, base->target, (size_t)(bq - base->target));
        strcpy(path + (bq - base->target), ref);
    }
    q = path + strcspn(path, "?#");
    {
        char save = *q;

        *q = '\0';
        remove_dots(path);
        if (save != '\0') {
            size_t pl = strlen(path);

            *(path + pl) = save;
            memmove(path + pl + 1, q + 1, strlen(q + 1) + 1);
        }
    }
    if (path[0] == '\0') {
        memmove(path + 1, path, strlen(path) + 1);
        path[0] = '/';
    }
    return out;
}
