/* sse_ticker: server-sent events fed by an async generator (G6 in a web
 * server; aiohttp-sse's EventSourceResponse over an `async for`).
 *
 * The server's /events route answers text/event-stream with a produced
 * body: its producer runs `async for` over a ticker (an async generator
 * that sleeps 100 ms between values) and writes each value as an event;
 * the generator's cleanup runs when the stream ends. A client (corio's
 * HTTP client) reads the stream as it comes, event by event, and prints
 * each with the time it arrived. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS 5

/* The async generator: `for i in range(n): yield i; await sleep(0.1)` */
static int ticker(corio_agen *ag, void *arg)
{
    int n = (int)CORIO_TO_INT(arg), rc = 0;

    for (int i = 1; i <= n && rc == 0; i++)
        if (corio_agen_yield(ag, CORIO_INT(i)) == -1 ||
            corio_sleep(100 * CORIO_MSEC) == -1)
            rc = -1;
    printf("server: the ticker's cleanup ran\n");
    return rc;
}

/* The producer of the response's body: one event per value. */
static int produce(corio_http_response *res, void *arg)
{
    corio_agen *ag = arg;
    char event[64];
    void *v;
    int rc;

    while ((rc = corio_agen_next(ag, &v, -1)) == 1) {
        int n = snprintf(event, sizeof(event), "id: %d\ndata: tick %d\n\n",
                         (int)CORIO_TO_INT(v), (int)CORIO_TO_INT(v));

        if (corio_http_response_write(res, event, (size_t)n,
                                      corio_now() + 5 * CORIO_SECOND) == -1)
            return -1; /* the client went away */
    }
    return rc;
}

static void produced(void *arg)
{
    /* whatever happened: the cleanup runs */
    if (corio_agen_close(arg) == -1)
        fprintf(stderr, "ticker: %s\n", corio_strerror(errno));
}

static int events(corio_http_request *req, corio_http_response *res, void *arg)
{
    corio_agen *ag = corio_agen_new(ticker, CORIO_INT(EVENTS), NULL);

    (void)req;
    (void)arg;
    if (ag == NULL)
        return -1;
    if (corio_http_response_header(res, "Content-Type", "text/event-stream") == -1 ||
        corio_http_response_header(res, "Cache-Control", "no-cache") == -1 ||
        corio_http_response_produce(res, -1, produce, produced, ag) == -1) {
        corio_agen_close(ag);
        return -1;
    }
    return 0;
}

/* The client: split the stream into events at blank lines. */
static int listen_events(const char *url)
{
    corio_http_client *cl = corio_http_client_new(NULL);
    corio_http_client_response *r;
    char buf[512], pending[1024];
    size_t have = 0;
    int64_t t0 = corio_now();
    int count = 0;
    ssize_t n;

    if (cl == NULL)
        return -1;
    r = corio_http_client_get(cl, url, corio_now() + 5 * CORIO_SECOND);
    if (r == NULL) {
        corio_http_client_free(cl);
        return -1;
    }
    printf("client: %d %s\n", corio_http_client_response_status(r),
           corio_http_headers_get(corio_http_client_response_headers(r),
                                  "Content-Type"));
    while ((n = corio_http_client_response_read(r, buf, sizeof(buf),
                                                corio_now() + 5 * CORIO_SECOND)) > 0) {
        char *end;

        if (have + (size_t)n >= sizeof(pending))
            break; /* an event longer than we take */
        memcpy(pending + have, buf, (size_t)n);
        have += (size_t)n;
        pending[have] = '\0';
        while ((end = strstr(pending, "\n\n")) != NULL) {
            char *data = strstr(pending, "data: ");

            *end = '\0';
            count++;
            /* about 100 ms apart: print it rounded to a tenth */
            printf("client: event \"%s\" at %.1f s\n",
                   data != NULL ? data + 6 : "",
                   (double)((corio_now() - t0 + 50 * CORIO_MSEC) /
                            (100 * CORIO_MSEC)) / 10);
            have -= (size_t)(end + 2 - pending);
            memmove(pending, end + 2, have + 1);
        }
    }
    if (corio_http_client_response_close(r) == -1 ||
        corio_http_client_free(cl) == -1)
        return -1;
    printf("client: the stream ended after %d events\n", count);
    return n == 0 && count == EVENTS ? 0 : -1;
}

static void *amain(void *arg)
{
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv;
    char url[64];
    int rc;

    (void)arg;
    if (app == NULL || corio_http_app_route(app, "GET", "/events", events, NULL) == -1)
        return corio_task_fail(errno);
    srv = corio_http_server_start("127.0.0.1:0", app, NULL);
    if (srv == NULL) {
        corio_http_app_free(app);
        return corio_task_fail(errno);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/events",
             corio_http_server_port(srv));
    rc = listen_events(url);
    if (corio_http_server_stop(srv, corio_now() + 2 * CORIO_SECOND) == -1 ||
        corio_http_app_free(app) == -1)
        rc = -1;
    return rc == 0 ? NULL : corio_task_fail(errno ? errno : EPROTO);
}

int main(void)
{
    if (corio_run(amain, NULL, NULL) == -1) {
        fprintf(stderr, "sse_ticker: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
