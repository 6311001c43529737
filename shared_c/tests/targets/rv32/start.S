/*
 * start.S - entry, trap vector and semihosting call for the rv32 test target
 * (QEMU `virt` with -bios none: hart 0 starts at 0x80000000, where link.ld
 * puts .text.start; the ELF is loaded straight into RAM, so .data needs no
 * copy).
 */
    .equ STACK_CANARY, 0x5AC4CA7E   /* also in port.c */

    /* CSR instructions are extension Zicsr for binutils >= 2.38; the C code
     * keeps -march=rv32imc (and its libgcc multilib). */
    .option arch, +zicsr

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    /* gp for linker relaxation; must not itself be relaxed against gp. */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop

    /* Only hart 0 runs the program (virt has one hart unless -smp). */
    csrr    t0, mhartid
    bnez    t0, park

    la      sp, __stack_top

    /* Traps go to trap_entry (direct mode: address must be 4-aligned);
     * mscratch != 0 marks "already in the trap handler". */
    la      t0, trap_entry
    csrw    mtvec, t0
    csrw    mscratch, zero

    /* Stack guard: the region below the stack (see link.ld) gets a locked
     * PMP entry with no permissions, so that even M-mode code faults on it:
     * a stack overflow traps instead of overwriting .bss, data or code. */
    la      t0, __stack_guard_pmpaddr
    csrw    pmpaddr0, t0
    li      t0, 0x98            /* L=1, A=NAPOT, R=W=X=0 */
    csrw    pmpcfg0, t0

    /* Zero .bss (word aligned at both ends, see link.ld). */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:
    /* Canary at the lowest stack word, checked by port_exit(). */
    la      t0, __stack_bottom
    li      t1, STACK_CANARY
    sw      t1, 0(t0)

    call    main
    call    port_exit           /* a0 = main's return value; no return */

park:
    wfi
    j       park
    .size _start, . - _start

/*
 * Trap entry: nothing is expected to trap, so no context is saved.  Collect
 * mcause/mepc/mtval, reset sp to the top of the stack (the trap may be a
 * stack overflow) and report from C; rv32_trap_report never returns.
 * A trap inside the handler (e.g. its code was overwritten) exits with 98
 * at once instead of looping.
 */
    .section .text.trap, "ax", @progbits
    .balign 4
    .globl trap_entry
    .type trap_entry, @function
trap_entry:
    csrrwi  t0, mscratch, 1
    bnez    t0, trap_nested
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    la      sp, __stack_top
    j       rv32_trap_report
trap_nested:
    li      a0, 0x04            /* SYS_WRITE0 */
    la      a1, trap_nested_msg
    call    rv32_semihost
    li      a0, 0x20            /* SYS_EXIT_EXTENDED */
    la      a1, trap_exit_block
    call    rv32_semihost
1:  wfi
    j       1b
    .size trap_entry, . - trap_entry

    .balign 4
trap_exit_block:
    .word   0x20026, 98         /* ADP_Stopped_ApplicationExit, status */
trap_nested_msg:
    .asciz  "TRAP (inside the trap handler)\n"

/*
 * uint32_t rv32_semihost(uint32_t op, const void *arg)
 *
 * RISC-V semihosting: a0 = operation, a1 = argument, result in a0.  The
 * debugger/QEMU recognises the ebreak only inside this exact sequence of
 * three 32-bit instructions (no compressed encodings), and all three must lie
 * in the same page: aligning the sequence to 16 bytes guarantees that.
 */
    .section .text.semihost, "ax", @progbits
    .balign 16
    .globl rv32_semihost
    .type rv32_semihost, @function
rv32_semihost:
    .option push
    .option norvc
    slli    zero, zero, 0x1f
    ebreak
    srai    zero, zero, 7
    .option pop
    ret
    .size rv32_semihost, . - rv32_semihost
