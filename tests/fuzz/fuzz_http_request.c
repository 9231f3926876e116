/* tests/fuzz/fuzz_http_request.c -- libFuzzer target: the request parser
 * (llhttp in strict mode and corio's checks, src/http/parse.c) fed the
 * input as pipelined requests, split at a point the input chooses, with
 * small limits; every head's fields are looked up; nothing may crash, read
 * out of bounds, leak, or write more body bytes than it was fed. The
 * same input is parsed as responses too (the client's side). */
#include "http/http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void run(llhttp_type_t type, const uint8_t *data, size_t size)
{
    corio_http_limits lim = {.request_line = 256, .header_bytes = 1024,
                             .header_count = 16, .body = 4096};
    corio_http_headers *h = corio_http_headers_new();
    struct corio__http_parser p;
    size_t split = size ? data[0] % (size + 1) : 0, off = 0;
    char *body = malloc(size + 1);

    if (h == NULL || body == NULL || corio__http_parser_init(&p, type, &lim, h) == -1)
        abort();
    p.skip_body = size > 1 && (data[1] & 1);
    while (off < size) {
        size_t end = off < split ? split : size, used = 0;
        enum corio__http_event ev;

        p.body = body;
        ev = corio__http_parse(&p, (const char *)data + off, end - off, &used);
        if (p.body_len > end - off)
            abort(); /* more body than input */
        if (ev == CORIO__HTTP_ERROR)
            break;
        if (ev == CORIO__HTTP_HEAD || ev == CORIO__HTTP_DONE) {
            (void)corio_http_headers_get(h, "host");
            (void)corio_http_headers_has_token(h, "connection", "close");
            (void)corio__http_keep_alive(&p);
            if (used == 0 && ev == CORIO__HTTP_DONE && end - off > 0)
                break; /* an upgrade: the rest is another protocol */
        }
        off += used;
        if (ev == CORIO__HTTP_MORE && off < split)
            continue;
    }
    if (type == HTTP_RESPONSE)
        (void)corio__http_parse_eof(&p);
    corio__http_parser_free(&p);
    corio_http_headers_free(h);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(HTTP_REQUEST, data, size);
    run(HTTP_RESPONSE, data, size);
    return 0;
}
