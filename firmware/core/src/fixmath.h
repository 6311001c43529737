/* Internal to firmware/core: the Q16.16 kernels of the training step (train.c).
 *
 * Rounding points as docs/fixed-point-training.md tags them: [R1] rnd16 of a product,
 * [R2]..[R4] the exp, [R5] the softmax quotient. Every rounding is to nearest, ties away
 * from zero, computed on a magnitude: no negative value is ever shifted right (that is
 * implementation-defined in C99). Not a public header: include it from firmware/core/src only. */
#ifndef QNODE_FIXMATH_H
#define QNODE_FIXMATH_H
#include <stdint.h>

/* rnd16(p) = p / 2^16 rounded half away from zero [R1]. Callers pass products of two int32
 * (|p| <= 2^62), so p + 2^15 and 2^15 - p cannot overflow; the shifted value is >= 0. */
static inline int64_t qn_rnd16(int64_t p)
{
    return p >= 0 ? (p + 32768) >> 16 : -((32768 - p) >> 16);
}

/* v clamped to [INT32_MIN, INT32_MAX]. */
static inline int32_t qn_sat32(int64_t v)
{
    if (v > INT32_MAX) {
        return INT32_MAX;
    }
    if (v < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)v;
}

/* exp(x) for x <= 0 in Q16.16 (an int64 so that a difference of two int32 fits), as Q2.30
 * in [0, 2^30]: exactly 2^30 at x = 0, 0 below -16.0. x > 0 is a caller bug and is treated
 * as 0. Uses only 32x32->64 unsigned multiplies (UMULL on Cortex-M, mulhu on RV32). */
uint32_t qn_exp_q30(int64_t x);

/* In-place Q16.16 softmax of one row of n >= 1 Q16.16 logits (reference softmax_q16):
 * p_j = div_round(e_j * 2^16, S), e_j = exp_q30(z_j - max z), S = sum e_j. The quotient is
 * at most 2^16, so it is found by a 17-step long division (no 64-bit division helper). */
void qn_softmax_q16(int32_t *z, uint32_t n);

#endif
