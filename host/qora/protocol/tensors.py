"""Tensors on the wire: encodings, chunk ranges, int8 quantization, the model digest.

A flat tensor of E elements with C elements per chunk travels as ceil(E / C) chunks; chunk i
holds elements [i*C, min((i+1)*C, E)). Data bytes are little-endian:

    Q16 (0)  int32 Q16.16        4 bytes per element
    F32 (1)  IEEE 754 float32    4 bytes per element
    I8  (2)  int8, value = q * scale (float32 arithmetic), 1 byte per element, scale per chunk
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

import numpy as np

from qora.errors import InvalidInput, InvalidType
from qora.protocol.wire import MAX_CHUNKS, MAX_ELEMENTS


class Encoding(IntEnum):
    Q16 = 0
    F32 = 1
    I8 = 2


MODES = {"q16_16": 0, "float32": 1}
_SIZES = {Encoding.Q16: 4, Encoding.F32: 4, Encoding.I8: 1}
_DTYPES = {Encoding.Q16: "<i4", Encoding.F32: "<f4", Encoding.I8: "i1"}


def _encoding(enc: object) -> Encoding:
    try:
        return Encoding(enc)
    except ValueError:
        raise InvalidInput(f"encoding: expected 0 (Q16), 1 (F32) or 2 (I8), got {enc!r}") from None


def element_size(enc: int) -> int:
    """Bytes per element: 4 for Q16 and F32, 1 for I8."""
    return _SIZES[_encoding(enc)]


def chunk_ranges(elements: int, chunk_elements: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of every chunk of a tensor of ``elements`` elements."""
    if type(elements) is not int or not 1 <= elements <= MAX_ELEMENTS:
        raise InvalidInput(f"elements: expected an integer in 1 .. {MAX_ELEMENTS}, got {elements!r}")
    if type(chunk_elements) is not int or not 1 <= chunk_elements <= MAX_ELEMENTS:
        raise InvalidInput(
            f"chunk_elements: expected an integer in 1 .. {MAX_ELEMENTS}, got {chunk_elements!r}")
    count = -(-elements // chunk_elements)
    if count > MAX_CHUNKS:
        raise InvalidInput(f"{elements} elements in chunks of {chunk_elements} make {count} chunks, "
                           f"expected at most {MAX_CHUNKS}: use larger chunks")
    return [(s, min(s + chunk_elements, elements)) for s in range(0, elements, chunk_elements)]


def _flat(values: object, kinds: str, what: str) -> np.ndarray:
    if not isinstance(values, np.ndarray):
        raise InvalidType(f"values: expected a numpy array, got {type(values).__name__}")
    if values.dtype.kind not in kinds:
        raise InvalidType(f"values: expected {what}, got dtype {values.dtype}")
    return values.ravel()


def quantize_i8(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric int8 with one scale, all in float32 arithmetic (as C does it)::

        s = max|x| / 127            (1.0 if that is 0: all zero, or underflow)
        q = clamp(round_half_away(x / s), -127, 127)
    """
    x = _flat(values, "f", "a float array").astype(np.float32)
    if not np.isfinite(x).all():
        raise InvalidInput("values: expected finite values for I8, got NaN or Inf")
    s = np.float32(np.max(np.abs(x))) / np.float32(127) if x.size else np.float32(0)
    if s == 0:
        s = np.float32(1)
    y = (x / s).astype(np.float64)  # exact: adding 0.5 to a float32 cannot round in float64
    q = np.sign(y) * np.floor(np.abs(y) + 0.5)
    return np.clip(q, -127, 127).astype(np.int8), float(s)


def encode_values(values: np.ndarray, enc: int) -> tuple[bytes, float | None]:
    """Values -> (data bytes, scale). Q16 takes int32 Q16.16 values; F32 and I8 take floats."""
    enc = _encoding(enc)
    if enc == Encoding.Q16:
        v = _flat(values, "i", "int32 Q16.16 values")
        if v.dtype != np.int32:
            raise InvalidType(f"values: expected int32 Q16.16 values, got dtype {v.dtype}")
        return v.astype("<i4").tobytes(), None
    if enc == Encoding.F32:
        return _flat(values, "f", "a float array").astype("<f4").tobytes(), None
    q, scale = quantize_i8(values)
    return q.tobytes(), scale


def decode_values(data: bytes, enc: int, scale: float | None = None) -> np.ndarray:
    """Data bytes -> int32 (Q16) or float32 (F32; I8 as ``float32(q) * float32(scale)``)."""
    enc = _encoding(enc)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidType(f"data: expected bytes, got {type(data).__name__}")
    if len(data) % _SIZES[enc]:
        raise InvalidInput(f"data: expected a multiple of {_SIZES[enc]} bytes for {enc.name}, "
                           f"got {len(data)}")
    raw = np.frombuffer(data, dtype=_DTYPES[enc])
    if enc == Encoding.Q16:
        return raw.astype(np.int32)
    if enc == Encoding.F32:
        return raw.astype(np.float32)
    if scale is None:
        raise InvalidInput("scale: expected a float32 scale for I8 data, got None")
    with np.errstate(over="ignore", invalid="ignore"):
        return raw.astype(np.float32) * np.float32(scale)


def model_digest(values: np.ndarray, mode: str) -> bytes:
    """SHA-256 of the whole model's data bytes: int32 LE (q16_16) or float32 LE (float32)."""
    if mode == "q16_16":
        data, _ = encode_values(values, Encoding.Q16)
    elif mode == "float32":
        data, _ = encode_values(values, Encoding.F32)
    else:
        raise InvalidInput(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    return hashlib.sha256(data).digest()
