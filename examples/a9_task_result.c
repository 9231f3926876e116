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
        perror("corio_loop_current");
        return 1;
    }
    task = corio_task_spawn(do_some_work, &work, NULL); /* ensure_future */
    if (task == NULL) {
        perror("corio_task_spawn");
        return 1;
    }
    corio_task_wait(task, -1); /* loop.run_until_complete(task) */
    printf("Task ret: %s\n", (const char *)corio_task_result(task));
    printf("TIME: %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);

    corio_task_join(task, NULL); /* it has finished: this only frees it */
    corio_loop_close(loop);
    return 0;
}
