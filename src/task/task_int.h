/* src/task/task_int.h -- tasks and futures, for the task layer's other files
 * (combinators, groups, sync primitives) and the thread pool. */
#ifndef CORIO_TASK_INT_H
#define CORIO_TASK_INT_H

#include "corio/task.h"
#include "../loop/loop_int.h"

struct corio__done_cb;

struct corio_future {
    corio_loop *loop;
    enum corio_state state;         /* PENDING, DONE or CANCELLED */
    void *result;
    int err;                        /* 0, an errno, or ECANCELED */
    struct corio__list waiters;     /* struct corio__waiter.node */
    struct corio__done_cb *cbs;     /* not yet scheduled, in order */
    struct corio__done_cb **cbs_tail;
    unsigned cbs_scheduled;         /* callback jobs in the ready queue */
    unsigned remote;                /* atomic: *_threadsafe completions
                                       posted and not yet applied */
    bool free_pending;              /* freed by its owner while cbs ran */
    /* Whoever would complete f lets go of it when it is freed pending (a
     * pool job); NULL: nobody to tell. */
    void (*on_free)(struct corio_future *f);
    /* Called as the memory of a future that is no task's is freed, done or
     * not, to release what its result points to (a process pool's result
     * bytes); NULL: nothing. */
    void (*on_release)(struct corio_future *f);
    struct corio_task *task;        /* the task it belongs to, or NULL */
};

/* A task is a fiber (the loop's, src/loop) with a future for its result, a
 * name and an owner. Its coroutine (and stack) is made when it first runs
 * and released as soon as it ends, so spawning touches no stack and a
 * finished task that waits to be joined holds no stack. */
struct corio_task {
    struct corio_future fut;
    struct corio__fiber fiber;
    int fail_err;                   /* set by corio_task_fail */
    bool detached;
    bool joining;                   /* corio_task_join_all's duplicate check */
    void *group_child;              /* its record in a group, or NULL */
    void (*group_detach)(struct corio_task *t); /* the group's, called by
                                       corio_task_detach on a child */
    void *started_fut;              /* corio_group_start's, until started */
    const char *file;
    int line;
    char name[32];
};

/* Complete f (state DONE or CANCELLED, result, err): wake its waiters and
 * schedule its done callbacks. */
void corio__future_complete(struct corio_future *f, enum corio_state state,
                            void *result, int err);

void corio__future_init(struct corio_future *f, corio_loop *loop);

/* Free a finished task, once its done callbacks have run. */
void corio__task_free(struct corio_task *t);

/* True (and the future marked to be released later) while done callbacks
 * of f are still queued. */
bool corio__future_busy(struct corio_future *f);

/* The task running on loop, or NULL. */
static inline struct corio_task *corio__task_running(corio_loop *loop)
{
    struct corio__fiber *f = loop->current;

    return f != NULL ? CORIO_CONTAINER_OF(f, struct corio_task, fiber) : NULL;
}

/* In a child of corio_fork (src/proc/fork.c): forget the corio_run
 * signal forwarding of the parent (the handlers it replaced come back). */
void corio__run_fork_child(void);

#endif
