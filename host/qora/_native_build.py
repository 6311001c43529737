"""CFFI (API mode) build of the C core into ``qora._native``.

The declarations below mirror ``shared_c/include/qora/*.h``; enum values are
left as ``...`` so the compiler fills them in. Nothing prebuilt is committed: the
extension is compiled from ``shared_c/src`` by ``pip install``.

``QORA_MARCH`` (environment) picks the target CPU for the host build:
``native`` (default: this machine's SIMD, the build is for the machine that
runs it) or ``portable`` (the compiler's baseline, for wheels that travel).
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "shared_c"

CDEF = """
typedef int32_t qora_q16_t;
typedef enum {
    QORA_OK = ..., QORA_ERR_NULL = ..., QORA_ERR_EMPTY = ..., QORA_ERR_STRIDE = ...,
    QORA_ERR_K = ..., QORA_ERR_F = ..., QORA_ERR_M = ..., QORA_ERR_SCRATCH = ...,
    QORA_ERR_NONFINITE = ..., QORA_ERR_WEIGHTS = ..., QORA_ERR_N = ...
} qora_status;
#define QORA_FLAG_SATURATED ...
#define QORA_MAX_CLIENTS ...
const char *qora_status_str(qora_status status);

qora_status qora_q16_from_f32_array(const float *in, size_t count, qora_q16_t *out,
                                    size_t *bad_index, uint32_t *flags);
void qora_q16_to_f32_array(const qora_q16_t *in, size_t count, float *out);

size_t qora_fedavg_scratch_size(size_t n, size_t d);
size_t qora_trimmed_mean_scratch_size(size_t n, size_t d);
size_t qora_median_scratch_size(size_t n, size_t d);
size_t qora_multi_krum_scratch_size(size_t n, size_t d);
size_t qora_krum_select_scratch_size(size_t n);

qora_status qora_fedavg_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            const uint32_t *weights, qora_q16_t *out, uint64_t *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_fedavg_f32(const float *x, size_t n, size_t d, size_t stride,
                            const float *weights, float *out, double *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_trimmed_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  size_t k, qora_q16_t *out, uint64_t *dev_sq,
                                  void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_trimmed_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                  size_t k, float *out, double *dev_sq,
                                  void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_median_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            qora_q16_t *out, uint64_t *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_median_f32(const float *x, size_t n, size_t d, size_t stride,
                            float *out, double *dev_sq,
                            void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_multi_krum_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                size_t f, size_t m, qora_q16_t *out, uint64_t *scores,
                                uint32_t *selected, uint64_t *dev_sq,
                                void *scratch, size_t scratch_size, uint32_t *flags);
qora_status qora_multi_krum_f32(const float *x, size_t n, size_t d, size_t stride,
                                size_t f, size_t m, float *out, double *scores,
                                uint32_t *selected, double *dev_sq,
                                void *scratch, size_t scratch_size, uint32_t *flags);
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
qora_status qora_select_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, qora_q16_t *out);
qora_status qora_select_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, float *out);
qora_status qora_deviation_sq_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                  const qora_q16_t *center, uint64_t *dev_sq,
                                  uint32_t *flags);
qora_status qora_deviation_sq_f32(const float *x, size_t n, size_t d, size_t stride,
                                  const float *center, double *dev_sq);
void qora_deviation_finish_q16(const uint64_t *dev_sq, size_t n, uint32_t *dev);
void qora_deviation_finish_f32(const double *dev_sq, size_t n, float *dev);
"""


def _compile_args() -> list[str]:
    args = ["-std=c99", "-O3"]
    if os.environ.get("QORA_MARCH", "native") == "native":
        # 512-bit vectors where the CPU has them: GCC prefers 256 by default,
        # which halves the int64 lanes of the exact Q16.16 Krum distances.
        args += ["-march=native", "-mprefer-vector-width=512"]
    return args


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "qora._native",
    '#include "qora/qora.h"',
    sources=[str(p.relative_to(ROOT)) for p in sorted((CORE / "src").glob("*.c"))],
    include_dirs=[str(CORE / "include"), str(CORE / "src")],
    extra_compile_args=_compile_args(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
