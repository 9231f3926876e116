/* tests/test_examples_dist.c -- the task-queue examples (seeds D1, D2, D3)
 * print what their seeds print: the master's puts and results, the
 * workers' tasks shared between two processes, the refusal of a wrong key;
 * the options (--addr, --authkey, --url); and the seed's two machines, as
 * two network namespaces joined by a veth pair (skipped where namespaces
 * cannot be made).
 *
 * Each test runs the built examples (CORIO_EXAMPLES_DIR) through sh -c and
 * checks their output lines and exit status. Ports are derived from the
 * test's pid, so that parallel runs do not meet. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "corio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "timing.h"

#define EX CORIO_EXAMPLES_DIR

struct out {
    char text[32768];
    char *lines[256];
    int n;
    int status;        /* exit status, or -1 */
    double wall;       /* seconds */
};

/* Run cmd (sh -c), stdout and stderr into o. */
static void run(struct out *o, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    size_t len = 0;
    int64_t t0 = corio_now();
    FILE *p;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    memset(o, 0, sizeof(*o));
    p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    while (len < sizeof(o->text) - 1) {
        size_t k = fread(o->text + len, 1, sizeof(o->text) - 1 - len, p);

        if (k == 0)
            break;
        len += k;
    }
    st = pclose(p);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    o->wall = (double)(corio_now() - t0) / 1e9;
    for (char *s = strtok(o->text, "\n"); s != NULL && o->n < 256;
         s = strtok(NULL, "\n"))
        o->lines[o->n++] = s;
}

/* Lines matching the pattern. */
static int count(const struct out *o, const char *pattern)
{
    int c = 0;

    for (int i = 0; i < o->n; i++)
        c += fnmatch(pattern, o->lines[i], 0) == 0;
    return c;
}

static void dump(const struct out *o)
{
    for (int i = 0; i < o->n; i++)
        fprintf(stderr, "  | %s\n", o->lines[i]);
}

/* Every "Result: N * N = M" line is right. */
static void check_results(const struct out *o, int want)
{
    int got = 0;

    for (int i = 0; i < o->n; i++) {
        const char *r = strstr(o->lines[i], "Result: ");
        long a, b, m;

        if (r == NULL)
            continue;
        cr_assert_eq(sscanf(r, "Result: %ld * %ld = %ld", &a, &b, &m), 3,
                     "%s", o->lines[i]);
        cr_assert_eq(a, b);
        cr_assert_eq(a * a, m, "%s", o->lines[i]);
        got++;
    }
    cr_assert_eq(got, want, "%d results", got);
}

/* A port free a moment ago (bound to 0, then closed): a port derived
 * from the pid may be some other program's. */
static int port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(examples_dist, d1_d2_two_workers_share_the_work, .timeout = 120)
{
    struct out o;
    int w1, w2;

    run(&o, "%s/d2_workers_share 2>&1", EX);
    if (o.status != 0)
        dump(&o);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(count(&o, "\\[master\\]  Put task *..."), 10);
    cr_assert_eq(count(&o, "\\[master\\]  Try get results..."), 1);
    check_results(&o, 10);
    cr_assert_eq(count(&o, "\\[master\\]  master exit."), 1);
    cr_assert_eq(count(&o, "\\[worker?\\] Connect to server 127.0.0.1..."), 2);
    w1 = count(&o, "\\[worker1\\] run task * * *...");
    w2 = count(&o, "\\[worker2\\] run task * * *...");
    cr_assert_eq(w1 + w2, 10, "%d + %d tasks", w1, w2);
    cr_assert(w1 >= 3 && w2 >= 3, "not shared: %d and %d", w1, w2);
    cr_assert_eq(count(&o, "\\[worker?\\] worker exit."), 2);
    /* Two workers, ten one-second tasks: about five seconds. */
    cr_assert(o.wall >= 4.5, "%.2f s", o.wall);
    /* (Under valgrind, which runs the examples too, only the lower bound.) */
    if (!RUNNING_ON_VALGRIND)
        cr_assert(o.wall < 8.0 + test_extra_ms() / 1000.0, "%.2f s", o.wall);
}

Test(examples_dist, d3_wrong_key_refused, .timeout = 120)
{
    struct out o;

    run(&o, "%s/d3_wrong_key 2>&1", EX);
    if (o.status != 0)
        dump(&o);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(count(&o, "    | worker: the server refused the authkey*"), 1);
    cr_assert_eq(count(&o, "  exit status 1: refused"), 1);
    cr_assert_eq(count(&o, "    | task queue is empty."), 1);
    cr_assert_eq(count(&o, "  exit status 0: served"), 1);
}

Test(examples_dist, d1_d2_options, .timeout = 120)
{
    struct out o;
    int p = port();

    /* --url on both; a worker with a wrong key against the same master
     * exits with 1 and says why. */
    run(&o,
        "%s/d1_taskmanager --url corio://127.0.0.1:%d --authkey k3y > /dev/null 2>&1 & "
        /* until the master listens (seconds on a loaded machine) */
        /* (ss, not a connection: the master gives up on its results
         * 10 s after its puts, so the wait must be short) */
        "for i in $(seq 300); do ss -Hltn 'sport = :%d' | grep -q . && break;"
        " sleep 0.05; done; "
        "%s/d2_taskworker --addr 127.0.0.1:%d --authkey nope 2>&1; echo status $?; "
        "%s/d2_taskworker --url corio://127.0.0.1:%d --authkey k3y 2>&1; echo status $?; "
        "wait",
        EX, p, p, EX, p, EX, p);
    if (count(&o, "status 0") != 1)
        dump(&o);
    cr_assert_eq(count(&o, "worker: the server refused the authkey*"), 1);
    cr_assert_eq(count(&o, "status 1"), 1);
    cr_assert_eq(count(&o, "run task * * *..."), 10);
    cr_assert_eq(count(&o, "status 0"), 1);
    /* A bad option: the usage, status 2. */
    run(&o, "%s/d2_taskworker --bogus 2>&1", EX);
    cr_assert_eq(o.status, 2);
    cr_assert_eq(count(&o, "usage: *"), 1);
    /* Nobody at the address: a clear error, status 1. */
    run(&o, "%s/d2_taskworker --addr 127.0.0.1:%d 2>&1", EX, port());
    cr_assert_eq(o.status, 1);
    cr_assert_eq(count(&o, "worker: connect *: Connection refused"), 1);
}

/* Two machines: a master in one network namespace, a worker in another,
 * joined by a veth pair. */
Test(examples_dist, two_namespaces, .timeout = 120)
{
    char a[32], b[32];
    static struct out o, cleanup;
    int id = getpid() % 200 + 20;

    /* valgrind (tracing children) would run ip too, which it reports as
     * leaking, and namespaces do not work under it. */
    if (RUNNING_ON_VALGRIND)
        cr_skip_test("not under valgrind");
    snprintf(a, sizeof(a), "cdm%da", getpid());
    snprintf(b, sizeof(b), "cdm%db", getpid());
    run(&o,
        "set -e; ip netns add %s; ip netns add %s; "
        "ip link add %s-v type veth peer name %s-v; "
        "ip link set %s-v netns %s; ip link set %s-v netns %s; "
        "ip -n %s addr add 10.77.%d.1/24 dev %s-v; ip -n %s addr add 10.77.%d.2/24 dev %s-v; "
        "ip -n %s link set %s-v up; ip -n %s link set %s-v up; "
        "ip -n %s link set lo up; ip -n %s link set lo up 2>&1",
        a, b, a, b, a, a, b, b, a, id, a, b, id, b, a, a, b, b, a, b);
    if (o.status != 0) {
        run(&o, "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", a, b);
        cr_skip_test("network namespaces cannot be made here (not root?)");
    }
    run(&o,
        "ip netns exec %s %s/d1_taskmanager --addr 10.77.%d.1:5000 2>&1 | sed 's/^/[A] /' & "
        "sleep 0.5; "
        "ip netns exec %s %s/d2_taskworker --addr 10.77.%d.1:5000 2>&1 | sed 's/^/[B] /'; "
        "wait",
        a, EX, id, b, EX, id);
    run(&cleanup, "ip netns del %s; ip netns del %s", a, b);
    if (count(&o, "\\[A\\] Result: *") != 10)
        dump(&o);
    cr_assert_eq(cleanup.status, 0, "namespaces not removed");
    /* The worker (B) reached the master (A) across the pair: every task
     * ran in B, every result came back to A. */
    cr_assert_eq(count(&o, "\\[B\\] Connect to server 10.77.*.1..."), 1);
    cr_assert_eq(count(&o, "\\[B\\] run task * * *..."), 10);
    cr_assert_eq(count(&o, "\\[A\\] Result: *"), 10);
    cr_assert_eq(count(&o, "\\[A\\] master exit."), 1);
}
