/* P4: a Queue between processes: a writer process puts A, B and C (with
 * random pauses), a reader process loops on a blocking get; the parent
 * joins the writer, then terminates the reader.
 *
 * The seed's Python:
 *
 *     def write(q):
 *         print('Process to write: %s' % os.getpid())
 *         for value in ['A', 'B', 'C']:
 *             print('Put %s to queue...' % value)
 *             q.put(value)
 *             time.sleep(random.random())
 *
 *     def read(q):
 *         print('Process to read: %s' % os.getpid())
 *         while True:
 *             value = q.get(True)
 *             print('Get %s from queue.' % value)
 *
 *     q = Queue()
 *     pw = Process(target=write, args=(q,))
 *     pr = Process(target=read, args=(q,))
 *     pw.start(); pr.start(); pw.join(); pr.terminate()
 *
 * The queue is made before the processes start: they share it (shared
 * memory mapped before fork). The pauses are 0.1 to 0.5 s here (the seed's
 * are 0 to 1 s), so that the tour stays short and the reader has taken C
 * before it is terminated. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int writer(void *arg)
{
    corio_queue *q = arg;
    const char *values[] = {"A", "B", "C"};

    srand((unsigned)getpid());
    printf("Process to write: %d\n", (int)getpid());
    for (int i = 0; i < 3; i++) {
        printf("Put %s to queue...\n", values[i]);
        if (corio_queue_put(q, values[i], strlen(values[i]), -1) == -1) {
            fprintf(stderr, "put: %s\n", corio_strerror(errno));
            return 1;
        }
        if (corio_sleep((100 + rand() % 400) * CORIO_MSEC) == -1)
            return 1;
    }
    return 0;
}

static int reader(void *arg)
{
    corio_queue *q = arg;
    char value[16];
    ssize_t n;

    printf("Process to read: %d\n", (int)getpid());
    for (;;) {
        n = corio_queue_get(q, value, sizeof(value) - 1, -1);
        if (n == -1) {
            fprintf(stderr, "get: %s\n", corio_strerror(errno));
            return 1;
        }
        value[n] = '\0';
        printf("Get %s from queue.\n", value);
    }
}

int main(void)
{
    corio_queue *q;
    corio_process *pw, *pr;
    int code;

    /* Each line goes out whole and at once, even into a pipe, even from a
     * process that is terminated. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    q = corio_queue_new(NULL);
    if (q == NULL) {
        perror("corio_queue_new");
        return 1;
    }
    pw = corio_process_new(writer, q, NULL);
    pr = corio_process_new(reader, q, NULL);
    if (pw == NULL || pr == NULL || corio_process_start(pw) == -1 ||
        corio_process_start(pr) == -1) {
        fprintf(stderr, "start: %s\n", corio_strerror(errno));
        return 1;
    }
    if (corio_process_wait(pw, -1) == -1 ||
        corio_process_exitcode(pw, &code) == -1 || code != 0) {
        fprintf(stderr, "writer failed\n");
        return 1;
    }
    /* The reader loops forever: terminate it (SIGTERM), as the seed does. */
    if (corio_process_terminate(pr) == -1 || corio_process_wait(pr, -1) == -1) {
        fprintf(stderr, "terminate: %s\n", corio_strerror(errno));
        return 1;
    }
    corio_process_free(pw);
    corio_process_free(pr);
    corio_queue_free(q);
    return 0;
}
