/* tests/test_coro_coro.c -- the coroutine layer: resume/yield, status,
 * inspection, every documented error of corio_coro_*, the state a switch
 * must keep per coroutine (errno, floating-point control, callee-saved
 * registers), both stack modes and their pools, and coroutines on other
 * threads.
 *
 * Coroutine-local storage has its own file (test_coro_local.c), so do stack
 * overflows and the memory of the pools (test_coro_stack.c); generators are
 * covered by the plain tests/core/core_test.c and their own file. Loops are
 * scaled down under valgrind (SCALE). */
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

/* One timeout for every test: Criterion 2.4.1's runner leaks an entry of its
 * timeout queue when tests of one binary have different timeouts, and the
 * leak fails the ASan and valgrind stages. Generous for valgrind. */
#define TIMEOUT 60

/* The context switch the library was built with ("x86_64", "aarch64",
 * "ucontext"); an internal symbol, reachable because tests link the static
 * library. */
extern const char corio__arch_name[];

/* Loop counts: full size natively, a twentieth under valgrind. */
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 20 > 0 ? (n) / 20 : 1) : (n))

static corio_coro *new_coro(corio_fn fn, void *arg, int mode, const char *name)
{
    corio_coro_attr attr = {.stack_mode = mode, .name = name};
    corio_coro *co = corio_coro_new(fn, arg, &attr);

    cr_assert_not_null(co, "corio_coro_new: %s", corio_strerror(errno));
    return co;
}

/* ---- resume and yield -------------------------------------------------- */

/* An ordered record of who ran when. */
struct trace {
    char log[64];
    size_t n;
};

static void mark(struct trace *t, char c)
{
    cr_assert_lt(t->n, sizeof(t->log) - 1);
    t->log[t->n++] = c;
    t->log[t->n] = 0;
}

static void *ping(void *arg)
{
    struct trace *t = arg;

    for (char c = 'a'; c <= 'c'; c++) {
        mark(t, c);
        cr_assert_eq(corio_coro_yield(), 0);
    }
    mark(t, 'd');
    return t;
}

Test(coro, resume_yield_ping_pong_order, .timeout = TIMEOUT)
{
    struct trace t = {.n = 0};
    corio_coro *co = new_coro(ping, &t, CORIO_STACK_GUARDED, NULL);

    for (char c = '0'; c <= '3'; c++) {
        mark(&t, c);
        cr_assert_eq(corio_coro_resume(co), 0);
    }
    cr_assert_str_eq(t.log, "0a1b2c3d");
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_result(co), &t);
    cr_assert_eq(corio_coro_free(co), 0);
}

/* Checks its own status from inside, then reports it to the resumer. */
static void *self_status(void *arg)
{
    corio_coro **seen = arg;

    *seen = corio_coro_self();
    cr_assert_eq(corio_coro_status(*seen), CORIO_CORO_RUNNING);
    cr_assert_null(corio_coro_result(*seen));
    corio_coro_yield();
    cr_assert_eq(corio_coro_status(*seen), CORIO_CORO_RUNNING);
    return (void *)(uintptr_t)0xC0DE;
}

Test(coro, status_and_result_transitions, .timeout = TIMEOUT)
{
    corio_coro *seen = NULL;
    corio_coro *co = new_coro(self_status, &seen, CORIO_STACK_GUARDED, NULL);

    cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
    cr_assert_null(corio_coro_result(co), "no result before it starts");
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(seen, co, "corio_coro_self inside is the coroutine");
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
    cr_assert_null(corio_coro_result(co), "no result while suspended");
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_result(co), (void *)(uintptr_t)0xC0DE);
    cr_assert_eq(corio_coro_free(co), 0);
}

static void *return_arg(void *arg)
{
    return arg;
}

Test(coro, returns_without_yielding, .timeout = TIMEOUT)
{
    int x;
    corio_coro *co = new_coro(return_arg, &x, CORIO_STACK_COMPACT, NULL);

    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_result(co), &x);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        cr_assert_eq(corio_coro_resume(co), -1);
        cr_assert_eq(errno, CORIO_EDONE, "resume of a dead coroutine: %d", errno);
    }
    cr_assert_eq(corio_coro_result(co), &x, "a failed resume keeps the result");
    cr_assert_eq(corio_coro_free(co), 0);
}

/* ---- nesting: NORMAL, and the errors of an active coroutine ------------- */

struct nest {
    corio_coro *outer, *inner;
    struct trace t;
};

static void *inner_fn(void *arg)
{
    struct nest *n = arg;

    mark(&n->t, 'i');
    cr_assert_eq(corio_coro_self(), n->inner);
    cr_assert_eq(corio_coro_status(n->inner), CORIO_CORO_RUNNING);
    cr_assert_eq(corio_coro_status(n->outer), CORIO_CORO_NORMAL);

    /* Neither active coroutine can be resumed or freed. */
    errno = 0;
    cr_assert_eq(corio_coro_resume(n->outer), -1);
    cr_assert_eq(errno, EINVAL, "resume of a NORMAL coroutine: %d", errno);
    errno = 0;
    cr_assert_eq(corio_coro_resume(n->inner), -1);
    cr_assert_eq(errno, EINVAL, "resume of the RUNNING coroutine: %d", errno);
    errno = 0;
    cr_assert_eq(corio_coro_free(n->outer), -1);
    cr_assert_eq(errno, EBUSY, "free of a NORMAL coroutine: %d", errno);
    errno = 0;
    cr_assert_eq(corio_coro_free(n->inner), -1);
    cr_assert_eq(errno, EBUSY, "free of the RUNNING coroutine: %d", errno);
    cr_assert_eq(corio_coro_status(n->outer), CORIO_CORO_NORMAL,
                 "the failed calls changed nothing");

    cr_assert_eq(corio_coro_yield(), 0); /* back to outer, not to main */
    mark(&n->t, 'j');
    return NULL;
}

static void *outer_fn(void *arg)
{
    struct nest *n = arg;

    mark(&n->t, 'o');
    cr_assert_eq(corio_coro_resume(n->inner), 0);
    mark(&n->t, 'p');
    cr_assert_eq(corio_coro_self(), n->outer);
    cr_assert_eq(corio_coro_status(n->outer), CORIO_CORO_RUNNING);
    cr_assert_eq(corio_coro_status(n->inner), CORIO_CORO_SUSPENDED);
    cr_assert_eq(corio_coro_yield(), 0);
    mark(&n->t, 'q');
    return NULL;
}

Test(coro, nested_normal_status_and_errors, .timeout = TIMEOUT)
{
    struct nest n = {.t.n = 0};

    n.outer = new_coro(outer_fn, &n, CORIO_STACK_GUARDED, "outer");
    n.inner = new_coro(inner_fn, &n, CORIO_STACK_COMPACT, "inner");
    cr_assert_eq(corio_coro_resume(n.outer), 0);
    mark(&n.t, 'M');
    cr_assert_null(corio_coro_self());
    cr_assert_eq(corio_coro_status(n.outer), CORIO_CORO_SUSPENDED);
    cr_assert_eq(corio_coro_status(n.inner), CORIO_CORO_SUSPENDED);

    /* The inner coroutine is now resumed by main: its yield comes here. */
    cr_assert_eq(corio_coro_resume(n.inner), 0);
    cr_assert_eq(corio_coro_status(n.inner), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_resume(n.outer), 0);
    cr_assert_eq(corio_coro_status(n.outer), CORIO_CORO_DEAD);
    cr_assert_str_eq(n.t.log, "oipMjq");
    cr_assert_eq(corio_coro_free(n.inner), 0);
    cr_assert_eq(corio_coro_free(n.outer), 0);
}

/* A chain: link k resumes link k+1, the last yields; every yield returns to
 * the link that resumed it. */
#define CHAIN 64

struct chain {
    corio_coro *co[CHAIN];
    int depth_seen;
    int unwound;
};

static void *chain_fn(void *arg)
{
    struct chain *c = arg;
    corio_coro *me = corio_coro_self();
    int k = 0;

    while (c->co[k] != me)
        k++;
    if (k + 1 < CHAIN) {
        cr_assert_eq(corio_coro_resume(c->co[k + 1]), 0);
        cr_assert_eq(corio_coro_status(c->co[k + 1]), CORIO_CORO_SUSPENDED);
    } else {
        c->depth_seen = k + 1;
        for (int i = 0; i < CHAIN - 1; i++)
            cr_assert_eq(corio_coro_status(c->co[i]), CORIO_CORO_NORMAL);
    }
    c->unwound++;
    corio_coro_yield();
    return NULL;
}

Test(coro, deep_resume_chain, .timeout = TIMEOUT)
{
    struct chain c = {.depth_seen = 0};

    for (int i = 0; i < CHAIN; i++)
        c.co[i] = new_coro(chain_fn, &c, i % 2, NULL);
    cr_assert_eq(corio_coro_resume(c.co[0]), 0);
    cr_assert_eq(c.depth_seen, CHAIN);
    cr_assert_eq(c.unwound, CHAIN, "each yield went one link back");
    for (int i = 0; i < CHAIN; i++)
        cr_assert_eq(corio_coro_status(c.co[i]), CORIO_CORO_SUSPENDED);
    for (int i = 0; i < CHAIN; i++) {
        cr_assert_eq(corio_coro_resume(c.co[i]), 0);
        cr_assert_eq(corio_coro_status(c.co[i]), CORIO_CORO_DEAD);
        cr_assert_eq(corio_coro_free(c.co[i]), 0);
    }
}

/* ---- inspection -------------------------------------------------------- */

Test(coro, self_is_null_on_the_thread_stack, .timeout = TIMEOUT)
{
    cr_assert_null(corio_coro_self());
}

Test(coro, ids_unique_and_positive, .timeout = TIMEOUT)
{
    enum { N = 1000 };
    corio_coro **co = calloc(N, sizeof(*co));

    cr_assert_not_null(co);
    for (int i = 0; i < N; i++) {
        co[i] = new_coro(return_arg, NULL, i % 2, NULL);
        cr_assert_gt(corio_coro_id(co[i]), 0);
        for (int j = 0; j < i; j++)
            cr_assert_neq(corio_coro_id(co[i]), corio_coro_id(co[j]));
    }
    /* Ids are never reused, even when the memory is. */
    for (int i = 0; i < N; i++) {
        uint64_t old = corio_coro_id(co[i]);
        corio_coro *again;

        cr_assert_eq(corio_coro_free(co[i]), 0);
        again = new_coro(return_arg, NULL, i % 2, NULL);
        cr_assert_gt(corio_coro_id(again), old);
        co[i] = again;
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(corio_coro_free(co[i]), 0);
    free(co);
}

Test(coro, name_copied_and_truncated, .timeout = TIMEOUT)
{
    char buf[64];
    const char *long_name = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
    corio_coro *co;

    /* The name is copied: changing the caller's buffer changes nothing. */
    strcpy(buf, "worker");
    co = new_coro(return_arg, NULL, CORIO_STACK_GUARDED, buf);
    strcpy(buf, "XXXXXX");
    cr_assert_str_eq(corio_coro_name(co), "worker");
    cr_assert_eq(corio_coro_free(co), 0);

    co = new_coro(return_arg, NULL, CORIO_STACK_COMPACT, long_name);
    cr_assert_eq(strlen(corio_coro_name(co)), 31);
    cr_assert_eq(strncmp(corio_coro_name(co), long_name, 31), 0);
    cr_assert_eq(corio_coro_free(co), 0);

    co = new_coro(return_arg, NULL, CORIO_STACK_GUARDED,
                  "0123456789012345678901234567890"); /* exactly 31 */
    cr_assert_str_eq(corio_coro_name(co), "0123456789012345678901234567890");
    cr_assert_eq(corio_coro_free(co), 0);

    /* No name, and a reused stack does not inherit the previous name. */
    co = new_coro(return_arg, NULL, CORIO_STACK_COMPACT, NULL);
    cr_assert_str_eq(corio_coro_name(co), "");
    cr_assert_eq(corio_coro_free(co), 0);
    co = corio_coro_new(return_arg, NULL, NULL);
    cr_assert_not_null(co);
    cr_assert_str_eq(corio_coro_name(co), "");
    cr_assert_eq(corio_coro_free(co), 0);
}

static size_t round_page(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    return (n + page - 1) / page * page;
}

Test(coro, stack_size_default_and_rounding, .timeout = TIMEOUT)
{
    static const size_t asked[] = {
        0, CORIO_STACK_MIN, CORIO_STACK_MIN + 1, 100000, 256 * 1024 + 3,
    };

    for (int mode = 0; mode < 2; mode++) {
        corio_coro *co = corio_coro_new(return_arg, NULL, NULL);

        cr_assert_not_null(co);
        cr_assert_eq(corio_coro_stack_size(co), CORIO_STACK_DEFAULT);
        cr_assert_eq(corio_coro_free(co), 0);
        for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
            corio_coro_attr attr = {.stack_size = asked[i], .stack_mode = mode};
            size_t want = asked[i] ? round_page(asked[i]) : CORIO_STACK_DEFAULT;

            co = corio_coro_new(return_arg, NULL, &attr);
            cr_assert_not_null(co);
            cr_assert_eq(corio_coro_stack_size(co), want,
                         "mode %d asked %zu: got %zu, want %zu", mode, asked[i],
                         corio_coro_stack_size(co), want);
            cr_assert_eq(corio_coro_resume(co), 0);
            cr_assert_eq(corio_coro_free(co), 0);
        }
    }
}

/* The whole usable stack can be written: the size reported is real. */
static void *fill_stack(void *arg)
{
    size_t n = *(size_t *)arg;
    volatile char *p = __builtin_alloca(n);

    for (size_t i = 0; i < n; i += 512)
        p[i] = (char)i;
    p[n - 1] = 1;
    return (void *)(uintptr_t)p[n - 1];
}

Test(coro, most_of_the_stack_is_usable, .timeout = TIMEOUT)
{
    for (int mode = 0; mode < 2; mode++) {
        corio_coro_attr attr = {.stack_size = 32 * 1024, .stack_mode = mode};
        size_t n = 32 * 1024 - 4096; /* room for the struct and the frames */
        corio_coro *co = corio_coro_new(fill_stack, &n, &attr);

        cr_assert_not_null(co);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_result(co), (void *)1);
        cr_assert_eq(corio_coro_free(co), 0);
    }
}

/* ---- errors ------------------------------------------------------------ */

static void expect_new_einval(corio_fn fn, const corio_coro_attr *attr)
{
    errno = 0;
    cr_assert_null(corio_coro_new(fn, NULL, attr));
    cr_assert_eq(errno, EINVAL, "errno %d", errno);
}

Test(coro, new_einval, .timeout = TIMEOUT)
{
    corio_coro_attr attr = {0};

    expect_new_einval(NULL, NULL);
    expect_new_einval(NULL, &attr);
    attr.stack_mode = 2;
    expect_new_einval(return_arg, &attr);
    attr.stack_mode = -1;
    expect_new_einval(return_arg, &attr);
    for (int mode = 0; mode < 2; mode++) {
        attr.stack_mode = mode;
        attr.stack_size = CORIO_STACK_MIN - 1;
        expect_new_einval(return_arg, &attr);
        attr.stack_size = 1;
        expect_new_einval(return_arg, &attr);
    }
}

/* Read the process's virtual size (VmSize) in bytes. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    cr_assert_gt(kb, 0);
    return kb * 1024;
}

Test(coro, new_enomem_when_the_stack_cannot_be_mapped, .timeout = TIMEOUT)
{
    struct rlimit old, lim;

    if (RUNNING_ON_VALGRIND)
        cr_skip_test("valgrind manages the address space itself");
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = vm_size() + (512u << 20);
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
    for (int mode = 0; mode < 2; mode++) {
        corio_coro_attr attr = {.stack_size = (size_t)4 << 30, .stack_mode = mode};

        errno = 0;
        cr_assert_null(corio_coro_new(return_arg, NULL, &attr));
        cr_assert_eq(errno, ENOMEM, "mode %d: errno %d", mode, errno);
    }
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
}

static void *resume_self(void *arg)
{
    errno = 0;
    cr_assert_eq(corio_coro_resume(corio_coro_self()), -1);
    cr_assert_eq(errno, EINVAL);
    return arg;
}

Test(coro, resume_errors, .timeout = TIMEOUT)
{
    corio_coro *co;

    errno = 0;
    cr_assert_eq(corio_coro_resume(NULL), -1);
    cr_assert_eq(errno, EINVAL);

    co = new_coro(resume_self, (void *)7, CORIO_STACK_GUARDED, NULL);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_result(co), (void *)7);
    errno = 0;
    cr_assert_eq(corio_coro_resume(co), -1);
    cr_assert_eq(errno, CORIO_EDONE);
    cr_assert_eq(corio_coro_free(co), 0);
}

static void *yield_twice(void *arg)
{
    int *n = arg;

    for (int i = 0; i < 2; i++) {
        (*n)++;
        cr_assert_eq(corio_coro_yield(), 0);
    }
    (*n)++;
    return NULL;
}

Test(coro, yield_on_the_thread_stack_is_eperm, .timeout = TIMEOUT)
{
    int n = 0;
    corio_coro *co;

    /* Before any coroutine exists on this thread, and after. */
    errno = 0;
    cr_assert_eq(corio_coro_yield(), -1);
    cr_assert_eq(errno, EPERM);
    co = new_coro(yield_twice, &n, CORIO_STACK_GUARDED, NULL);
    cr_assert_eq(corio_coro_resume(co), 0);
    errno = 0;
    cr_assert_eq(corio_coro_yield(), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(corio_coro_free(co), 0);
    errno = 0;
    cr_assert_eq(corio_coro_yield(), -1);
    cr_assert_eq(errno, EPERM);
}

Test(coro, free_null_not_started_and_suspended, .timeout = TIMEOUT)
{
    int n = 0;
    corio_coro *co;

    errno = 1234;
    cr_assert_eq(corio_coro_free(NULL), 0);
    cr_assert_eq(errno, 1234, "free(NULL) leaves errno alone");

    for (int mode = 0; mode < 2; mode++) {
        /* Never started: its function never runs. */
        co = new_coro(yield_twice, &n, mode, NULL);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(n, 0);

        /* Suspended mid-way: freed without running any more of it. */
        co = new_coro(yield_twice, &n, mode, NULL);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(n, 1);
        n = 0;

        /* Its stack is as good as new for the next coroutine. */
        co = new_coro(yield_twice, &n, mode, NULL);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
        cr_assert_null(corio_coro_result(co));
        for (int i = 0; i < 3; i++)
            cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(n, 3);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
        cr_assert_eq(corio_coro_free(co), 0);
        n = 0;
    }
}

/* ---- state kept per coroutine: errno ----------------------------------- */

struct errno_case {
    int mine;      /* the errno this coroutine sets */
    int rounds;
};

static void *errno_keeper(void *arg)
{
    struct errno_case *c = arg;

    for (int i = 0; i < c->rounds; i++) {
        errno = c->mine + i;
        cr_assert_eq(corio_coro_yield(), 0);
        cr_assert_eq(errno, c->mine + i, "errno %d, want %d", errno,
                     c->mine + i);
    }
    return NULL;
}

Test(coro, errno_is_per_coroutine, .timeout = TIMEOUT)
{
    struct errno_case a = {.mine = 1000, .rounds = 50};
    struct errno_case b = {.mine = 2000, .rounds = 50};
    corio_coro *ca = new_coro(errno_keeper, &a, CORIO_STACK_GUARDED, NULL);
    corio_coro *cb = new_coro(errno_keeper, &b, CORIO_STACK_COMPACT, NULL);

    for (int i = 0; i <= 50; i++) {
        errno = 3000 + i;
        cr_assert_eq(corio_coro_resume(ca), 0);
        cr_assert_eq(errno, 3000 + i, "thread stack errno after A: %d", errno);
        cr_assert_eq(corio_coro_resume(cb), 0);
        cr_assert_eq(errno, 3000 + i, "thread stack errno after B: %d", errno);
    }
    cr_assert_eq(corio_coro_status(ca), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_status(cb), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_free(ca), 0);
    cr_assert_eq(corio_coro_free(cb), 0);
}

/* A failed resume sets errno in the caller, not in the target. */
Test(coro, errno_of_a_failed_call_is_the_callers, .timeout = TIMEOUT)
{
    struct errno_case a = {.mine = 77, .rounds = 1};
    corio_coro *ca = new_coro(errno_keeper, &a, CORIO_STACK_GUARDED, NULL);

    cr_assert_eq(corio_coro_resume(ca), 0);
    cr_assert_eq(corio_coro_resume(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(corio_coro_resume(ca), 0); /* asserts it still sees 77 */
    cr_assert_eq(corio_coro_status(ca), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_free(ca), 0);
}

/* ---- state kept per coroutine: floating-point control ------------------ */

/* 1/3 rounds down to nearest and up to +inf: the two differ in the last bit.
 * (valgrind computes SSE arithmetic to nearest whatever MXCSR says, so
 * there only the control registers are checked.) */
static volatile double one = 1.0, three = 3.0;

static double third(void)
{
    return one / three;
}

#if defined(__x86_64__)
static unsigned short x87_cw(void)
{
    unsigned short cw;

    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}
#endif

/* fesetround and fegetround without libm (the tests do not link it): what
 * glibc does, for the two machines corio has a switch for. The FE_ values
 * are the hardware's rounding-control bits on both. */
static int set_round(int mode)
{
#if defined(__x86_64__)
    unsigned short cw = x87_cw();
    unsigned csr = _mm_getcsr();

    cw = (unsigned short)((cw & ~0xC00u) | (unsigned)mode);
    __asm__ volatile("fldcw %0" : : "m"(cw));
    _mm_setcsr((csr & ~0x6000u) | (unsigned)mode << 3);
    return 0;
#elif defined(__aarch64__)
    unsigned long fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~0xC00000ul) | (unsigned long)mode;
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
    return 0;
#else
    return fesetround(mode);
#endif
}

static int get_round(void)
{
#if defined(__x86_64__)
    return x87_cw() & 0xC00;
#elif defined(__aarch64__)
    unsigned long fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)(fpcr & 0xC00000ul);
#else
    return fegetround();
#endif
}

struct fp_case {
    int mode;          /* the rounding mode this coroutine sets */
    double nearest;    /* 1/3 rounded to nearest */
};

static void *fp_keeper(void *arg)
{
    struct fp_case *c = arg;

    cr_assert_eq(set_round(c->mode), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(get_round(), c->mode);
        if (c->mode == FE_UPWARD && !RUNNING_ON_VALGRIND)
            cr_assert_gt(third(), c->nearest, "SSE/FPCR rounding is upward");
        else if (c->mode == FE_DOWNWARD || c->mode == FE_TOWARDZERO)
            cr_assert_eq(third(), c->nearest);
#if defined(__x86_64__)
        cr_assert_eq((_mm_getcsr() >> 13) & 3,
                     c->mode == FE_UPWARD ? 2u : c->mode == FE_DOWNWARD ? 1u : 0u);
#endif
        cr_assert_eq(corio_coro_yield(), 0);
    }
    return NULL;
}

Test(coro, fp_rounding_is_per_coroutine, .timeout = TIMEOUT)
{
    struct fp_case up = {.mode = FE_UPWARD};
    struct fp_case down = {.mode = FE_DOWNWARD};
    corio_coro *cu, *cd;
#if defined(__x86_64__)
    unsigned short cw0 = x87_cw();
    unsigned csr0 = _mm_getcsr();
#endif

    cr_assert_eq(get_round(), FE_TONEAREST);
    up.nearest = down.nearest = third();
    cu = new_coro(fp_keeper, &up, CORIO_STACK_GUARDED, NULL);
    cd = new_coro(fp_keeper, &down, CORIO_STACK_COMPACT, NULL);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(corio_coro_resume(cu), 0);
        cr_assert_eq(get_round(), FE_TONEAREST, "upward leaked to the thread");
        cr_assert_eq(third(), up.nearest);
        cr_assert_eq(corio_coro_resume(cd), 0);
        cr_assert_eq(get_round(), FE_TONEAREST, "downward leaked to the thread");
        cr_assert_eq(third(), up.nearest);
#if defined(__x86_64__)
        cr_assert_eq(x87_cw(), cw0, "x87 control word %#x, want %#x", x87_cw(), cw0);
        cr_assert_eq(_mm_getcsr() & 0xFFC0u, csr0 & 0xFFC0u, "MXCSR control bits");
#endif
    }
    cr_assert_eq(corio_coro_free(cu), 0);
    cr_assert_eq(corio_coro_free(cd), 0);
}

/* The thread stack's own rounding mode survives coroutines that run with
 * another one. */
static void *fp_nearest(void *arg)
{
    struct fp_case *c = arg;

    cr_assert_eq(set_round(FE_TONEAREST), 0);
    cr_assert_eq(third(), c->nearest);
    corio_coro_yield();
    cr_assert_eq(get_round(), FE_TONEAREST);
    return NULL;
}

Test(coro, fp_rounding_of_the_thread_is_kept, .timeout = TIMEOUT)
{
    struct fp_case c;
    corio_coro *co;

    c.nearest = third();
    co = new_coro(fp_nearest, &c, CORIO_STACK_GUARDED, NULL);
    cr_assert_eq(set_round(FE_UPWARD), 0);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(get_round(), FE_UPWARD);
    if (!RUNNING_ON_VALGRIND)
        cr_assert_gt(third(), c.nearest);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(get_round(), FE_UPWARD);
    cr_assert_eq(set_round(FE_TONEAREST), 0);
    cr_assert_eq(corio_coro_free(co), 0);
}

/* ---- state kept per coroutine: callee-saved registers ------------------ */

/* probe_regs(fn, seed) sets every callee-saved register to seed + k, calls
 * fn, and returns a mask of the registers that did not come back intact:
 * bit 0-5 rbx rbp r12-r15 on x86_64; bits 0-10 x19-x29 and 11-18 d8-d15 on
 * aarch64. fn resumes or yields, so a switch that loses a register shows up
 * on one side or the other, whatever the compiler keeps in registers. */
uint64_t probe_regs(void (*fn)(void), uint64_t seed);

#if defined(__x86_64__)
#define PROBE_CHECK(reg, k, bit)                                             \
    "leaq " #k "(%rsi), %rcx\n\tcmpq %rcx, %" #reg "\n\tsetne %dl\n\t"       \
    "movzbl %dl, %edx\n\tshlq $" #bit ", %rdx\n\torq %rdx, %rax\n\t"
__asm__(".pushsection .text\n\t.globl probe_regs\n\t.hidden probe_regs\n\t"
        ".type probe_regs, @function\n"
        "probe_regs:\n\t"
        "pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\t"
        "pushq %r14\n\tpushq %r15\n\tpushq %rsi\n\t" /* rsp 16-aligned */
        "leaq 1(%rsi), %rbx\n\tleaq 2(%rsi), %rbp\n\tleaq 3(%rsi), %r12\n\t"
        "leaq 4(%rsi), %r13\n\tleaq 5(%rsi), %r14\n\tleaq 6(%rsi), %r15\n\t"
        "callq *%rdi\n\t"
        "movq (%rsp), %rsi\n\txorl %eax, %eax\n\t"
        PROBE_CHECK(rbx, 1, 0) PROBE_CHECK(rbp, 2, 1) PROBE_CHECK(r12, 3, 2)
        PROBE_CHECK(r13, 4, 3) PROBE_CHECK(r14, 5, 4) PROBE_CHECK(r15, 6, 5)
        "popq %rsi\n\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\t"
        "popq %rbx\n\tpopq %rbp\n\tret\n\t"
        ".size probe_regs, .-probe_regs\n\t.popsection");
#elif defined(__aarch64__)
#define PROBE_X(reg, k, bit)                                                 \
    "add x2, x1, #" #k "\n\tcmp " #reg ", x2\n\tcset x3, ne\n\t"             \
    "orr x0, x0, x3, lsl #" #bit "\n\t"
#define PROBE_D(reg, k, bit)                                                 \
    "fmov x4, " #reg "\n\tadd x2, x1, #" #k "\n\tcmp x4, x2\n\t"             \
    "cset x3, ne\n\torr x0, x0, x3, lsl #" #bit "\n\t"
__asm__(".pushsection .text\n\t.globl probe_regs\n\t.hidden probe_regs\n\t"
        ".type probe_regs, %function\n"
        "probe_regs:\n\t"
        "stp x29, x30, [sp, #-176]!\n\t"
        "stp x19, x20, [sp, #16]\n\tstp x21, x22, [sp, #32]\n\t"
        "stp x23, x24, [sp, #48]\n\tstp x25, x26, [sp, #64]\n\t"
        "stp x27, x28, [sp, #80]\n\tstp d8, d9, [sp, #96]\n\t"
        "stp d10, d11, [sp, #112]\n\tstp d12, d13, [sp, #128]\n\t"
        "stp d14, d15, [sp, #144]\n\tstr x1, [sp, #160]\n\t"
        "add x19, x1, #1\n\tadd x20, x1, #2\n\tadd x21, x1, #3\n\t"
        "add x22, x1, #4\n\tadd x23, x1, #5\n\tadd x24, x1, #6\n\t"
        "add x25, x1, #7\n\tadd x26, x1, #8\n\tadd x27, x1, #9\n\t"
        "add x28, x1, #10\n\tadd x29, x1, #11\n\t"
        "fmov d8, x19\n\tfmov d9, x20\n\tfmov d10, x21\n\tfmov d11, x22\n\t"
        "fmov d12, x23\n\tfmov d13, x24\n\tfmov d14, x25\n\tfmov d15, x26\n\t"
        "blr x0\n\t"
        "ldr x1, [sp, #160]\n\tmov x0, #0\n\t"
        PROBE_X(x19, 1, 0) PROBE_X(x20, 2, 1) PROBE_X(x21, 3, 2)
        PROBE_X(x22, 4, 3) PROBE_X(x23, 5, 4) PROBE_X(x24, 6, 5)
        PROBE_X(x25, 7, 6) PROBE_X(x26, 8, 7) PROBE_X(x27, 9, 8)
        PROBE_X(x28, 10, 9) PROBE_X(x29, 11, 10)
        PROBE_D(d8, 1, 11) PROBE_D(d9, 2, 12) PROBE_D(d10, 3, 13)
        PROBE_D(d11, 4, 14) PROBE_D(d12, 5, 15) PROBE_D(d13, 6, 16)
        PROBE_D(d14, 7, 17) PROBE_D(d15, 8, 18)
        "ldp x19, x20, [sp, #16]\n\tldp x21, x22, [sp, #32]\n\t"
        "ldp x23, x24, [sp, #48]\n\tldp x25, x26, [sp, #64]\n\t"
        "ldp x27, x28, [sp, #80]\n\tldp d8, d9, [sp, #96]\n\t"
        "ldp d10, d11, [sp, #112]\n\tldp d12, d13, [sp, #128]\n\t"
        "ldp d14, d15, [sp, #144]\n\tldp x29, x30, [sp], #176\n\tret\n\t"
        ".size probe_regs, .-probe_regs\n\t.popsection");
#else
uint64_t probe_regs(void (*fn)(void), uint64_t seed)
{
    (void)seed;
    fn();
    return 0;
}
#endif

static corio_coro *probe_co;

static void probe_resume(void)
{
    corio_coro_resume(probe_co);
}

static void probe_yield(void)
{
    corio_coro_yield();
}

#define PROBE_ROUNDS 100

/* The coroutine's side: its registers must survive everything the resumer
 * runs between two resumes. Returns the union of the lost-register masks. */
static void *probe_body(void *arg)
{
    uint64_t mask = 0;

    for (uint64_t i = 0; i < PROBE_ROUNDS; i++)
        mask |= probe_regs(probe_yield, 0xB0B0000000 + i * 64);
    return (void *)(uintptr_t)mask;
}

Test(coro, every_callee_saved_register_survives_switches, .timeout = TIMEOUT)
{
    for (int mode = 0; mode < 2; mode++) {
        uint64_t mask = 0;

        probe_co = new_coro(probe_body, NULL, mode, NULL);
        for (uint64_t i = 0; i <= PROBE_ROUNDS; i++)
            mask |= probe_regs(probe_resume, 0xA0A0000000 + i * 64);
        cr_assert_eq(mask, 0, "resumer lost registers (mask %#llx)",
                     (unsigned long long)mask);
        cr_assert_eq(corio_coro_status(probe_co), CORIO_CORO_DEAD);
        cr_assert_null(corio_coro_result(probe_co),
                       "coroutine lost registers (mask %#llx)",
                       (unsigned long long)(uintptr_t)corio_coro_result(probe_co));
        cr_assert_eq(corio_coro_free(probe_co), 0);
    }
}

/* Overwrite every callee-saved register the compiler lets us name (not the
 * frame pointer), so that a switch that failed to restore one would hand
 * garbage to the other side. The clobber list makes the enclosing function
 * save and restore them around its body, not around this statement. */
#if defined(__x86_64__)
#define TRASH_CALLEE_SAVED()                                                 \
    __asm__ volatile("movq $0x5a5a5a5a, %%rbx\n\t"                           \
                     "movq $0x6b6b6b6b, %%r12\n\t"                           \
                     "movq $0x7c7c7c7c, %%r13\n\t"                           \
                     "movq $0x1d1d1d1d, %%r14\n\t"                           \
                     "movq $0x2e2e2e2e, %%r15\n\t"                           \
                     :                                                       \
                     :                                                       \
                     : "rbx", "r12", "r13", "r14", "r15", "memory")
#elif defined(__aarch64__)
#define TRASH_CALLEE_SAVED()                                                 \
    __asm__ volatile("mov x19, #0x5a5a\n\tmov x20, #0x6b6b\n\t"              \
                     "mov x21, #0x7c7c\n\tmov x22, #0x1d1d\n\t"              \
                     "mov x23, #0x2e2e\n\tmov x24, #0x3f3f\n\t"              \
                     "mov x25, #0x4040\n\tmov x26, #0x5151\n\t"              \
                     "mov x27, #0x6262\n\tmov x28, #0x7373\n\t"              \
                     "fmov d8, #1.0\n\tfmov d9, #2.0\n\t"                    \
                     "fmov d10, #3.0\n\tfmov d11, #4.0\n\t"                  \
                     "fmov d12, #5.0\n\tfmov d13, #6.0\n\t"                  \
                     "fmov d14, #7.0\n\tfmov d15, #8.0\n\t"                  \
                     :                                                       \
                     :                                                       \
                     : "x19", "x20", "x21", "x22", "x23", "x24", "x25",      \
                       "x26", "x27", "x28", "v8", "v9", "v10", "v11", "v12", \
                       "v13", "v14", "v15", "memory")
#else
#define TRASH_CALLEE_SAVED() ((void)0)
#endif

/* Eight integers and eight doubles live across every switch: more than the
 * callee-saved registers, so some sit in them and the rest are spilled. */
static volatile uint64_t seeds[2] = {11, 23};

#define LIVE_ROUNDS 200

/* Keeps its 16 values in locals (not in memory) across each yield. */
static void *register_keeper(void *arg)
{
    uint64_t s = seeds[1];
    uint64_t a = s * 3, b = s * 5, c = s * 7, d = s * 11, e = s * 13;
    uint64_t f = s * 17, g = s * 19, h = s * 23;
    double x = (double)s, y = x * 1.5, z = x * 2.5, w = x * 3.5;
    double p = x * 4.5, q = x * 5.5, r = x * 6.5, t = x * 7.5;

    (void)arg;
    for (int i = 0; i < LIVE_ROUNDS; i++) {
        TRASH_CALLEE_SAVED();
        corio_coro_yield();
        a += 1, b += 2, c += 3, d += 4, e += 5, f += 6, g += 7, h += 8;
        x += 1, y += 2, z += 3, w += 4, p += 5, q += 6, r += 7, t += 8;
    }
    cr_assert_eq(a, s * 3 + LIVE_ROUNDS * 1);
    cr_assert_eq(b, s * 5 + LIVE_ROUNDS * 2);
    cr_assert_eq(c, s * 7 + LIVE_ROUNDS * 3);
    cr_assert_eq(d, s * 11 + LIVE_ROUNDS * 4);
    cr_assert_eq(e, s * 13 + LIVE_ROUNDS * 5);
    cr_assert_eq(f, s * 17 + LIVE_ROUNDS * 6);
    cr_assert_eq(g, s * 19 + LIVE_ROUNDS * 7);
    cr_assert_eq(h, s * 23 + LIVE_ROUNDS * 8);
    cr_assert_eq(x, (double)s + LIVE_ROUNDS * 1);
    cr_assert_eq(y, (double)s * 1.5 + LIVE_ROUNDS * 2);
    cr_assert_eq(z, (double)s * 2.5 + LIVE_ROUNDS * 3);
    cr_assert_eq(w, (double)s * 3.5 + LIVE_ROUNDS * 4);
    cr_assert_eq(p, (double)s * 4.5 + LIVE_ROUNDS * 5);
    cr_assert_eq(q, (double)s * 5.5 + LIVE_ROUNDS * 6);
    cr_assert_eq(r, (double)s * 6.5 + LIVE_ROUNDS * 7);
    cr_assert_eq(t, (double)s * 7.5 + LIVE_ROUNDS * 8);
    return (void *)(uintptr_t)(a ^ b ^ c ^ d ^ e ^ f ^ g ^ h);
}

Test(coro, live_values_survive_switches, .timeout = TIMEOUT)
{
    uint64_t s = seeds[0];
    uint64_t a = s * 3, b = s * 5, c = s * 7, d = s * 11, e = s * 13;
    uint64_t f = s * 17, g = s * 19, h = s * 23;
    double x = (double)s, y = x * 1.5, z = x * 2.5, w = x * 3.5;
    double p = x * 4.5, q = x * 5.5, r = x * 6.5, t = x * 7.5;
    corio_coro *co[2];

    co[0] = new_coro(register_keeper, NULL, CORIO_STACK_GUARDED, NULL);
    co[1] = new_coro(register_keeper, NULL, CORIO_STACK_COMPACT, NULL);
    for (int i = 0; i <= LIVE_ROUNDS; i++) {
        TRASH_CALLEE_SAVED();
        cr_assert_eq(corio_coro_resume(co[i % 2]), 0);
        cr_assert_eq(corio_coro_resume(co[(i + 1) % 2]), 0);
        a ^= 1, b ^= 2, c ^= 3, d ^= 4, e ^= 5, f ^= 6, g ^= 7, h ^= 8;
        x -= 1, y -= 2, z -= 3, w -= 4, p -= 5, q -= 6, r -= 7, t -= 8;
    }
    /* LIVE_ROUNDS + 1 is odd: every xor mask was applied an odd times. */
    cr_assert_eq(a, (s * 3) ^ 1);
    cr_assert_eq(b, (s * 5) ^ 2);
    cr_assert_eq(c, (s * 7) ^ 3);
    cr_assert_eq(d, (s * 11) ^ 4);
    cr_assert_eq(e, (s * 13) ^ 5);
    cr_assert_eq(f, (s * 17) ^ 6);
    cr_assert_eq(g, (s * 19) ^ 7);
    cr_assert_eq(h, (s * 23) ^ 8);
    cr_assert_eq(x, (double)s - (LIVE_ROUNDS + 1) * 1);
    cr_assert_eq(y, (double)s * 1.5 - (LIVE_ROUNDS + 1) * 2);
    cr_assert_eq(z, (double)s * 2.5 - (LIVE_ROUNDS + 1) * 3);
    cr_assert_eq(w, (double)s * 3.5 - (LIVE_ROUNDS + 1) * 4);
    cr_assert_eq(p, (double)s * 4.5 - (LIVE_ROUNDS + 1) * 5);
    cr_assert_eq(q, (double)s * 5.5 - (LIVE_ROUNDS + 1) * 6);
    cr_assert_eq(r, (double)s * 6.5 - (LIVE_ROUNDS + 1) * 7);
    cr_assert_eq(t, (double)s * 7.5 - (LIVE_ROUNDS + 1) * 8);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(corio_coro_status(co[i]), CORIO_CORO_DEAD);
        cr_assert_not_null(corio_coro_result(co[i]));
        cr_assert_eq(corio_coro_free(co[i]), 0);
    }
}

/* ---- many coroutines and the stack pools -------------------------------- */

static void *yield_once_return_arg(void *arg)
{
    corio_coro_yield();
    return arg;
}

static void many_alive(int mode, int n)
{
    corio_coro **co = calloc((size_t)n, sizeof(*co));

    cr_assert_not_null(co);
    for (int i = 0; i < n; i++) {
        co[i] = new_coro(yield_once_return_arg, (void *)(intptr_t)(i + 1), mode,
                         NULL);
        cr_assert_eq(corio_coro_resume(co[i]), 0);
    }
    /* All parked at once; finish them in reverse order. */
    for (int i = n - 1; i >= 0; i--) {
        cr_assert_eq(corio_coro_status(co[i]), CORIO_CORO_SUSPENDED);
        cr_assert_eq(corio_coro_resume(co[i]), 0);
        cr_assert_eq(corio_coro_result(co[i]), (void *)(intptr_t)(i + 1));
    }
    for (int i = 0; i < n; i++)
        cr_assert_eq(corio_coro_free(co[i]), 0);
    free(co);
}

Test(coro, ten_thousand_compact_alive, .timeout = TIMEOUT)
{
    many_alive(CORIO_STACK_COMPACT, SCALE(10000));
}

Test(coro, thousand_guarded_alive, .timeout = TIMEOUT)
{
    many_alive(CORIO_STACK_GUARDED, SCALE(1000));
}

static void pool_reuse(int mode, int n)
{
    corio_coro *first = NULL;
    int reused = 0;

    for (int i = 0; i < n; i++) {
        corio_coro *co = new_coro(return_arg, (void *)(intptr_t)i, mode, NULL);

        if (first == NULL)
            first = co;
        reused += co == first;
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_result(co), (void *)(intptr_t)i);
        cr_assert_eq(corio_coro_free(co), 0);
    }
    cr_assert_eq(reused, n, "a freed stack is the next one made (%d of %d)",
                 reused, n);
}

Test(coro, pool_reuses_compact_stacks, .timeout = TIMEOUT)
{
    pool_reuse(CORIO_STACK_COMPACT, SCALE(100000));
}

Test(coro, pool_reuses_guarded_stacks, .timeout = TIMEOUT)
{
    pool_reuse(CORIO_STACK_GUARDED, SCALE(100000));
}

/* More stack sizes than the pool keeps classes for still work. */
Test(coro, many_stack_sizes, .timeout = TIMEOUT)
{
    enum { SIZES = 20, EACH = 3 };
    corio_coro *co[SIZES * EACH];

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < SIZES * EACH; i++) {
            corio_coro_attr attr = {
                .stack_size = CORIO_STACK_MIN + (size_t)(i % SIZES) * 4096,
                .stack_mode = (i / SIZES) % 2,
            };

            co[i] = corio_coro_new(yield_once_return_arg, (void *)(intptr_t)i,
                                   &attr);
            cr_assert_not_null(co[i]);
            cr_assert_eq(corio_coro_stack_size(co[i]),
                         round_page(attr.stack_size));
            cr_assert_eq(corio_coro_resume(co[i]), 0);
        }
        for (int i = 0; i < SIZES * EACH; i++) {
            cr_assert_eq(corio_coro_resume(co[i]), 0);
            cr_assert_eq(corio_coro_result(co[i]), (void *)(intptr_t)i);
            cr_assert_eq(corio_coro_free(co[i]), 0);
        }
    }
}

/* ---- threads ----------------------------------------------------------- */

struct thread_case {
    int rounds;
    int mode;
    int failures;        /* checks failed on the thread (no cr_assert there) */
    corio_coro *co;      /* for the migration test */
};

struct counter {
    corio_coro *self;    /* what corio_coro_self said inside */
    int n;
};

static void *count_up(void *arg)
{
    struct counter *c = arg;

    c->self = corio_coro_self();
    for (;;) {
        c->n++;
        if (corio_coro_yield() != 0)
            return NULL;
    }
}

/* On another thread: its own thread stack, its own current coroutine. */
static void *thread_body(void *arg)
{
    struct thread_case *tc = arg;
    struct counter c = {0};
    corio_coro_attr attr = {.stack_mode = tc->mode};
    corio_coro *co;

    tc->failures += corio_coro_self() != NULL;
    errno = 0;
    tc->failures += corio_coro_yield() != -1 || errno != EPERM;
    co = corio_coro_new(count_up, &c, &attr);
    if (co == NULL) {
        tc->failures++;
        return NULL;
    }
    for (int i = 1; i <= tc->rounds; i++) {
        tc->failures += corio_coro_resume(co) != 0;
        tc->failures += c.n != i || c.self != co;
        tc->failures += corio_coro_self() != NULL;
        tc->failures += corio_coro_status(co) != CORIO_CORO_SUSPENDED;
    }
    tc->failures += corio_coro_free(co) != 0;
    return NULL;
}

Test(coro, coroutines_on_other_threads, .timeout = TIMEOUT)
{
    enum { THREADS = 2 };
    pthread_t t[THREADS];
    struct thread_case tc[THREADS];
    struct counter c = {0};
    corio_coro *co = new_coro(count_up, &c, CORIO_STACK_GUARDED, NULL);

    /* A coroutine of this thread stays suspended while the others run. */
    cr_assert_eq(corio_coro_resume(co), 0);
    for (int i = 0; i < THREADS; i++) {
        tc[i] = (struct thread_case){.rounds = SCALE(20000), .mode = i % 2};
        cr_assert_eq(pthread_create(&t[i], NULL, thread_body, &tc[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        cr_assert_eq(pthread_join(t[i], NULL), 0);
        cr_assert_eq(tc[i].failures, 0, "thread %d: %d failed checks", i,
                     tc[i].failures);
    }
    cr_assert_null(corio_coro_self());
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.self, co);
    cr_assert_eq(corio_coro_free(co), 0);
}

/* The header allows a suspended coroutine to be resumed by another thread
 * (never by two at once): here one moves to a thread and back. */
static void *resume_there(void *arg)
{
    struct thread_case *tc = arg;

    tc->failures += corio_coro_self() != NULL;
    tc->failures += corio_coro_resume(tc->co) != 0;
    tc->failures += corio_coro_status(tc->co) != CORIO_CORO_SUSPENDED;
    tc->failures += corio_coro_self() != NULL;
    return NULL;
}

Test(coro, a_suspended_coroutine_moves_between_threads, .timeout = TIMEOUT)
{
    struct counter c = {0};
    struct thread_case tc = {.co = NULL};
    pthread_t t;

    for (int mode = 0; mode < 2; mode++) {
        c = (struct counter){0};
        tc = (struct thread_case){.co = new_coro(count_up, &c, mode, NULL)};
        cr_assert_eq(corio_coro_resume(tc.co), 0);
        cr_assert_eq(pthread_create(&t, NULL, resume_there, &tc), 0);
        cr_assert_eq(pthread_join(t, NULL), 0);
        cr_assert_eq(tc.failures, 0);
        cr_assert_eq(c.n, 2);
        cr_assert_eq(corio_coro_resume(tc.co), 0);
        cr_assert_eq(c.n, 3);
        cr_assert_eq(c.self, tc.co);
        cr_assert_eq(corio_coro_free(tc.co), 0);
    }
}

/* A thread that exits with stacks in its pool gives them back (guarded) or
 * to the other threads (compact); a coroutine freed on another thread than
 * its maker's is fine. */
static void *make_and_leave(void *arg)
{
    corio_coro **out = arg;
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_COMPACT};

    for (int i = 0; i < 8; i++) {
        corio_coro *co = corio_coro_new(return_arg, NULL, &attr);

        if (co == NULL)
            return NULL;
        corio_coro_free(co);
    }
    *out = corio_coro_new(yield_once_return_arg, (void *)5, &attr);
    return NULL;
}

Test(coro, stacks_outlive_the_thread_that_made_them, .timeout = TIMEOUT)
{
    corio_coro *co = NULL;
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, make_and_leave, &co), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_not_null(co);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_result(co), (void *)5);
    cr_assert_eq(corio_coro_free(co), 0);
    for (int i = 0; i < 16; i++) {
        corio_coro *c2 = new_coro(return_arg, (void *)1, CORIO_STACK_COMPACT, NULL);

        cr_assert_eq(corio_coro_resume(c2), 0);
        cr_assert_eq(corio_coro_free(c2), 0);
    }
}
