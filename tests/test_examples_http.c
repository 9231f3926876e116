/* tests/test_examples_http.c -- the http examples print what they should:
 * A16 (a16_web) answers / and /hello/{name} after its 0.5 s sleeps, and
 * 100 concurrent requests take about 0.5 s in all, not 50 s; with --serve
 * it serves until SIGINT. http_json_api answers each request of its tour
 * with the status and JSON it shows, its logging middleware first.
 *
 * Each example runs with its stdout read through popen; lines are checked
 * against fnmatch patterns (`*` masks ports and times). */
#include <criterion/criterion.h>

#include "corio.h"
#include "timing.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define TIMEOUT 120

struct out {
    char text[16384];
    char *lines[128];
    int n;
    int status;
    double secs;
};

/* Run the example with args; collect its output and status. */
static void run(struct out *o, const char *args)
{
    char cmd[512];
    FILE *p;
    size_t len = 0, k;
    int64_t t0 = corio_now();
    char *s;

    memset(o, 0, sizeof(*o));
    snprintf(cmd, sizeof(cmd), "%s/%s", CORIO_EXAMPLES_DIR, args);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    while ((k = fread(o->text + len, 1, sizeof(o->text) - 1 - len, p)) > 0)
        len += k;
    o->status = pclose(p);
    o->secs = (double)(corio_now() - t0) / CORIO_SECOND;
    o->text[len] = '\0';
    for (s = o->text; *s && o->n < 128;) {
        char *nl = strchr(s, '\n');

        o->lines[o->n++] = s;
        if (nl == NULL)
            break;
        *nl = '\0';
        s = nl + 1;
    }
}

static void expect(const struct out *o, const char *const *pat, int n)
{
    cr_assert(WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0, "status %d", o->status);
    for (int i = 0; i < n && i < o->n; i++)
        cr_expect_eq(fnmatch(pat[i], o->lines[i], 0), 0, "line %d: \"%s\" is not \"%s\"",
                     i + 1, o->lines[i], pat[i]);
    cr_assert_eq(o->n, n, "%d lines, not %d", o->n, n);
}

Test(examples_http, a16_web_serves_100_at_once, .timeout = TIMEOUT)
{
    static const char *const pat[] = {
        "Server started at http://127.0.0.1:*...",
        "GET / -> 200 <h1>Index</h1>",
        "GET /hello/corio -> 200 <h1>hello, corio!</h1>",
        "100 concurrent requests: 100 answered in * s (one at a time: 50 s)",
    };
    static struct out o;
    double t;

    run(&o, "a16_web --port 0");
    expect(&o, pat, 4);
    cr_assert_eq(sscanf(o.lines[3], "100 concurrent requests: 100 answered in %lf", &t), 1);
    cr_assert_geq(t, 0.49);
    if (!RUNNING_ON_VALGRIND)
        cr_assert_lt(t, 0.5 + 1.0 + (double)test_extra_ms() / 1000, "%.2f s: not concurrent", t);
}

Test(examples_http, a16_web_serve_until_sigint, .timeout = TIMEOUT)
{
    int port = 20000 + (int)(getpid() % 20000), status;
    char portarg[16], cmd[256], path[512];
    pid_t pid;
    FILE *p;
    char body[256] = "";

    snprintf(portarg, sizeof(portarg), "%d", port);
    snprintf(path, sizeof(path), "%s/a16_web", CORIO_EXAMPLES_DIR);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        signal(SIGINT, SIG_DFL);
        execl(path, path, "--serve", "--port", portarg, (char *)NULL);
        _exit(127);
    }
    snprintf(cmd, sizeof(cmd),
             "for i in $(seq 300); do curl -s http://127.0.0.1:%d/hello/serve && break;"
             " sleep 0.05; done", port);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    if (fgets(body, sizeof(body), p) == NULL)
        body[0] = '\0';
    pclose(p);
    cr_assert_str_eq(body, "<h1>hello, serve!</h1>");
    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

Test(examples_http, json_api_with_middlewares, .timeout = TIMEOUT)
{
    static const char *const pat[] = {
        "JSON API at http://127.0.0.1:*/api/todos",
        "",
        "[[]log] POST /api/todos -> 201 (* ms)",
        "POST /api/todos {\"title\": \"write docs\"} -> 201 "
        "{\"id\":1,\"title\":\"write docs\",\"done\":false}",
        "",
        "[[]log] POST /api/todos -> 201 (* ms)",
        "POST /api/todos {\"title\": \"ship\"} -> 201 {\"id\":2,\"title\":\"ship\",\"done\":false}",
        "",
        "[[]log] POST /api/todos -> 401 (* ms)",
        "POST /api/todos {\"title\": \"no token\"} -> 401 {\"error\":\"who are you?\"}",
        "",
        "[[]log] POST /api/todos -> 400 (* ms)",
        "POST /api/todos {oops -> 400 {\"error\":\"the body must be JSON\"}",
        "",
        "[[]log] GET /api/todos -> 200 (* ms)",
        "GET /api/todos -> 200 [[]{\"id\":1,\"title\":\"write docs\",\"done\":false},"
        "{\"id\":2,\"title\":\"ship\",\"done\":false}]",
        "",
        "[[]log] DELETE /api/todos/1 -> 204 (* ms)",
        "DELETE /api/todos/1 -> 204 ",
        "",
        "[[]log] GET /api/todos/1 -> 404 (* ms)",
        "GET /api/todos/1 -> 404 {\"error\":\"no such item\"}",
        "",
        "[[]log] PUT /api/todos -> 405 (* ms)",
        "PUT /api/todos -> 405 {\"error\":\"method not allowed\"}",
        "",
        "[[]log] GET /api/crash -> 500 (* ms)",
        "GET /api/crash -> 500 {\"error\":\"internal error\"}",
        "",
    };
    static struct out o;

    run(&o, "http_json_api");
    expect(&o, pat, (int)(sizeof(pat) / sizeof(pat[0])));
}
