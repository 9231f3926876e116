/* T1: examples/t1_loop_thread.c -- start a thread, name it, join it; the
 * current thread's name (MainThread, LoopThread, Thread-N).
 *
 * The seed (threading):
 *
 *     def loop():
 *         print('thread %s is running...' % threading.current_thread().name)
 *         n = 0
 *         while n < 5:
 *             n = n + 1
 *             print('thread %s >>> %s' % (threading.current_thread().name, n))
 *             time.sleep(1)
 *         print('thread %s ended.' % threading.current_thread().name)
 *
 *     print('thread %s is running...' % threading.current_thread().name)
 *     t = threading.Thread(target=loop, name='LoopThread')
 *     t.start()
 *     t.join()
 *     print('thread %s ended.' % threading.current_thread().name)
 *
 * corio_thread_start runs loop() on a new OS thread named LoopThread. Here
 * the thread runs an event loop of its own (opts.loop: as corio_run, in the
 * thread), so loop() is a task and its sleeps are corio_sleep: it could
 * spawn other tasks that run while it sleeps. Threads given no name are
 * Thread-1, Thread-2, ... as in Python: two of them say so at the end.
 *
 * The seed sleeps 1 s between counts (5 s in all), and so does this program;
 * with --fast (what the tour runs) it sleeps 0.1 s.
 *
 * Prints:
 *     thread MainThread is running...
 *     thread LoopThread is running...
 *     thread LoopThread >>> 1
 *     ...
 *     thread LoopThread >>> 5
 *     thread LoopThread ended.
 *     thread Thread-1 is running...
 *     thread Thread-2 is running...
 *     thread MainThread ended.
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int64_t step_ns = CORIO_SECOND;

/* loop(): the LoopThread's main task. */
static void *loop(void *arg)
{
    const char *me = corio_thread_name(NULL); /* current_thread().name */

    (void)arg;
    printf("thread %s is running...\n", me);
    for (int n = 1; n <= 5; n++) {
        printf("thread %s >>> %d\n", me, n);
        fflush(stdout);
        if (corio_sleep(step_ns) == -1) /* time.sleep(1); ECANCELED */
            return corio_task_fail(errno);
    }
    printf("thread %s ended.\n", me);
    return NULL;
}

/* A plain thread (no loop): says its default name. */
static void *hello(void *arg)
{
    (void)arg;
    printf("thread %s is running...\n", corio_thread_name(NULL));
    fflush(stdout);
    return NULL;
}

/* Start fn on a thread, wait for its end, free it. -1 on error. */
static int run_thread(corio_fn fn, const corio_thread_opts *opts)
{
    corio_thread *t = corio_thread_start(fn, NULL, opts);
    int err;

    if (t == NULL) {
        fprintf(stderr, "corio_thread_start: %s\n", corio_strerror(errno));
        return -1;
    }
    if (corio_thread_join(t, NULL, -1) == -1) {
        fprintf(stderr, "corio_thread_join: %s\n", corio_strerror(errno));
        return -1;
    }
    err = corio_thread_error(t); /* the loop's main task failed? */
    if (corio_thread_free(t) == -1 || err != 0) {
        fprintf(stderr, "%s: %s\n", opts ? opts->name : "thread",
                corio_strerror(err ? err : errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    corio_thread_opts loop_thread = {.name = "LoopThread", .loop = true};

    if (argc > 1 && strcmp(argv[1], "--fast") == 0)
        step_ns = CORIO_SECOND / 10;
    printf("thread %s is running...\n", corio_thread_name(NULL));
    fflush(stdout);
    if (run_thread(loop, &loop_thread) == -1)
        return 1;
    if (run_thread(hello, NULL) == -1 || run_thread(hello, NULL) == -1)
        return 1;
    printf("thread %s ended.\n", corio_thread_name(NULL));
    return 0;
}
