/* src/http/cookie.c -- the client's cookie jar (RFC 6265, the parts a
 * client session needs): Set-Cookie with Domain, Path, Max-Age, Expires and
 * Secure; host-only cookies; a cookie replaced by name, domain and path;
 * Max-Age <= 0 or a past Expires deletes it; expired cookies are not sent. */
#define _GNU_SOURCE
#include "client_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct corio__cookie {
    struct corio__cookie *next;
    char *name, *value, *domain, *path;
    time_t expires;     /* wall clock; 0: a session cookie */
    bool host_only, secure;
};

static void cookie_free(struct corio__cookie *c)
{
    free(c->name);
    free(c->value);
    free(c->domain);
    free(c->path);
    free(c);
}

/* A copy of s[0..n) without surrounding blanks. */
static char *trimdup(const char *s, size_t n)
{
    char *out;

    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* RFC 6265 5.1.3: host equals domain, or ends with "." domain and is a
 * name (not an address). */
static bool domain_match(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);

    if (strcasecmp(host, domain) == 0)
        return true;
    return h > d && host[h - d - 1] == '.' &&
           strcasecmp(host + h - d, domain) == 0 &&
           strspn(host, "0123456789.") != h && strchr(host, ':') == NULL;
}

/* RFC 6265 5.1.4. */
static bool path_match(const char *req, const char *path)
{
    size_t n = strlen(path);

    if (strncmp(req, path, n) != 0)
        return false;
    return req[n] == '\0' || req[n] == '?' || path[n - 1] == '/' ||
           req[n] == '/';
}

/* The default path: the request path up to its last '/' (5.1.4). */
static char *default_path(const char *target)
{
    size_t n = strcspn(target, "?");

    while (n > 0 && target[n - 1] != '/')
        n--;
    if (n <= 1)
        return strdup("/");
    return trimdup(target, n - 1);
}

int corio__jar_store(struct corio__jar *jar, const struct corio__url *u,
                     const char *sc)
{
    struct corio__cookie *c, **pp;
    const char *semi = sc + strcspn(sc, ";"), *eq, *a;
    bool remove = false;

    eq = memchr(sc, '=', (size_t)(semi - sc));
    if (eq == NULL)
        return 0; /* no name=value: ignored */
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->name = trimdup(sc, (size_t)(eq - sc));
    c->value = trimdup(eq + 1, (size_t)(semi - eq - 1));
    if (c->name == NULL || c->value == NULL)
        goto nomem;
    if (c->name[0] == '\0') {
        cookie_free(c);
        return 0;
    }
    for (a = semi; *a == ';';) {
        const char *end, *aeq;
        size_t nlen;
        char *val;

        a++;
        end = a + strcspn(a, ";");
        aeq = memchr(a, '=', (size_t)(end - a));
        nlen = (size_t)((aeq ? aeq : end) - a);
        while (nlen > 0 && (*a == ' ' || *a == '\t'))
            a++, nlen--;
        while (nlen > 0 && (a[nlen - 1] == ' ' || a[nlen - 1] == '\t'))
            nlen--;
        val = aeq ? trimdup(aeq + 1, (size_t)(end - aeq - 1)) : strdup("");
        if (val == NULL)
            goto nomem;
        if (nlen == 6 && strncasecmp(a, "domain", 6) == 0 && val[0]) {
            free(c->domain);
            c->domain = strdup(val[0] == '.' ? val + 1 : val);
            if (c->domain == NULL) {
                free(val);
                goto nomem;
            }
        } else if (nlen == 4 && strncasecmp(a, "path", 4) == 0 &&
                   val[0] == '/') {
            free(c->path);
            c->path = val;
            val = NULL;
        } else if (nlen == 7 && strncasecmp(a, "max-age", 7) == 0) {
            char *e;
            long long s = strtoll(val, &e, 10);

            if (val[0] != '\0' && *e == '\0') {
                if (s <= 0)
                    remove = true;
                else
                    c->expires = time(NULL) + (time_t)s;
            }
        } else if (nlen == 7 && strncasecmp(a, "expires", 7) == 0 &&
                   c->expires == 0 && !remove) {
            struct tm tm = {0};
            const char *r = strptime(val, "%a, %d %b %Y %H:%M:%S", &tm);

            if (r == NULL)
                r = strptime(val, "%a, %d-%b-%Y %H:%M:%S", &tm);
            if (r != NULL) {
                time_t t = timegm(&tm);

                if (t <= time(NULL))
                    remove = true;
                else
                    c->expires = t;
            }
        } else if (nlen == 6 && strncasecmp(a, "secure", 6) == 0) {
            c->secure = true;
        }
        free(val);
        a = end;
    }
    if (c->domain != NULL) {
        if (!domain_match(u->host, c->domain)) {
            cookie_free(c); /* a domain the host may not set: ignored */
            return 0;
        }
    } else {
        c->domain = strdup(u->host);
        c->host_only = true;
        if (c->domain == NULL)
            goto nomem;
    }
    if (c->path == NULL && (c->path = default_path(u->target)) == NULL)
        goto nomem;
    for (pp = &jar->list; *pp != NULL; pp = &(*pp)->next) {
        struct corio__cookie *o = *pp;

        if (strcmp(o->name, c->name) == 0 &&
            strcasecmp(o->domain, c->domain) == 0 &&
            strcmp(o->path, c->path) == 0) {
            *pp = o->next;
            cookie_free(o);
            break;
        }
    }
    if (remove) {
        cookie_free(c);
        return 0;
    }
    c->next = jar->list;
    jar->list = c;
    return 0;
nomem:
    cookie_free(c);
    errno = ENOMEM;
    return -1;
}

/* Whether c goes with a request to u; drops it from the jar if expired. */
static bool applies(const struct corio__cookie *c, const struct corio__url *u,
                    time_t now)
{
    if (c->expires != 0 && c->expires <= now)
        return false;
    if (c->secure && !u->https)
        return false;
    if (c->host_only ? strcasecmp(c->domain, u->host) != 0
                     : !domain_match(u->host, c->domain))
        return false;
    return path_match(u->target, c->path);
}

char *corio__jar_header(struct corio__jar *jar, const struct corio__url *u)
{
    time_t now = time(NULL);
    size_t size = 1;
    char *out, *p;

    errno = 0;
    for (struct corio__cookie *c = jar->list; c != NULL; c = c->next)
        if (applies(c, u, now))
            size += strlen(c->name) + strlen(c->value) + 3;
    if (size == 1)
        return NULL;
    out = p = malloc(size);
    if (out == NULL)
        return NULL;
    for (struct corio__cookie *c = jar->list; c != NULL; c = c->next)
        if (applies(c, u, now))
            p += sprintf(p, "%s%s=%s", p == out ? "" : "; ", c->name,
                         c->value);
    return out;
}

const char *corio__jar_get(struct corio__jar *jar, const struct corio__url *u,
                           const char *name)
{
    time_t now = time(NULL);

    for (struct corio__cookie *c = jar->list; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0 && applies(c, u, now))
            return c->value;
    return NULL;
}

void corio__jar_free(struct corio__jar *jar)
{
    while (jar->list != NULL) {
        struct corio__cookie *c = jar->list;

        jar->list = c->next;
        cookie_free(c);
    }
}
