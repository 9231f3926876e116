/* tests/test_coro_gen.c -- generators: every corio_gen_* call of
 * include/corio/coro.h and each error it documents.
 *
 * The order follows a generator's life: creation, the first send, values
 * crossing yield both ways, exhaustion, close (of a generator not started,
 * suspended, exhausted, or one that ignores the close), misuse from inside a
 * generator, delegation with yield_from (nested, and closed while
 * delegating), inspection through the underlying coroutine, compact stacks
 * and the stack pool under 100,000 generators.
 *
 * Stacks are mmap'ed, so valgrind's leak check cannot see a stack that is
 * never given back. "Freed" is shown instead with public behaviour: a freed
 * generator's stack is the next one handed out (the pool is LIFO per
 * thread), and the local-storage destructors of a freed coroutine run. */
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <valgrind/valgrind.h>

/* Loop counts: full size natively, a tenth under valgrind. */
#define SCALE(n) (RUNNING_ON_VALGRIND ? ((n) / 10 > 0 ? (n) / 10 : 1) : (n))

/* A value that no generator yields, to see that an out-parameter was left
 * alone. */
static char untouched_mark;
#define UNTOUCHED ((void *)&untouched_mark)

static corio_gen *new_gen(corio_gen_fn fn, void *arg)
{
    corio_gen *g = corio_gen_new(fn, arg, NULL);

    cr_assert_not_null(g, "corio_gen_new: %s", corio_strerror(errno));
    return g;
}

static corio_gen *new_gen_mode(corio_gen_fn fn, void *arg, int mode)
{
    corio_coro_attr attr = {.stack_mode = mode};
    corio_gen *g = corio_gen_new(fn, arg, &attr);

    cr_assert_not_null(g, "corio_gen_new: %s", corio_strerror(errno));
    return g;
}

/* Expect rc == -1 with errno err. */
#define expect_fail(call, err)                                              \
    do {                                                                    \
        errno = 0;                                                          \
        int rc_ = (call);                                                   \
        cr_assert_eq(rc_, -1, "%s returned %d", #call, rc_);                \
        cr_assert_eq(errno, (err), "%s: errno %s (%s), expected %s", #call, \
                     corio_err_name(errno), corio_strerror(errno),          \
                     corio_err_name(err));                                  \
    } while (0)

/* What a generator saw, for the test to check after the fact. */
struct seen {
    int ran;          /* the function was entered */
    int cleanup;      /* its cleanup ran (after a failed yield) */
    int yield_rc;     /* the last failed yield's return value */
    int yield_errno;  /* and its errno */
    void *in[16];     /* the values received from yields */
    int nin;
};

/* ---- Creation -------------------------------------------------------- */

static void *never_runs(corio_gen *gen, void *arg)
{
    struct seen *s = arg;

    s->ran++;
    return NULL;
}

Test(gen, new_einval, .timeout = 30)
{
    corio_coro_attr attr = {0};

    errno = 0;
    cr_assert_null(corio_gen_new(NULL, NULL, NULL));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(corio_gen_new(NULL, NULL, &attr));
    cr_assert_eq(errno, EINVAL);
    attr.stack_mode = 2;
    errno = 0;
    cr_assert_null(corio_gen_new(never_runs, NULL, &attr));
    cr_assert_eq(errno, EINVAL);
    attr.stack_mode = CORIO_STACK_COMPACT;
    attr.stack_size = CORIO_STACK_MIN - 1;
    errno = 0;
    cr_assert_null(corio_gen_new(never_runs, NULL, &attr));
    cr_assert_eq(errno, EINVAL);
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

Test(gen, new_enomem_when_the_stack_cannot_be_mapped, .timeout = 30)
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
        cr_assert_null(corio_gen_new(never_runs, NULL, &attr));
        cr_assert_eq(errno, ENOMEM, "mode %d: errno %d", mode, errno);
    }
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
}

/* ---- The first send ---------------------------------------------------- */

/* Python's `a = yield 1; while True: a = yield a` (seed G3), recording what
 * it receives. */
static void *echo(corio_gen *gen, void *arg)
{
    struct seen *s = arg;
    void *a;

    s->ran++;
    if (corio_gen_yield(gen, CORIO_INT(1), &a) == -1)
        return NULL;
    for (;;) {
        s->in[s->nin++ % 16] = a;
        if (corio_gen_yield(gen, a, &a) == -1)
            return NULL;
    }
}

Test(gen, creating_does_not_run_send_null_starts, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(echo, &s);
    void *out = NULL;

    cr_assert_eq(s.ran, 0, "a new generator runs nothing");
    cr_assert_not(corio_gen_is_done(g));
    cr_assert_eq(corio_gen_send(g, NULL, &out), 1);
    cr_assert_eq(s.ran, 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, next_starts_too, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(echo, &s);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, send_value_before_start_is_einval, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(echo, &s);
    void *out = UNTOUCHED;

    /* Python: "can't send non-None value to a just-started generator". */
    expect_fail(corio_gen_send(g, CORIO_INT(5), &out), EINVAL);
    cr_assert_eq(s.ran, 0, "the failed send ran nothing");
    cr_assert_eq(out, UNTOUCHED);
    cr_assert_not(corio_gen_is_done(g));
    /* The generator is intact: send(None) still starts it. */
    cr_assert_eq(corio_gen_send(g, NULL, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, null_generator_is_einval, .timeout = 30)
{
    void *out = UNTOUCHED;

    expect_fail(corio_gen_send(NULL, NULL, &out), EINVAL);
    expect_fail(corio_gen_next(NULL, &out), EINVAL);
    expect_fail(corio_gen_yield(NULL, NULL, NULL), EINVAL);
    expect_fail(corio_gen_yield_from(NULL, NULL, NULL), EINVAL);
    cr_assert_eq(out, UNTOUCHED);
}

/* ---- Values across yield ----------------------------------------------- */

Test(gen, yield_delivers_the_sent_value, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(echo, &s);
    void *out = NULL;

    cr_assert_eq(corio_gen_send(g, NULL, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(5), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 5);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(100), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 100);
    /* next() sends NULL: Python's None. */
    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_null(out);
    /* out may be NULL: the value is dropped. */
    cr_assert_eq(corio_gen_send(g, CORIO_INT(7), NULL), 1);
    cr_assert_eq(s.nin, 4);
    cr_assert_eq(CORIO_TO_INT(s.in[0]), 5);
    cr_assert_eq(CORIO_TO_INT(s.in[1]), 100);
    cr_assert_null(s.in[2]);
    cr_assert_eq(CORIO_TO_INT(s.in[3]), 7);
    cr_assert_eq(corio_gen_close(g), 0);
}

/* Yields its argument's values (`in` NULL: it ignores what is sent). */
static void *yield_ignoring_input(corio_gen *gen, void *arg)
{
    for (int i = 1; i <= 3; i++)
        if (corio_gen_yield(gen, CORIO_INT(i * 10), NULL) == -1)
            return NULL;
    return arg;
}

Test(gen, yield_with_null_in_drops_the_sent_value, .timeout = 30)
{
    corio_gen *g = new_gen(yield_ignoring_input, CORIO_INT(99));
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 10);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(1), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 20);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(2), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 30);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(3), &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 99);
    cr_assert_eq(corio_gen_close(g), 0);
}

/* ---- Exhaustion -------------------------------------------------------- */

static char return_value_mark;
#define RETURN_VALUE ((void *)&return_value_mark)

/* Yields NULL (a legitimate value), then returns RETURN_VALUE. */
static void *yield_null_then_return(corio_gen *gen, void *arg)
{
    void *in = UNTOUCHED;

    if (corio_gen_yield(gen, NULL, &in) == -1)
        return NULL;
    cr_assert_null(in);
    return RETURN_VALUE;
}

Test(gen, exhaustion_returns_zero_with_the_return_value, .timeout = 30)
{
    corio_gen *g = new_gen(yield_null_then_return, NULL);
    void *out = UNTOUCHED;

    /* A yielded NULL is 1 with *out NULL, not exhaustion. */
    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_null(out);
    cr_assert_not(corio_gen_is_done(g));
    /* Returning is 0 (StopIteration) with the return value in *out. */
    out = UNTOUCHED;
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(out, RETURN_VALUE);
    cr_assert(corio_gen_is_done(g));
    cr_assert_eq(corio_gen_close(g), 0);
}

static void *return_at_once(corio_gen *gen, void *arg)
{
    return arg;
}

Test(gen, a_generator_that_never_yields_is_exhausted_at_the_first_send,
     .timeout = 30)
{
    corio_gen *g = new_gen(return_at_once, CORIO_INT(42));
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 42);
    cr_assert(corio_gen_is_done(g));
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, exhaustion_with_null_out, .timeout = 30)
{
    corio_gen *g = new_gen(return_at_once, CORIO_INT(42));

    cr_assert_eq(corio_gen_next(g, NULL), 0);
    cr_assert(corio_gen_is_done(g));
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, send_and_next_after_exhaustion_are_edone, .timeout = 30)
{
    corio_gen *g = new_gen(yield_null_then_return, NULL);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    out = UNTOUCHED;
    expect_fail(corio_gen_next(g, &out), CORIO_EDONE);
    expect_fail(corio_gen_next(g, &out), CORIO_EDONE);
    expect_fail(corio_gen_send(g, NULL, &out), CORIO_EDONE);
    expect_fail(corio_gen_send(g, CORIO_INT(5), &out), CORIO_EDONE);
    expect_fail(corio_gen_send(g, CORIO_INT(5), NULL), CORIO_EDONE);
    cr_assert_eq(out, UNTOUCHED, "a failed send leaves *out alone");
    cr_assert(corio_gen_is_done(g));
    cr_assert_eq(corio_gen_close(g), 0);
}

/* ---- close ------------------------------------------------------------- */

/* Yields until a yield fails, then records the failure and cleans up. */
static void *yield_until_closed(corio_gen *gen, void *arg)
{
    struct seen *s = arg;
    intptr_t i = 0;

    s->ran++;
    for (;;) {
        errno = 0;
        int rc = corio_gen_yield(gen, CORIO_INT(i++), NULL);

        if (rc != 0) {
            s->yield_rc = rc;
            s->yield_errno = errno;
            break;
        }
    }
    s->cleanup++;
    return NULL;
}

Test(gen, close_of_a_suspended_generator_cancels_its_yield, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(yield_until_closed, &s);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(s.cleanup, 0);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(s.cleanup, 1, "the cleanup after the failed yield ran");
    cr_assert_eq(s.yield_rc, -1);
    cr_assert_eq(s.yield_errno, ECANCELED, "errno %d", s.yield_errno);
}

Test(gen, close_of_a_generator_not_started_runs_nothing, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(yield_until_closed, &s);

    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(s.ran, 0);
    cr_assert_eq(s.cleanup, 0);
}

Test(gen, close_of_an_exhausted_generator_is_zero, .timeout = 30)
{
    corio_gen *g = new_gen(return_at_once, NULL);

    cr_assert_eq(corio_gen_next(g, NULL), 0);
    errno = 0;
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, close_null_is_zero, .timeout = 30)
{
    cr_assert_eq(corio_gen_close(NULL), 0);
}

/* Ignores the close: yields again after its yield failed (Python's
 * "generator ignored GeneratorExit"). A coroutine-local value with a
 * counting destructor shows when the coroutine is freed. */
static int dtor_calls;

static void count_dtor(void *v)
{
    dtor_calls++;
}

struct stubborn {
    corio_key key;
    struct seen s;
};

static void *stubborn(corio_gen *gen, void *arg)
{
    struct stubborn *st = arg;

    cr_assert_eq(corio_local_set(st->key, st), 0);
    while (corio_gen_yield(gen, NULL, NULL) == 0)
        ;
    st->s.yield_errno = errno;
    st->s.cleanup++;
    /* yields again instead of returning: never resumed, close frees it */
    if (corio_gen_yield(gen, CORIO_INT(1), NULL) == 0)
        st->s.ran = 99;                       /* never reached */
    return NULL;
}

Test(gen, close_of_a_generator_that_yields_again_is_eproto, .timeout = 30)
{
    struct stubborn st = {0};
    corio_gen *g, *again;

    cr_assert_eq(corio_key_new(&st.key, count_dtor), 0);
    dtor_calls = 0;
    g = new_gen(stubborn, &st);
    cr_assert_eq(corio_gen_next(g, NULL), 1);
    cr_assert_eq(corio_gen_next(g, NULL), 1);
    expect_fail(corio_gen_close(g), EPROTO);
    cr_assert_eq(st.s.yield_errno, ECANCELED);
    cr_assert_eq(st.s.cleanup, 1);
    cr_assert_eq(st.s.ran, 0, "the generator is not resumed a second time");
    /* Freed anyway: its locals were destroyed and its stack is the next
     * one handed out. */
    cr_assert_eq(dtor_calls, 1);
    again = new_gen(return_at_once, NULL);
    cr_assert_eq(again, g, "the stack went back to the pool");
    cr_assert_eq(corio_gen_close(again), 0);
    cr_assert_eq(corio_key_free(st.key), 0);
}

/* A closed generator's stack is reused exactly once: no double free. */
Test(gen, a_closed_generator_is_freed_once, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(yield_until_closed, &s), *a, *b;

    cr_assert_eq(corio_gen_next(g, NULL), 1);
    cr_assert_eq(corio_gen_close(g), 0);
    a = new_gen(return_at_once, NULL);
    b = new_gen(return_at_once, NULL);
    cr_assert_eq(a, g);
    cr_assert_neq(a, b);
    cr_assert_eq(corio_gen_close(a), 0);
    cr_assert_eq(corio_gen_close(b), 0);
}

/* ---- Misuse from inside ------------------------------------------------ */

struct misuse {
    corio_gen *other;   /* another generator, not the running one */
    int checked;
};

/* Yields with the wrong generator, sends to and closes itself. */
static void *misuse_self(corio_gen *gen, void *arg)
{
    struct misuse *m = arg;
    void *out = UNTOUCHED;

    expect_fail(corio_gen_yield(m->other, CORIO_INT(1), NULL), EINVAL);
    expect_fail(corio_gen_yield(NULL, CORIO_INT(1), NULL), EINVAL);
    expect_fail(corio_gen_send(gen, NULL, &out), EINVAL);
    expect_fail(corio_gen_next(gen, &out), EINVAL);
    expect_fail(corio_gen_yield_from(gen, gen, &out), EINVAL);
    expect_fail(corio_gen_close(gen), EBUSY);
    cr_assert_eq(out, UNTOUCHED);
    cr_assert_not(corio_gen_is_done(gen));
    cr_assert_eq(corio_coro_status(corio_gen_coro(gen)), CORIO_CORO_RUNNING);
    m->checked++;
    /* Still a working generator after all that. */
    if (corio_gen_yield(gen, CORIO_INT(7), NULL) == -1)
        return NULL;
    return CORIO_INT(8);
}

Test(gen, misuse_inside_a_generator, .timeout = 30)
{
    struct misuse m = {0};
    struct seen s = {0};
    corio_gen *g;
    void *out = NULL;

    m.other = new_gen(yield_until_closed, &s);
    /* The other one suspended at a yield, so the wrong-gen yield is not
     * refused merely for being not started. */
    cr_assert_eq(corio_gen_next(m.other, NULL), 1);
    g = new_gen(misuse_self, &m);
    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(m.checked, 1);
    cr_assert_eq(CORIO_TO_INT(out), 7);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 8);
    cr_assert_eq(corio_gen_close(g), 0);
    /* The wrong-gen yield did not disturb the other generator. */
    cr_assert_eq(corio_gen_next(m.other, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_close(m.other), 0);
    cr_assert_eq(s.cleanup, 1);
}

Test(gen, yield_on_the_thread_stack_is_einval, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *g = new_gen(yield_until_closed, &s);

    /* Not started, then suspended: never the running generator. */
    expect_fail(corio_gen_yield(g, NULL, NULL), EINVAL);
    cr_assert_eq(corio_gen_next(g, NULL), 1);
    expect_fail(corio_gen_yield(g, NULL, NULL), EINVAL);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(s.cleanup, 1);
}

/* The inner generator of a delegation reaches up to the outer one, which is
 * active (NORMAL) while it waits in yield_from. */
static void *misuse_outer(corio_gen *gen, void *arg)
{
    corio_gen **outer = arg;
    void *out = UNTOUCHED;

    cr_assert_eq(corio_coro_status(corio_gen_coro(*outer)), CORIO_CORO_NORMAL);
    expect_fail(corio_gen_send(*outer, NULL, &out), EINVAL);
    expect_fail(corio_gen_close(*outer), EBUSY);
    expect_fail(corio_gen_yield(*outer, NULL, NULL), EINVAL);
    /* yield_from an active generator: the error of the send to it. */
    expect_fail(corio_gen_yield_from(gen, *outer, &out), EINVAL);
    cr_assert_eq(out, UNTOUCHED);
    return CORIO_INT(5);
}

static void *delegate_to_arg(corio_gen *gen, void *arg)
{
    corio_gen *inner = arg;
    void *r = NULL;

    if (corio_gen_yield_from(gen, inner, &r) == -1)
        return NULL;
    return r;
}

Test(gen, the_inner_generator_cannot_send_to_or_close_the_outer,
     .timeout = 30)
{
    corio_gen *outer, *inner;
    void *out = NULL;

    inner = new_gen(misuse_outer, &outer);
    outer = new_gen(delegate_to_arg, inner);
    cr_assert_eq(corio_gen_next(outer, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 5);
    cr_assert_eq(corio_gen_close(outer), 0);
    cr_assert(corio_gen_is_done(inner));
    cr_assert_eq(corio_gen_close(inner), 0);
}

/* ---- yield_from -------------------------------------------------------- */

/* Yields arg's first value, then echoes what it is sent until it receives
 * 0, and returns the sum of what it received. */
static void *summing_echo(corio_gen *gen, void *arg)
{
    intptr_t sum = 0;
    void *v = arg;

    for (;;) {
        if (corio_gen_yield(gen, v, &v) == -1)
            return NULL;
        if (CORIO_TO_INT(v) == 0)
            return CORIO_INT(sum);
        sum += CORIO_TO_INT(v);
    }
}

/* Yields 'a', delegates to the summing echo, yields the result + 1000,
 * returns 'z'. */
static void *wraps_summing_echo(corio_gen *gen, void *arg)
{
    corio_gen *inner = new_gen(summing_echo, CORIO_INT(1));
    void *r = NULL, *in = NULL;
    int rc;

    if (corio_gen_yield(gen, CORIO_INT('a'), &in) == -1)
        goto out;
    cr_assert_eq(CORIO_TO_INT(in), 'b');
    rc = corio_gen_yield_from(gen, inner, &r);
    if (rc == -1)
        goto out;
    cr_assert_eq(rc, 0);
    cr_assert(corio_gen_is_done(inner));
    if (corio_gen_yield(gen, CORIO_INT(CORIO_TO_INT(r) + 1000), NULL) == -1)
        goto out;
    r = CORIO_INT('z');
out:
    cr_assert_eq(corio_gen_close(inner), 0);
    return r;
}

Test(gen, yield_from_passes_values_both_ways, .timeout = 30)
{
    corio_gen *g = new_gen(wraps_summing_echo, NULL);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 'a');
    /* 'b' goes to the outer generator; the inner one starts with NULL and
     * yields its first value 1 straight to us. */
    cr_assert_eq(corio_gen_send(g, CORIO_INT('b'), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    /* What we send now reaches the inner generator and comes back. */
    cr_assert_eq(corio_gen_send(g, CORIO_INT(20), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 20);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(300), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 300);
    /* 0 ends the inner one: its return value 320 arrives in the outer. */
    cr_assert_eq(corio_gen_send(g, CORIO_INT(0), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1320);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 'z');
    cr_assert_eq(corio_gen_close(g), 0);
}

/* Level 3 yields 31, 32 (recording what it is sent) and returns 300 plus the
 * last value sent; level 2 yields 21, delegates to level 3, yields level 3's
 * result, returns 200; level 1 delegates to level 2 and returns its result
 * plus 100. */
struct levels {
    void *l3_in[2];
    int cleanups;
};

static void *level3(corio_gen *gen, void *arg)
{
    struct levels *lv = arg;
    void *in = NULL;

    for (int i = 0; i < 2; i++) {
        if (corio_gen_yield(gen, CORIO_INT(31 + i), &in) == -1) {
            lv->cleanups++;
            return NULL;
        }
        lv->l3_in[i] = in;
    }
    return CORIO_INT(300 + CORIO_TO_INT(in));
}

static void *level2(corio_gen *gen, void *arg)
{
    struct levels *lv = arg;
    corio_gen *inner = new_gen(level3, lv);
    void *r = NULL;

    if (corio_gen_yield(gen, CORIO_INT(21), NULL) == -1 ||
        corio_gen_yield_from(gen, inner, &r) == -1 ||
        corio_gen_yield(gen, r, NULL) == -1) {
        lv->cleanups++;
        cr_assert_eq(corio_gen_close(inner), 0);
        return NULL;
    }
    cr_assert_eq(corio_gen_close(inner), 0);
    return CORIO_INT(200);
}

static void *level1(corio_gen *gen, void *arg)
{
    struct levels *lv = arg;
    corio_gen *inner = new_gen(level2, lv);
    void *r = NULL;

    if (corio_gen_yield_from(gen, inner, &r) == -1) {
        lv->cleanups++;
        cr_assert_eq(corio_gen_close(inner), 0);
        return NULL;
    }
    cr_assert_eq(corio_gen_close(inner), 0);
    return CORIO_INT(100 + CORIO_TO_INT(r));
}

Test(gen, yield_from_nested_three_levels, .timeout = 30)
{
    struct levels lv = {0};
    corio_gen *g = new_gen(level1, &lv);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 21);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(-1), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 31);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(5), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 32);
    cr_assert_eq(corio_gen_send(g, CORIO_INT(6), &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 306, "level 3's result through level 2");
    cr_assert_eq(CORIO_TO_INT(lv.l3_in[0]), 5);
    cr_assert_eq(CORIO_TO_INT(lv.l3_in[1]), 6);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 300, "level 2's 200 plus level 1's 100");
    cr_assert_eq(lv.cleanups, 0);
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, closing_the_top_of_three_levels_closes_all, .timeout = 30)
{
    struct levels lv = {0};
    corio_gen *g = new_gen(level1, &lv);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(corio_gen_next(g, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 31);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(lv.cleanups, 3, "each level cleaned up once");
}

/* The outer generator of the close tests: delegates to the inner one it is
 * given (which its owner, the test, frees) and records how yield_from
 * ended. */
struct delegation {
    corio_gen *inner;
    struct seen outer;
    struct seen inner_seen;
};

static void *delegate_and_record(corio_gen *gen, void *arg)
{
    struct delegation *d = arg;

    d->outer.ran++;
    errno = 0;
    d->outer.yield_rc = corio_gen_yield_from(gen, d->inner, NULL);
    d->outer.yield_errno = errno;
    d->outer.cleanup++;
    return NULL;
}

Test(gen, closing_the_outer_while_it_delegates_closes_the_inner,
     .timeout = 30)
{
    struct seen inner_seen = {0};
    struct delegation d = {0};
    corio_gen *outer, *a, *b;
    void *out = NULL;

    d.inner = new_gen(yield_until_closed, &inner_seen);
    outer = new_gen(delegate_and_record, &d);
    cr_assert_eq(corio_gen_next(outer, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 0);
    cr_assert_eq(corio_gen_next(outer, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 1);

    cr_assert_eq(corio_gen_close(outer), 0);
    /* The inner generator's pending yield failed and its cleanup ran... */
    cr_assert_eq(inner_seen.cleanup, 1);
    cr_assert_eq(inner_seen.yield_rc, -1);
    cr_assert_eq(inner_seen.yield_errno, ECANCELED);
    /* ...then the outer one's yield_from failed with ECANCELED. */
    cr_assert_eq(d.outer.cleanup, 1);
    cr_assert_eq(d.outer.yield_rc, -1);
    cr_assert_eq(d.outer.yield_errno, ECANCELED, "errno %d",
                 d.outer.yield_errno);

    /* The inner one is closed, not freed: its owner frees it, once. */
    cr_assert(corio_gen_is_done(d.inner));
    expect_fail(corio_gen_next(d.inner, NULL), CORIO_EDONE);
    cr_assert_eq(corio_gen_close(d.inner), 0);
    cr_assert_eq(inner_seen.cleanup, 1, "not run a second time");
    a = new_gen(return_at_once, NULL);
    b = new_gen(return_at_once, NULL);
    cr_assert_neq(a, b, "a stack given back twice would be handed out twice");
    cr_assert_eq(corio_gen_close(a), 0);
    cr_assert_eq(corio_gen_close(b), 0);
}

/* The outer generator owns the inner one and frees it in its cleanup. */
static void *own_and_delegate(corio_gen *gen, void *arg)
{
    struct delegation *d = arg;
    int rc;

    d->inner = new_gen(yield_until_closed, &d->inner_seen);
    rc = corio_gen_yield_from(gen, d->inner, NULL);
    d->outer.yield_errno = errno;
    cr_assert_eq(rc, -1);
    cr_assert(corio_gen_is_done(d->inner));
    cr_assert_eq(corio_gen_close(d->inner), 0);
    d->outer.ran++;
    return NULL;
}

Test(gen, an_outer_generator_frees_its_inner_one_when_closed, .timeout = 30)
{
    struct delegation d = {0};
    corio_gen *outer = new_gen(own_and_delegate, &d);

    cr_assert_eq(corio_gen_next(outer, NULL), 1);
    cr_assert_eq(corio_gen_close(outer), 0);
    cr_assert_eq(d.inner_seen.cleanup, 1, "the inner one's cleanup ran");
    cr_assert_eq(d.outer.yield_errno, ECANCELED);
    cr_assert_eq(d.outer.ran, 1, "the outer one's cleanup ran");
}

/* yield_from an inner generator already exhausted: the CORIO_EDONE of its send;
 * of NULL or of itself: EINVAL. */
static void *delegate_badly(corio_gen *gen, void *arg)
{
    corio_gen *done = arg;
    void *r = UNTOUCHED;

    expect_fail(corio_gen_yield_from(gen, done, &r), CORIO_EDONE);
    expect_fail(corio_gen_yield_from(gen, NULL, &r), EINVAL);
    expect_fail(corio_gen_yield_from(gen, gen, &r), EINVAL);
    cr_assert_eq(r, UNTOUCHED);
    return CORIO_INT(1);
}

Test(gen, yield_from_errors, .timeout = 30)
{
    corio_gen *done = new_gen(return_at_once, NULL);
    corio_gen *g = new_gen(delegate_badly, done);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(done, NULL), 0);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 1);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(corio_gen_close(done), 0);
}

/* yield_from for a generator that is not the running one is refused up
 * front, like corio_gen_yield: the inner generator is neither advanced nor
 * closed. */
Test(gen, yield_from_with_a_generator_not_running_is_einval, .timeout = 30)
{
    struct seen s = {0};
    corio_gen *inner = new_gen(yield_until_closed, &s);
    corio_gen *outer = new_gen(return_at_once, NULL);
    void *out = NULL;

    expect_fail(corio_gen_yield_from(outer, inner, NULL), EINVAL);
    cr_assert_eq(s.ran, 0, "the inner generator was not run");
    cr_assert_not(corio_gen_is_done(inner));
    cr_assert_eq(corio_gen_next(inner, &out), 1);
    cr_assert_eq(CORIO_TO_INT(out), 0, "its first value is still there");
    cr_assert_eq(corio_gen_close(outer), 0);
    cr_assert_eq(corio_gen_close(inner), 0);
    cr_assert_eq(s.cleanup, 1);
}

/* An inner generator that returns at once: yield_from yields nothing. */
static void *delegate_to_empty(corio_gen *gen, void *arg)
{
    corio_gen *inner = new_gen(return_at_once, CORIO_INT(77));
    void *r = NULL;

    cr_assert_eq(corio_gen_yield_from(gen, inner, &r), 0);
    cr_assert_eq(corio_gen_close(inner), 0);
    return r;
}

Test(gen, yield_from_an_empty_generator_returns_at_once, .timeout = 30)
{
    corio_gen *g = new_gen(delegate_to_empty, NULL);
    void *out = NULL;

    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(CORIO_TO_INT(out), 77);
    cr_assert_eq(corio_gen_close(g), 0);
}

/* ---- is_done and the underlying coroutine ------------------------------ */

struct inside {
    corio_gen *gen;
    corio_coro *self;
    int status;
    bool done;
};

static void *look_inside(corio_gen *gen, void *arg)
{
    struct inside *in = arg;

    in->self = corio_coro_self();
    in->status = corio_coro_status(corio_gen_coro(gen));
    in->done = corio_gen_is_done(gen);
    if (corio_gen_yield(gen, NULL, NULL) == -1)
        return NULL;
    return CORIO_INT(11);
}

Test(gen, is_done_through_a_life, .timeout = 30)
{
    struct inside in = {0};
    corio_gen *g = new_gen(look_inside, &in);

    cr_assert_not(corio_gen_is_done(g), "not started");
    cr_assert_eq(corio_gen_next(g, NULL), 1);
    cr_assert_not(in.done, "running");
    cr_assert_not(corio_gen_is_done(g), "suspended");
    cr_assert_eq(corio_gen_next(g, NULL), 0);
    cr_assert(corio_gen_is_done(g), "exhausted");
    cr_assert_eq(corio_gen_close(g), 0);
}

Test(gen, gen_coro_is_a_coroutine_with_an_id, .timeout = 30)
{
    corio_coro_attr attr = {.name = "producer"};
    struct inside in = {0};
    corio_gen *g = corio_gen_new(look_inside, &in, &attr);
    corio_gen *h = new_gen(look_inside, &in);
    corio_coro *co, *hco;
    void *out = NULL;

    cr_assert_not_null(g);
    co = corio_gen_coro(g);
    hco = corio_gen_coro(h);
    cr_assert_not_null(co);
    cr_assert_gt(corio_coro_id(co), 0);
    cr_assert_neq(corio_coro_id(co), corio_coro_id(hco));
    cr_assert_str_eq(corio_coro_name(co), "producer");
    cr_assert_str_eq(corio_coro_name(hco), "");
    cr_assert_geq(corio_coro_stack_size(co), CORIO_STACK_DEFAULT);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);

    cr_assert_eq(corio_gen_next(g, NULL), 1);
    cr_assert_eq(in.self, co, "the generator runs as its coroutine");
    cr_assert_eq(in.status, CORIO_CORO_RUNNING);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
    cr_assert_eq(corio_gen_next(g, &out), 0);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_result(co), out);
    cr_assert_eq(CORIO_TO_INT(out), 11);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(corio_gen_close(h), 0);
}

/* ---- Stacks ------------------------------------------------------------ */

Test(gen, generators_on_compact_stacks, .timeout = 30)
{
    corio_coro_attr attr = {.stack_mode = CORIO_STACK_COMPACT,
                            .stack_size = 16 * 1024};
    int n = SCALE(1000);
    corio_gen **g = calloc((size_t)n, sizeof(*g));
    struct seen *s = calloc((size_t)n, sizeof(*s));
    void *out = NULL;

    cr_assert_not_null(g);
    cr_assert_not_null(s);
    /* All alive at once, each suspended at its second yield. */
    for (int i = 0; i < n; i++) {
        g[i] = corio_gen_new(echo, &s[i], &attr);
        cr_assert_not_null(g[i], "%d: %s", i, corio_strerror(errno));
        cr_assert_geq(corio_coro_stack_size(corio_gen_coro(g[i])), 16 * 1024);
        cr_assert_eq(corio_gen_next(g[i], &out), 1);
        cr_assert_eq(corio_gen_send(g[i], CORIO_INT(i), &out), 1);
        cr_assert_eq(CORIO_TO_INT(out), i);
    }
    for (int i = 0; i < n; i++) {
        cr_assert_eq(corio_gen_send(g[i], CORIO_INT(i + 1), &out), 1);
        cr_assert_eq(CORIO_TO_INT(out), i + 1);
        cr_assert_eq(corio_gen_close(g[i]), 0);
        cr_assert_eq(s[i].nin, 2);
    }
    free(g);
    free(s);
}

Test(gen, yield_from_across_stack_modes, .timeout = 30)
{
    for (int outer_mode = 0; outer_mode < 2; outer_mode++) {
        for (int inner_mode = 0; inner_mode < 2; inner_mode++) {
            struct seen s = {0};
            corio_gen *inner = new_gen_mode(echo, &s, inner_mode);
            corio_gen *outer = new_gen_mode(delegate_to_arg, inner, outer_mode);
            void *out = NULL;

            cr_assert_eq(corio_gen_next(outer, &out), 1);
            cr_assert_eq(CORIO_TO_INT(out), 1);
            cr_assert_eq(corio_gen_send(outer, CORIO_INT(9), &out), 1);
            cr_assert_eq(CORIO_TO_INT(out), 9);
            cr_assert_eq(corio_gen_close(outer), 0);
            cr_assert(corio_gen_is_done(inner));
            cr_assert_eq(corio_gen_close(inner), 0);
            cr_assert_eq(s.nin, 1);
        }
    }
}

static int compare_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;

    return x < y ? -1 : x > y;
}

/* 100,000 generators, 100 alive at a time, left in every state (not
 * started, suspended, exhausted) and closed. The stack pool hands the same
 * 100 stacks out again and again. */
#define BATCH 100

static void many_generators(int mode, int total)
{
    struct seen s = {0};
    void *first[BATCH];
    corio_gen *g[BATCH];
    int started = 0;

    for (int round = 0; round < total / BATCH; round++) {
        for (int i = 0; i < BATCH; i++) {
            g[i] = new_gen_mode(yield_until_closed, &s, mode);
            if (round == 0) {
                first[i] = g[i];
            } else {
                cr_assert_not_null(bsearch(&g[i], first, BATCH, sizeof(void *),
                                           compare_ptr),
                                   "round %d: a stack not from the pool", round);
            }
            /* Two in three are started, and suspended at a yield. */
            if (i % 3 != 0) {
                cr_assert_eq(corio_gen_next(g[i], NULL), 1);
                started++;
            }
        }
        if (round == 0)
            qsort(first, BATCH, sizeof(void *), compare_ptr);
        for (int i = BATCH - 1; i >= 0; i--)
            cr_assert_eq(corio_gen_close(g[i]), 0);
    }
    cr_assert_eq(s.ran, started);
    cr_assert_eq(s.cleanup, started, "every started one was cleaned up");
}

Test(gen, hundred_thousand_compact_generators, .timeout = 30)
{
    many_generators(CORIO_STACK_COMPACT, SCALE(100000));
}

Test(gen, hundred_thousand_guarded_generators, .timeout = 30)
{
    many_generators(CORIO_STACK_GUARDED, SCALE(100000));
}

/* ---- The seed's producer and consumer (G1) ----------------------------- */

static void *consumer(corio_gen *gen, void *arg)
{
    int *consumed = arg;
    void *n;
    const char *r = "";

    while (corio_gen_yield(gen, (void *)r, &n) == 0) {
        if (n == NULL)
            return NULL;
        *consumed += (int)CORIO_TO_INT(n);
        r = "200 OK";
    }
    return NULL;
}

Test(gen, producer_and_consumer, .timeout = 30)
{
    int consumed = 0;
    corio_gen *c = new_gen(consumer, &consumed);
    void *r = NULL;

    cr_assert_eq(corio_gen_send(c, NULL, &r), 1);
    cr_assert_str_eq(r, "");
    for (int n = 1; n <= 5; n++) {
        cr_assert_eq(corio_gen_send(c, CORIO_INT(n), &r), 1);
        cr_assert_str_eq(r, "200 OK");
    }
    cr_assert_eq(consumed, 15);
    cr_assert_eq(corio_gen_close(c), 0);
}
