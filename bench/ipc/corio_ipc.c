/* bench/ipc/corio_ipc.c -- messages per second between two processes
 * through a corio Queue or Pipe: the parent puts (sends) `count` messages
 * of `size` bytes, a forked child gets (receives) them all and checks the
 * count and a checksum. The time runs from the first put to the child's
 * exit. Prints one RESULT line (bench/benchlib.py parses it).
 *
 *     corio_ipc queue|pipe SIZE COUNT */
#include "corio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "corio_ipc: %s: %s\n", what, corio_strerror(errno));
    exit(1);
}

static int consume(bool queue, corio_queue *q, corio_pipe *p, size_t size,
                   long count)
{
    unsigned char *buf = malloc(size);
    uint64_t sum = 0;
    ssize_t n;

    for (long i = 0; i < count; i++) {
        n = queue ? corio_queue_get(q, buf, size, -1)
                  : corio_pipe_recv(p, buf, size, -1);
        if (n != (ssize_t)size)
            return 1;
        sum += buf[0];
    }
    free(buf);
    return sum == (uint64_t)count * 7 ? 0 : 2;
}

int main(int argc, char **argv)
{
    bool queue;
    size_t size;
    long count;
    corio_queue *q = NULL;
    corio_pipe *a = NULL, *b = NULL;
    unsigned char *msg;
    int status;
    pid_t pid;

    if (argc != 4) {
        fprintf(stderr, "usage: corio_ipc queue|pipe SIZE COUNT\n");
        return 2;
    }
    queue = strcmp(argv[1], "queue") == 0;
    size = (size_t)atol(argv[2]);
    count = atol(argv[3]);
    msg = calloc(1, size);
    msg[0] = 7;
    if (queue) {
        corio_queue_opts o = {.capacity = 1024, .msg_max = size};
        q = corio_queue_new(&o);
        if (q == NULL)
            die("corio_queue_new");
    } else {
        corio_pipe_opts o = {.ring_size = 1 << 20};
        if (corio_pipe_new(&a, &b, &o) == -1)
            die("corio_pipe_new");
    }
    pid = corio_fork();
    if (pid == -1)
        die("fork");
    if (pid == 0) {
        corio_pipe_close(a);
        _exit(consume(queue, q, b, size, count));
    }
    corio_pipe_close(b);
    int64_t t0 = corio_now();
    for (long i = 0; i < count; i++) {
        int rc = queue ? corio_queue_put(q, msg, size, -1)
                       : corio_pipe_send(a, msg, size, -1);
        if (rc == -1)
            die("put");
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "corio_ipc: the consumer failed (%#x)\n", status);
        return 1;
    }
    double secs = (double)(corio_now() - t0) / CORIO_SECOND;
    printf("RESULT impl=corio kind=%s size=%zu msgs=%ld secs=%.4f rate=%.0f\n",
           argv[1], size, count, secs, (double)count / secs);
    corio_pipe_close(a);
    corio_queue_free(q);
    free(msg);
    return 0;
}
