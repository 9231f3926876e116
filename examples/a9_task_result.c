/* A9: examples/a9_task_result.c -- task.result(): read the result once the
 * task has finished, without a callback.
 *
 * The seed (004):
 *
 *     async def do_some_work(x):
 *         print('Waiting {}'.format(x))
 *         return 'Done after {}s'.format(x)
 *
 *     start = now()
 *     coroutine = do_some_work(2)
 *     loop = asyncio.get_event_loop()
 *     task = asyncio.ensure_future(coroutine)
 *     loop.run_until_complete(task)
 *     print('Task ret: {}'.format(task.result()))
 *     print('TIME: {}'.format(now() - start))
 *
 * Callbacks (A8) scatter the program; reading the result after the wait
 * keeps it in order. corio_task_wait() runs the loop until the task has
 * finished, corio_task_result() reads what its function returned, and
 * corio_task_join() frees it. (corio_task_join(task, &result) does all three at once:
 * asyncio's `result = await task`.)
 *
 * Prints (the time is measured):
 *     Waiting 2
 *     Task ret: Done after 2s
 *     TIME: 0.000058
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

    printf("Waiting %d\n", w->x);
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

int main(void)
{
    int64_t start = corio_now();
    struct work work = {.x = 2};
    corio_loop *loop = corio_loop_current();
    corio_task *task;

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    task = corio_task_spawn(do_some_work, &work, NULL); /* ensure_future */
    if (task == NULL) {
        fprintf(stderr, "corio_task_spawn: %s\n", corio_strerror(errno));
        return 1;
    }
    if (corio_task_wait(task, -1) == -1) { /* loop.run_until_complete(task) */
        fprintf(stderr, "corio_task_wait: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("Task ret: %s\n", (const char *)corio_task_result(task));
    printf("TIME: %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);

    /* It has finished: join only frees it, and reports how it ended. */
    if (corio_task_join(task, NULL) == -1) {
        fprintf(stderr, "do_some_work: %s\n", corio_strerror(errno));
        return 1;
    }
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
