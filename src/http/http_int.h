/* src/http/http_int.h -- the http layer's internals: the header list's
 * layout and the llhttp glue (parse.c) that the server and the client
 * share, for requests and for responses.
 *
 * The parser is fed bytes and stops at the events the caller acts on:
 * the end of a message's head (the request line or status line and the
 * headers are then in the parser) and the end of the message. Body bytes
 * are copied, decoded from chunked, to p->body (the caller gives room for
 * as many bytes as it feeds: a body is never longer than its input). */
#ifndef CORIO_HTTP_INT_H
#define CORIO_HTTP_INT_H

#include "corio/http.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Header list ---------------------------------------------------------- */

struct corio__http_field {
    uint32_t name, name_len;    /* offsets into text */
    uint32_t value, value_len;  /* NUL-terminated there */
};

struct corio_http_headers {
    struct corio__http_field *f;
    size_t n, cap;
    char *text;                 /* "name\0value\0" per field */
    size_t used, size;
};

/* The defaults of corio_http_limits filled in. */
void corio__http_limits_fill(corio_http_limits *out, const corio_http_limits *in);

/* True if s (n bytes) is an RFC 9110 token. */
bool corio__http_is_token(const char *s, size_t n);

/* Case-insensitive equality of a (an bytes) and the C string b. */
bool corio__http_ieq(const char *a, size_t an, const char *b);

/* ---- Parser --------------------------------------------------------------- */

enum corio__http_event {
    CORIO__HTTP_MORE,   /* everything fed was taken; feed more */
    CORIO__HTTP_HEAD,   /* the head is complete */
    CORIO__HTTP_DONE,   /* the message is complete */
    CORIO__HTTP_ERROR,  /* invalid: p->status says which answer (400, 413,
                           414, 431, 505), p->reason why */
};

struct corio__http_parser {
    llhttp_t ll;
    corio_http_limits limits;
    corio_http_headers *headers;    /* the head's fields (caller's list) */
    /* request line / status line, NUL-terminated */
    char *line;                     /* method\0target\0 (requests) or
                                       reason\0 (responses) */
    size_t line_len, line_cap;
    size_t method_len, target_len;
    int status;                     /* responses: the status code; after
                                       an error: the answer to give */
    const char *reason;             /* what was wrong (static text) */
    int version;                    /* 10, 11 */
    /* header being parsed: name and value accumulate in cur */
    char *cur;
    size_t cur_len, cur_cap, cur_name_len;
    const char *val_end;            /* where the value's last piece
                                       ended (NULL: no piece yet) */
    const char *feed, *feed_end;    /* the bytes of this feed */
    const char *prev_feed_end;      /* and where the previous one ended */
    bool failed;                    /* a callback set status and reason */
    size_t head_bytes;              /* of the header block so far */
    uint64_t body_bytes;            /* of the body so far */
    int64_t length;                 /* Content-Length, -1: none */
    /* output of a feed */
    char *body;                     /* where body bytes go */
    size_t body_len;                /* how many went there in this feed */
    bool head_done, msg_done, paused;
    bool skip_body;                 /* responses to HEAD: no body */
    bool request;
};

/* Set p up for requests (HTTP_REQUEST) or responses (HTTP_RESPONSE).
 * headers receives the fields of each message. Returns 0 or -1 (ENOMEM). */
int corio__http_parser_init(struct corio__http_parser *p, llhttp_type_t type,
                            const corio_http_limits *limits,
                            corio_http_headers *headers);
void corio__http_parser_free(struct corio__http_parser *p);

/* Get ready for the next message on the same connection. */
void corio__http_parser_next(struct corio__http_parser *p);

/* Feed n bytes of data; *used receives how many were taken (all of them
 * for MORE, up to the end of the head or message otherwise). Body bytes
 * go to p->body (room for n bytes), their count to p->body_len. */
enum corio__http_event corio__http_parse(struct corio__http_parser *p,
                                         const char *data, size_t n,
                                         size_t *used);

/* The peer closed the connection: a response read to its end is DONE
 * there, anything else mid-message is an ERROR. */
enum corio__http_event corio__http_parse_eof(struct corio__http_parser *p);

/* The method, target (requests) and reason (responses) of the head. */
static inline const char *corio__http_method(const struct corio__http_parser *p)
{
    return p->line;
}
static inline const char *corio__http_target(const struct corio__http_parser *p)
{
    return p->line + p->method_len + 1;
}

/* True if the message's body is chunked; its Content-Length or -1. */
bool corio__http_chunked(const struct corio__http_parser *p);
int64_t corio__http_content_length(const struct corio__http_parser *p);

/* True if the connection may carry another message after this one. */
bool corio__http_keep_alive(const struct corio__http_parser *p);

/* True if the head asks for a protocol upgrade (Connection: upgrade with
 * an Upgrade header), or is CONNECT. */
bool corio__http_upgrade(const struct corio__http_parser *p);

#endif
