/* A15: examples/a15_cancel.c -- Ctrl+C cancels the tasks, and every one of
 * them cleans up before the program ends.
 *
 * The seed (004) starts three tasks, do_some_work(1), (2) and (2) (this
 * port uses 1, 2 and 4 s, so that there is time to press Ctrl+C), and:
 *
 *     try:
 *         loop.run_until_complete(asyncio.wait(tasks))
 *     except KeyboardInterrupt as e:
 *         print(asyncio.Task.all_tasks())
 *         for task in asyncio.Task.all_tasks():
 *             print(task.cancel())          # True, True, True, True
 *         loop.stop()
 *         loop.run_forever()                # deliver the cancellations
 *     finally:
 *         loop.close()
 *
 * and, in a second version, puts the tasks and the wait in a main()
 * coroutine, so that one call cancels everything:
 *
 *         print(asyncio.gather(*asyncio.Task.all_tasks()).cancel())  # True
 *
 * In corio, corio_run() runs top() as the program's main task and turns
 * SIGINT (and SIGTERM) into the cancellation of that task: the blocking
 * call it is in fails with ECANCELED. That is the `except
 * KeyboardInterrupt` branch, and the loop keeps running, so top() can list
 * the tasks (corio_task_dump_all), cancel them (corio_task_cancel returns 1,
 * True, for a task that had not finished), and join them: each one's
 * sleep fails with ECANCELED, it prints that it was cancelled and returns.
 *
 *   a15_cancel          cancel each task: the three workers, and "wait",
 *                       the task waiting for all of them (asyncio.wait).
 *   a15_cancel --main   cancel "outer" alone, the task that spawned the
 *                       workers and is joining them (corio_task_join_all, the
 *                       gather). A task cancelled while it joins cancels
 *                       the tasks it joins: one call cancels all.
 *
 * Exit status: 0 when the tasks finish (after about 4 s), and 0 after a
 * Ctrl+C that cancelled them cleanly (the seed catches KeyboardInterrupt,
 * closes the loop and prints TIME too); 1 on any other failure, 2 on a bad
 * argument.
 *
 * Prints, without Ctrl+C (both versions; times are measured):
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     Task ret:  Done after 1s
 *     Task ret:  Done after 2s
 *     Task ret:  Done after 4s
 *     TIME:  4.001253
 *
 * With Ctrl+C half a second in (`^C` is the terminal's echo):
 *     Waiting:  1
 *     Waiting:  2
 *     Waiting:  4
 *     ^CKeyboardInterrupt (SIGINT): the main task is cancelled. All tasks:
 *     task #2 main running, cancelling (spawned at .../src/task/run.c:61)
 *     task #3 do_some_work(1) pending (spawned at .../a15_cancel.c:123)
 *     task #4 do_some_work(2) pending (spawned at .../a15_cancel.c:123)
 *     task #5 do_some_work(4) pending (spawned at .../a15_cancel.c:123)
 *     task #6 wait pending (spawned at .../a15_cancel.c:177)
 *     cancel do_some_work(1): True
 *     cancel do_some_work(2): True
 *     cancel do_some_work(4): True
 *     cancel wait: True
 *     do_some_work(1): cancelled
 *     do_some_work(2): cancelled
 *     do_some_work(4): cancelled
 *     wait: cancelled
 *     TIME:  0.502058
 *
 * and with --main, after the same list (with "outer" in place of "wait"):
 *     cancel outer: True
 *     do_some_work(1): cancelled
 *     do_some_work(2): cancelled
 *     do_some_work(4): cancelled
 *     outer: cancelled, and so were the tasks it was joining
 *     TIME:  0.501986
 *
 * A task that finished before Ctrl+C is not listed, cancel() on it is
 * False, and its result is printed as usual.
 */
#include "corio.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NWORK 3

/* do_some_work(x): its argument, and room for the string it returns. */
struct work {
    int x;
    char result[32];
};

static struct work works[NWORK] = {{.x = 1}, {.x = 2}, {.x = 4}};

static void *do_some_work(void *arg)
{
    struct work *w = arg;

    printf("Waiting:  %d\n", w->x);
    fflush(stdout);
    if (corio_sleep(w->x * CORIO_SECOND) == -1) { /* ECANCELED */
        printf("%s: cancelled\n", corio_task_name(corio_task_self()));
        return NULL;
    }
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

/* Spawn do_some_work(1), (2), (4), each named after its call. */
static int spawn_workers(corio_task **t)
{
    for (int i = 0; i < NWORK; i++) {
        char name[32];
        corio_task_attr attr = {.name = name};

        snprintf(name, sizeof(name), "do_some_work(%d)", works[i].x);
        t[i] = corio_task_spawn(do_some_work, &works[i], &attr);
        if (t[i] == NULL)
            return -1;
    }
    return 0;
}

static const char *py_bool(int r)
{
    return r == 1 ? "True" : "False";
}

/* The except KeyboardInterrupt branch begins: say why, list all tasks. */
static void interrupted(void)
{
    int sig = corio_run_signal();

    printf("KeyboardInterrupt (%s): the main task is cancelled. All tasks:\n",
           sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "no signal");
    corio_task_dump_all(stdout); /* print(asyncio.Task.all_tasks()) */
}

/* Join a worker and print its result; one that was cancelled has said so. */
static void join_worker(corio_task *t)
{
    void *result;

    if (corio_task_join(t, &result) == 0)
        printf("Task ret:  %s\n", (const char *)result);
    else if (errno != ECANCELED)
        fprintf(stderr, "a15_cancel: %s\n", corio_strerror(errno));
}

/* ---- Cancel each task -------------------------------------------------- */

/* asyncio.wait(tasks): wait until every worker has finished. */
static void *wait_all(void *arg)
{
    corio_task **t = arg;

    for (int i = 0; i < NWORK; i++) {
        if (corio_task_wait(t[i], -1) == -1) {
            printf("wait: cancelled\n");
            return NULL;
        }
    }
    return NULL;
}

static void *cancel_each(void)
{
    corio_task *t[NWORK + 1]; /* the workers, then "wait" */
    corio_task_attr wait_attr = {.name = "wait"};

    if (spawn_workers(t) == -1)
        return corio_task_fail(errno);
    t[NWORK] = corio_task_spawn(wait_all, t, &wait_attr);
    if (t[NWORK] == NULL)
        return corio_task_fail(errno);

    /* run_until_complete(asyncio.wait(tasks)), interrupted by Ctrl+C. */
    if (corio_task_wait(t[NWORK], -1) == -1) {
        interrupted();
        for (int i = 0; i <= NWORK; i++)
            printf("cancel %s: %s\n", corio_task_name(t[i]),
                   py_bool(corio_task_cancel(t[i])));
    }
    /* Join them all: the cancelled ones run their cleanup first (the
     * seed's loop.run_forever() after loop.stop()). */
    for (int i = 0; i < NWORK; i++)
        join_worker(t[i]);
    if (corio_task_join(t[NWORK], NULL) == -1 && errno != ECANCELED)
        return corio_task_fail(errno);
    return NULL;
}

/* ---- Cancel the outer task --------------------------------------------- */

/* The seed's main(): spawn the workers and join them all (gather). */
static void *outer(void *arg)
{
    corio_task *t[NWORK];
    void *results[NWORK];

    if (spawn_workers(t) == -1)
        return corio_task_fail(errno);
    if (corio_task_join_all(t, NWORK, results) == -1) {
        /* Cancelled: corio_task_join_all cancelled the workers not yet
         * joined, waited for their cleanup, and freed them. */
        printf("outer: cancelled, and so were the tasks it was joining\n");
        return NULL;
    }
    for (int i = 0; i < NWORK; i++)
        printf("Task ret:  %s\n", (const char *)results[i]);
    return NULL;
}

static void *cancel_outer(void)
{
    corio_task_attr attr = {.name = "outer"};
    corio_task *t = corio_task_spawn(outer, NULL, &attr);

    if (t == NULL)
        return corio_task_fail(errno);
    if (corio_task_wait(t, -1) == -1) { /* Ctrl+C */
        interrupted();
        printf("cancel outer: %s\n", py_bool(corio_task_cancel(t)));
    }
    if (corio_task_join(t, NULL) == -1 && errno != ECANCELED)
        return corio_task_fail(errno);
    return NULL;
}

/* The main task: corio_run cancels it on SIGINT or SIGTERM. */
static void *top(void *arg)
{
    return *(int *)arg ? cancel_outer() : cancel_each();
}

int main(int argc, char **argv)
{
    int64_t start = corio_now();
    int main_only = argc > 1 && strcmp(argv[1], "--main") == 0;
    int rc;

    if (argc > 2 || (argc == 2 && !main_only)) {
        fprintf(stderr, "usage: %s [--main]\n", argv[0]);
        return 2;
    }
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "(press Ctrl+C within 4 s to cancel the tasks)\n");
    rc = corio_run(top, &main_only, NULL);
    printf("TIME:  %.6f\n", (double)(corio_now() - start) / CORIO_SECOND);
    if (rc == -1 && !(errno == ECANCELED && corio_run_signal() != 0)) {
        fprintf(stderr, "corio_run: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
