/* tests/test_examples_http_client.c -- the examples of the HTTP client,
 * WebSocket and async generator part print what they should, in time. */
#include <criterion/criterion.h>

#include "corio.h"

#include "example_run.h"

/* G6: five ticks 0.1 s apart, the heartbeat alive meanwhile, the deadline
 * on a step, an early close; each generator's cleanup runs once. */
Test(examples_http_client, g6_async_gen, .timeout = 60)
{
    static struct example_out o;

    example_run("g6_async_gen", &o);
    cr_assert_str_eq(o.text, "0\n1\n2\n3\n4\n"
                             "ticker: cleanup\n"
                             "the heartbeat ran meanwhile: yes\n"
                             "ticker: cleanup\n"
                             "next: ETIMEDOUT at its 0.25 s deadline\n"
                             "left at 2; closing\n"
                             "ticker: cleanup\n");
    cr_assert_geq(o.ns, 650 * CORIO_MSEC);
    cr_assert_lt(o.ns, 5 * CORIO_SECOND);
}

/* C4: three GETs start in order, the bodies arrive by their server's delay
 * (100, 200, 300 ms): the second URL first, then the third, then the
 * first; about 0.3 s in all, not 0.6. */
Test(examples_http_client, c4_fetch, .timeout = 60)
{
    static struct example_out o;
    char u[3][128], got[3][128];
    int port, pages[3] = {3, 1, 2}, sizes[3];
    char *line = NULL;

    example_run("c4_fetch", &o);
    cr_assert_eq(sscanf(o.text, "GET: http://127.0.0.1:%d/", &port), 1, "%s",
                 o.text);
    for (int i = 0; i < 3; i++)
        snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%d/page/%d", port,
                 pages[i]);
    line = o.text;
    for (int i = 0; i < 3; i++) {
        char want[512];

        snprintf(want, sizeof(want), "GET: %s\n", u[i]);
        cr_assert(strncmp(line, want, strlen(want)) == 0, "%s", o.text);
        line += strlen(want);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sscanf(line, "%d bytes received from %127s", &sizes[i],
                            got[i]), 2, "%s", o.text);
        line = strchr(line, '\n') + 1;
    }
    /* by delay: page 1, 2, 3 (the second, third and first URL) */
    for (int k = 0; k < 3; k++) {
        char want[512];

        snprintf(want, sizeof(want), "%s.", u[(k + 1) % 3]);
        cr_assert_str_eq(got[k], want);
        cr_assert_eq(sizes[k], (k + 1) * 1024);
    }
    cr_assert_eq(*line, '\0', "%s", o.text);
    cr_assert_geq(o.ns, 300 * CORIO_MSEC);
    cr_assert_lt(o.ns, 3 * CORIO_SECOND);
}
