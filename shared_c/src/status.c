/* Qora Edge core — status strings. */
#include "qora/status.h"

const char *qora_status_str(qora_status status)
{
    switch (status) {
    case QORA_OK: return "ok";
    case QORA_ERR_NULL: return "a required pointer was NULL";
    case QORA_ERR_EMPTY: return "no clients or no parameters (n == 0 or d == 0)";
    case QORA_ERR_STRIDE: return "row stride smaller than d";
    case QORA_ERR_K: return "trimmed mean needs 2k < n";
    case QORA_ERR_F: return "krum needs n >= 2f + 3";
    case QORA_ERR_M: return "multi_krum needs 1 <= m <= n - 2f - 2";
    case QORA_ERR_SCRATCH: return "scratch smaller than the *_scratch_size() answer";
    case QORA_ERR_NONFINITE: return "non-finite value (NaN or Inf) in input";
    case QORA_ERR_WEIGHTS: return "fedavg weights must be finite, >= 0 and not all 0";
    case QORA_ERR_N: return "more clients than the core supports (n > 65535)";
    }
    return "unknown qora status";
}
