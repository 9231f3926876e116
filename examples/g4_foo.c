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
        perror("corio_gen_new");
        return 1;
    }
    corio_gen_next(g, &v);                 /* print(next(g)) */
    printf("%ld\n", (long)CORIO_TO_INT(v));
    stars();
    corio_gen_next(g, &v);                 /* print(next(g)) */
    printf("%ld\n", (long)CORIO_TO_INT(v));
    stars();
    corio_gen_send(g, CORIO_INT(10), &v);  /* print(g.send(10)) */
    printf("%ld\n", (long)CORIO_TO_INT(v));
    corio_gen_close(g);
    fflush(stdout);
    return 0;
}
