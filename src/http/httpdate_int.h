/* src/http/httpdate_int.h -- HTTP dates (RFC 9110 5.6.7): the
 * IMF-fixdate the server writes (Date, Last-Modified), and the parser of
 * the three forms a recipient must accept (If-Modified-Since, If-Range). */
#ifndef CORIO_HTTPDATE_INT_H
#define CORIO_HTTPDATE_INT_H

#include <stdint.h>

/* RFC 9110's date of t (seconds since 1970): 29 characters and a NUL,
 * "Sun, 06 Nov 1994 08:49:37 GMT". */
void corio__http_date(int64_t t, char out[30]);

/* Parse the whole of s as an HTTP-date in one of its three forms:
 *     Sun, 06 Nov 1994 08:49:37 GMT     IMF-fixdate
 *     Sunday, 06-Nov-94 08:49:37 GMT    obsolete RFC 850 form
 *     Sun Nov  6 08:49:37 1994          obsolete asctime() form
 * (day and month names as written, case-sensitive; the day name is not
 * checked against the date; a two-digit year that would be more than 50
 * years after now's year is taken in the century before). Returns 0 and
 * *t (seconds since 1970, UTC), or -1 with EINVAL: anything else,
 * leading or trailing bytes, a field out of range (Feb 30, 24:00:00). */
int corio__http_date_parse(const char *s, int64_t now, int64_t *t);

#endif
