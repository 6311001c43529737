/* Nucleo-F446RE peripherals, register level (no ST HAL). Sections are RM0390 rev 6's.
 *
 * Clock: HSI 16 MHz -> PLL (M 8, N 180, P 2) -> 180 MHz SYSCLK in over-drive; AHB 180 MHz,
 * APB1 45 MHz (USART2), APB2 90 MHz; flash 5 wait states (section 3.4.1, table 5, 2.7-3.6 V).
 * The HSI needs no solder-bridge configuration (the ST-Link MCO and X3 vary between Nucleo
 * revisions); its +-1 % is well within a UART's tolerance.
 *
 * USART2 on PA2 (TX) / PA3 (RX), AF7: the ST-Link virtual COM port. Transmit is polled; receive
 * runs from the RXNE interrupt into a ring buffer, because the ST-Link VCP has no flow
 * control and the node trains synchronously: bytes arriving meanwhile wait in the ring. */
#include "board.h"

#include <string.h>

#include "qnode/frame.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* RCC (section 6.3), base 0x40023800 */
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)

/* PWR (section 5.4), base 0x40007000 */
#define PWR_CR REG(0x40007000u)
#define PWR_CSR REG(0x40007004u)
#define PWR_CR_VOS_SCALE1 (3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* FLASH interface (section 3.8), base 0x40023C00 */
#define FLASH_ACR REG(0x40023C00u)
#define FLASH_KEYR REG(0x40023C04u)
#define FLASH_SR REG(0x40023C0Cu)
#define FLASH_CR REG(0x40023C10u)
#define FLASH_ACR_LATENCY_5WS 5u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
#define FLASH_ACR_DCRST (1u << 12)
#define FLASH_SR_BSY (1u << 16)
#define FLASH_SR_ERRORS 0xF2u            /* PGSERR PGPERR PGAERR WRPERR OPERR */
#define FLASH_CR_PG (1u << 0)
#define FLASH_CR_SER (1u << 1)
#define FLASH_CR_SNB(s) ((uint32_t)(s) << 3)
#define FLASH_CR_PSIZE_X32 (2u << 8)
#define FLASH_CR_STRT (1u << 16)
#define FLASH_CR_LOCK (1u << 31)

/* GPIOA (section 7.4), base 0x40020000 */
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_OSPEEDR REG(0x40020008u)
#define GPIOA_PUPDR REG(0x4002000Cu)
#define GPIOA_BSRR REG(0x40020018u)
#define GPIOA_AFRL REG(0x40020020u)

/* USART2 (section 25.6), base 0x40004400 */
#define USART2_SR REG(0x40004400u)
#define USART2_DR REG(0x40004404u)
#define USART2_BRR REG(0x40004408u)
#define USART2_CR1 REG(0x4000440Cu)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
#define USART2_IRQN 38u                  /* section 10.2, table 38 */

/* Cortex-M4 core (PM0214 4.3 NVIC, 4.4.4 AIRCR, 4.5 SysTick) */
#define NVIC_ISER1 REG(0xE000E104u)
#define SCB_AIRCR REG(0xE000ED0Cu)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

#define APB1_HZ (BOARD_SYSCLK_HZ / 4u)

static volatile uint32_t g_ms;
/* RX ring: written by the interrupt, read by the main loop; a power-of-two size so the
 * free-running indices wrap cleanly. 4 KiB holds a model chunk of 1,024 elements. */
#define RX_RING 4096u
static uint8_t g_ring[RX_RING];
static volatile uint32_t g_head, g_tail, g_overruns;

void SysTick_Handler(void) { g_ms++; }

void USART2_IRQHandler(void) {
    uint32_t sr = USART2_SR;
    if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
        uint8_t b = (uint8_t)USART2_DR;   /* reading SR then DR also clears ORE (25.6.1) */
        if (sr & USART_SR_ORE) g_overruns++;
        if (g_head - g_tail < RX_RING) {
            g_ring[g_head % RX_RING] = b;
            g_head++;
        } else {
            g_overruns++;                   /* the frame it belonged to fails its CRC */
        }
    }
}

static void clock_init(void) {
    /* sections 6.3.1-6.3.3 and 5.1.4 "Entering Over-drive mode" */
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR |= PWR_CR_VOS_SCALE1;                     /* taken when the PLL starts */
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }
    RCC_PLLCFGR = 8u                                 /* PLLM: 16 MHz / 8 = 2 MHz */
                  | (180u << 6)                      /* PLLN: VCO 360 MHz */
                  | (0u << 16)                       /* PLLP /2: 180 MHz */
                  | (0u << 22)                       /* PLLSRC: HSI */
                  | (8u << 24)                       /* PLLQ /8 (unused) */
                  | (2u << 28);                      /* PLLR /2 (unused) */
    RCC_CR |= RCC_CR_PLLON;
    PWR_CR |= PWR_CR_ODEN;
    while (!(PWR_CSR & PWR_CSR_ODRDY)) {
    }
    PWR_CR |= PWR_CR_ODSWEN;
    while (!(PWR_CSR & PWR_CSR_ODSWRDY)) {
    }
    FLASH_ACR = FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH_ACR & 0xFu) != FLASH_ACR_LATENCY_5WS) {
    }
    RCC_CFGR = (RCC_CFGR & ~0xFCF0u) | (5u << 10) | (4u << 13);   /* HPRE /1, PPRE1 /4, PPRE2 /2 */
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                /* SW: PLL_P */
    while (((RCC_CFGR >> 2) & 3u) != 2u) {
    }
}

static void gpio_init(void) {
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    (void)RCC_AHB1ENR;
    /* PA2, PA3: alternate function 7 (USART2); PA3 pulled up so an open line reads idle;
     * PA5 (LD2): output */
    GPIOA_MODER = (GPIOA_MODER & ~((3u << 4) | (3u << 6) | (3u << 10))) | (2u << 4) | (2u << 6) | (1u << 10);
    GPIOA_OSPEEDR |= (2u << 4) | (2u << 6);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << 6)) | (1u << 6);
    GPIOA_AFRL = (GPIOA_AFRL & ~((0xFu << 8) | (0xFu << 12))) | (7u << 8) | (7u << 12);
}

static void usart_init(void) {
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    /* 16x oversampling (section 25.4.4): USARTDIV = 45 MHz / (16 x 115200) = 24.414, so
     * BRR = mantissa 24, fraction round(0.414 x 16) = 7: 0x187 = round(45 MHz / 115200) */
    USART2_BRR = (APB1_HZ + BOARD_BAUD / 2u) / BOARD_BAUD;
    USART2_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER1 = 1u << (USART2_IRQN - 32u);
}

void board_init(void) {
    clock_init();
    gpio_init();
    usart_init();
    SYST_RVR = BOARD_SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u;                                 /* AHB clock, interrupt, enable */
}

void board_idle(void) {
    if (g_head == g_tail) __asm__ __volatile__("wfi");
}

void board_led(int on) { GPIOA_BSRR = on ? (1u << 5) : (1u << 21); }

void board_delay_ms(uint32_t ms) {
    uint32_t start = g_ms;
    while ((uint32_t)(g_ms - start) < ms) __asm__ __volatile__("wfi");
}

void board_uart_write(const uint8_t *p, size_t n) {
    while (n--) {
        while (!(USART2_SR & USART_SR_TXE)) {
        }
        USART2_DR = *p++;
    }
}

void board_reset(void) {
    __asm__ __volatile__("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2);          /* VECTKEY, SYSRESETREQ */
    __asm__ __volatile__("dsb" ::: "memory");
    for (;;) {
    }
}

/* ---- the persistent state: an append-only log in two flash sectors --------------------------
 * A record is 8 words: seq, 5 words of state, CRC-32 of the 6 words before it, and a commit
 * word written last. Erased flash reads 0xFFFFFFFF, so a half-written record has no commit (or
 * a bad CRC) and is skipped. Saving appends after the newest record; when its sector is full,
 * the other sector is erased and the record goes to its first slot, so the newest valid record
 * survives a power cut at any point. A 128 KiB sector holds 4,096 records: one erase per 4,096
 * rounds. While a sector erases (1-2 s, section 3.5) the CPU stalls on flash fetches and the
 * UART ring can overflow: the frames hit fail their CRC and the gateway resends on ASK_HELLO. */
extern const uint32_t __state_a__[], __state_b__[];
#define SECTOR_BYTES 0x20000u
#define RECORD_WORDS 8u
#define SLOTS (SECTOR_BYTES / (RECORD_WORDS * 4u))
#define COMMIT 0x514E4F4Bu                            /* "KONQ" */
#define ERASED 0xFFFFFFFFu

static const uint32_t *sector_base(unsigned s) { return s ? __state_b__ : __state_a__; }
static unsigned sector_number(unsigned s) { return s ? 6u : 5u; }   /* section 3.3, table 4 */

static int record_ok(const uint32_t *r) {
    return r[7] == COMMIT && r[0] != ERASED && qn_crc32(0, r, 24) == r[6];
}

/* the newest record: its sector, slot and seq; -1 if none */
static int newest(unsigned *sector, uint32_t *slot, uint32_t *seq) {
    int found = -1;
    for (unsigned s = 0; s < 2; s++) {
        const uint32_t *base = sector_base(s);
        for (uint32_t i = 0; i < SLOTS && base[i * RECORD_WORDS] != ERASED; i++) {
            const uint32_t *r = base + i * RECORD_WORDS;
            if (record_ok(r) && (found < 0 || r[0] > *seq)) {
                *sector = s;
                *slot = i;
                *seq = r[0];
                found = 0;
            }
        }
    }
    return found;
}

static void flash_wait(void) {
    while (FLASH_SR & FLASH_SR_BSY) {
    }
}

static void flash_unlock(void) {
    if (FLASH_CR & FLASH_CR_LOCK) {
        FLASH_KEYR = 0x45670123u;                    /* section 3.7.1 */
        FLASH_KEYR = 0xCDEF89ABu;
    }
    FLASH_SR = FLASH_SR_ERRORS;                      /* clear stale errors (write 1) */
}

static void flash_lock(void) {
    FLASH_CR = FLASH_CR_LOCK;
    /* the data cache may hold the old contents (section 3.5.x): reset it */
    FLASH_ACR &= ~FLASH_ACR_DCEN;
    FLASH_ACR |= FLASH_ACR_DCRST;
    FLASH_ACR &= ~FLASH_ACR_DCRST;
    FLASH_ACR |= FLASH_ACR_DCEN;
}

static int flash_erase(unsigned sector) {
    flash_wait();
    FLASH_CR = FLASH_CR_PSIZE_X32 | FLASH_CR_SER | FLASH_CR_SNB(sector_number(sector));
    FLASH_CR |= FLASH_CR_STRT;
    flash_wait();
    FLASH_CR = 0u;
    return (FLASH_SR & FLASH_SR_ERRORS) ? -1 : 0;
}

static int flash_program(const uint32_t *dst, const uint32_t *src, uint32_t words) {
    for (uint32_t i = 0; i < words; i++) {
        flash_wait();
        FLASH_CR = FLASH_CR_PSIZE_X32 | FLASH_CR_PG;
        *(volatile uint32_t *)(uintptr_t)(dst + i) = src[i];
        flash_wait();
        if (FLASH_SR & FLASH_SR_ERRORS) {
            FLASH_CR = 0u;
            return -1;
        }
    }
    FLASH_CR = 0u;
    return 0;
}

int state_load(void *buf, size_t n) {
    unsigned s;
    uint32_t slot, seq;
    if (n > STATE_MAX || newest(&s, &slot, &seq) != 0) return -1;
    memcpy(buf, sector_base(s) + slot * RECORD_WORDS + 1, n);
    return 0;
}

int state_save(const void *buf, size_t n) {
    if (n > STATE_MAX) return -1;
    unsigned s = 0;
    uint32_t slot = 0, seq = 0;
    int have = newest(&s, &slot, &seq) == 0;
    uint32_t rec[RECORD_WORDS];
    memset(rec, 0, sizeof rec);
    rec[0] = have ? seq + 1u : 1u;
    memcpy(rec + 1, buf, n);
    rec[6] = qn_crc32(0, rec, 24);
    rec[7] = COMMIT;
    const uint32_t *dst;
    int st = 0;
    flash_unlock();
    if (!have) {                                     /* first save, or both logs unreadable */
        s = 0;
        st = flash_erase(0);
        dst = sector_base(0);
    } else {
        /* the first erased slot after the newest record; garbage from a torn write is
         * skipped over (never reprogrammed: flash bits only go 1 -> 0) */
        uint32_t i = slot + 1u;
        const uint32_t *base = sector_base(s);
        while (i < SLOTS && base[i * RECORD_WORDS] != ERASED) i++;
        if (i < SLOTS) {
            dst = base + i * RECORD_WORDS;
        } else {
            s ^= 1u;
            st = flash_erase(s);
            dst = sector_base(s);
        }
    }
    if (st == 0) st = flash_program(dst, rec, RECORD_WORDS - 1u);
    if (st == 0) st = flash_program(dst + RECORD_WORDS - 1u, rec + RECORD_WORDS - 1u, 1u);   /* commit */
    flash_lock();
    return st == 0 && record_ok(dst) ? 0 : -1;
}

/* ---- the HAL ------------------------------------------------------------------------------- */
static int uart_read(void *ctx) {
    (void)ctx;
    if (g_head == g_tail) return -1;
    uint8_t b = g_ring[g_tail % RX_RING];
    g_tail++;
    return b;
}

static void uart_write(void *ctx, const uint8_t *p, size_t n) {
    (void)ctx;
    board_uart_write(p, n);
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    return g_ms;
}

static int load(void *ctx, void *buf, size_t n) {
    (void)ctx;
    return state_load(buf, n);
}

static int save(void *ctx, const void *buf, size_t n) {
    (void)ctx;
    return state_save(buf, n);
}

const qn_hal board_hal = {NULL, uart_read, uart_write, millis, load, save};
