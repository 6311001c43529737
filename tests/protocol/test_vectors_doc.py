"""The test vectors: docs/protocol.md shows exactly what qora.protocol.vectors generates, and
every vector means what its description says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qora.protocol import (
    LedgerHead,
    ModelChunk,
    ProtocolError,
    RoundAnnouncement,
    Status,
    UpdateChunk,
    assemble_model,
    check_update,
    compute_tag,
    decode_update,
    mac_structure,
    open_envelope,
    parse_topic,
)
from qora.protocol import vectors as V

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BEGIN = "<!-- vectors:begin (generated: python -m qora.protocol.vectors) -->\n"
END = "<!-- vectors:end -->"
BY_NAME = {v["name"]: v for v in V.vectors()}
KEYS = {"node-1": V.KEY, "node-2": V.OTHER_KEY}


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _bytes(name: str) -> bytes:
    return bytes.fromhex(BY_NAME[name]["hex"])


def test_vectors_are_deterministic_and_uniquely_named():
    again = V.vectors()
    assert again == V.vectors() and len({v["name"] for v in again}) == len(again)


def test_doc_vector_section_is_the_generated_markdown():
    doc = _doc()
    section = doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)]
    assert section == "\n" + V.markdown() + "\n", "regenerate: python -m qora.protocol.vectors"


def test_every_hex_block_in_the_doc_matches_its_vector():
    blocks = re.findall(r"#### `([^`]+)`\n.*?```hex\n(.*?)```", _doc(), flags=re.DOTALL)
    assert len(blocks) == len(re.findall(r"```hex\n", _doc())), "a hex block without a #### `name`"
    assert [name for name, _ in blocks] == list(BY_NAME)
    for name, block in blocks:
        assert "".join(block.split()) == BY_NAME[name]["hex"], name


def test_the_annotated_update_matches_its_vector():
    doc = _doc()
    name, block = re.search(r"<!-- annotated: ([\w-]+) -->\n```text\n(.*?)```", doc, flags=re.DOTALL).groups()
    tokens = [t for line in block.splitlines() for t in line.split("#")[0].split()]
    assert all(re.fullmatch(r"[0-9a-f]{2}", t) for t in tokens)
    assert "".join(tokens) == BY_NAME[name]["hex"]


def test_doc_names_every_reject_reason_in_order():
    from qora.protocol import PENALIZED_REASONS, REJECT_REASONS
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| .* \| (\*\*yes\*\*|no) \|$", _doc(), flags=re.MULTILINE)
    assert [r for _, r, _ in rows] == list(REJECT_REASONS)
    assert {r for _, r, p in rows if p != "no"} == PENALIZED_REASONS


def test_the_draft_spec_is_gone():
    assert not (DOC.parent / "protocol-spec-draft.md").exists()


# ---- what the vectors mean -----------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [
    ("round-q16", RoundAnnouncement), ("round-f32", RoundAnnouncement), ("model-q16-0", ModelChunk),
    ("model-q16-1", ModelChunk), ("model-f32-0", ModelChunk), ("status-online", Status),
    ("status-offline", Status), ("ledger", LedgerHead), ("update-f32-payload", UpdateChunk)])
def test_plain_vectors_decode_and_re_encode(name, cls):
    msg = cls.decode(_bytes(name))
    assert (msg.payload() if cls is UpdateChunk else msg.encode()) == _bytes(name)


def test_round_vectors_are_the_announcements():
    assert RoundAnnouncement.decode(_bytes("round-q16")) == V.ROUND_Q16
    assert RoundAnnouncement.decode(_bytes("round-f32")) == V.ROUND_F32
    assert Status.decode(_bytes("status-offline")) == Status("demo", "node-1", False)


def test_model_vectors_assemble_to_the_announced_digest():
    q16 = assemble_model([ModelChunk.decode(_bytes(f"model-q16-{i}")) for i in (1, 0)],
                         expected_digest=V.ROUND_Q16.digest)
    assert np.array_equal(q16, V.MODEL_Q16)
    f32 = assemble_model([ModelChunk.decode(_bytes("model-f32-0"))], expected_digest=V.ROUND_F32.digest)
    assert np.array_equal(f32, V.MODEL_F32)


def _accept(name: str, ann: RoundAnnouncement) -> np.ndarray:
    chunk = decode_update(_bytes(name), fleet="demo", topic_node="node-1", keys=KEYS)
    return check_update(chunk, ann)


def test_update_vectors_pass_intake_with_the_described_values():
    q16 = np.concatenate([_accept("update-q16-0", V.ROUND_Q16), _accept("update-q16-1", V.ROUND_Q16)])
    assert np.array_equal(q16, V.DELTA_Q16)
    assert np.array_equal(q16 / 65536, [0.5, -0.25, 1.0, -1.5, 0.125, 3.0])
    assert np.array_equal(_accept("update-f32", V.ROUND_F32), V.DELTA_F32)
    i8 = _accept("update-i8", V.ROUND_F32)
    scale = np.float32(1.5) / np.float32(127)
    assert np.array_equal(i8, np.array([42, -21, 127], np.float32) * scale)


def test_mac_structure_and_tag_vectors():
    payload, tag = open_envelope(_bytes("update-f32"))
    assert payload == _bytes("update-f32-payload")
    assert mac_structure(payload) == _bytes("update-f32-mac-structure")
    assert tag == _bytes("update-f32-tag") == compute_tag(_bytes("node-key"), payload)


@pytest.mark.parametrize("name", [n for n, v in BY_NAME.items() if "reason" in v])
def test_reject_vectors_fail_with_their_reason(name):
    v = BY_NAME[name]
    with pytest.raises(ProtocolError) as e:
        chunk = decode_update(_bytes(name), fleet="demo", topic_node=parse_topic(v["topic"]).node,
                              keys=KEYS)
        check_update(chunk, V.announcement(v["round"]))
    assert e.value.reason == v["reason"]


def test_command_line_prints_markdown_and_json():
    run = [sys.executable, "-m", "qora.protocol.vectors"]
    text = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert text == V.markdown() + "\n"
    data = json.loads(subprocess.run(run + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert data == V.vectors()
    assert subprocess.run(run + ["--bad"], capture_output=True, text=True, check=False).returncode == 2
