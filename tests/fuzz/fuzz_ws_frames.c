/* tests/fuzz/fuzz_ws_frames.c -- libFuzzer target for the WebSocket
 * framing (src/http/ws_frame.c over wslay): any bytes from a peer, fed in
 * pieces of any size, to a server-side or client-side connection with a
 * small message limit, must give only well-formed messages (text valid
 * UTF-8, no longer than the limit) or a refusal, and never a crash, a
 * leak or undefined behaviour (built with ASan and UBSan).
 *
 * The first input byte picks the side (bit 0), the limit (bits 1-3: 16 to
 * 2048 bytes) and the piece size (bits 4-7); the rest is the peer's bytes.
 * Built in the clang fuzz build (tests/fuzz/CMakeLists.txt, run by
 * tests/fuzz/run). The connection has no stream: what wslay answers (pongs,
 * close frames) is dropped, nothing reaches corio's I/O. */
#include "http/ws_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    corio_ws *ws;
    corio_ws_msg m;
    size_t limit, piece;

    if (size < 1)
        return 0;
    limit = (size_t)16 << ((data[0] >> 1) & 7);
    piece = 1 + (size_t)(data[0] >> 4) * 97;
    ws = corio__ws_new(NULL, false, data[0] & 1, limit);
    if (ws == NULL)
        abort();
    data++;
    size--;
    while (size > 0) {
        size_t n = size < piece ? size : piece;

        if (corio__ws_feed(ws, data, n) == -1)
            break;
        data += n;
        size -= n;
        while (corio__ws_pop(ws, &m)) {
            if (m.len > limit || m.data[m.len] != '\0')
                abort();
            if (m.type == CORIO_WS_TEXT &&
                !corio__ws_utf8_valid((const unsigned char *)m.data, m.len))
                abort();
            if (m.type != CORIO_WS_TEXT && m.type != CORIO_WS_BINARY)
                abort();
        }
    }
    corio__ws_free(ws);
    return 0;
}
