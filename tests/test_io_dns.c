/* tests/test_io_dns.c -- name resolution (corio_dns_resolve, and connecting by
 * name): /etc/hosts, a name whose server says it does not exist or has no
 * address of the family asked for (CORIO_EUNKNOWNHOST), a server
 * that never answers (deadline), cancellation during a lookup, bad input,
 * connect racing the addresses of a name (happy eyeballs: a silent first
 * address, a refusing one, all refusing, a deadline, cancellation), and no
 * fd left behind.
 *
 * The DNS servers are fakes on 127.0.0.1 run by the test itself, named with
 * corio_dns_set_servers: no network is needed. Every test has the same
 * .timeout (Criterion leaks in its runner otherwise). */
#include <criterion/criterion.h>

#include "corio.h"
#include "check.h"
#include "net_test.h"
#include "blackhole.h"
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

/* A fake DNS server: answers every query with NXDOMAIN, or never, or
 * with the A records of ips (and no AAAA). */
enum { SILENT, NXDOMAIN, ADDRESSES };

struct fake {
    int fd;
    int answer;         /* SILENT, NXDOMAIN or ADDRESSES */
    int queries;
    char csv[64];
    const char *ips[4]; /* ADDRESSES: the A records, NULL-ended */
};

/* Turn query q (n bytes) into an answer with f's A records (for an A
 * query) or none. Returns the answer's length, or 0 if q is malformed. */
static size_t fake_addresses(struct fake *f, unsigned char *q, size_t n,
                             size_t size)
{
    size_t p = 12, k = 0;
    int qtype;

    while (p < n && q[p] != 0)
        p += (size_t)q[p] + 1;
    if (p + 5 > n)
        return 0;
    qtype = q[p + 1] << 8 | q[p + 2];
    p += 5; /* the root label, QTYPE, QCLASS */
    q[2] |= 0x80;           /* QR: a response */
    q[3] = 0x80;            /* RA, RCODE 0 */
    for (; qtype == 1 && f->ips[k] != NULL && p + 16 <= size; k++) {
        static const unsigned char rr[] = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60,
                                           0, 4};

        memcpy(q + p, rr, sizeof(rr));
        inet_pton(AF_INET, f->ips[k], q + p + sizeof(rr));
        p += sizeof(rr) + 4;
    }
    q[6] = 0, q[7] = (unsigned char)k;      /* ANCOUNT */
    q[8] = q[9] = q[10] = q[11] = 0;        /* NSCOUNT, ARCOUNT */
    return p;
}

static void *fake_server(void *arg)
{
    struct fake *f = arg;
    unsigned char q[512];
    corio_addr from;

    for (;;) {
        ssize_t n = corio_udp_recvfrom(f->fd, q, sizeof(q), &from, -1);

        if (n < 12)
            return n == -1 && errno == ECANCELED ? NULL : corio_task_fail(EIO);
        f->queries++;
        if (f->answer == SILENT)
            continue;
        if (f->answer == ADDRESSES) {
            size_t len = fake_addresses(f, q, (size_t)n, sizeof(q));

            if (len > 0 && corio_udp_sendto(f->fd, q, len, &from, -1) == -1)
                return corio_task_fail(errno);
            continue;
        }
        q[2] |= 0x80;                           /* QR: a response */
        q[3] = (unsigned char)((q[3] & 0xF0) | 3); /* RCODE 3: NXDOMAIN */
        q[3] |= 0x80;                           /* RA */
        if (corio_udp_sendto(f->fd, q, (size_t)n, &from, -1) == -1)
            return corio_task_fail(errno);
    }
}

static corio_task *fake_start(struct fake *f, int answer)
{
    corio_addr a;

    f->answer = answer;
    f->queries = 0;
    f->fd = corio_udp_open("127.0.0.1:0");
    if (f->fd == -1 || corio_socket_name(f->fd, &a) == -1)
        return NULL;
    snprintf(f->csv, sizeof(f->csv), "127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&a.ss)->sin_port));
    if (corio_dns_set_servers(f->csv) == -1)
        return NULL;
    return corio_task_spawn(fake_server, f, NULL);
}

static char *fake_stop(struct fake *f, corio_task *t)
{
    int rc, err;

    corio_task_cancel(t);
    rc = corio_task_join(t, NULL);
    err = errno;
    corio_fd_close(f->fd);
    CHECK(corio_dns_set_servers(NULL) == 0);
    errno = err;
    CHECK(rc == -1 && errno == ECANCELED); /* it did not fail before */
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
    n = corio_dns_resolve("localhost", "8080", AF_INET, out, 8, corio_now() + CORIO_SECOND);
    CHECK(n >= 1);
    CHECK(corio_addr_format(&out[0], text, sizeof(text)) > 0);
    CHECK(strcmp(text, "127.0.0.1:8080") == 0);
    /* a numeric host needs no lookup */
    CHECK(corio_dns_resolve("10.1.2.3", "53", AF_UNSPEC, out, 8, -1) == 1);
    /* connect by name: every address of "localhost" is tried in turn */
    lfd = corio_socket_listen("127.0.0.1:0", NULL);
    CHECK(lfd >= 0);
    CHECK(corio_socket_name(lfd, &a) == 0);
    snprintf(addr, sizeof(addr), "localhost:%d",
             ntohs(((struct sockaddr_in *)&a.ss)->sin_port));
    fd = corio_socket_connect(addr, NULL, corio_now() + CORIO_SECOND);
    CHECK(fd >= 0);
    s = corio_socket_accept(lfd, NULL, corio_now() + CORIO_SECOND);
    CHECK(s >= 0);
    corio_fd_close(s);
    corio_fd_close(fd);
    corio_fd_close(lfd);
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
    CHECK(corio_dns_resolve("no-such-name.invalid", "80", AF_UNSPEC, out, 4,
                        corio_now() + 5 * CORIO_SECOND) == -1);
    CHECK(errno == CORIO_EUNKNOWNHOST);
    CHECK(strcmp(corio_strerror(errno), "unknown host") == 0);
    CHECK(f.queries >= 1);
    errno = 0;
    CHECK(corio_socket_connect("no-such-name.invalid:80", NULL, corio_now() + 5 * CORIO_SECOND) == -1);
    CHECK(errno == CORIO_EUNKNOWNHOST);
    errno = 0;
    CHECK(corio_stream_connect("no-such-name.invalid:80",
                               corio_now() + 5 * CORIO_SECOND) == NULL);
    CHECK(errno == CORIO_EUNKNOWNHOST);
    return fake_stop(&f, t);
}

Test(dns, a_name_that_does_not_exist, .timeout = TIMEOUT)
{
    run_main(nxdomain_main, NULL);
}

/* A name that exists, with IPv4 addresses only: asked for IPv6, it is
 * unknown too (getaddrinfo's EAI_NONAME, c-ares's ENODATA). */
static void *no_such_family_main(void *arg)
{
    static struct fake f = {.ips = {"127.0.0.1", NULL}};
    corio_task *t;
    corio_addr out[4];

    (void)arg;
    t = fake_start(&f, ADDRESSES);
    CHECK(t != NULL);
    CHECK(corio_dns_resolve("v4only.test", "80", AF_INET, out, 4,
                            corio_now() + 5 * CORIO_SECOND) == 1);
    errno = 0;
    CHECK(corio_dns_resolve("v4only.test", "80", AF_INET6, out, 4,
                            corio_now() + 5 * CORIO_SECOND) == -1);
    CHECK(errno == CORIO_EUNKNOWNHOST);
    return fake_stop(&f, t);
}

Test(dns, a_name_without_an_address_of_the_family, .timeout = TIMEOUT)
{
    run_main(no_such_family_main, NULL);
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
    CHECK(corio_dns_resolve("example.test", "80", AF_UNSPEC, out, 4,
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
    v->err = corio_dns_resolve("example.test", "80", AF_UNSPEC, out, 4, -1) == -1
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
    l = corio_task_spawn(lookup_task, &v, NULL);
    CHECK(l != NULL);
    CHECK(corio_sleep(30 * MS) == 0);
    CHECK(corio_task_cancel(l) == 1);
    CHECK(corio_task_join(l, NULL) == -1 && errno == ECANCELED);
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
    CHECK(corio_dns_resolve(NULL, "80", AF_UNSPEC, out, 2, -1) == -1 && errno == EINVAL);
    CHECK(corio_dns_resolve("", "80", AF_UNSPEC, out, 2, -1) == -1 && errno == EINVAL);
    CHECK(corio_dns_resolve("localhost", NULL, AF_UNSPEC, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_resolve("localhost", "80", AF_UNIX, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_resolve("localhost", "80", AF_UNSPEC, out, 0, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_set_servers("not a server list") == 0);
    CHECK(corio_dns_resolve("localhost", "80", AF_INET, out, 2, -1) == -1 &&
          errno == EINVAL);
    CHECK(corio_dns_set_servers(NULL) == 0);
    return NULL;
}

Test(dns, bad_input, .timeout = TIMEOUT)
{
    run_main(bad_main, NULL);
}

static int port_of(const corio_addr *a)
{
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* A port is decimal digits up to 65535 or a service name. The resolver
 * itself reads a number with strtoul(3), keeping its low 16 bits
 * ("65616" was port 80) and what came before junk ("80x" was 80). */
static void *ports_main(void *arg)
{
    static const char *const bad[] = {"65536", "65616", "-1", "99999999999",
                                      "80x", " 80", "+80", "0x50", "",
                                      "http!", "-http"};
    corio_addr out[2];

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        if (corio_dns_resolve("localhost", bad[i], AF_INET, out, 2, -1) != -1 ||
            errno != EINVAL) {
            snprintf(failure, sizeof(failure), "port \"%s\": not EINVAL",
                     bad[i]);
            return failure;
        }
    }
    CHECK(corio_dns_resolve("localhost", "65535", AF_INET, out, 2, -1) >= 1);
    CHECK(port_of(&out[0]) == 65535);
    CHECK(corio_dns_resolve("127.0.0.1", "010", AF_INET, out, 2, -1) == 1);
    CHECK(port_of(&out[0]) == 10); /* decimal, not octal */
    CHECK(corio_dns_resolve("127.0.0.1", "0", AF_INET, out, 2, -1) == 1);
    CHECK(port_of(&out[0]) == 0);
    CHECK(corio_dns_resolve("localhost", "http", AF_INET, out, 2, -1) >= 1);
    CHECK(port_of(&out[0]) == 80); /* /etc/services */
    return NULL;
}

Test(dns, ports_are_numbers_in_range_or_service_names, .timeout = TIMEOUT)
{
    run_main(ports_main, NULL);
}

/* An answer with more addresses than the caller's array: the array is
 * filled, nothing past it is written. */
static void *many_main(void *arg)
{
    static struct fake f;
    struct {
        corio_addr out[2];
        unsigned char canary[sizeof(corio_addr)];
    } m;
    unsigned char want[sizeof(m.canary)];
    corio_task *t;

    (void)arg;
    f.ips[0] = "127.0.0.1";
    f.ips[1] = "127.0.0.2";
    f.ips[2] = "127.0.0.3";
    f.ips[3] = NULL;
    t = fake_start(&f, ADDRESSES);
    CHECK(t != NULL);
    memset(want, 0xA5, sizeof(want));
    for (size_t max = 1; max <= 2; max++) {
        memset(&m, 0xA5, sizeof(m));
        CHECK(corio_dns_resolve("many.test", "80", AF_INET, m.out, max,
                                corio_now() + 2000 * MS) == (int)max);
        CHECK(memcmp(m.canary, want, sizeof(want)) == 0);
        if (max == 1)
            CHECK(memcmp(&m.out[1], want, sizeof(m.out[1])) == 0);
        for (size_t i = 0; i < max; i++)
            CHECK(m.out[i].ss.ss_family == AF_INET && port_of(&m.out[i]) == 80);
    }
    return fake_stop(&f, t);
}

Test(dns, more_addresses_than_room_never_write_past_it, .timeout = TIMEOUT)
{
    run_main(many_main, NULL);
}

/* ---- Happy eyeballs -------------------------------------------------------
 * "multi.test" resolves (by a fake server) to 127.0.0.1 and 127.0.0.2, in
 * an order the test reads back; what listens on the first and the second
 * address at one port decides how the race goes. */

#define ATTEMPT_DELAY_MS 250

enum { LISTEN, SILENT_HOLE, NOTHING };

struct race_case {
    int first, second;      /* LISTEN, SILENT_HOLE or NOTHING */
    int64_t deadline_ms;    /* -1: none */
    int cancel_after_ms;    /* 0: not cancelled */
    int want_err;           /* 0: connects to the second address */
    int64_t min_ms, max_ms; /* how long the connect takes */
};

struct dialer {
    char addr[64];
    int64_t deadline;
    int fd, err;
};

static void *dial_task(void *arg)
{
    struct dialer *d = arg;

    errno = 0;
    d->fd = corio_socket_connect(d->addr, NULL, d->deadline);
    d->err = d->fd == -1 ? errno : 0;
    return NULL;
}

static void *race_main(void *arg)
{
    const struct race_case *c = arg;
    static struct fake f;
    struct blackhole holes[2];
    int lfd = -1, nholes = 0, port = 0;
    corio_addr out[4];
    char ip[2][16];
    struct dialer d = {.fd = -1};
    corio_task *t, *dt;
    int64_t t0, ms;

    f.ips[0] = "127.0.0.1";
    f.ips[1] = "127.0.0.2";
    f.ips[2] = NULL;
    t = fake_start(&f, ADDRESSES);
    CHECK(t != NULL);
    CHECK(corio_dns_resolve("multi.test", "80", AF_UNSPEC, out, 4,
                        corio_now() + 2000 * MS) == 2);
    for (int i = 0; i < 2; i++)
        CHECK(inet_ntop(AF_INET, &((struct sockaddr_in *)&out[i].ss)->sin_addr,
                        ip[i], sizeof(ip[i])) != NULL);
    /* the same port on both addresses, as the name has one port */
    for (int i = 0; i < 2; i++) {
        int what = i == 0 ? c->first : c->second;
        char where[64];

        if (what == SILENT_HOLE) {
            CHECK(blackhole_open_at(&holes[nholes], ip[i], port) == 0);
            port = holes[nholes++].port;
        } else if (what == LISTEN) {
            snprintf(where, sizeof(where), "%s:%d", ip[i], port);
            lfd = corio_socket_listen(where, NULL);
            CHECK(lfd >= 0);
            port = bound_port(lfd);
        } else if (port == 0) {
            /* nothing listens: borrow a free port from a closed listener */
            snprintf(where, sizeof(where), "%s:0", ip[i]);
            int tmp = corio_socket_listen(where, NULL);

            CHECK(tmp >= 0);
            port = bound_port(tmp);
            corio_fd_close(tmp);
        }
    }
    snprintf(d.addr, sizeof(d.addr), "multi.test:%d", port);
    t0 = corio_now();
    d.deadline = c->deadline_ms >= 0 ? t0 + c->deadline_ms * MS : -1;
    dt = corio_task_spawn(dial_task, &d, NULL);
    CHECK(dt != NULL);
    if (c->cancel_after_ms > 0) {
        CHECK(corio_sleep(c->cancel_after_ms * MS) == 0);
        CHECK(corio_task_cancel(dt) == 1);
    }
    CHECK(corio_task_join(dt, NULL) == 0 || errno == ECANCELED);
    ms = (corio_now() - t0) / MS;
    if (c->want_err != 0) {
        CHECK(d.fd == -1 && d.err == c->want_err);
    } else {
        corio_addr peer;
        char text[64];

        socklen_t len = sizeof(peer.ss);
        int s;

        CHECK(d.fd >= 0);
        s = corio_socket_accept(lfd, NULL, corio_now() + 1000 * MS);
        CHECK(s >= 0);
        corio_fd_close(s);
        /* the winner is the second address */
        CHECK(getpeername(d.fd, (struct sockaddr *)&peer.ss, &len) == 0);
        peer.len = len;
        CHECK(corio_addr_format(&peer, text, sizeof(text)) > 0);
        CHECK(strncmp(text, ip[1], strlen(ip[1])) == 0);
        corio_fd_close(d.fd);
    }
    if (ms < c->min_ms || ms >= c->max_ms) {
        snprintf(failure, sizeof(failure), "took %lld ms, not in [%lld, %lld)",
                 (long long)ms, (long long)c->min_ms, (long long)c->max_ms);
        return failure;
    }
    for (int i = 0; i < nholes; i++)
        blackhole_close(&holes[i]);
    if (lfd >= 0)
        corio_fd_close(lfd);
    return fake_stop(&f, t);
}

Test(dns, race_a_silent_first_address_costs_the_attempt_delay,
     .timeout = TIMEOUT)
{
    struct race_case c = {SILENT_HOLE, LISTEN, 5000, 0, 0,
                          ATTEMPT_DELAY_MS - 10,
                          ATTEMPT_DELAY_MS + test_slack_ms()};

    run_main(race_main, &c);
}

Test(dns, race_a_refused_first_address_starts_the_next_at_once,
     .timeout = TIMEOUT)
{
    struct race_case c = {NOTHING, LISTEN, 5000, 0, 0, 0,
                          ATTEMPT_DELAY_MS - 50};

    run_main(race_main, &c);
}

Test(dns, race_all_refused, .timeout = TIMEOUT)
{
    struct race_case c = {NOTHING, NOTHING, 5000, 0, ECONNREFUSED, 0,
                          ATTEMPT_DELAY_MS - 50};

    run_main(race_main, &c);
}

Test(dns, race_meets_its_deadline, .timeout = TIMEOUT)
{
    struct race_case c = {SILENT_HOLE, SILENT_HOLE, 400, 0, ETIMEDOUT, 400,
                          400 + test_slack_ms()};

    run_main(race_main, &c);
}

Test(dns, race_cancelled, .timeout = TIMEOUT)
{
    struct race_case c = {SILENT_HOLE, SILENT_HOLE, -1, 350, ECANCELED, 350,
                          350 + test_slack_ms()};

    run_main(race_main, &c);
}
