"""Q16.16 training of the small dense models in numpy, bit-identical to the reference.

:class:`Q16Model` runs the integer algorithm of :mod:`qora.reference.train` (and of the
node firmware; docs/fixed-point-training.md) vectorised over the minibatch and the layer,
in int64 arrays. Same inputs give the same bits as ``reference.train.sgd_step_q16`` /
``train_epoch_q16``; tests/sim/test_fixed_training.py checks it with hypothesis.
:meth:`Q16Model.train_node` replays a node's ``qn_train`` (its own visiting order,
``reference.train.node_order``); tests/firmware/test_train.py checks it against the C.

Why int64 is enough (every bound is a hard one, not a typical value):

* parameters, activations, logits and backpropagated deltas are int32 (saturated);
* a product of two int32 is < 2^62 in magnitude (2^62 exactly for INT32_MIN^2) and
  its rounding to Q16.16, ``rnd16``, is <= 2^46;
* a dot product of ``fan_in`` (or ``fan_out``) rounded products is < fan * 2^46, so any
  layer width below 2^16 fits;
* the gradient accumulator of one parameter sums ``batch`` rounded products (<= 2^46
  each), so a batch of up to 2^16 rows fits (checked);
* softmax: ``e_j * 2^16 <= 2^46`` and ``sum e_j <= n_classes * 2^30``.

Parameters and data may be given either as integer arrays (raw Q16.16) or as float arrays
(converted with :func:`qora.native.to_q16`: round half away from zero, saturated);
:meth:`Q16Model.train` returns the kind it was given (int32 raw, or float32 values), so the
model drops into a float training loop (:class:`qora.sim.client.Client`) while its arithmetic
stays Q16.16.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qora.errors import InvalidInput, InvalidType
from qora.models import MLP, SoftmaxRegression, minibatches
from qora.native import from_q16, to_q16
from qora.reference import train as _ref

__all__ = ["Q16Model", "exp_q30", "softmax_q16"]

ONE = 1 << 16
HALF = 1 << 15
I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1
MAX_BATCH = 1 << 16
_TABLE = np.array(_ref.EXP2_TABLE, dtype=np.int64)
_PREDICT_CHUNK = 256


# ---- integer kernels (int64 arrays) ----------------------------------------------------------


def _rnd16(p: np.ndarray) -> np.ndarray:
    """p / 2^16 rounded half away from zero, elementwise ([R1])."""
    r = (np.abs(p) + HALF) >> 16
    np.negative(r, out=r, where=p < 0)
    return r


def _sat32(v: np.ndarray) -> np.ndarray:
    return np.clip(v, I32_MIN, I32_MAX)


def mul_q16(a: np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """Elementwise Q16.16 multiply: sat32(rnd16(a * b)), as qora_q16_mul in C (int32 out)."""
    return _sat32(_rnd16(np.asarray(a, np.int64) * np.asarray(b, np.int64))).astype(np.int32)


def sub_q16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise saturating a - b on Q16.16 int32 (a node's delta = local - global)."""
    return _sat32(np.asarray(a, np.int64) - np.asarray(b, np.int64)).astype(np.int32)


def _div_round(num: np.ndarray, den: int | np.ndarray) -> np.ndarray:
    """num / den rounded half away from zero (den > 0): q16.div_round_i64 elementwise."""
    mag = np.abs(num)
    q = mag // den
    r = mag - q * den
    q += r >= den - r
    np.negative(q, out=q, where=num < 0)
    return q


def exp_q30(x: np.ndarray) -> np.ndarray:
    """exp(x) for Q16.16 x <= 0 as Q2.30 int64 (reference.train.exp_q30, elementwise)."""
    x = np.asarray(x, dtype=np.int64)
    if np.any(x > 0):
        raise InvalidInput("exp_q30: x must be <= 0")
    ok = x >= _ref.EXP_MIN
    nx = np.where(ok, -x, 0)
    u = (nx * _ref.LOG2E_Q30 + (1 << 21)) >> 22          # [R2]
    n = u >> 24
    f = u & 0xFFFFFF
    i = f >> 16
    r = f & 0xFFFF
    a = _TABLE[i]
    v = a - (((a - _TABLE[i + 1]) * r + HALF) >> 16)     # [R3]
    e = (2 * v + np.left_shift(1, n)) >> (n + 1)         # [R4] = rnd(v / 2^n), n >= 0
    return np.where(ok, e, 0)


def exp_q16(x: np.ndarray) -> np.ndarray:
    """exp(x) for Q16.16 x <= 0 as Q16.16 int64 (reference.train.exp_q16, elementwise)."""
    x = np.asarray(x, dtype=np.int64)
    if np.any(x > 0):
        raise InvalidInput("exp_q16: x must be <= 0")
    ok = x >= _ref.EXP_MIN
    nx = np.where(ok, -x, 0)
    u = (nx * _ref.LOG2E_Q30 + (1 << 21)) >> 22
    n = (u >> 24) + 14
    f = u & 0xFFFFFF
    i = f >> 16
    r = f & 0xFFFF
    a = _TABLE[i]
    v = a - (((a - _TABLE[i + 1]) * r + HALF) >> 16)
    e = (v + np.left_shift(1, n - 1)) >> n
    return np.where(ok, e, 0)


def softmax_q16(z: np.ndarray) -> np.ndarray:
    """Row-wise Q16.16 softmax of int logits (m, n) -> int64 (m, n) ([R5])."""
    z = np.asarray(z, dtype=np.int64)
    e = exp_q30(z - z.max(axis=1, keepdims=True))
    s = e.sum(axis=1, keepdims=True)
    return _div_round(e << 16, s)


def _dense(W: np.ndarray, b: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(m, fan_in) -> (m, fan_out): sat32(b + sum_i rnd16(W_ji h_i)) ([R1])."""
    return _sat32(b + _rnd16(W[None, :, :] * h[:, None, :]).sum(axis=2))


# ---- the model -------------------------------------------------------------------------------


class Q16Model:
    """Dense ReLU network with softmax output, trained in Q16.16 integers.

    ``layer_sizes = (n_features, hidden..., n_classes)``: ``(64, 10)`` is softmax regression,
    ``(64, 32, 10)`` the MLP. Flat parameter layout as :mod:`qora.models` (per layer W
    (fan_out, fan_in) row-major, then b), each value a Q16.16 int32.
    """

    def __init__(self, layer_sizes: Sequence[int] = (64, 10)) -> None:
        sizes = tuple(layer_sizes)
        if len(sizes) < 2:
            raise InvalidInput(f"layer_sizes needs at least 2 sizes (in, out), got {sizes}")
        for i, s in enumerate(sizes):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise InvalidInput(f"layer_sizes[{i}] must be an int >= 1, got {s!r}")
            if s >= 1 << 16:
                raise InvalidInput(f"layer_sizes[{i}] = {s}: layers must be narrower than 2^16")
        if sizes[-1] < 2:
            raise InvalidInput(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        self.layer_sizes: tuple[int, ...] = tuple(int(s) for s in sizes)
        self.n_features = self.layer_sizes[0]
        self.n_classes = self.layer_sizes[-1]
        self._slices = _ref.layer_slices(self.layer_sizes)
        self.n_params: int = _ref.n_params(self.layer_sizes)

    def __repr__(self) -> str:
        return f"Q16Model(layer_sizes={self.layer_sizes}, n_params={self.n_params})"

    # -- conversions / checks --

    def _float_twin(self):
        if len(self.layer_sizes) == 2:
            return SoftmaxRegression(self.n_features, self.n_classes)
        return MLP(self.layer_sizes)

    def init_params(self, seed: int = 0) -> np.ndarray:
        """The float model's seeded init (SoftmaxRegression for 2 sizes, MLP otherwise)
        converted with qora.native.to_q16: an int32 vector."""
        return to_q16(self._float_twin().init_params(seed))[0]

    def _params(self, params: object) -> tuple[np.ndarray, bool]:
        """(int64 Q16.16 params, given as float)."""
        p = np.asarray(params)
        if p.shape != (self.n_params,):
            raise InvalidInput(f"params must have shape ({self.n_params},), got {p.shape}")
        if np.issubdtype(p.dtype, np.floating):
            return to_q16(p.astype(np.float32))[0].astype(np.int64), True
        if not np.issubdtype(p.dtype, np.integer):
            raise InvalidType(f"params must be an int (raw Q16.16) or float array, got {p.dtype}")
        if p.size and (p.min() < I32_MIN or p.max() > I32_MAX):
            raise InvalidInput("raw Q16.16 params must lie in the int32 range")
        return p.astype(np.int64), False

    def _X(self, X: object) -> np.ndarray:
        x = np.asarray(X)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InvalidInput(f"X must have shape (m, {self.n_features}), got {x.shape}")
        if np.issubdtype(x.dtype, np.floating):
            return to_q16(x.astype(np.float32))[0].astype(np.int64)
        if not np.issubdtype(x.dtype, np.integer):
            raise InvalidType(f"X must be an int (raw Q16.16) or float array, got {x.dtype}")
        if x.size and (x.min() < I32_MIN or x.max() > I32_MAX):
            raise InvalidInput("raw Q16.16 inputs must lie in the int32 range")
        return x.astype(np.int64)

    def _y(self, y: object, m: int) -> np.ndarray:
        labels = np.asarray(y)
        if labels.shape != (m,):
            raise InvalidInput(f"y must have shape ({m},) to match X, got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise InvalidType(f"y must hold integer class labels, got dtype {labels.dtype}")
        if m and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise InvalidInput(f"y labels must be in [0, {self.n_classes})")
        return labels.astype(np.intp)

    def _layers(self, p: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(p[w0:b0].reshape(fan_out, fan_in), p[b0:b0 + fan_out])
                for w0, b0, fan_in, fan_out in self._slices]

    # -- forward --

    def _forward(self, layers, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        acts = [x]
        h = x
        last = len(layers) - 1
        for k, (W, b) in enumerate(layers):
            z = _dense(W, b, h)
            if k == last:
                return acts, z
            h = np.maximum(z, 0)
            acts.append(h)
        raise AssertionError("unreachable")

    def logits(self, params_q: object, X_q: object) -> np.ndarray:
        """Q16.16 logits, int64 (m, n_classes)."""
        layers = self._layers(self._params(params_q)[0])
        x = self._X(X_q)
        out = np.empty((x.shape[0], self.n_classes), dtype=np.int64)
        for s in range(0, x.shape[0], _PREDICT_CHUNK):
            out[s:s + _PREDICT_CHUNK] = self._forward(layers, x[s:s + _PREDICT_CHUNK])[1]
        return out

    def forward(self, params_q: object, X_q: object) -> list[np.ndarray]:
        """Activations per layer for a batch: [X, h_1, ..., h_{L-1}, P] (int64), as
        reference.train.forward_q16 row by row."""
        acts, z = self._forward(self._layers(self._params(params_q)[0]), self._X(X_q))
        return acts + [softmax_q16(z)]

    def predict_proba_q16(self, params_q: object, X_q: object) -> np.ndarray:
        """Q16.16 class probabilities, int64 (m, n_classes); rows sum to 65536 +- n/2."""
        return softmax_q16(self.logits(params_q, X_q))

    def predict_proba(self, params: object, X: object) -> np.ndarray:
        """The Q16.16 probabilities as float64 (value / 65536): the ModelAdapter contract."""
        return self.predict_proba_q16(params, X).astype(np.float64) / ONE

    def predict(self, params_q: object, X_q: object) -> np.ndarray:
        """argmax of the logits (lowest class wins ties), int64 (m,)."""
        return np.argmax(self.logits(params_q, X_q), axis=1).astype(np.int64)

    # -- training --

    def _grad_sum(self, layers, x: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """Per layer (gW_sum, gb_sum), exact int64 sums over the batch."""
        acts, z = self._forward(layers, x)
        delta = softmax_q16(z)
        delta[np.arange(x.shape[0]), labels] -= ONE
        grads: list = [None] * len(layers)
        for k in range(len(layers) - 1, -1, -1):
            W, _ = layers[k]
            h = acts[k]
            gW = _rnd16(delta[:, :, None] * h[:, None, :]).sum(axis=0)
            gb = delta.sum(axis=0)
            grads[k] = (gW, gb)
            if k:
                dh = _sat32(_rnd16(W[None, :, :] * delta[:, :, None]).sum(axis=1))
                delta = np.where(h > 0, dh, 0)
        return grads

    def _step(self, p: np.ndarray, x: np.ndarray, labels: np.ndarray, lr_q: int) -> np.ndarray:
        m = x.shape[0]
        grads = self._grad_sum(self._layers(p), x, labels)
        g = np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])
        gm = _sat32(_div_round(g, m))                         # [R6]
        step = _sat32(_rnd16(np.int64(lr_q) * gm))            # [R7] q16.mul
        return _sat32(p - step)

    @staticmethod
    def _lr_q(lr_q: object) -> int:
        if isinstance(lr_q, bool) or not isinstance(lr_q, (int, np.integer)):
            raise InvalidType(f"lr_q must be a raw Q16.16 int, got {type(lr_q).__name__}")
        if not I32_MIN <= lr_q <= I32_MAX:
            raise InvalidInput("lr_q must lie in the int32 range")
        return int(lr_q)

    def train_step(self, params_q: object, X_q: object, y: object, lr_q: int) -> np.ndarray:
        """One SGD step on the batch (reference.train.sgd_step_q16): int32 params.

        ``lr_q`` is the learning rate as a raw Q16.16 int (6554 = 0.1)."""
        p, _ = self._params(params_q)
        x = self._X(X_q)
        labels = self._y(y, x.shape[0])
        if not 1 <= x.shape[0] <= MAX_BATCH:
            raise InvalidInput(f"a batch needs 1..{MAX_BATCH} rows, got {x.shape[0]}")
        return self._step(p, x, labels, self._lr_q(lr_q)).astype(np.int32)

    def train_epoch(self, params_q: object, X_q: object, y: object, lr_q: int,
                    batch_size: int, order: Sequence[int]) -> np.ndarray:
        """One epoch in the caller's visiting order (reference.train.train_epoch_q16)."""
        p, _ = self._params(params_q)
        x = self._X(X_q)
        labels = self._y(y, x.shape[0])
        lr = self._lr_q(lr_q)
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch_size must be in 1..{MAX_BATCH}, got {batch_size}")
        order = np.asarray(order, dtype=np.intp)
        for s in range(0, order.size, batch_size):
            idx = order[s:s + batch_size]
            p = self._step(p, x[idx], labels[idx], lr)
        return p.astype(np.int32)

    def train_node(self, params_q: object, X_q: object, y: object, epochs: int,
                   batch_size: int, lr_q: int, seed: int) -> np.ndarray:
        """What a node's ``qn_train`` computes (reference.train.train_node_q16): epoch ``e``
        visits the rows in ``reference.train.node_order((seed + e) mod 2^32, m)``, not in
        numpy's permutation; ``lr_q`` is raw Q16.16. Returns int32 params (unchanged when X_q
        has no rows or ``epochs`` is 0)."""
        p, _ = self._params(params_q)
        x = self._X(X_q)
        labels = self._y(y, x.shape[0])
        lr = self._lr_q(lr_q)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise InvalidInput(f"epochs must be an int >= 0, got {epochs!r}")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                or not 1 <= batch_size <= MAX_BATCH):
            raise InvalidInput(f"batch_size must be an int in 1..{MAX_BATCH}, got {batch_size!r}")
        if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                or not 0 <= seed <= _ref.MASK32):
            raise InvalidInput(f"seed must be an int in [0, 2^32), got {seed!r}")
        m = x.shape[0]
        for e in range(int(epochs) if m else 0):
            order = np.array(_ref.node_order((int(seed) + e) & _ref.MASK32, m), dtype=np.intp)
            for s in range(0, m, batch_size):
                idx = order[s:s + batch_size]
                p = self._step(p, x[idx], labels[idx], lr)
        return p.astype(np.int32)

    def train(self, params: object, X: object, y: object, epochs: int = 1, lr: float = 0.1,
              batch_size: int = 32, seed: int = 0) -> np.ndarray:
        """Minibatch SGD in Q16.16, visiting order as qora.models (one
        ``np.random.default_rng(seed).permutation(m)`` per epoch).

        ``lr`` is a real number, converted once: ``to_q16(float32(lr))`` (0.1 -> 6554).
        Returns int32 raw Q16.16 when ``params`` was an int array, float32 values when
        it was a float array (converted in with to_q16, out with from_q16)."""
        p, as_float = self._params(params)
        x = self._X(X)
        labels = self._y(y, x.shape[0])
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise InvalidInput(f"epochs must be an int >= 0, got {epochs!r}")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                or not 1 <= batch_size <= MAX_BATCH):
            raise InvalidInput(f"batch_size must be an int in 1..{MAX_BATCH}, got {batch_size!r}")
        if (isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating))
                or not (np.isfinite(lr) and lr > 0)):
            raise InvalidInput(f"lr must be a finite number > 0, got {lr!r}")
        lr_q = int(to_q16(np.array([lr], dtype=np.float32))[0][0])
        if lr_q == 0:
            raise InvalidInput(f"lr = {lr!r} rounds to 0 in Q16.16")
        m = x.shape[0]
        if m == 0:
            raise InvalidInput("X has no rows")
        for idx in minibatches(m, epochs, batch_size, seed):
            p = self._step(p, x[idx], labels[idx], lr_q)
        out = p.astype(np.int32)
        return from_q16(out) if as_float else out
