"""ByzantineAggregator: robust aggregation with reputation that steers it.

A drop-in for Qora-FL's Python class (same constructor, ``aggregate``,
reputation methods and JSON persistence), on the exact C core. One round::

    updates -> validate -> gate (banned ids) -> norm bound -> MI filter (optional)
            -> pre-aggregation (NNM / ARC / clipping / bucketing, optional)
            -> method (fedavg, trimmed mean, median, Krum, Multi-Krum, centered clipping;
               reputation-weighted trimmed mean / median / fedavg with weighting="reputation")
            -> deviations -> reputation update -> RoundReport

Deliberate differences from Qora-FL 0.4: Krum is exact (direct subtraction, ties to the
lowest index: updates 0,1,2,3,4 give 1.0, not 3.0); the trim count is the exact
ceil(trim_fraction * n) (n = 100, 0.3 trims 30, not 31); reputation changes with a
scale-free rule instead of fixed L2 cut-offs and is used for weighting when asked;
bad input raises instead of being clamped.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

from qora import native, robust
from qora.errors import InvalidInput, InvalidType
from qora.methods import AggregationMethod, exact_fraction, parse_method, trim_count
from qora.preaggregation import Step, parse_step
from qora.report import RoundReport
from qora.reputation import ReputationManager
from qora.updates import UpdateBatch, to_batch

FORMAT = "qora-aggregator"
VERSION = 1
_ADAPTIVE_Z = 3.5  # an update further than this many robust sigmas from the median is an outlier
_WEIGHTABLE = (AggregationMethod.FEDAVG, AggregationMethod.TRIMMED_MEAN, AggregationMethod.MEDIAN)


def _finite_positive(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidType(f"{what} must be a number or None, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{what} must be finite and > 0, got {value}")
    return float(value)


class ByzantineAggregator:
    """Robust aggregation of client updates.

    Parameters
    ----------
    method: see :mod:`qora.methods` (``"trimmed_mean"``, ``"krum:2"``, ``AggregationMethod.MEDIAN`` ...).
    trim_fraction: beta of the trimmed mean (k = ceil(beta * n) per side); also the
        Byzantine share assumed by NNM / ARC and centered clipping's defaults.
    ban_threshold: clients whose reputation is strictly below it are excluded.
        0.0 (the default) bans nobody.
    adaptive_trim: choose k each round from the share of outlying updates, never
        below ceil(beta * n) and never so high that nothing is kept.
    norm_bound: exclude updates whose L2 norm (float64) exceeds it (inclusive).
    mode: ``"float32"`` or ``"q16_16"`` (bit-identical on every target).
    weighting: None, or ``"reputation"``: weight clients by min(score^3, 0.8) with a
        newcomer budget (see :class:`qora.ReputationManager`) in fedavg, trimmed mean
        and median.
    preaggregation: steps run before the method (``"nnm"``, ``"arc"``, ``"clip:TAU"``,
        ``"bucketing:S"`` or objects of :mod:`qora.preaggregation`).
    mi_filter: a :class:`qora.filtering.MutualInformationFilter`, applied when
        ``aggregate`` receives ``global_params``.
    centered_clipping_tau / centered_clipping_iterations: for method
        ``"centered_clipping"`` (tau None = the median distance to the centre).
    reputation: a ReputationManager to use (default: a new one with ban_threshold).
    threads: threads for the native core (None = automatic).
    """

    def __init__(self, method: str | AggregationMethod = "trimmed_mean", trim_fraction: float = 0.2,
                 ban_threshold: float = 0.0, adaptive_trim: bool = False,
                 norm_bound: float | None = None, mode: str = "float32", *,
                 weighting: str | None = None, preaggregation: Sequence[object] = (),
                 mi_filter: object | None = None, centered_clipping_tau: float | None = None,
                 centered_clipping_iterations: int = 3,
                 reputation: ReputationManager | None = None, threads: int | None = None):
        self._spec = parse_method(method)
        beta = exact_fraction(trim_fraction, "trim_fraction")
        if not 0 <= beta <= 0.5:
            raise InvalidInput(f"trim_fraction must be in [0, 0.5], got {trim_fraction}")
        self._trim_fraction = float(trim_fraction)
        if mode not in native.MODES:
            raise InvalidInput(f"mode must be one of {native.MODES}, got {mode!r}")
        self._mode = mode
        self._norm_bound = _finite_positive(norm_bound, "norm_bound")
        self._adaptive_trim = bool(adaptive_trim)
        if weighting not in (None, "reputation"):
            raise InvalidInput(f"weighting must be None or 'reputation', got {weighting!r}")
        if weighting and self._spec.method not in _WEIGHTABLE:
            raise InvalidInput(f"weighting='reputation' works with fedavg, trimmed_mean and median, "
                               f"not {self._spec.method.value}")
        self._weighting = weighting
        self._steps: tuple[Step, ...] = tuple(parse_step(s) for s in preaggregation)
        self._mi_filter = mi_filter
        self._cc_tau = _finite_positive(centered_clipping_tau, "centered_clipping_tau")
        if isinstance(centered_clipping_iterations, bool) or not isinstance(centered_clipping_iterations, int) \
                or centered_clipping_iterations < 1:
            raise InvalidInput(f"centered_clipping_iterations must be an integer >= 1, got {centered_clipping_iterations!r}")
        self._cc_iterations = centered_clipping_iterations
        self._reputation = reputation if reputation is not None else ReputationManager(ban_threshold=ban_threshold)
        self._threads = threads
        self._round = 0
        self._previous: np.ndarray | None = None  # centre for centered clipping
        self._report: RoundReport | None = None

    # ---- configuration -------------------------------------------------------------
    @property
    def method(self) -> str:
        return self._spec.name

    @property
    def trim_fraction(self) -> float:
        return self._trim_fraction

    @property
    def norm_bound(self) -> float | None:
        return self._norm_bound

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def reputation(self) -> ReputationManager:
        return self._reputation

    @property
    def last_report(self) -> RoundReport | None:
        """What the last ``aggregate`` call did (None before the first)."""
        return self._report

    # ---- reputation (Qora-FL names) ---------------------------------------------------
    def get_reputation(self, client_id: Any) -> float:
        return self._reputation.get_score(client_id)

    def reset_reputation(self) -> None:
        self._reputation.reset()

    def decay_reputations(self, rate: float = 0.02) -> None:
        self._reputation.decay(rate)

    # ---- one round -----------------------------------------------------------------
    def aggregate(self, updates: object, client_ids: Sequence[Any] | None = None,
                  weights: Sequence[float] | np.ndarray | None = None, *,
                  global_params: np.ndarray | None = None):
        """Aggregate one round of updates; returns the shape and dtype of one update."""
        batch = to_batch(updates)
        return batch.rebuild(self._aggregate_batch(batch, client_ids, weights, global_params))

    def aggregate_q16(self, updates: np.ndarray, client_ids: Sequence[Any] | None = None,
                      weights: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Aggregate raw Q16.16 updates: ``(n, d)`` int32 in, ``(d,)`` int32 out.

        For callers that hold fixed-point values already (the MQTT service, the ledger
        replay): no float round trip, so the result is the C core's output bit for bit.
        Needs ``mode="q16_16"``; norms and deviations are reported in real units.
        """
        if self._mode != "q16_16":
            raise InvalidInput(f"aggregate_q16 needs mode='q16_16', this aggregator runs {self._mode!r}")
        if not isinstance(updates, np.ndarray) or updates.dtype != np.int32 or updates.ndim != 2:
            what = f"{updates.dtype} array of shape {updates.shape}" if isinstance(updates, np.ndarray) \
                else type(updates).__name__
            raise InvalidType(f"aggregate_q16 needs an (n, d) int32 array, got {what}")
        n, d = updates.shape
        if n == 0 or d == 0:
            raise InvalidInput(f"empty input: n={n} updates, d={d} parameters")
        batch = UpdateBatch(updates, ((d,),), (slice(0, d),), np.dtype(np.int32), False)
        return self._aggregate_batch(batch, client_ids, weights, None)

    def _aggregate_batch(self, batch: UpdateBatch, client_ids: Sequence[Any] | None,
                         weights: Sequence[float] | np.ndarray | None,
                         global_params: np.ndarray | None) -> np.ndarray:
        n = batch.n
        raw = batch.matrix.dtype == np.int32  # Q16.16 integers in, out
        unit = 65536.0 if raw else 1.0
        ids = self._check_ids(client_ids, n)
        w = self._check_weights(weights, n)
        excluded: dict[int, str] = {}
        if ids is not None:
            for i, cid in enumerate(ids):
                if self._reputation.is_banned(cid):
                    excluded[i] = "banned"
        if self._norm_bound is not None:
            norms = np.linalg.norm(batch.matrix.astype(np.float64), axis=1) / unit
            for i in np.nonzero(norms > self._norm_bound)[0]:
                excluded.setdefault(int(i), "norm_bound")
        accepted = [i for i in range(n) if i not in excluded]
        # The filter compares clients with each other: it needs at least two (and its
        # own min_clients) to say anything; below that it is skipped, not failed.
        mi_min = max(2, int(getattr(self._mi_filter, "min_clients", 2)))
        if self._mi_filter is not None and global_params is not None and len(accepted) >= mi_min \
                and not raw:
            result = self._mi_filter.filter(np.asarray(global_params), batch.matrix[accepted])
            for j in result.flagged:
                excluded[accepted[j]] = "mutual_information"
            accepted = [i for i in range(n) if i not in excluded]
        if not accepted:
            reasons = ", ".join(f"{i}: {r}" for i, r in sorted(excluded.items()))
            raise InvalidInput(f"all {n} updates were excluded, refusing to aggregate ({reasons})")
        acc_ids = None if ids is None else [ids[i] for i in accepted]
        acc_w = None if w is None else w[accepted]
        if self._spec.method is AggregationMethod.FEDAVG and acc_w is not None and not (acc_w > 0).any():
            raise InvalidInput("the accepted updates all have weight 0")

        vector, info = self._aggregate_accepted(batch.take(accepted), acc_ids, acc_w)
        deviation = np.linalg.norm(batch.matrix[accepted].astype(np.float64) - vector.astype(np.float64),
                                   axis=1) / unit
        changes: dict[Any, tuple[float, float, str]] = {}
        if ids is not None:
            for i, reason in excluded.items():
                if reason == "mutual_information":
                    before = self._reputation.get_score(ids[i])
                    after = self._reputation.penalize(ids[i])
                    changes[ids[i]] = (before, after, "penalize")
            for cid, ch in self._reputation.update_from_deviations(acc_ids, deviation).items():
                changes[cid] = (ch.before, ch.after, ch.action)
        self._round += 1
        self._previous = vector.copy()
        self._report = RoundReport(
            method=info["method"], mode=self._mode, received=n, accepted=accepted, excluded=excluded,
            trimmed_per_side=info.get("k"),
            selected=info.get("selected"),
            deviation={i: float(v) for i, v in zip(accepted, deviation)},
            weights=None if info.get("weights") is None else
            {i: float(v) for i, v in zip(accepted, info["weights"])},
            reputation=changes, saturated=info["saturated"], client_ids=None if ids is None else list(ids))
        return vector

    # ---- internals -----------------------------------------------------------------
    @staticmethod
    def _check_ids(client_ids: Sequence[Any] | None, n: int) -> list[Any] | None:
        if client_ids is None:
            return None
        ids = list(client_ids)
        if len(ids) != n:
            raise InvalidInput(f"client_ids has {len(ids)} entries for {n} updates")
        for cid in ids:
            if isinstance(cid, bool) or not isinstance(cid, (str, int)):
                raise InvalidType(f"client ids must be str or int, got {type(cid).__name__} {cid!r}")
        if len(set(ids)) != n:
            dup = next(c for c in ids if ids.count(c) > 1)
            raise InvalidInput(f"client id {dup!r} appears more than once in one round")
        return ids

    @staticmethod
    def _check_weights(weights: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray | None:
        if weights is None:
            return None
        w = np.asarray(weights, dtype=np.float64) if not isinstance(weights, np.ndarray) else weights
        if w.shape != (n,):
            raise InvalidInput(f"weights must have shape ({n},) (one per update), got {w.shape}")
        if w.dtype.kind not in "iuf":
            raise InvalidType(f"weights must be numbers, got {w.dtype}")
        w = w.astype(np.float64)
        if not np.isfinite(w).all():
            i = int(np.argmin(np.isfinite(w)))
            raise InvalidInput(f"Non-finite weight {w[i]} for update {i}")
        if (w < 0).any():
            i = int(np.argmax(w < 0))
            raise InvalidInput(f"weights must be >= 0, got {w[i]} for update {i}")
        if not (w > 0).any():
            raise InvalidInput("weights are all zero: at least one update must count")
        return w

    def _byzantine_estimate(self, n: int) -> int:
        if self._spec.f is not None:
            return self._spec.f
        return min(math.ceil(exact_fraction(self._trim_fraction, "trim_fraction") * n), (n - 1) // 2)

    def _adaptive_k(self, x: np.ndarray, k_floor: int) -> int:
        """Trim at least k_floor; more when more updates lie far from the median."""
        n = x.shape[0]
        dev = native.median(x, mode=self._mode, threads=self._threads).deviation
        med = float(np.median(dev))
        scale = max(1.4826 * float(np.median(np.abs(dev - med))), 0.05 * med, 1e-12)
        outliers = int(np.sum((dev - med) / scale > _ADAPTIVE_Z))
        return max(k_floor, min(outliers, (n - 1) // 2))

    def _aggregate_accepted(self, batch: UpdateBatch, ids: list[Any] | None,
                            w: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
        mode = self._mode
        x = batch.matrix
        saturated = False
        raw = x.dtype == np.int32
        if mode == "q16_16" and not raw:
            x, saturated = native.to_q16(x)
        n0 = x.shape[0]
        f_est = self._byzantine_estimate(n0)
        for step in self._steps:
            x = step.apply(x, f_est, mode, self._round)
        n = x.shape[0]
        spec = self._spec
        spec.check_bounds(n)
        influence = None
        if self._weighting == "reputation":
            if ids is None:
                raise InvalidInput("weighting='reputation' needs client_ids")
            if n != n0:
                raise InvalidInput("weighting='reputation' cannot follow bucketing (buckets have no ids)")
            influence = self._reputation.influence_weights(ids)
            if not (influence > 0).any():
                raise InvalidInput("every accepted client has influence weight 0")
        info: dict[str, Any] = {"method": spec.name, "weights": influence}
        k = None
        if spec.method is AggregationMethod.TRIMMED_MEAN:
            k = trim_count(n, self._trim_fraction)
            if self._adaptive_trim:
                k = self._adaptive_k(x, k)
            info["k"] = k
        out = np.empty(x.shape[1], dtype=x.dtype)
        selected: list[Any] = []
        for layer in batch.layers:
            xl = x[:, layer]
            vec, sel, sat = self._run_method(xl, k, w, influence, layer)
            out[layer] = vec
            saturated |= sat
            if sel is not None:
                selected.append(sel)
        if selected:
            info["selected"] = selected[0] if len(selected) == 1 else selected
        info["saturated"] = saturated
        value = native.from_q16(out) if mode == "q16_16" and not raw else out
        return value, info

    def _run_method(self, x: np.ndarray, k: int | None, w: np.ndarray | None,
                    influence: np.ndarray | None,
                    layer: slice) -> tuple[np.ndarray, list[int] | None, bool]:
        spec, mode, th = self._spec, self._mode, self._threads
        method = spec.method
        pick = (lambda r: r.raw) if mode == "q16_16" else (lambda r: r.value)
        if method is AggregationMethod.FEDAVG:
            weights = w if influence is None else (influence if w is None else w * influence)
            if mode == "q16_16" and weights is not None and influence is not None:
                weights = np.round(weights / weights.max() * 65536)  # integer sample weights
            r = native.fedavg(x, weights, mode=mode, threads=th, deviation=False)
            return pick(r), None, r.saturated
        if method is AggregationMethod.TRIMMED_MEAN:
            if influence is not None:
                return robust.weighted_trimmed_mean(x, influence, k / x.shape[0], mode=mode), None, False
            r = native.trimmed_mean(x, k, mode=mode, threads=th, deviation=False)
            return pick(r), None, r.saturated
        if method is AggregationMethod.MEDIAN:
            if influence is not None:
                return robust.weighted_median(x, influence, mode=mode), None, False
            r = native.median(x, mode=mode, threads=th, deviation=False)
            return pick(r), None, r.saturated
        if method in (AggregationMethod.KRUM, AggregationMethod.MULTI_KRUM):
            m = 1 if method is AggregationMethod.KRUM else spec.multi_krum_m(x.shape[0])
            r = native.multi_krum(x, spec.f or 0, m, mode=mode, threads=th)
            return pick(r), [int(i) for i in r.selected], r.saturated
        # centered clipping around the previous result for this layer; the median only
        # when there is none (the first round, or a model of another size)
        prev = self._previous
        if prev is not None and prev.shape[0] >= layer.stop and layer.stop - layer.start == x.shape[1]:
            prev = prev[layer]
            if prev.dtype == np.int32:    # the raw Q16.16 path keeps its previous result raw
                center = prev
            else:
                prev = prev.astype(np.float32)
                center = native.to_q16(prev)[0] if mode == "q16_16" else prev
        else:
            center = pick(native.median(x, mode=mode, threads=th, deviation=False))
        tau = self._cc_tau
        if tau is None:
            real = x.astype(np.float64) / (65536 if mode == "q16_16" else 1)
            c = center.astype(np.float64) / (65536 if mode == "q16_16" else 1)
            tau = float(np.median(np.linalg.norm(real - c, axis=1))) or 1.0
        v = robust.centered_clipping(x, center, tau, iterations=self._cc_iterations, mode=mode)
        return v, None, False

    # ---- persistence ------------------------------------------------------------------
    def to_json(self) -> str:
        """Configuration and reputation, versioned (format ``qora-aggregator`` v1)."""
        return json.dumps({
            "format": FORMAT, "version": VERSION,
            "config": {
                "method": self._spec.name, "trim_fraction": self._trim_fraction,
                "ban_threshold": self._reputation.ban_threshold, "adaptive_trim": self._adaptive_trim,
                "norm_bound": self._norm_bound, "mode": self._mode, "weighting": self._weighting,
                "centered_clipping_tau": self._cc_tau,
                "centered_clipping_iterations": self._cc_iterations,
            },
            "round": self._round,
            "reputation": json.loads(self._reputation.to_json()),
        })

    @classmethod
    def from_json(cls, s: str) -> "ByzantineAggregator":
        """Restore from :meth:`to_json` (pre-aggregation steps and the MI filter are not
        serialised: pass them again if you use them)."""
        try:
            data = json.loads(s)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"aggregator state is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInput(f"not a {FORMAT} document (format={data.get('format') if isinstance(data, dict) else None!r})")
        if data.get("version") != VERSION:
            raise InvalidInput(f"unsupported {FORMAT} version {data.get('version')!r}; this qora reads {VERSION}")
        cfg = data["config"]
        rep = ReputationManager.from_json(json.dumps(data["reputation"]))
        agg = cls(cfg["method"], cfg["trim_fraction"], cfg["ban_threshold"], cfg["adaptive_trim"],
                  cfg["norm_bound"], cfg["mode"], weighting=cfg.get("weighting"),
                  centered_clipping_tau=cfg.get("centered_clipping_tau"),
                  centered_clipping_iterations=cfg.get("centered_clipping_iterations", 3),
                  reputation=rep)
        agg._round = int(data.get("round", 0))
        return agg
