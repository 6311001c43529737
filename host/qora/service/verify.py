"""``qora verify``: re-check a fleet store's ledger, and replay its rounds.

For every record: its hash, its link to the previous record, its Ed25519 signature
(with a pinned public key when given — the key in the store could have been swapped
with the records), the stored inputs against the recorded digests (and their HMAC tags
when the fleet's keys are given), the models and reputation snapshots against their
digests, the rejects against the record; then the round is recomputed from the stored
updates and the recorded reputation. Q16.16 rounds must match bit for bit (they do on
any machine); float32 rounds are recomputed the same way, which holds on the same build.
Every finding names the round and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from qora.errors import QoraError
from qora.protocol import ProtocolError, decode_update, model_digest
from qora.service.compute import (assemble_input, compute_round, tensor_bytes, tensor_from_bytes)
from qora.service.ledger import GENESIS, RECORD_FORMAT, record_hash, sha256, signature_ok
from qora.service.store import Store


@dataclass(frozen=True)
class Finding:
    round: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"round {self.round}: {self.field}: {self.problem}"


@dataclass
class VerifyReport:
    rounds: int = 0
    replayed_q16: int = 0
    replayed_float: int = 0
    findings: list[Finding] = field(default_factory=list)
    head: bytes = GENESIS
    public_key: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.findings and self.rounds > 0


def verify_store(path: str | Path, *, public_key: bytes | None = None,
                 keys: Mapping[str, bytes] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check every ledger record of the store at ``path``; never modifies it."""
    path = Path(path)
    if not path.exists():
        raise QoraError(f"no store at {path}")
    report = VerifyReport()
    store = Store(path, readonly=True)
    try:
        stored_key = store.get_meta("public_key") or b""
        key = public_key or stored_key
        report.public_key = key
        if public_key is not None and stored_key and stored_key != public_key:
            report.findings.append(Finding(0, "meta.public_key",
                                           "the store names another public key than the pinned one"))
        rows = store.ledger()
        prev_hash = GENESIS
        for n, row in enumerate(rows, 1):
            _check_row(store, row, prev_hash, key, keys, report)
            prev_hash = row.hash
            report.rounds += 1
            if progress:
                progress(n, len(rows))
        report.head = prev_hash
    finally:
        store.close()
    return report


def _check_row(store: Store, row, prev_hash: bytes, key: bytes, keys, report: VerifyReport) -> None:
    r = row.round
    find = lambda f, p: report.findings.append(Finding(r, f, p))  # noqa: E731
    if record_hash(row.record) != row.hash:
        find("hash", "the record's SHA-256 differs from the stored hash (record or hash altered)")
    if not key or not signature_ok(key, row.record, row.signature):
        find("signature", "the Ed25519 signature does not verify with the aggregator's public key")
    try:
        rec = json.loads(row.record)
    except ValueError:
        find("record", "not JSON")
        return
    if rec.get("format") != RECORD_FORMAT:
        find("format", f"expected {RECORD_FORMAT}, found {rec.get('format')!r}")
        return
    if rec.get("round") != r:
        find("round", f"the record says round {rec.get('round')}, stored as round {r}")
    if rec.get("prev") != prev_hash.hex():
        find("prev", "does not name the previous record's hash (a record was removed, inserted or altered)")
    params = rec["params"]
    mode = params["mode"]
    # inputs: stored messages against the recorded digests
    by_node: dict[str, list[bytes]] = {}
    for node, _idx, message in store.chunks(r):
        by_node.setdefault(node, []).append(message)
    inputs = []
    for item in rec["inputs"]:
        node = item["node"]
        messages = by_node.get(node, [])
        try:
            inp = assemble_input(node, messages, mode)
        except (ProtocolError, QoraError) as e:
            find(f"inputs[{node}]", f"stored update does not decode: {e}")
            continue
        if inp.digest.hex() != item["digest"]:
            find(f"inputs[{node}].digest", "the stored update messages differ from the recorded digest")
        if inp.samples != item["samples"]:
            find(f"inputs[{node}].samples", f"recorded {item['samples']}, stored {inp.samples}")
        if keys is not None:
            for message in messages:
                try:
                    decode_update(message, fleet=rec["fleet"], topic_node=node, keys=keys, max_bytes=1 << 30)
                except ProtocolError as e:
                    find(f"inputs[{node}].tag", f"a stored message fails authentication: {e.reason}")
                    break
        inputs.append(inp)
    # rejects and reputation snapshots
    rejects = {f"{reason}/{node}": c for (reason, node), c in sorted(store.rejects(r).items())}
    if rejects != rec["rejects"]:
        find("rejects", "the stored reject counts differ from the record")
    before = store.reputation(r - 1)
    if sha256((before or "").encode()).hex() != rec["reputation_before"]:
        find("reputation_before", "the stored reputation before the round differs from the record")
    after = store.reputation(r)
    if after is None or sha256(after.encode()).hex() != rec["reputation_after"]:
        find("reputation_after", "the stored reputation after the round differs from the record")
    # models
    model_in = _model(store, rec["model_in"], mode, "model_in", find)
    model_out_ok = _model(store, rec["model_out"], mode, "model_out", find)
    if model_in is None:
        return
    # replay
    try:
        out = compute_round(params, model_in, inputs, before, rec["penalties"])
    except QoraError as e:
        find("replay", f"the round does not recompute: {e}")
        return
    agg_digest = None if out.aggregate is None else sha256(tensor_bytes(out.aggregate, mode)).hex()
    if agg_digest != rec["aggregate"]:
        find("aggregate", "recomputing from the stored updates gives another aggregate")
    if model_digest(out.model_out, mode).hex() != rec["model_out"]["digest"]:
        find("model_out", "model_in + recomputed aggregate differs from the published model")
    if out.excluded != rec["excluded"]:
        find("excluded", f"recomputed exclusions {out.excluded} differ from the record {rec['excluded']}")
    if sha256(out.reputation_after.encode()).hex() != rec["reputation_after"]:
        find("reputation_after", "recomputed reputation differs from the record")
    if mode == "q16_16":
        report.replayed_q16 += 1
    else:
        report.replayed_float += 1
    del model_out_ok


def _model(store: Store, ref: dict, mode: str, name: str, find):
    stored = store.model(ref["version"])
    if stored is None:
        find(f"{name}.version", f"model version {ref['version']} is not in the store")
        return None
    digest, data = stored
    values = tensor_from_bytes(data, mode)
    if model_digest(values, mode).hex() != ref["digest"]:
        find(f"{name}.digest", f"stored model version {ref['version']} differs from the recorded digest")
    if digest.hex() != ref["digest"]:
        find(f"{name}.stored_digest", f"the digest stored beside model version {ref['version']} was altered")
    return values
