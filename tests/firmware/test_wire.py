"""Wire protocol v1 on a node (wire.c) against qora.protocol and docs/protocol.md's vectors:
update encoding byte for byte, ROUND / MODEL / UPDATE decoding with the host's verdicts,
topics and ids, and decoders fuzzed under ASan + UBSan."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qnharness import (
    QN_E_MALFORMED,
    QN_E_RANGE,
    QN_E_ROUND,
    QN_E_TAG,
    QN_E_TYPE,
    QN_E_VERSION,
    QN_OK,
    hx,
    unhx,
)
from qora.protocol import (
    Encoding,
    ModelChunk,
    ProtocolError,
    RoundAnnouncement,
    UpdateChunk,
    compute_tag,
    make_update,
    model_topic,
    open_envelope,
    parse_topic,
    round_topic,
    seal,
    status_topic,
    update_topic,
    validate_id,
)
from qora.protocol import cbor as qcbor
from qora.protocol import vectors as pv
from qora.protocol.topics import ledger_topic

FAST = settings(max_examples=200, deadline=None)
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
VEC = {v["name"]: v for v in pv.vectors()}
U32 = 2**32 - 1
LAYOUT_MAX, METHOD_MAX = 8, 32          # the node's build-time limits (wire.h defaults)
ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
printable = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=64)


def vec(name: str) -> bytes:
    return bytes.fromhex(VEC[name]["hex"])


def le_hex(values) -> str:
    return hx(np.asarray(values, dtype="<i4").tobytes())


def encode_update(harness, fleet, node, round_, index, count, elements, samples, values, key,
                  cap=100000) -> list[str]:
    return harness.call("update", hx(fleet), hx(node), round_, index, count, elements, samples,
                        le_hex(values), hx(key), cap)


# ---- parsing the harness's answers --------------------------------------------------------

def c_round(harness, msg: bytes) -> int | dict:
    out = harness.call("round", hx(msg))
    if out[0] == "err":
        return int(out[1])
    f = out[1:]
    return {"fleet": unhx(f[0]).decode(), "round": int(f[1]), "version": int(f[2]),
            "deadline": int(f[3]), "chunk_elements": int(f[4]), "quorum": int(f[5]),
            "elements": int(f[6]), "model_chunks": int(f[7]), "digest": unhx(f[8]),
            "method": unhx(f[9]).decode(), "mode": ("q16_16", "float32")[int(f[10])],
            "layout": tuple(int(x) for x in f[12].split(",")) if int(f[11]) else ()}


def py_round_fields(a: RoundAnnouncement) -> dict:
    return {k: getattr(a, k) for k in ("fleet", "round", "version", "deadline", "chunk_elements",
                                       "quorum", "elements", "model_chunks", "digest", "method",
                                       "mode", "layout")}


def c_model(harness, msg: bytes) -> int | dict:
    out = harness.call("model", hx(msg))
    if out[0] == "err":
        return int(out[1])
    f = out[1:]
    return {"fleet": unhx(f[0]).decode(), "version": int(f[1]), "index": int(f[2]),
            "count": int(f[3]), "elements": int(f[4]), "encoding": int(f[5]), "digest": unhx(f[6]),
            "data": unhx(f[7])}


def py_model_fields(m: ModelChunk) -> dict:
    return {"fleet": m.fleet, "version": m.version, "index": m.index, "count": m.count,
            "elements": m.elements, "encoding": int(m.encoding), "digest": m.digest, "data": m.data}


def c_update(harness, msg: bytes) -> int | dict:
    out = harness.call("udec", hx(msg))
    if out[0] == "err":
        return int(out[1])
    f = out[1:]
    return {"fleet": unhx(f[0]).decode(), "node": unhx(f[1]).decode(), "round": int(f[2]),
            "index": int(f[3]), "count": int(f[4]), "elements": int(f[5]), "samples": int(f[6]),
            "encoding": int(f[7]), "has_scale": int(f[8]), "scale_bits": int(f[9], 16),
            "data": unhx(f[10]), "payload": unhx(f[11]), "tag": unhx(f[12])}


# ---- the update encoder ---------------------------------------------------------------------

def _doc_vectors() -> dict[str, bytes]:
    text = DOC.read_text()
    return {m.group(1): bytes.fromhex(m.group(2).replace("\n", ""))
            for m in re.finditer(r"#### `([a-z0-9-]+)`\n\n[^\n]*\n\n```hex\n([0-9a-f\n]+)```", text)}


@pytest.mark.parametrize("name", ["update-q16-0", "update-q16-1"])
def test_update_encoder_writes_the_protocol_md_vectors(harness, name):
    doc = _doc_vectors()
    assert doc[name] == vec(name)
    index = int(name[-1])
    values = pv.DELTA_Q16[4 * index:4 * index + 4]
    out = encode_update(harness, "demo", "node-1", 3, index, 2, 6, 100, values, pv.KEY)
    assert out == ["ok", doc[name].hex()]


def test_every_q16_update_vector_is_covered():
    names = {n for n in _doc_vectors() if n.startswith("update")}
    assert {n for n in names if "q16" in n} == {"update-q16-0", "update-q16-1"}


@FAST
@given(fleet=ids, node=ids, round_=st.integers(1, U32) | st.integers(1, 300),
       values=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=300)
       | st.lists(st.integers(-300, 300), min_size=1, max_size=40),
       chunk=st.integers(1, 320), samples=st.integers(1, 2**31 - 1) | st.integers(1, 30),
       key=st.binary(min_size=32, max_size=32))
def test_update_encoder_is_byte_identical_to_make_update(harness, fleet, node, round_, values,
                                                         chunk, samples, key):
    arr = np.array(values, np.int32)
    messages = make_update(fleet, node, round_, arr, Encoding.Q16, samples, chunk, key)
    for i, m in enumerate(messages):
        part = values[i * chunk:(i + 1) * chunk]
        out = encode_update(harness, fleet, node, round_, i, len(messages), len(values), samples,
                            part, key, cap=len(m))
        assert out == ["ok", m.hex()]
    # One byte less room is refused, not truncated.
    m = messages[-1]
    last = values[(len(messages) - 1) * chunk:]
    assert encode_update(harness, fleet, node, round_, len(messages) - 1, len(messages),
                         len(values), samples, last, key, cap=len(m) - 1) == ["err", "0"]


@FAST
@given(fleet=ids, node=ids, round_=st.integers(1, U32), values=st.lists(
    st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=60), chunk=st.integers(1, 64),
    samples=st.integers(1, 2**31 - 1), key=st.binary(min_size=32, max_size=32))
def test_encoded_update_decodes_verifies_and_checks(harness, fleet, node, round_, values, chunk,
                                                    samples, key):
    messages = make_update(fleet, node, round_, np.array(values, np.int32), Encoding.Q16, samples,
                           chunk, key)
    ann = RoundAnnouncement(fleet=fleet, round=round_, version=0, digest=bytes(32),
                            deadline=1767225600, method="fedavg", mode="q16_16",
                            chunk_elements=chunk, quorum=1, elements=len(values), layout=(),
                            model_chunks=len(messages)).encode()
    other = bytes(b ^ 0x80 for b in key)
    for i, m in enumerate(messages):
        got = c_update(harness, m)
        payload, tag = open_envelope(m)
        part = values[i * chunk:(i + 1) * chunk]
        assert got == {"fleet": fleet, "node": node, "round": round_, "index": i,
                       "count": len(messages), "elements": len(values), "samples": samples,
                       "encoding": 0, "has_scale": 0, "scale_bits": 0,
                       "data": np.array(part, "<i4").tobytes(), "payload": payload, "tag": tag}
        assert harness.ok("uverify", hx(m), hx(key)) == [str(QN_OK)]
        assert harness.ok("uverify", hx(m), hx(other)) == [str(QN_E_TAG)]
        assert harness.ok("ucheck", hx(m), hx(ann)) == [str(QN_OK)]


@pytest.mark.parametrize(("change", "why"), [
    ({"fleet": "a b"}, "fleet id"), ({"fleet": ""}, "empty fleet"), ({"node": "x" * 65}, "long node"),
    ({"node": "nöde"}, "non-ASCII node"), ({"round": 0}, "round 0"),
    ({"index": 2}, "index = count"), ({"count": 0}, "no chunks"), ({"count": 7}, "count > elements"),
    ({"count": 65536, "elements": 70000}, "too many chunks"), ({"elements": 2**24 + 1}, "elements"),
    ({"elements": 0}, "no elements"), ({"samples": 0}, "samples 0"),
    ({"samples": 2**31}, "samples 2^31"), ({"values": []}, "no values"),
    ({"values": [1] * 7}, "more values than elements"),
])
def test_update_encoder_refuses_what_a_node_must_not_send(harness, change, why):
    args = {"fleet": "demo", "node": "node-1", "round": 3, "index": 1, "count": 2, "elements": 6,
            "samples": 100, "values": [1, 2], "key": pv.KEY, **change}
    out = encode_update(harness, args["fleet"], args["node"], args["round"], args["index"],
                        args["count"], args["elements"], args["samples"], args["values"],
                        args["key"])
    assert out == ["err", "0"], why


def test_status_encoder_writes_the_vectors(harness):
    assert harness.ok("status", hx("demo"), hx("node-1"), 1) == [VEC["status-online"]["hex"]]
    assert harness.ok("status", hx("demo"), hx("node-1"), 0) == [VEC["status-offline"]["hex"]]
    assert harness.call("status", hx("de mo"), hx("node-1"), 0) == ["err", "0"]


@FAST
@given(fleet=ids, node=ids, fw=printable)
def test_hello_encoder_matches_cbor2(harness, fleet, node, fw):
    expected = cbor2.dumps({0: 1, 2: fleet, 3: node, 25: fw}, canonical=True)
    assert harness.ok("hello", hx(fleet), hx(node), hx(fw), len(expected)) == [expected.hex()]
    assert harness.call("hello", hx(fleet), hx(node), hx(fw), len(expected) - 1) == ["err", "0"]


@pytest.mark.parametrize("fw", ["", "a b", "x" * 65, "é"])
def test_hello_encoder_refuses_bad_firmware_names(harness, fw):
    assert harness.call("hello", hx("demo"), hx("node-1"), hx(fw), 300) == ["err", "0"]


@given(v=st.integers(-(2**31), 2**31 - 1))
@settings(max_examples=100, deadline=None)
def test_le32_helpers_round_trip(harness, v):
    b = struct.pack("<i", v)
    assert harness.ok("le32", b.hex()) == [str(v), b.hex()]


# ---- ROUND / MODEL / UPDATE decoding: vectors ---------------------------------------------

@pytest.mark.parametrize("name", ["round-q16", "round-f32"])
def test_round_vectors_decode(harness, name):
    assert c_round(harness, vec(name)) == py_round_fields(pv.announcement(name))


@pytest.mark.parametrize("name", ["model-q16-0", "model-q16-1", "model-f32-0"])
def test_model_vectors_decode(harness, name):
    assert c_model(harness, vec(name)) == py_model_fields(ModelChunk.decode(vec(name)))


def test_model_q16_vectors_give_the_round_digest(harness):
    data = b"".join(c_model(harness, vec(f"model-q16-{i}"))["data"] for i in range(2))
    assert harness.ok("sha256", hx(data)) == [pv.ROUND_Q16.digest.hex()]


@pytest.mark.parametrize("name", ["status-online", "ledger", "update-q16-0"])
def test_other_messages_are_not_a_round_or_a_model(harness, name):
    expected = QN_E_MALFORMED if name.startswith("update") else QN_E_TYPE  # sealed: a tag
    assert c_round(harness, vec(name)) == expected
    assert c_model(harness, vec(name)) == expected


@pytest.mark.parametrize(("name", "decoded", "verified", "checked"), [
    ("update-q16-0", QN_OK, QN_OK, QN_OK),
    ("update-q16-1", QN_OK, QN_OK, QN_OK),
    ("update-f32", QN_OK, QN_OK, QN_E_RANGE),          # a float32 round: not a node's to check
    ("update-i8", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-trailing-byte", QN_E_MALFORMED, None, None),
    ("reject-double-scale", QN_E_MALFORMED, None, None),
    ("reject-long-integer", QN_E_MALFORMED, None, None),
    ("reject-bool-as-int", QN_E_MALFORMED, None, None),
    ("reject-bad-version", QN_E_VERSION, None, None),
    ("reject-wrong-type", QN_E_TYPE, None, None),
    ("reject-wrong-fleet", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-forged-sender", QN_OK, QN_E_TAG, QN_E_RANGE),
    ("reject-unknown-node", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-bad-tag", QN_OK, QN_E_TAG, QN_E_RANGE),
    ("reject-wrong-round", QN_OK, QN_OK, QN_E_ROUND),
    ("reject-bad-chunk", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-bad-shape", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-bad-encoding", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-non-finite", QN_OK, QN_OK, QN_E_RANGE),
    ("reject-out-of-range", QN_OK, QN_OK, QN_E_RANGE),
])
def test_update_vectors_decode_verify_and_check(harness, name, decoded, verified, checked):
    msg = vec(name)
    got = c_update(harness, msg)
    assert (got if isinstance(got, int) else QN_OK) == decoded
    if decoded != QN_OK:
        return
    payload, _ = open_envelope(msg)
    chunk = UpdateChunk.decode(payload)
    assert (got["fleet"], got["node"], got["round"], got["index"], got["count"],
            got["elements"], got["samples"], got["encoding"], got["data"]) == (
        chunk.fleet, chunk.node, chunk.round, chunk.index, chunk.count, chunk.elements,
        chunk.samples, int(chunk.encoding), chunk.data)
    assert got["has_scale"] == (chunk.scale is not None)
    if chunk.scale is not None:
        assert got["scale_bits"] == struct.unpack(">I", struct.pack(">f", chunk.scale))[0]
    assert harness.ok("uverify", hx(msg), hx(pv.KEY)) == [str(verified)]
    round_name = VEC[name].get("round", "round-q16" if "q16" in name else "round-f32")
    assert harness.ok("ucheck", hx(msg), hx(vec(round_name))) == [str(checked)]


# ---- decoding: generated messages ---------------------------------------------------------

@st.composite
def announcements(draw) -> RoundAnnouncement:
    elements = draw(st.integers(1, 2**24) | st.integers(1, 5000))
    chunk = draw(st.integers(-(-elements // 65535), 2**24) | st.integers(-(-elements // 65535),
                                                                        -(-elements // 65535) + 40))
    round_ = draw(st.integers(1, 2**64 - 1) | st.integers(1, U32) | st.integers(1, 1000))
    big = st.integers(0, 2**64 - 1) | st.integers(0, U32)
    return RoundAnnouncement(
        fleet=draw(ids), round=round_, version=draw(st.integers(0, U32) | st.integers(0, 10)),
        digest=draw(st.binary(min_size=32, max_size=32)), deadline=draw(big),
        method=draw(printable | st.sampled_from(["median", "trimmed_mean:0.2", "krum:2"])),
        mode=draw(st.sampled_from(["q16_16", "float32"])), chunk_elements=chunk,
        quorum=draw(st.integers(1, 2**64 - 1) | st.integers(1, 20)), elements=elements,
        layout=tuple(draw(st.lists(st.integers(1, 2**24) | st.integers(1, 100), max_size=12)
                          | st.lists(st.integers(1, 2**24), max_size=64))),
        model_chunks=-(-elements // chunk))


def beyond_node(a: RoundAnnouncement) -> bool:
    """A valid ROUND a node refuses with QN_E_RANGE: it does not fit the node's fields."""
    return (max(a.round, a.deadline, a.quorum) > U32 or len(a.method) > METHOD_MAX
            or len(a.layout) > LAYOUT_MAX)


@FAST
@given(a=announcements())
def test_round_decodes_what_qora_protocol_encodes(harness, a):
    got = c_round(harness, a.encode())
    if beyond_node(a):
        assert got == QN_E_RANGE
    else:
        assert got == py_round_fields(a)


@st.composite
def model_chunks(draw) -> ModelChunk:
    elements = draw(st.integers(1, 2**24) | st.integers(1, 300))
    count = draw(st.integers(1, min(65535, elements)))
    n = draw(st.integers(1, min(elements, 100)))
    return ModelChunk(fleet=draw(ids), version=draw(st.integers(0, 2**64 - 1) | st.integers(0, U32)),
                      digest=draw(st.binary(min_size=32, max_size=32)),
                      index=draw(st.integers(0, count - 1)), count=count,
                      encoding=draw(st.sampled_from([Encoding.Q16, Encoding.F32])),
                      elements=elements, data=draw(st.binary(min_size=4 * n, max_size=4 * n)))


@FAST
@given(m=model_chunks())
def test_model_chunk_decodes_what_qora_protocol_encodes(harness, m):
    got = c_model(harness, m.encode())
    assert got == (QN_E_RANGE if m.version > U32 else py_model_fields(m))


# Verdicts: the host's reason -> what the node's decoder may answer. A node is as strict as the
# host everywhere, and answers QN_E_RANGE where the host says malformed for a value outside a
# field's limits (or oversize).
ALLOWED = {"malformed": {QN_E_MALFORMED, QN_E_RANGE}, "bad_version": {QN_E_VERSION},
           "wrong_type": {QN_E_TYPE}, "oversize": {QN_E_RANGE}}

# Limits of section 4 and of the node's uint32 fields, where off-by-one mistakes would hide.
BOUNDARIES = [0, 1, 2, 64, 65, 65534, 65535, 65536, 2**24, 2**24 + 1, 2**31 - 1, 2**31, U32, 2**32]
cbor_value = st.recursive(
    st.one_of(st.sampled_from(BOUNDARIES), st.sampled_from(BOUNDARIES).map(lambda v: [1] * min(v, 70)),
              st.integers(-(2**64), 2**64 - 1), st.integers(0, 30), st.binary(max_size=40),
              st.text(max_size=10), st.booleans(), st.sampled_from(["demo", "node-1", "median"]),
              st.integers(0, 2**32 - 1).map(lambda b: qcbor.Float32(
                  struct.unpack(">f", struct.pack(">I", b & 0x7F7FFFFF))[0]))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 30), inner, max_size=3),
    max_leaves=6)


def _edit_map(obj: dict, draw_edits) -> dict:
    obj = dict(obj)
    for kind, key, val in draw_edits:
        if kind == 0:
            obj[key] = val               # a new value (any type) for a key, known or not
        elif kind == 1:
            obj.pop(key, None)
        elif kind == 2 and key in obj and isinstance(obj[key], int) and not isinstance(obj[key], bool):
            obj[key] = obj[key] + (1 if isinstance(val, bool) and val else -1)
    return obj


def _edit_bytes(data: bytes, edits) -> bytes:
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


map_edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 26) | st.integers(0, 2**64 - 1),
                               cbor_value), max_size=3)
# Byte edits mostly break the CBOR; half the examples go without, to reach the field checks.
byte_edits = st.just([]) | st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6),
                                              st.integers(0, 255)), min_size=1, max_size=3)


def _py_verdict(decode, msg: bytes):
    try:
        return decode(msg)
    except ProtocolError as e:
        return e.reason


def _same_verdict(py, c, beyond):
    if isinstance(py, str):
        assert c in ALLOWED[py], (py, c)
    elif beyond(py):
        assert c == QN_E_RANGE
    else:
        assert not isinstance(c, int), (py, c)


@FAST
@given(base=announcements() | st.sampled_from([pv.ROUND_Q16, pv.ROUND_F32]), edits=map_edits,
       raw=byte_edits)
def test_round_decoder_gives_the_hosts_verdict_on_edited_messages(harness, base, edits, raw):
    obj = cbor2.loads(base.encode())
    msg = _edit_bytes(qcbor.dumps(_float32(_edit_map(obj, edits))), raw)
    py = _py_verdict(RoundAnnouncement.decode, msg)
    c = c_round(harness, msg)
    _same_verdict(py, c, beyond_node)
    if not isinstance(c, int):
        assert c == py_round_fields(py)


@FAST
@given(base=model_chunks() | st.sampled_from([ModelChunk.decode(vec("model-q16-0"))]),
       edits=map_edits, raw=byte_edits)
def test_model_decoder_gives_the_hosts_verdict_on_edited_messages(harness, base, edits, raw):
    obj = cbor2.loads(base.encode())
    msg = _edit_bytes(qcbor.dumps(_float32(_edit_map(obj, edits))), raw)
    py = _py_verdict(ModelChunk.decode, msg)
    c = c_model(harness, msg)
    _same_verdict(py, c, lambda m: m.version > U32)
    if not isinstance(c, int):
        assert c == py_model_fields(py)


def _py_update(msg: bytes):
    if len(msg) > 16384:
        raise ProtocolError("oversize", "")
    payload, _ = open_envelope(msg)
    return UpdateChunk.decode(payload)


def _update_beyond_node(u: UpdateChunk) -> bool:
    return max(u.round, u.index, u.count, u.elements, u.samples) > U32 or int(u.encoding) > 255


def _float32(obj):
    """cbor2 decodes a float32 as a float; put it back as a Float32 for re-encoding."""
    if isinstance(obj, float) and not isinstance(obj, qcbor.Float32):
        return qcbor.Float32(obj)
    if isinstance(obj, dict):
        return {k: _float32(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_float32(v) for v in obj]
    return obj


@FAST
@given(base=st.sampled_from(["update-q16-0", "update-q16-1", "update-f32", "update-i8"]),
       edits=map_edits, raw_payload=byte_edits, raw=byte_edits, reseal=st.booleans())
def test_update_decoder_gives_the_hosts_verdict_on_edited_messages(harness, base, edits,
                                                                   raw_payload, raw, reseal):
    payload, tag = open_envelope(vec(base))
    payload = _edit_bytes(qcbor.dumps(_float32(_edit_map(cbor2.loads(payload), edits))), raw_payload)
    msg = seal(pv.KEY, payload) if reseal else qcbor.dumps(cbor2.CBORTag(17, [bytes.fromhex("a10105"), {}, payload, tag]))
    msg = _edit_bytes(msg, raw)
    py = _py_verdict(_py_update, msg)
    c = c_update(harness, msg)
    _same_verdict(py, c, _update_beyond_node)
    if not isinstance(c, int):
        assert (c["fleet"], c["node"], c["round"], c["index"], c["count"], c["elements"],
                c["samples"], c["encoding"], c["data"], c["has_scale"]) == (
            py.fleet, py.node, py.round, py.index, py.count, py.elements, py.samples,
            int(py.encoding), py.data, py.scale is not None)
        ok = harness.ok("uverify", hx(msg), hx(pv.KEY))[0]
        assert (ok == str(QN_OK)) == (c["tag"] == compute_tag(pv.KEY, c["payload"]))


def test_oversize_messages_are_refused_before_parsing(harness):
    big = ModelChunk(fleet="demo", version=1, digest=bytes(32), index=0, count=1,
                     encoding=Encoding.Q16, elements=4096, data=bytes(16384)).encode()
    assert len(big) > 16384
    assert c_model(harness, big) == QN_E_RANGE
    assert _py_verdict(ModelChunk.decode, big) == "oversize"


def test_node_limits_are_range_errors_not_malformed(harness):
    a = pv.ROUND_Q16
    for change in ({"method": "m" * 33}, {"layout": (1,) * 9}, {"round": 2**32, "version": 1},
                   {"deadline": 2**32}, {"quorum": 2**32}):
        msg = RoundAnnouncement(**{**py_round_fields(a), **change}).encode()
        assert c_round(harness, msg) == QN_E_RANGE, change
    ok = RoundAnnouncement(**{**py_round_fields(a), "method": "m" * 32, "layout": (2**24,) * 8})
    assert c_round(harness, ok.encode()) == py_round_fields(ok)


# ---- fuzzing under the sanitizers -------------------------------------------------------

@pytest.mark.parametrize(("kind", "names"), [
    ("round", ["round-q16", "round-f32"]),
    ("model", ["model-q16-0", "model-f32-0"]),
    ("update", ["update-q16-0", "update-i8", "reject-bad-shape"]),
    ("frame", ["update-q16-1"]),
])
def test_decoders_survive_mutation_fuzzing(harness, kind, names):
    for seed, name in enumerate(names, 1):
        base = vec(name)
        if kind == "frame":
            import serialref
            base = serialref.frame(2, serialref.publish_content("qora/v1/demo/update/node-1", base))
        counts = list(map(int, harness.ok("fuzz", kind, seed, 20000, base.hex())))
        assert sum(counts) == 20000
        if kind != "frame":
            assert counts[0] > 0 or kind == "update"   # some mutants still decode


@FAST
@given(data=st.binary(max_size=200))
def test_decoders_only_return_status_codes_on_random_bytes(harness, data):
    for cmd in ("round", "model", "udec"):
        out = harness.call(cmd, hx(data))
        assert out[0] == "ok" or int(out[1]) in (QN_E_MALFORMED, QN_E_VERSION, QN_E_TYPE, QN_E_RANGE)
    for prefix in (vec("update-q16-0")[:7], vec("round-q16")[:20]):
        harness.call("udec", hx(prefix + data))
        harness.call("round", hx(prefix + data))


@pytest.mark.parametrize("name", ["round-q16", "model-q16-0", "update-q16-0"])
def test_every_truncation_is_refused(harness, name):
    msg = vec(name)
    cmd = {"round": "round", "model": "model", "update": "udec"}[name.split("-")[0]]
    for n in range(len(msg)):
        assert harness.call(cmd, hx(msg[:n]))[0] == "err"


# ---- topics and ids ---------------------------------------------------------------------

@FAST
@given(fleet=ids, node=ids, chunk=st.integers(0, 65534))
def test_topics_match_qora_protocol(harness, fleet, node, chunk):
    cases = [("round", None, round_topic(fleet)), ("ledger", None, ledger_topic(fleet)),
             ("model", str(chunk), model_topic(fleet, chunk)),
             ("update", node, update_topic(fleet, node)), ("status", node, status_topic(fleet, node))]
    for kind, leaf, expected in cases:
        leaf_arg = "none" if leaf is None else hx(leaf)
        assert harness.ok("topic", hx(fleet), hx(kind), leaf_arg, len(expected) + 1) == [expected]
        assert harness.call("topic", hx(fleet), hx(kind), leaf_arg, len(expected)) == ["err"]
        kind_no = ["round", "model", "update", "status", "ledger"].index(kind) + 1
        parsed = harness.ok("tparse", hx(expected), hx(fleet))
        assert parsed == [str(kind_no), str(chunk if kind == "model" else U32),
                          hx(leaf) if kind in ("update", "status") else "none"]
        other = fleet[:-1] + ("x" if fleet[-1] != "x" else "y")
        assert harness.ok("tparse", hx(expected), hx(other))[0] == "0"


@pytest.mark.parametrize(("fleet", "kind", "leaf"), [
    ("de mo", "round", None), ("", "round", None), ("f" * 65, "round", None),
    ("demo", "rounds", None), ("demo", "round", "x"), ("demo", "model", None),
    ("demo", "model", "07"), ("demo", "model", "65535"), ("demo", "model", "-1"),
    ("demo", "model", "1a"), ("demo", "update", None), ("demo", "update", "a/b"),
    ("demo", "status", "n" * 65), ("demo", "ledger", "1"),
])
def test_topic_refuses_what_section_2_forbids(harness, fleet, kind, leaf):
    assert harness.call("topic", hx(fleet), hx(kind), "none" if leaf is None else hx(leaf), 300) \
        == ["err"]


topic_text = st.one_of(
    st.builds(lambda f, k, leaf: "/".join(x for x in ("qora/v1", f, k, leaf) if x is not None),
              ids | st.just("demo"), st.sampled_from(["round", "model", "update", "status",
                                                       "ledger", "x"]),
              st.none() | ids | st.integers(0, 70000).map(str) | st.just("007")),
    st.text(alphabet="qorav1/demo-_+#0123456789", max_size=40),
)


@FAST
@given(topic=topic_text, extra=st.sampled_from(["", "/", "/x", "+"]))
def test_topic_parse_agrees_with_parse_topic(harness, topic, extra):
    topic += extra
    try:
        t = parse_topic(topic)
    except ProtocolError:
        t = None
    fleet = t.fleet if t else "demo"
    got = harness.ok("tparse", hx(topic), hx(fleet))
    if t is None:
        assert got[0] == "0"
    else:
        kind_no = ["round", "model", "update", "status", "ledger"].index(t.kind) + 1
        assert got == [str(kind_no), str(t.chunk if t.chunk is not None else U32),
                       hx(t.node) if t.node else "none"]


@FAST
@given(s=st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=70)
       | st.from_regex(r"[A-Za-z0-9_-]{0,66}", fullmatch=True))
def test_valid_id_agrees_with_validate_id(harness, s):
    try:
        validate_id(s)
        expected = "1"
    except Exception:  # noqa: BLE001 - InvalidInput
        expected = "0"
    assert harness.ok("validid", hx(s)) == [expected]
