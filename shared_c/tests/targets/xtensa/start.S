/*
 * start.S - reset entry, exception vectors and C start-up for the ESP8266 core
 * (Xtensa lx106, call0 ABI) running on QEMU:  qemu-system-xtensa -M sim -cpu lx106
 *
 * QEMU's sim machine resets the CPU *after* loading the ELF, so the ELF entry
 * point is ignored: execution always starts at the lx106 reset vector
 * 0x50000000, which on `-M sim` lies in the "xtensa.sysrom0" RAM region
 * (0x50000000-0x53ffffff).  link.ld places .ResetVector.text there.
 *
 * Literals are written explicitly (.word + l32r to a lower address) so this
 * file does not depend on -mtext-section-literals or literal-pool placement.
 */

        .section .ResetVector.text, "ax"
        .global _ResetVector
        .type   _ResetVector, @function
        .align  4
_ResetVector:
        j       .Lreset_body

        .align  4
.Llit_vecbase:  .word   _vectors
.Llit_stack:    .word   _stack_top
.Llit_bss_lo:   .word   _bss_start
.Llit_bss_hi:   .word   _bss_end
.Llit_main:     .word   main

        .align  4
.Lreset_body:
        /* Our own exception vectors (see below) instead of the default
           VECBASE 0x40000000, which points at empty instruction RAM. */
        l32r    a2, .Llit_vecbase
        wsr     a2, vecbase
        /* PS: INTLEVEL=15 (interrupts masked), EXCM=0, UM=0, call0 ABI. */
        movi    a2, 0x0f
        wsr     a2, ps
        rsync

        l32r    a1, .Llit_stack         /* a1 = sp, 16-byte aligned by link.ld */

        /* Zero .bss (word-aligned by link.ld). */
        l32r    a2, .Llit_bss_lo
        l32r    a3, .Llit_bss_hi
        movi    a4, 0
        bgeu    a2, a3, 2f
1:      s32i    a4, a2, 0
        addi    a2, a2, 4
        bltu    a2, a3, 1b
2:
        /* main() may be anywhere in the 32-bit space: load its address. */
        l32r    a0, .Llit_main
        callx0  a0

        /* main returned: exit QEMU with its return value (SYS_exit = 1). */
        mov     a3, a2
        movi    a2, 1
        simcall
3:      j       3b
        .size   _ResetVector, . - _ResetVector


/*
 * Exception vectors.  VECBASE must be aligned; link.ld aligns this section to
 * 0x400.  Offsets are those of the lx106 configuration (core-isa.h):
 *   0x10 debug / level-2 interrupt   -> exit 98
 *   0x20 NMI / level-3 interrupt     -> exit 99
 *   0x30 kernel exception            -> exit 100 + EXCCAUSE
 *   0x50 user exception              -> exit 100 + EXCCAUSE
 *   0x70 double exception            -> exit 100 + EXCCAUSE
 * so a crash ends QEMU with a recognisable status instead of hanging.
 */
        .section .vectors.text, "ax"
        .global _vectors
        .align  4
_vectors:
        .org    _vectors + 0x10
        movi    a3, 98
        movi    a2, 1
        simcall
        j       .

        .org    _vectors + 0x20
        movi    a3, 99
        movi    a2, 1
        simcall
        j       .

        .org    _vectors + 0x30
        rsr     a3, exccause
        addi    a3, a3, 100
        movi    a2, 1
        simcall
        j       .

        .org    _vectors + 0x50
        rsr     a3, exccause
        addi    a3, a3, 100
        movi    a2, 1
        simcall
        j       .

        .org    _vectors + 0x70
        rsr     a3, exccause
        addi    a3, a3, 100
        movi    a2, 1
        simcall
        j       .
