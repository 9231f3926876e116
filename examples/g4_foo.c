/* G4: what `res = yield 4` receives: None from next(), the value from send().
 *
 * The seed's Python (its two examples, run on one generator):
 *
 *     def foo():
 *         print("starting...")
 *         while True:
 *             res = yield 4
 *             print("res:", res)
 *
 *     g = foo()
 *     print(next(g))        # starting...  4
 *     print("*" * 20)
 *     print(next(g))        # res: None    4
 *     print("*" * 20)
 *     print(g.send(10))     # res: 10      4
 *
 * Nothing of foo runs when it is created: "starting..." appears at the first
 * next. A yield hands 4 out and stops before the assignment; the next resume
 * finishes `res = ...` with whatever was sent (NULL, printed as None, for
 * next). */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *foo(corio_gen *gen, void *arg)
{
    void *res;

    (void)arg;
    printf("starting...\n");
    while (corio_gen_yield(gen, CORIO_INT(4), &res) == 0) {
        if (res == NULL)
            printf("res: None\n");
        else
            printf("res: %ld\n", (long)CORIO_TO_INT(res));
    }
    return NULL; /* closed */
}

static void stars(void)
{
    printf("********************\n");
}

int main(void)
{
    corio_gen *g = corio_gen_new(foo, NULL, NULL);
    void *v = NULL;

    if (g == NULL) {
        fprintf(stderr, "corio_gen_new: %s\n", corio_strerror(errno));
        return 1;
    }
    if (corio_gen_next(g, &v) == -1)        /* print(next(g)) */
        goto fail;
    printf("%ld\n", (long)CORIO_TO_INT(v));
    stars();
    if (corio_gen_next(g, &v) == -1)        /* print(next(g)) */
        goto fail;
    printf("%ld\n", (long)CORIO_TO_INT(v));
    stars();
    if (corio_gen_send(g, CORIO_INT(10), &v) == -1) /* print(g.send(10)) */
        goto fail;
    printf("%ld\n", (long)CORIO_TO_INT(v));
    if (corio_gen_close(g) == -1)
        goto fail;
    fflush(stdout);
    return 0;

fail:
    fprintf(stderr, "g4_foo: %s\n", corio_strerror(errno));
    return 1;
}
