/* tests/helpers/timing.h -- the slack that timing upper bounds share.
 *
 * A lower bound stays exact: a timer or a deadline never fires early. An
 * upper bound proves the shape (the wait ended soon after it was due, not
 * at a later timer, nor never), not the latency: the test ran among other
 * test processes on a loaded machine, maybe under a sanitizer or valgrind,
 * and was scheduled late. So every upper bound is "due time + slack":
 *
 *   build                 slack   extra (on bounds written for plain)
 *   plain                 200 ms      0
 *   ASan+UBSan            500 ms    300 ms
 *   TSan                  700 ms    500 ms
 *   valgrind             1200 ms   1000 ms
 *
 * CORIO_TEST_SLACK_MS=<ms> in the environment replaces the slack of any
 * build (for a machine slower still). A bound that must stay below the next
 * meaningful duration (two 500 ms sleeps in parallel end before 1000 ms, not
 * after) takes test_slack_capped_ms(cap): the slack, but no more than cap,
 * whatever the build or the environment says. */
#ifndef CORIO_TEST_TIMING_H
#define CORIO_TEST_TIMING_H

#include <stdint.h>
#include <stdlib.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_THREAD__)
#define CORIO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TEST_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_TEST_ASAN 1
#endif
#endif

/* The slack of a plain build: what bounds written for it already allow. */
#define CORIO_TEST_SLACK_PLAIN_MS 200

/* Latency allowed on top of a wait's due time, in milliseconds. */
static inline int64_t test_slack_ms(void)
{
    const char *env = getenv("CORIO_TEST_SLACK_MS");
    char *end;

    if (env != NULL && *env != '\0') {
        long long v = strtoll(env, &end, 10);

        if (*end == '\0' && v >= 0)
            return (int64_t)v;
    }
    if (RUNNING_ON_VALGRIND)
        return 1200;
#if defined(CORIO_TEST_TSAN)
    return 700;
#elif defined(CORIO_TEST_ASAN)
    return 500;
#else
    return CORIO_TEST_SLACK_PLAIN_MS;
#endif
}

/* What to add to a bound that was written for a plain build (which already
 * carries CORIO_TEST_SLACK_PLAIN_MS or so): 0 in a plain build. */
static inline int64_t test_extra_ms(void)
{
    int64_t s = test_slack_ms() - CORIO_TEST_SLACK_PLAIN_MS;

    return s > 0 ? s : 0;
}

/* The slack, but at most cap: for a bound that must stay below the next
 * meaningful duration. */
static inline int64_t test_slack_capped_ms(int64_t cap)
{
    int64_t s = test_slack_ms();

    return s < cap ? s : cap;
}

#endif
