/* src/io/tls_none.c -- TLS where corio is built without OpenSSL (a cross
 * build): contexts cannot be made, so no stream is ever TLS. */
#include "corio/tls.h"
#include "io_int.h"

#include <errno.h>

static corio_tls *none(void)
{
    errno = ENOSYS;
    return NULL;
}

corio_tls *corio_tls_client(const corio_tls_opts *opts)
{
    (void)opts;
    return none();
}

corio_tls *corio_tls_server(const corio_tls_opts *opts)
{
    (void)opts;
    return none();
}

int corio_tls_free(corio_tls *tls)
{
    (void)tls;
    return 0;
}

corio_tls *corio__tls_ref(corio_tls *tls)
{
    return tls;
}

corio_stream *corio_tls_connect(corio_tls *tls, const char *addr,
                                int64_t deadline)
{
    (void)tls, (void)addr, (void)deadline;
    return (corio_stream *)none();
}

int corio_stream_start_tls(corio_stream *s, corio_tls *tls,
                           const char *server_name, int64_t deadline)
{
    (void)s, (void)tls, (void)server_name, (void)deadline;
    errno = ENOSYS;
    return -1;
}

const char *corio_tls_alpn(const corio_stream *s)
{
    (void)s;
    return NULL;
}

const char *corio_tls_server_name(const corio_stream *s)
{
    (void)s;
    return NULL;
}

const char *corio_tls_version(const corio_stream *s)
{
    (void)s;
    return NULL;
}

bool corio__tls_is_server(const corio_tls *tls)
{
    (void)tls;
    return false;
}

const char *corio_tls_error(void)
{
    return "built without OpenSSL";
}
