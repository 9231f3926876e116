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
#include "corio/task.h"
#include "../base/list.h"
#include "httpdate_int.h"

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

/* ---- Server internals (router.c, request.c, response.c, server.c,
 * static.c) ---------------------------------------------------------------- */

/* Pages of CORIO__HTTP_PAGE bytes (malloc'd) that a server's connections
 * share: a connection that goes idle gives back its read buffer, output
 * buffer and strings, and takes pages again when its next request comes,
 * so an idle keep-alive connection holds almost no memory and a busy one
 * does not allocate (the pool is the loop's: no lock). */
#define CORIO__HTTP_PAGE 4096
struct corio__http_pages {
    void **v;
    size_t n, cap;
};
void *corio__http_page_get(struct corio__http_pages *pool);
void corio__http_page_put(struct corio__http_pages *pool, void *page, size_t size);
void corio__http_pages_free(struct corio__http_pages *pool);

/* Strings of one request: blocks that never move, so pointers given out
 * stay valid until the next request. Blocks are pages of the pool (or
 * bigger ones, malloc'd); _reset keeps one page, _release gives all back. */
struct corio__http_block {
    struct corio__http_block *next;
    size_t size, used;
    char data[];
};
struct corio__http_arena {
    struct corio__http_block *head;
    struct corio__http_pages *pool;
};
void *corio__http_arena_alloc(struct corio__http_arena *a, size_t n);
char *corio__http_arena_strndup(struct corio__http_arena *a, const char *s,
                                size_t n);
void corio__http_arena_reset(struct corio__http_arena *a);
void corio__http_arena_release(struct corio__http_arena *a);

/* Percent-decode n bytes of s into out (room for n + 1), '+' as a space
 * if plus. Returns the length, or -1 for a bad escape or an encoded NUL. */
ssize_t corio__http_unescape(const char *s, size_t n, char *out, bool plus);

/* name=value pairs (a query, a form, cookies), decoded into the arena. */
struct corio__http_pair {
    const char *name, *value;
};
struct corio__http_pairs {
    struct corio__http_pair *v;
    size_t n;
    bool parsed;
};
/* Split s (n bytes) at sep ('&' or ';'), each piece at '=', decoded
 * (plus: '+' is a space; trim: spaces around pieces dropped). Returns 0
 * or -1 (ENOMEM). Pieces that do not decode are skipped. */
int corio__http_pairs_parse(struct corio__http_pairs *out,
                            struct corio__http_arena *a, const char *s,
                            size_t n, char sep, bool plus, bool trim);
const char *corio__http_pairs_next(const struct corio__http_pairs *p,
                                   const char *name, size_t *pos);

#define CORIO__HTTP_MAX_PARAMS 16

struct corio__http_conn;
struct corio__http_multipart;

struct corio_http_request {
    struct corio__http_conn *c;
    const char *method;
    const char *target;             /* raw, as received */
    char *raw_path;                 /* target's path, still encoded */
    char *path;                     /* decoded */
    const char *query_string;       /* raw, after '?' ("" if none) */
    const char *rel;                /* raw path inside the current app */
    struct corio__http_pair params[CORIO__HTTP_MAX_PARAMS];
    size_t nparams;
    struct corio__http_pairs query, cookies, form;
    char *body;                     /* the whole body once read */
    size_t body_len;
    bool body_whole;                /* body holds all of it */
    bool head;                      /* HEAD answered by a GET route */
    struct corio__http_multipart *mp;
};

struct corio_http_response {
    struct corio__http_conn *c;
    int status;
    corio_http_headers *headers;
    char *body;                     /* the body (a buffer kept per connection) */
    size_t body_len, body_cap;
    int file_fd;                    /* or a file's range (static.c), -1 */
    int64_t file_off, file_len;
    corio_http_produce_fn produce;  /* or a producer */
    void (*produce_done)(void *arg);
    void *produce_arg;
    struct corio__http_gzip *gz;    /* a stream being gzipped, or NULL */
    int64_t length;                 /* announced (prepare): -1 chunked */
    int64_t sent;                   /* body bytes sent after prepare */
    bool head_sent, chunked, finished, upgraded, no_body;
};

/* Reset a response for the next request (keeps its buffers). */
void corio__http_response_reset(corio_http_response *res);

/* Free the compressor of a gzipped stream, if any (response.c). */
void corio__http_response_gzip_end(corio_http_response *res);

/* Send the head (and the body, when it is whole) of res. Returns 0 or -1
 * with errno. */
int corio__http_response_send(corio_http_response *res, int64_t deadline);

/* Route a request through app (its middlewares, mounts and routes).
 * Returns what the handler returned. */
int corio__http_app_dispatch(corio_http_app *app, corio_http_request *req,
                             corio_http_response *res);
void corio__http_app_hold(corio_http_app *app, int delta);

/* The static files handler (static.c); arg is its configuration. */
struct corio__http_static;
int corio__http_static_handler(corio_http_request *req, corio_http_response *res,
                               void *arg);
struct corio__http_static *corio__http_static_new(const char *root,
                                                  const corio_http_static_opts *o);
void corio__http_static_free(struct corio__http_static *st);

/* multipart.c: free the state of a request's multipart body. */
void corio__http_multipart_free(struct corio__http_multipart *mp);

/* A connection (server.c): what the request and response reach. */
struct corio__http_conn {
    struct corio_http_server *srv;
    corio_stream *s;
    corio_addr peer;
    struct corio__http_parser p;
    corio_http_headers *hin;
    corio_http_request req;
    corio_http_response res;
    struct corio__http_arena arena;
    char *out;                      /* the responses being built */
    size_t out_len, out_cap;
    int64_t body_deadline;          /* of the next body read */
    int err_status;                 /* a body error to answer (413, 400) */
    bool keep_alive;                /* the request allows another one */
    bool continue_sent;             /* 100 Continue, or no need */
    bool msg_done;                  /* the request's body was all read */
    bool broken;                    /* the connection cannot go on */
    bool idle;                      /* waiting for a request */
    corio_task *task;
    struct corio__list node;        /* in the server's list */
    uint64_t bytes_out;             /* body bytes of this response (log) */
};

/* Append to the connection's output; send it (and wait while the client
 * is slow). 0 or -1 with errno. out_space makes room for n more bytes and
 * returns where they go (the caller writes them and adds to c->out_len),
 * or NULL (ENOMEM). */
int corio__http_out_append(struct corio__http_conn *c, const void *data,
                           size_t n);
char *corio__http_out_space(struct corio__http_conn *c, size_t n);
int corio__http_out_flush(struct corio__http_conn *c, int64_t deadline);

/* True if the server compresses responses. */
bool corio__http_gzip_on(const struct corio__http_conn *c);

/* The server's write timeout as a deadline from now. */
int64_t corio__http_write_deadline(const struct corio__http_conn *c);

/* Read the next piece of the request's body into buf (server.c). */
ssize_t corio__http_body_read(struct corio__http_conn *c, void *buf, size_t n,
                              int64_t deadline);

#endif
