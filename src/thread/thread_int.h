/* src/thread/thread_int.h -- what the thread layer's files share: the
 * waiting of thread-safe objects (twait.c), which a plain thread or a task
 * on any loop may call.
 *
 * A thread-safe object embeds a struct corio__tobj (its mutex, and who still
 * uses it) and one wait list per condition it waits for (a channel has two:
 * senders and receivers). A caller that must wait links a struct
 * corio__tw into a list, under the object's mutex, and sleeps:
 *
 *   plain thread (no loop)   on a futex in the waiter, on its own stack;
 *   a task, or a thread's    parked in corio__wait; the waiter is on the
 *   stack driving its loop   heap, and a waker on another thread posts its
 *                            wake-up to the loop (corio__loop_post_threadsafe)
 *
 * Wake-ups hand nothing over: a woken waiter retakes the mutex and tries
 * again (and waits again if someone else was faster). So a waiter that gives
 * up (deadline, cancellation) can lose no item, only a wake-up, and it
 * passes that on to the next waiter. */
#ifndef CORIO_THREAD_INT_H
#define CORIO_THREAD_INT_H

#include "corio/thread.h"
#include "../loop/loop_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

/* The common part of a thread-safe object. The object lives until its owner
 * has freed it (corio__tobj_free) and the last caller inside its slow path
 * has left (corio__tobj_unlock): a waiter woken just before the owner frees
 * the object still retakes its mutex safely. */
struct corio__tobj {
    pthread_mutex_t mu;
    unsigned users;                 /* under mu: callers between
                                       corio__tobj_lock and _unlock */
    unsigned nwaiting;              /* under mu: waiters linked */
    bool dead;                      /* under mu: freed by its owner */
    void (*release)(struct corio__tobj *o); /* frees the object */
};

/* A waiting caller. Plain threads keep it on their stack; loop callers have
 * it on the heap (struct loop_tw in twait.c). */
struct corio__tw {
    struct corio__list node;        /* in a wait list while linked */
    struct corio__list *list;       /* that list (passing a wake-up on) */
    struct corio__tobj *obj;
    bool linked;                    /* under obj->mu */
    bool signalled;                 /* under obj->mu: a waker took it off */
    uint32_t futex;                 /* plain: 1 once signalled */
    corio_loop *loop;               /* NULL: plain thread */
};

void corio__tobj_init(struct corio__tobj *o,
                      void (*release)(struct corio__tobj *o));

/* Enter / leave the object's slow path (its mutex, and a use that keeps it
 * alive). _unlock frees the object if its owner freed it meanwhile. */
void corio__tobj_lock(struct corio__tobj *o);
void corio__tobj_unlock(struct corio__tobj *o);

/* The owner frees o: with o locked (corio__tobj_lock), refuse with EBUSY if
 * a waiter is linked or `busy`; else mark it dead. Unlocks o either way and
 * returns 0 or -1 with errno EBUSY. */
int corio__tobj_free(struct corio__tobj *o, bool busy);

/* With o locked: link the caller in list, unlock, sleep until a waker
 * signals it, deadline passes or the calling task is cancelled, and lock o
 * again. Returns 0 (signalled: try again), or -1 with errno ETIMEDOUT,
 * ECANCELED, EDEADLK (a loop callback), ENOMEM; o is locked on return
 * either way. */
int corio__tw_wait(struct corio__tobj *o, struct corio__list *list,
                   int64_t deadline);

/* With o locked: wake the first waiter of list / all of them. _signal
 * returns true if there was one. */
bool corio__tw_signal(struct corio__tobj *o, struct corio__list *list);
void corio__tw_broadcast(struct corio__tobj *o, struct corio__list *list);

/* The identity of the caller for ownership (a recursive lock's owner): the
 * running task's fiber, else the thread. */
const void *corio__tw_self(void);

/* Bad input: -1 with errno EINVAL. */
static inline int corio__einval(void)
{
    errno = EINVAL;
    return -1;
}

/* True in a loop callback: a call that would wait fails with EDEADLK. For
 * the calls that must know before they change anything. */
static inline bool corio__tw_in_callback(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL && loop->running && loop->current == NULL;
}

/* Name the calling thread (corio_thread_name, and its OS name): the pool's
 * workers. */
void corio__thread_set_name(const char *name);

#endif
