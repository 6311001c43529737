/*
 * Qora Edge core — FedAvg (McMahan et al., AISTATS 2017): out = sum w_i x_i / sum w_i.
 *
 * Q16.16: the numerator accumulates in int64 in client order 0..n-1. When the
 * weights sum to at most 2^32 the numerator is bounded by 2^32 * 2^31 = 2^63
 * and cannot overflow, so the block loop runs without checks; larger weight
 * sums take the saturating path, which adds in the same order on every target.
 * Float32: numerator and weight sum in double, one rounding at the end.
 */
#include "internal.h"

static size_t lanes_for(size_t d)
{
    return d < QORA_FEDAVG_COLS ? d : QORA_FEDAVG_COLS;
}

size_t qora_fedavg_scratch_size(size_t n, size_t d)
{
    if (n == 0u || d == 0u || n > QORA_MAX_CLIENTS) {
        return 0;
    }
    return qora__pad8(lanes_for(d) * 8u);
}

static qora_status check(const void *x, size_t n, size_t d, size_t stride, const void *out,
                         const void *scratch, size_t scratch_size)
{
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (out == NULL || scratch == NULL) {
        return QORA_ERR_NULL;
    }
    if (scratch_size < qora_fedavg_scratch_size(n, d)) {
        return QORA_ERR_SCRATCH;
    }
    return QORA_OK;
}

qora_status qora_fedavg_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            const uint32_t *weights, qora_q16_t *out, uint64_t *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags)
{
    int64_t *acc = (int64_t *)scratch;
    uint64_t total = 0;
    size_t lanes = lanes_for(d);
    size_t i;
    size_t j0;
    int exact;
    qora_status st = check(x, n, d, stride, out, scratch, scratch_size);
    if (st != QORA_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        total += weights != NULL ? weights[i] : 1u; /* < 2^48: no overflow */
    }
    if (total == 0u) {
        return QORA_ERR_WEIGHTS;
    }
    exact = total <= ((uint64_t)1 << 32);
    (void)exact;
    for (j0 = 0; j0 < d; j0 += lanes) {
        size_t w = d - j0 < lanes ? d - j0 : lanes;
        size_t l;
        for (l = 0; l < w; l++) {
            acc[l] = 0;
        }
        for (i = 0; i < n; i++) {
            const int32_t *row = x + i * stride + j0;
            int64_t wi = weights != NULL ? (int64_t)weights[i] : 1;
#ifndef QORA_SMALL
            if (exact) {
                for (l = 0; l < w; l++) {
                    acc[l] += wi * row[l];
                }
                continue;
            }
#endif
            for (l = 0; l < w; l++) {
                acc[l] = qora_sat_add_i64(acc[l], wi * row[l], flags);
            }
        }
        for (l = 0; l < w; l++) {
            out[j0 + l] = qora_q16_from_i64_sat(qora_div_round_i64(acc[l], total), flags);
        }
        if (dev_sq != NULL) {
            qora_deviation_sq_q16(x + j0, n, w, stride, out + j0, dev_sq, flags);
        }
    }
    return QORA_OK;
}

#ifndef QORA_NO_F32
qora_status qora_fedavg_f32(const float *x, size_t n, size_t d, size_t stride,
                            const float *weights, float *out, double *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags)
{
    double *acc = (double *)scratch;
    double total = 0.0;
    size_t lanes = lanes_for(d);
    size_t i;
    size_t j0;
    qora_status st = check(x, n, d, stride, out, scratch, scratch_size);
    (void)flags; /* float results are rounded, never saturated */
    if (st != QORA_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        float wi = weights != NULL ? weights[i] : 1.0f;
        if (qora__nonfinite_f32(wi)) {
            return QORA_ERR_NONFINITE;
        }
        if (wi < 0.0f) {
            return QORA_ERR_WEIGHTS;
        }
        total += (double)wi;
    }
    if (!(total > 0.0)) {
        return QORA_ERR_WEIGHTS;
    }
    for (j0 = 0; j0 < d; j0 += lanes) {
        size_t w = d - j0 < lanes ? d - j0 : lanes;
        size_t l;
        double probe = 0.0;
        for (l = 0; l < w; l++) {
            acc[l] = 0.0;
        }
        for (i = 0; i < n; i++) {
            const float *row = x + i * stride + j0;
            double wi = weights != NULL ? (double)weights[i] : 1.0;
            for (l = 0; l < w; l++) {
                acc[l] += wi * (double)row[l];
            }
        }
        /* products of floats cannot overflow a double: a non-finite sum means
         * a non-finite input (0 * Inf is NaN too) */
        for (l = 0; l < w; l++) {
            probe += acc[l] * 0.0;
        }
        if (probe != probe) {
            return QORA_ERR_NONFINITE;
        }
        for (l = 0; l < w; l++) {
            out[j0 + l] = qora__to_f32(acc[l] / total);
        }
        if (dev_sq != NULL) {
            qora_deviation_sq_f32(x + j0, n, w, stride, out + j0, dev_sq);
        }
    }
    return QORA_OK;
}
#endif
