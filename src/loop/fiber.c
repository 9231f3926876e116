/* src/loop/fiber.c -- fibers: what the loop schedules.
 *
 * Starting a fiber queues it; its coroutine (and stack) is made when it
 * first runs, and freed as soon as it ends, so a fiber that never runs
 * touches no stack. The loop runs a fiber by switching to the innermost
 * coroutine it parked in; the fiber parks by switching back to the loop's
 * context, or straight to the next ready fiber (next_direct). When its
 * function returns, the coroutine switches to its caller, which fiber_run
 * sets to the loop's context each time, and fiber_run sees it dead and
 * calls the owner's `ended` hook. */
#include "loop_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void fiber_run(struct corio__job *job);

void corio__fiber_start(corio_loop *loop, struct corio__fiber *f)
{
    f->loop = loop;
    f->job.run = fiber_run;
    f->job.drop = NULL;
    f->id = ++loop->fiber_seq;
    corio__list_push_back(&loop->fibers, &f->all);
    loop->nfibers++;
    f->queued = true;
    corio__loop_ready(loop, &f->job);
}

static void fiber_wake(struct corio__fiber *f)
{
    if (f->queued || f->finished)
        return;
    f->queued = true;
    corio__loop_ready(f->loop, &f->job);
}

void corio__fiber_wake_waiter(struct corio__waiter *w)
{
    fiber_wake(w->fiber);
}

/* The fiber to switch to straight from a fiber that parks, without going
 * through the loop: the next ready job, when it is a fiber that has
 * started, the current iteration's batch is done (so the order is the
 * loop's), and the loop may still skip its poll (CORIO__SPIN_MAX). NULL: go
 * to the loop. This makes a hand-off between two tasks one switch, not two. */
static struct corio__fiber *next_direct(corio_loop *loop)
{
    struct corio__job *job;
    struct corio__fiber *next;

    if (!corio__list_empty(&loop->batch) || corio__list_empty(&loop->ready) ||
        loop->spins >= CORIO__SPIN_MAX)
        return NULL;
    job = CORIO_CONTAINER_OF(loop->ready.next, struct corio__job, node);
    if (job->run != fiber_run)
        return NULL;
    next = CORIO_CONTAINER_OF(job, struct corio__fiber, job);
    if (!next->started)
        return NULL;
    corio__list_remove(&job->node);
    loop->spins++;
    return next;
}

void corio__fiber_park(corio_loop *loop, struct corio__fiber *f)
{
    struct corio__fiber *next = next_direct(loop);

    f->resume = corio_coro_self();
    if (next == NULL) {
        corio__coro_switch(loop->sched);
        return;
    }
    next->queued = false;
    loop->current = next;
    next->co->caller = loop->sched; /* where its end returns */
    corio__coro_switch(next->resume);
}

/* A scope still entered when its fiber ends points into a dead stack. */
static void check_scopes_left(struct corio__fiber *f)
{
    if (f->scope == NULL) /* (not read: it points into the dead stack) */
        return;
    fprintf(stderr,
            "corio: task '%s' (#%llu) ended with a scope still entered "
            "(entered at %s:%d): every corio_scope_enter needs its "
            "corio_scope_exit (or use CORIO_SCOPE)\n",
            f->name != NULL ? f->name : "?", (unsigned long long)f->id,
            f->scope_file != NULL ? f->scope_file : "?", f->scope_line);
    abort();
}

/* The fiber is over: free its coroutine, tell the owner. */
static void fiber_finished(struct corio__fiber *f, int err)
{
    corio_loop *loop = f->loop;

    f->finished = true;
    corio__list_remove(&f->all);
    loop->nfibers--;
    f->ended(f, err);
}

static void fiber_run(struct corio__job *job)
{
    struct corio__fiber *f = CORIO_CONTAINER_OF(job, struct corio__fiber, job);
    corio_loop *loop = f->loop;

    f->queued = false;
    if (!f->started) {
        corio_coro_attr ca = {
            .stack_size = f->stack_size,
            .stack_mode = f->stack_mode,
            .name = f->name,
        };

        if (f->cancelled) { /* cancelled before it ran: it never runs */
            fiber_finished(f, ECANCELED);
            return;
        }
        f->co = corio__coro_new(f->fn, f->arg, &ca, 0, NULL);
        if (f->co == NULL) {
            fiber_finished(f, errno);
            return;
        }
        f->started = true;
        f->resume = f->co;
    }
    loop->current = f;
    f->co->caller = loop->sched; /* where its end returns */
    corio__coro_switch(f->resume);
    /* Back in the loop: from f, or from a fiber f switched to directly
     * (corio__fiber_park), which is loop->current now. */
    f = loop->current;
    loop->current = NULL;
    if (f->co->caller == CORO_DEAD) {
        check_scopes_left(f);
        fiber_finished(f, 0);
    }
}

int corio__fiber_cancel(struct corio__fiber *f)
{
    struct corio__waiter *w;

    if (f->finished)
        return 0;
    f->cancelled = true;
    w = f->waiting;
    if (w != NULL && !w->done && corio__scope_reaches(f->scope, NULL)) {
        if (w->unlink != NULL)
            w->unlink(w);
        corio__wake(w, ECANCELED);
    }
    return 1;
}

void corio__fiber_release(struct corio__fiber *f)
{
    if (f->co != NULL) {
        f->co->caller = NULL;
        corio_coro_free(f->co);
        f->co = f->resume = NULL;
    }
}

/* ---- Closing a loop with live fibers -------------------------------------- */

static void grace_over(struct corio__timer *t)
{
    (void)t; /* it only ends the poll's sleep */
}

void corio__fibers_cancel_all(corio_loop *loop)
{
    struct corio__list *n;
    struct corio__timer grace = {.fire = grace_over};
    int64_t until = corio__after(CORIO__CLOSE_GRACE);
    corio_coro *sched = corio_coro_self();
    bool was_running = loop->running;

    loop->running = true;
    loop->sched = sched != NULL ? sched : corio__coro_main();
    /* Cancellation sticks, so a cancelled fiber ends at its next blocking
     * call; only cleanup in a shield can still wait, and the grace period
     * bounds that (its timer wakes the poll, whatever the shields wait for).
     * Fibers spawned meanwhile are cancelled as they come. */
    if (loop->nfibers > 0)
        corio__timer_arm(loop, &grace, until); /* ENOMEM: unbounded polls */
    while (loop->nfibers > 0 && corio_now() < until) {
        for (n = loop->fibers.next; n != &loop->fibers; n = n->next) {
            struct corio__fiber *f =
                CORIO_CONTAINER_OF(n, struct corio__fiber, all);

            if (!f->cancelled)
                corio__fiber_cancel(f);
        }
        corio__loop_run_once(loop, true);
    }
    corio__timer_disarm(loop, &grace);
    /* Fibers still blocked now wait for something that may never come (a
     * shield without deadline, say): abandon them. Their stacks are freed;
     * what their code owned is lost. Two passes: every waiter leaves what it
     * waits on (another fiber's future, say) before any owner may free
     * anything. */
    for (n = loop->fibers.next; n != &loop->fibers; n = n->next) {
        struct corio__fiber *f = CORIO_CONTAINER_OF(n, struct corio__fiber, all);

        if (f->waiting != NULL) {
            if (f->waiting->unlink != NULL)
                f->waiting->unlink(f->waiting);
            corio__timer_disarm(loop, &f->waiting->timer);
        }
        if (f->queued)
            corio__list_remove(&f->job.node);
        f->finished = true;
    }
    while ((n = corio__list_pop_front(&loop->fibers)) != NULL) {
        struct corio__fiber *f = CORIO_CONTAINER_OF(n, struct corio__fiber, all);

        corio__list_init(&f->all);
        loop->nfibers--;
        corio__fiber_release(f);
        f->ended(f, CORIO__FIBER_ABANDONED);
    }
    loop->running = was_running;
}
