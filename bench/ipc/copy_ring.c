/* bench/ipc/copy_ring.c -- the ceiling of the IPC benchmark on this
 * machine: the fastest way to hand fixed-size messages from one process to
 * another by copying them, so that corio's Queue and Pipe (and the targets)
 * can be read against what the hardware allows. One producer, one consumer,
 * a ring of 1024 slots in shared memory, two counters, busy-waiting: no
 * blocking, no second producer, no safety against a killed process --
 * nothing a real queue can do without. (A side that finds nothing to do
 * spins, and yields its CPU after a while, in case both run on one.) The producer copies each message in,
 * the consumer copies it out (as corio_queue_put/get do) and checks a
 * checksum. Prints one RESULT line (bench/benchlib.py parses it).
 *
 *     copy_ring SIZE COUNT */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024

static void idle(unsigned *spins)
{
    if (++*spins < 1000)
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        ;
#endif
    else
        sched_yield();
}

struct ring {
    _Alignas(64) _Atomic uint64_t head;     /* messages taken */
    _Alignas(64) _Atomic uint64_t tail;     /* messages put */
    _Alignas(64) unsigned char data[];
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t size, slot;
    long count;
    struct ring *r;
    unsigned char *msg, *buf;
    uint64_t t = 0;
    double t0, secs;
    int status;
    pid_t pid;

    if (argc != 3 || (size = strtoul(argv[1], NULL, 10)) == 0 ||
        (count = atol(argv[2])) <= 0) {
        fprintf(stderr, "usage: copy_ring SIZE COUNT\n");
        return 2;
    }
    slot = (size + 63) & ~(size_t)63;
    r = mmap(NULL, sizeof(*r) + slot * SLOTS, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    msg = calloc(1, size);
    buf = calloc(1, size);
    if (r == MAP_FAILED || msg == NULL || buf == NULL) {
        perror("copy_ring");
        return 1;
    }
    msg[0] = 7;
    t0 = now();
    pid = fork();
    if (pid == -1) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        uint64_t h = 0, sum = 0;

        for (long i = 0; i < count; i++) {
            unsigned spins = 0;

            while (atomic_load_explicit(&r->tail, memory_order_acquire) == h)
                idle(&spins);
            memcpy(buf, r->data + (h % SLOTS) * slot, size);
            sum += buf[0];
            atomic_store_explicit(&r->head, ++h, memory_order_release);
        }
        _exit(sum == (uint64_t)count * 7 ? 0 : 1);
    }
    for (long i = 0; i < count; i++) {
        unsigned spins = 0;

        while (t - atomic_load_explicit(&r->head, memory_order_acquire) ==
               SLOTS)
            idle(&spins);
        memcpy(r->data + (t % SLOTS) * slot, msg, size);
        atomic_store_explicit(&r->tail, ++t, memory_order_release);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "copy_ring: the consumer failed\n");
        return 1;
    }
    secs = now() - t0;
    printf("RESULT impl=copy_ring size=%zu msgs=%ld secs=%.4f rate=%.0f\n",
           size, count, secs, (double)count / secs);
    return 0;
}
