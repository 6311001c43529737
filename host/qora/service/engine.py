"""The round state machine, without the network: messages in, publications out.

    open round r (announce) -> accept / reject update chunks -> due (every active node
    complete, or deadline with quorum; no quorum: the deadline moves) -> close: compute,
    persist (one transaction), sign -> publish model r, ledger head, round r+1

The MQTT client (qora.service.mqtt) feeds it and sends what it returns; tests drive
it directly. Everything accepted is in the store before ``handle`` returns, or, inside
``with engine.intake():``, when that block ends (one commit for a burst of messages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from qora.errors import QoraError
from qora.protocol import (PENALIZED_REASONS, LedgerHead, ProtocolError, RoundAnnouncement,
                           check_update, decode_update, ledger_topic, make_model_chunks, model_digest,
                           model_topic, parse_topic, round_topic)
from qora.service.compute import (RoundInput, compute_round, input_digest,
                                  reputation_scores, tensor_bytes, tensor_from_bytes)
from qora.service.config import FleetConfig
from qora.service.ledger import GENESIS, RECORD_FORMAT, Signer, canonical, record_hash, sha256
from qora.service.store import Store

log = logging.getLogger("qora.service")


@dataclass(frozen=True)
class Publication:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass
class Verdict:
    """What happened to one incoming message."""

    accepted: bool
    reason: str | None = None       # reject reason (qora.protocol.REJECT_REASONS)
    node: str | None = None
    detail: str = ""
    completed: bool = False         # this chunk completed the node's update


@dataclass
class _Pending:
    """A node's update being collected in the open round."""

    count: int
    encoding: int
    samples: int
    chunks: dict[int, tuple[bytes, np.ndarray, bytes]] = field(default_factory=dict)  # idx -> (message, values, payload)

    @property
    def complete(self) -> bool:
        return len(self.chunks) == self.count


@dataclass
class ClosedRound:
    round: int
    record: dict
    publications: list[Publication]
    excluded: dict[str, str]
    accepted: list[str]
    scores: dict[str, float]


class RoundEngine:
    """One fleet's rounds. ``keys``: node id -> 32-byte HMAC key (the provisioned fleet)."""

    def __init__(self, store: Store, config: FleetConfig, keys: Mapping[str, bytes], signer: Signer,
                 initial_model: np.ndarray | None = None, clock: Callable[[], float] = time.time,
                 *, auto_open: bool = True) -> None:
        """``auto_open=False``: a closed round does not open the next one; the caller does, with
        :meth:`open_round` (the Flower fleet bridge opens one round per Flower round, on
        Flower's global model)."""
        self.auto_open = auto_open
        self.is_open = False
        self.store = store
        self.keys = dict(keys)
        self.signer = signer
        self.clock = clock
        stored = store.get_meta("config")
        if stored is not None:
            old = FleetConfig.from_json(stored.decode())
            if old.fleet != config.fleet:
                raise QoraError(f"{store.path} belongs to fleet {old.fleet!r}, not {config.fleet!r}")
            if old.mode != config.mode:
                raise QoraError(f"{store.path} holds a {old.mode} fleet; its models and ledger cannot "
                                f"switch to {config.mode} (start a new store)")
            last = store.last_round()
            if old.chunk_elements != config.chunk_elements and last is not None and last.state == "open" \
                    and any(True for _ in store.chunks(last.round)):
                raise QoraError(f"round {last.round} is open with updates chunked by {old.chunk_elements}; "
                                f"finish it before changing chunk_elements to {config.chunk_elements}")
            if old.aggregation_params() != config.aggregation_params() or old.layout != config.layout:
                log.warning("fleet settings changed from %s to %s; they apply from the open round on "
                            "(each ledger record carries its own)", old.to_json(), config.to_json())
        store.set_meta("config", config.to_json().encode())
        store.set_meta("public_key", signer.public_key)
        self.config = config
        if store.latest_model_version() is None:
            if initial_model is None:
                raise QoraError("a new fleet store needs an initial model")
            self._check_model(initial_model)
            values = np.asarray(initial_model)
            with store.transaction():
                store.put_model(0, None, model_digest(values, config.mode), tensor_bytes(values, config.mode))
        self.round: int = 0
        self.version_in: int = 0
        self.deadline: float = 0.0
        self.model: np.ndarray = np.empty(0)
        self.pending: dict[str, _Pending] = {}
        self.rejects: Counter = Counter()        # reason -> count, this round
        self.rejects_total: Counter = Counter()  # since start
        self.rounds_closed = 0
        self._in_intake = False
        self._ann: RoundAnnouncement | None = None
        self._active: tuple[int, list[str]] | None = None   # (round, active nodes)
        self._ann_key: tuple | None = None

    def _check_model(self, values: np.ndarray) -> None:
        want = np.int32 if self.config.mode == "q16_16" else np.float32
        if not isinstance(values, np.ndarray) or values.dtype != want or values.ndim != 1 or values.size == 0:
            raise QoraError(f"the initial model must be a non-empty 1-D {np.dtype(want).name} array "
                            f"in mode {self.config.mode}, got {getattr(values, 'dtype', type(values))}")

    # ---- start / resume --------------------------------------------------------------------
    def start(self) -> list[Publication]:
        """Resume the open round (with every accepted chunk) or open the next; returns the
        retained state to (re)publish: current model, ledger head, round announcement."""
        last = self.store.last_round()
        if (last is None or last.state != "open") and not self.auto_open:
            self.is_open = False
            self.round = (last.round if last else 0) + 1
            self.version_in = self.store.latest_model_version()
            self.deadline = float("inf")
            self.model = tensor_from_bytes(self.store.model(self.version_in)[1], self.config.mode)
            self.pending = {}
            self.rejects = Counter()
            return self.state_publications()
        if last is None or last.state != "open":
            version = self.store.latest_model_version()
            now = self.clock()
            with self.store.transaction():
                self.store.open_round((last.round if last else 0) + 1, version, now,
                                      now + self.config.round_seconds)
            last = self.store.last_round()
        self.is_open = True
        self.round, self.version_in, self.deadline = last.round, last.version_in, last.deadline
        digest, data = self.store.model(self.version_in)
        self.model = tensor_from_bytes(data, self.config.mode)
        self.pending = {}
        for node, idx, message in self.store.chunks(self.round):
            try:
                self._restore_chunk(node, idx, message)
            except ProtocolError as e:  # e.g. the node's key was withdrawn since
                log.warning("round %d: stored chunk %d of %s no longer validates (%s); left out",
                            self.round, idx, node, e)
        self.rejects = Counter()
        for (reason, _node), n in self.store.rejects(self.round).items():
            self.rejects[reason] += n
        log.info("round %d open (model v%d, %d stored chunks from %d nodes)", self.round, self.version_in,
                 sum(len(p.chunks) for p in self.pending.values()), len(self.pending))
        return self.state_publications()

    def _restore_chunk(self, node: str, idx: int, message: bytes) -> None:
        chunk = decode_update(message, fleet=self.config.fleet, topic_node=node, keys=self.keys,
                              max_bytes=1 << 30)
        values = check_update(chunk, self.announcement())
        p = self.pending.setdefault(node, _Pending(chunk.count, chunk.encoding, chunk.samples))
        p.chunks[idx] = (message, values, chunk.raw)

    def open_round(self, model: np.ndarray | None = None) -> list[Publication]:
        """Open the next round (``auto_open=False``), on ``model`` when given (stored as a new
        model version: the base the nodes train from). Returns the state to publish."""
        if self.is_open:
            raise QoraError(f"round {self.round} is open already")
        version = self.store.latest_model_version()
        now = self.clock()
        with self.store.transaction():
            if model is not None:
                self._check_model(model)
                if model.size != self.model.size:
                    raise QoraError(f"the fleet's model has {self.model.size} elements, got {model.size}")
                version += 1
                self.store.put_model(version, None, model_digest(model, self.config.mode),
                                     tensor_bytes(model, self.config.mode))
            self.store.open_round(self.round, version, now, now + self.config.round_seconds)
        self.is_open = True
        self.version_in, self.deadline = version, now + self.config.round_seconds
        self.model = tensor_from_bytes(self.store.model(version)[1], self.config.mode)
        self.pending = {}
        self.rejects = Counter()
        for (reason, _node), n in self.store.rejects(self.round).items():
            self.rejects[reason] += n
        return self.state_publications()

    def announcement(self) -> RoundAnnouncement:
        # built once per round state: every incoming chunk is checked against it, and its model
        # digest (SHA-256 of the whole model) is not free
        key = (self.round, self.version_in, self.deadline, id(self.model))
        if self._ann_key != key:
            self._ann, self._ann_key = self._build_announcement(), key
        return self._ann

    def _build_announcement(self) -> RoundAnnouncement:
        c = self.config
        n_chunks = math.ceil(self.model.size / c.chunk_elements)
        return RoundAnnouncement(
            fleet=c.fleet, round=self.round, version=self.version_in,
            digest=model_digest(self.model, c.mode), deadline=int(math.ceil(self.deadline)),
            method=c.method, mode=c.mode, chunk_elements=c.chunk_elements, quorum=c.quorum,
            elements=int(self.model.size), layout=tuple(c.layout), model_chunks=n_chunks)

    def state_publications(self) -> list[Publication]:
        c = self.config
        pubs = [Publication(model_topic(c.fleet, m.index), m.encode())
                for m in make_model_chunks(c.fleet, self.version_in, self.model, c.mode, c.chunk_elements)]
        head = self.store.ledger_head()
        if head is not None:
            pubs.append(Publication(ledger_topic(c.fleet), LedgerHead(
                fleet=c.fleet, round=head.round, hash=head.hash, signature=head.signature,
                public_key=self.signer.public_key).encode()))
        if self.is_open:  # idle (auto_open=False, between rounds): the last announcement stays
            pubs.append(Publication(round_topic(c.fleet), self.announcement().encode()))
        return pubs

    # ---- intake ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def intake(self):
        """Handle several messages in one SQLite transaction: what they add is committed together
        when the block ends (acknowledge them only after that). A commit per message costs more
        than decoding and authenticating it."""
        with self.store.transaction():
            self._in_intake = True
            try:
                yield self
            finally:
                self._in_intake = False

    def handle(self, topic: str, payload: bytes) -> Verdict:
        """Decode, authenticate, validate and store one update message. Never raises for bad input."""
        try:
            verdict = self._handle(topic, payload)
        except ProtocolError as e:
            node = self._claimed_node(topic)
            verdict = Verdict(False, e.reason, node, str(e))
        if not verdict.accepted:
            self._reject(verdict)
        return verdict

    def _claimed_node(self, topic: str) -> str:
        try:
            t = parse_topic(topic)
            return t.node or "?"
        except ProtocolError:
            return "?"

    def _handle(self, topic: str, payload: bytes) -> Verdict:
        t = parse_topic(topic)
        if t.kind != "update" or t.fleet != self.config.fleet:
            raise ProtocolError("wrong_fleet" if t.fleet != self.config.fleet else "malformed",
                                f"updates arrive on {self.config.fleet}/update/<node>, not {topic!r}")
        chunk = decode_update(payload, fleet=self.config.fleet, topic_node=t.node, keys=self.keys,
                              max_bytes=self.config.max_message_bytes)
        if not self.is_open:
            raise ProtocolError("wrong_round", f"no round is open (round {chunk.round} was sent)")
        values = check_update(chunk, self.announcement())
        node = chunk.node
        p = self.pending.get(node)
        if p is not None:
            if chunk.index in p.chunks:
                same = p.chunks[chunk.index][0] == payload
                return Verdict(False, "replay" if same else "conflict", node,
                               f"chunk {chunk.index} of round {chunk.round} was accepted already"
                               + ("" if same else " with other content"))
            if (chunk.count, chunk.encoding, chunk.samples) != (p.count, p.encoding, p.samples):
                return Verdict(False, "inconsistent", node,
                               f"chunk {chunk.index} says count={chunk.count}, encoding={chunk.encoding}, "
                               f"samples={chunk.samples}; earlier chunks said count={p.count}, "
                               f"encoding={p.encoding}, samples={p.samples}")
        now = self.clock()
        if self._in_intake:
            self.store.put_chunk(self.round, node, chunk.index, payload, now)
        else:
            with self.store.transaction():
                self.store.put_chunk(self.round, node, chunk.index, payload, now)
        if p is None:
            p = self.pending[node] = _Pending(chunk.count, chunk.encoding, chunk.samples)
        p.chunks[chunk.index] = (payload, values, chunk.raw)
        return Verdict(True, None, node, completed=p.complete)

    def _reject(self, v: Verdict) -> None:
        self.rejects[v.reason] += 1
        self.rejects_total[v.reason] += 1
        # counted under the claimed sender only when it is one of ours: otherwise anyone able to
        # publish could grow the store and every ledger record with made-up names
        self.store.add_reject(self.round, v.reason, v.node if v.node in self.keys else "?")
        log.info(json.dumps({"event": "reject", "fleet": self.config.fleet, "round": self.round,
                             "node": v.node, "reason": v.reason, "detail": v.detail}))

    # ---- closing ---------------------------------------------------------------------------
    def complete_nodes(self) -> list[str]:
        return sorted(n for n, p in self.pending.items() if p.complete)

    def active_nodes(self) -> list[str]:
        """Provisioned nodes that are not banned (those a round waits for).

        Read from the reputation stored after the previous round, which cannot change while
        this round is open: computed once per round, not on every turn of the service loop."""
        if self._active is None or self._active[0] != self.round:
            state = self.store.reputation(self.round - 1)
            banned = set()
            if state is not None:
                threshold = self.config.ban_threshold
                banned = {n for n, s in reputation_scores(state).items() if s < threshold}
            self._active = (self.round, sorted(n for n in self.keys if n not in banned))
        return self._active[1]

    def due(self) -> bool:
        if not self.is_open:
            return False
        done = set(self.complete_nodes())
        active = self.active_nodes()
        if active and all(n in done for n in active):
            return True
        return self.clock() >= self.deadline and len(done) >= self.config.quorum

    def extend_if_late(self) -> list[Publication]:
        """Past the deadline without quorum: move the deadline and re-announce."""
        if not self.is_open or self.clock() < self.deadline or len(self.complete_nodes()) >= self.config.quorum:
            return []
        self.deadline = self.clock() + self.config.round_seconds
        with self.store.transaction():
            self.store.set_deadline(self.round, self.deadline)
        log.info("round %d: %d of quorum %d complete at the deadline; extended to %.0f", self.round,
                 len(self.complete_nodes()), self.config.quorum, self.deadline)
        return [Publication(round_topic(self.config.fleet), self.announcement().encode())]

    def close(self) -> ClosedRound:
        """Aggregate the complete updates, persist everything at once, open the next round."""
        c = self.config
        r = self.round
        inputs = []
        for node in self.complete_nodes():
            p = self.pending[node]
            parts = [p.chunks[i] for i in range(p.count)]
            inputs.append(RoundInput(node, np.concatenate([v for _m, v, _p in parts]), p.samples,
                                     input_digest([pl for _m, _v, pl in parts])))
        rejects = self.store.rejects(r)
        penalties: Counter = Counter()
        for (reason, node), n in rejects.items():
            if reason in PENALIZED_REASONS and node in self.keys:
                penalties[node] += n
        before = self.store.reputation(r - 1)
        params = c.aggregation_params()
        out = compute_round(params, self.model, inputs, before, dict(penalties))
        # versions count models, not rounds: refused rounds and models brought in from
        # outside (open_round(model)) take none / one each
        version_out = self.store.latest_model_version() + 1 if out.aggregate is not None else self.version_in
        prev = self.store.ledger_head()
        record = {
            "format": RECORD_FORMAT, "fleet": c.fleet, "round": r,
            "prev": (prev.hash if prev else GENESIS).hex(),
            "params": params,
            "model_in": {"version": self.version_in, "digest": model_digest(self.model, c.mode).hex()},
            "inputs": [{"node": i.node, "samples": i.samples, "digest": i.digest.hex()} for i in
                       sorted(inputs, key=lambda i: i.node)],
            "incomplete": sorted(n for n, p in self.pending.items() if not p.complete),
            "excluded": out.excluded,
            "rejects": {f"{reason}/{node}": n for (reason, node), n in sorted(rejects.items())},
            "penalties": dict(sorted(penalties.items())),
            "reputation_before": sha256((before or "").encode()).hex(),
            "reputation_after": sha256(out.reputation_after.encode()).hex(),
            "reputation_changes": {k: out.changes[k] for k in sorted(out.changes)},
            "aggregate": None if out.aggregate is None else sha256(tensor_bytes(out.aggregate, c.mode)).hex(),
            "refused": out.refused,
            "saturated": out.saturated,
            "model_out": {"version": version_out, "digest": model_digest(out.model_out, c.mode).hex()},
            "closed_at": round(self.clock(), 3),
        }
        body = canonical(record)
        digest = record_hash(body)
        signature = self.signer.sign(body)
        now = self.clock()
        with self.store.transaction():
            if out.aggregate is not None:
                self.store.put_model(version_out, r, model_digest(out.model_out, c.mode),
                                     tensor_bytes(out.model_out, c.mode))
            self.store.put_reputation(r, out.reputation_after)
            self.store.put_ledger(r, body, digest, signature)
            self.store.set_round_state(r, "closed", now)
            if self.auto_open:
                self.store.open_round(r + 1, version_out, now, now + c.round_seconds)
        log.info(json.dumps({"event": "round_closed", "fleet": c.fleet, "round": r,
                             "inputs": len(inputs), "excluded": out.excluded, "refused": out.refused,
                             "hash": digest.hex()}))
        self.rounds_closed += 1
        self.round, self.version_in, self.deadline = r + 1, version_out, now + c.round_seconds
        self.is_open = self.auto_open
        if not self.auto_open:
            self.deadline = float("inf")
        self.model = out.model_out
        self.pending = {}
        self.rejects = Counter()
        return ClosedRound(r, record, self.state_publications(), out.excluded, out.accepted,
                           reputation_scores(out.reputation_after))

    def unpublished(self) -> list[int]:
        """Closed rounds whose results were not confirmed sent (a crash came in between)."""
        return [r.round for r in self.store.rounds() if r.state == "closed"]

    def mark_published(self, round_: int) -> None:
        with self.store.transaction():
            self.store.set_round_state(round_, "published")
