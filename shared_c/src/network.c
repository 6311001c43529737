/*
 * Qora Edge core — pruned selection networks, applied to blocks of columns.
 *
 * Why a network: a coordinate-wise trimmed mean or median needs, for every
 * column, which values fall below, inside and above the kept range. A
 * comparator network does the same compare-exchanges on every column, so one
 * comparator is a branch-free min/max over a whole block of columns, which
 * compilers turn into SIMD; a per-column sort or quickselect branches on data
 * and cannot be vectorised.
 *
 * The network is Batcher's odd-even merge sort for the next power of two, with
 * comparators that touch positions >= n removed (those positions would hold
 * +Inf and never move), then pruned backwards: a comparator whose two outputs
 * are never touched again and belong to the same class is dropped, because
 * swapping two values inside one class changes no class's contents.
 */
#include "internal.h"

#define LABEL_MIXED 3u

/* Walk Batcher's network; store pairs when `pairs` is not NULL; return count. */
static size_t batcher(uint16_t *pairs, size_t n)
{
    size_t count = 0;
    size_t p;
    size_t k;
    size_t j;
    size_t i;
    /* p and k are powers of two: k % p is a mask, and two indices share a
     * quotient by 2p exactly when they agree above bit log2(2p) (no divide,
     * which Cortex-M0+ and lx106 would call a library routine for). */
    for (p = 1; p < n; p <<= 1) {
        for (k = p; k >= 1u; k >>= 1) {
            for (j = k & (p - 1u); j + k < n; j += 2u * k) {
                for (i = 0; i < k && i + j + k < n; i++) {
                    if (((i + j) ^ (i + j + k)) < 2u * p) {
                        if (pairs != NULL) {
                            pairs[2u * count] = (uint16_t)(i + j);
                            pairs[2u * count + 1u] = (uint16_t)(i + j + k);
                        }
                        count++;
                    }
                }
            }
        }
    }
    return count;
}

size_t qora__network_max(size_t n)
{
    return batcher(NULL, n);
}

size_t qora__network_build(uint16_t *pairs, uint8_t *labels, size_t n, size_t lo_cut,
                           size_t hi_cut)
{
    size_t total = batcher(pairs, n);
    size_t kept = 0;
    size_t c;
    size_t p;
    for (p = 0; p < n; p++) {
        labels[p] = (uint8_t)(p < lo_cut ? 0u : (p < hi_cut ? 1u : 2u));
    }
    /* Backwards: keep what can matter, compacting kept pairs towards the end. */
    for (c = total; c-- > 0u;) {
        uint16_t a = pairs[2u * c];
        uint16_t b = pairs[2u * c + 1u];
        if (labels[a] == labels[b] && labels[a] != LABEL_MIXED) {
            continue;
        }
        labels[a] = (uint8_t)LABEL_MIXED;
        labels[b] = (uint8_t)LABEL_MIXED;
        kept++;
        pairs[2u * (total - kept)] = a;
        pairs[2u * (total - kept) + 1u] = b;
    }
    /* Move the kept pairs (in their original order) to the front. */
    for (c = 0; c < kept; c++) {
        pairs[2u * c] = pairs[2u * (total - kept + c)];
        pairs[2u * c + 1u] = pairs[2u * (total - kept + c) + 1u];
    }
    return kept;
}

/* The network runs on uint32 keys whose unsigned order is the order of the
 * values (qora__gather_* make them), so one min/max kernel serves Q16.16 and
 * float32. lo/hi are computed first and both stored unconditionally: written
 * as "a = min(a, b)" compilers turn the store into a masked, branchy one. */
#ifndef QORA_SMALL
static void cmpx_full(uint32_t *restrict a, uint32_t *restrict b)
{
    size_t l;
    for (l = 0; l < QORA_BLOCK_COLS; l++) {
        uint32_t u = a[l];
        uint32_t v = b[l];
        uint32_t lo = u < v ? u : v;
        uint32_t hi = u < v ? v : u;
        a[l] = lo;
        b[l] = hi;
    }
}
#endif

static void cmpx(uint32_t *restrict a, uint32_t *restrict b, size_t w)
{
    size_t l;
    for (l = 0; l < w; l++) {
        uint32_t u = a[l];
        uint32_t v = b[l];
        uint32_t lo = u < v ? u : v;
        uint32_t hi = u < v ? v : u;
        a[l] = lo;
        b[l] = hi;
    }
}

void qora__network_apply(const uint16_t *pairs, size_t count, uint32_t *buf, size_t pitch,
                         size_t w)
{
    size_t c;
#ifndef QORA_SMALL
    if (w == QORA_BLOCK_COLS) {
        for (c = 0; c < count; c++) {
            cmpx_full(buf + pairs[2u * c] * pitch, buf + pairs[2u * c + 1u] * pitch);
        }
        return;
    }
#endif
    for (c = 0; c < count; c++) {
        cmpx(buf + pairs[2u * c] * pitch, buf + pairs[2u * c + 1u] * pitch, w);
    }
}
