/* T3: examples/t3_busy_threads.c -- N busy threads on an N-core machine use
 * N cores: C has no GIL.
 *
 * The seed (threading):
 *
 *     def loop():
 *         x = 0
 *         while True:
 *             x = x ^ 1
 *
 *     for i in range(multiprocessing.cpu_count()):
 *         t = threading.Thread(target=loop)
 *         t.start()
 *
 * In CPython the GIL lets one thread run Python code at a time: the seed's
 * threads share one core. corio's threads are plain OS threads: each runs
 * on a core of its own. The program starts one busy thread per online CPU
 * (or the number given as its argument), lets them spin for a second (the
 * seed spins forever), and measures the process's CPU time
 * (getrusage) against the wall time: about N x the wall time when the
 * machine is otherwise idle (less if other programs share the cores).
 *
 * Prints (N = 2 here; the figures are measured):
 *     2 busy threads for 1.00 s (wall): CPU time 1.99 s = 1.99 x wall
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_THREADS 256

static int stop; /* atomic */

/* loop(): x = x ^ 1 until told to stop. */
static void *loop(void *arg)
{
    unsigned long x = 0;

    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        x = x ^ 1;
    return (void *)x;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) == -1)
        return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    corio_thread *t[MAX_THREADS];
    long n = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
    double cpu0, cpu, wall;
    int64_t t0;

    if (n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "usage: %s [threads: 1..%d]\n", argv[0], MAX_THREADS);
        return 2;
    }
    cpu0 = cpu_seconds();
    t0 = corio_now();
    for (long i = 0; i < n; i++) {
        t[i] = corio_thread_start(loop, NULL, NULL);
        if (t[i] == NULL) {
            fprintf(stderr, "corio_thread_start: %s\n",
                    corio_strerror(errno));
            return 1;
        }
    }
    usleep(1000000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (long i = 0; i < n; i++) {
        if (corio_thread_join(t[i], NULL, -1) == -1 ||
            corio_thread_free(t[i]) == -1) {
            fprintf(stderr, "corio_thread_join: %s\n",
                    corio_strerror(errno));
            return 1;
        }
    }
    wall = (double)(corio_now() - t0) / CORIO_SECOND;
    cpu = cpu_seconds() - cpu0;
    printf("%ld busy threads for %.2f s (wall): CPU time %.2f s = %.2f x "
           "wall\n", n, wall, cpu, cpu / wall);
    return 0;
}
