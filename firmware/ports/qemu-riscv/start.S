/* Entry, trap vector and the semihosting call of the node on QEMU virt (rv32imc). */
    /* CSR instructions are extension Zicsr for binutils >= 2.38; the C code keeps
     * -march=rv32imc and its libgcc multilib. */
    .option arch, +zicsr

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$       /* must not itself be relaxed against gp */
    .option pop
    csrr    t0, mhartid                 /* only hart 0 runs the node */
    bnez    t0, park
    la      sp, __stack_top
    la      t0, trap_entry
    csrw    mtvec, t0
    csrw    mscratch, zero              /* != 0 marks "inside the trap handler" */
    /* The guard below the stack gets a locked PMP entry without permissions, so even
     * M-mode code traps on it: an overflow faults instead of overwriting .bss. (M-mode
     * accesses that match no entry stay allowed.) */
    la      t0, __stack_guard_pmpaddr
    csrw    pmpaddr0, t0
    li      t0, 0x98                    /* L, A = NAPOT, R = W = X = 0 */
    csrw    pmpcfg0, t0
    la      t0, __bss_start             /* zero .bss (8-aligned at both ends, link.ld) */
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  call    main
    li      a0, 0
    call    sh_exit
park:
    wfi
    j       park
    .size _start, . - _start

/* Nothing is expected to trap: report mcause/mepc/mtval from C with a fresh stack and
 * exit with status 3 (PORT_EXIT_FAULT). A trap inside the handler exits at once. */
    .section .text.trap, "ax", @progbits
    .balign 4
    .globl trap_entry
    .type trap_entry, @function
trap_entry:
    csrrwi  t0, mscratch, 1
    bnez    t0, 1f
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    la      sp, __stack_top
    j       trap_report
1:  li      a0, 0x20                    /* SYS_EXIT_EXTENDED */
    la      a1, nested_exit
    call    sh_call
2:  wfi
    j       2b
    .size trap_entry, . - trap_entry
    .balign 4
nested_exit:
    .word   0x20026, 3                  /* ADP_Stopped_ApplicationExit, status */

/* uint32_t sh_call(uint32_t op, const void *arg): RISC-V semihosting. QEMU (and debuggers)
 * recognise the ebreak only inside this exact sequence of three uncompressed instructions
 * within one page: .option norvc, and a 16-byte alignment keeps them together. */
    .section .text.semihost, "ax", @progbits
    .balign 16
    .globl sh_call
    .type sh_call, @function
sh_call:
    .option push
    .option norvc
    slli    zero, zero, 0x1f
    ebreak
    srai    zero, zero, 7
    .option pop
    ret
    .size sh_call, . - sh_call
