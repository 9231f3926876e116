/* ws_chat: a WebSocket chat room (aiohttp's WebSocketResponse and
 * ws_connect): the server relays each client's line to every other
 * client; three clients join, take turns speaking and leave, and each
 * checks that it heard exactly what the others said, in order. Exits 1 if
 * a message went missing or astray.
 *
 * Server side, in an HTTP route: corio_ws_upgrade, then corio_ws_recv in
 * the connection's task and corio_ws_send to the others (one task may
 * receive while others send on the same connection). Client side:
 * corio_ws_connect. Everything runs in one thread, on one loop. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 8
#define DEADLINE (corio_now() + 5 * CORIO_SECOND)

/* ---- Server ---------------------------------------------------------------- */

struct member {
    corio_ws *ws;
    char name[32];
};

static struct member *room[MAX_MEMBERS];

static void broadcast(const struct member *from, const char *text)
{
    for (int i = 0; i < MAX_MEMBERS; i++)
        if (room[i] != NULL && room[i] != from &&
            corio_ws_send(room[i]->ws, CORIO_WS_TEXT, text, strlen(text),
                          DEADLINE) == -1)
            fprintf(stderr, "to %s: %s\n", room[i]->name, corio_strerror(errno));
}

static int chat(corio_http_request *req, corio_http_response *res, void *arg)
{
    struct member me = {0};
    const char *name = corio_http_request_query(req, "name");
    char line[256];
    corio_ws_msg m;
    int slot = -1;

    (void)arg;
    for (int i = 0; i < MAX_MEMBERS && slot < 0; i++)
        if (room[i] == NULL)
            slot = i;
    if (name == NULL || slot < 0)
        return corio_http_response_status(res, slot < 0 ? 503 : 400);
    me.ws = corio_ws_upgrade(req, res, NULL, DEADLINE);
    if (me.ws == NULL)
        return errno == EPROTO ? 0 : -1; /* 400/426 set by the upgrade */
    snprintf(me.name, sizeof(me.name), "%s", name);
    room[slot] = &me;
    snprintf(line, sizeof(line), "* %s joined", me.name);
    broadcast(&me, line);
    while (corio_ws_recv(me.ws, &m, -1) == 0) {
        snprintf(line, sizeof(line), "%s: %.*s", me.name, (int)m.len, m.data);
        broadcast(&me, line);
    }
    room[slot] = NULL;
    snprintf(line, sizeof(line), "* %s left", me.name);
    broadcast(&me, line);
    if (corio_ws_close(me.ws, 1000, NULL, DEADLINE) == -1)
        fprintf(stderr, "%s: close: %s\n", me.name, corio_strerror(errno));
    return 0;
}

/* ---- Clients --------------------------------------------------------------- */

static const char *names[] = {"alice", "bob", "carol"};
static corio_ws *clients[3];
static int errors;

/* Client i must hear want next. */
static void hear(int i, const char *want)
{
    corio_ws_msg m;

    if (corio_ws_recv(clients[i], &m, DEADLINE) == -1) {
        printf("  %-5s heard nothing (%s), wanted \"%s\"\n", names[i],
               corio_strerror(errno), want);
        errors++;
        return;
    }
    printf("  %-5s hears \"%s\"\n", names[i], m.data);
    if (strcmp(m.data, want) != 0)
        errors++;
}

static void *amain(void *arg)
{
    static const char *lines[] = {"hi all", "hello alice", "hey, how are you?"};
    corio_http_app *app = corio_http_app_new();
    corio_http_server *srv;
    char url[128], text[128];

    (void)arg;
    if (app == NULL || corio_http_app_route(app, "GET", "/chat", chat, NULL) == -1)
        return corio_task_fail(errno);
    srv = corio_http_server_start("127.0.0.1:0", app, NULL);
    if (srv == NULL) {
        corio_http_app_free(app);
        return corio_task_fail(errno);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof(url), "ws://127.0.0.1:%d/chat?name=%s",
                 corio_http_server_port(srv), names[i]);
        clients[i] = corio_ws_connect(url, NULL, DEADLINE);
        if (clients[i] == NULL) {
            fprintf(stderr, "%s: %s\n", url, corio_strerror(errno));
            exit(1);
        }
        printf("%s joins\n", names[i]);
        snprintf(text, sizeof(text), "* %s joined", names[i]);
        for (int k = 0; k < i; k++)
            hear(k, text);
    }
    for (int i = 0; i < 3; i++) {
        printf("%s says \"%s\"\n", names[i], lines[i]);
        if (corio_ws_send(clients[i], CORIO_WS_TEXT, lines[i],
                          strlen(lines[i]), DEADLINE) == -1) {
            fprintf(stderr, "send: %s\n", corio_strerror(errno));
            exit(1);
        }
        snprintf(text, sizeof(text), "%s: %s", names[i], lines[i]);
        for (int k = 0; k < 3; k++)
            if (k != i)
                hear(k, text);
    }
    for (int i = 0; i < 3; i++) {
        printf("%s leaves\n", names[i]);
        if (corio_ws_close(clients[i], 1000, "bye", DEADLINE) == -1) {
            fprintf(stderr, "close: %s\n", corio_strerror(errno));
            errors++;
        }
        snprintf(text, sizeof(text), "* %s left", names[i]);
        for (int k = i + 1; k < 3; k++)
            hear(k, text);
    }
    if (corio_http_server_stop(srv, DEADLINE) == -1 ||
        corio_http_app_free(app) == -1)
        errors++;
    printf(errors == 0 ? "chat ok: everyone heard everything, in order\n"
                       : "chat FAILED: %d messages missing or wrong\n", errors);
    return errors == 0 ? NULL : corio_task_fail(EPROTO);
}

int main(void)
{
    if (corio_run(amain, NULL, NULL) == -1)
        return 1;
    return 0;
}
