/* src/task/run.c -- corio_run, asyncio.run for C: a fresh loop, a main
 * task, SIGINT/SIGTERM turned into its cancellation, and a clean close.
 *
 * The signals are blocked in the calling thread and read from a signalfd
 * watched by the loop, so a Ctrl+C is an ordinary loop event: the main task
 * is cancelled at its current blocking call and every cleanup runs. */
#include "task_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int run_signal;
static corio_task *run_main;
static pthread_t run_thread;

/* A SIGINT or SIGTERM sent to the process is taken by a thread that does not
 * block it: if that is another thread (made before corio_run), send it on to
 * corio_run's thread, which blocks it and reads it from the signalfd.
 * pthread_kill is async-signal-safe. */
static void forward_signal(int sig)
{
    int err = errno;

    pthread_kill(run_thread, sig);
    errno = err;
}

int corio_run_signal(void)
{
    return run_signal;
}

static void on_signal(corio_loop *loop, int sig)
{
    (void)loop;
    if (run_signal == 0)
        run_signal = sig;
    if (run_main != NULL)
        corio_task_cancel(run_main);
}

int corio_run(corio_fn fn, void *arg, void **result)
{
    corio_loop *prev = corio__loop_peek(), *loop;
    corio_task_attr attr = {.name = "main"};
    struct sigaction fwd, old_int, old_term;
    sigset_t set, old;
    corio_task *t;
    int err = 0;

    if (prev != NULL && prev->running) {
        errno = EBUSY;
        return -1;
    }
    loop = corio_loop_new();
    if (loop == NULL)
        return -1;
    corio_loop_set_current(loop);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    run_thread = pthread_self();
    memset(&fwd, 0, sizeof(fwd));
    fwd.sa_handler = forward_signal;
    fwd.sa_flags = SA_RESTART;
    sigfillset(&fwd.sa_mask);
    sigaction(SIGINT, &fwd, &old_int);
    sigaction(SIGTERM, &fwd, &old_term);
    loop->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (loop->sigfd != -1 && corio__poller_add(&loop->poller, loop->sigfd) == -1) {
        close(loop->sigfd);
        loop->sigfd = -1;
    }
    loop->on_signal = on_signal;
    run_signal = 0;

    attr.loop = loop;
    t = corio_task_spawn(fn, arg, &attr);
    if (t == NULL) {
        err = errno;
        goto out_close;
    }
    run_main = t;
    if (corio_task_join(t, result) == -1)
        err = errno;
    run_main = NULL;

out_close:
    if (loop->sigfd != -1) {
        corio__poller_del(&loop->poller, loop->sigfd);
        close(loop->sigfd);
        loop->sigfd = -1;
    }
    corio_loop_close(loop); /* cancels and finishes the other tasks */
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    corio_loop_set_current(prev);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
