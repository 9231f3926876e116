/* src/coro/cls.c -- coroutine-local storage: process-wide keys, a value per
 * key in each coroutine (Python's contextvars, pthread keys for coroutines).
 * A coroutine's value array is allocated at its first corio_local_set, so
 * coroutines that never use locals pay nothing. */
#include "coro_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t keys_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool used;
    void (*dtor)(void *);
} keys[CORIO_KEYS_MAX];

int corio_key_new(corio_key *key, void (*dtor)(void *))
{
    if (key == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&keys_mu);
    for (unsigned i = 0; i < CORIO_KEYS_MAX; i++) {
        if (!keys[i].used) {
            keys[i].used = true;
            keys[i].dtor = dtor;
            pthread_mutex_unlock(&keys_mu);
            *key = i;
            return 0;
        }
    }
    pthread_mutex_unlock(&keys_mu);
    errno = EAGAIN;
    return -1;
}

int corio_key_free(corio_key key)
{
    int rc = 0;

    pthread_mutex_lock(&keys_mu);
    if (key >= CORIO_KEYS_MAX || !keys[key].used) {
        errno = EINVAL;
        rc = -1;
    } else {
        keys[key].used = false;
        keys[key].dtor = NULL;
    }
    pthread_mutex_unlock(&keys_mu);
    return rc;
}

static corio_coro *running(void)
{
    corio_coro *co = corio_coro_self();

    return co != NULL ? co : corio__coro_main();
}

void *corio_local_get(corio_key key)
{
    corio_coro *co = running();

    return key < co->nlocals ? co->locals[key] : NULL;
}

int corio_local_set(corio_key key, void *value)
{
    corio_coro *co = running();
    bool used;

    pthread_mutex_lock(&keys_mu);
    used = key < CORIO_KEYS_MAX && keys[key].used;
    pthread_mutex_unlock(&keys_mu);
    if (!used) {
        errno = EINVAL;
        return -1;
    }
    if (key >= co->nlocals) {
        unsigned n = key < 8 ? 8 : CORIO_KEYS_MAX;
        void **v = realloc(co->locals, n * sizeof(*v));

        if (v == NULL) {
            errno = ENOMEM;
            return -1;
        }
        memset(v + co->nlocals, 0, (n - co->nlocals) * sizeof(*v));
        co->locals = v;
        co->nlocals = n;
    }
    co->locals[key] = value;
    return 0;
}

/* Run the destructors of co's non-NULL values, then free the array. Like
 * pthread keys, a destructor that sets a value again gets more rounds. */
void corio__locals_destroy(corio_coro *co)
{
    for (int round = 0; round < 4; round++) {
        bool again = false;

        for (unsigned i = 0; i < co->nlocals; i++) {
            void *v = co->locals[i];
            void (*dtor)(void *);

            if (v == NULL)
                continue;
            co->locals[i] = NULL;
            pthread_mutex_lock(&keys_mu);
            dtor = i < CORIO_KEYS_MAX && keys[i].used ? keys[i].dtor : NULL;
            pthread_mutex_unlock(&keys_mu);
            if (dtor != NULL) {
                dtor(v);
                again = true;
            }
        }
        if (!again)
            break;
    }
    free(co->locals);
    co->locals = NULL;
    co->nlocals = 0;
}
