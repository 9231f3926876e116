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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* ---- Running and parking ------------------------------------------------- */

struct corio_task *corio__task_running(corio_loop *loop)
{
    return loop->current;
}

void corio__task_set_waiting(struct corio_task *t, struct corio__waiter *w)
{
    t->waiting = w;
}

bool corio__task_take_cancel(struct corio_task *t)
{
    if (!t->cancel_pending)
        return false;
    t->cancel_pending = false;
    t->cancel_delivered = true;
    return true;
}

void corio__task_wake(struct corio_task *t)
{
    if (t->queued || t->finished)
        return;
    t->queued = true;
    corio__loop_ready(t->fut.loop, &t->job);
}

static void task_run(struct corio__job *job);

/* The task to switch to straight from a task that parks, without going
 * through the loop: the next ready job, when it is a task that has started,
 * the current iteration's batch is done (so the order is the loop's), and
 * the loop may still skip its poll (CORIO__SPIN_MAX). NULL: go to the
 * loop. This makes a hand-off between two tasks one switch, not two. */
static struct corio_task *next_direct(corio_loop *loop)
{
    struct corio__job *job;
    struct corio_task *next;

    if (!corio__list_empty(&loop->batch) || corio__list_empty(&loop->ready) ||
        loop->spins >= CORIO__SPIN_MAX)
        return NULL;
    job = CORIO_CONTAINER_OF(loop->ready.next, struct corio__job, node);
    if (job->run != task_run)
        return NULL;
    next = CORIO_CONTAINER_OF(job, struct corio_task, job);
    if (!next->started)
        return NULL;
    corio__list_remove(&job->node);
    loop->spins++;
    return next;
}

void corio__task_park(corio_loop *loop, struct corio_task *t)
{
    struct corio_task *next = next_direct(loop);

    t->resume = corio_coro_self();
    if (next == NULL) {
        corio__coro_switch(loop->sched);
        return;
    }
    next->queued = false;
    loop->current = next;
    next->co->caller = loop->sched; /* where its end returns */
    corio__coro_switch(next->resume);
}

/* The task has ended (or will never run): complete its future, free its
 * coroutine. err overrides the outcome (ENOMEM: it could not start). */
static void task_finished(corio_task *t, int err)
{
    corio_loop *loop = t->fut.loop;
    void *result = t->co != NULL ? corio_coro_result(t->co) : NULL;

    t->finished = true;
    corio__list_remove(&t->all);
    loop->ntasks--;
    if (t->co != NULL) {
        corio_coro_free(t->co);
        t->co = t->resume = NULL;
    }
    if (err != 0)
        corio__future_complete(&t->fut, CORIO_DONE, NULL, err);
    else if (t->cancel_pending || t->cancel_delivered)
        corio__future_complete(&t->fut, CORIO_CANCELLED, NULL, ECANCELED);
    else if (t->fail_err != 0)
        corio__future_complete(&t->fut, CORIO_DONE, NULL, t->fail_err);
    else
        corio__future_complete(&t->fut, CORIO_DONE, result, 0);
    if (t->detached)
        corio__task_free(t);
}

static bool task_start(corio_task *t)
{
    corio_coro_attr ca = {
        .stack_size = t->stack_size,
        .stack_mode = t->stack_mode,
        .name = t->name,
    };

    t->co = corio__coro_new(t->fn, t->arg, &ca, 0, NULL);
    if (t->co == NULL) {
        task_finished(t, errno);
        return false;
    }
    t->started = true;
    t->resume = t->co;
    return true;
}

static void task_run(struct corio__job *job)
{
    corio_task *t = CORIO_CONTAINER_OF(job, corio_task, job);
    corio_loop *loop = t->fut.loop;

    t->queued = false;
    if (!t->started) {
        if (t->cancel_pending) { /* cancelled before it ran: it never runs */
            task_finished(t, 0);
            return;
        }
        if (!task_start(t))
            return;
    }
    loop->current = t;
    t->co->caller = loop->sched; /* where its end returns */
    corio__coro_switch(t->resume);
    /* Back in the loop: from t, or from a task t switched to directly
     * (corio__task_park), which is loop->current now. */
    t = loop->current;
    loop->current = NULL;
    if (t->co->caller == CORO_DEAD)
        task_finished(t, 0);
}

void corio__task_free(struct corio_task *t)
{
    if (corio__future_busy(&t->fut))
        return; /* done callbacks first; the last one frees it */
    if (t->co != NULL) /* abandoned at loop close while blocked */
        corio_coro_free(t->co);
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
    t->job.run = task_run;
    t->fn = fn;
    t->arg = arg;
    t->stack_size = attr->stack_size;
    t->stack_mode = attr->stack_mode;
    t->id = ++loop->task_seq;
    t->file = file;
    t->line = line;
    task_name(t->name, sizeof(t->name), attr->name, t->id);
    corio__list_push_back(&loop->tasks, &t->all);
    loop->ntasks++;
    t->queued = true;
    corio__loop_ready(loop, &t->job);
    return t;
}

/* ---- Joining, cancelling ------------------------------------------------- */

corio_task *corio_task_self(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? loop->current : NULL;
}

/* Join t; *caller_cancelled tells why a failure happened. */
static int join(corio_task *t, void **result, bool *caller_cancelled)
{
    int err;

    *caller_cancelled = false;
    if (t == NULL || t == corio_task_self()) {
        errno = EINVAL;
        return -1;
    }
    if (!t->finished && corio_future_wait(&t->fut, -1) == -1) {
        if (errno == ECANCELED) {
            /* asyncio: cancelling a task that awaits another cancels it. */
            *caller_cancelled = true;
            corio_task_cancel(t);
            corio_task_detach(t);
            errno = ECANCELED;
        }
        return -1;
    }
    if (result != NULL)
        *result = t->fut.result;
    err = t->fut.err;
    corio__task_free(t);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int corio_task_join(corio_task *t, void **result)
{
    bool caller_cancelled;

    return join(t, result, &caller_cancelled);
}

int corio_task_join_all(corio_task **ts, size_t n, void **results)
{
    int first_err = 0;

    if (ts == NULL && n > 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool caller_cancelled;

        if (join(ts[i], results != NULL ? &results[i] : NULL,
                 &caller_cancelled) == 0)
            continue;
        if (caller_cancelled) {
            for (size_t j = i + 1; j < n; j++) {
                corio_task_cancel(ts[j]);
                corio_task_detach(ts[j]);
            }
            errno = ECANCELED;
            return -1;
        }
        if (first_err == 0)
            first_err = errno;
    }
    if (first_err != 0) {
        errno = first_err;
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
    if (t->finished)
        corio__task_free(t);
    return 0;
}

int corio_task_cancel(corio_task *t)
{
    struct corio__waiter *w;

    if (t == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (t->finished)
        return 0;
    t->cancel_pending = true;
    w = t->waiting;
    if (w != NULL && !w->done) {
        corio__task_take_cancel(t);
        if (w->unlink != NULL)
            w->unlink(w);
        corio__wake(w, ECANCELED);
    }
    return 1;
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
    corio_task *t = corio_task_self();

    return t != NULL && (t->cancel_pending || t->cancel_delivered);
}

enum corio_state corio_task_state(const corio_task *t)
{
    if (t->finished)
        return t->fut.state;
    return t->fut.loop->current == t ? CORIO_RUNNING : CORIO_PENDING;
}

const char *corio_task_name(const corio_task *t)
{
    return t->name;
}

bool corio_task_is_done(const corio_task *t)
{
    return t->finished;
}

void *corio_task_result(const corio_task *t)
{
    return t->finished ? t->fut.result : NULL;
}

int corio_task_error(const corio_task *t)
{
    return t->finished ? t->fut.err : 0;
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
    for (n = loop->tasks.next; n != &loop->tasks; n = n->next) {
        corio_task *t = CORIO_CONTAINER_OF(n, corio_task, all);

        fprintf(out, "task #%llu %s %s%s (spawned at %s:%d)\n",
                (unsigned long long)t->id, t->name,
                corio_state_name(corio_task_state(t)),
                t->cancel_pending || t->cancel_delivered ? ", cancelling" : "",
                t->file ? basename_of(t->file) : "?", t->line);
        count++;
    }
    return count;
}

size_t corio_task_count(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? loop->ntasks : 0;
}

/* ---- Deadline scopes ------------------------------------------------------
 * The scope stack lives in the task, or in the thread for its own stack. */

static __thread struct corio_scope *thread_scope;

static struct corio_scope **scope_head(void)
{
    corio_loop *loop = corio__loop_peek();
    corio_task *t = loop != NULL ? loop->current : NULL;

    return t != NULL ? &t->scope : &thread_scope;
}

void corio_scope_enter(corio_scope *s, int64_t deadline)
{
    struct corio_scope **head = scope_head();

    s->deadline = deadline;
    s->expired = false;
    s->outer = *head;
    *head = s;
}

bool corio_scope_exit(corio_scope *s)
{
    struct corio_scope **head = scope_head();

    if (*head == s)
        *head = s->outer;
    return s->expired;
}

/* The deadline a blocking call with its own deadline really has: the
 * earliest of it and the enclosing scopes'. *by receives the scope whose
 * deadline it is (NULL: the call's own). */
int64_t corio__deadline(int64_t deadline, struct corio_scope **by)
{
    return corio__deadline_in(corio__loop_peek(), deadline, by);
}

int64_t corio__deadline_in(corio_loop *loop, int64_t deadline,
                           struct corio_scope **by)
{
    corio_task *t = loop != NULL ? loop->current : NULL;
    struct corio_scope *s = t != NULL ? t->scope : thread_scope;

    *by = NULL;
    for (; s != NULL; s = s->outer) {
        if (s->deadline >= 0 && (deadline < 0 || s->deadline < deadline)) {
            deadline = s->deadline;
            *by = s;
        }
    }
    return deadline;
}

void corio__scope_expired(struct corio_scope *scope)
{
    scope->expired = true;
}

/* ---- Sleeping ------------------------------------------------------------- */

struct wake_job {
    struct corio__job job;
    struct corio__waiter *w;
};

static void wake_job_run(struct corio__job *job)
{
    corio__wake(CORIO_CONTAINER_OF(job, struct wake_job, job)->w, 0);
}

int corio_sleep_until(int64_t deadline)
{
    struct corio__waiter w;

    corio__waiter_init(&w);
    w.always_park = true; /* a sleep always lets the others run */
    if (deadline < 0)
        deadline = 0;
    if (corio__wait(&w, deadline) == 0)
        return 0;
    /* Its own deadline is success; a scope's earlier one is a timeout. */
    if (errno == ETIMEDOUT && corio_now() >= deadline)
        return 0;
    return -1;
}

int corio_sleep(int64_t ns)
{
    struct corio__waiter w;
    struct wake_job j;
    corio_loop *loop;

    if (ns > 0)
        return corio_sleep_until(corio__after(ns));
    /* sleep(0): let every other ready task run first, then continue. */
    loop = corio__loop_get();
    if (loop == NULL)
        return -1;
    corio__waiter_init(&w);
    j.job.run = wake_job_run;
    j.job.drop = NULL;
    j.w = &w;
    corio__loop_ready(loop, &j.job);
    if (corio__wait(&w, -1) == -1) {
        if (corio__list_linked(&j.job.node)) /* the job has not run */
            corio__list_remove(&j.job.node);
        return -1;
    }
    return 0;
}

/* ---- Closing a loop with live tasks ------------------------------------------- */

void corio__tasks_cancel_all(corio_loop *loop)
{
    struct corio__list *n;
    corio_coro *sched = corio_coro_self();
    bool was_running = loop->running;

    loop->running = true;
    loop->sched = sched != NULL ? sched : corio__coro_main();
    for (int round = 0; round < 8 && loop->ntasks > 0; round++) {
        for (n = loop->tasks.next; n != &loop->tasks; n = n->next)
            corio_task_cancel(CORIO_CONTAINER_OF(n, corio_task, all));
        for (int i = 0; i < 1000 && loop->ntasks > 0 && corio__loop_busy(loop); i++)
            corio__loop_run_once(loop, true);
    }
    loop->running = was_running;
    /* Tasks still blocked now wait for something nothing will do: abandon
     * them, cancelled. Their stacks are freed when they are joined or
     * detached; what their code owned is lost. */
    while ((n = corio__list_pop_front(&loop->tasks)) != NULL) {
        corio_task *t = CORIO_CONTAINER_OF(n, corio_task, all);

        corio__list_init(&t->all);
        if (t->waiting != NULL) {
            if (t->waiting->unlink != NULL)
                t->waiting->unlink(t->waiting);
            corio__timer_disarm(loop, &t->waiting->timer);
        }
        if (t->queued)
            corio__list_remove(&t->job.node);
        t->finished = true;
        loop->ntasks--;
        t->fut.state = CORIO_CANCELLED;
        t->fut.err = ECANCELED;
        /* Its coroutine is suspended mid-call: freeing is all that is left. */
        if (t->co != NULL) {
            t->co->caller = NULL;
            corio_coro_free(t->co);
            t->co = t->resume = NULL;
        }
        if (t->detached)
            corio__task_free(t);
    }
}
