/* src/base/error.c -- the names and messages of error codes: corio's own
 * (corio/error.h) from the table below, the system's from the C library.
 * libuv's uv_strerror and uv_err_name, for errno values.
 *
 * Both calls must be thread-safe and never return NULL. strerror is neither
 * guaranteed (glibc writes an unknown number's message into one static
 * buffer), so with glibc (2.32 and later) the system's text comes from
 * strerrordesc_np, which returns constant strings or NULL, and unknown
 * numbers are written into a buffer per thread. */
#define _GNU_SOURCE
#include "corio/error.h"

#include <stdio.h>
#include <string.h>

struct code {
    const char *name;
    const char *text;
};

/* Indexed by err - CORIO_ECLOSED: keep it in the enum's order. */
static const struct code codes[] = {
    {"CORIO_ECLOSED", "object is closed"},
    {"CORIO_EDONE", "iteration is over"},
    {"CORIO_EEOF", "unexpected end of stream"},
    {"CORIO_EUNKNOWNHOST", "unknown host"},
};

_Static_assert(sizeof(codes) / sizeof(codes[0]) ==
                   CORIO_EUNKNOWNHOST - CORIO_ECLOSED + 1,
               "one entry per corio error code");

static const struct code *corio_code(int err)
{
    if (err < CORIO_ECLOSED || err > CORIO_EUNKNOWNHOST)
        return NULL;
    return &codes[err - CORIO_ECLOSED];
}

/* The system's text for err, or NULL if it has none. */
static const char *system_text(int err)
{
#ifdef CORIO_HAVE_STRERRORDESC_NP
    return strerrordesc_np(err);
#else
    /* Elsewhere (musl) strerror returns constant strings, a text for every
     * number. */
    return strerror(err);
#endif
}

const char *corio_strerror(int err)
{
    static _Thread_local char unknown[32];
    const struct code *c = corio_code(err);
    const char *text;

    if (c != NULL)
        return c->text;
    text = system_text(err);
    if (text != NULL)
        return text;
    snprintf(unknown, sizeof(unknown), "Unknown error %d", err);
    return unknown;
}

const char *corio_err_name(int err)
{
    const struct code *c = corio_code(err);
    const char *name = NULL;

    if (c != NULL)
        return c->name;
#ifdef CORIO_HAVE_STRERRORDESC_NP
    name = strerrorname_np(err);
#endif
    return name != NULL ? name : "UNKNOWN";
}
