"""Compression of model updates (ΔW) for narrow links: PowerSGD, int8, Q16.16, zstd.

A client computes ``delta = local - global`` and sends ``compress(delta)``; the server calls
``decompress`` and aggregates what it gets back. Every compressor takes either

* a single array (normally the flat float32 parameter vector of :mod:`qora.models`), and gives
  back an array of the same shape, or
* a list of layer arrays (2-D weight matrices ``(fan_out, fan_in)``, 1-D biases), and gives back
  a list of float32 arrays of the same shapes.

Any real numeric dtype is accepted and converted to float32 first; NaN or ±Inf (also a float64
value that overflows float32) raise :class:`~qora.errors.InvalidInput`. The optional keyword
``layout`` (a list of shapes, e.g. :func:`model_layout` of an MLP) makes a compressor treat a flat
vector as those layers (split, compress per layer, reassemble flat): the per-tensor int8 scale
and PowerSGD's matrices then follow the model's layers instead of the whole vector.

Compressors
-----------
``none``              :class:`NoCompression`: raw float32 (the baseline).
``q16``               :class:`Q16Packer`: Q16.16 int32 (what the fixed-point firmware sends).
``int8``              :class:`Int8Quantizer`: per-tensor scale ``max|x| / 127``, round to nearest.
``int8-stochastic``   the same with unbiased stochastic rounding.
``powersgd[:R]``      :class:`PowerSGD`: rank-R factors of each matrix (Vogels et al. 2019).
``zstd``, ``zstd+X``  :class:`Zstd`: zstd over raw float32, or over compressor X's payload.

Bytes on the wire
-----------------
:class:`Compressed` holds ``method``, ``payload`` (the bytes that travel) and ``meta`` (what
decompress needs). ``meta`` only holds what both ends know without sending it - the layer shapes
(fixed by the model architecture) and the configured rank, from which each layer's effective rank
and encoding follow - plus informational fields (e.g. ``saturated``). Anything data-dependent
(int8 scales, PowerSGD factors, uncompressed biases) is in ``payload``. ``Compressed.nbytes`` is
``len(payload) + HEADER_BYTES``: 16 bytes estimate a frame header (method id and version, flags,
rank, element count, a CRC-32), so that ratios are not flattered by free metadata.
:func:`compression_ratio` is ``original float32 bytes / nbytes``; for ``none`` it is therefore
slightly below 1 (``4n / (4n + 16)``).

State
-----
PowerSGD keeps state between calls (error-feedback memory, warm-start Q), and the stochastic
int8 quantizer draws from its own generator: create one instance per client and keep it across
rounds. A stateful compressor refuses a delta whose structure (array vs list, shapes) differs from
the one it holds state for; ``reset()`` forgets the state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qora.errors import InvalidInput, InvalidType

__all__ = [
    "HEADER_BYTES",
    "Compressed",
    "Compressor",
    "Int8Quantizer",
    "NoCompression",
    "PowerSGD",
    "Q16Packer",
    "Zstd",
    "compression_ratio",
    "get_compressor",
    "model_layout",
    "relative_error",
]

HEADER_BYTES = 16
"""Estimated frame header per compressed update, counted in :attr:`Compressed.nbytes`."""


@dataclass(frozen=True)
class Compressed:
    """One compressed update: ``payload`` travels, ``meta`` is known to both ends (see module doc)."""

    method: str
    payload: bytes
    meta: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes on the wire: ``len(payload) + HEADER_BYTES`` (16, an estimate of a frame header)."""
        return len(self.payload) + HEADER_BYTES


# ---- structure ---------------------------------------------------------------------------------


def _to_float32(name: str, x: object) -> np.ndarray:
    if not isinstance(x, (np.ndarray, np.generic, int, float)) or isinstance(x, bool):
        raise InvalidType(f"{name} must be a numpy array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidType(f"{name} must hold real numbers, got dtype {arr.dtype}")
    finite_in = np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else None
    if finite_in is not None and not finite_in.all():
        idx = tuple(int(i) for i in np.argwhere(~finite_in)[0])
        raise InvalidInput(f"Non-finite value {arr[idx]} in {name} at {list(idx)}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise InvalidInput(
            f"{name} at {list(idx)} = {arr[idx]} does not fit in float32 (|x| > 3.4e38)"
        )
    return out


def _layers_of(delta: object, layout: list[tuple[int, ...]] | None) -> tuple[list[np.ndarray], tuple]:
    """(float32 layers, structure): structure is ("array", shape), ("list", shapes)
    or ("layout", shape, shapes) for a flat vector split by ``layout``."""
    if isinstance(delta, (list, tuple)):
        if len(delta) == 0:
            raise InvalidInput("delta is an empty list: give at least one layer")
        layers = [_to_float32(f"delta[{i}]", a) for i, a in enumerate(delta)]
        return layers, ("list", tuple(a.shape for a in layers))
    arr = _to_float32("delta", delta)
    if layout is None:
        return [arr], ("array", arr.shape)
    n = sum(math.prod(s) for s in layout)
    if arr.ndim != 1 or arr.size != n:
        raise InvalidInput(
            f"delta must be a flat vector of {n} values to match the layout "
            f"{[tuple(s) for s in layout]}, got shape {arr.shape}"
        )
    layers, off = [], 0
    for s in layout:
        k = math.prod(s)
        layers.append(arr[off : off + k].reshape(s))
        off += k
    return layers, ("layout", arr.shape, tuple(tuple(s) for s in layout))


def _shapes(structure: tuple) -> tuple[tuple[int, ...], ...]:
    if structure[0] == "array":
        return (structure[1],)
    if structure[0] == "list":
        return structure[1]
    return structure[2]


def _restore(layers: list[np.ndarray], structure: tuple) -> np.ndarray | list[np.ndarray]:
    if structure[0] == "array":
        return layers[0].reshape(structure[1])
    if structure[0] == "list":
        return [a.reshape(s) for a, s in zip(layers, structure[1], strict=True)]
    return np.concatenate([a.ravel() for a in layers]).reshape(structure[1]) if layers else (
        np.zeros(structure[1], np.float32)
    )


def _check_layout(layout: object) -> list[tuple[int, ...]] | None:
    if layout is None:
        return None
    if not isinstance(layout, (list, tuple)) or len(layout) == 0:
        raise InvalidType(f"layout must be a non-empty list of shapes, got {layout!r}")
    out = []
    for i, s in enumerate(layout):
        shape = (s,) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) else s
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidInput(f"layout[{i}] must be a shape of non-negative ints, got {s!r}")
        out.append(tuple(int(d) for d in shape))
    return out


def model_layout(model: Any) -> list[tuple[int, ...]]:
    """Layer shapes of a :mod:`qora.models` network in its flat order: ``[(out, in), (out,), ...]``."""
    sizes = getattr(model, "layer_sizes", None)
    if sizes is None:
        raise InvalidType(f"model_layout needs a qora.models network, got {type(model).__name__}")
    out: list[tuple[int, ...]] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        out += [(int(fan_out), int(fan_in)), (int(fan_out),)]
    return out


def _check_meta(c: object, name: str) -> dict:
    if not isinstance(c, Compressed):
        raise InvalidType(f"decompress needs a Compressed, got {type(c).__name__}")
    if c.method != name:
        raise InvalidInput(f"{name} cannot decompress a {c.method!r} update")
    if not isinstance(c.meta, dict) or "structure" not in c.meta:
        raise InvalidInput(f"{name}: meta has no 'structure'; was it made by this compressor?")
    return c.meta


def _payload_size(c: Compressed, expected: int, name: str) -> None:
    if len(c.payload) != expected:
        raise InvalidInput(
            f"{name}: payload has {len(c.payload)} bytes, the structure needs {expected}"
        )


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidType(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


# ---- measures -----------------------------------------------------------------------------------


def compression_ratio(original_float32_bytes: int, c: Compressed) -> float:
    """``original_float32_bytes / c.nbytes`` (``nbytes`` includes the 16-byte header estimate)."""
    n = _check_int("original_float32_bytes", original_float32_bytes, 0)
    if not isinstance(c, Compressed):
        raise InvalidType(f"c must be a Compressed, got {type(c).__name__}")
    return n / c.nbytes


def relative_error(orig: object, recon: object) -> float:
    """``||orig - recon|| / ||orig||`` in float64 over all layers; 0 when ``orig`` is all zero
    (and ``inf`` when ``orig`` is zero but ``recon`` is not). Structures must match."""
    a_layers, sa = _layers_of(orig, None)
    b_layers, sb = _layers_of(recon, None)
    if sa[0] != sb[0] or _shapes(sa) != _shapes(sb):
        raise InvalidInput(
            f"orig and recon differ in structure: {sa[0]} {_shapes(sa)} vs {sb[0]} {_shapes(sb)}"
        )
    num = sum(float(np.sum((a.astype(np.float64) - b) ** 2)) for a, b in zip(a_layers, b_layers))
    den = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in a_layers)
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return math.sqrt(num / den)


# ---- base ----------------------------------------------------------------------------------------


class Compressor:
    """Base class. Subclasses implement ``_encode(layers) -> (payload, meta)`` and
    ``_decode(payload, meta, shapes) -> layers``; the base handles structure and checks."""

    name: str = "base"

    def __init__(self, *, layout: Sequence[Sequence[int] | int] | None = None) -> None:
        self.layout = _check_layout(layout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def reset(self) -> None:
        """Forget per-client state (no-op for stateless compressors)."""

    def compress(self, delta: np.ndarray | list[np.ndarray]) -> Compressed:
        """Compress a flat vector (or any array) or a list of layer arrays."""
        layers, structure = _layers_of(delta, self.layout)
        payload, meta = self._encode(layers, structure)
        meta = {"structure": structure, **meta}
        return Compressed(self.name, bytes(payload), meta)

    def decompress(self, c: Compressed) -> np.ndarray | list[np.ndarray]:
        """The float32 reconstruction, in the structure that was compressed."""
        meta = _check_meta(c, self.name)
        structure = meta["structure"]
        layers = self._decode(c, meta, _shapes(structure))
        return _restore(layers, structure)

    def _encode(self, layers: list[np.ndarray], structure: tuple) -> tuple[bytes, dict]:
        raise NotImplementedError

    def _decode(self, c: Compressed, meta: dict, shapes: tuple) -> list[np.ndarray]:
        raise NotImplementedError


def _split_flat(flat: np.ndarray, shapes: tuple) -> list[np.ndarray]:
    out, off = [], 0
    for s in shapes:
        k = math.prod(s)
        out.append(flat[off : off + k].reshape(s))
        off += k
    return out


class NoCompression(Compressor):
    """Raw float32, little-endian (the baseline)."""

    name = "none"

    def _encode(self, layers, structure):
        return b"".join(a.astype("<f4").tobytes() for a in layers), {}

    def _decode(self, c, meta, shapes):
        n = sum(math.prod(s) for s in shapes)
        _payload_size(c, 4 * n, self.name)
        flat = np.frombuffer(c.payload, dtype="<f4").astype(np.float32)
        return _split_flat(flat, shapes)


class Q16Packer(Compressor):
    """Q16.16 int32 little-endian, through :func:`qora.native.to_q16` (the C core's conversion).

    Round to nearest (ties away from zero): error <= 2^-17 per element for |x| < 32768, exact for
    float32 values on the 2^-16 grid. Values outside [-32768, 32768) saturate (``meta['saturated']``
    is True). 4 bytes per value like float32, so the ratio is ~1 on its own; small deltas have
    many 0x00 / 0xFF high bytes, which ``zstd+q16`` exploits.
    """

    name = "q16"

    def _encode(self, layers, structure):
        from qora.native import to_q16

        flat = np.concatenate([a.ravel() for a in layers]) if layers else np.zeros(0, np.float32)
        q, saturated = to_q16(flat)
        return q.astype("<i4").tobytes(), {"saturated": bool(saturated)}

    def _decode(self, c, meta, shapes):
        from qora.native import from_q16

        n = sum(math.prod(s) for s in shapes)
        _payload_size(c, 4 * n, self.name)
        q = np.frombuffer(c.payload, dtype="<i4").astype(np.int32)
        return _split_flat(from_q16(q), shapes)


class Int8Quantizer(Compressor):
    """Per-tensor symmetric int8: ``scale = max|x| / 127``, ``q = round(x / scale)`` in [-127, 127].

    Deterministic rounding (round half to even) has error <= scale / 2 per element; stochastic
    rounding (``q = floor(x / scale + u)``, ``u ~ U[0, 1)`` from a generator seeded with ``seed``)
    is unbiased, ``E[q * scale] = x``, with error < scale. Payload: one float32 scale per tensor,
    then the int8 values (one byte per value: ratio ~4 before the header).
    """

    def __init__(self, stochastic: bool = False, seed: int = 0, *, layout=None) -> None:
        super().__init__(layout=layout)
        self.stochastic = _check_bool("stochastic", stochastic)
        self.seed = _check_int("seed", seed, 0)
        self.name = "int8-stochastic" if self.stochastic else "int8"
        self._rng = np.random.default_rng(self.seed)

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _encode(self, layers, structure):
        scales = np.empty(len(layers), dtype="<f4")
        qs = []
        for i, a in enumerate(layers):
            amax = float(np.max(np.abs(a))) if a.size else 0.0
            s = np.float32(amax / 127.0)
            scales[i] = s
            if s == 0.0:  # all zero (or max|x| / 127 underflows float32): send zeros
                qs.append(np.zeros(a.size, dtype=np.int8))
                continue
            y = a.ravel().astype(np.float64) / float(s)
            if self.stochastic:
                y = np.floor(y + self._rng.random(y.shape))
            else:
                y = np.rint(y)
            qs.append(np.clip(y, -127, 127).astype(np.int8))
        body = np.concatenate(qs) if qs else np.zeros(0, np.int8)
        return scales.tobytes() + body.tobytes(), {}

    def _decode(self, c, meta, shapes):
        n = sum(math.prod(s) for s in shapes)
        _payload_size(c, 4 * len(shapes) + n, self.name)
        scales = np.frombuffer(c.payload, dtype="<f4", count=len(shapes))
        q = np.frombuffer(c.payload, dtype=np.int8, offset=4 * len(shapes))
        out, off = [], 0
        for s, shape in zip(scales, shapes, strict=True):
            k = math.prod(shape)
            out.append((q[off : off + k].astype(np.float64) * float(s)).astype(np.float32).reshape(shape))
            off += k
        return out


# ---- PowerSGD ------------------------------------------------------------------------------------


def _near_square(n: int) -> tuple[int, int]:
    """rows = ceil(sqrt(n)), cols = ceil(n / rows): the flat vector is zero-padded to rows*cols."""
    if n == 0:
        return (0, 0)
    rows = math.isqrt(n - 1) + 1
    return rows, -(-n // rows)


def _plan(shape: tuple[int, ...], single: bool, rank: int) -> tuple[str, int, int, int]:
    """How a PowerSGD layer travels, from its shape and the rank alone (both ends agree):
    (kind, rows, cols, r), kind 'lowrank' (P, Q) or 'raw' (float32)."""
    n = math.prod(shape)
    if len(shape) >= 2:
        rows, cols = shape[0], (n // shape[0] if shape[0] else 0)
    elif single:  # a lone flat vector: near-square
        rows, cols = _near_square(n)
    else:
        return ("raw", 0, 0, 0)
    r = min(rank, rows, cols)
    if r == 0 or r * (rows + cols) >= rows * cols:
        return ("raw", rows, cols, 0)
    return ("lowrank", rows, cols, r)


class PowerSGD(Compressor):
    """Low-rank compression by power iteration (Vogels, Karimireddy, Jaggi, NeurIPS 2019).

    For each matrix-shaped layer ``M`` (after adding the error-feedback memory ``e``)::

        Q: (cols, r) warm (last call's Q) or random N(0, 1)
        repeat power_iterations times:
            P = M Q;  P = orthonormalise(P) (np.linalg.qr);  Q = M^T P
        send P (rows, r) and Q (cols, r) as float32;  receiver: approx = P Q^T
        e = M - approx (computed from the float32 factors the receiver gets)

    Which layers are matrices:

    * a list of layers: each 2-D layer; a layer with more dimensions is viewed as
      ``(shape[0], -1)``; 0-/1-D layers (biases) are sent as float32, uncompressed;
    * a single 2-D array: that matrix;
    * a single 1-D vector with no ``layout``: the whole vector, zero-padded to a near-square
      ``(ceil(sqrt(n)), ceil(n / rows))`` matrix (2,410 MLP parameters -> 50 x 49). This mixes
      layers in one matrix; pass the list of layers or ``layout=model_layout(model)`` to compress
      per layer as the paper does.

    The effective rank of a ``(rows, cols)`` matrix is ``min(rank, rows, cols)``; when the factors
    would take at least as many values as the matrix (``r (rows + cols) >= rows cols``) the layer is
    sent as float32 instead (decided from the shapes alone, so both ends agree).

    ``error_feedback`` keeps the residual and adds it to the next delta, so nothing is lost for
    good, only delayed. ``warm_start`` reuses Q, which makes successive calls act as extra power
    iterations on slowly changing updates. Random Q come from a generator seeded with ``seed``.
    The payload is float32 little-endian: per layer in order, P then Q (or the raw values).
    """

    def __init__(
        self,
        rank: int = 4,
        power_iterations: int = 1,
        error_feedback: bool = True,
        warm_start: bool = True,
        seed: int = 0,
        *,
        layout=None,
    ) -> None:
        super().__init__(layout=layout)
        self.rank = _check_int("rank", rank, 1)
        self.power_iterations = _check_int("power_iterations", power_iterations, 1)
        self.error_feedback = _check_bool("error_feedback", error_feedback)
        self.warm_start = _check_bool("warm_start", warm_start)
        self.seed = _check_int("seed", seed, 0)
        self.name = "powersgd"
        self.reset()

    def __repr__(self) -> str:
        return (
            f"PowerSGD(rank={self.rank}, power_iterations={self.power_iterations}, "
            f"error_feedback={self.error_feedback}, warm_start={self.warm_start}, seed={self.seed})"
        )

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._structure: tuple | None = None
        self._memory: list[np.ndarray] | None = None  # per layer, float64, layer shapes
        self._q: list[np.ndarray | None] | None = None  # per layer warm-start Q

    @property
    def error_memory(self) -> np.ndarray | list[np.ndarray] | None:
        """The residual that will be added to the next delta (float32, in the structure of the
        last delta), or None before the first call or without error feedback."""
        if self._memory is None or self._structure is None:
            return None
        return _restore([m.astype(np.float32) for m in self._memory], self._structure)

    def _encode(self, layers, structure):
        shapes = _shapes(structure)
        if self._structure is not None and (
            self._structure[0] != structure[0] or _shapes(self._structure) != shapes
        ):
            raise InvalidInput(
                f"PowerSGD holds state for {self._structure[0]} {list(_shapes(self._structure))}, "
                f"got {structure[0]} {list(shapes)}: use one instance per model, or reset()"
            )
        single = structure[0] == "array"
        if self._structure is None:
            self._structure = structure
            self._q = [None] * len(layers)
            if self.error_feedback:
                self._memory = [np.zeros(s, dtype=np.float64) for s in shapes]
        parts: list[bytes] = []
        plans = []
        for i, a in enumerate(layers):
            m = a.astype(np.float64)
            if self._memory is not None:
                m = m + self._memory[i]
            kind, rows, cols, r = _plan(a.shape, single, self.rank)
            plans.append((kind, r))
            if kind == "raw":
                sent = m.astype(np.float32)
                parts.append(sent.astype("<f4").tobytes())
                approx = sent.astype(np.float64)
            else:
                mat = np.zeros(rows * cols, dtype=np.float64)
                mat[: m.size] = m.ravel()
                mat = mat.reshape(rows, cols)
                p32, q32 = self._factor(i, mat, r)
                parts += [p32.astype("<f4").tobytes(), q32.astype("<f4").tobytes()]
                approx = (p32.astype(np.float64) @ q32.astype(np.float64).T).ravel()[: m.size]
                approx = approx.reshape(a.shape)
            if self._memory is not None:
                self._memory[i] = m - approx
        return b"".join(parts), {
            "rank": self.rank,
            "single": single,
            "plans": plans,
        }

    def _factor(self, i: int, mat: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        cols = mat.shape[1]
        q = self._q[i] if (self.warm_start and self._q[i] is not None) else None
        if q is None:
            q = self._rng.standard_normal((cols, r))
        else:
            # A column that collapsed to zero (e.g. after an all-zero delta) would stay zero
            # for ever under warm start: redraw it.
            dead = np.linalg.norm(q, axis=0) <= 1e-30
            if dead.any():
                q = q.copy()
                q[:, dead] = self._rng.standard_normal((cols, int(dead.sum())))
        for _ in range(self.power_iterations):
            p, _ = np.linalg.qr(mat @ q)  # reduced QR: p has r orthonormal columns
            q = mat.T @ p
        self._q[i] = q
        return p.astype(np.float32), q.astype(np.float32)

    def _decode(self, c, meta, shapes):
        plans, single, rank = meta.get("plans"), meta.get("single"), meta.get("rank")
        if not isinstance(plans, list) or len(plans) != len(shapes):
            raise InvalidInput("powersgd: meta 'plans' does not match the structure")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise InvalidInput(f"powersgd: meta 'rank' must be an int >= 1, got {rank!r}")
        layout = [_plan(tuple(s), bool(single), rank) for s in shapes]
        sizes = []
        for shape, plan, (kind, rows, cols, r) in zip(shapes, plans, layout, strict=True):
            if tuple(plan) != (kind, r):
                raise InvalidInput(f"powersgd: layer {shape}: plan {plan} != expected {(kind, r)}")
            sizes.append(math.prod(shape) if kind == "raw" else r * (rows + cols))
        _payload_size(c, 4 * sum(sizes), self.name)
        flat = np.frombuffer(c.payload, dtype="<f4")
        out, off = [], 0
        for shape, (kind, rows, cols, r), k in zip(shapes, layout, sizes, strict=True):
            chunk = flat[off : off + k].astype(np.float64)
            off += k
            if kind == "raw":
                out.append(chunk.astype(np.float32).reshape(shape))
                continue
            p = chunk[: rows * r].reshape(rows, r)
            q = chunk[rows * r :].reshape(cols, r)
            # float32 factors widened to float64, the product rounded once to float32
            out.append((p @ q.T).ravel()[: math.prod(shape)].astype(np.float32).reshape(shape))
        return out


# ---- zstd ----------------------------------------------------------------------------------------


class Zstd(Compressor):
    """zstd (the ``zstandard`` package) over the inner compressor's payload, or over raw float32.

    Lossless over its inner: ``decompress`` gives exactly what ``inner.decompress`` gives. Raw
    float32 deltas hardly compress (their low mantissa bits are noise); int8 and Q16.16 payloads
    of small deltas compress better. The zstd frame header (~6-13 bytes) is in the payload.
    """

    def __init__(self, inner: Compressor | None = None, level: int = 3, *, layout=None) -> None:
        import zstandard

        super().__init__(layout=layout)
        if inner is not None and not isinstance(inner, Compressor):
            raise InvalidType(f"inner must be a Compressor or None, got {type(inner).__name__}")
        if isinstance(inner, Zstd):
            raise InvalidInput("zstd over zstd gains nothing: give a non-zstd inner compressor")
        self.level = _check_int("level", level, 1)
        if self.level > zstandard.MAX_COMPRESSION_LEVEL:
            raise InvalidInput(
                f"level must be <= {zstandard.MAX_COMPRESSION_LEVEL}, got {self.level}"
            )
        self.inner = inner if inner is not None else NoCompression(layout=layout)
        self.name = "zstd" if inner is None else f"zstd+{inner.name}"
        self._cctx = zstandard.ZstdCompressor(level=self.level)
        self._dctx = zstandard.ZstdDecompressor()

    def reset(self) -> None:
        self.inner.reset()

    def compress(self, delta):
        c = self.inner.compress(delta)
        return Compressed(
            self.name,
            self._cctx.compress(c.payload),
            {"structure": c.meta["structure"], "inner_method": c.method,
             "inner_meta": c.meta, "inner_nbytes": len(c.payload)},
        )

    def decompress(self, c):
        import zstandard

        meta = _check_meta(c, self.name)
        if meta.get("inner_method") != self.inner.name:
            raise InvalidInput(f"{self.name}: inner method {meta.get('inner_method')!r} is not "
                               f"{self.inner.name!r}")
        try:
            raw = self._dctx.decompress(c.payload, max_output_size=int(meta["inner_nbytes"]))
        except zstandard.ZstdError as exc:
            raise InvalidInput(f"{self.name}: corrupt zstd payload: {exc}") from exc
        return self.inner.decompress(Compressed(self.inner.name, raw, meta["inner_meta"]))


# ---- by name -------------------------------------------------------------------------------------

NAMES = ("none", "powersgd", "powersgd:R", "int8", "int8-stochastic", "q16", "zstd",
         "zstd+int8", "zstd+int8-stochastic", "zstd+q16", "zstd+powersgd:R")


def get_compressor(name: str, **kw: Any) -> Compressor:
    """A new compressor by name: ``none``, ``powersgd``, ``powersgd:R`` (rank R), ``int8``,
    ``int8-stochastic``, ``q16``, ``zstd`` and ``zstd+X`` for any non-zstd X above.

    Keyword arguments go to the constructor (for ``zstd+X``: ``level`` to :class:`Zstd`, the
    rest to X), e.g. ``get_compressor("powersgd:2", error_feedback=False, seed=3)``.
    """
    if not isinstance(name, str):
        raise InvalidType(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key.startswith("zstd+"):
        level = kw.pop("level", 3)
        inner_name = key[len("zstd+"):]
        if inner_name.startswith("zstd") or inner_name == "none":
            raise InvalidInput(f"unknown compressor {name!r}: use 'zstd' for zstd over float32")
        return Zstd(get_compressor(inner_name, **kw), level=level)
    if key == "zstd":
        return Zstd(None, **kw)
    if key == "none":
        return NoCompression(**kw)
    if key == "q16":
        return Q16Packer(**kw)
    if key == "int8":
        return Int8Quantizer(stochastic=False, **kw)
    if key == "int8-stochastic":
        return Int8Quantizer(stochastic=True, **kw)
    if key == "powersgd":
        return PowerSGD(**kw)
    if key.startswith("powersgd:"):
        r = key[len("powersgd:"):]
        if not r.isdigit():
            raise InvalidInput(f"compressor {name!r}: the rank after ':' must be an integer")
        if "rank" in kw:
            raise InvalidInput(f"compressor {name!r} already sets the rank; drop rank=")
        return PowerSGD(rank=int(r), **kw)
    raise InvalidInput(f"unknown compressor {name!r}; known: {', '.join(NAMES)}")
