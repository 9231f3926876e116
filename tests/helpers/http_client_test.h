/* tests/helpers/http_client_test.h -- what the HTTP client's test files
 * share (test_http_client.c, test_http_client_interop.c): running a
 * function in a task of a fresh corio_run, making a client, and a request
 * whose status and body are checked. Include criterion.h, corio.h and
 * timing.h first. */
#ifndef CORIO_TEST_HTTP_CLIENT_TEST_H
#define CORIO_TEST_HTTP_CLIENT_TEST_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "task_run.h"

static inline corio_http_client *client(const corio_http_client_opts *o)
{
    corio_http_client *cl = corio_http_client_new(o);

    cr_assert_not_null(cl, "corio_http_client_new: %s", corio_strerror(errno));
    return cl;
}

/* GET u, expect status, return the body (a copy, freed by the caller). */
static inline char *fetch(corio_http_client *cl, const char *method, const char *u,
                   const corio_http_client_req_opts *o, int status)
{
    corio_http_client_response *r =
        corio_http_client_request(cl, method, u, o, corio_now() + 10 * SEC);
    const char *body;
    size_t len;
    char *copy;

    cr_assert_not_null(r, "%s %s: %s", method, u, corio_strerror(errno));
    cr_assert_eq(corio_http_client_response_status(r), status, "%s: %d", u,
                 corio_http_client_response_status(r));
    body = corio_http_client_response_body(r, &len, corio_now() + 10 * SEC);
    cr_assert_not_null(body, "body of %s: %s", u, corio_strerror(errno));
    cr_assert_eq(strlen(body), len);
    copy = strdup(body);
    cr_assert_eq(corio_http_client_response_close(r), 0);
    return copy;
}

static inline void expect_body(corio_http_client *cl, const char *method,
                        const char *u, const corio_http_client_req_opts *o,
                        int status, const char *want)
{
    char *b = fetch(cl, method, u, o, status);

    cr_assert(strcmp(b, want) == 0, "%s %s: got %.200s", method, u, b);
    free(b);
}

#endif
