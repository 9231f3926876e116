/* tests/fuzz/fuzz_http_router.c -- libFuzzer target: the router and the
 * request's decoding (src/http/router.c, request.c): an app with plain,
 * parameter, regex and tail routes, a mounted sub-app and a middleware
 * answers a request whose method, path and query come from the input;
 * parameters, query parameters, cookies and the decoded path are read
 * back. Nothing may crash, read out of bounds or leak, and a route's
 * parameters must be the decoded text of what matched. */
#include "http/http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int handler(corio_http_request *req, corio_http_response *res, void *arg)
{
    const char *name = arg;
    const char *v = corio_http_request_param(req, name);

    (void)res;
    if (strcmp(name, "-") != 0 && v == NULL)
        abort(); /* a route with a parameter matched without it */
    (void)corio_http_request_query(req, "q");
    (void)corio_http_request_cookie(req, "c");
    return 0;
}

static int mw(corio_http_request *req, corio_http_response *res,
              corio_http_next *next, void *arg)
{
    (void)arg;
    return corio_http_next_call(next, req, res);
}

static corio_http_app *app, *sub;

static void setup(void)
{
    app = corio_http_app_new();
    sub = corio_http_app_new();
    if (!app || !sub ||
        corio_http_app_route(app, "GET", "/", handler, "-") ||
        corio_http_app_route(app, "GET", "/hello/{name}", handler, "name") ||
        corio_http_app_route(app, "POST", "/users/{id:[0-9]+}/x", handler, "id") ||
        corio_http_app_route(app, "*", "/files/{tail:.*}", handler, "tail") ||
        corio_http_app_route(app, "GET", "/a/{b}/{c:[a-z]+}", handler, "c") ||
        corio_http_app_route(sub, "GET", "/{x}", handler, "x") ||
        corio_http_app_use(app, mw, NULL) ||
        corio_http_app_mount(app, "/sub", sub))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = {"GET", "POST", "HEAD", "PUT", "DELETE"};
    struct corio__http_conn c;
    char *text;
    const char *q;
    ssize_t n;

    if (app == NULL)
        setup();
    if (size == 0)
        return 0;
    memset(&c, 0, sizeof(c));
    c.hin = corio_http_headers_new();
    c.res.headers = corio_http_headers_new();
    c.res.c = &c;
    c.req.c = &c;
    if (!c.hin || !c.res.headers)
        abort();
    corio__http_response_reset(&c.res);
    text = corio__http_arena_strndup(&c.arena, (const char *)data + 1, size - 1);
    if (text == NULL)
        abort();
    (void)corio_http_headers_add(c.hin, "Cookie", text);
    q = strchr(text, '?');
    c.req.method = methods[data[0] % 5];
    c.req.target = text;
    c.req.raw_path = corio__http_arena_strndup(&c.arena, text,
                                               q ? (size_t)(q - text) : strlen(text));
    c.req.path = corio__http_arena_alloc(&c.arena, strlen(c.req.raw_path) + 1);
    c.req.query_string = q ? q + 1 : "";
    n = corio__http_unescape(c.req.raw_path, strlen(c.req.raw_path), c.req.path, false);
    if (n >= 0 && c.req.raw_path[0] == '/') {
        c.req.rel = c.req.raw_path;
        (void)corio__http_app_dispatch(app, &c.req, &c.res);
    }
    corio__http_arena_release(&c.arena);
    corio_http_headers_free(c.hin);
    corio_http_headers_free(c.res.headers);
    free(c.res.body);
    return 0;
}
