/* Vector table, reset and fault handlers for the STM32F446RE (RM0390 section 10.2, table 38:
 * 97 peripheral interrupts; only USART2, IRQ 38, is enabled).
 *
 * Reset: enable the FPU (CP10/CP11, PM0214 4.6.1), copy .data, zero .bss, call main(). A fault
 * sends one LOG frame with the stacked pc/lr and the fault status registers, then resets the
 * board: on a real board that is the "exit". */
#include <stdint.h>

#include "board.h"

int main(void);
void board_log(const char *text);

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

typedef union {
    void (*handler)(void);
    uint32_t *sp;
} vector;

#define IRQ {.handler = Default_Handler}
#define IRQ8 IRQ, IRQ, IRQ, IRQ, IRQ, IRQ, IRQ, IRQ

__attribute__((section(".isr_vector"), used)) const vector vector_table[16 + 97] = {
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
    IRQ8, IRQ8, IRQ8, IRQ8, IRQ, IRQ, IRQ, IRQ, IRQ, IRQ,           /* IRQ 0..37 */
    {.handler = USART2_IRQHandler},                                 /* IRQ 38 */
    IRQ8, IRQ8, IRQ8, IRQ8, IRQ8, IRQ8, IRQ8, IRQ, IRQ,             /* IRQ 39..96 */
};

static void __attribute__((noreturn, noinline)) startup_c(void) {
    uint32_t *src = __data_load__, *dst = __data_start__;
    while (dst < __data_end__) *dst++ = *src++;
    for (dst = __bss_start__; dst < __bss_end__; dst++) *dst = 0u;
    (void)main();
    board_reset();
}

void Reset_Handler(void) {
    SCB_CPACR |= 0xFu << 20;
    __asm__ __volatile__("dsb\n\tisb" ::: "memory");
    startup_c();
}

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

static char *put_hex(char *out, const char *label, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    while (*label) *out++ = *label++;
    for (int i = 0; i < 8; i++) *out++ = digits[(v >> (28 - 4 * i)) & 0xFu];
    *out = '\0';
    return out;
}

void fault_report(uint32_t pc, uint32_t lr, uint32_t sp) {
    char msg[128];
    char *p = put_hex(msg, "qnode: HARDFAULT pc=", pc);
    p = put_hex(p, " lr=", lr);
    p = put_hex(p, " sp=", sp);
    p = put_hex(p, " cfsr=", SCB_CFSR);
    (void)put_hex(p, " hfsr=", SCB_HFSR);
    board_log(msg);           /* polled: works with interrupts masked by the fault */
    for (volatile uint32_t i = 0; i < 20000000u; i++) {
    }
    board_reset();
}

void Default_Handler(void) {
    uint32_t ipsr;
    char msg[48];
    __asm__ __volatile__("mrs %0, ipsr" : "=r"(ipsr));
    (void)put_hex(msg, "qnode: unexpected exception ", ipsr & 0x1FFu);
    board_log(msg);
    for (volatile uint32_t i = 0; i < 20000000u; i++) {
    }
    board_reset();
}
