/*
 * Qora Edge core — each client's squared L2 distance from a centre (the
 * aggregate), for reputation; and the final square roots.
 *
 * Q16.16: a difference of two int32 is below 2^32 in magnitude, so its square
 * fits a uint64 exactly; sums saturate at UINT64_MAX. The difference is formed
 * on order-preserving biased uint32 values (x XOR 2^31), so no signed arithmetic
 * can overflow and the loop vectorises. When every difference in a chunk is
 * below 2^26, up to 4096 squares (< 2^52 each) cannot wrap a uint64, so the
 * chunk is summed without per-term checks; otherwise it is redone term by term.
 */
#include "internal.h"

#define CHUNK 4096u

/* Squared distance of one row chunk from the centre, saturating. */
static uint64_t row_chunk_q16(const int32_t *a, const int32_t *c, size_t w, uint32_t *flags)
{
    uint64_t s = 0;
    uint32_t widest = 0;
    size_t t;
    for (t = 0; t < w; t++) {
        uint32_t dd = qora__absdiff_i32(a[t], c[t]);
        widest |= dd;
        s += (uint64_t)dd * dd;
    }
    if (widest < (1u << 26)) {
        return s;
    }
    s = 0;
    for (t = 0; t < w; t++) {
        uint32_t dd = qora__absdiff_i32(a[t], c[t]);
        s = qora_sat_add_u64(s, (uint64_t)dd * dd, flags);
    }
    return s;
}

qora_status qora_deviation_sq_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  const qora_q16_t *center, uint64_t *dev_sq,
                                  uint32_t *flags)
{
    size_t i;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (center == NULL || dev_sq == NULL) {
        return QORA_ERR_NULL;
    }
    for (i = 0; i < n; i++) {
        const int32_t *row = x + i * stride;
        size_t t0;
        for (t0 = 0; t0 < d; t0 += CHUNK) {
            size_t w = d - t0 < CHUNK ? d - t0 : CHUNK;
            uint64_t s = row_chunk_q16(row + t0, center + t0, w, flags);
            dev_sq[i] = qora_sat_add_u64(dev_sq[i], s, flags);
        }
    }
    return QORA_OK;
}

void qora_deviation_finish_q16(const uint64_t *dev_sq, size_t n, uint32_t *dev)
{
    size_t i;
    if (dev_sq == NULL || dev == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        /* sqrt of a Q32 sum of squares is an unsigned Q16.16 distance */
        dev[i] = qora_sqrt_round_u64(dev_sq[i]);
    }
}

#ifndef QORA_NO_F32
qora_status qora_deviation_sq_f32(const float *x, size_t n, size_t d, size_t stride,
                                  const float *center, double *dev_sq)
{
    size_t i;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (center == NULL || dev_sq == NULL) {
        return QORA_ERR_NULL;
    }
    for (i = 0; i < n; i++) {
        const float *row = x + i * stride;
        double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t t = 0;
        size_t l;
        /* eight independent partial sums: vectorisable without reassociation */
        for (; t + 8u <= d; t += 8u) {
            for (l = 0; l < 8u; l++) {
                double diff = (double)row[t + l] - (double)center[t + l];
                part[l] += diff * diff;
            }
        }
        for (; t < d; t++) {
            double diff = (double)row[t] - (double)center[t];
            part[0] += diff * diff;
        }
        dev_sq[i] += ((part[0] + part[1]) + (part[2] + part[3])) +
                     ((part[4] + part[5]) + (part[6] + part[7]));
    }
    return QORA_OK;
}

/* sqrt in double by Newton's method from a bit-level first guess: no libm. */
static double sqrt_f64(double v)
{
    double r;
    int i;
    if (!(v > 0.0)) {
        return 0.0;
    }
    r = v > 1.0 ? v : 1.0;
    /* halve the exponent roughly first so Newton converges in a few steps */
    while (r * r > 4.0 * v) {
        r *= 0.5;
    }
    for (i = 0; i < 60; i++) {
        double next = 0.5 * (r + v / r);
        if (next >= r) {
            break;
        }
        r = next;
    }
    return r;
}

void qora_deviation_finish_f32(const double *dev_sq, size_t n, float *dev)
{
    size_t i;
    if (dev_sq == NULL || dev == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        dev[i] = qora__to_f32(sqrt_f64(dev_sq[i]));
    }
}
#endif
