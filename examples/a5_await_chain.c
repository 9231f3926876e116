/* A5: examples/a5_await_chain.c -- async/await is yield from: one coroutine
 * waiting for another.
 *
 * The seeds (001, 002, 003) write A2's hello twice, and the two spellings
 * mean the same thing:
 *
 *     @asyncio.coroutine                  async def hello():
 *     def hello():                            print("Hello world!")
 *         print("Hello world!")               r = await asyncio.sleep(1)
 *         r = yield from asyncio.sleep(1)     print("Hello again!")
 *         print("Hello again!")
 *
 * "Replace @asyncio.coroutine with async, and yield from with await."
 *
 * C has neither keyword, and corio needs neither: a task has its own stack,
 * so a coroutine waits for another one in one of two ways.
 *   1. Call it. The callee runs on the caller's stack; when it blocks, the
 *      whole task is suspended, however deep the call chain is. This is
 *      `yield from` / `await coro()`: the chain below is
 *      hello -> pause_for -> corio_sleep.
 *   2. Run it as a task of its own and corio_task_join() it: `await task`. The
 *      caller is suspended until the other task ends, and gets its result.
 *
 * Prints, each "Hello again!" one second after the "Hello world!" above it:
 *     1. await by calling: hello -> pause_for(1) -> corio_sleep
 *     Hello world!
 *     Hello again!
 *     2. await a task: hello joins a task running pause_for(1)
 *     Hello world!
 *     Hello again!
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

/* A coroutine function: blocks for `seconds`, suspending whichever task
 * calls it. Returns what corio_sleep returns (0, or -1 if cancelled). */
static int pause_for(int seconds)
{
    return corio_sleep(seconds * CORIO_SECOND);
}

/* The same, as the entry function of a task of its own. */
static void *pause_task(void *arg)
{
    pause_for((int)(intptr_t)arg);
    return NULL;
}

/* 1. yield from / await coro(): call the other coroutine. */
static void *hello_calls(void *arg)
{
    printf("Hello world!\n");
    fflush(stdout);
    pause_for(1); /* r = yield from asyncio.sleep(1) */
    printf("Hello again!\n");
    return NULL;
}

/* 2. await task: wait for another task to end. */
static void *hello_joins(void *arg)
{
    corio_task *other;

    printf("Hello world!\n");
    fflush(stdout);
    other = corio_task_spawn(pause_task, (void *)(intptr_t)1, NULL);
    if (other == NULL || corio_task_join(other, NULL) == -1) /* r = await other */
        return corio_task_fail(errno);
    printf("Hello again!\n");
    return NULL;
}

/* loop.run_until_complete(fn()) */
static int run(corio_fn fn)
{
    corio_task *t = corio_task_spawn(fn, NULL, NULL);

    return t != NULL ? corio_task_join(t, NULL) : -1;
}

int main(void)
{
    corio_loop *loop = corio_loop_current();

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("1. await by calling: hello -> pause_for(1) -> corio_sleep\n");
    if (run(hello_calls) == -1) {
        fprintf(stderr, "hello_calls: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("2. await a task: hello joins a task running pause_for(1)\n");
    if (run(hello_joins) == -1) {
        fprintf(stderr, "hello_joins: %s\n", corio_strerror(errno));
        return 1;
    }
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
