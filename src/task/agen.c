/* src/task/agen.c -- async generators: a generator (src/coro/gen.c) whose
 * body blocks in the task that resumes it.
 *
 * Nothing special is needed for the body to block: the loop parks the
 * innermost coroutine of a fiber (corio__coro_switch keeps the generator's
 * caller link), so a blocking call in the body suspends the consuming task
 * and resumes the body later. What is added here: the consumer's deadline
 * (a scope entered around the resume), the body's error raised out of
 * corio_agen_next, and the body's own scopes, which are taken off the
 * consumer's chain at each yield and put back on top of the next
 * consumer's chain when it resumes (corio__scope_detach / _attach), so that
 * scopes stay properly nested whichever task runs the body. */
#include "task_int.h"
#include "corio/agen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct corio_agen {
    corio_gen *gen;
    corio_agen_fn fn;
    void *arg;
    void *value;                /* the value of the pending yield */
    struct corio_scope *base;   /* the resumer's innermost scope */
    struct corio_scope *top;    /* the body's scopes, detached at a yield */
    struct corio_scope *bottom;
    int rc;                     /* the body's return: 0 or -1 */
    int err;                    /* its errno when -1 */
    bool running;
    bool done;
};

static void *agen_main(corio_gen *gen, void *arg)
{
    corio_agen *ag = arg;

    (void)gen;
    ag->rc = ag->fn(ag, ag->arg) == 0 ? 0 : -1;
    ag->err = ag->rc == -1 ? errno : 0;
    if (ag->rc == -1 && ag->err == 0)
        ag->err = EIO; /* failed without saying why */
    ag->done = true;
    if (corio__scope_head() != ag->base) {
        fprintf(stderr, "corio: an async generator returned with a scope "
                        "still entered\n");
        abort();
    }
    return NULL;
}

corio_agen *corio_agen_new(corio_agen_fn fn, void *arg,
                           const corio_coro_attr *attr)
{
    corio_agen *ag;

    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    ag = calloc(1, sizeof(*ag));
    if (ag == NULL)
        return NULL;
    ag->fn = fn;
    ag->arg = arg;
    ag->gen = corio_gen_new(agen_main, ag, attr);
    if (ag->gen == NULL) {
        free(ag);
        return NULL;
    }
    return ag;
}

/* EINVAL from the body itself, EBUSY from anyone else. */
static int busy(const corio_agen *ag)
{
    errno = corio_coro_self() == corio_gen_coro(ag->gen) ? EINVAL : EBUSY;
    return -1;
}

int corio_agen_next(corio_agen *ag, void **out, int64_t deadline)
{
    corio_scope scope;
    int rc;

    if (ag == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ag->running)
        return busy(ag);
    if (ag->done) {
        errno = CORIO_EDONE;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    if (deadline >= 0)
        corio_scope_enter(&scope, deadline);
    ag->base = corio__scope_head();
    ag->running = true;
    rc = corio_gen_next(ag->gen, NULL);
    ag->running = false;
    if (deadline >= 0)
        corio_scope_exit(&scope);
    if (rc == 1) {
        if (out != NULL)
            *out = ag->value;
        return 1;
    }
    if (rc == -1)
        return -1;
    if (ag->rc == -1) {
        errno = ag->err;
        return -1;
    }
    return 0;
}

int corio_agen_yield(corio_agen *ag, void *value)
{
    int rc;

    if (ag == NULL || !ag->running ||
        corio_coro_self() != corio_gen_coro(ag->gen)) {
        errno = EINVAL;
        return -1;
    }
    ag->value = value;
    ag->top = corio__scope_detach(ag->base, &ag->bottom);
    rc = corio_gen_yield(ag->gen, NULL, NULL);
    /* resumed by corio_agen_next or corio_agen_close, maybe in another
     * task: ag->base is the resumer's innermost scope */
    if (ag->top != NULL) {
        corio__scope_attach(ag->top, ag->bottom);
        ag->top = ag->bottom = NULL;
    }
    return rc;
}

bool corio_agen_is_done(const corio_agen *ag)
{
    return ag->done;
}

int corio_agen_close(corio_agen *ag)
{
    int rc;

    if (ag == NULL)
        return 0;
    if (ag->running)
        return busy(ag);
    ag->base = corio__scope_head();
    ag->running = true;
    rc = corio_gen_close(ag->gen);
    if (rc == -1 && errno == EPROTO && ag->top != NULL) {
        /* it yielded again: the scopes it left entered are dead frames */
        fprintf(stderr, "corio: an async generator yielded inside a scope "
                        "after it was closed\n");
        abort();
    }
    free(ag);
    return rc;
}
