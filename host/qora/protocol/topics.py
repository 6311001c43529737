"""MQTT topics of protocol v1: ``qora/v1/{fleet}/{kind}[/{node or chunk}]``.

=========================  ==========  ========  ===========================
topic                      written by  retained  payload
=========================  ==========  ========  ===========================
qora/v1/F/round            aggregator  yes       RoundAnnouncement
qora/v1/F/model/{chunk}    aggregator  yes       ModelChunk
qora/v1/F/update/{node}    node        no        sealed UpdateChunk
qora/v1/F/status/{node}    node        yes       Status (also the will)
qora/v1/F/ledger           aggregator  yes       LedgerHead
=========================  ==========  ========  ===========================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qora.errors import InvalidInput
from qora.protocol.errors import ProtocolError
from qora.protocol.wire import MAX_CHUNKS

PREFIX = "qora/v1"
KINDS = ("round", "model", "update", "status", "ledger")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CHUNK = re.compile(r"0|[1-9][0-9]{0,4}")


def validate_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a fleet / node id (1 to 64 of ``A-Z a-z 0-9 _ -``)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(f"{what}: expected 1 to 64 characters of A-Z a-z 0-9 _ -, got {value!r}")
    return value


def _chunk_index(chunk: int) -> int:
    if type(chunk) is not int or not 0 <= chunk < MAX_CHUNKS:
        raise InvalidInput(f"chunk: expected an integer in 0 .. {MAX_CHUNKS - 1}, got {chunk!r}")
    return chunk


def round_topic(fleet: str) -> str:
    return f"{PREFIX}/{validate_id(fleet, 'fleet')}/round"


def model_topic(fleet: str, chunk: int) -> str:
    return f"{PREFIX}/{validate_id(fleet, 'fleet')}/model/{_chunk_index(chunk)}"


def update_topic(fleet: str, node: str) -> str:
    return f"{PREFIX}/{validate_id(fleet, 'fleet')}/update/{validate_id(node, 'node')}"


def status_topic(fleet: str, node: str) -> str:
    return f"{PREFIX}/{validate_id(fleet, 'fleet')}/status/{validate_id(node, 'node')}"


def ledger_topic(fleet: str) -> str:
    return f"{PREFIX}/{validate_id(fleet, 'fleet')}/ledger"


def subscription(fleet: str, kind: str) -> str:
    """The filter for every topic of one kind: ``.../model/+``, ``.../update/+``, ``.../round`` ..."""
    if kind not in KINDS:
        raise InvalidInput(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    base = f"{PREFIX}/{validate_id(fleet, 'fleet')}/{kind}"
    return base + "/+" if kind in ("model", "update", "status") else base


@dataclass(frozen=True)
class Topic:
    """A parsed topic: ``node`` for update / status, ``chunk`` for model, else None."""

    fleet: str
    kind: str
    node: str | None = None
    chunk: int | None = None


def parse_topic(topic: str) -> Topic:
    """Split a protocol topic; ``ProtocolError("malformed")`` for anything else."""
    if not isinstance(topic, str):
        raise ProtocolError("malformed", f"expected a topic string, got {type(topic).__name__}")
    parts = topic.split("/")
    shape = "qora/v1/{fleet}/(round|ledger) or qora/v1/{fleet}/(model/{chunk}|update/{node}|status/{node})"
    if len(parts) < 4 or parts[0] != "qora" or parts[1] != "v1" or not _ID.fullmatch(parts[2]):
        raise ProtocolError("malformed", f"expected {shape}, got {topic[:200]!r}")
    fleet, kind, rest = parts[2], parts[3], parts[4:]
    if kind in ("round", "ledger") and not rest:
        return Topic(fleet, kind)
    if len(rest) == 1:
        if kind == "model" and _CHUNK.fullmatch(rest[0]) and int(rest[0]) < MAX_CHUNKS:
            return Topic(fleet, kind, chunk=int(rest[0]))
        if kind in ("update", "status") and _ID.fullmatch(rest[0]):
            return Topic(fleet, kind, node=rest[0])
    raise ProtocolError("malformed", f"expected {shape}, got {topic[:200]!r}")
