/* src/task/group.c -- task groups: structured concurrency (Trio's nursery,
 * asyncio's TaskGroup).
 *
 * A group spawns its children detached, so each frees itself when it ends,
 * and watches each with a done callback (child_done). The callback runs on
 * the loop at the iteration after the child ended: it notes a failure,
 * cancels the siblings if it is the first cause, and wakes the waiters of
 * corio_group_wait once no child is left. A child counts as live until its
 * callback has run, so the group is never freed under a pending callback.
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
    struct corio__list waiters;    /* tasks in corio_group_wait */
    struct corio__timer timer;     /* the deadline, armed if there is one */
    int err;                       /* the first cause: a child's error,
                                      ETIMEDOUT or ECANCELED; 0: none */
    bool cancelled;                /* the children were cancelled */
    bool closed;                   /* corio_group_wait returned */
};

/* A child, the argument of its done callback. */
struct child {
    struct corio__list node;       /* in the group's children */
    corio_task *task;              /* valid while node is linked */
    corio_group *g;
};

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

/* A child has ended; the task frees itself when this returns. */
static void child_done(corio_future *f, void *arg)
{
    struct child *c = arg;
    corio_group *g = c->g;
    struct corio__list *n;

    corio__list_remove(&c->node);
    free(c);
    g->live--;
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
    corio__list_init(&g->waiters);
    g->timer.fire = group_timeout;
    if (deadline >= 0 && corio__timer_arm(loop, &g->timer, deadline) == -1) {
        free(g);
        return NULL;
    }
    return g;
}

int corio_group_spawn_at(corio_group *g, corio_fn fn, void *arg,
                         const corio_task_attr *attr, const char *file,
                         int line)
{
    corio_task_attr a = {0};
    struct child *c;
    corio_task *t;

    if (g == NULL || fn == NULL || (attr != NULL && attr->loop != NULL &&
                                    attr->loop != g->loop)) {
        errno = EINVAL;
        return -1;
    }
    if (g->closed || g->cancelled) {
        errno = g->closed ? EPIPE : ECANCELED;
        return -1;
    }
    if (attr != NULL)
        a = *attr;
    a.loop = g->loop;
    c = malloc(sizeof(*c));
    if (c == NULL)
        return -1;
    t = corio_task_spawn_at(fn, arg, &a, file, line);
    if (t == NULL)
        goto out_free_child;
    if (corio_future_add_done_callback(corio_task_future(t), child_done, c) == -1)
        goto out_drop_task;
    corio_task_detach(t);
    c->task = t;
    c->g = g;
    corio__list_push_back(&g->children, &c->node);
    g->live++;
    return 0;

out_drop_task:
    corio_task_cancel(t); /* it has not started: it never runs */
    corio_task_detach(t);
    errno = ENOMEM;
out_free_child:
    free(c);
    return -1;
}

static void waiter_unlink(struct corio__waiter *w)
{
    corio__list_remove(&w->node);
}

/* Hide the enclosing deadline scopes (see combine.c's shield): once the
 * children are cancelled, waiting for them must not time out. */
static void unscoped_enter(corio_scope *s, struct corio_scope **outer)
{
    corio_scope_enter(s, -1);
    *outer = s->outer;
    s->outer = NULL;
}

static void unscoped_exit(corio_scope *s, struct corio_scope *outer)
{
    s->outer = outer;
    corio_scope_exit(s);
}

int corio_group_wait(corio_group *g)
{
    struct corio__waiter w;
    struct corio_scope *outer = NULL;
    corio_scope scope;
    bool unscoped = false;
    int err;

    if (g == NULL) {
        errno = EINVAL;
        return -1;
    }
    while (g->live > 0) {
        corio__waiter_init(&w);
        w.unlink = waiter_unlink;
        corio__list_push_back(&g->waiters, &w.node);
        if (corio__wait(&w, -1) == 0)
            continue;
        err = errno;
        if (err != ECANCELED && err != ETIMEDOUT) {
            /* EDEADLK, at the first wait: nothing was cancelled. */
            if (unscoped)
                unscoped_exit(&scope, outer);
            errno = err;
            return -1;
        }
        /* The caller was cancelled, or a scope's deadline passed: the
         * children go too, and are still waited for. */
        group_fail(g, err);
        if (!unscoped) {
            unscoped_enter(&scope, &outer);
            unscoped = true;
        }
    }
    if (unscoped)
        unscoped_exit(&scope, outer);
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
    free(g);
    return 0;
}
