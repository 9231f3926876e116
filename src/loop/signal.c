/* src/loop/signal.c -- signals as loop events (asyncio's
 * add_signal_handler).
 *
 * A loop that handles signals blocks them in its thread and reads them from
 * a signalfd, watched like any fd (struct corio__fd's watch), so a handler
 * runs as an ordinary callback of the loop. Signals directed at the thread
 * (pthread_kill) reach its signalfd only: two threads with a loop each see
 * their own. */
#include "loop_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct corio__signals {
    int fd;                         /* the signalfd, or -1 */
    sigset_t set;                   /* the signals handled */
    struct {
        corio_signal_cb cb;
        void *arg;
    } h[NSIG];
};

/* The mask is the thread's, and a thread may have several loops handling
 * the same signal: it is blocked while any of them handles it, and
 * unblocked after the last, unless it was blocked before the first. */
static __thread unsigned short thread_users[NSIG];
static __thread sigset_t thread_blocked_before;

static void thread_block(int sig)
{
    sigset_t one, old;

    if (thread_users[sig]++ > 0)
        return;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    if (sigismember(&old, sig))
        sigaddset(&thread_blocked_before, sig);
    else
        sigdelset(&thread_blocked_before, sig);
}

static void thread_unblock(int sig)
{
    sigset_t one;

    if (thread_users[sig] == 0 || --thread_users[sig] > 0 ||
        sigismember(&thread_blocked_before, sig))
        return;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

static bool handleable(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
           sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL;
}

static void on_signalfd(corio_loop *loop, int fd, void *data)
{
    struct corio__signals *s = data;
    struct signalfd_siginfo si;

    (void)loop;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;

        if (sig > 0 && sig < NSIG && s->h[sig].cb != NULL)
            s->h[sig].cb(sig, s->h[sig].arg);
    }
}

/* Point the signalfd at s->set (making it if needed) and watch it. */
static int update_fd(corio_loop *loop, struct corio__signals *s)
{
    int fd = signalfd(s->fd, &s->set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (fd == -1)
        return -1;
    if (s->fd == -1) {
        if (corio__fd_watch(loop, fd, on_signalfd, s) == -1) {
            int err = errno;

            close(fd);
            errno = err;
            return -1;
        }
        s->fd = fd;
    }
    return 0;
}

int corio_loop_add_signal_handler(corio_loop *loop, int sig,
                                  corio_signal_cb cb, void *arg)
{
    struct corio__signals *s;

    if (loop == NULL || cb == NULL || !handleable(sig)) {
        errno = EINVAL;
        return -1;
    }
    s = loop->signals;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        s->fd = -1;
        sigemptyset(&s->set);
        loop->signals = s;
    }
    if (!sigismember(&s->set, sig)) {
        thread_block(sig);
        sigaddset(&s->set, sig);
        if (update_fd(loop, s) == -1) {
            int err = errno;

            sigdelset(&s->set, sig);
            thread_unblock(sig);
            errno = err;
            return -1;
        }
    }
    s->h[sig].cb = cb;
    s->h[sig].arg = arg;
    return 0;
}

int corio_loop_remove_signal_handler(corio_loop *loop, int sig)
{
    struct corio__signals *s;

    if (loop == NULL || !handleable(sig)) {
        errno = EINVAL;
        return -1;
    }
    s = loop->signals;
    if (s == NULL || !sigismember(&s->set, sig))
        return 0;
    sigdelset(&s->set, sig);
    s->h[sig].cb = NULL;
    /* A pending one would be lost otherwise: it is left pending, and
     * delivered by its default action once unblocked, as asyncio does. */
    signalfd(s->fd, &s->set, SFD_NONBLOCK | SFD_CLOEXEC);
    thread_unblock(sig);
    return 1;
}

void corio__signals_close(corio_loop *loop)
{
    struct corio__signals *s = loop->signals;

    if (s == NULL)
        return;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&s->set, sig))
            corio_loop_remove_signal_handler(loop, sig);
    if (s->fd != -1) {
        corio__fd_unwatch(loop, s->fd);
        close(s->fd);
    }
    free(s);
    loop->signals = NULL;
}

void corio__signals_fork_child(corio_loop *loop)
{
    struct corio__signals *s = loop->signals;

    if (s != NULL && s->fd != -1)
        close(s->fd); /* no epoll_ctl: the epoll set is the parent's too */
    for (int sig = 1; sig < NSIG; sig++) {
        if (thread_users[sig] == 0)
            continue;
        thread_users[sig] = 1;
        thread_unblock(sig);
    }
    /* s itself is left behind with the loop (src/proc/fork.c) */
}
