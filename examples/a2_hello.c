/* A2: examples/a2_hello.c -- asyncio's hello world.
 *
 * The seeds (000, 001, 003):
 *
 *     @asyncio.coroutine
 *     def hello():
 *         print("Hello world!")
 *         r = yield from asyncio.sleep(1)    # the loop runs on meanwhile
 *         print("Hello again!")
 *
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(hello())
 *     loop.close()
 *
 * In corio a coroutine is a plain function run as a task. corio_sleep() is
 * asyncio.sleep(): it suspends only this task, and the loop is free to run
 * anything else for that second (there is nothing else here; A3 has two).
 * corio_task_join() on main()'s own stack is run_until_complete(): it runs the
 * loop until the task ends.
 *
 * Prints, with a one-second pause between the lines:
 *     Hello world!
 *     Hello again!
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *hello(void *arg)
{
    printf("Hello world!\n");
    fflush(stdout); /* show it now, before the pause, even into a pipe */
    corio_sleep(1 * CORIO_SECOND); /* yield from asyncio.sleep(1) */
    printf("Hello again!\n");
    return NULL;
}

int main(void)
{
    corio_loop *loop = corio_loop_current(); /* asyncio.get_event_loop() */
    corio_task *t;

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    t = corio_task_spawn(hello, NULL, NULL); /* hello(), wrapped in a task */
    if (t == NULL || corio_task_join(t, NULL) == -1) { /* run_until_complete */
        fprintf(stderr, "hello: %s\n", corio_strerror(errno));
        return 1;
    }
    return corio_loop_close(loop) == 0 ? 0 : 1; /* loop.close() */
}
