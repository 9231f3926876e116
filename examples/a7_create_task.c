/* A7: examples/a7_create_task.c -- create_task / ensure_future: a task is
 * pending before the loop runs it, finished after.
 *
 * The seed (004):
 *
 *     async def do_work(x):
 *         print('Waiting: ', x)
 *
 *     start = now()
 *     coroutine = do_work(2)
 *     loop = asyncio.get_event_loop()
 *     task = loop.create_task(coroutine)  # or asyncio.ensure_future(coroutine)
 *     print(task)                         # <Task pending coro=<do_work() ...>>
 *     loop.run_until_complete(task)
 *     print(task)                         # <Task finished ... result=None>
 *     print('TIME: ', now() - start)
 *
 * corio_task_spawn() is create_task and ensure_future: it makes the task and
 * queues it on the loop, but nothing runs until the loop does, so the task
 * is still pending when it is printed. corio_task_wait() on main()'s stack
 * is run_until_complete(task): it runs the loop until the task ends, and,
 * unlike corio_task_join(), leaves the task alive so that it can be printed
 * again. Task states are corio's: pending, running, done, cancelled (asyncio
 * says "finished" for the last two). do_work returns nothing: NULL.
 *
 * Prints (the time is measured):
 *     <Task pending name=Task-1 coro=do_work(2)>
 *     Waiting:  2
 *     <Task done name=Task-1 coro=do_work(2) result=NULL>
 *     TIME:  0.000064
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *do_work(void *arg)
{
    long x = (long)(intptr_t)arg;

    printf("Waiting:  %ld\n", x);
    return NULL;
}

/* print(task): its state, its name, its coroutine and, once it has
 * finished, its result (a string, or NULL). */
static void print_task(corio_task *t, const char *coro)
{
    const char *state = corio_state_name(corio_task_state(t));
    const char *result = corio_task_result(t);

    if (!corio_task_is_done(t))
        printf("<Task %s name=%s coro=%s>\n", state, corio_task_name(t), coro);
    else if (result == NULL)
        printf("<Task %s name=%s coro=%s result=NULL>\n", state,
               corio_task_name(t), coro);
    else
        printf("<Task %s name=%s coro=%s result='%s'>\n", state,
               corio_task_name(t), coro, result);
}

int main(void)
{
    int64_t start = corio_now();
    corio_loop *loop = corio_loop_current();
    corio_task *task;

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    task = corio_task_spawn(do_work, (void *)2, NULL); /* loop.create_task */
    if (task == NULL) {
        fprintf(stderr, "corio_task_spawn: %s\n", corio_strerror(errno));
        return 1;
    }
    print_task(task, "do_work(2)");
    if (corio_task_wait(task, -1) == -1) { /* loop.run_until_complete(task) */
        fprintf(stderr, "corio_task_wait: %s\n", corio_strerror(errno));
        return 1;
    }
    print_task(task, "do_work(2)");
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);

    /* It has finished: join only frees it, and reports how it ended. */
    if (corio_task_join(task, NULL) == -1) {
        fprintf(stderr, "do_work: %s\n", corio_strerror(errno));
        return 1;
    }
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
