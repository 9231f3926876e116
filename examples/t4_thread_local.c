/* T4: examples/t4_thread_local.c -- data bound per thread: each thread sees
 * its own student, shown two ways (_Thread_local, and a corio key).
 *
 * The seed (threading):
 *
 *     local_school = threading.local()
 *
 *     def process_student():
 *         std = local_school.student
 *         print('Hello, %s (in %s)' % (std, threading.current_thread().name))
 *
 *     def process_thread(name):
 *         local_school.student = name
 *         process_student()
 *
 *     t1 = threading.Thread(target=process_thread, args=('Alice',),
 *                           name='Thread-A')
 *     t2 = threading.Thread(target=process_thread, args=('Bob',),
 *                           name='Thread-B')
 *     t1.start(); t2.start(); t1.join(); t2.join()
 *
 * The typical use is one database connection, or the request being
 * served, per thread, without passing it down every call.
 *
 *   - C11's `_Thread_local` is threading.local() for one variable known at
 *     compile time: each thread has its own copy.
 *   - A corio key (corio_key_new, corio_local_set / corio_local_get) is
 *     made at run time and may have a destructor (run when the thread ends
 *     with a value set). It is bound per coroutine: on a thread's own
 *     stack it is thread-local, and each task of a loop has its own too
 *     (contextvars, where tasks share a thread).
 *
 * Both threads bind their student before either reads it (a barrier), so
 * each really reads its own while the other's is set; Thread-B prints after
 * Thread-A (an event), so the output's order is fixed.
 *
 * Prints:
 *     _Thread_local:
 *     Hello, Alice (in Thread-A)
 *     Hello, Bob (in Thread-B)
 *     corio key:
 *     Hello, Alice (in Thread-A)
 *     Hello, Bob (in Thread-B)
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static _Thread_local const char *student; /* local_school.student */
static corio_key school_key;               /* the same, as a corio key */
static bool use_key;

static corio_barrier *both_bound;
static corio_tevent *a_done;

static void process_student(void)
{
    const char *std = use_key ? corio_local_get(school_key) : student;

    printf("Hello, %s (in %s)\n", std, corio_thread_name(NULL));
    fflush(stdout);
}

static void *process_thread(void *arg)
{
    const char *name = arg;
    bool is_b = strcmp(corio_thread_name(NULL), "Thread-B") == 0;

    if (use_key) {
        if (corio_local_set(school_key, (void *)name) == -1)
            return (void *)(long)errno;
    } else {
        student = name;
    }
    if (corio_barrier_wait(both_bound, -1) == -1)
        return (void *)(long)errno;
    if (is_b && corio_tevent_wait(a_done, -1) == -1)
        return (void *)(long)errno;
    process_student();
    if (!is_b && corio_tevent_set(a_done) == -1)
        return (void *)(long)errno;
    return NULL;
}

/* Thread-A with Alice and Thread-B with Bob. -1 on error. */
static int run_both(void)
{
    corio_thread_opts oa = {.name = "Thread-A"}, ob = {.name = "Thread-B"};
    corio_thread *t1, *t2;
    void *e1 = NULL, *e2 = NULL;

    if (corio_tevent_clear(a_done) == -1)
        return -1;
    t1 = corio_thread_start(process_thread, "Alice", &oa);
    t2 = corio_thread_start(process_thread, "Bob", &ob);
    if (t1 == NULL || t2 == NULL) {
        fprintf(stderr, "corio_thread_start: %s\n", corio_strerror(errno));
        return -1;
    }
    if (corio_thread_join(t1, &e1, -1) == -1 ||
        corio_thread_join(t2, &e2, -1) == -1 || corio_thread_free(t1) == -1 ||
        corio_thread_free(t2) == -1) {
        fprintf(stderr, "corio_thread_join: %s\n", corio_strerror(errno));
        return -1;
    }
    if (e1 != NULL || e2 != NULL) {
        fprintf(stderr, "process_thread: %s\n",
                corio_strerror((int)(long)(e1 ? e1 : e2)));
        return -1;
    }
    return 0;
}

int main(void)
{
    int rc = 1;

    both_bound = corio_barrier_new(2);
    a_done = corio_tevent_new();
    if (both_bound == NULL || a_done == NULL ||
        corio_key_new(&school_key, NULL) == -1) {
        fprintf(stderr, "t4: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("_Thread_local:\n");
    if (run_both() == -1)
        goto out;
    use_key = true;
    printf("corio key:\n");
    if (run_both() == -1)
        goto out;
    rc = 0;
out:
    if (corio_key_free(school_key) == -1 ||
        corio_barrier_free(both_bound) == -1 || corio_tevent_free(a_done) == -1)
        rc = 1;
    return rc;
}
