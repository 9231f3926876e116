/* tests/fuzz/fuzz_dist_frame.c -- libFuzzer target for the manager's frame
 * decoder (src/dist/wire.c): the frame check (header, length limit, MAC
 * over the sequence number) on raw bytes, and the request decoder on the
 * same bytes read as op | payload, both as they come and sealed with a
 * valid MAC (so the fuzzer reaches the decoder behind the MAC, as an
 * authenticated but hostile client would). Any crash, leak, out-of-bounds
 * read or undefined behaviour is a failure (built with ASan and UBSan).
 *
 *   (tests/fuzz/run builds it in a clang build of its own; by hand:)
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *         tests/fuzz/fuzz_dist_frame.c src/dist/wire.c -lcrypto
 *   ./a.out -max_total_time=20 tests/fuzz/corpus/fuzz_dist_frame */
#include "dist/wire_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME 4096

static struct corio__wire_mac *key(void)
{
    static struct corio__wire_mac *k;
    static const uint8_t raw[32] = {0x42, 1, 2, 3};

    if (k == NULL)
        k = corio__wire_mac_new(raw);
    return k;
}

/* Read every item of a decoded request, as the manager does. */
static void walk(const struct corio__wire_req *r)
{
    struct corio__rd rd = {r->items, r->items_end, false};
    uint32_t len;

    if (r->items == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->op == CORIO__OP_ACK || r->op == CORIO__OP_UNGET ||
            r->op == CORIO__OP_RESULTS)
            (void)corio__rd_u64(&rd);
        if (r->op == CORIO__OP_UNGET)
            (void)corio__rd_u32(&rd);
        if (r->op == CORIO__OP_PUT || r->op == CORIO__OP_UNGET ||
            (r->op == CORIO__OP_ACK && r->flag))
            (void)corio__rd_blob(&rd, &len);
    }
    if (rd.bad || rd.p != rd.end)
        abort();   /* the decoder let through what the executor trips on */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct corio__wire_frame f;
    struct corio__wire_req r;
    uint8_t *frame;
    size_t n;

    /* Raw bytes as a frame: almost always a bad MAC, never a crash. */
    (void)corio__wire_open(key(), 0, data, size, MAX_FRAME, &f);
    if (size < 1 || size - 1 > MAX_FRAME)
        return 0;
    /* op | payload, decoded directly. */
    if (corio__wire_req_decode(data[0], 7, data + 1, size - 1, &r) == 0)
        walk(&r);
    /* The same, sealed properly, through the frame check. */
    n = CORIO__WIRE_HEADER + (size - 1) + CORIO__WIRE_MAC;
    frame = calloc(1, n);
    if (frame == NULL)
        return 0;
    corio__wire_put32(frame, (uint32_t)(size - 1));
    corio__wire_put32(frame + 4, 7);
    frame[8] = data[0];
    memcpy(frame + CORIO__WIRE_HEADER, data + 1, size - 1);
    if (corio__wire_mac_compute(key(), 3, frame, n - CORIO__WIRE_MAC,
                                frame + n - CORIO__WIRE_MAC) == 0 &&
        corio__wire_open(key(), 3, frame, n, MAX_FRAME, &f) == 0) {
        if (f.len != size - 1 || f.op != data[0] || f.rid != 7)
            abort();
        if (corio__wire_req_decode(f.op, f.rid, f.payload, f.len, &r) == 0)
            walk(&r);
    }
    free(frame);
    return 0;
}
