"""qora_node.protocol on the real MicroPython VM (and under CPython) against qora.protocol:

* the node's sealed UPDATE chunks are byte-identical to qora.protocol.make_update for the same
  inputs (several cases, multi-chunk among them) and to docs/protocol.md's vectors;
* STATUS, the MAC_structure and the tag equal the vectors;
* ROUND and MODEL messages qora.protocol encodes decode to the same fields, and the model put
  back together equals the host's values (digest checked); messages the host rejects are
  rejected with the same reason; topics parse the same way.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import cbor2
import numpy as np
import pytest

from qora.protocol import (Encoding, ModelChunk, ProtocolError, RoundAnnouncement, Status,
                           make_model_chunks, make_update, model_digest, parse_topic)

from mpnode_helpers import FW, ROOT, RUNTIMES, run_on

I32_MIN, I32_MAX = -2**31, 2**31 - 1

SCRIPT = r'''
import binascii, json
from array import array
from qora_node import protocol as P

u = binascii.unhexlify


def h(b):
    return str(binascii.hexlify(b), "ascii")


def out(tag, v):
    print(tag + " " + json.dumps(v))


def fields(r):
    return [r.fleet, r.round, r.version, h(r.digest), r.deadline, r.method, r.mode,
            r.chunk_elements, r.quorum, r.elements, r.layout, r.model_chunks]


with open("cases.json") as f:
    C = json.load(f)
for c in C["updates"]:
    for as_array in (True, False):
        vals = array("i", c["values"]) if as_array else list(c["values"])
        out("U", [h(m) for _, m in P.update_messages(c["fleet"], c["node"], c["round"], vals,
                                                       c["samples"], c["chunk_elements"], u(c["key"]))])
for fleet, node, online in C["status"]:
    out("S", h(P.status(fleet, node, online)))
key, payload = u(C["mac"][0]), u(C["mac"][1])
out("T", h(P.compute_tag(key, payload)))
out("M", h(P.MAC_HEAD + P._bstr_head(len(payload)) + payload))
for data in C["rounds"]:
    try:
        out("R", fields(P.decode_round(u(data))))
    except P.ProtocolError as e:
        out("R", e.reason)
for data in C["models"]:
    try:
        m = P.decode_model(u(data))
        out("D", [m.fleet, m.version, h(m.digest), m.index, m.count, m.encoding, m.elements, h(m.data)])
    except P.ProtocolError as e:
        out("D", e.reason)
for case in C["assemble"]:
    ann = P.decode_round(u(case["round"]))
    store = P.ModelStore()
    got = []
    for step in case["steps"]:
        for data in step:
            store.add(P.decode_model(u(data)), ann.version)
        v = store.assemble(ann)
        got.append(None if v is None else list(v))
    out("A", got)
for t in C["topics"]:
    try:
        out("P", list(P.parse_topic(t)))
    except P.ProtocolError as e:
        out("P", e.reason)
for data in C["unseal"]:
    try:
        m = P.unseal(u(data), key)
        out("O", [m[3], m[4], m[5], h(m[9])])
    except P.ProtocolError as e:
        out("O", e.reason)
print("done")
'''


def _vectors() -> dict:
    proc = subprocess.run([sys.executable, "-m", "qora.protocol.vectors", "--json"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=True)
    return {v["name"]: v for v in json.loads(proc.stdout)}


VEC = _vectors()
KEY = bytes.fromhex(VEC["node-key"]["hex"])


def _update_cases() -> list[dict]:
    rng = np.random.default_rng(6)

    def full(n):  # int32 values, the extremes included
        v = rng.integers(I32_MIN, I32_MAX, size=n, endpoint=True, dtype=np.int64)
        v[:4] = [I32_MIN, I32_MAX, 0, -1][:n] if n >= 4 else v[:4]
        return v.astype(np.int32)

    long_id = "N" * 32 + "_-" * 16
    return [
        # docs/protocol.md update-q16-0 / -1
        dict(fleet="demo", node="node-1", round=3, values=[32768, -16384, 65536, -98304, 8192, 196608],
             samples=100, chunk_elements=4, key=KEY.hex()),
        dict(fleet="f", node="n", round=1, values=[-1], samples=1, chunk_elements=1, key="ff" * 32),
        dict(fleet="demo", node="esp32-07", round=12, values=full(5).tolist(), samples=23,
             chunk_elements=1, key=bytes(range(100, 132)).hex()),
        dict(fleet=long_id, node=long_id[::-1], round=2**40 + 3, values=full(650).tolist(),
             samples=2**31 - 1, chunk_elements=256, key=bytes(range(7, 39)).hex()),
        dict(fleet="digits", node="node-3", round=24, values=full(2410).tolist(), samples=337,
             chunk_elements=1024, key=bytes(range(32)).hex()[::-1]),
        dict(fleet="x", node="y", round=2**64 - 1, values=full(1000).tolist(), samples=65536,
             chunk_elements=1000, key="00" * 32),
        dict(fleet="x", node="y", round=255, values=full(20).tolist(), samples=256,
             chunk_elements=5, key="5a" * 32),
    ]


def _round_dict(changes: dict) -> dict:
    base = cbor2.loads(bytes.fromhex(VEC["round-q16"]["hex"]))
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def _round_cases() -> list[bytes]:
    rng = random.Random(5)
    good = [bytes.fromhex(VEC["round-q16"]["hex"]), bytes.fromhex(VEC["round-f32"]["hex"])]
    for i in range(12):
        elements = rng.choice([1, 7, 650, 2410, 2**24])
        c = rng.choice([1, 3, 256, 1024, 2**24]) if elements < 2**24 else rng.choice([257, 2**24])
        rnd = rng.choice([1, 2, 1000, 2**32, 2**64 - 1])
        good.append(RoundAnnouncement(
            fleet=rng.choice(["demo", "F" * 64, "a-b_c"]), round=rnd, version=rng.choice([0, 1, rnd - 1, rnd, 2**32 - 1]) if rnd < 2**32 else rng.randrange(2**32),
            digest=bytes(rng.randrange(256) for _ in range(32)), deadline=rng.choice([0, 1767225600, 2**64 - 1]),
            method=rng.choice(["median", "krum:2", "trimmed_mean:0.2", "!" * 64, "~"]),
            mode=rng.choice(["q16_16", "float32"]), chunk_elements=c, quorum=rng.choice([1, 3, 2**40]),
            elements=elements, layout=tuple(rng.choice([[], [64, 10], [64, 32, 10], [2**24] * 64])),
            model_chunks=-(-elements // c)).encode())
    bad = [
        _round_dict({0: 2}), _round_dict({1: 2}), _round_dict({1: 3}), _round_dict({19: True}),
        _round_dict({23: _DROP}), _round_dict({4: 0}), _round_dict({12: 2**32}), _round_dict({12: 3}), _round_dict({12: 2**64 - 1}),
        _round_dict({13: bytes(31)}), _round_dict({15: ""}), _round_dict({15: "a b"}),
        _round_dict({15: "m" * 65}), _round_dict({16: 2}), _round_dict({17: 0}),
        _round_dict({17: 2**24 + 1}), _round_dict({18: 0}), _round_dict({8: 0}),
        _round_dict({8: 2**24 + 1}), _round_dict({23: [1] * 65}), _round_dict({23: [2, 0]}),
        _round_dict({23: 7}), _round_dict({24: 3}), _round_dict({2: "a/b"}), _round_dict({2: ""}),
        _round_dict({0: True}), _round_dict({14: 1.5}), _round_dict({4: -3}),
        _round_dict({2: b"demo"}), _round_dict({13: "x" * 32}), _round_dict({15: 7}),
        _round_dict({8: 2**24, 17: 1, 24: 2**24}),
    ]
    bad = [cbor2.dumps(d, canonical=True) for d in bad]
    bad += [bytes.fromhex(VEC["update-q16-0"]["hex"]), bytes.fromhex(VEC["model-q16-0"]["hex"]),
            bytes.fromhex(VEC["round-q16"]["hex"]) + b"\x00", b"\xa1\x00" + b"\x5a\x00\x00\x4e\x20" + bytes(20000),
            cbor2.dumps([1, 1]), b""]
    return good + bad


def _model_cases() -> list[bytes]:
    rng = np.random.default_rng(9)
    vals = rng.integers(I32_MIN, I32_MAX, size=650, dtype=np.int64).astype(np.int32)
    good = [c.encode() for c in make_model_chunks("demo", 5, vals, "q16_16", 256)]
    good += [bytes.fromhex(VEC["model-q16-0"]["hex"]), bytes.fromhex(VEC["model-q16-1"]["hex"]),
             bytes.fromhex(VEC["model-f32-0"]["hex"])]
    base = cbor2.loads(bytes.fromhex(VEC["model-q16-0"]["hex"]))
    bad = [{**base, 5: 2}, {**base, 6: 7}, {**base, 7: 2}, {**base, 9: b""}, {**base, 9: bytes(6)},
           {**base, 9: bytes(28)}, {**base, 13: bytes(33)}, {**base, 1: 1}, {**base, 0: 0},
           {**base, 2: "no/"}, {**base, 6: 0}, {**base, 12: -1}, {**base, 8: 0}]
    return good + [cbor2.dumps(d, canonical=True) for d in bad]


def _assemble_cases() -> list[dict]:
    rng = np.random.default_rng(11)
    params = rng.integers(-2**20, 2**20, size=650).astype(np.int32)
    old = params.copy()
    old[300] += 1  # in chunk 1
    new_chunks = [c.encode() for c in make_model_chunks("demo", 4, params, "q16_16", 256)]
    old_chunks = [c.encode() for c in make_model_chunks("demo", 3, old, "q16_16", 256)]
    # chunks of version 4 whose data is not yet the announced one (a partly updated model)
    stale = [ModelChunk(**{**vars(ModelChunk.decode(m)), "data": ModelChunk.decode(o).data}).encode()
             for m, o in zip(new_chunks, old_chunks)]
    ann = RoundAnnouncement(fleet="demo", round=5, version=4, digest=model_digest(params, "q16_16"),
                            deadline=1, method="median", mode="q16_16", chunk_elements=256, quorum=1,
                            elements=650, layout=(64, 10), model_chunks=3).encode()
    return [
        {"round": VEC["round-q16"]["hex"],
         "steps": [[VEC["model-q16-1"]["hex"]], [VEC["model-q16-0"]["hex"]]]},
        {"round": ann.hex(),
         "steps": [[c.hex() for c in old_chunks], [new_chunks[2].hex(), new_chunks[0].hex()],
                   [stale[1].hex()], [new_chunks[1].hex()]]},
    ], params, [65536, -32768, 16384, 131072, 0, -65536]


TOPICS = ["qora/v1/demo/round", "qora/v1/demo/model/0", "qora/v1/demo/model/7", "qora/v1/demo/model/65534",
          "qora/v1/demo/model/65535", "qora/v1/demo/model/07", "qora/v1/demo/model/-1", "qora/v1/demo/model/+",
          "qora/v1/demo/model", "qora/v1/demo/model/1/2", "qora/v1/demo/update/node-1",
          "qora/v1/demo/status/node_2", "qora/v1/demo/status/no de", "qora/v1/demo/ledger",
          "qora/v1/demo/ledger/x", "qora/v2/demo/round", "qorb/v1/demo/round", "qora/v1/de#mo/round",
          "qora/v1//round", "qora/v1/" + "f" * 65 + "/round", "qora/v1/demo/other", "", "qora/v1/demo",
          "qora/v1/demo/model/00", "qora/v1/demo/model/100000", "qora/v1/demo/model/1a"]


@pytest.fixture(scope="module")
def cases():
    assemble, params, doc_model = _assemble_cases()
    return {
        "updates": _update_cases(),
        "status": [["demo", "node-1", True], ["demo", "node-1", False], ["Z" * 64, "n-" * 32, True]],
        "mac": [KEY.hex(), VEC["update-f32-payload"]["hex"]],
        "rounds": [b.hex() for b in _round_cases()],
        "models": [b.hex() for b in _model_cases()],
        "assemble": assemble,
        "assemble_values": [doc_model, params.tolist()],
        "topics": TOPICS,
        "unseal": [VEC[n]["hex"] for n in ("update-q16-0", "update-q16-1", "update-f32", "reject-bad-tag",
                                           "reject-trailing-byte", "reject-long-integer",
                                           "reject-double-scale", "status-online")],
    }


@pytest.fixture(scope="module", params=RUNTIMES)
def output(request, cases, tmp_path_factory):
    d = tmp_path_factory.mktemp("protocol_board")
    shutil.copytree(FW / "qora_node", d / "qora_node")
    (d / "cases.json").write_text(json.dumps(cases))
    (d / "check.py").write_text(SCRIPT)
    lines = run_on(request.param, d, d / "check.py")
    assert lines[-1] == "done"
    got: dict[str, list] = {}
    for line in lines[:-1]:
        if line[:1].isupper() and line[1:2] == " ":
            got.setdefault(line[0], []).append(json.loads(line[2:]))
    return request.param, got


def test_update_chunks_equal_make_update(output, cases):
    runtime, got = output
    assert len(got["U"]) == 2 * len(cases["updates"])
    for i, c in enumerate(cases["updates"]):
        want = [m.hex() for m in make_update(c["fleet"], c["node"], c["round"], np.array(c["values"], np.int32),
                                             Encoding.Q16, c["samples"], c["chunk_elements"],
                                             bytes.fromhex(c["key"]))]
        assert len(want) == -(-len(c["values"]) // c["chunk_elements"])
        assert got["U"][2 * i] == want, "%s: case %d (array('i') values)" % (runtime, i)
        assert got["U"][2 * i + 1] == want, "%s: case %d (list values)" % (runtime, i)
    assert sum(len(m) for m in got["U"]) > 20  # multi-chunk cases are in there


def test_update_chunks_equal_the_documented_vectors(output):
    runtime, got = output
    assert got["U"][0] == [VEC["update-q16-0"]["hex"], VEC["update-q16-1"]["hex"]], runtime


def test_status_and_mac_equal_the_documented_vectors(output):
    runtime, got = output
    assert got["S"][:2] == [VEC["status-online"]["hex"], VEC["status-offline"]["hex"]]
    assert got["S"][2] == Status(fleet="Z" * 64, node="n-" * 32, online=True).encode().hex()
    assert got["M"] == [VEC["update-f32-mac-structure"]["hex"]]
    assert got["T"] == [VEC["update-f32-tag"]["hex"]]


def _host_round(data: bytes):
    try:
        r = RoundAnnouncement.decode(data)
    except ProtocolError as e:
        return e.reason
    return [r.fleet, r.round, r.version, r.digest.hex(), r.deadline, r.method, 0 if r.mode == "q16_16" else 1,
            r.chunk_elements, r.quorum, r.elements, list(r.layout), r.model_chunks]


def test_round_decoding_matches_qora_protocol(output, cases):
    runtime, got = output
    assert len(got["R"]) == len(cases["rounds"])
    accepted = 0
    for data, g in zip(cases["rounds"], got["R"]):
        want = _host_round(bytes.fromhex(data))
        assert g == want, "%s: ROUND %s..." % (runtime, data[:60])
        accepted += not isinstance(want, str)
    assert accepted == 15
    reasons = {g for g in got["R"] if isinstance(g, str)}
    assert reasons == {"malformed", "bad_version", "wrong_type", "oversize"}


def test_model_decoding_matches_qora_protocol(output, cases):
    runtime, got = output
    assert len(got["D"]) == len(cases["models"])
    for data, g in zip(cases["models"], got["D"]):
        try:
            m = ModelChunk.decode(bytes.fromhex(data))
            want = [m.fleet, m.version, m.digest.hex(), m.index, m.count, int(m.encoding), m.elements, m.data.hex()]
        except ProtocolError as e:
            want = e.reason
        assert g == want, "%s: MODEL %s..." % (runtime, data[:60])
    assert sum(isinstance(g, str) for g in got["D"]) == 13


def test_model_assembly_checks_the_digest(output, cases):
    runtime, got = output
    doc, params = cases["assemble_values"]
    # the documented model: chunk 1 alone is not enough; with chunk 0 it is the vector's model
    assert got["A"][0] == [None, doc], runtime
    # version 3 chunks do not make version 4; two of three is not enough; a chunk with the
    # wrong data (a partly updated retained model) is waited out; then the model is exact
    assert got["A"][1] == [None, None, None, params], runtime


def test_topics_parse_like_qora_protocol(output):
    runtime, got = output
    for t, g in zip(TOPICS, got["P"]):
        try:
            p = parse_topic(t)
            want = [p.fleet, p.kind, p.chunk if p.kind == "model" else p.node]
        except ProtocolError as e:
            want = e.reason
        assert g == want, "%s: topic %r" % (runtime, t)


def test_unseal_checks_envelope_and_tag(output):
    runtime, got = output
    assert got["O"][:3] == [["node-1", 3, 0, "0080000000c0ffff000001000080feff"],
                            ["node-1", 3, 1, "0020000000000300"],
                            ["node-1", 7, 0, "0000003f000080be0000c03f"]], runtime
    assert got["O"][3:] == ["bad_tag", "malformed", "malformed", "malformed", "malformed"], runtime
