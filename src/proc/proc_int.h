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

/* Reap the child of pidfd if it has ended (block: wait until it has).
 * Returns 1 and *code (exit status, or -signal) when reaped, 0 if it
 * still runs, -1 with errno. */
int corio__pidfd_reap(int pidfd, bool block, int *code);

/* Wait until the child of pidfd has ended or deadline passed, without
 * reaping it: in a task through the loop (corio_fd_wait), on a thread
 * without a loop with poll(2). Returns 0, or -1 with errno ETIMEDOUT,
 * ECANCELED. */
int corio__pidfd_wait(int pidfd, int64_t deadline);

/* Close a pidfd that a loop may watch. */
void corio__pidfd_close(int pidfd);

#endif
