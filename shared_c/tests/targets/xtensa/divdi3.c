/*
 * divdi3.c - integer division helpers missing from the lx106 libgcc.
 *
 * The lx106 has no divide instruction (no DIV32 option), so GCC calls
 * libgcc for every division.  Debian's gcc-xtensa-lx106 libgcc lacks
 *   __udivsi3 __divsi3 __umodsi3                 (32-bit; __modsi3 exists)
 *   __udivdi3 __divdi3 __umoddi3                 (64-bit)
 * and its own __moddi3 / __divmoddi4 / __udivmoddi4 reference the missing
 * 32-bit helpers, so they cannot be linked either.  This file provides all of
 * them with plain shift-and-subtract long division.  No '/' or '%' operator is
 * used here (that would call these very functions).
 *
 * C semantics: quotients truncate toward zero, remainders take the sign of
 * the dividend.  Division by zero is undefined in C; here it returns an
 * all-ones quotient and the dividend as remainder (no trap).
 */
#include <stdint.h>

unsigned int __udivsi3(unsigned int n, unsigned int d);
unsigned int __umodsi3(unsigned int n, unsigned int d);
int __divsi3(int n, int d);
int __modsi3(int n, int d);
unsigned long long __udivmoddi4(unsigned long long n, unsigned long long d,
                                unsigned long long *rem);
long long __divmoddi4(long long n, long long d, long long *rem);
unsigned long long __udivdi3(unsigned long long n, unsigned long long d);
unsigned long long __umoddi3(unsigned long long n, unsigned long long d);
long long __divdi3(long long n, long long d);
long long __moddi3(long long n, long long d);

/* ---- 32-bit ---------------------------------------------------------- */

static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t *rem)
{
    uint32_t q = 0;
    int shift;

    if (d == 0) {
        *rem = n;
        return 0xFFFFFFFFu;
    }
    if (n < d) {
        *rem = n;
        return 0;
    }
    /* Align the divisor's top bit with the dividend's (NSAU instruction). */
    shift = __builtin_clz(d) - __builtin_clz(n);
    d <<= shift;
    for (; shift >= 0; shift--) {
        q <<= 1;
        if (n >= d) {
            n -= d;
            q |= 1u;
        }
        d >>= 1;
    }
    *rem = n;
    return q;
}

static uint32_t uabs32(int32_t x)
{
    return x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
}

unsigned int __udivsi3(unsigned int n, unsigned int d)
{
    uint32_t r;
    return udivmod32(n, d, &r);
}

unsigned int __umodsi3(unsigned int n, unsigned int d)
{
    uint32_t r;
    (void)udivmod32(n, d, &r);
    return r;
}

int __divsi3(int n, int d)
{
    uint32_t r;
    uint32_t q = udivmod32(uabs32(n), uabs32(d), &r);
    return (int)(((n < 0) != (d < 0)) ? 0u - q : q);
}

int __modsi3(int n, int d)
{
    uint32_t r;
    (void)udivmod32(uabs32(n), uabs32(d), &r);
    return (int)(n < 0 ? 0u - r : r);
}

/* ---- 64-bit ---------------------------------------------------------- */

static int clz64(uint64_t x) /* x != 0 */
{
    uint32_t hi = (uint32_t)(x >> 32);
    return hi != 0 ? __builtin_clz(hi) : 32 + __builtin_clz((uint32_t)x);
}

static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t q = 0;
    int shift;

    if (d == 0) {
        *rem = n;
        return ~(uint64_t)0;
    }
    if (n < d) {
        *rem = n;
        return 0;
    }
    if ((n >> 32) == 0) { /* both fit in 32 bits */
        uint32_t r32;
        uint32_t q32 = udivmod32((uint32_t)n, (uint32_t)d, &r32);
        *rem = r32;
        return q32;
    }
    shift = clz64(d) - clz64(n);
    d <<= shift;
    for (; shift >= 0; shift--) {
        q <<= 1;
        if (n >= d) {
            n -= d;
            q |= 1u;
        }
        d >>= 1;
    }
    *rem = n;
    return q;
}

static uint64_t uabs64(int64_t x)
{
    return x < 0 ? 0u - (uint64_t)x : (uint64_t)x;
}

unsigned long long __udivmoddi4(unsigned long long n, unsigned long long d,
                                unsigned long long *rem)
{
    uint64_t r;
    uint64_t q = udivmod64(n, d, &r);
    if (rem) {
        *rem = r;
    }
    return q;
}

long long __divmoddi4(long long n, long long d, long long *rem)
{
    uint64_t r;
    uint64_t q = udivmod64(uabs64(n), uabs64(d), &r);
    if (rem) {
        *rem = (long long)(n < 0 ? 0u - r : r);
    }
    return (long long)(((n < 0) != (d < 0)) ? 0u - q : q);
}

unsigned long long __udivdi3(unsigned long long n, unsigned long long d)
{
    uint64_t r;
    return udivmod64(n, d, &r);
}

unsigned long long __umoddi3(unsigned long long n, unsigned long long d)
{
    uint64_t r;
    (void)udivmod64(n, d, &r);
    return r;
}

long long __divdi3(long long n, long long d)
{
    return __divmoddi4(n, d, 0);
}

long long __moddi3(long long n, long long d)
{
    long long r;
    (void)__divmoddi4(n, d, &r);
    return r;
}
