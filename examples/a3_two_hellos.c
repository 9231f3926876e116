/* A3: examples/a3_two_hellos.c -- two tasks sleep at the same time, on one
 * thread.
 *
 * The seeds (000, 001, 002):
 *
 *     @asyncio.coroutine
 *     def hello():
 *         print('Hello world! (%s)' % threading.currentThread())
 *         yield from asyncio.sleep(1)
 *         print('Hello again! (%s)' % threading.currentThread())
 *
 *     loop = asyncio.get_event_loop()
 *     tasks = [hello(), hello()]
 *     loop.run_until_complete(asyncio.wait(tasks))
 *     loop.close()
 *
 * and the output they show:
 *
 *     Hello world! (<_MainThread(MainThread, started 140735195337472)>)
 *     Hello world! (<_MainThread(MainThread, started 140735195337472)>)
 *     (a pause of about 1 second)
 *     Hello again! (<_MainThread(MainThread, started 140735195337472)>)
 *     Hello again! (<_MainThread(MainThread, started 140735195337472)>)
 *
 * While the first task sleeps, the loop runs the second one, so both sleeps
 * overlap: the program takes about 1 s, not 2. The thread is printed as
 * Python prints it: its name and its pthread_self() value (Python's
 * "ident"), and it is the same thread on all four lines. The last line,
 * which the seed does not have, measures the time.
 *
 * Prints (the ident and the time are real):
 *     Hello world! (<_MainThread(MainThread, started 140244781500224)>)
 *     Hello world! (<_MainThread(MainThread, started 140244781500224)>)
 *     Hello again! (<_MainThread(MainThread, started 140244781500224)>)
 *     Hello again! (<_MainThread(MainThread, started 140244781500224)>)
 *     TIME: 1.00 s for two 1 s sleeps: they overlapped, on 1 thread
 */
#define _GNU_SOURCE
#include "corio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

/* threading.currentThread(), as Python prints it. */
static const char *current_thread(char *buf, size_t size)
{
    char name[16] = "?";

    if (gettid() == getpid()) {
        snprintf(buf, size, "<_MainThread(MainThread, started %lu)>",
                 (unsigned long)pthread_self());
    } else {
        pthread_getname_np(pthread_self(), name, sizeof(name));
        snprintf(buf, size, "<Thread(%s, started %lu)>", name,
                 (unsigned long)pthread_self());
    }
    return buf;
}

static pid_t threads_seen[2]; /* the kernel thread id of each line's thread */

static void *hello(void *arg)
{
    char buf[80];

    printf("Hello world! (%s)\n", current_thread(buf, sizeof(buf)));
    fflush(stdout);
    corio_sleep(1 * CORIO_SECOND); /* yield from asyncio.sleep(1) */
    printf("Hello again! (%s)\n", current_thread(buf, sizeof(buf)));
    threads_seen[(intptr_t)arg] = gettid();
    return NULL;
}

int main(void)
{
    corio_loop *loop = corio_loop_current();
    int64_t start = corio_now();
    corio_task *tasks[2];

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    tasks[0] = corio_task_spawn(hello, (void *)0, NULL);
    tasks[1] = corio_task_spawn(hello, (void *)1, NULL);
    if (tasks[0] == NULL || tasks[1] == NULL) {
        fprintf(stderr, "corio_task_spawn: %s\n", corio_strerror(errno));
        return 1;
    }
    /* run_until_complete(asyncio.wait(tasks)): wait for both. */
    if (corio_task_join_all(tasks, 2, NULL) == -1) {
        fprintf(stderr, "corio_task_join_all: %s\n", corio_strerror(errno));
        return 1;
    }
    if (corio_loop_close(loop) == -1)
        return 1;

    printf("TIME: %.2f s for two 1 s sleeps: they overlapped, on %d "
           "thread%s\n", (double)(corio_now() - start) / CORIO_SECOND,
           threads_seen[0] == threads_seen[1] ? 1 : 2,
           threads_seen[0] == threads_seen[1] ? "" : "s");
    return 0;
}
