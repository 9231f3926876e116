/* examples/chat.c -- a chat server: every line a client sends goes to
 * every other connected client. Three clients join, take turns to say
 * something, and print what they heard; then the server stops.
 *
 *     build/examples/chat            (the demo, on a free port)
 *     build/examples/chat serve :7000
 *         a server for real clients: nc 127.0.0.1 7000 in a few terminals
 *         (Ctrl+C stops it) */
#include <corio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_MEMBERS 64
#define CLIENTS 3

/* ---- The server ------------------------------------------------------------ */

struct room {
    corio_stream *members[MAX_MEMBERS];
    int count;
};

static void broadcast(struct room *r, corio_stream *from, const char *text)
{
    for (int i = 0; i < MAX_MEMBERS; i++) {
        corio_stream *m = r->members[i];

        if (m == NULL || m == from)
            continue;
        /* a member that cannot keep up loses the message, not the room (its
         * own task sees the broken connection and leaves) */
        if (corio_stream_write(m, text, strlen(text)) == -1 ||
            corio_stream_drain(m, corio_now() + CORIO_SECOND) == -1)
            fprintf(stderr, "chat: a member missed a message: %s\n",
                    corio_strerror(errno));
    }
}

static void member(corio_stream *s, void *arg)
{
    struct room *r = arg;
    char line[512], msg[520];
    int slot = -1;

    for (int i = 0; i < MAX_MEMBERS && slot < 0; i++)
        if (r->members[i] == NULL)
            slot = i;
    if (slot < 0) {
        if (corio_stream_write(s, "room full\n", 10) == -1 ||
            corio_stream_drain(s, corio_now() + CORIO_SECOND) == -1)
            fprintf(stderr, "chat: a member turned away: %s\n",
                    corio_strerror(errno));
        return;
    }
    r->members[slot] = s;
    r->count++;
    /* until the member leaves (0) or its connection breaks (-1) */
    while (corio_stream_readline(s, line, sizeof(line), -1) > 0) {
        snprintf(msg, sizeof(msg), "> %s", line);
        broadcast(r, s, msg);
    }
    r->members[slot] = NULL;
    r->count--;
}

/* ---- The demo's clients ------------------------------------------------------------ */

struct client {
    const char *addr;
    int id;
    corio_stream *s;        /* the main task writes the client's turn on it */
    corio_chan *heard;      /* one item per line heard, to the main task */
    corio_event *done;      /* every turn has been taken */
    char log[CLIENTS][160];
    int nlog;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    char line[128];
    ssize_t n;

    c->s = corio_stream_connect(c->addr, corio_now() + 5 * CORIO_SECOND);
    if (c->s == NULL || corio_chan_send(c->heard, NULL, -1) == -1) /* connected */
        return corio_task_fail(errno);
    while (c->nlog < CLIENTS - 1) {
        n = corio_stream_readline(c->s, line, sizeof(line),
                                  corio_now() + 5 * CORIO_SECOND);
        if (n <= 0) /* 0: the server hung up */
            return corio_task_fail(n == 0 ? CORIO_EEOF : errno);
        line[strcspn(line, "\n")] = 0;
        snprintf(c->log[c->nlog++], sizeof(c->log[0]),
                 "client %d heard \"%s\"", c->id, line);
        if (corio_chan_send(c->heard, NULL, -1) == -1)
            return corio_task_fail(errno);
    }
    if (corio_event_wait(c->done, corio_now() + 5 * CORIO_SECOND) == -1)
        return corio_task_fail(errno);
    return NULL;
}

/* Wait until the clients are all in the room, then give each its turn: it
 * speaks, the others hear it. Returns 0, or -1 with errno. */
static int take_turns(struct client *cs, corio_chan *heard,
                      const struct room *room)
{
    int64_t deadline = corio_now() + 5 * CORIO_SECOND;
    char line[64];

    /* all connected, and all in the room (not only accepted: a member
     * that has not joined yet would miss the first message) */
    for (int i = 0; i < CLIENTS; i++)
        if (corio_chan_recv(heard, NULL, deadline) == -1)
            return -1;
    while (room->count < CLIENTS)
        if (corio_sleep(CORIO_MSEC) == -1)
            return -1;
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(line, sizeof(line), "hello from client %d\n", i + 1);
        if (corio_stream_write(cs[i].s, line, strlen(line)) == -1 ||
            corio_stream_drain(cs[i].s, -1) == -1)
            return -1;
        for (int j = 0; j < CLIENTS - 1; j++)
            if (corio_chan_recv(heard, NULL,
                                corio_now() + 5 * CORIO_SECOND) == -1)
                return -1;
    }
    return 0;
}

static void *demo(void *arg)
{
    static struct room room;
    struct client cs[CLIENTS];
    corio_task *ts[CLIENTS];
    corio_chan *heard = corio_chan_new(64);
    corio_event *done = corio_event_new();
    corio_server *srv = NULL;
    corio_addr a;
    char addr[64];
    int started = 0, err = 0;

    (void)arg;
    if (heard != NULL && done != NULL)
        srv = corio_server_start("127.0.0.1:0", NULL, member, &room);
    if (srv == NULL || corio_socket_name(corio_server_fd(srv), &a) == -1 ||
        corio_addr_format(&a, addr, sizeof(addr)) == -1) {
        err = errno;
        goto out;
    }
    printf("chat server on 127.0.0.1 (a free port)\n");
    for (started = 0; started < CLIENTS; started++) {
        cs[started] = (struct client){.addr = addr, .id = started + 1,
                                      .heard = heard, .done = done};
        ts[started] = corio_task_spawn(client_main, &cs[started], NULL);
        if (ts[started] == NULL) {
            err = errno;
            break;
        }
    }
    if (err == 0 && take_turns(cs, heard, &room) == -1)
        err = errno;
    if (corio_event_set(done) == -1 && err == 0)
        err = errno;
out:
    for (int i = 0; err != 0 && i < started; i++)
        corio_task_cancel(ts[i]); /* a failed demo: the clients stop */
    if (corio_task_join_all(ts, (size_t)started, NULL) == -1 && err == 0)
        err = errno;
    for (int i = 0; i < started; i++) {
        for (int j = 0; j < cs[i].nlog; j++)
            printf("%s\n", cs[i].log[j]);
        corio_stream_close(cs[i].s);
    }
    if (srv != NULL) {
        if (corio_server_stop(srv, corio_now() + CORIO_SECOND) == -1 &&
            err == 0)
            err = errno;
        printf("server stopped\n");
    }
    corio_chan_free(heard);
    corio_event_free(done);
    return err == 0 ? NULL : corio_task_fail(err);
}

/* ---- A server for real clients -------------------------------------------------- */

static void *serve_forever(void *arg)
{
    static struct room room;
    corio_server *srv = corio_server_start(arg, NULL, member, &room);

    if (srv == NULL) {
        fprintf(stderr, "chat: %s: %s\n", (char *)arg, corio_strerror(errno));
        return corio_task_fail(errno);
    }
    printf("chat server on %s; Ctrl+C stops it\n", (char *)arg);
    fflush(stdout);
    corio_sleep(INT64_MAX); /* until Ctrl+C cancels the main task */
    if (corio_server_stop(srv, corio_now() + CORIO_SECOND) == -1 &&
        errno != ECANCELED) /* the members were cancelled: that is the stop */
        fprintf(stderr, "chat: %s\n", corio_strerror(errno));
    printf("\nchat server stopped\n");
    return NULL;
}

int main(int argc, char **argv)
{
    void *res = NULL;

    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        if (corio_run(serve_forever, argv[2], &res) == -1)
            return 1;
        return 0;
    }
    if (corio_run(demo, NULL, &res) == -1) {
        fprintf(stderr, "chat: %s\n", corio_strerror(errno));
        return 1;
    }
    return res == NULL ? 0 : 1;
}
