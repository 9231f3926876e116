/* A12: examples/a12_nesting.c -- nesting: a main() task awaits other
 * tasks, with wait (done and pending sets) or gather (results in argument
 * order), and may hand what it awaited back to the caller of the loop.
 *
 * The seed (004) shows four versions of one program. Each spawns
 * do_some_work(1), (2) and (4) (the third version: 1, 2 and 2) from a main()
 * coroutine run by run_until_complete:
 *
 *     async def do_some_work(x):
 *         print('Waiting: ', x)
 *         await asyncio.sleep(x)
 *         return 'Done after {}s'.format(x)
 *
 *   1. dones, pendings = await asyncio.wait(tasks)       # in main()
 *      for task in dones: print('Task ret: ', task.result())
 *      ... print('TIME: ', now() - start)
 *   2. results = await asyncio.gather(*tasks)            # in main()
 *      for result in results: print('Task ret: ', result)
 *      ... print('TIME: ', now() - start)
 *   3. return await asyncio.gather(*tasks)               # main() returns it
 *      results = loop.run_until_complete(main())
 *      for result in results: print('Task ret: ', result)
 *   4. return await asyncio.wait(tasks)                  # main() returns it
 *      done, pending = loop.run_until_complete(main())
 *      for task in done: print('Task ret: ', task.result())
 *
 * corio_run() is run_until_complete(main()): its third argument receives
 * what the main task returned. corio_futures_wait() fills in the done and pending
 * sets as arrays of indices; done comes in completion order (Python's set
 * has no order, the seed printed 4s, 1s, 2s). corio_futures_gather() gives the
 * results in argument order, whatever order the tasks ended in. A main task
 * that returns what it awaited must copy it out of its own stack: version 3
 * returns a static array, version 4 a static struct.
 *
 * To keep the four versions short, one second of the seed lasts 250 ms here
 * (the lines still say "Done after 4s"); `a12_nesting --seconds` runs in
 * real seconds. TIME is measured: about 1 s per version (4 s with
 * --seconds).
 *
 * Prints:
 *     1 s of the seed = 0.25 s here (--seconds: 1 s)
 *     -- 1. main() awaits wait(tasks), prints the done set
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 4s
 *     TIME:  1.001420
 *     -- 2. main() awaits gather(*tasks), prints the results
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 4s
 *     TIME:  1.001087
 *     -- 3. return await gather(*tasks): run returns the results
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  2
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 2s
 *     -- 4. return await wait(tasks): run returns (done, pending)
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 4s
 */
#include "corio.h"
#include "corio/group.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NWORK 3

static int64_t seed_second = CORIO_SECOND / 4;

/* do_some_work(x): its argument, and room for the string it returns. */
struct work {
    int x;
    char result[32];
};

static struct work works[NWORK];

static void *do_some_work(void *arg)
{
    struct work *w = arg;

    printf("Waiting:  %d\n", w->x);
    fflush(stdout);
    if (corio_sleep(w->x * seed_second) == -1) /* await asyncio.sleep(x) */
        return corio_task_fail(errno);
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

/* Give up the first n tasks: cancelled and detached, they free themselves
 * once their cleanup has run (corio_run waits for that before it returns). */
static void abandon_work(corio_task **t, int n)
{
    for (int i = 0; i < n; i++) {
        corio_task_cancel(t[i]);
        corio_task_detach(t[i]);
    }
}

/* tasks = [ensure_future(do_some_work(x)) for x in xs]; fs: their futures.
 * Returns 0, or -1 with errno (no task is left then). */
static int spawn_work(const int *xs, corio_task **t, corio_future **fs)
{
    for (int i = 0; i < NWORK; i++) {
        works[i].x = xs[i];
        t[i] = corio_task_spawn(do_some_work, &works[i], NULL);
        if (t[i] == NULL) {
            int err = errno;

            abandon_work(t, i);
            errno = err;
            return -1;
        }
        fs[i] = corio_task_future(t[i]);
    }
    return 0;
}

/* Free the finished tasks. Returns 0, or -1 with the errno of the first
 * that failed. */
static int join_work(corio_task **t)
{
    int err = 0;

    for (int i = 0; i < NWORK; i++)
        if (corio_task_join(t[i], NULL) == -1 && err == 0)
            err = errno;
    errno = err;
    return err == 0 ? 0 : -1;
}

/* Fail main with err, giving its tasks up (Ctrl+C: they are cancelled). */
static void *fail_work(corio_task **t, int err)
{
    abandon_work(t, NWORK);
    return corio_task_fail(err);
}

static const int one_two_four[NWORK] = {1, 2, 4};

/* ---- 1. dones, pendings = await asyncio.wait(tasks) ---------------------- */

static void *main_wait(void *arg)
{
    corio_task *t[NWORK];
    corio_future *fs[NWORK];
    size_t dones[NWORK], pendings[NWORK];
    int ndone;

    if (spawn_work(one_two_four, t, fs) == -1)
        return corio_task_fail(errno);
    ndone = corio_futures_wait(fs, NWORK, CORIO_ALL_COMPLETED, dones, pendings, -1);
    if (ndone == -1)
        return fail_work(t, errno);
    for (int k = 0; k < ndone; k++) /* for task in dones */
        printf("Task ret:  %s\n", (const char *)corio_task_result(t[dones[k]]));
    return join_work(t) == 0 ? NULL : corio_task_fail(errno);
}

/* ---- 2. results = await asyncio.gather(*tasks) --------------------------- */

static void *main_gather(void *arg)
{
    corio_task *t[NWORK];
    corio_future *fs[NWORK];
    void *results[NWORK];

    if (spawn_work(one_two_four, t, fs) == -1)
        return corio_task_fail(errno);
    /* On failure (Ctrl+C) gather has cancelled the tasks and waited. */
    if (corio_futures_gather(fs, NWORK, CORIO_GATHER_FAIL_FAST, results, NULL, -1) == -1)
        return fail_work(t, errno);
    for (int i = 0; i < NWORK; i++)
        printf("Task ret:  %s\n", (const char *)results[i]);
    return join_work(t) == 0 ? NULL : corio_task_fail(errno);
}

/* ---- 3. return await asyncio.gather(*tasks) ------------------------------ */

static void *main_return_gather(void *arg)
{
    static const int one_two_two[NWORK] = {1, 2, 2};
    static void *results[NWORK]; /* outlives this task: it is the result */
    corio_task *t[NWORK];
    corio_future *fs[NWORK];

    if (spawn_work(one_two_two, t, fs) == -1)
        return corio_task_fail(errno);
    if (corio_futures_gather(fs, NWORK, CORIO_GATHER_FAIL_FAST, results, NULL, -1) == -1)
        return fail_work(t, errno);
    /* the strings live in works[], not in the tasks */
    return join_work(t) == 0 ? results : corio_task_fail(errno);
}

/* ---- 4. return await asyncio.wait(tasks) --------------------------------- */

/* (done, pending): the results of the done tasks, and the pending count. */
struct done_pending {
    const char *done[NWORK];
    int ndone;
    int npending;
};

static void *main_return_wait(void *arg)
{
    static struct done_pending dp;
    corio_task *t[NWORK];
    corio_future *fs[NWORK];
    size_t done[NWORK];

    if (spawn_work(one_two_four, t, fs) == -1)
        return corio_task_fail(errno);
    dp.ndone = corio_futures_wait(fs, NWORK, CORIO_ALL_COMPLETED, done, NULL, -1);
    if (dp.ndone == -1)
        return fail_work(t, errno);
    for (int k = 0; k < dp.ndone; k++)
        dp.done[k] = corio_task_result(t[done[k]]);
    dp.npending = NWORK - dp.ndone;
    return join_work(t) == 0 ? &dp : corio_task_fail(errno);
}

/* ---- The four runs ------------------------------------------------------- */

static double since(int64_t start)
{
    return (double)(corio_now() - start) / CORIO_SECOND;
}

int main(int argc, char **argv)
{
    int64_t start;
    void *ret;

    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--seconds") != 0)) {
        fprintf(stderr, "usage: %s [--seconds]\n", argv[0]);
        return 2;
    }
    if (argc == 2)
        seed_second = CORIO_SECOND;
    printf("1 s of the seed = %.2g s here (--seconds: 1 s)\n",
           (double)seed_second / CORIO_SECOND);

    printf("-- 1. main() awaits wait(tasks), prints the done set\n");
    start = corio_now();
    if (corio_run(main_wait, NULL, NULL) == -1)
        goto fail;
    printf("TIME:  %.6f\n", since(start));

    printf("-- 2. main() awaits gather(*tasks), prints the results\n");
    start = corio_now();
    if (corio_run(main_gather, NULL, NULL) == -1)
        goto fail;
    printf("TIME:  %.6f\n", since(start));

    printf("-- 3. return await gather(*tasks): run returns the results\n");
    if (corio_run(main_return_gather, NULL, &ret) == -1) /* results = ... */
        goto fail;
    for (int i = 0; i < NWORK; i++)
        printf("Task ret:  %s\n", (const char *)((void **)ret)[i]);

    printf("-- 4. return await wait(tasks): run returns (done, pending)\n");
    if (corio_run(main_return_wait, NULL, &ret) == -1) /* done, pending = */
        goto fail;
    for (int k = 0; k < ((struct done_pending *)ret)->ndone; k++)
        printf("Task ret:  %s\n", ((struct done_pending *)ret)->done[k]);
    return 0;

fail:
    fprintf(stderr, "a12_nesting: %s\n", corio_strerror(errno));
    return 1;
}
