/* examples/dist_args.h -- the command line shared by the task-queue
 * examples (D1 d1_taskmanager, D2 d2_taskworker): where the queue lives and
 * its key.
 *
 *   --addr HOST:PORT   the manager's address (the worker's default is
 *                      127.0.0.1:5000; the master's :5000, every IPv4
 *                      address, as the seed's '', and it connects to
 *                      itself through 127.0.0.1)
 *   --authkey KEY      the shared key (default abc, the seed's)
 *   --url URL          a backend URL instead: corio://HOST:PORT, or
 *                      redis://HOST:PORT/DB (the Redis backend) */
#ifndef EXAMPLES_DIST_ARGS_H
#define EXAMPLES_DIST_ARGS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct dist_args {
    const char *addr;       /* --addr as given, or the default */
    bool from_url;          /* --url was given (addr is unused) */
    char url[300];          /* corio://127.0.0.1:5000 */
    const char *authkey;    /* "abc" */
    const char *host;       /* for the seed's message: "127.0.0.1" */
};

/* Parse argv into *a (addr: the default --addr). Returns 0, or -1 after
 * printing the usage. */
static int dist_args_parse(struct dist_args *a, const char *addr, int argc,
                           char **argv)
{
    static char host[300];
    const char *url = NULL;

    a->authkey = "abc";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--addr") == 0)
            addr = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--authkey") == 0)
            a->authkey = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--url") == 0)
            url = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--addr HOST:PORT] [--authkey KEY] [--url URL]\n",
                    argv[0]);
            return -1;
        }
    }
    a->addr = addr;
    a->from_url = url != NULL;
    if (url != NULL)
        snprintf(a->url, sizeof(a->url), "%s", url);
    else if (addr[0] == ':' || strncmp(addr, "0.0.0.0:", 8) == 0)
        /* Listening everywhere: reach it through loopback. */
        snprintf(a->url, sizeof(a->url), "corio://127.0.0.1%s",
                 strchr(addr, ':'));
    else
        snprintf(a->url, sizeof(a->url), "corio://%s", addr);
    /* The host, for "Connect to server HOST...": after "://", up to the
     * port's colon. */
    snprintf(host, sizeof(host), "%s", strstr(a->url, "://") != NULL
                                           ? strstr(a->url, "://") + 3
                                           : a->url);
    host[strcspn(host, host[0] == '[' ? "]" : ":/")] = '\0';
    a->host = host[0] == '[' ? host + 1 : host;
    return 0;
}

#endif
