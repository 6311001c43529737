"""The CBOR writer and reader of firmware/core (cbor.c) against cbor2's canonical encoding and
the protocol's own subset checker (qora.protocol.cbor), under ASan + UBSan."""

from __future__ import annotations

import struct

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qnharness import hx
from qora.protocol import ProtocolError
from qora.protocol import cbor as qcbor

FAST = settings(max_examples=200, deadline=None)


def f32(bits: int) -> qcbor.Float32:
    return qcbor.Float32(struct.unpack(">f", struct.pack(">I", bits))[0])


def _is_nan_bits(bits: int) -> bool:
    return (bits >> 23) & 0xFF == 0xFF and bits & 0x7FFFFF != 0


# Floats by their bits; NaN only as the one pattern Python's float keeps (0x7FC00000).
float_bits = st.integers(0, 2**32 - 1).filter(lambda b: not _is_nan_bits(b)) | st.just(0x7FC00000)
leaf = st.one_of(
    st.integers(-(2**64), 2**64 - 1),
    st.integers(0, 70000),
    st.binary(max_size=300),
    st.text(max_size=80),
    st.booleans(),
    float_bits.map(lambda b: ("f32", b)),
)
def _depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


# At most 4 levels of containers, the protocol's limit.
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=6)
                     | st.dictionaries(st.integers(0, 2**64 - 1) | st.integers(0, 30), inner,
                                       max_size=6), max_leaves=25).filter(lambda v: _depth(v) <= 4)


def _py(v):
    """Our value description -> what qora.protocol.cbor.dumps encodes."""
    if isinstance(v, tuple):
        return f32(v[1])
    if isinstance(v, list):
        return [_py(x) for x in v]
    if isinstance(v, dict):
        return {k: _py(x) for k, x in v.items()}
    return v


def _ops(v) -> list[str]:
    """The writer calls that produce v, map keys in ascending order (the caller's job)."""
    if isinstance(v, tuple):
        return [f"f:{v[1]:08x}"]
    if isinstance(v, bool):
        return ["T" if v else "F"]
    if isinstance(v, int):
        if v >= 0:
            return [f"u:{v}"]
        return [f"i:{v}"] if v >= -(2**63) else [f"h:1:{-1 - v}"]
    if isinstance(v, bytes):
        return [f"b:{hx(v)}"]
    if isinstance(v, str):
        return [f"t:{hx(v)}"]
    if isinstance(v, list):
        return [f"h:4:{len(v)}"] + [op for x in v for op in _ops(x)]
    out = [f"h:5:{len(v)}"]
    for k in sorted(v):
        out += [f"u:{k}"] + _ops(v[k])
    return out


def _ai(n: int) -> int:
    return n if n < 24 else 24 if n < 2**8 else 25 if n < 2**16 else 26 if n < 2**32 else 27


def _items(v) -> list[str]:
    """What the reader reports item by item: MAJOR.AI.VALUE[.DATA]."""
    if isinstance(v, tuple):
        return [f"7.26.{v[1]}"]
    if isinstance(v, bool):
        return [f"7.{21 if v else 20}.{int(v)}"]
    if isinstance(v, int):
        major, n = (0, v) if v >= 0 else (1, -1 - v)
        return [f"{major}.{_ai(n)}.{n}"]
    if isinstance(v, (bytes, str)):
        data = v if isinstance(v, bytes) else v.encode()
        return [f"{2 if isinstance(v, bytes) else 3}.{_ai(len(data))}.{len(data)}.{hx(data)}"]
    if isinstance(v, list):
        return [f"4.{_ai(len(v))}.{len(v)}"] + [i for x in v for i in _items(x)]
    out = [f"5.{_ai(len(v))}.{len(v)}"]
    for k in sorted(v):
        out += _items(k) + _items(v[k])
    return out


def _py_check(data: bytes, tag: int | None) -> bool:
    try:
        qcbor.loads(data, tag=tag)
        return True
    except ProtocolError:
        return False


# ---- writer -----------------------------------------------------------------------------

@FAST
@given(v=value)
def test_writer_matches_cbor2_canonical(harness, v):
    expected = qcbor.dumps(_py(v))
    ops = _ops(v)
    if not any(op.startswith("f:") for op in ops):
        # without floats the protocol's encoding is plain cbor2 canonical output
        assert expected == cbor2.dumps(_py(v), canonical=True)
    assert harness.ok("cborw", len(expected), *ops) == [expected.hex()]
    assert harness.ok("cborw", "count", *ops) == [str(len(expected))]
    assert harness.call("cborw", len(expected) - 1, *ops)[0] == "err"


@pytest.mark.parametrize("n", [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1])
def test_integer_heads_take_the_shortest_form(harness, n):
    assert harness.ok("cborw", 16, f"u:{n}") == [qcbor.dumps(n).hex()]
    assert harness.ok("cborw", 16, f"h:1:{n}") == [qcbor.dumps(-1 - n).hex()]


def test_int64_extremes(harness):
    assert harness.ok("cborw", 16, f"i:{-(2**63)}") == [qcbor.dumps(-(2**63)).hex()]
    assert harness.ok("cborw", 16, f"i:{2**63 - 1}") == [qcbor.dumps(2**63 - 1).hex()]


def test_float32_is_never_shortened(harness):
    # 1.0 would be a half float (F9 3C00) in preferred serialization; the protocol says FA.
    assert harness.ok("cborw", 8, "f:3f800000") == ["fa3f800000"]
    assert harness.ok("cborw", 8, "f:3c418306") == ["fa3c418306"]   # update-i8's scale


def test_writer_stops_at_capacity_and_stays_stopped(harness):
    assert harness.call("cborw", 3, "u:1", "u:1000", "u:1") == ["err", "1"]
    assert harness.ok("cborw", 0) == ["-"]


# ---- reader -----------------------------------------------------------------------------

@FAST
@given(v=value)
def test_reader_walks_canonical_items(harness, v):
    data = qcbor.dumps(_py(v))
    assert harness.ok("cborr", data.hex()) == _items(v) + ["end"]
    assert harness.ok("cborskip", data.hex() + "00") == [str(len(data))]
    assert harness.call("cborcheck", data.hex(), -1) == ["ok"]


@pytest.mark.parametrize("bad", [
    "1805", "190001", "1900ff", "1a0000ffff", "1b00000000ffffffff",   # not the shortest form
    "3817", "5801", "5800", "7900ff", "9800", "b800",
    "5f", "7f", "9f", "bf", "ff",                                    # indefinite, break
    "1c", "1d", "1e", "3c", "fc",                                    # reserved
    "f0", "f6", "f7", "f818", "f93c00", "fb3ff0000000000000",        # simple, null, half, double
    "19", "1a0000", "fa0000", "5a00000001", "62", "8200",            # truncated
])
def test_reader_refuses_non_deterministic_and_unsupported_heads(harness, bad):
    assert harness.ok("cborr", bad)[-1] == "err"
    assert harness.call("cborcheck", bad, -1) == ["err"]
    assert not _py_check(bytes.fromhex(bad), None)


def test_reader_refuses_counts_longer_than_the_bytes_left(harness):
    # An array claiming 2^32 items must not start a loop over them.
    assert harness.ok("cborr", "9affffffff00") == ["err"]
    assert harness.ok("cborr", "ba0000000100") == ["err"]
    assert harness.call("cborskip", "9b7fffffffffffffff") == ["err"]


@pytest.mark.parametrize(("data", "ok"), [
    ("81818181" + "01", True),          # 4 levels
    ("8181818181" + "01", False),       # 5 levels
    ("d1818181" + "01", True),          # tag 17 + 3 levels
    ("d181818181" + "01", False),
])
def test_nesting_is_limited_to_four_levels(harness, data, ok):
    assert (harness.call("cborcheck", data, 17) == ["ok"]) is ok
    assert _py_check(bytes.fromhex(data), 17) is ok


@pytest.mark.parametrize(("data", "tag", "ok"), [
    ("a20100020f", -1, True),
    ("a202000100", -1, False),          # keys out of order
    ("a201000100", -1, False),          # repeated key
    ("a1610001", -1, False),            # text key
    ("a12001", -1, False),              # negative key
    ("d1a0", 17, True),
    ("d1a0", -1, False),                # no tag allowed
    ("d2a0", 17, False),                # another tag
    ("81d1a0", 17, False),              # tag 17 below the top
    ("a0a0", -1, False),                # trailing bytes
    ("63c3a9", -1, False),              # a truncated text string
    ("62c3a9", -1, True),               # valid 2-byte UTF-8
    ("63e282ac", -1, True),             # valid 3-byte UTF-8 (euro sign)
    ("62c0af", -1, False),              # overlong UTF-8
    ("63eda080", -1, False),            # a surrogate
    ("64f4908080", -1, False),          # above U+10FFFF
])
def test_check_enforces_the_protocol_subset(harness, data, tag, ok):
    assert (harness.call("cborcheck", data, tag) == ["ok"]) is ok
    assert _py_check(bytes.fromhex(data), None if tag < 0 else tag) is ok


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, where, byte in edits:
        if not b:
            break
        i = where % len(b)
        if kind == 0:
            b[i] ^= 1 << (byte % 8)
        elif kind == 1:
            b[i] = byte
        elif kind == 2:
            del b[i:]
        else:
            b.insert(i, byte)
    return bytes(b)


@FAST
@given(v=value, edits=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6),
                                         st.integers(0, 255)), max_size=3),
       tag=st.sampled_from([-1, 17]), wrap=st.booleans())
def test_check_agrees_with_the_protocol_checker_on_mutated_input(harness, v, edits, tag, wrap):
    data = qcbor.dumps(_py(v))
    if wrap and _depth(v) < 4:
        data = b"\xd1" + data
    data = _mutate(data, edits)
    expected = _py_check(data, None if tag < 0 else tag)
    assert (harness.call("cborcheck", hx(data), tag) == ["ok"]) is expected


@FAST
@given(data=st.binary(max_size=60))
def test_check_agrees_with_the_protocol_checker_on_random_bytes(harness, data):
    for tag in (-1, 17):
        expected = _py_check(data, None if tag < 0 else tag)
        assert (harness.call("cborcheck", hx(data), tag) == ["ok"]) is expected
    harness.ok("cborr", hx(data))
    harness.call("cborskip", hx(data))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reader_survives_mutation_fuzzing(harness, seed):
    v = {0: 1, 1: 3, 2: "demo", 9: b"\x01\x02\x03\x04" * 8, 10: f32(0x3C418306), 23: [1, [2, [3]]]}
    counts = harness.ok("fuzz", "cbor", seed, 20000, qcbor.dumps(v).hex())
    assert sum(map(int, counts)) == 20000
