"""The pure-Python Q16.16 reference against independent ground truth (Fraction, math.isqrt,
the platform's IEEE float conversion)."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qora.reference import q16 as Q

I32 = st.integers(min_value=Q.INT32_MIN, max_value=Q.INT32_MAX)
I64 = st.integers(min_value=Q.INT64_MIN, max_value=Q.INT64_MAX)
U64 = st.integers(min_value=0, max_value=Q.UINT64_MAX)
U32_BITS = st.integers(min_value=0, max_value=0xFFFFFFFF)


def round_half_away(v: Fraction) -> int:
    mag = abs(v)
    r = math.floor(mag + Fraction(1, 2))
    return -r if v < 0 else r


def clamp(v: int, lo: int, hi: int) -> tuple[int, int]:
    if v < lo:
        return lo, 1
    if v > hi:
        return hi, 1
    return v, 0


def f32_of_bits(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u))[0]


# ---- conversion ------------------------------------------------------------------
@settings(max_examples=3000)
@given(U32_BITS)
@example(0x37000000)  # 2^-17: tie -> 1
@example(0xB7000000)  # -2^-17: tie -> -1
@example(0x47000000)  # 32768: saturates
@example(0xC7000000)  # -32768: exact INT32_MIN
@example(0x00000001)
@example(0x80000000)
@example(0x7FC00000)
@example(0xFF800000)
def test_from_f32_bits_matches_fraction(u):
    x = f32_of_bits(u)
    status, q, flags = Q.from_f32_bits(u)
    if math.isnan(x) or math.isinf(x):
        assert (status, q, flags) == (Q.ERR_NONFINITE, None, 0)
        return
    want, want_flags = clamp(round_half_away(Fraction(x) * 65536), Q.INT32_MIN, Q.INT32_MAX)
    assert (status, q, flags) == (Q.OK, want, want_flags)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_from_f32_convenience(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    assert Q.from_f32(x) == Q.from_f32_bits(u)


@pytest.mark.parametrize(
    ("bits", "q"),
    [(0x37000000, 1), (0xB7000000, -1), (0x36FFFFFF, 0), (0xB6FFFFFF, 0),
     (0x3F800000, 65536), (0xBF800000, -65536), (0x00000000, 0), (0x80000000, 0)],
)
def test_from_f32_known(bits, q):
    assert Q.from_f32_bits(bits) == (Q.OK, q, 0)


def test_from_f32_ties_away_not_even():
    ulp = 2.0 ** -16
    assert Q.from_f32(2.5 * ulp) == (Q.OK, 3, 0)
    assert Q.from_f32(-2.5 * ulp) == (Q.OK, -3, 0)
    assert Q.from_f32(1.5 * ulp) == (Q.OK, 2, 0)


@settings(max_examples=3000)
@given(I32)
@example(Q.INT32_MAX)
@example(Q.INT32_MIN)
@example((1 << 24) + 1)
@example((1 << 24) + 3)
@example(0)
def test_to_f32_bits_is_nearest_ties_even(q):
    # q / 2^16 is exact in a double; the platform's double -> float conversion is
    # IEEE round-to-nearest-even, an independent ground truth.
    want = struct.unpack("<I", struct.pack("<f", q / 65536.0))[0]
    assert Q.to_f32_bits(q) == want
    assert Q.to_f32(q) == f32_of_bits(want)


@given(st.integers(min_value=-(1 << 23), max_value=1 << 23))
def test_round_trip_exact_in_24_bits(q):
    assert Q.from_f32_bits(Q.to_f32_bits(q)) == (Q.OK, q, 0)


# ---- arithmetic ------------------------------------------------------------------
@given(I32, I32)
def test_add_sub(a, b):
    assert Q.add(a, b) == clamp(a + b, Q.INT32_MIN, Q.INT32_MAX)
    assert Q.sub(a, b) == clamp(a - b, Q.INT32_MIN, Q.INT32_MAX)


@settings(max_examples=2000)
@given(I32, I32)
@example(1, 32768)
@example(-1, 32768)
@example(3, 32768)
@example(Q.INT32_MIN, Q.INT32_MIN)
def test_mul_matches_fraction(a, b):
    want = clamp(round_half_away(Fraction(a * b, 65536)), Q.INT32_MIN, Q.INT32_MAX)
    assert Q.mul(a, b) == want


@settings(max_examples=2000)
@given(I32, I32)
@example(1, 131072)
@example(-1, 131072)
@example(Q.INT32_MIN, -1)
@example(5, 0)
@example(-5, 0)
@example(0, 0)
def test_div_matches_fraction(a, b):
    if b == 0:
        want = (0, 0) if a == 0 else ((Q.INT32_MAX, 1) if a > 0 else (Q.INT32_MIN, 1))
    else:
        want = clamp(round_half_away(Fraction(a * 65536, b)), Q.INT32_MIN, Q.INT32_MAX)
    assert Q.div(a, b) == want


@settings(max_examples=2000)
@given(I32)
@example(0)
@example(1)
@example(Q.INT32_MAX)
@example(-1)
def test_sqrt(a):
    if a < 0:
        assert Q.sqrt(a) == (0, 1)
        return
    x = a * 65536
    r = math.isqrt(x)
    # nearest integer to sqrt(x): r + 1 when sqrt(x) > r + 1/2, i.e. 4x > (2r + 1)^2
    want = r + 1 if 4 * x > (2 * r + 1) ** 2 else r
    assert Q.sqrt(a) == (want, 0)


# ---- integer helpers ---------------------------------------------------------------
@settings(max_examples=3000)
@given(U64)
@example(0)
@example(Q.UINT64_MAX)
@example((1 << 64) - (1 << 32))
@example((1 << 64) - (1 << 32) + 1)
def test_isqrt64_and_sqrt_round(x):
    r = math.isqrt(x)
    assert Q.isqrt64(x) == r
    nearest = r + 1 if 4 * x > (2 * r + 1) ** 2 else r
    assert Q.sqrt_round_u64(x) == min(nearest, (1 << 32) - 1)


@pytest.mark.parametrize("r", [1, 2, 3, 255, 65535, 65536, 1 << 31, (1 << 32) - 1])
def test_isqrt_squares_edges(r):
    for x in (r * r - 1, r * r, r * r + 1, r * r + r, r * r + r + 1):
        if x > Q.UINT64_MAX:
            continue
        assert Q.isqrt64(x) == math.isqrt(x)
    assert Q.sqrt_round_u64(r * r + r) == r  # below (r + 1/2)^2
    if r * r + r + 1 <= Q.UINT64_MAX:
        assert Q.sqrt_round_u64(r * r + r + 1) == min(r + 1, (1 << 32) - 1)


@settings(max_examples=3000)
@given(I64, st.integers(min_value=1, max_value=Q.UINT64_MAX))
@example(Q.INT64_MIN, 1)
@example(Q.INT64_MIN, 2)
@example(Q.INT64_MIN, Q.UINT64_MAX)
@example(-5, 2)
@example(-3, 2)
@example(Q.INT64_MAX, 2)
def test_div_round_matches_fraction(num, den):
    assert Q.div_round_i64(num, den) == round_half_away(Fraction(num, den))


def test_div_round_rejects_nonpositive_den():
    with pytest.raises(ValueError):
        Q.div_round_i64(1, 0)


@given(I64, I64)
def test_sat_add_i64(a, b):
    assert Q.sat_add_i64(a, b) == clamp(a + b, Q.INT64_MIN, Q.INT64_MAX)


@given(U64, U64)
def test_sat_add_u64(a, b):
    assert Q.sat_add_u64(a, b) == clamp(a + b, 0, Q.UINT64_MAX)


@given(I64)
def test_from_i64_sat(v):
    assert Q.from_i64_sat(v) == clamp(v, Q.INT32_MIN, Q.INT32_MAX)


def test_constants_match_status_header():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "shared_c/include/qora/status.h").read_text()
    codes = dict((name, int(val)) for name, val in re.findall(r"QORA_(ERR_\w+|OK)\s*=\s*(-?\d+)", text))
    for name, val in codes.items():
        assert getattr(Q, name) == val, name
    assert Q.FLAG_SATURATED == 1
