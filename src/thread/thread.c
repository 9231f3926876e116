/* src/thread/thread.c -- threads: starting one (optionally with a loop of
 * its own), names, joining with a deadline, detaching.
 *
 * A handle is shared by its owner and the thread it started: the thread
 * holds it as a user of its object (struct corio__tobj) from its start until
 * it has posted its end, so a handle freed by its owner while the thread
 * runs lives until the thread lets go. The end is posted under the handle's
 * mutex and wakes the joiner (a task parks, a plain thread sleeps: twait.c).
 * The joiner then reaps the OS thread with pthread_join, which at that point
 * only waits for the thread's exit (its thread-local destructors).
 *
 * Names live in a buffer of each thread's own: MainThread for the process's
 * main thread, the given name, Thread-N, Dummy-N for threads corio did not
 * start (named on first use), or what corio__thread_set_name gives (pool
 * workers). */
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct corio_thread {
    struct corio__tobj obj;         /* first: its release frees the handle */
    struct corio__list joiners;     /* a join waiting (at most one) */
    pthread_t pt;
    corio_fn fn;
    void *arg;
    bool with_loop;
    char name[CORIO_THREAD_NAME_MAX + 1];

    /* Under obj.mu. */
    bool done;                      /* fn has returned */
    bool joined, detached, joining;
    void *result;
    int err;                        /* corio_run's errno (with_loop) */
};

static __thread char self_name[CORIO_THREAD_NAME_MAX + 1];
static __thread corio_thread *self;
static unsigned long thread_seq;   /* atomic: Thread-N */
static unsigned long dummy_seq;    /* atomic: Dummy-N */

static void name_self(const char *name)
{
    char os[16];
    size_t n = strnlen(name, sizeof(os) - 1);

    snprintf(self_name, sizeof(self_name), "%s", name);
    memcpy(os, name, n); /* the kernel keeps 15 bytes */
    os[n] = '\0';
    pthread_setname_np(pthread_self(), os);
}

/* Internal: name the calling thread (pool workers). */
void corio__thread_set_name(const char *name)
{
    name_self(name);
}

bool corio_thread_is_main(void)
{
    return syscall(SYS_gettid) == getpid();
}

const char *corio_thread_name(const corio_thread *t)
{
    if (t != NULL)
        return t->name;
    if (self_name[0] == '\0') {
        if (corio_thread_is_main()) {
            snprintf(self_name, sizeof(self_name), "MainThread");
        } else {
            unsigned long n =
                __atomic_add_fetch(&dummy_seq, 1, __ATOMIC_RELAXED);

            snprintf(self_name, sizeof(self_name), "Dummy-%lu", n);
        }
    }
    return self_name;
}

corio_thread *corio_thread_self(void)
{
    return self;
}

static void thread_release(struct corio__tobj *o)
{
    free(o);
}

/* asyncio.run without the signals (they stay the main thread's, as in
 * Python): a loop of the thread's own, fn as its main task, then the
 * loop's close, which cancels and finishes the tasks left. Returns 0, or
 * -1 with errno (the main task's error). */
static int run_loop(corio_thread *t, void **result)
{
    corio_task_attr attr = {.name = "main"};
    corio_loop *loop = corio_loop_new();
    corio_task *main_task;
    int err = 0;

    if (loop == NULL)
        return -1;
    corio_loop_set_current(loop);
    attr.loop = loop;
    main_task = corio_task_spawn(t->fn, t->arg, &attr);
    if (main_task == NULL || corio_task_join(main_task, result) == -1)
        err = errno;
    corio_loop_close(loop);
    corio_loop_set_current(NULL);
    errno = err;
    return err != 0 ? -1 : 0;
}

/* The thread's body: run fn, post the end, let go of the handle. */
static void *thread_main(void *arg)
{
    corio_thread *t = arg;
    void *result = NULL;
    int err = 0;

    self = t;
    name_self(t->name);
    if (t->with_loop) {
        if (run_loop(t, &result) == -1) {
            err = errno;
            result = NULL;
        }
    } else {
        result = t->fn(t->arg);
    }
    self = NULL;
    pthread_mutex_lock(&t->obj.mu);
    t->done = true;
    t->result = result;
    t->err = err;
    corio__tw_broadcast(&t->obj, &t->joiners);
    corio__tobj_unlock(&t->obj); /* the thread's use, taken at start */
    return NULL;
}

corio_thread *corio_thread_start(corio_fn fn, void *arg,
                                 const corio_thread_opts *opts)
{
    static const corio_thread_opts defaults;
    corio_thread *t;
    pthread_attr_t attr;
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (fn == NULL ||
        (opts->name != NULL && strlen(opts->name) > CORIO_THREAD_NAME_MAX)) {
        errno = EINVAL;
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    corio__tobj_init(&t->obj, thread_release);
    corio__list_init(&t->joiners);
    t->obj.users = 1; /* the thread's, until it has posted its end */
    t->fn = fn;
    t->arg = arg;
    t->with_loop = opts->loop;
    if (opts->name != NULL)
        snprintf(t->name, sizeof(t->name), "%s", opts->name);
    else
        snprintf(t->name, sizeof(t->name), "Thread-%lu",
                 __atomic_add_fetch(&thread_seq, 1, __ATOMIC_RELAXED));
    pthread_attr_init(&attr);
    rc = opts->stack_size > 0
             ? pthread_attr_setstacksize(&attr, opts->stack_size)
             : 0;
    if (rc == 0)
        rc = pthread_create(&t->pt, &attr, thread_main, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&t->obj.mu);
        free(t);
        errno = rc;
        return NULL;
    }
    return t;
}

int corio_thread_join(corio_thread *t, void **result, int64_t deadline)
{
    if (t == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (t == self) {
        errno = EDEADLK;
        return -1;
    }
    if (corio__checkpoint() == -1)
        return -1;
    corio__tobj_lock(&t->obj);
    if (t->joined || t->detached || t->joining) {
        corio__tobj_unlock(&t->obj);
        errno = EINVAL;
        return -1;
    }
    t->joining = true;
    while (!t->done) {
        if (corio__tw_wait(&t->obj, &t->joiners, deadline) == -1) {
            int err = errno;

            t->joining = false;
            corio__tobj_unlock(&t->obj);
            errno = err;
            return -1;
        }
    }
    t->joining = false;
    t->joined = true;
    if (result != NULL)
        *result = t->result;
    corio__tobj_unlock(&t->obj);
    /* The thread has posted its end: this only waits for its exit. */
    pthread_join(t->pt, NULL);
    return 0;
}

int corio_thread_detach(corio_thread *t)
{
    if (t == NULL) {
        errno = EINVAL;
        return -1;
    }
    corio__tobj_lock(&t->obj);
    if (t->joined || t->detached || t->joining) {
        corio__tobj_unlock(&t->obj);
        errno = EINVAL;
        return -1;
    }
    t->detached = true;
    pthread_detach(t->pt);
    corio__tobj_unlock(&t->obj);
    return 0;
}

int corio_thread_free(corio_thread *t)
{
    if (t == NULL)
        return 0;
    corio__tobj_lock(&t->obj);
    if (t->joining) {
        corio__tobj_unlock(&t->obj);
        errno = EBUSY;
        return -1;
    }
    if (!t->joined && !t->detached) {
        t->detached = true;
        pthread_detach(t->pt);
    }
    return corio__tobj_free(&t->obj, false);
}

bool corio_thread_is_alive(corio_thread *t)
{
    bool alive;

    if (t == NULL)
        return false;
    pthread_mutex_lock(&t->obj.mu);
    alive = !t->done;
    pthread_mutex_unlock(&t->obj.mu);
    return alive;
}

int corio_thread_error(corio_thread *t)
{
    int err;

    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->obj.mu);
    err = t->done ? t->err : 0;
    pthread_mutex_unlock(&t->obj.mu);
    return err;
}
