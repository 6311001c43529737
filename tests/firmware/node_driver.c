/* Drives firmware/core/src/node.c in-process (ASan + UBSan) with a memory HAL:
 *   node_driver boot NODE_ID LAST_SENT_ROUND      -> boot with that persisted state
 *   node_driver feed NODE_ID HEXBYTES             -> boot, then feed raw UART bytes, poll
 * Prints "ok" on success; a sanitizer report kills it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qnode/node.h"

#define PERSIST_MAGIC 0x514E5331u

static qn_persist g_state;
static int g_have_state;
static const uint8_t *g_in;
static size_t g_in_n, g_in_pos;

static int uart_read(void *ctx) {
    (void)ctx;
    return g_in_pos < g_in_n ? g_in[g_in_pos++] : -1;
}
static void uart_write(void *ctx, const uint8_t *p, size_t n) { (void)ctx; (void)p; (void)n; }
static uint32_t millis(void *ctx) { (void)ctx; return 0; }
static int load(void *ctx, void *buf, size_t n) {
    (void)ctx;
    if (!g_have_state || n != sizeof g_state) return -1;
    memcpy(buf, &g_state, n);
    return 0;
}
static int save(void *ctx, const void *buf, size_t n) {
    (void)ctx;
    if (n == sizeof g_state) { memcpy(&g_state, buf, n); g_have_state = 1; }
    return 0;
}

static uint8_t *unhex(const char *s, size_t *n) {
    size_t k = strlen(s) / 2;
    uint8_t *out = malloc(k ? k : 1);
    for (size_t i = 0; i < k; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    *n = k;
    return out;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    static qn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.fleet, "f");
    snprintf(cfg.node, sizeof cfg.node, "%s", argv[2]);
    cfg.n_sizes = 2;
    cfg.sizes[0] = 2;
    cfg.sizes[1] = 2;
    cfg.epochs = 1;
    cfg.batch = 1;
    static const int32_t X[2] = {65536, 0};
    static const uint8_t y[1] = {0};
    cfg.m = 1;
    cfg.X = X;
    cfg.y = y;
    qn_hal hal = {NULL, uart_read, uart_write, millis, load, save};
    static qn_node node;
    if (!strcmp(argv[1], "boot")) {
        g_state.magic = PERSIST_MAGIC;
        g_state.last_sent_round = (uint32_t)strtoul(argv[3], NULL, 10);
        g_have_state = 1;
        qn_node_init(&node, &hal, &cfg);
    } else if (!strcmp(argv[1], "feed")) {
        qn_node_init(&node, &hal, &cfg);
        g_in = unhex(argv[3], &g_in_n);
        while (g_in_pos < g_in_n) (void)qn_node_poll(&node);
        (void)qn_node_poll(&node);
    } else {
        return 2;
    }
    puts("ok");
    return 0;
}
