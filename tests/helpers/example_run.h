/* tests/helpers/example_run.h -- run a built example (CORIO_EXAMPLES_DIR/
 * <name> [args]) through popen, keep its whole standard output and how long
 * it ran, and fail the test unless it exits with status 0. Include
 * criterion.h and corio.h first. */
#ifndef CORIO_TEST_EXAMPLE_RUN_H
#define CORIO_TEST_EXAMPLE_RUN_H

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#ifndef CORIO_EXAMPLES_DIR
#error "tests/CMakeLists.txt defines CORIO_EXAMPLES_DIR"
#endif

struct example_out {
    char text[32768];
    size_t len;
    int64_t ns; /* start to exit */
};

static inline void example_run(const char *cmdline, struct example_out *o)
{
    char cmd[1024];
    FILE *p;
    size_t n;
    int status;
    int64_t t0 = corio_now();

    memset(o, 0, sizeof(*o));
    snprintf(cmd, sizeof(cmd), "%s/%s", CORIO_EXAMPLES_DIR, cmdline);
    fflush(NULL);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    while ((n = fread(o->text + o->len, 1, sizeof(o->text) - 1 - o->len, p)) > 0)
        o->len += n;
    status = pclose(p);
    o->ns = corio_now() - t0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: status %d; output:\n%s", cmd, status, o->text);
}

#endif
