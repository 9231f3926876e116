/* bench/http_client/corio_ws_echo.c -- the WebSocket echo workload of
 * scripts/bench-http-client, both ends:
 *
 *     corio_ws_echo server PORT          echo server on 127.0.0.1:PORT
 *                                        (prints READY, runs until SIGTERM)
 *     corio_ws_echo client URL CONNS SECONDS SIZE
 *         CONNS connections, each sending a SIZE-byte binary message and
 *         waiting for its echo, in a loop; prints "messages <n> seconds <s>" */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int echo(corio_http_request *req, corio_http_response *res, void *arg)
{
    corio_ws *ws = corio_ws_upgrade(req, res, NULL, corio_now() + 5 * CORIO_SECOND);
    corio_ws_msg m;

    (void)arg;
    if (ws == NULL)
        return errno == EPROTO ? 0 : -1;
    while (corio_ws_recv(ws, &m, -1) == 0)
        if (corio_ws_send(ws, m.type, m.data, m.len, -1) == -1)
            break;
    corio_ws_close(ws, 1000, NULL, corio_now() + CORIO_SECOND);
    return 0;
}

static void *server(void *arg)
{
    char addr[64];
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv;

    snprintf(addr, sizeof(addr), "127.0.0.1:%s", (const char *)arg);
    if (app == NULL || corio_http_app_route(app, "GET", "/", echo, NULL) == -1)
        return corio_task_fail(errno);
    srv = corio_http_server_start(addr, app, NULL);
    if (srv == NULL)
        return corio_task_fail(errno);
    printf("READY\n");
    fflush(stdout);
    corio_sleep(INT64_MAX / 2); /* until SIGTERM cancels it */
    corio_http_server_stop(srv, corio_now() + CORIO_SECOND);
    corio_http_app_free(app);
    return NULL;
}

static const char *url;
static int64_t until;
static size_t size;
static long messages;

static void *client_conn(void *arg)
{
    corio_ws *ws = corio_ws_connect(url, NULL, corio_now() + 5 * CORIO_SECOND);
    char *buf = calloc(1, size + 1);
    corio_ws_msg m;

    (void)arg;
    if (ws == NULL || buf == NULL)
        return corio_task_fail(errno);
    while (corio_now() < until) {
        if (corio_ws_send(ws, CORIO_WS_BINARY, buf, size, -1) == -1 ||
            corio_ws_recv(ws, &m, until + CORIO_SECOND) == -1)
            break;
        messages++;
    }
    corio_ws_close(ws, 1000, NULL, corio_now() + CORIO_SECOND);
    free(buf);
    return NULL;
}

static void *client(void *arg)
{
    char **argv = arg;
    int conns = atoi(argv[3]);
    corio_task **t = calloc((size_t)conns, sizeof(*t));
    int64_t t0 = corio_now();

    url = argv[2];
    size = (size_t)atol(argv[5]);
    until = t0 + (int64_t)(atof(argv[4]) * CORIO_SECOND);
    if (t == NULL || conns < 1)
        return corio_task_fail(EINVAL);
    for (int i = 0; i < conns; i++)
        if ((t[i] = corio_task_spawn(client_conn, NULL, NULL)) == NULL)
            return corio_task_fail(errno);
    if (corio_task_join_all(t, (size_t)conns, NULL) == -1)
        return corio_task_fail(errno);
    printf("messages %ld seconds %.3f\n", messages,
           (double)(corio_now() - t0) / CORIO_SECOND);
    free(t);
    return NULL;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc == 3 && strcmp(argv[1], "server") == 0) {
        rc = corio_run(server, argv[2], NULL);
        return rc == -1 && errno != ECANCELED;
    }
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return corio_run(client, argv, NULL) == -1;
    fprintf(stderr, "usage: corio_ws_echo server PORT | client URL CONNS SECONDS SIZE\n");
    return 2;
}
