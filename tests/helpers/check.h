/* tests/helpers/check.h -- what the tests that run their body as a task
 * share: CHECK, which makes the body return a failure text for the test to
 * assert on (a task cannot call cr_assert: Criterion would longjmp across
 * its stack), and a count of the process's open fds. */
#ifndef CORIO_TEST_CHECK_H
#define CORIO_TEST_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "corio/error.h"

static char failure[256];

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            snprintf(failure, sizeof(failure), "line %d: %s (errno %s)",       \
                     __LINE__, #cond, corio_strerror(errno));                  \
            return failure;                                                    \
        }                                                                      \
    } while (0)

/* Open fds of the process, for leak checks (-1 if /proc is missing). */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Run fn(arg) as corio_run's main task (include criterion.h and corio.h
 * first): it must return NULL (else its text is the failure) and leave no
 * fd open. */
#ifdef CORIO_H
static inline void run_main_no_fd_leak(corio_fn fn, void *arg)
{
    int before = count_fds();
    void *res = (void *)1;

    cr_assert_eq(corio_run(fn, arg, &res), 0, "corio_run: %s",
                 corio_strerror(errno));
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(count_fds(), before, "fds leaked: %d", count_fds() - before);
}
#endif

#endif
