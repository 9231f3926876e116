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
