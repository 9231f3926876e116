/* src/arch/switch_x86_64.S -- context switch for x86_64, System V ABI.
 *
 * int corio__arch_switch(corio__ctx *from, corio__ctx *to, int *errp,
 *                        int val)
 *   rdi = from, rsi = to, rdx = &errno, ecx = val; a context is
 *   { void *sp }. The side resumed returns the val of the side that
 *   switched to it (make.c's corio__arch_set_errno writes the errno slot).
 *
 * The frame left on a suspended stack, from sp upwards:
 *   r15, r14, r13, r12, rbx, rbp, return address
 * and in the 16 bytes just below sp (the ABI's red zone: nothing runs on a
 * suspended stack, and the kernel skips the red zone when it delivers a
 * signal): [-16] x87 control word, [-12] MXCSR, [-8] errno.
 * A new context (make.c) holds the same frame with the return address
 * pointing at corio__arch_boot, r12 = entry and r13 = arg.
 *
 * It returns with an indirect jump, not ret: ret would land somewhere other
 * than where the return-stack predictor expects and mispredict every time. */
        .text
        .globl  corio__arch_switch
        .hidden corio__arch_switch
        .type   corio__arch_switch, @function
        .p2align 4
corio__arch_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movl    (%rdx), %r8d
        fnstcw  -16(%rsp)
        stmxcsr -12(%rsp)
        movl    %r8d, -8(%rsp)
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        fldcw   -16(%rsp)
        ldmxcsr -12(%rsp)
        movl    -8(%rsp), %r8d
        movl    %r8d, (%rdx)
        movl    %ecx, %eax
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        popq    %rcx
        jmpq    *%rcx
        .cfi_endproc
        .size   corio__arch_switch, .-corio__arch_switch

/* The first instruction a new coroutine runs: entry(arg), which never
 * returns. rsp is 16-byte aligned here, as a call requires. */
        .globl  corio__arch_boot
        .hidden corio__arch_boot
        .type   corio__arch_boot, @function
        .p2align 4
corio__arch_boot:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   corio__arch_boot, .-corio__arch_boot

        .section .note.GNU-stack,"",@progbits
