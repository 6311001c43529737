"""Pre-aggregation steps a ByzantineAggregator can run before its method.

Each step maps the accepted (n, D) updates to new rows (bucketing: fewer rows);
the method then aggregates those. Strings name the steps too:

    "nnm"            NNM()            nearest-neighbour mixing (Allouah et al., AISTATS 2023)
    "arc"            ARC()            adaptive robust clipping (Allouah et al., 2024)
    "clip:TAU"       NormClip(TAU)    clip every update to L2 norm TAU
    "bucketing:S"    Bucketing(S)     average random buckets of S updates (Karimireddy et al., ICLR 2022)

``f`` for NNM and ARC is the aggregator's Byzantine estimate for the round:
Krum's f, the trimmed mean's k, else ceil(trim_fraction * n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qora import robust
from qora.errors import InvalidInput, InvalidType


@dataclass(frozen=True)
class NNM:
    """Replace each update by the mean of its n - f nearest neighbours (itself included)."""

    def apply(self, x: np.ndarray, f: int, mode: str, round_index: int) -> np.ndarray:
        return robust.nnm(x, min(f, x.shape[0] - 1), mode=mode)


@dataclass(frozen=True)
class ARC:
    """Clip the ~2(f/n)(n-f) largest-norm updates to the next largest norm."""

    def apply(self, x: np.ndarray, f: int, mode: str, round_index: int) -> np.ndarray:
        return robust.arc(x, min(f, x.shape[0] - 1), mode=mode)[0]


@dataclass(frozen=True)
class NormClip:
    """Scale every update whose L2 norm exceeds tau down to norm tau."""

    tau: float

    def apply(self, x: np.ndarray, f: int, mode: str, round_index: int) -> np.ndarray:
        return robust.clip_norms(x, self.tau, mode=mode)[0]


@dataclass(frozen=True)
class Bucketing:
    """Average random buckets of `size` updates; a new permutation every round."""

    size: int = 2
    seed: int = 0

    def apply(self, x: np.ndarray, f: int, mode: str, round_index: int) -> np.ndarray:
        # a fresh, reproducible permutation each round
        return robust.bucketing(x, self.size, seed=self.seed * 1_000_003 + round_index, mode=mode)[0]


Step = NNM | ARC | NormClip | Bucketing


def parse_step(step: object) -> Step:
    """A step object, or its string spelling."""
    if isinstance(step, (NNM, ARC, NormClip, Bucketing)):
        return step
    if not isinstance(step, str):
        raise InvalidType(f"a pre-aggregation step must be a string or step object, got {type(step).__name__}")
    name, _, arg = step.strip().lower().partition(":")
    try:
        if name == "nnm" and not arg:
            return NNM()
        if name == "arc" and not arg:
            return ARC()
        if name == "clip" and arg:
            return NormClip(float(arg))
        if name == "bucketing":
            return Bucketing(int(arg) if arg else 2)
    except ValueError:
        raise InvalidInput(f"bad parameter in pre-aggregation step {step!r}") from None
    raise InvalidInput(f"unknown pre-aggregation step {step!r}; expected nnm, arc, clip:TAU or bucketing:S")
