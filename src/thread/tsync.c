/* src/thread/tsync.c -- thread-safe locks, recursive locks, conditions,
 * semaphores and events (Python's threading objects), awaitable from tasks
 * on any loop and blocking on plain threads.
 *
 * Each object's fast path is an atomic operation on its state word, with no
 * mutex: a free lock is one compare-and-swap, an unlock with nobody waiting
 * another. The slow paths take the object's mutex and wait there
 * (twait.c); a woken waiter tries again. The lock's state is the classic
 * futex mutex's: 0 free, 1 locked, 2 locked and maybe waited for, so that
 * the unlock of a lock nobody waits for never takes the mutex.
 *
 * Barriers are in tbarrier.c, channels in tchan.c. */
#include "thread_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>


static void obj_release(struct corio__tobj *o)
{
    free(o);
}

/* ---- Locks ---------------------------------------------------------------- */

struct corio_tlock {
    struct corio__tobj obj;         /* first: obj_release frees the lock */
    struct corio__list waiters;
    int state;                      /* atomic: 0 free, 1 locked, 2 locked
                                       and maybe waited for */
};

static void tlock_init(struct corio_tlock *l)
{
    corio__tobj_init(&l->obj, obj_release);
    corio__list_init(&l->waiters);
    l->state = 0;
}

corio_tlock *corio_tlock_new(void)
{
    corio_tlock *l = malloc(sizeof(*l));

    if (l == NULL)
        return NULL;
    tlock_init(l);
    return l;
}

int corio_tlock_free(corio_tlock *l)
{
    if (l == NULL)
        return 0;
    corio__tobj_lock(&l->obj);
    return corio__tobj_free(&l->obj,
                            __atomic_load_n(&l->state, __ATOMIC_RELAXED) != 0);
}

static bool tlock_try(corio_tlock *l)
{
    int free_state = 0;

    return __atomic_compare_exchange_n(&l->state, &free_state, 1, false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static int tlock_slow(corio_tlock *l, int64_t deadline)
{
    int rc = 0;

    corio__tobj_lock(&l->obj);
    /* Taking it as "2" may leave a needless wake-up for the last holder's
     * unlock: never a missed one. */
    while (__atomic_exchange_n(&l->state, 2, __ATOMIC_ACQUIRE) != 0) {
        rc = corio__tw_wait(&l->obj, &l->waiters, deadline);
        if (rc == -1)
            break;
    }
    if (rc == -1) {
        int err = errno;

        corio__tobj_unlock(&l->obj);
        errno = err;
        return -1;
    }
    corio__tobj_unlock(&l->obj);
    return 0;
}

int corio_tlock_acquire(corio_tlock *l, int64_t deadline)
{
    if (l == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    if (CORIO_LIKELY(tlock_try(l)))
        return 0;
    return tlock_slow(l, deadline);
}

int corio_tlock_try_acquire(corio_tlock *l)
{
    if (l == NULL)
        return corio__einval();
    if (tlock_try(l))
        return 0;
    errno = EAGAIN;
    return -1;
}

int corio_tlock_release(corio_tlock *l)
{
    int locked = 1;

    if (l == NULL)
        return corio__einval();
    if (CORIO_LIKELY(__atomic_compare_exchange_n(&l->state, &locked, 0, false,
                                                 __ATOMIC_RELEASE,
                                                 __ATOMIC_RELAXED)))
        return 0;
    if (locked == 0) {
        errno = EPERM;
        return -1;
    }
    /* Waited for: the lock is still held, so l cannot be freed meanwhile. */
    corio__tobj_lock(&l->obj);
    __atomic_store_n(&l->state, 0, __ATOMIC_RELEASE);
    corio__tw_signal(&l->obj, &l->waiters);
    corio__tobj_unlock(&l->obj);
    return 0;
}

bool corio_tlock_is_locked(const corio_tlock *l)
{
    return l != NULL && __atomic_load_n(&l->state, __ATOMIC_RELAXED) != 0;
}

/* ---- Recursive locks ------------------------------------------------------- */

struct corio_rlock {
    struct corio_tlock lock;        /* first: obj_release frees the rlock */
    const void *owner;              /* atomic: corio__tw_self() of the
                                       holder, or NULL */
    unsigned count;                 /* the owner's only */
};

corio_rlock *corio_rlock_new(void)
{
    corio_rlock *l = malloc(sizeof(*l));

    if (l == NULL)
        return NULL;
    tlock_init(&l->lock);
    l->owner = NULL;
    l->count = 0;
    return l;
}

int corio_rlock_free(corio_rlock *l)
{
    return l != NULL ? corio_tlock_free(&l->lock) : 0;
}

bool corio_rlock_is_owned(const corio_rlock *l)
{
    return l != NULL &&
           __atomic_load_n(&l->owner, __ATOMIC_RELAXED) == corio__tw_self();
}

/* The owner takes it again. */
static int rlock_again(corio_rlock *l)
{
    if (l->count == UINT_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    l->count++;
    return 0;
}

static void rlock_own(corio_rlock *l)
{
    __atomic_store_n(&l->owner, corio__tw_self(), __ATOMIC_RELAXED);
    l->count = 1;
}

int corio_rlock_acquire(corio_rlock *l, int64_t deadline)
{
    if (l == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    if (corio_rlock_is_owned(l))
        return rlock_again(l);
    if (corio_tlock_acquire(&l->lock, deadline) == -1)
        return -1;
    rlock_own(l);
    return 0;
}

int corio_rlock_try_acquire(corio_rlock *l)
{
    if (l == NULL)
        return corio__einval();
    if (corio_rlock_is_owned(l))
        return rlock_again(l);
    if (corio_tlock_try_acquire(&l->lock) == -1)
        return -1;
    rlock_own(l);
    return 0;
}

int corio_rlock_release(corio_rlock *l)
{
    if (l == NULL)
        return corio__einval();
    if (!corio_rlock_is_owned(l)) {
        errno = EPERM;
        return -1;
    }
    if (--l->count > 0)
        return 0;
    __atomic_store_n(&l->owner, NULL, __ATOMIC_RELAXED);
    return corio_tlock_release(&l->lock);
}

/* ---- Conditions ------------------------------------------------------------ */

struct corio_tcond {
    struct corio__tobj obj;
    struct corio__list waiters;
    corio_tlock *lock;
};

corio_tcond *corio_tcond_new(corio_tlock *lock)
{
    corio_tcond *c;

    if (lock == NULL) {
        errno = EINVAL;
        return NULL;
    }
    c = malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    corio__tobj_init(&c->obj, obj_release);
    corio__list_init(&c->waiters);
    c->lock = lock;
    return c;
}

int corio_tcond_free(corio_tcond *c)
{
    if (c == NULL)
        return 0;
    corio__tobj_lock(&c->obj);
    return corio__tobj_free(&c->obj, false);
}

/* Take the condition's lock back after a wait, whatever happened to the
 * caller meanwhile (a shield: cancellation and scopes stay out). */
static void tcond_relock(corio_tcond *c)
{
    corio_scope shield;
    int err = errno;

    corio_scope_shield(&shield, -1);
    while (corio_tlock_acquire(c->lock, -1) == -1)
        ; /* cannot fail in a shield with no deadline, but for ENOMEM */
    corio_scope_exit(&shield);
    errno = err;
}

int corio_tcond_wait(corio_tcond *c, int64_t deadline)
{
    int rc;

    if (c == NULL)
        return corio__einval();
    if (corio__tw_in_callback()) {
        errno = EDEADLK;
        return -1;
    }
    if (!corio_tlock_is_locked(c->lock)) {
        errno = EPERM;
        return -1;
    }
    /* Linked before the lock is released: a notify made under the lock
     * after that finds the waiter. */
    corio__tobj_lock(&c->obj);
    corio_tlock_release(c->lock);
    rc = corio__tw_wait(&c->obj, &c->waiters, deadline);
    corio__tobj_unlock(&c->obj);
    tcond_relock(c);
    return rc;
}

int corio_tcond_notify(corio_tcond *c, int n)
{
    if (c == NULL || n < 0)
        return corio__einval();
    corio__tobj_lock(&c->obj);
    while (n-- > 0 && corio__tw_signal(&c->obj, &c->waiters))
        ;
    corio__tobj_unlock(&c->obj);
    return 0;
}

int corio_tcond_notify_all(corio_tcond *c)
{
    if (c == NULL)
        return corio__einval();
    corio__tobj_lock(&c->obj);
    corio__tw_broadcast(&c->obj, &c->waiters);
    corio__tobj_unlock(&c->obj);
    return 0;
}

/* ---- Semaphores ------------------------------------------------------------
 * The value is taken with a compare-and-swap. A releaser looks for waiters
 * (nwait) after raising the value, and a waiter counts itself in nwait
 * before it looks at the value: with both sequentially consistent, one of
 * them sees the other, so no wake-up is missed. */

struct corio_tsem {
    struct corio__tobj obj;
    struct corio__list waiters;
    unsigned value;                 /* atomic */
    unsigned max;                   /* bounded: the initial value; else
                                       UINT_MAX */
    unsigned nwait;                 /* atomic: callers in the slow path */
};

static corio_tsem *tsem_new(unsigned value, unsigned max)
{
    corio_tsem *s = malloc(sizeof(*s));

    if (s == NULL)
        return NULL;
    corio__tobj_init(&s->obj, obj_release);
    corio__list_init(&s->waiters);
    s->value = value;
    s->max = max;
    s->nwait = 0;
    return s;
}

corio_tsem *corio_tsem_new(unsigned value)
{
    return tsem_new(value, UINT_MAX);
}

corio_tsem *corio_tsem_new_bounded(unsigned value)
{
    return tsem_new(value, value);
}

int corio_tsem_free(corio_tsem *s)
{
    if (s == NULL)
        return 0;
    corio__tobj_lock(&s->obj);
    return corio__tobj_free(&s->obj, false);
}

static bool tsem_try(corio_tsem *s)
{
    unsigned v = __atomic_load_n(&s->value, __ATOMIC_SEQ_CST);

    while (v > 0) {
        if (__atomic_compare_exchange_n(&s->value, &v, v - 1, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return true;
    }
    return false;
}

int corio_tsem_acquire(corio_tsem *s, int64_t deadline)
{
    int rc = 0, err = 0;

    if (s == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    if (CORIO_LIKELY(tsem_try(s)))
        return 0;
    corio__tobj_lock(&s->obj);
    __atomic_add_fetch(&s->nwait, 1, __ATOMIC_SEQ_CST);
    while (!tsem_try(s)) {
        rc = corio__tw_wait(&s->obj, &s->waiters, deadline);
        if (rc == -1) {
            err = errno;
            break;
        }
    }
    __atomic_sub_fetch(&s->nwait, 1, __ATOMIC_SEQ_CST);
    corio__tobj_unlock(&s->obj);
    errno = err;
    return rc;
}

int corio_tsem_try_acquire(corio_tsem *s)
{
    if (s == NULL)
        return corio__einval();
    if (tsem_try(s))
        return 0;
    errno = EAGAIN;
    return -1;
}

int corio_tsem_release(corio_tsem *s)
{
    unsigned v;

    if (s == NULL)
        return corio__einval();
    v = __atomic_load_n(&s->value, __ATOMIC_SEQ_CST);
    do {
        if (v >= s->max) {
            errno = EOVERFLOW;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&s->value, &v, v + 1, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (__atomic_load_n(&s->nwait, __ATOMIC_SEQ_CST) > 0) {
        corio__tobj_lock(&s->obj);
        corio__tw_signal(&s->obj, &s->waiters);
        corio__tobj_unlock(&s->obj);
    }
    return 0;
}

unsigned corio_tsem_value(const corio_tsem *s)
{
    return s != NULL ? __atomic_load_n(&s->value, __ATOMIC_RELAXED) : 0;
}

/* ---- Events ------------------------------------------------------------------
 * A set raises the generation: a waiter woken by it returns even if the
 * flag was cleared before it ran. */

struct corio_tevent {
    struct corio__tobj obj;
    struct corio__list waiters;
    int flag;                       /* atomic */
    unsigned long gen;              /* under obj.mu: sets so far */
};

corio_tevent *corio_tevent_new(void)
{
    corio_tevent *ev = malloc(sizeof(*ev));

    if (ev == NULL)
        return NULL;
    corio__tobj_init(&ev->obj, obj_release);
    corio__list_init(&ev->waiters);
    ev->flag = 0;
    ev->gen = 0;
    return ev;
}

int corio_tevent_free(corio_tevent *ev)
{
    if (ev == NULL)
        return 0;
    corio__tobj_lock(&ev->obj);
    return corio__tobj_free(&ev->obj, false);
}

int corio_tevent_set(corio_tevent *ev)
{
    if (ev == NULL)
        return corio__einval();
    corio__tobj_lock(&ev->obj);
    __atomic_store_n(&ev->flag, 1, __ATOMIC_RELEASE);
    ev->gen++;
    corio__tw_broadcast(&ev->obj, &ev->waiters);
    corio__tobj_unlock(&ev->obj);
    return 0;
}

int corio_tevent_clear(corio_tevent *ev)
{
    if (ev == NULL)
        return corio__einval();
    __atomic_store_n(&ev->flag, 0, __ATOMIC_RELAXED);
    return 0;
}

bool corio_tevent_is_set(const corio_tevent *ev)
{
    return ev != NULL && __atomic_load_n(&ev->flag, __ATOMIC_ACQUIRE) != 0;
}

int corio_tevent_wait(corio_tevent *ev, int64_t deadline)
{
    unsigned long gen;
    int rc = 0, err = 0;

    if (ev == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    if (__atomic_load_n(&ev->flag, __ATOMIC_ACQUIRE))
        return 0;
    corio__tobj_lock(&ev->obj);
    gen = ev->gen;
    while (!__atomic_load_n(&ev->flag, __ATOMIC_ACQUIRE) && ev->gen == gen) {
        rc = corio__tw_wait(&ev->obj, &ev->waiters, deadline);
        if (rc == -1) {
            err = errno;
            break;
        }
    }
    corio__tobj_unlock(&ev->obj);
    errno = err;
    return rc;
}
