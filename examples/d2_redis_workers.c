/* D1 + D2 on Redis: the seed's taskmanager and two taskworkers share the
 * work through a Redis server instead of corio's manager -- the same
 * programs (d1_taskmanager, d2_taskworker), given --url
 * redis://127.0.0.1:PORT. The seed's authkey, abc, is Redis's password.
 *
 * This program starts a redis-server of its own on a free loopback port
 * (nothing saved to disk), waits until it answers (corio_dist_connect
 * retried until a deadline), runs the trio (d2_workers_share --url ...),
 * and stops the server. The tasks live in a Redis Stream: a worker that
 * dies mid-task has its task delivered again once its lease expires. */
#include "corio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[PATH_MAX];  /* where the examples are */
static char port[16];
static char url[64];

/* A free loopback port: bind port 0, read it, let it go. */
static int free_port(void)
{
    corio_addr a;
    char text[64];
    int fd = corio_socket_listen("127.0.0.1:0", NULL);
    int rc;

    if (fd == -1)
        return -1;
    rc = corio_socket_name(fd, &a);
    if (rc == 0 && corio_addr_format(&a, text, sizeof(text)) < 0)
        rc = -1;
    corio_fd_close(fd);
    if (rc == 0)
        snprintf(port, sizeof(port), "%s", strrchr(text, ':') + 1);
    return rc;
}

/* fork and exec argv; out_null: its stdout and stderr to /dev/null. The
 * child gets SIGKILL if this process dies first. Returns its pid or -1. */
static pid_t spawn(char *const argv[], bool out_null)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    sigset_t none;

    if (pid != 0)
        return pid;
    /* corio_run blocks the signals it handles: the child must see them */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    if (out_null) {
        int fd = open("/dev/null", O_WRONLY);

        dup2(fd, 1);
        dup2(fd, 2);
    }
    execvp(argv[0], argv);
    perror(argv[0]);
    _exit(127);
}

/* Wait for pid's end without blocking the loop. Returns its wait status,
 * or -1. */
static int reap(pid_t pid)
{
    int status;
    pid_t r;

    while ((r = waitpid(pid, &status, WNOHANG)) == 0)
        if (corio_sleep(20 * CORIO_MSEC) == -1)
            return -1;
    return r == pid ? status : -1;
}

/* Connect until Redis answers (it takes a moment to start). Returns 0,
 * or -1 with errno: ECHILD if the server exited (*status: how), else why
 * the last connection failed. */
static int wait_for_redis(pid_t redis, int *status, int64_t deadline)
{
    corio_dist_opts o = {.authkey = "abc"};

    for (;;) {
        corio_dist *d = corio_dist_connect(url, &o, deadline);

        if (d != NULL)
            return corio_dist_close(d);
        if (errno != ECONNREFUSED || corio_now() >= deadline)
            return -1;
        if (waitpid(redis, status, WNOHANG) == redis) {
            errno = ECHILD;
            return -1;
        }
        if (corio_sleep(20 * CORIO_MSEC) == -1)
            return -1;
    }
}

static void *run(void *arg)
{
    char trio[PATH_MAX + 32];
    char *redis_argv[] = {"redis-server", "--port", port, "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--requirepass", "abc", NULL};
    char *trio_argv[] = {trio, "--url", url, NULL};
    pid_t redis, p;
    int status, err = 0;

    (void)arg;
    if (free_port() == -1) {
        fprintf(stderr, "port: %s\n", corio_strerror(errno));
        return corio_task_fail(errno);
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s", port);
    snprintf(trio, sizeof(trio), "%s/d2_workers_share", dir);
    redis = spawn(redis_argv, true);
    if (redis == -1) {
        fprintf(stderr, "redis-server: %s\n", corio_strerror(errno));
        return corio_task_fail(errno);
    }
    if (wait_for_redis(redis, &status, corio_now() + 10 * CORIO_SECOND) == -1) {
        err = errno;
        if (err == ECHILD && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            fprintf(stderr, "redis-server is not installed "
                            "(apt-get install redis-server, or make run)\n");
        else if (err == ECHILD)
            fprintf(stderr, "redis-server exited at once (status %#x)\n",
                    (unsigned)status);
        else
            fprintf(stderr, "redis-server did not start: %s\n",
                    corio_strerror(err));
        if (err == ECHILD)
            return corio_task_fail(err);
    } else {
        printf("[redis]   redis-server on 127.0.0.1:%s\n", port);
        p = spawn(trio_argv, false);
        status = p == -1 ? -1 : reap(p);
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            err = p == -1 || status == -1 ? errno : ECHILD;
            fprintf(stderr, "the trio failed\n");
        }
    }
    kill(redis, SIGTERM);
    if (reap(redis) == -1 && err == 0)
        err = errno;
    printf("[redis]   redis-server stopped\n");
    return err != 0 ? corio_task_fail(err) : NULL;
}

int main(void)
{
    /* The other examples are next to this one. */
    char *exe = realpath("/proc/self/exe", NULL);

    if (exe == NULL) {
        perror("/proc/self/exe");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", dirname(exe));
    free(exe);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return corio_run(run, NULL, NULL) == 0 ? 0 : 1;
}
