/* tests/helpers/task_run.h -- run a test's body (a void function) in a
 * task of a fresh corio_run, and the units and timeout the http and
 * WebSocket tests share. Include criterion.h, corio.h and timing.h first. */
#ifndef CORIO_TEST_TASK_RUN_H
#define CORIO_TEST_TASK_RUN_H

#include <errno.h>

#define MS CORIO_MSEC
#define SEC CORIO_SECOND
#define SLACK (test_slack_ms() * MS)
#define TIMEOUT 60

static inline void *run_body(void *arg)
{
    ((void (*)(void))arg)();
    return NULL;
}

/* Run fn in a task of a fresh corio_run. */
static inline void run(void (*fn)(void))
{
    void *r = "not run";

    cr_assert_eq(corio_run(run_body, (void *)fn, &r), 0, "corio_run: %s",
                 corio_strerror(errno));
}

#endif
