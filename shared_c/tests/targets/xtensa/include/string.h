/* The lx106 toolchain ships no C library, so not even <string.h>: this port
 * declares the four functions the core uses; mem.c defines them. */
#ifndef QORA_XTENSA_STRING_H
#define QORA_XTENSA_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
