/* include/corio/ipc.h -- talking between processes: shared memory blocks by
 * name, a Queue any number of processes put into and get from, a duplex Pipe
 * of framed messages, and the prefork supervisor (one worker process or
 * thread per core serving one address). Part of corio.h.
 *
 * Python's multiprocessing.shared_memory, multiprocessing.Queue and
 * multiprocessing.Pipe, and nginx's master/worker model. The Queue and the
 * Pipe live in shared memory mapped before fork(): make them in the parent,
 * then fork (corio_process_start, or fork(2)); every descendant uses the same
 * object. Their fast paths make no system call: a put into a Queue that has
 * room, with nobody waiting, is a few atomic operations on shared memory.
 *
 * Blocking calls: inside a task they suspend only the calling task (the
 * loop's other tasks keep running; cancellation and scopes apply); outside
 * a task they block the calling thread, as multiprocessing's calls do. */
#ifndef CORIO_IPC_H
#define CORIO_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "corio/error.h"
#include "corio/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Shared memory blocks by name ----------------------------------------
 * multiprocessing.shared_memory.SharedMemory: a block of memory any process
 * can map by its name (POSIX shm_open, /dev/shm/<name>). The block outlives
 * the processes until one unlinks it. */
typedef struct corio_shm corio_shm;

/* Create a new block of size bytes (> 0), zero-filled, and map it. name:
 * letters, digits, '-', '_' and '.', 1 to 200 characters, or NULL for a
 * fresh name ("corio-<pid>-<n>"). Returns the block, owned by the caller
 * (corio_shm_close; corio_shm_unlink to remove the name), or NULL with errno
 * EINVAL (bad name, size 0), EEXIST (the name exists), EMFILE, ENOMEM,
 * EACCES. */
CORIO_EXPORT corio_shm *corio_shm_create(const char *name, size_t size);

/* Map the existing block called name (its whole size). Returns it, owned
 * by the caller, or NULL with errno ENOENT (no such block), EINVAL (bad
 * name, or an empty block), EACCES, EMFILE, ENOMEM. */
CORIO_EXPORT corio_shm *corio_shm_attach(const char *name);

/* The mapped memory, its size and its name (without the leading '/'). */
CORIO_EXPORT void *corio_shm_data(const corio_shm *shm);
CORIO_EXPORT size_t corio_shm_size(const corio_shm *shm);
CORIO_EXPORT const char *corio_shm_name(const corio_shm *shm);

/* Remove the block's name: processes that mapped it keep it until they
 * close it; the memory goes with the last mapping. Returns 0, or -1 with
 * errno ENOENT (already unlinked), EINVAL (shm is NULL). */
CORIO_EXPORT int corio_shm_unlink(corio_shm *shm);

/* Unmap the block from this process and free shm (the name stays: see
 * corio_shm_unlink). corio_shm_close(NULL) returns 0. Returns 0. */
CORIO_EXPORT int corio_shm_close(corio_shm *shm);

/* ---- Queue ------------------------------------------------------------------
 * multiprocessing.Queue: a bounded FIFO of messages (byte strings of any
 * size up to msg_max) between any number of processes. A message is copied
 * in by put and out by get: the queue owns no pointer of the caller's.
 *
 * A process killed at any point (kill -9 in the middle of a put or a get)
 * never blocks nor corrupts the queue: there is no lock. Each slot is
 * claimed with one atomic compare-and-swap that records the claimer's pid;
 * a message a dead process left half-written is skipped, a slot a dead
 * reader held is reclaimed (the message it was taking is lost with it). */
typedef struct corio_queue corio_queue;

/* Options of a queue; zero fields (or opts NULL) take the default. */
typedef struct corio_queue_opts {
    size_t capacity;    /* messages the queue holds; 0: 128 (at most 2^20) */
    size_t msg_max;     /* the longest message, bytes; 0: 4096 (at most
                           64 MiB); every slot reserves this much */
} corio_queue_opts;

/* A new open queue in anonymous shared memory: processes forked after this
 * call share it. Returns the queue, owned by the caller (every process that
 * has it calls corio_queue_free once), or NULL with errno EINVAL (capacity
 * or msg_max too big), ENOMEM. */
CORIO_EXPORT corio_queue *corio_queue_new(const corio_queue_opts *opts);

/* Put len bytes at msg (msg may be NULL when len is 0) at the tail, waiting
 * until deadline while the queue is full. Returns 0, or -1 with errno (the
 * message was not put):
 *   CORIO_ECLOSED  the queue is closed (or was closed while waiting);
 *   EMSGSIZE   len > msg_max;
 *   ETIMEDOUT, ECANCELED  deadline passed, the task was cancelled;
 *   EDEADLK    a loop callback would have to wait;
 *   EINVAL     q is NULL, or msg NULL with len > 0. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_queue_put(corio_queue *q, const void *msg, size_t len,
                                 int64_t deadline);

/* Take the oldest message into buf (size bytes), waiting until deadline
 * while the queue is empty. Returns the message's length, or -1 with errno
 * (nothing was taken):
 *   CORIO_ECLOSED  the queue is closed and empty;
 *   EMSGSIZE   the oldest message is longer than size (it stays queued);
 *   ETIMEDOUT, ECANCELED, EDEADLK as corio_queue_put;
 *   EINVAL     q is NULL, or buf NULL with size > 0. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_queue_get(corio_queue *q, void *buf, size_t size,
                                     int64_t deadline);

/* put and get without waiting (put_nowait, get_nowait): -1 with errno
 * EAGAIN where they would wait, else as above. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_queue_try_put(corio_queue *q, const void *msg,
                                     size_t len);
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_queue_try_get(corio_queue *q, void *buf,
                                         size_t size);

/* Close q in every process: puts fail with CORIO_ECLOSED from now on (the
 * waiting ones too), gets take the messages still queued, then fail with
 * CORIO_ECLOSED. Returns 0, or -1 with errno EALREADY, EINVAL. */
CORIO_EXPORT int corio_queue_close(corio_queue *q);

/* True once q is closed (by any process). */
CORIO_EXPORT bool corio_queue_is_closed(const corio_queue *q);

/* The number of messages queued now (a snapshot: others may be putting and
 * getting), and the options the queue was made with. */
CORIO_EXPORT size_t corio_queue_len(const corio_queue *q);
CORIO_EXPORT size_t corio_queue_capacity(const corio_queue *q);
CORIO_EXPORT size_t corio_queue_msg_max(const corio_queue *q);

/* Unmap q from this process (the others keep theirs) and free it.
 * corio_queue_free(NULL) returns 0. Returns 0, or -1 with errno EBUSY if a
 * task of this process waits on q (nothing is done). */
CORIO_EXPORT int corio_queue_free(corio_queue *q);

/* ---- Pipe -------------------------------------------------------------------
 * multiprocessing.Pipe(duplex=True): two connected ends; each end sends
 * framed messages (one send is one recv at the other end, whole) and
 * receives those of the other end. The messages travel through two rings
 * in shared memory (one per direction); a small socket pair per direction
 * only rings the bell when the other side sleeps, and tells an end that the
 * other end is gone (closed in every process, or its processes died).
 *
 * As with os.pipe and fork: after forking, each process closes the end it
 * does not use, so that the other end sees the end of the stream when the
 * user closes or dies. An end is one process's: at most one task sends and
 * one task receives on it at a time. */
typedef struct corio_pipe corio_pipe;

/* Options of a pipe; zero fields (or opts NULL) take the default. */
typedef struct corio_pipe_opts {
    size_t ring_size;   /* bytes buffered per direction; 0: 256 KiB (from
                           4 KiB to 1 GiB, rounded up to a power of two);
                           a message takes its length plus 8 bytes */
} corio_pipe_opts;

/* A new pipe: *a and *b are its two ends, both owned by the caller (each
 * closed with corio_pipe_close, in each process that has it). Returns 0,
 * or -1 with errno EINVAL (a or b NULL, ring_size out of range), EMFILE,
 * ENOMEM. */
CORIO_EXPORT int corio_pipe_new(corio_pipe **a, corio_pipe **b,
                                const corio_pipe_opts *opts);

/* Send len bytes at msg (NULL when len is 0) to the other end, waiting
 * until deadline while its ring is full. Returns 0, or -1 with errno:
 *   EPIPE      the other end is closed everywhere (nothing was sent);
 *   EMSGSIZE   the message can never fit (len + 8 > ring_size);
 *   ETIMEDOUT, ECANCELED, EDEADLK  as corio_queue_put;
 *   EBUSY      another task of this process sends on p now;
 *   EINVAL     p is NULL, or msg NULL with len > 0. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_pipe_send(corio_pipe *p, const void *msg, size_t len,
                                 int64_t deadline);

/* Receive the next message into buf (size bytes), waiting until deadline
 * while none is there. Returns its length (0 for an empty message), or -1
 * with errno:
 *   CORIO_EEOF  the other end is closed everywhere and every message it
 *               sent has been received (Python's EOFError);
 *   EMSGSIZE   the next message is longer than size (it stays there);
 *   ETIMEDOUT, ECANCELED, EDEADLK, EBUSY, EINVAL as corio_pipe_send. */
CORIO_WARN_UNUSED
CORIO_EXPORT ssize_t corio_pipe_recv(corio_pipe *p, void *buf, size_t size,
                                     int64_t deadline);

/* Whether a message is waiting to be received now (Connection.poll(0)). */
CORIO_EXPORT bool corio_pipe_poll(const corio_pipe *p);

/* Close this process's copy of the end p and free it. The other end sees
 * CORIO_EEOF (after the messages sent before) once p is closed in every
 * process that had it. corio_pipe_close(NULL) returns 0. Returns 0, or -1
 * with errno EBUSY if a task of this process waits on p (nothing is done). */
CORIO_EXPORT int corio_pipe_close(corio_pipe *p);

/* ---- One loop per core: the prefork supervisor ---------------------------
 * nginx's master and workers: the calling process supervises one worker
 * process per core, each running its own loop (corio_run) and a corio
 * server on the same address (SO_REUSEPORT: the kernel spreads the
 * connections over the workers). The supervisor keeps the port bound (not
 * listening) for as long as it runs, so a worker restarted later gets the
 * same port, also when port 0 was asked.
 *
 * Signals to the supervisor: SIGTERM or SIGINT stop every worker (each
 * stops its server: its handlers get until stop_timeout to finish, then are
 * cancelled; a worker still alive after stop_timeout is killed); SIGHUP
 * reloads the workers one at a time (a new worker starts and serves before
 * the old one is stopped, so the address never goes unserved; a connection
 * still queued on the old worker's socket when it closes is reset, unless
 * net.ipv4.tcp_migrate_req is 1). A worker
 * that dies is started again (at most one restart per slot per 100 ms).
 * Workers are killed if the supervisor dies (PR_SET_PDEATHSIG). With
 * opts.threads, the workers are threads of the calling process instead,
 * one loop per thread, under the same supervisor. */
typedef struct corio_prefork_opts {
    size_t workers;             /* 0: one per online CPU */
    /* Workers are threads of this process, each with its own loop, instead
     * of processes (the same model in one process: shared memory, no
     * isolation). A thread cannot be killed: at stop_timeout its server
     * cancels its handlers, and the supervisor waits for it to end (a
     * handler that never yields keeps it); a thread worker whose server
     * fails is started again. on_worker runs in the worker's thread. */
    bool threads;
    int64_t stop_timeout;       /* ns; 0: 5 s */
    corio_listen_opts listen;   /* each worker's server; reuseport is
                                   forced on; NULL fields: defaults */
    /* Called in the supervisor once every worker serves, with the bound
     * address (its real port when port 0 was asked); may be NULL. */
    void (*on_ready)(const corio_addr *bound, void *arg);
    void *ready_arg;
    /* Called in each worker process before its loop starts (slot 0 to
     * workers-1; a restarted or reloaded worker keeps its slot); may be
     * NULL. A non-zero return ends the worker with that exit code. */
    int (*on_worker)(size_t slot, void *arg);
} corio_prefork_opts;

/* Serve addr (numeric "ip:port", "[ip6]:port") with handler(stream, arg)
 * in every worker, and supervise them until SIGTERM or SIGINT (opts may be
 * NULL). The handler runs in the workers (forked after this call starts),
 * as a corio_server's. Call it on a thread with no running loop: it blocks
 * SIGTERM, SIGINT, SIGHUP and SIGCHLD in the calling thread while it runs
 * (a multi-threaded program must block them in its other threads too).
 * Returns 0 once every worker has stopped in time, or -1 with errno:
 *   ETIMEDOUT  some workers had to be killed at stop_timeout (threads:
 *              some ended after it);
 *   EINVAL     addr is not a numeric address, handler is NULL;
 *   EBUSY      called from a task or a running loop;
 *   ECHILD     the first workers could not start serving (the address is
 *              in use, the on_worker hook failed: their stderr says why);
 *   an error of binding the address (EADDRINUSE, EACCES, ...). */
CORIO_EXPORT int corio_prefork_serve(const char *addr, corio_conn_fn handler,
                                     void *arg,
                                     const corio_prefork_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
