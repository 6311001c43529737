/*
 * Qora Edge core — status codes and flags.
 *
 * Every function that can fail returns a qora_status. Errors are negative and
 * distinct, so a caller (the CFFI binding, a firmware node) can say exactly
 * what was wrong with the input. Data from outside is never asserted on: a bad
 * argument is a returned error, not a crash.
 *
 * Conditions that are not errors but change the result (a value clamped to the
 * representable range) are reported as bits in a caller-owned uint32_t
 * "flags" word that functions OR into and never clear.
 */
#ifndef QORA_STATUS_H
#define QORA_STATUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    QORA_OK = 0,
    QORA_ERR_NULL = -1,      /* a required pointer argument was NULL               */
    QORA_ERR_EMPTY = -2,     /* n == 0 or d == 0                                   */
    QORA_ERR_STRIDE = -3,    /* row stride smaller than d                          */
    QORA_ERR_K = -4,         /* trimmed mean: 2k >= n (nothing would be kept)      */
    QORA_ERR_F = -5,         /* krum / multi_krum: n < 2f + 3                      */
    QORA_ERR_M = -6,         /* multi_krum: m == 0 or m > n - 2f - 2               */
    QORA_ERR_SCRATCH = -7,   /* scratch smaller than the *_scratch_size() answer   */
    QORA_ERR_NONFINITE = -8, /* NaN or +-Inf in float input                        */
    QORA_ERR_WEIGHTS = -9,   /* fedavg: a negative weight, or all weights zero     */
    QORA_ERR_N = -10         /* n > QORA_MAX_CLIENTS (65535)                       */
} qora_status;

/* A value was clamped to its representable range (a Q16.16 result, a 64-bit
 * accumulator, a squared distance). The result is still defined: it is the
 * saturated value, identical on every target. */
#define QORA_FLAG_SATURATED 0x1u

/* Most clients one call accepts (selection networks index rows with 16 bits). */
#define QORA_MAX_CLIENTS 65535u

/* A short English description of a status ("n < 2f + 3 for krum"), never NULL.
 * Unknown codes give "unknown qora status". */
const char *qora_status_str(qora_status status);

#ifdef __cplusplus
}
#endif

#endif /* QORA_STATUS_H */
