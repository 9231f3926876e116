/* src/thread/twait.c -- waiting on a thread-safe object, from a plain thread
 * (a futex) or from a loop (a task parks, a thread's own stack drives its
 * loop), and waking such waiters from any thread.
 *
 * A loop waiter lives on the heap with two references: the waiting side's,
 * and the wait list's, which becomes the wake-up's once a waker on another
 * thread posts it to the loop. So a waiter that gives up (deadline,
 * cancellation) while its wake-up is on its way leaves the record to the
 * wake-up, which then finds nobody waiting. The giving up happens in the
 * waiter's unlink, on the loop's thread, under the object's mutex: still
 * linked, it leaves the list; already signalled, it passes the wake-up on.
 *
 * What this file does not do: hand anything over. The objects (tsync.c,
 * tchan.c) retry under their mutex after each wake-up. */
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct loop_tw {
    struct corio__tw tw;
    struct corio__waiter w;         /* parked in corio__wait */
    struct corio__job delivery;     /* the wake-up from another thread */
    int refs;                       /* atomic: waiting side + list/wake-up */
    bool waiting;                   /* loop thread: w may still be woken */
};

/* ---- Objects ------------------------------------------------------------ */

void corio__tobj_init(struct corio__tobj *o,
                      void (*release)(struct corio__tobj *o))
{
    pthread_mutex_init(&o->mu, NULL);
    o->users = 0;
    o->nwaiting = 0;
    o->dead = false;
    o->release = release;
}

void corio__tobj_lock(struct corio__tobj *o)
{
    pthread_mutex_lock(&o->mu);
    o->users++;
}

void corio__tobj_unlock(struct corio__tobj *o)
{
    bool last = --o->users == 0 && o->dead;

    pthread_mutex_unlock(&o->mu);
    if (last) {
        pthread_mutex_destroy(&o->mu);
        o->release(o);
    }
}

int corio__tobj_free(struct corio__tobj *o, bool busy)
{
    if (busy || o->nwaiting > 0) {
        corio__tobj_unlock(o);
        errno = EBUSY;
        return -1;
    }
    o->dead = true;
    corio__tobj_unlock(o);
    return 0;
}

const void *corio__tw_self(void)
{
    static __thread char thread_id;
    corio_loop *loop = corio__loop_peek();

    if (loop != NULL && loop->current != NULL)
        return loop->current;
    return &thread_id;
}

/* ---- Futexes (plain threads) -------------------------------------------- */

/* Sleep while *addr == val, until the absolute deadline on corio_now()'s
 * clock (CLOCK_MONOTONIC; -1: none). Returns 0 (woken, or *addr changed:
 * recheck), or -1 with ETIMEDOUT. */
static int futex_wait(uint32_t *addr, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;

    if (deadline >= 0) {
        ts.tv_sec = deadline / CORIO_SECOND;
        ts.tv_nsec = deadline % CORIO_SECOND;
        tsp = &ts;
    }
    if (syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val,
                tsp, NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT)
        return -1;
    return 0;
}

static void futex_wake(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL,
            0);
}

static void link_tw(struct corio__tobj *o, struct corio__list *list,
                    struct corio__tw *tw)
{
    tw->list = list;
    tw->obj = o;
    tw->linked = true;
    tw->signalled = false;
    corio__list_push_back(list, &tw->node);
    o->nwaiting++;
}

static void unlink_tw(struct corio__tw *tw)
{
    corio__list_remove(&tw->node);
    tw->linked = false;
    tw->obj->nwaiting--;
}

/* A plain thread waits on its futex. The waker signals it under the mutex,
 * and the waiter retakes the mutex before it returns, so the waiter's stack
 * outlives the waker's futex_wake. */
static int plain_wait(struct corio__tobj *o, struct corio__list *list,
                      int64_t deadline)
{
    struct corio__tw tw = {0};
    struct corio_scope *by = NULL;
    int err = corio__scope_check(NULL, &deadline, &by);

    if (err == 0 && deadline >= 0 && deadline <= corio_now())
        err = ETIMEDOUT;
    if (err != 0) {
        errno = err;
        return -1;
    }
    link_tw(o, list, &tw);
    pthread_mutex_unlock(&o->mu);
    while (__atomic_load_n(&tw.futex, __ATOMIC_ACQUIRE) == 0) {
        if (futex_wait(&tw.futex, 0, deadline) == -1)
            break;
    }
    pthread_mutex_lock(&o->mu);
    if (tw.signalled)
        return 0;
    unlink_tw(&tw);
    if (by != NULL)
        by->caught = true;
    errno = ETIMEDOUT;
    return -1;
}

/* ---- Loop waiters ---------------------------------------------------------- */

static void ltw_unref(struct loop_tw *l)
{
    if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(l);
}

/* On the loop's thread: the wake-up arrives. */
static void delivery_run(struct corio__job *d)
{
    struct loop_tw *l = CORIO_CONTAINER_OF(d, struct loop_tw, delivery);

    if (l->waiting) {
        l->waiting = false;
        corio__wake(&l->w, 0);
    }
    ltw_unref(l);
}

/* The loop closed with the wake-up still queued: its waiter gave up
 * already (loop close cancels it first), passing the wake-up on. */
static void delivery_drop(struct corio__job *d)
{
    ltw_unref(CORIO_CONTAINER_OF(d, struct loop_tw, delivery));
}

/* On the loop's thread, the waiter gives up (deadline, cancellation, loop
 * close): leave the list, or pass on a wake-up already taken. */
static void ltw_give_up(struct corio__waiter *w)
{
    struct loop_tw *l = CORIO_CONTAINER_OF(w, struct loop_tw, w);
    struct corio__tobj *o = l->tw.obj;

    pthread_mutex_lock(&o->mu);
    l->waiting = false;
    if (l->tw.linked) {
        unlink_tw(&l->tw);
        ltw_unref(l); /* the list's */
    } else if (l->tw.signalled) {
        l->tw.signalled = false;
        corio__tw_signal(o, l->tw.list);
    }
    pthread_mutex_unlock(&o->mu);
}

static int loop_wait(corio_loop *loop, struct corio__tobj *o,
                     struct corio__list *list, int64_t deadline)
{
    struct loop_tw *l = calloc(1, sizeof(*l));
    int rc, err;

    if (l == NULL)
        return -1;
    l->refs = 2;
    l->waiting = true;
    l->tw.loop = loop;
    l->delivery.run = delivery_run;
    l->delivery.drop = delivery_drop;
    corio__list_init(&l->delivery.node);
    corio__waiter_init(&l->w);
    l->w.unlink = ltw_give_up;
    link_tw(o, list, &l->tw);
    pthread_mutex_unlock(&o->mu);
    /* Every way out but a wake-up goes through ltw_give_up. */
    rc = corio__wait(&l->w, deadline);
    err = errno;
    pthread_mutex_lock(&o->mu);
    ltw_unref(l);
    errno = err;
    return rc;
}

int corio__tw_wait(struct corio__tobj *o, struct corio__list *list,
                   int64_t deadline)
{
    corio_loop *loop = corio__loop_peek();

    if (loop == NULL)
        return plain_wait(o, list, deadline);
    return loop_wait(loop, o, list, deadline);
}

/* ---- Waking ---------------------------------------------------------------- */

/* Wake tw, taken off its list. Returns false if its loop is closed (the
 * waiter is gone: wake another). */
static bool wake_one(struct corio__tw *tw)
{
    struct loop_tw *l;

    tw->signalled = true;
    if (tw->loop == NULL) {
        __atomic_store_n(&tw->futex, 1, __ATOMIC_RELEASE);
        futex_wake(&tw->futex);
        return true;
    }
    l = CORIO_CONTAINER_OF(tw, struct loop_tw, tw);
    if (corio__loop_peek() == tw->loop) { /* the loop's own thread */
        if (l->waiting) {
            l->waiting = false;
            corio__wake(&l->w, 0);
        }
        ltw_unref(l);
        return true;
    }
    if (corio__loop_post_threadsafe(tw->loop, &l->delivery) == -1) {
        tw->signalled = false;
        ltw_unref(l);
        return false;
    }
    return true;
}

bool corio__tw_signal(struct corio__tobj *o, struct corio__list *list)
{
    struct corio__list *n;

    (void)o;
    while ((n = corio__list_pop_front(list)) != NULL) {
        struct corio__tw *tw = CORIO_CONTAINER_OF(n, struct corio__tw, node);

        tw->linked = false;
        tw->obj->nwaiting--;
        if (wake_one(tw))
            return true;
    }
    return false;
}

void corio__tw_broadcast(struct corio__tobj *o, struct corio__list *list)
{
    while (corio__tw_signal(o, list))
        ;
}
