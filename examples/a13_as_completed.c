/* A13: examples/a13_as_completed.c -- as_completed: take each result as
 * soon as its task is done, in the order they finish.
 *
 * The seed (004):
 *
 *     async def do_some_work(x):
 *         print('Waiting: ', x)
 *         await asyncio.sleep(x)
 *         return 'Done after {}s'.format(x)
 *
 *     async def main():
 *         tasks = [asyncio.ensure_future(do_some_work(1)),
 *                  asyncio.ensure_future(do_some_work(2)),
 *                  asyncio.ensure_future(do_some_work(4))]
 *         for task in asyncio.as_completed(tasks):
 *             result = await task
 *             print('Task ret: {}'.format(result))
 *
 *     start = now()
 *     loop = asyncio.get_event_loop()
 *     done = loop.run_until_complete(main())
 *     print('TIME: ', now() - start)
 *
 * gather (A12) hands over all results at the end; as_completed hands over
 * each one when it is ready: after 1 s, 2 s and 4 s, 4 s in all. In corio
 * the iterator is an object: corio_as_completed_new() over the futures,
 * corio_as_completed_next() waits for the next one to finish (NULL with
 * errno CORIO_EDONE once all were returned: Python's StopIteration), and
 * corio_as_completed_free(). The order is recorded from the moment the
 * iterator is made, so a result is never missed or reordered while main is
 * busy with the previous one.
 *
 * Prints (the time is measured: about 4 s):
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret: Done after 1s
 *     Task ret: Done after 2s
 *     Task ret: Done after 4s
 *     TIME:  4.001904
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
        return corio_task_fail(errno);
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

/* The seed's main(). */
static void *top(void *arg)
{
    static struct work works[NWORK] = {{.x = 1}, {.x = 2}, {.x = 4}};
    corio_task *tasks[NWORK];
    corio_future *fs[NWORK], *f;
    corio_as_completed *it;
    int err = 0;

    for (int i = 0; i < NWORK; i++) {
        tasks[i] = corio_task_spawn(do_some_work, &works[i], NULL);
        if (tasks[i] == NULL)
            return corio_task_fail(errno);
        fs[i] = corio_task_future(tasks[i]);
    }
    it = corio_as_completed_new(fs, NWORK);
    if (it == NULL)
        err = errno;
    /* for task in asyncio.as_completed(tasks): result = await task */
    while (err == 0 && (f = corio_as_completed_next(it, -1)) != NULL) {
        printf("Task ret: %s\n", (const char *)corio_future_result(f));
        fflush(stdout); /* each as it comes, also into a pipe */
    }
    if (err == 0 && errno != CORIO_EDONE)
        err = errno; /* ECANCELED: Ctrl+C */
    corio_as_completed_free(it);
    for (int i = 0; i < NWORK; i++) {
        if (err != 0)
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

    if (corio_run(top, NULL, NULL) == -1) {
        fprintf(stderr, "a13_as_completed: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);
    return 0;
}
