/* examples/dist_args.h -- the command line shared by the task-queue
 * examples (D1 d1_taskmanager, D2 d2_taskworker): where the queue lives and
 * its key.
 *
 *   --addr HOST:PORT   the manager's address (default 127.0.0.1:5000)
 *   --authkey KEY      the shared key (default abc, the seed's)
 *   --url URL          a backend URL instead: corio://HOST:PORT, or
 *                      redis://HOST:PORT/DB (the Redis backend) */
#ifndef EXAMPLES_DIST_ARGS_H
#define EXAMPLES_DIST_ARGS_H

#include <stdio.h>
#include <string.h>

struct dist_args {
    char url[300];          /* corio://127.0.0.1:5000 */
    const char *authkey;    /* "abc" */
    const char *host;       /* for the seed's message: "127.0.0.1" */
};

/* Parse argv into *a. Returns 0, or -1 after printing the usage. */
static int dist_args_parse(struct dist_args *a, int argc, char **argv)
{
    static char host[300];
    const char *addr = "127.0.0.1:5000";
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
    if (url != NULL)
        snprintf(a->url, sizeof(a->url), "%s", url);
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
