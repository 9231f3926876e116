/* src/task/combine.c -- waiting on many futures at once: gather, wait,
 * as_completed, and the single-future wait_for and shield_wait.
 *
 * All of them rest on a watch set (struct wset): one proxy waiter per
 * future, linked into that future's wait list, so the set learns of every
 * completion and keeps the order they happened in. The caller parks on one
 * more waiter of its own until the set has news, which works the same in a
 * task and on the thread's own stack (corio__wait runs the loop there).
 *
 * A proxy is woken through its notify hook, which records the completion
 * (so the order is exact, even within one loop iteration) and wakes the
 * caller, if it is parked.
 *
 * This file does not own what it waits on: it cancels futures where asyncio
 * does (gather, wait_for) and never frees them. */
#include "task_int.h"
#include "corio/group.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* One watched future. */
struct watch {
    struct corio__waiter w; /* in the future's wait list while it is pending */
    bool recorded;          /* its index is in the set's order[] */
};

/* A set of watched futures, and the order in which they completed. */
struct wset {
    corio_loop *loop;
    size_t n;
    corio_future **fs;             /* a copy of the caller's array */
    struct watch *watches;         /* n, parallel to fs */
    size_t *order;                 /* indices, in completion order */
    size_t norder;                 /* how many of order[] are set */
    struct corio__waiter *waiter;  /* the caller parked in wset_wait, or NULL */
};

/* -1 with EDEADLK in a loop callback, where nothing may block. */
static int check_can_block(corio_loop *loop)
{
    if (loop->running && corio__task_running(loop) == NULL) {
        errno = EDEADLK;
        return -1;
    }
    return 0;
}

/* ---- The watch set ------------------------------------------------------------ */

static void wset_record(struct wset *s, size_t i)
{
    s->watches[i].recorded = true;
    s->order[s->norder++] = i;
}

/* Record, in argument order, the futures that completed since the last
 * sweep. A future is checked only while it is not recorded: one returned to
 * the caller may have been freed since. */
static void wset_sweep(struct wset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct watch *wt = &s->watches[i];

        if (wt->recorded)
            continue;
        if (!wt->w.done && s->fs[i]->state == CORIO_PENDING)
            continue;
        if (corio__list_linked(&wt->w.node)) /* done without a wake-up */
            corio__list_remove(&wt->w.node);
        wset_record(s, i);
    }
}

/* A proxy's notify hook: its future completed. */
static void proxy_notify(struct corio__waiter *w)
{
    struct wset *s = w->data;
    struct watch *wt = CORIO_CONTAINER_OF(w, struct watch, w);

    if (!wt->recorded)
        wset_record(s, (size_t)(wt - s->watches));
    if (s->waiter != NULL)
        corio__wake(s->waiter, 0);
}

static void caller_unlink(struct corio__waiter *w)
{
    struct wset *s = w->data;

    if (s->waiter == w)
        s->waiter = NULL;
}

/* Check fs[0..n) and start watching it. Returns 0, or -1 with EINVAL,
 * ENOMEM (and nothing to undo). */
static int wset_init(struct wset *s, corio_future *const *fs, size_t n)
{
    corio_loop *loop = corio__loop_get();
    corio_task *self;
    char *block;

    if (loop == NULL)
        return -1;
    self = corio__task_running(loop);
    if (n > 0 && fs == NULL)
        goto out_inval;
    for (size_t i = 0; i < n; i++)
        if (fs[i] == NULL || fs[i]->loop != loop ||
            (self != NULL && fs[i]->task == self))
            goto out_inval;
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->n = n;
    if (n == 0)
        return 0;
    block = calloc(n, sizeof(struct watch) + sizeof(size_t) + sizeof(void *));
    if (block == NULL)
        return -1;
    s->watches = (struct watch *)(void *)block;
    s->order = (size_t *)(void *)(block + n * sizeof(struct watch));
    s->fs = (corio_future **)(void *)(block + n * (sizeof(struct watch) +
                                                   sizeof(size_t)));
    for (size_t i = 0; i < n; i++) {
        struct watch *wt = &s->watches[i];

        s->fs[i] = fs[i];
        corio__waiter_init(&wt->w);
        if (fs[i]->state != CORIO_PENDING) {
            wset_record(s, i);
            continue;
        }
        wt->w.notify = proxy_notify;
        wt->w.data = s;
        corio__list_push_back(&fs[i]->waiters, &wt->w.node);
    }
    return 0;

out_inval:
    errno = EINVAL;
    return -1;
}

/* Stop watching: unlink the proxies of pending futures, free. Keeps errno. */
static void wset_fini(struct wset *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (corio__list_linked(&s->watches[i].w.node))
            corio__list_remove(&s->watches[i].w.node);
    free(s->watches);
}

/* Wait until more than `have` futures have completed. Returns 0, or -1 with
 * errno ETIMEDOUT, ECANCELED, EDEADLK. */
static int wset_wait(struct wset *s, size_t have, int64_t deadline)
{
    struct corio__waiter w;
    int rc;

    wset_sweep(s);
    while (s->norder <= have) {
        corio__waiter_init(&w);
        w.unlink = caller_unlink;
        w.data = s;
        s->waiter = &w;
        rc = corio__wait(&w, deadline);
        s->waiter = NULL;
        wset_sweep(s);
        if (rc == -1)
            return -1;
    }
    return 0;
}

/* Cancel every future not yet done. */
static void wset_cancel_rest(struct wset *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->watches[i].recorded && s->fs[i]->state == CORIO_PENDING)
            corio_future_cancel(s->fs[i]);
}

/* True if the caller is cancelled (cancellation sticks: it is still). */
static bool caller_cancelled(void)
{
    return corio__checkpoint() == -1 && errno == ECANCELED;
}

/* Wait, in a shield, past deadlines and the caller's cancellation, until
 * every future has completed. Returns true if the caller is cancelled: it
 * must report ECANCELED. */
static bool wset_drain(struct wset *s)
{
    {
        CORIO_SHIELD(-1);

        while (s->norder < s->n && wset_wait(s, s->norder, -1) == 0)
            ; /* only EDEADLK could fail it: callers checked check_can_block */
    }
    return caller_cancelled();
}

/* ---- gather ------------------------------------------------------------------ */

static void gather_fill(const struct wset *s, void **results, int *errs)
{
    for (size_t i = 0; i < s->n; i++) {
        const corio_future *f = s->fs[i];
        bool done = s->watches[i].recorded;

        if (results != NULL)
            results[i] = done && f->err == 0 ? f->result : NULL;
        if (errs != NULL)
            errs[i] = done ? f->err : EINPROGRESS;
    }
}

int corio_futures_gather(corio_future *const *fs, size_t n,
                         enum corio_gather_mode mode, void **results,
                         int *errs, int64_t deadline)
{
    struct wset s;
    size_t seen = 0;
    int err = 0;

    if (mode != CORIO_GATHER_FAIL_FAST && mode != CORIO_GATHER_RETURN_ERRORS) {
        errno = EINVAL;
        return -1;
    }
    if (wset_init(&s, fs, n) == -1)
        return -1;
    if (s.norder < n && check_can_block(s.loop) == -1) {
        wset_fini(&s);
        return -1;
    }
    for (;;) {
        for (; seen < s.norder && err == 0; seen++)
            if (mode == CORIO_GATHER_FAIL_FAST)
                err = s.fs[s.order[seen]]->err;
        if (err != 0 || s.norder == n)
            break;
        if (wset_wait(&s, s.norder, deadline) == -1) {
            err = errno; /* ETIMEDOUT, ECANCELED */
            break;
        }
    }
    if (s.norder < n) {
        wset_cancel_rest(&s);
        if (wset_drain(&s))
            err = ECANCELED; /* the caller's cancellation is not lost */
    }
    gather_fill(&s, results, errs);
    wset_fini(&s);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- wait ---------------------------------------------------------------------- */

/* True when the mode's condition holds; *failed tracks FIRST_EXCEPTION
 * over order[*seen..). */
static bool wait_satisfied(const struct wset *s, enum corio_wait_mode mode,
                           size_t *seen, bool *failed)
{
    for (; *seen < s->norder; (*seen)++) {
        const corio_future *f = s->fs[s->order[*seen]];

        if (f->state == CORIO_DONE && f->err != 0)
            *failed = true;
    }
    switch (mode) {
    case CORIO_FIRST_COMPLETED:
        return s->norder > 0;
    case CORIO_FIRST_EXCEPTION:
        return *failed || s->norder == s->n;
    case CORIO_ALL_COMPLETED:
        break;
    }
    return s->norder == s->n;
}

static void wait_fill(const struct wset *s, size_t *done, size_t *pending)
{
    size_t np = 0;

    if (done != NULL)
        memcpy(done, s->order, s->norder * sizeof(*done));
    if (pending == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (!s->watches[i].recorded)
            pending[np++] = i;
}

int corio_futures_wait(corio_future *const *fs, size_t n,
                       enum corio_wait_mode mode, size_t *done, size_t *pending,
                       int64_t deadline)
{
    struct wset s;
    size_t seen = 0;
    bool failed = false;
    int err = 0, ndone;

    if (n == 0 || n > INT_MAX ||
        (mode != CORIO_ALL_COMPLETED && mode != CORIO_FIRST_COMPLETED &&
         mode != CORIO_FIRST_EXCEPTION)) {
        errno = EINVAL;
        return -1;
    }
    if (wset_init(&s, fs, n) == -1)
        return -1;
    while (!wait_satisfied(&s, mode, &seen, &failed)) {
        if (check_can_block(s.loop) == -1 ||
            wset_wait(&s, s.norder, deadline) == -1) {
            err = errno;
            if (wait_satisfied(&s, mode, &seen, &failed))
                err = 0; /* it came true as the deadline passed */
            break;
        }
    }
    wait_fill(&s, done, pending);
    ndone = (int)s.norder;
    wset_fini(&s);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return ndone;
}

/* ---- as_completed ------------------------------------------------------------ */

struct corio_as_completed {
    struct wset s;
    size_t next;    /* s.order[next] is the next to return */
};

corio_as_completed *corio_as_completed_new(corio_future *const *fs, size_t n)
{
    corio_as_completed *it = malloc(sizeof(*it));
    int err;

    if (it == NULL)
        return NULL;
    if (wset_init(&it->s, fs, n) == -1) {
        err = errno;
        free(it);
        errno = err;
        return NULL;
    }
    it->next = 0;
    return it;
}

corio_future *corio_as_completed_next(corio_as_completed *it, int64_t deadline)
{
    struct wset *s;

    if (it == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (it->s.waiter != NULL) {
        errno = EBUSY;
        return NULL;
    }
    s = &it->s;
    if (it->next == s->n) {
        errno = CORIO_EDONE;
        return NULL;
    }
    wset_sweep(s);
    if (s->norder == it->next &&
        (check_can_block(s->loop) == -1 ||
         wset_wait(s, it->next, deadline) == -1))
        return NULL;
    return s->fs[s->order[it->next++]];
}

size_t corio_as_completed_remaining(const corio_as_completed *it)
{
    return it != NULL ? it->s.n - it->next : 0;
}

int corio_as_completed_free(corio_as_completed *it)
{
    if (it == NULL)
        return 0;
    if (it->s.waiter != NULL) {
        errno = EBUSY;
        return -1;
    }
    wset_fini(&it->s);
    free(it);
    return 0;
}

/* ---- wait_for, shield_wait ------------------------------------------------------- */

/* 0 and *result, or -1 with f's error; f is done. */
static int outcome(const corio_future *f, void **result)
{
    if (result != NULL)
        *result = f->err == 0 ? f->result : NULL;
    if (f->err != 0) {
        errno = f->err;
        return -1;
    }
    return 0;
}

static int check_future(corio_future *f)
{
    corio_task *self;

    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    self = corio_task_self();
    if (self != NULL && f->task == self) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Wait for f to be done, in a shield; true if the caller is cancelled. */
static bool drain_one(corio_future *f)
{
    {
        CORIO_SHIELD(-1);

        while (f->state == CORIO_PENDING && corio_future_wait(f, -1) == 0)
            ;
    }
    return caller_cancelled();
}

int corio_future_await(corio_future *f, void **result, int64_t deadline)
{
    int err;

    if (check_future(f) == -1)
        return -1;
    if (corio_future_wait(f, deadline) == 0)
        return outcome(f, result);
    err = errno;
    if (err != ETIMEDOUT && err != ECANCELED)
        return -1; /* EDEADLK: nothing was waited for, nothing is cancelled */
    corio_future_cancel(f);
    if (drain_one(f))
        err = ECANCELED;
    /* It finished before the cancellation reached it: keep its outcome. */
    if (err == ETIMEDOUT && f->state == CORIO_DONE)
        return outcome(f, result);
    if (result != NULL)
        *result = NULL;
    errno = err;
    return -1;
}

int corio_future_await_shielded(corio_future *f, void **result, int64_t deadline)
{
    if (check_future(f) == -1)
        return -1;
    if (corio_future_wait(f, deadline) == -1)
        return -1; /* f is left alone */
    return outcome(f, result);
}
