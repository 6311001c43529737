"""The defences the evaluation compares, each a recipe for a ByzantineAggregator plus the
client-side worker momentum it relies on.

Byzantine clients are f = ceil(fraction * n) of n; defences that need a bound get it
(trim fraction max(f/n, 0.1); Krum's f). "best published pipelines":

* ``momentum_cc``: worker momentum 0.9 + centered clipping (Karimireddy, He, Jaggi,
  ICML 2021; with bucketing in ICLR 2022: 97-98 % on MNIST under ALIE / IPM).
* ``momentum_arc_nnm_tm``: worker momentum 0.9 + ARC + NNM + trimmed mean (the ByzFL
  benchmark's strongest pipeline: Allouah et al., 2023-2024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from qora.aggregator import ByzantineAggregator
from qora.errors import InvalidInput


@dataclass(frozen=True)
class Defence:
    name: str
    build: Callable[[int, int, Any], ByzantineAggregator]   # (n, f, mi_filter) -> aggregator
    momentum: float = 0.0
    uses_ids: bool = False        # reputation: the aggregator sees client ids
    uses_probe: bool = False      # the MI filter: needs the global params and a probe set


def _beta(n: int, f: int) -> float:
    return max(f / n, 0.1)


DEFENCES: dict[str, Defence] = {
    "fedavg": Defence("fedavg", lambda n, f, mi: ByzantineAggregator("fedavg")),
    "trimmed_mean": Defence("trimmed_mean", lambda n, f, mi: ByzantineAggregator("trimmed_mean", _beta(n, f))),
    "median": Defence("median", lambda n, f, mi: ByzantineAggregator("median")),
    "krum": Defence("krum", lambda n, f, mi: ByzantineAggregator(f"krum:{min(f, (n - 3) // 2)}")),
    "multi_krum": Defence("multi_krum", lambda n, f, mi: ByzantineAggregator(
        f"multi_krum:{min(f, (n - 3) // 2)}:{max(1, n - 2 * min(f, (n - 3) // 2) - 2)}")),
    "mi_filter": Defence("mi_filter", lambda n, f, mi: ByzantineAggregator(
        "trimmed_mean", _beta(n, f), mi_filter=mi), uses_probe=True),
    "rep_trimmed_mean": Defence("rep_trimmed_mean", lambda n, f, mi: ByzantineAggregator(
        "trimmed_mean", _beta(n, f), ban_threshold=0.2, weighting="reputation"), uses_ids=True),
    "momentum_cc": Defence("momentum_cc", lambda n, f, mi: ByzantineAggregator(
        "centered_clipping", _beta(n, f), centered_clipping_iterations=3), momentum=0.9),
    "momentum_arc_nnm_tm": Defence("momentum_arc_nnm_tm", lambda n, f, mi: ByzantineAggregator(
        "trimmed_mean", _beta(n, f), preaggregation=["arc", "nnm"]), momentum=0.9),
}


def get_defence(name: str) -> Defence:
    try:
        return DEFENCES[name]
    except KeyError:
        raise InvalidInput(f"unknown defence {name!r}; expected one of {', '.join(DEFENCES)}") from None


def byzantine_count(n: int, fraction: float) -> int:
    """f = ceil(fraction * n), on the decimal given (0.3 of 10 is 3)."""
    from fractions import Fraction

    if not 0 <= fraction < 0.5:
        raise InvalidInput(f"Byzantine fraction must be in [0, 0.5), got {fraction}")
    return math.ceil(Fraction(repr(float(fraction))) * n)
