/* A8: examples/a8_done_callback.c -- add_done_callback: a function called
 * with the finished task's future.
 *
 * The seed (004):
 *
 *     async def do_some_work(x):
 *         print('Waiting: ', x)
 *         return 'Done after {}s'.format(x)
 *
 *     def callback(future):
 *         print('Callback: ', future.result())
 *
 *     start = now()
 *     coroutine = do_some_work(2)
 *     loop = asyncio.get_event_loop()
 *     task = asyncio.ensure_future(coroutine)
 *     task.add_done_callback(callback)
 *     loop.run_until_complete(task)
 *     print('TIME: ', now() - start)
 *
 * A task's result is its future's result. corio_task_future() gives that
 * future, and corio_future_add_done_callback() registers the callback: the
 * loop calls it, with the future, once the task has finished. It runs as
 * one more event of the loop, after the task's last step, so main() runs
 * the loop with corio_loop_run_until_idle() until nothing is left (the task, then its
 * callback); corio_task_wait() would return as soon as the task finished,
 * before the callback had its turn.
 *
 * Prints (the time is measured):
 *     Waiting:  2
 *     Callback:  Done after 2s
 *     TIME:  0.000071
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
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

/* Called by the loop with the task's future, once the task has finished. */
static void callback(corio_future *future, void *arg)
{
    printf("Callback:  %s\n", (const char *)corio_future_result(future));
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
    if (task == NULL ||
        corio_future_add_done_callback(corio_task_future(task), callback,
                                       NULL) == -1) {
        fprintf(stderr, "do_some_work: %s\n", corio_strerror(errno));
        return 1;
    }
    /* the task, then its callback */
    if (corio_loop_run_until_idle(loop) == -1) {
        fprintf(stderr, "corio_loop_run_until_idle: %s\n",
                corio_strerror(errno));
        return 1;
    }
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);

    /* It has finished: join only frees it, and reports how it ended. */
    if (corio_task_join(task, NULL) == -1) {
        fprintf(stderr, "do_some_work: %s\n", corio_strerror(errno));
        return 1;
    }
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
