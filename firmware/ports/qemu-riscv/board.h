/* The QEMU virt board: ns16550 UART, the CLINT timer, and the HAL the node core needs. */
#ifndef QEMU_RISCV_BOARD_H
#define QEMU_RISCV_BOARD_H
#include "qnode/node.h"

/* Where the harness loads the config blob (link.ld reserves it). */
#define QN_CONFIG_ADDR_TEXT "0x80400000"

void board_init(void);
/* Sleep up to 1 ms (wfi until the timer) when the line has been quiet for a while. */
void board_idle(void);
extern const qn_hal board_hal;

#endif
