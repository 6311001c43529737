/*
 * port.c - host I/O for the rv32 test target under QEMU, via RISC-V
 * semihosting (the call itself is rv32_semihost in start.S).
 *   SYS_WRITE0        (0x04): a1 -> NUL-terminated string, written to stdout.
 *   SYS_EXIT_EXTENDED (0x20): a1 -> {ADP_Stopped_ApplicationExit, code};
 *                             QEMU exits with status `code`.  (SYS_EXIT, 0x18,
 *                             takes a reason code on 32-bit, not a status.)
 * Also the C half of the trap handler: prints "TRAP" and exits with 98.
 */
#include <stdint.h>

#include "port.h"

#define SEMI_SYS_WRITE0 0x04u
#define SEMI_SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

#define STACK_CANARY 0x5AC4CA7Eu /* planted by start.S */
#define PORT_EXIT_STACK_OVERFLOW 97
#define PORT_EXIT_TRAP 98

/* From start.S / link.ld. */
uint32_t rv32_semihost(uint32_t op, const void *arg);
extern uint32_t __stack_bottom[];
extern uint32_t __stack_guard[];

void rv32_trap_report(uint32_t mcause, uint32_t mepc, uint32_t mtval) __attribute__((noreturn));

void port_write(const char *s)
{
    (void)rv32_semihost(SEMI_SYS_WRITE0, s);
}

static void __attribute__((noreturn)) exit_raw(int code)
{
    uint32_t block[2];

    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    (void)rv32_semihost(SEMI_SYS_EXIT_EXTENDED, block);

    /* Only reached without semihosting: stop here. */
    for (;;) {
        __asm__ __volatile__("wfi");
    }
}

void port_exit(int code)
{
    if (*(volatile uint32_t *)__stack_bottom != STACK_CANARY) {
        port_write("STACK OVERFLOW (canary at the bottom of the stack overwritten)\n");
        exit_raw(PORT_EXIT_STACK_OVERFLOW);
    }
    exit_raw(code);
}

static void write_field(const char *label, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[11];
    int i;

    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    port_write(label);
    port_write(buf);
}

void rv32_trap_report(uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
    port_write("TRAP\n");
    write_field("  mcause=", mcause);
    write_field(" mepc=", mepc);
    write_field(" mtval=", mtval);
    port_write("\n");
    /* Load/store access fault inside the PMP guard below the stack. */
    if ((mcause == 5u || mcause == 7u) && mtval >= (uint32_t)(uintptr_t)__stack_guard &&
        mtval < (uint32_t)(uintptr_t)__stack_bottom) {
        port_write("  (stack overflow: the address is in the guard region below the stack)\n");
    }
    exit_raw(PORT_EXIT_TRAP);
}
