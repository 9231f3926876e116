/* tests/test_base_error.c -- corio's error codes and their words: every code
 * is above the system's errnos and has a name and a text; system errnos,
 * unknown and negative numbers get the system's text, or "Unknown error N"
 * and "UNKNOWN"; the texts of unknown numbers stay apart per thread.
 * (Which call fails with which code is tested with each call.) */
#include <criterion/criterion.h>

#include "corio.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* One timeout for every test (Criterion 2.4.1 leaks in its runner when they
 * differ, which fails the ASan and valgrind stages). */
#define TIMEOUT 60

static const struct {
    int err;
    const char *name;
    const char *text;
} codes[] = {
    {CORIO_ECLOSED, "CORIO_ECLOSED", "object is closed"},
    {CORIO_EDONE, "CORIO_EDONE", "iteration is over"},
    {CORIO_EEOF, "CORIO_EEOF", "unexpected end of stream"},
    {CORIO_EUNKNOWNHOST, "CORIO_EUNKNOWNHOST", "unknown host"},
};

Test(error, every_code_has_its_name_and_text, .timeout = TIMEOUT)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        cr_assert_str_eq(corio_err_name(codes[i].err), codes[i].name);
        cr_assert_str_eq(corio_strerror(codes[i].err), codes[i].text);
    }
}

/* Above every Linux errno (< 4096), positive, distinct: a switch over
 * errno can mix both kinds, and strerror knows none of them. */
Test(error, codes_are_above_the_system_range, .timeout = TIMEOUT)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        cr_assert_geq(codes[i].err, 4096, "%s", codes[i].name);
        cr_assert_eq(strncmp(strerror(codes[i].err), "Unknown error", 13), 0,
                     "the system knows %s", codes[i].name);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(codes[i].err, codes[j].err);
    }
    cr_assert_eq(CORIO_ECLOSED, 0x10000);
}

Test(error, system_errnos_pass_through, .timeout = TIMEOUT)
{
    int errs[] = {ECANCELED, ETIMEDOUT, EPIPE, ENOENT, EINVAL, ECONNRESET};

    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        cr_assert_str_eq(corio_strerror(errs[i]), strerror(errs[i]));
    cr_assert_str_eq(corio_err_name(ECANCELED), "ECANCELED");
    cr_assert_str_eq(corio_err_name(EPIPE), "EPIPE");
    cr_assert_str_eq(corio_err_name(ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(corio_strerror(ECANCELED), "Operation canceled");
}

Test(error, unknown_and_negative_numbers, .timeout = TIMEOUT)
{
    cr_assert_str_eq(corio_strerror(12345), "Unknown error 12345");
    cr_assert_str_eq(corio_err_name(12345), "UNKNOWN");
    /* just past corio's last code */
    cr_assert_str_eq(corio_err_name(CORIO_EUNKNOWNHOST + 1), "UNKNOWN");
    cr_assert_str_eq(corio_strerror(CORIO_ECLOSED - 1), "Unknown error 65535");
    /* libuv's negative convention is not corio's: unknown */
    cr_assert_str_eq(corio_strerror(-1), "Unknown error -1");
    cr_assert_str_eq(corio_err_name(-ECANCELED), "UNKNOWN");
    cr_assert_str_eq(corio_err_name(-CORIO_ECLOSED), "UNKNOWN");
}

static void *unknown_text(void *arg)
{
    int err = *(int *)arg;
    char want[32];
    const char *got = NULL;

    snprintf(want, sizeof(want), "Unknown error %d", err);
    for (int i = 0; i < 10000; i++) {
        got = corio_strerror(err);
        if (strcmp(got, want) != 0)
            return (void *)got;
    }
    return NULL;
}

/* Two threads asking about different unknown numbers at once each read
 * their own text (strerror shares one buffer in glibc). */
Test(error, unknown_texts_are_per_thread, .timeout = TIMEOUT)
{
    int errs[2] = {20001, 20002};
    pthread_t th[2];
    void *res;

    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, unknown_text, &errs[i]), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_join(th[i], &res), 0);
        cr_assert_null(res, "thread %d read \"%s\"", i, (char *)res);
    }
}
