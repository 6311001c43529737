/*
 * startup.c - vector table, reset and fault handlers for the Cortex-M test
 * target (QEMU mps2-an386; see link.ld for the memory map).
 *
 * Reset: enable the FPU (when the code is built for one), copy .data from
 * flash to RAM, zero .bss, plant the stack canary, call main(), then
 * port_exit(main's return value).
 *
 * Faults: HardFault (and MemManage/BusFault/UsageFault, which escalate to it
 * unless enabled) print "HARDFAULT" plus the stacked pc/lr and exit with 99.
 * Any other exception prints "UNEXPECTED EXCEPTION <n>" and exits with 99.
 *
 * Written for ARMv7E-M (Cortex-M4) but kept ARMv6-M clean (no IT blocks, no
 * CFSR/CPACR access there) so the same file builds for Cortex-M0+.
 */
#include <stdint.h>

#include "port.h"

int main(void);

/* From port.c: exit without the stack check (used on the fault paths). */
void cm_exit_raw(int code) __attribute__((noreturn));

/* From link.ld. */
extern uint32_t __stack_bottom__[];
extern uint32_t __stack_top__[];
extern uint32_t __data_load__[];
extern uint32_t __data_start__[];
extern uint32_t __data_end__[];
extern uint32_t __bss_start__[];
extern uint32_t __bss_end__[];

/* Also checked by port_exit() in port.c. */
#define CM_STACK_CANARY 0x5AC4CA7Eu

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

void Reset_Handler(void) __attribute__((noreturn));
void HardFault_Handler(void) __attribute__((naked));
void Default_Handler(void) __attribute__((noreturn));
void hardfault_report(uint32_t frame, uint32_t pc, uint32_t lr) __attribute__((noreturn, used));
int cm_stack_intact(void);

/* ---------------------------------------------------------------- vectors */

typedef union {
    void (*handler)(void);
    uint32_t *sp;
} vector_entry;

#define CM_NUM_IRQS 32
#define CM_IRQ1 {.handler = Default_Handler}
#define CM_IRQ8 CM_IRQ1, CM_IRQ1, CM_IRQ1, CM_IRQ1, CM_IRQ1, CM_IRQ1, CM_IRQ1, CM_IRQ1

__attribute__((section(".isr_vector"), used))
const vector_entry cm_vector_table[16 + CM_NUM_IRQS] = {
    [0] = {.sp = __stack_top__},
    [1] = {.handler = Reset_Handler},
    [2] = {.handler = Default_Handler},   /* NMI */
    [3] = {.handler = HardFault_Handler}, /* HardFault */
    [4] = {.handler = HardFault_Handler}, /* MemManage (v7-M) */
    [5] = {.handler = HardFault_Handler}, /* BusFault (v7-M) */
    [6] = {.handler = HardFault_Handler}, /* UsageFault (v7-M) */
    /* 7..10 reserved (0) */
    [11] = {.handler = Default_Handler}, /* SVCall */
    [12] = {.handler = Default_Handler}, /* DebugMonitor (v7-M) */
    /* 13 reserved (0) */
    [14] = {.handler = Default_Handler}, /* PendSV */
    [15] = {.handler = Default_Handler}, /* SysTick */
    /* External interrupts 0..31: none are enabled; catch them anyway. */
    CM_IRQ8, CM_IRQ8, CM_IRQ8, CM_IRQ8,
};

/* ------------------------------------------------------------------ reset */

static void __attribute__((noreturn, noinline)) startup_c(void)
{
    uint32_t *src = __data_load__;
    uint32_t *dst = __data_start__;

    while (dst < __data_end__) {
        *dst++ = *src++;
    }
    for (dst = __bss_start__; dst < __bss_end__; dst++) {
        *dst = 0u;
    }
    *(volatile uint32_t *)__stack_bottom__ = CM_STACK_CANARY;

    port_exit(main());
}

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CP10 and CP11 full access, before any floating-point instruction. */
    SCB_CPACR |= (0xFu << 20);
    __asm__ __volatile__("dsb\n\tisb" ::: "memory");
#endif
    startup_c();
}

int cm_stack_intact(void)
{
    return *(volatile uint32_t *)__stack_bottom__ == CM_STACK_CANARY;
}

/* ----------------------------------------------------------------- faults */

static void put_hex(char *out, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    int i;

    out[0] = '0';
    out[1] = 'x';
    for (i = 0; i < 8; i++) {
        out[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    out[10] = '\0';
}

static void write_field(const char *label, uint32_t v)
{
    char buf[11];

    put_hex(buf, v);
    port_write(label);
    port_write(buf);
}

/*
 * Find the exception frame (MSP or PSP, by EXC_RETURN bit 2), fetch the
 * stacked pc and lr, then move sp back to the top of the stack before calling
 * C: the fault may be a stack overflow, and we never return anyway.
 * ARMv6-M instructions only.
 */
void HardFault_Handler(void)
{
    __asm__ __volatile__(
        "movs r0, #4\n\t"
        "mov  r1, lr\n\t"
        "tst  r0, r1\n\t"
        "bne  1f\n\t"
        "mrs  r0, msp\n\t"
        "b    2f\n"
        "1:\n\t"
        "mrs  r0, psp\n"
        "2:\n\t"
        "ldr  r1, [r0, #24]\n\t" /* stacked pc */
        "ldr  r2, [r0, #20]\n\t" /* stacked lr */
        "ldr  r3, =__stack_top__\n\t"
        "mov  sp, r3\n\t"
        "ldr  r3, =hardfault_report\n\t"
        "bx   r3\n\t"
        ".ltorg\n");
}

void hardfault_report(uint32_t frame, uint32_t pc, uint32_t lr)
{
    port_write("HARDFAULT\n");
    write_field("  pc=", pc);
    write_field(" lr=", lr);
    write_field(" sp=", frame);
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    write_field(" cfsr=", SCB_CFSR);
    write_field(" hfsr=", SCB_HFSR);
    write_field(" bfar=", SCB_BFAR);
#endif
    port_write("\n");
    cm_exit_raw(99);
}

void Default_Handler(void)
{
    uint32_t ipsr;

    __asm__ __volatile__("mrs %0, ipsr" : "=r"(ipsr));
    write_field("UNEXPECTED EXCEPTION ", ipsr & 0x1FFu);
    port_write("\n");
    cm_exit_raw(99);
}
