/* T2: examples/t2_balance.c -- two threads change a shared balance; without
 * a lock updates get lost, with one the balance always ends at 0.
 *
 * The seed (threading):
 *
 *     balance = 0
 *     lock = threading.Lock()
 *
 *     def change_it(n):
 *         global balance
 *         balance = balance + n
 *         balance = balance - n
 *
 *     def run_thread(n):
 *         for i in range(100000):
 *             lock.acquire()
 *             try:
 *                 change_it(n)
 *             finally:
 *                 lock.release()
 *
 *     t1 = threading.Thread(target=run_thread, args=(5,))
 *     t2 = threading.Thread(target=run_thread, args=(8,))
 *     t1.start(); t2.start(); t1.join(); t2.join()
 *     print(balance)
 *
 * C has no GIL: the two threads really run at once, on two cores, and
 * `balance = balance + n` is a load and a store that the other thread can
 * come between (a barrier starts them together). The first round runs without the lock (a relaxed atomic
 * load and store, so the lost update is shown without undefined
 * behaviour): the balance usually ends wrong. The second takes a
 * corio_tlock around change_it: it is always 0. The first round is run
 * again until it ends wrong (at most 20 times), to show the race.
 *
 * Prints (the first number varies from run to run; 0 is possible, rarely):
 *     without a lock: balance = 1234567
 *     with a lock:    balance = 0
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

#define ROUNDS 100000

static long balance;
static corio_tlock *lock;       /* NULL in the first round */
static corio_barrier *go;       /* both threads start changing at once */

static void change_it(long n)
{
    /* balance = balance + n; balance = balance - n, as two loads and two
     * stores: another thread may write in between. */
    long b = __atomic_load_n(&balance, __ATOMIC_RELAXED);

    __atomic_store_n(&balance, b + n, __ATOMIC_RELAXED);
    b = __atomic_load_n(&balance, __ATOMIC_RELAXED);
    __atomic_store_n(&balance, b - n, __ATOMIC_RELAXED);
}

static void *run_thread(void *arg)
{
    long n = (long)arg;

    if (corio_barrier_wait(go, -1) == -1)
        return (void *)(long)errno;
    for (int i = 0; i < ROUNDS; i++) {
        if (lock != NULL && corio_tlock_acquire(lock, -1) == -1)
            return (void *)(long)errno;
        change_it(n);
        if (lock != NULL && corio_tlock_release(lock) == -1)
            return (void *)(long)errno;
    }
    return NULL;
}

/* One round: two threads, then the balance. -1 on error. */
static int round_of(long *result)
{
    corio_thread *t1, *t2;
    void *e1 = NULL, *e2 = NULL;

    balance = 0;
    t1 = corio_thread_start(run_thread, (void *)5L, NULL);
    t2 = corio_thread_start(run_thread, (void *)8L, NULL);
    if (t1 == NULL || t2 == NULL) {
        fprintf(stderr, "corio_thread_start: %s\n", corio_strerror(errno));
        return -1;
    }
    if (corio_thread_join(t1, &e1, -1) == -1 ||
        corio_thread_join(t2, &e2, -1) == -1) {
        fprintf(stderr, "corio_thread_join: %s\n", corio_strerror(errno));
        return -1;
    }
    if (corio_thread_free(t1) == -1 || corio_thread_free(t2) == -1)
        return -1;
    if (e1 != NULL || e2 != NULL) {
        fprintf(stderr, "lock: %s\n",
                corio_strerror((int)(long)(e1 ? e1 : e2)));
        return -1;
    }
    *result = balance;
    return 0;
}

int main(void)
{
    long result = 0;

    go = corio_barrier_new(2);
    if (go == NULL) {
        fprintf(stderr, "corio_barrier_new: %s\n", corio_strerror(errno));
        return 1;
    }
    for (int i = 0; i < 20 && result == 0; i++) {
        if (round_of(&result) == -1)
            return 1;
    }
    printf("without a lock: balance = %ld\n", result);

    lock = corio_tlock_new();
    if (lock == NULL) {
        fprintf(stderr, "corio_tlock_new: %s\n", corio_strerror(errno));
        return 1;
    }
    if (round_of(&result) == -1)
        return 1;
    printf("with a lock:    balance = %ld\n", result);
    if (corio_tlock_free(lock) == -1 || corio_barrier_free(go) == -1) {
        fprintf(stderr, "corio_tlock_free: %s\n", corio_strerror(errno));
        return 1;
    }
    return result == 0 ? 0 : 1;
}
