/*
 * Qora Edge core — robust aggregators, Q16.16 and float32.
 *
 * Layout: n client rows of d parameters, row-major; row i starts at
 * x + i * stride (stride >= d elements, so a caller can hand over a block of
 * columns of a wider matrix). All memory is the caller's: `out` holds d
 * values, `scratch` holds at least <method>_scratch_size(n, d) bytes and is
 * aligned to 8 bytes (a uint64_t array, malloc or a numpy buffer all are).
 * No function allocates. n is at most QORA_MAX_CLIENTS (QORA_ERR_N).
 *
 * Deviation (for reputation): if dev_sq is not NULL, each aggregator ADDS to
 * dev_sq[i] the squared L2 distance between row i and the result `out`, over
 * the d columns of this call. Adding (not storing) lets a caller aggregate
 * a wide model in column blocks (chunks, threads, shards) and finish with
 * qora_deviation_finish_*(). Zero dev_sq before the first block.
 *   Q16.16: dev_sq in Q32 units (value * 2^32), exact, saturating.
 *   float32: dev_sq in double.
 *
 * Rounding (Q16.16): every division rounds half away from zero
 * (qora_div_round_i64); sums are exact in int64 (and saturate only in fedavg,
 * whose products w * x can exceed 2^63; fedavg accumulates in client order
 * 0..n-1 so saturation is identical on every target).
 * Float32: sums are taken in double and rounded once to float.
 *
 * Ties go to the lower client index (Krum selection).
 *
 * On an error return, `out`, `dev_sq` and the optional outputs are unspecified
 * (possibly partly written). Finiteness of float input is checked by the
 * aggregator itself (QORA_ERR_NONFINITE); the caller need not scan first.
 */
#ifndef QORA_AGGREGATE_H
#define QORA_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "qora/q16.h"
#include "qora/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- scratch sizes (bytes; one answer serves both numeric modes) -------- */
size_t qora_fedavg_scratch_size(size_t n, size_t d);
size_t qora_trimmed_mean_scratch_size(size_t n, size_t d);
size_t qora_median_scratch_size(size_t n, size_t d);
size_t qora_multi_krum_scratch_size(size_t n, size_t d); /* also for krum */
size_t qora_krum_select_scratch_size(size_t n);

/* ---- FedAvg: out = sum_i w_i x_i / sum_i w_i -------------------------------
 * Q16.16: w are integer sample counts (NULL = all 1); the numerator is an int64
 * accumulated in client order with saturation; division rounds half away.
 * Errors: QORA_ERR_WEIGHTS if all weights are 0.
 * float32: w finite and >= 0 (NULL = all 1); QORA_ERR_WEIGHTS if any w < 0
 * or all are 0, QORA_ERR_NONFINITE for a NaN/Inf weight or value.          */
qora_status qora_fedavg_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            const uint32_t *weights, qora_q16_t *out, uint64_t *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_fedavg_f32(const float *x, size_t n, size_t d, size_t stride,
                            const float *weights, float *out, double *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);

/* ---- trimmed mean: per coordinate drop the k smallest and k largest -------
 * and average the n - 2k left. Needs 2k < n (QORA_ERR_K); k = 0 is the mean. */
qora_status qora_trimmed_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  size_t k, qora_q16_t *out, uint64_t *dev_sq,
                                  void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_trimmed_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                  size_t k, float *out, double *dev_sq,
                                  void *scratch, size_t scratch_size, uint32_t *flags);

/* ---- coordinate-wise median ------------------------------------------------
 * Even n: the mean of the two middle values, (a + b) formed in int64 (Q16.16,
 * rounded half away) or double (float32), so it never overflows.           */
qora_status qora_median_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            qora_q16_t *out, uint64_t *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_median_f32(const float *x, size_t n, size_t d, size_t stride,
                            float *out, double *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);

/* ---- Krum / Multi-Krum (Blanchard et al., NeurIPS 2017) --------------------
 * dist(i, j) = sum_t (x_i[t] - x_j[t])^2 by direct subtraction (never
 * |a|^2 + |b|^2 - 2ab, which cancels catastrophically for full-weight models).
 *   Q16.16: exact integer in Q32 units, saturating at UINT64_MAX.
 *   float32: float differences, squares summed in float within a block of
 *            columns and the block sums added in double.
 * score(i) = sum of the n - f - 2 smallest dist(i, j), j != i.
 * The m clients with the smallest (score, index) are selected, in that order,
 * into selected[0..m-1]; out = the mean of their rows (m = 1: row selected[0]).
 * Needs n >= 2f + 3 (QORA_ERR_F) and 1 <= m <= n - 2f - 2 (QORA_ERR_M).
 * scores (n entries) and selected (m entries) may be NULL.                  */
qora_status qora_multi_krum_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                size_t f, size_t m, qora_q16_t *out, uint64_t *scores,
                                uint32_t *selected, uint64_t *dev_sq,
                                void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_multi_krum_f32(const float *x, size_t n, size_t d, size_t stride,
                                size_t f, size_t m, float *out, double *scores,
                                uint32_t *selected, double *dev_sq,
                                void *scratch, size_t scratch_size, uint32_t *flags);
/* Krum = Multi-Krum with m = 1. */
qora_status qora_krum_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride, size_t f,
                          qora_q16_t *out, uint64_t *scores, uint32_t *selected,
                          uint64_t *dev_sq, void *scratch, size_t scratch_size,
                          uint32_t *flags);
qora_status qora_krum_f32(const float *x, size_t n, size_t d, size_t stride, size_t f,
                          float *out, double *scores, uint32_t *selected, double *dev_sq,
                          void *scratch, size_t scratch_size, uint32_t *flags);

/* ---- Krum in pieces, for column-sharded or threaded callers ----------------
 * sqdist ADDS the pairwise squared distances over these d columns into the
 * full symmetric n x n matrix `dist` (row-major; the diagonal stays as is).
 * krum_select turns a finished matrix into scores and the selection, with
 * the same rules and bounds as qora_multi_krum_*.                          */
qora_status qora_sqdist_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            uint64_t *dist, uint32_t *flags);
qora_status qora_sqdist_f32(const float *x, size_t n, size_t d, size_t stride,
                            double *dist);
qora_status qora_krum_select_u64(const uint64_t *dist, size_t n, size_t f, size_t m,
                                 uint64_t *scores, uint32_t *selected,
                                 void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_krum_select_f64(const double *dist, size_t n, size_t f, size_t m,
                                 double *scores, uint32_t *selected,
                                 void *scratch, size_t scratch_size);

/* Mean of the selected rows (selection order), as multi-krum's output:
 * Q16.16 sums in int64 and rounds half away; float32 sums in double.
 * m = 1 copies the row. QORA_ERR_M if m == 0, m > n or an index >= n.     */
qora_status qora_select_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, qora_q16_t *out);
qora_status qora_select_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, float *out);

/* ---- deviations ------------------------------------------------------------
 * deviation_sq ADDS sum_t (x_i[t] - center[t])^2 to dev_sq[i] (units as above).
 * finish turns the sums into L2 distances:
 *   Q16.16: dev[i] = sqrt(dev_sq[i]) rounded to nearest, unsigned Q16.16
 *           (uint32; qora_sqrt_round_u64), exact.
 *   float32: dev[i] = sqrt(dev_sq[i]) in double (no libm), rounded to float. */
qora_status qora_deviation_sq_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  const qora_q16_t *center, uint64_t *dev_sq,
                                  uint32_t *flags);
qora_status qora_deviation_sq_f32(const float *x, size_t n, size_t d, size_t stride,
                                  const float *center, double *dev_sq);
void qora_deviation_finish_q16(const uint64_t *dev_sq, size_t n, uint32_t *dev);
void qora_deviation_finish_f32(const double *dev_sq, size_t n, float *dev);

#ifdef __cplusplus
}
#endif

#endif /* QORA_AGGREGATE_H */
