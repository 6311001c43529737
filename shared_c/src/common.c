/* Qora Edge core — argument checks and small helpers shared by the aggregators. */
#include <string.h>

#include "internal.h"

qora_status qora__check_matrix(const void *x, size_t n, size_t d, size_t stride)
{
    if (x == NULL) {
        return QORA_ERR_NULL;
    }
    if (n == 0u || d == 0u) {
        return QORA_ERR_EMPTY;
    }
    if (n > QORA_MAX_CLIENTS) {
        return QORA_ERR_N;
    }
    if (stride < d) {
        return QORA_ERR_STRIDE;
    }
    return QORA_OK;
}

size_t qora__pad8(size_t bytes)
{
    return (bytes + 7u) & ~(size_t)7u;
}

void qora__gather_keys_i32(const int32_t *x, size_t n, size_t d, size_t stride, size_t j0,
                           size_t w, uint32_t *buf, size_t pitch)
{
    /* Fetch each row's next block while copying this one: a hundred short
     * strided runs are too many streams for hardware prefetchers. Only blocks
     * inside the row are named, so no pointer leaves the array. */
    int ahead = j0 + 2u * w <= d;
    size_t i;
    size_t l;
    for (i = 0; i < n; i++) {
        const int32_t *src = x + i * stride + j0;
        uint32_t *dst = buf + i * pitch;
        for (l = 0; ahead && l < w; l += 16u) {
            QORA__PREFETCH(src + w + l);
        }
        for (l = 0; l < w; l++) {
            dst[l] = (uint32_t)src[l] ^ 0x80000000u;
        }
    }
}

#ifndef QORA_NO_F32
int qora__nonfinite_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

int qora__gather_keys_f32(const float *x, size_t n, size_t d, size_t stride, size_t j0,
                          size_t w, uint32_t *buf, size_t pitch)
{
    /* An all-ones exponent (NaN, Inf) carries into bit 31 when 2^23 is added
     * to the exponent field; OR-ing that over the block finds any of them
     * without a branch per value. */
    uint32_t bad = 0;
    int ahead = j0 + 2u * w <= d;
    size_t i;
    size_t l;
    for (i = 0; i < n; i++) {
        const float *src = x + i * stride + j0;
        uint32_t *dst = buf + i * pitch;
        for (l = 0; ahead && l < w; l += 16u) {
            QORA__PREFETCH(src + w + l); /* see qora__gather_keys_i32 */
        }
        memcpy(dst, src, w * sizeof *dst);
        for (l = 0; l < w; l++) {
            uint32_t u = dst[l];
            uint32_t flip = (0u - (u >> 31)) | 0x80000000u;
            bad |= (u & 0x7f800000u) + 0x00800000u;
            dst[l] = u ^ flip;
        }
    }
    return (bad & 0x80000000u) != 0u;
}

float qora__to_f32(double v)
{
    const double max = 3.4028234663852886e38; /* FLT_MAX */
    if (v > max) {
        return (float)max;
    }
    if (v < -max) {
        return (float)-max;
    }
    return (float)v;
}
#endif
