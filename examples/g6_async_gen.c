/* G6: an async generator: a generator whose body sleeps between yields,
 * consumed with `async for`, under a deadline, and closed early.
 *
 * The seed's Python:
 *
 *     async def ticker(delay, to):
 *         try:
 *             for i in range(to):
 *                 yield i
 *                 await asyncio.sleep(delay)
 *         finally:
 *             print("ticker: cleanup")
 *
 *     async def main():
 *         async for i in ticker(0.1, 5):          # 0 1 2 3 4, 0.1 s apart
 *             print(i)
 *         try:                                    # a deadline on one step
 *             await asyncio.wait_for(anext(ticker(1, 2)), ...)
 *         ...
 *         t = ticker(0.1, 100)                    # leave early: aclose()
 *         async for i in t:
 *             if i == 2: break
 *         await t.aclose()
 *
 * Each step of the generator runs in the consuming task: its sleep parks
 * the task, not the thread, so a second task (the heartbeat) runs while
 * the ticker sleeps. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct ticker {
    int64_t delay; /* ns */
    int to;
};

static int ticker(corio_agen *ag, void *arg)
{
    const struct ticker *t = arg;
    int rc = 0;

    for (int i = 0; i < t->to; i++) {
        if (corio_agen_yield(ag, CORIO_INT(i)) == -1 ||
            corio_sleep(t->delay) == -1) {
            rc = -1; /* closed (ECANCELED) or the deadline passed */
            break;
        }
    }
    printf("ticker: cleanup\n");
    return rc;
}

/* Runs alongside: proof that the ticker's sleeps do not block the loop. */
static void *heartbeat(void *arg)
{
    int *beats = arg;

    while (corio_sleep(50 * CORIO_MSEC) == 0)
        (*beats)++;
    return NULL;
}

static int fail(const char *what)
{
    fprintf(stderr, "g6_async_gen: %s: %s\n", what, corio_strerror(errno));
    return -1;
}

static void *amain(void *arg)
{
    struct ticker fast = {100 * CORIO_MSEC, 5}, slow = {CORIO_SECOND, 2};
    struct ticker many = {10 * CORIO_MSEC, 100};
    int beats = 0, rc;
    corio_task *hb;
    corio_agen *ag;
    void *v;
    int64_t t0;

    (void)arg;
    hb = corio_task_spawn(heartbeat, &beats, NULL);
    if (hb == NULL)
        return (void *)(intptr_t)fail("spawn");

    /* async for i in ticker(0.1, 5): print(i) */
    ag = corio_agen_new(ticker, &fast, NULL);
    if (ag == NULL)
        return (void *)(intptr_t)fail("corio_agen_new");
    while ((rc = corio_agen_next(ag, &v, -1)) == 1)
        printf("%d\n", (int)CORIO_TO_INT(v));
    if (rc == -1 || corio_agen_close(ag) == -1)
        return (void *)(intptr_t)fail("ticker");
    printf("the heartbeat ran meanwhile: %s\n", beats >= 4 ? "yes" : "no");

    /* a deadline on one step: the second value is a second away */
    ag = corio_agen_new(ticker, &slow, NULL);
    if (ag == NULL || corio_agen_next(ag, &v, -1) != 1)
        return (void *)(intptr_t)fail("slow ticker");
    t0 = corio_now();
    rc = corio_agen_next(ag, &v, corio_now() + 250 * CORIO_MSEC);
    if (rc != -1 || errno != ETIMEDOUT)
        return (void *)(intptr_t)fail("the deadline did not pass");
    if (corio_now() - t0 < 250 * CORIO_MSEC)
        return (void *)(intptr_t)fail("the deadline passed early");
    printf("next: %s at its 0.25 s deadline\n", corio_err_name(errno));
    if (corio_agen_close(ag) == -1)
        return (void *)(intptr_t)fail("close");

    /* break out early: close runs the cleanup */
    ag = corio_agen_new(ticker, &many, NULL);
    if (ag == NULL)
        return (void *)(intptr_t)fail("corio_agen_new");
    while ((rc = corio_agen_next(ag, &v, -1)) == 1 && CORIO_TO_INT(v) < 2)
        ;
    if (rc != 1)
        return (void *)(intptr_t)fail("many");
    printf("left at %d; closing\n", (int)CORIO_TO_INT(v));
    if (corio_agen_close(ag) == -1)
        return (void *)(intptr_t)fail("close");

    if (corio_task_cancel(hb) == -1)
        return (void *)(intptr_t)fail("cancel");
    if (corio_task_join(hb, NULL) == -1 && errno != ECANCELED)
        return (void *)(intptr_t)fail("join");
    return NULL;
}

int main(void)
{
    void *r;

    if (corio_run(amain, NULL, &r) == -1)
        return fail("corio_run"), 1;
    return r == NULL ? 0 : 1;
}
