/* P3: examples/p3_pool.c -- multiprocessing.Pool: five long tasks on a pool
 * of worker processes, then close and join.
 *
 * The seed:
 *
 *     def long_time_task(name):
 *         print('Run task %s (%s)...' % (name, os.getpid()))
 *         start = time.time()
 *         time.sleep(random.random() * 3)
 *         end = time.time()
 *         print('Task %s runs %0.2f seconds.' % (name, (end - start)))
 *
 *     print('Parent process %s.' % os.getpid())
 *     p = Pool()                    # as many workers as CPUs
 *     for i in range(5):
 *         p.apply_async(long_time_task, args=(i,))
 *     print('Waiting for all subprocesses done...')
 *     p.close()
 *     p.join()
 *     print('All subprocesses done.')
 *
 * corio_workers_new(NULL) is Pool(): one worker per CPU this process may
 * run on. With fewer workers than tasks, a task starts only when a worker
 * frees up; `p3_pool --size 5` is Pool(5): all five run at once. close
 * comes before join (join refuses a pool that is not closed: it would wait
 * forever), and nothing can be submitted after close. A work item is a
 * function and argument bytes (here the task's number); its result is
 * bytes too (none here).
 *
 * Scale: the seed sleeps 0-3 s per task; this one 0-0.6 s so the tour stays
 * short (`--seconds 3` for the seed's).
 *
 * Prints (pids, order and times vary):
 *     Parent process 100.
 *     Waiting for all subprocesses done...
 *     Run task 0 (101)...
 *     Run task 1 (102)...
 *     Task 1 runs 0.18 seconds.
 *     Run task 2 (102)...
 *     ...
 *     All subprocesses done.
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double max_seconds = 0.6;

static int long_time_task(const void *arg, size_t len, corio_bytes *result)
{
    int name;
    int64_t start, end;
    double secs;

    if (len != sizeof(name))
        return EINVAL;
    memcpy(&name, arg, sizeof(name));
    printf("Run task %d (%d)...\n", name, (int)getpid());
    fflush(stdout);
    start = corio_now();
    secs = (double)rand() / RAND_MAX * max_seconds;
    usleep((useconds_t)(secs * 1e6));
    end = corio_now();
    printf("Task %d runs %0.2f seconds.\n", name, (double)(end - start) / 1e9);
    fflush(stdout);
    return 0;
}

/* Each worker draws its own random numbers. */
static void seed_random(void *arg)
{
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
}

int main(int argc, char **argv)
{
    corio_workers_opts opts = {.initializer = seed_random};
    corio_future *f[5];
    corio_workers *p;
    int rc = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--size") == 0)
            opts.size = (size_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            max_seconds = atof(argv[i + 1]);
    }
    printf("Parent process %d.\n", (int)getpid());
    p = corio_workers_new(&opts);
    if (p == NULL) {
        fprintf(stderr, "corio_workers_new: %s\n", corio_strerror(errno));
        return 1;
    }
    for (int i = 0; i < 5; i++) {
        f[i] = corio_workers_submit(p, long_time_task, &i, sizeof(i));
        if (f[i] == NULL) {
            fprintf(stderr, "corio_workers_submit: %s\n", corio_strerror(errno));
            return 1;
        }
    }
    printf("Waiting for all subprocesses done...\n");
    fflush(stdout);
    if (corio_workers_close(p) == -1 || corio_workers_join(p) == -1) {
        fprintf(stderr, "close/join: %s\n", corio_strerror(errno));
        return 1;
    }
    /* every result is in by now: read each task's outcome */
    for (int i = 0; i < 5; i++) {
        if (corio_future_wait(f[i], -1) == -1 || corio_future_error(f[i]) != 0) {
            fprintf(stderr, "task %d: %s\n", i,
                    corio_strerror(corio_future_error(f[i])));
            rc = 1;
        }
        corio_future_free(f[i]);
    }
    corio_workers_free(p);
    printf("All subprocesses done.\n");
    return rc;
}
