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

void qora__gather_i32(const int32_t *x, size_t n, size_t d, size_t stride, size_t j0,
                      size_t w, int32_t *buf, size_t pitch)
{
    /* Fetch each row's next block while copying this one: a hundred short
     * strided runs are too many streams for hardware prefetchers. Only blocks
     * inside the row are named, so no pointer leaves the array. */
    int ahead = j0 + 2u * w <= d;
    size_t i;
    for (i = 0; i < n; i++) {
        const int32_t *src = x + i * stride + j0;
        size_t t;
        for (t = 0; ahead && t < w; t += 16u) {
            QORA__PREFETCH(src + w + t);
        }
        memcpy(buf + i * pitch, src, w * sizeof *buf);
    }
}

#ifndef QORA_NO_F32
int qora__nonfinite_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

int qora__gather_f32(const float *x, size_t n, size_t d, size_t stride, size_t j0,
                     size_t w, float *buf, size_t pitch)
{
    /* x * 0 is 0 for finite x and NaN for NaN or Inf, so one NaN test per
     * block finds any non-finite value. One probe per lane keeps the loop free
     * of a serial dependency, so it vectorises. */
    float probe[QORA_BLOCK_COLS];
    size_t i;
    size_t l;
    int bad = 0;
    int ahead = j0 + 2u * w <= d;
    for (l = 0; l < w; l++) {
        probe[l] = 0.0f;
    }
    for (i = 0; i < n; i++) {
        const float *src = x + i * stride + j0;
        float *dst = buf + i * pitch;
        for (l = 0; ahead && l < w; l += 16u) {
            QORA__PREFETCH(src + w + l); /* see qora__gather_i32 */
        }
        for (l = 0; l < w; l++) {
            dst[l] = src[l];
            probe[l] += src[l] * 0.0f;
        }
    }
    for (l = 0; l < w; l++) {
        bad |= probe[l] != probe[l];
    }
    return bad;
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
