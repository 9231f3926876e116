/* src/coro/gen.c -- generators with Python's semantics, on coroutines.
 *
 * A generator is a coroutine plus one transfer slot: send() puts the sent
 * value in the slot and resumes the coroutine; yield() puts the yielded value
 * there and suspends. The struct lives next to the coroutine at the top of
 * its stack (corio__coro_new's extra bytes), so a generator costs one stack
 * from the pool and nothing else. */
#include "coro_int.h"

#include <errno.h>

struct corio_gen {
    corio_coro *co;
    corio_gen_fn fn;
    void *arg;
    void *slot;     /* the value crossing the last send or yield */
    bool started;   /* the first send has happened */
    bool done;      /* returned, or closed */
    bool closing;   /* close() resumed it: its yields fail with ECANCELED */
};

static void *gen_main(void *arg)
{
    corio_gen *gen = arg;

    return gen->fn(gen, gen->arg);
}

corio_gen *corio_gen_new(corio_gen_fn fn, void *arg, const corio_coro_attr *attr)
{
    corio_gen *gen;
    corio_coro *co;

    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    co = corio__coro_new(gen_main, NULL, attr, sizeof(*gen), (void **)&gen);
    if (co == NULL)
        return NULL;
    co->arg = gen;
    gen->co = co;
    gen->fn = fn;
    gen->arg = arg;
    return gen;
}

int corio_gen_send(corio_gen *gen, void *value, void **out)
{
    if (CORIO_UNLIKELY(gen == NULL || corio__coro_active(gen->co) ||
                       (!gen->started && value != NULL))) {
        errno = EINVAL;
        return -1;
    }
    if (CORIO_UNLIKELY(gen->done)) {
        errno = EPIPE;
        return -1;
    }
    gen->started = true;
    gen->slot = value;
    corio_coro_resume(gen->co);
    if (CORIO_UNLIKELY(gen->co->caller == CORO_DEAD)) {
        gen->done = true;
        if (out != NULL)
            *out = gen->co->result;
        return 0;
    }
    if (out != NULL)
        *out = gen->slot;
    return 1;
}

int corio_gen_next(corio_gen *gen, void **out)
{
    return corio_gen_send(gen, NULL, out);
}

int corio_gen_yield(corio_gen *gen, void *value, void **in)
{
    if (CORIO_UNLIKELY(gen == NULL || gen->co != corio_coro_self())) {
        errno = EINVAL;
        return -1;
    }
    gen->slot = value;
    corio_coro_yield();
    if (CORIO_UNLIKELY(gen->closing)) {
        errno = ECANCELED;
        return -1;
    }
    if (in != NULL)
        *in = gen->slot;
    return 0;
}

/* Resume a generator suspended at a yield with that yield failing, so that
 * its cleanup runs. Returns 0, or -1 with EPROTO if it yielded again. */
static int finish(corio_gen *gen)
{
    if (!gen->started || gen->done) {
        gen->done = true;
        return 0;
    }
    gen->closing = true;
    corio_coro_resume(gen->co);
    gen->done = true;
    if (gen->co->caller != CORO_DEAD) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int corio_gen_yield_from(corio_gen *gen, corio_gen *inner, void **result)
{
    void *in = NULL, *v;

    if (gen == NULL || inner == NULL || inner == gen ||
        gen->co != corio_coro_self()) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        int rc = corio_gen_send(inner, in, &v);

        if (rc <= 0) {
            if (rc == 0 && result != NULL)
                *result = v;
            return rc;
        }
        if (corio_gen_yield(gen, v, &in) == -1) {
            finish(inner);
            errno = ECANCELED;
            return -1;
        }
    }
}

bool corio_gen_is_done(const corio_gen *gen)
{
    return gen->done;
}

corio_coro *corio_gen_coro(corio_gen *gen)
{
    return gen->co;
}

int corio_gen_close(corio_gen *gen)
{
    int rc;

    if (gen == NULL)
        return 0;
    if (corio__coro_active(gen->co)) {
        errno = EBUSY;
        return -1;
    }
    rc = finish(gen);
    corio_coro_free(gen->co); /* frees gen too: it lives on that stack */
    return rc;
}
