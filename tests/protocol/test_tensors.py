"""qora.protocol.tensors: chunk ranges, encodings, int8 quantization, the model digest."""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora.errors import InvalidInput, InvalidType
from qora.protocol import (
    MAX_CHUNKS,
    MAX_ELEMENTS,
    Encoding,
    chunk_ranges,
    decode_values,
    element_size,
    encode_values,
    model_digest,
)
from qora.protocol.tensors import quantize_i8

SETTINGS = settings(max_examples=60, deadline=None)
floats32 = st.floats(-32767.0, 32767.0, allow_nan=False, allow_infinity=False, width=32)
f32_arrays = hnp.arrays(np.float32, st.integers(1, 300), elements=floats32)
i32_arrays = hnp.arrays(np.int32, st.integers(1, 300))


@SETTINGS
@given(elements=st.integers(1, 5000), chunk=st.integers(1, 2000))
def test_chunk_ranges_tile_the_tensor_in_order(elements, chunk):
    ranges = chunk_ranges(elements, chunk)
    assert len(ranges) == math.ceil(elements / chunk)
    assert ranges[0][0] == 0 and ranges[-1][1] == elements
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))
    assert all(b - a == chunk for a, b in ranges[:-1]) and 1 <= ranges[-1][1] - ranges[-1][0] <= chunk


@pytest.mark.parametrize("elements, chunk, match", [
    (0, 4, "elements: expected an integer in 1"), (MAX_ELEMENTS + 1, 1024, "elements"),
    (4, 0, "chunk_elements: expected"), (4, 2.0, "chunk_elements"), (True, 4, "elements"),
    (MAX_CHUNKS + 1, 1, "make 65536 chunks, expected at most 65535")])
def test_chunk_ranges_rejects_bad_sizes(elements, chunk, match):
    with pytest.raises(InvalidInput, match=match):
        chunk_ranges(elements, chunk)


def test_element_sizes():
    assert [element_size(e) for e in Encoding] == [4, 4, 1]
    with pytest.raises(InvalidInput, match=r"encoding: expected 0 \(Q16\), 1 \(F32\) or 2 \(I8\), got 3"):
        element_size(3)


@SETTINGS
@given(values=i32_arrays)
def test_q16_round_trip_is_int32_little_endian(values):
    data, scale = encode_values(values, Encoding.Q16)
    assert scale is None and data == values.astype("<i4").tobytes()
    out = decode_values(data, Encoding.Q16)
    assert out.dtype == np.int32 and np.array_equal(out, values)


@SETTINGS
@given(values=f32_arrays)
def test_f32_round_trip_is_float32_little_endian(values):
    data, scale = encode_values(values, Encoding.F32)
    assert scale is None and data == values.astype("<f4").tobytes()
    out = decode_values(data, Encoding.F32)
    assert out.dtype == np.float32 and np.array_equal(out, values)


def test_q16_needs_int32_values():
    with pytest.raises(InvalidType, match="expected int32 Q16.16 values, got dtype int64"):
        encode_values(np.zeros(3, np.int64), Encoding.Q16)
    with pytest.raises(InvalidType, match="expected int32 Q16.16 values, got dtype float32"):
        encode_values(np.zeros(3, np.float32), Encoding.Q16)
    with pytest.raises(InvalidType, match="expected a numpy array, got list"):
        encode_values([1, 2], Encoding.Q16)


def test_i8_scale_is_max_abs_over_127_in_float32():
    data, scale = encode_values(np.array([0.5, -0.25, 1.5], np.float32), Encoding.I8)
    assert scale == float(np.float32(1.5) / np.float32(127))
    assert np.frombuffer(data, np.int8).tolist() == [42, -21, 127]


def test_i8_all_zero_has_scale_one():
    data, scale = encode_values(np.zeros(4, np.float32), Encoding.I8)
    assert scale == 1.0 and data == bytes(4)


def test_i8_underflowing_scale_becomes_one():
    tiny = np.array([1e-44, -1e-45], np.float32)  # max/127 underflows float32 to 0
    data, scale = encode_values(tiny, Encoding.I8)
    assert scale == 1.0 and data == bytes(2)


def test_i8_rounds_half_away_from_zero():
    # scale 1.0 exactly (max 127): x / s = x
    x = np.array([127, 0.5, -0.5, 2.5, -2.5, 1.4999999, -126.5], np.float32)
    q, s = quantize_i8(x)
    assert s == 1.0
    assert q.tolist() == [127, 1, -1, 3, -3, 1, -127]


def test_i8_rejects_non_finite_values():
    with pytest.raises(InvalidInput, match="expected finite values for I8"):
        encode_values(np.array([1.0, np.nan], np.float32), Encoding.I8)


@SETTINGS
@given(values=f32_arrays)
def test_i8_error_is_at_most_half_a_step(values):
    data, scale = encode_values(values, Encoding.I8)
    out = decode_values(data, Encoding.I8, scale)
    assert out.dtype == np.float32 and len(data) == values.size
    err = np.abs(out.astype(np.float64) - values.astype(np.float64))
    # half a quantization step, plus float32 rounding of x / s and of q * s
    bound = 0.5 * scale * (1 + 1e-5) + np.abs(values.astype(np.float64)) * 2.0 ** -23
    assert (err <= bound).all()


def test_decode_values_checks_length_and_scale():
    with pytest.raises(InvalidInput, match="expected a multiple of 4 bytes for F32, got 5"):
        decode_values(bytes(5), Encoding.F32)
    with pytest.raises(InvalidInput, match="expected a float32 scale for I8 data, got None"):
        decode_values(bytes(3), Encoding.I8)
    with pytest.raises(InvalidType, match="data: expected bytes, got str"):
        decode_values("abcd", Encoding.Q16)


def test_i8_decodes_as_float32_product():
    out = decode_values(bytes([0x7F, 0x81, 0x02]), Encoding.I8, 0.1)
    expected = np.array([127, -127, 2], np.float32) * np.float32(0.1)
    assert np.array_equal(out, expected)


def test_model_digest_is_stable():
    q16 = np.array([65536, -32768, 16384, 131072, 0, -65536], np.int32)
    assert model_digest(q16, "q16_16").hex() == (
        "df6bb1eda30cd4ccf9c97fc7b8acc40d7e80e594709ffde14ea95883ec01f49b")
    f32 = np.array([1.0, -0.5, 0.25], np.float32)
    assert model_digest(f32, "float32") == hashlib.sha256(
        bytes.fromhex("0000803f000000bf0000803e")).digest()


@SETTINGS
@given(values=i32_arrays, chunk=st.integers(1, 64))
def test_model_digest_covers_the_concatenated_chunk_data(values, chunk):
    parts = [encode_values(values[a:b], Encoding.Q16)[0] for a, b in chunk_ranges(values.size, chunk)]
    assert model_digest(values, "q16_16") == hashlib.sha256(b"".join(parts)).digest()


def test_model_digest_depends_on_the_mode():
    with pytest.raises(InvalidInput, match="mode: expected one of q16_16, float32, got 'q16'"):
        model_digest(np.zeros(2, np.int32), "q16")
    with pytest.raises(InvalidType):
        model_digest(np.zeros(2, np.float32), "q16_16")
