/* The mps2-an386 board: CMSDK UART0, SysTick, and the HAL the node core needs. */
#ifndef QEMU_MPS2_BOARD_H
#define QEMU_MPS2_BOARD_H
#include "qnode/node.h"

/* Where the harness loads the config blob (link.ld reserves it). */
#define QN_CONFIG_ADDR_TEXT "0x00300000"

void board_init(void);
/* Sleep until the next SysTick (1 ms) when the line has been quiet for a while. */
void board_idle(void);
void SysTick_Handler(void);
extern const qn_hal board_hal;

#endif
