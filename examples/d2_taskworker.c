/* D2: taskworker -- a worker of the distributed task queue (D1 is the
 * master, d1_taskmanager). Several run at once, on several machines, and
 * share the work.
 *
 * The seed's Python:
 *
 *     server_addr = '127.0.0.1'
 *     print('Connect to server %s...' % server_addr)
 *     m = QueueManager(address=(server_addr, 5000), authkey=b'abc')
 *     m.connect()
 *     task = m.get_task_queue(); result = m.get_result_queue()
 *     for i in range(10):
 *         try:
 *             n = task.get(timeout=1)
 *             print('run task %d * %d...' % (n, n))
 *             r = '%d * %d = %d' % (n, n, n * n)
 *             time.sleep(1)
 *             result.put(r)
 *         except queue.Empty:
 *             print('task queue is empty.')
 *     print('worker exit.')
 *
 * Here the worker takes a task with a lease (corio_dist_queue_take) and
 * acks it with its result: if the worker dies mid-task, the manager
 * delivers the task again to another worker. A closed, empty queue (the
 * master has put everything) ends the loop early, and so does the
 * manager's shutdown (the master has every result). A wrong --authkey is
 * refused by the manager (D3): the worker says so and exits with status
 * 1. */
#include "corio.h"
#include "dist_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static struct dist_args args;

/* One task: "n" -> "n * n = m", after a second's work. */
static int run_task(corio_dist_queue *task, const corio_dist_msg *m)
{
    long n = strtol(m->data, NULL, 10);
    char r[64];
    int len;

    printf("run task %ld * %ld...\n", n, n);
    len = snprintf(r, sizeof(r), "%ld * %ld = %ld", n, n, n * n);
    if (corio_sleep(CORIO_SECOND) == -1)
        return -1;
    return corio_dist_queue_ack(task, m->id, r, (size_t)len, -1);
}

static void *worker(void *arg)
{
    corio_dist_opts o = {.authkey = args.authkey};
    corio_dist_queue *task;
    corio_dist *d;
    int err = 0;

    (void)arg;
    printf("Connect to server %s...\n", args.host);
    d = corio_dist_connect(args.url, &o, corio_now() + 10 * CORIO_SECOND);
    if (d == NULL) {
        if (errno == EACCES)
            fprintf(stderr, "worker: the server refused the authkey "
                            "(authentication failed)\n");
        else
            fprintf(stderr, "worker: connect %s: %s\n", args.url,
                    corio_strerror(errno));
        return corio_task_fail(errno);
    }
    task = corio_dist_queue_new(d, "task_queue");
    if (task == NULL) {
        err = errno;
        fprintf(stderr, "worker: queue: %s\n", corio_strerror(err));
    }
    for (int i = 0; i < 10 && err == 0; i++) {
        corio_dist_msg m;

        if (corio_dist_queue_take(task, &m, corio_now() + CORIO_SECOND) == 0) {
            if (run_task(task, &m) == -1) {
                err = errno;
                fprintf(stderr, "worker: ack: %s\n", corio_strerror(err));
            }
            corio_dist_msg_clear(&m);
        } else if (errno == ETIMEDOUT || errno == CORIO_ECLOSED) {
            printf("task queue is empty.\n");
            if (errno == CORIO_ECLOSED)
                break;   /* the master has put all: no use waiting */
        } else if (errno == CORIO_EEOF || errno == ECONNRESET) {
            /* The master got every result and shut the manager down. */
            printf("manager has shut down.\n");
            break;
        } else {
            err = errno;
            fprintf(stderr, "worker: take: %s\n", corio_strerror(err));
        }
    }
    corio_dist_queue_free(task);
    corio_dist_close(d);
    return err ? corio_task_fail(err) : NULL;
}

int main(int argc, char **argv)
{
    int rc;

    if (dist_args_parse(&args, argc, argv) == -1)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = corio_run(worker, NULL, NULL);
    printf("worker exit.\n");
    return rc == 0 ? 0 : 1;
}
