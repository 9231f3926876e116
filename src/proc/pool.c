/* src/proc/pool.c -- the pool's API: submitting items and the futures that
 * receive their outcomes, map, imap and imap_unordered over chunks, close,
 * terminate, join, and the thread workers (opts.threads). The worker
 * processes and their manager thread are pool_proc.c's.
 *
 * An item's outcome reaches its future as pool.c's thread pool does it
 * (src/thread/pool.c): a job embedded in the item is posted to the loop of
 * the submitting thread, under the pool's mutex, and only while the future
 * is attached; a future freed before (corio_future_free) detaches under the
 * same mutex, so nothing is ever posted to it after. */
#define _GNU_SOURCE
#include "pool_int.h"
#include "corio/group.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct work_future {
    struct corio_future fut;        /* first: corio_future_free frees all */
    struct item *it;                /* loop thread; NULL once delivered */
    corio_bytes result;             /* a chunk's: data is a struct chunk_res */
    bool chunk;
    int exitcode;
};

/* Guards every item's `attached` and the posting of its outcome: a future
 * freed pending detaches under it, so nothing is posted for it after (its
 * loop may be closed next). One lock for all pools: an item may outlive
 * its pool's memory, never this. */
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- Items ------------------------------------------------------------- */

static void item_unref(struct item *it)
{
    if (__atomic_sub_fetch(&it->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(it->arg.data);
    if (it->nitems > 0)
        corio__chunk_res_free(it->result.data);
    else
        free(it->result.data);
    free(it);
}

/* On the loop's thread: complete the future with the item's outcome. The
 * result moves to the future. */
static void delivery_run(struct corio__job *d)
{
    struct item *it = CORIO_CONTAINER_OF(d, struct item, delivery);
    struct work_future *wf = it->wf;

    if (wf != NULL && wf->fut.state == CORIO_PENDING) {
        wf->result = it->result;
        it->result = (corio_bytes){NULL, 0};
        wf->exitcode = it->exitcode;
        wf->it = NULL;
        it->wf = NULL;
        corio__loop_unref(wf->fut.loop);
        if (it->err == ECANCELED)
            corio__future_complete(&wf->fut, CORIO_CANCELLED, NULL, ECANCELED);
        else if (it->err != 0)
            corio__future_complete(&wf->fut, CORIO_DONE, NULL, it->err);
        else
            corio__future_complete(&wf->fut, CORIO_DONE, &wf->result, 0);
        item_unref(it); /* the future's */
    }
    item_unref(it); /* the delivery's */
}

static void delivery_drop(struct corio__job *d)
{
    item_unref(CORIO_CONTAINER_OF(d, struct item, delivery));
}

void corio__item_finish(corio_workers *w, struct item *it)
{
    (void)w;
    pthread_mutex_lock(&attach_mu);
    if (it->attached) {
        __atomic_add_fetch(&it->refs, 1, __ATOMIC_RELAXED);
        if (corio__loop_post_threadsafe(it->loop, &it->delivery) == -1) {
            it->attached = false;
            item_unref(it);
        }
    }
    pthread_mutex_unlock(&attach_mu);
    item_unref(it); /* the pool side's */
}

/* ---- Chunks ----------------------------------------------------------- */

void corio__chunk_res_free(struct chunk_res *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].b.data);
    free(c);
}

struct chunk_res *corio__chunk_run(corio_work_fn fn, uint32_t nitems,
                                   const corio_bytes *arg)
{
    struct chunk_res *c = calloc(1, sizeof(*c) + nitems * sizeof(c->e[0]));
    const char *p = arg->data, *end = p + arg->len;

    if (c == NULL)
        return NULL;
    for (c->n = 0; c->n < nitems; c->n++) {
        uint32_t len;

        memcpy(&len, p, sizeof(len));
        p += sizeof(len);
        c->e[c->n].err = fn(p, len, &c->e[c->n].b);
        p += len;
        if (p > end)
            abort(); /* the encoder's invariant */
    }
    return c;
}

/* The chunk of args[0..n) as one buffer. */
static int chunk_encode(const corio_bytes *args, size_t n, corio_bytes *out)
{
    size_t len = 0;
    char *p;

    for (size_t i = 0; i < n; i++) {
        if (args[i].len >= UINT32_MAX || (args[i].data == NULL && args[i].len > 0)) {
            errno = args[i].len >= UINT32_MAX ? EMSGSIZE : EINVAL;
            return -1;
        }
        len += sizeof(uint32_t) + args[i].len;
    }
    if (len >= UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    out->data = p = malloc(len > 0 ? len : 1);
    out->len = len;
    if (p == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)args[i].len;

        memcpy(p, &l, sizeof(l));
        p += sizeof(l);
        if (l > 0)
            memcpy(p, args[i].data, l);
        p += l;
    }
    return 0;
}

/* ---- Futures ---------------------------------------------------------- */

/* The future is freed pending: let go of the item (it still runs; its
 * outcome is dropped). */
static void wf_on_free(corio_future *f)
{
    struct work_future *wf = (struct work_future *)f;
    struct item *it = wf->it;

    if (it == NULL)
        return;
    wf->it = NULL;
    it->wf = NULL;
    pthread_mutex_lock(&attach_mu);
    it->attached = false;
    pthread_mutex_unlock(&attach_mu);
    corio__loop_unref(f->loop);
    item_unref(it);
}

static void wf_on_release(corio_future *f)
{
    struct work_future *wf = (struct work_future *)f;

    if (wf->chunk)
        corio__chunk_res_free(wf->result.data);
    else
        free(wf->result.data);
}

/* Queue an item of fn on arg (taken) and return its future. */
static corio_future *submit_item(corio_workers *w, corio_work_fn fn,
                                 uint32_t nitems, corio_bytes arg)
{
    corio_loop *loop = corio__loop_get();
    struct work_future *wf;
    struct item *it;

    if (loop == NULL)
        goto out_arg;
    wf = calloc(1, sizeof(*wf));
    it = calloc(1, sizeof(*it));
    if (wf == NULL || it == NULL) {
        free(wf);
        free(it);
        goto out_arg;
    }
    corio__future_init(&wf->fut, loop);
    wf->fut.on_free = wf_on_free;
    wf->fut.on_release = wf_on_release;
    wf->chunk = nitems > 0;
    it->fn = fn;
    it->nitems = nitems;
    it->arg = arg;
    it->refs = 2;
    it->loop = loop;
    it->attached = true;
    it->delivery.run = delivery_run;
    it->delivery.drop = delivery_drop;
    corio__list_init(&it->delivery.node);
    it->wf = wf;
    wf->it = it;

    pthread_mutex_lock(&w->mu);
    if (w->closing || w->terminating) {
        pthread_mutex_unlock(&w->mu);
        free(it);
        free(wf);
        errno = CORIO_ECLOSED;
        goto out_arg;
    }
    corio__list_push_back(&w->incoming, &it->node);
    if (w->opts.threads)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!w->opts.threads)
        corio__pool_proc_wake(w);
    corio__loop_ref(loop);
    return &wf->fut;

out_arg:
    free(arg.data);
    return NULL;
}

corio_future *corio_workers_submit(corio_workers *w, corio_work_fn fn,
                                   const void *arg, size_t len)
{
    corio_bytes copy = {NULL, len};

    if (w == NULL || fn == NULL || (arg == NULL && len > 0)) {
        errno = EINVAL;
        return NULL;
    }
    if (len >= UINT32_MAX) {
        errno = EMSGSIZE;
        return NULL;
    }
    copy.data = malloc(len > 0 ? len : 1);
    if (copy.data == NULL)
        return NULL;
    if (len > 0)
        memcpy(copy.data, arg, len);
    return submit_item(w, fn, 0, copy);
}

int corio_workers_exitcode(const corio_future *f)
{
    const struct work_future *wf = (const struct work_future *)f;

    if (f == NULL || f->on_release != wf_on_release)
        return 0;
    return corio_future_error(f) == EOWNERDEAD ? wf->exitcode : 0;
}

/* ---- imap, imap_unordered, map ------------------------------------------ */

struct corio_workers_iter {
    size_t n, nchunks, chunksize;
    corio_future **fs;              /* one per chunk; NULL once taken */
    bool ordered;
    corio_as_completed *ac;         /* unordered */
    size_t given;                   /* items returned */
    /* the chunk being read */
    corio_future *cur;
    size_t cur_chunk, cur_pos;
    size_t next_chunk;              /* ordered: the next chunk to wait for */
};

corio_workers_iter *corio_workers_imap(corio_workers *w, corio_work_fn fn,
                                       const corio_bytes *args, size_t n,
                                       size_t chunksize, bool ordered)
{
    corio_workers_iter *it;
    int err;

    if (w == NULL || fn == NULL || (args == NULL && n > 0)) {
        errno = EINVAL;
        return NULL;
    }
    if (chunksize == 0)
        chunksize = 1;
    if (chunksize > UINT32_MAX)
        chunksize = UINT32_MAX;
    it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->n = n;
    it->chunksize = chunksize;
    it->ordered = ordered;
    it->nchunks = (n + chunksize - 1) / chunksize;
    it->fs = calloc(it->nchunks + 1, sizeof(*it->fs));
    if (it->fs == NULL)
        goto out;
    for (size_t c = 0; c < it->nchunks; c++) {
        size_t first = c * chunksize;
        size_t k = n - first < chunksize ? n - first : chunksize;
        corio_bytes arg;

        if (chunk_encode(args + first, k, &arg) == -1)
            goto out;
        it->fs[c] = submit_item(w, fn, (uint32_t)k, arg);
        if (it->fs[c] == NULL)
            goto out;
    }
    if (!ordered && it->nchunks > 0) {
        it->ac = corio_as_completed_new(it->fs, it->nchunks);
        if (it->ac == NULL)
            goto out;
    }
    return it;

out:
    err = errno;
    corio_workers_iter_free(it);
    errno = err;
    return NULL;
}

static size_t chunk_of(const corio_workers_iter *it, corio_future *f)
{
    for (size_t c = 0; c < it->nchunks; c++)
        if (it->fs[c] == f)
            return c;
    abort(); /* as_completed gives back only our futures */
}

int corio_workers_iter_next(corio_workers_iter *it, size_t *index,
                            corio_bytes *result, int64_t deadline)
{
    struct chunk_res *c;
    size_t i;
    int err;

    if (it == NULL || result == NULL) {
        errno = EINVAL;
        return -1;
    }
    while (it->cur == NULL) {
        corio_future *f;

        if (it->given == it->n) {
            errno = CORIO_EDONE;
            return -1;
        }
        if (it->ordered) {
            f = it->fs[it->next_chunk];
            if (corio_future_wait(f, deadline) == -1)
                return -1;
            it->cur_chunk = it->next_chunk++;
        } else {
            f = corio_as_completed_next(it->ac, deadline);
            if (f == NULL)
                return -1;
            it->cur_chunk = chunk_of(it, f);
        }
        it->cur = f;
        it->cur_pos = 0;
    }
    i = it->cur_chunk * it->chunksize + it->cur_pos;
    if (index != NULL)
        *index = i;
    *result = (corio_bytes){NULL, 0};
    err = corio_future_error(it->cur);
    if (err == 0) {
        c = ((corio_bytes *)corio_future_result(it->cur))->data;
        err = c->e[it->cur_pos].err;
        *result = c->e[it->cur_pos].b;
        c->e[it->cur_pos].b = (corio_bytes){NULL, 0};
    }
    it->given++;
    if (++it->cur_pos == it->chunksize || i + 1 == it->n)
        it->cur = NULL; /* the chunk is used up */
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int corio_workers_iter_free(corio_workers_iter *it)
{
    if (it == NULL)
        return 0;
    corio_as_completed_free(it->ac);
    for (size_t c = 0; it->fs != NULL && c < it->nchunks; c++)
        corio_future_free(it->fs[c]);
    free(it->fs);
    free(it);
    return 0;
}

int corio_workers_map(corio_workers *w, corio_work_fn fn,
                      const corio_bytes *args, size_t n, size_t chunksize,
                      corio_bytes *results, int *errs, int64_t deadline)
{
    corio_workers_iter *it;
    int first_err = 0;

    if (w == NULL || fn == NULL || ((args == NULL || results == NULL) && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (chunksize == 0) {
        size_t q = 4 * w->size;

        chunksize = n / q + (n % q != 0);
    }
    it = corio_workers_imap(w, fn, args, n, chunksize, true);
    if (it == NULL)
        return -1;
    /* wait for all first: a deadline fills nothing */
    for (size_t c = 0; c < it->nchunks; c++) {
        if (corio_future_wait(it->fs[c], deadline) == -1) {
            int err = errno;

            corio_workers_iter_free(it);
            errno = err;
            return -1;
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = k;
        int err = corio_workers_iter_next(it, &i, &results[k], -1) == -1 ? errno : 0;

        if (errs != NULL)
            errs[k] = err;
        if (err != 0 && first_err == 0)
            first_err = err;
    }
    corio_workers_iter_free(it);
    if (first_err != 0) {
        errno = first_err;
        return -1;
    }
    return 0;
}

/* ---- Thread workers ------------------------------------------------------- */

static int thread_start(corio_workers *w);

static void *thread_main(void *arg)
{
    corio_workers *w = arg;
    size_t done = 0;
    bool replace = false;

    if (w->opts.initializer != NULL)
        w->opts.initializer(w->opts.initarg);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct corio__list *n;
        struct item *it;

        while (corio__list_empty(&w->incoming) && !w->closing && !w->terminating)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->terminating)
            break;
        n = corio__list_pop_front(&w->incoming);
        if (n == NULL)
            break; /* closing, and nothing left */
        pthread_mutex_unlock(&w->mu);

        it = CORIO_CONTAINER_OF(n, struct item, node);
        if (it->nitems == 0) {
            it->err = it->fn(it->arg.data, it->arg.len, &it->result);
        } else {
            it->result.data = corio__chunk_run(it->fn, it->nitems, &it->arg);
            it->err = it->result.data == NULL ? ENOMEM : 0;
        }

        pthread_mutex_lock(&w->mu);
        corio__item_finish(w, it);
        if (w->opts.maxtasksperchild > 0 && ++done >= w->opts.maxtasksperchild) {
            replace = !w->terminating;
            break;
        }
    }
    /* a replacement counts as alive before this one leaves */
    if (replace && thread_start(w) == 0)
        w->live++;
    if (--w->live == 0) {
        struct corio__list *n;

        /* terminated: what is left fails */
        while ((n = corio__list_pop_front(&w->incoming)) != NULL) {
            struct item *it = CORIO_CONTAINER_OF(n, struct item, node);

            it->err = ECANCELED;
            corio__item_finish(w, it);
        }
        uint64_t one = 1;

        if (write(w->done_fd, &one, sizeof(one)) != sizeof(one))
            abort();
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Start a detached worker thread with the asynchronous signals blocked. */
static int thread_start(corio_workers *w)
{
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&t, &attr, thread_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* ---- Pools ---------------------------------------------------------------- */

static size_t default_size(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t)CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

corio_workers *corio_workers_new(const corio_workers_opts *opts)
{
    corio_workers *w = calloc(1, sizeof(*w));
    int err;

    if (w == NULL)
        return NULL;
    if (opts != NULL)
        w->opts = *opts;
    w->size = w->opts.size > 0 ? w->opts.size : default_size();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    corio__list_init(&w->incoming);
    w->wake_fd = -1;
    w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->done_fd == -1)
        goto out;
    if (w->opts.threads) {
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < w->size; i++) {
            if (thread_start(w) == -1) {
                err = errno;
                w->terminating = true;
                pthread_cond_broadcast(&w->cv);
                pthread_mutex_unlock(&w->mu);
                if (w->live > 0) {
                    corio_workers_free(w);
                    errno = err;
                    return NULL;
                }
                errno = err;
                goto out;
            }
            w->live++;
        }
        pthread_mutex_unlock(&w->mu);
    } else if (corio__pool_proc_start(w) == -1) {
        goto out;
    }
    return w;

out:
    err = errno;
    if (w->done_fd != -1)
        close(w->done_fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    errno = err;
    return NULL;
}

size_t corio_workers_size(const corio_workers *w)
{
    return w != NULL ? w->size : 0;
}

size_t corio_workers_pids(corio_workers *w, pid_t *out, size_t max)
{
    size_t k = 0;

    if (w == NULL || w->opts.threads || out == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->size && k < max; i++)
        if (w->pids[i] > 0)
            out[k++] = w->pids[i];
    pthread_mutex_unlock(&w->mu);
    return k;
}

static int set_flag(corio_workers *w, bool terminate)
{
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    if (terminate)
        w->terminating = true;
    else
        w->closing = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!w->opts.threads)
        corio__pool_proc_wake(w);
    return 0;
}

int corio_workers_close(corio_workers *w)
{
    return set_flag(w, false);
}

int corio_workers_terminate(corio_workers *w)
{
    return set_flag(w, true);
}

int corio_workers_join(corio_workers *w)
{
    bool ok;

    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    ok = w->closing || w->terminating;
    pthread_mutex_unlock(&w->mu);
    if (!ok) {
        errno = EINVAL;
        return -1;
    }
    return corio__proc_wait_fd(w->done_fd, -1);
}

int corio_workers_free(corio_workers *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    if (!w->closing)
        w->terminating = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!w->opts.threads)
        corio__pool_proc_wake(w);
    /* block this thread: the pool's memory must outlive its workers */
    {
        CORIO_SHIELD(-1);
        while (corio__proc_wait_fd(w->done_fd, -1) == -1)
            ;
    }
    /* the last thread writes done_fd under mu: wait until it let go */
    pthread_mutex_lock(&w->mu);
    pthread_mutex_unlock(&w->mu);
    if (!w->opts.threads)
        corio__pool_proc_free(w);
    corio__pidfd_close(w->done_fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return 0;
}
