"""Pre-aggregation and robustness options, and reputation-weighted statistics.

Pure functions on an ``(n, d)`` array of client updates (row i = client i), in
both numeric modes:

``mode="float32"``
    float32 input, float32 result; the arithmetic is done in float64 and
    rounded once at the end. Deterministic for a given build and input.
``mode="q16_16"``
    int32 input is raw Q16.16 (value * 2^16); float32 input is converted first
    with :func:`qora.native.to_q16` (ties away from zero, saturating). Every
    step is integer arithmetic (numpy int64 / uint64 or Python ints, with the
    overflow argument next to it), rounding is to nearest with ties away from
    zero, results are int32 saturated to the int32 range. The results are
    exact functions of the input bits: they do not depend on the machine,
    numpy's summation order or threads.

Norms in Q16.16: the squared norm of a row is the exact sum of raw^2 (a Python
int: the squares are summed as two 32-bit halves in uint64, which cannot
overflow for d < 2^32); the norm is its integer square root rounded to
nearest, in raw Q16.16 units. Distances between rows come from
:func:`qora.native.pairwise_sqdist` (float64, or uint64 in Q32 units, exact
and saturating at 2^64 - 1).

Functions:

    clip_norms(x, tau)              clip every row to L2 norm tau
    arc(x, f)                       Adaptive Robust Clipping (Allouah et al., 2024)
    nnm(x, f)                       Nearest Neighbour Mixing (Allouah et al., AISTATS 2023)
    bucketing(x, s, seed=)          averaged random buckets of s rows (Karimireddy et al., ICLR 2022)
    centered_clipping(x, c, tau)    Centered Clipping (Karimireddy, He, Jaggi, ICML 2021)
    weighted_trimmed_mean(x, w, b)  per coordinate, trim weight mass b*W from each end
    weighted_median(x, w)           per coordinate, the weighted median

``tau`` is always given as a float in real units; in Q16.16 it is converted
once to raw units, ``round(tau * 2^16)`` with ties away from zero.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Real
from typing import Sequence

import numpy as np

from qora import native
from qora.errors import InvalidInput, InvalidType

__all__ = [
    "arc",
    "bucketing",
    "centered_clipping",
    "clip_norms",
    "nnm",
    "weighted_median",
    "weighted_trimmed_mean",
]

Q16_ONE = 65536
_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1
_I64_LIMIT = 2**63  # |value| < _I64_LIMIT fits int64 with its negation
_LO32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

# q16_16 weighted trimmed mean: the numerator sum(x * kept) is bounded by
# max|x| * W <= 2^31 * W, so W (in 2^-16 weight units) must stay below 2^32.
_Q16_TRIM_W_LIMIT = 2**32
# q16_16 weighted median: only cumulative weights, compared as 2*C with W.
_Q16_MEDIAN_W_LIMIT = 2**61
# float32 weights are exact integers when their sum stays below 2^53 (float64 exact).
_F64_EXACT = 2**53


# ---- argument checks -------------------------------------------------------------------


def _matrix(x: object, mode: str) -> np.ndarray:
    """The validated (n, d) matrix: float32 (float32 mode, finite) or int32 raw Q16.16."""
    native._check_mode(mode)
    x = native._as_matrix(x, mode)
    if mode == "q16_16":
        if x.dtype == np.float32:
            x, _ = native.to_q16(x)  # refuses NaN / Inf with its position
        return x
    if not np.isfinite(x).all():
        raise InvalidInput(native._first_nonfinite(x))
    return x


def _int_param(name: str, v: object, lo: int, hi: int | None, why: str) -> int:
    """An integer in [lo, hi] (hi None: no upper bound)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidType(f"{name} must be an integer, got {type(v).__name__}")
    v = int(v)
    if v < lo or (hi is not None and v > hi):
        raise InvalidInput(f"{why}, got {name}={v}")
    return v


def _real(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (Real, np.integer, np.floating)):
        raise InvalidType(f"{name} must be a real number, got {type(v).__name__}")
    return float(v)


def _tau(tau: object) -> float:
    t = _real("tau", tau)
    if not math.isfinite(t) or t <= 0:
        raise InvalidInput(f"tau must be a finite number > 0, got {t}")
    return t


def _tau_raw(tau: float) -> int:
    """tau (real units) -> Q16.16 raw units, round(tau * 2^16) ties away (exact)."""
    raw = int(Fraction(tau) * Q16_ONE + Fraction(1, 2))  # tau > 0: floor(v + 1/2)
    if raw == 0:
        raise InvalidInput(f"tau={tau} is below the Q16.16 resolution 2^-17: it rounds to 0")
    return raw


def _f(f: object, n: int, name: str) -> int:
    return _int_param("f", f, 0, n - 1, f"{name} needs 0 <= f < n (n={n})")


def _weights(weights: object, n: int) -> np.ndarray:
    """Validated float64 weights of shape (n,): finite, >= 0, not all zero."""
    if isinstance(weights, np.ndarray):
        w = weights
    else:
        try:
            w = np.asarray(weights)
        except Exception as e:  # ragged lists and the like
            raise InvalidType("weights must be a sequence of numbers, "
                              f"got {type(weights).__name__}") from e
    if w.dtype.kind not in "iuf":
        raise InvalidType(f"weights must be numbers, got dtype {w.dtype}")
    if w.shape != (n,):
        raise InvalidInput(f"weights must have shape ({n},) (one per client), got {w.shape}")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"weights must be finite, got {w[i]} for client {i}")
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise InvalidInput(f"weights must be >= 0, got {w[i]} for client {i}")
    if not (w > 0).any():
        raise InvalidInput("weights are all zero: at least one client must count")
    return w


def _q16_weight_units(w: np.ndarray, limit: int) -> np.ndarray:
    """Q16.16 weights: w_int = round(w * 2^16), ties away from zero, as int64.

    w * 2^16 is exact in float64 (a power-of-two scaling), and so are its
    floor and the fraction below it, so the rounding is exact."""
    v = w * float(Q16_ONE)
    if (v >= 2.0**62).any():
        raise InvalidInput(f"q16_16 weights must be below 2^46, got {w.max()}")
    fl = np.floor(v)
    w_int = fl.astype(np.int64) + (v - fl >= 0.5)
    total = int(w_int.sum())  # each < 2^62, n <= 65535: Python int of the int64 sum is exact
    if total == 0:
        raise InvalidInput("weights all round to 0 in Q16.16 (resolution 2^-16): "
                           f"the largest is {w.max()}")
    if total >= limit:
        raise InvalidInput(f"q16_16 weights must sum to less than {limit / Q16_ONE:g} "
                           f"(they are relative: scale them down), got {w.sum()}")
    return w_int


def _float_weight_units(w: np.ndarray) -> np.ndarray:
    """float32-mode weights as exact integer units (int64, sum < 2^53).

    Every float64 weight is m / 2^e exactly; over the common denominator, divided
    by the gcd, they are integers with exactly the given ratios (equal weights
    become 1, counts stay counts). When those do not fit, the weights are
    rounded to a grid of 2^-36 of the largest power of two <= 2 max(w)
    (relative resolution ~1.5e-11; a weight below that share counts 0)."""
    ratios = [float(v).as_integer_ratio() for v in w]
    den = max(d for _, d in ratios)  # powers of two: the largest is their lcm
    ints = [p * (den // d) for p, d in ratios]
    g = 0
    for v in ints:
        g = math.gcd(g, v)
    ints = [v // g for v in ints]
    if sum(ints) < _F64_EXACT:
        return np.array(ints, dtype=np.int64)
    e = math.frexp(float(w.max()))[1]  # max(w) in [2^(e-1), 2^e)
    v = np.ldexp(w, 36 - e)  # exact scaling; max < 2^36, sum < 2^52
    fl = np.floor(v)
    return fl.astype(np.int64) + (v - fl >= 0.5)


# ---- integer helpers (q16_16) ------------------------------------------------------------


def _div_round(num: np.ndarray, den) -> np.ndarray:
    """num / den rounded to nearest, ties away from zero (int64).

    den > 0 (scalar or array broadcasting against num). The callers keep
    |num| < 2^63 (so -num does not overflow). 2r >= den is tested as
    r >= den - r, which cannot overflow."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    neg = num < 0
    mag = np.where(neg, -num, num)
    q, r = np.divmod(mag, den)
    q = q + (r >= den - r)
    return np.where(neg, -q, q)


def _div_round_int(num: int, den: int) -> int:
    """The same rounding on Python ints (den > 0)."""
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return -q if num < 0 else q


def _sat32(v: np.ndarray) -> np.ndarray:
    return np.clip(v, _I32_MIN, _I32_MAX).astype(np.int32)


def _sqnorms_exact(z: np.ndarray) -> list[int]:
    """Exact squared L2 norm of each row of an integer array with |z| < 2^32.

    |z|^2 < 2^64 fits uint64. Its high and low 32-bit halves are summed
    separately: each half is < 2^32, so over d < 2^32 columns neither uint64
    sum can overflow; the exact total is hi * 2^32 + lo as a Python int."""
    if z.shape[1] >= 2**32:
        raise InvalidInput(f"at most 2^32 - 1 parameters, got d={z.shape[1]}")
    a = np.abs(z.astype(np.int64)).astype(np.uint64)
    sq = a * a
    hi = (sq >> _SHIFT32).sum(axis=1, dtype=np.uint64)
    lo = (sq & _LO32).sum(axis=1, dtype=np.uint64)
    return [(int(h) << 32) + int(l) for h, l in zip(hi, lo)]


def _isqrt_round(v: int) -> int:
    """sqrt(v) rounded to nearest (never a tie for integer v)."""
    r = math.isqrt(v)
    if v - r * r > r:
        r += 1
    return r


def _scale_row(z: np.ndarray, num: int, den: int) -> np.ndarray:
    """round(z * num / den) per element, ties away; z int64 with |z| < 2^32, 0 <= num < den.

    The product |z| * num is formed in int64 when it stays below 2^63 (always,
    unless tau is beyond 2^31 raw units and the row huge); otherwise exactly in
    Python ints. |result| <= |z| since num/den < 1."""
    zmax = int(np.abs(z).max()) if z.size else 0
    if zmax * num < _I64_LIMIT and den < _I64_LIMIT:
        return _div_round(z * np.int64(num), den)
    return np.array([_div_round_int(int(v) * num, den) for v in z.tolist()], dtype=np.int64)


# ---- norm clipping -----------------------------------------------------------------------


def _clip_q16(x: np.ndarray, rows: Sequence[int], t: int, norms: Sequence[int]) -> np.ndarray:
    """Rows `rows` of int32 x scaled by t / norms[i] (each norms[i] > t); int32 result."""
    out = x.copy()
    for i in rows:
        out[i] = _scale_row(x[i].astype(np.int64), t, norms[i])  # |result| <= |x|: fits int32
    return out


def _norms_f64(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", x64, x64))


def clip_norms(x: np.ndarray, tau: float, *,
               mode: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Scale every row whose L2 norm exceeds tau down to norm tau.

    tau is in real units in both modes (q16_16: converted to raw Q16.16 units
    once, round(tau * 2^16), ties away). Returns ``(clipped, mask)``: the
    clipped matrix (float32 or int32 raw) and a bool (n,) mask of the rows that
    were scaled. Rows with norm <= tau are returned unchanged; no element of a
    scaled row grows in magnitude.

    float32: norm in float64; a scaled row is x * (tau / ||x||) rounded once.
    q16_16: norm = rounded integer square root of the exact sum of raw^2; a row
    is scaled when that norm > tau_raw, each element to round(x * tau_raw / norm).
    """
    x = _matrix(x, mode)
    t = _tau(tau)
    if mode == "q16_16":
        t_raw = _tau_raw(t)
        norms = [_isqrt_round(s) for s in _sqnorms_exact(x)]
        mask = np.array([r > t_raw for r in norms], dtype=bool)
        return _clip_q16(x, np.flatnonzero(mask).tolist(), t_raw, norms), mask
    norms = _norms_f64(x)
    mask = norms > t
    out = x.copy()
    if mask.any():
        scale = t / norms[mask]
        out[mask] = (x[mask].astype(np.float64) * scale[:, None]).astype(np.float32)
    return out, mask


def arc(x: np.ndarray, f: int, *, mode: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Adaptive Robust Clipping (Allouah, Guerraoui, Gupta, Pinot, Stephan, 2024).

    With k = floor(2 (f/n) (n - f)) (computed in integers), the k rows of
    largest norm are clipped to the (k+1)-th largest norm. Rows are ranked by
    (norm, index): among equal norms the lower index ranks lower and is kept.
    Returns ``(clipped, mask)``; mask marks the k ranked rows (a marked row whose
    norm equals the threshold is left unchanged). Needs 0 <= f < n.

    q16_16 ranks by the exact squared norms and clips to the rounded integer
    norm of the (k+1)-th row, as in :func:`clip_norms`.
    """
    x = _matrix(x, mode)
    n = x.shape[0]
    f = _f(f, n, "arc")
    k = (2 * f * (n - f)) // n  # <= n/2 < n, so the (k+1)-th largest exists
    mask = np.zeros(n, dtype=bool)
    if k == 0:
        return x.copy(), mask
    if mode == "q16_16":
        sq = _sqnorms_exact(x)
        order = sorted(range(n), key=lambda i: (sq[i], i))  # ascending; last k are clipped
        top = order[n - k:]
        mask[top] = True
        norms = [_isqrt_round(s) for s in sq]
        t = norms[order[n - k - 1]]
        return _clip_q16(x, [i for i in top if norms[i] > t], t, norms), mask
    norms = _norms_f64(x)
    order = np.argsort(norms, kind="stable")
    top = order[n - k:]
    mask[top] = True
    t = norms[order[n - k - 1]]
    rows = top[norms[top] > t]
    out = x.copy()
    if rows.size:
        scale = t / norms[rows]
        out[rows] = (x[rows].astype(np.float64) * scale[:, None]).astype(np.float32)
    return out, mask


# ---- mixing and bucketing ----------------------------------------------------------------


def nnm(x: np.ndarray, f: int, *, mode: str = "float32") -> np.ndarray:
    """Nearest Neighbour Mixing (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot,
    Stephan, AISTATS 2023).

    Row i becomes the mean of the n - f rows nearest to row i: itself first,
    then by squared distance (:func:`qora.native.pairwise_sqdist`), ties to the
    lower index. Needs 0 <= f < n. float32: the mean in float64, rounded once;
    q16_16: the exact sum (< 2^31 * 2^16) divided by n - f, ties away.
    """
    x = _matrix(x, mode)
    n = x.shape[0]
    f = _f(f, n, "nnm")
    m = n - f
    dist = native.pairwise_sqdist(x, mode=mode)
    idx = np.arange(n)
    not_self = idx[None, :] != idx[:, None]
    # per row i: sort by (distance, not itself, index); lexsort's last key is primary
    order = np.lexsort((np.broadcast_to(idx, (n, n)), not_self, dist), axis=-1)
    sel = np.zeros((n, n), dtype=np.float64)
    np.put_along_axis(sel, order[:, :m], 1.0, axis=1)
    sums = sel @ x.astype(np.float64)  # a 0/1 matrix product (BLAS)
    if mode == "q16_16":
        # Exact: every partial sum is an integer of magnitude < m * 2^31 <= 2^47 < 2^53,
        # which float64 holds exactly whatever the order of addition (or FMA).
        return _sat32(_div_round(sums.astype(np.int64), m))
    return (sums / m).astype(np.float32)


def bucketing(x: np.ndarray, s: int, *, seed, mode: str = "float32") -> tuple[np.ndarray, list]:
    """Bucketing (Karimireddy, He, Jaggi, ICLR 2022).

    Rows are shuffled with ``np.random.default_rng(seed).permutation(n)``, cut
    into buckets of s consecutive rows (the last may be smaller) and each bucket
    is averaged. Returns ``(means, buckets)``: a (ceil(n/s), d) array and the
    list of each bucket's row indices. Needs s >= 1 (s >= n gives one bucket).
    q16_16: exact int64 sums divided by the bucket size, ties away.
    """
    x = _matrix(x, mode)
    n = x.shape[0]
    s = _int_param("s", s, 1, None, "bucketing needs bucket size s >= 1")
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, (int, np.integer))):
        raise InvalidType(f"seed must be an integer (or None), got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise InvalidInput(f"seed must be >= 0, got {seed}")
    perm = np.random.default_rng(seed).permutation(n)
    buckets = [perm[i:i + s].tolist() for i in range(0, n, s)]
    if mode == "q16_16":
        x64 = x.astype(np.int64)
        means = np.stack([_div_round(x64[b].sum(axis=0), len(b)) for b in buckets])
        return _sat32(means), buckets
    x64 = x.astype(np.float64)
    means = np.stack([x64[b].sum(axis=0) / len(b) for b in buckets])
    return means.astype(np.float32), buckets


# ---- centered clipping -------------------------------------------------------------------


def _center(center: object, d: int, mode: str) -> np.ndarray:
    if not isinstance(center, np.ndarray):
        raise InvalidType(f"center must be a numpy array of shape ({d},), "
                          f"got {type(center).__name__}")
    if center.shape != (d,):
        raise InvalidInput(f"center must have shape ({d},) (one value per parameter), "
                           f"got {center.shape}")
    if mode == "q16_16":
        if center.dtype == np.int32:
            return center.astype(np.int64)
        if center.dtype == np.float32:
            return native.to_q16(center)[0].astype(np.int64)
        raise InvalidType("mode='q16_16' needs an int32 (raw) or float32 center, "
                          f"got {center.dtype}")
    if center.dtype.kind != "f":
        raise InvalidType(f"mode='float32' needs a float center, got {center.dtype}")
    c = center.astype(np.float64)
    if not np.isfinite(c).all():
        j = int(np.argmax(~np.isfinite(c)))
        raise InvalidInput(f"Non-finite value {c[j]} in center at [{j}]")
    return c


def centered_clipping(x: np.ndarray, center: np.ndarray, tau: float, *, iterations: int = 3,
                      mode: str = "float32") -> np.ndarray:
    """Centered Clipping (Karimireddy, He, Jaggi, ICML 2021).

    v = center; repeated ``iterations`` times: v = v + mean_i clip(x_i - v, tau),
    clip(z, tau) = z * min(1, tau / ||z||). Returns v, shape (d,).

    tau is in real units (q16_16: round(tau * 2^16) raw units). float32: all in
    float64, rounded once at the end. q16_16: v stays int32 (saturated after each
    step); z = x_i - v is exact in int64 (|z| < 2^32), clipped like
    :func:`clip_norms` (element-wise rounding), the clipped rows summed exactly
    in int64 (< 2^16 * 2^32), divided by n with ties away.
    """
    x = _matrix(x, mode)
    n, d = x.shape
    c = _center(center, d, mode)
    t = _tau(tau)
    iterations = _int_param("iterations", iterations, 1, None,
                            "centered_clipping needs iterations >= 1")
    if mode == "q16_16":
        t_raw = _tau_raw(t)
        x64 = x.astype(np.int64)
        v = c
        for _ in range(iterations):
            z = x64 - v
            norms = [_isqrt_round(s) for s in _sqnorms_exact(z)]
            for i, r in enumerate(norms):
                if r > t_raw:
                    z[i] = _scale_row(z[i], t_raw, r)
            v = np.clip(v + _div_round(z.sum(axis=0), n), _I32_MIN, _I32_MAX)
        return v.astype(np.int32)
    x64 = x.astype(np.float64)
    v = c
    for _ in range(iterations):
        z = x64 - v
        norms = np.sqrt(np.einsum("ij,ij->i", z, z))
        scale = np.ones(n)
        big = norms > t
        scale[big] = t / norms[big]
        v = v + (z * scale[:, None]).sum(axis=0) / n
    return v.astype(np.float32)


# ---- weighted order statistics ---------------------------------------------------------------


def _beta(beta: object) -> float:
    b = _real("beta", beta)
    if not (0.0 <= b < 0.5):
        raise InvalidInput(f"beta (the trimmed weight share per side) must be in [0, 0.5), got {b}")
    return b


def _sorted_columns(x: np.ndarray, w_units: np.ndarray):
    """Per column: values ascending (stable), their weights and cumulative weights."""
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    ws = w_units[order]
    return xs, ws, np.cumsum(ws, axis=0)


def weighted_trimmed_mean(x: np.ndarray, weights, beta: float, *,
                          mode: str = "float32") -> np.ndarray:
    """Reputation-weighted trimmed mean, per coordinate.

    Sort the values; remove weight mass T = beta * W from each end (the value at
    a boundary only partly), average the remaining mass W - 2T weighted by what
    is left of each weight. Weights >= 0, finite, not all zero; 0 <= beta < 0.5.
    Equal weights and beta * n = k give the trimmed mean with k.

    float32: the weights become exact integer units with their exact ratios
    (or, when those do not fit in 2^53, a 2^-36 grid of the largest), T =
    beta * W in float64, the sums in float64, rounded once.

    q16_16: w_int = round(w * 2^16) ties away (weights are relative; they must
    sum to < 65536), T = round(beta * W_int) exactly (ties away; at most
    (W_int - 1) // 2 so a unit is always kept), result = sum(x * kept) / (W_int
    - 2T) rounded half away. Each kept <= w_int and |x| <= 2^31, so the int64
    products and the sum are bounded by 2^31 * W_int < 2^63.
    """
    x = _matrix(x, mode)
    n = x.shape[0]
    w = _weights(weights, n)
    b = _beta(beta)
    if mode == "q16_16":
        wu = _q16_weight_units(w, _Q16_TRIM_W_LIMIT)
        W = int(wu.sum())
        T = min(int(Fraction(b) * W + Fraction(1, 2)), (W - 1) // 2)  # floor(v + 1/2), v >= 0
        K = W - 2 * T
        xs, ws, C = _sorted_columns(x, wu)
        kept = np.minimum(C, W - T) - np.maximum(C - ws, T)
        np.maximum(kept, 0, out=kept)
        num = (xs.astype(np.int64) * kept).sum(axis=0)  # |num| <= 2^31 * K < 2^63
        return _sat32(_div_round(num, K))
    wu = _float_weight_units(w)
    W = int(wu.sum())
    T = float(Fraction(b) * W)  # correctly rounded
    K = W - 2.0 * T
    if K <= 0:
        raise InvalidInput(f"beta={b} leaves no weight to average")
    xs, ws, C = _sorted_columns(x, wu)
    Cf = C.astype(np.float64)  # integers < 2^53: exact
    kept = np.minimum(Cf, W - T) - np.maximum(Cf - ws, T)
    np.maximum(kept, 0.0, out=kept)
    return ((xs.astype(np.float64) * kept).sum(axis=0) / K).astype(np.float32)


def weighted_median(x: np.ndarray, weights, *, mode: str = "float32") -> np.ndarray:
    """Reputation-weighted median, per coordinate.

    Sort the values; the result is the value at which the cumulative weight
    first reaches W/2, or, when it reaches exactly W/2 there, the mean of that
    value and the next one of positive weight (as the median of an even count).
    Equal weights give :func:`qora.native.median` (q16_16: bit for bit).

    The weight bookkeeping is exact integer arithmetic in both modes (the
    weight units of :func:`weighted_trimmed_mean`; q16_16 allows W < 2^45).
    The mean of two values is formed in float64 (float32) or as an exact int64
    sum halved with ties away (q16_16).
    """
    x = _matrix(x, mode)
    n = x.shape[0]
    w = _weights(weights, n)
    wu = _q16_weight_units(w, _Q16_MEDIAN_W_LIMIT) if mode == "q16_16" else _float_weight_units(w)
    W = int(wu.sum())
    xs, _, C = _sorted_columns(x, wu)
    twice = 2 * C  # < 2^62 (q16_16) or 2^54 (float32)
    lo = np.argmax(twice >= W, axis=0)[None, :]  # first position reaching W/2
    hi = np.argmax(twice > W, axis=0)[None, :]  # first passing it: lo, or the next weighted one
    a = np.take_along_axis(xs, lo, axis=0)[0]
    b = np.take_along_axis(xs, hi, axis=0)[0]
    if mode == "q16_16":
        return _sat32(_div_round(a.astype(np.int64) + b, 2))
    return ((a.astype(np.float64) + b) / 2).astype(np.float32)
