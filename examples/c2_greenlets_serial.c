/* C2: examples/c2_greenlets_serial.c -- gevent: greenlets that never yield
 * run one after another.
 *
 * The seed (001):
 *
 *     def f(n):
 *         for i in range(n):
 *             print gevent.getcurrent(), i
 *
 *     g1 = gevent.spawn(f, 5)
 *     g2 = gevent.spawn(f, 5)
 *     g3 = gevent.spawn(f, 5)
 *     g1.join()
 *     g2.join()
 *     g3.join()
 *
 * prints <Greenlet at 0x10e49f550: f(5)> 0 to 4, then the second greenlet's
 * five lines, then the third's: "the 3 greenlets run one after another, not
 * in turns". A greenlet (a corio task) gives the thread up only at a
 * blocking call, and f makes none: once started, it runs to its end.
 * C3 adds the blocking call that lets them take turns.
 *
 * corio_task_spawn() is gevent.spawn, corio_task_self() gevent.getcurrent(), and
 * corio_task_join() on main()'s stack is join(): it runs the loop until that
 * greenlet has finished (the first join runs all three here). Each greenlet
 * is printed with its name and its real address.
 *
 * Prints (addresses vary):
 *     <Greenlet "g1" at 0x7f5e2c1fff00: f(5)> 0
 *     <Greenlet "g1" at 0x7f5e2c1fff00: f(5)> 1
 *     <Greenlet "g1" at 0x7f5e2c1fff00: f(5)> 2
 *     <Greenlet "g1" at 0x7f5e2c1fff00: f(5)> 3
 *     <Greenlet "g1" at 0x7f5e2c1fff00: f(5)> 4
 *     <Greenlet "g2" at 0x7f5e2c1dff00: f(5)> 0
 *     ...
 *     <Greenlet "g3" at 0x7f5e2c1bff00: f(5)> 4
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

static void *f(void *arg)
{
    int n = (int)(intptr_t)arg;
    corio_task *self = corio_task_self(); /* gevent.getcurrent() */

    for (int i = 0; i < n; i++)
        printf("<Greenlet \"%s\" at %p: f(%d)> %d\n", corio_task_name(self),
               (void *)self, n, i);
    return NULL;
}

int main(void)
{
    static const char *names[3] = {"g1", "g2", "g3"};
    corio_loop *loop = corio_loop_current();
    corio_task *g[3];

    if (loop == NULL) {
        fprintf(stderr, "corio_loop_current: %s\n", corio_strerror(errno));
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        corio_task_attr attr = {.name = names[i]};

        g[i] = corio_task_spawn(f, (void *)5, &attr); /* gevent.spawn(f, 5) */
        if (g[i] == NULL) {
            fprintf(stderr, "corio_task_spawn: %s\n", corio_strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (corio_task_join(g[i], NULL) == -1) { /* g1.join(), g2.join(), ... */
            fprintf(stderr, "%s: %s\n", names[i], corio_strerror(errno));
            return 1;
        }
    }
    return corio_loop_close(loop) == 0 ? 0 : 1;
}
