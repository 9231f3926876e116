/* A16: examples/a16_web.c -- an aiohttp-style web server: two routes whose
 * handlers sleep without blocking the loop, so many clients are served at
 * once.
 *
 * The seeds (003, 004):
 *
 *     async def index(request):
 *         await asyncio.sleep(0.5)
 *         return web.Response(body=b'<h1>Index</h1>')
 *
 *     async def hello(request):
 *         await asyncio.sleep(0.5)
 *         text = '<h1>hello, %s!</h1>' % request.match_info['name']
 *         return web.Response(body=text.encode('utf-8'))
 *
 *     async def init(loop):
 *         app = web.Application(loop=loop)
 *         app.router.add_route('GET', '/', index)
 *         app.router.add_route('GET', '/hello/{name}', hello)
 *         srv = await loop.create_server(app.make_handler(), '127.0.0.1', 8000)
 *         print('Server started at http://127.0.0.1:8000...')
 *         return srv
 *
 * `a16_web --serve` does that: it serves on 127.0.0.1:8000 until Ctrl+C
 * (try `curl http://127.0.0.1:8000/hello/you`). Without --serve (the
 * tour) it checks itself and stops: it asks for / and /hello/corio, then
 * sends 100 requests at once and shows that they take about 0.5 s in all,
 * not 100 x 0.5 s, because each handler's sleep lets the loop serve the
 * others. --port N serves on another port (0: any free one); when 8000 is
 * taken the self-check uses a free port.
 *
 * Prints (the port and the time are real):
 *     Server started at http://127.0.0.1:8000...
 *     GET / -> 200 <h1>Index</h1>
 *     GET /hello/corio -> 200 <h1>hello, corio!</h1>
 *     100 concurrent requests: 100 answered in 0.51 s (one at a time: 50 s)
 */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int index_handler(corio_http_request *req, corio_http_response *res,
                         void *arg)
{
    (void)req;
    (void)arg;
    if (corio_sleep(500 * CORIO_MSEC) == -1)
        return -1;
    return corio_http_response_printf(res, "<h1>Index</h1>");
}

static int hello_handler(corio_http_request *req, corio_http_response *res,
                         void *arg)
{
    (void)arg;
    if (corio_sleep(500 * CORIO_MSEC) == -1)
        return -1;
    return corio_http_response_printf(res, "<h1>hello, %s!</h1>",
                                      corio_http_request_param(req, "name"));
}

/* ---- The self-check's client ---------------------------------------------- */

struct get {
    int port;
    const char *path;
    int status;
    char body[256];
};

/* GET path over a new connection; fills status and body. */
static void *get(void *arg)
{
    struct get *g = arg;
    char addr[64], req[256], resp[1024];
    const char *body;
    size_t len = 0;
    ssize_t n;
    corio_stream *s;
    int64_t dl = corio_now() + 10 * CORIO_SECOND;

    g->status = -1;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g->port);
    s = corio_stream_connect(addr, dl);
    if (s == NULL)
        return NULL;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 g->path);
    if (corio_stream_write(s, req, (size_t)n) == 0 && corio_stream_drain(s, dl) == 0)
        while (len < sizeof(resp) - 1 &&
               (n = corio_stream_read(s, resp + len, sizeof(resp) - 1 - len, dl)) > 0)
            len += (size_t)n;
    resp[len] = '\0';
    corio_stream_close(s);
    body = strstr(resp, "\r\n\r\n");
    if (body != NULL && sscanf(resp, "HTTP/1.1 %d", &g->status) == 1)
        snprintf(g->body, sizeof(g->body), "%s", body + 4);
    return NULL;
}

static int check(int port)
{
    static const char *paths[] = {"/", "/hello/corio"};
    struct get gs[100];
    corio_task *ts[100];
    int64_t t0;
    int ok = 0;

    for (int i = 0; i < 2; i++) {
        struct get g = {.port = port, .path = paths[i]};

        get(&g);
        printf("GET %s -> %d %s\n", g.path, g.status, g.body);
        if (g.status != 200)
            return -1;
    }
    t0 = corio_now();
    for (int i = 0; i < 100; i++) {
        gs[i] = (struct get){.port = port, .path = i % 2 ? "/" : "/hello/client"};
        ts[i] = corio_task_spawn(get, &gs[i], NULL);
        if (ts[i] == NULL) {
            perror("corio_task_spawn");
            return -1;
        }
    }
    if (corio_task_join_all(ts, 100, NULL) == -1) {
        perror("corio_task_join_all");
        return -1;
    }
    for (int i = 0; i < 100; i++)
        ok += gs[i].status == 200;
    printf("100 concurrent requests: %d answered in %.2f s (one at a time: 50 s)\n",
           ok, (double)(corio_now() - t0) / CORIO_SECOND);
    return ok == 100 ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------ */

struct opts {
    int port;
    bool serve;
};

static void *main_task(void *arg)
{
    struct opts *o = arg;
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv = NULL;
    char addr[64];
    int rc = -1;

    if (app == NULL || corio_http_app_route(app, "GET", "/", index_handler, NULL) == -1 ||
        corio_http_app_route(app, "GET", "/hello/{name}", hello_handler, NULL) == -1) {
        perror("corio_http_app");
        goto out;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", o->port);
    srv = corio_http_server_start(addr, app, NULL);
    if (srv == NULL && errno == EADDRINUSE && o->port == 8000 && !o->serve)
        srv = corio_http_server_start("127.0.0.1:0", app, NULL); /* tour */
    if (srv == NULL) {
        perror("corio_http_server_start");
        goto out;
    }
    printf("Server started at http://127.0.0.1:%d...\n", corio_http_server_port(srv));
    fflush(stdout);
    if (o->serve) {
        /* until Ctrl+C: corio_run cancels this task, and the sleep says so */
        while (corio_sleep(3600 * CORIO_SECOND) == 0)
            ;
        printf("Stopping.\n");
        rc = 0;
    } else {
        rc = check(corio_http_server_port(srv));
    }
out:
    {
        CORIO_SHIELD(corio_now() + 5 * CORIO_SECOND);
        if (corio_http_server_stop(srv, corio_now() + 5 * CORIO_SECOND) == -1)
            perror("corio_http_server_stop");
    }
    if (corio_http_app_free(app) == -1)
        perror("corio_http_app_free");
    return rc == 0 ? NULL : corio_task_fail(EIO);
}

int main(int argc, char **argv)
{
    struct opts o = {.port = 8000};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0) {
            o.serve = true;
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            o.port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--serve] [--port N]\n", argv[0]);
            return 2;
        }
    }
    if (corio_run(main_task, &o, NULL) == -1 && !(o.serve && errno == ECANCELED)) {
        fprintf(stderr, "a16_web: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
