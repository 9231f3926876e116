/* bench/http_client/corio_get.c -- the client workload of
 * scripts/bench-http-client: CONNS tasks share one corio_http_client
 * (limit_per_host CONNS, keep-alive) and GET URL in a loop, reading each
 * body whole, for SECONDS. Prints "requests <n> seconds <s> bytes <b>".
 *
 *     corio_get URL CONNS SECONDS */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char *url;
static corio_http_client *cl;
static int64_t until;
static long requests, failures;
static long long bytes;

static void *worker(void *arg)
{
    (void)arg;
    while (corio_now() < until) {
        corio_http_client_response *r = corio_http_client_get(cl, url, until + CORIO_SECOND);
        size_t len;

        if (r == NULL) {
            failures++;
            continue;
        }
        if (corio_http_client_response_body(r, &len, until + CORIO_SECOND) != NULL &&
            corio_http_client_response_status(r) == 200) {
            requests++;
            bytes += (long long)len;
        } else {
            failures++;
        }
        corio_http_client_response_close(r);
    }
    return NULL;
}

static void *amain(void *arg)
{
    char **argv = arg;
    int conns = atoi(argv[2]);
    double secs = atof(argv[3]);
    corio_http_client_opts o = {.limit_per_host = (size_t)conns};
    corio_task **t = calloc((size_t)conns, sizeof(*t));
    int64_t t0;

    url = argv[1];
    cl = corio_http_client_new(&o);
    if (cl == NULL || t == NULL || conns < 1)
        return corio_task_fail(errno ? errno : EINVAL);
    t0 = corio_now();
    until = t0 + (int64_t)(secs * CORIO_SECOND);
    for (int i = 0; i < conns; i++)
        if ((t[i] = corio_task_spawn(worker, NULL, NULL)) == NULL)
            return corio_task_fail(errno);
    if (corio_task_join_all(t, (size_t)conns, NULL) == -1)
        return corio_task_fail(errno);
    printf("requests %ld seconds %.3f bytes %lld failures %ld\n", requests,
           (double)(corio_now() - t0) / CORIO_SECOND, bytes, failures);
    free(t);
    corio_http_client_free(cl);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: corio_get URL CONNS SECONDS\n");
        return 2;
    }
    if (corio_run(amain, argv, NULL) == -1) {
        fprintf(stderr, "corio_get: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
