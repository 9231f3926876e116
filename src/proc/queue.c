/* src/proc/queue.c -- the Queue between processes (multiprocessing.Queue):
 * a bounded ring of fixed-size slots in anonymous shared memory, shared by
 * every process forked after corio_queue_new, any number of them putting
 * and getting at once.
 *
 * No lock: a process killed at any instruction must leave the queue usable.
 * Each slot has one 64-bit state word, changed only by compare-and-swap:
 *
 *    63            24 23 22 21           0
 *   +----------------+-----+--------------+
 *   | round (40 bit) | st  | pid (22 bit) |     st: FREE WRITING FULL READING
 *   +----------------+-----+--------------+
 *
 * The round is the queue position the slot serves (slot i serves positions
 * i, i+cap, i+2cap, ...). A putter at position p claims the slot with
 * (p, FREE) -> (p, WRITING, its pid) and then moves the shared tail on, so
 * the tail never waits for a putter that dies; it copies the message and
 * publishes (p, FULL). A getter at p claims (p, FULL) -> (p, READING, pid),
 * moves the head on, copies the message out and frees the slot for the next
 * round: (p+cap, FREE). Anyone who finds the head or tail behind a slot
 * already claimed moves it on (helping), so no process waits for another
 * to finish a step it may never finish.
 *
 * A claim by a dead process is the only thing that can block the queue: a
 * getter finding the head's slot WRITING, or a putter finding the tail's
 * slot still READING from the previous round. Before it sleeps, a waiter
 * checks the claimer's pid (corio__pid_is_dead: gone or a zombie) and, if
 * it is dead, frees the slot for the next round: a half-written message is
 * skipped, a message taken by a dead getter is lost with it. A live claimer
 * is waited for in short slices, so its death is noticed within 10 ms. Pids
 * fit in 22 bits (Linux's PID_MAX_LIMIT); a pid reused by a new process
 * while the slot is stuck only delays the reclaim until that process ends.
 *
 * Wake-ups are futexes on two event counts (put_seq: a message was put;
 * get_seq: a slot was freed). Bit 0 of each says that somebody sleeps on
 * it: a sleeper sets it (fetch_or), checks the ring again, and sleeps while
 * the word holds what it set; an operation that changed the ring clears it
 * and counts on by 2 (one compare-and-swap) and makes the wake-up system
 * call only if the bit was set. So nobody asleep costs no syscall, and a
 * full queue drained by a fast getter costs one wake-up, not one per
 * message (the first get clears the bit). A sleeper that times out or dies
 * leaves the bit set: one needless wake-up later. Blocking waits spin a
 * little first. A task sleeps through ipc_wait.c's waker thread.
 *
 * What this file does not do: grow (the capacity and the longest message
 * are fixed at creation), or reach processes that were not forked from the
 * creator (a named queue would put the same layout in a corio_shm). */
#define _GNU_SOURCE
#include "ipc_int.h"
#include "corio/loop.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define QUEUE_CAP_DEFAULT 128
#define QUEUE_CAP_MAX (1u << 20)
#define QUEUE_MSG_DEFAULT 4096
#define QUEUE_MSG_MAX (64u << 20)
/* How long a waiter sleeps while a claim blocks it, before it checks again
 * whether the claimer died. */
#define QUEUE_STUCK_NS (10 * 1000000LL)
#define QUEUE_SPINS 64

enum slot_state { FREE, WRITING, FULL, READING };

#define POS_MASK ((UINT64_C(1) << 40) - 1)
#define PID_MASK ((UINT64_C(1) << 22) - 1)

static inline uint64_t word_make(uint64_t round, enum slot_state st,
                                 pid_t pid)
{
    return ((round & POS_MASK) << 24) | ((uint64_t)st << 22) |
           ((uint64_t)pid & PID_MASK);
}

static inline uint64_t word_round(uint64_t w) { return w >> 24; }
static inline enum slot_state word_state(uint64_t w)
{
    return (enum slot_state)((w >> 22) & 3);
}
static inline pid_t word_pid(uint64_t w) { return (pid_t)(w & PID_MASK); }

/* The shared header, at the start of the mapping; the slots follow. The
 * counters each have a cache line, as putters and getters run on
 * different cores. */
struct qshared {
    alignas(64) _Atomic uint64_t tail;  /* next position to put */
    alignas(64) _Atomic uint64_t head;  /* next position to get */
    alignas(64) _Atomic uint32_t put_seq;   /* +2: a message came; bit 0:
                                               getters sleep on it */
    alignas(64) _Atomic uint32_t get_seq;   /* +2: a slot was freed; bit 0:
                                               putters sleep on it */
    alignas(64) _Atomic uint32_t closed;
    uint32_t capacity;
    uint32_t msg_max;
    uint64_t slot_size;                 /* bytes per slot, 64-aligned */
};

struct qslot {
    _Atomic uint64_t word;
    uint32_t len;                       /* valid while FULL or READING */
    uint32_t pad;
    unsigned char data[];
};

/* This process's handle. */
struct corio_queue {
    struct qshared *sh;
    size_t map_size;
    size_t nwaiting;                    /* tasks of this process waiting */
};

static inline struct qslot *slot_at(const struct qshared *sh, uint64_t pos)
{
    return (struct qslot *)((char *)sh + sizeof(*sh) +
                            (pos % sh->capacity) * sh->slot_size);
}

/* How far ahead a putter asks for its slots' lines. */
#define QUEUE_AHEAD 8

/* Ask for the line of a slot a later put of this process will likely
 * claim, for writing, while the caller goes on: its state word was last
 * written by a getter on another core, and the claim (a locked
 * instruction) would otherwise wait for it in full. A hint only (x86's
 * PREFETCHW; the compiler's prefetch elsewhere). */
static inline void slot_prefetch(const struct qshared *sh, uint64_t pos)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)slot_at(sh, pos)));
#else
    __builtin_prefetch(slot_at(sh, pos), 1, 3);
#endif
}


corio_queue *corio_queue_new(const corio_queue_opts *opts)
{
    size_t cap = opts != NULL && opts->capacity ? opts->capacity
                                                : QUEUE_CAP_DEFAULT;
    size_t msg = opts != NULL && opts->msg_max ? opts->msg_max
                                               : QUEUE_MSG_DEFAULT;
    struct qshared *sh;
    corio_queue *q;
    size_t slot, size, i;

    if (cap > QUEUE_CAP_MAX || msg > QUEUE_MSG_MAX) {
        errno = EINVAL;
        return NULL;
    }
    slot = (sizeof(struct qslot) + msg + 63) & ~(size_t)63;
    if (cap > (SIZE_MAX - sizeof(*sh)) / slot) {
        errno = EINVAL;
        return NULL;
    }
    size = sizeof(*sh) + cap * slot;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
              -1, 0);
    if (sh == MAP_FAILED) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    sh->capacity = (uint32_t)cap;
    sh->msg_max = (uint32_t)msg;
    sh->slot_size = slot;
    for (i = 0; i < cap; i++)
        atomic_init(&slot_at(sh, i)->word, word_make(i, FREE, 0));
    q->sh = sh;
    q->map_size = size;
    return q;
}

int corio_queue_free(corio_queue *q)
{
    if (q == NULL)
        return 0;
    if (q->nwaiting > 0) {
        errno = EBUSY;
        return -1;
    }
    munmap(q->sh, q->map_size);
    free(q);
    return 0;
}

/* Wake the sleepers of one side if there are any: the one system call of
 * a put or get, made only when somebody sleeps. The fence orders our slot
 * store before the load of the count (a waiter counts itself, then
 * re-checks the slots: one of the two sees the other); with membarrier it
 * is a compiler barrier, the sleeper paying (ipc_int.h). */
static void notify(_Atomic uint32_t *seq)
{
    uint32_t w;

    corio__ipc_waker_fence();
    w = atomic_load_explicit(seq, memory_order_relaxed);
    while (w & 1) {
        if (atomic_compare_exchange_weak(seq, &w, (w & ~1u) + 2)) {
            corio__futex_wake_all(seq);
            return;
        }
    }
}

/* Move the tail or head from pos to pos + 1, unless someone did already.
 * The compare-and-swap gets a copy of pos: on failure it stores the
 * counter's current value into its expected argument, and the caller's pos
 * must stay the position of the slot it claimed (it publishes that round
 * next; a round taken from the moved counter put a slot out of step with
 * its positions, which hung every putter and getter that reached it). */
static inline void move_on(_Atomic uint64_t *end, uint64_t pos)
{
    uint64_t expected = pos;

    atomic_compare_exchange_strong(end, &expected, pos + 1);
}

/* Free a slot that a dead process claimed, for the round after (its
 * half-written message is skipped, or the message it was taking is lost).
 * Returns true if the slot changed (by us or by someone else). */
static bool reclaim(struct qslot *s, uint64_t w, uint64_t next_round)
{
    if (!corio__pid_is_dead(word_pid(w)))
        return false;
    atomic_compare_exchange_strong(&s->word, &w,
                                   word_make(next_round, FREE, 0));
    return true;
}

/* The rest of a put once the slot of position pos is claimed (WRITING):
 * move the tail on, copy, publish. */
static void put_finish(struct qshared *sh, uint64_t pos, const void *msg,
                       size_t len)
{
    struct qslot *s = slot_at(sh, pos);

    move_on(&sh->tail, pos);
    if (len > 0)
        memcpy(s->data, msg, len);
    s->len = (uint32_t)len;
    atomic_store_explicit(&s->word, word_make(pos, FULL, 0),
                          memory_order_release);
    notify(&sh->put_seq);
    slot_prefetch(sh, pos + QUEUE_AHEAD);
}

/* The rest of a get once the slot of position pos is claimed (READING):
 * move the head on, copy out (the caller checked the size), free the slot
 * for the next round. Returns the message's length. */
static size_t get_finish(struct qshared *sh, uint64_t pos, void *buf)
{
    struct qslot *s = slot_at(sh, pos);
    size_t len;

    move_on(&sh->head, pos);
    len = s->len;
    if (len > 0)
        memcpy(buf, s->data, len);
    atomic_store_explicit(&s->word, word_make(pos + sh->capacity, FREE, 0),
                          memory_order_release);
    notify(&sh->get_seq);
    return len;
}

/* One attempt to put. *blocker receives the pid whose claim makes the
 * queue look full, if one does; with check, a dead one's claim is freed. */
static int put_once(corio_queue *q, const void *msg, size_t len, bool check,
                    pid_t *blocker)
{
    struct qshared *sh = q->sh;
    uint64_t pos, w, cap = sh->capacity;
    struct qslot *s;

    for (;;) {
        if (atomic_load_explicit(&sh->closed, memory_order_acquire)) {
            errno = CORIO_ECLOSED;
            return -1;
        }
        pos = atomic_load_explicit(&sh->tail, memory_order_acquire);
        s = slot_at(sh, pos);
        /* The usual case first: the slot is free for this round. A claim
         * without a load before it takes the line from the getter's core
         * once (a load, then a compare-and-swap, would fetch it shared,
         * then again to write); a failed claim loads the word anyway. */
        w = word_make(pos, FREE, 0);
        if (atomic_compare_exchange_strong(
                &s->word, &w, word_make(pos, WRITING, corio__ipc_pid()))) {
            put_finish(sh, pos, msg, len);
            return 0;
        }
        if (word_round(w) == ((pos + cap) & POS_MASK)) {
            /* Served and freed (or skipped) already, and the putter that
             * claimed it died before it moved the tail: move it on. */
            move_on(&sh->tail, pos);
            continue;
        }
        if (word_round(w) == (pos & POS_MASK)) {
            if (word_state(w) != FREE) {
                /* Another putter claimed it: move the tail on for it. */
                move_on(&sh->tail, pos);
                continue;
            }
            if (!atomic_compare_exchange_strong(
                    &s->word, &w, word_make(pos, WRITING, corio__ipc_pid())))
                continue;
            put_finish(sh, pos, msg, len);
            return 0;
        }
        if (word_round(w) == ((pos - cap) & POS_MASK) &&
            atomic_load(&sh->tail) == pos) {
            /* The slot still serves the round before: full. */
            if (word_state(w) == WRITING || word_state(w) == READING) {
                if (check && reclaim(s, w, pos))
                    continue;
                *blocker = word_pid(w);
            }
            errno = EAGAIN;
            return -1;
        }
        if (atomic_load(&sh->tail) == pos) {
            /* A round the tail's slot never holds in a sound queue (its
             * rounds stay within one capacity of the tail): only a
             * process writing over the shared memory gets here. Report
             * no room, so that a waiter sleeps rather than spins. */
            errno = EAGAIN;
            return -1;
        }
        /* The tail moved on while we looked: look again. */
    }
}

/* One attempt to get; as put_once. */
static ssize_t get_once(corio_queue *q, void *buf, size_t size, bool check,
                        pid_t *blocker)
{
    struct qshared *sh = q->sh;
    uint64_t pos, w, cap = sh->capacity;
    struct qslot *s;
    size_t len;

    for (;;) {
        pos = atomic_load_explicit(&sh->head, memory_order_acquire);
        s = slot_at(sh, pos);
        /* The usual case first, as in put_once: claim a full slot without
         * loading it; one too big for buf is given back as it was. */
        w = word_make(pos, FULL, 0);
        if (atomic_compare_exchange_strong(
                &s->word, &w, word_make(pos, READING, corio__ipc_pid()))) {
            if (s->len > size) {
                atomic_store_explicit(&s->word, word_make(pos, FULL, 0),
                                      memory_order_release);
                errno = EMSGSIZE;
                return -1;
            }
            return (ssize_t)get_finish(sh, pos, buf);
        }
        if (word_round(w) == ((pos + cap) & POS_MASK)) {
            /* Taken and freed (or skipped) already: move the head on. */
            move_on(&sh->head, pos);
            continue;
        }
        if (word_round(w) == (pos & POS_MASK)) {
            if (word_state(w) == READING) {
                move_on(&sh->head, pos);
                continue;
            }
            if (word_state(w) == FULL) {
                len = s->len;
                if (len > size) {
                    errno = EMSGSIZE;
                    return -1;
                }
                if (!atomic_compare_exchange_strong(
                        &s->word, &w, word_make(pos, READING, corio__ipc_pid())))
                    continue;
                return (ssize_t)get_finish(sh, pos, buf);
            }
            if (word_state(w) == WRITING) {
                /* A message on its way, or left half-written. */
                if (check && reclaim(s, w, pos + cap))
                    continue;
                *blocker = word_pid(w);
                errno = EAGAIN;
                return -1;
            }
        } else if (word_round(w) == ((pos - cap) & POS_MASK) &&
                   word_state(w) == READING) {
            /* The round before is still being read out: nothing for the
             * head yet, unless that reader died. */
            if (check && reclaim(s, w, pos))
                continue;
            *blocker = word_pid(w);
        }
        if (atomic_load(&sh->head) != pos)
            continue;
        if (word_round(w) == (pos & POS_MASK) &&
            atomic_load_explicit(&sh->closed, memory_order_acquire)) {
            errno = CORIO_ECLOSED;
            return -1;
        }
        errno = EAGAIN;
        return -1;
    }
}

/* The common part of a blocking put and get: try, spin a little, then
 * sleep on the other side's counter until it changes, a claim to check
 * times out, or the deadline. op is put_once or get_once behind a thunk. */
struct attempt {
    corio_queue *q;
    bool put;
    const void *msg;
    void *buf;
    size_t len;
};

static ssize_t attempt_once(struct attempt *a, bool check, pid_t *blocker)
{
    if (a->put)
        return put_once(a->q, a->msg, a->len, check, blocker);
    return get_once(a->q, a->buf, a->len, check, blocker);
}

static ssize_t attempt_wait(struct attempt *a, int64_t deadline)
{
    struct qshared *sh = a->q->sh;
    _Atomic uint32_t *seq = a->put ? &sh->get_seq : &sh->put_seq;
    enum corio__ipc_ctx ctx;
    pid_t blocker = 0;
    bool check = false;
    uint32_t seen;
    int64_t until;
    bool blind;
    ssize_t r;
    int i, rc;

    if (corio__ipc_enter(a->len, &ctx) == -1)
        return -1;
    for (;;) {
        for (i = 0; i < QUEUE_SPINS; i++) {
            blocker = 0;
            r = attempt_once(a, check, &blocker);
            if (r >= 0 || errno != EAGAIN)
                return r;
            if (ctx != CORIO__IPC_THREAD || check)
                break;
            corio__cpu_relax();
        }
        seen = atomic_fetch_or(seq, 1) | 1;
        blind = !corio__ipc_sleeper_fence();
        blocker = 0;
        r = attempt_once(a, check, &blocker);
        if (r >= 0 || errno != EAGAIN)
            return r;
        until = blocker ? corio__deadline_min(deadline,
                                              corio_now() + QUEUE_STUCK_NS)
                        : deadline;
        if (blind)
            until = corio__deadline_min(until,
                                        corio_now() + CORIO__IPC_BLIND_SLICE);
        a->q->nwaiting += ctx == CORIO__IPC_TASK;
        rc = corio__ipc_wait_word(ctx, seq, seen, until);
        a->q->nwaiting -= ctx == CORIO__IPC_TASK;
        if (rc == -1 && (errno != ETIMEDOUT || until == deadline ||
                         (deadline >= 0 && corio_now() >= deadline)))
            return -1;
        /* Woken, or a claim to look at again: a dead claimer's is freed. */
        check = blocker != 0;
    }
}

int corio_queue_put(corio_queue *q, const void *msg, size_t len,
                    int64_t deadline)
{
    struct attempt a = {.q = q, .put = true, .msg = msg, .len = len};

    if (corio__ipc_bad_args(q, msg, len))
        return -1;
    if (len > q->sh->msg_max) {
        errno = EMSGSIZE;
        return -1;
    }
    return attempt_wait(&a, deadline) == -1 ? -1 : 0;
}

ssize_t corio_queue_get(corio_queue *q, void *buf, size_t size,
                        int64_t deadline)
{
    struct attempt a = {.q = q, .put = false, .buf = buf, .len = size};

    if (corio__ipc_bad_args(q, buf, size))
        return -1;
    return attempt_wait(&a, deadline);
}

int corio_queue_try_put(corio_queue *q, const void *msg, size_t len)
{
    enum corio__ipc_ctx ctx;
    pid_t blocker = 0;

    if (corio__ipc_bad_args(q, msg, len))
        return -1;
    if (len > q->sh->msg_max) {
        errno = EMSGSIZE;
        return -1;
    }
    if (corio__ipc_enter(len, &ctx) == -1)
        return -1;
    return put_once(q, msg, len, true, &blocker) == -1 ? -1 : 0;
}

ssize_t corio_queue_try_get(corio_queue *q, void *buf, size_t size)
{
    enum corio__ipc_ctx ctx;
    pid_t blocker = 0;

    if (corio__ipc_bad_args(q, buf, size))
        return -1;
    if (corio__ipc_enter(size, &ctx) == -1)
        return -1;
    return get_once(q, buf, size, true, &blocker);
}

int corio_queue_close(corio_queue *q)
{
    struct qshared *sh;

    if (q == NULL) {
        errno = EINVAL;
        return -1;
    }
    sh = q->sh;
    if (atomic_exchange(&sh->closed, 1) != 0) {
        errno = EALREADY;
        return -1;
    }
    /* Everybody asleep wakes up and sees it. */
    atomic_fetch_add(&sh->put_seq, 2);
    atomic_fetch_add(&sh->get_seq, 2);
    corio__futex_wake_all(&sh->put_seq);
    corio__futex_wake_all(&sh->get_seq);
    return 0;
}

bool corio_queue_is_closed(const corio_queue *q)
{
    return q != NULL && atomic_load(&q->sh->closed) != 0;
}

size_t corio_queue_len(const corio_queue *q)
{
    uint64_t head, tail;

    if (q == NULL)
        return 0;
    head = atomic_load(&q->sh->head);
    tail = atomic_load(&q->sh->tail);
    return tail > head ? (size_t)(tail - head) : 0;
}

size_t corio_queue_capacity(const corio_queue *q)
{
    return q != NULL ? q->sh->capacity : 0;
}

size_t corio_queue_msg_max(const corio_queue *q)
{
    return q != NULL ? q->sh->msg_max : 0;
}

/* For the tests (tests/test_proc_queue.c): claim a slot as a put (the
 * tail's) or a get (the head's, which must hold a message) does, and return
 * without finishing, as a process killed in the middle of its copy leaves
 * it; with advance false, before it moved the tail or head on. Returns 0,
 * or -1 with errno EAGAIN (no such slot now). */
int corio__queue_claim_for_test(corio_queue *q, bool get, bool advance)
{
    struct qshared *sh = q->sh;
    _Atomic uint64_t *end = get ? &sh->head : &sh->tail;
    uint64_t pos = atomic_load(end);
    struct qslot *s = slot_at(sh, pos);
    uint64_t w = word_make(pos, get ? FULL : FREE, 0);

    if (!atomic_compare_exchange_strong(
            &s->word, &w, word_make(pos, get ? READING : WRITING,
                                    corio__ipc_pid()))) {
        errno = EAGAIN;
        return -1;
    }
    if (advance)
        move_on(end, pos);
    if (!get)
        memset(s->data, 0xee, sh->msg_max < 16 ? sh->msg_max : 16);
    return 0;
}

/* For the tests: finish the put or get that corio__queue_claim_for_test
 * claimed at position pos, as put and get do (a get copies into buf, of
 * msg_max bytes at least). Returns the length put or got. */
size_t corio__queue_finish_for_test(corio_queue *q, bool get, uint64_t pos,
                                    void *buf, size_t len)
{
    if (!get) {
        put_finish(q->sh, pos, buf, len);
        return len;
    }
    return get_finish(q->sh, pos, buf);
}
