/* A1: examples/a1_event_loop.c -- the event loop is a message loop.
 *
 * The seeds (000, 002) describe asynchronous I/O with this loop:
 *
 *     loop = get_event_loop()
 *     while True:
 *         event = loop.get_event()
 *         process_event(event)
 *
 * A GUI's main thread works this way: key presses, mouse clicks and "I/O
 * finished" messages queue up, and one thread takes them one at a time. A
 * handler that needs I/O does not wait for it: it sends the request and
 * returns, and the answer arrives later as one more event.
 *
 * In corio, corio_loop_current() is get_event_loop(). An event is a
 * callback: corio_loop_call_soon() queues one, corio_loop_call_later() queues one that
 * arrives after a delay (here it stands for the disk answering a read).
 * corio_loop_run_until_idle() is the `while True` loop, except that it returns once no
 * event is queued or expected, so this program ends.
 *
 * Prints (the delay is measured):
 *     event 1: key press 'a'
 *     event 2: read request for data.txt: sent, not waiting for the answer
 *     event 3: mouse click at (10, 20)
 *     event 4: key press 'b'
 *     event 5: I/O complete: 1024 bytes of data.txt, 100 ms after the request
 *     no event left: the loop returned
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static int processed; /* events processed so far */

/* One queued event: what happened, and when (for the I/O request). */
struct event {
    const char *what;
    int64_t sent;
};

/* process_event for the I/O answer: it came in as an ordinary event. */
static void io_complete(void *arg)
{
    struct event *ev = arg;
    int64_t ms = (corio_now() - ev->sent) / CORIO_MSEC;

    printf("event %d: I/O complete: 1024 bytes of %s, %lld ms after the "
           "request\n", ++processed, ev->what, (long long)ms);
}

/* process_event for a read request: ask for the data, do not wait. */
static void read_request(void *arg)
{
    struct event *ev = arg;

    printf("event %d: read request for %s: sent, not waiting for the "
           "answer\n", ++processed, ev->what);
    ev->sent = corio_now();
    /* The "disk" answers in 100 ms; meanwhile the loop goes on. */
    if (corio_loop_call_later(corio_loop_current(), 100 * CORIO_MSEC,
                              io_complete, ev, NULL) == -1)
        fprintf(stderr, "read_request: %s\n", corio_strerror(errno));
}

/* process_event for input events: handle them and return at once. */
static void input(void *arg)
{
    struct event *ev = arg;

    printf("event %d: %s\n", ++processed, ev->what);
}

int main(void)
{
    static struct event key_a = {"key press 'a'", 0};
    static struct event read = {"data.txt", 0};
    static struct event click = {"mouse click at (10, 20)", 0};
    static struct event key_b = {"key press 'b'", 0};
    corio_loop *loop = corio_loop_current(); /* get_event_loop() */

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    /* The events arrive: they wait in the loop's queue, in order. */
    if (corio_loop_call_soon(loop, input, &key_a, NULL) == -1 ||
        corio_loop_call_soon(loop, read_request, &read, NULL) == -1 ||
        corio_loop_call_soon(loop, input, &click, NULL) == -1 ||
        corio_loop_call_soon(loop, input, &key_b, NULL) == -1) {
        fprintf(stderr, "corio_loop_call_soon: %s\n", corio_strerror(errno));
        return 1;
    }

    /* while True: event = loop.get_event(); process_event(event) */
    if (corio_loop_run_until_idle(loop) == -1) {
        fprintf(stderr, "corio_loop_run_until_idle: %s\n",
                corio_strerror(errno));
        return 1;
    }
    printf("no event left: the loop returned\n");
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
