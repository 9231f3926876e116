#include <criterion/criterion.h>
#include <errno.h>
#include "corio.h"

static void *count(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        corio_coro_yield();
    }
    return (void *)42;
}

Test(coro_basic, resume_yield)
{
    int n = 0;
    corio_coro *co = corio_coro_new(count, &n, NULL);
    cr_assert_not_null(co);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(corio_coro_resume(co), 0);
        cr_assert_eq(n, i);
        cr_assert_eq(corio_coro_status(co), CORIO_CORO_SUSPENDED);
    }
    cr_assert_eq(corio_coro_resume(co), 0);
    cr_assert_eq(corio_coro_status(co), CORIO_CORO_DEAD);
    cr_assert_eq(corio_coro_result(co), (void *)42);
    errno = 0;
    cr_assert_eq(corio_coro_resume(co), -1);
    cr_assert_eq(errno, EPIPE);
    cr_assert_eq(corio_coro_free(co), 0);
}
