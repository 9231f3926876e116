/* P5: a Pipe, the other channel between processes: two connected ends,
 * each sending whole messages to the other.
 *
 * Python's multiprocessing.Pipe, as in its documentation:
 *
 *     def f(conn):
 *         conn.send([42, None, 'hello'])
 *         conn.close()
 *
 *     parent_conn, child_conn = Pipe()
 *     p = Process(target=f, args=(child_conn,))
 *     p.start()
 *     print(parent_conn.recv())   # prints "[42, None, 'hello']"
 *     p.join()
 *
 * Here the child also answers the parent's questions (the pipe is duplex)
 * until the parent closes its end: the child's recv then ends with
 * CORIO_EEOF, Python's EOFError. As with os.pipe, each process closes the
 * end it does not use, so that the end of the stream can be seen. */
#include "corio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ends {
    corio_pipe *parent, *child;
};

static int child(void *arg)
{
    struct ends *e = arg;
    const char *hello = "[42, None, 'hello']";
    char msg[64], reply[64];
    ssize_t n;

    corio_pipe_close(e->parent);
    printf("Child process %d sends %s\n", (int)getpid(), hello);
    if (corio_pipe_send(e->child, hello, strlen(hello), -1) == -1)
        return 1;
    while ((n = corio_pipe_recv(e->child, msg, sizeof(msg) - 1, -1)) >= 0) {
        msg[n] = '\0';
        int x = atoi(msg);
        snprintf(reply, sizeof(reply), "%d squared is %d", x, x * x);
        printf("Child got %s, answers \"%s\"\n", msg, reply);
        if (corio_pipe_send(e->child, reply, strlen(reply), -1) == -1)
            return 1;
    }
    if (errno != CORIO_EEOF) {
        fprintf(stderr, "child recv: %s\n", corio_strerror(errno));
        return 1;
    }
    printf("Child: the parent closed its end (EOF)\n");
    corio_pipe_close(e->child);
    return 0;
}

int main(void)
{
    struct ends e;
    corio_process *p;
    char msg[64];
    ssize_t n;
    int code;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("Parent process %d\n", (int)getpid());
    if (corio_pipe_new(&e.parent, &e.child, NULL) == -1) {
        perror("corio_pipe_new");
        return 1;
    }
    p = corio_process_new(child, &e, NULL);
    if (p == NULL || corio_process_start(p) == -1) {
        fprintf(stderr, "start: %s\n", corio_strerror(errno));
        return 1;
    }
    corio_pipe_close(e.child);
    n = corio_pipe_recv(e.parent, msg, sizeof(msg) - 1, -1);
    if (n == -1) {
        fprintf(stderr, "recv: %s\n", corio_strerror(errno));
        return 1;
    }
    msg[n] = '\0';
    printf("%s\n", msg);
    for (int i = 2; i <= 4; i++) {
        char q[16];

        snprintf(q, sizeof(q), "%d", i);
        if (corio_pipe_send(e.parent, q, strlen(q), -1) == -1 ||
            (n = corio_pipe_recv(e.parent, msg, sizeof(msg) - 1, -1)) == -1) {
            fprintf(stderr, "parent: %s\n", corio_strerror(errno));
            return 1;
        }
        msg[n] = '\0';
        printf("Parent got \"%s\"\n", msg);
    }
    corio_pipe_close(e.parent);
    if (corio_process_wait(p, -1) == -1 ||
        corio_process_exitcode(p, &code) == -1 || code != 0) {
        fprintf(stderr, "the child failed\n");
        return 1;
    }
    corio_process_free(p);
    printf("Child exited with 0\n");
    return 0;
}
