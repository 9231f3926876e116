/* src/loop/loop_int.h -- the loop's internal structs and calls, for the
 * layers above (task, io, thread). */
#ifndef CORIO_LOOP_INT_H
#define CORIO_LOOP_INT_H

#include "corio/loop.h"
#include "../base/heap.h"
#include "../base/list.h"
#include "../coro/coro_int.h"
#include "poller.h"

#include <pthread.h>
#include <sys/types.h>

struct corio_task;

/* An entry of the ready queue: a callback, or a task to switch into. */
struct corio__job {
    struct corio__list node;
    void (*run)(struct corio__job *job);
    void (*drop)(struct corio__job *job); /* at loop close, instead of run;
                                             NULL: nothing to release */
};

/* A timer of the loop's heap. */
struct corio__timer {
    struct corio__heap_node hn;
    void (*fire)(struct corio__timer *timer);
    bool armed;
};

/* A blocked call. The primitive that blocks (a lock, a queue, a sleep, an
 * fd) links `node` into its own wait list and sets `unlink` to take it out
 * again; corio__wait parks the caller until corio__wake is called, the
 * deadline passes (ETIMEDOUT) or the task is cancelled (ECANCELED). A waiter
 * is woken at most once, so a wake-up that carries an item (a queue hand-off)
 * is never lost to a cancellation that comes later: that cancellation stays
 * pending for the next blocking call. */
struct corio__waiter {
    struct corio__list node;        /* in the primitive's wait list */
    void (*unlink)(struct corio__waiter *w); /* NULL: nothing to unlink */
    void (*notify)(struct corio__waiter *w); /* NULL: corio__wake makes `task`
                                                ready; else it calls this (a
                                                waiter watching for someone
                                                else; must not block) */
    void *data;                     /* for the primitive */
    struct corio_task *task;        /* NULL: the thread's stack drives the
                                       loop */
    struct corio_loop *loop;
    struct corio__timer timer;      /* the deadline */
    int err;                        /* 0, or why it ended */
    bool done;
    bool always_park;               /* a sleep: yields even if its deadline
                                       has passed already */
};

/* Per-fd state for corio_fd_wait (and corio__read_fd). */
struct corio__fd {
    struct corio__waiter *reader, *writer;
    unsigned ready;                 /* CORIO_READ|CORIO_WRITE seen since
                                       cleared */
    bool registered;
    bool drained;                   /* a short read emptied a TCP socket */
    bool hup;                       /* the peer's end, an error or urgent
                                       data was seen: read until EAGAIN */
    unsigned char kind;             /* 0 unknown, FD_TCP, FD_OTHER */
};

/* How many times in a row the loop may skip its poll for I/O (and the
 * timers) while jobs are ready: each loop iteration or direct switch from
 * one task to the next counts one. Bounds how long a busy ping-pong delays
 * I/O, timers and signals. */
#define CORIO__SPIN_MAX 64

struct corio_loop {
    struct corio__list ready;       /* jobs to run */
    struct corio__list batch;       /* the jobs this iteration runs */
    unsigned spins;                 /* skipped polls: see CORIO__SPIN_MAX */
    struct corio__heap timers;
    struct corio__poller poller;
    int64_t now;                    /* the iteration's clock */
    bool running, stopping;
    corio_coro *sched;              /* the context running the loop */
    corio_loop *prev_current;       /* the thread's loop before run began */
    struct corio_task *current;     /* the task running now, or NULL */
    struct corio__list tasks;       /* live tasks, for dump and close */
    size_t ntasks;
    uint64_t task_seq;              /* for the names Task-1, Task-2, ... */
    size_t nwaiting_fds;            /* fd waiters: work that keeps run()
                                       going */
    size_t nrefs;                   /* other such work: corio__loop_ref */
    struct corio__fd *fds;          /* indexed by fd */
    size_t nfds;

    /* Jobs from other threads, moved to `ready` by the loop's thread. */
    pthread_mutex_t tsq_mu;
    struct corio__list tsq;
    bool tsq_closed;                /* under tsq_mu */
    int wake_pending;               /* atomic: a wake-up is on its way */

    int sigfd;                      /* corio_run's signalfd, or -1 */
    void (*on_signal)(struct corio_loop *loop, int sig);
};

/* The loop the calling thread's blocking calls use: the current one (made
 * on first use). NULL with errno on failure. */
corio_loop *corio__loop_get(void);

/* The thread's current loop, or NULL: never makes one. */
corio_loop *corio__loop_peek(void);

/* Append a job to the ready queue. */
static inline void corio__loop_ready(corio_loop *loop, struct corio__job *job)
{
    corio__list_push_back(&loop->ready, &job->node);
}

/* Count work the loop waits for but cannot see (a job on a thread pool):
 * while the count is not zero, corio_loop_run_until_idle does not return. Loop thread
 * only. */
static inline void corio__loop_ref(corio_loop *loop)
{
    loop->nrefs++;
}

static inline void corio__loop_unref(corio_loop *loop)
{
    loop->nrefs--;
}

/* corio_now() + ns, saturated at INT64_MAX (a "never" that stays never). */
static inline int64_t corio__after(int64_t ns)
{
    int64_t now = corio_now();

    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

/* Queue job on loop from any thread (corio_loop_call_soon_threadsafe's queue):
 * it runs on the loop's thread, or is dropped (job->drop) if the loop closes
 * first. Returns 0, or -1 with EPIPE if the loop is closed. */
int corio__loop_post_threadsafe(corio_loop *loop, struct corio__job *job);

/* Arm t to fire at `when` (re-arming an armed timer moves it). Returns 0,
 * or -1 with errno ENOMEM (the timer heap could not grow; t is disarmed). */
int corio__timer_arm(corio_loop *loop, struct corio__timer *t, int64_t when);
void corio__timer_remove(corio_loop *loop, struct corio__timer *t);

/* Disarm t if it is armed (most deadlines never are: inline the check). */
static inline void corio__timer_disarm(corio_loop *loop, struct corio__timer *t)
{
    if (t->armed)
        corio__timer_remove(loop, t);
}

/* Block the caller until w is woken, deadline passes, or the caller is
 * cancelled. The caller has linked w where a waker will find it, with
 * w->unlink set if so. Returns 0, or -1 with errno = w->err (ETIMEDOUT,
 * ECANCELED, or an error set by the waker), or EDEADLK when called from a
 * callback (the loop is running but no task is). */
void corio__waiter_init(struct corio__waiter *w);
int corio__wait(struct corio__waiter *w, int64_t deadline);

/* Wake w with err (0: success). No effect if w was already woken. */
void corio__wake(struct corio__waiter *w, int err);

/* corio_fd_wait for a caller whose read or write on fd has just failed
 * with EAGAIN (after_eagain): fd is known not ready, so the poll(2) that
 * corio_fd_wait makes before parking is skipped; an edge of the
 * edge-triggered poller will come when it becomes ready. */
int corio__wait_fd(int fd, unsigned events, int64_t deadline,
                   bool after_eagain);

/* read(2) for a caller that waits with corio__wait_fd on EAGAIN, saving
 * the read that would end in EAGAIN: a read shorter than n on a TCP socket
 * has emptied it, and the edge-triggered poller reports the next bytes,
 * so the next call fails with EAGAIN without a system call unless an edge
 * came meanwhile. Not after the peer's end, an error or urgent data (a
 * short read may leave the end of stream or bytes behind), nor on other
 * fds (a tty returns one line of several). */
ssize_t corio__read_fd(int fd, void *buf, size_t n);

/* Hooks the task layer provides to the loop (task.c). */
struct corio_scope;
int64_t corio__deadline(int64_t deadline, struct corio_scope **by);
/* The same, for the caller running on loop (NULL: no loop). */
int64_t corio__deadline_in(corio_loop *loop, int64_t deadline,
                           struct corio_scope **by);
void corio__scope_expired(struct corio_scope *scope);
struct corio_task *corio__task_running(corio_loop *loop);
bool corio__task_take_cancel(struct corio_task *t); /* a request is pending */
void corio__task_set_waiting(struct corio_task *t, struct corio__waiter *w);
void corio__task_park(corio_loop *loop, struct corio_task *t);
void corio__task_wake(struct corio_task *t);
void corio__tasks_cancel_all(corio_loop *loop);

/* Run one iteration: poll (blocking if block and nothing is ready), fire
 * timers, run the ready jobs. */
void corio__loop_run_once(corio_loop *loop, bool block);

/* True while something can still happen by itself: ready jobs, timers, fd
 * waiters, references, callbacks queued by other threads. */
bool corio__loop_busy(const corio_loop *loop);

/* corio_loop_run_until_idle's condition: busy, or tasks still alive (a task waiting for
 * another thread keeps the loop running; one waiting for nothing hangs it,
 * as asyncio's run_forever would). */
bool corio__loop_alive(const corio_loop *loop);

#endif
