/* G2: send(None) is next(): num() yields 1 then 2, then stops.
 *
 * The seed's Python session:
 *
 *     >>> def num():
 *             yield 1
 *             yield 2
 *     >>> c = num()
 *     >>> c.send(None)
 *     1
 *     >>> next(c)
 *     2
 *     >>> next(c)
 *     Traceback (most recent call last):
 *       File "<stdin>", line 1, in <module>
 *     StopIteration
 *
 * corio_gen_send and corio_gen_next return 1 when the generator yielded
 * and 0 when it returned: the C form of StopIteration. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *num(corio_gen *gen, void *arg)
{
    (void)arg;
    /* A failed yield means "closed": stop at once. */
    if (corio_gen_yield(gen, CORIO_INT(1), NULL) == -1)
        return NULL;
    if (corio_gen_yield(gen, CORIO_INT(2), NULL) == -1)
        return NULL;
    return NULL; /* falling off the end: StopIteration */
}

/* Print what one send or next produced, as the Python prompt would. */
static void show(int rc, void *value)
{
    if (rc == 1)
        printf("%ld\n", (long)CORIO_TO_INT(value));
    else if (rc == 0)
        printf("StopIteration\n");
    else
        fprintf(stderr, "corio_gen_send: %s\n", corio_strerror(errno));
}

int main(void)
{
    corio_gen *c = corio_gen_new(num, NULL, NULL);
    void *v = NULL;
    int rc;

    if (c == NULL) {
        fprintf(stderr, "corio_gen_new: %s\n", corio_strerror(errno));
        return 1;
    }
    rc = corio_gen_send(c, NULL, &v); /* c.send(None) -> 1 */
    show(rc, v);
    rc = corio_gen_next(c, &v);       /* next(c) -> 2 */
    show(rc, v);
    rc = corio_gen_next(c, &v);       /* next(c) -> StopIteration */
    show(rc, v);
    if (corio_gen_close(c) == -1) {
        fprintf(stderr, "corio_gen_close: %s\n", corio_strerror(errno));
        return 1;
    }
    fflush(stdout);
    return 0;
}
