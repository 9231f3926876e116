/* G3: send(value) is both "resume" and "here is the result of your yield".
 *
 * The seed's Python session:
 *
 *     >>> def num():
 *             a = yield 1
 *             while True:
 *                 a = yield a
 *     >>> c = num()
 *     >>> c.send(None)
 *     1
 *     >>> c.send(5)
 *     5
 *     >>> c.send(100)
 *     100
 *
 * Each send delivers its value as the result of the pending yield, and the
 * generator runs on to its next yield, whose value the send returns. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *num(corio_gen *gen, void *arg)
{
    void *a;

    (void)arg;
    /* a = yield 1 */
    if (corio_gen_yield(gen, CORIO_INT(1), &a) == -1)
        return NULL;
    /* while True: a = yield a -- until the generator is closed. */
    while (corio_gen_yield(gen, a, &a) == 0)
        ;
    return NULL;
}

int main(void)
{
    static const long sends[] = {5, 100};
    corio_gen *c = corio_gen_new(num, NULL, NULL);
    void *v = NULL;

    if (c == NULL) {
        fprintf(stderr, "corio_gen_new: %s\n", corio_strerror(errno));
        return 1;
    }
    /* The first send must be NULL (None): nothing is waiting for a value. */
    if (corio_gen_send(c, NULL, &v) == -1)
        goto fail;
    printf("%ld\n", (long)CORIO_TO_INT(v));
    for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
        if (corio_gen_send(c, CORIO_INT(sends[i]), &v) == -1)
            goto fail;
        printf("%ld\n", (long)CORIO_TO_INT(v));
    }
    /* The generator never returns by itself; close() ends it. */
    if (corio_gen_close(c) == -1)
        goto fail;
    fflush(stdout);
    return 0;

fail:
    fprintf(stderr, "g3_echo: %s\n", corio_strerror(errno));
    return 1;
}
