/* tests/test_coro_local.c -- coroutine-local storage: key creation and its
 * limits, values kept apart per coroutine, per thread stack and per thread,
 * and destructors (once, with the right value, at return and at free,
 * never for NULL, more rounds when a destructor sets a value again).
 *
 * Keys are process-wide; Criterion runs each test in a fresh process, so
 * every test starts with no key in use. */
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One timeout for every test (Criterion 2.4.1 leaks in its runner when they
 * differ, which fails the ASan and valgrind stages). */
#define TIMEOUT 60

static corio_key new_key(void (*dtor)(void *))
{
    corio_key k;

    cr_assert_eq(corio_key_new(&k, dtor), 0, "corio_key_new: %s",
                 corio_strerror(errno));
    return k;
}

static corio_coro *new_coro(corio_fn fn, void *arg, int mode)
{
    corio_coro_attr attr = {.stack_mode = mode};
    corio_coro *co = corio_coro_new(fn, arg, &attr);

    cr_assert_not_null(co);
    return co;
}

static void *return_arg(void *arg)
{
    return arg;
}

/* ---- keys -------------------------------------------------------------- */

Test(local, key_new_null_is_einval, .timeout = TIMEOUT)
{
    errno = 0;
    cr_assert_eq(corio_key_new(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(corio_key_new(NULL, free), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(local, keys_max_then_eagain, .timeout = TIMEOUT)
{
    corio_key keys[CORIO_KEYS_MAX], extra;

    for (int i = 0; i < CORIO_KEYS_MAX; i++) {
        keys[i] = new_key(NULL);
        for (int j = 0; j < i; j++)
            cr_assert_neq(keys[i], keys[j], "keys are distinct");
    }
    for (int round = 0; round < 2; round++) {
        errno = 0;
        cr_assert_eq(corio_key_new(&extra, NULL), -1);
        cr_assert_eq(errno, EAGAIN);
    }

    /* Freeing one makes room for exactly one more. */
    cr_assert_eq(corio_key_free(keys[5]), 0);
    keys[5] = new_key(free);
    errno = 0;
    cr_assert_eq(corio_key_new(&extra, NULL), -1);
    cr_assert_eq(errno, EAGAIN);

    for (int i = 0; i < CORIO_KEYS_MAX; i++)
        cr_assert_eq(corio_key_free(keys[i]), 0);
    extra = new_key(NULL);
    cr_assert_eq(corio_key_free(extra), 0);
}

Test(local, key_free_of_an_unknown_key_is_einval, .timeout = TIMEOUT)
{
    static const corio_key bad[] = {0, 1, CORIO_KEYS_MAX - 1, CORIO_KEYS_MAX,
                                    CORIO_KEYS_MAX + 1, (corio_key)-1};
    corio_key k;

    /* No key exists yet: none of these can be freed. */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        cr_assert_eq(corio_key_free(bad[i]), -1, "key %u", bad[i]);
        cr_assert_eq(errno, EINVAL);
    }
    k = new_key(NULL);
    cr_assert_eq(corio_key_free(k), 0);
    errno = 0;
    cr_assert_eq(corio_key_free(k), -1, "double free of a key");
    cr_assert_eq(errno, EINVAL);
}

Test(local, set_and_get_on_missing_keys, .timeout = TIMEOUT)
{
    corio_key k;
    int v;

    /* Never created, and out of range. */
    errno = 0;
    cr_assert_eq(corio_local_set(3, &v), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(corio_local_set(CORIO_KEYS_MAX, &v), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(corio_local_set((corio_key)-1, &v), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_local_get(3));
    cr_assert_null(corio_local_get(CORIO_KEYS_MAX));
    cr_assert_null(corio_local_get((corio_key)-1));

    /* Freed. */
    k = new_key(NULL);
    cr_assert_eq(corio_key_free(k), 0);
    errno = 0;
    cr_assert_eq(corio_local_set(k, &v), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(corio_local_get(k));
}

/* "NULL if unset or the key does not exist": a value bound before the key
 * was freed is not returned afterwards. */
Test(local, get_after_key_free_is_null, .timeout = TIMEOUT)
{
    corio_key k = new_key(NULL);
    int v;

    cr_assert_eq(corio_local_set(k, &v), 0);
    cr_assert_eq(corio_local_get(k), &v);
    cr_assert_eq(corio_key_free(k), 0);
    cr_assert_null(corio_local_get(k), "the key does not exist any more");
}

/* A new key starts NULL everywhere, even when it takes the slot of a key
 * that had values. */
static void *set_then_yield(void *arg)
{
    corio_key k = *(corio_key *)arg;

    cr_assert_eq(corio_local_set(k, arg), 0);
    corio_coro_yield();
    return corio_local_get(k);
}

Test(local, a_reused_key_starts_null, .timeout = TIMEOUT)
{
    corio_key k = new_key(NULL), k2;
    int v;
    corio_coro *co = new_coro(set_then_yield, &k, CORIO_STACK_COMPACT);

    cr_assert_eq(corio_local_set(k, &v), 0);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_key_free(k), 0);
    k2 = new_key(NULL);
    cr_assert_null(corio_local_get(k2), "thread stack: new key is unset");
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_null(corio_coro_result(co), "coroutine: new key is unset");
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert_eq(corio_key_free(k2), 0);
}

/* ---- values ------------------------------------------------------------ */

Test(local, unset_is_null_and_set_replaces, .timeout = TIMEOUT)
{
    corio_key k = new_key(NULL);
    int a, b;

    cr_assert_null(corio_local_get(k));
    cr_assert_eq(corio_local_set(k, &a), 0);
    cr_assert_eq(corio_local_get(k), &a);
    cr_assert_eq(corio_local_set(k, &b), 0);
    cr_assert_eq(corio_local_get(k), &b);
    cr_assert_eq(corio_local_set(k, NULL), 0);
    cr_assert_null(corio_local_get(k));
    cr_assert_eq(corio_key_free(k), 0);
}

/* Every coroutine sees only its own values, across switches. */
struct iso {
    corio_key k[3];
    int tag;
    int failures;
};

static void *isolated(void *arg)
{
    struct iso *c = arg;
    int mine[3];

    for (int i = 0; i < 3; i++)
        cr_assert_null(corio_local_get(c->k[i]), "a new coroutine starts NULL");
    for (int i = 0; i < 3; i++) {
        mine[i] = c->tag * 10 + i;
        cr_assert_eq(corio_local_set(c->k[i], &mine[i]), 0);
    }
    for (int round = 0; round < 5; round++) {
        cr_assert_eq(corio_coro_yield(), 0);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(corio_local_get(c->k[i]), &mine[i]);
    }
    return NULL;
}

Test(local, values_are_per_coroutine_and_thread_stack, .timeout = TIMEOUT)
{
    corio_key keys[3];
    struct iso c[4];
    corio_coro *co[4];
    int base[3];

    /* Keys of both sizes of the value array (below 8, and above). */
    for (int i = 0; i < 3; i++)
        keys[i] = new_key(NULL);
    for (int i = 0; i < 20; i++)
        (void)new_key(NULL);
    keys[2] = new_key(NULL);
    cr_assert_geq(keys[2], 8);

    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_local_set(keys[i], &base[i]), 0);
    for (int j = 0; j < 4; j++) {
        c[j] = (struct iso){.tag = j + 1};
        memcpy(c[j].k, keys, sizeof(keys));
        co[j] = new_coro(isolated, &c[j], j % 2);
    }
    for (int round = 0; round < 6; round++) {
        for (int j = 0; j < 4; j++) {
            cr_assert_eq(corio_coro_resume(co[j]), 0);
            for (int i = 0; i < 3; i++)
                cr_assert_eq(corio_local_get(keys[i]), &base[i],
                             "the thread stack keeps its own value");
        }
    }
    for (int j = 0; j < 4; j++) {
        cr_assert_eq(corio_coro_status(co[j]), CORIO_CORO_DEAD);
        cr_assert_eq(corio_coro_free(co[j]), 0);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_local_set(keys[i], NULL), 0);
}

/* A nested coroutine does not see its resumer's values, and the resumer's
 * survive it. */
static void *nested_inner(void *arg)
{
    corio_key k = *(corio_key *)arg;

    cr_assert_null(corio_local_get(k));
    cr_assert_eq(corio_local_set(k, (void *)2), 0);
    return NULL;
}

static void *nested_outer(void *arg)
{
    corio_key k = *(corio_key *)arg;
    corio_coro *inner = new_coro(nested_inner, arg, CORIO_STACK_COMPACT);

    cr_assert_eq(corio_local_set(k, (void *)1), 0);
    cr_assert_eq(corio_coro_resume(inner), 0);
    cr_assert_eq(corio_local_get(k), (void *)1);
    cr_assert_eq(corio_coro_free(inner), 0);
    return corio_local_get(k);
}

Test(local, nested_coroutines_are_isolated, .timeout = TIMEOUT)
{
    corio_key k = new_key(NULL);
    corio_coro *co = new_coro(nested_outer, &k, CORIO_STACK_GUARDED);

    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_result(co), (void *)1);
    cr_assert_null(corio_local_get(k));
    cr_assert_eq(corio_coro_free(co), 0);
}

/* Each thread's own stack has its own values. */
struct thread_case {
    corio_key k;
    int failures;
};

static void *thread_body(void *arg)
{
    struct thread_case *tc = arg;
    int mine;

    tc->failures += corio_local_get(tc->k) != NULL;
    tc->failures += corio_local_set(tc->k, &mine) != 0;
    tc->failures += corio_local_get(tc->k) != &mine;
    tc->failures += corio_local_set(tc->k, NULL) != 0;
    return NULL;
}

Test(local, values_are_per_thread, .timeout = TIMEOUT)
{
    struct thread_case tc = {.k = new_key(NULL)};
    int v;
    pthread_t t;

    cr_assert_eq(corio_local_set(tc.k, &v), 0);
    cr_assert_eq(pthread_create(&t, NULL, thread_body, &tc), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(tc.failures, 0);
    cr_assert_eq(corio_local_get(tc.k), &v);
    cr_assert_eq(corio_local_set(tc.k, NULL), 0);
}

/* ---- destructors ------------------------------------------------------- */

/* Records every destructor call: which value, in which order. */
#define MAX_CALLS 64

static struct {
    void *value[MAX_CALLS];
    char tag[MAX_CALLS];
    int n;
} calls;

static void record(char tag, void *v)
{
    cr_assert_lt(calls.n, MAX_CALLS);
    calls.tag[calls.n] = tag;
    calls.value[calls.n++] = v;
}

static void dtor_a(void *v)
{
    record('a', v);
}

static void dtor_b(void *v)
{
    record('b', v);
}

/* How many times the destructor with tag was called with v. */
static int called(char tag, void *v)
{
    int n = 0;

    for (int i = 0; i < calls.n; i++)
        n += calls.tag[i] == tag && calls.value[i] == v;
    return n;
}

struct dtor_case {
    corio_key a, b, none;  /* none has no destructor */
    int va, vb, vnone;
    bool yield;            /* yield once after setting */
};

static void *set_values(void *arg)
{
    struct dtor_case *c = arg;

    cr_assert_eq(corio_local_set(c->a, &c->va), 0);
    cr_assert_eq(corio_local_set(c->b, &c->vb), 0);
    cr_assert_eq(corio_local_set(c->none, &c->vnone), 0);
    if (c->yield)
        corio_coro_yield();
    cr_assert_eq(calls.n, 0, "no destructor before the end");
    return NULL;
}

static void dtor_case_init(struct dtor_case *c, bool yield)
{
    memset(c, 0, sizeof(*c));
    c->a = new_key(dtor_a);
    c->b = new_key(dtor_b);
    c->none = new_key(NULL);
    c->yield = yield;
}

Test(local, destructors_run_once_at_return, .timeout = TIMEOUT)
{
    struct dtor_case c;

    for (int mode = 0; mode < 2; mode++) {
        corio_coro *co;

        calls.n = 0;
        dtor_case_init(&c, true);
        co = new_coro(set_values, &c, mode);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(calls.n, 0, "not while suspended");
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
        cr_assert_eq(calls.n, 2, "one call per key with a destructor");
        cr_assert_eq(called('a', &c.va), 1);
        cr_assert_eq(called('b', &c.vb), 1);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(calls.n, 2, "not again at free");
        cr_assert_eq(corio_key_free(c.a), 0);
        cr_assert_eq(corio_key_free(c.b), 0);
        cr_assert_eq(corio_key_free(c.none), 0);
    }
}

Test(local, destructors_run_once_when_a_suspended_coroutine_is_freed,
     .timeout = TIMEOUT)
{
    struct dtor_case c;

    for (int mode = 0; mode < 2; mode++) {
        corio_coro *co;

        calls.n = 0;
        dtor_case_init(&c, true);
        co = new_coro(set_values, &c, mode);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(calls.n, 2);
        cr_assert_eq(called('a', &c.va), 1);
        cr_assert_eq(called('b', &c.vb), 1);
        cr_assert_eq(corio_key_free(c.a), 0);
        cr_assert_eq(corio_key_free(c.b), 0);
        cr_assert_eq(corio_key_free(c.none), 0);
    }
}

/* Set, then cleared: nothing to destroy. A key's value at the end is what
 * counts, not the values it had before. */
static void *set_and_clear(void *arg)
{
    struct dtor_case *c = arg;

    cr_assert_eq(corio_local_set(c->a, &c->vnone), 0);
    cr_assert_eq(corio_local_set(c->a, NULL), 0);
    cr_assert_eq(corio_local_set(c->b, &c->vnone), 0);
    cr_assert_eq(corio_local_set(c->b, &c->vb), 0);
    corio_coro_yield();
    return NULL;
}

Test(local, no_destructor_for_null_values, .timeout = TIMEOUT)
{
    struct dtor_case c;
    corio_coro *co;

    calls.n = 0;
    dtor_case_init(&c, false);

    /* Never set at all. */
    co = new_coro(return_arg, NULL, CORIO_STACK_COMPACT);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert_eq(calls.n, 0);

    /* Set to NULL at the end: only b's last value is destroyed. */
    for (int freed = 0; freed < 2; freed++) {
        calls.n = 0;
        co = new_coro(set_and_clear, &c, CORIO_STACK_GUARDED);
        cr_assert_eq(corio_coro_resume(co), 0);
        if (!freed)
            cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(calls.n, 1);
        cr_assert_eq(called('b', &c.vb), 1);
    }
}

/* A destructor that sets a value again (its own key, or another) gets
 * another round, like pthread keys. */
struct again {
    corio_key a, b;
    int v1, v2, v3;
};

static struct again *again_case;

static void dtor_again_a(void *v)
{
    record('a', v);
    if (v == &again_case->v1) {
        cr_assert_eq(corio_local_set(again_case->a, &again_case->v2), 0);
        cr_assert_eq(corio_local_set(again_case->b, &again_case->v3), 0);
    }
}

static void *set_a_v1(void *arg)
{
    struct again *c = arg;

    cr_assert_eq(corio_local_set(c->a, &c->v1), 0);
    corio_coro_yield();
    return NULL;
}

static void check_again_rounds(bool freed)
{
    struct again c;
    corio_coro *co;

    memset(&c, 0, sizeof(c));
    again_case = &c;
    calls.n = 0;
    c.a = new_key(dtor_again_a);
    c.b = new_key(dtor_b);
    co = new_coro(set_a_v1, &c, CORIO_STACK_COMPACT);
    cr_assert_eq(corio_coro_resume(co), 0);
    if (!freed) {
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    }
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert_eq(calls.n, 3, "v1, then v2 and v3 in the second round");
    cr_assert_eq(calls.value[0], &c.v1);
    cr_assert_eq(called('a', &c.v2), 1);
    cr_assert_eq(called('b', &c.v3), 1);

    /* The values went to the coroutine being destroyed, not to whoever
     * freed it. */
    cr_assert_null(corio_local_get(c.a));
    cr_assert_null(corio_local_get(c.b));
    cr_assert_eq(corio_key_free(c.a), 0);
    cr_assert_eq(corio_key_free(c.b), 0);
}

Test(local, destructor_setting_a_value_gets_another_round_at_return,
     .timeout = TIMEOUT)
{
    check_again_rounds(false);
}

Test(local, destructor_setting_a_value_gets_another_round_at_free,
     .timeout = TIMEOUT)
{
    check_again_rounds(true);
}

/* A destructor that always sets a value again does not loop forever. */
static corio_key stubborn_key;

static void dtor_stubborn(void *v)
{
    record('s', v);
    cr_assert_eq(corio_local_set(stubborn_key, v), 0);
}

static void *set_stubborn(void *arg)
{
    cr_assert_eq(corio_local_set(stubborn_key, arg), 0);
    return NULL;
}

Test(local, destructor_rounds_are_bounded, .timeout = TIMEOUT)
{
    int v;
    corio_coro *co;

    calls.n = 0;
    stubborn_key = new_key(dtor_stubborn);
    co = new_coro(set_stubborn, &v, CORIO_STACK_GUARDED);
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_geq(calls.n, 2);
    cr_assert_leq(calls.n, 4, "at most 4 rounds: %d", calls.n);
    cr_assert_eq(called('s', &v), calls.n);
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert_eq(corio_key_free(stubborn_key), 0);
}

/* At return the destructors run on the coroutine itself. */
static corio_coro *dtor_self;

static void dtor_note_self(void *v)
{
    record('n', v);
    dtor_self = corio_coro_self();
}

static void *set_note(void *arg)
{
    cr_assert_eq(corio_local_set(*(corio_key *)arg, arg), 0);
    return NULL;
}

Test(local, destructors_at_return_run_in_the_coroutine, .timeout = TIMEOUT)
{
    corio_key k = new_key(dtor_note_self);
    corio_coro *co = new_coro(set_note, &k, CORIO_STACK_COMPACT);

    calls.n = 0;
    dtor_self = NULL;
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(called('n', &k), 1);
    cr_assert_eq(dtor_self, co);
    cr_assert_eq(corio_coro_free(co), 0);
    cr_assert_eq(corio_key_free(k), 0);
}

/* corio_key_free does not run destructors, and a value bound to a freed
 * key is not destroyed when its coroutine ends. */
Test(local, freed_key_values_are_not_destroyed, .timeout = TIMEOUT)
{
    struct dtor_case c;

    for (int freed = 0; freed < 2; freed++) {
        corio_coro *co;

        calls.n = 0;
        dtor_case_init(&c, true);
        co = new_coro(set_values, &c, CORIO_STACK_GUARDED);
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_key_free(c.a), 0);
        cr_assert_eq(calls.n, 0, "corio_key_free runs no destructor");
        if (!freed)
            cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(corio_coro_free(co), 0);
        cr_assert_eq(calls.n, 1);
        cr_assert_eq(called('b', &c.vb), 1);
        cr_assert_eq(corio_key_free(c.b), 0);
        cr_assert_eq(corio_key_free(c.none), 0);
    }
}

/* Heap values with free() as the destructor: nothing leaks (the valgrind
 * stage checks), for many coroutines, both ways of ending. */
static void *own_heap_values(void *arg)
{
    corio_key *k = arg;

    for (int i = 0; i < 3; i++)
        cr_assert_eq(corio_local_set(k[i], malloc(32 + i)), 0);
    corio_coro_yield();
    return NULL;
}

Test(local, heap_values_are_freed_by_their_destructor, .timeout = TIMEOUT)
{
    corio_key k[3];
    corio_coro *co[64];

    k[0] = new_key(free);
    for (int i = 0; i < 10; i++)
        (void)new_key(NULL);
    k[1] = new_key(free);
    k[2] = new_key(free);
    for (int i = 0; i < 64; i++) {
        co[i] = new_coro(own_heap_values, k, i % 2);
        cr_assert_eq(corio_coro_resume(co[i]), 0);
    }
    for (int i = 0; i < 64; i++) {
        if (i % 3 == 0)
            cr_assert_eq(corio_coro_resume(co[i]), 0);
        cr_assert_eq(corio_coro_free(co[i]), 0);
    }
}

/* A generator is a coroutine: its locals are destroyed when it ends or is
 * closed. */
static void *gen_with_local(corio_gen *gen, void *arg)
{
    struct dtor_case *c = arg;

    cr_assert_eq(corio_local_set(c->a, &c->va), 0);
    while (corio_gen_yield(gen, NULL, NULL) == 0)
        ;
    return NULL;
}

Test(local, generator_locals_are_destroyed_at_close, .timeout = TIMEOUT)
{
    struct dtor_case c;
    corio_gen *g;

    calls.n = 0;
    dtor_case_init(&c, false);
    g = corio_gen_new(gen_with_local, &c, NULL);
    cr_assert_not_null(g);
    cr_assert_eq(corio_gen_next(g, NULL), 1);
    cr_assert_eq(calls.n, 0);
    cr_assert_eq(corio_gen_close(g), 0);
    cr_assert_eq(calls.n, 1);
    cr_assert_eq(called('a', &c.va), 1);
}
