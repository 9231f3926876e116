/* src/arch/switch_ucontext.c -- the portable context switch, on
 * swapcontext(3). Slower (it saves the signal mask with a system call) but
 * runs wherever glibc does; chosen at configure time with
 * -DCORIO_ARCH=ucontext. */
#include "arch.h"

#include <stdint.h>
#include <stdlib.h>

const char corio__arch_name[] = "ucontext";

/* makecontext passes int arguments only: a pointer travels as two halves. */
static void boot(unsigned hi_entry, unsigned lo_entry, unsigned hi_arg,
                 unsigned lo_arg)
{
    uintptr_t e = (uintptr_t)hi_entry << 16 << 16 | lo_entry;
    uintptr_t a = (uintptr_t)hi_arg << 16 << 16 | lo_arg;

    ((void (*)(void *))e)((void *)a);
    abort(); /* entry never returns */
}

void corio__arch_make(corio__ctx *ctx, char *lo, size_t size,
                      void (*entry)(void *), void *arg)
{
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;

    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    ctx->err = 0;
    makecontext(&ctx->uc, (void (*)(void))boot, 4, (unsigned)(e >> 16 >> 16),
                (unsigned)e, (unsigned)(a >> 16 >> 16), (unsigned)a);
}

/* The val crossing the last switch of this thread. */
static __thread int passed;

int corio__arch_switch(corio__ctx *from, corio__ctx *to, int *errp, int val)
{
    from->err = *errp;
    passed = val;
    swapcontext(&from->uc, &to->uc);
    *errp = from->err;
    return passed;
}

void corio__arch_set_errno(corio__ctx *ctx, int err)
{
    ctx->err = err;
}
