/* tests/test_coro_stack.c -- stack overflows and the memory of the stack
 * pools: a guarded stack's overflow (deep recursion, and frames of 12, 16,
 * 60 and 100 KiB that jump past the end of the stack) is reported by name and
 * aborts; a compact stack's overflow (its stack pointer at the bottom, or its
 * canary overwritten) is reported at the next switch; other faults and the
 * handler turned off give a plain SIGSEGV; the memory of a burst of
 * coroutines goes back to the system.
 *
 * The overflows run in a forked child whose stderr is captured. The file is
 * built without -fstack-clash-protection (tests/CMakeLists.txt), so that a
 * large frame jumps as it does in a program built without it. It looks at
 * the coroutine struct (src/coro/coro_int.h) for the exact stack bounds. */
#include <criterion/criterion.h>

#include "corio.h"
#include "coro/coro_int.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

/* One timeout for every test (see test_coro_coro.c). */
#define TIMEOUT 60

/* Loop counts: full size natively, a twentieth under valgrind. */
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 20 > 0 ? (n) / 20 : 1) : (n))

static void *return_arg(void *arg)
{
    return arg;
}

/* Keeps a pointer to a frame's buffer alive across the recursive call, so
 * that the call is not a tail call and the frame is not optimised away. */
__attribute__((noipa)) static void sink(volatile char *p)
{
    p[0] ^= 1;
}

/* ---- the death-test harness --------------------------------------------- */

/* Run fn in a child process with stderr captured; returns the wait status
 * and fills out (NUL-terminated). */
static int run_child(void (*fn)(void), char *out, size_t cap)
{
    int fds[2], status;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};

        setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn();
        _exit(0); /* fn should not return */
    }
    close(fds[1]);
    while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert_gt(r, 0);
        n += (size_t)r;
    }
    out[n] = 0;
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* In the child: the coroutine's id, for the parent to find in the report. */
static void print_id(const corio_coro *co)
{
    dprintf(STDERR_FILENO, "id=%llu\n", (unsigned long long)corio_coro_id(co));
}

/* The report names the coroutine, its id and stack size, and how the
 * overflow was found; the child died by SIGABRT. */
static void expect_report(int status, const char *err, const char *name,
                          size_t size, const char *how)
{
    const char *idp = strstr(err, "id=");
    unsigned long long id = 0;
    char want[320];

    cr_assert(idp != NULL && sscanf(idp, "id=%llu", &id) == 1,
              "child stderr: %s", err);
    snprintf(want, sizeof(want),
             "corio: stack overflow in coroutine %s #%llu (stack %zu bytes): "
             "%s; raise its stack_size (corio_coro_attr, corio_task_attr)\n",
             name, id, size, how);
    cr_assert_not_null(strstr(err, want), "want \"%s\" in: %s", want, err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "child status %#x, stderr: %s", status, err);
}

/* ASan may claim a guarded stack's fault first (its handler runs if ours
 * was not installed first); either report is a caught overflow. */
static bool asan_reported(const char *err)
{
#ifdef __SANITIZE_ADDRESS__
    return strstr(err, "corio: stack overflow") == NULL &&
           strstr(err, "AddressSanitizer") != NULL;
#else
    (void)err;
    return false;
#endif
}

#define GUARD_HIT "a fault in its guard region"
#define FAULT_SP "a fault with the stack pointer below the stack"
#define SWITCH_SP "the stack pointer at the bottom of the stack when it switched"
#define SWITCH_CANARY "the canary at the bottom of the stack overwritten, " \
                      "found when it switched"
#define FREE_CANARY "the canary at the bottom of the stack overwritten, " \
                    "found when it was freed"

/* ---- guarded stacks: deep recursion ------------------------------------- */

/* Recurses until depth 0; with yield_at_bottom, yields there. Frames are
 * smaller than a page, so the guard region cannot be jumped over. */
__attribute__((noipa)) static int recurse(long depth, bool yield_at_bottom)
{
    volatile char buf[600];

    buf[0] = (char)depth;
    if (depth == 0) {
        if (yield_at_bottom)
            corio_coro_yield();
        return buf[0];
    }
    int r = recurse(depth - 1, yield_at_bottom);
    sink(buf);
    return r + buf[1];
}

static void *recurse_forever(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(1L << 40, false);
}

static void guarded_recursion_child(void)
{
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_GUARDED,
                            .name = "deep-guarded"};
    corio_coro *co = corio_coro_new(recurse_forever, NULL, &attr);

    if (co == NULL)
        _exit(3);
    print_id(co);
    corio_coro_resume(co);
    _exit(4); /* not reached: the overflow aborts */
}

Test(coro_stack, guarded_recursion_is_reported, .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(guarded_recursion_child, err, sizeof(err));

    if (asan_reported(err))
        return;
    expect_report(status, err, "deep-guarded", CORIO_STACK_DEFAULT, GUARD_HIT);
}

/* Deep but within bounds: no report, and the coroutine finishes. */
static void *recurse_within(void *arg)
{
    return (void *)(intptr_t)recurse((long)(intptr_t)arg, true);
}

Test(coro_stack, deep_recursion_within_the_stack_is_fine, .timeout = TIMEOUT)
{
    for (int mode = 0; mode < 2; mode++) {
        corio_coro_attr attr = {.stack_mode = mode, .stack_size = 256 * 1024};
        /* 200 frames of about 700 bytes: about 140 KiB of 256. */
        corio_coro *co = corio_coro_new(recurse_within, (void *)200, &attr);

        cr_assert_not_null(co);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
        cr_assert_eq(corio_coro_free(co), 0);
    }
}

/* ---- guarded stacks: a large frame at the bottom ------------------------
 * A coroutine recurses until less than 2 KiB of its stack is left, then
 * calls a function whose local array is larger than that and writes its
 * first byte, the lowest: the write lands that far below the stack, past a
 * one-page guard (into the next mapping, or unmapped memory). */

__attribute__((noipa)) static void frame_12k(void)
{
    volatile char buf[12 * 1024];

    buf[0] = 1;
    sink(buf);
}

__attribute__((noipa)) static void frame_16k(void)
{
    volatile char buf[16 * 1024];

    buf[0] = 1;
    sink(buf);
}

__attribute__((noipa)) static void frame_60k(void)
{
    volatile char buf[60 * 1024];

    buf[0] = 1;
    sink(buf);
}

__attribute__((noipa)) static void frame_100k(void)
{
    volatile char buf[100 * 1024];

    buf[0] = 1;
    sink(buf);
}

/* Recurses in frames of about 700 bytes until fewer than margin bytes are
 * left above the bottom of the running coroutine's stack, then calls fn. */
__attribute__((noipa)) static int descend(size_t margin, void (*fn)(void))
{
    volatile char buf[600];
    char *fp = __builtin_frame_address(0);

    buf[0] = 1;
    if ((size_t)(fp - corio_coro_self()->stack.lo) < margin) {
        fn();
        return buf[0];
    }
    int r = descend(margin, fn);
    sink(buf);
    return r + buf[1];
}

static void (*big_frame)(void);

static void *big_frame_at_bottom(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)descend(2048, big_frame);
}

/* Make the guarded coroutine "big-frame"; with reserve, first map a
 * PROT_NONE region of 256 KiB just below its guard region, so that a frame
 * larger than the guard faults there instead of landing in whatever else
 * might be mapped. */
static corio_coro *big_frame_coro(void (*fn)(void), bool reserve)
{
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_GUARDED,
                            .name = "big-frame"};
    corio_coro *co = corio_coro_new(big_frame_at_bottom, NULL, &attr);

    if (co == NULL)
        _exit(3);
    big_frame = fn;
    if (reserve) {
        char *want = co->stack.lo - CORIO__GUARD - 256 * 1024;
        void *got = mmap(want, 256 * 1024, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                         -1, 0);

        if (got != want)
            _exit(3); /* something is mapped there: the test cannot run */
    }
    print_id(co);
    return co;
}

static void run_big_frame(void (*fn)(void), bool reserve)
{
    corio_coro_resume(big_frame_coro(fn, reserve));
    _exit(4); /* not reached */
}

static void frame_12k_child(void)
{
    run_big_frame(frame_12k, false);
}

static void frame_16k_child(void)
{
    run_big_frame(frame_16k, false);
}

static void frame_60k_child(void)
{
    run_big_frame(frame_60k, false);
}

static void frame_100k_child(void)
{
    run_big_frame(frame_100k, true);
}

static void expect_big_frame_report(void (*child)(void), const char *how)
{
    static char err[16384];
    int status = run_child(child, err, sizeof(err));

    if (asan_reported(err))
        return;
    expect_report(status, err, "big-frame", CORIO_STACK_DEFAULT, how);
}

Test(coro_stack, frame_of_12k_at_the_bottom_is_reported, .timeout = TIMEOUT)
{
    expect_big_frame_report(frame_12k_child, GUARD_HIT);
}

Test(coro_stack, frame_of_16k_at_the_bottom_is_reported, .timeout = TIMEOUT)
{
    expect_big_frame_report(frame_16k_child, GUARD_HIT);
}

Test(coro_stack, frame_of_60k_at_the_bottom_is_reported, .timeout = TIMEOUT)
{
    expect_big_frame_report(frame_60k_child, GUARD_HIT);
}

/* Larger than the guard region: the write lands below it, and the stack
 * pointer at the fault tells. */
Test(coro_stack, frame_past_the_guard_is_reported_by_its_sp,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(frame_100k_child, err, sizeof(err));

    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        cr_skip_test("the address space below the stack is taken");
    if (asan_reported(err))
        return;
    expect_report(status, err, "big-frame", CORIO_STACK_DEFAULT, FAULT_SP);
}

/* ---- guarded stacks: other faults, and the handler turned off ---------- */

/* The child died by SIGSEGV, without corio's report (under ASan, whose
 * handler was the action before corio's, with ASan's). */
static void expect_plain_segv(int status, const char *err)
{
    cr_assert_null(strstr(err, "corio: stack overflow"), "stderr: %s", err);
#ifdef __SANITIZE_ADDRESS__
    (void)status;
    cr_assert_not_null(strstr(err, "AddressSanitizer"), "stderr: %s", err);
#else
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
              "child status %#x, stderr: %s", status, err);
#endif
}

/* A wild write in a coroutine is not an overflow: the previous action (the
 * default) gets it. */
static void *wild_write(void *arg)
{
    *(volatile int *)arg = 1;
    return NULL;
}

static void wild_write_child(void)
{
    void *nowhere = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    corio_coro *co = corio_coro_new(wild_write, nowhere, NULL);

    if (nowhere == MAP_FAILED || co == NULL)
        _exit(3);
    corio_coro_resume(co);
    _exit(4);
}

Test(coro_stack, other_faults_are_not_reported, .timeout = TIMEOUT)
{
    static char err[16384];
    int status;

    if (RUNNING_ON_VALGRIND)
        cr_skip_test("valgrind reports the invalid write itself");
    status = run_child(wild_write_child, err, sizeof(err));
    expect_plain_segv(status, err);
}

static void handler_off_child(void)
{
    if (corio_coro_set_overflow_handler(false) != 0)
        _exit(5);
    guarded_recursion_child();
}

Test(coro_stack, handler_off_gives_a_plain_sigsegv, .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(handler_off_child, err, sizeof(err));

    expect_plain_segv(status, err);
}

/* The program's own handler, installed before corio's: turning corio's off
 * after a coroutine was made gives it back. */
static void own_handler(int sig)
{
    static const char msg[] = "own handler\n";

    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
        _exit(8);
    _exit(7);
}

static void handler_restored_child(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = own_handler;
    sa.sa_flags = SA_ONSTACK; /* on the alternate stack corio made */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    corio_coro *co = corio_coro_new(recurse_forever, NULL, NULL);

    if (co == NULL || corio_coro_set_overflow_handler(false) != 0)
        _exit(5);
    corio_coro_resume(co);
    _exit(4);
}

Test(coro_stack, handler_off_restores_the_previous_action,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(handler_restored_child, err, sizeof(err));

    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7,
              "child status %#x, stderr: %s", status, err);
    cr_assert_null(strstr(err, "corio: stack overflow"), "stderr: %s", err);
}

/* Off, then on again: the overflow is reported. */
static void handler_back_on_child(void)
{
    if (corio_coro_set_overflow_handler(false) != 0 ||
        corio_coro_set_overflow_handler(true) != 0)
        _exit(5);
    guarded_recursion_child();
}

Test(coro_stack, handler_back_on_reports_again, .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(handler_back_on_child, err, sizeof(err));

    if (asan_reported(err))
        return;
    expect_report(status, err, "deep-guarded", CORIO_STACK_DEFAULT, GUARD_HIT);
}

/* The switch changes the process's SIGSEGV action, and only while corio's
 * handler is the one installed. */
static bool segv_action_is(const struct sigaction *want)
{
    struct sigaction cur;

    cr_assert_eq(sigaction(SIGSEGV, NULL, &cur), 0);
    /* sa_handler and sa_sigaction share their storage. */
    return (cur.sa_flags & SA_SIGINFO) == (want->sa_flags & SA_SIGINFO) &&
           cur.sa_handler == want->sa_handler;
}

static void other_handler(int sig)
{
    (void)sig;
}

Test(coro_stack, set_overflow_handler_changes_the_action, .timeout = TIMEOUT)
{
    struct sigaction before, other;
    corio_coro *co;

    cr_assert_eq(sigaction(SIGSEGV, NULL, &before), 0);
    /* Off before any coroutine: nothing was installed, nothing changes, and
     * making a coroutine does not install it. */
    cr_assert_eq(corio_coro_set_overflow_handler(false), 0);
    co = corio_coro_new(return_arg, NULL, NULL);
    cr_assert_not_null(co);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert(segv_action_is(&before), "installed while turned off");

    cr_assert_eq(corio_coro_set_overflow_handler(true), 0);
    cr_assert_not(segv_action_is(&before), "not installed");
    cr_assert_eq(corio_coro_set_overflow_handler(true), 0); /* again: no-op */
    cr_assert_eq(corio_coro_set_overflow_handler(false), 0);
    cr_assert(segv_action_is(&before), "the previous action not restored");
    cr_assert_eq(corio_coro_set_overflow_handler(false), 0); /* again */
    cr_assert(segv_action_is(&before));

    /* A handler installed over corio's is left alone when corio's is
     * turned off. */
    cr_assert_eq(corio_coro_set_overflow_handler(true), 0);
    memset(&other, 0, sizeof(other));
    other.sa_handler = other_handler;
    sigemptyset(&other.sa_mask);
    cr_assert_eq(sigaction(SIGSEGV, &other, NULL), 0);
    cr_assert_eq(corio_coro_set_overflow_handler(false), 0);
    cr_assert(segv_action_is(&other), "another program's handler removed");
    cr_assert_eq(sigaction(SIGSEGV, &before, NULL), 0);
}

/* ---- compact stacks ------------------------------------------------------ */

/* Recurse until the frames reach below the bottom of the stack (into the
 * slot below, a sacrificial one), then yield. */
__attribute__((noipa)) static int recurse_below(void)
{
    volatile char buf[600];
    char *fp = __builtin_frame_address(0);

    buf[0] = 1;
    if (fp < corio_coro_self()->stack.lo - 256) {
        corio_coro_yield();
        return buf[0];
    }
    int r = recurse_below();
    sink(buf);
    return r + buf[1];
}

static void *overflow_then_yield(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse_below();
}

/* A frame larger than the whole stack, written from end to end, returns
 * before the coroutine yields: only the canary tells. */
__attribute__((noipa)) static void smash(void)
{
    volatile char buf[20 * 1024];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)(i * 7 + 1);
    sink(buf);
}

static void *smash_then_yield(void *arg)
{
    (void)arg;
    smash();
    corio_coro_yield();
    return NULL;
}

/* Two coroutines of a fresh size: co's slot lies just above pad's, so the
 * frames that go below co's stack land in pad's slot, not in a stranger's
 * memory or in unmapped memory. */
static corio_coro *compact_over_pad(corio_fn fn, const char *name)
{
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_COMPACT,
                            .stack_size = 16 * 1024, .name = name};
    corio_coro *pad = corio_coro_new(return_arg, NULL, &attr);
    corio_coro *co = corio_coro_new(fn, NULL, &attr);

    if (pad == NULL || co == NULL || co->stack.lo != pad->stack.lo + 16 * 1024)
        _exit(3);
    print_id(co);
    return co;
}

static void compact_sp_child(void)
{
    corio_coro *co = compact_over_pad(overflow_then_yield, "deep-compact");

    corio_coro_resume(co);
    dprintf(STDERR_FILENO, "yielded at the bottom\n");
    _exit(4);
}

Test(coro_stack, compact_sp_at_the_bottom_is_caught_at_the_switch,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(compact_sp_child, err, sizeof(err));

    /* Caught as the coroutine switches away, before its resumer runs. */
    cr_assert_null(strstr(err, "yielded at the bottom"), "stderr: %s", err);
    expect_report(status, err, "deep-compact", 16 * 1024, SWITCH_SP);
}

static void compact_smash_child(void)
{
    corio_coro *co = compact_over_pad(smash_then_yield, "smasher");

    corio_coro_resume(co);
    dprintf(STDERR_FILENO, "yielded\n");
    _exit(4);
}

Test(coro_stack, compact_canary_smashed_by_a_frame_is_caught_at_the_switch,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status;

    if (RUNNING_ON_VALGRIND)
        cr_skip_test("memcheck reports the frame's writes below the stack "
                     "itself");
    status = run_child(compact_smash_child, err, sizeof(err));
    cr_assert_null(strstr(err, "yielded\n"), "stderr: %s", err);
    expect_report(status, err, "smasher", 16 * 1024, SWITCH_CANARY);
}

/* The canary of a suspended coroutine damaged from outside: caught when the
 * coroutine next switches away, or when it is freed. */
static void *yield_twice(void *arg)
{
    (void)arg;
    corio_coro_yield();
    corio_coro_yield();
    return NULL;
}

static corio_coro *compact_coro(corio_fn fn, const char *name)
{
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_COMPACT, .name = name};
    corio_coro *co = corio_coro_new(fn, NULL, &attr);

    if (co == NULL)
        _exit(3);
    print_id(co);
    return co;
}

static void canary_switch_child(void)
{
    corio_coro *co = compact_coro(yield_twice, "victim");

    if (corio_coro_resume(co) != 0)
        _exit(5);
    /* The canary's top word, the one checked at every switch. */
    ((uintptr_t *)co->stack.lo)[CORIO__CANARY_WORDS - 1] ^= 1;
    dprintf(STDERR_FILENO, "damaged\n");
    corio_coro_resume(co);
    dprintf(STDERR_FILENO, "switched back\n");
    _exit(4);
}

Test(coro_stack, compact_canary_damaged_is_caught_at_the_next_switch,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(canary_switch_child, err, sizeof(err));

    cr_assert_not_null(strstr(err, "damaged\n"), "stderr: %s", err);
    cr_assert_null(strstr(err, "switched back"), "stderr: %s", err);
    expect_report(status, err, "victim", CORIO_STACK_DEFAULT, SWITCH_CANARY);
}

static void canary_free_child(void)
{
    corio_coro *co = compact_coro(yield_twice, "victim");

    if (corio_coro_resume(co) != 0)
        _exit(5);
    /* The lowest word, checked when the coroutine is freed. */
    ((uintptr_t *)co->stack.lo)[0] = 0;
    corio_coro_free(co);
    dprintf(STDERR_FILENO, "freed\n");
    _exit(4);
}

Test(coro_stack, compact_canary_damaged_is_caught_when_freed,
     .timeout = TIMEOUT)
{
    static char err[16384];
    int status = run_child(canary_free_child, err, sizeof(err));

    cr_assert_null(strstr(err, "freed\n"), "stderr: %s", err);
    expect_report(status, err, "victim", CORIO_STACK_DEFAULT, FREE_CANARY);
}

/* ---- memory comes back ------------------------------------------------- */

/* Resident and virtual size of the process, bytes (/proc/self/statm). */
struct statm {
    size_t vm, rss;
};

/* ASan keeps the shadow of the slab that is still in use (8 MiB for 64 MiB
 * of slots). */
#ifdef __SANITIZE_ADDRESS__
#define ASAN_SLACK ((size_t)8 << 20)
#else
#define ASAN_SLACK 0
#endif

static struct statm statm_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    size_t page = (size_t)sysconf(_SC_PAGESIZE), vm = 0, rss = 0;

    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%zu %zu", &vm, &rss), 2);
    fclose(f);
    return (struct statm){vm * page, rss * page};
}

/* Touches about arg bytes of its stack, parks, and returns. */
static void *touch_and_park(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    volatile char *p = __builtin_alloca(n);

    for (size_t i = 0; i < n; i += 512)
        p[i] = (char)i;
    corio_coro_yield();
    return (void *)(uintptr_t)p[0];
}

/* n coroutines alive at once, each touching `touch` bytes of its stack,
 * then all finished and freed. Returns the memory at the peak. */
static struct statm burst(int mode, size_t stack_size, size_t touch, int n)
{
    corio_coro_attr attr = {.stack_mode = mode, .stack_size = stack_size};
    corio_coro **co = calloc((size_t)n, sizeof(*co));
    struct statm peak;

    cr_assert_not_null(co);
    for (int i = 0; i < n; i++) {
        co[i] = corio_coro_new(touch_and_park, (void *)(uintptr_t)touch, &attr);
        cr_assert_not_null(co[i], "coroutine %d: %s", i,
                           corio_strerror(errno));
        cr_assert_eq(corio_coro_resume(co[i]), 0);
    }
    peak = statm_now();
    for (int i = 0; i < n; i++) {
        cr_assert_eq(corio_coro_resume(co[i]), 0);
        cr_assert_eq(corio_coro_status(co[i]), CORIO_CORO_DEAD);
        cr_assert_eq(corio_coro_free(co[i]), 0);
    }
    free(co);
    return peak;
}

Test(coro_stack, compact_burst_gives_its_memory_back, .timeout = TIMEOUT)
{
    const int n = SCALE(200000);
    const size_t touch = 3 * 1024;
    struct statm base, peak, after;

    /* A first small burst, so that the pool and the thread's first slab
     * count in the baseline. */
    burst(CORIO_STACK_COMPACT, CORIO_STACK_MIN, touch, 64);
    base = statm_now();
    peak = burst(CORIO_STACK_COMPACT, CORIO_STACK_MIN, touch, n);
    cr_assert_eq(corio_coro_trim(), 0); /* at once, not after the decay */
    after = statm_now();
    if (RUNNING_ON_VALGRIND)
        return; /* valgrind's own memory hides the figures */
    cr_log_info("compact burst of %d: RSS %zu KiB before, %zu KiB at the "
                "peak, %zu KiB after; VM %zu MiB before, %zu MiB at the peak, "
                "%zu MiB after", n, base.rss >> 10, peak.rss >> 10,
                after.rss >> 10, base.vm >> 20, peak.vm >> 20, after.vm >> 20);
    /* The burst was real: at least the touched bytes were resident. */
    cr_assert_gt(peak.rss - base.rss, (size_t)n * touch,
                 "peak %zu KiB, base %zu KiB", peak.rss >> 10, base.rss >> 10);
    /* And it went back: what the pool keeps (256 stacks of 8 KiB) and
     * some slack, not the burst's hundreds of MiB. */
    cr_assert_lt(after.rss, base.rss + ((size_t)16 << 20) + ASAN_SLACK,
                 "after %zu KiB, base %zu KiB, peak %zu KiB", after.rss >> 10,
                 base.rss >> 10, peak.rss >> 10);
    /* Idle slabs are unmapped (one is kept), so the address space comes
     * back too, and with it the page tables. */
    cr_assert_lt(after.vm, base.vm + ((size_t)256 << 20),
                 "VM after %zu MiB, base %zu MiB, peak %zu MiB",
                 after.vm >> 20, base.vm >> 20, peak.vm >> 20);
}

/* Without corio_coro_trim: a burst's stacks stay warm for a second (a burst
 * that comes back at once reuses them), then an idle loop gives them back. */
Test(coro_stack, an_idle_loop_gives_a_burst_back_after_the_decay,
     .timeout = TIMEOUT)
{
    const int n = SCALE(50000);
    const size_t touch = 3 * 1024;
    struct statm base, after_free, after_decay;
    corio_loop *loop = corio_loop_new();

    cr_assert_not_null(loop);
    burst(CORIO_STACK_COMPACT, CORIO_STACK_MIN, touch, 64);
    cr_assert_eq(corio_coro_trim(), 0);
    base = statm_now();
    burst(CORIO_STACK_COMPACT, CORIO_STACK_MIN, touch, n);
    after_free = statm_now();
    cr_assert_eq(corio_sleep(1300 * CORIO_MSEC), 0); /* the loop idles */
    after_decay = statm_now();
    cr_assert_eq(corio_loop_close(loop), 0);
    if (RUNNING_ON_VALGRIND)
        return;
    cr_assert_gt(after_free.rss - base.rss, (size_t)n * touch,
                 "kept warm: after the free %zu KiB, base %zu KiB",
                 after_free.rss >> 10, base.rss >> 10);
    cr_assert_lt(after_decay.rss, base.rss + ((size_t)16 << 20) + ASAN_SLACK,
                 "after the decay %zu KiB, base %zu KiB",
                 after_decay.rss >> 10, base.rss >> 10);
}

Test(coro_stack, guarded_pool_is_bounded, .timeout = TIMEOUT)
{
    const size_t touch = 256 * 1024;
    struct statm base, peak, after;

    burst(CORIO_STACK_GUARDED, 1 << 20, touch, 2);
    base = statm_now();
    peak = burst(CORIO_STACK_GUARDED, 1 << 20, touch, 64); /* 16 MiB touched */
    cr_assert_eq(corio_coro_trim(), 0);
    after = statm_now();
    if (RUNNING_ON_VALGRIND)
        return;
    cr_assert_gt(peak.rss - base.rss, (size_t)48 * touch, /* 2 were warm */
                 "peak %zu KiB, base %zu KiB", peak.rss >> 10, base.rss >> 10);
    /* The pool keeps 8 MiB of 1 MiB stacks: 8 of them, 2 MiB touched. */
    cr_assert_lt(after.rss, base.rss + ((size_t)6 << 20),
                 "after %zu KiB, base %zu KiB, peak %zu KiB", after.rss >> 10,
                 base.rss >> 10, peak.rss >> 10);
}

/* Slots given back to their slab lose their pages; a slot in use keeps its
 * canary and its struct, which lie in pages shared with its neighbours. Big
 * slots, so that the pool keeps only two (8 MiB) and the others are given
 * back, interleaved with slots in use. */
Test(coro_stack, given_back_slots_leave_their_neighbours_intact,
     .timeout = TIMEOUT)
{
    enum { N = 16 };
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_COMPACT,
                            .stack_size = 4 << 20};
    corio_coro *co[N];

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            co[i] = corio_coro_new(touch_and_park, (void *)(uintptr_t)2048,
                                   &attr);
            cr_assert_not_null(co[i]);
            cr_assert_eq(corio_coro_resume(co[i]), 0);
        }
        for (int parity = 0; parity < 2; parity++)
            for (int i = parity; i < N; i += 2) {
                /* Its switch away checks its canary, after its neighbours
                 * (and on the second pass itself) were given back. */
                cr_assert_eq(corio_coro_resume(co[i]), 0);
                cr_assert_eq(corio_coro_status(co[i]), CORIO_CORO_DEAD);
                cr_assert_eq(corio_coro_free(co[i]), 0);
            }
    }
}
