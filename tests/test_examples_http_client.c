/* tests/test_examples_http_client.c -- the examples of the HTTP client,
 * WebSocket and async generator part print what they should, in time. */
#include <criterion/criterion.h>

#include "corio.h"

#include "example_run.h"
#include "timing.h"

/* An upper bound: the example's own time plus room for a loaded machine
 * or valgrind (which runs the example, and the shell before it, too). */
#define WITHIN(ns) ((ns) + 10 * test_slack_ms() * CORIO_MSEC)

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
    cr_assert_lt(o.ns, WITHIN(2 * CORIO_SECOND));
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
    cr_assert_lt(o.ns, WITHIN(2 * CORIO_SECOND));
}

/* ws_chat: the transcript, and its own check passed. */
Test(examples_http_client, ws_chat, .timeout = 60)
{
    static struct example_out o;

    example_run("ws_chat", &o);
    cr_assert_str_eq(o.text,
        "alice joins\n"
        "bob joins\n"
        "  alice hears \"* bob joined\"\n"
        "carol joins\n"
        "  alice hears \"* carol joined\"\n"
        "  bob   hears \"* carol joined\"\n"
        "alice says \"hi all\"\n"
        "  bob   hears \"alice: hi all\"\n"
        "  carol hears \"alice: hi all\"\n"
        "bob says \"hello alice\"\n"
        "  alice hears \"bob: hello alice\"\n"
        "  carol hears \"bob: hello alice\"\n"
        "carol says \"hey, how are you?\"\n"
        "  alice hears \"carol: hey, how are you?\"\n"
        "  bob   hears \"carol: hey, how are you?\"\n"
        "alice leaves\n"
        "  bob   hears \"* alice left\"\n"
        "  carol hears \"* alice left\"\n"
        "bob leaves\n"
        "  carol hears \"* bob left\"\n"
        "carol leaves\n"
        "chat ok: everyone heard everything, in order\n");
}

/* sse_ticker: five events from the async generator, about 100 ms apart,
 * then its cleanup, then the end of the stream. */
Test(examples_http_client, sse_ticker, .timeout = 60)
{
    static struct example_out o;
    char *line;
    double prev = -1, first = 0, at;

    example_run("sse_ticker", &o);
    line = o.text;
    cr_assert(strncmp(line, "client: 200 text/event-stream\n", 30) == 0, "%s",
              o.text);
    line += 30;
    for (int i = 1; i <= 5; i++) {
        int n;

        cr_assert_eq(sscanf(line, "client: event \"tick %d\" at %lf s", &n, &at),
                     2, "%s", o.text);
        cr_assert_eq(n, i);
        cr_assert_geq(at, prev, "%s", o.text); /* in time order */
        if (i == 1)
            first = at;
        prev = at;
        line = strchr(line, '\n') + 1;
    }
    /* four sleeps of 100 ms between the first event and the last */
    cr_assert_geq(prev - first, 0.3, "%s", o.text);
    cr_assert_str_eq(line, "server: the ticker's cleanup ran\n"
                           "client: the stream ended after 5 events\n");
    cr_assert_geq(o.ns, 400 * CORIO_MSEC);
    cr_assert_lt(o.ns, WITHIN(2 * CORIO_SECOND));
}
