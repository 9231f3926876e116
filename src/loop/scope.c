/* src/loop/scope.c -- cancel scopes (Trio's): deadlines, cancellation and
 * shields for the blocking calls of a fiber or of the thread's own stack,
 * and the check every blocking call makes before it waits.
 *
 * A fiber's scopes are a chain from its innermost (f->scope) outwards, each
 * the caller's memory; the thread's own stack has a chain of its own. Both
 * are checked when they are used: a scope exited out of order, or left
 * entered when its fiber or thread ends, is reported and aborts, because
 * the chain would keep a pointer into a dead frame. */
#include "loop_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

CORIO__TLS struct corio_scope *corio__thread_scope;
static __thread const char *thread_scope_file; /* the innermost's entry, */
static __thread int thread_scope_line;         /* kept outside its frame */
__thread struct corio__waiter *corio__thread_waiter;

static pthread_key_t exit_key;
static __thread bool thread_checked; /* exit_key is set for this thread */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void report(const char *what, const struct corio_scope *s,
                   const struct corio_scope *inner)
{
    corio_loop *loop = corio__loop_peek();
    struct corio__fiber *f = loop != NULL ? loop->current : NULL;

    fprintf(stderr, "corio: %s: scope entered at %s:%d", what,
            s->file != NULL ? s->file : "?", s->line);
    if (inner != NULL)
        fprintf(stderr, ", innermost entered at %s:%d",
                inner->file != NULL ? inner->file : "?", inner->line);
    if (f != NULL)
        fprintf(stderr, ", in task '%s' (#%llu)\n", f->name ? f->name : "?",
                (unsigned long long)f->id);
    else
        fprintf(stderr, ", on the thread's own stack\n");
    abort();
}

/* At thread exit the scope's frame is gone: only the copies are read. */
static void thread_exit_check(void *unused)
{
    (void)unused;
    if (corio__thread_scope == NULL)
        return;
    fprintf(stderr,
            "corio: a thread ended with a scope still entered: scope entered "
            "at %s:%d, on the thread's own stack (every corio_scope_enter "
            "needs its corio_scope_exit, or use CORIO_SCOPE)\n",
            thread_scope_file != NULL ? thread_scope_file : "?",
            thread_scope_line);
    abort();
}

/* Keep the innermost scope's entry outside its frame, for the reports. */
static void note_innermost(void *owner, const struct corio_scope *s)
{
    const char *file = s != NULL ? s->file : NULL;
    int line = s != NULL ? s->line : 0;

    if (owner == &corio__thread_scope) {
        thread_scope_file = file;
        thread_scope_line = line;
    } else {
        ((struct corio__fiber *)owner)->scope_file = file;
        ((struct corio__fiber *)owner)->scope_line = line;
    }
}

static void exit_key_make(void)
{
    pthread_key_create(&exit_key, thread_exit_check);
}

/* A scope goes in the thread's own chain: check it at the thread's exit. */
static void watch_thread_exit(void *owner)
{
    if (owner == &corio__thread_scope && !thread_checked) {
        pthread_once(&exit_once, exit_key_make);
        pthread_setspecific(exit_key, &corio__thread_scope);
        thread_checked = true;
    }
}

/* The chain the caller's scopes go in, and its owner's tag. */
static struct corio_scope **caller_head(void **owner)
{
    corio_loop *loop = corio__loop_peek();
    struct corio__fiber *f = loop != NULL ? loop->current : NULL;

    if (f != NULL) {
        *owner = f;
        return &f->scope;
    }
    *owner = &corio__thread_scope; /* this thread's */
    return &corio__thread_scope;
}

/* A NULL scope: a bug the caller cannot be told of (these calls return no
 * error), reported before anything is touched. */
static void null_scope(const char *call, const char *file, int line)
{
    fprintf(stderr, "corio: %s of a NULL scope at %s:%d\n", call,
            file != NULL ? file : "?", line);
    abort();
}

static void enter(corio_scope *s, int64_t deadline, bool shield,
                  const char *file, int line)
{
    void *owner;
    struct corio_scope **head;

    if (s == NULL)
        null_scope("corio_scope_enter", file, line);
    head = caller_head(&owner);

    s->deadline = deadline;
    s->outer = *head;
    s->owner = owner;
    s->file = file;
    s->line = line;
    s->shield = shield;
    s->cancelled = s->caught = false;
    s->entered = true;
    *head = s;
    note_innermost(owner, s);
    watch_thread_exit(owner);
}

void corio_scope_enter_at(corio_scope *s, int64_t deadline, const char *file,
                          int line)
{
    enter(s, deadline, false, file, line);
}

void corio_scope_shield_at(corio_scope *s, int64_t deadline, const char *file,
                           int line)
{
    enter(s, deadline, true, file, line);
}

bool corio_scope_exit(corio_scope *s)
{
    void *owner;
    struct corio_scope **head;

    if (s == NULL)
        null_scope("corio_scope_exit", NULL, 0);
    head = caller_head(&owner);

    if (!s->entered)
        report("exit of a scope that is not entered", s, NULL);
    if (s->owner != owner)
        report("exit of a scope entered by another task", s, NULL);
    if (*head != s)
        report("exit of a scope that is not the innermost", s, *head);
    *head = s->outer;
    note_innermost(owner, s->outer);
    s->entered = false;
    return s->caught;
}

struct corio_scope *corio__scope_head(void)
{
    void *owner;

    return *caller_head(&owner);
}

struct corio_scope *corio__scope_detach(struct corio_scope *base,
                                        struct corio_scope **bottom)
{
    void *owner;
    struct corio_scope **head = caller_head(&owner);
    struct corio_scope *top = *head, *s = top;

    if (top == base)
        return NULL;
    while (s->outer != base) {
        if (s->outer == NULL)
            report("a scope entered above the chain is missing", top, NULL);
        s = s->outer;
    }
    *bottom = s;
    *head = base;
    note_innermost(owner, base);
    return top;
}

void corio__scope_attach(struct corio_scope *top, struct corio_scope *bottom)
{
    void *owner;
    struct corio_scope **head = caller_head(&owner);

    bottom->outer = *head;
    for (struct corio_scope *s = top;; s = s->outer) {
        s->owner = owner;
        if (s == bottom)
            break;
    }
    *head = top;
    note_innermost(owner, top);
    watch_thread_exit(owner);
}

void corio__scope_cleanup(corio_scope *s)
{
    if (s->entered)
        corio_scope_exit(s);
}

bool corio__scope_reaches(const struct corio_scope *inner,
                          const struct corio_scope *target)
{
    for (const struct corio_scope *s = inner; s != NULL; s = s->outer) {
        if (s == target)
            return true;
        if (s->shield)
            return false;
    }
    return target == NULL;
}

/* The walk of corio__scope_check; `mark`: mark the cause as caught. */
static int scope_walk(struct corio__fiber *f, int64_t *deadline,
                      struct corio_scope **by, bool mark)
{
    int64_t now = -1;

    *by = NULL;
    for (struct corio_scope *s = f != NULL ? f->scope : corio__thread_scope;
         s != NULL; s = s->outer) {
        if (s->cancelled) {
            s->caught |= mark;
            return ECANCELED;
        }
        if (s->deadline >= 0) {
            if (now < 0)
                now = corio_now();
            if (s->deadline <= now) {
                s->caught |= mark;
                *by = s;
                return ETIMEDOUT;
            }
            if (*deadline < 0 || s->deadline < *deadline) {
                *deadline = s->deadline;
                *by = s;
            }
        }
        if (s->shield)
            return 0;
    }
    return f != NULL && f->cancelled ? ECANCELED : 0;
}

int corio__scope_check(struct corio__fiber *f, int64_t *deadline,
                       struct corio_scope **by)
{
    return scope_walk(f, deadline, by, true);
}

/* The running fiber, or NULL on the thread's own stack. */
static struct corio__fiber *caller_fiber(void)
{
    corio_loop *loop = corio__loop_peek();

    return loop != NULL ? loop->current : NULL;
}

bool corio__scope_would_fail(void)
{
    struct corio_scope *by;
    int64_t deadline = -1;

    return scope_walk(caller_fiber(), &deadline, &by, false) != 0;
}

int corio__checkpoint_slow(void)
{
    struct corio_scope *by;
    int64_t deadline = -1;
    int err = scope_walk(caller_fiber(), &deadline, &by, true);

    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* The call parked under s's owner, if s is in effect for it. */
static struct corio__waiter *parked_under(corio_scope *s)
{
    struct corio__waiter *w;
    struct corio_scope *inner;

    if (s->owner == &corio__thread_scope) {
        w = corio__thread_waiter;
        inner = corio__thread_scope;
    } else {
        struct corio__fiber *f = s->owner;

        w = f->waiting;
        inner = f->scope;
    }
    if (w == NULL || w->done || !corio__scope_reaches(inner, s))
        return NULL;
    return w;
}

int corio_scope_cancel(corio_scope *s)
{
    struct corio__waiter *w;

    if (s == NULL || !s->entered) {
        errno = EINVAL;
        return -1;
    }
    s->cancelled = true;
    w = parked_under(s);
    if (w != NULL) {
        s->caught = true;
        if (w->unlink != NULL)
            w->unlink(w);
        corio__wake(w, ECANCELED);
    }
    return 0;
}

int corio_scope_set_deadline(corio_scope *s, int64_t deadline)
{
    struct corio__waiter *w;
    int64_t when;
    int err;

    if (s == NULL || !s->entered) {
        errno = EINVAL;
        return -1;
    }
    s->deadline = deadline < 0 ? -1 : deadline;
    w = parked_under(s);
    if (w == NULL)
        return 0;
    /* Work out the parked call's deadline again, as corio__wait did. */
    when = w->deadline;
    err = corio__scope_check(w->fiber, &when, &w->by);
    if (err != 0) {
        if (w->unlink != NULL)
            w->unlink(w);
        corio__wake(w, err);
    } else if (when < 0) {
        corio__timer_disarm(w->loop, &w->timer);
    } else if (corio__timer_arm(w->loop, &w->timer, when) == -1) {
        return -1;
    }
    return 0;
}
