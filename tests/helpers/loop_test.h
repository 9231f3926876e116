/* tests/helpers/loop_test.h -- what the loop and task tests share: an
 * errno check, a real (thread) sleep, elapsed time, and a loop made current
 * for the test and closed after it. Include criterion.h and corio.h first. */
#ifndef CORIO_TEST_LOOP_TEST_H
#define CORIO_TEST_LOOP_TEST_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Expect rc == -1 with errno err. */
#define expect_fail(call, err)                                                 \
    do {                                                                       \
        errno = 0;                                                             \
        int rc_ = (call);                                                      \
        cr_assert_eq(rc_, -1, "%s returned %d", #call, rc_);                   \
        cr_assert_eq(errno, (err), "%s: errno %s (%s), expected %s",          \
                     #call, corio_err_name(errno), corio_strerror(errno),      \
                     corio_err_name(err));                                     \
    } while (0)

/* Sleep the thread (not a task) for ms milliseconds. */
static inline void msleep(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static inline int64_t elapsed_ms(int64_t since)
{
    return (corio_now() - since) / CORIO_MSEC;
}

/* A new loop, current for the test. */
static inline corio_loop *loop_open(void)
{
    corio_loop *loop = corio_loop_new();

    cr_assert_not_null(loop, "corio_loop_new: %s", corio_strerror(errno));
    cr_assert_eq(corio_loop_set_current(loop), 0);
    return loop;
}

static inline void loop_done(corio_loop *loop)
{
    cr_assert_eq(corio_loop_close(loop), 0, "corio_loop_close: %s",
                 corio_strerror(errno));
}

#endif
