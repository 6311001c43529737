"""Property tests of qora.native: the float32 path against plain numpy
references, the Q16.16 path against the pure-Python reference bit for bit,
permutation invariance, splitting into threads, and the float/fixed error bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora import native
from qora.reference import aggregate as ref

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values that are finite and well inside float32 (sums of squares stay finite).
floats = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False)
q16_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**20), 2**20),
    st.sampled_from([-(2**31), 2**31 - 1, 0, 1, -1]),
)


@st.composite
def matrices(draw, elements, dtype, min_n=1, max_n=24, max_d=70):
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, max_d))
    return draw(hnp.arrays(dtype, (n, d), elements=elements))


# ---- float32 against numpy --------------------------------------------------------


def sorted_cols(x: np.ndarray) -> np.ndarray:
    return np.sort(x.astype(np.float64), axis=0)


@SETTINGS
@given(matrices(floats, np.float32))
def test_median_f32_equals_numpy_median(x):
    s = sorted_cols(x)
    n = x.shape[0]
    expected = ((s[(n - 1) // 2] + s[n // 2]) / 2).astype(np.float32)
    np.testing.assert_array_equal(native.median(x).value, expected)


@SETTINGS
@given(matrices(floats, np.float32), st.floats(0, 0.49))
def test_trimmed_mean_f32_matches_sort_and_trim(x, beta):
    n = x.shape[0]
    k = int(beta * n)
    expected = sorted_cols(x)[k : n - k].mean(axis=0)
    got = native.trimmed_mean(x, k).value
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1e-7 * (1 + np.abs(x).max()))


@SETTINGS
@given(matrices(floats, np.float32), st.data())
def test_fedavg_f32_matches_weighted_mean(x, data):
    n = x.shape[0]
    w = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n)), np.float32)
    assume(w.sum() > 0)
    expected = (w.astype(np.float64) @ x.astype(np.float64)) / w.sum(dtype=np.float64)
    got = native.fedavg(x, w).value
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1e-7 * (1 + np.abs(x).max()))


def brute_force_krum(x: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 Krum by direct subtraction; returns (scores, order by (score, index))."""
    x64 = x.astype(np.float64)
    n = len(x64)
    dist = np.array([[np.sum((x64[i] - x64[j]) ** 2) for j in range(n)] for i in range(n)])
    scores = np.array([np.sort(np.delete(dist[i], i))[: n - f - 2].sum() for i in range(n)])
    return scores, np.lexsort((np.arange(n), scores))


@SETTINGS
@given(matrices(floats, np.float32, min_n=3, max_n=16), st.data())
def test_multi_krum_f32_matches_brute_force(x, data):
    n = x.shape[0]
    f = data.draw(st.integers(0, (n - 3) // 2))
    m = data.draw(st.integers(1, n - 2 * f - 2))
    scores, order = brute_force_krum(x, f)
    res = native.multi_krum(x, f, m)
    np.testing.assert_allclose(res.scores, scores, rtol=1e-5, atol=1e-6)
    # The selection is the brute-force one unless two scores are too close to call.
    cut = np.sort(scores)
    gaps = np.abs(np.diff(cut))
    assume(np.all(gaps[: m] > 1e-5 * (1 + np.abs(cut[: m + 1]).max())))
    np.testing.assert_array_equal(res.selected, order[:m])
    expected = x.astype(np.float64)[order[:m]].mean(axis=0).astype(np.float32)
    np.testing.assert_allclose(res.value, expected, rtol=1e-6, atol=1e-6)


# ---- Q16.16 against the pure-Python reference, bit for bit ---------------------------


def check_against_reference(res: native.NativeResult, expected: dict) -> None:
    assert expected["status"] == 0
    assert res.raw.tolist() == expected["out"]
    assert res.deviation_sq.tolist() == expected["dev_sq"]
    assert res.saturated == bool(expected["flags"])
    if "scores" in expected:
        assert res.scores.tolist() == expected["scores"]
        assert res.selected.tolist() == expected["selected"]


@SETTINGS
@given(matrices(q16_values, np.int32), st.floats(0, 0.49))
def test_trimmed_mean_q16_is_the_reference(x, beta):
    n, d = x.shape
    k = int(beta * n)
    check_against_reference(native.trimmed_mean(x, k, mode="q16_16"), ref.trimmed_mean(x.tolist(), d, k))


@SETTINGS
@given(matrices(q16_values, np.int32))
def test_median_q16_is_the_reference(x):
    check_against_reference(native.median(x, mode="q16_16"), ref.median(x.tolist(), x.shape[1]))


@SETTINGS
@given(matrices(q16_values, np.int32), st.data())
def test_fedavg_q16_is_the_reference(x, data):
    n, d = x.shape
    w = data.draw(st.lists(st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1)), min_size=n, max_size=n))
    assume(sum(w) > 0)
    check_against_reference(native.fedavg(x, np.array(w, np.uint32), mode="q16_16"),
                            ref.fedavg(x.tolist(), d, w))


@SETTINGS
@given(matrices(q16_values, np.int32, min_n=3, max_n=14), st.data())
def test_multi_krum_q16_is_the_reference(x, data):
    n, d = x.shape
    f = data.draw(st.integers(0, (n - 3) // 2))
    m = data.draw(st.integers(1, n - 2 * f - 2))
    check_against_reference(native.multi_krum(x, f, m, mode="q16_16"), ref.multi_krum(x.tolist(), d, f, m))


@SETTINGS
@given(hnp.arrays(np.float32, st.integers(1, 200), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
def test_float_to_q16_conversion_is_the_reference(v):
    import struct

    q, saturated = native.to_q16(v)
    expected = [ref_from_f32(float(f)) for f in v]
    assert q.tolist() == [e[0] for e in expected]
    assert saturated == any(e[1] for e in expected)


def ref_from_f32(value: float) -> tuple[int, int]:
    import struct

    from qora.reference import q16

    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    status, q, flags = q16.from_f32_bits(bits)
    assert status == 0
    return q, flags


# ---- invariances -------------------------------------------------------------------


@SETTINGS
@given(matrices(q16_values, np.int32, min_n=5), st.randoms())
def test_coordinatewise_q16_results_do_not_depend_on_client_order(x, rnd):
    perm = list(range(x.shape[0]))
    rnd.shuffle(perm)
    y = x[perm]
    k = x.shape[0] // 4
    for fn in (lambda a: native.trimmed_mean(a, k, mode="q16_16"), lambda a: native.median(a, mode="q16_16"),
               lambda a: native.fedavg(a, mode="q16_16")):
        a, b = fn(x), fn(y)
        assert a.raw.tolist() == b.raw.tolist()
        assert a.deviation_sq[perm].tolist() == b.deviation_sq.tolist()


@SETTINGS
@given(matrices(floats, np.float32, min_n=5), st.randoms())
def test_median_f32_does_not_depend_on_client_order(x, rnd):
    perm = list(range(x.shape[0]))
    rnd.shuffle(perm)
    np.testing.assert_array_equal(native.median(x).value, native.median(x[perm]).value)


@pytest.mark.parametrize("method", ["fedavg", "trimmed_mean", "median", "krum"])
def test_threads_give_the_same_q16_bits(method):
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**31), 2**31, size=(11, 5000), dtype=np.int64).astype(np.int32)
    x[:, :2500] >>= 8  # one half narrow, one half full range (saturating distances)
    call = {
        "fedavg": lambda t: native.fedavg(x, mode="q16_16", threads=t),
        "trimmed_mean": lambda t: native.trimmed_mean(x, 3, mode="q16_16", threads=t),
        "median": lambda t: native.median(x, mode="q16_16", threads=t),
        "krum": lambda t: native.multi_krum(x, 2, 3, mode="q16_16", threads=t),
    }[method]
    one, four = call(1), call(4)
    assert one.raw.tolist() == four.raw.tolist()
    assert one.deviation_sq.tolist() == four.deviation_sq.tolist()
    assert one.saturated == four.saturated
    if method == "krum":
        assert one.scores.tolist() == four.scores.tolist()
        assert one.selected.tolist() == four.selected.tolist()


def test_column_slices_pass_without_copy_and_agree():
    rng = np.random.default_rng(5)
    wide = rng.standard_normal((9, 300)).astype(np.float32)
    part = wide[:, 100:220]  # rows are strided: the binding passes the stride
    assert not part.flags.c_contiguous
    np.testing.assert_array_equal(native.median(part).value, native.median(np.ascontiguousarray(part)).value)


# ---- float32 vs Q16.16 ---------------------------------------------------------------

in_range = st.floats(-1000, 1000, width=32, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(matrices(in_range, np.float32, min_n=3))
def test_q16_and_float32_agree_within_documented_bound(x):
    """Order statistics and means are 1-Lipschitz in the max norm, so converting
    (<= 2^-17 per value) and one rounded division (<= 2^-17) bound the gap by
    2^-16, plus float32's own rounding of the result (<= 2^-24 relative)."""
    n = x.shape[0]
    for name, call in (("median", lambda mode: native.median(x, mode=mode)),
                       ("trimmed_mean", lambda mode: native.trimmed_mean(x, n // 4, mode=mode)),
                       ("fedavg", lambda mode: native.fedavg(x, mode=mode))):
        a = call("float32").value.astype(np.float64)
        b = call("q16_16").raw.astype(np.float64) / 65536
        bound = 2.0**-16 + np.abs(a) * 2.0**-23
        assert np.all(np.abs(a - b) <= bound), name


@SETTINGS
@given(hnp.arrays(np.int32, st.integers(1, 300), elements=q16_values))
def test_q16_to_float_is_the_nearest_float32(q):
    """int32 -> float32 rounds to nearest even once; scaling by 2^-16 is exact."""
    expected = q.astype(np.float32) * np.float32(2.0**-16)
    assert native.from_q16(q).view(np.uint32).tolist() == expected.view(np.uint32).tolist()


@pytest.mark.parametrize("mode", ["float32", "q16_16"])
def test_deviation_false_gives_the_same_aggregate_without_distances(mode):
    x = np.random.default_rng(9).standard_normal((7, 333)).astype(np.float32)
    for fn in (native.fedavg, native.median, lambda a, **kw: native.trimmed_mean(a, 2, **kw)):
        full, bare = fn(x, mode=mode), fn(x, mode=mode, deviation=False)
        np.testing.assert_array_equal(full.value, bare.value)
        assert bare.deviation is None and bare.deviation_sq is None
        assert full.deviation.shape == (7,)


@SETTINGS
@given(matrices(floats, np.float32, max_n=12))
def test_pairwise_sqdist_f32_is_direct_subtraction(x):
    x64 = x.astype(np.float64)
    expected = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(native.pairwise_sqdist(x), expected, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(matrices(q16_values, np.int32, max_n=12))
def test_pairwise_sqdist_q16_is_exact(x):
    rows = x.astype(object)
    expected = [[min(int(((rows[i] - rows[j]) ** 2).sum()), 2**64 - 1) for j in range(len(x))]
                for i in range(len(x))]
    assert native.pairwise_sqdist(x, mode="q16_16").tolist() == expected
