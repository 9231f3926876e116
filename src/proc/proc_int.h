/* src/proc/proc_int.h -- what the proc layer's files share: pidfds (the
 * kernel's handle on one child, Linux >= 5.3) and reaping one child by its
 * pidfd, never another's status. */
#ifndef CORIO_PROC_INT_H
#define CORIO_PROC_INT_H

#include "corio/proc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* pidfd_open(pid): a close-on-exec pidfd, or -1 with errno. */
int corio__pidfd_open(pid_t pid);

/* pidfd_send_signal. Returns 0, or -1 with errno (ESRCH: reaped). */
int corio__pidfd_signal(int pidfd, int sig);

/* A child's pidfd where the kernel has none (pidfd_open: ENOSYS, as under
 * valgrind 3.19): the calls below then use the pid (waitid(P_PID), kill,
 * and a wait that looks every few milliseconds). */
#define CORIO__NO_PIDFD (-2)

/* Reap child pid (pidfd: its pidfd, or CORIO__NO_PIDFD) if it has ended
 * (block: wait until it has). Returns 1 and *code (exit status, or
 * -signal) when reaped, 0 if it still runs, -1 with errno. */
int corio__child_reap(pid_t pid, int pidfd, bool block, int *code);

/* Wait until the child has ended or deadline passed, without reaping it.
 * Returns 0, or -1 with errno ETIMEDOUT, ECANCELED. */
int corio__child_wait(pid_t pid, int pidfd, int64_t deadline);

/* Wait until fd is readable or deadline passed: in a task through the loop
 * (corio_fd_wait), on a thread without a loop with poll(2). Returns 0, or
 * -1 with errno ETIMEDOUT, ECANCELED. */
int corio__proc_wait_fd(int fd, int64_t deadline);

/* Reap child pid (blocking, EINTR retried), for a child that is ending. */
void corio__pid_reap(pid_t pid);

/* pidfd_open for a child just forked: its pidfd, CORIO__NO_PIDFD where the
 * kernel has none, or -1 with pidfd_open's errno (EMFILE, ...): the child
 * is then killed and reaped. */
int corio__pidfd_open_child(pid_t pid);

/* Send sig to a child unless reaped; one that has ended (ESRCH) is fine.
 * Returns 0, or -1 with errno. */
int corio__child_signal(pid_t pid, int pidfd, bool reaped, int sig);

/* Close a pidfd that a loop may watch. */
void corio__pidfd_close(int pidfd);

#endif
