"""Field checks shared by the message classes: each names the field, what it expects and what came."""

from __future__ import annotations

import math
import numbers
import struct

from qora.errors import InvalidInput, InvalidType
from qora.protocol.topics import validate_id
from qora.protocol.wire import UINT64_MAX


def describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def uint(name: str, value: object, lo: int = 0, hi: int = UINT64_MAX) -> int:
    """An integer (not a bool) in lo .. hi, returned as a plain int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name}: expected an unsigned integer, got {describe(value)}")
    value = int(value)
    if not lo <= value <= hi:
        raise InvalidInput(f"{name}: expected an integer in {lo} .. {hi}, got {value}")
    return value


def ident(name: str, value: object) -> str:
    return validate_id(value, name)


def blob(name: str, value: object, size: int | None = None, max_size: int | None = None) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidType(f"{name}: expected a byte string, got {describe(value)}")
    value = bytes(value)
    if size is not None and len(value) != size:
        raise InvalidInput(f"{name}: expected {size} bytes, got {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise InvalidInput(f"{name}: expected at most {max_size} bytes, got {len(value)}")
    return value


def text(name: str, value: object, max_chars: int) -> str:
    """Printable ASCII without spaces, 1 .. max_chars characters."""
    if type(value) is not str:
        raise InvalidType(f"{name}: expected a text string, got {describe(value)}")
    if not 1 <= len(value) <= max_chars or not all("!" <= c <= "~" for c in value):
        raise InvalidInput(f"{name}: expected 1 to {max_chars} printable ASCII characters without "
                           f"spaces, got {value[:80]!r}")
    return value


def boolean(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise InvalidType(f"{name}: expected true or false, got {describe(value)}")
    return value


def float32(name: str, value: object) -> float:
    """A float rounded to float32 (NaN and Inf pass: the receiver's checks name them)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{name}: expected a float, got {describe(value)}")
    value = float(value)
    if math.isnan(value):
        return math.nan
    try:
        return struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:
        raise InvalidInput(f"{name}: expected a value that fits float32, got {value!r}") from None
