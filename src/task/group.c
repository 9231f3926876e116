/* src/task/group.c -- task groups: structured concurrency (Trio's nursery,
 * asyncio's TaskGroup).
 *
 * The group owns its children and watches each with a done callback
 * (child_done). The callback runs on the loop at the iteration after the
 * child ended: it notes a failure, cancels the siblings if it is the first
 * cause, and wakes the waiters of corio_group_wait once no child is left.
 * A child counts as live until its callback has run, so the group is never
 * freed under a pending callback. An ended child is kept, for its result,
 * until corio_group_free, unless its owner detached it (a server's
 * connections), in which case it is freed as soon as it has ended.
 *
 * The group's deadline is a loop timer embedded in the group. This file
 * does not wait on futures in general: that is combine.c. */
#include "task_int.h"
#include "corio/group.h"

#include <errno.h>
#include <stdlib.h>

struct corio_group {
    corio_loop *loop;
    struct corio__list children;   /* struct child.node, not yet seen ending */
    size_t live;                   /* length of children */
    struct corio__list ended;      /* children ended and kept */
    struct corio__list waiters;    /* tasks in corio_group_wait */
    struct corio__timer timer;     /* the deadline, armed if there is one */
    int err;                       /* the first cause: a child's error,
                                      ETIMEDOUT or ECANCELED; 0: none */
    bool cancelled;                /* the children were cancelled */
    bool closed;                   /* corio_group_wait returned */
};

/* A child, the argument of its done callback. */
struct child {
    struct corio__list node;       /* in the group's children, or ended */
    corio_task *task;
    corio_group *g;
    bool ended;
};

static void child_release(struct child *c)
{
    corio_task *t = c->task;

    corio__list_remove(&c->node);
    t->group_child = NULL;
    corio__task_free(t);
    free(c);
}

/* Record the first cause and cancel every child, once. */
static void group_fail(corio_group *g, int err)
{
    struct corio__list *n;

    if (g->err == 0)
        g->err = err;
    if (g->cancelled)
        return;
    g->cancelled = true;
    corio__timer_disarm(g->loop, &g->timer);
    for (n = g->children.next; n != &g->children; n = n->next)
        corio_task_cancel(CORIO_CONTAINER_OF(n, struct child, node)->task);
}

static void group_timeout(struct corio__timer *t)
{
    group_fail(CORIO_CONTAINER_OF(t, corio_group, timer), ETIMEDOUT);
}

/* A child has ended: its future's callbacks run now. */
static void child_done(corio_future *f, void *arg)
{
    struct child *c = arg;
    corio_group *g = c->g;
    corio_task *t = c->task;
    struct corio__list *n;

    g->live--;
    if (t->started_fut != NULL) {
        /* corio_group_start still waits: the child never said it started */
        int err = corio_future_error(f);

        corio_future_set_error(t->started_fut,
                               err != 0 && err != ECANCELED ? err : ECHILD);
        t->started_fut = NULL;
    }
    if (t->detached) {
        child_release(c); /* freed once this callback has returned */
    } else {
        c->ended = true;
        corio__list_remove(&c->node);
        corio__list_push_back(&g->ended, &c->node);
    }
    if (corio_future_state(f) == CORIO_DONE && corio_future_error(f) != 0)
        group_fail(g, corio_future_error(f));
    if (g->live > 0)
        return;
    while ((n = corio__list_pop_front(&g->waiters)) != NULL)
        corio__wake(CORIO_CONTAINER_OF(n, struct corio__waiter, node), 0);
}

corio_group *corio_group_new(int64_t deadline)
{
    corio_loop *loop = corio__loop_get();
    corio_group *g;

    if (loop == NULL)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->loop = loop;
    corio__list_init(&g->children);
    corio__list_init(&g->ended);
    corio__list_init(&g->waiters);
    g->timer.fire = group_timeout;
    if (deadline >= 0 && corio__timer_arm(loop, &g->timer, deadline) == -1) {
        free(g);
        return NULL;
    }
    return g;
}

/* corio_task_detach on a child: the group frees it once it has seen it
 * end. */
static void child_detach(corio_task *t)
{
    struct child *c = t->group_child;

    if (c->ended)
        child_release(c);
    /* else child_done frees it */
}

corio_task *corio_group_spawn_at(corio_group *g, corio_fn fn, void *arg,
                                 const corio_task_attr *attr,
                                 const char *file, int line)
{
    corio_task_attr a = {0};
    struct child *c;
    corio_task *t;

    if (g == NULL || fn == NULL || (attr != NULL && attr->loop != NULL &&
                                    attr->loop != g->loop)) {
        errno = EINVAL;
        return NULL;
    }
    if (g->closed || g->cancelled) {
        errno = g->closed ? CORIO_ECLOSED : ECANCELED;
        return NULL;
    }
    if (attr != NULL)
        a = *attr;
    a.loop = g->loop;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    t = corio_task_spawn_at(fn, arg, &a, file, line);
    if (t == NULL)
        goto out_free_child;
    if (corio_future_add_done_callback(corio_task_future(t), child_done, c) == -1)
        goto out_drop_task;
    c->task = t;
    c->g = g;
    t->group_child = c;
    t->group_detach = child_detach;
    corio__list_push_back(&g->children, &c->node);
    g->live++;
    return t;

out_drop_task:
    corio_task_cancel(t); /* it has not started: it never runs */
    corio_task_detach(t);
    errno = ENOMEM;
out_free_child:
    free(c);
    return NULL;
}

corio_task *corio_group_start_at(corio_group *g, corio_fn fn, void *arg,
                                 const corio_task_attr *attr, void **value,
                                 int64_t deadline, const char *file, int line)
{
    corio_future *ready = corio_future_new();
    corio_task *t;
    int err;

    if (ready == NULL)
        return NULL;
    t = corio_group_spawn_at(g, fn, arg, attr, file, line);
    if (t == NULL) {
        corio_future_free(ready);
        return NULL;
    }
    t->started_fut = ready;
    if (corio_future_wait(ready, deadline) == 0) {
        err = corio_future_error(ready);
        if (value != NULL)
            *value = corio_future_result(ready);
    } else {
        /* The caller gave up: so does the child (the group reaps it). */
        err = errno;
        t->started_fut = NULL;
        corio_task_cancel(t);
    }
    corio_future_free(ready);
    if (err != 0) {
        errno = err;
        return NULL;
    }
    return t;
}

int corio_task_started(void *value)
{
    corio_task *t = corio_task_self();

    if (t == NULL || t->started_fut == NULL) {
        errno = EINVAL;
        return -1;
    }
    corio_future_set_result(t->started_fut, value);
    t->started_fut = NULL;
    return 0;
}

/* Wait until the group's children are all seen ending. Returns 0, or -1 with
 * errno (the caller cancelled, a scope expired, EDEADLK). */
static int wait_children(corio_group *g)
{
    struct corio__waiter w;

    while (g->live > 0) {
        corio__waiter_init(&w);
        w.unlink = corio__waiter_unlink_node;
        corio__list_push_back(&g->waiters, &w.node);
        if (corio__wait(&w, -1) == -1)
            return -1;
    }
    return 0;
}

int corio_group_wait(corio_group *g)
{
    if (g == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (wait_children(g) == -1) {
        int err = errno;

        if (err != ECANCELED && err != ETIMEDOUT)
            return -1; /* EDEADLK, at the first wait: nothing was cancelled */
        /* The caller was cancelled, or a scope's deadline passed: the
         * children go too, and are still waited for, in a shield. */
        group_fail(g, err);
        CORIO_SHIELD(-1);
        wait_children(g);
    }
    g->closed = true;
    corio__timer_disarm(g->loop, &g->timer);
    if (g->err != 0) {
        errno = g->err;
        return -1;
    }
    return 0;
}

int corio_group_cancel(corio_group *g)
{
    if (g == NULL) {
        errno = EINVAL;
        return -1;
    }
    group_fail(g, ECANCELED);
    return 0;
}

size_t corio_group_count(const corio_group *g)
{
    return g != NULL ? g->live : 0;
}

int corio_group_free(corio_group *g)
{
    if (g == NULL)
        return 0;
    if (g->live > 0 || !corio__list_empty(&g->waiters)) {
        errno = EBUSY;
        return -1;
    }
    corio__timer_disarm(g->loop, &g->timer);
    while (!corio__list_empty(&g->ended))
        child_release(CORIO_CONTAINER_OF(g->ended.next, struct child, node));
    free(g);
    return 0;
}
