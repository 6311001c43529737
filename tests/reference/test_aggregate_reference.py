"""The pure-Python aggregators against naive Fraction-based definitions."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qora.reference import aggregate as A
from qora.reference import q16 as Q

U64_MAX = Q.UINT64_MAX


def rha(v: Fraction) -> int:
    """round half away from zero"""
    r = math.floor(abs(v) + Fraction(1, 2))
    return -r if v < 0 else r


def matrices(min_n=1, max_n=9, max_d=5, lo=Q.INT32_MIN, hi=Q.INT32_MAX):
    return st.integers(min_value=1, max_value=max_d).flatmap(
        lambda d: st.lists(
            st.lists(st.integers(min_value=lo, max_value=hi), min_size=d, max_size=d),
            min_size=min_n,
            max_size=max_n,
        ).map(lambda rows: (rows, d))
    )


# small values so that no 64-bit accumulator can saturate: results must be the exact ones
SMALL = dict(lo=-(1 << 20), hi=1 << 20)


def dev_sq(rows, out):
    return [min(sum((a - b) ** 2 for a, b in zip(r, out)), U64_MAX) for r in rows]


@settings(max_examples=300)
@given(matrices(**SMALL), st.data())
def test_fedavg_exact(md, data):
    rows, d = md
    n = len(rows)
    w = data.draw(st.none() | st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    r = A.fedavg(rows, d, w)
    ww = w if w is not None else [1] * n
    if sum(ww) == 0:
        assert r["status"] == Q.ERR_WEIGHTS
        return
    want = [rha(Fraction(sum(ww[i] * rows[i][t] for i in range(n)), sum(ww))) for t in range(d)]
    assert r["status"] == Q.OK
    assert r["out"] == want
    assert r["dev_sq"] == dev_sq(rows, want)
    assert r["flags"] == 0


@settings(max_examples=300)
@given(matrices(), st.lists(st.integers(0, 0xFFFFFFFF), min_size=9, max_size=9))
def test_fedavg_saturating_accumulator_in_client_order(md, w):
    rows, d = md
    n = len(rows)
    w = w[:n]
    assume(sum(w) > 0)
    r = A.fedavg(rows, d, w)
    flags = 0
    out = []
    for t in range(d):
        acc = 0
        for i in range(n):
            acc = acc + w[i] * rows[i][t]
            if acc > Q.INT64_MAX or acc < Q.INT64_MIN:
                flags = 1
                acc = max(Q.INT64_MIN, min(Q.INT64_MAX, acc))
        v = rha(Fraction(acc, sum(w)))
        if v > Q.INT32_MAX or v < Q.INT32_MIN:
            flags = 1
            v = max(Q.INT32_MIN, min(Q.INT32_MAX, v))
        out.append(v)
    ds = dev_sq(rows, out)
    if any(sum((a - b) ** 2 for a, b in zip(row, out)) > U64_MAX for row in rows):
        flags = 1
    assert (r["status"], r["out"], r["dev_sq"], r["flags"]) == (Q.OK, out, ds, flags)


@settings(max_examples=300)
@given(matrices(), st.data())
def test_trimmed_mean(md, data):
    rows, d = md
    n = len(rows)
    k = data.draw(st.integers(0, n))
    r = A.trimmed_mean(rows, d, k)
    if 2 * k >= n:
        assert r["status"] == Q.ERR_K
        return
    want = []
    for t in range(d):
        col = sorted(row[t] for row in rows)
        kept = col[k:n - k]
        want.append(rha(Fraction(sum(kept), len(kept))))
    assert r["out"] == want
    assert r["dev_sq"] == dev_sq(rows, want)


@settings(max_examples=300)
@given(matrices())
def test_median(md):
    rows, d = md
    n = len(rows)
    r = A.median(rows, d)
    want = []
    for t in range(d):
        col = sorted(row[t] for row in rows)
        if n % 2:
            want.append(col[n // 2])
        else:
            want.append(rha(Fraction(col[n // 2 - 1] + col[n // 2], 2)))
    assert r["out"] == want
    # median == trimmed mean with k = (n - 1) // 2
    assert A.trimmed_mean(rows, d, (n - 1) // 2)["out"] == want


@settings(max_examples=300)
@given(matrices(min_n=3, max_n=9, max_d=4, lo=-8, hi=8), st.data())
def test_multi_krum_small_values_and_ties(md, data):
    rows, d = md
    n = len(rows)
    f = data.draw(st.integers(0, (n - 3) // 2))
    m = data.draw(st.integers(1, n - 2 * f - 2))
    r = A.multi_krum(rows, d, f, m)
    dist = [[sum((a - b) ** 2 for a, b in zip(rows[i], rows[j])) for j in range(n)]
            for i in range(n)]
    scores = [sum(sorted(dist[i][j] for j in range(n) if j != i)[: n - f - 2]) for i in range(n)]
    # rank of i = how many clients beat it: a smaller score, or the same score and a lower index
    rank = [sum(1 for j in range(n) if (scores[j], j) < (scores[i], i)) for i in range(n)]
    selected = [rank.index(p) for p in range(m)]
    out = [rha(Fraction(sum(rows[i][t] for i in selected), m)) for t in range(d)]
    assert r["status"] == Q.OK
    assert r["scores"] == scores
    assert r["selected"] == selected
    assert r["out"] == out
    assert r["dev_sq"] == dev_sq(rows, out)
    if m == 1:
        assert A.krum(rows, d, f) == r


def test_krum_saturation_flags():
    mn, mx = Q.INT32_MIN, Q.INT32_MAX
    rows = [[mn] * 3, [mx] * 3, [mn] * 3, [mx] * 3, [0] * 3]
    r = A.krum(rows, 3, 1)
    assert r["flags"] == 1
    assert r["scores"][4] == U64_MAX


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda: A.fedavg([], 3), Q.ERR_EMPTY),
        (lambda: A.fedavg([[], []], 0), Q.ERR_EMPTY),
        (lambda: A.fedavg([[1], [2]], 1, [0, 0]), Q.ERR_WEIGHTS),
        (lambda: A.trimmed_mean([[1], [2]], 1, 1), Q.ERR_K),
        (lambda: A.trimmed_mean([], 1, 5), Q.ERR_EMPTY),
        (lambda: A.median([], 2), Q.ERR_EMPTY),
        (lambda: A.krum([[1]] * 4, 1, 1), Q.ERR_F),
        (lambda: A.krum([], 1, 1), Q.ERR_EMPTY),
        (lambda: A.multi_krum([[1]] * 5, 1, 1, 0), Q.ERR_M),
        (lambda: A.multi_krum([[1]] * 5, 1, 1, 2), Q.ERR_M),
        (lambda: A.multi_krum([[1]] * 4, 1, 1, 0), Q.ERR_F),
    ],
)
def test_errors_and_check_order(call, status):
    assert call()["status"] == status


def test_deviation_finish():
    assert A.deviation_finish([0, 1, 2, 3, U64_MAX, (1 << 32) ** 2]) == [
        0, 1, 1, 2, 0xFFFFFFFF, 0xFFFFFFFF]


def test_xorshift32_known_sequence():
    # Marsaglia (2003), xorshift32 with shifts (13, 17, 5) from seed 2463534242
    s = 2463534242
    s = A.xorshift32(s)
    assert s == 723471715


def test_prng_matrix_definition():
    rows = A.prng_matrix(12345, 3, 4, 8)
    s = 12345
    for i in range(3):
        for t in range(4):
            s = A.xorshift32(s)
            assert rows[i][t] == (s >> 24) - 128
            assert -128 <= rows[i][t] < 128
    full = A.prng_matrix(99, 2, 50, 32)
    assert all(Q.INT32_MIN <= v <= Q.INT32_MAX for row in full for v in row)
    with pytest.raises(ValueError):
        A.prng_matrix(0, 1, 1, 8)


def test_prng_case_weights_continue_the_stream():
    rows, w = A.prng_case(7, 2, 3, 16, w_bits=10)
    vals, state = A.prng_values(7, 6, 16)
    assert [v for r in rows for v in r] == vals
    ws, _ = A.prng_weights(state, 2, 10)
    assert w == ws and all(0 <= x < 1024 for x in w)
