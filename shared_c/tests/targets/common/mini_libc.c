/*
 * mini_libc.c - the memory functions GCC may call even with -nostdlib
 * -ffreestanding (struct copies, large initialisers, loops it recognises).
 *
 * Written for the bare-metal test targets; no libc is linked.  Word-sized
 * copies are used when both pointers are 4-byte aligned (speed under QEMU
 * matters for large buffers); otherwise bytes.  No unaligned accesses, so this
 * is also safe on cores that fault on them (Cortex-M0+, rv32 without Zicclsm).
 *
 * GCC turns byte loops into calls to memset/memcpy (-ftree-loop-distribute-
 * patterns, enabled at -O2 even with -ffreestanding), which would make these
 * functions call themselves.  NO_LIBCALL switches that off per function.
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__)
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LIBCALL
#endif

/* A 32-bit word that may alias any other type. */
typedef uint32_t __attribute__((__may_alias__)) ml_word;

#define ML_WORD_ALIGNED(p) ((((uintptr_t)(p)) & (sizeof(ml_word) - 1u)) == 0u)

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/*
 * Forward copy.  The pointers are deliberately not restrict-qualified so the
 * compiler keeps loads and stores in order; memmove relies on that when dst
 * is below an overlapping src.
 */
NO_LIBCALL static void copy_forward(unsigned char *d, const unsigned char *s, size_t n)
{
    if (ML_WORD_ALIGNED(d) && ML_WORD_ALIGNED(s)) {
        ml_word *dw = (ml_word *)(void *)d;
        const ml_word *sw = (const ml_word *)(const void *)s;
        while (n >= sizeof(ml_word)) {
            *dw++ = *sw++;
            n -= sizeof(ml_word);
        }
        d = (unsigned char *)dw;
        s = (const unsigned char *)sw;
    }
    while (n > 0u) {
        *d++ = *s++;
        n--;
    }
}

NO_LIBCALL void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    copy_forward((unsigned char *)dst, (const unsigned char *)src, n);
    return dst;
}

NO_LIBCALL void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;

    if (d == s || n == 0u) {
        return dst;
    }
    /* Forward copy is safe unless dst starts inside [src, src + n). */
    if ((uintptr_t)d - (uintptr_t)s >= (uintptr_t)n) {
        copy_forward(d, s, n);
        return dst;
    }
    /* Overlap with dst above src: copy backwards. */
    d += n;
    s += n;
    if (ML_WORD_ALIGNED(d) && ML_WORD_ALIGNED(s)) {
        ml_word *dw = (ml_word *)(void *)d;
        const ml_word *sw = (const ml_word *)(const void *)s;
        while (n >= sizeof(ml_word)) {
            *--dw = *--sw;
            n -= sizeof(ml_word);
        }
        d = (unsigned char *)dw;
        s = (const unsigned char *)sw;
    }
    while (n > 0u) {
        *--d = *--s;
        n--;
    }
    return dst;
}

NO_LIBCALL void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char b = (unsigned char)c;

    /* Bytes until d is word aligned, then words, then the tail. */
    while (n > 0u && !ML_WORD_ALIGNED(d)) {
        *d++ = b;
        n--;
    }
    if (n >= sizeof(ml_word)) {
        ml_word *dw = (ml_word *)(void *)d;
        const ml_word w = (ml_word)b * (ml_word)0x01010101u;
        while (n >= 4u * sizeof(ml_word)) {
            dw[0] = w;
            dw[1] = w;
            dw[2] = w;
            dw[3] = w;
            dw += 4;
            n -= 4u * sizeof(ml_word);
        }
        while (n >= sizeof(ml_word)) {
            *dw++ = w;
            n -= sizeof(ml_word);
        }
        d = (unsigned char *)dw;
    }
    while (n > 0u) {
        *d++ = b;
        n--;
    }
    return dst;
}

NO_LIBCALL int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;

    while (n > 0u) {
        if (*p != *q) {
            return (int)*p - (int)*q;
        }
        p++;
        q++;
        n--;
    }
    return 0;
}

#if defined(__ARM_EABI__)
/*
 * ARM run-time ABI names.  GCC itself emits plain memcpy/memset, but clang
 * and some prebuilt objects call these.  Unused ones are dropped by
 * --gc-sections.  Note the argument order of __aeabi_memset: (dst, n, c).
 */
void __aeabi_memcpy(void *dst, const void *src, size_t n);
void __aeabi_memcpy4(void *dst, const void *src, size_t n);
void __aeabi_memcpy8(void *dst, const void *src, size_t n);
void __aeabi_memmove(void *dst, const void *src, size_t n);
void __aeabi_memmove4(void *dst, const void *src, size_t n);
void __aeabi_memmove8(void *dst, const void *src, size_t n);
void __aeabi_memset(void *dst, size_t n, int c);
void __aeabi_memset4(void *dst, size_t n, int c);
void __aeabi_memset8(void *dst, size_t n, int c);
void __aeabi_memclr(void *dst, size_t n);
void __aeabi_memclr4(void *dst, size_t n);
void __aeabi_memclr8(void *dst, size_t n);

void __aeabi_memcpy(void *dst, const void *src, size_t n) { (void)memcpy(dst, src, n); }
void __aeabi_memcpy4(void *dst, const void *src, size_t n) { (void)memcpy(dst, src, n); }
void __aeabi_memcpy8(void *dst, const void *src, size_t n) { (void)memcpy(dst, src, n); }
void __aeabi_memmove(void *dst, const void *src, size_t n) { (void)memmove(dst, src, n); }
void __aeabi_memmove4(void *dst, const void *src, size_t n) { (void)memmove(dst, src, n); }
void __aeabi_memmove8(void *dst, const void *src, size_t n) { (void)memmove(dst, src, n); }
void __aeabi_memset(void *dst, size_t n, int c) { (void)memset(dst, c, n); }
void __aeabi_memset4(void *dst, size_t n, int c) { (void)memset(dst, c, n); }
void __aeabi_memset8(void *dst, size_t n, int c) { (void)memset(dst, c, n); }
void __aeabi_memclr(void *dst, size_t n) { (void)memset(dst, 0, n); }
void __aeabi_memclr4(void *dst, size_t n) { (void)memset(dst, 0, n); }
void __aeabi_memclr8(void *dst, size_t n) { (void)memset(dst, 0, n); }
#endif
