"""A fleet's aggregation settings: what every round of that fleet runs with.

The settings travel into every ledger record, so a verifier rebuilds the same
aggregator from the record alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from qora.aggregator import ByzantineAggregator
from qora.errors import InvalidInput
from qora.methods import parse_method
from qora.reputation import ReputationManager

MODES = ("q16_16", "float32")


@dataclass(frozen=True)
class FleetConfig:
    """How one fleet's rounds run.

    method / trim_fraction / ban_threshold / norm_bound / weighting / preaggregation:
        as :class:`qora.ByzantineAggregator` (a fresh aggregator each round, fed the
        stored reputation, so a restart or a verifier computes the same thing).
    mode: ``"q16_16"`` (updates travel as Q16.16 int32; rounds are replayable bit for
        bit anywhere) or ``"float32"``.
    chunk_elements: elements per update / model chunk on the wire.
    quorum: complete updates needed to close a round at its deadline.
    round_seconds: time from announcement to deadline; a round without quorum at its
        deadline is extended by the same time, never closed empty.
    layout: layer sizes of the model (announced so nodes know what to train).
    max_message_bytes: larger update messages are rejected (``oversize``).
    """

    fleet: str
    method: str = "trimmed_mean"
    trim_fraction: float = 0.2
    mode: str = "q16_16"
    ban_threshold: float = 0.2
    norm_bound: float | None = None
    weighting: str | None = None
    preaggregation: tuple[str, ...] = ()
    chunk_elements: int = 1024
    quorum: int = 3
    round_seconds: float = 30.0
    layout: tuple[int, ...] = field(default=())
    max_message_bytes: int = 16384

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"mode must be one of {MODES}, got {self.mode!r}")
        parse_method(self.method)
        if not (isinstance(self.quorum, int) and self.quorum >= 1):
            raise InvalidInput(f"quorum must be an integer >= 1, got {self.quorum!r}")
        if not (isinstance(self.chunk_elements, int) and 1 <= self.chunk_elements <= 1 << 20):
            raise InvalidInput(f"chunk_elements must be an integer in 1..2^20, got {self.chunk_elements!r}")
        if not self.round_seconds > 0:
            raise InvalidInput(f"round_seconds must be > 0, got {self.round_seconds!r}")
        object.__setattr__(self, "layout", tuple(int(v) for v in self.layout))
        object.__setattr__(self, "preaggregation", tuple(str(v) for v in self.preaggregation))
        self.build_aggregator(None)  # every other setting is checked by the aggregator itself

    def aggregation_params(self) -> dict:
        """The settings that decide a round's result (what the ledger records)."""
        return {"method": self.method, "trim_fraction": self.trim_fraction, "mode": self.mode,
                "ban_threshold": self.ban_threshold, "norm_bound": self.norm_bound,
                "weighting": self.weighting, "preaggregation": list(self.preaggregation)}

    def build_aggregator(self, reputation: ReputationManager | None) -> ByzantineAggregator:
        return build_aggregator(self.aggregation_params(), reputation)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FleetConfig":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InvalidInput(f"fleet config is not JSON: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"fleet config has unknown settings {unknown}; known: {sorted(known)}")
        data["layout"] = tuple(data.get("layout", ()))
        data["preaggregation"] = tuple(data.get("preaggregation", ()))
        return cls(**data)


def build_aggregator(params: dict, reputation: ReputationManager | None) -> ByzantineAggregator:
    """The aggregator a ledger record's ``params`` describe, over ``reputation``."""
    rep = reputation if reputation is not None else ReputationManager(ban_threshold=params["ban_threshold"])
    return ByzantineAggregator(params["method"], params["trim_fraction"], params["ban_threshold"],
                               norm_bound=params["norm_bound"], mode=params["mode"],
                               weighting=params["weighting"],
                               preaggregation=tuple(params["preaggregation"]), reputation=rep)
