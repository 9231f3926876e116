/* tests/test_loop_signal.c -- signals as loop events
 * (corio_loop_add_signal_handler, corio_loop_remove_signal_handler:
 * include/corio/loop.h, "Signals") and corio_run's use of them
 * (include/corio/task.h, "Running a program").
 *
 * A handled signal is blocked in the loop's thread and read from a
 * signalfd: its handler runs on the loop, as a callback (no task; it
 * cannot block), whether the signal was raised by the thread itself or
 * directed at it by another (pthread_kill). Removing the handler unblocks
 * the signal (unless it was blocked before), so it is delivered as before;
 * bad signals are EINVAL. Two threads each in corio_run see their own
 * signals. A second SIGINT ends a program whose main task does not end on
 * the first (the process dies of SIGINT): that one runs in a forked child
 * (helpers/child.h), as do the other process-wide signal tests.
 *
 * Signals are sent with raise/pthread_kill to the thread under test (a
 * process-directed signal could go to another thread of the test runner),
 * or with kill() to a forked child. Every test has the same .timeout
 * (Criterion 2.4.1 leaks when timeouts differ within a file under
 * --jobs=2, see test_thread_pool.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "loop_test.h"
#include "timing.h" /* RUNNING_ON_VALGRIND */

#define MS CORIO_MSEC
#define TIMEOUT 30
#define SLACK_MS test_slack_ms()

/* What a handler saw. */
struct seen {
    corio_loop *loop;
    int calls, sig;
    bool in_task, loop_running;
    int sleep_rc, sleep_err;
    corio_task *to_cancel;
};

static void on_signal(int sig, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    s->sig = sig;
    s->in_task = corio_task_self() != NULL;
    s->loop_running = corio_loop_is_running(s->loop);
    errno = 0;
    s->sleep_rc = corio_sleep(MS);
    s->sleep_err = errno;
    if (s->to_cancel != NULL)
        corio_task_cancel(s->to_cancel);
}

static bool blocked(int sig)
{
    sigset_t cur;

    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, sig) == 1;
}

/* A plain handler, to see a signal delivered the ordinary way. */
static volatile sig_atomic_t plain_calls;

static void plain_handler(int sig)
{
    (void)sig;
    plain_calls++;
}

static void install_plain(int sig, struct sigaction *old)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = plain_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(sig, &sa, old), 0);
    plain_calls = 0;
}

/* Run the loop a little: the signalfd is read and handlers run. */
static void run_a_little(void)
{
    cr_assert_eq(corio_sleep(20 * MS), 0);
}

/* ---- Handlers --------------------------------------------------------------- */

Test(signal, handler_runs_on_the_loop_as_a_callback, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};

    cr_assert_not(blocked(SIGUSR1));
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &s), 0);
    cr_assert(blocked(SIGUSR1), "the handled signal is blocked in the thread");
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(s.calls, 0, "the handler runs on the loop, not in raise");
    run_a_little();
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.sig, SIGUSR1);
    cr_assert_not(s.in_task, "a handler is a callback, not a task");
    cr_assert(s.loop_running);
    cr_assert_eq(s.sleep_rc, -1, "a handler cannot block");
    cr_assert_eq(s.sleep_err, EDEADLK);
    /* Directed at the thread. */
    cr_assert_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
    run_a_little();
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR1), 1);
    loop_done(loop);
}

/* Another thread directs the signal at the loop's thread while a task
 * sleeps: the handler (run by the loop) cancels the task. */
struct sender {
    pthread_t target;
    int sig;
    int64_t after_ms;
};

static void *send_later(void *arg)
{
    struct sender *s = arg;

    msleep(s->after_ms);
    pthread_kill(s->target, s->sig);
    return NULL;
}

static void *sleeps_long(void *arg)
{
    (void)arg;
    if (corio_sleep(60 * CORIO_SECOND) == -1)
        return CORIO_INT(errno);
    return NULL;
}

Test(signal, from_another_thread_while_a_task_sleeps, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    struct sender snd = {.target = pthread_self(), .sig = SIGUSR2,
                         .after_ms = 30};
    pthread_t th;
    int64_t t0 = corio_now();

    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR2, on_signal, &s), 0);
    s.to_cancel = corio_task_spawn(sleeps_long, NULL, NULL);
    cr_assert_not_null(s.to_cancel);
    cr_assert_eq(pthread_create(&th, NULL, send_later, &snd), 0);
    expect_fail(corio_task_join(s.to_cancel, NULL), ECANCELED);
    cr_assert(elapsed_ms(t0) >= 30 && elapsed_ms(t0) < 30 + SLACK_MS,
              "cancelled at %lld ms", (long long)elapsed_ms(t0));
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.sig, SIGUSR2);
    loop_done(loop);
}

/* Adding again replaces the handler; each signal has its own. */
static void on_signal_b(int sig, void *arg)
{
    on_signal(sig, arg);
}

Test(signal, replace_and_two_signals, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen a = {.loop = loop}, b = {.loop = loop}, c = {.loop = loop};

    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &a), 0);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal_b, &b),
                 0);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR2, on_signal, &c), 0);
    cr_assert_eq(raise(SIGUSR1), 0);
    run_a_little();
    cr_assert_eq(a.calls, 0, "the replaced handler ran");
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(c.calls, 0);
    cr_assert_eq(raise(SIGUSR2), 0);
    run_a_little();
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.sig, SIGUSR2);
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR1), 1);
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR2), 1);
    loop_done(loop);
}

/* ---- Removing ------------------------------------------------------------- */

Test(signal, remove_unblocks_and_restores_delivery, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    struct sigaction old;

    install_plain(SIGUSR1, &old);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &s), 0);
    cr_assert(blocked(SIGUSR1));
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR1), 1);
    cr_assert_not(blocked(SIGUSR1), "still blocked after remove");
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR1), 0,
                 "none left");
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(plain_calls, 1, "the signal is delivered as before");
    run_a_little();
    cr_assert_eq(s.calls, 0);
    cr_assert_eq(sigaction(SIGUSR1, &old, NULL), 0);
    loop_done(loop);
}

/* A signal pending when its handler is removed is not lost: it is
 * delivered the ordinary way once unblocked (loop.h; asyncio does the
 * same). */
Test(signal, pending_at_remove_is_delivered_after, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    struct sigaction old;

    install_plain(SIGUSR1, &old);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &s), 0);
    cr_assert_eq(raise(SIGUSR1), 0); /* pending: the loop has not run */
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR1), 1);
    cr_assert_eq(plain_calls, 1);
    run_a_little();
    cr_assert_eq(s.calls, 0);
    cr_assert_eq(sigaction(SIGUSR1, &old, NULL), 0);
    loop_done(loop);
}

/* A signal the thread blocked itself stays blocked after remove. */
Test(signal, blocked_before_stays_blocked, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    sigset_t one;

    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &one, NULL), 0);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR2, on_signal, &s), 0);
    cr_assert_eq(raise(SIGUSR2), 0);
    run_a_little();
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(corio_loop_remove_signal_handler(loop, SIGUSR2), 1);
    cr_assert(blocked(SIGUSR2), "remove unblocked a signal blocked before");
    cr_assert_eq(pthread_sigmask(SIG_UNBLOCK, &one, NULL), 0);
    loop_done(loop);
}

/* Closing the loop removes its handlers: the signals are unblocked. */
Test(signal, loop_close_unblocks, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};

    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &s), 0);
    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR2, on_signal, &s), 0);
    loop_done(loop);
    cr_assert_not(blocked(SIGUSR1));
    cr_assert_not(blocked(SIGUSR2));
}

/* ---- Bad arguments, and what handlers do not do ---------------------------- */

Test(signal, bad_signals_are_einval, .timeout = TIMEOUT)
{
    static const int bad[] = {0,       -1,     SIGKILL, SIGSTOP, SIGSEGV,
                              SIGBUS,  SIGFPE, SIGILL,  NSIG,    NSIG + 1};
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    sigset_t before, after;

    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        cr_assert_eq(corio_loop_add_signal_handler(loop, bad[i], on_signal, &s),
                     -1, "signal %d", bad[i]);
        cr_assert_eq(errno, EINVAL, "signal %d: %s", bad[i], strerror(errno));
        errno = 0;
        cr_assert_eq(corio_loop_remove_signal_handler(loop, bad[i]), -1,
                     "signal %d", bad[i]);
        cr_assert_eq(errno, EINVAL, "signal %d", bad[i]);
    }
    expect_fail(corio_loop_add_signal_handler(NULL, SIGUSR1, on_signal, &s),
                EINVAL);
    expect_fail(corio_loop_add_signal_handler(loop, SIGUSR1, NULL, &s), EINVAL);
    expect_fail(corio_loop_remove_signal_handler(NULL, SIGUSR1), EINVAL);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    for (int sig = 1; sig < NSIG; sig++)
        cr_assert_eq(sigismember(&before, sig), sigismember(&after, sig),
                     "a failed call changed the mask of signal %d", sig);
    loop_done(loop);
}

Test(signal, handlers_do_not_keep_run_until_idle_running, .timeout = TIMEOUT)
{
    corio_loop *loop = loop_open();
    struct seen s = {.loop = loop};
    int64_t t0;

    cr_assert_eq(corio_loop_add_signal_handler(loop, SIGUSR1, on_signal, &s), 0);
    t0 = corio_now();
    cr_assert_eq(corio_loop_run_until_idle(loop), 0);
    cr_assert_lt(elapsed_ms(t0), SLACK_MS);
    /* A pending one is still handled by a run that has work to do. */
    cr_assert_eq(raise(SIGUSR1), 0);
    run_a_little();
    cr_assert_eq(s.calls, 1);
    loop_done(loop);
}

/* ---- corio_run in two threads: each sees its own signals ------------------- */

struct runner {
    pthread_t th;
    int ready, stop, finished;  /* atomic */
    int rc, err, sig;           /* corio_run's, corio_run_signal() after */
    int main_err;               /* errno of the main task's failed sleep */
    void *result;
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;

    __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        if (corio_sleep(2 * MS) == -1) {
            r->main_err = errno;
            return NULL;
        }
    }
    return CORIO_INT(7);
}

static void *runner_thread(void *arg)
{
    struct runner *r = arg;

    errno = 0;
    r->rc = corio_run(runner_main, r, &r->result);
    r->err = errno;
    r->sig = corio_run_signal();
    __atomic_store_n(&r->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static bool wait_flag(int *flag, int64_t ms)
{
    int64_t deadline = corio_now() + ms * MS;

    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
        if (corio_now() > deadline)
            return false;
        msleep(1);
    }
    return true;
}

Test(signal, two_threads_in_corio_run_see_their_own, .timeout = TIMEOUT)
{
    struct runner a = {0}, b = {0};
    int64_t wait_ms = 5000 + test_extra_ms();

    cr_assert_eq(pthread_create(&a.th, NULL, runner_thread, &a), 0);
    cr_assert_eq(pthread_create(&b.th, NULL, runner_thread, &b), 0);
    cr_assert(wait_flag(&a.ready, wait_ms) && wait_flag(&b.ready, wait_ms),
              "the main tasks did not start");
    cr_assert_eq(pthread_kill(a.th, SIGTERM), 0);
    cr_assert(wait_flag(&a.finished, wait_ms), "A's corio_run did not return");
    cr_assert_eq(pthread_join(a.th, NULL), 0);
    cr_assert_eq(a.rc, -1);
    cr_assert_eq(a.err, ECANCELED);
    cr_assert_eq(a.main_err, ECANCELED);
    cr_assert_eq(a.sig, SIGTERM, "A's corio_run_signal: %d", a.sig);
    /* B goes on until told to stop. */
    msleep(50);
    cr_assert_not(__atomic_load_n(&b.finished, __ATOMIC_ACQUIRE),
                  "B ended with A's signal");
    __atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
    cr_assert(wait_flag(&b.finished, wait_ms), "B's corio_run did not return");
    cr_assert_eq(pthread_join(b.th, NULL), 0);
    cr_assert_eq(b.rc, 0, "B: %s", strerror(b.err));
    cr_assert_eq(b.main_err, 0, "B's main was cancelled: %s",
                 strerror(b.main_err));
    cr_assert_eq(CORIO_TO_INT(b.result), 7);
    cr_assert_eq(b.sig, 0, "B's corio_run_signal: %d", b.sig);
}

/* ---- corio_run and signals sent to the process (in a child) ---------------- */

/* A main task stuck in a shield: the first SIGINT cancels it, which it
 * does not see; the second ends the process with SIGINT. */
static void *stuck_main(void *arg)
{
    (void)arg;
    CORIO_SHIELD(-1);
    child_ready();
    corio_sleep(60 * CORIO_SECOND);
    return NULL;
}

static void child_stuck(void *arg)
{
    (void)arg;
    corio_run(stuck_main, NULL, NULL);
    dprintf(STDERR_FILENO, "corio_run returned\n");
    _exit(3);
}

Test(signal, second_sigint_kills_a_stuck_program, .timeout = TIMEOUT)
{
    static struct child_proc c;
    int wait_ms = (int)(5000 + test_extra_ms() * 4);
    char st[64];
    int64_t t0;

    child_start(&c, child_stuck, NULL);
    cr_assert(child_wait_ready(&c, wait_ms), "the child did not start");
    cr_assert_eq(kill(c.pid, SIGINT), 0);
    msleep(200);
    cr_assert(child_alive(&c), "the first SIGINT ended it: %s; stderr:\n%s",
              child_status_text(c.status, st, sizeof(st)), c.err);
    t0 = corio_now();
    cr_assert_eq(kill(c.pid, SIGINT), 0);
    cr_assert(child_finish(&c, wait_ms), "the second SIGINT did not end it");
    cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGINT,
              "the child ended with %s, not SIGINT; stderr:\n%s",
              child_status_text(c.status, st, sizeof(st)), c.err);
    cr_assert_lt(elapsed_ms(t0), 2000 + test_extra_ms() * 4);
}

/* A main task whose cleanup blocks in a shield: the first signal cancels
 * it, the cleanup completes, corio_run fails with ECANCELED and names the
 * signal. A second SIGTERM does not kill it (only SIGINT escalates). */
static void *cleans_up_main(void *arg)
{
    (void)arg;
    child_ready();
    if (corio_sleep(60 * CORIO_SECOND) == 0)
        return CORIO_INT(1);
    {
        CORIO_SHIELD(corio_now() + 5 * CORIO_SECOND);

        if (corio_sleep(300 * MS) == -1)
            return CORIO_INT(2);
    }
    dprintf(STDERR_FILENO, "cleaned up\n");
    return NULL;
}

static void child_cleans_up(void *arg)
{
    void *r = CORIO_INT(9);
    bool cancelled;
    int rc, err;

    (void)arg;
    errno = 0;
    rc = corio_run(cleans_up_main, NULL, &r);
    err = errno;
    cancelled = rc == -1 && err == ECANCELED;
    dprintf(STDERR_FILENO, "rc=%d errno=%d signal=%d\n%s\n", rc, err,
            corio_run_signal(),
            cancelled ? "corio_run failed with ECANCELED" : "wrong outcome");
    _exit(cancelled ? 0 : 4);
}

static void signal_then_cleanup(int sig, int second)
{
    static struct child_proc c;
    int wait_ms = (int)(5000 + test_extra_ms() * 4);
    char st[64], want[64];

    child_start(&c, child_cleans_up, NULL);
    cr_assert(child_wait_ready(&c, wait_ms), "the child did not start");
    cr_assert_eq(kill(c.pid, sig), 0);
    if (second != 0) {
        msleep(100);
        cr_assert_eq(kill(c.pid, second), 0);
    }
    cr_assert(child_finish(&c, wait_ms), "the child did not end");
    /* Under valgrind, the child's exit status is valgrind's error exit
     * code if it found anything (Criterion's own blocks count, under
     * --leak-check=full): its report is in the test's output anyway. */
    cr_assert(WIFEXITED(c.status) &&
                  (WEXITSTATUS(c.status) == 0 || RUNNING_ON_VALGRIND),
              "the child ended with %s; stderr:\n%s",
              child_status_text(c.status, st, sizeof(st)), c.err);
    cr_assert_not_null(strstr(c.err, "cleaned up"), "stderr:\n%s", c.err);
    cr_assert_not_null(strstr(c.err, "corio_run failed with ECANCELED"),
                       "stderr:\n%s", c.err);
    snprintf(want, sizeof(want), "signal=%d", sig);
    cr_assert_not_null(strstr(c.err, want), "stderr:\n%s", c.err);
}

Test(signal, sigint_lets_a_shielded_cleanup_finish, .timeout = TIMEOUT)
{
    signal_then_cleanup(SIGINT, 0);
}

Test(signal, sigterm_twice_does_not_kill, .timeout = TIMEOUT)
{
    signal_then_cleanup(SIGTERM, SIGTERM);
}

/* Two loops of one thread handling the same signal: the mask is the
 * thread's, so removing one loop's handler (or closing the loop) leaves
 * the signal blocked while the other still handles it. */
static int two_loops_got;

static void two_loops_on_sig(int sig, void *arg)
{
    (void)sig, (void)arg;
    two_loops_got++;
}

Test(signal, two_loops_of_one_thread_share_a_signal, .timeout = 30)
{
    corio_loop *a = corio_loop_new(), *b = corio_loop_new();
    sigset_t cur;

    cr_assert(a != NULL && b != NULL);
    cr_assert_eq(corio_loop_add_signal_handler(a, SIGUSR1, two_loops_on_sig, NULL), 0);
    cr_assert_eq(corio_loop_add_signal_handler(b, SIGUSR1, two_loops_on_sig, NULL), 0);
    cr_assert_eq(corio_loop_remove_signal_handler(a, SIGUSR1), 1);
    cr_assert_eq(corio_loop_close(a), 0);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    cr_assert(sigismember(&cur, SIGUSR1), "loop b still handles SIGUSR1");
    cr_assert_eq(corio_loop_set_current(b), 0);
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(corio_sleep(20 * CORIO_MSEC), 0);
    cr_assert_eq(two_loops_got, 1);
    cr_assert_eq(corio_loop_close(b), 0);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    cr_assert_not(sigismember(&cur, SIGUSR1), "unblocked after the last");
}
