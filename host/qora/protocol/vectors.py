"""Test vectors of protocol v1: ``python -m qora.protocol.vectors [--json]``.

Deterministic: key ``00 01 .. 1f``, fleet ``demo``, node ``node-1``, small tensors. The
markdown output is the "Test vectors" section of docs/protocol.md (a test keeps them equal);
``--json`` prints the same list for firmware test generators.

Each vector: name, description, hex; rejected inputs also carry ``reason`` (the expected
reject), ``topic`` (where it arrives) and ``round`` (the ROUND vector it is checked against).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys

import numpy as np

from qora.protocol.auth import compute_tag, mac_structure, open_envelope, seal
from qora.protocol.messages import LedgerHead, RoundAnnouncement, Status, UpdateChunk
from qora.protocol.model import make_model_chunks
from qora.protocol.tensors import Encoding, model_digest
from qora.protocol.topics import update_topic
from qora.protocol.updates import make_update
from qora.protocol.wire import Key

KEY = bytes(range(32))
OTHER_KEY = bytes(range(32, 64))      # node-2's key (forged_sender)
FLEET, NODE = "demo", "node-1"
DEADLINE = 1767225600                 # 2026-01-01T00:00:00Z

# q16_16 round 3 on model version 2: 6 elements (a 2 -> 2 linear layer), chunks of 4.
MODEL_Q16 = np.array([65536, -32768, 16384, 131072, 0, -65536], np.int32)   # 1, -0.5, .25, 2, 0, -1
DELTA_Q16 = np.array([32768, -16384, 65536, -98304, 8192, 196608], np.int32)  # .5, -.25, 1, -1.5, .125, 3
# float32 round 7 on model version 6: 3 elements, one chunk.
MODEL_F32 = np.array([1.0, -0.5, 0.25], np.float32)
DELTA_F32 = np.array([0.5, -0.25, 1.5], np.float32)

ROUND_Q16 = RoundAnnouncement(
    fleet=FLEET, round=3, version=2, digest=model_digest(MODEL_Q16, "q16_16"), deadline=DEADLINE,
    method="trimmed_mean:0.2", mode="q16_16", chunk_elements=4, quorum=3, elements=6,
    layout=(2, 2), model_chunks=2)
ROUND_F32 = RoundAnnouncement(
    fleet=FLEET, round=7, version=6, digest=model_digest(MODEL_F32, "float32"), deadline=DEADLINE,
    method="median", mode="float32", chunk_elements=1024, quorum=2, elements=3, layout=(),
    model_chunks=1)


def _update(node: str = NODE, round: int = 7, values: np.ndarray = DELTA_F32,
            encoding: Encoding = Encoding.F32, chunk_elements: int = 1024, key: bytes = KEY) -> list[bytes]:
    return make_update(FLEET, node, round, values, encoding, 100, chunk_elements, key)


def _f32_chunk(**changes) -> UpdateChunk:
    fields = {"fleet": FLEET, "node": NODE, "round": 7, "index": 0, "count": 1, "encoding": Encoding.F32,
                  "elements": 3, "data": DELTA_F32.astype("<f4").tobytes(), "samples": 100}
    return UpdateChunk(**{**fields, **changes})


def _payload(chunk: UpdateChunk, old: bytes = b"", new: bytes = b"") -> bytes:
    """The chunk's payload with one byte sequence replaced (for encodings UpdateChunk never writes)."""
    p = chunk.payload()
    if old not in p:
        raise AssertionError(f"{old.hex()} is not in the payload {p.hex()}")
    return p.replace(old, new, 1)


def _accepted() -> list[dict]:
    q16 = _update(round=3, values=DELTA_Q16, encoding=Encoding.Q16, chunk_elements=4)
    (f32,), (i8,) = _update(), _update(encoding=Encoding.I8)
    f32_payload = _f32_chunk().payload()
    model = make_model_chunks(FLEET, 2, MODEL_Q16, "q16_16", 4)
    model_f32 = make_model_chunks(FLEET, 6, MODEL_F32, "float32", 1024)
    ledger = LedgerHead(fleet=FLEET, round=2, hash=hashlib.sha256(b"qora ledger vector").digest(),
                        signature=bytes(range(64)), public_key=bytes(range(64, 96)))
    return [
        ("node-key", "HMAC key of node-1, used by every sealed vector", KEY),
        ("round-q16", ("ROUND: fleet demo, round 3 on model version 2, deadline 2026-01-01, "
         "trimmed_mean:0.2, q16_16, 4 elements per chunk, quorum 3, 6 elements, layout [2, 2], "
         "2 model chunks"), ROUND_Q16.encode()),
        ("model-q16-0", "MODEL chunk 0 of 2 of version 2 (q16_16): 1.0, -0.5, 0.25, 2.0",
         model[0].encode()),
        ("model-q16-1", ("MODEL chunk 1 of 2 of version 2: 0.0, -1.0 (SHA-256 of both chunks' data "
         "is round-q16's digest)"), model[1].encode()),
        ("update-q16-0", ("UPDATE (sealed) from node-1 for round 3, chunk 0 of 2, Q16: "
         "0.5, -0.25, 1.0, -1.5; samples 100"), q16[0]),
        ("update-q16-1", "UPDATE (sealed), chunk 1 of 2, Q16: 0.125, 3.0", q16[1]),
        ("round-f32", ("ROUND: round 7 on model version 6, median, float32, 1024 elements per "
         "chunk, quorum 2, 3 elements, empty layout, 1 model chunk"), ROUND_F32.encode()),
        ("model-f32-0", "MODEL chunk 0 of 1 of version 6 (float32): 1.0, -0.5, 0.25",
         model_f32[0].encode()),
        ("update-f32", "UPDATE (sealed) from node-1 for round 7, F32: 0.5, -0.25, 1.5; samples 100", f32),
        ("update-f32-payload", "the UPDATE map inside update-f32 (what the tag covers)", f32_payload),
        ("update-f32-mac-structure", ("MAC_structure of update-f32: "
         "[\"MAC0\", h'A10105', h'', payload]"), mac_structure(f32_payload)),
        ("update-f32-tag", "HMAC-SHA256(node-key, update-f32-mac-structure)",
         compute_tag(KEY, f32_payload)),
        ("update-i8", ("UPDATE (sealed) for round 7, I8 of 0.5, -0.25, 1.5: scale 1.5/127 "
         "(float32 0x3C418306), q = 42, -21, 127"), i8),
        ("status-online", "STATUS: node-1 online (published retained after connecting)",
         Status(FLEET, NODE, True).encode()),
        ("status-offline", "STATUS: node-1 offline (the will message)", Status(FLEET, NODE, False).encode()),
        ("ledger", ("LEDGER head after round 2: hash = SHA-256(\"qora ledger vector\"); signature "
         "and public key are placeholder bytes (00..3f, 40..5f), not a real Ed25519 signature"),
         ledger.encode()),
    ]


def _rejected() -> list[tuple]:
    f32 = _update()[0]
    chunk = _f32_chunk()
    i8_chunk = UpdateChunk.decode(open_envelope(_update(encoding=Encoding.I8)[0])[0])
    scale32 = b"\xfa" + struct.pack(">f", i8_chunk.scale)
    scale64 = b"\xfb" + struct.pack(">d", i8_chunk.scale)
    status = Status(FLEET, NODE, True).encode()
    bad_version = _payload(chunk, bytes([Key.VERSION, 1]), bytes([Key.VERSION, 2]))
    f32_nan = np.array([0.5, np.nan, 1.5], np.float32).astype("<f4").tobytes()
    f32_big = np.array([0.5, -40000.0, 1.5], np.float32).astype("<f4").tobytes()
    r7, r3 = "round-f32", "round-q16"
    return [
        ("reject-trailing-byte", "update-f32 with one byte 00 appended", "malformed", NODE, r7, f32 + b"\0"),
        ("reject-double-scale", ("update-i8 re-encoded with the scale as a float64 (0xFB): "
         "floats must be float32"), "malformed", NODE, r7,
         seal(KEY, _payload(i8_chunk, scale32, scale64))),
        ("reject-long-integer", "update-f32 with samples 100 as 19 00 64 (not the shortest form)",
         "malformed", NODE, r7, seal(KEY, _payload(chunk, b"\x0b\x18\x64", b"\x0b\x19\x00\x64"))),
        ("reject-bool-as-int", "update-f32 with samples = true (F5)", "malformed", NODE, r7,
         seal(KEY, _payload(chunk, b"\x0b\x18\x64", b"\x0b\xf5"))),
        ("reject-bad-version", "update-f32 with protocol version 2", "bad_version", NODE, r7,
         seal(KEY, bad_version)),
        ("reject-wrong-type", "a STATUS map sealed as if it were an update", "wrong_type", NODE, r7,
         seal(KEY, status)),
        ("reject-wrong-fleet", "an update of fleet other sealed with node-1's key", "wrong_fleet",
         NODE, r7, _f32_chunk(fleet="other").encode(KEY)),
        ("reject-forged-sender", "node-2's update (node-2's key 20..3f) published on node-1's topic",
         "forged_sender", NODE, r7, _update(node="node-2", key=OTHER_KEY)[0]),
        ("reject-unknown-node", "an update of node-9, which has no key", "unknown_node", "node-9", r7,
         _update(node="node-9")[0]),
        ("reject-bad-tag", "update-f32 with the last tag byte flipped", "bad_tag", NODE, r7,
         f32[:-1] + bytes([f32[-1] ^ 1])),
        ("reject-wrong-round", "update-f32 for round 6 (the round is 7)", "wrong_round", NODE, r7,
         _f32_chunk(round=6).encode(KEY)),
        ("reject-bad-chunk", "chunk index 1 of a 1-chunk update", "bad_chunk", NODE, r7,
         _f32_chunk(index=1).encode(KEY)),
        ("reject-bad-shape", "elements 3 but only 2 values of data", "bad_shape", NODE, r7,
         _f32_chunk(data=chunk.data[:8]).encode(KEY)),
        ("reject-bad-encoding", "an F32 update in the q16_16 round", "bad_encoding", NODE, r3,
         _update(round=3, values=np.zeros(6, np.float32), chunk_elements=4)[0]),
        ("reject-non-finite", "F32 with NaN as the second value", "non_finite", NODE, r7,
         _f32_chunk(data=f32_nan).encode(KEY)),
        ("reject-out-of-range", "F32 with -40000.0 (outside Q16.16)", "out_of_range", NODE, r7,
         _f32_chunk(data=f32_big).encode(KEY)),
    ]


def vectors() -> list[dict]:
    """Every vector as ``{"name", "description", "hex"[, "reason", "topic", "round"]}``."""
    out = [{"name": n, "description": d, "hex": b.hex()} for n, d, b in _accepted()]
    for name, description, reason, node, round_name, message in _rejected():
        out.append({"name": name, "description": description, "hex": message.hex(), "reason": reason,
                    "topic": update_topic(FLEET, node), "round": round_name})
    return out


def announcement(name: str) -> RoundAnnouncement:
    """The RoundAnnouncement of a ROUND vector ("round-q16" or "round-f32")."""
    return {"round-q16": ROUND_Q16, "round-f32": ROUND_F32}[name]


def wrap_hex(hex_text: str, width: int = 64) -> str:
    return "\n".join(hex_text[i:i + width] for i in range(0, len(hex_text), width))


def markdown() -> str:
    """The vectors as docs/protocol.md shows them."""
    blocks = []
    for v in vectors():
        note = v["description"]
        if "reason" in v:
            note += f". On `{v['topic']}`, checked against `{v['round']}`: **{v['reason']}**"
        nbytes = len(v["hex"]) // 2
        blocks.append(f"#### `{v['name']}`\n\n{note} ({nbytes} bytes).\n\n```hex\n{wrap_hex(v['hex'])}\n```\n")
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--json"]):
        print("usage: python -m qora.protocol.vectors [--json]", file=sys.stderr)
        return 2
    print(json.dumps(vectors(), indent=1) if args else markdown(), end="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
