/* src/thread/tbarrier.c -- threading.Barrier: parties callers (threads or
 * tasks on any loops) wait until all have come.
 *
 * Each round of the barrier is a small record (struct round) that its
 * waiters hold: the round ends passed (the last party came) or broken (a
 * waiter gave up, abort, reset), and a waiter reads its outcome from its own
 * round, however many rounds went by before it ran again. The next round is
 * made before a caller counts itself in, so ending a round cannot fail. */
#include "thread_int.h"

#include <errno.h>
#include <stdlib.h>

enum round_outcome {
    ROUND_PENDING,
    ROUND_PASSED,
    ROUND_BROKEN,
};

struct round {
    unsigned refs;                  /* under the barrier's mutex */
    enum round_outcome outcome;
};

struct corio_barrier {
    struct corio__tobj obj;         /* first: barrier_release frees it */
    struct corio__list waiters;
    unsigned parties;
    /* Under obj.mu. */
    unsigned count;                 /* arrived in this round */
    bool broken;
    struct round *cur;              /* the barrier's reference */
    struct round *next;             /* made before anyone counts in */
};

static void round_unref(struct round *r)
{
    if (r != NULL && --r->refs == 0)
        free(r);
}

static void barrier_release(struct corio__tobj *o)
{
    struct corio_barrier *b = (struct corio_barrier *)o;

    round_unref(b->cur);
    free(b->next);
    free(b);
}

corio_barrier *corio_barrier_new(unsigned parties)
{
    corio_barrier *b;

    if (parties == 0) {
        errno = EINVAL;
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->cur = calloc(1, sizeof(*b->cur));
    if (b->cur == NULL) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    b->cur->refs = 1;
    corio__tobj_init(&b->obj, barrier_release);
    corio__list_init(&b->waiters);
    b->parties = parties;
    return b;
}

int corio_barrier_free(corio_barrier *b)
{
    if (b == NULL)
        return 0;
    corio__tobj_lock(&b->obj);
    return corio__tobj_free(&b->obj, false);
}

/* Under the mutex, with callers counted in (b->next made): end the round. */
static void round_end(corio_barrier *b, enum round_outcome outcome)
{
    b->cur->outcome = outcome;
    round_unref(b->cur);
    b->cur = b->next;
    b->cur->refs = 1;
    b->next = NULL;
    b->count = 0;
    corio__tw_broadcast(&b->obj, &b->waiters);
}

/* Under the mutex: wait for the round r to end. Returns its outcome; a
 * waiter that gives up breaks the barrier (its errno is in *err). */
static enum round_outcome round_wait(corio_barrier *b, struct round *r,
                                     int64_t deadline, int *err)
{
    while (r->outcome == ROUND_PENDING) {
        if (corio__tw_wait(&b->obj, &b->waiters, deadline) == -1) {
            if (r->outcome != ROUND_PENDING)
                break; /* it ended meanwhile: that counts */
            *err = errno;
            b->broken = true;
            round_end(b, ROUND_BROKEN);
            return ROUND_BROKEN;
        }
    }
    *err = ENOTRECOVERABLE;
    return r->outcome;
}

static int barrier_fail(corio_barrier *b, int err)
{
    corio__tobj_unlock(&b->obj);
    errno = err;
    return -1;
}

int corio_barrier_wait(corio_barrier *b, int64_t deadline)
{
    struct round *r;
    unsigned index;
    int err;

    if (b == NULL)
        return corio__einval();
    if (corio__tw_in_callback()) {
        errno = EDEADLK;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    corio__tobj_lock(&b->obj);
    if (b->broken)
        return barrier_fail(b, ENOTRECOVERABLE);
    if (b->next == NULL && (b->next = calloc(1, sizeof(*b->next))) == NULL)
        return barrier_fail(b, ENOMEM);
    index = b->count++;
    if (b->count == b->parties) {
        round_end(b, ROUND_PASSED);
        corio__tobj_unlock(&b->obj);
        return (int)index;
    }
    r = b->cur;
    r->refs++;
    if (round_wait(b, r, deadline, &err) != ROUND_PASSED) {
        round_unref(r);
        return barrier_fail(b, err);
    }
    round_unref(r);
    corio__tobj_unlock(&b->obj);
    return (int)index;
}

int corio_barrier_abort(corio_barrier *b)
{
    if (b == NULL)
        return corio__einval();
    corio__tobj_lock(&b->obj);
    b->broken = true;
    if (b->count > 0)
        round_end(b, ROUND_BROKEN);
    corio__tobj_unlock(&b->obj);
    return 0;
}

int corio_barrier_reset(corio_barrier *b)
{
    if (b == NULL)
        return corio__einval();
    corio__tobj_lock(&b->obj);
    if (b->count > 0)
        round_end(b, ROUND_BROKEN);
    b->broken = false;
    corio__tobj_unlock(&b->obj);
    return 0;
}

unsigned corio_barrier_parties(const corio_barrier *b)
{
    return b != NULL ? b->parties : 0;
}

unsigned corio_barrier_n_waiting(corio_barrier *b)
{
    unsigned n;

    if (b == NULL)
        return 0;
    corio__tobj_lock(&b->obj);
    n = b->count;
    corio__tobj_unlock(&b->obj);
    return n;
}

bool corio_barrier_is_broken(corio_barrier *b)
{
    bool broken;

    if (b == NULL)
        return false;
    corio__tobj_lock(&b->obj);
    broken = b->broken;
    corio__tobj_unlock(&b->obj);
    return broken;
}
