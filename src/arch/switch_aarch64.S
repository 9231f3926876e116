/* src/arch/switch_aarch64.S -- context switch for aarch64 (AAPCS64).
 *
 * int corio__arch_switch(corio__ctx *from, corio__ctx *to, int *errp,
 *                        int val)
 *   x0 = from, x1 = to, x2 = &errno, w3 = val; a context is { void *sp }.
 *   The side resumed returns the val of the side that switched to it.
 *
 * The 176-byte frame saved on the stack being left, from sp upwards:
 *   x19..x28, x29 (fp), x30 (lr), d8..d15, FPCR, errno
 * A new context (corio__arch_make) holds the same frame with lr pointing at
 * corio__arch_boot, x19 = entry and x20 = arg. */
        .text
        .globl  corio__arch_switch
        .hidden corio__arch_switch
        .type   corio__arch_switch, %function
        .p2align 4
corio__arch_switch:
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        ldr     w10, [x2]
        stp     x9, x10, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        ldr     x9, [x1]
        mov     sp, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8,  d9,  [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldp     x9, x10, [sp, #160]
        msr     fpcr, x9
        str     w10, [x2]
        add     sp, sp, #176
        mov     w0, w3
        ret
        .cfi_endproc
        .size   corio__arch_switch, .-corio__arch_switch

/* The first instruction a new coroutine runs: entry(arg), never returning. */
        .globl  corio__arch_boot
        .hidden corio__arch_boot
        .type   corio__arch_boot, %function
        .p2align 4
corio__arch_boot:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x20
        blr     x19
        brk     #0
        .cfi_endproc
        .size   corio__arch_boot, .-corio__arch_boot

        .section .note.GNU-stack,"",%progbits
