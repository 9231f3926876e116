/* tests/test_proc_queue.c -- the Queue between processes
 * (corio_queue_*): every call and error, FIFO order and sizes, deadlines,
 * close, many producer and consumer processes (count and checksum, nothing
 * lost or doubled), processes killed in the middle of a put or a get (the
 * queue stays usable), and waits from a task while the loop's other tasks
 * run.
 *
 * Children are forked and reaped with a bound (helpers/proc_test.h); every
 * test frees its queues, so valgrind sees no leak in the parent. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "corio.h"
#include "corio/ipc.h"
#include "loop_test.h"
#include "proc_test.h"
#include "timing.h"

#define MS CORIO_MSEC

int corio__queue_claim_for_test(corio_queue *q, bool get, bool advance);
size_t corio__queue_finish_for_test(corio_queue *q, bool get, uint64_t pos,
                                    void *buf, size_t len);

static corio_queue *queue(size_t cap, size_t msg_max)
{
    corio_queue_opts o = {.capacity = cap, .msg_max = msg_max};
    corio_queue *q = corio_queue_new(&o);

    cr_assert_not_null(q, "corio_queue_new: %s", corio_strerror(errno));
    return q;
}

/* ---- One process -------------------------------------------------------- */

Test(proc_queue, defaults_and_options, .timeout = 60)
{
    corio_queue *q = corio_queue_new(NULL);

    cr_assert_not_null(q);
    cr_assert_eq(corio_queue_capacity(q), 128);
    cr_assert_eq(corio_queue_msg_max(q), 4096);
    cr_assert_eq(corio_queue_len(q), 0);
    cr_assert_not(corio_queue_is_closed(q));
    cr_assert_eq(corio_queue_free(q), 0);
    cr_assert_eq(corio_queue_free(NULL), 0);

    q = queue(3, 10);
    cr_assert_eq(corio_queue_capacity(q), 3);
    cr_assert_eq(corio_queue_msg_max(q), 10);
    cr_assert_eq(corio_queue_free(q), 0);

    corio_queue_opts big = {.capacity = (1u << 20) + 1};
    cr_assert_null(corio_queue_new(&big));
    cr_assert_eq(errno, EINVAL);
    corio_queue_opts huge = {.msg_max = (64u << 20) + 1};
    cr_assert_null(corio_queue_new(&huge));
    cr_assert_eq(errno, EINVAL);
}

Test(proc_queue, fifo_sizes_and_errors, .timeout = 60)
{
    corio_queue *q = queue(4, 16);
    char buf[32];

    cr_assert_eq(corio_queue_put(q, "A", 1, -1), 0);
    cr_assert_eq(corio_queue_put(q, "", 0, -1), 0);
    cr_assert_eq(corio_queue_put(q, NULL, 0, -1), 0);
    cr_assert_eq(corio_queue_put(q, "0123456789abcdef", 16, -1), 0);
    cr_assert_eq(corio_queue_len(q), 4);
    expect_fail(corio_queue_try_put(q, "B", 1), EAGAIN);
    expect_fail(corio_queue_put(q, "B", 1, 0), ETIMEDOUT);

    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(buf[0], 'A');
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 0);
    cr_assert_eq(corio_queue_get(q, NULL, 0, -1), 0);
    /* Too small a buffer: EMSGSIZE, and the message stays. */
    expect_fail(corio_queue_get(q, buf, 15, -1), EMSGSIZE);
    expect_fail(corio_queue_try_get(q, buf, 15), EMSGSIZE);
    cr_assert_eq(corio_queue_try_get(q, buf, 16), 16);
    cr_assert_eq(memcmp(buf, "0123456789abcdef", 16), 0);
    expect_fail(corio_queue_try_get(q, buf, sizeof(buf)), EAGAIN);

    /* Bad input. */
    expect_fail(corio_queue_put(q, buf, 17, -1), EMSGSIZE);
    expect_fail(corio_queue_try_put(q, buf, 17), EMSGSIZE);
    expect_fail(corio_queue_put(NULL, "A", 1, -1), EINVAL);
    expect_fail(corio_queue_put(q, NULL, 1, -1), EINVAL);
    expect_fail(corio_queue_get(NULL, buf, 1, -1), EINVAL);
    expect_fail(corio_queue_get(q, NULL, 1, -1), EINVAL);
    expect_fail(corio_queue_try_put(NULL, "A", 1), EINVAL);
    expect_fail(corio_queue_try_get(NULL, buf, 1), EINVAL);
    expect_fail(corio_queue_close(NULL), EINVAL);
    cr_assert_not(corio_queue_is_closed(NULL));
    cr_assert_eq(corio_queue_len(NULL), 0);

    /* Many rounds through a small ring. */
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(corio_queue_put(q, &i, sizeof(i), -1), 0);
        cr_assert_eq(corio_queue_put(q, &i, sizeof(i), -1), 0);
        int a = -1, b = -1;
        cr_assert_eq(corio_queue_get(q, &a, sizeof(a), -1), sizeof(a));
        cr_assert_eq(corio_queue_get(q, &b, sizeof(b), -1), sizeof(b));
        cr_assert(a == i && b == i);
    }
    cr_assert_eq(corio_queue_free(q), 0);
}

Test(proc_queue, deadlines, .timeout = 60)
{
    corio_queue *q = queue(1, 8);
    char buf[8];
    int64_t t0 = corio_now();

    expect_fail(corio_queue_get(q, buf, sizeof(buf), t0 + 50 * MS),
                ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    cr_assert_leq(elapsed_ms(t0), 50 + test_slack_ms());
    cr_assert_eq(corio_queue_put(q, "x", 1, -1), 0);
    t0 = corio_now();
    expect_fail(corio_queue_put(q, "y", 1, t0 + 50 * MS), ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    /* A deadline in the past still takes what is there. */
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), 0), 1);
    cr_assert_eq(corio_queue_free(q), 0);
}

Test(proc_queue, close, .timeout = 60)
{
    corio_queue *q = queue(4, 8);
    char buf[8];

    cr_assert_eq(corio_queue_put(q, "a", 1, -1), 0);
    cr_assert_eq(corio_queue_close(q), 0);
    cr_assert(corio_queue_is_closed(q));
    expect_fail(corio_queue_close(q), EALREADY);
    expect_fail(corio_queue_put(q, "b", 1, -1), CORIO_ECLOSED);
    expect_fail(corio_queue_try_put(q, "b", 1), CORIO_ECLOSED);
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    expect_fail(corio_queue_get(q, buf, sizeof(buf), -1), CORIO_ECLOSED);
    expect_fail(corio_queue_try_get(q, buf, sizeof(buf)), CORIO_ECLOSED);
    cr_assert_eq(corio_queue_free(q), 0);
}

/* ---- Across processes --------------------------------------------------- */

/* A child's end: its copy of the handle is freed (valgrind traces the
 * children too), and its result is the exit code. */
static int child_done(corio_queue *q, int code)
{
    corio_queue_free(q);
    return code;
}

/* The two queues of close_wakes_other_processes: each child frees both. */
static corio_queue *closing[2];

static int get_expect_closed(void *arg)
{
    char buf[8];
    int code = corio_queue_get(arg, buf, sizeof(buf), -1) != -1 ? 1
               : errno == CORIO_ECLOSED                         ? 0
                                                                : 2;

    corio_queue_free(closing[1]);
    return child_done(closing[0], code);
}

static int put_expect_closed(void *arg)
{
    int code = corio_queue_put(arg, "z", 1, -1) != -1 ? 1
               : errno == CORIO_ECLOSED               ? 0
                                                      : 2;

    corio_queue_free(closing[1]);
    return child_done(closing[0], code);
}

Test(proc_queue, close_wakes_other_processes, .timeout = 60)
{
    corio_queue *empty = queue(2, 8), *full = queue(1, 8);

    closing[0] = empty;
    closing[1] = full;

    cr_assert_eq(corio_queue_put(full, "f", 1, -1), 0);
    pid_t g = fork_run(get_expect_closed, empty);
    pid_t p = fork_run(put_expect_closed, full);
    msleep(100);
    cr_assert_eq(corio_queue_close(empty), 0);
    cr_assert_eq(corio_queue_close(full), 0);
    reap_ok(g, 5000);
    reap_ok(p, 5000);
    cr_assert_eq(corio_queue_free(empty), 0);
    cr_assert_eq(corio_queue_free(full), 0);
}

/* Many producers and consumers: every message (producer, seq, a payload
 * of varying length and its checksum) arrives exactly once, intact. */
#define NPROD 3
#define NCONS 3
#define PER_PROD 4000
/* Under valgrind (every process traced) a tenth of them. */
#define PER_PROD_RUN (RUNNING_ON_VALGRIND ? PER_PROD / 10 : PER_PROD)

struct msg {
    uint32_t prod, seq, sum, len;
    unsigned char payload[200];
};

struct tally {
    _Atomic uint32_t seen[NPROD * PER_PROD];
    _Atomic uint32_t bad, got;
};

struct mpmc {
    corio_queue *q;
    struct tally *t;
    int id;
};

static uint32_t checksum(const unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t h = 2166136261u ^ seed;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void msg_fill(struct msg *m, uint32_t prod, uint32_t seq)
{
    m->prod = prod;
    m->seq = seq;
    m->len = (seq * 37 + prod * 11) % sizeof(m->payload);
    for (uint32_t i = 0; i < m->len; i++)
        m->payload[i] = (unsigned char)(seq + i * prod);
    m->sum = checksum(m->payload, m->len, seq ^ prod);
}

static bool msg_ok(const struct msg *m, ssize_t n)
{
    return n == (ssize_t)(offsetof(struct msg, payload) + m->len) &&
           m->prod < NPROD && m->seq < PER_PROD &&
           m->sum == checksum(m->payload, m->len, m->seq ^ m->prod);
}

static int producer(void *arg)
{
    struct mpmc *a = arg;
    struct msg m;

    for (uint32_t i = 0; i < (uint32_t)PER_PROD_RUN; i++) {
        msg_fill(&m, (uint32_t)a->id, i);
        if (corio_queue_put(a->q, &m, offsetof(struct msg, payload) + m.len,
                            -1) != 0)
            return child_done(a->q, 1);
    }
    return child_done(a->q, 0);
}

static int consumer(void *arg)
{
    struct mpmc *a = arg;
    struct msg m;
    ssize_t n;

    for (;;) {
        n = corio_queue_get(a->q, &m, sizeof(m), -1);
        if (n == -1)
            return child_done(a->q, errno == CORIO_ECLOSED ? 0 : 1);
        if (!msg_ok(&m, n)) {
            atomic_fetch_add(&a->t->bad, 1);
            continue;
        }
        atomic_fetch_add(&a->t->seen[m.prod * PER_PROD + m.seq], 1);
        atomic_fetch_add(&a->t->got, 1);
    }
}

Test(proc_queue, many_producers_and_consumers, .timeout = 60)
{
    struct tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct mpmc args[NPROD + NCONS];
    pid_t pids[NPROD + NCONS];
    corio_queue *q = queue(16, sizeof(struct msg));

    cr_assert_neq(t, MAP_FAILED);
    for (int i = 0; i < NPROD + NCONS; i++) {
        args[i] = (struct mpmc){.q = q, .t = t, .id = i < NPROD ? i : 0};
        pids[i] = fork_run(i < NPROD ? producer : consumer, &args[i]);
    }
    for (int i = 0; i < NPROD; i++)
        reap_ok(pids[i], 30000);
    /* Every message is in; the consumers drain them, then see the close. */
    cr_assert_eq(corio_queue_close(q), 0);
    for (int i = NPROD; i < NPROD + NCONS; i++)
        reap_ok(pids[i], 30000);
    cr_assert_eq(atomic_load(&t->bad), 0);
    cr_assert_eq(atomic_load(&t->got), NPROD * PER_PROD_RUN);
    for (int p = 0; p < NPROD; p++)
        for (int i = 0; i < PER_PROD; i++)
            cr_assert_eq(atomic_load(&t->seen[p * PER_PROD + i]),
                         i < PER_PROD_RUN ? 1 : 0,
                         "message %d of %d seen %u times", i, p,
                         atomic_load(&t->seen[p * PER_PROD + i]));
    cr_assert_eq(corio_queue_len(q), 0);
    cr_assert_eq(corio_queue_free(q), 0);
    munmap(t, sizeof(*t));
}

/* A put or get whose move of the tail or head another one made for it
 * (finding its slot claimed) still publishes the round it claimed, not the
 * counter's newer value: the ring stays in step. (It did not: the slot was
 * put one position out of step and every put and get that reached it hung,
 * now and then, in many_producers_and_consumers.) */
Test(proc_queue, helped_claim_keeps_its_round, .timeout = 60)
{
    corio_queue *q = queue(2, 8);
    char a[8] = "a", buf[8];

    for (uint64_t round = 0; round < 3; round++) {
        /* A put claims position 2r and stops before it moves the tail; a
         * second put moves it on for it and takes 2r+1; the first ends. */
        cr_assert_eq(corio__queue_claim_for_test(q, false, false), 0);
        cr_assert_eq(corio_queue_try_put(q, "b", 1), 0);
        cr_assert_eq(corio__queue_finish_for_test(q, false, 2 * round, a, 1),
                     1);
        cr_assert_eq(corio_queue_len(q), 2);
        /* The same for two gets: both messages come out, in their slots. */
        cr_assert_eq(corio__queue_claim_for_test(q, true, false), 0,
                     "round %d: the first message's slot is out of step",
                     (int)round);
        cr_assert_eq(corio_queue_try_get(q, buf, sizeof(buf)), 1);
        cr_assert_eq(buf[0], 'b');
        cr_assert_eq(corio__queue_finish_for_test(q, true, 2 * round, buf, 0),
                     1);
        cr_assert_eq(buf[0], 'a');
        cr_assert_eq(corio_queue_len(q), 0);
    }
    /* And the ring goes on working: every slot, several rounds. */
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(corio_queue_put(q, "c", 1, corio_now() + 1000 * MS), 0);
        cr_assert_eq(corio_queue_get(q, buf, sizeof(buf),
                                     corio_now() + 1000 * MS), 1);
        cr_assert_eq(buf[0], 'c');
    }
    cr_assert_eq(corio_queue_free(q), 0);
}

/* ---- Processes killed mid-put and mid-get ------------------------------- */

static int claim_put_and_die(void *arg)
{
    if (corio__queue_claim_for_test(arg, false, true) != 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

static int claim_put_early_and_die(void *arg)
{
    if (corio__queue_claim_for_test(arg, false, false) != 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

static int claim_get_and_die(void *arg)
{
    if (corio__queue_claim_for_test(arg, true, true) != 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

static void expect_killed(pid_t pid)
{
    int status = reap_within(pid, 5000);

    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "status %#x", status);
}

Test(proc_queue, killed_mid_put_is_skipped, .timeout = 60)
{
    corio_queue *q = queue(2, 8);
    char buf[8];

    /* The dead putter is a zombie until reaped: it counts as dead. */
    pid_t pid = fork_run(claim_put_and_die, q);
    msleep(50);
    cr_assert_eq(corio_queue_put(q, "x", 1, -1), 0);
    /* Its slot is skipped: the next message comes out. */
    int64_t t0 = corio_now();
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), t0 + 5000 * MS), 1);
    cr_assert_eq(buf[0], 'x');
    expect_killed(pid);

    /* Once reaped (gone), too; with try_get. */
    pid = fork_run(claim_put_and_die, q);
    expect_killed(pid);
    cr_assert_eq(corio_queue_put(q, "y", 1, -1), 0);
    cr_assert_eq(corio_queue_try_get(q, buf, sizeof(buf)), 1);
    cr_assert_eq(buf[0], 'y');
    expect_fail(corio_queue_try_get(q, buf, sizeof(buf)), EAGAIN);

    /* The ring goes round again as usual: both slots are whole. */
    cr_assert_eq(corio_queue_try_put(q, "1", 1), 0);
    cr_assert_eq(corio_queue_try_put(q, "2", 1), 0);
    expect_fail(corio_queue_try_put(q, "3", 1), EAGAIN);
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(buf[0], '1');
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(buf[0], '2');
    cr_assert_eq(corio_queue_free(q), 0);
}

Test(proc_queue, killed_before_moving_the_tail, .timeout = 60)
{
    corio_queue *q = queue(2, 8);
    char buf[8];

    /* The putter claimed its slot and died before it moved the tail on. */
    pid_t pid = fork_run(claim_put_early_and_die, q);
    expect_killed(pid);
    /* A getter frees the dead claim; then a putter finds the tail behind
     * a slot of the next round, and moves it on. */
    expect_fail(corio_queue_try_get(q, buf, sizeof(buf)), EAGAIN);
    cr_assert_eq(corio_queue_try_put(q, "x", 1), 0);
    cr_assert_eq(corio_queue_try_put(q, "y", 1), 0);
    expect_fail(corio_queue_try_put(q, "z", 1), EAGAIN);
    cr_assert_eq(corio_queue_try_get(q, buf, sizeof(buf)), 1);
    cr_assert_eq(buf[0], 'x');
    cr_assert_eq(corio_queue_try_get(q, buf, sizeof(buf)), 1);
    cr_assert_eq(buf[0], 'y');
    /* The other way round: a putter comes first and moves the tail on. */
    pid = fork_run(claim_put_early_and_die, q);
    expect_killed(pid);
    cr_assert_eq(corio_queue_try_put(q, "p", 1), 0);
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), corio_now() + 5000 * MS),
                 1);
    cr_assert_eq(buf[0], 'p');
    cr_assert_eq(corio_queue_free(q), 0);
}

Test(proc_queue, killed_mid_get_frees_the_slot, .timeout = 60)
{
    corio_queue *q = queue(2, 8);
    char buf[8];

    cr_assert_eq(corio_queue_put(q, "a", 1, -1), 0);
    cr_assert_eq(corio_queue_put(q, "b", 1, -1), 0);
    pid_t pid = fork_run(claim_get_and_die, q);
    msleep(50);
    /* "a" went with the dead getter; its slot comes back for a put that
     * waits (not yet reaped: a zombie). */
    int64_t t0 = corio_now();
    cr_assert_eq(corio_queue_put(q, "c", 1, t0 + 5000 * MS), 0);
    expect_killed(pid);
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(buf[0], 'b');
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(buf[0], 'c');
    cr_assert_eq(corio_queue_free(q), 0);
}

/* A storm: a putter of 64 KiB messages killed at random moments, over and
 * over; every message that comes out is whole, and the queue still works. */
#define BIG (64 * 1024)

static int big_putter(void *arg)
{
    static unsigned char m[BIG];
    uint32_t seq = 0;

    for (;;) {
        memset(m + 8, (int)(seq & 0xff), BIG - 8);
        memcpy(m, &seq, 4);
        uint32_t sum = checksum(m + 8, BIG - 8, seq);
        memcpy(m + 4, &sum, 4);
        if (corio_queue_put(arg, m, BIG, -1) != 0)
            return 1;
        seq++;
    }
}

static int big_getter(void *arg)
{
    static unsigned char m[BIG];

    for (;;)
        if (corio_queue_get(arg, m, BIG, -1) == -1)
            return 1;
}

static void drain_whole(corio_queue *q, unsigned *count)
{
    static unsigned char m[BIG];
    ssize_t n;

    while ((n = corio_queue_try_get(q, m, BIG)) >= 0) {
        uint32_t seq, sum;

        cr_assert_eq(n, BIG);
        memcpy(&seq, m, 4);
        memcpy(&sum, m + 4, 4);
        cr_assert_eq(sum, checksum(m + 8, BIG - 8, seq), "torn message");
        (*count)++;
    }
    cr_assert_eq(errno, EAGAIN);
}

Test(proc_queue, kill_storm, .timeout = 60)
{
    corio_queue *q = queue(8, BIG);
    unsigned count = 0;

    srand(42);
    for (int round = 0; round < (RUNNING_ON_VALGRIND ? 3 : 12); round++) {
        pid_t put = fork_run(big_putter, q);
        pid_t get = fork_run(big_getter, q);

        usleep(2000 + (unsigned)(rand() % 8000));
        kill(put, SIGKILL);
        usleep((unsigned)(rand() % 2000));
        kill(get, SIGKILL);
        expect_killed(put);
        expect_killed(get);
        drain_whole(q, &count);
    }
    /* Still whole: every slot can be filled and emptied again. */
    for (int i = 0; i < 8; i++)
        cr_assert_eq(corio_queue_try_put(q, &i, sizeof(i)), 0, "slot %d", i);
    expect_fail(corio_queue_try_put(q, "x", 1), EAGAIN);
    for (int i = 0; i < 8; i++) {
        int v = -1;
        cr_assert_eq(corio_queue_try_get(q, &v, sizeof(v)), sizeof(v));
        cr_assert_eq(v, i);
    }
    cr_assert_eq(corio_queue_free(q), 0);
}

/* ---- From tasks --------------------------------------------------------- */

static int put_later(void *arg)
{
    msleep(200);
    return child_done(arg, corio_queue_put(arg, "late", 4, -1) == 0 ? 0 : 1);
}

static int get_two(void *arg)
{
    char buf[8];

    msleep(500);
    for (int i = 0; i < 2; i++)
        if (corio_queue_get(arg, buf, sizeof(buf), -1) != 1)
            return child_done(arg, 1);
    return child_done(arg, 0);
}

struct task_case {
    corio_queue *q, *full;
    pid_t putter, getter;
};

static void *task_main(void *arg)
{
    struct task_case *c = arg;
    struct ticker t = {0};
    corio_task *ticker = corio_task_spawn(tick, &t, NULL);
    char buf[8];

    cr_assert_not_null(ticker);
    /* get waits for the other process; the ticker keeps ticking. */
    cr_assert_eq(corio_queue_get(c->q, buf, sizeof(buf), -1), 4);
    cr_assert_eq(memcmp(buf, "late", 4), 0);
    cr_assert_geq(atomic_load(&t.ticks), 5, "ticks %d",
                  atomic_load(&t.ticks));
    /* put waits while full until the other process takes one. */
    int before = atomic_load(&t.ticks);
    cr_assert_eq(corio_queue_put(c->full, "2", 1, -1), 0);
    cr_assert_geq(atomic_load(&t.ticks) - before, 5);
    /* A deadline from a task. */
    int64_t t0 = corio_now();
    expect_fail(corio_queue_get(c->q, buf, sizeof(buf), t0 + 50 * MS),
                ETIMEDOUT);
    cr_assert_geq(elapsed_ms(t0), 50);
    t.stop = true;
    cr_assert_eq(corio_task_join(ticker, NULL), 0);
    return NULL;
}

Test(proc_queue, awaitable_from_a_task, .timeout = 60)
{
    struct task_case c = {.q = queue(4, 8), .full = queue(1, 8)};

    cr_assert_eq(corio_queue_put(c.full, "1", 1, -1), 0);
    c.putter = fork_run(put_later, c.q);
    c.getter = fork_run(get_two, c.full);
    cr_assert_eq(corio_run(task_main, &c, NULL), 0);
    reap_ok(c.putter, 5000);
    reap_ok(c.getter, 5000);
    cr_assert_eq(corio_queue_free(c.q), 0);
    cr_assert_eq(corio_queue_free(c.full), 0);
}

static void *getter_task(void *arg)
{
    char buf[8];

    if (corio_queue_get(arg, buf, sizeof(buf), -1) == -1)
        return corio_task_fail(errno);
    return NULL;
}

static void *cancel_main(void *arg)
{
    corio_queue *q = arg;
    corio_task *g = corio_task_spawn(getter_task, q, NULL);

    cr_assert_not_null(g);
    cr_assert_eq(corio_sleep(30 * MS), 0);
    /* A task of ours waits on q: free refuses. */
    expect_fail(corio_queue_free(q), EBUSY);
    cr_assert(!corio_task_is_done(g), "getter: %s",
              corio_strerror(corio_task_error(g)));
    cr_assert_eq(corio_task_cancel(g), 1);
    expect_fail(corio_task_join(g, NULL), ECANCELED);
    /* Cancelled tasks fail at once, even with a message there. */
    cr_assert_eq(corio_queue_put(q, "m", 1, -1), 0);
    corio_task_cancel(corio_task_self());
    char buf[8];
    expect_fail(corio_queue_try_get(q, buf, sizeof(buf)), ECANCELED);
    return NULL;
}

Test(proc_queue, cancel_a_waiting_task, .timeout = 60)
{
    corio_queue *q = queue(2, 8);
    char buf[8];

    expect_fail(corio_run(cancel_main, q, NULL), ECANCELED);
    cr_assert_eq(corio_queue_get(q, buf, sizeof(buf), -1), 1);
    cr_assert_eq(corio_queue_free(q), 0);
}

static void in_callback(void *arg)
{
    char buf[8];
    int *err = ((void **)arg)[1];

    *err = corio_queue_get(((void **)arg)[0], buf, sizeof(buf), -1) == -1
               ? errno
               : 0;
}

Test(proc_queue, callback_must_not_wait, .timeout = 60)
{
    corio_loop *loop = loop_open();
    corio_queue *q = queue(2, 8);
    int err = -1;
    void *args[2] = {q, &err};

    cr_assert_eq(corio_loop_call_soon(loop, in_callback, args, NULL), 0);
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_eq(err, EDEADLK);
    cr_assert_eq(corio_queue_free(q), 0);
    loop_done(loop);
}
