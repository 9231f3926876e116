/* bench/net/corio_echo.c -- corio's echo server for the benchmark: a task
 * per connection (corio_server_start), reading and writing the socket directly.
 *
 *   corio_echo PORT     prints "READY" when listening; runs until killed */
#include <corio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The buffer is on the task's stack: 2 KiB (more than a message) keeps the
 * whole idle task within its stack's top page. */
static void echo(corio_stream *s, void *arg)
{
    char buf[2048];
    int fd = corio_stream_fd(s);
    ssize_t n;

    (void)arg;
    while ((n = corio_fd_read(fd, buf, sizeof(buf), -1)) > 0)
        if (corio_fd_write(fd, buf, (size_t)n, -1) == -1)
            return;
}

static void *serve(void *arg)
{
    corio_listen_opts o = {.backlog = 4096};
    corio_server *srv = corio_server_start(arg, &o, echo, NULL);

    if (srv == NULL) {
        fprintf(stderr, "corio_echo: %s: %s\n", (char *)arg, corio_strerror(errno));
        exit(1);
    }
    printf("READY\n");
    fflush(stdout);
    corio_sleep(INT64_MAX); /* until SIGTERM cancels it */
    corio_server_stop(srv, corio_now() + CORIO_SECOND);
    return NULL;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    char addr[64];

    if (argc != 2) {
        fprintf(stderr, "usage: corio_echo PORT\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
    return corio_run(serve, addr, NULL) == 0 ? 0 : 1;
}
