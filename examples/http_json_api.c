/* examples/http_json_api.c -- a JSON API (a to-do list) with middlewares:
 * the onion of aiohttp.web's middlewares, in C.
 *
 *     GET    /api/todos            the list
 *     POST   /api/todos            {"title": "..."}  -> 201 and the new item
 *     GET    /api/todos/{id:\d+}   one item (404 if none)
 *     DELETE /api/todos/{id:\d+}   remove it (204)
 *
 * Three middlewares wrap every request, the first added outermost:
 * `logging` prints the method, path, status and time of each request;
 * `errors` turns a handler's failure into a JSON error (500) and a 404
 * or 405 of the router into JSON; `auth` refuses writes without
 * `Authorization: Bearer secret` (401). The API is a sub-app mounted at
 * /api, so its middlewares see only its requests.
 *
 * Without --serve (the tour) it starts on a free port, makes a few
 * requests with a small raw client and prints each answer, then stops;
 * `http_json_api --serve` keeps serving on 127.0.0.1:8080 until Ctrl+C
 * (try `curl -H 'Authorization: Bearer secret' -d '{"title":"x"}'
 * http://127.0.0.1:8080/api/todos`).
 *
 * Prints (the times are real):
 *     [log] POST /api/todos -> 201 (0.1 ms)
 *     POST /api/todos {"title": "write docs"} -> 201 {"id":1,"title":"write docs","done":false}
 *     ...
 */
#include "corio.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The model: an in-memory list --------------------------------------------- */

static json_t *todos;   /* array of {"id", "title", "done"} */
static int next_id = 1;

static json_t *find(int id, size_t *index)
{
    size_t i;
    json_t *t;

    json_array_foreach(todos, i, t)
        if (json_integer_value(json_object_get(t, "id")) == id) {
            if (index)
                *index = i;
            return t;
        }
    return NULL;
}

/* ---- Handlers -------------------------------------------------------------------- */

static int error_json(corio_http_response *res, int status, const char *msg)
{
    json_t *e = json_pack("{s:s}", "error", msg);
    int rc;

    if (e == NULL)
        return -1;
    rc = corio_http_response_status(res, status) == 0 ? corio_http_response_json(res, e) : -1;
    json_decref(e);
    return rc;
}

static int list(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    return corio_http_response_json(res, todos);
}

static int create(corio_http_request *req, corio_http_response *res, void *arg)
{
    json_t *in = corio_http_request_json(req, corio_now() + 5 * CORIO_SECOND), *t;
    const char *title;
    int rc;

    (void)arg;
    if (in == NULL)
        return error_json(res, 400, "the body must be JSON");
    title = json_string_value(json_object_get(in, "title"));
    if (title == NULL) {
        json_decref(in);
        return error_json(res, 422, "a title is required");
    }
    t = json_pack("{s:i,s:s,s:b}", "id", next_id, "title", title, "done", 0);
    json_decref(in);
    if (t == NULL || json_array_append(todos, t) == -1) {
        json_decref(t);
        errno = ENOMEM;
        return -1;
    }
    next_id++;
    rc = corio_http_response_status(res, 201) == 0 ? corio_http_response_json(res, t) : -1;
    json_decref(t);
    return rc;
}

static int get_one(corio_http_request *req, corio_http_response *res, void *arg)
{
    json_t *t = find(atoi(corio_http_request_param(req, "id")), NULL);

    (void)arg;
    if (t == NULL)
        return error_json(res, 404, "no such item");
    return corio_http_response_json(res, t);
}

static int delete_one(corio_http_request *req, corio_http_response *res, void *arg)
{
    size_t i;

    (void)arg;
    if (find(atoi(corio_http_request_param(req, "id")), &i) == NULL)
        return error_json(res, 404, "no such item");
    if (json_array_remove(todos, i) == -1)
        return -1;
    return corio_http_response_status(res, 204);
}

static int crash(corio_http_request *req, corio_http_response *res, void *arg)
{
    (void)req;
    (void)res;
    (void)arg;
    errno = EIO; /* a handler that fails: the errors middleware answers */
    return -1;
}

/* ---- Middlewares ---------------------------------------------------------------- */

static int logging(corio_http_request *req, corio_http_response *res,
                   corio_http_next *next, void *arg)
{
    int64_t t0 = corio_now();
    int rc = corio_http_next_call(next, req, res);

    (void)arg;
    printf("[log] %s %s -> %d (%.1f ms)\n", corio_http_request_method(req),
           corio_http_request_path(req), corio_http_response_get_status(res),
           (double)(corio_now() - t0) / CORIO_MSEC);
    return rc;
}

static int errors(corio_http_request *req, corio_http_response *res,
                  corio_http_next *next, void *arg)
{
    int status;

    (void)arg;
    if (corio_http_next_call(next, req, res) == -1)
        return error_json(res, 500, "internal error");
    status = corio_http_response_get_status(res);
    if (status == 404 && corio_http_headers_get(corio_http_response_headers(res),
                                                "Content-Type") &&
        strstr(corio_http_headers_get(corio_http_response_headers(res), "Content-Type"),
               "json"))
        return 0; /* a handler's own JSON 404 */
    if (status == 404 || status == 405) {
        corio_http_headers_remove(corio_http_response_headers(res), "Content-Type");
        return error_json(res, status, status == 404 ? "not found" : "method not allowed");
    }
    return 0;
}

static int auth(corio_http_request *req, corio_http_response *res,
                corio_http_next *next, void *arg)
{
    const char *tok = corio_http_request_header(req, "Authorization");

    (void)arg;
    if (strcmp(corio_http_request_method(req), "GET") != 0 &&
        (tok == NULL || strcmp(tok, "Bearer secret") != 0))
        return error_json(res, 401, "who are you?");
    return corio_http_next_call(next, req, res);
}

/* ---- A small raw client for the tour ------------------------------------------------ */

/* Send one request and print the answer's status and body. */
static int call(int port, const char *method, const char *path, const char *body,
                bool authorized)
{
    char addr[64], head[1024], answer[4096] = "";
    int64_t dl = corio_now() + 5 * CORIO_SECOND;
    corio_stream *s;
    ssize_t n;
    int status = -1, len;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_stream_connect(addr, dl);
    if (s == NULL)
        return -1;
    len = snprintf(head, sizeof(head),
                   "%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   method, path, authorized ? "Authorization: Bearer secret\r\n" : "",
                   body ? strlen(body) : 0, body ? body : "");
    if (corio_stream_write(s, head, (size_t)len) == -1 || corio_stream_drain(s, dl) == -1) {
        corio_stream_close(s);
        return -1;
    }
    /* the status line, the headers up to the blank line, then the body */
    n = corio_stream_readline(s, head, sizeof(head), dl);
    if (n > 0)
        sscanf(head, "HTTP/1.1 %d", &status);
    while (n > 2)
        n = corio_stream_readline(s, head, sizeof(head), dl);
    n = n >= 0 ? corio_stream_read(s, answer, sizeof(answer) - 1, dl) : -1;
    answer[n > 0 ? n : 0] = '\0';
    corio_stream_close(s);
    fflush(stdout); /* after the server's log line */
    printf("%s %s%s%s -> %d %s\n\n", method, path, body ? " " : "", body ? body : "",
           status, answer);
    return status;
}

static int tour(int port)
{
    static const struct {
        const char *method, *path, *body;
        bool auth;
        int status;
    } steps[] = {
        {"POST", "/api/todos", "{\"title\": \"write docs\"}", true, 201},
        {"POST", "/api/todos", "{\"title\": \"ship\"}", true, 201},
        {"POST", "/api/todos", "{\"title\": \"no token\"}", false, 401},
        {"POST", "/api/todos", "{oops", true, 400},
        {"GET", "/api/todos", NULL, false, 200},
        {"DELETE", "/api/todos/1", NULL, true, 204},
        {"GET", "/api/todos/1", NULL, false, 404},
        {"PUT", "/api/todos", NULL, true, 405},
        {"GET", "/api/crash", NULL, false, 500},
    };

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (call(port, steps[i].method, steps[i].path, steps[i].body, steps[i].auth) !=
            steps[i].status) {
            fprintf(stderr, "unexpected answer to %s %s\n", steps[i].method, steps[i].path);
            return -1;
        }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void *main_task(void *arg)
{
    bool serve = *(bool *)arg;
    corio_http_app *app = corio_http_app_new(), *api = corio_http_app_new();
    corio_http_server *srv = NULL;
    int rc = -1;

    todos = json_array();
    if (app == NULL || api == NULL || todos == NULL ||
        corio_http_app_route(api, "GET", "/todos", list, NULL) == -1 ||
        corio_http_app_route(api, "POST", "/todos", create, NULL) == -1 ||
        corio_http_app_route(api, "GET", "/todos/{id:[0-9]+}", get_one, NULL) == -1 ||
        corio_http_app_route(api, "DELETE", "/todos/{id:[0-9]+}", delete_one, NULL) == -1 ||
        corio_http_app_route(api, "GET", "/crash", crash, NULL) == -1 ||
        corio_http_app_use(api, logging, NULL) == -1 ||
        corio_http_app_use(api, errors, NULL) == -1 ||
        corio_http_app_use(api, auth, NULL) == -1 ||
        corio_http_app_mount(app, "/api", api) == -1) {
        perror("setting up the app");
        goto out;
    }
    srv = corio_http_server_start(serve ? "127.0.0.1:8080" : "127.0.0.1:0", app, NULL);
    if (srv == NULL) {
        perror("corio_http_server_start");
        goto out;
    }
    printf("JSON API at http://127.0.0.1:%d/api/todos\n\n", corio_http_server_port(srv));
    fflush(stdout);
    if (serve) {
        while (corio_sleep(3600 * CORIO_SECOND) == 0)
            ;
        rc = 0;
    } else {
        rc = tour(corio_http_server_port(srv));
    }
out:
    {
        CORIO_SHIELD(corio_now() + 5 * CORIO_SECOND);
        if (corio_http_server_stop(srv, corio_now() + 5 * CORIO_SECOND) == -1)
            perror("corio_http_server_stop");
    }
    if (corio_http_app_free(app) == -1 || corio_http_app_free(api) == -1)
        perror("corio_http_app_free");
    json_decref(todos);
    return rc == 0 ? NULL : corio_task_fail(EIO);
}

int main(int argc, char **argv)
{
    bool serve = argc > 1 && strcmp(argv[1], "--serve") == 0;

    if (argc > 1 && !serve) {
        fprintf(stderr, "usage: %s [--serve]\n", argv[0]);
        return 2;
    }
    if (corio_run(main_task, &serve, NULL) == -1 && !(serve && errno == ECANCELED)) {
        fprintf(stderr, "http_json_api: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
