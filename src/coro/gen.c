/* src/coro/gen.c -- generators with Python's semantics, on coroutines.
 *
 * send() and yield() each leave a pointer for the other side to write to
 * (send: where the yielded value goes; yield: where the sent value goes),
 * and each ends in a tail call of the switch, which returns what the other
 * side passed: yield passes 1 (send returns "yielded"), the generator's end
 * passes 0 ("returned"), send passes 0 (yield succeeds) and close passes -1
 * with the generator's errno set to ECANCELED. No code runs after a switch,
 * so no return is mispredicted (see docs/performance.md).
 *
 * The struct lives next to the coroutine at the top of its stack
 * (corio__coro_new's extra bytes), so a generator costs one stack from the
 * pool and nothing else. */
#include "coro_int.h"

#include <errno.h>

struct corio_gen {
    corio_coro *co;
    corio_gen_fn fn;
    void *arg;
    void **out;     /* the running send's out (NULL: not wanted) */
    void **in;      /* the pending yield's in (NULL: none, or not wanted) */
    bool started;   /* the first send has happened */
    bool done;      /* returned, or closed */
};

static void *gen_main(void *arg)
{
    corio_gen *gen = arg;
    void *result = gen->fn(gen, gen->arg);

    gen->done = true;
    if (gen->out != NULL)
        *gen->out = result;
    return result;
}

corio_gen *corio_gen_new(corio_gen_fn fn, void *arg,
                         const corio_coro_attr *attr)
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

/* Out of line, so that the fast paths need no stack frame. */
__attribute__((noinline, cold)) static int gen_fail(int err)
{
    errno = err;
    return -1;
}

int corio_gen_send(corio_gen *gen, void *value, void **out)
{
    if (CORIO_UNLIKELY(gen == NULL || corio__coro_active(gen->co) ||
                       (!gen->started && value != NULL)))
        return gen_fail(EINVAL);
    if (CORIO_UNLIKELY(gen->done))
        return gen_fail(CORIO_EDONE);
    gen->started = true;
    gen->out = out;
    if (gen->in != NULL)
        *gen->in = value;
    /* 1 if it yielded (corio_gen_yield passes 1), 0 if it returned */
    return corio__coro_resume_val(gen->co, 0);
}

int corio_gen_next(corio_gen *gen, void **out)
{
    return corio_gen_send(gen, NULL, out);
}

int corio_gen_yield(corio_gen *gen, void *value, void **in)
{
    if (CORIO_UNLIKELY(gen == NULL || gen->co != corio_coro_self()))
        return gen_fail(EINVAL);
    if (gen->out != NULL)
        *gen->out = value;
    gen->in = in;
    /* 0 from send, -1 (errno ECANCELED) from close */
    return corio__coro_yield_val(1);
}

/* Resume a generator suspended at a yield with that yield failing, so that
 * its cleanup runs. Returns 0, or -1 with EPROTO if it yielded again. */
static int finish(corio_gen *gen)
{
    if (!gen->started || gen->done) {
        gen->done = true;
        return 0;
    }
    gen->out = gen->in = NULL;
    corio__arch_set_errno(&gen->co->ctx, ECANCELED);
    corio__coro_resume_val(gen->co, -1); /* its pending yield fails */
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
