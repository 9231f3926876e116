/* D3: a worker whose authkey differs cannot connect.
 *
 * The seed: the queues live in the manager's process, and workers reach
 * them only through the manager, which lets in only those who know the
 * authkey. This program runs a manager (authkey "abc") in a task of its
 * own loop and starts the D2 worker (d2_taskworker) twice as a separate
 * process: with --authkey abd it is refused (the manager checks a
 * challenge-response over the key, HMAC-SHA256, before it reads anything
 * else), says so and exits with status 1; with abc it connects, finds no
 * task (the queue is closed) and exits with 0. */
#define _GNU_SOURCE /* pipe2 */
#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char worker_path[PATH_MAX + 32];

/* Run the worker with key against addr; print its output (both streams)
 * indented; return its exit status, or -1. */
static int run_worker(const char *addr, const char *key)
{
    char line[256];
    corio_stream *out;
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) == -1 || fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1)
        return -1;
    pid = fork();
    if (pid == -1)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execl(worker_path, "d2_taskworker", "--addr", addr, "--authkey", key,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    out = corio_stream_new(fds[0], NULL);
    if (out == NULL)
        return -1;
    while ((n = corio_stream_readline(out, line, sizeof(line), -1)) > 0)
        printf("    | %s", line);
    corio_stream_close(out);
    if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void *demo(void *arg)
{
    corio_dist_manager_opts mo = {.authkey = "abc"};
    corio_dist_opts o = {.authkey = "abc"};
    corio_dist_manager *m;
    corio_dist_queue *q = NULL;
    corio_dist *d = NULL;
    char addr[64], url[80];
    int st1, st2, err = 0;

    (void)arg;
    m = corio_dist_manager_start("127.0.0.1:0", &mo);
    if (m == NULL || corio_dist_manager_addr(m, addr, sizeof(addr)) == -1) {
        fprintf(stderr, "manager: %s\n", corio_strerror(errno));
        return corio_task_fail(errno);
    }
    /* No tasks today: the queue is closed, so the right worker ends at once. */
    snprintf(url, sizeof(url), "corio://%s", addr);
    d = corio_dist_connect(url, &o, corio_now() + 5 * CORIO_SECOND);
    if (d == NULL || (q = corio_dist_queue_new(d, "task_queue")) == NULL ||
        corio_dist_queue_close(q, -1) == -1) {
        err = errno;
        fprintf(stderr, "queue: %s\n", corio_strerror(err));
    }
    if (err == 0) {
        printf("manager on %s, authkey abc\n", addr);
        printf("worker with authkey abd:\n");
        st1 = run_worker(addr, "abd");
        printf("  exit status %d: %s\n", st1,
               st1 == 1 ? "refused" : "NOT refused");
        printf("worker with authkey abc:\n");
        st2 = run_worker(addr, "abc");
        printf("  exit status %d: %s\n", st2, st2 == 0 ? "served" : "failed");
        if (st1 != 1 || st2 != 0)
            err = EPROTO;
    }
    corio_dist_queue_free(q);
    corio_dist_close(d);
    corio_dist_manager_stop(m, -1);
    return err ? corio_task_fail(err) : NULL;
}

int main(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    (void)argc;
    if (n <= 0)
        n = (ssize_t)strlen(strncpy(self, argv[0], sizeof(self) - 1));
    self[n] = '\0';
    if (strrchr(self, '/') != NULL)
        *strrchr(self, '/') = '\0';
    else
        strcpy(self, ".");
    snprintf(worker_path, sizeof(worker_path), "%s/d2_taskworker", self);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return corio_run(demo, NULL, NULL) == 0 ? 0 : 1;
}
