/* The node on a QEMU board: parse the config blob the harness loaded at the board's config
 * address (QN_CONFIG_ADDR_TEXT in board.h; link.ld), then run the portable node forever. There is no exit path: a test ends the
 * board by killing QEMU, as unplugging a real one. */
#include <stdint.h>

#include "board.h"
#include "semihost.h"

extern const uint8_t __config_start__[];
extern const uint8_t __config_size__[];   /* an absolute symbol: its address is the size */

static qn_config g_cfg;
static qn_node g_node;

int main(void) {
    board_init();
    int st = qn_config_parse(&g_cfg, __config_start__, (size_t)(uintptr_t)__config_size__);
    if (st != 0) {
        /* qn_config_parse's errors are -1 .. -8 (config.c) */
        char code[3] = {'-', (char)('0' + (-st) % 10), '\0'};
        sh_write0("qnode: no valid config blob at " QN_CONFIG_ADDR_TEXT " (qn_config_parse error ");
        sh_write0(code);
        sh_write0("); load one with -device loader,file=node.blob,addr=" QN_CONFIG_ADDR_TEXT ",force-raw=on\n");
        sh_exit(PORT_EXIT_CONFIG);
    }
    qn_node_init(&g_node, &board_hal, &g_cfg);
    for (;;) {
        (void)qn_node_poll(&g_node);
        board_idle();
    }
}
