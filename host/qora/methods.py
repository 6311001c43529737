"""Aggregation methods by name, their parameters and their bounds.

Spellings accepted (case-insensitive, ``-`` or ``_``)::

    "fedavg"            weighted mean (sample counts); no robustness
    "trimmed_mean"      k = ceil(trim_fraction * n) trimmed per side
    "median"            coordinate-wise median
    "krum"              Krum with f = 1;            "krum:F"  with f = F
    "multi_krum"        f = 1, m = min(3, n-2f-2);  "multi_krum:F", "multi_krum:F:M"
    "centered_clipping" iterative clipping around the previous round's result

or an :class:`AggregationMethod` member.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from qora.errors import InvalidInput, InvalidType


class AggregationMethod(str, Enum):
    """The aggregation rules; the value is the canonical spelling."""

    FEDAVG = "fedavg"
    TRIMMED_MEAN = "trimmed_mean"
    MEDIAN = "median"
    KRUM = "krum"
    MULTI_KRUM = "multi_krum"
    CENTERED_CLIPPING = "centered_clipping"


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method: f and m only for Krum / Multi-Krum (m None = the default)."""

    method: AggregationMethod
    f: int | None = None
    m: int | None = None

    @property
    def name(self) -> str:
        parts = [self.method.value]
        if self.f is not None:
            parts.append(str(self.f))
        if self.m is not None:
            parts.append(str(self.m))
        return ":".join(parts)

    def multi_krum_m(self, n: int) -> int:
        """m for n clients: the explicit M, or min(3, n - 2f - 2)."""
        f = self.f or 0
        return self.m if self.m is not None else max(1, min(3, n - 2 * f - 2))

    def check_bounds(self, n: int) -> None:
        """Raise InvalidInput when n clients cannot be aggregated by this method."""
        if self.method in (AggregationMethod.KRUM, AggregationMethod.MULTI_KRUM):
            f = self.f or 0
            if n < 2 * f + 3:
                raise InvalidInput(f"{self.method.value} needs n >= 2f+3: n={n}, f={f}")
            if self.method is AggregationMethod.MULTI_KRUM:
                m = self.multi_krum_m(n)
                if not 1 <= m <= n - 2 * f - 2:
                    raise InvalidInput(
                        f"multi_krum needs 1 <= m <= n-2f-2: n={n}, f={f}, m={m}")


def _int_part(text: str, what: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{what} in method {spec!r} must be an integer, got {text!r}") from None
    if value < 0:
        raise InvalidInput(f"{what} in method {spec!r} must be >= 0, got {value}")
    return value


def parse_method(spec: str | AggregationMethod | MethodSpec) -> MethodSpec:
    """Parse a method name such as ``"multi_krum:2:5"`` into a :class:`MethodSpec`."""
    if isinstance(spec, MethodSpec):
        return spec
    if isinstance(spec, AggregationMethod):
        spec = spec.value
    if not isinstance(spec, str):
        raise InvalidType(f"method must be a string or AggregationMethod, got {type(spec).__name__}")
    parts = spec.strip().lower().replace("-", "_").split(":")
    try:
        method = AggregationMethod(parts[0])
    except ValueError:
        names = ", ".join(m.value for m in AggregationMethod)
        raise InvalidInput(f"unknown aggregation method {spec!r}; expected one of {names}") from None
    args = parts[1:]
    if method is AggregationMethod.KRUM:
        if len(args) > 1:
            raise InvalidInput(f"krum takes one parameter (krum:F), got {spec!r}")
        return MethodSpec(method, f=_int_part(args[0], "F", spec) if args else 1)
    if method is AggregationMethod.MULTI_KRUM:
        if len(args) > 2:
            raise InvalidInput(f"multi_krum takes at most two parameters (multi_krum:F:M), got {spec!r}")
        f = _int_part(args[0], "F", spec) if args else 1
        m = _int_part(args[1], "M", spec) if len(args) == 2 else None
        if m == 0:
            raise InvalidInput(f"multi_krum needs m >= 1, got {spec!r}")
        return MethodSpec(method, f=f, m=m)
    if args:
        raise InvalidInput(f"{method.value} takes no parameters, got {spec!r}")
    return MethodSpec(method)


def exact_fraction(value: float, what: str) -> Fraction:
    """The decimal the user wrote (0.3 is 3/10, not the binary double below it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidType(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidInput(f"{what} must be finite, got {value}")
    return Fraction(repr(float(value)))


def trim_count(n: int, trim_fraction: float) -> int:
    """k = ceil(trim_fraction * n) values trimmed per side, computed exactly.

    n = 10, 0.3 -> 3; n = 100, 0.3 -> 30 (float32 arithmetic gives 31). Raises
    InvalidInput when fewer than one value would be kept.
    """
    beta = exact_fraction(trim_fraction, "trim_fraction")
    if not 0 <= beta <= Fraction(1, 2):
        raise InvalidInput(f"trim_fraction must be in [0, 0.5], got {trim_fraction}")
    k = math.ceil(beta * n)
    if n - 2 * k < 1:
        raise InvalidInput(
            f"trimmed_mean with trim_fraction={trim_fraction} trims k={k} per side of n={n}: "
            "fewer than one value would be kept")
    return k
