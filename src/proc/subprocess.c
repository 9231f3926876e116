/* src/proc/subprocess.c -- asyncio's create_subprocess_exec: another
 * program in a child, its standard streams as corio streams, its end
 * through a pidfd.
 *
 * The child is forked with corio_fork (no loop, the loop's blocked signals
 * unblocked: they would otherwise stay blocked across exec), sets up its
 * fds and working directory, and execs. A close-on-exec pipe tells the
 * parent why an exec failed: it carries the child's errno, or closes
 * empty when the exec succeeded; so corio_subprocess_exec fails with
 * ENOENT for a missing program, as asyncio raises FileNotFoundError.
 *
 * communicate runs a task per piped output (reading it to its end) while
 * the calling task (or the thread's own stack) writes the input, so a
 * child that fills its stdout while the parent writes its stdin never
 * deadlocks. */
#define _GNU_SOURCE
#include "corio/proc.h"
#include "corio/io.h"
#include "proc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct corio_subprocess {
    pid_t pid;
    int pidfd;
    bool reaped;
    int code;
    corio_stream *s[3];             /* stdin, stdout, stderr, or NULL */
};

/* ---- Starting --------------------------------------------------------------- */

/* In the child: fd `to` becomes what opts says. Returns 0 or -1. */
static int child_stdio(corio_stdio how, int to, int pipe_end)
{
    int fd;

    switch (how) {
    case CORIO_STDIO_INHERIT:
        return 0;
    case CORIO_STDIO_PIPE:
        return dup2(pipe_end, to) == -1 ? -1 : 0;
    case CORIO_STDIO_DEVNULL:
        fd = open("/dev/null", to == STDIN_FILENO ? O_RDONLY : O_WRONLY);
        if (fd == -1)
            return -1;
        if (fd != to && (dup2(fd, to) == -1 || close(fd) == -1))
            return -1;
        return 0;
    case CORIO_STDIO_STDOUT:
        return dup2(STDOUT_FILENO, to) == -1 ? -1 : 0;
    }
    return 0;
}

static __attribute__((noreturn)) void
child_exec(const char *file, char *const argv[], const corio_subprocess_opts *o,
           int pipes[3][2], int report)
{
    corio_stdio how[3] = {o->in, o->out, o->err};
    int err;

    for (int i = 0; i < 3; i++) {
        int end = i == 0 ? pipes[0][0] : pipes[i][1];

        if (child_stdio(how[i], i, end) == -1)
            goto fail;
    }
    if (o->cwd != NULL && chdir(o->cwd) == -1)
        goto fail;
    if (o->env != NULL)
        execvpe(file, argv, o->env);
    else
        execvp(file, argv);
fail:
    err = errno;
    if (write(report, &err, sizeof(err)) != sizeof(err))
        _exit(127);
    _exit(127);
}

static void close_pipes(int pipes[3][2])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (pipes[i][j] != -1)
                close(pipes[i][j]);
}

corio_subprocess *corio_subprocess_exec(const char *file, char *const argv[],
                                        const corio_subprocess_opts *opts)
{
    static const corio_subprocess_opts none;
    const corio_subprocess_opts *o = opts != NULL ? opts : &none;
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int report[2] = {-1, -1};
    corio_stdio how[3];
    corio_subprocess *p;
    int err = 0;
    ssize_t n;
    pid_t pid;

    if (file == NULL || argv == NULL || o->in == CORIO_STDIO_STDOUT ||
        o->out == CORIO_STDIO_STDOUT) {
        errno = EINVAL;
        return NULL;
    }
    how[0] = o->in;
    how[1] = o->out;
    how[2] = o->err;
    /* allocated before the fork: a child whose exec fails must not hold
     * memory only the parent can reach (valgrind calls it lost) */
    p = NULL;
    for (int i = 0; i < 3; i++)
        if (how[i] == CORIO_STDIO_PIPE && pipe2(pipes[i], O_CLOEXEC) == -1)
            goto out;
    if (pipe2(report, O_CLOEXEC) == -1)
        goto out;
    pid = corio_fork();
    if (pid == -1)
        goto out;
    if (pid == 0) {
        close(report[0]);
        child_exec(file, argv, o, pipes, report[1]);
    }
    close(report[1]);
    report[1] = -1;
    do
        n = read(report[0], &err, sizeof(err));
    while (n == -1 && errno == EINTR);
    if (n == (ssize_t)sizeof(err)) {
        corio__pid_reap(pid);
        errno = err;
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        err = errno;
        kill(pid, SIGKILL);
        corio__pid_reap(pid);
        errno = err;
        goto out;
    }
    p->pid = pid;
    p->pidfd = corio__pidfd_open_child(pid);
    if (p->pidfd == -1)
        goto out;
    /* the parent's ends become streams; the child's are closed */
    for (int i = 0; i < 3; i++) {
        int mine = i == 0 ? 1 : 0;
        int fd;

        if (how[i] != CORIO_STDIO_PIPE)
            continue;
        fd = pipes[i][mine];
        close(pipes[i][1 - mine]);
        pipes[i][1 - mine] = -1;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        p->s[i] = corio_stream_new(fd, NULL);
        if (p->s[i] == NULL) {
            err = errno;
            corio_subprocess_free(p);
            p = NULL;
            close_pipes(pipes);
            close(report[0]);
            errno = err;
            return NULL;
        }
        pipes[i][mine] = -1;
    }
    close(report[0]);
    return p;

out:
    err = errno;
    close_pipes(pipes);
    if (report[0] != -1)
        close(report[0]);
    if (report[1] != -1)
        close(report[1]);
    free(p);
    errno = err;
    return NULL;
}

pid_t corio_subprocess_pid(const corio_subprocess *p)
{
    return p != NULL ? p->pid : 0;
}

static corio_stream *stream(corio_subprocess *p, int i)
{
    return p != NULL ? p->s[i] : NULL;
}

corio_stream *corio_subprocess_stdin(corio_subprocess *p)
{
    return stream(p, 0);
}

corio_stream *corio_subprocess_stdout(corio_subprocess *p)
{
    return stream(p, 1);
}

corio_stream *corio_subprocess_stderr(corio_subprocess *p)
{
    return stream(p, 2);
}

/* ---- Waiting ----------------------------------------------------------------- */

int corio_subprocess_signal(corio_subprocess *p, int sig)
{
    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    return corio__child_signal(p->pid, p->pidfd, p->reaped, sig);
}

/* Kill the child and reap it: it is dying, the wait is short. */
static void kill_reap(corio_subprocess *p)
{
    if (p->reaped)
        return;
    corio__child_signal(p->pid, p->pidfd, false, SIGKILL);
    if (corio__child_reap(p->pid, p->pidfd, true, &p->code) == 1)
        p->reaped = true;
}

int corio_subprocess_wait(corio_subprocess *p, int *code, int64_t deadline)
{
    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    while (!p->reaped) {
        if (corio__child_reap(p->pid, p->pidfd, false, &p->code) == 1) {
            p->reaped = true;
            break;
        }
        if (corio__child_wait(p->pid, p->pidfd, deadline) == -1) {
            if (errno == ECANCELED)
                kill_reap(p);
            return -1;
        }
    }
    if (code != NULL)
        *code = p->code;
    return 0;
}

int corio_subprocess_close_stdin(corio_subprocess *p, int64_t deadline)
{
    int rc;

    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (p->s[0] == NULL)
        return 0;
    /* sends what is buffered; a pipe has no shutdown (ENOTSOCK) */
    rc = corio_stream_shutdown(p->s[0], deadline);
    if (rc == -1 && errno != ENOTSOCK && errno != EPIPE)
        return -1;
    corio_stream_close(p->s[0]);
    p->s[0] = NULL;
    if (rc == -1 && errno == EPIPE)
        return -1;
    return 0;
}

/* ---- communicate -------------------------------------------------------------- */

struct reader {
    corio_stream *s;
    corio_bytes b;
    size_t cap;
    int64_t deadline;
};

/* A task: read s to its end into b. Returns NULL, or fails with errno. */
static void *read_all(void *arg)
{
    struct reader *r = arg;

    for (;;) {
        ssize_t n;

        if (r->cap - r->b.len < 4096) {
            size_t cap = r->cap > 0 ? 2 * r->cap : 16384;
            void *d = realloc(r->b.data, cap);

            if (d == NULL)
                return corio_task_fail(ENOMEM);
            r->b.data = d;
            r->cap = cap;
        }
        n = corio_stream_read(r->s, (char *)r->b.data + r->b.len,
                              r->cap - r->b.len, r->deadline);
        if (n == 0)
            return NULL;
        if (n == -1)
            return corio_task_fail(errno);
        r->b.len += (size_t)n;
    }
}

int corio_subprocess_communicate(corio_subprocess *p, const void *input,
                                 size_t len, corio_bytes *out, corio_bytes *err,
                                 int *code, int64_t deadline)
{
    struct reader r[2] = {{0}, {0}};
    corio_task *t[2] = {NULL, NULL};
    corio_bytes *dst[2] = {out, err};
    int fail = 0, in_err = 0;

    if (p == NULL || (input == NULL && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (dst[i] != NULL)
            *dst[i] = (corio_bytes){NULL, 0};
        if (p->s[1 + i] == NULL)
            continue;
        r[i].s = p->s[1 + i];
        r[i].deadline = deadline;
        t[i] = corio_task_spawn(read_all, &r[i], NULL);
        if (t[i] == NULL)
            fail = errno;
    }
    if (fail == 0 && p->s[0] != NULL) {
        if (len > 0 && corio_stream_write(p->s[0], input, len) == -1)
            in_err = errno;
        if (corio_subprocess_close_stdin(p, deadline) == -1 && in_err == 0)
            in_err = errno;
        if (in_err == ECANCELED || in_err == ETIMEDOUT)
            fail = in_err;
        else if (in_err != 0 && in_err != EPIPE)
            fail = in_err;
    }
    for (int i = 0; i < 2; i++) {
        if (t[i] == NULL)
            continue;
        if (fail != 0)
            corio_task_cancel(t[i]);
        if (corio_task_join(t[i], NULL) == -1 && fail == 0)
            fail = errno;
    }
    if (fail == 0 && corio_subprocess_wait(p, code, deadline) == -1)
        fail = errno;
    if (fail == ECANCELED)
        kill_reap(p);
    for (int i = 0; i < 2; i++) {
        if (fail == 0 && dst[i] != NULL)
            *dst[i] = r[i].b;
        else
            free(r[i].b.data);
    }
    if (fail == 0 && in_err == EPIPE)
        fail = EPIPE;
    if (fail != 0) {
        errno = fail;
        return -1;
    }
    return 0;
}

int corio_subprocess_free(corio_subprocess *p)
{
    if (p == NULL)
        return 0;
    for (int i = 0; i < 3; i++)
        corio_stream_close(p->s[i]);
    kill_reap(p);
    corio__pidfd_close(p->pidfd);
    free(p);
    return 0;
}
