/* C1: two functions that interleave as coroutines, in one thread.
 *
 * The seed's Python:
 *
 *     def A():            def B():
 *         print('1')          print('x')
 *         print('2')          print('y')
 *         print('3')          print('z')
 *
 * "Run by coroutines, A can be interrupted at any point to run B, and B to
 * run A; the result may be 1 2 x y 3 z." A never calls B: each one gives up
 * the CPU with corio_coro_yield(), and a small round-robin loop in main
 * resumes whichever has not finished. All of it runs on one thread, which
 * the program checks and prints. */
#define _GNU_SOURCE
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's id of the calling thread. */
static long thread_id(void)
{
    return (long)syscall(SYS_gettid);
}

/* Each coroutine notes the thread it ran on, for the check at the end. */
static long tid_a, tid_b;

static void *A(void *arg)
{
    (void)arg;
    tid_a = thread_id();
    printf("1\n");
    printf("2\n");
    corio_coro_yield(); /* interrupted here: B runs */
    printf("3\n");
    return NULL;
}

static void *B(void *arg)
{
    (void)arg;
    tid_b = thread_id();
    printf("x\n");
    printf("y\n");
    corio_coro_yield(); /* and here: A runs again */
    printf("z\n");
    return NULL;
}

int main(void)
{
    corio_coro *co[2] = {corio_coro_new(A, NULL, NULL),
                         corio_coro_new(B, NULL, NULL)};
    long tid_main = thread_id();
    int alive = 2;

    if (co[0] == NULL || co[1] == NULL) {
        fprintf(stderr, "corio_coro_new: %s\n", corio_strerror(errno));
        return 1;
    }
    /* Round robin: resume each unfinished coroutine in turn. */
    while (alive > 0) {
        for (int i = 0; i < 2; i++) {
            if (corio_coro_status(co[i]) == CORIO_CORO_DEAD)
                continue;
            if (corio_coro_resume(co[i]) == -1) {
                fprintf(stderr, "corio_coro_resume: %s\n",
                        corio_strerror(errno));
                return 1;
            }
            if (corio_coro_status(co[i]) == CORIO_CORO_DEAD)
                alive--;
        }
    }
    corio_coro_free(co[0]);
    corio_coro_free(co[1]);

    if (tid_a != tid_main || tid_b != tid_main) {
        printf("not one thread: main %ld, A %ld, B %ld\n", tid_main, tid_a,
               tid_b);
        return 1;
    }
    printf("A and B ran in one thread (tid %ld)\n", tid_main);
    fflush(stdout);
    return 0;
}
