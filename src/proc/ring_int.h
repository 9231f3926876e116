/* src/proc/ring_int.h -- a byte ring in shared memory with one writer and
 * one reader, each usually in a process of its own: the Pipe's two
 * directions (pipe.c) and the answers of a pool worker to its manager
 * (pool_proc.c). The writer owns the tail, the reader the head; both only
 * grow (the position in the ring is the counter modulo its size, a power
 * of two). Each side raises its `sleeps` flag before it waits for the
 * other (ipc_int.h: the wake-up handshake); the other side takes the flag
 * after its store and wakes it: with a byte on a socket (a bell, which a
 * task can wait for in its loop) or a futex. */
#ifndef CORIO_PROC_RING_INT_H
#define CORIO_PROC_RING_INT_H

#include "ipc_int.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The counters of one direction, in shared memory, a cache line each (the
 * two sides run on different cores). */
struct corio__ring {
    alignas(64) _Atomic uint64_t tail;      /* bytes written (writer's) */
    _Atomic uint32_t reader_sleeps;         /* the reader waits for data */
    alignas(64) _Atomic uint64_t head;      /* bytes read (reader's) */
    _Atomic uint32_t writer_sleeps;         /* the writer waits for room */
};

/* Copy n bytes in at counter pos (n <= size), in two pieces where the ring
 * wraps. */
static inline void corio__ring_copy_in(unsigned char *data, uint64_t size,
                                       uint64_t pos, const void *src, size_t n)
{
    uint64_t off = pos & (size - 1);
    size_t first = n < size - off ? n : (size_t)(size - off);

    memcpy(data + off, src, first);
    memcpy(data, (const char *)src + first, n - first);
}

/* Copy n bytes out from counter pos (n <= size). */
static inline void corio__ring_copy_out(const unsigned char *data,
                                        uint64_t size, uint64_t pos,
                                        void *dst, size_t n)
{
    uint64_t off = pos & (size - 1);
    size_t first = n < size - off ? n : (size_t)(size - off);

    memcpy(dst, data + off, first);
    memcpy((char *)dst + first, data, n - first);
}

/* After a store to the ring: true if the other side sleeps, which it then
 * no longer does (one wake-up per sleep: the next stores need none until it
 * sleeps again). The fence orders the store before the flag's load (the
 * sleeper raises its flag, then checks the ring: one of the two sees the
 * other). */
static inline bool corio__ring_flag_take(_Atomic uint32_t *sleeps)
{
    corio__ipc_waker_fence();
    return atomic_load_explicit(sleeps, memory_order_relaxed) != 0 &&
           atomic_exchange(sleeps, 0) != 0;
}

/* The same, and a byte on fd if it sleeps. A full socket already holds a
 * bell; a gone peer needs none: the send's failure is ignored. */
static inline void corio__bell_ring(_Atomic uint32_t *sleeps, int fd)
{
    ssize_t r;

    if (!corio__ring_flag_take(sleeps))
        return;
    r = send(fd, "b", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)r;
}

/* Take the bells that came on fd (non-blocking). Returns true if the other
 * end is gone (the socket ended or failed). */
static inline bool corio__bell_drain(int fd)
{
    char buf[64];
    ssize_t r;

    for (;;) {
        r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0 || (r == -1 && errno == EINTR))
            continue;
        return r == 0 || errno != EAGAIN;
    }
}

#endif
