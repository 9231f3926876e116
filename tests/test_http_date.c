/* tests/test_http_date.c -- HTTP dates (src/http/httpdate.c): what the
 * server writes reads back the same; RFC 9110's example in its three
 * forms; the two-digit year of the RFC 850 form against "now"; and every
 * near miss refused (EINVAL): other spellings, bytes around the date,
 * fields out of range. */
#include <criterion/criterion.h>

#include "corio.h"
#include "http/http_int.h"

#include <errno.h>
#include <string.h>

#define NOW_2026 1780000000 /* 2026-05-28 */

static int64_t parse(const char *s, int64_t now)
{
    int64_t t = -12345;

    cr_assert_eq(corio__http_date_parse(s, now, &t), 0, "%s", s);
    return t;
}

Test(http_date, written_reads_back)
{
    static const int64_t ts[] = {0, 784111777, 951782400 /* 2000-02-29 */,
                                 1577934245, 4102444800 /* 2100-01-01 */,
                                 253402300799 /* 9999-12-31 23:59:59 */, 86399};

    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        char text[30];

        corio__http_date(ts[i], text);
        cr_assert_eq(strlen(text), 29);
        cr_assert_eq(parse(text, NOW_2026), ts[i], "%s", text);
    }
    {
        char text[30];

        corio__http_date(784111777, text);
        cr_assert_str_eq(text, "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}

Test(http_date, the_three_forms)
{
    cr_assert_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW_2026), 784111777);
    cr_assert_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2026), 784111777);
    cr_assert_eq(parse("Sun Nov  6 08:49:37 1994", NOW_2026), 784111777);
    cr_assert_eq(parse("Thu Jan 22 08:49:37 1970", NOW_2026), 21 * 86400 + 31777);
    /* the day name is not checked against the date (robust reading) */
    cr_assert_eq(parse("Mon, 06 Nov 1994 08:49:37 GMT", NOW_2026), 784111777);
    /* leap days, and a leap second */
    cr_assert_eq(parse("Tue, 29 Feb 2000 00:00:00 GMT", NOW_2026), 951782400);
    cr_assert_eq(parse("Sat, 31 Dec 2016 23:59:60 GMT", NOW_2026), 1483228800);
}

Test(http_date, two_digit_years)
{
    /* RFC 9110: more than 50 years in the future is the century before */
    cr_assert_eq(parse("Thursday, 01-Jan-70 00:00:00 GMT", NOW_2026),
                 parse("Tue, 01 Jan 2070 00:00:00 GMT", NOW_2026));
    cr_assert_eq(parse("Friday, 01-Jan-77 00:00:00 GMT", NOW_2026),
                 parse("Sat, 01 Jan 1977 00:00:00 GMT", NOW_2026));
    cr_assert_eq(parse("Monday, 01-Jan-30 00:00:00 GMT", NOW_2026),
                 parse("Tue, 01 Jan 2030 00:00:00 GMT", NOW_2026));
    /* seen from 2060, '94 is 2094 */
    cr_assert_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", 2840140800 /* 2060 */),
                 parse("Sat, 06 Nov 2094 08:49:37 GMT", NOW_2026));
}

Test(http_date, near_misses_refused)
{
    static const char *bad[] = {
        "", "yesterday", "0", "784111777",
        "Sun, 06 Nov 1994 08:49:37",           /* no zone */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",      /* bytes after */
        " Sun, 06 Nov 1994 08:49:37 GMT",      /* bytes before */
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "sun, 06 nov 1994 08:49:37 GMT",       /* case-sensitive names */
        "Sun, 6 Nov 1994 08:49:37 GMT",        /* two digits */
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",       /* out of range */
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 30 Feb 2000 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",         /* RFC 850 needs the long name */
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov 6 08:49:37 1994",             /* asctime: SP SP DIGIT */
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov 06 08:49:37",
        "Sun",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 42;

        errno = 0;
        cr_assert_eq(corio__http_date_parse(bad[i], NOW_2026, &t), -1, "%s", bad[i]);
        cr_assert_eq(errno, EINVAL, "%s", bad[i]);
        cr_assert_eq(t, 42, "%s", bad[i]);
    }
    cr_assert_eq(corio__http_date_parse(NULL, NOW_2026, &(int64_t){0}), -1);
    cr_assert_eq(corio__http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW_2026,
                                        NULL), -1);
}
