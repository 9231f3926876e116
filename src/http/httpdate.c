/* src/http/httpdate.c -- HTTP dates (RFC 9110 5.6.7): written as
 * IMF-fixdate by hand (no strftime: its frame would stay resident on each
 * connection's stack), read in the three forms a recipient must accept,
 * strictly (a date that is not one is ignored by its caller, never
 * guessed). Days to and from the civil calendar are Howard Hinnant's
 * algorithms (proleptic Gregorian, any year). */
#include "httpdate_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static const char days_short[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01: Thu */
static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char *const days_long[] = {"Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday",
                                        "Sunday"};

/* Days since 1970-01-01 of y-m-d. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void corio__http_date(int64_t t, char out[30])
{
    int64_t d = t / 86400, secs = t % 86400, era, doe, yoe, doy, mp, y, m, day;

    if (secs < 0) {
        secs += 86400;
        d--;
    }
    memcpy(out, days_short + ((d % 7 + 7) % 7) * 3, 3);
    /* civil_from_days */
    d += 719468;
    era = (d >= 0 ? d : d - 146096) / 146097;
    doe = d - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + day / 10);
    out[6] = (char)('0' + day % 10);
    out[7] = ' ';
    memcpy(out + 8, months + (m - 1) * 3, 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000 % 10);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + secs / 36000);
    out[18] = (char)('0' + secs / 3600 % 10);
    out[19] = ':';
    out[20] = (char)('0' + secs / 600 % 6);
    out[21] = (char)('0' + secs / 60 % 10);
    out[22] = ':';
    out[23] = (char)('0' + secs % 60 / 10);
    out[24] = (char)('0' + secs % 10);
    memcpy(out + 25, " GMT", 5);
}

/* ---- Parsing ------------------------------------------------------------- */

/* The text s is read through a cursor; each step consumes what it
 * matched or returns false. */
static bool lit(const char **p, const char *w)
{
    size_t n = strlen(w);

    if (strncmp(*p, w, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Exactly n digits. */
static bool num(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

/* A three-letter day name (any of them), or a long one if lng. */
static bool day_name(const char **p, bool lng)
{
    for (int i = 0; i < 7; i++) {
        if (lng ? lit(p, days_long[i]) : strncmp(*p, days_short + 3 * i, 3) == 0) {
            if (!lng)
                *p += 3;
            return true;
        }
    }
    return false;
}

/* A month name: *m 1..12. */
static bool month(const char **p, int *m)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(*p, months + 3 * i, 3) == 0) {
            *p += 3;
            *m = i + 1;
            return true;
        }
    return false;
}

/* "hh:mm:ss" */
static bool time_of_day(const char **p, int *h, int *mi, int *s)
{
    return num(p, 2, h) && lit(p, ":") && num(p, 2, mi) && lit(p, ":") &&
           num(p, 2, s);
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The year of now (seconds since 1970). */
static int64_t year_of(int64_t now)
{
    char text[30];

    corio__http_date(now, text);
    return (text[12] - '0') * 1000 + (text[13] - '0') * 100 +
           (text[14] - '0') * 10 + (text[15] - '0');
}

int corio__http_date_parse(const char *s, int64_t now, int64_t *t)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y = 0, m = 0, d = 0, h = 0, mi = 0, sec = 0;
    bool ok;

    if (s == NULL || t == NULL)
        goto bad;
    if (strlen(s) >= 4 && s[3] == ',') {            /* IMF-fixdate */
        ok = day_name(&p, false) && lit(&p, ", ") && num(&p, 2, &d) &&
             lit(&p, " ") && month(&p, &m) && lit(&p, " ") && num(&p, 4, &y) &&
             lit(&p, " ") && time_of_day(&p, &h, &mi, &sec) && lit(&p, " GMT");
    } else if (strlen(s) >= 4 && s[3] == ' ') {     /* asctime */
        ok = day_name(&p, false) && lit(&p, " ") && month(&p, &m) && lit(&p, " ") &&
             (*p == ' ' ? (p++, num(&p, 1, &d)) : num(&p, 2, &d)) && lit(&p, " ") &&
             time_of_day(&p, &h, &mi, &sec) && lit(&p, " ") && num(&p, 4, &y);
    } else {                                        /* RFC 850 */
        ok = day_name(&p, true) && lit(&p, ", ") && num(&p, 2, &d) &&
             lit(&p, "-") && month(&p, &m) && lit(&p, "-") && num(&p, 2, &y) &&
             lit(&p, " ") && time_of_day(&p, &h, &mi, &sec) && lit(&p, " GMT");
        if (ok) {
            int64_t cur = year_of(now);

            y += (int)(cur - cur % 100);
            if (y > cur + 50)
                y -= 100;
        }
    }
    /* 60 seconds: a leap second (RFC 9110's grammar allows it) */
    if (!ok || *p != '\0' || d < 1 ||
        d > mdays[m - 1] + (m == 2 && leap(y)) || h > 23 || mi > 59 || sec > 60)
        goto bad;
    *t = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}
