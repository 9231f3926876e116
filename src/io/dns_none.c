/* src/io/dns_none.c -- name resolution where corio is built without c-ares
 * (a cross build): every lookup fails with ENOSYS. */
#include "corio/io.h"

#include <errno.h>

int corio_dns_resolve(const char *host, const char *port, int family,
                  corio_addr *out, size_t max, int64_t deadline)
{
    (void)host, (void)port, (void)family, (void)out, (void)max, (void)deadline;
    errno = ENOSYS;
    return -1;
}

int corio_dns_set_servers(const char *csv)
{
    (void)csv;
    errno = ENOSYS;
    return -1;
}
