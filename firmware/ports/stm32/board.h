/* The Nucleo-F446RE: clocks, USART2 (the ST-Link virtual COM port), SysTick, flash storage,
 * and the HAL the node core needs. Register addresses and bits from RM0390 (STM32F446xx
 * reference manual) and PM0214 (Cortex-M4 programming manual); each use names its section. */
#ifndef STM32_BOARD_H
#define STM32_BOARD_H
#include <stddef.h>
#include <stdint.h>

#include "qnode/node.h"

#define BOARD_SYSCLK_HZ 180000000u
#define BOARD_BAUD 115200u

void board_init(void);
void board_idle(void);                  /* wfi: the next interrupt (SysTick or a byte) wakes */
void board_led(int on);                 /* LD2 (PA5) */
void board_delay_ms(uint32_t ms);
void board_uart_write(const uint8_t *p, size_t n);
void board_reset(void) __attribute__((noreturn));
extern const qn_hal board_hal;

/* Flash log of the persistent state (sectors 5 and 6); n <= STATE_MAX bytes. */
#define STATE_MAX 20u
int state_load(void *buf, size_t n);
int state_save(const void *buf, size_t n);

void SysTick_Handler(void);
void USART2_IRQHandler(void);

#endif
