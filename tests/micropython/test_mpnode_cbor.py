"""qora_node.cbor on the real MicroPython VM (and under CPython) against cbor2 on CPython:
the same values give the same bytes; what cbor2 encodes decodes to the same values; what the
protocol's subset forbids (qora.protocol.cbor.loads refuses it) is refused."""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
from collections.abc import Mapping

import cbor2
import pytest

from qora.protocol import ProtocolError
from qora.protocol import cbor as host_cbor

from mpnode_helpers import FW, RUNTIMES, run_on

SCRIPT = r'''
import binascii, json, struct
from qora_node import cbor


def h(b):
    return str(binascii.hexlify(b), "ascii")


def canon(v):
    t = type(v)
    if t is bool:
        return ["bool", v]
    if t is int:
        return ["int", str(v)]
    if t is bytes:
        return ["bytes", h(v)]
    if t is str:
        return ["str", v]
    if t is float:
        return ["f32", h(struct.pack(">f", v))]
    if t is list:
        return ["list", [canon(x) for x in v]]
    if t is dict:
        return ["map", [[k, canon(v[k])] for k in sorted(v)]]
    if isinstance(v, cbor.Tag):
        return ["tag", v.tag, canon(v.value)]
    raise TypeError(t)


with open("cases.json") as f:
    cases = json.load(f)
for src in cases["encode"]:
    print("E " + h(cbor.dumps(eval(src))))
for data, tag in cases["decode"]:
    try:
        print("D " + json.dumps(canon(cbor.loads(binascii.unhexlify(data), tag))))
    except cbor.CBORError as e:
        print("D error " + str(e))
for data in cases["reject"]:
    try:
        cbor.loads(binascii.unhexlify(data), 17)
        print("R accepted")
    except cbor.CBORError as e:
        print("R error")
for src in cases["unencodable"]:
    try:
        cbor.dumps(eval(src))
        print("U encoded")
    except cbor.CBORError:
        print("U error")
print("done")
'''


def _lit(v) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "float('%s')" % ("inf" if v > 0 else "-inf")
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%d: %s" % (k, _lit(x)) for k, x in v.items()) + "}"
    return repr(v)


def _f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


def _wrap(v):
    """Floats as qora.protocol.cbor.Float32 (the protocol's float width) for the host encoder."""
    if isinstance(v, float):
        return host_cbor.Float32(v)
    if isinstance(v, list):
        return [_wrap(x) for x in v]
    if isinstance(v, dict):
        return {k: _wrap(x) for k, x in v.items()}
    return v


def _canon(v):
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, float):
        return ["f32", struct.pack(">f", v).hex()]
    if isinstance(v, (list, tuple)):
        return ["list", [_canon(x) for x in v]]
    if isinstance(v, Mapping):  # dict, or cbor2's frozendict inside arrays
        return ["map", [[k, _canon(v[k])] for k in sorted(v)]]
    if isinstance(v, cbor2.CBORTag):
        return ["tag", v.tag, _canon(v.value)]
    raise TypeError(type(v))


INTS = [0, 1, 23, 24, 25, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 + 1, 2**63, 2**64 - 1,
        -1, -24, -25, -256, -257, -65536, -65537, -2**32, -2**32 - 1, -2**63, -2**64]
FLOATS = [0.0, -0.0, 1.0, 1.5, -0.25, _f32(1.5 / 127), 65504.0, 100000.0, _f32(3.4e38), -_f32(1e-45),
          _f32(0.1), float("inf"), float("-inf")]
TEXTS = ["", "a", "qora/v1/demo", "é", "日本語", "😀", "x" * 23, "y" * 24, "z" * 300]
BLOBS = [b"", b"\x00", bytes(range(23)), bytes(range(24)), bytes(255), bytes(256),
         bytes(range(256)) * 4, bytes(70000)]


def _random_value(rng: random.Random, depth: int):
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(INTS)
    if kind == 1:
        return rng.randrange(-2**40, 2**40)
    if kind == 2:
        return rng.choice(FLOATS[:-2])
    if kind == 3:
        return rng.choice(TEXTS[:-1])
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if kind == 5:
        return rng.choice([True, False])
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = sorted(rng.sample([0, 1, 2, 9, 23, 24, 100, 255, 256, 65536, 2**32, 2**64 - 1], rng.randrange(5)))
    return {k: _random_value(rng, depth + 1) for k in keys}


def _values():
    vals = list(INTS) + list(FLOATS) + list(TEXTS) + list(BLOBS) + [True, False, [], {}]
    vals += [[1, [2, [3, [4]]]], {0: 1, 1: 3, 2: "demo", 9: b"\x01\x02", 10: 0.5, 23: [64, 32, 10]},
             {0: {1: {2: {}}}}, [b"\xa1\x01\x05", {}, b"payload", bytes(32)]]
    rng = random.Random(20260101)
    vals += [_random_value(rng, 0) for _ in range(300)]
    return vals


def _rejects():
    """(hex, why): bytes outside the protocol's subset (the host refuses them too)."""
    cases = [
        ("1817", "23 in two bytes"), ("190017", "23 in three bytes"), ("1900ff", "255 in three bytes"),
        ("1a0000ffff", "65535 in five bytes"), ("1b00000000ffffffff", "2^32-1 in nine bytes"),
        ("3817", "negative, not shortest"), ("5801ff", "bstr length not shortest"),
        ("7801" + "61", "tstr length not shortest"), ("9801" + "01", "array count not shortest"),
        ("b801" + "0001", "map count not shortest"), ("5fff", "indefinite bstr"),
        ("7fff", "indefinite tstr"), ("9fff", "indefinite array"), ("bfff", "indefinite map"),
        ("ff", "break"), ("f6", "null"), ("f7", "undefined"), ("f93c00", "half float"),
        ("fb3ff8000000000000", "double"), ("f0", "simple value 16"), ("f820", "simple value 32"),
        ("1c", "reserved ai 28"), ("5c", "reserved ai in bstr"), ("c001", "tag 0"),
        ("c11a5f5e1000", "tag 1"), ("d1d101", "nested tag 17"), ("81d101", "tag 17 not at the top"),
        ("a2020001", "keys out of order"), ("a2010001" + "00", "duplicate key"),
        ("a20100", "map missing a value"), ("a1616100", "text key"), ("a12000", "negative key"),
        ("a1f400", "bool key"), ("0000", "trailing byte"), ("", "empty"), ("18", "truncated argument"),
        ("1a0000", "truncated argument 4"), ("43a101", "bstr longer than the data"),
        ("63e282", "tstr truncated"), ("9a00010000", "count beyond the data"),
        ("8181818181", "5 levels of nesting"), ("818181818100", "5 levels with a leaf"),
        ("62c0af", "overlong UTF-8"), ("63eda080", "UTF-16 surrogate in UTF-8"),
        ("61ff", "invalid UTF-8 byte"), ("62c328", "bad continuation byte"),
        ("64f4908080", "code point above U+10FFFF"), ("63e08080", "overlong 3-byte UTF-8"),
        ("fa3fc0", "truncated float32"),
    ]
    return cases


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    d = tmp_path_factory.mktemp("cbor_board")
    shutil.copytree(FW / "qora_node", d / "qora_node")
    vals = _values()
    decode = [[host_cbor.dumps(_wrap(v)).hex(), None] for v in vals]
    decode += [[cbor2.dumps(v, canonical=True).hex(), None] for v in ([1, "a", b"b"], {0: [1, {2: 3}]})]
    decode.append([cbor2.dumps(cbor2.CBORTag(17, [b"\xa1\x01\x05", {}, b"p", bytes(32)])).hex(), 17])
    cases = {
        "encode": [_lit(v) for v in vals],
        "decode": decode,
        "reject": [h for h, _ in _rejects()],
        "unencodable": ["{'a': 1}", "{-1: 0}", "2**64", "-2**64 - 1", "None", "{1: None}"],
    }
    # raw UTF-8: MicroPython's json does not join \u surrogate pairs
    (d / "cases.json").write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    (d / "check.py").write_text(SCRIPT)
    return d, vals


@pytest.fixture(scope="module", params=RUNTIMES)
def output(request, device):
    d, vals = device
    lines = run_on(request.param, d, d / "check.py")
    assert lines[-1] == "done"
    return request.param, vals, lines


def test_encoder_matches_cbor2(output):
    runtime, vals, lines = output
    got = [line[2:] for line in lines if line.startswith("E ")]
    assert len(got) == len(vals)
    for v, g in zip(vals, got):
        want = host_cbor.dumps(_wrap(v)).hex()
        assert g == want, "%s encodes %r as %s, cbor2 as %s" % (runtime, v, g[:80], want[:80])


def test_float_free_values_match_plain_cbor2_canonical(output):
    """Without floats the protocol's encoding is exactly cbor2's canonical (RFC 8949 4.2.1)."""
    runtime, vals, lines = output
    got = [line[2:] for line in lines if line.startswith("E ")]

    def has_float(v):
        if isinstance(v, float):
            return True
        if isinstance(v, list):
            return any(map(has_float, v))
        if isinstance(v, dict):
            return any(map(has_float, v.values()))
        return False

    checked = 0
    for v, g in zip(vals, got):
        if not has_float(v):
            assert g == cbor2.dumps(v, canonical=True).hex()
            checked += 1
    assert checked > 200


def test_decoder_matches_cbor2(output, device):
    runtime, vals, lines = output
    got = [line[2:] for line in lines if line.startswith("D ")]
    cases = json.loads((device[0] / "cases.json").read_text())["decode"]
    assert len(got) == len(cases)
    for (data, _), g in zip(cases, got):
        assert not g.startswith("error"), "%s refused %s: %s" % (runtime, data[:60], g)
        want = _canon(cbor2.loads(bytes.fromhex(data)))
        assert json.loads(g) == want, "%s decodes %s differently" % (runtime, data[:60])


def test_decoder_refuses_what_the_subset_forbids(output):
    runtime, _, lines = output
    got = [line[2:] for line in lines if line.startswith("R ")]
    rejects = _rejects()
    assert len(got) == len(rejects)
    for (data, why), g in zip(rejects, got):
        with pytest.raises(ProtocolError):  # the host refuses them too (cbor2 checks UTF-8)
            host_cbor.loads(bytes.fromhex(data), tag=17)
        assert g == "error", "%s accepted %s (%s)" % (runtime, data, why)


def test_encoder_refuses_values_outside_the_subset(output):
    runtime, _, lines = output
    got = [line[2:] for line in lines if line.startswith("U ")]
    assert got == ["error"] * 6, runtime
