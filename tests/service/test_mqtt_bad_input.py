"""Bad input over real MQTT: a raw paho client sends every reject class while a round is open.

The round is collecting from honest simulated nodes (some have sent, the others wait for a gate).
A provisioned node "mallory", whose key the test holds, sends one valid chunk and then the
authenticated misbehaviour (penalized); the unauthenticated junk goes out under any name. The
aggregator must count every message under exactly the right reason, never stop, and close the
round with exactly the honest inputs. Then the same with hypothesis: random bytes, truncations
and bit flips of valid messages.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from fleetkit import initial_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqttkit import Raw, ServiceRunner, SkewClock, Swarm, Watcher, small_update, wait_until
from qora import native
from qora.protocol import (
    PENALIZED_REASONS,
    REJECT_REASONS,
    Encoding,
    Status,
    UpdateChunk,
    encode_values,
    make_update,
    new_key,
    open_envelope,
    seal,
    update_topic,
)
from qora.service import verify_store

pytestmark = pytest.mark.mqtt

HONEST = [f"h{i}" for i in range(6)]
EARLY, GATED = HONEST[:3], HONEST[3:]     # send at once / only after the bad input was counted
MALLORY = "mallory"
D, C = 300, 128                           # model elements, elements per chunk: 3 chunks
CHUNKS = 3
UNAUTHENTICATED = set(REJECT_REASONS[:8])  # what decode_update finds: never penalized


def _values(mode: str, node: str, round_: int = 1, d: int = D) -> np.ndarray:
    x = small_update(node, round_, d)
    return native.to_q16(x)[0] if mode == "q16_16" else x


def _chunk(fleet: str, node: str, key: bytes, *, round_=1, index=0, count=CHUNKS, encoding=None,
           elements=D, data=None, samples=10, scale=None, mode="q16_16", values=None) -> bytes:
    """One sealed UPDATE message with any field set (even to values make_update refuses)."""
    encoding = encoding if encoding is not None else (Encoding.Q16 if mode == "q16_16" else Encoding.F32)
    if data is None:
        if values is None:
            values = _values(mode, node)[index * C:(index + 1) * C]
        data, auto_scale = encode_values(values, encoding)
        scale = scale if scale is not None else auto_scale
    return UpdateChunk(fleet=fleet, node=node, round=round_, index=index, count=count, encoding=encoding,
                       elements=elements, data=data, samples=samples, scale=scale).encode(key)


def bad_inputs(fleet, mode: str, v5_broker: bool) -> tuple[list[tuple[str | None, str, bytes]], bytes]:
    """[(expected reason or None for "dropped by the broker", topic node, payload)], in send order,
    and mallory's first (valid, accepted) chunk, sent before them."""
    f, keys = fleet.name, fleet.keys
    mk = keys[MALLORY]
    valid = _chunk(f, MALLORY, mk, mode=mode)
    payload, _tag = open_envelope(valid)
    f32 = Encoding.F32
    cases = [
        # unauthenticated: malformed CBOR, truncations, the size limit, the envelope's contents
        ("malformed", MALLORY, b"\xff\x00garbage"),
        ("malformed", MALLORY, b""),
        ("malformed", MALLORY, payload),                                 # the map without its envelope
        ("malformed", MALLORY, valid + b"\x00"),                         # a trailing byte
        ("malformed", MALLORY, valid[:1]),
        ("malformed", MALLORY, valid[:len(valid) // 2]),
        ("malformed", MALLORY, valid[:-1]),
        ("oversize", MALLORY, valid + bytes(20000)),                     # over 16384, under the packet limit
        # MQTT 5: beyond the Maximum Packet Size the aggregator announced, the broker drops it;
        # MQTT 3.1.1 has no such limit, so the aggregator sees and counts it
        ("oversize" if not v5_broker else None, MALLORY, bytes(70000)),
        ("bad_version", MALLORY, seal(mk, payload[:2] + b"\x02" + payload[3:])),
        ("wrong_type", MALLORY, seal(mk, Status(fleet=f, node=MALLORY, online=True).encode())),
        ("wrong_fleet", MALLORY, _chunk("other-fleet", MALLORY, mk, mode=mode)),
        ("forged_sender", "h0", _chunk(f, "h1", keys["h1"], mode=mode, samples=7)),
        ("unknown_node", "ghost", _chunk(f, "ghost", new_key(), mode=mode)),
        ("bad_tag", MALLORY, _chunk(f, MALLORY, new_key(), mode=mode)),
        ("bad_tag", "h2", _flip_last(_chunk(f, "h2", keys["h2"], mode=mode))),  # one tag bit flipped
        # authenticated, but not for this round
        ("wrong_round", MALLORY, _chunk(f, MALLORY, mk, round_=0, mode=mode)),      # stale
        ("wrong_round", MALLORY, _chunk(f, MALLORY, mk, round_=2, mode=mode)),      # future
        ("wrong_round", MALLORY, _chunk(f, MALLORY, mk, round_=10**6, mode=mode)),
        # authenticated misbehaviour (penalized)
        ("bad_chunk", MALLORY, _chunk(f, MALLORY, mk, count=5, mode=mode)),         # ceil(300/128) = 3
        ("bad_chunk", MALLORY, _chunk(f, MALLORY, mk, index=3, mode=mode,
                                      data=_chunk_data(mode, 44))),                 # index >= count
        ("bad_shape", MALLORY, _chunk(f, MALLORY, mk, elements=200, count=2, mode=mode)),
        ("bad_shape", MALLORY, _chunk(f, MALLORY, mk, index=1, mode=mode, data=_chunk_data(mode, 127))),
        ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=7, data=bytes(4 * C))),
        ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, samples=0, mode=mode)),
        # against mallory's accepted chunk 0
        ("replay", MALLORY, valid),
        ("conflict", MALLORY, _chunk(f, MALLORY, mk, mode=mode, values=_values(mode, "x")[:C])),
        ("inconsistent", MALLORY, _chunk(f, MALLORY, mk, index=1, samples=99, mode=mode)),
    ]
    if mode == "q16_16":
        cases += [
            ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                             values=np.zeros(C, np.float32))),      # F32 in a q16 fleet
            ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8,
                                             values=np.ones(C, np.float32))),
        ]
    else:
        big = np.zeros(C, np.float32)
        cases += [
            ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.Q16,
                                             values=np.zeros(C, np.int32))),        # Q16 in a float32 fleet
            ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32, scale=0.5,
                                             values=np.zeros(C, np.float32))),      # a scale without I8
            ("bad_encoding", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8,
                                             data=bytes(C))),                       # I8 without a scale
            ("non_finite", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                           values=_with(big, 5, np.nan))),
            ("non_finite", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                           values=_with(big, 0, np.inf))),
            ("non_finite", MALLORY, _chunk(f, MALLORY, mk, index=2, encoding=f32,
                                           values=_with(np.zeros(D - 2 * C, np.float32), 43, -np.inf))),
            ("non_finite", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8, data=bytes(C),
                                           scale=float("nan"))),
            ("non_finite", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8, data=bytes(C),
                                           scale=float("inf"))),
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                             values=_with(big, 3, 40000.0))),
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                             values=_with(big, 3, 32768.0))),     # just past Q16.16
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=f32,
                                             values=_with(big, 9, -32768.0))),
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8,
                                             data=b"\x7f" * C, scale=300.0)),     # 127 x 300 > 32768
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8,
                                             data=bytes(C), scale=0.0)),
            ("out_of_range", MALLORY, _chunk(f, MALLORY, mk, index=1, encoding=Encoding.I8,
                                             data=bytes(C), scale=-1.0)),
        ]
    # the same bytes once more: rejects are counted per message, not deduplicated
    cases.append(("bad_tag", MALLORY, _chunk(f, MALLORY, new_key(), mode=mode)))
    return cases, valid


def _flip_last(message: bytes) -> bytes:
    return message[:-1] + bytes([message[-1] ^ 1])


def _chunk_data(mode: str, elements: int) -> bytes:
    return bytes(4 * elements)


def _with(values: np.ndarray, i: int, v: float) -> np.ndarray:
    out = values.copy()
    out[i] = v
    return out


def _start(broker, new_fleet, cleanup, tag, mode, clock=None, provisioned=tuple(HONEST + [MALLORY])):
    fleet = new_fleet(tag, provisioned, broker)
    engine = fleet.engine(initial_model(mode), clock=clock or SkewClock(), mode=mode, quorum=3,
                          chunk_elements=C, round_seconds=60.0)
    cleanup.callback(engine.store.close)
    runner = ServiceRunner(engine, broker)
    cleanup.callback(runner.close)
    watcher = Watcher(broker, fleet.name, topics=("round",))
    cleanup.callback(watcher.close)
    runner.start()
    # the aggregator subscribes before it announces: once the round is out, updates reach it
    wait_until(lambda: watcher.latest_round() is not None, what="round 1 announced")
    swarm = Swarm(broker, fleet, nodes=HONEST, gated=tuple(GATED), last_round=1)
    cleanup.callback(swarm.close)
    raw = Raw(broker)
    cleanup.callback(raw.close)
    return fleet, engine, runner, swarm, raw


@pytest.mark.parametrize("mode", ["q16_16", "float32"])
def test_every_bad_input_is_counted_by_reason_and_the_round_completes(broker, new_fleet, cleanup, mode):
    clock = SkewClock()
    fleet, engine, runner, swarm, raw = _start(broker, new_fleet, cleanup, "bad", mode, clock)
    rec = runner.recorder
    wait_until(lambda: rec.accepted() == CHUNKS * len(EARLY), what="the early honest updates")
    cases, valid = bad_inputs(fleet, mode, broker.v5)
    raw.publish(update_topic(fleet.name, MALLORY), valid)
    for _reason, node, payload in cases:           # one at a time, each PUBACKed: arrival in this order
        raw.publish(update_topic(fleet.name, node), payload)
    counted = [(r, n) for r, n, _p in cases if r is not None]
    want = CHUNKS * len(EARLY) + 1 + len(counted)
    wait_until(lambda: rec.processed >= want, what=f"{want} messages processed (have {rec.processed})")
    assert runner.alive
    assert engine.round == 1                           # mallory never completes: the round is still open
    assert rec.connections == [True]                   # nothing, not even 70 kB, cost the connection

    swarm.release()
    wait_until(lambda: rec.accepted() == CHUNKS * len(HONEST) + 1, what="every honest update")
    assert engine.round == 1 and engine.complete_nodes() == HONEST
    clock.skew = 61.0                                  # the deadline passes: quorum is there, it closes
    runner.wait_closed(1)

    # rejects are stored under the claimed sender only when it is a provisioned node, else "?"
    expected = Counter((r, n if n in fleet.keys else "?") for r, n in counted)
    assert rec.processed == CHUNKS * len(HONEST) + 1 + len(counted)
    assert rec.reasons() == Counter(r for r, _n in counted)
    assert engine.rejects_total == Counter(r for r, _n in counted)
    assert engine.store.rejects(1) == dict(expected)
    record = runner.recorder.closed[0].record
    assert [i["node"] for i in record["inputs"]] == HONEST
    assert record["incomplete"] == [MALLORY]
    assert record["rejects"] == {f"{r}/{n}": c for (r, n), c in sorted(expected.items())}
    assert record["penalties"] == {MALLORY: sum(c for (r, _n), c in expected.items() if r in PENALIZED_REASONS)}
    assert set(REJECT_REASONS) - {r for r, _n in counted} == (
        {"non_finite"} if mode == "q16_16" else set())   # every reason the mode can produce, covered
    runner.close()
    report = verify_store(fleet.db, keys=fleet.keys)
    assert report.ok, report.findings


FUZZ_EXAMPLES = 150


def _fuzz_cases(valid: list[tuple[str, bytes]], nodes: list[str]) -> list[tuple[str, bytes]]:
    """Hypothesis draws the junk: random bytes, envelope-shaped bytes, truncations and bit flips."""
    base = st.sampled_from(valid)
    truncated = base.flatmap(lambda tv: st.integers(0, len(tv[1]) - 1).map(lambda n: (tv[0], tv[1][:n])))
    flipped = base.flatmap(lambda tv: st.tuples(st.integers(0, len(tv[1]) - 1), st.integers(0, 7)).map(
        lambda ib: (tv[0], tv[1][:ib[0]] + bytes([tv[1][ib[0]] ^ (1 << ib[1])]) + tv[1][ib[0] + 1:])))
    noise = st.tuples(st.sampled_from(nodes + ["ghost"]), st.binary(max_size=600))
    shaped = st.tuples(st.sampled_from(nodes), st.binary(max_size=300).map(lambda b: b"\xd1\x84\x43\xa1\x01\x05\xa0" + b))
    strategy = st.one_of(truncated, flipped, noise, shaped)
    drawn: list[tuple[str, bytes]] = []

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(case):
        drawn.append(case)

    draw()
    return drawn


def test_fuzzed_messages_are_all_rejected_and_the_round_completes(broker, new_fleet, cleanup):
    # only honest nodes are provisioned: the round closes as soon as they are all complete
    fleet, engine, runner, swarm, raw = _start(broker, new_fleet, cleanup, "fuzz", "q16_16", provisioned=HONEST)
    rec = runner.recorder
    wait_until(lambda: rec.accepted() == CHUNKS * len(EARLY), what="the early honest updates")
    # valid messages of every honest node for this round (the gated ones have not sent theirs yet)
    valid = [(n, m) for n in HONEST for m in make_update(fleet.name, n, 1, _values("q16_16", n, 1, D), Encoding.Q16,
                                                          10, C, fleet.keys[n])]
    cases = _fuzz_cases(valid, HONEST)
    assert len(cases) >= 50
    before = rec.processed
    infos = [raw.publish(update_topic(fleet.name, node), payload, wait=False) for node, payload in cases]
    for info in infos:
        info.wait_for_publish(10)
    wait_until(lambda: rec.processed >= before + len(cases), timeout=30,
               what=f"{len(cases)} fuzzed messages processed (have {rec.processed - before})")
    fuzz = rec.verdicts[before:before + len(cases)]
    assert not any(v.accepted for v in fuzz)
    assert {v.reason for v in fuzz} <= UNAUTHENTICATED                    # a flipped bit never passes the tag
    assert runner.alive and engine.round == 1
    swarm.release()
    runner.wait_closed(1)                                                   # every honest node complete: closes
    record = rec.closed[0].record
    assert [i["node"] for i in record["inputs"]] == HONEST
    assert record["penalties"] == {} and record["excluded"] == {}
    assert sum(record["rejects"].values()) == len(cases)
    runner.close()
    assert verify_store(fleet.db, keys=fleet.keys).ok
