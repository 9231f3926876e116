/* src/task/future.c -- futures: a result that is set later, awaited by
 * tasks, with done callbacks. A task's future is embedded in the task. */
#include "task_int.h"

#include <errno.h>
#include <stdlib.h>

struct corio__done_cb {
    struct corio__job job;
    struct corio__done_cb *next;
    struct corio_future *f;
    corio_done_callback cb;
    void *arg;
};

const char *corio_state_name(enum corio_state state)
{
    switch (state) {
    case CORIO_PENDING:
        return "pending";
    case CORIO_RUNNING:
        return "running";
    case CORIO_DONE:
        return "done";
    case CORIO_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

void corio__future_init(struct corio_future *f, corio_loop *loop)
{
    f->loop = loop;
    f->state = CORIO_PENDING;
    corio__list_init(&f->waiters);
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
}

corio_future *corio_future_new(void)
{
    corio_loop *loop = corio__loop_get();
    corio_future *f;

    if (loop == NULL)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    corio__future_init(f, loop);
    return f;
}

static void future_release(corio_future *f)
{
    if (f->task != NULL) {
        corio__task_free(f->task);
        return;
    }
    if (f->on_release != NULL)
        f->on_release(f);
    free(f);
}

/* Completions from other threads still on their way to f. */
static bool remote_pending(corio_future *f)
{
    return __atomic_load_n(&f->remote, __ATOMIC_ACQUIRE) != 0;
}

static void done_cb_run(struct corio__job *job)
{
    struct corio__done_cb *c = CORIO_CONTAINER_OF(job, struct corio__done_cb, job);
    corio_future *f = c->f;

    c->cb(f, c->arg);
    free(c);
    if (--f->cbs_scheduled == 0 && f->free_pending && !remote_pending(f))
        future_release(f);
}

/* At loop close: the callback will not run. */
static void done_cb_drop(struct corio__job *job)
{
    struct corio__done_cb *c = CORIO_CONTAINER_OF(job, struct corio__done_cb, job);
    corio_future *f = c->f;

    free(c);
    if (--f->cbs_scheduled == 0 && f->free_pending && !remote_pending(f))
        future_release(f);
}

static void schedule_cb(corio_future *f, struct corio__done_cb *c)
{
    c->job.run = done_cb_run;
    c->job.drop = done_cb_drop;
    f->cbs_scheduled++;
    corio__loop_ready(f->loop, &c->job);
}

void corio__future_complete(corio_future *f, enum corio_state state,
                            void *result, int err)
{
    struct corio__list *n;
    struct corio__done_cb *c, *next;

    f->state = state;
    f->result = result;
    f->err = err;
    while ((n = corio__list_pop_front(&f->waiters)) != NULL)
        corio__wake(CORIO_CONTAINER_OF(n, struct corio__waiter, node), 0);
    for (c = f->cbs; c != NULL; c = next) {
        next = c->next;
        schedule_cb(f, c);
    }
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
}

int corio_future_free(corio_future *f)
{
    struct corio__done_cb *c, *next;

    if (f == NULL)
        return 0;
    if (f->task != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!corio__list_empty(&f->waiters)) {
        errno = EBUSY;
        return -1;
    }
    /* Pending: whoever would complete it (a pool job) lets go first. */
    if (f->state == CORIO_PENDING && f->on_free != NULL)
        f->on_free(f);
    for (c = f->cbs; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    f->cbs = NULL;
    if (f->cbs_scheduled > 0 || remote_pending(f)) {
        f->free_pending = true; /* the last callback or completion frees it */
        return 0;
    }
    future_release(f);
    return 0;
}

static int complete_checked(corio_future *f, enum corio_state state,
                            void *result, int err)
{
    if (f == NULL || f->task != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (f->state != CORIO_PENDING) {
        errno = EALREADY;
        return -1;
    }
    corio__future_complete(f, state, result, err);
    return 0;
}

int corio_future_set_result(corio_future *f, void *result)
{
    return complete_checked(f, CORIO_DONE, result, 0);
}

int corio_future_set_error(corio_future *f, int err)
{
    if (err <= 0) {
        errno = EINVAL;
        return -1;
    }
    return complete_checked(f, CORIO_DONE, NULL, err);
}

int corio_future_cancel(corio_future *f)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (f->task != NULL)
        return corio_task_cancel(f->task);
    if (f->state != CORIO_PENDING)
        return 0;
    corio__future_complete(f, CORIO_CANCELLED, NULL, ECANCELED);
    return 1;
}

/* ---- From other threads ---------------------------------------------------- */

struct remote_set {
    struct corio__job job;          /* in the loop's thread-safe queue */
    corio_future *f;
    void *result;
    int err;
};

/* A completion from another thread has been applied or dropped: a future
 * freed meanwhile goes once nothing more refers to it. */
static void remote_done(corio_future *f)
{
    if (__atomic_sub_fetch(&f->remote, 1, __ATOMIC_ACQ_REL) == 0 &&
        f->free_pending && f->cbs_scheduled == 0)
        future_release(f);
}

static void remote_apply(struct corio__job *job)
{
    struct remote_set *r = CORIO_CONTAINER_OF(job, struct remote_set, job);
    corio_future *f = r->f;

    if (f->state == CORIO_PENDING && !f->free_pending)
        corio__future_complete(f, CORIO_DONE, r->result, r->err);
    free(r);
    remote_done(f);
}

/* The loop closed before applying it. */
static void remote_drop(struct corio__job *job)
{
    struct remote_set *r = CORIO_CONTAINER_OF(job, struct remote_set, job);
    corio_future *f = r->f;

    free(r);
    remote_done(f);
}

static int set_threadsafe(corio_future *f, void *result, int err)
{
    struct remote_set *r;

    if (f == NULL || f->task != NULL) {
        errno = EINVAL;
        return -1;
    }
    r = malloc(sizeof(*r));
    if (r == NULL)
        return -1;
    r->f = f;
    r->result = result;
    r->err = err;
    r->job.run = remote_apply;
    r->job.drop = remote_drop;
    __atomic_add_fetch(&f->remote, 1, __ATOMIC_ACQ_REL);
    if (corio__loop_post_threadsafe(f->loop, &r->job) == -1) {
        int failed = errno;

        __atomic_sub_fetch(&f->remote, 1, __ATOMIC_ACQ_REL);
        free(r);
        errno = failed;
        return -1;
    }
    return 0;
}

int corio_future_set_result_threadsafe(corio_future *f, void *result)
{
    return set_threadsafe(f, result, 0);
}

int corio_future_set_error_threadsafe(corio_future *f, int err)
{
    if (err <= 0) {
        errno = EINVAL;
        return -1;
    }
    return set_threadsafe(f, NULL, err);
}

/* ---- Waiting and inspecting -------------------------------------------------- */

int corio_future_wait(corio_future *f, int64_t deadline)
{
    struct corio__waiter w;

    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (corio__checkpoint() == -1) /* cancellation sticks, done or not */
        return -1;
    if (f->state != CORIO_PENDING)
        return 0;
    if (f->loop != corio__loop_peek()) {
        errno = EINVAL; /* only f's loop can complete it: waiting would hang */
        return -1;
    }
    corio__waiter_init(&w);
    w.unlink = corio__waiter_unlink_node;
    corio__list_push_back(&f->waiters, &w.node);
    return corio__wait(&w, deadline);
}

enum corio_state corio_future_state(const corio_future *f)
{
    if (f->task != NULL)
        return corio_task_state(f->task);
    return f->state;
}

bool corio_future_is_done(const corio_future *f)
{
    return f->state != CORIO_PENDING;
}

void *corio_future_result(const corio_future *f)
{
    return f->result;
}

int corio_future_error(const corio_future *f)
{
    return f->err;
}

int corio_future_add_done_callback(corio_future *f, corio_done_callback cb,
                                   void *arg)
{
    struct corio__done_cb *c;

    if (f == NULL || cb == NULL) {
        errno = EINVAL;
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->f = f;
    c->cb = cb;
    c->arg = arg;
    if (f->state != CORIO_PENDING) {
        schedule_cb(f, c);
        return 0;
    }
    *f->cbs_tail = c;
    f->cbs_tail = &c->next;
    return 0;
}

/* For corio__task_free: true if callbacks still have to run first. */
bool corio__future_busy(corio_future *f)
{
    if (f->cbs_scheduled > 0) {
        f->free_pending = true;
        return true;
    }
    return false;
}
