/* examples/echo.c -- an echo server and three clients in one program.
 *
 * The server (corio_server_start) runs one task per connection that reads lines
 * and writes them back. Three client tasks connect at once, each sends
 * three lines and reads the echoes; the results are printed in client
 * order once all are done, then the server stops. Everything runs on one
 * thread, on one loop.
 *
 *     build/examples/echo            (a free port on 127.0.0.1)
 *     build/examples/echo unix:/tmp/echo.sock */
#include <corio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CLIENTS 3
#define LINES 3

static void echo_handler(corio_stream *s, void *arg)
{
    char line[256];
    ssize_t n;

    (void)arg;
    while ((n = corio_stream_readline(s, line, sizeof(line), -1)) > 0) {
        if (corio_stream_write(s, line, (size_t)n) == -1 ||
            corio_stream_drain(s, -1) == -1)
            return;
    }
}

struct client {
    const char *addr;
    int id;
    char log[LINES][160];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    corio_stream *s = corio_stream_connect(c->addr, corio_now() + 5 * CORIO_SECOND);

    if (s == NULL)
        return corio_task_fail(errno);
    for (int i = 0; i < LINES; i++) {
        char out[64], in[128];
        ssize_t n = -1;

        snprintf(out, sizeof(out), "hello %d from client %d\n", i + 1, c->id);
        if (corio_stream_write(s, out, strlen(out)) == -1 ||
            corio_stream_drain(s, -1) == -1 ||
            (n = corio_stream_readline(s, in, sizeof(in), -1)) <= 0) {
            int err = n == 0 ? CORIO_EEOF : errno; /* 0: the server hung up */

            corio_stream_close(s);
            return corio_task_fail(err);
        }
        in[strcspn(in, "\n")] = 0;
        snprintf(c->log[i], sizeof(c->log[i]), "client %d got: %s", c->id, in);
    }
    corio_stream_close(s);
    return NULL;
}

static void *main_task(void *arg)
{
    const char *where = arg;
    struct client clients[CLIENTS];
    corio_task *ts[CLIENTS];
    corio_server *srv;
    corio_addr a;
    char addr[128];
    int started, err = 0;

    srv = corio_server_start(where, NULL, echo_handler, NULL);
    if (srv == NULL || corio_socket_name(corio_server_fd(srv), &a) == -1 ||
        corio_addr_format(&a, addr, sizeof(addr)) == -1) {
        err = errno;
        fprintf(stderr, "echo: cannot serve on %s: %s\n", where,
                corio_strerror(err));
        if (srv != NULL)
            (void)corio_server_stop(srv, corio_now() + CORIO_SECOND);
        return corio_task_fail(err);
    }
    printf("echo server on %s\n", strncmp(where, "unix:", 5) == 0
                                      ? where : "127.0.0.1 (a free port)");
    for (started = 0; started < CLIENTS; started++) {
        clients[started].addr = strncmp(where, "unix:", 5) == 0 ? where : addr;
        clients[started].id = started + 1;
        ts[started] = corio_task_spawn(client_main, &clients[started], NULL);
        if (ts[started] == NULL) {
            err = errno;
            break;
        }
    }
    if (corio_task_join_all(ts, (size_t)started, NULL) == -1 && err == 0)
        err = errno;
    for (int i = 0; err == 0 && i < CLIENTS; i++)
        for (int j = 0; j < LINES; j++)
            printf("%s\n", clients[i].log[j]);
    if (err != 0)
        fprintf(stderr, "echo: a client failed: %s\n", corio_strerror(err));
    if (corio_server_stop(srv, corio_now() + CORIO_SECOND) == -1 && err == 0)
        err = errno;
    printf("server stopped\n");
    return err == 0 ? NULL : corio_task_fail(err);
}

int main(int argc, char **argv)
{
    void *res;

    if (corio_run(main_task, argc > 1 ? argv[1] : "127.0.0.1:0", &res) == -1)
        return 1;
    return res == NULL ? 0 : 1;
}
