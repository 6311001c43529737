/* Vector table, reset and fault handlers for the node on QEMU mps2-an386 (Cortex-M4F).
 *
 * Reset: enable the FPU (CP10/CP11), copy .data from its load address, zero .bss, call
 * main(). Faults: HardFault (MemManage, BusFault and UsageFault escalate to it, and have
 * their own vectors here too) prints the stacked pc/lr and the fault status registers
 * through semihosting and exits with PORT_EXIT_FAULT (3); so does any unexpected exception. */
#include <stdint.h>

#include "board.h"
#include "semihost.h"

int main(void);

extern uint32_t __stack_top__[];
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];

void Reset_Handler(void) __attribute__((noreturn));
void HardFault_Handler(void) __attribute__((naked, noreturn));
void Default_Handler(void) __attribute__((noreturn));
void fault_report(uint32_t pc, uint32_t lr, uint32_t sp) __attribute__((noreturn, used));

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* A union, so the table holds the initial SP and handlers without casting a function
 * pointer to an object pointer (which ISO C does not define). */
typedef union {
    void (*handler)(void);
    uint32_t *sp;
} vector;

#define IRQ {.handler = Default_Handler}
#define IRQ8 IRQ, IRQ, IRQ, IRQ, IRQ, IRQ, IRQ, IRQ

__attribute__((section(".isr_vector"), used)) const vector vector_table[16 + 32] = {
    [0] = {.sp = __stack_top__},
    [1] = {.handler = Reset_Handler},
    [2] = {.handler = Default_Handler},     /* NMI */
    [3] = {.handler = HardFault_Handler},
    [4] = {.handler = HardFault_Handler},   /* MemManage */
    [5] = {.handler = HardFault_Handler},   /* BusFault */
    [6] = {.handler = HardFault_Handler},   /* UsageFault */
    [11] = {.handler = Default_Handler},    /* SVCall */
    [12] = {.handler = Default_Handler},    /* DebugMonitor */
    [14] = {.handler = Default_Handler},    /* PendSV */
    [15] = {.handler = SysTick_Handler},
    IRQ8, IRQ8, IRQ8, IRQ8,                 /* no peripheral interrupt is enabled */
};

static void __attribute__((noreturn, noinline)) startup_c(void) {
    uint32_t *src = __data_load__, *dst = __data_start__;
    while (dst < __data_end__) *dst++ = *src++;
    for (dst = __bss_start__; dst < __bss_end__; dst++) *dst = 0u;
    (void)main();
    sh_exit(0);
}

void Reset_Handler(void) {
    /* full access to CP10/CP11 before the first floating-point instruction (the core is
     * integer, but the compiler may use FP registers for copies under -mfloat-abi=hard) */
    SCB_CPACR |= 0xFu << 20;
    __asm__ __volatile__("dsb\n\tisb" ::: "memory");
    startup_c();
}

/* Take the stacked pc and lr from the exception frame (MSP or PSP by EXC_RETURN bit 2),
 * move sp back to the top of the stack (the fault may be an overflow), report from C. */
void HardFault_Handler(void) {
    __asm__ __volatile__(
        "tst   lr, #4\n\t"
        "ite   eq\n\t"
        "mrseq r2, msp\n\t"
        "mrsne r2, psp\n\t"
        "ldr   r0, [r2, #24]\n\t"
        "ldr   r1, [r2, #20]\n\t"
        "ldr   r3, =__stack_top__\n\t"
        "mov   sp, r3\n\t"
        "b     fault_report\n\t"
        ".ltorg\n");
}

void fault_report(uint32_t pc, uint32_t lr, uint32_t sp) {
    sh_write0("qnode: HARDFAULT\n");
    sh_write_hex("  pc=", pc);
    sh_write_hex(" lr=", lr);
    sh_write_hex(" sp=", sp);
    sh_write_hex(" cfsr=", SCB_CFSR);
    sh_write_hex(" hfsr=", SCB_HFSR);
    sh_write_hex(" bfar=", SCB_BFAR);
    sh_write0("\n");
    sh_exit(PORT_EXIT_FAULT);
}

void Default_Handler(void) {
    uint32_t ipsr;
    __asm__ __volatile__("mrs %0, ipsr" : "=r"(ipsr));
    sh_write_hex("qnode: unexpected exception ", ipsr & 0x1FFu);
    sh_write0("\n");
    sh_exit(PORT_EXIT_FAULT);
}
