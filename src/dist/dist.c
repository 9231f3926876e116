/* src/dist/dist.c -- the task-queue API (include/corio/dist.h) over its
 * backends (dist_int.h): parses the URL and picks the backend by scheme,
 * checks every argument so that backends see only valid input, applies the
 * option defaults, and keeps the handles. It does no I/O of its own. */
#include "dist_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- URLs ---------------------------------------------------------------- */

static int parse_port(const char *s, size_t n, int *port)
{
    int v = 0;

    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* The host part: "name", "1.2.3.4" or "[v6]", then ":port" or nothing.
 * Returns a pointer past it, or NULL. */
static const char *parse_host(struct corio__dist_url *u, const char *p)
{
    const char *end;
    size_t n;

    if (*p == '[') {
        end = strchr(p, ']');
        if (end == NULL)
            return NULL;
        n = (size_t)(end - p - 1);
        p++;
        end++;
    } else {
        n = strcspn(p, ":/");
        end = p + n;
    }
    if (n == 0 || n >= sizeof(u->host) || memchr(p, '@', n) != NULL)
        return NULL;
    memcpy(u->host, p, n);
    u->host[n] = '\0';
    if (*end == ':') {
        size_t pn = strcspn(end + 1, "/");

        if (parse_port(end + 1, pn, &u->port) == -1)
            return NULL;
        end += 1 + pn;
    }
    return end;
}

int corio__dist_url_parse(struct corio__dist_url *u, const char *url)
{
    const char *p;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (url == NULL)
        goto bad;
    p = strstr(url, "://");
    n = p == NULL ? 0 : (size_t)(p - url);
    if (n == 0 || n >= sizeof(u->scheme))
        goto bad;
    memcpy(u->scheme, url, n);
    u->scheme[n] = '\0';
    u->port = strcmp(u->scheme, "redis") == 0 ? CORIO__DIST_REDIS_PORT
                                              : CORIO__DIST_MANAGER_PORT;
    p = parse_host(u, p + 3);
    if (p == NULL)
        goto bad;
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db;

        errno = 0;
        db = strtol(p + 1, &end, 10);
        if (*end != '\0' || errno != 0 || db < 0 || db > 65535 ||
            p[1] < '0' || p[1] > '9')
            goto bad;
        u->db = (int)db;
    } else if (*p == '/' ? p[1] != '\0' : *p != '\0') {
        goto bad;
    }
    snprintf(u->hostport, sizeof(u->hostport),
             strchr(u->host, ':') != NULL ? "[%s]:%d" : "%s:%d", u->host,
             u->port);
    return 0;

bad:
    errno = EINVAL;
    return -1;
}

/* ---- Connections --------------------------------------------------------- */

static const struct corio__dist_ops *const backends[] = {
#ifdef CORIO_DIST_MANAGER
    &corio__dist_manager_ops,
#endif
#ifdef CORIO_DIST_REDIS
    &corio__dist_redis_ops,
#endif
    NULL,
};

static const struct corio__dist_ops *backend(const char *scheme)
{
    for (size_t i = 0; backends[i] != NULL; i++) {
        if (strcmp(backends[i]->scheme, scheme) == 0)
            return backends[i];
    }
    return NULL;
}

corio_dist *corio_dist_connect(const char *url, const corio_dist_opts *opts,
                               int64_t deadline)
{
    static const corio_dist_opts zero;
    struct corio__dist_url u;
    corio_dist *d;
    int err;

    if (corio__dist_url_parse(&u, url) == -1)
        return NULL;
    if (opts == NULL)
        opts = &zero;
    if (opts->lease < 0) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->ops = backend(u.scheme);
    if (d->ops == NULL) {
        free(d);
        errno = EPROTONOSUPPORT;
        return NULL;
    }
    d->lease = opts->lease > 0 ? opts->lease : CORIO__DIST_LEASE_DEFAULT;
    d->max_deliveries = opts->max_deliveries > 0
                            ? opts->max_deliveries
                            : CORIO__DIST_DELIVERIES_DEFAULT;
    if (d->ops->open(d, &u, opts, deadline) == -1) {
        err = errno;
        free(d);
        errno = err;
        return NULL;
    }
    return d;
}

int corio_dist_close(corio_dist *d)
{
    if (d == NULL)
        return 0;
    if (d->handles > 0) {
        errno = EBUSY;
        return -1;
    }
    d->ops->close(d);
    free(d);
    return 0;
}

const char *corio_dist_backend(const corio_dist *d)
{
    return d == NULL ? NULL : d->ops->scheme;
}

void corio_dist_msg_clear(corio_dist_msg *m)
{
    if (m == NULL)
        return;
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* ---- Checks -------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' &&
           strnlen(name, CORIO_DIST_NAME_MAX + 1) <= CORIO_DIST_NAME_MAX;
}

/* A usable connection: 0, or -1 with the error that broke it. */
static int usable(corio_dist *d)
{
    if (d == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (d->err != 0) {
        errno = d->err;
        return -1;
    }
    return 0;
}

static int queue_ok(corio_dist_queue *q)
{
    if (q == NULL) {
        errno = EINVAL;
        return -1;
    }
    return usable(q->d);
}

static int invalid(void)
{
    errno = EINVAL;
    return -1;
}

/* ---- Handles ------------------------------------------------------------- */

static void *handle_new(corio_dist *d, const char *name, size_t size)
{
    /* A queue handle and a map handle share one layout. */
    corio_dist_queue *h;

    if (d == NULL || !name_ok(name)) {
        errno = EINVAL;
        return NULL;
    }
    h = calloc(1, size);
    if (h == NULL)
        return NULL;
    h->d = d;
    strcpy(h->name, name);
    d->handles++;
    return h;
}

corio_dist_queue *corio_dist_queue_new(corio_dist *d, const char *name)
{
    return handle_new(d, name, sizeof(corio_dist_queue));
}

int corio_dist_queue_free(corio_dist_queue *q)
{
    if (q != NULL) {
        q->d->handles--;
        free(q);
    }
    return 0;
}

corio_dist_map *corio_dist_map_new(corio_dist *d, const char *name)
{
    return handle_new(d, name, sizeof(corio_dist_map));
}

int corio_dist_map_free(corio_dist_map *m)
{
    if (m != NULL) {
        m->d->handles--;
        free(m);
    }
    return 0;
}

/* ---- Queues -------------------------------------------------------------- */

int corio_dist_queue_put(corio_dist_queue *q, const void *data, size_t len,
                         uint64_t *id, int64_t deadline)
{
    corio_dist_buf b = {data, len};

    return corio_dist_queue_put_many(q, &b, 1, id, deadline);
}

int corio_dist_queue_put_many(corio_dist_queue *q, const corio_dist_buf *items,
                              size_t n, uint64_t *ids, int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    if (items == NULL || n == 0)
        return invalid();
    for (size_t i = 0; i < n; i++) {
        if (items[i].data == NULL && items[i].len > 0)
            return invalid();
    }
    return q->d->ops->put(q->d, q->name, items, n, ids, deadline);
}

static ssize_t receive(corio_dist_queue *q, bool lease, corio_dist_msg *out,
                       size_t max, int64_t deadline)
{
    if (out != NULL && max > 0)
        memset(out, 0, max * sizeof(*out));
    if (queue_ok(q) == -1)
        return -1;
    if (out == NULL || max == 0)
        return invalid();
    return q->d->ops->get(q->d, q->name, lease, out, max, deadline);
}

int corio_dist_queue_get(corio_dist_queue *q, corio_dist_msg *out,
                         int64_t deadline)
{
    return receive(q, false, out, 1, deadline) == -1 ? -1 : 0;
}

int corio_dist_queue_take(corio_dist_queue *q, corio_dist_msg *out,
                          int64_t deadline)
{
    return receive(q, true, out, 1, deadline) == -1 ? -1 : 0;
}

ssize_t corio_dist_queue_take_many(corio_dist_queue *q, corio_dist_msg *out,
                                   size_t max, int64_t deadline)
{
    return receive(q, true, out, max, deadline);
}

int corio_dist_queue_ack(corio_dist_queue *q, uint64_t id, const void *result,
                         size_t len, int64_t deadline)
{
    corio_dist_buf b = {result, len};

    return corio_dist_queue_ack_many(q, &id, &b, 1, deadline);
}

int corio_dist_queue_ack_many(corio_dist_queue *q, const uint64_t *ids,
                              const corio_dist_buf *results, size_t n,
                              int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    if (ids == NULL || n == 0)
        return invalid();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == 0)
            return invalid();
        if (results != NULL && results[i].data == NULL && results[i].len > 0)
            return invalid();
    }
    return q->d->ops->ack(q->d, q->name, ids, results, n, deadline);
}

int corio_dist_queue_nack(corio_dist_queue *q, uint64_t id, int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    if (id == 0)
        return invalid();
    return q->d->ops->nack(q->d, q->name, id, deadline);
}

int corio_dist_queue_touch(corio_dist_queue *q, uint64_t id, int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    if (id == 0)
        return invalid();
    return q->d->ops->touch(q->d, q->name, id, deadline);
}

ssize_t corio_dist_queue_size(corio_dist_queue *q, int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    return q->d->ops->size(q->d, q->name, deadline);
}

int corio_dist_queue_close(corio_dist_queue *q, int64_t deadline)
{
    if (queue_ok(q) == -1)
        return -1;
    return q->d->ops->close_queue(q->d, q->name, deadline);
}

/* ---- Results ------------------------------------------------------------- */

static int result(corio_dist *d, uint64_t id, bool remove,
                  corio_dist_msg *out, int64_t deadline)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (usable(d) == -1)
        return -1;
    if (out == NULL || id == 0)
        return invalid();
    return d->ops->result(d, id, remove, out, deadline);
}

int corio_dist_result_get(corio_dist *d, uint64_t id, corio_dist_msg *out,
                          int64_t deadline)
{
    return result(d, id, false, out, deadline);
}

int corio_dist_result_take(corio_dist *d, uint64_t id, corio_dist_msg *out,
                           int64_t deadline)
{
    return result(d, id, true, out, deadline);
}

ssize_t corio_dist_result_take_many(corio_dist *d, const uint64_t *ids,
                                    size_t n, corio_dist_msg *out,
                                    int64_t deadline)
{
    if (out != NULL && n > 0 && n <= SIZE_MAX / sizeof(*out))
        memset(out, 0, n * sizeof(*out));
    if (usable(d) == -1)
        return -1;
    if (ids == NULL || out == NULL || n == 0 || n > SIZE_MAX / sizeof(*out))
        return invalid();
    if (n > CORIO_DIST_MANY_MAX)
        n = CORIO_DIST_MANY_MAX;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return invalid();
    return d->ops->results(d, ids, n, out, deadline);
}

/* ---- The map ------------------------------------------------------------- */

static int map_ok(corio_dist_map *m, const char *key)
{
    if (m == NULL)
        return invalid();
    if (usable(m->d) == -1)
        return -1;
    return name_ok(key) ? 0 : invalid();
}

int corio_dist_map_set(corio_dist_map *m, const char *key, const void *value,
                       size_t len, int64_t deadline)
{
    if (map_ok(m, key) == -1)
        return -1;
    if (value == NULL && len > 0)
        return invalid();
    return m->d->ops->map_set(m->d, m->name, key, value, len, deadline);
}

int corio_dist_map_get(corio_dist_map *m, const char *key, corio_dist_msg *out,
                       int64_t deadline)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (map_ok(m, key) == -1)
        return -1;
    if (out == NULL)
        return invalid();
    return m->d->ops->map_get(m->d, m->name, key, out, deadline);
}

int corio_dist_map_del(corio_dist_map *m, const char *key, int64_t deadline)
{
    if (map_ok(m, key) == -1)
        return -1;
    return m->d->ops->map_del(m->d, m->name, key, deadline);
}
