/* tests/helpers/thread_test.h -- starting and joining corio threads in
 * the thread layer's tests: each call fails the test, with the reason, if
 * it does not succeed. */
#ifndef CORIO_THREAD_TEST_H
#define CORIO_THREAD_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>

#include "corio.h"
#include "corio/thread.h"

/* A thread running fn(arg), with a loop of its own if loop. */
static inline corio_thread *start(corio_fn fn, void *arg, bool loop)
{
    corio_thread_opts o = {.loop = loop};
    corio_thread *t = corio_thread_start(fn, arg, &o);

    cr_assert_not_null(t, "corio_thread_start: %s", corio_strerror(errno));
    return t;
}

/* Join t (it must end without error), free it, return its result. */
static inline void *join_free(corio_thread *t)
{
    void *res = NULL;

    cr_assert_eq(corio_thread_join(t, &res, -1), 0);
    cr_assert_eq(corio_thread_error(t), 0, "%s",
                 corio_strerror(corio_thread_error(t)));
    cr_assert_eq(corio_thread_free(t), 0);
    return res;
}

#endif
