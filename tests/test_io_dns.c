/* tests/test_io_dns.c -- name resolution (corio_resolve, and connecting by
 * name): /etc/hosts, a name whose server says it does not exist, a server
 * that never answers (deadline), cancellation during a lookup, bad input,
 * connect trying each address of a name, and no fd left behind.
 *
 * The DNS servers are fakes on 127.0.0.1 run by the test itself, named with
 * corio_dns_set_servers: no network is needed. Every test has the same
 * .timeout (Criterion leaks in its runner otherwise). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "timing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT 60
#define MS CORIO_MSEC

static void run_main(corio_fn fn, void *arg)
{
    run_main_no_fd_leak(fn, arg);
}

/* A fake DNS server: answers every query with NXDOMAIN, or never. */
struct fake {
    int fd;
    int answer;         /* 0: stay silent */
    int queries;
    char csv[64];
};

static void *fake_server(void *arg)
{
    struct fake *f = arg;
    unsigned char q[512];
    corio_addr from;

    for (;;) {
        ssize_t n = corio_recvfrom(f->fd, q, sizeof(q), &from, -1);

        if (n < 12)
            return n == -1 && errno == ECANCELED ? NULL : corio_task_fail(EIO);
        f->queries++;
        if (!f->answer)
            continue;
        q[2] |= 0x80;                           /* QR: a response */
        q[3] = (unsigned char)((q[3] & 0xF0) | 3); /* RCODE 3: NXDOMAIN */
        q[3] |= 0x80;                           /* RA */
        corio_sendto(f->fd, q, (size_t)n, &from, -1);
    }
}

static corio_task *fake_start(struct fake *f, int answer)
{
    corio_addr a;

    f->answer = answer;
    f->queries = 0;
    f->fd = corio_udp_open("127.0.0.1:0");
    if (f->fd == -1 || corio_sockname(f->fd, &a) == -1)
        return NULL;
    snprintf(f->csv, sizeof(f->csv), "127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&a.ss)->sin_port));
    if (corio_dns_set_servers(f->csv) == -1)
        return NULL;
    return corio_spawn(fake_server, f, NULL);
}

static char *fake_stop(struct fake *f, corio_task *t)
{
    corio_task_cancel(t);
    corio_join(t, NULL);
    corio_close(f->fd);
    CHECK(corio_dns_set_servers(NULL) == 0);
    return NULL;
}

/* ---- /etc/hosts and connecting by name ------------------------------------------- */

static void *hosts_main(void *arg)
{
    corio_addr out[8];
    char text[64], addr[64];
    corio_addr a;
    int n, lfd, fd, s;

    (void)arg;
    n = corio_resolve("localhost", "8080", AF_INET, out, 8, corio_now() + CORIO_SECOND);
    CHECK(n >= 1);
    CHECK(corio_addr_format(&out[0], text, sizeof(text)) > 0);
    CHECK(strcmp(text, "127.0.0.1:8080") == 0);
    /* a numeric host needs no lookup */
    CHECK(corio_resolve("10.1.2.3", "53", AF_UNSPEC, out, 8, -1) == 1);
    /* connect by name: every address of "localhost" is tried in turn */
    lfd = corio_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    CHECK(corio_sockname(lfd, &a) == 0);
    snprintf(addr, sizeof(addr), "localhost:%d",
             ntohs(((struct sockaddr_in *)&a.ss)->sin_port));
    fd = corio_connect(addr, 1, corio_now() + CORIO_SECOND);
    CHECK(fd >= 0);
    s = corio_accept(lfd, NULL, corio_now() + CORIO_SECOND);
    CHECK(s >= 0);
    corio_close(s);
    corio_close(fd);
    corio_close(lfd);
    return NULL;
}

Test(dns, etc_hosts_and_connect_by_name, .timeout = TIMEOUT)
{
    run_main(hosts_main, NULL);
}

/* ---- Failures ------------------------------------------------------------------------ */

static void *nxdomain_main(void *arg)
{
    static struct fake f;
    corio_task *t;
    corio_addr out[4];

    (void)arg;
    t = fake_start(&f, 1);
    CHECK(t != NULL);
    errno = 0;
    CHECK(corio_resolve("no-such-name.invalid", "80", AF_UNSPEC, out, 4,
                        corio_now() + 5 * CORIO_SECOND) == -1);
    CHECK(errno == ENOENT);
    CHECK(f.queries >= 1);
    errno = 0;
    CHECK(corio_connect("no-such-name.invalid:80", 0, corio_now() + 5 * CORIO_SECOND) == -1);
    CHECK(errno == ENOENT);
    return fake_stop(&f, t);
}

Test(dns, a_name_that_does_not_exist, .timeout = TIMEOUT)
{
    run_main(nxdomain_main, NULL);
}

static void *silent_main(void *arg)
{
    static struct fake f; /* the fake outlives a failed CHECK's return */
    corio_task *t;
    corio_addr out[4];
    /* long enough for c-ares to send its query even under valgrind, and
     * well below its own 2 s retry timeout in a plain build */
    int64_t t0, wait_ms = 150 + test_extra_ms();

    (void)arg;
    t = fake_start(&f, 0);
    CHECK(t != NULL);
    t0 = corio_now();
    errno = 0;
    CHECK(corio_resolve("example.test", "80", AF_UNSPEC, out, 4,
                        t0 + wait_ms * MS) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(corio_now() - t0 >= wait_ms * MS);
    /* Not c-ares's own timeout (2 s a try): the deadline ended the wait. */
    CHECK(corio_now() - t0 < (wait_ms + test_slack_capped_ms(1500)) * MS);
    CHECK(f.queries >= 1);
    return fake_stop(&f, t);
}

Test(dns, a_server_that_never_answers_meets_the_deadline, .timeout = TIMEOUT)
{
    run_main(silent_main, NULL);
}

struct victim {
    int err;
};

static void *lookup_task(void *arg)
{
    struct victim *v = arg;
    corio_addr out[4];

    errno = 0;
    v->err = corio_resolve("example.test", "80", AF_UNSPEC, out, 4, -1) == -1
                 ? errno : 0;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct victim v = {.err = -1};
    static struct fake f;
    corio_task *t, *l;

    (void)arg;
    t = fake_start(&f, 0);
    CHECK(t != NULL);
    l = corio_spawn(lookup_task, &v, NULL);
    CHECK(l != NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    CHECK(corio_task_cancel(l) == 1);
    CHECK(corio_join(l, NULL) == -1 && errno == ECANCELED);
    CHECK(v.err == ECANCELED);
    return fake_stop(&f, t);
}

Test(dns, cancel_a_lookup, .timeout = TIMEOUT)
{
    run_main(cancel_main, NULL);
}

static void *bad_main(void *arg)
{
    corio_addr out[2];

    (void)arg;
    CHECK(corio_resolve(NULL, "80", AF_UNSPEC, out, 2, -1) == -1 && errno == EINVAL);
    CHECK(corio_resolve("", "80", AF_UNSPEC, out, 2, -1) == -1 && errno == EINVAL);
    CHECK(corio_resolve("localhost", NULL, AF_UNSPEC, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_resolve("localhost", "80", AF_UNIX, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_resolve("localhost", "80", AF_UNSPEC, out, 0, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_set_servers("not a server list") == 0);
    CHECK(corio_resolve("localhost", "80", AF_INET, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_set_servers(NULL) == 0);
    return NULL;
}

Test(dns, bad_input, .timeout = TIMEOUT)
{
    run_main(bad_main, NULL);
}
