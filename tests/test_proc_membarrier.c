/* tests/test_proc_membarrier.c -- the Pipe, the Queue and a process pool's
 * answers where membarrier is refused: their wake-up handshake puts its
 * barrier on the sleeper with Linux's membarrier (src/proc/ipc_int.h); a
 * process where it fails uses
 * full fences, and a sleeper whose membarrier fails waits in slices. A
 * seccomp filter refuses it in the peer, or in both sides; ping-pong makes
 * each side sleep on every message. (A file of its own: one test, run
 * alone, in a process that forks twice.) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corio.h"
#include "corio/ipc.h"
#include "proc_test.h"
#include "timing.h"

/* Make membarrier fail with EPERM in this process and those it forks (a
 * seccomp filter), as a kernel without it or a sandbox would. */
static int deny_membarrier(void)
{
#ifdef __NR_membarrier
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
        return -1;
    return syscall(__NR_membarrier, 0, 0, 0) == -1 && errno == EPERM ? 0 : -1;
#else
    return 0;
#endif
}

#define PONGS 3000

/* Echo PONGS messages of each kind back: pipe b -> b, queue q -> r. */
struct ponger {
    corio_pipe *b;
    corio_queue *q, *r;
};

static int ponger(void *arg)
{
    struct ponger *p = arg;
    char buf[64];

    if (deny_membarrier() == -1)
        return 3;
    for (int i = 0; i < PONGS; i++) {
        ssize_t n = corio_pipe_recv(p->b, buf, sizeof(buf), -1);

        if (n < 0 || corio_pipe_send(p->b, buf, (size_t)n, -1) != 0)
            return 1;
    }
    for (int i = 0; i < PONGS; i++) {
        ssize_t n = corio_queue_get(p->q, buf, sizeof(buf), -1);

        if (n < 0 || corio_queue_put(p->r, buf, (size_t)n, -1) != 0)
            return 2;
    }
    return 0;
}

/* A pool's work: its argument back. */
static int echo_work(const void *arg, size_t len, corio_bytes *r)
{
    r->data = malloc(len > 0 ? len : 1);
    if (r->data == NULL)
        return ENOMEM;
    memcpy(r->data, arg, len);
    r->len = len;
    return 0;
}

/* The child of the test: ping-pong (each side sleeps on every message)
 * through a Pipe and two Queues with a grandchild that has no membarrier;
 * with both (arg 1: full fences on both sides), or with this side using
 * it (arg 0: this side's per-message barrier is a compiler barrier, and
 * the grandchild, whose membarrier fails, sleeps in 1 ms slices). The race
 * those slices guard against is too narrow to force here: this checks that
 * both fallbacks carry the traffic, in order, without a stall. */
static int no_membarrier_child(void *arg)
{
    struct ponger p;
    corio_pipe *a;
    char buf[64];
    int64_t t0;
    pid_t pid;
    int status;

    if (arg != NULL && deny_membarrier() == -1)
        return 10;
    if (corio_pipe_new(&a, &p.b, NULL) == -1 ||
        (p.q = corio_queue_new(NULL)) == NULL ||
        (p.r = corio_queue_new(NULL)) == NULL)
        return 11;
    pid = fork();
    if (pid == 0)
        _exit(ponger(&p));
    t0 = corio_now();
    for (int i = 0; i < PONGS; i++) {
        if (corio_pipe_send(a, &i, sizeof(i), -1) != 0 ||
            corio_pipe_recv(a, buf, sizeof(buf), -1) != sizeof(i) ||
            memcmp(buf, &i, sizeof(i)) != 0)
            return 12;
    }
    for (int i = 0; i < PONGS; i++) {
        if (corio_queue_put(p.q, &i, sizeof(i), -1) != 0 ||
            corio_queue_get(p.r, buf, sizeof(buf), -1) != sizeof(i) ||
            memcmp(buf, &i, sizeof(i)) != 0)
            return 13;
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return 14;
    /* a process pool's answers come up a ring with the same handshake:
     * items one at a time, so that the manager sleeps on each */
    corio_workers_opts o = {.size = 1};
    corio_workers *w = corio_workers_new(&o);

    if (w == NULL)
        return 16;
    t0 = corio_now();
    for (int i = 0; i < PONGS; i++) {
        corio_future *f = corio_workers_submit(w, echo_work, &i, sizeof(i));
        const corio_bytes *b;

        if (f == NULL || corio_future_wait(f, corio_now() + 10 * CORIO_SECOND) != 0 ||
            corio_future_error(f) != 0 ||
            (b = corio_future_result(f))->len != sizeof(i) ||
            memcmp(b->data, &i, sizeof(i)) != 0)
            return 17;
        corio_future_free(f);
    }
    if (corio_workers_close(w) != 0 || corio_workers_join(w) != 0 ||
        corio_workers_free(w) != 0)
        return 18;
    if (corio_now() - t0 > (int64_t)PONGS * CORIO_MSEC)
        return 19;
    /* a missed wake-up would cost a blind slice (1 ms) per message: well
     * under that on average, whatever the machine */
    if (corio_now() - t0 > (int64_t)PONGS * CORIO_MSEC)
        return 15;
    corio_queue_free(p.q);
    corio_queue_free(p.r);
    corio_pipe_close(a);
    corio_pipe_close(p.b);
    return 0;
}

Test(proc_membarrier, pipe_queue_and_pool_work_without_it, .timeout = 60)
{
    int status;

    if (RUNNING_ON_VALGRIND)
        cr_skip_test("a seccomp filter would apply to valgrind itself");
    for (intptr_t both = 0; both < 2; both++) {
        status = reap_within(fork_run(no_membarrier_child, (void *)both),
                             30000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child failed (%s): status %#x",
                  both ? "no membarrier" : "the peer without", status);
    }
}
