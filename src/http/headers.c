/* src/http/headers.c -- the header list: fields in the order they came,
 * looked up ignoring the case of the name, repeated fields kept. One
 * array of offsets and one text buffer, both kept for reuse by _clear,
 * so a connection's list stops allocating after its first requests. */
#include "http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits, letters. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

bool corio__http_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)s[i]])
            return false;
    return true;
}

bool corio__http_ieq(const char *a, size_t an, const char *b)
{
    /* ASCII only (header names are tokens), inline: most names differ in
     * their first bytes, and this runs for every header looked up. */
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (x != y && ((x | 0x20) != (y | 0x20) ||
                       (unsigned)((x | 0x20) - 'a') > 'z' - 'a'))
            return false;
    }
    return b[an] == '\0';
}

corio_http_headers *corio_http_headers_new(void)
{
    return calloc(1, sizeof(corio_http_headers));
}

int corio_http_headers_free(corio_http_headers *h)
{
    if (h == NULL)
        return 0;
    free(h->f);
    free(h->text);
    free(h);
    return 0;
}

void corio_http_headers_clear(corio_http_headers *h)
{
    h->n = 0;
    h->used = 0;
}

/* Room for one more field of `bytes` text bytes. */
static int reserve(corio_http_headers *h, size_t bytes)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        void *f = realloc(h->f, cap * sizeof(*h->f));

        if (f == NULL)
            return -1;
        h->f = f;
        h->cap = cap;
    }
    if (bytes > UINT32_MAX - h->used) {
        errno = EMSGSIZE;
        return -1;
    }
    if (h->used + bytes > h->size) {
        size_t size = h->size ? h->size : 512;
        char *t;

        while (size < h->used + bytes)
            size *= 2;
        t = realloc(h->text, size);
        if (t == NULL)
            return -1;
        h->text = t;
        h->size = size;
    }
    return 0;
}

static bool value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return false;
    return true;
}

int corio_http_headers_add_n(corio_http_headers *h, const char *name,
                             size_t name_len, const char *value,
                             size_t value_len)
{
    struct corio__http_field *f;

    if (h == NULL || name == NULL || (value == NULL && value_len > 0) ||
        !corio__http_is_token(name, name_len) || !value_ok(value, value_len)) {
        errno = EINVAL;
        return -1;
    }
    while (value_len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 &&
           (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    if (reserve(h, name_len + value_len + 2) == -1)
        return -1;
    f = &h->f[h->n++];
    f->name = (uint32_t)h->used;
    f->name_len = (uint32_t)name_len;
    memcpy(h->text + h->used, name, name_len);
    h->used += name_len;
    h->text[h->used++] = '\0';
    f->value = (uint32_t)h->used;
    f->value_len = (uint32_t)value_len;
    if (value_len > 0)
        memcpy(h->text + h->used, value, value_len);
    h->used += value_len;
    h->text[h->used++] = '\0';
    return 0;
}

int corio_http_headers_add(corio_http_headers *h, const char *name,
                           const char *value)
{
    if (name == NULL || value == NULL) {
        errno = EINVAL;
        return -1;
    }
    return corio_http_headers_add_n(h, name, strlen(name), value, strlen(value));
}

static bool is_name(const corio_http_headers *h, size_t i, const char *name)
{
    const struct corio__http_field *f = &h->f[i];

    return corio__http_ieq(h->text + f->name, f->name_len, name);
}

size_t corio_http_headers_remove(corio_http_headers *h, const char *name)
{
    size_t kept = 0, n;

    if (h == NULL || name == NULL)
        return 0;
    n = h->n;
    /* the text of removed fields stays until _clear: lists are short-lived */
    for (size_t i = 0; i < n; i++)
        if (!is_name(h, i, name))
            h->f[kept++] = h->f[i];
    h->n = kept;
    return n - kept;
}

int corio_http_headers_set(corio_http_headers *h, const char *name,
                           const char *value)
{
    if (h == NULL || name == NULL || value == NULL ||
        !corio__http_is_token(name, strlen(name)) ||
        !value_ok(value, strlen(value))) {
        errno = EINVAL;
        return -1;
    }
    corio_http_headers_remove(h, name);
    return corio_http_headers_add(h, name, value);
}

const char *corio_http_headers_next(const corio_http_headers *h,
                                    const char *name, size_t *pos)
{
    if (h == NULL || name == NULL || pos == NULL)
        return NULL;
    for (size_t i = *pos; i < h->n; i++)
        if (is_name(h, i, name)) {
            *pos = i + 1;
            return h->text + h->f[i].value;
        }
    *pos = h->n;
    return NULL;
}

const char *corio_http_headers_get(const corio_http_headers *h,
                                   const char *name)
{
    size_t pos = 0;
    const char *v = corio_http_headers_next(h, name, &pos);

    if (v == NULL)
        errno = ENOENT;
    return v;
}

/* True if the comma-separated list s holds token (case ignored). */
static bool list_has(const char *s, const char *token, size_t tlen)
{
    while (*s != '\0') {
        size_t n;

        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        n = strcspn(s, ",");
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == tlen && strncasecmp(s, token, n) == 0)
            return true;
        s += n;
        while (*s != '\0' && *s != ',')
            s++;
    }
    return false;
}

bool corio_http_headers_has_token(const corio_http_headers *h,
                                  const char *name, const char *token)
{
    size_t pos = 0, tlen;
    const char *v;

    if (token == NULL)
        return false;
    tlen = strlen(token);
    while ((v = corio_http_headers_next(h, name, &pos)) != NULL)
        if (list_has(v, token, tlen))
            return true;
    return false;
}

size_t corio_http_headers_count(const corio_http_headers *h)
{
    return h ? h->n : 0;
}

int corio_http_headers_at(const corio_http_headers *h, size_t i,
                          const char **name, const char **value)
{
    if (h == NULL || i >= h->n) {
        errno = EINVAL;
        return -1;
    }
    if (name)
        *name = h->text + h->f[i].name;
    if (value)
        *value = h->text + h->f[i].value;
    return 0;
}
