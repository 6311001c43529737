"""The simulation's models: float32 numpy models and their Q16.16 integer twin.

``SoftmaxRegression`` and ``MLP`` are qora.models' float models (float64 math, float32
parameters); ``Q16Model`` (qora.sim.fixed) trains the same architectures with the integer
step of qora.reference.train, bit-exact with the node firmware. ``make_model(kind, mode)``
picks one: kind "softmax" (n_features -> n_classes) or "mlp" (n_features -> hidden ->
n_classes), mode "float32" or "q16_16". The two modes share the flat parameter layout, the
seeded init (Q16Model converts the float init with to_q16) and the visiting order of SGD.
"""

from __future__ import annotations

from collections.abc import Sequence

from qora.errors import InvalidInput
from qora.models import MLP, SoftmaxRegression
from qora.sim.fixed import Q16Model

__all__ = ["KINDS", "MLP", "MODES", "Q16Model", "SoftmaxRegression", "make_model"]

KINDS = ("softmax", "mlp")
MODES = ("float32", "q16_16")


def make_model(kind: str, mode: str = "float32", n_features: int = 64, n_classes: int = 10,
               hidden: int | Sequence[int] = 32):
    """A model for ``kind`` in KINDS and ``mode`` in MODES.

    ``hidden`` (an int or a sequence of widths) applies to "mlp" only.
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    if mode not in MODES:
        raise InvalidInput(f"unknown model mode {mode!r}; expected one of {', '.join(MODES)}")
    if kind == "softmax":
        sizes: tuple[int, ...] = (n_features, n_classes)
    else:
        widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        sizes = (n_features, *widths, n_classes)
    if mode == "q16_16":
        return Q16Model(sizes)
    if kind == "softmax":
        return SoftmaxRegression(n_features, n_classes)
    return MLP(sizes)
