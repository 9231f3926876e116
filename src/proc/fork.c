/* src/proc/fork.c -- fork(2) made safe for corio: the child starts with no
 * loop.
 *
 * fork copies the forking thread only, with the memory of the whole
 * process. corio's global locks are taken around it by the pthread_atfork
 * handlers of the files that own them (slab.c, cls.c, overflow.c, run.c,
 * the thread pool), so none is left locked by a thread that the child does
 * not have. What corio_fork adds, in the child:
 *
 *   - the thread's loop is left behind. Its epoll fd, wake-up eventfd and
 *     signalfd are closed with close(2) only: the epoll set is one kernel
 *     object shared with the parent, and an epoll_ctl from the child
 *     would remove the parent's registrations. Its memory (tasks, stacks,
 *     timers) is kept reachable from `left_behind`, never freed: freeing a
 *     task runs no code of the child's, but the coroutine forking may be
 *     one of them;
 *   - the signals that loop blocked for its handlers are unblocked, and
 *     corio_run's forwarding of SIGINT/SIGTERM is undone (the handlers it
 *     replaced come back), so that SIGTERM terminates the child;
 *   - the default thread pool is remade on first use (thread/pool.c). */
#define _GNU_SOURCE
#include "corio/proc.h"
#include "proc_int.h"
#include "../task/task_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

/* The loops children have left behind (a chain through the forks). */
static corio_loop *left_behind[8];
static unsigned nleft;

static void leave_loop(void)
{
    corio_loop *loop = corio__current_loop;

    if (loop == NULL)
        return;
    corio__signals_fork_child(loop);
    if (loop->poller.fd != -1)
        close(loop->poller.fd);
    if (loop->poller.wakefd != -1)
        close(loop->poller.wakefd);
    loop->poller.fd = -1;
    loop->poller.wakefd = -1;
    left_behind[nleft++ % 8] = loop;
    corio__current_loop = NULL;
}

pid_t corio_fork(void)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid != 0)
        return pid;
    /* the handlers first, then the unblocking: a SIGTERM pending in the
     * child must meet the default action, not corio_run's forwarder */
    corio__run_fork_child();
    leave_loop();
    return 0;
}
