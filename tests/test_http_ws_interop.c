/* tests/test_http_ws_interop.c -- WebSockets (include/corio/ws.h) with
 * python3-websockets and aiohttp, both directions
 * (tests/helpers/ws_peer.py): text, binary, big and fragmented messages,
 * pings from the peer, close codes. Not run under valgrind (label
 * novalgrind): valgrind traces the children and would test Python for
 * minutes, not corio (test_http_ws.c does run there).
 *
 * Every test has the same .timeout (see test_thread_pool.c). */
#include <criterion/criterion.h>

#include "corio.h"
#include "corio/ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_test.h"
#include "peer_proc.h"
#include "timing.h"
#include "ws_test.h"

/* ---- Interop with python3-websockets and aiohttp ------------------------- */

static struct peer_proc peer;
static char script[600];

static void peer_server(const char *lib)
{
    char dir[512];
    char *argv[] = {"/usr/bin/python3", script, "server", (char *)lib, NULL};

    PEER_TESTS_DIR(dir, sizeof(dir));
    snprintf(script, sizeof(script), "%s/helpers/ws_peer.py", dir);
    peer_start(&peer, argv);
    snprintf(wsurl, sizeof(wsurl), "ws://127.0.0.1:%d/", peer.port);
}

static bool fragments; /* the peer server sends fragmented messages */

static void t_against_python(void)
{
    corio_ws_opts o = {.fragment_size = 3000}; /* the big one in pieces */
    corio_ws *ws = corio_ws_connect(wsurl, &o, in(5000));
    corio_ws_msg m;
    char *big = malloc(200001);

    cr_assert_not_null(ws, "%s", corio_strerror(errno));
    expect_echo(ws, CORIO_WS_TEXT, "hello", 5);
    expect_echo(ws, CORIO_WS_BINARY, "\0\1\377", 3);
    memset(big, 'q', 200000);
    expect_echo(ws, CORIO_WS_TEXT, big, 200000);
    /* the server pings us and tells when our pong came */
    cr_assert_eq(corio_ws_send(ws, CORIO_WS_TEXT, "ping-me", 7, in(5000)), 0);
    cr_assert_eq(corio_ws_recv(ws, &m, in(5000)), 0, "%s", corio_strerror(errno));
    cr_assert_str_eq(m.data, "pong ok");
    if (fragments) {
        cr_assert_eq(corio_ws_send(ws, CORIO_WS_TEXT, "fragment-me", 11, in(5000)), 0);
        cr_assert_eq(corio_ws_recv(ws, &m, in(5000)), 0);
        cr_assert_str_eq(m.data, "fragmented");
    }
    cr_assert_eq(corio_ws_send(ws, CORIO_WS_TEXT, "close-me", 8, in(5000)), 0);
    expect_fail(corio_ws_recv(ws, &m, in(5000)), CORIO_ECLOSED);
    cr_assert_eq(corio_ws_close_code(ws), 4001);
    cr_assert_eq(corio_ws_close(ws, 0, NULL, in(2000)), 0);
    free(big);
}

Test(ws, client_with_python_websockets_server, .timeout = TIMEOUT)
{
    peer_server("websockets");
    fragments = true;
    run(t_against_python);
    cr_assert_eq(peer_stop(&peer), 0);
}

Test(ws, client_with_aiohttp_server, .timeout = TIMEOUT)
{
    peer_server("aiohttp");
    fragments = false;
    run(t_against_python);
    cr_assert_eq(peer_stop(&peer), 0);
}

static const char *client_lib;

/* Run a Python client against our server; its exit status, waited for
 * without blocking the loop. */
static void t_python_client(void)
{
    char dir[512], out[256] = "";
    pid_t pid;
    int fd[2], st = -1;
    ssize_t n;

    server_up();
    PEER_TESTS_DIR(dir, sizeof(dir));
    snprintf(script, sizeof(script), "%s/helpers/ws_peer.py", dir);
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        execl("/usr/bin/python3", "python3", script, "client", client_lib,
              wsurl, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    for (int i = 0; i < 2000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        cr_assert_eq(corio_sleep(10 * MS), 0);
    }
    n = read(fd[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client: %s", out);
    cr_assert_str_eq(out, "client ok\n");
    cr_assert_eq(conf.last_err, CORIO_ECLOSED);
    cr_assert_eq(conf.last_code, 1000);
    server_down();
}

Test(ws, server_with_python_websockets_client, .timeout = TIMEOUT)
{
    client_lib = "websockets";
    run(t_python_client);
}

Test(ws, server_with_aiohttp_client, .timeout = TIMEOUT)
{
    client_lib = "aiohttp";
    run(t_python_client);
}
