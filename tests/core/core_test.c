/* tests/core/core_test.c -- the coroutine core in plain C, no Criterion: it
 * is cross-built for aarch64 and run under qemu-user, and also run natively
 * and on the ucontext switch. It checks what every context switch must get
 * right: resume/yield order, results and status, errno and floating-point
 * control per coroutine, callee-saved registers, generators, both stack
 * modes and many coroutines at once.
 *
 * Prints "core_test: N checks passed" and exits 0, or prints the first
 * failing check and exits 1. */
#include "corio.h"

#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static int checks;

#define CHECK(cond)                                                          \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            fprintf(stderr, "core_test: FAILED %s:%d: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* ---- resume, yield, result, status, errno ------------------------------ */

static char order[16];
static int norder;

static void *stepper(void *arg)
{
    for (int i = 0; i < 3; i++) {
        order[norder++] = (char)('a' + i);
        errno = 100 + i;                  /* errno belongs to this coroutine */
        CHECK(corio_coro_yield() == 0);
        CHECK(errno == 100 + i);
    }
    return arg;
}

static void test_resume_yield(int mode)
{
    corio_coro_attr attr = {.stack_mode = mode, .name = "stepper"};
    corio_coro *co = corio_coro_new(stepper, &attr, &attr);

    norder = 0;
    CHECK(co != NULL && corio_coro_id(co) > 0);
    CHECK(corio_coro_status(co) == CORIO_CORO_SUSPENDED);
    for (int i = 0; i < 4; i++) {
        order[norder++] = (char)('0' + i);
        errno = 7;
        CHECK(corio_coro_resume(co) == 0);
        CHECK(errno == 7);
        CHECK(corio_coro_self() == NULL);
    }
    order[norder] = 0;
    CHECK(norder == 7 && order[1] == 'a' && order[3] == 'b' && order[6] == '3');
    CHECK(corio_coro_status(co) == CORIO_CORO_DEAD);
    CHECK(corio_coro_result(co) == &attr);
    CHECK(corio_coro_resume(co) == -1 && errno == CORIO_EDONE);
    CHECK(corio_coro_yield() == -1 && errno == EPERM);
    CHECK(corio_coro_free(co) == 0);
}

/* ---- floating-point control -------------------------------------------- */

/* fesetround/fegetround without libm: the FE_ values are the hardware's
 * rounding-control bits on x86_64 (x87 CW, and MXCSR << 3) and aarch64. */
static void set_round(int mode)
{
#if defined(__x86_64__)
    unsigned short cw;
    unsigned csr;

    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    cw = (unsigned short)((cw & ~0xC00u) | (unsigned)mode);
    csr = (csr & ~0x6000u) | (unsigned)mode << 3;
    __asm__ volatile("fldcw %0" : : "m"(cw));
    __asm__ volatile("ldmxcsr %0" : : "m"(csr));
#elif defined(__aarch64__)
    unsigned long fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~0xC00000ul) | (unsigned long)mode;
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
#else
    fesetround(mode);
#endif
}

static int get_round(void)
{
#if defined(__x86_64__)
    unsigned short cw;
    unsigned csr;

    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    return (cw & 0xC00) == (csr >> 3 & 0xC00) ? cw & 0xC00 : -1;
#elif defined(__aarch64__)
    unsigned long fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)(fpcr & 0xC00000ul);
#else
    return fegetround();
#endif
}

static volatile double one = 1.0, three = 3.0;

static void *round_up(void *arg)
{
    double nearest = *(double *)arg;

    set_round(FE_UPWARD);
    CHECK(corio_coro_yield() == 0);
    CHECK(get_round() == FE_UPWARD);
    return (void *)(intptr_t)(one / three > nearest);
}

static void test_fp(void)
{
    double nearest = one / three;
    corio_coro *co = corio_coro_new(round_up, &nearest, NULL);

    CHECK(co != NULL && get_round() == FE_TONEAREST);
    CHECK(corio_coro_resume(co) == 0);
    CHECK(get_round() == FE_TONEAREST);       /* did not leak to the thread */
    CHECK(one / three == nearest);
    set_round(FE_DOWNWARD);                   /* nor the other way round */
    CHECK(corio_coro_resume(co) == 0);
    CHECK(get_round() == FE_DOWNWARD);
    set_round(FE_TONEAREST);
    /* 1/3 rounded up in there (valgrind's SSE always rounds to nearest). */
    CHECK(corio_coro_result(co) == (void *)1 || RUNNING_ON_VALGRIND);
    CHECK(corio_coro_free(co) == 0);
}

/* ---- callee-saved registers -------------------------------------------- */

/* probe_regs(fn, seed) sets every callee-saved register to seed + k, calls
 * fn, and returns a mask of the registers that did not come back intact:
 * bit 0-5 rbx rbp r12-r15 on x86_64; bits 0-10 x19-x29 and 11-18 d8-d15 on
 * aarch64. fn resumes or yields, so a switch that loses a register shows up
 * on one side or the other, whatever the compiler keeps in registers. */
uint64_t probe_regs(void (*fn)(void), uint64_t seed);

#if defined(__x86_64__)
#define PROBE_CHECK(reg, k, bit)                                             \
    "leaq " #k "(%rsi), %rcx\n\tcmpq %rcx, %" #reg "\n\tsetne %dl\n\t"       \
    "movzbl %dl, %edx\n\tshlq $" #bit ", %rdx\n\torq %rdx, %rax\n\t"
__asm__(".pushsection .text\n\t.globl probe_regs\n\t.hidden probe_regs\n\t"
        ".type probe_regs, @function\n"
        "probe_regs:\n\t"
        "pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\t"
        "pushq %r14\n\tpushq %r15\n\tpushq %rsi\n\t" /* rsp 16-aligned */
        "leaq 1(%rsi), %rbx\n\tleaq 2(%rsi), %rbp\n\tleaq 3(%rsi), %r12\n\t"
        "leaq 4(%rsi), %r13\n\tleaq 5(%rsi), %r14\n\tleaq 6(%rsi), %r15\n\t"
        "callq *%rdi\n\t"
        "movq (%rsp), %rsi\n\txorl %eax, %eax\n\t"
        PROBE_CHECK(rbx, 1, 0) PROBE_CHECK(rbp, 2, 1) PROBE_CHECK(r12, 3, 2)
        PROBE_CHECK(r13, 4, 3) PROBE_CHECK(r14, 5, 4) PROBE_CHECK(r15, 6, 5)
        "popq %rsi\n\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\t"
        "popq %rbx\n\tpopq %rbp\n\tret\n\t"
        ".size probe_regs, .-probe_regs\n\t.popsection");
#elif defined(__aarch64__)
#define PROBE_X(reg, k, bit)                                                 \
    "add x2, x1, #" #k "\n\tcmp " #reg ", x2\n\tcset x3, ne\n\t"             \
    "orr x0, x0, x3, lsl #" #bit "\n\t"
#define PROBE_D(reg, k, bit)                                                 \
    "fmov x4, " #reg "\n\tadd x2, x1, #" #k "\n\tcmp x4, x2\n\t"             \
    "cset x3, ne\n\torr x0, x0, x3, lsl #" #bit "\n\t"
__asm__(".pushsection .text\n\t.globl probe_regs\n\t.hidden probe_regs\n\t"
        ".type probe_regs, %function\n"
        "probe_regs:\n\t"
        "stp x29, x30, [sp, #-176]!\n\t"
        "stp x19, x20, [sp, #16]\n\tstp x21, x22, [sp, #32]\n\t"
        "stp x23, x24, [sp, #48]\n\tstp x25, x26, [sp, #64]\n\t"
        "stp x27, x28, [sp, #80]\n\tstp d8, d9, [sp, #96]\n\t"
        "stp d10, d11, [sp, #112]\n\tstp d12, d13, [sp, #128]\n\t"
        "stp d14, d15, [sp, #144]\n\tstr x1, [sp, #160]\n\t"
        "add x19, x1, #1\n\tadd x20, x1, #2\n\tadd x21, x1, #3\n\t"
        "add x22, x1, #4\n\tadd x23, x1, #5\n\tadd x24, x1, #6\n\t"
        "add x25, x1, #7\n\tadd x26, x1, #8\n\tadd x27, x1, #9\n\t"
        "add x28, x1, #10\n\tadd x29, x1, #11\n\t"
        "fmov d8, x19\n\tfmov d9, x20\n\tfmov d10, x21\n\tfmov d11, x22\n\t"
        "fmov d12, x23\n\tfmov d13, x24\n\tfmov d14, x25\n\tfmov d15, x26\n\t"
        "blr x0\n\t"
        "ldr x1, [sp, #160]\n\tmov x0, #0\n\t"
        PROBE_X(x19, 1, 0) PROBE_X(x20, 2, 1) PROBE_X(x21, 3, 2)
        PROBE_X(x22, 4, 3) PROBE_X(x23, 5, 4) PROBE_X(x24, 6, 5)
        PROBE_X(x25, 7, 6) PROBE_X(x26, 8, 7) PROBE_X(x27, 9, 8)
        PROBE_X(x28, 10, 9) PROBE_X(x29, 11, 10)
        PROBE_D(d8, 1, 11) PROBE_D(d9, 2, 12) PROBE_D(d10, 3, 13)
        PROBE_D(d11, 4, 14) PROBE_D(d12, 5, 15) PROBE_D(d13, 6, 16)
        PROBE_D(d14, 7, 17) PROBE_D(d15, 8, 18)
        "ldp x19, x20, [sp, #16]\n\tldp x21, x22, [sp, #32]\n\t"
        "ldp x23, x24, [sp, #48]\n\tldp x25, x26, [sp, #64]\n\t"
        "ldp x27, x28, [sp, #80]\n\tldp d8, d9, [sp, #96]\n\t"
        "ldp d10, d11, [sp, #112]\n\tldp d12, d13, [sp, #128]\n\t"
        "ldp d14, d15, [sp, #144]\n\tldp x29, x30, [sp], #176\n\tret\n\t"
        ".size probe_regs, .-probe_regs\n\t.popsection");
#else
uint64_t probe_regs(void (*fn)(void), uint64_t seed)
{
    (void)seed;
    fn();
    return 0;
}
#endif

static corio_coro *probe_co;

static void probe_resume(void)
{
    corio_coro_resume(probe_co);
}

static void probe_yield(void)
{
    corio_coro_yield();
}

/* Both sides set every register before each switch and check it after. */
static void *probe_body(void *arg)
{
    uint64_t mask = 0;

    for (uint64_t i = 0; i < 100; i++)
        mask |= probe_regs(probe_yield, 0xB0B0000000 + i * 64);
    return (void *)(uintptr_t)mask;
}

static void test_registers(int mode)
{
    corio_coro_attr attr = {.stack_mode = mode};
    uint64_t mask = 0;

    probe_co = corio_coro_new(probe_body, NULL, &attr);
    CHECK(probe_co != NULL);
    for (uint64_t i = 0; i <= 100; i++)
        mask |= probe_regs(probe_resume, 0xA0A0000000 + i * 64);
    CHECK(mask == 0);                                   /* the resumer's */
    CHECK(corio_coro_status(probe_co) == CORIO_CORO_DEAD);
    CHECK(corio_coro_result(probe_co) == NULL);         /* the coroutine's */
    CHECK(corio_coro_free(probe_co) == 0);
}

/* ---- generators -------------------------------------------------------- */

static int gen_cleaned;

/* Yields 0, 1, 2, ... adding whatever is sent; cleans up when closed. */
static void *counter(corio_gen *g, void *arg)
{
    intptr_t n = 0;
    void *in;

    while (corio_gen_yield(g, CORIO_INT(n), &in) == 0)
        n += 1 + CORIO_TO_INT(in);
    gen_cleaned = errno == ECANCELED;
    return arg;
}

static void test_generators(void)
{
    corio_gen *g = corio_gen_new(counter, NULL, NULL);
    void *out = NULL;

    CHECK(g != NULL && !corio_gen_is_done(g));
    CHECK(corio_gen_send(g, CORIO_INT(5), &out) == -1 && errno == EINVAL);
    CHECK(corio_gen_next(g, &out) == 1 && CORIO_TO_INT(out) == 0);
    CHECK(corio_gen_next(g, &out) == 1 && CORIO_TO_INT(out) == 1);
    CHECK(corio_gen_send(g, CORIO_INT(10), &out) == 1 && CORIO_TO_INT(out) == 12);
    CHECK(corio_coro_status(corio_gen_coro(g)) == CORIO_CORO_SUSPENDED);
    gen_cleaned = 0;
    CHECK(corio_gen_close(g) == 0 && gen_cleaned == 1);
    CHECK(corio_gen_close(NULL) == 0);
}

/* ---- many coroutines --------------------------------------------------- */

static void *park(void *arg)
{
    CHECK(corio_coro_yield() == 0);
    return arg;
}

static void test_many(int mode, int n)
{
    corio_coro_attr attr = {.stack_mode = mode};
    corio_coro **co = calloc((size_t)n, sizeof(*co));

    CHECK(co != NULL);
    for (int i = 0; i < n; i++) {
        co[i] = corio_coro_new(park, (void *)(intptr_t)i, &attr);
        CHECK(co[i] != NULL && corio_coro_resume(co[i]) == 0);
    }
    for (int i = 0; i < n; i++) {
        CHECK(corio_coro_resume(co[i]) == 0);
        CHECK(corio_coro_result(co[i]) == (void *)(intptr_t)i);
        CHECK(corio_coro_free(co[i]) == 0);
    }
    free(co);
}

int main(void)
{
    for (int mode = CORIO_STACK_GUARDED; mode <= CORIO_STACK_COMPACT; mode++) {
        test_resume_yield(mode);
        test_registers(mode);
        test_many(mode, 1000);
    }
    test_fp();
    test_generators();
    printf("core_test: %d checks passed\n", checks);
    return 0;
}
