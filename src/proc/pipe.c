/* src/proc/pipe.c -- the duplex Pipe between processes
 * (multiprocessing.Pipe): two ends, each sending framed messages to the
 * other through a ring of its own in shared memory.
 *
 * A ring has one writer and one reader (an end is one process's, one
 * sending and one receiving task at a time): the writer owns the tail, the
 * reader the head, and a message is an 8-byte header (its length) and its
 * bytes padded to 8, copied in two pieces where the ring wraps. A send that
 * finds room and a receive that finds a message are a few loads and one
 * release store: no system call, no lock.
 *
 * The bells. A side that must wait (the reader on an empty ring, the writer
 * on a full one) raises its `sleeps` flag, checks the ring again, and waits
 * for a byte on a socket pair of that ring; the other side, after its
 * store, sees the flag and sends the byte (the barriers of this handshake
 * cost the sleeper, not each message: ipc_int.h). The socket pair also carries the
 * end of the stream: when every process holding the other end has closed
 * it (or died), the kernel closes its sockets, the waiting side reads 0
 * bytes, and the reader returns the messages left, then CORIO_EEOF; the
 * writer fails with EPIPE. A socket is an fd, so a task waits on it in its
 * loop like on any socket: no thread.
 *
 *   ring 0: end a --> end b     socket pair 0: [0] at a (bell: data),
 *   ring 1: end b --> end a                    [1] at b (bell: room)
 *                               socket pair 1: [0] at b, [1] at a
 *
 * What this file does not do: share an end between processes at once
 * (messages would interleave), or carry file descriptors. */
#define _GNU_SOURCE
#include "ipc_int.h"
#include "ring_int.h"
#include "corio/loop.h"
#include "corio/io.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_RING_DEFAULT (256u << 10)
#define PIPE_RING_MIN 4096u
#define PIPE_RING_MAX (1u << 30)
#define PIPE_HDR 8u
#define PIPE_SPINS 64

/* The shared mapping: two rings' counters, then their bytes. */
struct pshared {
    struct corio__ring ring[2];
    uint64_t size;                          /* bytes of each ring */
};

/* The mapping as this process holds it, shared by its two end objects. */
struct pmap {
    struct pshared *sh;
    size_t map_size;
    int refs;                               /* ends of this process */
};

struct corio_pipe {
    struct pmap *map;
    struct corio__ring *out, *in;           /* what we send, receive */
    unsigned char *out_data, *in_data;
    uint64_t size;
    int send_fd;                            /* bells of `out` */
    int recv_fd;                            /* bells of `in` */
    bool sending, receiving;                /* a task of ours is in it */
    bool peer_gone;                         /* read 0 on a bell socket */
    /* The other side's counters as last read: they only grow, so an old
     * value is a safe bound, read again only when it says full (empty).
     * The counter's line then crosses between the cores once per batch,
     * not once per message. */
    uint64_t head_seen;                     /* out->head */
    uint64_t tail_seen;                     /* in->tail */
};

static inline uint64_t record_size(size_t len)
{
    return PIPE_HDR + (((uint64_t)len + 7) & ~(uint64_t)7);
}

/* ---- Making and closing ------------------------------------------------ */

static corio_pipe *end_new(struct pmap *map, int out, int send_fd,
                           int recv_fd)
{
    corio_pipe *p = calloc(1, sizeof(*p));
    unsigned char *base = (unsigned char *)map->sh + sizeof(struct pshared);

    if (p == NULL)
        return NULL;
    p->map = map;
    p->size = map->sh->size;
    p->out = &map->sh->ring[out];
    p->in = &map->sh->ring[!out];
    p->out_data = base + (size_t)out * p->size;
    p->in_data = base + (size_t)!out * p->size;
    p->send_fd = send_fd;
    p->recv_fd = recv_fd;
    return p;
}

static size_t ring_size_of(const corio_pipe_opts *opts)
{
    size_t want = opts != NULL && opts->ring_size ? opts->ring_size
                                                  : PIPE_RING_DEFAULT;
    size_t size = PIPE_RING_MIN;

    if (want > PIPE_RING_MAX)
        return 0;
    while (size < want)
        size <<= 1;
    return size;
}

int corio_pipe_new(corio_pipe **a, corio_pipe **b,
                   const corio_pipe_opts *opts)
{
    size_t size = ring_size_of(opts);
    int sp0[2] = {-1, -1}, sp1[2] = {-1, -1}, err;
    struct pmap *map;

    if (a == NULL || b == NULL || size == 0) {
        errno = EINVAL;
        return -1;
    }
    *a = *b = NULL;
    map = calloc(1, sizeof(*map));
    if (map == NULL)
        return -1;
    map->map_size = sizeof(struct pshared) + 2 * size;
    map->sh = mmap(NULL, map->map_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map->sh == MAP_FAILED) {
        free(map);
        errno = ENOMEM;
        return -1;
    }
    map->sh->size = size;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sp0) == -1 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sp1) == -1)
        goto fail;
    *a = end_new(map, 0, sp0[0], sp1[1]);
    *b = end_new(map, 1, sp1[0], sp0[1]);
    if (*a == NULL || *b == NULL)
        goto fail;
    map->refs = 2;
    return 0;

fail:
    err = errno;
    free(*a);
    free(*b);
    *a = *b = NULL;
    for (int i = 0; i < 2; i++) {
        if (sp0[i] >= 0)
            close(sp0[i]);
        if (sp1[i] >= 0)
            close(sp1[i]);
    }
    munmap(map->sh, map->map_size);
    free(map);
    errno = err;
    return -1;
}

int corio_pipe_close(corio_pipe *p)
{
    struct pmap *map;

    if (p == NULL)
        return 0;
    if (p->sending || p->receiving) {
        errno = EBUSY;
        return -1;
    }
    corio_fd_close(p->send_fd);
    corio_fd_close(p->recv_fd);
    map = p->map;
    free(p);
    if (--map->refs == 0) {
        munmap(map->sh, map->map_size);
        free(map);
    }
    return 0;
}

/* ---- Bells (ring_int.h rings and drains them) ------------------------ */

/* Sleep on fd with the flag raised, unless recheck() finds it needless.
 * Returns 0 to try again, -1 with errno. */
static int bell_wait(corio_pipe *p, enum corio__ipc_ctx ctx,
                     _Atomic uint32_t *sleeps, int fd,
                     bool (*ready)(corio_pipe *p, size_t need),
                     size_t need, int64_t deadline)
{
    int rc = 0;
    bool blind;

    /* A plain thread spins a little first: the other side is often on
     * another core, about to store (a sleep and a bell cost microseconds). */
    for (int i = 0; ctx == CORIO__IPC_THREAD && i < PIPE_SPINS; i++) {
        if (ready(p, need))
            return 0;
        corio__cpu_relax();
    }
    atomic_store(sleeps, 1);
    blind = !corio__ipc_sleeper_fence();
    if (!ready(p, need) && !p->peer_gone) {
        int64_t until = blind ? corio__deadline_min(deadline, corio_now() +
                                                    CORIO__IPC_BLIND_SLICE)
                              : deadline;

        rc = corio__ipc_wait_fd(ctx, fd, until);
        if (rc == 0)
            p->peer_gone |= corio__bell_drain(fd);
        else if (errno == ETIMEDOUT && until != deadline)
            rc = 0;   /* a slice of a blind wait: look again */
    }
    atomic_store(sleeps, 0);
    return rc;
}

/* ---- Send and receive -------------------------------------------------- */

static bool has_room(corio_pipe *p, size_t need)
{
    uint64_t tail = atomic_load_explicit(&p->out->tail, memory_order_relaxed);

    /* need <= size (send checks): no wrap; a bound older than the tail's
     * last round (an end used by another process before) reads as full */
    if (tail - p->head_seen <= p->size - need)
        return true;
    p->head_seen = atomic_load_explicit(&p->out->head, memory_order_acquire);
    return tail - p->head_seen <= p->size - need;
}

static bool has_message(corio_pipe *p, size_t need)
{
    uint64_t head = atomic_load_explicit(&p->in->head, memory_order_relaxed);

    (void)need;
    if (p->tail_seen > head)   /* not !=: the head may be past an old bound */
        return true;
    p->tail_seen = atomic_load_explicit(&p->in->tail, memory_order_acquire);
    return p->tail_seen > head;
}

static void put_record(corio_pipe *p, const void *msg, size_t len)
{
    uint64_t tail = atomic_load_explicit(&p->out->tail, memory_order_relaxed);
    uint32_t hdr[2] = {(uint32_t)len, 0};

    corio__ring_copy_in(p->out_data, p->size, tail, hdr, PIPE_HDR);
    if (len > 0)
        corio__ring_copy_in(p->out_data, p->size, tail + PIPE_HDR, msg, len);
    atomic_store_explicit(&p->out->tail, tail + record_size(len),
                          memory_order_release);
    corio__bell_ring(&p->out->reader_sleeps, p->send_fd);
}

int corio_pipe_send(corio_pipe *p, const void *msg, size_t len,
                    int64_t deadline)
{
    enum corio__ipc_ctx ctx;
    uint64_t need = record_size(len);
    int rc = 0;

    if (corio__ipc_bad_args(p, msg, len))
        return -1;
    if (len > UINT32_MAX || need > p->size) {
        errno = EMSGSIZE;
        return -1;
    }
    if (corio__ipc_enter(len, &ctx) == -1)
        return -1;
    if (p->sending) {
        errno = EBUSY;
        return -1;
    }
    p->sending = true;
    while (!has_room(p, need)) {
        if (p->peer_gone) {
            errno = EPIPE;
            rc = -1;
            break;
        }
        rc = bell_wait(p, ctx, &p->out->writer_sleeps, p->send_fd, has_room,
                       need, deadline);
        if (rc == -1)
            break;
    }
    if (rc == 0)
        put_record(p, msg, len);
    p->sending = false;
    return rc;
}

/* Take the record at the head into buf; -1 EMSGSIZE if it does not fit. */
static ssize_t take_record(corio_pipe *p, void *buf, size_t size)
{
    uint64_t head = atomic_load_explicit(&p->in->head, memory_order_relaxed);
    uint32_t hdr[2];
    size_t len;

    corio__ring_copy_out(p->in_data, p->size, head, hdr, PIPE_HDR);
    len = hdr[0];
    if (len > size) {
        errno = EMSGSIZE;
        return -1;
    }
    if (len > 0)
        corio__ring_copy_out(p->in_data, p->size, head + PIPE_HDR, buf, len);
    atomic_store_explicit(&p->in->head, head + record_size(len),
                          memory_order_release);
    corio__bell_ring(&p->in->writer_sleeps, p->recv_fd);
    return (ssize_t)len;
}

ssize_t corio_pipe_recv(corio_pipe *p, void *buf, size_t size,
                        int64_t deadline)
{
    enum corio__ipc_ctx ctx;
    ssize_t r = 0;

    if (corio__ipc_bad_args(p, buf, size))
        return -1;
    if (corio__ipc_enter(size, &ctx) == -1)
        return -1;
    if (p->receiving) {
        errno = EBUSY;
        return -1;
    }
    p->receiving = true;
    while (!has_message(p, 0)) {
        if (p->peer_gone) {
            errno = CORIO_EEOF;
            r = -1;
            break;
        }
        if (bell_wait(p, ctx, &p->in->reader_sleeps, p->recv_fd,
                      has_message, 0, deadline) == -1) {
            r = -1;
            break;
        }
    }
    if (r == 0)
        r = take_record(p, buf, size);
    p->receiving = false;
    return r;
}

bool corio_pipe_poll(const corio_pipe *p)
{
    return p != NULL &&
           atomic_load_explicit(&p->in->tail, memory_order_acquire) !=
               atomic_load_explicit(&p->in->head, memory_order_relaxed);
}
