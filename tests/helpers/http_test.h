/* tests/helpers/http_test.h -- what the http tests share: a server on a
 * free loopback port running an app, and a raw client that sends bytes as
 * given and reads what comes back. Include corio.h and criterion first. */
#ifndef CORIO_TEST_HTTP_TEST_H
#define CORIO_TEST_HTTP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HT_SEC CORIO_SECOND

/* Send n bytes on a new connection to port, then read until the server
 * closes, `until` (if not NULL) has come, or 5 s pass. out gets what came
 * (NUL-terminated). Returns the count, or -1. */
/* In a check that returns NULL or what failed: unless cond, return a
 * message with the line and the printf-style text (one test at a time
 * per process, as Criterion runs them). */
static char failbuf[1024] __attribute__((unused));
#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            int n_ = snprintf(failbuf, sizeof(failbuf), "line %d: ", __LINE__); \
            snprintf(failbuf + n_, sizeof(failbuf) - (size_t)n_, __VA_ARGS__); \
            return failbuf;                                                 \
        }                                                                   \
    } while (0)

static inline ssize_t ht_exchange(int port, const char *data, size_t n,
                                  char *out, size_t cap, const char *until)
{
    char addr[64];
    corio_stream *s;
    size_t len = 0;
    ssize_t got;
    int64_t dl = corio_now() + 5 * HT_SEC;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = corio_stream_connect(addr, dl);
    if (s == NULL)
        return -1;
    if (n > 0 && (corio_stream_write(s, data, n) == -1 ||
                  corio_stream_drain(s, dl) == -1)) {
        corio_stream_close(s);
        return -1;
    }
    while (len < cap - 1 &&
           (got = corio_stream_read(s, out + len, cap - 1 - len, dl)) > 0) {
        len += (size_t)got;
        out[len] = '\0';
        if (until && strstr(out, until))
            break;
    }
    out[len] = '\0';
    corio_stream_close(s);
    return (ssize_t)len;
}

static inline ssize_t ht_get(int port, const char *req, char *out, size_t cap)
{
    return ht_exchange(port, req, strlen(req), out, cap, NULL);
}

/* The status of the first response in text, or -1. */
static inline int ht_status(const char *text)
{
    int status;

    if (sscanf(text, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

/* The body of the first response (after its blank line), or "". */
static inline const char *ht_body(const char *text)
{
    const char *b = strstr(text, "\r\n\r\n");

    return b ? b + 4 : "";
}

/* How many times needle occurs in hay. */
static inline int ht_count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* A shell command (a real client: curl, python3) run in a thread of the
 * default pool while the loop goes on serving: its stdout in out. */
struct ht_job {
    char cmd[4096];
    char out[8192];
    int status;
};

static inline void *ht_job_thread(void *arg)
{
    struct ht_job *j = arg;
    FILE *p = popen(j->cmd, "r");
    size_t n;

    if (p == NULL) {
        j->status = -1;
        return NULL;
    }
    n = fread(j->out, 1, sizeof(j->out) - 1, p);
    j->out[n] = '\0';
    j->status = pclose(p);
    return NULL;
}

/* Run j->cmd and wait for it without blocking the loop. NULL if it
 * exited 0, else what failed. */
static inline const char *ht_job_run(struct ht_job *j)
{
    if (corio_pool_run(corio_pool_default(), ht_job_thread, j, NULL,
                       corio_now() + 60 * HT_SEC) == -1)
        return "pool";
    return j->status == 0 ? NULL : "client failed";
}

#endif
