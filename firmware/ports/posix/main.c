/* A node as a host process: a TCP socket is its UART (it listens; the gateway connects with
 * socket://127.0.0.1:PORT, as it does to a QEMU board), a file is its flash.
 *
 *   qnode-posix --config node.blob [--state node.state] [--listen PORT] [--exit-after ROUNDS]
 *
 * The core stays malloc-free; this port is ordinary POSIX C. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qnode/node.h"

typedef struct {
    int listen_fd, fd;
    const char *state_path;
} posix_ctx;

static uint64_t g_blob[(1u << 22) / 8];   /* 4 MiB, 8-byte aligned: the "config partition" */

static void accept_peer(posix_ctx *c) {
    if (c->fd >= 0 || c->listen_fd < 0) return;
    struct pollfd p = {c->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return;
    c->fd = accept(c->listen_fd, NULL, NULL);
    if (c->fd >= 0) fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

static int uart_read(void *ctx) {
    posix_ctx *c = ctx;
    accept_peer(c);
    if (c->fd < 0) return -1;
    uint8_t b;
    ssize_t n = read(c->fd, &b, 1);
    if (n == 1) return b;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {  /* the gateway went away */
        close(c->fd);
        c->fd = -1;
    }
    return -1;
}

static void uart_write(void *ctx, const uint8_t *p, size_t n) {
    posix_ctx *c = ctx;
    accept_peer(c);
    while (c->fd >= 0 && n > 0) {
        ssize_t k = write(c->fd, p, n);
        if (k > 0) { p += k; n -= (size_t)k; continue; }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd q = {c->fd, POLLOUT, 0};
            (void)poll(&q, 1, 100);
            continue;
        }
        close(c->fd);
        c->fd = -1;
    }
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)(t.tv_sec * 1000 + t.tv_nsec / 1000000);
}

static int load(void *ctx, void *buf, size_t n) {
    posix_ctx *c = ctx;
    FILE *f = c->state_path ? fopen(c->state_path, "rb") : NULL;
    if (!f) return -1;
    size_t k = fread(buf, 1, n, f);
    fclose(f);
    return k == n ? 0 : -1;
}

static int save(void *ctx, const void *buf, size_t n) {
    posix_ctx *c = ctx;
    if (!c->state_path) return -1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->state_path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    size_t k = fwrite(buf, 1, n, f);
    fclose(f);
    return (k == n && rename(tmp, c->state_path) == 0) ? 0 : -1;   /* atomic, like a flash page swap */
}

int main(int argc, char **argv) {
    const char *config = NULL;
    posix_ctx ctx = {-1, -1, NULL};
    int port = 0;
    unsigned long exit_after = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--state")) ctx.state_path = argv[i + 1];
        else if (!strcmp(argv[i], "--listen")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--exit-after")) exit_after = strtoul(argv[i + 1], NULL, 10);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!config || port <= 0) {
        fprintf(stderr, "usage: %s --config BLOB --listen PORT [--state FILE] [--exit-after N]\n", argv[0]);
        return 2;
    }
    /* a gateway that goes away mid-write must not kill the board: write() reports it instead */
    signal(SIGPIPE, SIG_IGN);
    FILE *f = fopen(config, "rb");
    if (!f) { perror(config); return 2; }
    size_t n = fread(g_blob, 1, sizeof g_blob, f);
    fclose(f);
    static qn_config cfg;
    int st = qn_config_parse(&cfg, (const uint8_t *)g_blob, n);
    if (st != 0) { fprintf(stderr, "%s: not a valid config blob (error %d)\n", config, st); return 2; }

    ctx.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ctx.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ctx.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(ctx.listen_fd, 1) != 0) {
        perror("listen");
        return 2;
    }
    fprintf(stderr, "qnode-posix %s/%s listening on 127.0.0.1:%d\n", cfg.fleet, cfg.node, port);
    /* wait for the gateway, so HELLO is not lost */
    struct pollfd p = {ctx.listen_fd, POLLIN, 0};
    (void)poll(&p, 1, -1);
    accept_peer(&ctx);

    qn_hal hal = {&ctx, uart_read, uart_write, millis, load, save};
    static qn_node node;
    qn_node_init(&node, &hal, &cfg);
    for (;;) {
        uint32_t sent = qn_node_poll(&node);
        if (exit_after && sent >= exit_after) break;
        struct pollfd q = {ctx.fd >= 0 ? ctx.fd : ctx.listen_fd, POLLIN, 0};
        (void)poll(&q, 1, 5);
    }
    return 0;
}
