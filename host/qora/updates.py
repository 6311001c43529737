"""Client updates in, one (n, D) matrix through the aggregators, the same shapes out.

Accepted forms of ``updates``:

* a list of n arrays of one shape (any rank), float32 or float64;
* a list of n lists of layer arrays (the same layer shapes for every client): each
  layer is aggregated on its own (layer-wise);
* an ndarray whose first axis is the clients.

The result has the shape and dtype of one client's update (float32 or float64):
float64 input is aggregated in the float32 core and returned as float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qora.errors import InvalidInput, InvalidType

_FLOATS = (np.float32, np.float64)


def _describe(v: float) -> str:
    return "NaN" if np.isnan(v) else ("Inf" if v > 0 else "-Inf")


@dataclass(frozen=True)
class UpdateBatch:
    """n updates flattened into ``matrix`` (n, D) float32; ``layers`` are column slices."""

    matrix: np.ndarray
    shapes: tuple[tuple[int, ...], ...]
    layers: tuple[slice, ...]
    dtype: np.dtype
    layered: bool

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    def rebuild(self, vector: np.ndarray):
        """One flat (D,) result -> the caller's shape(s) and dtype."""
        parts = [vector[s].astype(self.dtype, copy=False).reshape(shape)
                 for s, shape in zip(self.layers, self.shapes)]
        return parts if self.layered else parts[0]

    def take(self, rows: Sequence[int]) -> "UpdateBatch":
        return UpdateBatch(self.matrix[list(rows)], self.shapes, self.layers, self.dtype, self.layered)


def _check_array(a: object, where: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise InvalidType(f"{where} must be a numpy array, got {type(a).__name__}")
    if a.dtype.type not in _FLOATS:
        raise InvalidType(f"{where} must be float32 or float64, got {a.dtype}")
    if a.size == 0:
        raise InvalidInput(f"{where} is empty (shape {a.shape})")
    return a


def _check_finite(a: np.ndarray, client: int, layer: int | None) -> None:
    if np.isfinite(a).all():
        return
    idx = np.unravel_index(int(np.argmin(np.isfinite(a))), a.shape)
    at = ", ".join(str(int(i)) for i in idx)
    where = f"update {client}" if layer is None else f"update {client} layer {layer}"
    raise InvalidInput(f"Non-finite value {_describe(float(a[idx]))} in {where} at [{at}]")


def to_batch(updates: object) -> UpdateBatch:
    """Validate and flatten; raise InvalidInput / InvalidType naming the bad update."""
    if isinstance(updates, np.ndarray):
        if updates.ndim < 2:
            raise InvalidInput(
                f"an array of updates needs a clients axis first: shape (n, ...), got {updates.shape}")
        updates = list(updates)
    if not isinstance(updates, (list, tuple)):
        raise InvalidType(f"updates must be a list of numpy arrays, got {type(updates).__name__}")
    if len(updates) == 0:
        raise InvalidInput("no updates to aggregate (empty list)")
    layered = isinstance(updates[0], (list, tuple))
    if layered:
        first = [_check_array(a, f"update 0 layer {j}") for j, a in enumerate(updates[0])]
        if not first:
            raise InvalidInput("update 0 has no layers")
        shapes = tuple(a.shape for a in first)
    else:
        shapes = (_check_array(updates[0], "update 0").shape,)
    sizes = [int(np.prod(s)) for s in shapes]
    bounds = np.cumsum([0, *sizes])
    layers = tuple(slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
    dtypes = set()
    matrix = np.empty((len(updates), int(bounds[-1])), dtype=np.float32)
    for i, u in enumerate(updates):
        parts = u if layered else [u]
        if layered and not isinstance(u, (list, tuple)):
            raise InvalidType(f"update {i} must be a list of layers like update 0, got {type(u).__name__}")
        if len(parts) != len(shapes):
            raise InvalidInput(f"update {i} has {len(parts)} layers, expected {len(shapes)} like update 0")
        for j, (a, shape) in enumerate(zip(parts, shapes)):
            where = f"update {i}" if not layered else f"update {i} layer {j}"
            a = _check_array(a, where)
            if a.shape != shape:
                raise InvalidInput(f"{where} has shape {a.shape}, expected {shape} like update 0")
            _check_finite(a, i, j if layered else None)
            dtypes.add(a.dtype)
            with np.errstate(over="ignore"):
                matrix[i, layers[j]] = a.reshape(-1)
            if a.dtype == np.float64 and not np.isfinite(matrix[i, layers[j]]).all():
                with np.errstate(over="ignore"):
                    idx = np.unravel_index(int(np.argmin(np.isfinite(a.astype(np.float32)))), a.shape)
                at = ", ".join(str(int(k)) for k in idx)
                raise InvalidInput(f"value {float(a[idx])!r} in {where} at [{at}] is outside "
                                   "float32's range, which the aggregation core computes in")
    if len(dtypes) > 1:
        raise InvalidType(f"updates mix dtypes {sorted(str(d) for d in dtypes)}: use one of float32 or float64")
    return UpdateBatch(matrix, shapes, layers, dtypes.pop(), layered)
