/* src/task/sync.c -- locks, events, conditions and semaphores for the tasks
 * of one loop (asyncio's Lock, Event, Condition, Semaphore and
 * BoundedSemaphore). Channels are in chan.c.
 *
 * Every primitive keeps a FIFO of struct corio__waiter, parked with
 * corio__wait. What a primitive gives to a waiter (the lock, a semaphore
 * unit) is handed over by the giver: it pops the first waiter, records the
 * hand-off, and wakes it. A waiter is woken at most once, so a woken waiter
 * always returns 0 and keeps what it was given; a waiter that is cancelled
 * or times out first is unlinked by corio__wait and never chosen. Nothing is
 * lost, and a released lock cannot be stolen by a newcomer before the task
 * it was passed to runs (no barging).
 *
 * Nothing here is thread-safe: the objects belong to one thread's loop. */
#include "task_int.h"
#include "corio/sync.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

struct corio_lock {
    struct corio__list waiters;     /* struct corio__waiter.node, FIFO */
    struct corio__fiber *owner;     /* the holder; NULL: the thread's stack */
    bool locked;
};

struct corio_event {
    struct corio__list waiters;
    bool set;
};

struct corio_cond {
    struct corio__list waiters;     /* waiting to be notified, FIFO */
    corio_lock *lock;               /* the lock the waiters release */
    corio_lock own;                 /* used when the caller gave none */
};

struct corio_sem {
    struct corio__list waiters;
    unsigned value;                 /* free units; 0 while tasks wait */
    unsigned bound;                 /* the initial value, for bounded ones */
    bool bounded;
};

/* ---- Waiting ------------------------------------------------------------- */

/* The running fiber (NULL on the thread's stack), without making a loop. */
static struct corio__fiber *self(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? loop->current : NULL;
}

/* True in a loop callback: the loop runs, but no task does. Such code must
 * not wait (corio__wait would fail with EDEADLK). */
static bool in_callback(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL && loop->running && loop->current == NULL;
}

/* Park the caller at the back of q until a giver pops and wakes it, the
 * deadline passes or the task is cancelled. Returns as corio__wait; when it
 * fails, w is no longer in q. */
static int park(struct corio__list *q, struct corio__waiter *w,
                int64_t deadline)
{
    int rc;

    corio__waiter_init(w);
    w->unlink = corio__waiter_unlink_node;
    corio__list_push_back(q, &w->node);
    rc = corio__wait(w, deadline);
    /* corio__wait unlinks on every failure but one: no loop at all. */
    if (rc == -1 && corio__list_linked(&w->node))
        corio__list_remove(&w->node);
    return rc;
}

/* Pop the first waiter of q, or NULL. */
static struct corio__waiter *pop_waiter(struct corio__list *q)
{
    struct corio__list *n = corio__list_pop_front(q);

    return n != NULL ? CORIO_CONTAINER_OF(n, struct corio__waiter, node) : NULL;
}

/* Wake up to n waiters of q, in order, each with success. Returns how many
 * were woken. */
static int wake_some(struct corio__list *q, int n)
{
    struct corio__waiter *w;
    int woken = 0;

    while (woken < n && (w = pop_waiter(q)) != NULL) {
        corio__wake(w, 0);
        woken++;
    }
    return woken;
}

/* ---- Locks --------------------------------------------------------------- */

static void lock_init(corio_lock *l)
{
    corio__list_init(&l->waiters);
    l->owner = NULL;
    l->locked = false;
}

corio_lock *corio_lock_new(void)
{
    corio_lock *l = malloc(sizeof(*l));

    if (l == NULL)
        return NULL;
    lock_init(l);
    return l;
}

int corio_lock_free(corio_lock *l)
{
    if (l == NULL)
        return 0;
    if (!corio__list_empty(&l->waiters)) {
        errno = EBUSY;
        return -1;
    }
    free(l);
    return 0;
}

static bool lock_held_by_caller(const corio_lock *l)
{
    return l->locked && l->owner == self();
}

/* Acquire l for the caller, who does not hold it. Release hands the lock
 * over before waking, so a successful wait means the caller holds it. */
static int lock_acquire(corio_lock *l, int64_t deadline)
{
    struct corio__waiter w;

    if (!l->locked) {
        /* Hand-offs keep l locked while anyone waits. */
        assert(corio__list_empty(&l->waiters));
        l->locked = true;
        l->owner = self();
        return 0;
    }
    if (park(&l->waiters, &w, deadline) == -1)
        return -1;
    assert(l->locked && l->owner == w.fiber);
    return 0;
}

/* Release l: pass it to the first waiter, or unlock it. */
static void lock_release(corio_lock *l)
{
    struct corio__waiter *w = pop_waiter(&l->waiters);

    if (w == NULL) {
        l->locked = false;
        l->owner = NULL;
        return;
    }
    l->owner = w->fiber;
    corio__wake(w, 0);
}

int corio_lock_acquire(corio_lock *l, int64_t deadline)
{
    if (l == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (lock_held_by_caller(l)) {
        errno = EDEADLK;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    return lock_acquire(l, deadline);
}

int corio_lock_try_acquire(corio_lock *l)
{
    if (l == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (l->locked) {
        errno = EAGAIN;
        return -1;
    }
    return lock_acquire(l, 0);
}

int corio_lock_release(corio_lock *l)
{
    if (l == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!lock_held_by_caller(l)) {
        errno = EPERM;
        return -1;
    }
    lock_release(l);
    return 0;
}

bool corio_lock_is_locked(const corio_lock *l)
{
    return l != NULL && l->locked;
}

/* ---- Events -------------------------------------------------------------- */

corio_event *corio_event_new(void)
{
    corio_event *ev = malloc(sizeof(*ev));

    if (ev == NULL)
        return NULL;
    corio__list_init(&ev->waiters);
    ev->set = false;
    return ev;
}

int corio_event_free(corio_event *ev)
{
    if (ev == NULL)
        return 0;
    if (!corio__list_empty(&ev->waiters)) {
        errno = EBUSY;
        return -1;
    }
    free(ev);
    return 0;
}

int corio_event_set(corio_event *ev)
{
    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    ev->set = true;
    wake_some(&ev->waiters, INT_MAX);
    return 0;
}

int corio_event_clear(corio_event *ev)
{
    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    ev->set = false;
    return 0;
}

bool corio_event_is_set(const corio_event *ev)
{
    return ev != NULL && ev->set;
}

/* A waiter woken by set returns 0 even if the flag was cleared since; one
 * cancelled before set was unlinked and took nothing from the others. */
int corio_event_wait(corio_event *ev, int64_t deadline)
{
    struct corio__waiter w;

    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    if (ev->set)
        return 0;
    return park(&ev->waiters, &w, deadline);
}

/* ---- Conditions ---------------------------------------------------------- */

corio_cond *corio_cond_new(corio_lock *l)
{
    corio_cond *c = malloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    corio__list_init(&c->waiters);
    lock_init(&c->own);
    c->lock = l != NULL ? l : &c->own;
    return c;
}

int corio_cond_free(corio_cond *c)
{
    if (c == NULL)
        return 0;
    if (!corio__list_empty(&c->waiters) ||
        !corio__list_empty(&c->own.waiters)) {
        errno = EBUSY;
        return -1;
    }
    free(c);
    return 0;
}

corio_lock *corio_cond_lock(corio_cond *c)
{
    return c != NULL ? c->lock : NULL;
}

/* Acquire l again after a condition wait, whatever happens: the caller must
 * return holding it. The wait runs in a shield, so neither the task's
 * cancellation nor an expired scope can fail it (in_callback was ruled out
 * before waiting). Returns true if it had to wait and the caller is
 * cancelled, which the caller must report (an expired scope is reported by
 * the next call). */
static bool lock_reacquire(corio_lock *l)
{
    bool waits = l->locked; /* free: taken at once, nothing to report */

    {
        CORIO_SHIELD(-1);
        int rc = lock_acquire(l, -1);

        assert(rc == 0);
        (void)rc;
    }
    return waits && corio__checkpoint() == -1 && errno == ECANCELED;
}

/* The lock is released only after the waiter is linked, and no other task
 * runs in between, so a notify made by the next holder of the lock finds
 * it: there is no window for a lost wake-up. */
int corio_cond_wait(corio_cond *c, int64_t deadline)
{
    struct corio__waiter w;
    bool cancelled;
    int rc, err;

    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!lock_held_by_caller(c->lock)) {
        errno = EPERM;
        return -1;
    }
    if (in_callback()) {
        errno = EDEADLK;
        return -1;
    }
    corio__waiter_init(&w);
    w.unlink = corio__waiter_unlink_node;
    corio__list_push_back(&c->waiters, &w.node);
    lock_release(c->lock);
    rc = corio__wait(&w, deadline);
    err = errno;
    if (rc == -1 && corio__list_linked(&w.node))
        corio__list_remove(&w.node);
    cancelled = lock_reacquire(c->lock);
    if (rc == 0 && !cancelled)
        return 0;
    if (rc == 0) {
        /* Notified, then cancelled before it could return: the
         * notification goes to the next waiter instead of being lost (a
         * spurious wake-up at worst, which waiters must tolerate). */
        wake_some(&c->waiters, 1);
        err = ECANCELED;
    } else if (cancelled) {
        err = ECANCELED;
    }
    errno = err;
    return -1;
}

int corio_cond_wait_pred(corio_cond *c, bool (*pred)(void *arg), void *arg,
                        int64_t deadline)
{
    if (c == NULL || pred == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!lock_held_by_caller(c->lock)) {
        errno = EPERM;
        return -1;
    }
    while (!pred(arg)) {
        if (corio_cond_wait(c, deadline) == -1)
            return -1;
    }
    return 0;
}

int corio_cond_notify(corio_cond *c, int n)
{
    if (c == NULL || n < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!lock_held_by_caller(c->lock)) {
        errno = EPERM;
        return -1;
    }
    return wake_some(&c->waiters, n);
}

int corio_cond_notify_all(corio_cond *c)
{
    return corio_cond_notify(c, INT_MAX);
}

/* ---- Semaphores ---------------------------------------------------------- */

static corio_sem *sem_new(unsigned value, bool bounded)
{
    corio_sem *s = malloc(sizeof(*s));

    if (s == NULL)
        return NULL;
    corio__list_init(&s->waiters);
    s->value = value;
    s->bound = value;
    s->bounded = bounded;
    return s;
}

corio_sem *corio_sem_new(unsigned value)
{
    return sem_new(value, false);
}

corio_sem *corio_sem_new_bounded(unsigned value)
{
    return sem_new(value, true);
}

int corio_sem_free(corio_sem *s)
{
    if (s == NULL)
        return 0;
    if (!corio__list_empty(&s->waiters)) {
        errno = EBUSY;
        return -1;
    }
    free(s);
    return 0;
}

int corio_sem_acquire(corio_sem *s, int64_t deadline)
{
    struct corio__waiter w;

    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    if (s->value > 0) {
        /* Units go straight to waiters, so none is free while any waits. */
        assert(corio__list_empty(&s->waiters));
        s->value--;
        return 0;
    }
    /* Success means release handed a unit to this waiter. */
    return park(&s->waiters, &w, deadline);
}

int corio_sem_try_acquire(corio_sem *s)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (s->value == 0) {
        errno = EAGAIN;
        return -1;
    }
    s->value--;
    return 0;
}

int corio_sem_release(corio_sem *s)
{
    struct corio__waiter *w;

    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if ((s->bounded && s->value >= s->bound) || s->value == UINT_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    w = pop_waiter(&s->waiters);
    if (w != NULL)
        corio__wake(w, 0); /* the unit is the waiter's now */
    else
        s->value++;
    return 0;
}

unsigned corio_sem_value(const corio_sem *s)
{
    return s != NULL ? s->value : 0;
}
