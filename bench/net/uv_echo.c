/* bench/net/uv_echo.c -- the libuv echo server of the benchmark, written
 * the way libuv's own echo examples are: uv_read_start with a buffer per
 * read, uv_write of what came, the buffer freed when the write completes.
 *
 *   uv_echo PORT     prints "READY" when listening; runs until killed */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

struct wreq {
    uv_write_t req;
    uv_buf_t buf;
};

static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(16384);
    buf->len = buf->base ? 16384 : 0;
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;

    (void)status;
    free(w->buf.base);
    free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        struct wreq *w = malloc(sizeof(*w));

        w->buf = uv_buf_init(buf->base, (unsigned)n);
        if (uv_write(&w->req, s, &w->buf, 1, on_write) == 0)
            return;
        free(w);
    }
    free(buf->base);
    if (n < 0)
        uv_close((uv_handle_t *)s, on_close);
}

static void on_conn(uv_stream_t *server, int status)
{
    uv_tcp_t *c;

    if (status < 0)
        return;
    c = malloc(sizeof(*c));
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)c, on_close);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct rlimit rl;
    uv_tcp_t server;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: uv_echo PORT\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    loop = uv_default_loop();
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
    rc = uv_tcp_bind(&server, (const struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 4096, on_conn);
    if (rc != 0) {
        fprintf(stderr, "uv_echo: %s\n", uv_strerror(rc));
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
