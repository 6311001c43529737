"""What one aggregation round did, for operators, reputation and the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RoundReport:
    """The last round of a :class:`qora.ByzantineAggregator`.

    Indices refer to the order of the ``updates`` passed to ``aggregate``.

    method: the method as run (e.g. ``"multi_krum:1:3"``); mode: numeric mode.
    received: number of updates given.
    accepted: indices that took part in the aggregation (after gating and filters).
    excluded: {index: reason} for the rest: ``"banned"`` (reputation below the
        threshold), ``"norm_bound"`` (L2 norm above norm_bound), ``"mutual_information"``.
    trimmed_per_side: k of the trimmed mean (None for other methods).
    selected: Krum / Multi-Krum choices, best first (per layer when layer-wise).
    deviation: {index: L2 distance of the accepted update from the result}.
    weights: {index: influence weight} when reputation weighting was used.
    reputation: {client_id: (score before, score after, action)} when ids were given.
    saturated: a Q16.16 value was clamped somewhere.
    """

    method: str
    mode: str
    received: int
    accepted: list[int]
    excluded: dict[int, str]
    trimmed_per_side: int | None = None
    selected: list[Any] | None = None
    deviation: dict[int, float] = field(default_factory=dict)
    weights: dict[int, float] | None = None
    reputation: dict[Any, tuple[float, float, str]] = field(default_factory=dict)
    saturated: bool = False
    client_ids: list[Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (keys as strings)."""
        return {
            "method": self.method,
            "mode": self.mode,
            "received": self.received,
            "accepted": list(self.accepted),
            "excluded": {str(k): v for k, v in self.excluded.items()},
            "trimmed_per_side": self.trimmed_per_side,
            "selected": self.selected,
            "deviation": {str(k): v for k, v in self.deviation.items()},
            "weights": None if self.weights is None else {str(k): v for k, v in self.weights.items()},
            "reputation": {str(k): list(v) for k, v in self.reputation.items()},
            "saturated": self.saturated,
            "client_ids": self.client_ids,
        }
