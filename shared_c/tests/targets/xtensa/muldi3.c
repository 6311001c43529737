/*
 * muldi3.c - 64-bit multiplication helper for the lx106 libgcc.
 *
 * Debian's gcc-xtensa-lx106 ships a libgcc without __muldi3 (and without
 * __umulsidi3).  GCC calls __muldi3 for every 64x64 and every widening
 * 32x32->64 multiplication.  The lx106 has MULL (low 32 bits of a 32x32
 * product) but no MULUH/MULSH, so the high half is built from 16x16->32
 * partial products.  Only 32-bit multiplications are used here; nothing in
 * this file may itself be a 64-bit multiplication (that would recurse).
 *
 * Two's-complement wrap-around makes the same code correct for signed and
 * unsigned operands: only the low 64 bits of the product are returned.
 */
#include <stdint.h>

long long __muldi3(long long a, long long b);
unsigned long long __umulsidi3(unsigned int a, unsigned int b);

/* Full 32x32 -> 64 unsigned product from four 16x16 -> 32 products. */
static uint64_t umul32x32(uint32_t a, uint32_t b)
{
    uint32_t al = a & 0xFFFFu, ah = a >> 16;
    uint32_t bl = b & 0xFFFFu, bh = b >> 16;
    uint32_t ll = al * bl;
    uint32_t lh = al * bh;
    uint32_t hl = ah * bl;
    uint32_t hh = ah * bh;
    /* Sum of three values <= 0xFFFF each: cannot overflow 32 bits. */
    uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    uint32_t lo = (ll & 0xFFFFu) | (mid << 16);
    uint32_t hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16);

    return ((uint64_t)hi << 32) | lo;
}

unsigned long long __umulsidi3(unsigned int a, unsigned int b)
{
    return umul32x32(a, b);
}

long long __muldi3(long long a, long long b)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    uint32_t a0 = (uint32_t)ua, a1 = (uint32_t)(ua >> 32);
    uint32_t b0 = (uint32_t)ub, b1 = (uint32_t)(ub >> 32);
    uint64_t p = umul32x32(a0, b0);
    /* The a1*b1 term only affects bits >= 64 and is dropped. */
    uint32_t hi = (uint32_t)(p >> 32) + a0 * b1 + a1 * b0;

    return (long long)(((uint64_t)hi << 32) | (uint32_t)p);
}
