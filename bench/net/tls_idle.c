/* bench/net/tls_idle.c -- memory of an idle TLS connection: a corio TLS
 * server and N corio TLS clients in one process (TLS 1.3, P-256
 * certificates from examples/devcert.h), all connected and idle; the
 * process's VmRSS growth over N connections, halved, is what one end
 * costs. Prints "RESULT kib_per_end=K conns=N". Run by scripts/bench-net.
 *
 *   tls_idle [N]          N connections (default 1000) */
#include <corio.h>

#include "../../examples/devcert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define WARM 50 /* connections made first, so that one-time costs are out */

static int nconns = 1000;
static char dir[] = "/tmp/corio-tls-idle-XXXXXX";

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f != NULL)
        fclose(f);
    return v;
}

/* Hold the connection until the client closes it. */
static void idle_handler(corio_stream *s, void *arg)
{
    char buf[16];

    (void)arg;
    while (corio_stream_read(s, buf, sizeof(buf), -1) > 0) /* 0: closed */
        ;
}

static void *bench_main(void *arg)
{
    char cert[300], key[300], ca[300], addr[64], text[64];
    corio_tls_opts so = {.cert_file = cert, .key_file = key};
    corio_tls_opts co = {.ca_file = ca};
    corio_tls *stls, *ctls;
    corio_listen_opts lo = {.backlog = 4096};
    corio_stream **cs = calloc((size_t)nconns, sizeof(*cs));
    corio_server *srv;
    corio_addr a;
    long before;
    int rc = 0;

    (void)arg;
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    stls = corio_tls_server(&so);
    ctls = corio_tls_client(&co);
    lo.tls = stls;
    srv = stls && ctls && cs ? corio_server_start("127.0.0.1:0", &lo, idle_handler,
                                           NULL)
                             : NULL;
    if (srv == NULL) {
        fprintf(stderr, "tls_idle: %s (%s)\n", corio_strerror(errno),
                corio_tls_error());
        return corio_task_fail(errno);
    }
    corio_socket_name(corio_server_fd(srv), &a);
    corio_addr_format(&a, text, sizeof(text));
    snprintf(addr, sizeof(addr), "localhost:%s", strrchr(text, ':') + 1);
    before = 0;
    for (int i = 0; i < nconns && rc == 0; i++) {
        if (i == WARM) {
            corio_sleep(100 * CORIO_MSEC);
            before = rss_kib();
        }
        cs[i] = corio_tls_connect(ctls, addr, corio_now() + 10 * CORIO_SECOND);
        if (cs[i] == NULL) {
            fprintf(stderr, "tls_idle: connection %d: %s (%s)\n", i,
                    corio_strerror(errno), corio_tls_error());
            rc = -1;
        }
    }
    if (rc == 0) {
        corio_sleep(300 * CORIO_MSEC); /* the server's handshakes end */
        printf("RESULT kib_per_end=%.1f conns=%d\n",
               (double)(rss_kib() - before) / (nconns - WARM) / 2, nconns);
    }
    for (int i = 0; i < nconns; i++)
        corio_stream_close(cs[i]);
    corio_server_stop(srv, corio_now() + 5 * CORIO_SECOND);
    corio_tls_free(stls);
    corio_tls_free(ctls);
    free(cs);
    return rc == 0 ? NULL : corio_task_fail(EIO);
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    int rc;

    if (argc > 1)
        nconns = atoi(argv[1]);
    if (nconns <= WARM) {
        fprintf(stderr, "usage: tls_idle [N > %d]\n", WARM);
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "tls_idle: mkdtemp: %s\n", corio_strerror(errno));
        return 1;
    }
    rc = devcert_make(dir) == 0 ? corio_run(bench_main, NULL, NULL) : -1;
    devcert_remove(dir);
    return rc == 0 ? 0 : 1;
}
