/* A11: examples/a11_wait.c -- concurrency: three tasks under asyncio.wait
 * take as long as the longest, not the sum.
 *
 * The seed (004):
 *
 *     async def do_some_work(x):
 *         print('Waiting: ', x)
 *         await asyncio.sleep(x)
 *         return 'Done after {}s'.format(x)
 *
 *     start = now()
 *     tasks = [asyncio.ensure_future(do_some_work(1)),
 *              asyncio.ensure_future(do_some_work(2)),
 *              asyncio.ensure_future(do_some_work(4))]
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(asyncio.wait(tasks))
 *     for task in tasks:
 *         print('Task ret: ', task.result())
 *     print('TIME: ', now() - start)
 *
 * While one task sleeps (stands for slow I/O), the loop runs the others:
 * the three sleeps overlap, and the whole takes about 4 s; run one after
 * the other they would take 7 s. corio_run() is the loop (asyncio.run),
 * corio_futures_wait() is asyncio.wait: it returns when all the futures are done
 * (CORIO_ALL_COMPLETED), and says which are done and which are pending.
 * A task's future is corio_task_future(t); corio_task_result() reads what
 * its function returned, and corio_task_join() frees the finished task.
 *
 * Prints (the time is measured: about 4 s):
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 4s
 *     TIME:  4.001337
 */
#include "corio.h"
#include "corio/group.h"

#include <errno.h>
#include <stdio.h>

#define NWORK 3

/* do_some_work(x): its argument, and room for the string it returns. */
struct work {
    int x;
    char result[32];
};

static void *do_some_work(void *arg)
{
    struct work *w = arg;

    printf("Waiting:  %d\n", w->x);
    fflush(stdout);
    if (corio_sleep(w->x * CORIO_SECOND) == -1) /* await asyncio.sleep(x) */
        return corio_task_fail(errno);          /* cancelled */
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

static void *top(void *arg)
{
    static struct work works[NWORK] = {{.x = 1}, {.x = 2}, {.x = 4}};
    corio_task *tasks[NWORK];
    corio_future *fs[NWORK];
    int err = 0;

    for (int i = 0; i < NWORK; i++) { /* ensure_future(do_some_work(x)) */
        tasks[i] = corio_task_spawn(do_some_work, &works[i], NULL);
        if (tasks[i] == NULL)
            return corio_task_fail(errno);
        fs[i] = corio_task_future(tasks[i]);
    }
    /* asyncio.wait(tasks); done and pending are not needed here. */
    if (corio_futures_wait(fs, NWORK, CORIO_ALL_COMPLETED, NULL, NULL,
                           -1) == -1)
        err = errno;
    for (int i = 0; i < NWORK; i++) {
        if (err == 0)
            printf("Task ret:  %s\n", (const char *)corio_task_result(tasks[i]));
        else /* Ctrl+C cancelled top: wait cancels nothing, we do */
            corio_task_cancel(tasks[i]);
        /* frees the finished task; its error, if it failed */
        if (corio_task_join(tasks[i], NULL) == -1 && err == 0)
            err = errno;
    }
    return err != 0 ? corio_task_fail(err) : NULL;
}

int main(void)
{
    int64_t start = corio_now();

    if (corio_run(top, NULL, NULL) == -1) { /* run_until_complete */
        fprintf(stderr, "a11_wait: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);
    return 0;
}
