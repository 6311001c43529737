/*
 * port.c - host I/O for the Cortex-M targets under QEMU, via ARM semihosting.
 *
 * Semihosting call on M-profile: `bkpt 0xab`, r0 = operation, r1 = argument,
 * result in r0.  QEMU services it when started with
 * -semihosting-config enable=on,target=native.
 *   SYS_WRITE0        (0x04): r1 -> NUL-terminated string, written to stdout.
 *   SYS_EXIT_EXTENDED (0x20): r1 -> {ADP_Stopped_ApplicationExit, code};
 *                             QEMU exits with status `code`.
 */
#include <stdint.h>

#include "port.h"

#define SEMI_SYS_WRITE0 0x04u
#define SEMI_SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* Exit status when the stack canary planted by startup.c was overwritten. */
#define PORT_EXIT_STACK_OVERFLOW 97

/* From startup.c. */
int cm_stack_intact(void);
void cm_exit_raw(int code) __attribute__((noreturn));

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;

    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void port_write(const char *s)
{
    (void)semihost(SEMI_SYS_WRITE0, s);
}

void cm_exit_raw(int code)
{
    uint32_t block[2];

    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    (void)semihost(SEMI_SYS_EXIT_EXTENDED, block);

    /* Only reached without semihosting: stop here. */
    for (;;) {
        __asm__ __volatile__("wfi");
    }
}

void port_exit(int code)
{
    if (!cm_stack_intact()) {
        port_write("STACK OVERFLOW (canary at the bottom of the stack overwritten)\n");
        cm_exit_raw(PORT_EXIT_STACK_OVERFLOW);
    }
    cm_exit_raw(code);
}
