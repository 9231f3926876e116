/* P6: multi-process + coroutines uses every core: one worker process per
 * core, each with its own event loop, all serving one address (the nginx
 * model), under a supervisor that restarts a worker that dies, stops them
 * all on SIGTERM or Ctrl+C, and reloads them one at a time on SIGHUP.
 *
 * The server is an echo server whose answers name the worker that served
 * them. One call runs it: corio_prefork_serve.
 *
 *     build/examples/p6_prefork            checks itself: a client process
 *                                          opens 16 connections, prints which
 *                                          workers answered, and stops the
 *                                          supervisor (SIGTERM)
 *     build/examples/p6_prefork --serve [ADDR]
 *                                          serves ADDR (127.0.0.1:8888) until
 *                                          Ctrl+C; try: nc 127.0.0.1 8888 */
#include "corio.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNECTIONS 16

/* In a worker, one task per connection: answer each line with our pid. */
static void echo_handler(corio_stream *s, void *arg)
{
    char line[256], reply[320];
    ssize_t n;
    int len;

    (void)arg;
    while ((n = corio_stream_readline(s, line, sizeof(line) - 1, -1)) > 0) {
        line[n] = '\0';
        len = snprintf(reply, sizeof(reply), "worker %d: %s", (int)getpid(),
                       line);
        if (corio_stream_write(s, reply, (size_t)len) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return;
    }
}

static int on_worker(size_t slot, void *arg)
{
    (void)arg;
    printf("Worker %zu (pid %d) serves with its own loop\n", slot,
           (int)getpid());
    return 0;
}

/* ---- The self-check's client (a process of its own) ---------------------- */

struct check {
    char addr[64];
    size_t workers;
    corio_process *client;
};

static void *client_main(void *arg)
{
    struct check *c = arg;
    int pids[CONNECTIONS], distinct = 0, len = 0;
    char line[320], list[CONNECTIONS * 12] = "";

    for (int i = 0; i < CONNECTIONS; i++) {
        corio_stream *s = corio_stream_connect(c->addr, corio_now() + 5 * CORIO_SECOND);
        ssize_t n;

        if (s == NULL)
            return corio_task_fail(errno);
        if (corio_stream_write(s, "hello\n", 6) == -1 ||
            corio_stream_drain(s, -1) == -1 ||
            (n = corio_stream_readline(s, line, sizeof(line) - 1,
                                       corio_now() + 5 * CORIO_SECOND)) <= 0) {
            int err = n == 0 ? CORIO_EEOF : errno;
            corio_stream_close(s);
            return corio_task_fail(err);
        }
        corio_stream_close(s);
        pids[i] = atoi(line + strlen("worker "));
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= pids[j] == pids[i];
        if (!seen) {
            distinct++;
            len += snprintf(list + len, sizeof(list) - (size_t)len, " %d",
                            pids[i]);
        }
    }
    printf("Client: %d connections, answered by %d different workers:%s\n",
           CONNECTIONS, distinct, list);
    return CORIO_INT(distinct);
}

static int client_run(void *arg)
{
    struct check *c = arg;
    void *distinct = NULL;
    int rc = corio_run(client_main, c, &distinct);

    if (rc == -1)
        fprintf(stderr, "client: %s\n", corio_strerror(errno));
    /* Done: stop the supervisor, our parent. */
    kill(getppid(), SIGTERM);
    if (rc == -1)
        return 1;
    /* Every worker should have answered some (the kernel spreads the
     * connections by their ports; with 2 or more workers, 16 connections
     * all going to one is most unlikely). */
    return CORIO_TO_INT(distinct) >= (c->workers > 1 ? 2 : 1) ? 0 : 2;
}

static void on_ready(const corio_addr *bound, void *arg)
{
    struct check *c = arg;

    corio_addr_format(bound, c->addr, sizeof(c->addr));
    printf("Supervisor %d: %zu workers serve %s\n", (int)getpid(),
           c->workers, c->client != NULL ? "its address" : c->addr);
    if (c->client == NULL) {
        printf("Ctrl+C stops them all; SIGHUP (kill -HUP %d) reloads them\n",
               (int)getpid());
        return;
    }
    if (corio_process_start(c->client) == -1) {
        fprintf(stderr, "client: %s\n", corio_strerror(errno));
        kill(getpid(), SIGTERM);
    }
}

int main(int argc, char **argv)
{
    bool serve = argc > 1 && strcmp(argv[1], "--serve") == 0;
    const char *addr = serve ? (argc > 2 ? argv[2] : "127.0.0.1:8888")
                             : "127.0.0.1:0";
    struct check c = {0};
    corio_prefork_opts opts = {
        .on_worker = on_worker,
        .on_ready = on_ready,
        .ready_arg = &c,
        .stop_timeout = 2 * CORIO_SECOND,
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int code = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    c.workers = ncpu > 0 ? (size_t)ncpu : 1;
    opts.workers = c.workers;
    if (!serve) {
        c.client = corio_process_new(client_run, &c, NULL);
        if (c.client == NULL) {
            perror("corio_process_new");
            return 1;
        }
    }
    if (corio_prefork_serve(addr, echo_handler, NULL, &opts) == -1) {
        fprintf(stderr, "corio_prefork_serve: %s\n", corio_strerror(errno));
        code = 1;
    } else {
        printf("Supervisor: every worker stopped\n");
    }
    if (c.client != NULL) {
        if (corio_process_wait(c.client, -1) == -1 ||
            corio_process_exitcode(c.client, &code) == -1) {
            fprintf(stderr, "client: %s\n", corio_strerror(errno));
            code = 1;
        }
        corio_process_free(c.client);
    }
    return code;
}
