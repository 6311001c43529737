"""A federated client: local training from the global model, the update it sends.

The Flare FederatedClient idea, in numpy: train ``epochs`` on the client's own data
from the current global parameters, form the delta ``local - global``, optionally
keep worker momentum (send m = beta * m + (1 - beta) * delta; Karimireddy, He and
Jaggi, ICML 2021, show it is what makes robust aggregation work against
time-coupled attacks), optionally compress, and report the sample count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qora.errors import InvalidInput


@dataclass
class UpdateMessage:
    """What one client sends for one round (before the wire protocol encodes it)."""

    client_id: Any
    round_index: int
    update: np.ndarray          # the (decompressed) update the server aggregates
    n_samples: int
    sent_bytes: int             # bytes on the wire for the update (float32 when uncompressed)


@dataclass
class Client:
    """One client with its data and training settings.

    ``model`` is any object with ``train(params, X, y, epochs, lr, batch_size, seed)``
    returning new parameters (qora.models.SoftmaxRegression / MLP, or the Q16.16
    model). ``compressor`` is a qora.compression.Compressor (one per client: some
    keep state) or None.
    """

    client_id: Any
    X: np.ndarray
    y: np.ndarray
    model: Any
    epochs: int = 1
    lr: float = 0.1
    batch_size: int = 32
    momentum: float = 0.0
    compressor: Any = None
    _buffer: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise InvalidInput(f"momentum must be in [0, 1), got {self.momentum}")
        if len(self.X) != len(self.y):
            raise InvalidInput(f"client {self.client_id!r}: {len(self.X)} samples but {len(self.y)} labels")

    @property
    def n_samples(self) -> int:
        return int(len(self.y))

    def local_delta(self, global_params: np.ndarray, seed: int, y: np.ndarray | None = None) -> np.ndarray:
        """local - global after ``epochs`` of SGD (``y`` overrides the labels: data poisoning)."""
        if self.n_samples == 0:
            return np.zeros_like(global_params, dtype=np.float32)
        labels = self.y if y is None else y
        local = self.model.train(global_params, self.X, labels, epochs=self.epochs, lr=self.lr,
                                 batch_size=self.batch_size, seed=seed)
        return (np.asarray(local, dtype=np.float64) - global_params).astype(np.float32)

    def with_momentum(self, delta: np.ndarray) -> np.ndarray:
        """Worker momentum: the EMA of this client's deltas (the delta itself when beta = 0)."""
        if self.momentum == 0.0:
            return delta
        if self._buffer is None:
            self._buffer = delta.astype(np.float32).copy()
        else:
            self._buffer = (self.momentum * self._buffer + (1.0 - self.momentum) * delta).astype(np.float32)
        return self._buffer.copy()

    def message(self, update: np.ndarray, round_index: int) -> UpdateMessage:
        """Compress (when configured) and wrap an update for the server."""
        if self.compressor is None:
            return UpdateMessage(self.client_id, round_index, update, self.n_samples, update.size * 4)
        packed = self.compressor.compress(update)
        restored = np.asarray(self.compressor.decompress(packed), dtype=np.float32).reshape(update.shape)
        return UpdateMessage(self.client_id, round_index, restored, self.n_samples, packed.nbytes)
