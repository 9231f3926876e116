// tests/install/app.cpp -- a C++ program built against an installed corio
// (scripts/test, stage "install": once with pkg-config, once with
// find_package(corio), shared and static). It goes through several layers:
// a generator, a task that sleeps and sends into a channel, a job on the
// thread pool, a stream over a socketpair, an address, a TLS context.
// Every return value is checked; prints one line and exits 0, or says what
// failed and exits 1.
#include <corio.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

namespace {

[[noreturn]] void fail(const char *what)
{
    std::fprintf(stderr, "corio_app: %s failed: %s\n", what,
                 corio_strerror(errno));
    std::exit(1);
}

[[noreturn]] void wrong(const char *what)
{
    std::fprintf(stderr, "corio_app: wrong %s\n", what);
    std::exit(1);
}

// coro: yields 1, 2, 3, returns 4.
void *count(corio_gen *gen, void *)
{
    for (std::intptr_t i = 1; i <= 3; i++)
        if (corio_gen_yield(gen, CORIO_INT(i), nullptr) != 0)
            return nullptr;
    return CORIO_INT(4);
}

struct Producer {
    corio_chan *chan;
    int n;
};

// task, sync: sends 1..n, sleeping 1 ms before each, then closes the channel.
void *produce(void *arg)
{
    auto *p = static_cast<Producer *>(arg);
    for (int i = 1; i <= p->n; i++) {
        if (corio_sleep(CORIO_MSEC) != 0 ||
            corio_chan_send(p->chan, CORIO_INT(i), -1) != 0)
            return corio_task_fail(errno);
    }
    if (corio_chan_close(p->chan) != 0)
        return corio_task_fail(errno);
    return nullptr;
}

// thread: blocking code on a worker.
void *square(void *arg)
{
    std::intptr_t n = CORIO_TO_INT(arg);
    return CORIO_INT(n * n);
}

// The main task (corio_run): returns the sum squared.
void *main_task(void *)
{
    const std::int64_t deadline = corio_now() + 10 * CORIO_SECOND;

    corio_chan *chan = corio_chan_new(2);
    if (chan == nullptr)
        fail("corio_chan_new");
    Producer p{chan, 5};
    corio_task *t = corio_task_spawn(produce, &p, nullptr);
    if (t == nullptr)
        fail("corio_task_spawn");
    std::intptr_t sum = 0;
    void *item;
    while (corio_chan_recv(chan, &item, deadline) == 0)
        sum += CORIO_TO_INT(item);
    if (errno != CORIO_ECLOSED) // the producer closed it
        fail("corio_chan_recv");
    if (corio_task_join(t, nullptr) != 0)
        fail("corio_task_join");
    if (corio_chan_free(chan) != 0)
        fail("corio_chan_free");
    if (sum != 15)
        wrong("sum from the channel");

    // io: a line through a stream over a socketpair.
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) != 0)
        fail("socketpair");
    corio_stream *a = corio_stream_new(sv[0], nullptr);
    if (a == nullptr)
        fail("corio_stream_new");
    corio_stream *b = corio_stream_new(sv[1], nullptr);
    if (b == nullptr)
        fail("corio_stream_new");
    if (corio_stream_write(a, "ping\n", 5) != 0)
        fail("corio_stream_write");
    if (corio_stream_drain(a, deadline) != 0)
        fail("corio_stream_drain");
    char line[16];
    if (corio_stream_readline(b, line, sizeof(line), deadline) != 5)
        fail("corio_stream_readline");
    if (std::strcmp(line, "ping\n") != 0)
        wrong("line from the stream");
    if (corio_stream_close(a) != 0 || corio_stream_close(b) != 0)
        fail("corio_stream_close");

    void *r;
    if (corio_pool_run(nullptr, square, CORIO_INT(sum), &r, deadline) != 0)
        fail("corio_pool_run");
    return r;
}

} // namespace

int main()
{
    corio_gen *gen = corio_gen_new(count, nullptr, nullptr);
    if (gen == nullptr)
        fail("corio_gen_new");
    std::intptr_t yielded = 0;
    void *v;
    int rc;
    while ((rc = corio_gen_next(gen, &v)) == 1)
        yielded += CORIO_TO_INT(v);
    if (rc != 0)
        fail("corio_gen_next");
    if (yielded != 6 || CORIO_TO_INT(v) != 4)
        wrong("values from the generator");
    if (corio_gen_close(gen) != 0)
        fail("corio_gen_close");

    corio_addr addr;
    char text[64];
    if (corio_addr_parse(&addr, "[::1]:8080") != 0)
        fail("corio_addr_parse");
    if (corio_addr_format(&addr, text, sizeof(text)) < 0)
        fail("corio_addr_format");
    if (std::strcmp(text, "[::1]:8080") != 0)
        wrong("address text");

    // tls: a client context (ENOSYS when corio was built without OpenSSL).
    const char *tls = "TLS";
    corio_tls *ctx = corio_tls_client(nullptr);
    if (ctx != nullptr) {
        if (corio_tls_free(ctx) != 0)
            fail("corio_tls_free");
    } else if (errno == ENOSYS) {
        tls = "no TLS (built without OpenSSL)";
    } else {
        fail("corio_tls_client");
    }

    void *result;
    if (corio_run(main_task, nullptr, &result) != 0)
        fail("corio_run");
    if (CORIO_TO_INT(result) != 225)
        wrong("result of corio_run");
    std::printf("corio from C++: generator 1+2+3, channel 1+..+5 = 15, "
                "squared on a worker = 225, a line over a stream, %s\n",
                tls);
    return 0;
}
