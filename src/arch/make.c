/* src/arch/make.c -- the first frame of a new context, for the assembly
 * switches. It mirrors the frame layout documented at the top of
 * switch_<arch>.S. */
#include "arch.h"

#include <stdint.h>
#include <string.h>

void corio__arch_boot(void);

#if defined(__x86_64__)
const char corio__arch_name[] = "x86_64";

void corio__arch_make(corio__ctx *ctx, char *lo, size_t size,
                      void (*entry)(void *), void *arg)
{
    /* hi is 16-aligned. After the switch pops the 7 words, rsp = sp + 56
     * must be 16-aligned for corio__arch_boot's call: sp = hi - 72. */
    uintptr_t hi = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(hi - 72);

    sp[-2] = UINT64_C(0x1F80) << 32 | 0x037F; /* MXCSR | x87 CW: defaults */
    sp[-1] = 0;                               /* errno */
    sp[0] = 0;                                /* r15 */
    sp[1] = 0;                                /* r14 */
    sp[2] = (uint64_t)(uintptr_t)arg;         /* r13 */
    sp[3] = (uint64_t)(uintptr_t)entry;       /* r12 */
    sp[4] = 0;                                /* rbx */
    sp[5] = 0;                                /* rbp */
    sp[6] = (uint64_t)(uintptr_t)corio__arch_boot;
    ctx->sp = sp;
}

void corio__arch_set_errno(corio__ctx *ctx, int err)
{
    memcpy((char *)ctx->sp - 8, &err, sizeof(err)); /* the red-zone slot */
}
#elif defined(__aarch64__)
const char corio__arch_name[] = "aarch64";

void corio__arch_make(corio__ctx *ctx, char *lo, size_t size,
                      void (*entry)(void *), void *arg)
{
    uintptr_t hi = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(hi - 176);

    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)entry;            /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;              /* x20 */
    sp[11] = (uint64_t)(uintptr_t)corio__arch_boot; /* x30 */
    ctx->sp = sp;               /* FPCR 0 (defaults), errno 0: sp[20], sp[21] */
}

void corio__arch_set_errno(corio__ctx *ctx, int err)
{
    memcpy((char *)ctx->sp + 168, &err, sizeof(err)); /* low half of sp[21] */
}
#else
#error "no assembly context switch for this architecture: configure with CORIO_ARCH=ucontext"
#endif
