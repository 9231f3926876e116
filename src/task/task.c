/* src/task/task.c -- tasks: coroutines run by the loop, with a future for
 * their result, cancellation, joining, sleeping, deadline scopes.
 *
 * Spawning allocates the task and queues it; the coroutine is made when the
 * task first runs, and freed (its stack back to the pool) as soon as it
 * ends. The loop runs a task by switching to the innermost coroutine it
 * parked in; the task parks by switching back to the loop's context. When
 * its function returns, the coroutine switches to its caller, which task_run
 * sets to the loop's context each time, and task_run sees it dead. */
#include "task_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Ending ---------------------------------------------------------------- */

/* The fiber's `ended` hook: complete the future with the outcome. */
static void task_ended(struct corio__fiber *f, int err)
{
    corio_task *t = CORIO_CONTAINER_OF(f, corio_task, fiber);
    void *result = f->co != NULL ? corio_coro_result(f->co) : NULL;

    if (f->co != NULL) {
        corio_coro_free(f->co);
        f->co = f->resume = NULL;
    }
    if (err == CORIO__FIBER_ABANDONED) {
        /* The loop is closing: no callback may be scheduled any more. */
        t->fut.state = CORIO_CANCELLED;
        t->fut.err = ECANCELED;
    } else if (err != 0 && err != ECANCELED) {
        corio__future_complete(&t->fut, CORIO_DONE, NULL, err);
    } else if (err == ECANCELED || f->cancelled) {
        corio__future_complete(&t->fut, CORIO_CANCELLED, NULL, ECANCELED);
    } else if (t->fail_err != 0) {
        corio__future_complete(&t->fut, CORIO_DONE, NULL, t->fail_err);
    } else {
        corio__future_complete(&t->fut, CORIO_DONE, result, 0);
    }
    if (t->detached && t->group_child == NULL)
        corio__task_free(t);
}

void corio__task_free(struct corio_task *t)
{
    if (corio__future_busy(&t->fut))
        return; /* done callbacks first; the last one frees it */
    corio__fiber_release(&t->fiber);
    free(t);
}

/* ---- Spawning ------------------------------------------------------------ */

/* name, truncated, or "Task-<id>" (asyncio's default names): without
 * snprintf, which would be the most expensive part of a spawn. */
static void task_name(char *buf, size_t size, const char *name, uint64_t id)
{
    static const char prefix[] = "Task-";
    char digits[20];
    size_t n = 0, len;

    if (name != NULL) {
        len = strnlen(name, size - 1);
        memcpy(buf, name, len);
        buf[len] = 0;
        return;
    }
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id != 0);
    memcpy(buf, prefix, sizeof(prefix) - 1);
    len = sizeof(prefix) - 1;
    while (n > 0 && len < size - 1)
        buf[len++] = digits[--n];
    buf[len] = 0;
}

corio_task *corio_task_spawn_at(corio_fn fn, void *arg, const corio_task_attr *attr,
                           const char *file, int line)
{
    static const corio_task_attr defaults;
    corio_loop *loop;
    corio_task *t;

    if (attr == NULL)
        attr = &defaults;
    loop = attr->loop != NULL ? attr->loop : corio__loop_get();
    if (loop == NULL)
        return NULL;
    /* What corio_coro_new would refuse, refused now rather than at start. */
    if (fn == NULL || (attr->stack_size != 0 && attr->stack_size < CORIO_STACK_MIN) ||
        (attr->stack_mode != CORIO_STACK_GUARDED &&
         attr->stack_mode != CORIO_STACK_COMPACT)) {
        errno = EINVAL;
        return NULL;
    }
    t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0, offsetof(corio_task, name));
    corio__future_init(&t->fut, loop);
    t->fut.task = t;
    t->fiber.fn = fn;
    t->fiber.arg = arg;
    t->fiber.stack_size = attr->stack_size;
    t->fiber.stack_mode = attr->stack_mode;
    t->fiber.name = t->name;
    t->fiber.ended = task_ended;
    t->file = file;
    t->line = line;
    corio__fiber_start(loop, &t->fiber);
    task_name(t->name, sizeof(t->name), attr->name, t->fiber.id);
    return t;
}

/* ---- Joining, cancelling ------------------------------------------------- */

corio_task *corio_task_self(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? corio__task_running(loop) : NULL;
}

/* Wait until t has finished, whatever happens to the caller: a shield. */
static void wait_finished(corio_task *t)
{
    CORIO_SHIELD(-1);

    while (!t->fiber.finished && corio_future_wait(&t->fut, -1) == 0)
        ;
}

/* Take t's outcome and free it. Returns 0 or -1 with t's error. */
static int reap(corio_task *t, void **result)
{
    int err = t->fut.err;

    if (result != NULL)
        *result = t->fut.result;
    corio__task_free(t);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static bool joinable(const corio_task *t)
{
    if (t == NULL || t == corio_task_self() || t->detached ||
        t->group_child != NULL) {
        errno = EINVAL;
        return false;
    }
    return true;
}

int corio_task_join(corio_task *t, void **result)
{
    int err;

    if (!joinable(t))
        return -1;
    if (t->fiber.finished || corio_future_wait(&t->fut, -1) == 0)
        return reap(t, result);
    err = errno;
    if (err != ECANCELED && err != ETIMEDOUT)
        return -1; /* EINVAL, EDEADLK: t is left as it was */
    /* The caller was cancelled or its scope expired: t goes too (asyncio:
     * cancelling a task that awaits another cancels it), and is joined. */
    corio_task_cancel(t);
    wait_finished(t);
    reap(t, NULL);
    errno = err;
    return -1;
}

int corio_task_join_all(corio_task **ts, size_t n, void **results)
{
    int first_err = 0, caller_err = 0;

    if (ts == NULL && n > 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!joinable(ts[i]) || ts[i]->joining) {
            errno = EINVAL; /* a task given twice would be freed twice */
            for (size_t j = 0; j < i; j++)
                ts[j]->joining = false;
            return -1;
        }
        ts[i]->joining = true;
    }
    for (size_t i = 0; i < n; i++)
        ts[i]->joining = false;
    /* Wait for them all before freeing any, so that a failure that
     * leaves them to the caller (EDEADLK, EINVAL) leaves them all. */
    for (size_t i = 0; i < n && caller_err == 0; i++) {
        corio_task *t = ts[i];

        if (t->fiber.finished)
            continue;
        if (t->fut.loop != corio__loop_peek()) {
            errno = EINVAL; /* its loop is another thread's */
            return -1;
        }
        if (corio_task_wait(t, -1) == -1) {
            caller_err = errno;
            if (caller_err != ECANCELED && caller_err != ETIMEDOUT)
                return -1; /* EDEADLK: nothing was done */
            for (size_t j = i; j < n; j++)
                corio_task_cancel(ts[j]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (caller_err != 0)
            wait_finished(ts[i]);
        if (reap(ts[i], results != NULL ? &results[i] : NULL) == -1 &&
            first_err == 0)
            first_err = errno;
    }
    if (caller_err != 0 || first_err != 0) {
        errno = caller_err != 0 ? caller_err : first_err;
        return -1;
    }
    return 0;
}

int corio_task_wait(corio_task *t, int64_t deadline)
{
    if (t == NULL || t == corio_task_self()) {
        errno = EINVAL;
        return -1;
    }
    return corio_future_wait(&t->fut, deadline);
}

int corio_task_detach(corio_task *t)
{
    if (t == NULL || t->detached) {
        errno = EINVAL;
        return -1;
    }
    t->detached = true;
    if (t->group_child != NULL)
        t->group_detach(t);
    else if (t->fiber.finished)
        corio__task_free(t);
    return 0;
}

int corio_task_cancel(corio_task *t)
{
    if (t == NULL) {
        errno = EINVAL;
        return -1;
    }
    return corio__fiber_cancel(&t->fiber);
}

void *corio_task_fail(int err)
{
    corio_task *t = corio_task_self();

    if (t != NULL)
        t->fail_err = err > 0 ? err : EINVAL;
    return NULL;
}

bool corio_task_self_cancelled(void)
{
    return corio__scope_would_fail();
}

enum corio_state corio_task_state(const corio_task *t)
{
    if (t->fiber.finished)
        return t->fut.state;
    return t->fut.loop->current == &t->fiber ? CORIO_RUNNING : CORIO_PENDING;
}

const char *corio_task_name(const corio_task *t)
{
    return t->name;
}

bool corio_task_is_done(const corio_task *t)
{
    return t->fiber.finished;
}

void *corio_task_result(const corio_task *t)
{
    return t->fiber.finished ? t->fut.result : NULL;
}

int corio_task_error(const corio_task *t)
{
    return t->fiber.finished ? t->fut.err : 0;
}

corio_future *corio_task_future(corio_task *t)
{
    return &t->fut;
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

int corio_task_dump_all(FILE *out)
{
    corio_loop *loop = corio__loop_peek();
    struct corio__list *n;
    int count = 0;

    if (loop == NULL)
        return 0;
    for (n = loop->fibers.next; n != &loop->fibers; n = n->next) {
        corio_task *t = CORIO_CONTAINER_OF(n, corio_task, fiber.all);

        fprintf(out, "task #%llu %s %s%s (spawned at %s:%d)\n",
                (unsigned long long)t->fiber.id, t->name,
                corio_state_name(corio_task_state(t)),
                t->fiber.cancelled ? ", cancelling" : "",
                t->file ? basename_of(t->file) : "?", t->line);
        count++;
    }
    return count;
}

size_t corio_task_count(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? loop->nfibers : 0;
}
