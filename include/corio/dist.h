/* include/corio/dist.h -- the distributed task queue. Part of corio.h.
 *
 * Named queues, task results and a named key-value map that many processes
 * on many machines share (Python's multiprocessing.managers and a Redis
 * task queue, behind one API). A program connects by URL to a backend:
 *
 *     corio://host:port     corio's own manager (corio_dist_manager_start),
 *                           authenticated with a shared authkey
 *     redis://host:port/db  a Redis server (db: 0 when left out)
 *
 * and gets handles whose calls work like a local queue's:
 *
 *     corio_dist_opts o = {.authkey = "abc"};
 *     corio_dist *d = corio_dist_connect("corio://127.0.0.1:5000", &o, dl);
 *     corio_dist_queue *q = corio_dist_queue_new(d, "tasks");
 *     corio_dist_queue_put(q, "7", 1, &id, -1);        // a producer
 *     corio_dist_msg m;
 *     corio_dist_queue_take(q, &m, corio_now() + CORIO_SECOND);  // a worker
 *     corio_dist_queue_ack(q, m.id, "49", 2, -1);      // its result
 *     corio_dist_result_take(d, id, &r, -1);           // the producer again
 *
 * Every call that talks to the backend may wait: from a task it suspends
 * only that task; from plain code (no task) it runs the thread's loop until
 * it is done, so the same calls serve both. They take an absolute deadline
 * last (-1: none) and fail with -1 and errno: ETIMEDOUT when the deadline
 * passes (a get that times out is Python's queue.Empty), ECANCELED when the
 * task is cancelled, and these, on any call:
 *   EPIPE, ECONNRESET, CORIO_EEOF  the connection broke (the manager or
 *                                  Redis went away); every later call on
 *                                  the connection fails with the same
 *                                  error: connect again;
 *   EPROTO   the peer sent something malformed or unauthenticated (the
 *            connection is closed, as above);
 *   EINVAL   bad arguments (NULL handle, empty name, name longer than
 *            CORIO_DIST_NAME_MAX);
 *   EMSGSIZE a request (a payload, or a whole batch) bigger than the
 *            backend's frame limit (the manager's max_frame: 16 MiB by
 *            default); nothing is sent, the connection stays up.
 * A connection is used by one task at a time or by many: calls from
 * several tasks on one connection are pipelined (a get that waits does not
 * hold up another task's put). A connection belongs to the loop (thread)
 * that made it.
 *
 * A get, take or result wait times out on the backend's side, so a task
 * is either returned or left in the queue. A call abandoned otherwise (its
 * task cancelled, or no answer 2 s past its deadline) withdraws its request
 * and gives back what a late reply brings; a put or an ack abandoned that
 * way may have been done (docs/dist.md, "Deadlines").
 *
 * ---- Reliable delivery (the lease/ack model) ----
 * corio_dist_queue_get removes a message, as Python's Queue.get does: if
 * the taker dies, the message is lost. corio_dist_queue_take instead
 * *leases* it: the message stays with the backend, invisible to others,
 * until the taker acks it (corio_dist_queue_ack, with its result), nacks it
 * (back to the queue at once), or the lease expires (opts.lease) or the
 * taker's connection to the manager closes: then it is delivered again.
 * A message delivered max_deliveries times without an ack goes to the
 * queue's dead-letter queue, the queue named "<name>.dead" (a queue like
 * any other: open it with corio_dist_queue_new to read it). Results are
 * recorded once per task id: when a task ran twice (its lease expired while
 * the first taker was still working), the first ack's result is kept and
 * later acks are accepted and dropped. So delivery is at least once, and
 * results exactly once. */
#ifndef CORIO_DIST_H
#define CORIO_DIST_H

#include "corio/coro.h"
#include "corio/error.h"
#include "corio/io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest queue, map or key name, in bytes. */
#define CORIO_DIST_NAME_MAX 200
/* corio_dist_result_take_many looks at this many ids at most per call. */
#define CORIO_DIST_MANY_MAX 65536

/* ---- Connections ------------------------------------------------------- */

typedef struct corio_dist corio_dist;

/* Options of a connection; zero fields take the default, and opts may be
 * NULL for all defaults. */
typedef struct corio_dist_opts {
    /* The shared secret: the manager's authkey (corio://), Redis's AUTH
     * password (redis://; NULL: no AUTH). authkey_len 0: strlen(authkey).
     * The manager refuses an empty or missing key. */
    const char *authkey;
    size_t authkey_len;
    /* TLS over the connection (a client context, corio/tls.h), verified
     * for tls_name (NULL: the URL's host). NULL: plain TCP. */
    corio_tls *tls;
    const char *tls_name;
    /* How long a task taken by this connection is leased before it is
     * delivered again (ns; 0: 30 s), and after how many deliveries
     * without an ack it goes to the dead-letter queue (0: 5). They apply
     * to the takes of this connection. */
    int64_t lease;
    unsigned max_deliveries;
} corio_dist_opts;

/* Connect to url (see above) and authenticate. Returns the connection,
 * owned by the caller (corio_dist_close), or NULL with errno: EACCES (the
 * manager refused the authkey, or Redis the password: corio_strerror says
 * "Permission denied"), EINVAL (a bad URL, an empty authkey for
 * corio://), EPROTONOSUPPORT (an unknown scheme, or a backend not built
 * in), ECONNREFUSED, ETIMEDOUT, ECANCELED, EPROTO (the peer does not speak
 * the protocol, or a TLS failure), CORIO_EUNKNOWNHOST, ENOMEM. */
CORIO_WARN_UNUSED
CORIO_EXPORT corio_dist *corio_dist_connect(const char *url,
                                            const corio_dist_opts *opts,
                                            int64_t deadline);

/* Close the connection and free it. Tasks it leased and has not acked
 * are delivered again (at once by the manager, at lease expiry by Redis).
 * Other tasks' calls on it fail with EBADF first. The queue and map
 * handles made from it must be freed before. Returns 0 (or -1 with
 * EBUSY: handles are still open; nothing is done); NULL returns 0. */
CORIO_EXPORT int corio_dist_close(corio_dist *d);

/* The backend's name: "corio" or "redis". */
CORIO_EXPORT const char *corio_dist_backend(const corio_dist *d);

/* ---- Messages ---------------------------------------------------------- */

/* A message received (a queue item, a result, a map value). data is
 * malloc'd and owned by the receiver: free it with corio_dist_msg_clear
 * (or free(data)). One zero byte follows the len bytes, so text payloads
 * read as C strings. */
typedef struct corio_dist_msg {
    uint64_t id;          /* the task id (0 for map values) */
    void *data;           /* the payload */
    size_t len;           /* its length */
    unsigned deliveries;  /* 1 on the first delivery of a take, 2 on the
                             second, ...; 0 for get, results and values */
} corio_dist_msg;

/* Free m->data and zero m. m NULL: nothing. */
CORIO_EXPORT void corio_dist_msg_clear(corio_dist_msg *m);

/* A payload to send (corio_dist_queue_put_many, ack_many). */
typedef struct corio_dist_buf {
    const void *data;
    size_t len;
} corio_dist_buf;

/* ---- Queues ------------------------------------------------------------ */

typedef struct corio_dist_queue corio_dist_queue;

/* A handle on the queue called name (made on the backend by its first
 * put; a name ending in ".dead" is a dead-letter queue). Talks to nobody:
 * returns at once. NULL with errno EINVAL (d NULL, name empty or too
 * long), ENOMEM. Free it with corio_dist_queue_free (NULL returns 0). */
CORIO_EXPORT corio_dist_queue *corio_dist_queue_new(corio_dist *d,
                                                    const char *name);
CORIO_EXPORT int corio_dist_queue_free(corio_dist_queue *q);

/* Append a message of len bytes (len 0 allowed; data may be NULL then).
 * id (may be NULL) receives its task id: unique on the backend, never 0.
 * Returns 0, or -1 with errno: CORIO_ECLOSED (the queue was closed), the
 * errors above. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_put(corio_dist_queue *q, const void *data,
                                      size_t len, uint64_t *id,
                                      int64_t deadline);

/* Append n messages in one exchange; ids (may be NULL) receives n ids.
 * All or none are appended. Returns 0 or -1 as corio_dist_queue_put. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_put_many(corio_dist_queue *q,
                                           const corio_dist_buf *items,
                                           size_t n, uint64_t *ids,
                                           int64_t deadline);

/* Remove the oldest message into *out, waiting for one until deadline.
 * Returns 0, or -1 with errno: ETIMEDOUT (still empty: queue.Empty),
 * CORIO_ECLOSED (the queue is closed and empty), the errors above; *out
 * is zeroed on failure. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_get(corio_dist_queue *q, corio_dist_msg *out,
                                      int64_t deadline);

/* Lease the oldest message (see "Reliable delivery") into *out, waiting
 * for one until deadline. Errors as corio_dist_queue_get. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_take(corio_dist_queue *q, corio_dist_msg *out,
                                       int64_t deadline);

/* Lease up to max messages in one exchange, waiting until deadline for
 * the first; the others are those ready at once. Returns the count (>= 1)
 * written to out[0..], or -1 with errno as corio_dist_queue_get (EINVAL:
 * max 0). */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_dist_queue_take_many(corio_dist_queue *q,
                                                corio_dist_msg *out, size_t max,
                                                int64_t deadline);

/* Ack the task id leased from q, recording result (len bytes; NULL, 0 for
 * none) as its result, unless one is already recorded (then this result is
 * dropped: results are recorded once; once it is taken, the task is
 * forgotten and an ack is ENOENT). The task leaves the backend even if
 * its lease had expired and another taker holds it now. Task ids are
 * unique per backend: the ack finds the task by id (q names the queue it
 * was taken from). Returns 0, or -1 with errno: ENOENT (no task id exists:
 * never put, or gotten with corio_dist_queue_get), the errors above. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_ack(corio_dist_queue *q, uint64_t id,
                                      const void *result, size_t len,
                                      int64_t deadline);

/* Ack n tasks in one exchange, results[i] the result of ids[i] (results
 * may be NULL: no results). Returns 0, or -1 with errno as
 * corio_dist_queue_ack (ENOENT: one id was unknown; the others are
 * acked all the same). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_ack_many(corio_dist_queue *q,
                                           const uint64_t *ids,
                                           const corio_dist_buf *results,
                                           size_t n, int64_t deadline);

/* Give back the leased task id: it is delivered again at once (or goes to
 * the dead-letter queue if it has had max_deliveries). Returns 0, or -1
 * with errno: ENOENT (id is not leased: never taken, acked, or its lease
 * expired), the errors above. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_nack(corio_dist_queue *q, uint64_t id,
                                       int64_t deadline);

/* Renew the lease of task id for another lease period (a long task).
 * Returns 0, or -1 with errno as corio_dist_queue_nack. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_touch(corio_dist_queue *q, uint64_t id,
                                        int64_t deadline);

/* Messages waiting in q, not counting leased ones (Queue.qsize). Returns
 * the count, or -1 with errno. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_dist_queue_size(corio_dist_queue *q,
                                           int64_t deadline);

/* Close q for everyone (as corio_chan_close): later puts fail with
 * CORIO_ECLOSED; gets and takes return what is left, then fail with
 * CORIO_ECLOSED, and so do those waiting now. Acks still work. Closing a
 * closed queue returns 0. Returns 0, or -1 with errno. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_queue_close(corio_dist_queue *q, int64_t deadline);

/* ---- Results ----------------------------------------------------------- */

/* Wait until the result of task id is recorded (by an ack) and copy it to
 * *out (out->id = id). _get leaves it recorded; _take removes it and the
 * backend forgets the task (its memory is freed): a later get or take, and
 * a late ack of it, fail with ENOENT. Returns 0, or -1 with errno:
 * ETIMEDOUT, ENOENT (no such task, its result was taken, or it was
 * removed by a get), the errors above. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_result_get(corio_dist *d, uint64_t id,
                                       corio_dist_msg *out, int64_t deadline);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_result_take(corio_dist *d, uint64_t id,
                                        corio_dist_msg *out, int64_t deadline);

/* The batch form of corio_dist_result_take (asyncio.wait's
 * FIRST_COMPLETED over results): take the results of those of the n
 * tasks ids[0..n) that have one, at least one: if none has, wait until
 * deadline for the first to come. Returns how many were taken, k >= 1;
 * out[0..k) hold them, out[i].id saying whose (clear each with
 * corio_dist_msg_clear); the others are left for a later call. One
 * exchange with the backend; only the first CORIO_DIST_MANY_MAX ids are
 * looked at (n may be larger: call again with those left). Returns -1 with errno, nothing taken: ETIMEDOUT, ENOENT (none
 * has a result and one never will: never put, or its result taken),
 * EINVAL (n 0, an id 0, NULL), the errors above. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_dist_result_take_many(corio_dist *d,
                                                 const uint64_t *ids, size_t n,
                                                 corio_dist_msg *out,
                                                 int64_t deadline);

/* ---- The key-value map ------------------------------------------------- */

typedef struct corio_dist_map corio_dist_map;

/* A handle on the map called name (as corio_dist_queue_new). Keys are
 * non-empty strings up to CORIO_DIST_NAME_MAX bytes, values any bytes. */
CORIO_EXPORT corio_dist_map *corio_dist_map_new(corio_dist *d,
                                                const char *name);
CORIO_EXPORT int corio_dist_map_free(corio_dist_map *m);

/* Set key to the len bytes at value (replacing any). Returns 0 or -1. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_map_set(corio_dist_map *m, const char *key,
                                    const void *value, size_t len,
                                    int64_t deadline);

/* Copy key's value to *out. Returns 0, or -1 with errno: ENOENT (no such
 * key), the errors above. Does not wait for the key to appear. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_map_get(corio_dist_map *m, const char *key,
                                    corio_dist_msg *out, int64_t deadline);

/* Remove key. Returns 0, or -1 with errno: ENOENT (no such key). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_dist_map_del(corio_dist_map *m, const char *key,
                                    int64_t deadline);

/* ---- The manager (corio://) -------------------------------------------- */

typedef struct corio_dist_manager corio_dist_manager;

/* Options of a manager; zero fields take the default. */
typedef struct corio_dist_manager_opts {
    /* The shared secret (required, non-empty); authkey_len 0: strlen. */
    const char *authkey;
    size_t authkey_len;
    /* TLS on every connection (a server context), or NULL. */
    corio_tls *tls;
    /* Run in a process of its own (forked now; stopped by
     * corio_dist_manager_stop), as Python's BaseManager.start(); false:
     * in a task of the calling thread's loop (BaseManager.get_server()).
     * The process also ends when the thread that started it exits
     * (PR_SET_PDEATHSIG), so that it never outlives its program: start it
     * from a thread that lives as long as it should (main). */
    bool process;
    size_t max_frame;        /* largest frame accepted; 0: 16 MiB */
    size_t max_connections;  /* more are closed at once; 0: 4096 */
    int64_t auth_timeout;    /* ns a client has to authenticate; 0: 5 s */
} corio_dist_manager_opts;

/* Listen on addr (as corio_socket_listen: "127.0.0.1:5000", ":0") and
 * serve. Returns the manager, or NULL with errno: EINVAL (no authkey, a
 * bad address), EADDRINUSE, EACCES, ENOMEM, the fork's errors. */
CORIO_EXPORT corio_dist_manager *
corio_dist_manager_start(const char *addr, const corio_dist_manager_opts *opts);

/* The address it listens on, as text ("127.0.0.1:5000"; the real port
 * after ":0"), into buf. Returns the length, or -1 (ENOSPC). */
CORIO_EXPORT int corio_dist_manager_addr(const corio_dist_manager *m,
                                         char *buf, size_t size);

/* The manager's process id (process mode), or 0 in a task. */
CORIO_EXPORT pid_t corio_dist_manager_pid(const corio_dist_manager *m);

/* Stop serving (close every connection: their state is dropped with the
 * manager) and free m. In process mode, the process is sent SIGTERM and
 * waited for until deadline, then killed. Returns 0, or -1 with errno
 * (ETIMEDOUT: the process had to be killed; ECHILD: it had already died;
 * m is freed all the same); NULL returns 0. */
CORIO_EXPORT int corio_dist_manager_stop(corio_dist_manager *m,
                                         int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
