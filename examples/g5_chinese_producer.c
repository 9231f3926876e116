/* G5: the producer/customer of the Chinese notes, one second per product.
 *
 * The seed's Python:
 *
 *     import time
 *     # 生产者
 *     def produce(c):
 *         c.send(None)
 *         for i in range(1, 6):
 *             print('生产者生产%d 产品' % i)
 *             c.send(str(i))
 *             time.sleep(1)
 *     # 消费者
 *     def customer():
 *         res = ''
 *         while True:
 *             data = yield res
 *             if not data:
 *                 return
 *             print('消费者消费%s 产品' % data)
 *
 *     c = customer()
 *     produce(c)
 *
 * and the lines it shows, "生产者生产 1 产品", "消费者消费 1 产品", ... up to 5.
 * The products are sent as strings, as in str(i): a generator's values are
 * pointers, so any object can cross a yield. The pause is a plain blocking
 * sleep: this is one thread with no event loop, so the whole program takes
 * about five seconds. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define PRODUCTS 5

/* 消费者: the customer consumes each product it is sent. */
static void *customer(corio_gen *gen, void *arg)
{
    const char *res = "";
    void *data;

    (void)arg;
    /* data = yield res; a failed yield means the generator is closing. */
    while (corio_gen_yield(gen, (void *)res, &data) == 0) {
        if (data == NULL) /* if not data: return */
            return NULL;
        printf("消费者消费 %s 产品\n", (const char *)data);
        fflush(stdout);
    }
    return NULL;
}

/* 生产者: makes a product a second, handing each to the customer. Returns
 * 0, or -1 with errno. */
static int produce(corio_gen *c)
{
    const struct timespec one_second = {.tv_sec = 1, .tv_nsec = 0};
    char product[16];

    if (corio_gen_send(c, NULL, NULL) == -1) /* c.send(None) */
        return -1;
    for (int i = 1; i <= PRODUCTS; i++) {
        printf("生产者生产 %d 产品\n", i);
        fflush(stdout);
        snprintf(product, sizeof(product), "%d", i); /* str(i) */
        if (corio_gen_send(c, product, NULL) == -1)
            return -1;
        nanosleep(&one_second, NULL); /* time.sleep(1) */
    }
    return 0;
}

int main(void)
{
    corio_gen *c = corio_gen_new(customer, NULL, NULL);

    if (c == NULL) {
        fprintf(stderr, "corio_gen_new: %s\n", corio_strerror(errno));
        return 1;
    }
    if (produce(c) == -1) {
        fprintf(stderr, "producer: %s\n", corio_strerror(errno));
        corio_gen_close(c);
        return 1;
    }
    /* Python lets the garbage collector close the generator; in C the
     * producer closes it, which also frees it. */
    if (corio_gen_close(c) == -1) {
        fprintf(stderr, "corio_gen_close: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
