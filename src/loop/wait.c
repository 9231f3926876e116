/* src/loop/wait.c -- blocking: parking the caller until a wake-up, a
 * deadline or a cancellation, and waiting on file descriptors.
 *
 * Inside a task, corio__wait parks the task and switches to the loop. On the
 * thread's own stack (no task), it runs the loop itself until the waiter is
 * woken: that is how a plain main() can sleep, join tasks or wait on an fd.
 * In a callback (the loop runs but no task does) it fails with EDEADLK. */
#include "loop_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void waiter_timeout(struct corio__timer *t)
{
    struct corio__waiter *w =
        CORIO_CONTAINER_OF(t, struct corio__waiter, timer);

    if (w->unlink != NULL)
        w->unlink(w);
    corio__wake(w, ETIMEDOUT);
}

void corio__waiter_init(struct corio__waiter *w)
{
    memset(w, 0, sizeof(*w));
    corio__list_init(&w->node);
    w->timer.fire = waiter_timeout;
}

void corio__waiter_unlink_node(struct corio__waiter *w)
{
    corio__list_remove(&w->node);
}

/* Drive the loop from the thread's own stack until w is woken. */
static void drive(corio_loop *loop, struct corio__waiter *w)
{
    struct corio__waiter *outer = corio__thread_waiter;
    bool was_stopping = loop->stopping;

    corio__thread_waiter = w;
    loop->stopping = false;
    loop->running = true;
    loop->sched = corio_coro_self();
    if (loop->sched == NULL)
        loop->sched = corio__coro_main();
    while (!w->done)
        corio__loop_run_once(loop, true);
    /* As asyncio's loop.stop(): what the wake-up scheduled (the done
     * callbacks of a future just completed) runs before returning. */
    if (!corio__list_empty(&loop->ready))
        corio__loop_run_once(loop, false);
    loop->running = false;
    loop->stopping = was_stopping;
    corio__thread_waiter = outer;
}

int corio__wait(struct corio__waiter *w, int64_t deadline)
{
    corio_loop *loop = corio__loop_get();
    struct corio__fiber *f;

    if (loop == NULL) {
        int err = errno;

        if (w->unlink != NULL)
            w->unlink(w);
        w->done = true;
        errno = err;
        return -1;
    }
    f = loop->current;
    w->loop = loop;
    w->fiber = f;
    w->deadline = deadline;
    if (f == NULL && loop->running) {
        w->err = EDEADLK;
        goto fail_now;
    }
    /* Cancellation and expired scopes stick: checked before every wait
     * (nothing to walk in the common case: a task with no scope). */
    if (f == NULL || f->cancelled || f->scope != NULL) {
        w->err = corio__scope_check(f, &deadline, &w->by);
        if (w->err != 0)
            goto fail_now;
    }
    if (w->done)
        goto out;
    if (deadline >= 0) {
        if (deadline <= corio_now() && !w->always_park) {
            w->err = ETIMEDOUT;
            goto fail_now;
        }
        if (corio__timer_arm(loop, &w->timer, deadline) == -1) {
            w->err = ENOMEM;
            goto fail_now;
        }
    }
    loop->spent = 0; /* parking: the budget is whole when it runs again */
    if (f != NULL) {
        f->waiting = w;
        corio__fiber_park(loop, f);
        f->waiting = NULL;
    } else {
        drive(loop, w);
    }
    corio__timer_disarm(loop, &w->timer);
out:
    if (w->err != 0) {
        if (w->err == ETIMEDOUT && w->by != NULL)
            w->by->caught = true;
        errno = w->err;
        return -1;
    }
    return 0;

fail_now:
    if (w->unlink != NULL)
        w->unlink(w);
    w->done = true;
    errno = w->err;
    return -1;
}

void corio__wake(struct corio__waiter *w, int err)
{
    if (w->done)
        return;
    w->done = true;
    w->err = err;
    if (w->loop != NULL)
        corio__timer_disarm(w->loop, &w->timer);
    if (w->notify != NULL)
        w->notify(w);
    else if (w->fiber != NULL)
        corio__fiber_wake_waiter(w);
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
    /* Its own deadline is success; a scope's is a timeout. */
    if (errno == ETIMEDOUT && w.by == NULL && corio_now() >= deadline)
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

/* ---- The cooperative budget ---------------------------------------------- */

/* The budget is spent (corio__budget_spend's slow path): yield. */
int corio__budget_yield(corio_loop *loop, size_t cost)
{
    struct corio__waiter w;
    int err = errno;

    if (corio__fiber_running(loop) == NULL && loop->running) {
        loop->spent = cost; /* a callback cannot yield (EDEADLK) */
        return 0;
    }
    /* A sleep until time 0: its timer fires in the next iteration, after
     * the poll that the spin count forces (the loop may skip its poll
     * while tasks are ready), so the tasks already ready and the fds'
     * waiters run before this task, and the timers due with it. It fails
     * as any blocking call does: the task cancelled (ECANCELED), a scope's
     * deadline passed (ETIMEDOUT, w.by set); its own timer is success. */
    corio__waiter_init(&w);
    w.always_park = true;
    loop->spins = CORIO__SPIN_MAX;
    if (corio__wait(&w, 0) == -1 && (errno != ETIMEDOUT || w.by != NULL))
        return -1;
    loop->spent = cost; /* corio__wait refilled the budget */
    errno = err;
    return 0;
}

/* ---- File descriptors ---------------------------------------------------- */

static struct corio__fd *fd_state(corio_loop *loop, int fd)
{
    if ((size_t)fd >= loop->nfds) {
        size_t n = loop->nfds ? loop->nfds : 64;
        struct corio__fd *fds;

        while (n <= (size_t)fd)
            n *= 2;
        fds = realloc(loop->fds, n * sizeof(*fds));
        if (fds == NULL)
            return NULL;
        memset(fds + loop->nfds, 0, (n - loop->nfds) * sizeof(*fds));
        loop->fds = fds;
        loop->nfds = n;
    }
    return &loop->fds[fd];
}

/* The waiter names its fd, not its struct corio__fd: the table may move. */
static void fd_unlink(struct corio__waiter *w)
{
    struct corio__fd *f = &w->loop->fds[(intptr_t)w->data];

    if (f->reader == w)
        f->reader = NULL;
    if (f->writer == w)
        f->writer = NULL;
}

/* What fd is ready for now, without waiting. epoll is edge-triggered here:
 * readiness reported once and still there (a pipe still writable, bytes
 * left after a partial read) makes no new event, so ask poll(2) before
 * parking. */
static unsigned fd_ready_now(int fd, unsigned events)
{
    struct pollfd p = {.fd = fd};
    unsigned ready = 0;

    if (events & CORIO_READ)
        p.events |= POLLIN;
    if (events & CORIO_WRITE)
        p.events |= POLLOUT;
    if (poll(&p, 1, 0) != 1)
        return 0;
    if (p.revents & (POLLERR | POLLHUP))
        ready |= CORIO_READ | CORIO_WRITE;
    if (p.revents & POLLIN)
        ready |= CORIO_READ;
    if (p.revents & POLLOUT)
        ready |= CORIO_WRITE;
    return ready;
}

int corio_fd_wait(int fd, unsigned events, int64_t deadline)
{
    /* A ready fd returns at once: the budget keeps a loop of such waits
     * fair, and cancellation sticks there too. */
    if (corio__budget_spend(0) == -1)
        return -1;
    return corio__wait_fd(fd, events, deadline, false);
}

int corio__wait_fd(int fd, unsigned events, int64_t deadline, bool after_eagain)
{
    corio_loop *loop = corio__loop_get();
    struct corio__waiter w;
    struct corio__fd *f;
    unsigned got;
    int rc;

    if (loop == NULL)
        return -1;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (events == 0 || (events & ~(CORIO_READ | CORIO_WRITE)) != 0) {
        errno = EINVAL;
        return -1;
    }
    f = fd_state(loop, fd);
    if (f == NULL)
        return -1;
    if (!f->registered) {
        if (corio__poller_add(&loop->poller, fd) == -1 && errno != EEXIST)
            return -1; /* EBADF, EPERM (regular files), ENOMEM */
        f->registered = true;
    }
    if (((events & CORIO_READ) && f->reader != NULL) ||
        ((events & CORIO_WRITE) && f->writer != NULL)) {
        errno = EBUSY;
        return -1;
    }
    if ((f->ready & events) == 0 && !after_eagain)
        f->ready |= fd_ready_now(fd, events);
    if ((f->ready & events) == 0) {
        corio__waiter_init(&w);
        w.data = (void *)(intptr_t)fd;
        w.unlink = fd_unlink;
        if (events & CORIO_READ)
            f->reader = &w;
        if (events & CORIO_WRITE)
            f->writer = &w;
        loop->nwaiting_fds++;
        rc = corio__wait(&w, deadline);
        loop->nwaiting_fds--;
        /* fds may have moved (realloc) while this waited */
        f = &loop->fds[fd];
        if (f->reader == &w)
            f->reader = NULL;
        if (f->writer == &w)
            f->writer = NULL;
        if (rc == -1)
            return -1;
    }
    got = f->ready & events;
    f->ready &= ~got;
    /* the readiness this wait reports is taken: a drained mark from an
     * older short read is stale now, and would make corio__read_fd skip
     * the read of the bytes that woke this wait */
    if (got & CORIO_READ)
        f->drained = false;
    return (int)got;
}

enum { FD_TCP = 1, FD_OTHER = 2 };

static unsigned char fd_kind(int fd)
{
    int proto = 0;
    socklen_t len = sizeof(proto);

    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
        proto == IPPROTO_TCP)
        return FD_TCP;
    return FD_OTHER;
}

ssize_t corio__read_fd(int fd, void *buf, size_t n)
{
    corio_loop *loop = corio__loop_get();
    struct corio__fd *f = NULL;
    ssize_t got;

    if (loop != NULL && fd >= 0 && (size_t)fd < loop->nfds &&
        loop->fds[fd].registered) {
        f = &loop->fds[fd];
        if (f->drained) {
            f->drained = false;
            if (!(f->ready & CORIO_READ) && !f->hup) {
                errno = EAGAIN;
                return -1;
            }
        }
    }
    got = read(fd, buf, n);
    if (f != NULL && got > 0 && (size_t)got < n && !f->hup) {
        if (f->kind == 0)
            f->kind = fd_kind(fd);
        f->drained = f->kind == FD_TCP;
    }
    return got;
}

bool corio__fd_known_empty(int fd)
{
    corio_loop *loop = corio__loop_get();
    const struct corio__fd *f;

    if (loop == NULL || fd < 0 || (size_t)fd >= loop->nfds)
        return false;
    f = &loop->fds[fd];
    return f->registered && f->drained && !(f->ready & CORIO_READ) && !f->hup;
}

int corio__fd_watch(corio_loop *loop, int fd,
                    void (*cb)(corio_loop *loop, int fd, void *data),
                    void *data)
{
    struct corio__fd *f = fd >= 0 ? fd_state(loop, fd) : NULL;

    if (f == NULL) {
        if (fd < 0)
            errno = EBADF;
        return -1;
    }
    if (corio__poller_add(&loop->poller, fd) == -1 && errno != EEXIST)
        return -1;
    f->registered = true;
    f->watch = cb;
    f->watch_data = data;
    return 0;
}

void corio__fd_unwatch(corio_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nfds)
        return;
    corio__poller_del(&loop->poller, fd);
    memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

int corio_fd_forget(int fd)
{
    corio_loop *loop = corio__loop_peek(); /* never makes one */
    struct corio__fd *f;

    if (loop == NULL || fd < 0 || (size_t)fd >= loop->nfds)
        return 0;
    f = &loop->fds[fd];
    if (f->registered)
        corio__poller_del(&loop->poller, fd);
    if (f->reader != NULL)
        corio__wake(f->reader, EBADF);
    if (f->writer != NULL && f->writer != f->reader)
        corio__wake(f->writer, EBADF);
    memset(f, 0, sizeof(*f));
    return 0;
}
