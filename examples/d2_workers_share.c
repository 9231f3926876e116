/* D1 + D2: the master and two workers share the work -- the seed's
 * taskmanager (D1, d1_taskmanager) and two taskworkers (D2,
 * d2_taskworker), each a process of its own, as on three machines.
 *
 * This program only starts the trio and shows what each prints, prefixed
 * with its name: the master on a free loopback port, the two workers once
 * the master has put its first task. The ten tasks (one second each) are
 * shared, so the run takes about five seconds, not ten. It reads the
 * three outputs in three tasks of one loop (corio_stream_readline on the
 * pipes) and waits for the processes to exit. --url URL runs the trio on
 * that backend instead (d2_redis_workers: a Redis server). */
#define _GNU_SOURCE /* pipe2 */
#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct proc {
    const char *label;
    pid_t pid;
    corio_stream *out;      /* its stdout */
    corio_event *started;   /* set at its first line */
    int status;
};

static char dir[PATH_MAX];  /* where the examples are */
static char addr[64];
static const char *url;     /* --url URL: a backend of the caller's (Redis) */

/* Start bin (in dir) with --addr addr, its stdout on a pipe. */
static int proc_start(struct proc *p, const char *bin)
{
    char path[PATH_MAX + 64];
    int fds[2];

    snprintf(path, sizeof(path), "%s/%s", dir, bin);
    /* Our end is non-blocking (the loop waits on it), theirs is not. */
    if (pipe2(fds, O_CLOEXEC) == -1 ||
        fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1)
        return -1;
    p->pid = fork();
    if (p->pid == -1)
        return -1;
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (url != NULL)
            execl(path, bin, "--url", url, (char *)NULL);
        else
            execl(path, bin, "--addr", addr, (char *)NULL);
        perror(path);
        _exit(127);
    }
    close(fds[1]);
    p->out = corio_stream_new(fds[0], NULL);
    return p->out == NULL ? -1 : 0;
}

/* Print p's lines, prefixed, until it closes its stdout. */
static void *proc_echo(void *arg)
{
    struct proc *p = arg;
    char line[256];
    ssize_t n;

    while ((n = corio_stream_readline(p->out, line, sizeof(line), -1)) > 0) {
        printf("%-9s %s", p->label, line);
        if (line[n - 1] != '\n')
            printf("\n");
        if (corio_event_set(p->started) == -1)
            return corio_task_fail(errno);
    }
    return n == 0 ? NULL : corio_task_fail(errno);
}

/* A free port: bind port 0, read it, let it go. */
static int free_port(void)
{
    corio_addr a;
    int fd = corio_socket_listen("127.0.0.1:0", NULL);
    int rc;

    if (fd == -1)
        return -1;
    rc = corio_socket_name(fd, &a);
    if (rc == 0)
        rc = corio_addr_format(&a, addr, sizeof(addr)) < 0 ? -1 : 0;
    if (corio_fd_close(fd) == -1)
        rc = -1;
    return rc;
}

static void *trio(void *arg)
{
    struct proc ps[3] = {{.label = "[master]"},
                         {.label = "[worker1]"},
                         {.label = "[worker2]"}};
    const char *bins[3] = {"d1_taskmanager", "d2_taskworker", "d2_taskworker"};
    corio_task *echo[3] = {NULL};
    int failed = 0;

    (void)arg;
    if (url == NULL && free_port() == -1) {
        fprintf(stderr, "port: %s\n", corio_strerror(errno));
        return corio_task_fail(errno);
    }
    for (int i = 0; i < 3 && !failed; i++) {
        ps[i].started = corio_event_new();
        if (ps[i].started == NULL || proc_start(&ps[i], bins[i]) == -1 ||
            (echo[i] = corio_task_spawn(proc_echo, &ps[i], NULL)) == NULL) {
            fprintf(stderr, "start %s: %s\n", bins[i], corio_strerror(errno));
            failed = errno;
            break;
        }
        /* The workers start once the master serves (its first line). */
        if (i == 0 &&
            corio_event_wait(ps[0].started, corio_now() + 10 * CORIO_SECOND) == -1) {
            fprintf(stderr, "the master did not start\n");
            failed = errno;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (echo[i] != NULL && corio_task_join(echo[i], NULL) == -1)
            failed = errno;
        if (ps[i].pid > 0) {
            if (failed && kill(ps[i].pid, SIGTERM) == -1)
                fprintf(stderr, "kill: %s\n", corio_strerror(errno));
            if (waitpid(ps[i].pid, &ps[i].status, 0) == -1 ||
                !WIFEXITED(ps[i].status) || WEXITSTATUS(ps[i].status) != 0) {
                fprintf(stderr, "%s failed\n", ps[i].label);
                failed = failed ? failed : ECHILD;
            }
        }
        if (corio_stream_close(ps[i].out) == -1 ||
            corio_event_free(ps[i].started) == -1)
            failed = failed ? failed : errno;
    }
    return failed ? corio_task_fail(failed) : NULL;
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);

    if (argc == 3 && strcmp(argv[1], "--url") == 0) {
        url = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--url URL]\n", argv[0]);
        return 2;
    }
    if (n <= 0) {
        snprintf(dir, sizeof(dir), "%s", argv[0]);
        n = (ssize_t)strlen(dir);
    }
    dir[n] = '\0';
    if (strrchr(dir, '/') != NULL)
        *strrchr(dir, '/') = '\0';
    else
        strcpy(dir, ".");
    setvbuf(stdout, NULL, _IOLBF, 0);
    return corio_run(trio, NULL, NULL) == 0 ? 0 : 1;
}
