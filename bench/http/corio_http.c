/* bench/http/corio_http.c -- the corio server of scripts/bench-http: one
 * loop, GET / answers the 13 bytes "Hello, World!" with keep-alive.
 * Prints READY once it listens on 127.0.0.1:PORT; runs until SIGTERM or
 * SIGINT (corio_run cancels the main task, whose sleep then fails). */
#include "corio.h"

#include <stdio.h>
#include <stdlib.h>

static int hello(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (corio_http_response_header(res, "Content-Type", "text/plain") == -1)
        return -1;
    return corio_http_response_body(res, "Hello, World!", 13);
}

static void *main_task(void *arg)
{
    const char *addr = arg;
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv;

    if (app == NULL || corio_http_app_route(app, "GET", "/", hello, NULL) == -1) {
        perror("app");
        return corio_task_fail(1);
    }
    srv = corio_http_server_start(addr, app, NULL);
    if (srv == NULL) {
        perror("corio_http_server_start");
        return corio_task_fail(1);
    }
    printf("READY\n");
    fflush(stdout);
    while (corio_sleep(3600 * CORIO_SECOND) == 0)
        ;
    {
        CORIO_SHIELD(corio_now() + 2 * CORIO_SECOND);
        corio_http_server_stop(srv, corio_now() + CORIO_SECOND);
    }
    corio_http_app_free(app);
    return NULL;
}

int main(int argc, char **argv)
{
    char addr[64];

    if (argc != 2) {
        fprintf(stderr, "usage: corio_http PORT\n");
        return 2;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
    corio_run(main_task, addr, NULL);
    return 0;
}
