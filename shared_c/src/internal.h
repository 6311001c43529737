/*
 * Qora Edge core — helpers shared by the aggregators (not public API).
 */
#ifndef QORA_INTERNAL_H
#define QORA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qora/aggregate.h"

/* Columns handled per block by the coordinate-wise methods. Each block copies
 * n x QORA_BLOCK_COLS values into scratch, so the block stays in L1 on a host
 * and the scratch stays small on a microcontroller (8 columns x 20 clients =
 * 640 bytes). Must be a multiple of 4 and at most 4096 (the deviation fast path
 * sums at most 4096 squares below 2^52 in one uint64). */
#ifndef QORA_BLOCK_COLS
#define QORA_BLOCK_COLS 64
#endif

/* Columns per block of the Krum distance kernel: larger blocks amortise the
 * per-pair reduction; n x QORA_KRUM_COLS values should fit in L2. */
#ifndef QORA_KRUM_COLS
#define QORA_KRUM_COLS 1024
#endif

/* Columns per block of FedAvg: its accumulators (8 bytes a column) stay in
 * L1 while each row streams a long contiguous run, which hardware prefetchers
 * follow; short runs across 100 rows defeat them. */
#ifndef QORA_FEDAVG_COLS
#define QORA_FEDAVG_COLS 2048
#endif

/* QORA_SMALL: choose the smaller code where speed and size disagree (one
 * accumulation loop instead of a checked and an unchecked one, no unrolled
 * tiles). On by default when the compiler optimises for size (-Os). Results
 * are identical either way. */
#if !defined(QORA_SMALL) && defined(__OPTIMIZE_SIZE__)
#define QORA_SMALL 1
#endif

/* Hint that memory will be read soon (no effect on results). Compilers without
 * the builtin get nothing. */
#if defined(__GNUC__) || defined(__clang__)
#define QORA__PREFETCH(p) __builtin_prefetch(p)
#else
#define QORA__PREFETCH(p) ((void)(p))
#endif

#if QORA_BLOCK_COLS < 4 || QORA_BLOCK_COLS > 4096 || (QORA_BLOCK_COLS % 4) != 0
#error "QORA_BLOCK_COLS must be a multiple of 4 in [4, 4096]"
#endif
#if QORA_KRUM_COLS < 4 || QORA_KRUM_COLS > 4096 || (QORA_KRUM_COLS % 4) != 0
#error "QORA_KRUM_COLS must be a multiple of 4 in [4, 4096]"
#endif

/* Common argument checks for an n x d row-major matrix with a row stride. */
qora_status qora__check_matrix(const void *x, size_t n, size_t d, size_t stride);

/* Round a byte count up to a multiple of 8, so consecutive scratch regions keep
 * the 8-byte alignment the caller guarantees for the scratch base. */
size_t qora__pad8(size_t bytes);

/* ---- selection networks ----------------------------------------------------
 * A network is a list of comparators (lo, hi), lo < hi, stored as pairs of
 * uint16. Applying it to n rows leaves every row position p holding a value
 * that is correct for the positions the network was built for: Batcher's
 * odd-even merge sort, pruned backwards so that comparators which cannot change
 * the contents of the wanted classes are dropped. Classes are given by two cut
 * points: positions [0, lo_cut), [lo_cut, hi_cut), [hi_cut, n) are three sets
 * whose contents (not order) matter; a cut equal to another means an empty set.
 * For the median pass cuts that isolate the middle positions.                */
size_t qora__network_max(size_t n);
size_t qora__network_build(uint16_t *pairs, uint8_t *labels, size_t n, size_t lo_cut,
                           size_t hi_cut);

/* Sort-network pass over a block of uint32 keys (n rows, row pitch `pitch`,
 * w lanes used). */
void qora__network_apply(const uint16_t *pairs, size_t count, uint32_t *buf, size_t pitch,
                         size_t w);

/* Copy columns [j0, j0 + w) of n rows (d columns each) into buf as uint32 keys
 * whose unsigned order is the values' order (row pitch `pitch`), prefetching
 * the next block.
 *   Q16.16: key = v XOR 2^31, so v = key - 2^31.
 *   float32: key = bits with the sign bit set for v >= 0 and all bits flipped
 *   for v < 0 (-0.0 sorts just below +0.0; no NaN gets here). Returns nonzero
 *   if a value is NaN or +-Inf. */
void qora__gather_keys_i32(const int32_t *x, size_t n, size_t d, size_t stride, size_t j0,
                           size_t w, uint32_t *buf, size_t pitch);
#ifndef QORA_NO_F32
int qora__gather_keys_f32(const float *x, size_t n, size_t d, size_t stride, size_t j0,
                          size_t w, uint32_t *buf, size_t pitch);

/* The float a float32 key stands for (inline: it sits in vectorised loops). */
static inline float qora__key_to_f32(uint32_t key)
{
    /* A union, not memcpy: with -ffreestanding memcpy is a real call. Reading
     * the other member reinterprets the bytes (C99 6.5.2.3, footnote 82). */
    union {
        uint32_t u;
        float f;
    } pun;
    pun.u = key ^ (((key >> 31) - 1u) | 0x80000000u);
    return pun.f;
}

/* double -> float without the undefined out-of-range conversion: clamps to
 * +-FLT_MAX (only reachable by rounding at the very top of the range). */
float qora__to_f32(double v);

/* Nonzero if x is NaN or +-Inf (integer test on the bits, no libm). */
int qora__nonfinite_f32(float x);
#endif

/* |a - b| of two int32 as a uint32 (it is below 2^32), formed on order-preserving
 * biased values (v XOR 2^31) so no signed operation can overflow; vectorises. */
static inline uint32_t qora__absdiff_i32(int32_t a, int32_t b)
{
    uint32_t u = (uint32_t)a ^ 0x80000000u;
    uint32_t v = (uint32_t)b ^ 0x80000000u;
    return u > v ? u - v : v - u;
}

/* Scratch regions: the scratch base is 8-byte aligned (documented contract),
 * every region size is padded with qora__pad8, so every region is aligned. */
#define QORA__AT(base, offset) ((void *)((unsigned char *)(base) + (offset)))

#endif /* QORA_INTERNAL_H */
