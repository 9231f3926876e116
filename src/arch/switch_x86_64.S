/* src/arch/switch_x86_64.S -- context switch for x86_64, System V ABI.
 *
 * void corio__arch_switch(corio__ctx *from, corio__ctx *to)
 *   rdi = from, rsi = to; a context is { void *sp }.
 *
 * The frame pushed on the stack being left, from high to low addresses:
 *   return address, rbp, rbx, r12, r13, r14, r15, [x87 CW:2 | pad:2 | MXCSR:4]
 * A new context (corio__arch_make) holds the same frame with the return
 * address pointing at corio__arch_boot, r12 = entry and r13 = arg. */
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
        subq    $8, %rsp
        fnstcw  (%rsp)
        stmxcsr 4(%rsp)
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        fldcw   (%rsp)
        ldmxcsr 4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
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
