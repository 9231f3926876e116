/* D1: taskmanager -- the master of a distributed task queue.
 *
 * The seed's Python (multiprocessing.managers):
 *
 *     task_queue = queue.Queue(); result_queue = queue.Queue()
 *     QueueManager.register('get_task_queue', callable=lambda: task_queue)
 *     QueueManager.register('get_result_queue', callable=lambda: result_queue)
 *     manager = QueueManager(address=('', 5000), authkey=b'abc')
 *     manager.start()
 *     task = manager.get_task_queue(); result = manager.get_result_queue()
 *     for i in range(10):
 *         n = random.randint(0, 10000)
 *         print('Put task %d...' % n)
 *         task.put(n)
 *     print('Try get results...')
 *     for i in range(10):
 *         r = result.get(timeout=10)
 *         print('Result: %s' % r)
 *     manager.shutdown()
 *     print('master exit.')
 *
 * In corio the manager runs in a process of its own too
 * (corio_dist_manager_start with .process), and the program talks to it
 * like any worker, by URL. The workers (D2, d2_taskworker) take tasks with
 * a lease and ack each with its result, so a worker that dies has its task
 * delivered again; the master waits for each task's result by its id.
 * After the last put it closes the task queue: workers then stop taking
 * when it is empty. --url redis://... uses a Redis server instead (no
 * manager is started). */
#include "corio.h"
#include "dist_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NTASKS 10

static struct dist_args args;

/* Start the manager where the URL says (corio:// only). */
static corio_dist_manager *manager_start(void)
{
    corio_dist_manager_opts mo = {.authkey = args.authkey, .process = true};
    const char *hostport = args.url + strlen("corio://");
    corio_dist_manager *m;

    if (strncmp(args.url, "corio://", 8) != 0)
        return NULL;   /* another backend: nothing to start */
    m = corio_dist_manager_start(hostport, &mo);
    if (m == NULL) {
        fprintf(stderr, "manager: %s: %s\n", hostport, corio_strerror(errno));
        exit(1);
    }
    return m;
}

static void *master(void *arg)
{
    corio_dist_opts o = {.authkey = args.authkey};
    uint64_t ids[NTASKS];
    corio_dist_queue *task;
    corio_dist *d;
    int failed = 0;

    (void)arg;
    d = corio_dist_connect(args.url, &o, corio_now() + 10 * CORIO_SECOND);
    if (d == NULL) {
        fprintf(stderr, "connect %s: %s\n", args.url, corio_strerror(errno));
        return corio_task_fail(errno);
    }
    task = corio_dist_queue_new(d, "task_queue");
    if (task == NULL) {
        fprintf(stderr, "queue: %s\n", corio_strerror(errno));
        corio_dist_close(d);
        return corio_task_fail(errno);
    }
    srand((unsigned)time(NULL));
    for (int i = 0; i < NTASKS && !failed; i++) {
        char n[16];
        int len = snprintf(n, sizeof(n), "%d", rand() % 10001);

        printf("Put task %s...\n", n);
        if (corio_dist_queue_put(task, n, (size_t)len, &ids[i], -1) == -1) {
            fprintf(stderr, "put: %s\n", corio_strerror(errno));
            failed = errno;
        }
    }
    /* No more tasks: workers stop taking once it is empty. */
    if (!failed && corio_dist_queue_close(task, -1) == -1) {
        fprintf(stderr, "close: %s\n", corio_strerror(errno));
        failed = errno;
    }
    if (!failed)
        printf("Try get results...\n");
    for (int i = 0; i < NTASKS && !failed; i++) {
        corio_dist_msg r;

        if (corio_dist_result_take(d, ids[i], &r,
                                   corio_now() + 10 * CORIO_SECOND) == -1) {
            fprintf(stderr, "result: %s\n", corio_strerror(errno));
            failed = errno;
            break;
        }
        printf("Result: %s\n", (char *)r.data);
        corio_dist_msg_clear(&r);
    }
    corio_dist_queue_free(task);
    corio_dist_close(d);
    return failed ? corio_task_fail(failed) : NULL;
}

int main(int argc, char **argv)
{
    corio_dist_manager *m;
    int rc;

    if (dist_args_parse(&args, argc, argv) == -1)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    m = manager_start();
    rc = corio_run(master, NULL, NULL);
    if (corio_dist_manager_stop(m, corio_now() + 5 * CORIO_SECOND) == -1)
        fprintf(stderr, "manager stop: %s\n", corio_strerror(errno));
    printf("master exit.\n");
    return rc == 0 ? 0 : 1;
}
