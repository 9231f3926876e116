/* bench/loop/common.h -- what corio_loop.c and uv_loop.c share: clocks, the
 * memory high-water mark, the timer schedule and lateness statistics.
 *
 * The schedule generator is splitmix64, written the same way in peers.py, so
 * that every implementation gets the same N delays for the same seed. Static
 * functions only: each program includes this once. */
#ifndef BENCH_LOOP_COMMON_H
#define BENCH_LOOP_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The process's CPU time so far, user + system (getrusage). */
static inline int64_t bench_cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* A "Vm...:" line of /proc/self/status, in KiB (-1 if missing). */
static inline long bench_vm_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, strlen(key)) == 0) {
            kib = strtol(line + strlen(key), NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static inline long bench_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == 0 || *end != 0 || v < 0) {
        fprintf(stderr, "bench: bad count '%s'\n", s);
        exit(2);
    }
    return v;
}

/* n delays in whole milliseconds, 0..1000, from seed (splitmix64). */
static inline void bench_delays_ms(int64_t *out, long n, uint64_t seed)
{
    uint64_t x = seed;

    for (long i = 0; i < n; i++) {
        uint64_t z;

        x += 0x9E3779B97F4A7C15ull;
        z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[i] = (int64_t)(z % 1001);
    }
}

struct bench_stats {
    int64_t mean, p50, p99, max, min;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Statistics of v[0..n) (n > 0); v is left sorted. */
static inline void bench_stats(int64_t *v, long n, struct bench_stats *st)
{
    long double sum = 0;

    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    for (long i = 0; i < n; i++)
        sum += v[i];
    st->mean = (int64_t)(sum / n);
    st->p50 = v[(n - 1) / 2];
    st->p99 = v[(long)((n - 1) * 0.99)];
    st->max = v[n - 1];
    st->min = v[0];
}

#endif
