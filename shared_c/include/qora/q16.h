/*
 * Qora Edge core — Q16.16 fixed point.
 *
 * A qora_q16_t is a two's-complement int32 holding value * 2^16.
 *
 * Numeric contract (docs/numeric-contract.md; the pure-Python reference in
 * host/qora/reference/q16.py defines the same results bit for bit):
 *   - every operation is integer-only; no right shift of a negative value, no
 *     signed overflow, no float in any Q16.16 path;
 *   - results round to nearest, ties away from zero, then saturate to
 *     [INT32_MIN, INT32_MAX]; saturation sets QORA_FLAG_SATURATED in *flags;
 *   - 64-bit accumulators saturate to [INT64_MIN, INT64_MAX] (unsigned ones to
 *     [0, UINT64_MAX]) and never wrap.
 *
 * `flags` arguments may be NULL when the caller does not care.
 */
#ifndef QORA_Q16_H
#define QORA_Q16_H

#include <stddef.h>
#include <stdint.h>

#include "qora/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t qora_q16_t;

#define QORA_Q16_ONE ((qora_q16_t)65536)
#define QORA_Q16_FRAC_BITS 16
#define QORA_Q16_MAX INT32_MAX /*  32767.99998474121 */
#define QORA_Q16_MIN INT32_MIN /* -32768.0            */

/* ---- conversion at the boundary (IEEE-754 binary32 in, bit-level, no FPU) --
 *
 * from_f32: x * 2^16 rounded to nearest, ties away from zero, saturated.
 * The conversion works on the bits of x (memcpy to uint32_t), so it is exact
 * and identical on targets without an FPU. Subnormals convert (to 0).
 * NaN and +-Inf return QORA_ERR_NONFINITE and leave *out untouched.        */
qora_status qora_q16_from_f32(float x, qora_q16_t *out, uint32_t *flags);

/* q / 2^16 as the nearest binary32 (ties to even), built from bits: exact for
 * |q| < 2^24, otherwise correctly rounded. Never fails.                     */
float qora_q16_to_f32(qora_q16_t q);

/* Array forms. from: stops at the first NaN/Inf and returns
 * QORA_ERR_NONFINITE with *bad_index set (bad_index may be NULL); elements
 * before it are converted. */
qora_status qora_q16_from_f32_array(const float *in, size_t count, qora_q16_t *out,
                                    size_t *bad_index, uint32_t *flags);
void qora_q16_to_f32_array(const qora_q16_t *in, size_t count, float *out);

/* ---- saturating arithmetic ---------------------------------------------- */
qora_q16_t qora_q16_add(qora_q16_t a, qora_q16_t b, uint32_t *flags);
qora_q16_t qora_q16_sub(qora_q16_t a, qora_q16_t b, uint32_t *flags);
/* a*b / 2^16: the exact 64-bit product, rounded half away from zero. */
qora_q16_t qora_q16_mul(qora_q16_t a, qora_q16_t b, uint32_t *flags);
/* a*2^16 / b rounded half away from zero. b == 0 saturates to QORA_Q16_MAX
 * (a > 0), QORA_Q16_MIN (a < 0) or returns 0 (a == 0), setting the flag
 * for a != 0.                                                               */
qora_q16_t qora_q16_div(qora_q16_t a, qora_q16_t b, uint32_t *flags);
/* sqrt(a) in Q16.16, rounded to nearest (exact: isqrt of a*2^16 corrected by
 * the remainder). a < 0 returns 0 and sets the flag.                       */
qora_q16_t qora_q16_sqrt(qora_q16_t a, uint32_t *flags);

/* ---- integer helpers shared by the aggregators -------------------------- */
/* floor(sqrt(x)), exact for every uint64_t.                                 */
uint32_t qora_isqrt64(uint64_t x);
/* sqrt(x) rounded to nearest, clamped to UINT32_MAX (only x >= 2^64 - 2^32
 * would round to 2^32). Used for Q32 sums of squares -> UQ16.16 distances. */
uint32_t qora_sqrt_round_u64(uint64_t x);
/* num / den rounded half away from zero; den > 0. Exact for every input
 * (quotient and remainder, no num + den/2 overflow).                        */
int64_t qora_div_round_i64(int64_t num, uint64_t den);
/* Saturating 64-bit accumulation. */
int64_t qora_sat_add_i64(int64_t a, int64_t b, uint32_t *flags);
uint64_t qora_sat_add_u64(uint64_t a, uint64_t b, uint32_t *flags);
/* Clamp a 64-bit value to the Q16.16 range. */
qora_q16_t qora_q16_from_i64_sat(int64_t v, uint32_t *flags);

#ifdef __cplusplus
}
#endif

#endif /* QORA_Q16_H */
