/* A14: examples/a14_future_states.c -- the states of a future: Pending,
 * Running, Done, Cancelled.
 *
 * The seed (004): "A future has these states: (1) Pending (2) Running
 * (3) Done (4) Cancelled. A task is pending when it is created, running
 * while the loop runs it, done when it has finished; to stop the loop, the
 * tasks must be cancelled first."
 *
 * corio_task_state() gives a task's state, corio_state_name() its name:
 *   pending    created and not started, or suspended in a blocking call
 *   running    the task running now (only a task can see itself running)
 *   done       finished: its function returned (corio_task_result)
 *   cancelled  finished by corio_task_cancel(): at its next blocking call,
 *              or before it ever ran
 * A plain future (corio_future_new) has the same states except running.
 *
 * Prints (the last task line comes 1 s after the others):
 *     Task-1 do_some_work(1): pending
 *     Task-2 do_some_work(2): pending
 *     Task-3 do_some_work(3): pending
 *     Task-3 cancel(): True
 *     Waiting:  1
 *     Task-1 do_some_work(1): running
 *     Waiting:  2
 *     Task-2 do_some_work(2): running
 *     Task-1 do_some_work(1): pending
 *     Task-2 do_some_work(2): pending
 *     Task-3 do_some_work(3): cancelled
 *     Task-2 cancel(): True
 *     Task-2: cancelled while it slept
 *     Task-2 do_some_work(2): cancelled
 *     Task-1 do_some_work(1): done, result 'Done after 1s'
 *     future: pending
 *     future: done, result 'ready'
 *     other future cancel(): True
 *     other future: cancelled
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

/* do_some_work(x): its argument, and room for the string it returns. */
struct work {
    int x;
    char result[32];
};

/* Print a task's state, and its result once it is done. */
static void show(corio_task *t, const struct work *w)
{
    const char *result = corio_task_result(t);

    printf("%s do_some_work(%d): %s", corio_task_name(t), w->x,
           corio_state_name(corio_task_state(t)));
    if (result != NULL)
        printf(", result '%s'", result);
    printf("\n");
}

static void *do_some_work(void *arg)
{
    struct work *w = arg;

    printf("Waiting:  %d\n", w->x);
    show(corio_task_self(), w); /* running: it is the task running now */
    if (corio_sleep(w->x * CORIO_SECOND) == -1) {
        printf("%s: cancelled while it slept\n",
               corio_task_name(corio_task_self()));
        return NULL;
    }
    snprintf(w->result, sizeof(w->result), "Done after %ds", w->x);
    return w->result;
}

static const char *py_bool(int r)
{
    return r == 1 ? "True" : "False";
}

/* A plain future: set by whoever has the result; never "running".
 * Returns 0, or -1 with errno. */
static int plain_futures(void)
{
    corio_future *f = corio_future_new();
    corio_future *g = corio_future_new();
    int rc = -1;

    if (f == NULL || g == NULL)
        goto out;
    printf("future: %s\n", corio_state_name(corio_future_state(f)));
    if (corio_future_set_result(f, "ready") == -1)
        goto out;
    printf("future: %s, result '%s'\n",
           corio_state_name(corio_future_state(f)),
           (const char *)corio_future_result(f));
    printf("other future cancel(): %s\n", py_bool(corio_future_cancel(g)));
    printf("other future: %s\n", corio_state_name(corio_future_state(g)));
    rc = 0;
out:
    corio_future_free(f); /* done, or never waited on: cannot fail */
    corio_future_free(g);
    return rc;
}

int main(void)
{
    struct work w[3] = {{.x = 1}, {.x = 2}, {.x = 3}};
    corio_loop *loop = corio_loop_current();
    corio_task *t[3];

    if (loop == NULL)
        goto fail;
    /* Pending: created; the loop has not run them yet. */
    for (int i = 0; i < 3; i++) {
        t[i] = corio_task_spawn(do_some_work, &w[i], NULL);
        if (t[i] == NULL)
            goto fail;
    }
    for (int i = 0; i < 3; i++)
        show(t[i], &w[i]);
    /* Cancelled before it started: Task-3 will never run. */
    printf("%s cancel(): %s\n", corio_task_name(t[2]),
           py_bool(corio_task_cancel(t[2])));

    /* Running: sleep(0) lets the loop run every ready task one step. Each
     * prints itself running, then blocks in its sleep: pending again. */
    corio_sleep(0);
    for (int i = 0; i < 3; i++)
        show(t[i], &w[i]);

    /* Cancelled: Task-2's sleep fails with ECANCELED, and it returns. */
    printf("%s cancel(): %s\n", corio_task_name(t[1]),
           py_bool(corio_task_cancel(t[1])));
    if (corio_task_wait(t[1], -1) == -1)
        goto fail;
    show(t[1], &w[1]);

    /* Done: Task-1's sleep ends and it returns its result. */
    if (corio_task_wait(t[0], -1) == -1)
        goto fail;
    show(t[0], &w[0]);

    /* All finished: join frees them. Task-1's succeeds; the others' fail
     * with ECANCELED, as `await task` raises CancelledError. */
    if (corio_task_join(t[0], NULL) == -1)
        goto fail;
    for (int i = 1; i < 3; i++)
        if (corio_task_join(t[i], NULL) == 0 || errno != ECANCELED)
            goto fail;
    if (plain_futures() == -1 || corio_loop_close(loop) == -1)
        goto fail;
    return 0;

fail:
    fprintf(stderr, "a14_future_states: %s\n", corio_strerror(errno));
    return 1;
}
