/* include/corio/error.h -- corio's own error codes, and their names and
 * messages. Part of corio.h.
 *
 * A call that fails returns -1 (or NULL) and sets errno, to a system errno
 * (ECANCELED, ETIMEDOUT, ECONNRESET, ...) where one means what happened, or
 * to one of the codes below where none does: a closed channel is not a
 * broken pipe, and an unknown host is not a missing file. Print either kind
 * with corio_strerror (strerror and perror know only the system's codes:
 * they print "Unknown error 65536"):
 *
 *     if (corio_chan_send(ch, item, -1) == -1)
 *         fprintf(stderr, "send: %s\n", corio_strerror(errno));
 *
 * The codes are positive, like errno, and start at 0x10000: above every
 * system errno (Linux's are below 4096, and the kernel reserves -4095..-1
 * for them), so a switch over errno can mix both kinds. */
#ifndef CORIO_ERROR_H
#define CORIO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CORIO_EXPORT
#define CORIO_EXPORT __attribute__((visibility("default")))
#endif

enum corio_errno {
    /* "object is closed": a channel closed (corio_chan_close), a task
     * group closed (spawn after corio_group_wait), a thread pool being
     * freed, a loop closed (the _threadsafe calls). */
    CORIO_ECLOSED = 0x10000,
    /* "iteration is over": a generator exhausted or closed, an
     * as_completed iterator that has returned every future, a coroutine
     * that has returned (Python's StopIteration). */
    CORIO_EDONE,
    /* "unexpected end of stream": the stream ended before the bytes
     * (corio_stream_readexactly) or the separator (readuntil) came:
     * asyncio's IncompleteReadError. */
    CORIO_EEOF,
    /* "unknown host": the resolver knows no such name, or it has no
     * address of the family asked for (getaddrinfo's EAI_NONAME). */
    CORIO_EUNKNOWNHOST,
};

/* What err means, in words: corio's codes above, the system's via its own
 * table ("Operation canceled"), "Unknown error N" for any other number
 * (negative ones included). Never NULL; thread-safe. The string is
 * constant, except an unknown number's, which stays valid until the
 * calling thread's next call. */
CORIO_EXPORT const char *corio_strerror(int err);

/* The symbolic name of err: "CORIO_ECLOSED", "ECANCELED", "UNKNOWN" for a
 * number that has none. Never NULL; thread-safe; a constant string. */
CORIO_EXPORT const char *corio_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
