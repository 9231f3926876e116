/* tests/helpers/ws_test.h -- what the WebSocket test files share
 * (test_http_ws.c, test_http_ws_interop.c): running a function in a task
 * of a fresh corio_run, a corio echo server (an HTTP route that upgrades;
 * "close-me" makes it close with 4001 "bye"), and an echo check. Include
 * criterion.h, corio.h, loop_test.h and timing.h first. */
#ifndef CORIO_TEST_WS_TEST_H
#define CORIO_TEST_WS_TEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "task_run.h"

static inline int64_t in(int64_t ms)
{
    return corio_now() + ms * MS;
}

/* ---- A corio echo server ---------------------------------------------- */

struct echo_conf {
    size_t max_message;
    int last_err;            /* how its last connection's recv ended */
    int last_code;
    int conns;
};

static inline int echo_ws(corio_http_request *req, corio_http_response *res, void *arg)
{
    struct echo_conf *conf = arg;
    corio_ws_opts o = {.max_message = conf->max_message,
                       .protocols = "superchat, chat"};
    corio_ws *ws = corio_ws_upgrade(req, res, &o, in(5000));
    corio_ws_msg m;

    if (ws == NULL)
        return errno == EPROTO ? 0 : -1;
    conf->conns++;
    while (corio_ws_recv(ws, &m, -1) == 0) {
        if (m.type == CORIO_WS_TEXT && strcmp(m.data, "close-me") == 0) {
            errno = 0;
            break;
        }
        if (corio_ws_send(ws, m.type, m.data, m.len, in(5000)) == -1)
            break;
    }
    conf->last_err = errno;
    conf->last_code = corio_ws_close_code(ws);
    corio_ws_close(ws, errno == 0 ? 4001 : 1000, errno == 0 ? "bye" : NULL,
                   in(2000));
    return 0;
}

static struct echo_conf conf;
static corio_http_app *app;
static corio_http_server *srv;
static char wsurl[96];

static inline void server_up(void)
{
    app = corio_http_app_new();
    cr_assert_not_null(app);
    cr_assert_eq(corio_http_app_route(app, "GET", "/ws", echo_ws, &conf), 0);
    srv = corio_http_server_start("127.0.0.1:0", app, NULL);
    cr_assert_not_null(srv, "%s", corio_strerror(errno));
    snprintf(wsurl, sizeof(wsurl), "ws://127.0.0.1:%d/ws",
             corio_http_server_port(srv));
}

static inline void server_down(void)
{
    cr_assert_eq(corio_http_server_stop(srv, in(2000)), 0, "%s",
                 corio_strerror(errno));
    cr_assert_eq(corio_http_app_free(app), 0);
}

static inline void expect_echo(corio_ws *ws, enum corio_ws_type t, const char *data,
                        size_t len)
{
    corio_ws_msg m;

    cr_assert_eq(corio_ws_send(ws, t, data, len, in(5000)), 0, "%s",
                 corio_strerror(errno));
    cr_assert_eq(corio_ws_recv(ws, &m, in(5000)), 0, "%s",
                 corio_strerror(errno));
    cr_assert_eq(m.type, t);
    cr_assert_eq(m.len, len);
    cr_assert(memcmp(m.data, data, len) == 0);
    cr_assert_eq(m.data[len], '\0');
}

#endif
