/* tests/helpers/redis_test.h -- a redis-server of the test's own, on a free
 * loopback port (nothing saved to disk), started and stopped by the test.
 * The server gets SIGKILL if the test process dies first (PR_SET_PDEATHSIG),
 * so a failed assertion leaves no server behind.
 *
 * Include criterion.h (or the shim) first. */
#ifndef CORIO_TEST_REDIS_TEST_H
#define CORIO_TEST_REDIS_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_proc {
    pid_t pid;
    int port;
    char password[64];      /* "" : none */
    char dir[128];          /* "": nothing kept; else an append-only file
                               there, fsynced at every write (survives
                               SIGKILL) */
    char tls_dir[128];      /* "": plain TCP; else TLS only, with
                               server.pem, server.key and ca.pem there
                               (examples/devcert.h) */
};

/* A loopback port free now (the kernel's choice). */
static inline int redis_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

    cr_assert_geq(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline bool redis_port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Start redis-server on r->port (0: a free one), with r->password if set;
 * returns once it accepts connections (fails the test after 10 s). */
static inline void redis_start(struct redis_proc *r)
{
    char port[16];
    struct timespec ts = {0, 10 * 1000 * 1000};
    pid_t parent = getpid();

    if (r->port == 0)
        r->port = redis_free_port();
    snprintf(port, sizeof(port), "%d", r->port);
    r->pid = fork();
    cr_assert_geq(r->pid, 0);
    if (r->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        const char *argv[40] = {"redis-server", "--port", port, "--bind",
                                "127.0.0.1", "--save", "", "--daemonize",
                                "no", "--appendonly", "no", NULL};
        int n = 11;

        sigset_t none;

        /* corio_run blocks signals in its thread: the server must see them */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (r->password[0] != '\0') {
            argv[n++] = "--requirepass";
            argv[n++] = r->password;
        }
        if (r->dir[0] != '\0') {
            argv[10] = "yes";
            argv[n++] = "--appendfsync";
            argv[n++] = "always";
            argv[n++] = "--dir";
            argv[n++] = r->dir;
        }
        if (r->tls_dir[0] != '\0') {
            static char cert[160], key[160], ca[160];

            snprintf(cert, sizeof(cert), "%s/server.pem", r->tls_dir);
            snprintf(key, sizeof(key), "%s/server.key", r->tls_dir);
            snprintf(ca, sizeof(ca), "%s/ca.pem", r->tls_dir);
            argv[1] = "--tls-port";
            argv[n++] = "--port";
            argv[n++] = "0";
            argv[n++] = "--tls-cert-file";
            argv[n++] = cert;
            argv[n++] = "--tls-key-file";
            argv[n++] = key;
            argv[n++] = "--tls-ca-cert-file";
            argv[n++] = ca;
            argv[n++] = "--tls-auth-clients";
            argv[n++] = "no";
        }
        argv[n] = NULL;
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp("redis-server", (char **)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        int status;

        if (redis_port_open(r->port))
            return;
        cr_assert_eq(waitpid(r->pid, &status, WNOHANG), 0,
                     "redis-server exited (status %d)", status);
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("redis-server did not start on port %d", r->port);
}

/* Stop it (sig: SIGTERM, or SIGKILL for a crash) and reap it. */
static inline void redis_stop(struct redis_proc *r, int sig)
{
    int status;

    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    while (waitpid(r->pid, &status, 0) == -1 && errno == EINTR)
        ;
    r->pid = 0;
}

#endif
