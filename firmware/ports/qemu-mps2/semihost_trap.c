/* The semihosting trap on M-profile ARM: `bkpt 0xab`, r0 = operation, r1 = pointer to the
 * argument block, result in r0 (qemu-common/semihost.c builds the operations on it). */
#include "semihost.h"

uint32_t sh_call(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
