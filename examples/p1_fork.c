/* P1: examples/p1_fork.c -- os.fork(): one call, two processes.
 *
 * The seed:
 *
 *     print('Process (%s) start...' % os.getpid())
 *     pid = os.fork()
 *     if pid == 0:
 *         print('I am child process (%s) and my parent is %s.'
 *               % (os.getpid(), os.getppid()))
 *     else:
 *         print('I (%s) just created a child process (%s).'
 *               % (os.getpid(), pid))
 *
 * corio_fork() is fork(2) made safe for a program that uses corio: stdio is
 * flushed first (the "start" line is not printed twice), and the child
 * starts with no loop (docs/proc.md, "Fork"). The parent also waits for its
 * child, so that no zombie is left and the program ends after both lines.
 * The two lines come in either order: the processes run at once.
 *
 * Prints (pids vary):
 *     Process (100) start...
 *     I (100) just created a child process (101).
 *     I am child process (101) and my parent is 100.
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    pid_t pid;
    int status;

    printf("Process (%d) start...\n", (int)getpid());
    pid = corio_fork();
    if (pid == -1) {
        fprintf(stderr, "corio_fork: %s\n", corio_strerror(errno));
        return 1;
    }
    if (pid == 0) {
        printf("I am child process (%d) and my parent is %d.\n", (int)getpid(),
               (int)getppid());
        fflush(stdout);
        _exit(0);
    }
    printf("I (%d) just created a child process (%d).\n", (int)getpid(),
           (int)pid);
    fflush(stdout);
    if (waitpid(pid, &status, 0) == -1) {
        fprintf(stderr, "waitpid: %s\n", strerror(errno));
        return 1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
