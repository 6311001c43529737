"""The CBOR subset of protocol v1, checked before cbor2 sees the bytes.

Accepted (deterministic encoding, RFC 8949 section 4.2.1, with one difference: floats are
always single precision)::

    unsigned and negative integers, byte and text strings, arrays, maps  -- definite length,
        every length and integer in its shortest form
    map keys: unsigned integers in strictly ascending order (so no duplicates)
    false (0xF4), true (0xF5), float32 (0xFA)
    tags: none, except tag 17 (COSE_Mac0) around a whole sealed update
    nesting: at most 4 levels

Everything else (indefinite lengths, null, undefined, simple values, half / double floats,
other tags, trailing bytes) is ``ProtocolError("malformed")`` naming the byte offset. One
byte sequence per message keeps "the same chunk again" (replay) a byte comparison, and the
subset is what a small C encoder writes anyway.
"""

from __future__ import annotations

import struct

import cbor2

from qora.protocol.errors import ProtocolError

MAX_DEPTH = 4
_MIN_FOR_WIDTH = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}
_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
_MAJOR = ("unsigned integer", "negative integer", "byte string", "text string", "array", "map",
          "tag", "simple value or float")


def _bad(pos: int, what: str) -> ProtocolError:
    return ProtocolError("malformed", f"byte {pos}: {what}")


def _head(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(major type, additional info, argument, position after the head)."""
    if pos >= len(data):
        raise _bad(pos, "expected a CBOR item, got the end of the message")
    ib = data[pos]
    major, ai = ib >> 5, ib & 31
    if ai < 24:
        return major, ai, ai, pos + 1
    if ai == 31:
        raise _bad(pos, f"expected a definite length, got an indefinite-length {_MAJOR[major]} "
                        f"(0x{ib:02X})" if major != 7 else "expected an item, got a break (0xFF)")
    if ai > 27:
        raise _bad(pos, f"expected a valid initial byte, got reserved 0x{ib:02X}")
    end = pos + 1 + _WIDTH[ai]
    if end > len(data):
        raise _bad(pos, f"expected {_WIDTH[ai]} argument bytes, got the end of the message")
    arg = int.from_bytes(data[pos + 1:end], "big")
    if major != 7 and arg < _MIN_FOR_WIDTH[ai]:
        raise _bad(pos, f"expected the shortest encoding of {arg}, got {_WIDTH[ai]} argument bytes")
    return major, ai, arg, end


def _item(data: bytes, pos: int, depth: int, tag: int | None) -> int:
    """Check the item at ``pos``; return the position after it."""
    major, ai, arg, p = _head(data, pos)
    if major in (0, 1):
        return p
    if major in (2, 3):
        if arg > len(data) - p:
            raise _bad(pos, f"expected {arg} string bytes, got {len(data) - p}")
        return p + arg
    if major == 6:
        if depth != 0 or arg != tag:
            raise _bad(pos, f"expected no CBOR tag here, got tag {arg}")
        return _item(data, p, depth + 1, None)
    if major == 7:
        if ai in (20, 21):
            return p
        if ai == 26:
            return p
        names = {22: "null", 23: "undefined", 25: "a half-precision float", 27: "a double"}
        raise _bad(pos, f"expected false, true or a float32 (0xFA), got {names.get(ai, 'a simple value')}")
    if depth + 1 > MAX_DEPTH:
        raise _bad(pos, f"expected at most {MAX_DEPTH} nested levels, got more")
    if arg > len(data) - p:  # every item takes at least one byte
        raise _bad(pos, f"expected {arg} {'entries' if major == 5 else 'items'}, "
                        f"got only {len(data) - p} bytes left")
    last_key = -1
    for _ in range(arg):
        if major == 5:
            k_major, _, key, q = _head(data, p)
            if k_major != 0:
                raise _bad(p, f"expected an unsigned integer map key, got a {_MAJOR[k_major]}")
            if key <= last_key:
                raise _bad(p, f"expected map keys in ascending order without repeats, "
                              f"got key {key} after key {last_key}")
            last_key, p = key, q
        p = _item(data, p, depth + 1, None)
    return p


def check(data: bytes, *, tag: int | None = None) -> None:
    """Raise ``ProtocolError("malformed")`` unless ``data`` is exactly one item of the subset."""
    end = _item(data, 0, 0, tag)
    if end != len(data):
        raise _bad(end, f"expected the end of the message, got {len(data) - end} trailing bytes")


def loads(data: bytes, *, tag: int | None = None) -> object:
    """Check, then decode with cbor2 (which then never meets tags it would interpret)."""
    check(data, tag=tag)
    try:
        return cbor2.loads(data, max_depth=MAX_DEPTH + 1, allow_indefinite=False,
                           allow_duplicate_keys=False)
    except Exception as e:  # noqa: BLE001 - cbor2 raises several kinds (bad UTF-8 ...): all malformed
        raise ProtocolError("malformed", f"expected valid CBOR, got {type(e).__name__}: {e}") from None


class Float32(float):
    """A float that encodes as CBOR float32 (0xFA): the protocol's only float width."""


def _encode_float32(encoder, value: Float32) -> None:
    encoder.write(b"\xfa" + struct.pack(">f", value))


def dumps(obj: object) -> bytes:
    """Deterministic encoding: cbor2 canonical (shortest forms, sorted keys), floats as float32."""
    return cbor2.dumps(obj, canonical=True, encoders={Float32: _encode_float32})
