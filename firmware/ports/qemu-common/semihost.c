/* Semihosting operations for the QEMU boards, on the port's sh_call() trap. */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_RENAME = 0x0F,
    SYS_EXIT_EXTENDED = 0x20   /* SYS_EXIT (0x18) takes a reason, not a status, on 32-bit */
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
/* SYS_OPEN modes are fopen's, by index: 1 = "rb", 5 = "wb" */
#define OPEN_RB 1u
#define OPEN_WB 5u

void sh_write0(const char *s) { (void)sh_call(SYS_WRITE0, s); }

void sh_write_hex(const char *label, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++) buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    buf[10] = '\0';
    sh_write0(label);
    sh_write0(buf);
}

void sh_exit(int status) {
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)sh_call(SYS_EXIT_EXTENDED, block);
    for (;;) {   /* no semihosting (a debugger-less real board): stop here */
    }
}

static int sh_open(const char *name, uint32_t mode) {
    uint32_t block[3] = {(uint32_t)(uintptr_t)name, mode, (uint32_t)strlen(name)};
    return (int)sh_call(SYS_OPEN, block);
}

static void sh_close(int fd) {
    uint32_t block[1] = {(uint32_t)fd};
    (void)sh_call(SYS_CLOSE, block);
}

int sh_load(const char *name, void *buf, size_t n) {
    int fd = sh_open(name, OPEN_RB);
    if (fd < 0) return -1;
    uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)n};
    uint32_t left = sh_call(SYS_READ, block);   /* bytes NOT read */
    sh_close(fd);
    return left == 0 ? 0 : -1;
}

int sh_save(const char *name, const void *buf, size_t n) {
    char tmp[64];
    size_t k = strlen(name);
    if (k + 5 > sizeof tmp) return -1;
    memcpy(tmp, name, k);
    memcpy(tmp + k, ".tmp", 5);
    int fd = sh_open(tmp, OPEN_WB);
    if (fd < 0) return -1;
    uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)n};
    uint32_t left = sh_call(SYS_WRITE, block);  /* bytes NOT written */
    sh_close(fd);
    if (left != 0) return -1;
    uint32_t ren[4] = {(uint32_t)(uintptr_t)tmp, (uint32_t)k + 4, (uint32_t)(uintptr_t)name, (uint32_t)k};
    return sh_call(SYS_RENAME, ren) == 0 ? 0 : -1;
}
