/* A10: examples/a10_sleep.c -- await asyncio.sleep(x): a blocking step
 * suspends the task, and the result comes x seconds later.
 *
 * The seed (004):
 *
 *     async def do_some_work(x):
 *         print('Waiting: ', x)
 *         await asyncio.sleep(x)
 *         return 'Done after {}s'.format(x)
 *
 *     start = now()
 *     coroutine = do_some_work(2)
 *     loop = asyncio.get_event_loop()
 *     task = asyncio.ensure_future(coroutine)
 *     loop.run_until_complete(task)
 *     print('Task ret: ', task.result())
 *     print('TIME: ', now() - start)
 *
 * asyncio.sleep stands for slow I/O (a network request, a file read). At
 * `await` the loop suspends the task and is free to run others (A11 runs
 * three at once); this task resumes when its 2 s are up. corio_sleep() is
 * that await: it suspends only the calling task. It fails with ECANCELED if
 * the task is cancelled meanwhile (A15).
 *
 * Prints (the time is measured: about 2 s):
 *     Waiting:  2
 *     Task ret:  Done after 2s
 *     TIME:  2.000412
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

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
        return NULL;                            /* cancelled */
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

int main(void)
{
    int64_t start = corio_now();
    struct work work = {.x = 2};
    corio_loop *loop = corio_loop_current();
    corio_task *task;
    void *result;

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    task = corio_task_spawn(do_some_work, &work, NULL); /* ensure_future */
    if (task == NULL) {
        fprintf(stderr, "corio_task_spawn: %s\n", corio_strerror(errno));
        return 1;
    }
    /* run_until_complete(task), then task.result(), then free it. */
    if (corio_task_join(task, &result) == -1) {
        fprintf(stderr, "do_some_work: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("Task ret:  %s\n", (const char *)result);
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
