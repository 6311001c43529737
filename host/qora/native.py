"""Checked, zero-copy binding of the C aggregation core.

One function per aggregator, each taking an ``(n, d)`` array of client updates
(row i = client i) and returning a :class:`NativeResult`. Two numeric modes:

``mode="float32"``
    float32 input, float32 result; sums in double inside the core.
``mode="q16_16"``
    Q16.16 fixed point: int32 input is taken as raw Q16.16, float32 input is
    converted first (round half away from zero, saturating; NaN/Inf refused).
    Results are bit-identical on every target the core runs on.

Arrays pass to C without copies when their rows are contiguous (a column
slice of a wider matrix is fine: the row stride is passed along). Large inputs
are split by columns over threads; the C calls release the GIL. Coordinate-wise
results do not depend on the split; Q16.16 results never do.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from qora._native import ffi, lib
from qora.errors import InvalidInput, InvalidType, NativeError

MODES = ("float32", "q16_16")
MAX_CLIENTS = int(lib.QORA_MAX_CLIENTS)
Q16_ONE = 65536
U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)

# Below this many values one thread is faster than starting several.
_PARALLEL_MIN_VALUES = 1 << 20
_COLUMN_ALIGN = 1024  # split points on Krum block edges keep per-block sums identical


@dataclass(frozen=True)
class NativeResult:
    """What an aggregator returns.

    value: the aggregate, shape (d,), float32 (in q16_16 mode: ``raw`` as float32).
    raw: the Q16.16 aggregate as int32 (q16_16 mode), else None.
    deviation: each client's L2 distance from ``value``, shape (n,), float64
        (None when the call was made with ``deviation=False``).
    deviation_sq: the exact sums behind ``deviation``: uint64 in Q32 units
        (q16_16) or float64 (None likewise).
    scores: Krum scores, shape (n,) (uint64 Q32 units or float64), else None.
    selected: clients Krum kept, best first, shape (m,), else None.
    saturated: a Q16.16 value or 64-bit sum was clamped somewhere.
    mode: "float32" or "q16_16".
    """

    value: np.ndarray
    raw: np.ndarray | None
    deviation: np.ndarray | None
    deviation_sq: np.ndarray | None
    scores: np.ndarray | None
    selected: np.ndarray | None
    saturated: bool
    mode: str


# ---- input checks ---------------------------------------------------------------------


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def _first_nonfinite(x: np.ndarray) -> str:
    bad = np.argwhere(~np.isfinite(x))[0]
    i, j = int(bad[0]), int(bad[1])
    return f"Non-finite value {float(x[i, j])} in update {i} at [{j}]"


def _as_matrix(x: object, mode: str) -> np.ndarray:
    """Validate an (n, d) update matrix; return it (no copy when usable as is)."""
    if not isinstance(x, np.ndarray):
        raise InvalidType(f"updates must be a numpy array of shape (n, d), got {type(x).__name__}")
    if x.ndim != 2:
        raise InvalidInput(f"updates must be 2-D (n clients, d parameters), got shape {x.shape}")
    n, d = x.shape
    if n == 0 or d == 0:
        raise InvalidInput(f"empty input: n={n} clients, d={d} parameters")
    if n > MAX_CLIENTS:
        raise InvalidInput(f"at most {MAX_CLIENTS} clients per call, got n={n}")
    allowed = (np.float32,) if mode == "float32" else (np.float32, np.int32)
    if x.dtype.type not in allowed:
        names = " or ".join(np.dtype(t).name for t in allowed)
        hint = " (convert with .astype(np.float32))" if x.dtype.kind == "f" else ""
        raise InvalidType(f"mode={mode!r} needs {names} updates, got {x.dtype}{hint}")
    item = x.dtype.itemsize
    rows_ok = x.strides[1] == item and x.strides[0] % item == 0 and x.strides[0] >= d * item
    if not (rows_ok and x.flags.aligned):
        x = np.ascontiguousarray(x)
    return x


def _stride(x: np.ndarray) -> int:
    return x.strides[0] // x.dtype.itemsize


def to_q16(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """float32 array -> (int32 Q16.16 array, saturated). NaN/Inf raise InvalidInput."""
    src = np.ascontiguousarray(x, dtype=np.float32)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise InvalidType(f"to_q16 needs a float32 array, got {getattr(x, 'dtype', type(x).__name__)}")
    out = np.empty(src.shape, dtype=np.int32)
    bad = ffi.new("size_t *")
    flags = ffi.new("uint32_t *")
    st = lib.qora_q16_from_f32_array(_ptr("float *", src), src.size, _ptr("int32_t *", out), bad, flags)
    if st == lib.QORA_ERR_NONFINITE:
        idx = np.unravel_index(int(bad[0]), src.shape)
        if src.ndim == 2:
            raise InvalidInput(_first_nonfinite(src))
        raise InvalidInput(f"Non-finite value {float(src[idx])} at {list(map(int, idx))}")
    _ensure(st)
    return out, bool(flags[0] & lib.QORA_FLAG_SATURATED)


def from_q16(q: np.ndarray) -> np.ndarray:
    """int32 Q16.16 array -> nearest float32 values."""
    src = np.ascontiguousarray(q)
    if src.dtype != np.int32:
        raise InvalidType(f"from_q16 needs an int32 array, got {src.dtype}")
    out = np.empty(src.shape, dtype=np.float32)
    lib.qora_q16_to_f32_array(_ptr("int32_t *", src), src.size, _ptr("float *", out))
    return out


def _ptr(ctype: str, a: np.ndarray, offset: int = 0):
    return ffi.cast(ctype, a.ctypes.data + offset * a.dtype.itemsize)


def _ensure(status: int, what: str = "qora core", x: np.ndarray | None = None) -> None:
    """Raise for a C status; a non-finite input is located in x for the message.

    The core finds NaN/Inf itself while it aggregates, so the Python side never
    makes a separate pass over a large input just to check it."""
    if status == lib.QORA_ERR_NONFINITE and x is not None and x.ndim == 2:
        raise InvalidInput(_first_nonfinite(x))
    if status != lib.QORA_OK:
        msg = ffi.string(lib.qora_status_str(status)).decode()
        if status == lib.QORA_ERR_NONFINITE:
            raise InvalidInput(f"{what}: {msg}")
        raise NativeError(f"{what}: {msg} (status {status})")


def _prepare(x: np.ndarray, mode: str) -> tuple[np.ndarray, bool]:
    """Matrix in the core's element type, plus whether conversion saturated."""
    x = _as_matrix(x, _check_mode(mode))
    if mode == "q16_16" and x.dtype == np.float32:
        return to_q16(x)
    return x, False


def _threads_for(n: int, d: int, threads: int | None) -> int:
    if threads is not None:
        if int(threads) < 1:
            raise InvalidInput(f"threads must be >= 1, got {threads}")
        return max(1, min(int(threads), d))
    if n * d < _PARALLEL_MIN_VALUES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8, d // _COLUMN_ALIGN or 1))


def _column_ranges(d: int, parts: int) -> list[tuple[int, int]]:
    if parts <= 1:
        return [(0, d)]
    step = -(-d // parts)
    step = -(-step // _COLUMN_ALIGN) * _COLUMN_ALIGN
    return [(c, min(c + step, d)) for c in range(0, d, step)]


def _run_parallel(ranges: Sequence[tuple[int, int]], job: Callable[[int, int], object]) -> list:
    if len(ranges) == 1:
        return [job(*ranges[0])]
    with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
        return list(pool.map(lambda r: job(*r), ranges))


def _sat_sum_u64(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, bool]:
    """Saturating sum of uint64 arrays (order-free for non-negative terms)."""
    total = parts[0].copy()
    saturated = False
    for p in parts[1:]:
        s = total + p
        over = s < total
        saturated |= bool(over.any())
        total = np.where(over, U64_MAX, s)
    return total, saturated


def _scratch(size: int) -> np.ndarray:
    return np.empty(max(1, -(-size // 8)), dtype=np.uint64)  # 8-byte aligned


# ---- result assembly ---------------------------------------------------------------


def _finish(mode: str, out: np.ndarray, dev_sq: np.ndarray | None, saturated: bool,
            scores: np.ndarray | None = None, selected: np.ndarray | None = None) -> NativeResult:
    if dev_sq is None:
        value = from_q16(out) if mode == "q16_16" else out
        return NativeResult(value, out if mode == "q16_16" else None, None, None, scores, selected,
                            saturated, mode)
    n = dev_sq.shape[0]
    if mode == "q16_16":
        dev = np.empty(n, dtype=np.uint32)
        lib.qora_deviation_finish_q16(_ptr("uint64_t *", dev_sq), n, _ptr("uint32_t *", dev))
        return NativeResult(from_q16(out), out, dev.astype(np.float64) / Q16_ONE, dev_sq,
                            scores, selected, saturated, mode)
    dev = np.empty(n, dtype=np.float32)
    lib.qora_deviation_finish_f32(_ptr("double *", dev_sq), n, _ptr("float *", dev))
    return NativeResult(out, None, dev.astype(np.float64), dev_sq, scores, selected, saturated, mode)


def _coordinatewise(x: np.ndarray, mode: str, threads: int | None, size_fn, call,
                    extra_sat: bool, deviation: bool = True) -> NativeResult:
    """Run a per-column aggregator over column ranges in parallel and merge."""
    n, d = x.shape
    stride = _stride(x)
    q16 = mode == "q16_16"
    out = np.empty(d, dtype=np.int32 if q16 else np.float32)
    ctype = "int32_t *" if q16 else "float *"

    def job(c0: int, c1: int):
        w = c1 - c0
        size = size_fn(n, w)
        scratch = _scratch(size)
        dev = np.zeros(n, dtype=np.uint64 if q16 else np.float64)
        flags = ffi.new("uint32_t *")
        st = call(_ptr(ctype, x, c0), n, w, stride, _ptr(ctype, out, c0),
                  _ptr("uint64_t *" if q16 else "double *", dev) if deviation else ffi.NULL,
                  _ptr("void *", scratch), scratch.nbytes, flags)
        _ensure(st, x=x)
        return dev, bool(flags[0] & lib.QORA_FLAG_SATURATED)

    parts = _run_parallel(_column_ranges(d, _threads_for(n, d, threads)), job)
    devs = [p[0] for p in parts]
    saturated = extra_sat or any(p[1] for p in parts)
    if not deviation:
        return _finish(mode, out, None, saturated)
    if q16:
        dev_sq, sat = _sat_sum_u64(devs)
        saturated |= sat
    else:
        dev_sq = np.sum(devs, axis=0) if len(devs) > 1 else devs[0]
    return _finish(mode, out, dev_sq, saturated)


# ---- aggregators ---------------------------------------------------------------------


def fedavg(x: np.ndarray, weights: Sequence[float] | np.ndarray | None = None, *,
           mode: str = "float32", threads: int | None = None,
           deviation: bool = True) -> NativeResult:
    """Weighted mean of the rows (weights: sample counts; None = equal).

    ``deviation=False`` skips each client's distance from the result (a second
    pass over the data) when only the aggregate is wanted."""
    x, sat = _prepare(x, mode)
    n = x.shape[0]
    w_arr = None
    if weights is not None:
        w = np.asarray(weights)
        if w.shape != (n,):
            raise InvalidInput(f"weights must have shape ({n},) (one per client), got {w.shape}")
        if w.dtype.kind not in "iuf":
            raise InvalidType(f"weights must be numbers, got {w.dtype}")
        if not np.isfinite(w).all():
            raise InvalidInput(f"Non-finite weight {w[~np.isfinite(w)][0]} for client {int(np.argmin(np.isfinite(w)))}")
        if (w < 0).any():
            i = int(np.argmax(w < 0))
            raise InvalidInput(f"weights must be >= 0, got {w[i]} for client {i}")
        if not (w > 0).any():
            raise InvalidInput("weights are all zero: at least one client must count")
        if mode == "q16_16":
            if w.dtype.kind == "f" and not np.all(w == np.floor(w)):
                raise InvalidInput("q16_16 fedavg weights are sample counts: they must be integers")
            if (w > 0xFFFFFFFF).any():
                raise InvalidInput("q16_16 fedavg weights must be below 2^32")
            w_arr = np.ascontiguousarray(w, dtype=np.uint32)
        else:
            w_arr = np.ascontiguousarray(w, dtype=np.float32)
            if not (w_arr > 0).any():
                raise InvalidInput("weights are all zero after conversion to float32")
    wptr = ffi.NULL if w_arr is None else _ptr("uint32_t *" if mode == "q16_16" else "float *", w_arr)
    fn = lib.qora_fedavg_q16 if mode == "q16_16" else lib.qora_fedavg_f32

    def call(xp, n_, w_, stride, outp, devp, scr, size, flags):
        return fn(xp, n_, w_, stride, wptr, outp, devp, scr, size, flags)

    return _coordinatewise(x, mode, threads, lib.qora_fedavg_scratch_size, call, sat, deviation)


def trimmed_mean(x: np.ndarray, k: int, *, mode: str = "float32",
                 threads: int | None = None, deviation: bool = True) -> NativeResult:
    """Per coordinate: drop the k smallest and k largest values, average the rest."""
    x, sat = _prepare(x, mode)
    n = x.shape[0]
    k = _count("k", k)
    if 2 * k >= n:
        raise InvalidInput(f"trimmed_mean needs 2k < n: n={n}, k={k} would keep nothing")
    fn = lib.qora_trimmed_mean_q16 if mode == "q16_16" else lib.qora_trimmed_mean_f32

    def call(xp, n_, w_, stride, outp, devp, scr, size, flags):
        return fn(xp, n_, w_, stride, k, outp, devp, scr, size, flags)

    return _coordinatewise(x, mode, threads, lib.qora_trimmed_mean_scratch_size, call, sat,
                           deviation)


def median(x: np.ndarray, *, mode: str = "float32", threads: int | None = None,
           deviation: bool = True) -> NativeResult:
    """Coordinate-wise median (even n: mean of the two middle values)."""
    x, sat = _prepare(x, mode)
    fn = lib.qora_median_q16 if mode == "q16_16" else lib.qora_median_f32

    def call(xp, n_, w_, stride, outp, devp, scr, size, flags):
        return fn(xp, n_, w_, stride, outp, devp, scr, size, flags)

    return _coordinatewise(x, mode, threads, lib.qora_median_scratch_size, call, sat, deviation)


def _count(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidType(f"{name} must be an integer, got {type(v).__name__}")
    if v < 0:
        raise InvalidInput(f"{name} must be >= 0, got {v}")
    return int(v)


def krum(x: np.ndarray, f: int, *, mode: str = "float32", threads: int | None = None) -> NativeResult:
    """Krum: the single client whose n-f-2 nearest neighbours are closest."""
    return multi_krum(x, f, 1, mode=mode, threads=threads, _name="krum")


def multi_krum(x: np.ndarray, f: int, m: int, *, mode: str = "float32",
               threads: int | None = None, _name: str = "multi_krum") -> NativeResult:
    """Multi-Krum: the mean of the m clients with the best Krum scores."""
    x, sat = _prepare(x, mode)
    n, d = x.shape
    f = _count("f", f)
    m = _count("m", m)
    if n < 2 * f + 3:
        raise InvalidInput(f"{_name} needs n >= 2f+3: n={n}, f={f}")
    if not 1 <= m <= n - 2 * f - 2:
        raise InvalidInput(f"{_name} needs 1 <= m <= n-2f-2: n={n}, f={f}, m={m}")
    q16 = mode == "q16_16"
    stride = _stride(x)
    ctype = "int32_t *" if q16 else "float *"
    out = np.empty(d, dtype=np.int32 if q16 else np.float32)
    scores = np.empty(n, dtype=np.uint64 if q16 else np.float64)
    selected = np.empty(m, dtype=np.uint32)
    dev_type = np.uint64 if q16 else np.float64
    dev_ctype = "uint64_t *" if q16 else "double *"
    ranges = _column_ranges(d, _threads_for(n, d, threads))
    flags = ffi.new("uint32_t *")

    if len(ranges) == 1:  # the all-in-one entry point
        dev = np.zeros(n, dtype=dev_type)
        scratch = _scratch(lib.qora_multi_krum_scratch_size(n, d))
        fn = lib.qora_multi_krum_q16 if q16 else lib.qora_multi_krum_f32
        st = fn(_ptr(ctype, x), n, d, stride, f, m, _ptr(ctype, out),
                _ptr("uint64_t *" if q16 else "double *", scores), _ptr("uint32_t *", selected),
                _ptr(dev_ctype, dev), _ptr("void *", scratch), scratch.nbytes, flags)
        _ensure(st, _name, x)
        saturated = sat or bool(flags[0] & lib.QORA_FLAG_SATURATED)
        return _finish(mode, out, dev, saturated, scores, selected.astype(np.int64))

    # Threaded: distances per column range, merged, then one selection.
    def dist_job(c0: int, c1: int):
        dist = np.zeros((n, n), dtype=dev_type)
        fl = ffi.new("uint32_t *")
        if q16:
            st = lib.qora_sqdist_q16(_ptr(ctype, x, c0), n, c1 - c0, stride, _ptr("uint64_t *", dist), fl)
        else:
            st = lib.qora_sqdist_f32(_ptr(ctype, x, c0), n, c1 - c0, stride, _ptr("double *", dist))
        _ensure(st, _name, x)
        return dist, bool(fl[0] & lib.QORA_FLAG_SATURATED)

    parts = _run_parallel(ranges, dist_job)
    saturated = sat or any(p[1] for p in parts)
    if q16:
        dist, s = _sat_sum_u64([p[0] for p in parts])
        saturated |= s
    else:
        dist = np.sum([p[0] for p in parts], axis=0)
    dist = np.ascontiguousarray(dist)
    sel_scratch = _scratch(lib.qora_krum_select_scratch_size(n))
    if q16:
        st = lib.qora_krum_select_u64(_ptr("uint64_t *", dist), n, f, m, _ptr("uint64_t *", scores),
                                      _ptr("uint32_t *", selected), _ptr("void *", sel_scratch),
                                      sel_scratch.nbytes, flags)
        saturated |= bool(flags[0] & lib.QORA_FLAG_SATURATED)
    else:
        st = lib.qora_krum_select_f64(_ptr("double *", dist), n, f, m, _ptr("double *", scores),
                                      _ptr("uint32_t *", selected), _ptr("void *", sel_scratch),
                                      sel_scratch.nbytes)
    _ensure(st, _name)

    def mean_dev_job(c0: int, c1: int):
        w = c1 - c0
        mean_fn = lib.qora_select_mean_q16 if q16 else lib.qora_select_mean_f32
        _ensure(mean_fn(_ptr(ctype, x, c0), n, w, stride, _ptr("uint32_t *", selected), m,
                        _ptr(ctype, out, c0)), _name)
        dev = np.zeros(n, dtype=dev_type)
        fl = ffi.new("uint32_t *")
        if q16:
            st_ = lib.qora_deviation_sq_q16(_ptr(ctype, x, c0), n, w, stride, _ptr(ctype, out, c0),
                                            _ptr(dev_ctype, dev), fl)
        else:
            st_ = lib.qora_deviation_sq_f32(_ptr(ctype, x, c0), n, w, stride, _ptr(ctype, out, c0),
                                            _ptr(dev_ctype, dev))
        _ensure(st_, _name)
        return dev, bool(fl[0] & lib.QORA_FLAG_SATURATED)

    parts = _run_parallel(ranges, mean_dev_job)
    saturated |= any(p[1] for p in parts)
    if q16:
        dev_sq, s = _sat_sum_u64([p[0] for p in parts])
        saturated |= s
    else:
        dev_sq = np.sum([p[0] for p in parts], axis=0)
    return _finish(mode, out, dev_sq, saturated, scores, selected.astype(np.int64))


def pairwise_sqdist(x: np.ndarray, *, mode: str = "float32", threads: int | None = None) -> np.ndarray:
    """Squared L2 distances between every pair of rows, by direct subtraction.

    Returns an (n, n) symmetric matrix with a zero diagonal: float64 for
    ``mode="float32"``; uint64 in Q32 units (exact, saturating) for ``"q16_16"``.
    """
    x, _ = _prepare(x, mode)
    n, d = x.shape
    q16 = mode == "q16_16"
    ctype = "int32_t *" if q16 else "float *"
    stride = _stride(x)

    def job(c0: int, c1: int):
        dist = np.zeros((n, n), dtype=np.uint64 if q16 else np.float64)
        if q16:
            st = lib.qora_sqdist_q16(_ptr(ctype, x, c0), n, c1 - c0, stride, _ptr("uint64_t *", dist), ffi.NULL)
        else:
            st = lib.qora_sqdist_f32(_ptr(ctype, x, c0), n, c1 - c0, stride, _ptr("double *", dist))
        _ensure(st, "pairwise_sqdist", x)
        return dist

    parts = _run_parallel(_column_ranges(d, _threads_for(n, d, threads)), job)
    if q16:
        return _sat_sum_u64(parts)[0]
    return np.sum(parts, axis=0) if len(parts) > 1 else parts[0]
