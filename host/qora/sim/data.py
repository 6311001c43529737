"""Datasets and partitions for simulated fleets; nothing is downloaded.

* ``load_digits``: scikit-learn's 8x8 digits (ships with the package), pixels / 16.
* ``load_sensors``: a synthetic multi-sensor time-series set shaped like what IoT nodes
  see: windows of several channels, a few machine states, noise, and a per-sample node
  drift (offset and gain), standardised with the training statistics.
* ``partition``: IID, Dirichlet(alpha) label skew (Hsu et al., 2019), label-sorted shards
  (McMahan et al., 2017). A fixed seed gives the same split everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qora.errors import InvalidInput


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_features: int
    n_classes: int


def _split(name, X, y, n_classes, seed, test_fraction) -> Dataset:
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}")
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset(name, Xtr.astype(np.float32), ytr.astype(np.int64), Xte.astype(np.float32),
                   yte.astype(np.int64), X.shape[1], n_classes)


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn digits: 1797 images of 8x8 pixels, 10 classes, values in [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return _split("digits", d.data / 16.0, d.target, 10, seed, test_fraction)


SENSOR_STATES = ("idle", "normal", "vibration_fault", "overheating")


def load_sensors(seed: int = 0, n_samples: int = 2400, window: int = 16, n_channels: int = 4,
                 n_classes: int = 4, test_fraction: float = 0.25) -> Dataset:
    """Synthetic machine-state windows: each class has its own per-channel level,
    oscillation frequency, spikes and trend; every sample gets Gaussian noise and a
    node drift (channel offsets and a gain), so nodes differ as real ones do."""
    if n_classes < 2 or n_channels < 1 or window < 4 or n_samples < 10 * n_classes:
        raise InvalidInput("load_sensors needs n_classes >= 2, n_channels >= 1, window >= 4, "
                           f"n_samples >= 10 * n_classes; got {n_classes}, {n_channels}, {window}, {n_samples}")
    rng = np.random.default_rng([seed, 4242])
    t = np.arange(window)
    level = rng.normal(0, 1.0, (n_classes, n_channels))
    freq = rng.uniform(0.05, 0.45, (n_classes, n_channels))
    amp = rng.uniform(0.2, 1.2, (n_classes, n_channels))
    trend = rng.normal(0, 0.05, (n_classes, n_channels))
    spike_rate = rng.uniform(0.0, 0.15, n_classes)
    y = np.arange(n_samples) % n_classes
    rng.shuffle(y)
    X = np.empty((n_samples, n_channels, window))
    for i, c in enumerate(y):
        phase = rng.uniform(0, 2 * np.pi, n_channels)[:, None]
        sig = level[c][:, None] + amp[c][:, None] * np.sin(2 * np.pi * freq[c][:, None] * t + phase) \
            + trend[c][:, None] * t
        sig = sig + (rng.random((n_channels, window)) < spike_rate[c]) * rng.normal(0, 3, (n_channels, window))
        gain = rng.normal(1.0, 0.15)
        offset = rng.normal(0, 0.4, (n_channels, 1))
        X[i] = gain * sig + offset + rng.normal(0, 0.6, (n_channels, window))
    X = X.reshape(n_samples, -1)
    ds = _split("sensors", X, y, n_classes, seed, test_fraction)
    mu, sd = ds.X_train.mean(axis=0), ds.X_train.std(axis=0) + 1e-6
    return Dataset(ds.name, ((ds.X_train - mu) / sd).astype(np.float32), ds.y_train,
                   ((ds.X_test - mu) / sd).astype(np.float32), ds.y_test, ds.n_features, ds.n_classes)


def partition(y: np.ndarray, n_clients: int, scheme: str = "iid", *, alpha: float = 1.0,
              shards_per_client: int = 2, seed: int = 0, min_size: int = 5) -> list[np.ndarray]:
    """Split sample indices over clients: disjoint, complete, sorted, deterministic."""
    y = np.asarray(y)
    n = len(y)
    if not isinstance(n_clients, (int, np.integer)) or n_clients < 1 or n_clients > n:
        raise InvalidInput(f"n_clients must be an integer in [1, {n}], got {n_clients!r}")
    rng = np.random.default_rng([seed, 1234])
    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), n_clients)
    elif scheme == "dirichlet":
        if not alpha > 0:
            raise InvalidInput(f"alpha must be > 0, got {alpha}")
        classes = np.unique(y)
        floor = min(min_size, n // n_clients)
        for _ in range(100):
            parts = [[] for _ in range(n_clients)]
            for c in classes:
                idx = rng.permutation(np.flatnonzero(y == c))
                cuts = (np.cumsum(rng.dirichlet([alpha] * n_clients)) * len(idx)).astype(int)[:-1]
                for k, chunk in enumerate(np.split(idx, cuts)):
                    parts[k].extend(chunk.tolist())
            if min(len(p) for p in parts) >= floor:
                break
        else:
            raise InvalidInput(f"dirichlet(alpha={alpha}) left a client with fewer than {floor} samples "
                               f"in 100 draws: use fewer clients or a larger alpha")
    elif scheme == "shards":
        if shards_per_client < 1:
            raise InvalidInput(f"shards_per_client must be >= 1, got {shards_per_client}")
        order = np.argsort(y, kind="stable")
        shards = np.array_split(order, n_clients * shards_per_client)
        pick = rng.permutation(len(shards))
        parts = [np.concatenate([shards[j] for j in pick[k::n_clients]]) for k in range(n_clients)]
    else:
        raise InvalidInput(f"unknown partition scheme {scheme!r}; expected iid, dirichlet or shards")
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
