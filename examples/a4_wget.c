/* A4: examples/a4_wget.c -- wget: three concurrent connections, each sends
 * a GET, drains, and prints the response's header lines until the blank
 * line. The starts print in one order, the results arrive in another.
 *
 * The seed (003):
 *
 *     async def wget(host):
 *         print('wget %s ...' % host)
 *         reader, writer = await asyncio.open_connection(host, 80)
 *         writer.write(('GET / HTTP/1.0\r\nHost: %s\r\n\r\n' % host).encode())
 *         await writer.drain()
 *         while True:
 *             line = await reader.readline()
 *             if line == b'\r\n':
 *                 break
 *             print('%s header > %s' % (host, line.decode().rstrip()))
 *         writer.close()
 *
 * Offline by default: it first starts three small HTTP servers on
 * localhost, which answer after 300, 100 and 200 ms, and fetches from
 * "localhost:<port>" (a name: resolved like any other). With host names on
 * the command line it fetches port 80 of those hosts instead:
 *
 *     build/examples/a4_wget www.example.com www.debian.org */
#include <corio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_HOSTS 16

static void *wget(void *arg)
{
    const char *host = arg;
    char req[512], line[1024], name[256];
    corio_stream *s;
    ssize_t n;

    printf("wget %s ...\n", host);
    s = corio_stream_connect(host, corio_now() + 10 * CORIO_SECOND);
    if (s == NULL) {
        printf("%s: %s\n", host, corio_strerror(errno)); /* unknown host */
        return corio_task_fail(errno);
    }
    /* the Host header names the host without the port */
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(host, ":"), host);
    snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", name);
    if (corio_stream_write(s, req, strlen(req)) == -1 ||
        corio_stream_drain(s, -1) == -1) {
        corio_stream_close(s);
        return corio_task_fail(errno);
    }
    while ((n = corio_stream_readline(s, line, sizeof(line),
                                      corio_now() + 10 * CORIO_SECOND)) > 0) {
        if (strcmp(line, "\r\n") == 0)
            break;
        line[strcspn(line, "\r\n")] = 0;
        printf("%s header > %s\n", host, line);
    }
    corio_stream_close(s);
    if (n <= 0) { /* an error, or the end before the blank line */
        int err = n == 0 ? CORIO_EEOF : errno;

        printf("%s: %s\n", host, corio_strerror(err));
        return corio_task_fail(err);
    }
    return NULL;
}

/* ---- The local servers ----------------------------------------------------------- */

/* Answer one request after `delay` ms: read the request's head, wait, send a
 * small response. */
static void answer(corio_stream *s, void *arg)
{
    int delay_ms = (int)(intptr_t)arg;
    char line[1024], resp[256];
    const char *body = "hello from corio\n";
    ssize_t n;

    while ((n = corio_stream_readline(s, line, sizeof(line),
                                      corio_now() + CORIO_SECOND)) > 0)
        if (strcmp(line, "\r\n") == 0)
            break;
    if (n <= 0 || corio_sleep(delay_ms * CORIO_MSEC) == -1)
        return; /* no whole request, or cancelled */
    snprintf(resp, sizeof(resp),
             "HTTP/1.0 200 OK\r\n"
             "Server: corio-a4\r\n"
             "X-Delay: %d ms\r\n"
             "Content-Type: text/plain\r\n"
             "Content-Length: %zu\r\n"
             "\r\n%s", delay_ms, strlen(body), body);
    if (corio_stream_write(s, resp, strlen(resp)) == -1 ||
        corio_stream_drain(s, corio_now() + CORIO_SECOND) == -1)
        fprintf(stderr, "a4_wget: answer: %s\n", corio_strerror(errno));
}

/* Fetch from every host at once. Returns 0 once all succeeded, or -1 with
 * the first error (every task that started has ended by then). */
static int run_all(char **hosts, int n)
{
    corio_task *ts[MAX_HOSTS];
    int started, err = 0;

    for (started = 0; started < n; started++) {
        ts[started] = corio_task_spawn(wget, hosts[started], NULL);
        if (ts[started] == NULL) {
            err = errno;
            break;
        }
    }
    if (corio_task_join_all(ts, (size_t)started, NULL) == -1 && err == 0)
        err = errno;
    errno = err;
    return err == 0 ? 0 : -1;
}

/* "localhost:<port>" for a server listening on 127.0.0.1: a name, resolved
 * like any other. Returns 0, or -1 with errno. */
static int local_name(corio_server *srv, char *name, size_t size)
{
    corio_addr a;
    char text[64];

    if (corio_socket_name(corio_server_fd(srv), &a) == -1 ||
        corio_addr_format(&a, text, sizeof(text)) == -1)
        return -1;
    snprintf(name, size, "localhost:%s", strchr(text, ':') + 1);
    return 0;
}

static void *local(void *arg)
{
    static const int delays[3] = {300, 100, 200};
    corio_server *srv[3];
    char names[3][64], *hosts[3];
    int started, err = 0;

    (void)arg;
    for (started = 0; started < 3; started++) {
        srv[started] = corio_server_start("127.0.0.1:0", NULL, answer,
                                          (void *)(intptr_t)delays[started]);
        if (srv[started] == NULL) {
            err = errno;
            break;
        }
    }
    for (int i = 0; i < 3 && err == 0; i++) {
        hosts[i] = names[i];
        if (local_name(srv[i], names[i], sizeof(names[i])) == -1)
            err = errno;
    }
    if (err == 0 && run_all(hosts, 3) == -1)
        err = errno;
    for (int i = 0; i < started; i++)
        if (corio_server_stop(srv[i], corio_now() + CORIO_SECOND) == -1 &&
            err == 0)
            err = errno;
    return err == 0 ? NULL : corio_task_fail(err);
}

struct args {
    char **hosts;
    int n;
};

static void *remote(void *arg)
{
    struct args *a = arg;
    static char names[MAX_HOSTS][300];
    char *hosts[MAX_HOSTS];

    for (int i = 0; i < a->n; i++) {
        snprintf(names[i], sizeof(names[i]), strchr(a->hosts[i], ':') ? "%s" : "%s:80",
                 a->hosts[i]);
        hosts[i] = names[i];
    }
    return run_all(hosts, a->n) == 0 ? NULL : corio_task_fail(errno);
}

int main(int argc, char **argv)
{
    struct args a = {argv + 1, argc - 1};
    void *res = NULL;
    int rc;

    if (a.n > MAX_HOSTS) {
        fprintf(stderr, "a4_wget: at most %d hosts\n", MAX_HOSTS);
        return 2;
    }
    rc = a.n == 0 ? corio_run(local, NULL, &res) : corio_run(remote, &a, &res);
    return rc == 0 && res == NULL ? 0 : 1;
}
