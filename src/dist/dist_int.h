/* src/dist/dist_int.h -- the seam between the task-queue API (dist.c) and
 * its backends: the manager's client (manager_client.c, corio://) and the
 * Redis client (redis*.c, redis://).
 *
 * dist.c parses the URL, checks every argument (handles, names, counts,
 * NULL pointers) and applies the option defaults before it calls a
 * backend, so a backend sees only valid input: names are non-empty,
 * NUL-terminated and at most CORIO_DIST_NAME_MAX bytes; counts are >= 1;
 * out structs are zeroed. Each operation is one exchange with the backend
 * (a batch is one exchange, not n), fails with -1 and errno as
 * include/corio/dist.h says, and leaves *out zeroed on failure. A backend
 * that finds its connection broken fails that call and every later one
 * with the same errno (d->err helps: dist.c checks it first). */
#ifndef CORIO_DIST_INT_H
#define CORIO_DIST_INT_H

#include "corio/dist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A parsed URL: scheme://host:port[/db]. */
struct corio__dist_url {
    char scheme[16];        /* "corio", "redis" */
    char host[256];         /* "127.0.0.1", "::1", "example.com" */
    char hostport[300];     /* host and port for corio_socket_connect
                               ("127.0.0.1:5000", "[::1]:5000") */
    int port;               /* the URL's, or the scheme's default */
    int db;                 /* redis: the database number (0) */
};

/* The defaults: the manager's port (the seed's), Redis's. */
#define CORIO__DIST_MANAGER_PORT 5000
#define CORIO__DIST_REDIS_PORT 6379
#define CORIO__DIST_LEASE_DEFAULT (30 * (int64_t)1000000000)
#define CORIO__DIST_DELIVERIES_DEFAULT 5u

struct corio__dist_ops;

/* A connection (include/corio/dist.h). */
struct corio_dist {
    const struct corio__dist_ops *ops;  /* its backend */
    void *impl;                         /* the backend's state (open sets
                                           it, close frees it) */
    int err;                            /* 0, or the errno that broke the
                                           connection (sticky) */
    size_t handles;                     /* queue and map handles open */
    int64_t lease;                      /* opts.lease, default applied */
    unsigned max_deliveries;            /* opts.max_deliveries, same */
};

/* A queue or map handle: a name on a connection. */
struct corio_dist_queue {
    corio_dist *d;
    char name[CORIO_DIST_NAME_MAX + 1];
};
struct corio_dist_map {
    corio_dist *d;
    char name[CORIO_DIST_NAME_MAX + 1];
};

/* What a backend implements. Every call returns as dist.h's public call
 * of the same name (0, a count, or -1 and errno). */
struct corio__dist_ops {
    const char *scheme;                 /* "corio", "redis" */
    /* Connect and authenticate; set d->impl. opts is never NULL (dist.c
     * passes zeroes); nothing stays open on failure. */
    int (*open)(corio_dist *d, const struct corio__dist_url *url,
                const corio_dist_opts *opts, int64_t deadline);
    /* Close the connection and free d->impl. Cannot fail. */
    void (*close)(corio_dist *d);
    /* Append n items to queue; ids (may be NULL) gets their ids. */
    int (*put)(corio_dist *d, const char *queue, const corio_dist_buf *items,
               size_t n, uint64_t *ids, int64_t deadline);
    /* Remove (lease false: get, max is 1) or lease (take, with d->lease
     * and d->max_deliveries) up to max messages, waiting until deadline
     * for the first. Returns the count (>= 1) or -1. */
    ssize_t (*get)(corio_dist *d, const char *queue, bool lease,
                   corio_dist_msg *out, size_t max, int64_t deadline);
    /* Ack n tasks (results may be NULL: no results). */
    int (*ack)(corio_dist *d, const char *queue, const uint64_t *ids,
               const corio_dist_buf *results, size_t n, int64_t deadline);
    int (*nack)(corio_dist *d, const char *queue, uint64_t id,
                int64_t deadline);
    int (*touch)(corio_dist *d, const char *queue, uint64_t id,
                 int64_t deadline);
    ssize_t (*size)(corio_dist *d, const char *queue, int64_t deadline);
    int (*close_queue)(corio_dist *d, const char *queue, int64_t deadline);
    /* Wait for task id's result; remove: take it (result_take). */
    int (*result)(corio_dist *d, uint64_t id, bool remove,
                  corio_dist_msg *out, int64_t deadline);
    /* Take the results of those of ids[0..n) that have one, at least one
     * (waiting until deadline for the first); returns the count k, with
     * out[0..k) filled. */
    ssize_t (*results)(corio_dist *d, const uint64_t *ids, size_t n,
                       corio_dist_msg *out, int64_t deadline);
    int (*map_set)(corio_dist *d, const char *map, const char *key,
                   const void *value, size_t len, int64_t deadline);
    int (*map_get)(corio_dist *d, const char *map, const char *key,
                   corio_dist_msg *out, int64_t deadline);
    int (*map_del)(corio_dist *d, const char *map, const char *key,
                   int64_t deadline);
};

/* The backends, each built in when CMake defines its macro for dist.c
 * (CORIO_DIST_MANAGER with OpenSSL, CORIO_DIST_REDIS with hiredis); a
 * scheme whose backend is not built in is EPROTONOSUPPORT. */
extern const struct corio__dist_ops corio__dist_manager_ops;
extern const struct corio__dist_ops corio__dist_redis_ops;

/* Parse url into *u. Returns 0, or -1 with EINVAL. */
int corio__dist_url_parse(struct corio__dist_url *u, const char *url);

#endif
