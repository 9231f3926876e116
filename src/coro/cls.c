/* src/coro/cls.c -- coroutine-local storage: process-wide keys, a value per
 * key in each coroutine (Python's contextvars, pthread keys for coroutines).
 * A coroutine's value array is allocated at its first corio_local_set, so
 * coroutines that never use locals pay nothing.
 *
 * A key is its slot (the low 7 bits) and the slot's generation (the rest):
 * values remember the generation they were set under, so a freed key's
 * values are invisible, and a new key that reuses the slot starts NULL
 * everywhere, without visiting every coroutine. */
#include "coro_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_BITS 7
#define SLOT(key) ((key) & (CORIO_KEYS_MAX - 1))
#define GEN(key) ((key) >> SLOT_BITS)

_Static_assert(CORIO_KEYS_MAX == 1 << SLOT_BITS, "a slot fits in SLOT_BITS");

struct corio__local {
    void *value;
    unsigned gen;
};

static pthread_mutex_t keys_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool used;
    unsigned gen;             /* bumped each time the slot is given out */
    void (*dtor)(void *);
} keys[CORIO_KEYS_MAX];

/* The coroutine whose destructors are running: locals calls made by a
 * destructor act on it, even when it is being freed by another one. */
static __thread corio_coro *destroying;

int corio_key_new(corio_key *key, void (*dtor)(void *))
{
    if (key == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&keys_mu);
    for (unsigned i = 0; i < CORIO_KEYS_MAX; i++) {
        if (!keys[i].used) {
            __atomic_store_n(&keys[i].gen,
                             (keys[i].gen + 1) & (UINT_MAX >> SLOT_BITS),
                             __ATOMIC_RELAXED);
            keys[i].dtor = dtor;
            __atomic_store_n(&keys[i].used, true, __ATOMIC_RELEASE);
            *key = keys[i].gen << SLOT_BITS | i;
            pthread_mutex_unlock(&keys_mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&keys_mu);
    errno = EAGAIN;
    return -1;
}

/* True if key names a live key; *dtor (may be NULL) receives its
 * destructor. */
static bool key_live(corio_key key, void (**dtor)(void *))
{
    unsigned i = SLOT(key);
    bool live;

    pthread_mutex_lock(&keys_mu);
    live = keys[i].used && keys[i].gen == GEN(key);
    if (dtor != NULL)
        *dtor = live ? keys[i].dtor : NULL;
    pthread_mutex_unlock(&keys_mu);
    return live;
}

int corio_key_free(corio_key key)
{
    int rc = 0;

    pthread_mutex_lock(&keys_mu);
    if (!keys[SLOT(key)].used || keys[SLOT(key)].gen != GEN(key)) {
        errno = EINVAL;
        rc = -1;
    } else {
        __atomic_store_n(&keys[SLOT(key)].used, false, __ATOMIC_RELEASE);
        keys[SLOT(key)].dtor = NULL;
    }
    pthread_mutex_unlock(&keys_mu);
    return rc;
}

/* The values of a thread's own stack are destroyed when the thread exits. */
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_locals_free(void *co)
{
    corio__locals_destroy(co);
}

static void thread_key_make(void)
{
    pthread_key_create(&thread_key, thread_locals_free);
}

static corio_coro *running(void)
{
    corio_coro *co = destroying;

    if (co == NULL)
        co = corio_coro_self();
    return co != NULL ? co : corio__coro_main();
}

void *corio_local_get(corio_key key)
{
    corio_coro *co = running();
    unsigned i = SLOT(key);

    if (i >= co->nlocals || co->locals[i].gen != GEN(key))
        return NULL;
    /* Visible until the key is freed (lock-free: key_new/free publish
     * `used` with atomic stores). */
    if (!__atomic_load_n(&keys[i].used, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&keys[i].gen, __ATOMIC_RELAXED) != GEN(key))
        return NULL;
    return co->locals[i].value;
}

int corio_local_set(corio_key key, void *value)
{
    corio_coro *co = running();
    unsigned i = SLOT(key);

    if (!key_live(key, NULL)) {
        errno = EINVAL;
        return -1;
    }
    if (i >= co->nlocals) {
        unsigned n = i < 8 ? 8 : CORIO_KEYS_MAX;
        struct corio__local *v = realloc(co->locals, n * sizeof(*v));

        if (v == NULL) {
            errno = ENOMEM;
            return -1;
        }
        memset(v + co->nlocals, 0, (n - co->nlocals) * sizeof(*v));
        if (co->locals == NULL && co == corio__coro_main()) {
            pthread_once(&thread_key_once, thread_key_make);
            pthread_setspecific(thread_key, co);
        }
        co->locals = v;
        co->nlocals = n;
    }
    co->locals[i].value = value;
    co->locals[i].gen = GEN(key);
    return 0;
}

/* Run the destructors of co's non-NULL values whose key is alive, then free
 * the array. Like pthread keys, a destructor that sets a value again gets
 * more rounds (at most 4). */
void corio__locals_destroy(corio_coro *co)
{
    corio_coro *outer = destroying;

    destroying = co;
    for (int round = 0; round < 4; round++) {
        bool again = false;

        for (unsigned i = 0; i < co->nlocals; i++) {
            struct corio__local *l = &co->locals[i];
            void *v = l->value;
            void (*dtor)(void *);

            if (v == NULL)
                continue;
            l->value = NULL;
            if (key_live(l->gen << SLOT_BITS | i, &dtor) && dtor != NULL) {
                dtor(v);
                again = true;
            }
        }
        if (!again)
            break;
    }
    destroying = outer;
    free(co->locals);
    co->locals = NULL;
    co->nlocals = 0;
}

/* fork() copies only the forking thread: the keys' mutex is taken around it. */
CORIO__FORK_LOCK(keys, keys_mu)
