/* src/proc/ring_int.h -- a byte ring in shared memory with one writer and
 * one reader, each usually in a process of its own: the Pipe's two
 * directions (pipe.c) and the answers of a pool worker to its manager
 * (pool_proc.c). The writer owns the tail, the reader the head; both only
 * grow (the position in the ring is the counter modulo its size, a power
 * of two). Each side raises its `sleeps` flag before it waits for the
 * other (ipc_int.h: the wake-up handshake); how it is woken (a byte on a
 * socket, a futex) is the user's. */
#ifndef CORIO_PROC_RING_INT_H
#define CORIO_PROC_RING_INT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

#endif
