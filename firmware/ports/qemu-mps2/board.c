/* mps2-an386 peripherals the node uses, polled (no interrupt but SysTick):
 *   CMSDK APB UART0 at 0x40004000 (ARM DDI 0479, "Cortex-M System Design Kit", UART):
 *     DATA +0x00, STATE +0x04 (bit 0 TX full, bit 1 RX full), CTRL +0x08 (bit 0 TX enable,
 *     bit 1 RX enable), BAUDDIV +0x10 (QEMU ignores a UART whose BAUDDIV is below 16).
 *     QEMU's first -serial; its RX holds one byte, and QEMU stops reading the host side
 *     while that byte waits, so nothing is lost while the node trains.
 *   SysTick on the 25 MHz system clock: a 1 ms tick counts millis and wakes `wfi`.
 *   Flash: the file "qnode.state" in QEMU's working directory, through semihosting. */
#include "board.h"

#include <stdint.h>

#include "semihost.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSCLK_HZ 25000000u      /* mps2-an386 (QEMU's SYSCLK_FRQ for AN385/AN386) */

#define STATE_FILE "qnode.state"
#define IDLE_AFTER_MS 2u         /* spin this long after the last byte before sleeping */

static volatile uint32_t g_ms;
static uint32_t g_last_rx;

void SysTick_Handler(void) { g_ms++; }

void board_init(void) {
    UART_BAUDDIV = SYSCLK_HZ / 115200u;   /* 217: the real board's divider for 115200 Bd */
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
    SYST_RVR = SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u;                       /* processor clock, interrupt, enable */
}

void board_idle(void) {
    /* QEMU hands the UART one byte per main-loop turn: the line can look empty between two
     * bytes of one frame, so sleep only after a quiet spell. */
    if ((uint32_t)(g_ms - g_last_rx) >= IDLE_AFTER_MS) __asm__ __volatile__("wfi");
}

static int uart_read(void *ctx) {
    (void)ctx;
    if (!(UART_STATE & STATE_RX_FULL)) return -1;
    g_last_rx = g_ms;
    return (int)(UART_DATA & 0xFFu);
}

static void uart_write(void *ctx, const uint8_t *p, size_t n) {
    (void)ctx;
    while (n--) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = *p++;
    }
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    return g_ms;
}

static int load(void *ctx, void *buf, size_t n) {
    (void)ctx;
    return sh_load(STATE_FILE, buf, n);
}

static int save(void *ctx, const void *buf, size_t n) {
    (void)ctx;
    return sh_save(STATE_FILE, buf, n);
}

const qn_hal board_hal = {NULL, uart_read, uart_write, millis, load, save};
