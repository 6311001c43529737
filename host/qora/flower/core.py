"""One Flower training round through :class:`qora.ByzantineAggregator`, shared by both adapters.

The adapters (:mod:`qora.flower.strategy` for the Message API, :mod:`qora.flower.legacy` for
``aggregate_fit``) only decode Flower's containers into ``(node_id, arrays, num_examples)``
and encode the result back; validation, aggregation, reputation and metrics live here, and
this module does not import Flower.

One round (:meth:`QoraAggregation.aggregate`)
--------------------------------------------
1. **Well-formed.** ``num_examples`` is a finite number >= 0 and ``arrays`` a non-empty list
   of numpy arrays (legacy API) or a mapping name -> array (an ``ArrayRecord``), each of an
   integer or floating dtype; otherwise the reply is ``"malformed"``. An adapter that cannot
   decode a reply at all passes :class:`Rejected` instead of arrays.
2. **One layout.** The round's model layout (array names or positions, shapes, dtypes) is the
   one most well-formed replies share; the global model the server sent (``reference``)
   breaks ties, then the earliest reply. Replies with another layout are ``"mismatch"``.
3. **Finite.** Every value must be finite once in float32, the precision the aggregation core
   computes in: NaN, +-Inf and values beyond float32's range are ``"non_finite"``.
4. **Aggregate.** Each valid reply becomes one float32 vector (all its arrays, in layout
   order: Krum compares whole models, not layer by layer) and ByzantineAggregator runs with
   the node ids as client ids: reputation gating (``"banned"``, score strictly below
   ``reputation_threshold``), ``norm_bound`` (``"norm_bound"``), then the method; Krum and
   Multi-Krum leave out the models they do not pick (``"not_selected"``). The trimmed mean
   and the median exclude nobody: they cut per coordinate, and the deviation rule then
   rewards or penalises each node by its distance from the result.
5. **Penalise bad replies.** Malformed, mismatched and non-finite replies cost the node one
   penalty step (0.08), as an outlier does: a node that keeps sending them is banned.
   ``"failed"`` replies (Flower error replies: a crash, a timeout) are not penalised.
6. **Decay and persist.** With ``reputation_decay_rate > 0`` every known score moves that
   fraction of the way back to 0.5; then the reputation is written to ``reputation_path``
   (temporary file + ``os.replace``: a crash leaves the old file or the new one, never half).

When the aggregator refuses the round (every valid reply excluded, fewer replies than the
method needs, all weights zero under fedavg) there is no aggregate: ``arrays`` is None and
Flower keeps the current global model; the valid replies that were not banned are reported
as ``"refused"``. Steps 5 and 6 still happen.

Metrics (Flower ``MetricRecord`` values must be ``int``, ``float`` or lists of one of them)
----------------------------------------------------------------------------------------
=============================  =====  =====================================================
key                            type   value
=============================  =====  =====================================================
``qora.received``              int    replies in the round (failed and malformed included)
``qora.aggregated``            int    models that entered the aggregate (Krum: the picked)
``qora.excluded``              int    replies left out, for any reason
``qora.refused``               int    1 when there is no aggregate this round, else 0
``qora.trimmed-per-side``      int    trimmed mean: k = ceil(trim_fraction * n) per side
``qora.saturated``             int    1 when a Q16.16 value was clamped, else 0
``qora.excluded.<node>``       int    reason code (below), one key per excluded node
``qora.reputation.<node>``     float  score after the round, every node of the round
``qora.action.<node>``         int    +1 rewarded, 0 neutral, -1 penalised this round
``qora.deviation.<node>``      float  L2 distance from the aggregate (nodes that reached
                                      the method)
=============================  =====  =====================================================

Reason codes (:data:`REASON_CODES`): 1 banned, 2 not_selected, 3 norm_bound, 4 non_finite,
5 mismatch, 6 malformed, 7 failed, 8 refused, 99 another reason the aggregator gave.
``<node>`` is the Flower node id in decimal.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from qora.aggregator import ByzantineAggregator
from qora.errors import InvalidInput, InvalidType
from qora.methods import AggregationMethod, parse_method
from qora.report import RoundReport
from qora.reputation import ReputationManager

__all__ = ["ACTIONS", "OTHER_REASON", "PENALIZED_REASONS", "REASON_CODES", "QoraAggregation",
           "QoraRound", "Rejected"]

#: Why a reply was left out, as the integer written to ``qora.excluded.<node>``.
REASON_CODES: dict[str, int] = {
    "banned": 1,        # reputation strictly below reputation_threshold (gated before aggregating)
    "not_selected": 2,  # Krum / Multi-Krum did not pick this model
    "norm_bound": 3,    # L2 norm of the whole model above norm_bound
    "non_finite": 4,    # NaN, +-Inf or beyond float32's range (penalised)
    "mismatch": 5,      # array names, count, shapes or dtypes differ from the round's (penalised)
    "malformed": 6,     # no arrays, undecodable, unsupported dtype, bad num-examples (penalised)
    "failed": 7,        # Flower error reply (node crash, timeout): not penalised
    "refused": 8,       # valid, but the aggregator refused the whole round (see the log)
}
#: Code of a reason this version does not know (a newer aggregator's).
OTHER_REASON = 99
#: Reasons that cost the node one penalty step.
PENALIZED_REASONS = frozenset({"non_finite", "mismatch", "malformed"})
#: ``qora.action.<node>`` values.
ACTIONS: dict[str, int] = {"reward": 1, "neutral": 0, "penalize": -1}

ClientKey = Union[int, str]
Arrays = Union[Sequence[np.ndarray], Mapping[str, np.ndarray]]
Layout = tuple[tuple[Any, tuple[int, ...], str], ...]


@dataclass(frozen=True)
class Rejected:
    """Put in place of the arrays of a reply the adapter could not use.

    reason: a key of :data:`REASON_CODES` (``"malformed"`` and ``"failed"`` are the ones
    adapters use); detail: what was wrong, for the log.
    """

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class QoraRound:
    """What one round did.

    arrays: the aggregate in the layout of the replies (a list for list input, a dict in the
        layout's name order for mapping input), each array in the layout's dtype; None when
        the round was refused.
    metrics: the Flower-ready metrics of the module docstring (str -> int | float).
    aggregated: node ids whose models entered the aggregate, in reply order.
    excluded: {node id: reason}; details: {node id: human-readable detail}.
    reputation: {node id: score after the round} for every node of the round.
    actions: {node id: "reward" | "neutral" | "penalize"} for the nodes whose score moved or
        was assessed this round.
    report: the aggregator's :class:`qora.RoundReport` (indices are positions among the
        valid replies; None when refused).
    refused: why there is no aggregate, or None.
    """

    arrays: list[np.ndarray] | dict[str, np.ndarray] | None
    metrics: dict[str, int | float]
    aggregated: list[ClientKey]
    excluded: dict[ClientKey, str]
    details: dict[ClientKey, str]
    reputation: dict[ClientKey, float]
    actions: dict[ClientKey, str] = field(default_factory=dict)
    report: RoundReport | None = None
    refused: str | None = None

    def describe(self) -> list[str]:
        """For logs: one line for the round, one per excluded node, one per node that was
        aggregated but penalised (an outlier on its way to a ban)."""
        head = (f"{self.metrics['qora.received']} replies, {len(self.aggregated)} aggregated, "
                f"{len(self.excluded)} excluded")
        if self.refused is not None:
            head += f"; no aggregate: {self.refused}"
        lines = [head]
        for key, reason in self.excluded.items():
            detail = self.details.get(key, "")
            lines.append(f"node {key}: {reason} (code {reason_code(reason)}), reputation "
                         f"{self.reputation.get(key, float('nan')):.2f}" + (f": {detail}" if detail else ""))
        for key, action in self.actions.items():
            if action == "penalize" and key not in self.excluded:
                dev = self.metrics.get(f"qora.deviation.{key}")
                lines.append(f"node {key}: penalised, reputation {self.reputation[key]:.2f}"
                             + (f" (distance from the aggregate {dev:.3g})" if dev is not None else ""))
        return lines


def reason_code(reason: str) -> int:
    """The integer written to ``qora.excluded.<node>`` for a reason."""
    return REASON_CODES.get(reason, OTHER_REASON)


# ---- checks ----------------------------------------------------------------------------------


def _key(key: Any) -> ClientKey:
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, numbers.Integral)):
        raise InvalidType(f"node ids must be int (Flower node id) or str, got {type(key).__name__} {key!r}")
    return key if isinstance(key, str) else int(key)


def _num_examples(value: Any) -> float | None:
    """A finite number >= 0 as float, or None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    try:
        x = float(value)
    except (OverflowError, ValueError):
        return None
    return x if math.isfinite(x) and x >= 0 else None


def _describe_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return f"{v!r} (beyond float32's range)"


def _layout(arrays: Any) -> tuple[Layout | None, list[np.ndarray], str]:
    """(layout, arrays in order, problem); layout is None when the input is malformed."""
    if isinstance(arrays, Mapping):
        names: list[Any] = list(arrays.keys())
        items = list(arrays.values())
        if not all(isinstance(n, str) for n in names):
            return None, [], "array names must be str"
    elif isinstance(arrays, (list, tuple)):
        items = list(arrays)
        names = list(range(len(items)))
    else:
        return None, [], f"arrays must be a list or a mapping of numpy arrays, got {type(arrays).__name__}"
    if not items:
        return None, [], "no arrays"
    out = []
    for name, a in zip(names, items):
        if not isinstance(a, np.ndarray):
            return None, [], f"array {name!r} is a {type(a).__name__}, not a numpy array"
        if a.dtype.kind not in "fiu":
            return None, [], f"array {name!r} has dtype {a.dtype}; only integer and floating arrays are aggregated"
        out.append((name, tuple(int(s) for s in a.shape), a.dtype.name))
    return tuple(out), items, ""


def _layout_text(layout: Layout) -> str:
    return ", ".join(f"{name!r}: {shape} {dtype}" for name, shape, dtype in layout)


def _first_non_finite(items: list[np.ndarray], flat: np.ndarray, layout: Layout) -> str:
    pos = int(np.argmin(np.isfinite(flat)))
    offset = 0
    for (name, shape, _), a in zip(layout, items):
        if pos < offset + a.size:
            idx = np.unravel_index(pos - offset, shape) if shape else ()
            at = ", ".join(str(int(i)) for i in idx)
            value = float(np.asarray(a).reshape(-1)[pos - offset])
            return f"{_describe_value(value)} in array {name!r} at [{at}]"
        offset += a.size
    return "a non-finite value"  # not reached: pos lies inside the arrays


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# ---- the shared implementation ----------------------------------------------------------------


class QoraAggregation:
    """Robust aggregation of Flower replies with reputation keyed by node id.

    Parameters (Qora-FL's strategy parameters, plus ``mode`` and ``reputation_path``)
    ----------
    aggregation_method: a :class:`qora.ByzantineAggregator` method: ``"trimmed_mean"``,
        ``"median"``, ``"fedavg"`` (weighted by the replies' example counts), ``"krum"``,
        ``"krum:F"``, ``"multi_krum"``, ``"multi_krum:F"``, ``"multi_krum:F:M"``,
        ``"centered_clipping"``.
    trim_fraction: beta of the trimmed mean: k = ceil(beta * n) values cut per side.
    reputation_threshold: nodes whose score is strictly below it are excluded ("banned").
    reputation_decay_rate: after each round every score moves this fraction of the way back
        to 0.5 (0.0: never), in [0, 1].
    norm_bound: exclude models whose L2 norm exceeds it (None: no bound).
    mode: ``"float32"`` or ``"q16_16"`` (the C core's fixed point: identical bytes on every
        machine).
    reputation_path: JSON file (``qora-reputation`` format) read at start if it exists and
        rewritten after every round, so reputation survives a server restart.
    """

    def __init__(self, aggregation_method: str = "trimmed_mean", trim_fraction: float = 0.2,
                 reputation_threshold: float = 0.2, reputation_decay_rate: float = 0.0,
                 norm_bound: float | None = None, mode: str = "float32",
                 reputation_path: str | os.PathLike[str] | None = None) -> None:
        if isinstance(reputation_decay_rate, bool) or not isinstance(reputation_decay_rate, numbers.Real) \
                or not 0.0 <= float(reputation_decay_rate) <= 1.0:
            raise InvalidInput(f"reputation_decay_rate must be a number in [0, 1], got {reputation_decay_rate!r}")
        self._decay = float(reputation_decay_rate)
        self._path = None if reputation_path is None else Path(reputation_path)
        reputation = self._load(reputation_threshold)
        self._agg = ByzantineAggregator(aggregation_method, trim_fraction, reputation_threshold,
                                        norm_bound=norm_bound, mode=mode, reputation=reputation)
        self._weighted = parse_method(aggregation_method).method is AggregationMethod.FEDAVG
        self._config = {"aggregation_method": aggregation_method, "trim_fraction": trim_fraction,
                        "reputation_threshold": reputation_threshold,
                        "reputation_decay_rate": reputation_decay_rate, "norm_bound": norm_bound,
                        "mode": mode, "reputation_path": None if self._path is None else str(self._path)}
        self._last: QoraRound | None = None

    def _load(self, threshold: float) -> ReputationManager:
        if self._path is None or not self._path.exists():
            return ReputationManager(ban_threshold=threshold)
        try:
            text = self._path.read_text(encoding="utf-8")
            return ReputationManager.from_json(text, ban_threshold=threshold)
        except (OSError, InvalidInput, InvalidType) as exc:
            raise InvalidInput(f"cannot load the reputation file {self._path}: {exc}. Likely cause: "
                               "it was not written by qora (format qora-reputation); move it away "
                               "to start with fresh scores") from exc

    # ---- what it is ----------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (for logs and summaries)."""
        return dict(self._config)

    @property
    def aggregator(self) -> ByzantineAggregator:
        return self._agg

    @property
    def reputation(self) -> ReputationManager:
        return self._agg.reputation

    @property
    def reputation_path(self) -> Path | None:
        return self._path

    @property
    def last_round(self) -> QoraRound | None:
        return self._last

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"QoraAggregation({args})"

    def save(self) -> None:
        """Write the reputation to ``reputation_path`` now (no-op without a path)."""
        if self._path is not None:
            _atomic_write(self._path, self.reputation.to_json())

    # ---- one round -----------------------------------------------------------------------------
    def aggregate(self, updates: Iterable[tuple[ClientKey, Arrays | Rejected, Any]], *,
                  reference: Arrays | None = None) -> QoraRound:
        """Run one round (see the module docstring).

        updates: ``(node_id, arrays, num_examples)`` per reply; ``arrays`` is a list of numpy
            arrays, a mapping name -> array, or :class:`Rejected`. Node ids are unique ints
            (Flower node ids) or strs.
        reference: the global model the server sent, in the same form; only its layout is
            used, to break ties between layouts.
        """
        rows = list(updates)
        keys: list[ClientKey] = []
        for row in rows:
            if not isinstance(row, tuple) or len(row) != 3:
                raise InvalidType(f"each update must be a (node_id, arrays, num_examples) tuple, got {row!r:.80}")
            keys.append(_key(row[0]))
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise InvalidInput(f"node id {dup!r} appears twice in one round")
        ref_layout = None
        if reference is not None:
            ref_layout, _, problem = _layout(reference)
            if ref_layout is None:
                raise InvalidType(f"the global model cannot be aggregated: {problem}")

        excluded: dict[ClientKey, str] = {}
        details: dict[ClientKey, str] = {}
        candidates: list[tuple[ClientKey, Layout, list[np.ndarray], float]] = []
        for key, (_, arrays, num) in zip(keys, rows):
            if isinstance(arrays, Rejected):
                excluded[key], details[key] = arrays.reason, arrays.detail
                continue
            weight = _num_examples(num)
            if weight is None:
                excluded[key], details[key] = "malformed", f"num-examples must be a finite number >= 0, got {num!r}"
                continue
            layout, items, problem = _layout(arrays)
            if layout is None:
                excluded[key], details[key] = "malformed", problem
                continue
            candidates.append((key, layout, items, weight))

        layout = self._round_layout([c[1] for c in candidates], ref_layout)
        valid: list[tuple[ClientKey, np.ndarray, float]] = []
        for key, lay, items, weight in candidates:
            if lay != layout:
                excluded[key] = "mismatch"
                details[key] = f"layout {_layout_text(lay)}; the round's is {_layout_text(layout)}"
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                flat = np.concatenate([np.asarray(a, dtype=np.float32).reshape(-1) for a in items])
            if not np.isfinite(flat).all():
                excluded[key], details[key] = "non_finite", _first_non_finite(items, flat, layout)
                continue
            valid.append((key, flat, weight))

        report, vector, refused = None, None, None
        actions: dict[ClientKey, str] = {}
        aggregated: list[ClientKey] = []
        deviation: dict[ClientKey, float] = {}
        vkeys = [v[0] for v in valid]
        if not valid:
            refused = "no valid reply"
        elif valid[0][1].size == 0:
            refused = "the model has no values"
        else:
            matrix = np.stack([v[1] for v in valid])
            weights = [v[2] for v in valid] if self._weighted else None
            try:
                vector = self._agg.aggregate(matrix, client_ids=vkeys, weights=weights)
            except InvalidInput as exc:  # a refusal: too few for the method, all excluded, ...
                refused = str(exc)
        if refused is not None:
            for key in vkeys:
                banned = self.reputation.is_banned(key)
                excluded[key] = "banned" if banned else "refused"
                details[key] = "" if banned else refused
        else:  # the aggregate exists: map the aggregator's report back to node ids
            report = self._agg.last_report
            for i, reason in report.excluded.items():
                excluded[vkeys[i]] = reason
            picked = set(report.accepted)
            if report.selected is not None:
                sel = report.selected
                flat_sel = [j for s in sel for j in s] if sel and isinstance(sel[0], list) else sel
                picked = {report.accepted[j] for j in flat_sel}
                for i in report.accepted:
                    if i not in picked:
                        excluded[vkeys[i]] = "not_selected"
            aggregated = [vkeys[i] for i in sorted(picked)]
            for cid, (_, _, action) in report.reputation.items():
                actions[cid] = action
            deviation = {vkeys[i]: d for i, d in report.deviation.items()}

        for key, reason in excluded.items():
            if reason in PENALIZED_REASONS:
                self.reputation.penalize(key)
                actions[key] = "penalize"
        if self._decay > 0.0:
            self._agg.decay_reputations(self._decay)
        scores = {key: self.reputation.get_score(key) for key in keys}
        self.save()

        arrays_out = None if vector is None else self._unflatten(vector, layout)
        excluded = {k: excluded[k] for k in keys if k in excluded}  # reply order
        result = QoraRound(
            arrays=arrays_out,
            metrics=self._metrics(keys, aggregated, excluded, scores, actions, deviation, report, refused),
            aggregated=[k for k in keys if k in set(aggregated)],
            excluded=excluded, details={k: v for k, v in details.items() if k in excluded},
            reputation=scores, actions=actions, report=report, refused=refused)
        self._last = result
        return result

    # ---- internals -------------------------------------------------------------------------
    @staticmethod
    def _round_layout(layouts: list[Layout], reference: Layout | None) -> Layout | None:
        """The layout most replies share; the reference, then the earliest, breaks ties."""
        if not layouts:
            return reference
        counts = Counter(layouts)
        best = max(counts.values())
        tied = [lay for lay in dict.fromkeys(layouts) if counts[lay] == best]  # first-seen order
        return reference if reference in tied else tied[0]

    @staticmethod
    def _unflatten(vector: np.ndarray, layout: Layout) -> list[np.ndarray] | dict[str, np.ndarray]:
        out: list[np.ndarray] = []
        offset = 0
        for _, shape, dtype in layout:
            size = int(np.prod(shape, dtype=np.int64))
            part = vector[offset:offset + size].reshape(shape)
            offset += size
            dt = np.dtype(dtype)
            if dt.kind in "iu":  # integer arrays (counters, ...) round to nearest and saturate
                info = np.iinfo(dt)
                part = np.clip(np.rint(part.astype(np.float64)), info.min, info.max)
            out.append(part.astype(dt))
        if layout and isinstance(layout[0][0], str):
            return {name: a for (name, _, _), a in zip(layout, out)}
        return out

    def _metrics(self, keys: list[ClientKey], aggregated: list[ClientKey],
                 excluded: dict[ClientKey, str], scores: dict[ClientKey, float],
                 actions: dict[ClientKey, str], deviation: dict[ClientKey, float],
                 report: RoundReport | None, refused: str | None) -> dict[str, int | float]:
        m: dict[str, int | float] = {
            "qora.received": len(keys),
            "qora.aggregated": len(aggregated),
            "qora.excluded": len(excluded),
            "qora.refused": int(refused is not None),
        }
        if report is not None and report.trimmed_per_side is not None:
            m["qora.trimmed-per-side"] = int(report.trimmed_per_side)
        m["qora.saturated"] = int(report is not None and report.saturated)
        for key, reason in excluded.items():
            m[f"qora.excluded.{key}"] = reason_code(reason)
        for key in keys:
            m[f"qora.reputation.{key}"] = float(scores[key])
        for key in keys:
            if key in actions:
                m[f"qora.action.{key}"] = ACTIONS.get(actions[key], 0)
        for key in keys:
            if key in deviation:
                m[f"qora.deviation.{key}"] = float(deviation[key])
        return m
