/* tests/helpers/peer_proc.h -- a peer program (a Python server or client,
 * nginx) run by a test: started with argv, it prints "PORT <n>" on its
 * first line when it listens (peer_start waits for that line, up to 20
 * s), and stops when its stdin closes; peer_stop closes it, waits for the
 * exit (SIGKILL after 10 s) and returns the exit status. Include
 * criterion.h first. */
#ifndef CORIO_TEST_PEER_PROC_H
#define CORIO_TEST_PEER_PROC_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct peer_proc {
    pid_t pid;
    int in;      /* its stdin: closed to stop it */
    int out;     /* its stdout */
    int port;
};

/* The directory of the calling test's source file (tests/). */
#define PEER_TESTS_DIR(buf, size)                                              \
    do {                                                                       \
        snprintf((buf), (size), "%s", __FILE__);                               \
        char *slash_ = strrchr((buf), '/');                                    \
        if (slash_ != NULL)                                                    \
            *slash_ = '\0';                                                    \
    } while (0)

static inline void peer_start(struct peer_proc *p, char *const argv[])
{
    int in[2], out[2];
    char line[128];
    size_t len = 0;

    memset(p, 0, sizeof(*p));
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    fflush(NULL);
    p->pid = fork();
    cr_assert_neq(p->pid, -1);
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
    while (len < sizeof(line) - 1) {
        struct pollfd pfd = {p->out, POLLIN, 0};
        ssize_t n;

        cr_assert_eq(poll(&pfd, 1, 20000), 1, "%s did not start", argv[0]);
        n = read(p->out, line + len, 1);
        cr_assert_eq(n, 1, "%s ended before it listened", argv[0]);
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    cr_assert_eq(sscanf(line, "PORT %d", &p->port), 1, "%s said: %s",
                 argv[0], line);
}

static inline int peer_stop(struct peer_proc *p)
{
    int status = -1;

    if (p->pid <= 0)
        return -1;
    close(p->in);
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid)
            break;
        if (i == 999) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(p->out);
    p->pid = 0;
    return status;
}

#endif
