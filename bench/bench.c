/* bench/bench.c -- the C side of corio's benchmarks: one workload per
 * process, chosen on the command line, printing one "RESULT key=value ..."
 * line that scripts/bench (bench/driver.py) collects into the table.
 *
 *   corio_bench pingpong corio|corio_compact|corio_fn|ucontext|fcontext
 *               ROUNDTRIPS [WARMUP]
 *       ping-pong between the thread's stack and one coroutine: a round trip
 *       is one switch in and one switch out (2 switches). corio_compact: the
 *       coroutine on a COMPACT stack. corio_fn: the same with each side
 *       calling resume/yield from a function that returns.
 *   corio_bench gen ROUNDTRIPS [WARMUP]
 *       corio_gen_send(g, CORIO_INT(i), &out) against a body doing
 *       x = yield x + 1 (corio_gen_yield): a round trip carries an integer
 *       each way and is 2 switches.
 *   corio_bench spawn compact|guarded COUNT [probe]
 *       create COUNT coroutines that each start and park (resumed once, the
 *       body yields), then finish them all (resume to return, free); then
 *       the same again on the pooled stacks (warm). Wall times, minor page
 *       faults and the memory high-water mark. With probe, then touch COUNT
 *       fresh pages without corio (the cost of that many page faults now).
 *   corio_bench faultprobe
 *       the cost of one first-touch page fault on this machine: mmap, touch
 *       one byte per page, time it.
 *
 * The ping-pong and gen modes run WARMUP round trips before the timed ones
 * (default 100,000; 0 under callgrind, where the driver takes the difference
 * of two runs to cancel every fixed cost). */
#define _GNU_SOURCE
#include <corio.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "corio_bench: %s: %s\n", what, corio_strerror(errno));
    exit(1);
}

static long parse_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == 0 || *end != 0 || v < 0) {
        fprintf(stderr, "corio_bench: bad count '%s'\n", s);
        exit(2);
    }
    return v;
}

/* A sink the compiler cannot see through. */
static volatile long sink;

/* ---- (a) ping-pong ------------------------------------------------------ */

/* corio: resume from the thread's stack, yield back. corio_compact: the
 * same coroutine on a COMPACT stack, whose switches check its stack bounds. */
static void *corio_body(void *arg)
{
    (void)arg;
    for (;;)
        corio_coro_yield();
    return NULL;
}

static void corio_pingpong(long warmup, long n, int mode)
{
    corio_coro_attr attr = {.stack_mode = mode};
    corio_coro *co = corio_coro_new(corio_body, NULL, &attr);
    int64_t t0, t1;

    if (co == NULL)
        die("corio_coro_new");
    for (long i = 0; i < warmup; i++)
        corio_coro_resume(co);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        corio_coro_resume(co);
    t1 = now_ns();
    printf("RESULT impl=%s roundtrips=%ld switches=%ld ns=%lld\n",
           mode == CORIO_STACK_COMPACT ? "corio_compact" : "corio", n, 2 * n,
           (long long)(t1 - t0));
    corio_coro_free(co); /* suspended: allowed, runs no code of its own */
}

/* corio, each side going through a function of its own that returns after
 * the switch, as real code does (a generator's send and yield are such
 * functions). After a stack switch a ret pops a return-stack-buffer entry
 * pushed on the other stack and mispredicts: this measures that cost. The
 * empty asm keeps the compiler from turning the calls into tail calls. */
__attribute__((noinline)) static int resume_fn(corio_coro *co)
{
    int rc = corio_coro_resume(co);

    __asm__ volatile("");
    return rc;
}

__attribute__((noinline)) static int yield_fn(void)
{
    int rc = corio_coro_yield();

    __asm__ volatile("");
    return rc;
}

static void *corio_fn_body(void *arg)
{
    (void)arg;
    for (;;)
        yield_fn();
    return NULL;
}

static void corio_fn_pingpong(long warmup, long n)
{
    corio_coro *co = corio_coro_new(corio_fn_body, NULL, NULL);
    int64_t t0, t1;

    if (co == NULL)
        die("corio_coro_new");
    for (long i = 0; i < warmup; i++)
        resume_fn(co);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        resume_fn(co);
    t1 = now_ns();
    printf("RESULT impl=corio_fn roundtrips=%ld switches=%ld ns=%lld\n", n,
           2 * n, (long long)(t1 - t0));
    corio_coro_free(co);
}

/* ucontext: swapcontext both ways (glibc saves the signal mask with a
 * rt_sigprocmask system call at every switch). */
static ucontext_t uc_main, uc_co;

static void uc_body(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static void ucontext_pingpong(long warmup, long n)
{
    size_t size = 64 * 1024;
    void *stack = malloc(size);
    int64_t t0, t1;

    if (stack == NULL || getcontext(&uc_co) == -1)
        die("ucontext set-up");
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = size;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_body, 0);
    for (long i = 0; i < warmup; i++)
        swapcontext(&uc_main, &uc_co);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    t1 = now_ns();
    printf("RESULT impl=ucontext roundtrips=%ld switches=%ld ns=%lld\n", n,
           2 * n, (long long)(t1 - t0));
    free(stack);
}

/* Boost.Context's fcontext: its C-linkage assembly entry points, declared
 * here so that no C++ is needed. */
#ifdef BENCH_HAVE_FCONTEXT
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static void fc_body(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static void fcontext_pingpong(long warmup, long n)
{
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    fcontext_t fc;
    int64_t t0, t1;

    if (stack == NULL)
        die("malloc");
    fc = make_fcontext(stack + size, size, fc_body); /* sp is the top */
    for (long i = 0; i < warmup; i++)
        fc = jump_fcontext(fc, NULL).fctx;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        fc = jump_fcontext(fc, NULL).fctx;
    t1 = now_ns();
    printf("RESULT impl=fcontext roundtrips=%ld switches=%ld ns=%lld\n", n,
           2 * n, (long long)(t1 - t0));
    free(stack);
}
#endif

/* ---- (b) generator round trips ------------------------------------------ */

/* x = yield; while: x = yield x + 1 */
static void *gen_body(corio_gen *g, void *arg)
{
    void *x;

    (void)arg;
    if (corio_gen_yield(g, NULL, &x) == -1)
        return NULL;
    while (corio_gen_yield(g, CORIO_INT(CORIO_TO_INT(x) + 1), &x) == 0)
        ;
    return NULL; /* closed */
}

static void gen_roundtrips(long warmup, long n)
{
    corio_gen *g = corio_gen_new(gen_body, NULL, NULL);
    void *out;
    long sum = 0;
    int64_t t0, t1;

    if (g == NULL)
        die("corio_gen_new");
    if (corio_gen_send(g, NULL, NULL) != 1) /* start: runs to the first yield */
        die("corio_gen_send");
    for (long i = 0; i < warmup; i++)
        if (corio_gen_send(g, CORIO_INT(i), &out) != 1)
            die("corio_gen_send");
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (corio_gen_send(g, CORIO_INT(i), &out) != 1)
            die("corio_gen_send");
        sum += CORIO_TO_INT(out);
    }
    t1 = now_ns();
    /* sum of (i + 1) for i < n */
    if (sum != n * (n + 1) / 2) {
        fprintf(stderr, "corio_bench: gen: wrong sum %ld\n", sum);
        exit(1);
    }
    sink = sum;
    printf("RESULT impl=corio_gen roundtrips=%ld ns=%lld\n", n,
           (long long)(t1 - t0));
    corio_gen_close(g);
}

/* ---- (c) spawn and park --------------------------------------------------- */

/* kB figures of /proc/self/status. */
struct mem {
    long rss, hwm, pte;
};

static struct mem mem_now(void)
{
    struct mem m = {-1, -1, -1};
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return m;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            m.rss = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            m.hwm = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmPTE:", 6) == 0)
            m.pte = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return m;
}

static long minflt(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* User and system CPU time of the process, ns: page faults are system time
 * (and so is a hypervisor's stall while it backs a guest page). */
struct cpu {
    int64_t user, sys;
};

static struct cpu cpu_now(void)
{
    struct rusage ru;
    struct cpu c;

    getrusage(RUSAGE_SELF, &ru);
    c.user = (int64_t)ru.ru_utime.tv_sec * 1000000000 + ru.ru_utime.tv_usec * 1000;
    c.sys = (int64_t)ru.ru_stime.tv_sec * 1000000000 + ru.ru_stime.tv_usec * 1000;
    return c;
}

static void *parker(void *arg)
{
    corio_coro_yield(); /* park */
    return arg;
}

/* One batch: create+park all, then finish all. */
static void spawn_batch(const char *label, corio_coro **v, long n,
                        const corio_coro_attr *attr)
{
    struct mem m0, m1;
    struct cpu c0, c1, c2;
    long f0, f1, f2;
    int64_t t0, t1, t2;

    m0 = mem_now();
    f0 = minflt();
    c0 = cpu_now();
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        v[i] = corio_coro_new(parker, NULL, attr);
        if (v[i] == NULL) {
            fprintf(stderr, "corio_bench: spawn: coroutine %ld of %ld: %s\n",
                    i, n, corio_strerror(errno));
            exit(1);
        }
        corio_coro_resume(v[i]);
    }
    t1 = now_ns();
    c1 = cpu_now();
    f1 = minflt();
    m1 = mem_now();
    for (long i = 0; i < n; i++) {
        corio_coro_resume(v[i]); /* returns */
        if (corio_coro_status(v[i]) != CORIO_CORO_DEAD) {
            fprintf(stderr, "corio_bench: spawn: coroutine %ld not dead\n", i);
            exit(1);
        }
        corio_coro_free(v[i]);
    }
    t2 = now_ns();
    c2 = cpu_now();
    f2 = minflt();
    printf("RESULT batch=%s count=%ld create_ns=%lld finish_ns=%lld "
           "create_user_ns=%lld create_sys_ns=%lld "
           "finish_user_ns=%lld finish_sys_ns=%lld "
           "create_faults=%ld finish_faults=%ld "
           "rss_kb=%ld hwm_kb=%ld pte_kb=%ld\n",
           label, n, (long long)(t1 - t0), (long long)(t2 - t1),
           (long long)(c1.user - c0.user), (long long)(c1.sys - c0.sys),
           (long long)(c2.user - c1.user), (long long)(c2.sys - c1.sys),
           f1 - f0, f2 - f1, m1.rss - m0.rss, m1.hwm - m0.hwm,
           m1.pte - m0.pte);
    fflush(stdout);
}

static double fault_probe(long pages, size_t stride);

/* probe: after both batches, touch as many fresh pages as the cold batch
 * faulted, with no corio involved, in the same process and memory state. */
static void spawn(const char *mode, long n, bool probe)
{
    corio_coro_attr attr = {0};
    corio_coro **v;

    if (strcmp(mode, "compact") == 0)
        attr.stack_mode = CORIO_STACK_COMPACT;
    else if (strcmp(mode, "guarded") == 0)
        attr.stack_mode = CORIO_STACK_GUARDED;
    else {
        fprintf(stderr, "corio_bench: spawn: mode compact or guarded\n");
        exit(2);
    }
    /* The harness's own array of handles is made resident before the
     * baseline, so it is not counted as coroutine memory. */
    v = malloc((size_t)n * sizeof(*v));
    if (v == NULL)
        die("malloc");
    memset(v, 0, (size_t)n * sizeof(*v));
    printf("RESULT mode=%s stack_size=%d\n", mode, CORIO_STACK_DEFAULT);
    spawn_batch("cold", v, n, &attr);
    spawn_batch("warm", v, n, &attr);
    free(v);
    if (probe)
        printf("RESULT probe_pages=%ld probe_stride=65536 probe_ns=%.1f\n", n,
               fault_probe(n, 64 * 1024));
}

/* ---- page-fault probe ------------------------------------------------------ */

/* Touch one byte in each of `pages` pages spaced `stride` bytes apart in a
 * fresh mapping; returns ns per first touch. */
static double fault_probe(long pages, size_t stride)
{
    size_t len = (size_t)pages * stride;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    long f0, f1;
    int64_t t0, t1;

    if (p == MAP_FAILED)
        die("mmap");
    madvise(p, len, MADV_NOHUGEPAGE); /* as the compact slabs */
    f0 = minflt();
    t0 = now_ns();
    for (long i = 0; i < pages; i++)
        p[(size_t)i * stride] = 1;
    t1 = now_ns();
    f1 = minflt();
    munmap(p, len);
    if (f1 - f0 < pages / 2)
        fprintf(stderr, "corio_bench: faultprobe: only %ld faults for %ld "
                "pages\n", f1 - f0, pages);
    return (double)(t1 - t0) / (double)pages;
}

static void faultprobe(void)
{
    long page = sysconf(_SC_PAGESIZE);
    /* 16,384 pages = 64 MiB contiguous; the strided one spaces them like
     * 64 KiB stacks, so it also pays for the page tables they need. */
    double contig = fault_probe(16384, (size_t)page);
    double strided = fault_probe(16384, 64 * 1024);

    printf("RESULT pages=16384 contig_ns=%.1f stride64k_ns=%.1f\n", contig,
           strided);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: corio_bench pingpong corio|corio_compact|corio_fn|ucontext|fcontext\n"
            "                  ROUNDTRIPS [WARMUP]\n"
            "       corio_bench gen ROUNDTRIPS [WARMUP]\n"
            "       corio_bench spawn compact|guarded COUNT [probe]\n"
            "       corio_bench faultprobe\n"
            "       corio_bench has fcontext   (exit 0 and the library linked, or 1)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "has") == 0) {
#ifdef BENCH_HAVE_FCONTEXT
        if (strcmp(argv[2], "fcontext") != 0)
            return 1;
        printf("%s\n", BENCH_FCONTEXT_LIB); /* the library linked */
        return 0;
#else
        return 1;
#endif
    }
    if (argc >= 4 && strcmp(argv[1], "pingpong") == 0) {
        long n = parse_count(argv[3]);
        long warmup = argc >= 5 ? parse_count(argv[4]) : 100000;

        if (strcmp(argv[2], "corio") == 0)
            corio_pingpong(warmup, n, CORIO_STACK_GUARDED);
        else if (strcmp(argv[2], "corio_compact") == 0)
            corio_pingpong(warmup, n, CORIO_STACK_COMPACT);
        else if (strcmp(argv[2], "corio_fn") == 0)
            corio_fn_pingpong(warmup, n);
        else if (strcmp(argv[2], "ucontext") == 0)
            ucontext_pingpong(warmup, n);
        else if (strcmp(argv[2], "fcontext") == 0) {
#ifdef BENCH_HAVE_FCONTEXT
            fcontext_pingpong(warmup, n);
#else
            fprintf(stderr, "corio_bench: built without Boost.Context "
                    "(libboost_context not found): fcontext skipped\n");
            return 3;
#endif
        } else
            usage();
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "gen") == 0) {
        gen_roundtrips(argc >= 4 ? parse_count(argv[3]) : 100000,
                       parse_count(argv[2]));
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "spawn") == 0) {
        spawn(argv[2], parse_count(argv[3]),
              argc >= 5 && strcmp(argv[4], "probe") == 0);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "faultprobe") == 0) {
        faultprobe();
        return 0;
    }
    usage();
    return 2;
}
