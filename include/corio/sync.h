/* include/corio/sync.h -- synchronisation between tasks: locks, events,
 * conditions, semaphores, and channels (queues) with select. Part of corio.h.
 *
 * asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore and Queue,
 * and Go's channels and select. They synchronise the tasks of one thread's
 * loop (and the thread's own stack): they are not thread-safe, and an object
 * must only be used by the thread that made it.
 *
 * Every call that can block takes an absolute `deadline` last (corio_now()
 * clock; -1: none; 0: do not wait), and deadline scopes (corio_scope_enter)
 * apply to it. Inside a task it suspends only that task; on the thread's own
 * stack it runs the loop until it can return; in a callback it fails with
 * EDEADLK if it would have to wait. A call that can complete at once (a free
 * lock, a buffered item) completes, even past its own deadline; but once
 * the task is cancelled, or an enclosing scope has expired or been
 * cancelled, every blocking call fails at once with ECANCELED or ETIMEDOUT,
 * ready or not (cancellation sticks: see corio_scope in corio/loop.h), and
 * takes nothing.
 *
 * Waiters are served in FIFO order. Nothing is lost to a cancellation or a
 * timeout: what a primitive hands to a waiter (the lock, a semaphore unit, a
 * channel item) is handed over at the moment the waiter is woken, and a
 * woken waiter's call succeeds; a cancellation that comes after that fails
 * the task's next blocking call, and every one after it. A waiter that is cancelled or
 * times out before it is woken leaves the queue, and nothing is handed to
 * it. */
#ifndef CORIO_SYNC_H
#define CORIO_SYNC_H

#include "corio/task.h"
#include "corio/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_lock corio_lock;
typedef struct corio_event corio_event;
typedef struct corio_cond corio_cond;
typedef struct corio_sem corio_sem;
typedef struct corio_chan corio_chan;

/* ---- Locks ----------------------------------------------------------------
 * asyncio.Lock: a mutual-exclusion lock owned by the task that acquired it
 * (the thread's own stack counts as one owner). It is not recursive. When it
 * is released while tasks wait, it passes directly to the first of them. A
 * task must release the locks it holds before it ends. */

/* A new unlocked lock, owned by the caller (corio_lock_free). Returns NULL
 * with errno ENOMEM. */
CORIO_EXPORT corio_lock *corio_lock_new(void);

/* Free l; it may be held, but nobody may wait on it. corio_lock_free(NULL)
 * returns 0. Returns 0, or -1 with errno EBUSY if a task waits on l (nothing
 * is done). */
CORIO_EXPORT int corio_lock_free(corio_lock *l);

/* Acquire l, waiting until deadline if another task holds it (asyncio's
 * `await lock.acquire()`). Returns 0 (the caller holds l), or -1 with errno:
 *   ETIMEDOUT  the deadline (or a scope's) passed first;
 *   ECANCELED  the calling task was cancelled while it waited;
 *   EDEADLK    the caller already holds l, or a callback would have to wait;
 *   EINVAL     l is NULL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_lock_acquire(corio_lock *l, int64_t deadline);

/* Acquire l if it is free and nobody waits for it. Returns 0, or -1 with
 * errno EAGAIN (l is held, by anyone, the caller included), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_lock_try_acquire(corio_lock *l);

/* Release l, held by the caller. If tasks wait, the first one now holds it.
 * Returns 0, or -1 with errno EPERM (l is not held by the caller: asyncio's
 * RuntimeError), EINVAL. */
CORIO_EXPORT int corio_lock_release(corio_lock *l);

/* True if l is held (by anyone). */
CORIO_EXPORT bool corio_lock_is_locked(const corio_lock *l);

/* ---- Events ---------------------------------------------------------------
 * asyncio.Event: a flag that tasks wait to become set. Setting it wakes
 * every waiter; each of them returns 0 even if the flag is cleared again
 * before it runs. */

/* A new event, not set, owned by the caller (corio_event_free). Returns NULL
 * with errno ENOMEM. */
CORIO_EXPORT corio_event *corio_event_new(void);

/* Free ev. corio_event_free(NULL) returns 0. Returns 0, or -1 with errno
 * EBUSY if a task waits on ev (nothing is done). */
CORIO_EXPORT int corio_event_free(corio_event *ev);

/* Set the flag and wake every waiter. Returns 0, or -1 with errno EINVAL. */
CORIO_EXPORT int corio_event_set(corio_event *ev);

/* Clear the flag. Returns 0, or -1 with errno EINVAL. */
CORIO_EXPORT int corio_event_clear(corio_event *ev);

/* True if the flag is set. */
CORIO_EXPORT bool corio_event_is_set(const corio_event *ev);

/* Wait until the flag is set (at once if it is). Returns 0, or -1 with
 * errno ETIMEDOUT, ECANCELED, EDEADLK (a callback would have to wait),
 * EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_event_wait(corio_event *ev, int64_t deadline);

/* ---- Conditions -----------------------------------------------------------
 * asyncio.Condition: tasks wait, holding its lock, until another task
 * notifies them. Wait releases the lock while it waits and holds it again
 * whenever it returns (errors included), like pthread_cond_wait. Wake-ups
 * may be spurious: wait in a loop that checks the predicate (or use
 * corio_cond_wait_pred).
 *
 * A notification is never lost to a cancellation: a waiter that was
 * notified and is then cancelled before it returns passes its notification
 * on to the next waiter (asyncio does the same), and one cancelled before it
 * was notified was not counted by notify. */

/* A new condition using lock l (NULL: a lock of its own, freed with it; get
 * it with corio_cond_lock). l stays owned by the caller and must outlive the
 * condition. Returns NULL with errno ENOMEM. */
CORIO_EXPORT corio_cond *corio_cond_new(corio_lock *l);

/* Free c (and its own lock, if it made one). corio_cond_free(NULL) returns
 * 0. Returns 0, or -1 with errno EBUSY if a task waits on c (nothing is
 * done). */
CORIO_EXPORT int corio_cond_free(corio_cond *c);

/* The condition's lock: acquire and release it with corio_lock_*. */
CORIO_EXPORT corio_lock *corio_cond_lock(corio_cond *c);

/* Atomically release the lock (held by the caller) and wait until notified
 * or deadline; then acquire the lock again before returning, whatever the
 * outcome. Re-acquiring ignores the deadline, scopes and cancellations (a
 * cancellation that arrives then is reported by this call). Returns 0 (it
 * was notified), or -1 with errno:
 *   ETIMEDOUT  the deadline (or a scope's) passed first;
 *   ECANCELED  the calling task was cancelled;
 *   EPERM      the caller does not hold the lock (nothing is done);
 *   EDEADLK    called from a callback (nothing is done);
 *   EINVAL     c is NULL.
 * The lock is held after every return except EPERM, EDEADLK and EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_cond_wait(corio_cond *c, int64_t deadline);

/* asyncio's wait_for: wait (as corio_cond_wait) until pred(arg) returns
 * true; pred is called with the lock held, first before any waiting.
 * Returns 0 (pred is true), or -1 with errno as corio_cond_wait. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_cond_wait_pred(corio_cond *c, bool (*pred)(void *arg),
                                     void *arg, int64_t deadline);

/* Wake up to n of the tasks waiting on c, the longest-waiting first; the
 * caller must hold the lock. Returns the number woken (>= 0), or -1 with
 * errno EPERM (the lock is not held by the caller), EINVAL (c is NULL or
 * n < 0). */
CORIO_EXPORT int corio_cond_notify(corio_cond *c, int n);

/* Wake every task waiting on c (the caller holds the lock). Returns the
 * number woken, or -1 with errno EPERM, EINVAL. */
CORIO_EXPORT int corio_cond_notify_all(corio_cond *c);

/* ---- Semaphores -----------------------------------------------------------
 * asyncio.Semaphore and BoundedSemaphore: a counter of free units. Acquire
 * takes one, waiting while there is none; release gives one back, directly
 * to the first waiter if any. Units are not owned: any task may release. */

/* A new semaphore with value free units, owned by the caller
 * (corio_sem_free). Returns NULL with errno ENOMEM. */
CORIO_EXPORT corio_sem *corio_sem_new(unsigned value);

/* A bounded semaphore: corio_sem_release fails with EOVERFLOW when it would
 * raise the value above the initial one (asyncio's ValueError). */
CORIO_EXPORT corio_sem *corio_sem_new_bounded(unsigned value);

/* Free s. corio_sem_free(NULL) returns 0. Returns 0, or -1 with errno EBUSY
 * if a task waits on s (nothing is done). */
CORIO_EXPORT int corio_sem_free(corio_sem *s);

/* Take one unit, waiting until deadline while there is none. Returns 0, or
 * -1 with errno ETIMEDOUT, ECANCELED, EDEADLK (a callback would have to
 * wait), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_sem_acquire(corio_sem *s, int64_t deadline);

/* Take one unit if one is free and nobody waits. Returns 0, or -1 with
 * errno EAGAIN (none free), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_sem_try_acquire(corio_sem *s);

/* Give one unit back (to the first waiter, if any). Returns 0, or -1 with
 * errno EOVERFLOW (a bounded semaphore already at its initial value, or the
 * value would exceed UINT_MAX; nothing is done), EINVAL. */
CORIO_EXPORT int corio_sem_release(corio_sem *s);

/* The number of free units. */
CORIO_EXPORT unsigned corio_sem_value(const corio_sem *s);

/* ---- Channels -------------------------------------------------------------
 * A FIFO of `void *` items between tasks: asyncio.Queue and Go's chan. The
 * channel does not own the items; it passes the pointers along.
 *
 * Capacity: cap > 0 holds up to cap items (senders wait while it is full);
 * CORIO_CHAN_UNBOUNDED never makes senders wait (asyncio.Queue() with no
 * maxsize); 0 is Go's unbuffered channel: a send waits until a receiver
 * takes the item from it (a rendezvous).
 *
 * Closing: no more sends (they fail with CORIO_ECLOSED, and so do the
 * senders waiting, whose items were not sent); receivers get the items
 * still buffered, then fail with CORIO_ECLOSED. asyncio's Queue.shutdown()
 * and QueueShutDown, Go's close. */

#define CORIO_CHAN_UNBOUNDED SIZE_MAX

/* A new open channel of capacity cap (see above), owned by the caller
 * (corio_chan_free). Memory for the items grows with use, up to cap.
 * Returns NULL with errno ENOMEM. */
CORIO_EXPORT corio_chan *corio_chan_new(size_t cap);

/* Free ch. Items still buffered are dropped: what they point to stays the
 * caller's (drain them with corio_chan_try_recv first). corio_chan_free(NULL)
 * returns 0. Returns 0, or -1 with errno EBUSY if a task waits on ch
 * (sending, receiving, selecting or joining; nothing is done). */
CORIO_EXPORT int corio_chan_free(corio_chan *ch);

/* Send item (any pointer, NULL included), waiting until deadline while ch
 * is full (for an unbuffered channel: until a receiver takes it). Returns 0
 * (the item is in ch, or with a receiver), or -1 with errno (the item was
 * not sent and is still the caller's):
 *   CORIO_ECLOSED  ch is closed, or was closed while the caller waited;
 *   ETIMEDOUT  the deadline (or a scope's) passed first;
 *   ECANCELED  the calling task was cancelled while it waited;
 *   EDEADLK    a callback would have to wait;
 *   ENOMEM     the buffer could not grow;
 *   EINVAL     ch is NULL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_send(corio_chan *ch, void *item, int64_t deadline);

/* Receive the oldest item into *item (may be NULL to drop it), waiting
 * until deadline while ch is empty. Returns 0, or -1 with errno (nothing was
 * taken from ch):
 *   CORIO_ECLOSED  ch is closed and empty;
 *   ETIMEDOUT, ECANCELED, EDEADLK as corio_chan_send;
 *   EINVAL     ch is NULL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_recv(corio_chan *ch, void **item,
                                 int64_t deadline);

/* Send without waiting (asyncio's put_nowait). Returns 0, or -1 with errno
 * EAGAIN (ch is full; unbuffered: no receiver waits), CORIO_ECLOSED
 * (closed), ENOMEM, EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_try_send(corio_chan *ch, void *item);

/* Receive without waiting (asyncio's get_nowait). Returns 0, or -1 with
 * errno EAGAIN (ch is empty; unbuffered: no sender waits), CORIO_ECLOSED
 * (closed and empty), EINVAL. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_try_recv(corio_chan *ch, void **item);

/* Close ch: every task waiting to send fails with CORIO_ECLOSED, every task
 * waiting to receive (ch is empty then) fails with CORIO_ECLOSED. Tasks in
 * corio_chan_wait_done keep waiting for the items still unfinished to be
 * marked done. Returns 0, or -1 with errno EALREADY (ch was closed
 * already), EINVAL. */
CORIO_EXPORT int corio_chan_close(corio_chan *ch);

/* True once ch has been closed. */
CORIO_EXPORT bool corio_chan_is_closed(const corio_chan *ch);

/* The number of items buffered in ch (asyncio's qsize; always 0 for an
 * unbuffered channel), and its capacity as given to corio_chan_new. */
CORIO_EXPORT size_t corio_chan_len(const corio_chan *ch);
CORIO_EXPORT size_t corio_chan_cap(const corio_chan *ch);

/* asyncio's Queue.task_done and Queue.join. Every item sent counts as
 * unfinished until a consumer calls corio_chan_mark_done for it;
 * corio_chan_wait_done waits until none is unfinished. corio_chan_mark_done
 * returns 0, or -1 with errno EINVAL (called more times than items were
 * sent, or ch is NULL). corio_chan_wait_done returns 0, or -1 with errno
 * ETIMEDOUT, ECANCELED, EDEADLK, EINVAL. */
CORIO_EXPORT int corio_chan_mark_done(corio_chan *ch);
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_wait_done(corio_chan *ch, int64_t deadline);

/* ---- Select ---------------------------------------------------------------
 * Go's select: wait until one of several sends and receives can complete,
 * complete exactly that one, and say which. */

enum corio_chan_dir {
    CORIO_CHAN_SEND = 1,
    CORIO_CHAN_RECV = 2,
};

typedef struct corio_chan_op {
    corio_chan *chan;   /* NULL: the entry is ignored (Go's nil channel) */
    enum corio_chan_dir dir;
    void *item;         /* SEND: the item to send; RECV: receives the item */
    int err;            /* out, for the entry that completed: 0, or
                           CORIO_ECLOSED (its channel is closed: nothing
                           was sent, or nothing is left to receive) */
} corio_chan_op;

/* Complete one of ops[0..n): the first one, in array order, that can
 * complete now (so earlier entries have priority), or else the first one
 * that becomes able to before deadline. An operation on a closed channel
 * counts as able to complete, with ops[i].err = CORIO_ECLOSED. Exactly one
 * operation takes effect; the others do nothing. n may be 0, or every chan
 * NULL: the call then just waits for the deadline. Returns the index i of
 * the entry that completed (read ops[i].err, and for a receive
 * ops[i].item), or -1 with errno:
 *   ETIMEDOUT  the deadline (or a scope's) passed first (with deadline 0:
 *              nothing could complete at once, Go's `default:`);
 *   ECANCELED  the calling task was cancelled while it waited;
 *   EDEADLK    a callback would have to wait;
 *   ENOMEM     a send could not grow its channel's buffer, or n is large
 *              and memory for the wait could not be had;
 *   EINVAL     ops is NULL with n > 0, n > INT_MAX, or an entry with a
 *              channel has a bad dir. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_chan_select(corio_chan_op *ops, size_t n,
                                   int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
