/* src/dist/redis.c -- the task queue's Redis backend (redis://host:port/db):
 * corio__dist_redis_ops for dist.c. Queues are Redis Streams read through
 * a consumer group (XREADGROUP leases a task, XAUTOCLAIM takes back those
 * whose lease expired, XACK with the result); every operation is one Lua
 * script (redis_scripts.h), atomic on the server and one round trip, a
 * batch included. Results are recorded once (the first ack's SET wins).
 *
 * A connection has a main Redis connection, shared and pipelined by all
 * its tasks, and a few more for the calls that wait on the server (BLPOP
 * for a wake token of an empty queue, or on a wait key of the call's own
 * for results), one per waiting task, so a wait never holds up the others. All of them reconnect by
 * themselves (redis_adapter.c: backoff), so a Redis restart fails only the
 * calls in flight (ECONNRESET). */
#include "dist_int.h"
#include "redis_int.h"
#include "redis_scripts.h"

#include "corio/loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An idle taker asks Redis again at least this often, to reclaim the
 * tasks whose lease expired meanwhile. */
#define WAIT_SLICE (1 * CORIO_SECOND)
/* How long a wait on the server may overrun before its connection is
 * given up (Redis stopped answering). */
#define WAIT_SLACK (5 * CORIO_SECOND)
#define IDLE_MAX 8
/* How often a call retries while Redis loads its data after a restart. */
#define LOADING_WAIT (50 * CORIO_MSEC)

enum script { S_PUT, S_TAKE, S_ACK, S_RELEASE, S_SIZE, S_CLOSE, S_RESULT,
              S_RESULTS, S_COUNT };

static const char *const script_text[S_COUNT] = {
    CORIO__LUA_PUT, CORIO__LUA_TAKE, CORIO__LUA_ACK, CORIO__LUA_RELEASE,
    CORIO__LUA_SIZE, CORIO__LUA_CLOSE, CORIO__LUA_RESULT, CORIO__LUA_RESULTS,
};

struct rdist {
    struct corio__redis_conf conf;  /* for the waiting connections */
    char *host, *password, *tls_name;
    corio__redis *main;
    corio__redis *idle[IDLE_MAX];   /* waiting connections not in use */
    size_t nidle;
    char consumer[128];
    uint64_t waits;                 /* wait keys made (results_wait) */
    char sha[S_COUNT][41];          /* SCRIPT LOAD's, "" until loaded */
    corio__redis **active;          /* waiting connections in use */
    size_t nactive, cap;
    unsigned busy;                  /* calls in progress */
    bool closing;                   /* corio_dist_close waits for them */
};

static struct rdist *impl(corio_dist *d)
{
    return d->impl;
}

/* ---- Scripts ------------------------------------------------------------ */

/* A reply that is an error: the errno it stands for. */
static int reply_errno(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(rep->str, "CLOSED", 6) == 0)
        return CORIO_ECLOSED;
    if (strncmp(rep->str, "NOAUTH", 6) == 0 ||
        strncmp(rep->str, "WRONGPASS", 9) == 0)
        return EACCES;
    if (strncmp(rep->str, "OOM", 3) == 0)
        return ENOMEM;
    return EPROTO;
}

/* Run script s on r with args (argv[0..argc) after the EVALSHA header's
 * three slots, which this fills): loaded first if Redis lacks it, retried
 * while Redis loads its data. Returns the reply, or NULL with errno. */
static redisReply *script_run(struct rdist *rd, corio__redis *r, enum script s,
                              const char **argv, size_t *lens, int argc,
                              int64_t deadline)
{
    struct corio__redis_cmd cmd = {argc, argv, lens};
    redisReply *rep;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (rd->sha[s][0] == '\0') {
            rep = corio__redis_call(r, deadline, "SCRIPT", "LOAD",
                                    script_text[s], NULL);
            if (rep == NULL)
                return NULL;
            if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
                errno = rep->type == REDIS_REPLY_ERROR ? reply_errno(rep)
                                                       : EPROTO;
                freeReplyObject(rep);
                return NULL;
            }
            memcpy(rd->sha[s], rep->str, 41);
            freeReplyObject(rep);
        }
        argv[0] = "EVALSHA";
        argv[1] = rd->sha[s];
        argv[2] = "0";
        lens[0] = 7;
        lens[1] = 40;
        lens[2] = 1;
        if (corio__redis_exec(r, 1, &cmd, &rep, deadline) == -1)
            return NULL;
        if (rep->type == REDIS_REPLY_ERROR &&
            strncmp(rep->str, "LOADING", 7) == 0) {
            /* Redis restarted and loads its data: wait for it. */
            freeReplyObject(rep);
            if (deadline != -1 && corio_now() + LOADING_WAIT > deadline) {
                errno = ETIMEDOUT;
                return NULL;
            }
            if (corio_sleep(LOADING_WAIT) == -1)
                return NULL;
            attempt--;
            continue;
        }
        if (rep->type == REDIS_REPLY_ERROR &&
            strncmp(rep->str, "NOSCRIPT", 8) == 0) {
            /* Redis restarted and lost its scripts: load it again. */
            freeReplyObject(rep);
            rd->sha[s][0] = '\0';
            continue;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            errno = reply_errno(rep);
            freeReplyObject(rep);
            return NULL;
        }
        return rep;
    }
    errno = EPROTO;
    return NULL;
}

/* Argument lists: the EVALSHA header (3 slots), then the script's. */
struct args {
    const char **v;
    size_t *len;
    int n;
    char (*num)[24];                /* text of numbers */
    int nnum;
};

static int args_init(struct args *a, size_t count)
{
    if (count > (size_t)INT32_MAX - 3) {
        errno = EMSGSIZE;
        return -1;
    }
    a->v = malloc((count + 3) * sizeof(*a->v));
    a->len = malloc((count + 3) * sizeof(*a->len));
    a->num = malloc((count + 1) * sizeof(*a->num));
    a->n = 3;
    a->nnum = 0;
    if (a->v == NULL || a->len == NULL || a->num == NULL) {
        free(a->v);
        free(a->len);
        free(a->num);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void args_free(struct args *a)
{
    free(a->v);
    free(a->len);
    free(a->num);
}

static void arg(struct args *a, const void *data, size_t len)
{
    a->v[a->n] = data != NULL ? data : "";
    a->len[a->n++] = len;
}

static void arg_str(struct args *a, const char *s)
{
    arg(a, s, strlen(s));
}

static void arg_u64(struct args *a, uint64_t v)
{
    char *p = a->num[a->nnum++];

    snprintf(p, sizeof(*a->num), "%" PRIu64, v);
    arg_str(a, p);
}

/* Take an integer reply >= min into *v and free it. Returns 0, or -1
 * (rep NULL: errno as it was; another reply: EPROTO). */
static int int_reply(redisReply *rep, long long min, long long *v)
{
    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < min) {
        freeReplyObject(rep);
        errno = EPROTO;
        return -1;
    }
    *v = rep->integer;
    freeReplyObject(rep);
    return 0;
}

/* Redis's largest string (proto-max-bulk-len's default): a longer one
 * would make Redis close the connection. */
#define MAX_BULK ((size_t)512 << 20)

/* 0 if every buf fits in a Redis string, else -1 EMSGSIZE. */
static int bufs_fit(const corio_dist_buf *bufs, size_t n)
{
    for (size_t i = 0; bufs != NULL && i < n; i++) {
        if (bufs[i].len > MAX_BULK) {
            errno = EMSGSIZE;
            return -1;
        }
    }
    return 0;
}

/* Copy len bytes into a message's payload (with a zero byte after).
 * Returns 0 or -1 ENOMEM. */
static int msg_fill(corio_dist_msg *m, const char *data, size_t len)
{
    m->data = malloc(len + 1);
    if (m->data == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(m->data, data, len);
    ((char *)m->data)[len] = '\0';
    m->len = len;
    return 0;
}

/* ---- Waiting on the server ------------------------------------------------
 * A blocking command runs on a connection of its own, taken from the idle
 * ones (or made). One that did not end cleanly is dropped, so that no
 * late reply is left on it. */

static corio__redis *waiter_get(struct rdist *rd)
{
    corio__redis *r;

    if (rd->closing) {
        errno = CORIO_ECLOSED;
        return NULL;
    }
    if (rd->nactive == rd->cap) {
        size_t cap = rd->cap > 0 ? 2 * rd->cap : 8;
        corio__redis **a = realloc(rd->active, cap * sizeof(*a));

        if (a == NULL)
            return NULL;
        rd->active = a;
        rd->cap = cap;
    }
    r = rd->nidle > 0 ? rd->idle[--rd->nidle] : corio__redis_new(&rd->conf);
    if (r != NULL)
        rd->active[rd->nactive++] = r;
    return r;
}

static void waiter_put(struct rdist *rd, corio__redis *r, bool clean)
{
    for (size_t i = 0; i < rd->nactive; i++) {
        if (rd->active[i] == r) {
            rd->active[i] = rd->active[--rd->nactive];
            break;
        }
    }
    if (!clean)
        corio__redis_drop(r);
    if (clean && rd->nidle < IDLE_MAX)
        rd->idle[rd->nidle++] = r;
    else
        corio__redis_free(r);
}

/* Run one blocking command (argv) that the server ends by itself by
 * `until`; returns its reply or NULL with errno. */
static redisReply *wait_on_server(struct rdist *rd, int argc,
                                  const char **argv, int64_t until)
{
    corio__redis *r = waiter_get(rd);
    struct corio__redis_cmd cmd = {argc, argv, NULL};
    redisReply *rep;
    int err;

    if (r == NULL)
        return NULL;
    if (corio__redis_exec(r, 1, &cmd, &rep, until + WAIT_SLACK) == -1) {
        err = errno;
        waiter_put(rd, r, false);
        errno = err;
        return NULL;
    }
    waiter_put(rd, r, true);
    return rep;
}

/* The slice of a wait until deadline: its end, and the server's timeout
 * (ms, >= 1) as text. Returns false if the deadline has passed. */
static bool wait_slice(int64_t deadline, int64_t *until, char *ms, size_t size)
{
    int64_t now = corio_now(), left;

    if (deadline != -1 && deadline <= now)
        return false;
    left = deadline == -1 ? WAIT_SLICE : deadline - now;
    if (left > WAIT_SLICE)
        left = WAIT_SLICE;
    if (left < CORIO_MSEC)
        left = CORIO_MSEC;
    *until = now + left;
    snprintf(ms, size, "%" PRId64, left / CORIO_MSEC);
    return true;
}

/* ---- Connections -------------------------------------------------------- */

static void rdist_free(struct rdist *rd)
{
    corio__redis_free(rd->main);
    for (size_t i = 0; i < rd->nidle; i++)
        corio__redis_free(rd->idle[i]);
    free(rd->active);
    free(rd->host);
    free(rd->password);
    free(rd->tls_name);
    free(rd);
}

static int redis_open(corio_dist *d, const struct corio__dist_url *url,
                      const corio_dist_opts *opts, int64_t deadline)
{
    static unsigned seq;
    struct rdist *rd;
    redisReply *rep;
    char hostname[64] = "host";
    int err;

    rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return -1;
    rd->host = strdup(url->host);
    if (opts->authkey != NULL)
        rd->password = strndup(opts->authkey, opts->authkey_len > 0
                                                  ? opts->authkey_len
                                                  : strlen(opts->authkey));
    if (opts->tls_name != NULL)
        rd->tls_name = strdup(opts->tls_name);
    if (rd->host == NULL || (opts->authkey != NULL && rd->password == NULL) ||
        (opts->tls_name != NULL && rd->tls_name == NULL)) {
        rdist_free(rd);
        errno = ENOMEM;
        return -1;
    }
    rd->conf.host = rd->host;
    rd->conf.port = url->port;
    rd->conf.password = rd->password;
    rd->conf.db = url->db;
    rd->conf.tls = opts->tls;
    rd->conf.tls_name = rd->tls_name;
    rd->main = corio__redis_new(&rd->conf);
    if (rd->main == NULL) {
        err = errno;
        rdist_free(rd);
        errno = err;
        return -1;
    }
    /* Connect now, once: a refusal is the caller's to see. */
    rep = corio__redis_call(rd->main, deadline, "PING", NULL);
    if (rep == NULL || rep->type != REDIS_REPLY_STATUS) {
        err = rep == NULL ? errno : EPROTO;
        freeReplyObject(rep);
        rdist_free(rd);
        errno = err;
        return -1;
    }
    freeReplyObject(rep);
    gethostname(hostname, sizeof(hostname) - 1);
    snprintf(rd->consumer, sizeof(rd->consumer), "%s:%ld:%u", hostname,
             (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    d->impl = rd;
    return 0;
}

/* Close: the calls other tasks have in progress fail (EBADF) and end
 * first, then everything is freed. */
static void redis_close(corio_dist *d)
{
    struct rdist *rd = impl(d);

    d->impl = NULL;
    if (rd->busy > 0) {
        CORIO_SHIELD(-1);

        rd->closing = true;
        corio__redis_shutdown(rd->main);
        for (size_t i = 0; i < rd->nactive; i++)
            corio__redis_shutdown(rd->active[i]);
        while (rd->busy > 0) {
            if (corio_sleep(CORIO_MSEC) == -1)
                return; /* a loop callback cannot wait: leave rd to them */
        }
    }
    rdist_free(rd);
}

/* ---- Queues ------------------------------------------------------------- */

static int do_put(corio_dist *d, const char *queue,
                  const corio_dist_buf *items, size_t n, uint64_t *ids,
                  int64_t deadline)
{
    struct rdist *rd = impl(d);
    struct args a;
    redisReply *rep;
    long long first;

    if (bufs_fit(items, n) == -1 || args_init(&a, n + 1) == -1)
        return -1;
    arg_str(&a, queue);
    for (size_t i = 0; i < n; i++)
        arg(&a, items[i].data, items[i].len);
    rep = script_run(rd, rd->main, S_PUT, a.v, a.len, a.n, deadline);
    args_free(&a);
    if (int_reply(rep, 1, &first) == -1)
        return -1;
    for (size_t i = 0; ids != NULL && i < n; i++)
        ids[i] = (uint64_t)first + i;
    return 0;
}

/* Copy the take script's triples into out. Returns the count or -1. */
static ssize_t take_parse(const redisReply *rep, corio_dist_msg *out,
                          size_t max)
{
    size_t n = (size_t)rep->element[0]->integer;

    if (n > max || rep->elements != 1 + 3 * n)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        redisReply **e = rep->element + 1 + 3 * i;
        char *end;

        if (e[0]->type != REDIS_REPLY_STRING ||
            e[1]->type != REDIS_REPLY_STRING ||
            e[2]->type != REDIS_REPLY_INTEGER)
            goto bad;
        out[i].id = strtoull(e[0]->str, &end, 10);
        if (msg_fill(&out[i], e[1]->str, e[1]->len) == -1) {
            for (size_t j = 0; j < i; j++)
                corio_dist_msg_clear(&out[j]);
            return -1;
        }
        out[i].deliveries = (unsigned)e[2]->integer;
    }
    return (ssize_t)n;

bad:
    errno = EPROTO;
    return -1;
}

/* Wait for a wake token of the queue (a put, a nack) or its close token,
 * or the slice's end. The close token is pushed back for the other
 * waiters. Returns 0 (look again) or -1 with errno. */
static int take_wait(struct rdist *rd, const char *queue, int64_t deadline)
{
    char wkey[CORIO_DIST_NAME_MAX + 16], zkey[CORIO_DIST_NAME_MAX + 16];
    char ms[24], secs[32];
    const char *argv[4] = {"BLPOP", wkey, zkey, secs};
    redisReply *rep;
    int64_t until;
    bool closed;

    if (!wait_slice(deadline, &until, ms, sizeof(ms))) {
        errno = ETIMEDOUT;
        return -1;
    }
    snprintf(wkey, sizeof(wkey), "corio:qw:%s", queue);
    snprintf(zkey, sizeof(zkey), "corio:qzw:%s", queue);
    snprintf(secs, sizeof(secs), "%.3f", (double)atoll(ms) / 1000.0);
    rep = wait_on_server(rd, 4, argv, until);
    if (rep == NULL)
        return -1;
    closed = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(rep->element[0]->str, zkey) == 0;
    freeReplyObject(rep);
    if (closed) {
        rep = corio__redis_call(rd->main, deadline, "RPUSH", zkey, "1", NULL);
        freeReplyObject(rep);
    }
    return 0;
}

static ssize_t do_get(corio_dist *d, const char *queue, bool lease,
                      corio_dist_msg *out, size_t max, int64_t deadline)
{
    struct rdist *rd = impl(d);
    char lease_ms[24], maxs[24], maxdel[24];
    const char *argv[9] = {NULL, NULL, NULL, queue, lease ? "1" : "0",
                           rd->consumer, lease_ms, maxs, maxdel};
    size_t lens[9];
    ssize_t n;

    snprintf(lease_ms, sizeof(lease_ms), "%" PRId64,
             d->lease / CORIO_MSEC > 0 ? d->lease / CORIO_MSEC : 1);
    snprintf(maxs, sizeof(maxs), "%zu", max);
    snprintf(maxdel, sizeof(maxdel), "%u", d->max_deliveries);
    for (int i = 3; i < 9; i++)
        lens[i] = strlen(argv[i]);
    for (;;) {
        redisReply *rep;

        if (corio__redis_connect(rd->main, deadline) == -1)
            return -1;
        {
            /* The script leases (or removes) what it returns: its reply
             * must not be given up, or those tasks would wait for their
             * lease to expire (or be lost, for a get). So it runs in a
             * shield, even past the caller's deadline, as a poll. */
            CORIO_SHIELD(corio_now() + WAIT_SLACK);
            rep = script_run(rd, rd->main, S_TAKE, argv, lens, 9, -1);
        }
        if (rep == NULL)
            return -1;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            rep->element[0]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(rep);
            errno = EPROTO;
            return -1;
        }
        if (rep->element[0]->integer > 0) {
            n = take_parse(rep, out, max);
            freeReplyObject(rep);
            return n;
        }
        freeReplyObject(rep);
        if (take_wait(rd, queue, deadline) == -1)
            return -1;
    }
}

static int do_ack(corio_dist *d, const char *queue, const uint64_t *ids,
                  const corio_dist_buf *results, size_t n, int64_t deadline)
{
    struct rdist *rd = impl(d);
    struct args a;
    redisReply *rep;
    long long unknown;

    if (n > SIZE_MAX / 4) {
        errno = EMSGSIZE;
        return -1;
    }
    if (bufs_fit(results, n) == -1 || args_init(&a, 2 * n + 1) == -1)
        return -1;
    arg_str(&a, queue);
    for (size_t i = 0; i < n; i++) {
        arg_u64(&a, ids[i]);
        if (results != NULL)
            arg(&a, results[i].data, results[i].len);
        else
            arg(&a, "", 0);
    }
    rep = script_run(rd, rd->main, S_ACK, a.v, a.len, a.n, deadline);
    args_free(&a);
    if (int_reply(rep, 0, &unknown) == -1)
        return -1;
    if (unknown > 0) {
        errno = ENOENT;
        return -1;
    }
    return 0;
}

static int release(corio_dist *d, const char *queue, uint64_t id, bool touch,
                   int64_t deadline)
{
    struct rdist *rd = impl(d);
    char ids[24], maxdel[24];
    const char *argv[8] = {NULL, NULL, NULL, queue, ids, rd->consumer,
                           maxdel, touch ? "1" : "0"};
    size_t lens[8];
    redisReply *rep;
    long long rc;

    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    snprintf(maxdel, sizeof(maxdel), "%u", d->max_deliveries);
    for (int i = 3; i < 8; i++)
        lens[i] = strlen(argv[i]);
    rep = script_run(rd, rd->main, S_RELEASE, argv, lens, 8, deadline);
    if (int_reply(rep, -1, &rc) == -1)
        return -1;
    if (rc != 0) {
        errno = ENOENT; /* not leased */
        return -1;
    }
    return 0;
}

static int do_nack(corio_dist *d, const char *queue, uint64_t id,
                   int64_t deadline)
{
    return release(d, queue, id, false, deadline);
}

static int do_touch(corio_dist *d, const char *queue, uint64_t id,
                    int64_t deadline)
{
    return release(d, queue, id, true, deadline);
}

/* A script with the queue's name as its one argument, returning an
 * integer. */
static ssize_t queue_script(corio_dist *d, enum script s, const char *queue,
                            int64_t deadline)
{
    struct rdist *rd = impl(d);
    const char *argv[4] = {NULL, NULL, NULL, queue};
    size_t lens[4] = {0, 0, 0, strlen(queue)};
    long long v;

    if (int_reply(script_run(rd, rd->main, s, argv, lens, 4, deadline), 0,
                  &v) == -1)
        return -1;
    return (ssize_t)v;
}

static ssize_t do_size(corio_dist *d, const char *queue, int64_t deadline)
{
    return queue_script(d, S_SIZE, queue, deadline);
}

static int do_close_queue(corio_dist *d, const char *queue,
                          int64_t deadline)
{
    return queue_script(d, S_CLOSE, queue, deadline) == -1 ? -1 : 0;
}

/* ---- Results ------------------------------------------------------------ */

/* A wait key of one call's own, so that no other caller pops its push. */
static void wait_key(struct rdist *rd, char *wk, size_t size)
{
    snprintf(wk, size, "corio:rn:%s:%" PRIu64, rd->consumer, ++rd->waits);
}

/* Wait for an ack's push on wait key wk (or the slice's end). */
static int results_wait(struct rdist *rd, const char *wk, int64_t deadline)
{
    char ms[24], secs[32];
    const char *argv[3] = {"BLPOP", wk, secs};
    redisReply *rep;
    int64_t until;

    if (!wait_slice(deadline, &until, ms, sizeof(ms))) {
        errno = ETIMEDOUT;
        return -1;
    }
    snprintf(secs, sizeof(secs), "%.3f", (double)atoll(ms) / 1000.0);
    rep = wait_on_server(rd, 3, argv, until);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* The common case: the result is there. A plain GET (GETDEL to take it)
 * costs Redis a tenth of a script. Returns 1 (in *out), 0 (not there:
 * the script decides), or -1. */
static int result_fast(struct rdist *rd, const char *ids, bool remove,
                       corio_dist_msg *out, int64_t deadline)
{
    char key[48];
    redisReply *rep;
    int rc = 0;

    snprintf(key, sizeof(key), "corio:r:%s", ids);
    rep = corio__redis_call(rd->main, deadline, remove ? "GETDEL" : "GET", key,
                            NULL);
    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_STRING)
        rc = msg_fill(out, rep->str, rep->len) == 0 ? 1 : -1;
    else if (rep->type != REDIS_REPLY_NIL)
        rc = -1, errno = reply_errno(rep);
    freeReplyObject(rep);
    return rc;
}

static int do_result(corio_dist *d, uint64_t id, bool remove,
                     corio_dist_msg *out, int64_t deadline)
{
    struct rdist *rd = impl(d);
    char ids[24];

    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    switch (result_fast(rd, ids, remove, out, deadline)) {
    case 1:
        out->id = id;
        return 0;
    case -1:
        return -1;
    }
    for (;;) {
        char wk[200];
        const char *argv[6] = {NULL, NULL, NULL, ids, remove ? "1" : "0", wk};
        size_t lens[6] = {0, 0, 0, strlen(ids), 1, 0};
        redisReply *rep;

        wait_key(rd, wk, sizeof(wk));
        lens[5] = strlen(wk);
        rep = script_run(rd, rd->main, S_RESULT, argv, lens, 6, deadline);

        if (rep == NULL)
            return -1;
        if (rep->type == REDIS_REPLY_INTEGER) {
            freeReplyObject(rep);
            errno = ENOENT;
            return -1;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
            freeReplyObject(rep);
            errno = EPROTO;
            return -1;
        }
        if (rep->element[0]->integer == 1 && rep->elements == 2 &&
            rep->element[1]->type == REDIS_REPLY_STRING) {
            int rc = msg_fill(out, rep->element[1]->str,
                              rep->element[1]->len);

            out->id = rc == 0 ? id : 0;
            freeReplyObject(rep);
            return rc;
        }
        freeReplyObject(rep);
        if (results_wait(rd, wk, deadline) == -1)
            return -1;
    }
}

/* A results reply {k, id, value, ...} into out[0..k). Returns k (0: none
 * yet) or -1. */
static ssize_t results_fill(redisReply *rep, corio_dist_msg *out, size_t n)
{
    long long k;

    if (rep->type == REDIS_REPLY_INTEGER) {
        errno = ENOENT;
        return -1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        (k = rep->element[0]->integer) < 0 || (size_t)k > n ||
        rep->elements != 1 + 2 * (size_t)k) {
        errno = EPROTO;
        return -1;
    }
    for (long long i = 0; i < k; i++) {
        redisReply *id = rep->element[1 + 2 * i], *v = rep->element[2 + 2 * i];

        if (id->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            msg_fill(&out[i], v->str, v->len) == -1) {
            for (long long j = 0; j <= i; j++)
                corio_dist_msg_clear(&out[j]);
            if (errno != ENOMEM)
                errno = EPROTO;
            return -1;
        }
        out[i].id = strtoull(id->str, NULL, 10);
    }
    return (ssize_t)k;
}

static ssize_t do_results(corio_dist *d, const uint64_t *ids, size_t n,
                          corio_dist_msg *out, int64_t deadline)
{
    struct rdist *rd = impl(d);

    for (;;) {
        char wk[200];
        struct args a;
        redisReply *rep;
        ssize_t k;

        wait_key(rd, wk, sizeof(wk));
        if (args_init(&a, n + 1) == -1)
            return -1;
        arg_str(&a, wk);
        for (size_t i = 0; i < n; i++)
            arg_u64(&a, ids[i]);
        rep = script_run(rd, rd->main, S_RESULTS, a.v, a.len, a.n, deadline);
        args_free(&a);
        if (rep == NULL)
            return -1;
        k = results_fill(rep, out, n);
        freeReplyObject(rep);
        if (k != 0)
            return k;
        if (results_wait(rd, wk, deadline) == -1)
            return -1;
    }
}

/* ---- Maps --------------------------------------------------------------- */

/* HSET / HGET / HDEL on corio:m:<map>. */
static redisReply *map_cmd(corio_dist *d, const char *verb, const char *map,
                           const char *key, const void *value, size_t len,
                           int64_t deadline)
{
    char mkey[CORIO_DIST_NAME_MAX + 16];
    const char *argv[4] = {verb, mkey, key, value != NULL ? value : ""};
    size_t lens[4];
    bool set = strcmp(verb, "HSET") == 0;
    struct corio__redis_cmd cmd = {set ? 4 : 3, argv, lens};
    redisReply *rep;

    snprintf(mkey, sizeof(mkey), "corio:m:%s", map);
    lens[0] = strlen(verb);
    lens[1] = strlen(mkey);
    lens[2] = strlen(key);
    lens[3] = len;
    if (corio__redis_exec(impl(d)->main, 1, &cmd, &rep, deadline) == -1)
        return NULL;
    if (rep->type == REDIS_REPLY_ERROR) {
        errno = reply_errno(rep);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static int do_map_set(corio_dist *d, const char *map, const char *key,
                      const void *value, size_t len, int64_t deadline)
{
    corio_dist_buf b = {value, len};
    redisReply *rep;

    if (bufs_fit(&b, 1) == -1)
        return -1;
    rep = map_cmd(d, "HSET", map, key, value, len, deadline);
    freeReplyObject(rep);
    return rep == NULL ? -1 : 0;
}

static int do_map_get(corio_dist *d, const char *map, const char *key,
                      corio_dist_msg *out, int64_t deadline)
{
    redisReply *rep = map_cmd(d, "HGET", map, key, NULL, 0, deadline);
    int rc;

    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_STRING) {
        errno = rep->type == REDIS_REPLY_NIL ? ENOENT : EPROTO;
        freeReplyObject(rep);
        return -1;
    }
    rc = msg_fill(out, rep->str, rep->len);
    freeReplyObject(rep);
    return rc;
}

static int do_map_del(corio_dist *d, const char *map, const char *key,
                      int64_t deadline)
{
    redisReply *rep = map_cmd(d, "HDEL", map, key, NULL, 0, deadline);
    int rc = 0;

    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
        rc = -1, errno = rep->type == REDIS_REPLY_INTEGER ? ENOENT : EPROTO;
    freeReplyObject(rep);
    return rc;
}

/* ---- The calls, counted ----------------------------------------------------
 * Each call counts itself in rd->busy for its whole length, so that
 * corio_dist_close can fail it (EBADF) and wait for its end before freeing
 * what it uses. */

static struct rdist *enter(corio_dist *d)
{
    struct rdist *rd = impl(d);

    rd->busy++;
    return rd;
}

static ssize_t leave(struct rdist *rd, ssize_t rc)
{
    if (rc == -1 && rd->closing)
        errno = EBADF;
    rd->busy--;
    return rc;
}

static int redis_put(corio_dist *d, const char *queue,
                     const corio_dist_buf *items, size_t n, uint64_t *ids,
                     int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_put(d, queue, items, n, ids, deadline));
}

static ssize_t redis_get(corio_dist *d, const char *queue, bool lease,
                         corio_dist_msg *out, size_t max, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return leave(rd, do_get(d, queue, lease, out, max, deadline));
}

static int redis_ack(corio_dist *d, const char *queue, const uint64_t *ids,
                     const corio_dist_buf *results, size_t n, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_ack(d, queue, ids, results, n, deadline));
}

static int redis_nack(corio_dist *d, const char *queue, uint64_t id,
                      int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_nack(d, queue, id, deadline));
}

static int redis_touch(corio_dist *d, const char *queue, uint64_t id,
                       int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_touch(d, queue, id, deadline));
}

static ssize_t redis_size(corio_dist *d, const char *queue, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return leave(rd, do_size(d, queue, deadline));
}

static int redis_close_queue(corio_dist *d, const char *queue,
                             int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_close_queue(d, queue, deadline));
}

static ssize_t redis_results(corio_dist *d, const uint64_t *ids, size_t n,
                             corio_dist_msg *out, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return leave(rd, do_results(d, ids, n, out, deadline));
}

static int redis_result(corio_dist *d, uint64_t id, bool remove,
                        corio_dist_msg *out, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_result(d, id, remove, out, deadline));
}

static int redis_map_set(corio_dist *d, const char *map, const char *key,
                         const void *value, size_t len, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_map_set(d, map, key, value, len, deadline));
}

static int redis_map_get(corio_dist *d, const char *map, const char *key,
                         corio_dist_msg *out, int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_map_get(d, map, key, out, deadline));
}

static int redis_map_del(corio_dist *d, const char *map, const char *key,
                         int64_t deadline)
{
    struct rdist *rd = enter(d);

    return (int)leave(rd, do_map_del(d, map, key, deadline));
}

const struct corio__dist_ops corio__dist_redis_ops = {
    .scheme = "redis",
    .open = redis_open,
    .close = redis_close,
    .put = redis_put,
    .get = redis_get,
    .ack = redis_ack,
    .nack = redis_nack,
    .touch = redis_touch,
    .size = redis_size,
    .close_queue = redis_close_queue,
    .result = redis_result,
    .results = redis_results,
    .map_set = redis_map_set,
    .map_get = redis_map_get,
    .map_del = redis_map_del,
};
