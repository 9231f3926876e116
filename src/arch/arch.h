/* src/arch/arch.h -- the context switch: the one piece of corio written per
 * architecture. A context is what a suspended stack needs to run again.
 *
 * switch_x86_64.S and switch_aarch64.S save only what the ABI makes callee-
 * saved (x86_64: rbx rbp r12-r15, MXCSR and the x87 control word; aarch64:
 * x19-x29, lr, d8-d15, FPCR) on the stack being left and keep the stack
 * pointer in the context. switch_ucontext.c is the portable fallback, chosen
 * at configure time (CORIO_ARCH_UCONTEXT) for other machines. */
#ifndef CORIO_ARCH_H
#define CORIO_ARCH_H

#include <stddef.h>

#ifdef CORIO_ARCH_UCONTEXT
#include <ucontext.h>
typedef struct corio__ctx {
    int err;  /* errno while switched out */
    ucontext_t uc;
} corio__ctx;
#else
typedef struct corio__ctx {
    void *sp; /* saved stack pointer; the registers sit on that stack */
} corio__ctx;
#endif

/* Save the running context into from and continue the one saved in to;
 * errno (*errp) is saved with the context and restored with it. When
 * something switches back to from, returns the val that switch passed: so
 * two sides can hand each other a result and still end in a tail call of
 * the switch (no work after it, hence no mispredicted return). */
int corio__arch_switch(corio__ctx *from, corio__ctx *to, int *errp, int val);

/* Set the errno that the switched-out ctx sees when it is resumed. */
void corio__arch_set_errno(corio__ctx *ctx, int err);

/* Prepare ctx so that the first switch to it runs entry(arg) on the stack
 * [lo, lo + size). entry must never return: it ends by switching away. */
void corio__arch_make(corio__ctx *ctx, char *lo, size_t size,
                      void (*entry)(void *), void *arg);

/* The stack pointer where it is called (inlined), for the overflow checks
 * made when a coroutine is left. Elsewhere, the frame address is close. */
static inline char *corio__arch_sp(void)
{
    char *sp;

#if defined(__x86_64__)
    __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#else
    sp = __builtin_frame_address(0);
#endif
    return sp;
}

/* The architecture's name, for diagnostics and benchmarks. */
extern const char corio__arch_name[];

#endif
