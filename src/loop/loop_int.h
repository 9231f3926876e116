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

struct corio__fiber;

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
    struct corio__fiber *fiber;     /* NULL: the thread's stack drives the
                                       loop */
    struct corio_loop *loop;
    struct corio__timer timer;      /* the deadline */
    int64_t deadline;               /* the call's own (absolute; -1 none) */
    struct corio_scope *by;         /* the scope whose deadline is armed */
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
    /* A watcher of the loop's own (a signalfd): called on readiness instead
     * of waking tasks. */
    void (*watch)(corio_loop *loop, int fd, void *data);
    void *watch_data;
};

/* How many times in a row the loop may skip its poll for I/O (and the
 * timers) while jobs are ready: each loop iteration or direct switch from
 * one task to the next counts one. Bounds how long a busy ping-pong delays
 * I/O, timers and signals. */
#define CORIO__SPIN_MAX 64

/* The cooperative budget (Tokio's): what the running task may do in I/O
 * operations that complete without waiting before the next one yields to
 * the other ready tasks, the poller and the timers. An operation costs one
 * unit, plus one per CORIO__BUDGET_UNIT bytes it may move: 128 operations,
 * or 1 MiB, whichever comes first. See corio__budget_spend. */
#define CORIO__BUDGET 128
#define CORIO__BUDGET_UNIT 8192

struct corio_loop {
    struct corio__list ready;       /* jobs to run */
    struct corio__list batch;       /* the jobs this iteration runs */
    unsigned spins;                 /* skipped polls: see CORIO__SPIN_MAX */
    size_t spent;                   /* budget the running task has used
                                       since it last parked (at most
                                       CORIO__BUDGET): corio__budget_spend */
    struct corio__heap timers;
    struct corio__poller poller;
    int64_t now;                    /* the iteration's clock */
    bool running, stopping;
    corio_coro *sched;              /* the context running the loop */
    corio_loop *prev_current;       /* the thread's loop before run began */
    struct corio__fiber *current;   /* the fiber running now, or NULL */
    struct corio__list fibers;      /* live fibers, for dump and close */
    size_t nfibers;
    uint64_t fiber_seq;             /* ids: Task-1, Task-2, ... */
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

    struct corio__signals *signals; /* corio_loop_add_signal_handler's */
};

/* ---- Fibers ---------------------------------------------------------------
 * A fiber is what the loop schedules: a coroutine made when it first runs,
 * a ready-queue entry, the blocking call it is parked in, its cancellation
 * and its deadline scopes. A task (src/task) embeds one and adds a future,
 * a name and joining; the loop never looks above the fiber. */
struct corio__fiber {
    struct corio__job job;          /* ready-queue entry: run the fiber */
    struct corio__list all;         /* in loop->fibers while alive */
    corio_loop *loop;
    corio_coro *co;                 /* its coroutine while it runs, or NULL */
    corio_coro *resume;             /* the innermost coroutine to switch to */
    corio_fn fn;
    void *arg;
    size_t stack_size;
    enum corio_stack_mode stack_mode;
    const char *name;               /* the owner's buffer */
    uint64_t id;
    struct corio__waiter *waiting;  /* the blocking call it is parked in */
    struct corio_scope *scope;      /* innermost scope */
    const char *scope_file;         /* where it was entered: kept here, */
    int scope_line;                 /* for a report after its frame died */
    /* The owner's hook, called once when the fiber is over: its function
     * returned (err 0), it could not start (err), it was cancelled before
     * it ran (ECANCELED), or it was abandoned, parked, at loop close
     * (CORIO__FIBER_ABANDONED: the loop is going away, nothing may be
     * scheduled on it). */
    void (*ended)(struct corio__fiber *f, int err);
    bool started, queued, finished;
    bool cancelled;                 /* sticky: every blocking call fails */
};

#define CORIO__FIBER_ABANDONED (-1)

/* How long a closing loop lets its cancelled fibers' shielded cleanup run
 * before it abandons them. */
#define CORIO__CLOSE_GRACE (1 * CORIO_SECOND)

/* Set f up (fn, arg, stack, name and ended filled in by the owner) to run
 * on loop, and queue it. */
void corio__fiber_start(corio_loop *loop, struct corio__fiber *f);

/* Park the running fiber f until its waiter wakes it (corio__wait). */
void corio__fiber_park(corio_loop *loop, struct corio__fiber *f);

/* Make the fiber of w ready (corio__wake). */
void corio__fiber_wake_waiter(struct corio__waiter *w);

/* Cancel every fiber of a closing loop and run them to their end; abandon
 * those that still wait after that. */
void corio__fibers_cancel_all(corio_loop *loop);

/* The fiber running on loop, or NULL (the thread's stack, a callback). */
static inline struct corio__fiber *corio__fiber_running(corio_loop *loop)
{
    return loop->current;
}

/* Cancel f: its current blocking call and every later one fail with
 * ECANCELED (outside shield scopes). Returns 1, or 0 if f has finished. */
int corio__fiber_cancel(struct corio__fiber *f);

/* Free the coroutine of a fiber abandoned while parked (loop close). */
void corio__fiber_release(struct corio__fiber *f);

/* ---- Cancellation and scopes ------------------------------------------- */

/* Whether the caller (the running fiber, or the thread's stack) may block:
 * 0, or -1 with errno ECANCELED (its task or a scope was cancelled) or
 * ETIMEDOUT (a scope's deadline has passed), the scope being marked as
 * the cause. For the calls that complete without waiting when they can:
 * cancellation sticks there too, so a loop of such calls ends. */
int corio__checkpoint_slow(void);

/* The thread's current loop (loop.c) and its own stack's innermost scope
 * (scope.c), read by the inline fast paths: initial-exec, as coro.c's
 * thread state, so that a read is one load, not a __tls_get_addr call. */
#define CORIO__TLS __thread __attribute__((tls_model("initial-exec")))
extern CORIO__TLS corio_loop *corio__current_loop;
extern CORIO__TLS struct corio_scope *corio__thread_scope;

static inline int corio__checkpoint(void)
{
    corio_loop *loop = corio__current_loop;
    struct corio__fiber *f = loop != NULL ? loop->current : NULL;

    /* The common case: nothing cancelled, no scope entered. */
    if (CORIO_LIKELY(f != NULL ? !f->cancelled && f->scope == NULL
                               : corio__thread_scope == NULL))
        return 0;
    return corio__checkpoint_slow();
}

/* Whether the caller may block now, and until when: walks the scopes from
 * `inner` (f's, or the thread's) outwards. Returns 0 or ECANCELED /
 * ETIMEDOUT (the cause is marked caught); lowers *deadline to the earliest
 * deadline that applies, *by receiving its scope (NULL: the call's own). */
int corio__scope_check(struct corio__fiber *f, int64_t *deadline,
                       struct corio_scope **by);

/* True if the caller's next blocking call would fail at once (as
 * corio__checkpoint), without marking any scope as the cause. */
bool corio__scope_would_fail(void);

/* True if what happens at `target` (a scope; NULL: the fiber itself)
 * reaches a call made with `inner` as the innermost scope: no shield in
 * between. */
bool corio__scope_reaches(const struct corio_scope *inner,
                          const struct corio_scope *target);

/* The waiter the thread's own stack is parked in (driving its loop). */
extern __thread struct corio__waiter *corio__thread_waiter;

/* The loop the calling thread's blocking calls use: the current one (made
 * on first use). NULL with errno on failure. */
static inline corio_loop *corio__loop_get(void)
{
    corio_loop *loop = corio__current_loop;

    return CORIO_LIKELY(loop != NULL) ? loop : corio_loop_current();
}

/* The thread's current loop, or NULL: never makes one. */
static inline corio_loop *corio__loop_peek(void)
{
    return corio__current_loop;
}

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
 * first. Returns 0, or -1 with CORIO_ECLOSED if the loop is closed. */
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

/* The unlink of a waiter linked in a plain list by its node. */
void corio__waiter_unlink_node(struct corio__waiter *w);

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

/* Watch fd with a callback of the loop's own (on readiness, edge-triggered)
 * until corio__fd_unwatch. Returns 0 or -1 with errno. */
int corio__fd_watch(corio_loop *loop, int fd,
                    void (*cb)(corio_loop *loop, int fd, void *data),
                    void *data);
void corio__fd_unwatch(corio_loop *loop, int fd);

/* Remove the signal handlers of a closing loop (signal.c). */
void corio__signals_close(corio_loop *loop);
/* In a child of corio_fork, for the loop it leaves behind: close the
 * signalfd (no epoll_ctl: the epoll set is shared with the parent) and
 * unblock what the thread blocked for the loops' handlers. */
void corio__signals_fork_child(corio_loop *loop);

/* The check an I/O call makes before it tries an operation that may
 * complete without waiting and move up to `bytes` bytes: the caller's
 * cancellation and scopes (corio__checkpoint), then the cooperative
 * budget. When the budget is spent, the task first yields, as
 * corio_sleep(0) does, but the loop polls for I/O and fires its timers
 * before the task runs again; a task's budget is whole again whenever it
 * parks (corio__wait). A callback cannot yield: its budget is refilled
 * instead; loop NULL charges nothing. Cheap unless it yields: a branch, a
 * compare and an add. Returns 0, or -1 with errno as a blocking call
 * (ECANCELED: the task is cancelled; ETIMEDOUT: a scope's deadline has
 * passed): the operation then fails before it starts. */
int corio__budget_yield(corio_loop *loop, size_t cost);

static inline int corio__budget_spend(size_t bytes)
{
    corio_loop *loop = corio__current_loop;
    size_t cost = 1 + bytes / CORIO__BUDGET_UNIT;

    /* An I/O call is a blocking call, even when it need not wait:
     * cancellation and passed scope deadlines stick there too. */
    if (corio__checkpoint() == -1)
        return -1;
    if (loop == NULL)
        return 0;
    if (cost > CORIO__BUDGET)
        cost = CORIO__BUDGET; /* a big operation takes a whole budget */
    if (CORIO_LIKELY(cost <= CORIO__BUDGET - loop->spent)) {
        loop->spent += cost;
        return 0;
    }
    return corio__budget_yield(loop, cost);
}

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
