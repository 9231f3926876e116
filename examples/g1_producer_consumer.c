/* G1: producer/consumer with a generator, no lock, one thread.
 *
 * The seed's Python:
 *
 *     def consumer():
 *         r = ''
 *         while True:
 *             n = yield r
 *             if not n:
 *                 return
 *             print('[CONSUMER] Consuming %s...' % n)
 *             r = '200 OK'
 *
 *     def produce(c):
 *         c.send(None)
 *         n = 0
 *         while n < 5:
 *             n = n + 1
 *             print('[PRODUCER] Producing %s...' % n)
 *             r = c.send(n)
 *             print('[PRODUCER] Consumer return: %s' % r)
 *         c.close()
 *
 * In C the generator is a function taking its corio_gen; `n = yield r` is
 * corio_gen_yield(gen, r, &n), and c.send(n) is corio_gen_send(c, n, &r).
 * Values cross as void pointers: CORIO_INT(n) wraps an integer, a string is
 * passed as is. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>

/* The consumer: receives a number per send, answers with a status string. */
static void *consumer(corio_gen *gen, void *arg)
{
    const char *r = "";
    void *n;

    (void)arg;
    /* n = yield r. The yield fails (-1) when the producer closes us: that
     * is Python's GeneratorExit, and the loop ends. */
    while (corio_gen_yield(gen, (void *)r, &n) == 0) {
        if (n == NULL) /* if not n: return */
            return NULL;
        printf("[CONSUMER] Consuming %ld...\n", (long)CORIO_TO_INT(n));
        r = "200 OK";
    }
    return NULL;
}

/* The producer: primes the consumer, sends it 1..5, then closes it.
 * Returns 0, or -1 with errno. */
static int produce(corio_gen *c)
{
    void *r;

    /* c.send(None): run the consumer up to its first yield. */
    if (corio_gen_send(c, NULL, NULL) == -1)
        return -1;
    for (int n = 1; n <= 5; n++) {
        printf("[PRODUCER] Producing %d...\n", n);
        /* Switch to the consumer; come back with what it yields. */
        if (corio_gen_send(c, CORIO_INT(n), &r) == -1)
            return -1;
        printf("[PRODUCER] Consumer return: %s\n", (const char *)r);
    }
    return 0;
}

int main(void)
{
    corio_gen *c = corio_gen_new(consumer, NULL, NULL);

    if (c == NULL) {
        fprintf(stderr, "corio_gen_new: %s\n", corio_strerror(errno));
        return 1;
    }
    if (produce(c) == -1) {
        fprintf(stderr, "producer: %s\n", corio_strerror(errno));
        corio_gen_close(c);
        return 1;
    }
    /* c.close(): the consumer's pending yield fails, it returns, and the
     * generator is freed. */
    if (corio_gen_close(c) == -1) {
        fprintf(stderr, "corio_gen_close: %s\n", corio_strerror(errno));
        return 1;
    }
    fflush(stdout);
    return 0;
}
