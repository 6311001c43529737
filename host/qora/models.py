"""Model adapters: turn a flat parameter vector into predictions.

The mutual-information filter (:mod:`qora.filtering`) needs one thing from a
model: given a flat parameter vector (what clients send, what aggregators
average) and a batch of inputs, the class probabilities. :class:`ModelAdapter`
is that contract; three adapters ship:

:class:`SoftmaxRegression`
    multinomial logistic regression in numpy (one dense layer + softmax).
:class:`MLP`
    dense ReLU network in numpy, softmax output.
:class:`TorchAdapter`
    any ``torch.nn.Module`` that maps a batch to logits (needs PyTorch;
    importing this module never imports torch).

The numpy models also train (plain minibatch SGD on the cross-entropy), enough
to simulate honest clients in tests and demos.

Flat parameter layout (numpy models)
------------------------------------
Layer by layer, input side first; for each dense layer with ``fan_in`` inputs
and ``fan_out`` outputs: the weight matrix ``W`` of shape ``(fan_out, fan_in)``
in row-major (C) order, then the bias ``b`` of shape ``(fan_out,)``; the
layer computes ``h @ W.T + b``. This is exactly the order and shape of
``torch.nn.Linear``'s ``weight`` then ``bias``, so the same flat vector means
the same model to ``SoftmaxRegression(64, 10)`` and to
``TorchAdapter(torch.nn.Linear(64, 10))`` (and to an ``MLP`` and the matching
``nn.Sequential`` of ``Linear`` / ``ReLU`` layers).
``n_params = sum((fan_in + 1) * fan_out)`` over the layers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from qora.errors import InvalidInput, InvalidType

__all__ = ["MLP", "ModelAdapter", "SoftmaxRegression", "TorchAdapter"]


def minibatches(m: int, epochs: int, batch_size: int, seed: int):
    """The visiting order every trainer here shares (float and Q16.16 alike, so the two
    modes see the same batches): per epoch a permutation of the m rows drawn from
    np.random.default_rng(seed), cut into batches of batch_size (the last may be smaller)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(m)
        for start in range(0, m, batch_size):
            yield order[start:start + batch_size]


@runtime_checkable
class ModelAdapter(Protocol):
    """What the MI filter needs from a model.

    ``n_params``: length of the flat parameter vector.
    ``predict_proba(params, X)``: ``params`` of shape ``(n_params,)``, ``X`` a
    batch of ``m`` inputs (``(m, n_features)`` for the numpy models) ->
    ``(m, n_classes)`` class probabilities.
    ``predict(params, X)``: ``(m,)`` integer labels (argmax of the above).

    An adapter may also define ``n_features`` (int): the filter then checks the
    probe set's width against it up front.
    """

    n_params: int

    def predict_proba(self, params: np.ndarray, X: np.ndarray) -> np.ndarray: ...

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray: ...


# ---- checks -----------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_float_array(name: str, x: object) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidType(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def _first_nonfinite(name: str, arr: np.ndarray) -> str:
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    where = ", ".join(str(i) for i in bad)
    return f"Non-finite value {arr[bad]} in {name} at [{where}]"


def _check_params(params: object, n_params: int) -> np.ndarray:
    p = _as_float_array("params", params)
    if p.shape != (n_params,):
        raise InvalidInput(f"params must have shape ({n_params},), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InvalidInput(_first_nonfinite("params", p))
    return p


def _check_X(X: object, n_features: int) -> np.ndarray:
    x = _as_float_array("X", X)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise InvalidInput(f"X must have shape (m, {n_features}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInput(_first_nonfinite("X", x))
    return x


def _check_y(y: object, m: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (m,):
        raise InvalidInput(f"y must have shape ({m},) to match X, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InvalidType(f"y must hold integer class labels, got dtype {labels.dtype}")
    if m and (labels.min() < 0 or labels.max() >= n_classes):
        raise InvalidInput(
            f"y labels must be in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.intp)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # exp never overflows; the largest term is 1
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# ---- numpy dense networks ------------------------------------------------------------------


class _DenseNet:
    """Dense layers with ReLU between them and softmax at the end (numpy, float64 math)."""

    def __init__(self, layer_sizes: Sequence[int]) -> None:
        sizes = tuple(layer_sizes)
        if len(sizes) < 2:
            raise InvalidInput(f"layer_sizes needs at least 2 sizes (in, out), got {sizes}")
        for i, s in enumerate(sizes):
            _check_int(f"layer_sizes[{i}]", s, 1)
        if sizes[-1] < 2:
            raise InvalidInput(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        self.layer_sizes: tuple[int, ...] = tuple(int(s) for s in sizes)
        self.n_features: int = self.layer_sizes[0]
        self.n_classes: int = self.layer_sizes[-1]
        # (offset of W, offset of b, end) per layer, in the documented flat layout
        self._slices: list[tuple[int, int, int, int, int]] = []
        off = 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True):
            w_end = off + fan_in * fan_out
            self._slices.append((off, w_end, w_end + fan_out, fan_in, fan_out))
            off = w_end + fan_out
        self.n_params: int = off

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer_sizes={self.layer_sizes}, n_params={self.n_params})"

    # -- layout --

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W, b), ...]`` per layer, W of shape (fan_out, fan_in); views into ``params``."""
        p = _check_params(params, self.n_params)
        return [
            (p[w0:w1].reshape(fan_out, fan_in), p[w1:b1])
            for w0, w1, b1, fan_in, fan_out in self._slices
        ]

    def flatten(self, layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: a float32 vector of shape (n_params,)."""
        if len(layers) != len(self._slices):
            raise InvalidInput(f"expected {len(self._slices)} (W, b) pairs, got {len(layers)}")
        out = np.empty(self.n_params, dtype=np.float32)
        for k, ((W, b), (w0, w1, b1, fan_in, fan_out)) in enumerate(
            zip(layers, self._slices, strict=True)
        ):
            W, b = np.asarray(W), np.asarray(b)
            if W.shape != (fan_out, fan_in) or b.shape != (fan_out,):
                raise InvalidInput(
                    f"layer {k}: expected W {(fan_out, fan_in)} and b {(fan_out,)}, "
                    f"got W {W.shape} and b {b.shape}"
                )
            out[w0:w1] = W.ravel()
            out[w1:b1] = b
        return out

    def init_params(self, seed: int = 0) -> np.ndarray:
        """Seeded He-normal weights (std sqrt(2 / fan_in)), zero biases; float32.

        The numpy models use this; :class:`SoftmaxRegression` overrides it with
        small weights (std 0.01), since it has no ReLU to keep alive.
        """
        rng = np.random.default_rng(seed)
        out = np.zeros(self.n_params, dtype=np.float32)
        for w0, w1, _b1, fan_in, _fan_out in self._slices:
            out[w0:w1] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=w1 - w0)
        return out

    # -- inference --

    def _forward(self, p: np.ndarray, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Activations entering each layer, and the output probabilities."""
        acts = [x]
        h = x
        last = len(self._slices) - 1
        for k, (w0, w1, b1, fan_in, fan_out) in enumerate(self._slices):
            W = p[w0:w1].reshape(fan_out, fan_in)
            z = h @ W.T + p[w1:b1]
            if k < last:
                h = np.maximum(z, 0.0)
                acts.append(h)
            else:
                h = _softmax(z)
        return acts, h

    def predict_proba(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (m, n_classes), float64; rows sum to 1."""
        p = _check_params(params, self.n_params).astype(np.float64, copy=False)
        x = _check_X(X, self.n_features).astype(np.float64, copy=False)
        return self._forward(p, x)[1]

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted labels, shape (m,), int64 (lowest class wins ties)."""
        return np.argmax(self.predict_proba(params, X), axis=1).astype(np.int64)

    # -- training --

    def loss_and_grad(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy on (X, y) and its gradient (float64, flat layout)."""
        p = _check_params(params, self.n_params).astype(np.float64, copy=False)
        x = _check_X(X, self.n_features).astype(np.float64, copy=False)
        labels = _check_y(y, x.shape[0], self.n_classes)
        if x.shape[0] == 0:
            raise InvalidInput("X has no rows")
        return self._loss_and_grad(p, x, labels)

    def _loss_and_grad(
        self, p: np.ndarray, x: np.ndarray, labels: np.ndarray
    ) -> tuple[float, np.ndarray]:
        m = x.shape[0]
        acts, prob = self._forward(p, x)
        rows = np.arange(m)
        loss = float(-np.mean(np.log(np.maximum(prob[rows, labels], 1e-300))))
        grad = np.empty_like(p)
        dz = prob
        dz[rows, labels] -= 1.0
        dz /= m
        for k in range(len(self._slices) - 1, -1, -1):
            w0, w1, b1, fan_in, fan_out = self._slices[k]
            h = acts[k]
            grad[w0:w1] = (dz.T @ h).ravel()
            grad[w1:b1] = dz.sum(axis=0)
            if k:
                W = p[w0:w1].reshape(fan_out, fan_in)
                dz = (dz @ W) * (h > 0.0)
        return loss, grad

    def grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the mean cross-entropy (float64, flat layout)."""
        return self.loss_and_grad(params, X, y)[1]

    def train(
        self,
        params: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        lr: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
    ) -> np.ndarray:
        """Plain minibatch SGD on the mean cross-entropy; returns new float32 params.

        Each epoch visits the rows in an order drawn from ``seed`` (same seed,
        same result); the last batch of an epoch may be smaller. ``params`` is
        not modified.
        """
        p = _check_params(params, self.n_params).astype(np.float64, copy=True)
        x = _check_X(X, self.n_features).astype(np.float64, copy=False)
        labels = _check_y(y, x.shape[0], self.n_classes)
        epochs = _check_int("epochs", epochs, 0)
        batch_size = _check_int("batch_size", batch_size, 1)
        if (
            isinstance(lr, bool)
            or not isinstance(lr, (int, float, np.floating))
            or not (np.isfinite(lr) and lr > 0)
        ):
            raise InvalidInput(f"lr must be a finite number > 0, got {lr!r}")
        m = x.shape[0]
        if m == 0:
            raise InvalidInput("X has no rows")
        for idx in minibatches(m, epochs, batch_size, seed):
            _, g = self._loss_and_grad(p, x[idx], labels[idx])
            p -= lr * g
        return p.astype(np.float32)


class SoftmaxRegression(_DenseNet):
    """Multinomial logistic regression: ``softmax(X @ W.T + b)``.

    ``n_params = (n_features + 1) * n_classes``; flat layout: ``W`` as
    ``(n_classes, n_features)`` row-major, then ``b`` (``torch.nn.Linear``'s).
    """

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__((n_features, n_classes))

    def __repr__(self) -> str:
        return f"SoftmaxRegression(n_features={self.n_features}, n_classes={self.n_classes})"

    def init_params(self, seed: int = 0) -> np.ndarray:
        """Seeded weights N(0, 0.01^2), zero biases; float32."""
        rng = np.random.default_rng(seed)
        out = np.zeros(self.n_params, dtype=np.float32)
        nw = self.n_features * self.n_classes
        out[:nw] = rng.normal(0.0, 0.01, size=nw)
        return out


class MLP(_DenseNet):
    """Dense network, ReLU hidden layers, softmax output.

    ``layer_sizes = (n_features, hidden..., n_classes)``; default ``(64, 32, 10)``
    (8x8 digits -> 32 hidden units -> 10 classes: 2,410 parameters). Flat
    layout: per layer ``W`` as ``(fan_out, fan_in)`` row-major, then ``b``
    (the parameters of the matching ``nn.Sequential(Linear, ReLU, ..., Linear)``).
    """

    def __init__(self, layer_sizes: Sequence[int] = (64, 32, 10)) -> None:
        super().__init__(layer_sizes)


# ---- PyTorch ----------------------------------------------------------------------------------

_TORCH_HINT = "TorchAdapter needs PyTorch, which is not installed: pip install torch"


def _import_torch():  # returns the torch module
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_TORCH_HINT) from exc
    return torch


class TorchAdapter:
    """Wrap a ``torch.nn.Module`` that maps a batch of inputs to class logits.

    ``n_params`` counts ``module.parameters()``; the flat layout is
    ``torch.nn.utils.parameters_to_vector(module.parameters())`` (each
    parameter flattened row-major, in registration order). ``predict_proba``
    loads the vector into a private deep copy of the module with
    ``vector_to_parameters`` and returns ``softmax(copy(X))`` computed under
    ``torch.no_grad()`` in eval mode; the wrapped module is never modified.
    Buffers (e.g. BatchNorm running statistics) are not part of the vector:
    the copy keeps the module's values from construction time.

    Not thread-safe (one working copy per adapter). Constructing one without
    PyTorch raises ``ImportError`` with the install hint; importing
    :mod:`qora.models` never imports torch.

    Parameters
    ----------
    module : torch.nn.Module
    n_features : int, optional
        Width of one input row; when given, the MI filter checks its probe set
        against it up front (inputs of any trailing shape are accepted otherwise).
    """

    def __init__(self, module: object, *, n_features: int | None = None) -> None:
        torch = _import_torch()
        if not isinstance(module, torch.nn.Module):
            raise InvalidType(f"module must be a torch.nn.Module, got {type(module).__name__}")
        params = list(module.parameters())
        if not params:
            raise InvalidInput("module has no parameters")
        self._torch = torch
        self.module = module
        self._work = copy.deepcopy(module).eval()
        for q in self._work.parameters():
            q.requires_grad_(False)
        self._dtype = params[0].dtype
        self._device = params[0].device
        self.n_params: int = int(sum(q.numel() for q in params))
        if n_features is not None:
            n_features = _check_int("n_features", n_features, 1)
        self.n_features: int | None = n_features

    def __repr__(self) -> str:
        return f"TorchAdapter({type(self.module).__name__}, n_params={self.n_params})"

    def get_params(self) -> np.ndarray:
        """The wrapped module's current parameters as a flat float32 numpy vector."""
        vec = self._torch.nn.utils.parameters_to_vector(self.module.parameters())
        return vec.detach().cpu().numpy().astype(np.float32)

    def predict_proba(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Softmax of the module's output on X with ``params`` loaded; (m, n_classes) float64."""
        torch = self._torch
        p = _check_params(params, self.n_params)
        x = _as_float_array("X", X)
        if x.ndim < 2:
            raise InvalidInput(f"X must be a batch (m, ...), got shape {x.shape}")
        if self.n_features is not None and (x.ndim != 2 or x.shape[1] != self.n_features):
            raise InvalidInput(f"X must have shape (m, {self.n_features}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InvalidInput(_first_nonfinite("X", x))
        with torch.no_grad():
            vec = torch.as_tensor(np.ascontiguousarray(p), device=self._device).to(self._dtype)
            torch.nn.utils.vector_to_parameters(vec, self._work.parameters())
            xt = torch.as_tensor(np.ascontiguousarray(x), device=self._device).to(self._dtype)
            out = self._work(xt)
            if out.ndim != 2:
                raise InvalidInput(
                    f"the module must return (m, n_classes) logits, got {tuple(out.shape)}"
                )
            prob = torch.softmax(out.to(torch.float64), dim=1)
        return prob.cpu().numpy()

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted labels, shape (m,), int64."""
        return np.argmax(self.predict_proba(params, X), axis=1).astype(np.int64)
