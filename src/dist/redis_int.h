/* src/dist/redis_int.h -- a Redis connection driven by the corio loop
 * (redis_adapter.c), for the Redis backend of the task queue (redis.c).
 *
 * hiredis's asynchronous API does the protocol: commands are formatted
 * into its output buffer and replies parsed from its input buffer; corio
 * does the waiting. Each connection has two small tasks on the loop of the
 * task that opened it: a reader (corio_fd_wait for input, then
 * redisAsyncHandleRead, which calls the reply callbacks) and a writer
 * (woken when hiredis asks to write, it writes what every task queued since
 * it last ran in one go: commands sent by many tasks at once are pipelined
 * for free). No thread per connection.
 *
 * A task sends commands and waits for their replies with a deadline
 * (corio__redis_exec). Connecting, AUTH and SELECT happen on the first
 * command, and again after the connection broke (Redis restarted): each
 * failed attempt doubles the wait before the next (backoff_min up to
 * backoff_max); a command that finds the connection down within its
 * deadline waits for the next attempt. A command already sent when the
 * connection breaks fails with ECONNRESET: whether Redis ran it is not
 * known, so callers make their commands idempotent (the backend does).
 *
 * All calls are made from tasks (or the thread's own stack) of the loop
 * the connection was opened on. */
#ifndef CORIO_DIST_REDIS_INT_H
#define CORIO_DIST_REDIS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* Where and how to connect; strings are copied. */
struct corio__redis_conf {
    const char *host;           /* a name or address; NULL: unix_path */
    int port;                   /* 0: 6379 */
    const char *unix_path;      /* a Unix socket, when host is NULL */
    const char *user;           /* AUTH user password (Redis 6 ACL); NULL:
                                   AUTH password */
    const char *password;       /* NULL: no AUTH */
    int db;                     /* SELECT db unless 0 */
    struct corio_tls *tls;      /* a client context: TLS to Redis (kept,
                                   not owned: it must outlive the
                                   connection); NULL: plain */
    const char *tls_name;       /* the name to verify; NULL: host */
    int64_t connect_timeout;    /* ns, per attempt; 0: 5 s */
    int64_t backoff_min;        /* ns; 0: 50 ms */
    int64_t backoff_max;        /* ns; 0: 2 s */
};

/* One command: argc arguments (binary safe: argvlen[i] bytes each;
 * argvlen NULL: strlen). */
struct corio__redis_cmd {
    int argc;
    const char **argv;
    const size_t *argvlen;
};

typedef struct corio__redis corio__redis;

/* A connection (not connected yet: the first command connects). Returns
 * NULL with errno EINVAL (no host and no path, a port out of range),
 * ENOMEM. */
corio__redis *corio__redis_new(const struct corio__redis_conf *conf);

/* Close the connection (commands in flight in other tasks fail with
 * CORIO_ECLOSED) and free it: no other task may be in a call on it (see
 * corio__redis_shutdown). Returns 0; NULL returns 0. */
int corio__redis_free(corio__redis *r);

/* Close the connection for good, without freeing it: the commands in
 * flight and every later call fail with CORIO_ECLOSED, a call waiting to
 * reconnect is woken. The calls of other tasks then end soon; free it
 * once they have. */
void corio__redis_shutdown(corio__redis *r);

/* Connect now if not connected (as the next command would). Returns 0,
 * or -1 with errno as corio__redis_exec. */
int corio__redis_connect(corio__redis *r, int64_t deadline);

/* Send n commands in one write (a pipeline) and wait until every reply
 * came or deadline. replies[i] receives each reply (freeReplyObject it;
 * an error reply is a reply: REDIS_REPLY_ERROR). Returns 0, or -1 with
 * errno, all replies[i] then NULL: ETIMEDOUT, ECANCELED (the commands may
 * still run), ECONNREFUSED / ENOENT / EHOSTUNREACH ... (could not connect
 * before deadline: the last attempt's error), ECONNRESET (the connection
 * broke with commands in flight), EACCES (AUTH refused), EIO (SELECT
 * refused, or another error reply at connect), EPROTO (a reply hiredis
 * could not parse), CORIO_ECLOSED (closed meanwhile), EINVAL (n == 0, a
 * command with argc < 1), ENOMEM. */
int corio__redis_exec(corio__redis *r, size_t n,
                      const struct corio__redis_cmd *cmds,
                      redisReply **replies, int64_t deadline);

/* One command given as text arguments (NULL-terminated list, not
 * binary safe); returns its reply or NULL with errno as above. */
redisReply *corio__redis_call(corio__redis *r, int64_t deadline,
                              const char *arg0, ...)
    __attribute__((sentinel));

/* Connections made so far (1 after the first, 2 after a reconnect...). */
uint64_t corio__redis_connects(const corio__redis *r);

/* True while connected. */
bool corio__redis_is_connected(const corio__redis *r);

/* Drop the connection now (as if Redis had closed it): commands in flight
 * fail with ECONNRESET, the next command reconnects. For tests. */
void corio__redis_drop(corio__redis *r);

#endif
