/* QEMU virt peripherals the node uses, polled:
 *   ns16550A UART0 at 0x10000000 (byte registers): RBR/THR +0, IER +1, FCR +2, LCR +3,
 *     LSR +5 (bit 0 data ready, bit 5 THR empty). QEMU's first -serial; it stops reading
 *     the host side while its 16-byte FIFO is full, so nothing is lost while the node trains.
 *   CLINT (SiFive layout): mtime at 0x0200BFF8, hart 0's mtimecmp at 0x02004000, 10 MHz
 *     on virt. millis = mtime / 10000 (a 64-bit division: libgcc's __udivdi3).
 *   Flash: the file "qnode.state" in QEMU's working directory, through semihosting. */
#include "board.h"

#include <stdint.h>

#include "semihost.h"

#define UART_BASE 0x10000000u
#define UART_REG(off) (*(volatile uint8_t *)(UART_BASE + (off)))
#define UART_RBR UART_REG(0u)
#define UART_THR UART_REG(0u)
#define UART_DLL UART_REG(0u)
#define UART_IER UART_REG(1u)
#define UART_DLM UART_REG(1u)
#define UART_FCR UART_REG(2u)
#define UART_LCR UART_REG(3u)
#define UART_LSR UART_REG(5u)
#define LSR_DR 0x01u
#define LSR_THRE 0x20u

#define MTIME_LO (*(volatile uint32_t *)0x0200BFF8u)
#define MTIME_HI (*(volatile uint32_t *)0x0200BFFCu)
#define MTIMECMP_LO (*(volatile uint32_t *)0x02004000u)
#define MTIMECMP_HI (*(volatile uint32_t *)0x02004004u)
#define MTIME_HZ 10000000u
#define MIE_MTIE 0x80u

#define STATE_FILE "qnode.state"
#define IDLE_AFTER_MS 2u         /* spin this long after the last byte before sleeping */

static uint32_t g_last_rx;

static uint64_t mtime(void) {
    uint32_t hi, lo;
    do {                         /* the two halves of a ticking 64-bit counter */
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t now_ms(void) { return (uint32_t)(mtime() / (MTIME_HZ / 1000u)); }

void board_init(void) {
    UART_IER = 0x00u;            /* polled */
    UART_LCR = 0x80u;            /* DLAB: divisor 1 (QEMU ignores the rate) */
    UART_DLL = 0x01u;
    UART_DLM = 0x00u;
    UART_LCR = 0x03u;            /* 8N1 */
    UART_FCR = 0x07u;            /* FIFOs on and cleared */
}

void board_idle(void) {
    if ((uint32_t)(now_ms() - g_last_rx) < IDLE_AFTER_MS) return;
    /* wake at the next millisecond: with mie.MTIE set and mstatus.MIE clear, wfi returns
     * when the timer is pending without taking the interrupt. mtimecmp is written high
     * word first (all ones), so no intermediate value fires early. */
    uint64_t when = mtime() + MTIME_HZ / 1000u;
    MTIMECMP_HI = 0xFFFFFFFFu;
    MTIMECMP_LO = (uint32_t)when;
    MTIMECMP_HI = (uint32_t)(when >> 32);
    __asm__ __volatile__(".option push\n\t.option arch, +zicsr\n\t"
                         "csrs mie, %0\n\t"
                         "wfi\n\t"
                         ".option pop" ::"r"(MIE_MTIE) : "memory");
}

static int uart_read(void *ctx) {
    (void)ctx;
    if (!(UART_LSR & LSR_DR)) return -1;
    g_last_rx = now_ms();
    return UART_RBR;
}

static void uart_write(void *ctx, const uint8_t *p, size_t n) {
    (void)ctx;
    while (n--) {
        while (!(UART_LSR & LSR_THRE)) {
        }
        UART_THR = *p++;
    }
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    return now_ms();
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

/* Called from start.S's trap entry with a fresh stack; never returns. */
void trap_report(uint32_t mcause, uint32_t mepc, uint32_t mtval) __attribute__((noreturn));
void trap_report(uint32_t mcause, uint32_t mepc, uint32_t mtval) {
    sh_write0("qnode: TRAP\n");
    sh_write_hex("  mcause=", mcause);
    sh_write_hex(" mepc=", mepc);
    sh_write_hex(" mtval=", mtval);
    sh_write0("\n");
    sh_exit(PORT_EXIT_FAULT);
}
