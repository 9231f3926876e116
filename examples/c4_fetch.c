/* C4: three URL fetches run concurrently in one thread and finish in a
 * different order than they started (gevent's monkey-patched urllib; here
 * corio's HTTP client, whose I/O switches tasks by itself).
 *
 * The seed's Python:
 *
 *     from gevent import monkey; monkey.patch_all()
 *     import gevent, urllib.request
 *
 *     def f(url):
 *         print('GET: %s' % url)
 *         resp = urllib.request.urlopen(url)
 *         data = resp.read()
 *         print('%d bytes received from %s.' % (len(data), url))
 *
 *     gevent.joinall([gevent.spawn(f, 'https://www.python.org/'),
 *                     gevent.spawn(f, 'https://www.yahoo.com/'),
 *                     gevent.spawn(f, 'https://github.com/')])
 *
 * Offline by default: it first starts a small HTTP server on 127.0.0.1
 * whose three pages answer after 300, 100 and 200 ms, so the second URL
 * arrives first, then the third, then the first. URLs on the command line
 * are fetched instead (https verified against the system's store):
 *
 *     build/examples/c4_fetch https://www.python.org/ https://github.com/ */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URLS 16

static corio_http_client *client;

static void *f(void *arg)
{
    const char *url = arg;
    corio_http_client_response *resp;
    const char *data;
    size_t len;

    printf("GET: %s\n", url);
    resp = corio_http_client_get(client, url, corio_now() + 30 * CORIO_SECOND);
    if (resp == NULL) {
        printf("%s: %s\n", url, corio_strerror(errno));
        return corio_task_fail(errno);
    }
    data = corio_http_client_response_body(resp, &len,
                                           corio_now() + 30 * CORIO_SECOND);
    if (data == NULL) {
        printf("%s: %s\n", url, corio_strerror(errno));
        corio_http_client_response_close(resp);
        return corio_task_fail(errno);
    }
    printf("%zu bytes received from %s.\n", len, url);
    if (corio_http_client_response_close(resp) == -1)
        return corio_task_fail(errno);
    return NULL;
}

/* The local server: /page/<n> answers after (n * 100) ms with n KiB. */
static void page(corio_stream *s, void *arg)
{
    char line[1024], head[128];
    int n = 0;
    ssize_t k;
    static char body[4096];

    (void)arg;
    while ((k = corio_stream_readline(s, line, sizeof(line),
                                      corio_now() + 10 * CORIO_SECOND)) > 0) {
        if (n == 0 && sscanf(line, "GET /page/%d", &n) != 1)
            n = -1;
        if (strcmp(line, "\r\n") != 0)
            continue;
        if (n < 1 || n > 4) {
            static const char nf[] =
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

            if (corio_stream_write(s, nf, sizeof(nf) - 1) == -1)
                return;
        } else {
            if (corio_sleep(n * 100 * CORIO_MSEC) == -1)
                return;
            memset(body, 'a' + n, sizeof(body));
            snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n * 1024);
            if (corio_stream_write(s, head, strlen(head)) == -1 ||
                corio_stream_write(s, body, (size_t)n * 1024) == -1)
                return;
        }
        if (corio_stream_drain(s, corio_now() + 10 * CORIO_SECOND) == -1)
            return;
        n = 0;
    }
}

static void *amain(void *arg)
{
    char **argv = arg, urls[3][128], addr[64];
    const char *list[MAX_URLS];
    corio_task *tasks[MAX_URLS];
    corio_server *srv = NULL;
    corio_addr a;
    size_t n = 0;
    int rc;

    client = corio_http_client_new(NULL);
    if (client == NULL)
        return corio_task_fail(errno);
    for (; argv[n] != NULL && n < MAX_URLS; n++)
        list[n] = argv[n];
    if (n == 0) {
        static const int pages[3] = {3, 1, 2}; /* 300, 100, 200 ms */

        srv = corio_server_start("127.0.0.1:0", NULL, page, NULL);
        if (srv == NULL || corio_socket_name(corio_server_fd(srv), &a) == -1 ||
            corio_addr_format(&a, addr, sizeof(addr)) == -1) {
            fprintf(stderr, "server: %s\n", corio_strerror(errno));
            corio_server_stop(srv, -1);
            corio_http_client_free(client);
            return corio_task_fail(errno);
        }
        for (; n < 3; n++) {
            snprintf(urls[n], sizeof(urls[n]), "http://%s/page/%d", addr,
                     pages[n]);
            list[n] = urls[n];
        }
    }
    for (size_t i = 0; i < n; i++) {
        tasks[i] = corio_task_spawn(f, (void *)list[i], NULL);
        if (tasks[i] == NULL) {
            fprintf(stderr, "spawn: %s\n", corio_strerror(errno));
            exit(1);
        }
    }
    rc = corio_task_join_all(tasks, n, NULL); /* gevent.joinall */
    /* the client first: its idle connections close, so the server's
     * handlers see their end and the server stops at once */
    if (corio_http_client_free(client) == -1 ||
        corio_server_stop(srv, corio_now() + CORIO_SECOND) == -1)
        rc = -1;
    return rc == 0 ? NULL : corio_task_fail(errno);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (corio_run(amain, argv + 1, NULL) == -1) {
        fprintf(stderr, "c4_fetch: %s\n", corio_strerror(errno));
        return 1;
    }
    return 0;
}
