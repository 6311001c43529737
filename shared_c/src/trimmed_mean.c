/*
 * Qora Edge core — coordinate-wise trimmed mean and median.
 *
 * Per block of columns: copy the block, run the pruned selection network so
 * rows [k, n-k) hold the kept values of every column, sum them exactly
 * (int64 for Q16.16, double for float32) and divide once.
 *
 * The median is the trimmed mean with k = (n-1)/2: one kept value for odd n,
 * the two middle values for even n, whose (a + b) / 2 is formed in the wide
 * accumulator and so never overflows.
 *
 * Scratch: [network pairs][accumulators, lanes x 8 bytes][block, n x lanes x 4].
 */
#include "internal.h"

static size_t lanes_for(size_t d)
{
    return d < QORA_BLOCK_COLS ? d : QORA_BLOCK_COLS;
}

size_t qora_trimmed_mean_scratch_size(size_t n, size_t d)
{
    size_t lanes = lanes_for(d);
    if (n == 0u || d == 0u || n > QORA_MAX_CLIENTS) {
        return 0;
    }
    return qora__pad8(qora__network_max(n) * 2u * sizeof(uint16_t)) + qora__pad8(lanes * 8u) +
           qora__pad8(n * lanes * 4u);
}

size_t qora_median_scratch_size(size_t n, size_t d)
{
    return qora_trimmed_mean_scratch_size(n, d);
}

/* Checks shared by both types; on success sets up the network and regions. */
typedef struct {
    const uint16_t *pairs;
    size_t count;
    size_t lanes;
    void *acc;
    void *buf;
} block_plan;

static qora_status plan(const void *x, size_t n, size_t d, size_t stride, size_t k,
                        const void *out, void *scratch, size_t scratch_size, block_plan *bp)
{
    size_t pairs_bytes;
    uint16_t *pairs;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (out == NULL || scratch == NULL) {
        return QORA_ERR_NULL;
    }
    if (k >= n || k >= n - k) { /* 2k >= n without overflow: nothing kept */
        return QORA_ERR_K;
    }
    if (scratch_size < qora_trimmed_mean_scratch_size(n, d)) {
        return QORA_ERR_SCRATCH;
    }
    bp->lanes = lanes_for(d);
    pairs = (uint16_t *)scratch;
    pairs_bytes = qora__pad8(qora__network_max(n) * 2u * sizeof(uint16_t));
    bp->acc = QORA__AT(scratch, pairs_bytes);
    bp->buf = QORA__AT(scratch, pairs_bytes + qora__pad8(bp->lanes * 8u));
    /* the block buffer doubles as the label array while the network is built */
    bp->count = qora__network_build(pairs, (uint8_t *)bp->buf, n, k, n - k);
    bp->pairs = pairs;
    return QORA_OK;
}

qora_status qora_trimmed_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  size_t k, qora_q16_t *out, uint64_t *dev_sq,
                                  void *scratch, size_t scratch_size, uint32_t *flags)
{
    block_plan bp;
    int64_t *acc;
    uint32_t *buf;
    size_t j0;
    size_t keep = n - 2u * k;
    /* keys are values + 2^31: take keep * 2^31 off the sum of keys */
    int64_t bias = (int64_t)keep * 2147483648;
    qora_status st = plan(x, n, d, stride, k, out, scratch, scratch_size, &bp);
    if (st != QORA_OK) {
        return st;
    }
    acc = (int64_t *)bp.acc;
    buf = (uint32_t *)bp.buf;
    for (j0 = 0; j0 < d; j0 += bp.lanes) {
        size_t w = d - j0 < bp.lanes ? d - j0 : bp.lanes;
        size_t r;
        size_t l;
        qora__gather_keys_i32(x, n, d, stride, j0, w, buf, bp.lanes);
        qora__network_apply(bp.pairs, bp.count, buf, bp.lanes, w);
        for (l = 0; l < w; l++) {
            acc[l] = -bias;
        }
        /* at most 65535 keys below 2^32: the int64 sum is exact */
        for (r = k; r < n - k; r++) {
            const uint32_t *row = buf + r * bp.lanes;
            for (l = 0; l < w; l++) {
                acc[l] += (int64_t)row[l];
            }
        }
        for (l = 0; l < w; l++) {
            /* a mean of int32 values is an int32: no saturation possible */
            out[j0 + l] = (qora_q16_t)qora_div_round_i64(acc[l], keep);
        }
        if (dev_sq != NULL) {
            qora_deviation_sq_q16(x + j0, n, w, stride, out + j0, dev_sq, flags);
        }
    }
    return QORA_OK;
}

qora_status qora_median_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            qora_q16_t *out, uint64_t *dev_sq, void *scratch,
                            size_t scratch_size, uint32_t *flags)
{
    return qora_trimmed_mean_q16(x, n, d, stride, n == 0u ? 0u : (n - 1u) / 2u, out, dev_sq,
                                 scratch, scratch_size, flags);
}

#ifndef QORA_NO_F32
qora_status qora_trimmed_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                  size_t k, float *out, double *dev_sq, void *scratch,
                                  size_t scratch_size, uint32_t *flags)
{
    block_plan bp;
    double *acc;
    uint32_t *buf;
    size_t j0;
    double keep = (double)(n - 2u * k);
    qora_status st = plan(x, n, d, stride, k, out, scratch, scratch_size, &bp);
    (void)flags; /* float results are rounded, never saturated */
    if (st != QORA_OK) {
        return st;
    }
    acc = (double *)bp.acc;
    buf = (uint32_t *)bp.buf;
    for (j0 = 0; j0 < d; j0 += bp.lanes) {
        size_t w = d - j0 < bp.lanes ? d - j0 : bp.lanes;
        size_t r;
        size_t l;
        if (qora__gather_keys_f32(x, n, d, stride, j0, w, buf, bp.lanes)) {
            return QORA_ERR_NONFINITE;
        }
        qora__network_apply(bp.pairs, bp.count, buf, bp.lanes, w);
        for (l = 0; l < w; l++) {
            acc[l] = 0.0;
        }
        for (r = k; r < n - k; r++) {
            const uint32_t *row = buf + r * bp.lanes;
            for (l = 0; l < w; l++) {
                acc[l] += (double)qora__key_to_f32(row[l]);
            }
        }
        for (l = 0; l < w; l++) {
            out[j0 + l] = qora__to_f32(acc[l] / keep);
        }
        if (dev_sq != NULL) {
            qora_deviation_sq_f32(x + j0, n, w, stride, out + j0, dev_sq);
        }
    }
    return QORA_OK;
}

qora_status qora_median_f32(const float *x, size_t n, size_t d, size_t stride, float *out,
                            double *dev_sq, void *scratch, size_t scratch_size,
                            uint32_t *flags)
{
    return qora_trimmed_mean_f32(x, n, d, stride, n == 0u ? 0u : (n - 1u) / 2u, out, dev_sq,
                                 scratch, scratch_size, flags);
}
#endif
