/* P2: examples/p2_process.c -- multiprocessing.Process: a function run in a
 * child process, started, then joined.
 *
 * The seed:
 *
 *     def run_proc(name):
 *         print('Run child process %s (%s)...' % (name, os.getpid()))
 *
 *     print('Parent process %s.' % os.getpid())
 *     p = Process(target=run_proc, args=('test',))
 *     print('Process will start.')
 *     p.start()
 *     p.join()
 *     print('Process end.')
 *
 * corio_process_new/start/wait/free are Process(), start(), join() and
 * close(); the child's exit code is run_proc's return value (Python's
 * exitcode, a negative signal number if a signal ended it).
 *
 * Prints (pids vary):
 *     Parent process 100.
 *     Process will start.
 *     Run child process test (101)...
 *     Process end.
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static int run_proc(void *arg)
{
    const char *name = arg;

    printf("Run child process %s (%d)...\n", name, (int)getpid());
    return 0;
}

int main(void)
{
    corio_process *p;
    int code = -1;

    printf("Parent process %d.\n", (int)getpid());
    p = corio_process_new(run_proc, "test", NULL);
    if (p == NULL) {
        fprintf(stderr, "corio_process_new: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("Process will start.\n");
    if (corio_process_start(p) == -1) {
        fprintf(stderr, "corio_process_start: %s\n", corio_strerror(errno));
        corio_process_free(p);
        return 1;
    }
    if (corio_process_wait(p, -1) == -1 || corio_process_exitcode(p, &code) == -1) {
        fprintf(stderr, "corio_process_wait: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("Process end.\n");
    if (corio_process_free(p) == -1) {
        fprintf(stderr, "corio_process_free: %s\n", corio_strerror(errno));
        return 1;
    }
    return code == 0 ? 0 : 1;
}
