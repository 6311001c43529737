/* The node on a Nucleo-F446RE: the config blob is flashed at 0x08060000 (sector 7, link.ld);
 * USART2 (the ST-Link virtual COM port, 115200 8N1) is the line to `qora gateway`.
 *
 * A board without a debugger has no semihosting, so problems are reported on the line as LOG
 * frames (the gateway prints them) and on LD2: a missing or corrupt config blob repeats its
 * LOG line every second with LD2 blinking fast; a fault sends one LOG line and resets. In
 * normal operation LD2 toggles at every update sent. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "qnode/frame.h"

extern const uint8_t __config_start__[];
extern const uint8_t __config_size__[];   /* an absolute symbol: its address is the size */

static qn_config g_cfg;
static qn_node g_node;

/* a LOG frame straight to the line (also usable from the fault handler: no state) */
void board_log(const char *text);
void board_log(const char *text) {
    uint8_t frame[QN_FRAME_MAX_ENCODED(128u)];
    size_t n = strlen(text);
    if (n > 128u) n = 128u;
    size_t k = qn_frame_encode(QN_FRAME_LOG, (const uint8_t *)text, n, frame, sizeof frame);
    if (k) board_uart_write(frame, k);
}

int main(void) {
    board_init();
    int st = qn_config_parse(&g_cfg, __config_start__, (size_t)(uintptr_t)__config_size__);
    if (st != 0) {
        char msg[] = "qnode: no valid config blob at 0x08060000 (qn_config_parse error -0); "
                     "flash one with: st-flash write node.blob 0x08060000";
        char *digit = strchr(msg, ')') - 1;
        *digit = (char)('0' + (-st) % 10);
        for (int on = 0;; on ^= 1) {
            board_log(msg);
            for (int i = 0; i < 10; i++) {
                board_led(on ^= 1);
                board_delay_ms(100);
            }
        }
    }
    qn_node_init(&g_node, &board_hal, &g_cfg);
    uint32_t sent = 0;
    for (;;) {
        uint32_t now = qn_node_poll(&g_node);
        if (now != sent) {
            sent = now;
            board_led((int)(sent & 1u));
        }
        board_idle();
    }
}
