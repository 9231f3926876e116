/* A minimal stand-in for Criterion's criterion.h, for sanitizer builds in
 * which Criterion itself cannot start (Criterion under TSan aborts in
 * BoxFort's arena: Snaipe/Criterion#274). It covers what corio's tests use:
 * Test(suite, name, .timeout = s), cr_assert*, and a main() that runs each
 * test in its own forked process with a timeout, like Criterion.
 * Arguments are ignored except a test name filter: --filter=suite::name. */
#ifndef CORIO_CRIT_SHIM_H
#define CORIO_CRIT_SHIM_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct shim_test {
    const char *suite, *name;
    void (*fn)(void);
    double timeout;
    struct shim_test *next;
};

static struct shim_test *shim_tests, **shim_tail = &shim_tests;

#define Test(suite, name, ...)                                              \
    static void suite##_##name##_fn(void);                                  \
    static struct shim_test suite##_##name##_t = {                          \
        #suite, #name, suite##_##name##_fn, __VA_ARGS__};                  \
    __attribute__((constructor)) static void suite##_##name##_reg(void)     \
    {                                                                       \
        *shim_tail = &suite##_##name##_t;                                   \
        shim_tail = &suite##_##name##_t.next;                               \
    }                                                                       \
    static void suite##_##name##_fn(void)

__attribute__((format(printf, 4, 5), noreturn)) static void
shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: Assertion failed: %s", file, line, expr);
    if (fmt[0] != '\0') {
        fputs(": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    exit(1);
}

/* cr_assert(c) with no message expands to a "" format. */
#pragma GCC diagnostic ignored "-Wformat-zero-length"

#define cr_assert(cond, ...) \
    do { if (!(cond)) shim_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__); } while (0)
#define cr_assert_not(c, ...) cr_assert(!(c), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)
/* A skipped test passes, saying why. */
#define cr_skip_test(...)                                                   \
    do {                                                                    \
        fprintf(stderr, "[SKIP] " __VA_ARGS__);                             \
        fputc('\n', stderr);                                                \
        exit(0);                                                            \
    } while (0)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn cr_log_info
#define cr_expect cr_assert
#define cr_expect_not cr_assert_not
#define cr_expect_eq cr_assert_eq
#define cr_expect_neq cr_assert_neq
#define cr_expect_lt cr_assert_lt
#define cr_expect_leq cr_assert_leq
#define cr_expect_gt cr_assert_gt
#define cr_expect_geq cr_assert_geq
#define cr_expect_null cr_assert_null
#define cr_expect_not_null cr_assert_not_null
#define cr_expect_str_eq cr_assert_str_eq
#define cr_expect_str_neq cr_assert_str_neq

static int shim_run(struct shim_test *t)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        alarm(t->timeout > 0 ? (unsigned)t->timeout + 1 : 60);
        t->fn();
        exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "[FAIL] %s::%s: killed by signal %d%s\n", t->suite,
                t->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    else
        fprintf(stderr, "[FAIL] %s::%s: exit %d\n", t->suite, t->name,
                WEXITSTATUS(status));
    return -1;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    int passed = 0, failed = 0;

    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--filter=", 9) == 0)
            filter = argv[i] + 9;
    for (struct shim_test *t = shim_tests; t != NULL; t = t->next) {
        char full[256];

        snprintf(full, sizeof(full), "%s::%s", t->suite, t->name);
        if (filter != NULL && strstr(full, filter) == NULL)
            continue;
        if (shim_run(t) == 0) {
            fprintf(stderr, "[PASS] %s\n", full);
            passed++;
        } else {
            failed++;
        }
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n",
            passed + failed, passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
