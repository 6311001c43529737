"""qora.protocol messages: round trips, strict decoding, every reject reason, fuzzing."""

from __future__ import annotations

import hashlib

import cbor2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora.errors import InvalidInput, InvalidType
from qora.protocol import (
    MAX_MESSAGE_BYTES,
    Q16_LIMIT,
    Encoding,
    LedgerHead,
    ModelChunk,
    ProtocolError,
    RoundAnnouncement,
    Status,
    UpdateChunk,
    assemble_model,
    check_update,
    decode_update,
    make_model_chunks,
    make_update,
    model_digest,
    open_envelope,
    seal,
)
from qora.protocol.cbor import dumps

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY, KEY2 = bytes(range(32)), bytes(range(32, 64))
KEYS = {"node-1": KEY, "node-2": KEY2}
ids = st.text("abcXYZ019_-", min_size=1, max_size=64)
u64 = st.integers(0, 2**64 - 1)
b32 = st.binary(min_size=32, max_size=32)

# float32 round 7: 10 elements in chunks of 4 (3 chunks: 4, 4, 2)
F32_ROUND = RoundAnnouncement(
    fleet="demo", round=7, version=6, digest=bytes(32), deadline=1767225600, method="median",
    mode="float32", chunk_elements=4, quorum=2, elements=10, layout=(), model_chunks=3)
Q16_ROUND = RoundAnnouncement(
    fleet="demo", round=7, version=6, digest=bytes(32), deadline=1767225600, method="krum:1",
    mode="q16_16", chunk_elements=4, quorum=2, elements=10, layout=(5, 2), model_chunks=3)
F32_DATA = np.arange(4, dtype="<f4").tobytes()


def _chunk(**changes) -> UpdateChunk:
    base = {"fleet": "demo", "node": "node-1", "round": 7, "index": 0, "count": 3, "encoding": Encoding.F32,
                "elements": 10, "data": F32_DATA, "samples": 100}
    return UpdateChunk(**{**base, **changes})


def _sealed_map(mutate, key=KEY) -> bytes:
    """An update whose payload map was edited (to write what UpdateChunk never writes), sealed."""
    m = dict(cbor2.loads(_chunk().payload()))
    mutate(m)
    return seal(key, dumps(m))


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(ProtocolError) as e:
        fn(*args, **kwargs)
    return e.value.reason


def _intake(message: bytes, ann: RoundAnnouncement = F32_ROUND, topic_node: str = "node-1") -> np.ndarray:
    chunk = decode_update(message, fleet="demo", topic_node=topic_node, keys=KEYS)
    return check_update(chunk, ann)


# ---- round trips ---------------------------------------------------------------------------

@st.composite
def announcements(draw):
    elements = draw(st.integers(1, 5000))
    chunk = draw(st.integers(1, 5000))
    rnd = draw(st.integers(1, 2**64 - 1))
    return RoundAnnouncement(
        fleet=draw(ids), round=rnd, version=draw(st.integers(0, rnd - 1)), digest=draw(b32),
        deadline=draw(u64), method=draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)),
        mode=draw(st.sampled_from(["q16_16", "float32"])), chunk_elements=chunk, quorum=draw(st.integers(1, 2**64 - 1)),
        elements=elements, layout=tuple(draw(st.lists(st.integers(1, 1 << 24), max_size=64))),
        model_chunks=-(-elements // chunk))


@st.composite
def model_chunks(draw):
    elements = draw(st.integers(1, 2000))
    count = draw(st.integers(1, min(elements, 50)))
    n = draw(st.integers(1, elements))
    return ModelChunk(fleet=draw(ids), version=draw(u64), digest=draw(b32), index=draw(st.integers(0, count - 1)),
                      count=count, encoding=draw(st.sampled_from([Encoding.Q16, Encoding.F32])),
                      elements=elements, data=draw(st.binary(min_size=4 * n, max_size=4 * n)))


@st.composite
def update_chunks(draw):
    scale = draw(st.none() | st.floats(width=32))
    return UpdateChunk(fleet=draw(ids), node=draw(ids), round=draw(u64), index=draw(u64), count=draw(u64),
                       encoding=draw(u64 | st.sampled_from(list(Encoding))), elements=draw(u64),
                       data=draw(st.binary(max_size=300)), samples=draw(u64), scale=scale)


statuses = st.builds(Status, fleet=ids, node=ids, online=st.booleans())
ledger_heads = st.builds(LedgerHead, fleet=ids, round=st.integers(1, 2**64 - 1), hash=b32,
                         signature=st.binary(min_size=64, max_size=64), public_key=b32)


@SETTINGS
@given(msg=announcements() | model_chunks() | statuses | ledger_heads)
def test_plain_messages_round_trip(msg):
    data = msg.encode()
    assert type(msg).decode(data) == msg
    assert type(msg).decode(data).encode() == data


@SETTINGS
@given(chunk=update_chunks())
def test_update_chunk_round_trips_through_the_envelope(chunk):
    message = chunk.encode(KEY)
    payload, tag = open_envelope(message)
    back = UpdateChunk.decode(payload)
    assert back.raw == payload and back.payload() == payload
    if chunk.scale is not None and chunk.scale != chunk.scale:  # NaN != NaN
        assert back.scale != back.scale
    else:
        assert back == chunk
    assert decode_update(message, fleet=chunk.fleet, topic_node=chunk.node,
                         keys={chunk.node: KEY}, max_bytes=1 << 20).tag == tag


def test_encoding_is_deterministic_with_ascending_keys():
    data = Status("demo", "node-1", True).encode()
    assert data.hex() == "a500010104026464656d6f03666e6f64652d3113f5"


def test_scale_travels_as_float32():
    payload = _chunk(encoding=Encoding.I8, data=bytes(4), scale=1.0).payload()
    assert b"\x0a\xfa\x3f\x80\x00\x00" in payload  # key 10, float32 1.0 (not float16 f93c00)
    assert _chunk(scale=0.1).scale == float(np.float32(0.1))


# ---- strict decoding -----------------------------------------------------------------------

def _status_map(**changes) -> dict:
    return {**dict(cbor2.loads(Status("demo", "node-1", True).encode())), **changes}


@pytest.mark.parametrize("payload, reason", [
    (dumps(_status_map(**{"19": 1})), "malformed"),                  # text key
    (bytes.fromhex("a500010104026464656d6f03666e6f64652d311301"), "malformed"),  # online = 1
    (dumps({0: 1, 1: 4, 2: "demo", 3: "node-1"}), "malformed"),        # missing key 19
    (dumps({**_status_map(), 20: b""}), "malformed"),                  # extra key
    (dumps({0: 1, 1: 4, 2: "demo", 3: "node 1", 19: True}), "malformed"),  # bad id
    (dumps({0: 1, 1: 4, 2: "", 3: "node-1", 19: True}), "malformed"),
    (dumps({0: 1, 1: 4, 2: b"demo", 3: "node-1", 19: True}), "malformed"),
    (dumps([1, 4]), "malformed"),
    (dumps({0: 2, 1: 4, 2: "demo", 3: "node-1", 19: True}), "bad_version"),
    (dumps({0: 1, 1: 1, 2: "demo", 3: "node-1", 19: True}), "wrong_type"),
    (dumps({0: 1, 1: 9, 2: "demo", 3: "node-1", 19: True}), "wrong_type"),
    (dumps({0: True, 1: 4, 2: "demo", 3: "node-1", 19: True}), "malformed"),   # version = true
    (dumps({1: 4, 2: "demo", 3: "node-1", 19: True}), "malformed"),             # no version
    (bytes.fromhex("a500010104026464656d6f03666e6f64652d3113f5") + b"\0", "malformed"),   # trailing
    (bytes.fromhex("a501040001026464656d6f03666e6f64652d3113f5"), "malformed"),    # keys out of order
    (bytes.fromhex("a500010104026464656d6f03666e6f64652d3113f513f5"), "malformed"),  # 6 pairs declared 5
    (bytes.fromhex("a600010104026464656d6f03666e6f64652d3113f513f4"), "malformed"),  # duplicate key 19
    (bytes.fromhex("bf00010104026464656d6f03666e6f64652d3113f5ff"), "malformed"),  # indefinite map
    (bytes.fromhex("b80500010104026464656d6f03666e6f64652d3113f5"), "malformed"),  # non-shortest length
    (bytes.fromhex("a50001010402646465"), "malformed"),                          # truncated
    (bytes.fromhex("c0a500010104026464656d6f03666e6f64652d3113f5"), "malformed"),  # tag 0
    (bytes.fromhex("a500010104026464656d6f03666e6f64652d3113f6"), "malformed"),    # null
    (bytes.fromhex("a500010104026464656d6f03666e6fff652d3113f5"), "malformed"),    # invalid UTF-8
    (b"", "malformed"),
    (bytes(MAX_MESSAGE_BYTES + 1), "oversize"),
])
def test_status_decode_is_strict(payload, reason):
    assert _reason(Status.decode, payload) == reason


def test_bool_is_not_an_int():
    m = dict(cbor2.loads(_chunk().payload()))
    m[11] = True
    with pytest.raises(ProtocolError, match=r"samples \(key 11\): expected an unsigned integer, got bool True"):
        UpdateChunk.decode(dumps(m))
    ann = dict(cbor2.loads(F32_ROUND.encode()))
    ann[4] = True
    assert _reason(RoundAnnouncement.decode, dumps(ann)) == "malformed"
    with pytest.raises(InvalidType):
        Status("demo", "node-1", 1)


@pytest.mark.parametrize("key, value", [
    (4, -1), (4, 0), (12, -1), (12, 2**32), (13, bytes(31)), (13, bytes(33)), (13, "x" * 32), (14, -5), (15, ""),
    (15, "a b"), (15, "x" * 65), (15, "\u00e9"), (16, 2), (16, "float32"), (17, 0), (18, 0), (8, 0),
    (8, (1 << 24) + 1), (23, [0]), (23, [1] * 65), (23, {}), (23, [True]), (24, 4), (24, 2), (2, "a/b"),
    (17, 1),  # 10 elements in chunks of 1 is 10 chunks, not the announced 3
])
def test_round_decode_rejects_bad_fields(key, value):
    m = dict(cbor2.loads(F32_ROUND.encode()))
    m[key] = value
    assert _reason(RoundAnnouncement.decode, dumps(m)) == "malformed"


@pytest.mark.parametrize("key, value", [
    (5, 3), (6, 0), (7, 2), (8, 0), (9, b""), (9, bytes(5)), (9, bytes(44)), (13, bytes(16)), (12, -1),
    (6, 11),  # more chunks than elements
])
def test_model_decode_rejects_bad_fields(key, value):
    chunk = make_model_chunks("demo", 6, np.arange(10, dtype=np.float32), "float32", 4)[0]
    m = dict(cbor2.loads(chunk.encode()))
    m[key] = value
    assert _reason(ModelChunk.decode, dumps(m)) == "malformed"


@pytest.mark.parametrize("key, value", [(20, bytes(31)), (21, bytes(63)), (22, bytes(33)), (4, 0)])
def test_ledger_decode_rejects_bad_lengths(key, value):
    head = LedgerHead("demo", 1, bytes(32), bytes(64), bytes(32))
    m = {**dict(cbor2.loads(head.encode())), key: value}
    assert _reason(LedgerHead.decode, dumps(m)) == "malformed"


@pytest.mark.parametrize("scale", [1, True, "1.0", b"\x3f\x80\x00\x00"])
def test_update_scale_must_be_a_float(scale):
    m = {**dict(cbor2.loads(_chunk(encoding=Encoding.I8, data=bytes(4), scale=1.0).payload())), 10: scale}
    assert _reason(UpdateChunk.decode, dumps(m)) == "malformed"


def test_update_decode_wants_the_inner_map_and_says_so():
    with pytest.raises(ProtocolError, match="open_envelope or decode_update first"):
        UpdateChunk.decode(_chunk().encode(KEY))


def test_constructors_check_bounds_with_qora_errors():
    with pytest.raises(InvalidInput, match=r"version \(key 12\): expected an integer in 0 .. 4294967295"):
        RoundAnnouncement(**{**F32_ROUND.__dict__, "version": 2**32})
    with pytest.raises(InvalidInput, match=r"model_chunks \(key 24\): expected an integer in 3 .. 3, got 2"):
        RoundAnnouncement(**{**F32_ROUND.__dict__, "model_chunks": 2})
    with pytest.raises(InvalidInput, match="scale .key 10.: expected a value that fits float32"):
        _chunk(scale=1e300)
    with pytest.raises(InvalidInput, match="tag: expected 32 bytes"):
        _chunk(tag=bytes(5))


# ---- decode_update: every reason, in order -------------------------------------------------

def test_each_decode_update_reason_from_a_hand_made_message():
    good = _chunk().encode(KEY)
    _intake(good)
    assert _reason(decode_update, good, fleet="demo", topic_node="node-1", keys=KEYS, max_bytes=len(good) - 1) == "oversize"
    assert _reason(_intake, good[:-3]) == "malformed"
    assert _reason(_intake, _sealed_map(lambda m: m.update({0: 2}))) == "bad_version"
    assert _reason(_intake, _sealed_map(lambda m: m.update({1: 2}))) == "wrong_type"
    assert _reason(_intake, _sealed_map(lambda m: m.pop(11))) == "malformed"
    assert _reason(_intake, _sealed_map(lambda m: m.update({12: 0}))) == "malformed"
    assert _reason(_intake, _chunk(fleet="other").encode(KEY)) == "wrong_fleet"
    assert _reason(_intake, _chunk(node="node-2").encode(KEY2)) == "forged_sender"
    assert _reason(_intake, _chunk(node="node-3").encode(KEY), topic_node="node-3") == "unknown_node"
    assert _reason(_intake, _chunk().encode(KEY2)) == "bad_tag"
    assert _reason(_intake, good[:-1] + bytes([good[-1] ^ 0x80])) == "bad_tag"


def test_decode_update_checks_in_the_spec_order():
    # wrong fleet and forged sender and unknown node and bad tag: the fleet is reported
    assert _reason(_intake, _chunk(fleet="other", node="node-9").encode(KEY2)) == "wrong_fleet"
    # forged sender beats unknown node and bad tag
    assert _reason(_intake, _chunk(node="node-9").encode(KEY2)) == "forged_sender"
    # bad version beats a missing field
    assert _reason(_intake, _sealed_map(lambda m: (m.update({0: 3}), m.pop(9)))) == "bad_version"
    # oversize is decided before looking at the bytes
    assert _reason(decode_update, b"\xff" * 100, fleet="demo", topic_node="node-1", keys=KEYS,
                   max_bytes=10) == "oversize"
    # a sealed message with a wrong tag is still checked for fleet first (authenticity last)
    assert _reason(_intake, _chunk(fleet="other").encode(KEY2)) == "wrong_fleet"


def test_decode_update_keeps_raw_and_tag():
    message = _chunk().encode(KEY)
    chunk = decode_update(message, fleet="demo", topic_node="node-1", keys=KEYS)
    assert (chunk.raw, chunk.tag) == open_envelope(message)


# ---- check_update: every reason, in order --------------------------------------------------

@pytest.mark.parametrize("changes, ann, reason", [
    ({"round": 6}, F32_ROUND, "wrong_round"),
    ({"round": 8}, F32_ROUND, "wrong_round"),
    ({"index": 3}, F32_ROUND, "bad_chunk"),
    ({"count": 4}, F32_ROUND, "bad_chunk"),
    ({"count": 0}, F32_ROUND, "bad_chunk"),
    ({"count": 1, "elements": 4}, F32_ROUND, "bad_shape"),        # a whole, but too small, update
    ({"count": 3, "elements": 12}, F32_ROUND, "bad_shape"),
    ({"elements": 9}, F32_ROUND, "bad_shape"),
    ({"data": F32_DATA[:12]}, F32_ROUND, "bad_shape"),
    ({"index": 2}, F32_ROUND, "bad_shape"),                      # last chunk holds 2 elements
    ({"encoding": Encoding.I8, "data": bytes(4)}, F32_ROUND, "bad_encoding"),  # I8 without scale
    ({"scale": 1.0}, F32_ROUND, "bad_encoding"),                 # scale with F32
    ({}, Q16_ROUND, "bad_encoding"),                          # F32 in q16_16
    ({"encoding": Encoding.Q16}, F32_ROUND, "bad_encoding"),     # Q16 in float32
    ({"encoding": 7}, F32_ROUND, "bad_encoding"),                # unknown encoding
    ({"data": np.array([0, np.nan, 0, 0], "<f4").tobytes()}, F32_ROUND, "non_finite"),
    ({"data": np.array([0, 0, 0, -np.inf], "<f4").tobytes()}, F32_ROUND, "non_finite"),
    ({"encoding": Encoding.I8, "data": bytes(4), "scale": float("nan")}, F32_ROUND, "non_finite"),
    ({"encoding": Encoding.I8, "data": bytes(4), "scale": float("inf")}, F32_ROUND, "non_finite"),
    ({"data": np.array([0, 32768.0, 0, 0], "<f4").tobytes()}, F32_ROUND, "out_of_range"),
    ({"data": np.array([0, 0, -1e30, 0], "<f4").tobytes()}, F32_ROUND, "out_of_range"),
    ({"encoding": Encoding.I8, "data": bytes(4), "scale": 0.0}, F32_ROUND, "out_of_range"),
    ({"encoding": Encoding.I8, "data": bytes(4), "scale": -1.0}, F32_ROUND, "out_of_range"),
    ({"encoding": Encoding.I8, "data": b"\x7f\0\0\0", "scale": 258.1}, F32_ROUND, "out_of_range"),
    ({"encoding": Encoding.I8, "data": b"\x01\0\0\0", "scale": 3e38}, F32_ROUND, "out_of_range"),
    ({"samples": 0}, F32_ROUND, "out_of_range"),
    ({"samples": 2**31}, F32_ROUND, "out_of_range"),
])
def test_each_check_update_reason_from_a_hand_made_chunk(changes, ann, reason):
    assert _reason(_intake, _chunk(**changes).encode(KEY), ann) == reason


@pytest.mark.parametrize("changes, reason", [
    ({"round": 6, "index": 9, "elements": 1, "encoding": 9}, "wrong_round"),
    ({"index": 9, "elements": 1, "encoding": 9}, "bad_chunk"),
    ({"elements": 9, "encoding": 9, "samples": 0}, "bad_shape"),
    ({"elements": 1, "encoding": 9, "samples": 0}, "bad_chunk"),     # 3 chunks of 1 element: numbering
    ({"encoding": 9, "samples": 0}, "bad_encoding"),
    ({"data": np.array([np.nan, 1e9, 0, 0], "<f4").tobytes(), "samples": 0}, "non_finite"),
])
def test_check_update_reports_the_first_failing_check(changes, reason):
    assert _reason(_intake, _chunk(**changes).encode(KEY)) == reason


def test_largest_values_in_range_pass():
    edge = np.array([32767.998046875, -32767.998046875, 0, 1], "<f4")  # largest float32 <= Q16_LIMIT
    assert np.array_equal(_intake(_chunk(data=edge.tobytes()).encode(KEY)), edge)
    assert float(np.float32(32768.0)) > Q16_LIMIT


# ---- make_update -> decode_update -> check_update ------------------------------------------

@SETTINGS
@given(values=hnp.arrays(np.float32, st.integers(1, 40), elements=st.floats(-3e4, 3e4, width=32)),
       chunk=st.integers(1, 16), encoding=st.sampled_from([Encoding.F32, Encoding.I8]))
def test_float_updates_pass_intake(values, chunk, encoding):
    ann = RoundAnnouncement(**{**F32_ROUND.__dict__, "elements": values.size, "chunk_elements": chunk,
                               "model_chunks": -(-values.size // chunk)})
    messages = make_update("demo", "node-1", 7, values, encoding, 5, chunk, KEY)
    got = np.concatenate([_intake(m, ann) for m in messages])
    assert got.dtype == np.float32
    if encoding == Encoding.F32:
        assert np.array_equal(got, values)
    else:
        steps = [np.abs(values[i:i + chunk]).max() / 127 for i in range(0, values.size, chunk)]
        bound = np.repeat(steps, chunk)[:values.size] * (0.5 + 1e-5) + np.abs(values) * 2.0 ** -23
        assert (np.abs(got.astype(np.float64) - values) <= bound).all()


@SETTINGS
@given(values=hnp.arrays(np.int32, st.integers(1, 40)), chunk=st.integers(1, 16))
def test_q16_updates_pass_intake(values, chunk):
    ann = RoundAnnouncement(**{**Q16_ROUND.__dict__, "elements": values.size, "chunk_elements": chunk,
                               "model_chunks": -(-values.size // chunk)})
    messages = make_update("demo", "node-1", 7, values, Encoding.Q16, 5, chunk, KEY)
    got = np.concatenate([_intake(m, ann) for m in messages])
    assert got.dtype == np.int32 and np.array_equal(got, values)


def test_make_update_refuses_what_it_cannot_encode():
    with pytest.raises(InvalidInput, match="I8 cannot carry chunk 0"):
        make_update("demo", "node-1", 7, np.array([32767.998046875, 1.0], np.float32), Encoding.I8, 5, 4, KEY)
    with pytest.raises(InvalidInput, match="expected finite values for I8"):
        make_update("demo", "node-1", 7, np.array([1.0, np.nan], np.float32), Encoding.I8, 5, 4, KEY)
    with pytest.raises(InvalidType, match="expected int32"):
        make_update("demo", "node-1", 7, np.array([1, 2], np.int64), Encoding.Q16, 5, 4, KEY)


@pytest.mark.parametrize("values, encoding, reason", [
    (np.array([1.0, np.nan, 0, 0], np.float32), Encoding.F32, "non_finite"),
    (np.array([1.0, 40000.0, 0, 0], np.float32), Encoding.F32, "out_of_range"),
    (np.array([1.0, -40000.0, 0, 0], np.float32), Encoding.I8, "out_of_range"),
])
def test_make_update_sends_bad_values_as_they_are_for_the_aggregator_to_reject(values, encoding, reason):
    message = make_update("demo", "node-1", 7, np.concatenate([values, np.zeros(6, np.float32)]),
                          encoding, 5, 4, KEY)[0]
    assert _reason(_intake, message) == reason


def test_make_update_checks_samples_ids_and_key():
    v = np.zeros(3, np.float32)
    with pytest.raises(InvalidInput, match="samples: expected an integer in 1 .. 2147483647, got 0"):
        make_update("demo", "node-1", 7, v, Encoding.F32, 0, 4, KEY)
    with pytest.raises(InvalidInput, match="node: expected 1 to 64"):
        make_update("demo", "node/1", 7, v, Encoding.F32, 1, 4, KEY)
    with pytest.raises(InvalidInput, match="key: expected 32 bytes, got 16"):
        make_update("demo", "node-1", 7, v, Encoding.F32, 1, 4, bytes(16))


def test_the_largest_default_chunk_fits_the_default_message_size():
    big = UpdateChunk(fleet="f" * 64, node="n" * 64, round=2**64 - 1, index=65534, count=65535,
                      encoding=Encoding.F32, elements=1 << 24, data=bytes(4 * 1024), samples=2**31 - 1)
    assert len(big.encode(KEY)) < MAX_MESSAGE_BYTES


# ---- model chunks --------------------------------------------------------------------------

@SETTINGS
@given(values=hnp.arrays(np.int32, st.integers(1, 60)), chunk=st.integers(1, 20), data=st.data())
def test_model_chunks_reassemble_in_any_order_with_duplicates(values, chunk, data):
    chunks = make_model_chunks("demo", 4, values, "q16_16", chunk)
    shuffled = data.draw(st.permutations(chunks + chunks[:2]))
    decoded = [ModelChunk.decode(c.encode()) for c in shuffled]
    out = assemble_model(decoded, expected_digest=model_digest(values, "q16_16"))
    assert out.dtype == np.int32 and np.array_equal(out, values)


def test_float32_model_reassembles():
    values = np.array([1.0, -0.5, 0.25, 3.0, 7.5], np.float32)
    out = assemble_model(make_model_chunks("demo", 1, values, "float32", 2))
    assert out.dtype == np.float32 and np.array_equal(out, values)


def test_assemble_model_reasons():
    values = np.arange(10, dtype=np.int32)
    chunks = make_model_chunks("demo", 4, values, "q16_16", 4)
    other = make_model_chunks("demo", 5, values + 1, "q16_16", 4)
    assert _reason(assemble_model, chunks[:2]) == "bad_chunk"
    assert _reason(assemble_model, []) == "bad_chunk"
    assert _reason(assemble_model, chunks[:2] + other[2:]) == "inconsistent"
    assert _reason(assemble_model, chunks, expected_digest=bytes(32)) == "inconsistent"
    forged = [ModelChunk(**{**c.__dict__, "data": bytes(len(c.data))}) for c in chunks]
    assert _reason(assemble_model, forged) == "inconsistent"
    dup = ModelChunk(**{**chunks[0].__dict__, "data": bytes(16)})
    assert _reason(assemble_model, chunks + [dup]) == "conflict"
    uneven = [ModelChunk(**{**chunks[0].__dict__, "data": chunks[0].data[:8]}),
              ModelChunk(**{**chunks[1].__dict__, "data": chunks[0].data[8:] + chunks[1].data}),
              chunks[2]]
    assert _reason(assemble_model, uneven) == "bad_shape"
    nan = np.array([np.nan, 1.0], np.float32)
    assert _reason(assemble_model, make_model_chunks("demo", 1, nan, "float32", 4)) == "non_finite"


def test_model_digest_of_chunks_is_the_announced_digest():
    values = np.arange(10, dtype=np.int32)
    chunks = make_model_chunks("demo", 4, values, "q16_16", 3)
    assert {c.digest for c in chunks} == {hashlib.sha256(values.astype("<i4").tobytes()).digest()}


# ---- fuzzing: only ProtocolError, whatever the bytes ---------------------------------------

DECODERS = [RoundAnnouncement.decode, ModelChunk.decode, UpdateChunk.decode, Status.decode,
            LedgerHead.decode, open_envelope,
            lambda b: _intake(b), lambda b: _intake(b, Q16_ROUND)]
VALID = [F32_ROUND.encode(), Q16_ROUND.encode(), Status("demo", "node-1", False).encode(),
         LedgerHead("demo", 3, bytes(32), bytes(64), bytes(32)).encode(),
         make_model_chunks("demo", 6, np.arange(10, dtype=np.float32), "float32", 4)[2].encode(),
         _chunk().encode(KEY), _chunk().payload(),
         _chunk(encoding=Encoding.I8, data=bytes(4), scale=0.5).encode(KEY)]


def _only_protocol_errors(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except ProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_protocol_errors(data):
    _only_protocol_errors(data)


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, len(VALID) - 1), data=st.data())
def test_truncated_and_bit_flipped_messages_raise_only_protocol_errors(which, data):
    msg = bytearray(VALID[which])
    cut = data.draw(st.integers(0, len(msg)))
    _only_protocol_errors(bytes(msg[:cut]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(msg) - 1))
        msg[i] ^= 1 << data.draw(st.integers(0, 7))
    _only_protocol_errors(bytes(msg))


@settings(max_examples=200, deadline=None)
@given(prefix=st.binary(max_size=12), tail=st.binary(max_size=12))
def test_hostile_cbor_heads_raise_only_protocol_errors(prefix, tail):
    # huge declared lengths, deep nesting, tags that cbor2 would interpret (bigfloat, decimal, ...)
    for head in (b"\x5b" + b"\xff" * 8, b"\x9b" + b"\xff" * 8, b"\xbb" + b"\x7f" * 8, b"\x81" * 1000,
                 b"\xc5\x82\x01\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xc4\x82\x1b\x7f" + b"\xff" * 7 + b"\x01",
                 b"\xd8\x1c\x81\xd8\x1d\x00", b"\xd9\xd9\xf7\xa0"):
        _only_protocol_errors(prefix + head + tail)
        _only_protocol_errors(head + tail)


def test_non_bytes_inputs_are_malformed():
    for decode in DECODERS[:6]:
        assert _reason(decode, "a500") == "malformed"
        assert _reason(decode, None) == "malformed"
