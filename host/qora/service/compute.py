"""What a round computes from its accepted updates: shared by the service and ``qora verify``.

Deterministic by construction: inputs sorted by node id, a fresh aggregator built from
the recorded settings over the recorded reputation, intake penalties applied in node
order before aggregating. In Q16.16 mode every step is integer (the C core), so the
aggregate replays bit for bit on any machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from qora.errors import InvalidInput
from qora.protocol import UpdateChunk, decode_values, open_envelope
from qora.reputation import ReputationManager
from qora.service.config import build_aggregator
from qora.service.ledger import sha256


@dataclass(frozen=True)
class RoundInput:
    """One node's complete update: values (int32 Q16.16 or float32), samples, digest of its messages."""

    node: str
    values: np.ndarray
    samples: int
    digest: bytes


@dataclass
class RoundOutcome:
    aggregate: np.ndarray | None          # None when every update was excluded (round refused)
    model_out: np.ndarray
    excluded: dict[str, str]
    reputation_after: str
    changes: dict[str, list]              # node -> [before, after, action]
    saturated: bool = False
    selected: list | None = None
    trimmed_per_side: int | None = None
    refused: str | None = None
    accepted: list[str] = field(default_factory=list)


def assemble_input(node: str, messages: Iterable[bytes], mode: str) -> RoundInput:
    """A node's stored update messages (in chunk order) -> its values.

    The messages were authenticated and validated on arrival; this only decodes.
    """
    payloads, parts, samples = [], [], None
    for message in messages:
        payload, _tag = open_envelope(message)
        chunk = UpdateChunk.decode(payload)
        payloads.append(payload)
        parts.append(decode_values(chunk.data, chunk.encoding, chunk.scale))
        samples = chunk.samples
    if not parts:
        raise InvalidInput(f"node {node!r} has no stored update chunks")
    values = np.concatenate(parts)
    values = values.astype(np.int32 if mode == "q16_16" else np.float32, copy=False)
    return RoundInput(node, values, int(samples), input_digest(payloads))


def input_digest(payloads: Iterable[bytes]) -> bytes:
    """SHA-256 over a node's signed payloads, in chunk order, each length-prefixed."""
    h = bytearray()
    for p in payloads:
        h += len(p).to_bytes(4, "big") + p
    return sha256(bytes(h))


def reputation_from(state: str | None, ban_threshold: float) -> ReputationManager:
    if state is None:
        return ReputationManager(ban_threshold=ban_threshold)
    return ReputationManager.from_json(state)


def apply_model(model_in: np.ndarray, aggregate: np.ndarray, mode: str) -> np.ndarray:
    """Next model = model + aggregate (Q16.16: saturating int32 add; float32: float32 add)."""
    if mode == "q16_16":
        s = model_in.astype(np.int64) + aggregate.astype(np.int64)
        return np.clip(s, -2**31, 2**31 - 1).astype(np.int32)
    return (model_in.astype(np.float32) + aggregate.astype(np.float32)).astype(np.float32)


def compute_round(params: Mapping, model_in: np.ndarray, inputs: list[RoundInput],
                  reputation_before: str | None, penalties: Mapping[str, int]) -> RoundOutcome:
    """Run one round: penalties, gating, robust aggregation, reputation update, next model."""
    mode = params["mode"]
    rep = reputation_from(reputation_before, params["ban_threshold"])
    changes: dict[str, list] = {}
    for node in sorted(penalties):
        before = rep.get_score(node)
        for _ in range(int(penalties[node])):
            rep.penalize(node)
        changes[node] = [before, rep.get_score(node), "penalize"]
    inputs = sorted(inputs, key=lambda i: i.node)
    ids = [i.node for i in inputs]
    if not inputs:
        return RoundOutcome(None, model_in.copy(), {}, rep.to_json(), changes, refused="no updates")
    agg = build_aggregator(dict(params), rep)
    weights = np.array([i.samples for i in inputs], dtype=np.int64)
    try:
        if mode == "q16_16":
            aggregate = agg.aggregate_q16(np.stack([i.values for i in inputs]), client_ids=ids,
                                          weights=weights)
        else:
            aggregate = agg.aggregate([i.values for i in inputs], client_ids=ids, weights=weights)
    except InvalidInput as e:
        # fail closed: nothing (or too little) left to aggregate; the model stays
        excluded = {ids[i]: "banned" for i in range(len(ids)) if rep.is_banned(ids[i])}
        return RoundOutcome(None, model_in.copy(), excluded, rep.to_json(), changes, refused=str(e))
    report = agg.last_report
    for node, (before, after, action) in report.reputation.items():
        if node in changes:
            changes[node] = [changes[node][0], after, changes[node][2] + "+" + action]
        else:
            changes[node] = [before, after, action]
    excluded = {ids[i]: reason for i, reason in sorted(report.excluded.items())}
    return RoundOutcome(
        aggregate=aggregate, model_out=apply_model(model_in, aggregate, mode), excluded=excluded,
        reputation_after=rep.to_json(), changes=changes, saturated=bool(report.saturated),
        selected=report.selected, trimmed_per_side=report.trimmed_per_side,
        accepted=[ids[i] for i in report.accepted])


def tensor_bytes(values: np.ndarray, mode: str) -> bytes:
    """Little-endian bytes of a model / aggregate (what digests cover)."""
    dtype = "<i4" if mode == "q16_16" else "<f4"
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def tensor_from_bytes(data: bytes, mode: str) -> np.ndarray:
    dtype = "<i4" if mode == "q16_16" else "<f4"
    return np.frombuffer(data, dtype=dtype).astype(np.int32 if mode == "q16_16" else np.float32)


def reputation_scores(state: str) -> dict[str, float]:
    return {str(c["id"]): float(c["score"]) for c in json.loads(state).get("clients", [])}
