"""qora.robust: every option against a simple, obviously-correct reference written
here (Python loops over rows / columns, exact Fractions for Q16.16), invariances,
agreement with the native trimmed mean and median, robustness against a few
large attackers, and every bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora import InvalidInput, InvalidType, native, robust

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ["float32", "q16_16"]
U64_MAX = 2**64 - 1

floats = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False)
q16_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**20), 2**20),
    st.sampled_from([-(2**31), 2**31 - 1, 0, 1, -1]),
)


@st.composite
def matrices(draw, mode, min_n=1, max_n=10, max_d=6):
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, max_d))
    if mode == "float32":
        return draw(hnp.arrays(np.float32, (n, d), elements=floats))
    return draw(hnp.arrays(np.int32, (n, d), elements=q16_values))


# ---- exact helpers of the reference ------------------------------------------------------


def rha(q) -> int:
    """A rational rounded to nearest, ties away from zero."""
    q = Fraction(q)
    m, r = divmod(abs(q.numerator), q.denominator)
    if 2 * r >= q.denominator:
        m += 1
    return m if q >= 0 else -m


def isqrt_round(v: int) -> int:
    r = math.isqrt(v)
    return r + 1 if (r + 1) * (r + 1) - v <= v - r * r else r  # nearest (never a tie)


def clamp32(v: int) -> int:
    return max(-(2**31), min(2**31 - 1, v))


def ints(x) -> list[list[int]]:
    return [[int(v) for v in row] for row in x]


def fnorm(row) -> float:
    return math.sqrt(math.fsum(float(v) * float(v) for v in row))


def tau_raw(tau: float) -> int:
    return rha(Fraction(tau) * 65536)


def q16_weight(w: float) -> int:
    return rha(Fraction(float(w)) * 65536)


def allclose32(got, expected, x):
    scale = 1.0 + float(np.abs(np.asarray(x, dtype=np.float64)).max())
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(expected, np.float64),
                               rtol=1e-6, atol=1e-6 * scale)


# ---- the integer helpers -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20), st.integers(1, 2**40))
def test_div_round_is_half_away_from_zero(nums, den):
    got = robust._div_round(np.array(nums, dtype=np.int64), den)
    assert got.tolist() == [rha(Fraction(v, den)) for v in nums]
    dens = np.array([den + i for i in range(len(nums))], dtype=np.int64)
    got = robust._div_round(np.array(nums, dtype=np.int64), dens)
    assert got.tolist() == [rha(Fraction(v, den + i)) for i, v in enumerate(nums)]


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.int64, (3, 40), elements=st.integers(-(2**32) + 1, 2**32 - 1)))
def test_exact_squared_norms_and_rounded_root(z):
    got = robust._sqnorms_exact(z)
    assert got == [sum(v * v for v in row) for row in ints(z)]
    for s in got + [0, 1, 2, 3, 6, 7, 2**64 - 1, 10**30]:
        assert robust._isqrt_round(s) == isqrt_round(s)


# ---- clip_norms ---------------------------------------------------------------------------


def ref_clip(x, tau, mode):
    out, mask = [], []
    if mode == "q16_16":
        t = tau_raw(tau)
        for row in ints(x):
            r = isqrt_round(sum(v * v for v in row))
            mask.append(r > t)
            out.append([rha(Fraction(v * t, r)) for v in row] if r > t else row)
        return np.array(out, dtype=np.int64), np.array(mask)
    for row in x:
        nrm = fnorm(row)
        mask.append(nrm > tau)
        out.append([float(v) * tau / nrm for v in row] if nrm > tau else [float(v) for v in row])
    return np.array(out), np.array(mask)


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_clip_norms_matches_reference(mode, data):
    x = data.draw(matrices(mode))
    tau = data.draw(st.floats(2**-16, 1e6) if mode == "q16_16" else st.floats(1e-3, 3e3))
    got, mask = robust.clip_norms(x, tau, mode=mode)
    exp, exp_mask = ref_clip(x, tau, mode)
    assert got.dtype == (np.int32 if mode == "q16_16" else np.float32) and got.shape == x.shape
    if mode == "q16_16":
        assert got.tolist() == exp.tolist() and mask.tolist() == exp_mask.tolist()
        return
    norms = np.array([fnorm(r) for r in x])
    assume(not np.any(np.isclose(norms, tau, rtol=1e-12, atol=0)))  # float64 norm vs fsum at the edge
    assert mask.tolist() == exp_mask.tolist()
    allclose32(got, exp, x)


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_clip_norms_never_grows_a_value_and_leaves_short_rows_alone(mode, data):
    x = data.draw(matrices(mode))
    tau = data.draw(st.floats(0.01, 1e5))
    got, mask = robust.clip_norms(x, tau, mode=mode)
    assert np.all(np.abs(got.astype(np.float64)) <= np.abs(x.astype(np.float64)))
    np.testing.assert_array_equal(got[~mask], x[~mask])
    # a clipped row ends at norm tau, up to the rounding of each element
    unit = 65536.0 if mode == "q16_16" else 1.0
    for i in np.flatnonzero(mask):
        nrm = fnorm(got[i]) / unit
        slack = (math.sqrt(x.shape[1]) + 1) / unit if mode == "q16_16" else 1e-6 * tau
        assert nrm <= tau + slack
        assert fnorm(got[i]) <= fnorm(x[i])


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_clip_norms_and_arc_commute_with_row_permutations(mode, data):
    x = data.draw(matrices(mode, min_n=2))
    n = x.shape[0]
    p = np.array(data.draw(st.permutations(range(n))))
    f = data.draw(st.integers(0, n - 1))
    norms = sorted(fnorm(r) for r in x)
    assume(all(b - a > 1e-9 * b for a, b in zip(norms, norms[1:])))  # distinct norms: no tie rule
    for fn in (lambda a: robust.clip_norms(a, 50.0, mode=mode), lambda a: robust.arc(a, f, mode=mode)):
        out, mask = fn(x)
        out_p, mask_p = fn(x[p])
        assert mask_p.tolist() == mask[p].tolist()
        if mode == "q16_16":
            np.testing.assert_array_equal(out_p, out[p])
        else:
            allclose32(out_p, out[p], x)


# ---- ARC ---------------------------------------------------------------------------------


def ref_arc(x, f, mode):
    n = len(x)
    k = math.floor(Fraction(2 * f, n) * (n - f))
    if mode == "q16_16":
        rows = ints(x)
        sq = [sum(v * v for v in r) for r in rows]
        ranked = sorted(range(n), key=lambda i: (sq[i], i))
        top = set(ranked[n - k:])
        t = isqrt_round(sq[ranked[n - k - 1]])
        out = []
        for i, r in enumerate(rows):
            nrm = isqrt_round(sq[i])
            out.append([rha(Fraction(v * t, nrm)) for v in r] if i in top and nrm > t else r)
        return np.array(out, dtype=np.int64), np.array([i in top for i in range(n)]), []
    norms = [fnorm(r) for r in x]
    ranked = sorted(range(n), key=lambda i: (norms[i], i))
    top = set(ranked[n - k:])
    t = norms[ranked[n - k - 1]]
    out = [[float(v) * t / norms[i] for v in r] if i in top and norms[i] > t else [float(v) for v in r]
           for i, r in enumerate(x)]
    return np.array(out), np.array([i in top for i in range(n)]), norms


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_arc_matches_reference(mode, data):
    x = data.draw(matrices(mode))
    n = x.shape[0]
    f = data.draw(st.integers(0, n - 1))
    got, mask = robust.arc(x, f, mode=mode)
    exp, exp_mask, norms = ref_arc(x, f, mode)
    assert int(mask.sum()) == (2 * f * (n - f)) // n
    if mode == "q16_16":
        assert got.tolist() == exp.tolist() and mask.tolist() == exp_mask.tolist()
        return
    allclose32(got, exp, x)
    near_tie = any(0 < abs(a - b) <= 1e-9 * max(a, b) for a in norms for b in norms)
    if not near_tie:
        assert mask.tolist() == exp_mask.tolist()


def test_arc_counts_and_ties():
    # n = 10, f = 2: k = floor(2 * 0.2 * 8) = 3; the fourth largest norm (4) is the threshold
    x = np.array([[v, 0.0] for v in [1, 9, 2, 8, 3, 7, 4, 0, 0, 0]], np.float32)
    out, mask = robust.arc(x, 2)
    assert np.flatnonzero(mask).tolist() == [1, 3, 5]
    assert out[:, 0].tolist() == [1, 4, 2, 4, 3, 4, 4, 0, 0, 0]
    # equal norms: the lower index ranks lower and is kept
    same = np.ones((5, 3), np.float32)
    _, mask = robust.arc(same, 1)  # k = floor(2 * 1 * 4 / 5) = 1
    assert np.flatnonzero(mask).tolist() == [4]
    q, qmask = robust.arc(native.to_q16(x)[0], 2, mode="q16_16")
    assert qmask.tolist() == robust.arc(x, 2)[1].tolist()
    assert (q[:, 0] / 65536).tolist() == [1, 4, 2, 4, 3, 4, 4, 0, 0, 0]


# ---- NNM ---------------------------------------------------------------------------------


def ref_nnm(x, f, mode):
    n = len(x)
    m = n - f
    if mode == "q16_16":
        rows = ints(x)
        dist = [[min(sum((a - b) ** 2 for a, b in zip(ri, rj)), U64_MAX) for rj in rows] for ri in rows]
    else:
        dist = native.pairwise_sqdist(x).tolist()  # the documented distance of the float mode
    out = []
    for i in range(n):
        near = sorted(range(n), key=lambda j: (j != i, dist[i][j], j))[:m]
        if mode == "q16_16":
            out.append([rha(Fraction(sum(rows[j][c] for j in near), m)) for c in range(x.shape[1])])
        else:
            out.append([sum(float(x[j, c]) for j in near) / m for c in range(x.shape[1])])
    return np.array(out), dist


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_nnm_matches_reference(mode, data):
    x = data.draw(matrices(mode))
    f = data.draw(st.integers(0, x.shape[0] - 1))
    got = robust.nnm(x, f, mode=mode)
    exp, _ = ref_nnm(x, f, mode)
    assert got.shape == x.shape and got.dtype == x.dtype
    if mode == "q16_16":
        assert got.tolist() == exp.tolist()
    else:
        allclose32(got, exp, x)


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_nnm_commutes_with_row_permutations(mode, data):
    x = data.draw(matrices(mode, min_n=2))
    n = x.shape[0]
    f = data.draw(st.integers(0, n - 1))
    _, dist = ref_nnm(x, f, mode)
    for i in range(n):  # no tie at the neighbourhood's edge, where the index decides
        others = sorted(dist[i][j] for j in range(n) if j != i)
        assume(f == 0 or n - f - 1 == 0 or others[n - f - 2] != others[n - f - 1])
    p = np.array(data.draw(st.permutations(range(n))))
    got_p = robust.nnm(x[p], f, mode=mode)
    got = robust.nnm(x, f, mode=mode)
    if mode == "q16_16":
        np.testing.assert_array_equal(got_p, got[p])
    else:
        allclose32(got_p, got[p], x)


# ---- bucketing ----------------------------------------------------------------------------


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_bucketing_partitions_reproducibly_and_averages(mode, data):
    x = data.draw(matrices(mode))
    n, d = x.shape
    s = data.draw(st.integers(1, n + 2))
    seed = data.draw(st.integers(0, 2**32))
    means, buckets = robust.bucketing(x, s, seed=seed, mode=mode)
    assert sorted(i for b in buckets for i in b) == list(range(n))
    assert [len(b) for b in buckets[:-1]] == [s] * (len(buckets) - 1) and 1 <= len(buckets[-1]) <= s
    assert means.shape == (-(-n // s), d) and means.dtype == x.dtype
    again, buckets2 = robust.bucketing(x, s, seed=seed, mode=mode)
    assert buckets2 == buckets
    np.testing.assert_array_equal(again, means)
    assert buckets == [b.tolist() for b in np.array_split(np.random.default_rng(seed).permutation(n),
                                                            range(s, n, s))]
    for b, row in zip(buckets, means):
        if mode == "q16_16":
            assert row.tolist() == [rha(Fraction(sum(int(x[i, c]) for i in b), len(b))) for c in range(d)]
        else:
            allclose32(row, [sum(float(x[i, c]) for i in b) / len(b) for c in range(d)], x)


def test_bucketing_seeds_differ():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    assert robust.bucketing(x, 3, seed=1)[1] != robust.bucketing(x, 3, seed=2)[1]


# ---- centered clipping --------------------------------------------------------------------


def ref_cc(x, center, tau, iterations, mode):
    n, d = x.shape
    if mode == "q16_16":
        t = tau_raw(tau)
        rows = ints(x)
        v = [int(c) for c in center]
        for _ in range(iterations):
            total = [0] * d
            for r in rows:
                z = [a - b for a, b in zip(r, v)]
                nrm = isqrt_round(sum(e * e for e in z))
                if nrm > t:
                    z = [rha(Fraction(e * t, nrm)) for e in z]
                total = [a + b for a, b in zip(total, z)]
            v = [clamp32(a + rha(Fraction(b, n))) for a, b in zip(v, total)]
        return np.array(v, dtype=np.int64)
    v = center.astype(np.float64)
    for _ in range(iterations):
        step = np.zeros(d)
        for r in x.astype(np.float64):
            z = r - v
            nrm = math.sqrt(math.fsum(z * z))
            step += z * (min(1.0, tau / nrm) if nrm > 0 else 1.0)
        v = v + step / n
    return v


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_centered_clipping_matches_reference(mode, data):
    x = data.draw(matrices(mode, max_n=8))
    d = x.shape[1]
    center = data.draw(hnp.arrays(x.dtype, (d,), elements=floats if mode == "float32" else q16_values))
    tau = data.draw(st.floats(2**-16, 1e5) if mode == "q16_16" else st.floats(1e-2, 1e4))
    iterations = data.draw(st.integers(1, 3))
    got = robust.centered_clipping(x, center, tau, iterations=iterations, mode=mode)
    exp = ref_cc(x, center, tau, iterations, mode)
    assert got.shape == (d,) and got.dtype == x.dtype
    if mode == "q16_16":
        assert got.tolist() == exp.tolist()
    else:
        allclose32(got, exp, np.vstack([x, center]))


def test_q16_products_beyond_int64_are_exact():
    # |z| up to 2^32 - 1 and tau_raw > 2^31: z * tau_raw no longer fits int64
    x = np.array([[2**31 - 1, -(2**31), 5], [-(2**31), 2**31 - 1, -7], [0, 3, 0]], np.int32)
    center = np.array([-(2**31), 2**31 - 1, 0], np.int32)
    for tau in (40000.0, 50000.0, 1e5):
        for it in (1, 2):
            got = robust.centered_clipping(x, center, tau, iterations=it, mode="q16_16")
            assert got.tolist() == ref_cc(x, center, tau, it, "q16_16").tolist()
        big = np.vstack([x, np.full((1, 3), 2**31 - 1, np.int32)])
        got, mask = robust.clip_norms(big, tau, mode="q16_16")
        exp, exp_mask = ref_clip(big, tau, "q16_16")
        assert got.tolist() == exp.tolist() and mask.tolist() == exp_mask.tolist()


@SETTINGS
@given(matrices("float32"))
def test_centered_clipping_with_huge_tau_is_the_mean_after_one_iteration(x):
    center = np.zeros(x.shape[1], np.float32)
    got = robust.centered_clipping(x, center, 1e30, iterations=1)
    allclose32(got, x.astype(np.float64).mean(axis=0), x)


# ---- weighted trimmed mean ----------------------------------------------------------------


def trim_walk(pairs, T):
    """Remove mass T from each end of the sorted (value, weight) pairs; return what is left."""
    left = [[v, w] for v, w in sorted(pairs, key=lambda p: p[0])]
    for seq in (left, left[::-1]):
        cut = T
        for p in seq:
            take = min(p[1], cut)
            p[1] -= take
            cut -= take
    return left


def ref_wtm(x, weights, beta, mode):
    n, d = x.shape
    if mode == "q16_16":
        w = [q16_weight(v) for v in weights]
        W = sum(w)
        T = min(rha(Fraction(beta) * W), (W - 1) // 2)
        out = []
        for c in range(d):
            left = trim_walk([(int(x[i, c]), w[i]) for i in range(n)], T)
            out.append(rha(Fraction(sum(v * m for v, m in left), sum(m for _, m in left))))
        return np.array(out, dtype=np.int64)
    w = [Fraction(float(v)) for v in weights]
    T = Fraction(beta) * sum(w)
    out = []
    for c in range(d):
        left = trim_walk([(Fraction(float(x[i, c])), w[i]) for i in range(n)], T)
        out.append(float(sum(v * m for v, m in left) / sum(m for _, m in left)))
    return np.array(out)


@st.composite
def weight_lists(draw, n, mode):
    if mode == "q16_16":
        el = st.one_of(st.floats(0, 4), st.integers(0, 2**18).map(lambda a: a / 65536))
    else:
        el = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.integers(0, 20).map(float))
    w = np.array(draw(st.lists(el, min_size=n, max_size=n)))
    if mode == "q16_16":
        assume(sum(q16_weight(v) for v in w) > 0)
    else:
        assume(w.sum() > 0)
    return w


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_weighted_trimmed_mean_matches_reference(mode, data):
    x = data.draw(matrices(mode))
    w = data.draw(weight_lists(x.shape[0], mode))
    beta = data.draw(st.floats(0, 0.49))
    got = robust.weighted_trimmed_mean(x, w, beta, mode=mode)
    exp = ref_wtm(x, w, beta, mode)
    assert got.shape == (x.shape[1],) and got.dtype == x.dtype
    if mode == "q16_16":
        assert got.tolist() == exp.tolist()
    else:
        allclose32(got, exp, x)


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_weighted_trimmed_mean_with_equal_weights_is_the_native_trimmed_mean(mode, data):
    x = data.draw(matrices(mode, max_n=24, max_d=20))
    n = x.shape[0]
    k = data.draw(st.integers(0, (n - 1) // 2))
    c = data.draw(st.floats(2**-16, 100))
    got = robust.weighted_trimmed_mean(x, np.full(n, c), k / n, mode=mode)
    if mode == "q16_16":
        np.testing.assert_array_equal(got, native.trimmed_mean(x, k, mode=mode).raw)
    else:
        allclose32(got, native.trimmed_mean(x, k).value, x)


# ---- weighted median ----------------------------------------------------------------------


def ref_wmed(x, weights, mode):
    n, d = x.shape
    if mode == "q16_16":
        w = [q16_weight(v) for v in weights]
    else:
        w = [Fraction(float(v)) for v in weights]
    W = sum(w)
    out = []
    for c in range(d):
        pairs = sorted(((int(x[i, c]) if mode == "q16_16" else float(x[i, c]), w[i]) for i in range(n)),
                       key=lambda p: p[0])
        acc = 0
        for j, (v, wt) in enumerate(pairs):
            acc += wt
            if 2 * acc >= W:
                nxt = v if 2 * acc > W else next(u for u, wu in pairs[j + 1:] if wu > 0)
                break
        out.append(rha(Fraction(v + nxt, 2)) if mode == "q16_16" else (v + nxt) / 2)
    return np.array(out, dtype=np.int64 if mode == "q16_16" else np.float64)


@st.composite
def exact_weight_lists(draw, n, mode):
    """Weights whose ties are exact in both modes: small integers times a power of two."""
    scale = 2.0 ** draw(st.integers(-10, 6 if mode == "float32" else 1))
    w = np.array(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), dtype=np.float64) * scale
    assume(w.sum() > 0)
    return w


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_weighted_median_matches_reference(mode, data):
    x = data.draw(matrices(mode))
    n = x.shape[0]
    w = data.draw(st.one_of(exact_weight_lists(n, mode), weight_lists(n, mode)))
    if mode == "float32":
        assume(exact_units_fit(w))  # else the units are a 2^-36 grid: see the next test
    got = robust.weighted_median(x, w, mode=mode)
    exp = ref_wmed(x, w, mode)
    assert got.shape == (x.shape[1],) and got.dtype == x.dtype
    if mode == "q16_16":
        assert got.tolist() == exp.tolist()
    else:
        np.testing.assert_array_equal(got, exp.astype(np.float32))


def exact_units_fit(w) -> bool:
    """float32 mode keeps the weights' exact ratios when, over their common
    denominator and divided by their gcd, they sum to less than 2^53."""
    fr = [Fraction(float(v)) for v in w]
    den = max(f.denominator for f in fr)
    units = [int(f * den) for f in fr]
    g = math.gcd(*units)
    return sum(u // g for u in units) < 2**53


def test_float_weighted_median_with_arbitrary_real_weights():
    # reputation weights (min(s^3, 0.8)) need more than 53 bits together: they are put on
    # a grid of 2^-36 of the largest, which moves nothing unless a column is within
    # that of an exact tie
    rng = np.random.default_rng(11)
    for n in (3, 4, 7, 20):
        x = rng.normal(size=(n, 300)).astype(np.float32)
        w = np.minimum(rng.uniform(0, 1, n) ** 3, 0.8)
        assert not exact_units_fit(w)
        np.testing.assert_array_equal(robust.weighted_median(x, w), ref_wmed(x, w, "float32").astype(np.float32))
        allclose32(robust.weighted_trimmed_mean(x, w, 0.2), ref_wtm(x, w, 0.2, "float32"), x)


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_weighted_median_with_equal_weights_is_the_native_median(mode, data):
    x = data.draw(matrices(mode, max_n=24, max_d=20))
    c = data.draw(st.floats(2**-16, 1e3))
    got = robust.weighted_median(x, np.full(x.shape[0], c), mode=mode)
    if mode == "q16_16":
        np.testing.assert_array_equal(got, native.median(x, mode=mode).raw)
    else:
        np.testing.assert_array_equal(got, native.median(x).value)  # same (a + b) / 2 in double


def test_weighted_median_examples():
    x = np.array([[1.0], [2.0], [3.0], [10.0]], np.float32)
    assert robust.weighted_median(x, [1, 1, 1, 1]).tolist() == [2.5]
    assert robust.weighted_median(x, [1, 0, 1, 1]).tolist() == [3.0]
    assert robust.weighted_median(x, [1, 0, 0, 1]).tolist() == [5.5]  # 1 reaches W/2; next weighted is 10
    assert robust.weighted_median(x, [1, 1, 1, 3]).tolist() == [6.5]  # exact tie at 3
    assert robust.weighted_median(x, [0.8, 0.001, 0.001, 0.001]).tolist() == [1.0]
    q = native.to_q16(x)[0]
    assert (robust.weighted_median(q, [1, 1, 1, 3], mode="q16_16") / 65536).tolist() == [6.5]


def test_weighted_trimmed_mean_trims_boundary_values_partially():
    x = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    # W = 4, beta = 0.375: remove 1.5 from each end -> half of 1 and half of 2 remain
    assert robust.weighted_trimmed_mean(x, [1, 1, 1, 1], 0.375).tolist() == [1.5]
    # weights 3,1,1,1 (W = 6), beta = 0.25: remove 1.5 -> 1.5 of value 0 left, 1 of 1, 1 of 2, 0.5 of 3... from the top
    got = robust.weighted_trimmed_mean(x, [3, 1, 1, 1], 0.25)
    assert got.tolist() == [pytest.approx((0 * 1.5 + 1 * 1 + 2 * 0.5) / 3)]
    q = native.to_q16(x)[0]
    assert robust.weighted_trimmed_mean(q, [3, 1, 1, 1], 0.25, mode="q16_16").tolist() == [
        rha(Fraction(2, 3) * 65536)]


# ---- invariances of the weighted statistics ------------------------------------------------


@SETTINGS
@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_weighted_statistics_ignore_row_order_and_weight_scale(mode, data):
    x = data.draw(matrices(mode))
    n = x.shape[0]
    beta = data.draw(st.floats(0, 0.49))
    p = np.array(data.draw(st.permutations(range(n))))
    if mode == "q16_16":
        # weights on the Q16.16 grid and an integer scale: w_int scales exactly
        # and a trim share that is a whole number of weight units: the trim mass T is
        # rounded to whole units (2^-16 of a weight), so only then is it exactly scale-free
        a = np.array(data.draw(st.lists(st.integers(0, 2000), min_size=n, max_size=n)), np.float64)
        assume(a.sum() > 0)
        w, c = a / 65536, data.draw(st.integers(1, 50))
        beta = data.draw(st.integers(0, (int(a.sum()) - 1) // 2)) / a.sum()
    else:
        w = data.draw(weight_lists(n, mode))
        c = data.draw(st.floats(1e-3, 1e3))
    for fn in (lambda a, ww: robust.weighted_trimmed_mean(a, ww, beta, mode=mode),
               lambda a, ww: robust.weighted_median(a, ww, mode=mode)):
        base = fn(x, w)
        for other in (fn(x[p], w[p]), fn(x, w * c)):
            if mode == "q16_16":
                np.testing.assert_array_equal(other, base)
            else:
                allclose32(other, base, x)


def test_float_weighted_median_is_exactly_scale_free_for_power_of_two_scales():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 200)).astype(np.float32)
    w = rng.uniform(0, 1, 15)
    base = robust.weighted_median(x, w)
    for c in (2.0**-20, 0.5, 8.0, 2.0**30):
        np.testing.assert_array_equal(robust.weighted_median(x, w * c), base)


# ---- robustness sanity: 20 honest rows near 0, 4 at 1e3 --------------------------------------


def poisoned(mode):
    rng = np.random.default_rng(7)
    honest = rng.normal(0, 0.1, size=(20, 50))
    x = np.vstack([honest, np.full((4, 50), 1e3)]).astype(np.float32)
    if mode == "q16_16":
        return native.to_q16(x)[0], honest
    return x, honest


def real(v, mode):
    return np.asarray(v, np.float64) / (65536 if mode == "q16_16" else 1)


def within_honest_spread(v, honest):
    assert np.all(v >= honest.min(axis=0) - 1e-4) and np.all(v <= honest.max(axis=0) + 1e-4)
    assert np.abs(v - honest.mean(axis=0)).max() < 0.1  # honest sd 0.1, attackers at 1000


@pytest.mark.parametrize("mode", MODES)
def test_nnm_then_trimmed_mean_resists_four_attackers(mode):
    x, honest = poisoned(mode)
    mixed = robust.nnm(x, 4, mode=mode)
    r = native.trimmed_mean(mixed, 4, mode=mode)
    within_honest_spread(real(r.raw if mode == "q16_16" else r.value, mode), honest)
    # honest rows mix only with honest rows
    assert np.abs(real(mixed[:20], mode) - honest.mean(axis=0)).max() < 1e-4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attacker_weight", [0.125, 0.01, 0.0])
def test_weighted_median_and_trimmed_mean_resist_four_attackers(mode, attacker_weight):
    x, honest = poisoned(mode)
    w = np.array([0.125] * 20 + [attacker_weight] * 4)
    within_honest_spread(real(robust.weighted_median(x, w, mode=mode), mode), honest)
    within_honest_spread(real(robust.weighted_trimmed_mean(x, w, 0.2, mode=mode), mode), honest)


@pytest.mark.parametrize("mode", MODES)
def test_centered_clipping_around_the_median_resists_four_attackers(mode):
    x, honest = poisoned(mode)
    med = native.median(x, mode=mode)
    center = med.raw if mode == "q16_16" else med.value
    tau = float(np.median(np.linalg.norm(honest - real(center, mode), axis=1)))
    v = robust.centered_clipping(x, center, tau, iterations=3, mode=mode)
    within_honest_spread(real(v, mode), honest)


@pytest.mark.parametrize("mode", MODES)
def test_arc_and_clipping_bound_the_attackers(mode):
    x, honest = poisoned(mode)
    out, mask = robust.arc(x, 4, mode=mode)
    assert np.flatnonzero(mask).tolist()[-4:] == [20, 21, 22, 23]  # k = floor(2*4*20/24) = 6
    assert real(out, mode)[20:].max() < 1.0
    clipped, cmask = robust.clip_norms(x, 2.0, mode=mode)
    assert cmask.tolist() == [False] * 20 + [True] * 4
    assert np.allclose(np.linalg.norm(real(clipped[20:], mode), axis=1), 2.0, atol=1e-3)


# ---- speed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_each_function_handles_a_full_model_quickly(mode):
    import time

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 100_000)).astype(np.float32)
    if mode == "q16_16":
        x = native.to_q16(x)[0]
    w = rng.uniform(0.05, 0.8, 20)
    calls = [lambda: robust.clip_norms(x, 100.0, mode=mode), lambda: robust.arc(x, 4, mode=mode),
             lambda: robust.nnm(x, 4, mode=mode), lambda: robust.bucketing(x, 2, seed=0, mode=mode),
             lambda: robust.centered_clipping(x, x[0].copy(), 100.0, mode=mode),
             lambda: robust.weighted_trimmed_mean(x, w, 0.2, mode=mode),
             lambda: robust.weighted_median(x, w, mode=mode)]
    for call in calls:
        t = time.perf_counter()
        call()
        # ~0.05-0.3 s each on a 2-core box; a Python loop over the columns would take > 10 s
        assert time.perf_counter() - t < 2.0


# ---- bad input -------------------------------------------------------------------------------


X = np.arange(15, dtype=np.float32).reshape(5, 3)


@pytest.mark.parametrize("call, exc, message", [
    (lambda: robust.nnm(X.ravel(), 1), InvalidInput, r"2-D .* got shape \(15,\)"),
    (lambda: robust.nnm([[1.0]], 0), InvalidType, "numpy array"),
    (lambda: robust.nnm(X.astype(np.float64), 1), InvalidType, "needs float32 updates, got float64"),
    (lambda: robust.nnm(X.astype(np.int64), 1, mode="q16_16"), InvalidType, "float32 or int32"),
    (lambda: robust.nnm(X, 1, mode="q8"), InvalidInput, "mode must be one of"),
    (lambda: robust.nnm(np.where(X == 4, np.nan, X).astype(np.float32), 1), InvalidInput,
     r"Non-finite value nan in update 1 at \[1\]"),
    (lambda: robust.nnm(np.where(X == 4, np.inf, X).astype(np.float32), 1, mode="q16_16"), InvalidInput,
     r"Non-finite value inf in update 1 at \[1\]"),
    (lambda: robust.nnm(X, 5), InvalidInput, r"nnm needs 0 <= f < n \(n=5\), got f=5"),
    (lambda: robust.nnm(X, -1), InvalidInput, "got f=-1"),
    (lambda: robust.nnm(X, 1.0), InvalidType, "f must be an integer, got float"),
    (lambda: robust.arc(X, 5), InvalidInput, r"arc needs 0 <= f < n \(n=5\), got f=5"),
    (lambda: robust.arc(X, True), InvalidType, "f must be an integer, got bool"),
    (lambda: robust.clip_norms(X, 0.0), InvalidInput, "tau must be a finite number > 0, got 0.0"),
    (lambda: robust.clip_norms(X, -1), InvalidInput, "tau must be a finite number > 0, got -1.0"),
    (lambda: robust.clip_norms(X, float("nan")), InvalidInput, "tau must be a finite number > 0, got nan"),
    (lambda: robust.clip_norms(X, float("inf")), InvalidInput, "got inf"),
    (lambda: robust.clip_norms(X, "1"), InvalidType, "tau must be a real number, got str"),
    (lambda: robust.clip_norms(X, 1e-9, mode="q16_16"), InvalidInput, "rounds to 0"),
    (lambda: robust.bucketing(X, 0, seed=1), InvalidInput, "bucket size s >= 1, got s=0"),
    (lambda: robust.bucketing(X, 2.5, seed=1), InvalidType, "s must be an integer, got float"),
    (lambda: robust.bucketing(X, 2, seed=-1), InvalidInput, "seed must be >= 0, got -1"),
    (lambda: robust.bucketing(X, 2, seed="a"), InvalidType, "seed must be an integer"),
    (lambda: robust.centered_clipping(X, np.zeros(3, np.float32), 1.0, iterations=0), InvalidInput,
     "iterations >= 1, got iterations=0"),
    (lambda: robust.centered_clipping(X, np.zeros(4, np.float32), 1.0), InvalidInput,
     r"center must have shape \(3,\) .* got \(4,\)"),
    (lambda: robust.centered_clipping(X, [0, 0, 0], 1.0), InvalidType, "center must be a numpy array"),
    (lambda: robust.centered_clipping(X, np.array([0, np.nan, 0]), 1.0), InvalidInput,
     r"Non-finite value nan in center at \[1\]"),
    (lambda: robust.centered_clipping(X, np.zeros(3, np.int64), 1.0, mode="q16_16"), InvalidType,
     "int32 \\(raw\\) or float32 center, got int64"),
    (lambda: robust.centered_clipping(X, np.zeros(3, np.float32), 0.0), InvalidInput, "tau must be"),
    (lambda: robust.weighted_median(X, [1, 1, 1]), InvalidInput, r"shape \(5,\) .* got \(3,\)"),
    (lambda: robust.weighted_median(X, [1, 1, -1, 1, 1]), InvalidInput, "weights must be >= 0, got -1.0 for client 2"),
    (lambda: robust.weighted_median(X, [1, 1, np.nan, 1, 1]), InvalidInput, "finite, got nan for client 2"),
    (lambda: robust.weighted_median(X, [0, 0, 0, 0, 0]), InvalidInput, "all zero"),
    (lambda: robust.weighted_median(X, ["a"] * 5), InvalidType, "weights must be numbers"),
    (lambda: robust.weighted_median(X, [1e-7] * 5, mode="q16_16"), InvalidInput, "round to 0 in Q16.16"),
    (lambda: robust.weighted_trimmed_mean(X, [1] * 5, 0.5), InvalidInput, r"beta .* \[0, 0.5\), got 0.5"),
    (lambda: robust.weighted_trimmed_mean(X, [1] * 5, -0.1), InvalidInput, "got -0.1"),
    (lambda: robust.weighted_trimmed_mean(X, [1] * 5, None), InvalidType, "beta must be a real number"),
    (lambda: robust.weighted_trimmed_mean(X, [1] * 5, float("nan")), InvalidInput, "got nan"),
    (lambda: robust.weighted_trimmed_mean(X, [20000.0] * 5, 0.1, mode="q16_16"), InvalidInput,
     "must sum to less than 65536"),
])
def test_bad_input_is_refused_with_a_clear_message(call, exc, message):
    with pytest.raises(exc, match=message):
        call()
