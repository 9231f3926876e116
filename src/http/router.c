/* src/http/router.c -- applications: routes (plain, parameters, regex
 * segments, a tail), HEAD from GET, 404 and 405 with Allow, sub-apps
 * mounted under a prefix, and the middlewares' onion around whatever
 * answers (a route, a sub-app, the 404). Matching walks the raw path
 * segment by segment, so an encoded slash ("%2F") stays inside its
 * segment; parameters are decoded once they match. */
#include "http_int.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

enum seg_kind { SEG_TEXT, SEG_PARAM, SEG_REGEX, SEG_TAIL };

struct seg {
    enum seg_kind kind;
    char *text;             /* SEG_TEXT: the text; else the name */
    regex_t re;             /* SEG_REGEX */
    bool nonempty;          /* SEG_TAIL: ".+" */
};

struct route {
    char *method;           /* "GET", "*" */
    char *pattern;
    struct seg *segs;
    size_t nsegs;
    bool plain;             /* no parameter: compared whole */
    corio_http_handler_fn handler;
    void *arg;
};

struct mw {
    corio_http_middleware_fn fn;
    void *arg;
};

struct mount {
    char *prefix;
    size_t len;
    corio_http_app *sub;
};

struct corio_http_app {
    struct route *routes;
    size_t nroutes;
    struct mw *mws;
    size_t nmws;
    struct mount *mounts;
    size_t nmounts;
    struct corio__http_static **statics;    /* owned by the app */
    size_t nstatics;
    int holders;                            /* servers using it */
};

struct corio_http_next {
    corio_http_app *app;
    size_t i;               /* the next middleware */
};

/* Grow an array by one element; returns the new element or NULL. */
static void *push(void *arrp, size_t *n, size_t size)
{
    void **arr = arrp;
    char *p = realloc(*arr, (*n + 1) * size);

    if (p == NULL)
        return NULL;
    *arr = p;
    memset(p + *n * size, 0, size);
    return p + (*n)++ * size;
}

corio_http_app *corio_http_app_new(void)
{
    return calloc(1, sizeof(corio_http_app));
}

static void route_clear(struct route *r)
{
    for (size_t i = 0; i < r->nsegs; i++) {
        if (r->segs[i].kind == SEG_REGEX)
            regfree(&r->segs[i].re);
        free(r->segs[i].text);
    }
    free(r->segs);
    free(r->method);
    free(r->pattern);
}

int corio_http_app_free(corio_http_app *app)
{
    if (app == NULL)
        return 0;
    if (app->holders > 0) {
        errno = EBUSY;
        return -1;
    }
    for (size_t i = 0; i < app->nroutes; i++)
        route_clear(&app->routes[i]);
    for (size_t i = 0; i < app->nmounts; i++)
        free(app->mounts[i].prefix);
    for (size_t i = 0; i < app->nstatics; i++)
        corio__http_static_free(app->statics[i]);
    free(app->routes);
    free(app->mws);
    free(app->mounts);
    free(app->statics);
    free(app);
    return 0;
}

void corio__http_app_hold(corio_http_app *app, int delta)
{
    app->holders += delta;
    for (size_t i = 0; i < app->nmounts; i++)
        corio__http_app_hold(app->mounts[i].sub, delta);
}

/* Parse one pattern segment (n bytes at s) into g. 0 or -1 (EINVAL). */
static int seg_parse(struct seg *g, const char *s, size_t n, bool last)
{
    const char *colon;
    size_t nlen;

    if (n == 0 || s[0] != '{') {
        if (memchr(s, '{', n) || memchr(s, '}', n))
            return -1; /* a parameter must be a whole segment */
        g->kind = SEG_TEXT;
        g->text = strndup(s, n);
        return g->text ? 0 : -1;
    }
    if (s[n - 1] != '}' || n < 3)
        return -1;
    colon = memchr(s, ':', n);
    nlen = (colon ? (size_t)(colon - s) : n - 1) - 1;
    if (nlen == 0 || !corio__http_is_token(s + 1, nlen))
        return -1;
    g->text = strndup(s + 1, nlen);
    if (g->text == NULL)
        return -1;
    if (colon == NULL) {
        g->kind = SEG_PARAM;
        return 0;
    }
    {
        size_t rlen = (size_t)(s + n - 1 - (colon + 1));
        char *re = malloc(rlen + 7);
        int rc;

        if (re == NULL)
            return -1;
        if (last && ((rlen == 2 && memcmp(colon + 1, ".*", 2) == 0) ||
                     (rlen == 2 && memcmp(colon + 1, ".+", 2) == 0))) {
            g->kind = SEG_TAIL;
            g->nonempty = colon[2] == '+';
            free(re);
            return 0;
        }
        snprintf(re, rlen + 7, "^(%.*s)$", (int)rlen, colon + 1);
        rc = regcomp(&g->re, re, REG_EXTENDED | REG_NOSUB);
        free(re);
        if (rc != 0)
            return -1;
        g->kind = SEG_REGEX;
        return 0;
    }
}

/* Split pattern into r's segments. 0 or -1 with errno. */
static int pattern_parse(struct route *r, const char *pattern)
{
    const char *s = pattern + 1;

    r->plain = true;
    for (;;) {
        size_t n = strcspn(s, "/");
        bool last = s[n] == '\0';
        struct seg *g = push(&r->segs, &r->nsegs, sizeof(*g));

        if (g == NULL)
            return -1;
        if (seg_parse(g, s, n, last) == -1) {
            if (errno != ENOMEM)
                errno = EINVAL;
            r->nsegs--; /* its text, if any, is freed here */
            free(g->text);
            return -1;
        }
        if (g->kind != SEG_TEXT)
            r->plain = false;
        if (last)
            return 0;
        s += n + 1;
    }
}

static bool method_ok(const char *m)
{
    return strcmp(m, "*") == 0 || corio__http_is_token(m, strlen(m));
}

int corio_http_app_route(corio_http_app *app, const char *method,
                         const char *pattern, corio_http_handler_fn handler,
                         void *arg)
{
    struct route *r;

    if (app == NULL || method == NULL || pattern == NULL || handler == NULL ||
        pattern[0] != '/' || !method_ok(method)) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < app->nroutes; i++)
        if (strcmp(app->routes[i].method, method) == 0 &&
            strcmp(app->routes[i].pattern, pattern) == 0) {
            errno = EEXIST;
            return -1;
        }
    r = push(&app->routes, &app->nroutes, sizeof(*r));
    if (r == NULL)
        return -1;
    r->handler = handler;
    r->arg = arg;
    r->method = strdup(method);
    r->pattern = strdup(pattern);
    if (r->method == NULL || r->pattern == NULL ||
        pattern_parse(r, pattern) == -1) {
        int err = errno;

        route_clear(r);
        app->nroutes--;
        errno = err;
        return -1;
    }
    return 0;
}

int corio_http_app_use(corio_http_app *app, corio_http_middleware_fn fn,
                       void *arg)
{
    struct mw *m;

    if (app == NULL || fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    m = push(&app->mws, &app->nmws, sizeof(*m));
    if (m == NULL)
        return -1;
    m->fn = fn;
    m->arg = arg;
    return 0;
}

int corio_http_app_mount(corio_http_app *app, const char *prefix,
                         corio_http_app *sub)
{
    struct mount *m;
    size_t len;

    if (app == NULL || sub == NULL || prefix == NULL || sub == app ||
        prefix[0] != '/' || (len = strlen(prefix)) < 2 ||
        prefix[len - 1] == '/') {
        errno = EINVAL;
        return -1;
    }
    m = push(&app->mounts, &app->nmounts, sizeof(*m));
    if (m == NULL)
        return -1;
    m->prefix = strdup(prefix);
    if (m->prefix == NULL) {
        app->nmounts--;
        return -1;
    }
    m->len = len;
    m->sub = sub;
    return 0;
}

int corio_http_app_static(corio_http_app *app, const char *prefix,
                          const char *root, const corio_http_static_opts *opts)
{
    struct corio__http_static *st, **slot;
    char pattern[1024];
    size_t len;

    if (app == NULL || prefix == NULL || root == NULL || prefix[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    len = strlen(prefix);
    while (len > 0 && prefix[len - 1] == '/')
        len--;
    if ((size_t)snprintf(pattern, sizeof(pattern), "%.*s/{path:.*}", (int)len,
                         prefix) >= sizeof(pattern)) {
        errno = EINVAL;
        return -1;
    }
    st = corio__http_static_new(root, opts);
    if (st == NULL)
        return -1;
    slot = push(&app->statics, &app->nstatics, sizeof(*slot));
    if (slot == NULL) {
        corio__http_static_free(st);
        return -1;
    }
    *slot = st;
    if (corio_http_app_route(app, "GET", pattern, corio__http_static_handler,
                             st) == -1) {
        int err = errno;

        corio__http_static_free(st);
        app->nstatics--;
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- Matching ------------------------------------------------------------ */

/* Match path (raw, starting with '/') against r; fills req's parameters.
 * Returns true on a match. */
static bool route_match(const struct route *r, const char *path,
                        corio_http_request *req)
{
    struct corio__http_arena *a = &req->c->arena;
    const char *s = path + 1;
    size_t np = req->nparams;

    if (r->plain)
        return strcmp(r->pattern, path) == 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        const struct seg *g = &r->segs[i];
        size_t n = g->kind == SEG_TAIL ? strlen(s) : strcspn(s, "/");
        bool last = s[n] == '\0';
        char *v;

        if (g->kind == SEG_TEXT) {
            if (strlen(g->text) != n || memcmp(g->text, s, n) != 0)
                goto no;
        } else {
            if (np == CORIO__HTTP_MAX_PARAMS ||
                (v = corio__http_arena_alloc(a, n + 1)) == NULL ||
                corio__http_unescape(s, n, v, false) == -1)
                goto no;
            if (n == 0 && (g->kind == SEG_PARAM || g->nonempty))
                goto no;
            if (g->kind == SEG_REGEX && regexec(&g->re, v, 0, NULL, 0) != 0)
                goto no;
            req->params[np].name = g->text;
            req->params[np].value = v;
            np++;
        }
        if (i + 1 == r->nsegs) {
            if (!last)
                goto no;
            req->nparams = np;
            return true;
        }
        if (last)
            goto no;
        s += n + 1;
    }
no:
    return false;
}

static bool method_is(const struct route *r, const char *m)
{
    return strcmp(r->method, m) == 0 || strcmp(r->method, "*") == 0;
}

/* The route for req in app, trying plain routes first. *any: some route
 * matched the path for another method. */
static const struct route *find(corio_http_app *app, corio_http_request *req,
                                const char *method, bool *any)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < app->nroutes; i++) {
            const struct route *r = &app->routes[i];

            if (r->plain != (pass == 0))
                continue;
            req->nparams = 0;
            if (!route_match(r, req->rel, req))
                continue;
            if (method_is(r, method))
                return r;
            *any = true;
        }
    req->nparams = 0;
    return NULL;
}

/* 405's Allow: every method routed for the path. */
static int answer_405(corio_http_app *app, corio_http_request *req,
                      corio_http_response *res)
{
    char allow[256] = "";
    size_t len = 0;
    bool get = false, head = false;

    for (size_t i = 0; i < app->nroutes; i++) {
        const struct route *r = &app->routes[i];

        if (!route_match(r, req->rel, req) || strstr(allow, r->method))
            continue;
        get |= strcmp(r->method, "GET") == 0;
        head |= strcmp(r->method, "HEAD") == 0;
        len += (size_t)snprintf(allow + len, sizeof(allow) - len, "%s%s",
                                len ? ", " : "", r->method);
        if (len >= sizeof(allow))
            break;
    }
    if (get && !head && len + 6 < sizeof(allow))
        strcat(allow, ", HEAD");
    req->nparams = 0;
    corio_http_response_status(res, 405);
    corio_http_response_header(res, "Allow", allow);
    return corio_http_response_printf(res, "405: Method Not Allowed\n");
}

/* The innermost layer of an app's onion: a mount, a route, or 404/405. */
static int app_answer(corio_http_app *app, corio_http_request *req,
                      corio_http_response *res)
{
    const struct route *r;
    bool any = false;

    for (size_t i = 0; i < app->nmounts; i++) {
        const struct mount *m = &app->mounts[i];

        if (strncmp(req->rel, m->prefix, m->len) == 0 &&
            (req->rel[m->len] == '/' || req->rel[m->len] == '\0')) {
            const char *saved = req->rel;
            int rc;

            req->rel = req->rel[m->len] ? req->rel + m->len : "/";
            rc = corio__http_app_dispatch(m->sub, req, res);
            req->rel = saved;
            return rc;
        }
    }
    r = find(app, req, req->method, &any);
    if (r == NULL && strcmp(req->method, "HEAD") == 0) {
        r = find(app, req, "GET", &any);
        req->head = r != NULL;
    }
    if (r != NULL)
        return r->handler(req, res, r->arg);
    if (any)
        return answer_405(app, req, res);
    corio_http_response_status(res, 404);
    return corio_http_response_printf(res, "404: Not Found\n");
}

int corio_http_next_call(corio_http_next *next, corio_http_request *req,
                         corio_http_response *res)
{
    if (next == NULL || req == NULL || res == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (next->i < next->app->nmws) {
        const struct mw *m = &next->app->mws[next->i++];

        return m->fn(req, res, next, m->arg);
    }
    return app_answer(next->app, req, res);
}

int corio__http_app_dispatch(corio_http_app *app, corio_http_request *req,
                             corio_http_response *res)
{
    corio_http_next next = {.app = app, .i = 0};

    return corio_http_next_call(&next, req, res);
}
