/* A6: examples/a6_coroutine_vs_task.c -- a coroutine runs only once the
 * loop runs it, as a task.
 *
 * The seed (004):
 *
 *     async def do_work(x):
 *         print('waiting:%d' % x)
 *
 *     start = now()
 *     coroutine = do_work(2)           # a coroutine object: nothing runs yet
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(coroutine)   # wrapped in a task, and run
 *     print('TIME: ', now() - start)
 *
 * Calling do_work(2) in Python runs none of its code: it makes a coroutine
 * object, which the loop must run. In C the pair (do_work, 2) is that
 * object. corio_task_spawn() wraps it in a task (run_until_complete does the
 * same), and the task keeps what the coroutine alone does not: its state
 * and, later, its result. corio_task_join() on main()'s stack runs the loop until
 * the task ends. do_work does not block, so it takes no time.
 *
 * Prints (the time is measured):
 *     waiting:2
 *     TIME:  0.000051
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *do_work(void *arg)
{
    long x = (long)(intptr_t)arg;

    printf("waiting:%ld\n", x);
    return NULL;
}

/* A coroutine object: a function and its argument, not running yet. */
struct coroutine {
    corio_fn fn;
    void *arg;
};

int main(void)
{
    int64_t start = corio_now();
    struct coroutine coroutine = {do_work, (void *)2}; /* do_work(2) */
    corio_loop *loop = corio_loop_current();
    corio_task *task;

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    /* loop.run_until_complete(coroutine): wrap it in a task, run it. */
    task = corio_task_spawn(coroutine.fn, coroutine.arg, NULL);
    if (task == NULL || corio_task_join(task, NULL) == -1) {
        fprintf(stderr, "do_work: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
