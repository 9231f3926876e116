/* src/http/request.c -- what a handler reads of a request: its line, the
 * path parameters, the query, headers and cookies (parsed when first
 * asked for, into the request's arena), the body whole or streamed, JSON
 * (jansson: see docs/http.md for why) and url-encoded forms. */
#include "http_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Pages and the arena ------------------------------------------------- */

#define POOL_MAX 1024 /* pages kept: 4 MiB */

void *corio__http_page_get(struct corio__http_pages *pool)
{
    if (pool != NULL && pool->n > 0)
        return pool->v[--pool->n];
    return malloc(CORIO__HTTP_PAGE);
}

void corio__http_page_put(struct corio__http_pages *pool, void *page, size_t size)
{
    if (page == NULL)
        return;
    if (pool != NULL && size == CORIO__HTTP_PAGE && pool->n < POOL_MAX) {
        if (pool->n == pool->cap) {
            size_t cap = pool->cap ? pool->cap * 2 : 64;
            void **v = realloc(pool->v, cap * sizeof(*v));

            if (v == NULL) {
                free(page);
                return;
            }
            pool->v = v;
            pool->cap = cap;
        }
        pool->v[pool->n++] = page;
        return;
    }
    free(page);
}

void corio__http_pages_free(struct corio__http_pages *pool)
{
    while (pool->n > 0)
        free(pool->v[--pool->n]);
    free(pool->v);
    pool->v = NULL;
    pool->cap = 0;
}

#define BLOCK_ROOM (CORIO__HTTP_PAGE - sizeof(struct corio__http_block))

void *corio__http_arena_alloc(struct corio__http_arena *a, size_t n)
{
    struct corio__http_block *b = a->head;
    size_t need = (n + 7) & ~(size_t)7;

    if (need < n) {
        errno = ENOMEM;
        return NULL;
    }
    if (b == NULL || b->size - b->used < need) {
        if (need <= BLOCK_ROOM) {
            b = corio__http_page_get(a->pool);
            if (b == NULL)
                return NULL;
            b->size = BLOCK_ROOM;
        } else {
            b = malloc(sizeof(*b) + need);
            if (b == NULL)
                return NULL;
            b->size = need;
        }
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    b->used += need;
    return b->data + b->used - need;
}

char *corio__http_arena_strndup(struct corio__http_arena *a, const char *s,
                                size_t n)
{
    char *p = corio__http_arena_alloc(a, n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void block_put(struct corio__http_arena *a, struct corio__http_block *b)
{
    corio__http_page_put(a->pool, b, sizeof(*b) + b->size);
}

void corio__http_arena_reset(struct corio__http_arena *a)
{
    struct corio__http_block *b = a->head, *keep = NULL;

    /* keep one page-sized block for the next request */
    while (b != NULL) {
        struct corio__http_block *next = b->next;

        if (keep == NULL && b->size == BLOCK_ROOM)
            keep = b;
        else
            block_put(a, b);
        b = next;
    }
    if (keep != NULL) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
}

void corio__http_arena_release(struct corio__http_arena *a)
{
    corio__http_arena_reset(a);
    if (a->head != NULL)
        block_put(a, a->head);
    a->head = NULL;
}

/* ---- Decoding ------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t corio__http_unescape(const char *s, size_t n, char *out, bool plus)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

int corio__http_pairs_parse(struct corio__http_pairs *out,
                            struct corio__http_arena *a, const char *s,
                            size_t n, char sep, bool plus, bool trim)
{
    size_t count = 1, k = 0;
    const char *end = s + n;

    out->parsed = true;
    out->n = 0;
    for (size_t i = 0; i < n; i++)
        count += s[i] == sep;
    out->v = corio__http_arena_alloc(a, count * sizeof(*out->v));
    if (out->v == NULL)
        return -1;
    while (s < end) {
        const char *piece_end = memchr(s, sep, (size_t)(end - s));
        const char *eq;
        size_t len, nlen;
        char *name, *value;

        if (piece_end == NULL)
            piece_end = end;
        len = (size_t)(piece_end - s);
        while (trim && len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (trim && len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        eq = memchr(s, '=', len);
        nlen = eq ? (size_t)(eq - s) : len;
        if (len > 0) {
            size_t vlen = eq ? len - nlen - 1 : 0;

            name = corio__http_arena_alloc(a, nlen + 1);
            value = corio__http_arena_alloc(a, vlen + 1);
            if (name == NULL || value == NULL)
                return -1;
            if (corio__http_unescape(s, nlen, name, plus) >= 0 &&
                corio__http_unescape(eq ? eq + 1 : "", vlen, value, plus) >= 0) {
                out->v[k].name = name;
                out->v[k].value = value;
                k++;
            }
        }
        s = piece_end + 1;
    }
    out->n = k;
    return 0;
}

const char *corio__http_pairs_next(const struct corio__http_pairs *p,
                                   const char *name, size_t *pos)
{
    for (size_t i = *pos; i < p->n; i++)
        if (strcmp(p->v[i].name, name) == 0) {
            *pos = i + 1;
            return p->v[i].value;
        }
    *pos = p->n;
    return NULL;
}

/* ---- The request line and headers --------------------------------------- */

const char *corio_http_request_method(const corio_http_request *req)
{
    return req->method;
}

const char *corio_http_request_target(const corio_http_request *req)
{
    return req->target;
}

const char *corio_http_request_path(const corio_http_request *req)
{
    return req->path;
}

const char *corio_http_request_query_string(const corio_http_request *req)
{
    return req->query_string;
}

int corio_http_request_version(const corio_http_request *req)
{
    return req->c->p.version;
}

const char *corio_http_request_param(const corio_http_request *req,
                                     const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

const char *corio_http_request_query_next(corio_http_request *req,
                                          const char *name, size_t *pos)
{
    if (name == NULL || pos == NULL)
        return NULL;
    if (!req->query.parsed &&
        corio__http_pairs_parse(&req->query, &req->c->arena, req->query_string,
                                strlen(req->query_string), '&', true,
                                false) == -1)
        return NULL;
    return corio__http_pairs_next(&req->query, name, pos);
}

const char *corio_http_request_query(corio_http_request *req, const char *name)
{
    size_t pos = 0;

    return corio_http_request_query_next(req, name, &pos);
}

const char *corio_http_request_header(const corio_http_request *req,
                                      const char *name)
{
    return corio_http_headers_get(req->c->hin, name);
}

const corio_http_headers *corio_http_request_headers(const corio_http_request *req)
{
    return req->c->hin;
}

const char *corio_http_request_cookie(corio_http_request *req, const char *name)
{
    size_t pos = 0;

    if (name == NULL)
        return NULL;
    if (!req->cookies.parsed) {
        /* every Cookie field, as one list ("a=1; b=2") */
        size_t hpos = 0;
        const char *v;

        req->cookies.parsed = true;
        while ((v = corio_http_headers_next(req->c->hin, "Cookie", &hpos))) {
            struct corio__http_pairs more;
            struct corio__http_pair *all;

            if (corio__http_pairs_parse(&more, &req->c->arena, v, strlen(v),
                                        ';', false, true) == -1)
                return NULL;
            all = corio__http_arena_alloc(&req->c->arena,
                                          (req->cookies.n + more.n) *
                                              sizeof(*all) + 1);
            if (all == NULL)
                return NULL;
            if (req->cookies.n)
                memcpy(all, req->cookies.v, req->cookies.n * sizeof(*all));
            if (more.n)
                memcpy(all + req->cookies.n, more.v, more.n * sizeof(*all));
            req->cookies.v = all;
            req->cookies.n += more.n;
        }
    }
    return corio__http_pairs_next(&req->cookies, name, &pos);
}

const corio_addr *corio_http_request_remote(const corio_http_request *req)
{
    return &req->c->peer;
}

int64_t corio_http_request_content_length(const corio_http_request *req)
{
    return corio__http_content_length(&req->c->p);
}

/* ---- The body ------------------------------------------------------------ */

ssize_t corio_http_request_read(corio_http_request *req, void *buf, size_t n,
                                int64_t deadline)
{
    if (req == NULL || (buf == NULL && n > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (req->body_whole) { /* read whole before: give it again */
        errno = EALREADY;
        return -1;
    }
    return corio__http_body_read(req->c, buf, n, deadline);
}

const char *corio_http_request_body(corio_http_request *req, size_t *len,
                                    int64_t deadline)
{
    size_t cap, limit;

    if (req == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!req->body_whole) {
        int64_t cl = corio__http_content_length(&req->c->p);

        limit = req->c->p.limits.body;
        cap = cl >= 0 ? (size_t)cl + 1 : 4096;
        for (;;) {
            ssize_t got;

            if (req->body == NULL || req->body_len + 1 >= cap) {
                char *b;

                if (req->body != NULL)
                    cap *= 2;
                /* room for a byte over the limit: the parser refuses it */
                if (cap > limit + 2)
                    cap = limit + 2;
                b = corio__http_arena_alloc(&req->c->arena, cap);
                if (b == NULL)
                    return NULL;
                if (req->body_len)
                    memcpy(b, req->body, req->body_len);
                req->body = b;
            }
            got = corio__http_body_read(req->c, req->body + req->body_len,
                                        cap - 1 - req->body_len, deadline);
            if (got == -1)
                return NULL;
            if (got == 0)
                break;
            req->body_len += (size_t)got;
        }
        if (req->body == NULL) {
            req->body = corio__http_arena_alloc(&req->c->arena, 1);
            if (req->body == NULL)
                return NULL;
        }
        req->body[req->body_len] = '\0';
        req->body_whole = true;
    }
    if (len)
        *len = req->body_len;
    return req->body;
}

struct json_t *corio_http_request_json(corio_http_request *req, int64_t deadline)
{
    size_t len;
    const char *body = corio_http_request_body(req, &len, deadline);
    json_t *j;

    if (body == NULL)
        return NULL;
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL)
        errno = EBADMSG;
    return j;
}

const char *corio_http_request_form(corio_http_request *req, const char *name,
                                    int64_t deadline)
{
    size_t pos = 0, len;
    const char *v;

    if (req == NULL || name == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!req->form.parsed) {
        const char *ct = corio_http_headers_get(req->c->hin, "Content-Type");
        const char *body;

        if (ct == NULL ||
            strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
            (ct[33] != '\0' && ct[33] != ';' && ct[33] != ' ')) {
            errno = EBADMSG;
            return NULL;
        }
        body = corio_http_request_body(req, &len, deadline);
        if (body == NULL ||
            corio__http_pairs_parse(&req->form, &req->c->arena, body, len, '&',
                                    true, false) == -1)
            return NULL;
    }
    v = corio__http_pairs_next(&req->form, name, &pos);
    if (v == NULL)
        errno = 0;
    return v;
}
