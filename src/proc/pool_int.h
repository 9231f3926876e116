/* src/proc/pool_int.h -- the pool's shared records, between the API side
 * (pool.c: submitting, futures, map and imap, thread workers) and the
 * process side (pool_proc.c: the manager thread and the worker processes).
 *
 * An item is one unit of work sent to a worker: a single apply_async, or a
 * chunk of a map (nitems > 0, its argument the items' bytes one after the
 * other, each behind a uint32_t length). Its outcome goes back to the loop
 * of the thread that submitted it, as a job posted to that loop: there it
 * completes the item's future. Two references: the future's side and the
 * pool's side; `attached` (under the pool's mutex) says whether the future
 * still wants the outcome. */
#ifndef CORIO_POOL_INT_H
#define CORIO_POOL_INT_H

#include "corio/proc.h"
#include "proc_int.h"
#include "../task/task_int.h"

#include <pthread.h>
#include <stdint.h>

struct work_future;

struct item {
    struct corio__list node;        /* in the pool's queue, or a worker's
                                       in-flight list */
    struct corio__job delivery;     /* posted to the loop with the outcome */
    corio_work_fn fn;
    uint32_t nitems;                /* 0: one apply; else a chunk */
    corio_bytes arg;
    int refs;                       /* atomic */
    corio_loop *loop;
    bool attached;                  /* under the pool's mu */
    /* the outcome, written by the pool side before it is posted */
    int err;
    int exitcode;                   /* of the worker that died running it */
    corio_bytes result;             /* one apply's; a chunk's: struct chunk_res */
    struct work_future *wf;         /* the loop's thread only */
};

/* A chunk's outcome: one entry per item. */
struct chunk_res {
    size_t n;
    struct {
        int err;
        corio_bytes b;
    } e[];
};

struct worker;
struct pollfd;

struct corio_workers {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* thread workers wait here */
    struct corio__list incoming;    /* items submitted, under mu */
    bool closing, terminating;      /* under mu */
    corio_workers_opts opts;
    size_t size;
    int done_fd;                    /* eventfd: readable once all ended */

    /* threads */
    size_t live;                    /* worker threads alive, under mu */

    /* processes: the manager thread's */
    pthread_t manager;
    bool has_manager;
    bool started;                   /* the first workers are forked; under
                                       mu, cv signals it */
    int wake_fd;                    /* eventfd: wakes the manager */
    int wake_pending;               /* atomic */
    struct worker *workers;         /* size of them */
    pid_t *pids;                    /* under mu: corio_workers_pids */
    struct pollfd *pfd;             /* the manager's poll set */
    int64_t item_ns;                /* the mean run time of an item; the
                                       manager's (starts long: one at a
                                       time until it knows) */
};

/* Under w->mu: the item has its outcome: post it to its loop if its future
 * still waits; then drop the pool side's reference (the caller must not
 * touch it after). */
void corio__item_finish(corio_workers *w, struct item *it);

/* Encode/run: a chunk's argument is items one after the other, each a
 * uint32_t length and the bytes. */
struct chunk_res *corio__chunk_run(corio_work_fn fn, uint32_t nitems,
                                   const corio_bytes *arg);
void corio__chunk_res_free(struct chunk_res *c);

/* The process side (pool_proc.c): start the manager and its workers; wake
 * it after a change of incoming, closing or terminating. */
int corio__pool_proc_start(corio_workers *w);
void corio__pool_proc_wake(corio_workers *w);
void corio__pool_proc_free(corio_workers *w);

#endif
