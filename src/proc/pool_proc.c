/* src/proc/pool_proc.c -- the process pool's manager thread and its worker
 * processes.
 *
 * The manager is one thread per pool. It forks the workers (from itself: a
 * thread with no loop, no coroutine and every signal blocked, so the child
 * starts clean), gives each its own socketpair (requests go down it) and
 * ring of shared memory (answers come up it: ring_int.h), and keeps, per
 * worker, the FIFO of the items sent to it: a worker runs them in order
 * and answers in order, so the first item without an answer is the one
 * running. It polls the wake-up eventfd (submissions, close, terminate),
 * the workers' sockets (bells, and their end) and their pidfds:
 *
 *   - an answer completes the head of that worker's FIFO;
 *   - a pidfd that becomes readable is a worker that ended: what it wrote
 *     before is read first (answers are never lost), then the item it was
 *     running fails with EOWNERDEAD and its exit code, the items queued
 *     behind it go back to the front of the queue, and a new worker takes
 *     its place. A worker that ended because of maxtasksperchild has
 *     nothing in flight.
 *
 * A worker answers each item before it begins the next (a store to its
 * ring: no system call unless the manager sleeps, and then one byte on the
 * socket wakes it), so the first item without an answer is the one that
 * runs, even when the worker dies between two items: what it stored stays
 * in the manager's mapping. A worker whose ring is full waits on a futex
 * for the manager to read. Dispatch sends a worker more than one item
 * at a time (a pipeline: the manager's writes and reads are batched, that
 * is the throughput of small items) only while the items are short (their
 * mean run time, which the answers carry, under 50 us); otherwise each
 * worker holds one item at a time, so an idle worker is never left waiting
 * while another has a backlog (Pool(2) with 5 long tasks runs the 3rd when
 * a worker frees up).
 *
 * Wire format, both ways host order (same machine, same program):
 *   request:  u64 fn, u32 nitems (0: one apply), u32 len, then len bytes
 *   answer:   i32 err, u32 len, u64 ns (the time it ran), then len bytes
 *             (a chunk: per item i32 err, u32 len, bytes) */
#define _GNU_SOURCE
#include "pool_int.h"
#include "ipc_int.h"
#include "ring_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct req {
    uint64_t fn;
    uint32_t nitems;
    uint32_t len;
};

struct ans {
    int32_t err;
    uint32_t len;
    uint64_t ns;                    /* how long the item ran */
};

/* A chunk's answer, per item. */
struct entry {
    int32_t err;
    uint32_t len;
};

struct buf {
    char *p;
    size_t off, len, cap;           /* unread or unsent bytes: [off, len) */
};

struct worker {
    pid_t pid;                      /* 0: none */
    int pidfd, sock;                /* sock: requests down, bells up */
    struct corio__ring *ans;        /* answers up (shared; NULL: none) */
    struct corio__list inflight;    /* struct item.node, in the order sent */
    size_t ninflight;
    size_t sent;                    /* items in its life (maxtasksperchild) */
    struct buf in, out;
    bool eof;                       /* its socket ended: it exited (the
                                       sign of its end without a pidfd) */
};

#define PIPELINE_MAX 32
#define PIPELINE_NS (50 * CORIO_USEC)

/* The answer ring: its counters, then ANS_RING bytes (a power of two). */
#define ANS_RING (256u << 10)
#define ANS_MAP (sizeof(struct corio__ring) + ANS_RING)
#define ANS_SPINS 64

static inline unsigned char *ans_data(struct corio__ring *r)
{
    return (unsigned char *)(r + 1);
}

/* ---- Buffers ------------------------------------------------------------ */

static int buf_reserve(struct buf *b, size_t n)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= n)
        return 0;
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return 0;
    }
    size_t cap = b->cap > 0 ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(struct buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) == -1)
        return -1;
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

/* ---- The worker process ---------------------------------------------------- */

/* Run one request; append its answer to out. */
static void child_run(const struct req *rq, const char *payload,
                      struct buf *out)
{
    corio_work_fn fn = (corio_work_fn)(uintptr_t)rq->fn;
    corio_bytes arg = {(void *)payload, rq->len};
    struct ans a = {0, 0, 0};
    int64_t t0 = corio_now();
    size_t at;

    if (buf_reserve(out, sizeof(a)) == -1)
        _exit(254);
    at = out->len;
    out->len += sizeof(a);
    if (rq->nitems == 0) {
        corio_bytes r = {NULL, 0};

        a.err = fn(arg.data, arg.len, &r);
        if (a.err == 0 && r.len >= UINT32_MAX)
            a.err = EMSGSIZE;
        if (a.err == 0) {
            a.len = (uint32_t)r.len;
            if (buf_put(out, r.data, r.len) == -1)
                _exit(254);
        }
        free(r.data);
    } else {
        struct chunk_res *c = corio__chunk_run(fn, rq->nitems, &arg);

        if (c == NULL)
            _exit(254);
        for (size_t i = 0; i < c->n; i++) {
            struct entry e = {c->e[i].err, 0};

            if (e.err == 0)
                e.len = (uint32_t)c->e[i].b.len;
            if (buf_put(out, &e, sizeof(e)) == -1 ||
                buf_put(out, c->e[i].b.data, e.len) == -1)
                _exit(254);
        }
        a.len = (uint32_t)(out->len - at - sizeof(a));
        corio__chunk_res_free(c);
    }
    a.ns = (uint64_t)(corio_now() - t0);
    memcpy(out->p + at, &a, sizeof(a));
}

/* The worker's end of its answer ring. */
struct ans_out {
    struct corio__ring *r;
    uint64_t head_seen;             /* the manager's head as last read */
    int sock;                       /* its bell */
};

static bool ans_full(const struct ans_out *o, uint64_t tail)
{
    return atomic_load_explicit(&o->r->head, memory_order_acquire) ==
           tail - ANS_RING;
}

/* Wait until the manager has read some of a full ring (tail: ours). The
 * sleep is in slices (re-checking), short ones if the membarrier failed
 * (the manager may then miss the flag). */
static void answer_room_wait(struct ans_out *o, uint64_t tail)
{
    _Atomic uint32_t *sleeps = &o->r->writer_sleeps;
    int64_t slice;

    for (int i = 0; i < ANS_SPINS; i++) {
        if (!ans_full(o, tail))
            return;
        corio__cpu_relax();
    }
    atomic_store(sleeps, 1);
    slice = corio__ipc_sleeper_fence() ? 100 * CORIO_MSEC
                                       : CORIO__IPC_BLIND_SLICE;
    if (ans_full(o, tail))
        corio__futex_wait(sleeps, 1, corio_now() + slice);
    atomic_store(sleeps, 0);
}

/* Publish n answer bytes to the manager: as many as there is room for,
 * waiting for room for the rest; ring the bell if it sleeps. */
static void answer_write(struct ans_out *o, const char *p, size_t n)
{
    while (n > 0) {
        uint64_t tail = atomic_load_explicit(&o->r->tail, memory_order_relaxed);
        uint64_t room = ANS_RING - (tail - o->head_seen);
        size_t k;

        if (room < n && room < ANS_RING) {
            o->head_seen = atomic_load_explicit(&o->r->head,
                                                memory_order_acquire);
            room = ANS_RING - (tail - o->head_seen);
        }
        if (room == 0) {
            answer_room_wait(o, tail);
            continue;
        }
        k = n < room ? n : (size_t)room;
        corio__ring_copy_in(ans_data(o->r), ANS_RING, tail, p, k);
        atomic_store_explicit(&o->r->tail, tail + k, memory_order_release);
        p += k;
        n -= k;
        /* a pool that is gone: the next read of requests ends */
        corio__bell_ring(&o->r->reader_sleeps, o->sock);
    }
}

static __attribute__((noreturn)) void child_main(corio_workers *w, int sock,
                                                 struct corio__ring *ans)
{
    struct ans_out ao = {ans, 0, sock};
    struct buf in = {0}, out = {0};
    size_t done = 0, max = w->opts.maxtasksperchild;
    sigset_t none;

    sigemptyset(&none);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    if (w->opts.initializer != NULL)
        w->opts.initializer(w->opts.initarg);
    for (;;) {
        ssize_t n;

        /* every complete request in the buffer, each answered before the
         * next begins: the manager's "the first item not answered is the
         * one that runs" holds even if this process dies at any point */
        while (in.len - in.off >= sizeof(struct req) &&
               (max == 0 || done < max)) {
            struct req rq;

            memcpy(&rq, in.p + in.off, sizeof(rq));
            if (in.len - in.off < sizeof(rq) + rq.len)
                break;
            child_run(&rq, in.p + in.off + sizeof(rq), &out);
            in.off += sizeof(rq) + rq.len;
            done++;
            answer_write(&ao, out.p, out.len);
            out.off = out.len = 0;
        }
        if (max > 0 && done >= max)
            break;
        if (buf_reserve(&in, 65536) == -1)
            _exit(254);
        n = read(sock, in.p + in.len, in.cap - in.len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed: the pool is closing */
        in.len += (size_t)n;
    }
    fflush(NULL);
    _exit(0);
}

/* ---- Starting and ending workers ------------------------------------------- */

static void worker_clear(struct worker *wk)
{
    if (wk->sock != -1)
        close(wk->sock);
    if (wk->pidfd >= 0)
        close(wk->pidfd);
    if (wk->ans != NULL)
        munmap(wk->ans, ANS_MAP);
    wk->ans = NULL;
    wk->sock = wk->pidfd = -1;
    wk->pid = 0;
    wk->sent = 0;
    wk->eof = false;
    wk->in.off = wk->in.len = 0;
    wk->out.off = wk->out.len = 0;
}

/* In a worker: the pool it was forked from, so that what the manager had
 * allocated stays reachable until the worker exits (valgrind, which checks
 * each worker's leaks, would call memory held only in the manager's
 * registers lost). Volatile: a store never read is not optimised away. */
static corio_workers *volatile forked_pool;

static int worker_spawn(corio_workers *w, size_t i)
{
    struct worker *wk = &w->workers[i];
    pid_t parent = getpid();
    struct corio__ring *ans;
    int sv[2], err;
    pid_t pid;

    ans = mmap(NULL, ANS_MAP, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ans == MAP_FAILED) {
        errno = ENOMEM;
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        err = errno;
        munmap(ans, ANS_MAP);
        errno = err;
        return -1;
    }
    pid = corio_fork();
    if (pid == -1) {
        err = errno;
        close(sv[0]);
        close(sv[1]);
        munmap(ans, ANS_MAP);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        /* the child keeps its socket only */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(255);
        for (size_t j = 0; j < w->size; j++) {
            if (w->workers[j].sock != -1)
                close(w->workers[j].sock);
            if (w->workers[j].pidfd >= 0)
                close(w->workers[j].pidfd);
            if (w->workers[j].ans != NULL)
                munmap(w->workers[j].ans, ANS_MAP);
        }
        close(w->wake_fd);
        close(w->done_fd);
        close(sv[0]);
        forked_pool = w;
        child_main(w, sv[1], ans);
    }
    close(sv[1]);
    wk->pidfd = corio__pidfd_open_child(pid);
    if (wk->pidfd == -1) {
        err = errno;
        close(sv[0]);
        munmap(ans, ANS_MAP);
        errno = err;
        return -1;
    }
    wk->pid = pid;
    wk->ans = ans;
    wk->sock = sv[0];
    wk->sent = 0;
    wk->eof = false;
    fcntl(wk->sock, F_SETFL, fcntl(wk->sock, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* ---- The manager ------------------------------------------------------------ */

static void pids_update(corio_workers *w, size_t i)
{
    pthread_mutex_lock(&w->mu);
    w->pids[i] = w->workers[i].pid;
    pthread_mutex_unlock(&w->mu);
}

static void item_fail(corio_workers *w, struct item *it, int err, int code)
{
    it->err = err;
    it->exitcode = code;
    corio__item_finish(w, it);
}

/* Decode an answer's payload into the item's result. */
static int answer_decode(struct item *it, const struct ans *a, const char *p)
{
    it->err = a->err;
    if (it->nitems == 0) {
        if (a->err != 0 || a->len == 0)
            return 0;
        it->result.data = malloc(a->len);
        if (it->result.data == NULL)
            return -1;
        memcpy(it->result.data, p, a->len);
        it->result.len = a->len;
        return 0;
    }
    struct chunk_res *c = calloc(1, sizeof(*c) + it->nitems * sizeof(c->e[0]));
    const char *end = p + a->len;

    if (c == NULL)
        return -1;
    it->result.data = c;
    for (c->n = 0; c->n < it->nitems && end - p >= (ptrdiff_t)sizeof(struct entry);
         c->n++) {
        struct entry e;

        memcpy(&e, p, sizeof(e));
        p += sizeof(e);
        c->e[c->n].err = e.err;
        if (e.len > 0) {
            c->e[c->n].b.data = malloc(e.len);
            if (c->e[c->n].b.data == NULL)
                return -1;
            memcpy(c->e[c->n].b.data, p, e.len);
            c->e[c->n].b.len = e.len;
        }
        p += e.len;
    }
    return 0;
}

static bool has_answers(const struct worker *wk)
{
    return wk->pid != 0 &&
           atomic_load_explicit(&wk->ans->tail, memory_order_acquire) !=
               atomic_load_explicit(&wk->ans->head, memory_order_relaxed);
}

/* Read what worker wk stored in its ring and complete the items it
 * answered. */
static void answers_read(corio_workers *w, struct worker *wk)
{
    struct corio__ring *r = wk->ans;

    for (;;) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t n = atomic_load_explicit(&r->tail, memory_order_acquire) -
                     head;

        if (n == 0 || buf_reserve(&wk->in, n) == -1)
            return;
        corio__ring_copy_out(ans_data(r), ANS_RING, head,
                             wk->in.p + wk->in.len, n);
        wk->in.len += n;
        atomic_store_explicit(&r->head, head + n, memory_order_release);
        if (corio__ring_flag_take(&r->writer_sleeps))
            corio__futex_wake_all(&r->writer_sleeps); /* it waits for room */
        while (wk->in.len - wk->in.off >= sizeof(struct ans)) {
            struct ans a;
            struct corio__list *node;
            struct item *it;

            memcpy(&a, wk->in.p + wk->in.off, sizeof(a));
            if (wk->in.len - wk->in.off < sizeof(a) + a.len)
                break;
            node = corio__list_pop_front(&wk->inflight);
            if (node == NULL)
                abort(); /* an answer nobody asked for: our invariant */
            wk->ninflight--;
            /* the running mean of an item's time, weight 1/8 */
            w->item_ns += ((int64_t)a.ns - w->item_ns) / 8;
            it = CORIO_CONTAINER_OF(node, struct item, node);
            if (answer_decode(it, &a, wk->in.p + wk->in.off + sizeof(a)) == -1)
                it->err = ENOMEM;
            corio__item_finish(w, it);
            wk->in.off += sizeof(a) + a.len;
        }
    }
}

/* Send what is buffered for wk, as far as the socket takes it. */
static void requests_flush(struct worker *wk)
{
    while (wk->out.len > wk->out.off) {
        ssize_t n = write(wk->sock, wk->out.p + wk->out.off,
                          wk->out.len - wk->out.off);

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* full, or the worker died: its pidfd tells */
        wk->out.off += (size_t)n;
    }
    wk->out.off = wk->out.len = 0;
}

/* Worker i ended: its answers first, then its running item fails and the
 * ones behind it go back to the front of the queue. */
static void worker_ended(corio_workers *w, size_t i, struct corio__list *queue,
                         size_t *nqueued)
{
    struct worker *wk = &w->workers[i];
    struct corio__list *node;
    int code = 0;

    answers_read(w, wk);
    if (corio__child_reap(wk->pid, wk->pidfd, true, &code) != 1)
        code = -SIGKILL;
    node = corio__list_pop_front(&wk->inflight);
    if (node != NULL)
        item_fail(w, CORIO_CONTAINER_OF(node, struct item, node), EOWNERDEAD,
                  code);
    /* the others never began: back to the front, in their order */
    while (!corio__list_empty(&wk->inflight)) {
        struct corio__list *last = wk->inflight.prev;

        corio__list_remove(last);
        corio__list_push_front(queue, last);
        (*nqueued)++;
    }
    wk->ninflight = 0;
    worker_clear(wk);
    pids_update(w, i);
}

/* How many items a worker may hold: one, unless the items are short (the
 * mean of those answered so far): then a batch, so that the writes and
 * reads are batched; a long item holds up only the short ones behind it. */
static size_t depth(const corio_workers *w)
{
    return w->item_ns < PIPELINE_NS ? PIPELINE_MAX : 1;
}

static void dispatch(corio_workers *w, struct corio__list *queue,
                     size_t *nqueued)
{
    size_t max = w->opts.maxtasksperchild;
    size_t d = depth(w);

    for (size_t i = 0; i < w->size && *nqueued > 0; i++) {
        struct worker *wk = &w->workers[i];

        while (wk->pid != 0 && *nqueued > 0 && wk->ninflight < d &&
               (max == 0 || wk->sent < max)) {
            struct item *it = CORIO_CONTAINER_OF(queue->next, struct item, node);
            struct req rq = {(uint64_t)(uintptr_t)it->fn, it->nitems,
                             (uint32_t)it->arg.len};

            if (buf_reserve(&wk->out, sizeof(rq) + it->arg.len) == -1)
                return; /* later */
            buf_put(&wk->out, &rq, sizeof(rq));
            buf_put(&wk->out, it->arg.data, it->arg.len);
            corio__list_remove(&it->node);
            (*nqueued)--;
            corio__list_push_back(&wk->inflight, &it->node);
            wk->ninflight++;
            wk->sent++;
        }
        requests_flush(wk);
    }
}

static size_t live_workers(const corio_workers *w)
{
    size_t k = 0;

    for (size_t i = 0; i < w->size; i++)
        k += w->workers[i].pid != 0;
    return k;
}

static bool idle(const corio_workers *w, size_t nqueued)
{
    if (nqueued > 0)
        return false;
    for (size_t i = 0; i < w->size; i++)
        if (w->workers[i].ninflight > 0)
            return false;
    return true;
}

static void fail_list(corio_workers *w, struct corio__list *l, int err)
{
    struct corio__list *node;

    while ((node = corio__list_pop_front(l)) != NULL)
        item_fail(w, CORIO_CONTAINER_OF(node, struct item, node), err, 0);
}

/* Spawn the missing workers. With none at all and none possible, the
 * queue fails with the reason (nothing would ever run it). */
static void respawn(corio_workers *w, struct corio__list *queue, size_t *nqueued)
{
    int err = 0;

    for (size_t i = 0; i < w->size; i++) {
        if (w->workers[i].pid != 0)
            continue;
        if (worker_spawn(w, i) == -1)
            err = errno;
        else
            pids_update(w, i);
    }
    if (err != 0 && live_workers(w) == 0) {
        fail_list(w, queue, err);
        *nqueued = 0;
    }
}

/* End every worker: killed, or told to finish (the end of its socket),
 * then reaped; what it still had fails with ECANCELED. */
static void workers_end(corio_workers *w, bool kill_them)
{
    for (size_t i = 0; i < w->size; i++) {
        struct worker *wk = &w->workers[i];
        int code;

        if (wk->pid == 0)
            continue;
        if (kill_them)
            corio__child_signal(wk->pid, wk->pidfd, false, SIGKILL);
        else
            shutdown(wk->sock, SHUT_WR);
        corio__child_reap(wk->pid, wk->pidfd, true, &code);
        fail_list(w, &wk->inflight, ECANCELED);
        wk->ninflight = 0;
        worker_clear(wk);
        pids_update(w, i);
    }
}

/* The manager is about to poll: its timeout. 0 if a ring holds answers;
 * else each ring's flag is raised (*armed), so that its worker rings the
 * bell after its next store, and checked again (the handshake of
 * ipc_int.h): -1, or 1 ms slices if the membarrier failed (a worker may
 * miss the flag). */
static int answers_wait(const corio_workers *w, bool *armed)
{
    bool blind;

    *armed = false;
    for (size_t i = 0; i < w->size; i++)
        if (has_answers(&w->workers[i]))
            return 0;
    for (size_t i = 0; i < w->size; i++)
        if (w->workers[i].pid != 0)
            atomic_store(&w->workers[i].ans->reader_sleeps, 1);
    *armed = true;
    blind = !corio__ipc_sleeper_fence();
    for (size_t i = 0; i < w->size; i++)
        if (has_answers(&w->workers[i]))
            return 0;
    return blind ? 1 : -1;
}

static void *manager_main(void *arg)
{
    corio_workers *w = arg;
    struct corio__list queue;
    size_t nqueued = 0;
    struct pollfd *pfd = w->pfd = calloc(1 + 2 * w->size, sizeof(*pfd));
    bool closing = false, terminating = false;
    uint64_t one = 1;

    corio__list_init(&queue);
    for (;;) {
        struct corio__list *node;
        uint64_t v;
        bool armed;
        nfds_t n = 0;

        __atomic_store_n(&w->wake_pending, 0, __ATOMIC_RELEASE);
        if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            abort();
        pthread_mutex_lock(&w->mu);
        while ((node = corio__list_pop_front(&w->incoming)) != NULL) {
            corio__list_push_back(&queue, node);
            nqueued++;
        }
        closing = w->closing;
        terminating = w->terminating;
        pthread_mutex_unlock(&w->mu);
        if (terminating || pfd == NULL)
            break;
        if (!(closing && idle(w, nqueued)))
            respawn(w, &queue, &nqueued);
        if (!w->started) {
            pthread_mutex_lock(&w->mu);
            w->started = true;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
        dispatch(w, &queue, &nqueued);
        if (closing && idle(w, nqueued)) {
            /* done: each worker reads the end of its socket and exits */
            workers_end(w, false);
            break;
        }

        pfd[n++] = (struct pollfd){.fd = w->wake_fd, .events = POLLIN};
        for (size_t i = 0; i < w->size; i++) {
            struct worker *wk = &w->workers[i];
            short ev = POLLIN;

            if (wk->out.len > wk->out.off)
                ev |= POLLOUT;
            pfd[n++] = (struct pollfd){.fd = wk->pid ? wk->sock : -1, .events = ev};
            pfd[n++] = (struct pollfd){.fd = wk->pid ? wk->pidfd : -1, .events = POLLIN};
        }
        if (poll(pfd, n, answers_wait(w, &armed)) == -1 && errno != EINTR)
            abort();
        for (size_t i = 0; i < w->size; i++) {
            struct worker *wk = &w->workers[i];
            struct pollfd *s = &pfd[1 + 2 * i], *d = &pfd[2 + 2 * i];

            if (wk->pid == 0)
                continue;
            if (armed)
                atomic_store_explicit(&wk->ans->reader_sleeps, 0,
                                      memory_order_relaxed);
            /* bells, or the end of its socket: it exited */
            if ((s->revents & (POLLIN | POLLHUP | POLLERR)) &&
                corio__bell_drain(wk->sock))
                wk->eof = true;
            answers_read(w, wk);
            if (s->revents & POLLOUT)
                requests_flush(wk);
            /* its pidfd, or where there is none, the end of its socket */
            if ((d->revents & POLLIN) || (wk->pidfd < 0 && wk->eof))
                worker_ended(w, i, &queue, &nqueued);
        }
    }

    /* terminate (or the end of a close): kill, reap, fail what is left */
    workers_end(w, true);
    fail_list(w, &queue, ECANCELED);
    pthread_mutex_lock(&w->mu);
    w->terminating = w->terminating || !closing;
    pthread_mutex_unlock(&w->mu);
    {
        struct corio__list rest;
        struct corio__list *node;

        corio__list_init(&rest);
        pthread_mutex_lock(&w->mu);
        while ((node = corio__list_pop_front(&w->incoming)) != NULL)
            corio__list_push_back(&rest, node);
        pthread_mutex_unlock(&w->mu);
        fail_list(w, &rest, ECANCELED);
    }
    free(pfd);
    w->pfd = NULL;
    pthread_mutex_lock(&w->mu);
    w->started = true; /* if it ended before it began (no memory) */
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (write(w->done_fd, &one, sizeof(one)) != sizeof(one))
        abort();
    return NULL;
}

void corio__pool_proc_wake(corio_workers *w)
{
    uint64_t one = 1;

    if (__atomic_exchange_n(&w->wake_pending, 1, __ATOMIC_ACQ_REL) == 0 &&
        write(w->wake_fd, &one, sizeof(one)) != sizeof(one))
        abort();
}

int corio__pool_proc_start(corio_workers *w)
{
    sigset_t all, old;
    int rc;

    w->item_ns = CORIO_SECOND;
    w->workers = calloc(w->size, sizeof(*w->workers));
    w->pids = calloc(w->size, sizeof(*w->pids));
    if (w->workers == NULL || w->pids == NULL)
        goto out;
    for (size_t i = 0; i < w->size; i++) {
        w->workers[i].sock = w->workers[i].pidfd = -1;
        corio__list_init(&w->workers[i].inflight);
    }
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd == -1)
        goto out;
    /* the manager forks the workers: a thread with no loop, no coroutine,
     * every signal blocked, and PR_SET_PDEATHSIG follows the thread that
     * forked, which lives as long as the pool */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->manager, NULL, manager_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        goto out_workers;
    }
    w->has_manager = true;
    /* the first workers are forked before this returns, while the caller
     * holds nothing else of the pool's (and valgrind, which checks each
     * worker's leaks but cannot see the stacks of the threads a fork
     * leaves behind, sees nothing of the caller's lost in them) */
    pthread_mutex_lock(&w->mu);
    while (!w->started)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return 0;

out_workers:
    rc = errno;
    close(w->wake_fd);
    errno = rc;
out:
    rc = errno;
    free(w->workers);
    free(w->pids);
    errno = rc;
    return -1;
}

void corio__pool_proc_free(corio_workers *w)
{
    if (w->has_manager)
        pthread_join(w->manager, NULL);
    for (size_t i = 0; i < w->size; i++) {
        free(w->workers[i].in.p);
        free(w->workers[i].out.p);
    }
    close(w->wake_fd);
    free(w->workers);
    free(w->pids);
}
