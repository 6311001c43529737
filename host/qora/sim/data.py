"""Datasets and partitions for simulated fleets; nothing is downloaded.

* :func:`load_digits`: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes;
  the data ship inside scikit-learn), pixels / 16 so features lie in [0, 1].
* :func:`load_sensors`: a synthetic multi-sensor time-series set shaped like what IoT
  nodes see: windows of several channels (vibration, temperature, motor current,
  acoustic), a few machine states (idle, normal, vibration fault, overheating), Gaussian
  noise, and a per-sample node drift (channel offsets and a gain), standardised with the
  training statistics.
* :func:`partition`: split sample indices over clients: IID, Dirichlet(alpha) label skew
  (Hsu, Qi and Brown, 2019), or label-sorted shards (McMahan et al., AISTATS 2017).

Everything is deterministic for a seed (numpy's PCG64 ``default_rng`` streams, which give
the same numbers on every platform), so the same seed gives the same data and the same
split on every machine, process and run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qora.errors import InvalidInput, InvalidType

__all__ = ["Dataset", "SENSOR_CHANNELS", "SENSOR_STATES", "load_digits", "load_sensors", "partition"]


@dataclass(frozen=True)
class Dataset:
    """A train / test split.

    ``X_*`` are float32 of shape ``(m, n_features)``; ``y_*`` are int64 labels in
    ``[0, n_classes)``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_features: int
    n_classes: int

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, "
                f"n_classes={self.n_classes})")


# ---- checks ----------------------------------------------------------------------------------


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _fraction(test_fraction: object) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
        raise InvalidType(f"test_fraction must be a number, got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}")
    return float(test_fraction)


def _split(name: str, X: np.ndarray, y: np.ndarray, n_classes: int, seed: int,
           test_fraction: float) -> Dataset:
    """Stratified split (scikit-learn's train_test_split, random_state=seed)."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_fraction, random_state=seed,
                                          stratify=y)
    return Dataset(name, np.ascontiguousarray(Xtr, dtype=np.float32), ytr.astype(np.int64),
                   np.ascontiguousarray(Xte, dtype=np.float32), yte.astype(np.int64),
                   int(X.shape[1]), int(n_classes))


# ---- digits ----------------------------------------------------------------------------------


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's digits: 1,797 8x8 images, 64 features in [0, 1] (pixel / 16), 10 classes.

    Split stratified by class with ``seed`` (default: 1,347 train, 450 test). The images
    are the same for every seed; only the split changes.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    seed = _int("seed", seed, 0)
    test_fraction = _fraction(test_fraction)
    d = sk_load_digits()
    return _split("digits", d.data / 16.0, d.target, 10, seed, test_fraction)


# ---- synthetic sensors -----------------------------------------------------------------------

#: Machine states of :func:`load_sensors`, in label order (labels >= 4 are "state_<k>").
SENSOR_STATES = ("idle", "normal", "vibration_fault", "overheating")
#: Channel roles; channel ``c`` plays role ``c % 4``.
SENSOR_CHANNELS = ("vibration", "temperature", "current", "acoustic")

# Per state and channel role: level, sinusoid amplitude, frequency (cycles / sample), trend
# (per sample, centred on the window), spike probability per sample. Values are in units
# of the sensor readings (noise std 0.6); they were tuned so that softmax regression
# reaches 84-90 % over seeds 0-11 (levels and trends are linearly visible, the fault's
# frequency and spikes largely are not), a 64-32-4 MLP ~94 %, and nothing trivially
# 100 % (node drift blurs the levels).
#                       vibration              temperature           current               acoustic
_LEVEL = np.array([[0.0, 0.0, 0.0, 0.0],         # idle
                   [0.0, 1.0, 1.5, 0.6],         # normal
                   [0.0, 1.2, 1.9, 1.4],         # vibration fault
                   [0.0, 1.6, 2.0, 0.6]])        # overheating
_AMP = np.array([[0.1, 0.0, 0.05, 0.1],
                 [0.8, 0.0, 0.3, 0.3],
                 [1.5, 0.0, 0.45, 0.6],
                 [0.8, 0.0, 0.3, 0.3]])
_FREQ = np.array([[0.05, 0.0, 0.25, 0.05],
                  [0.10, 0.0, 0.25, 0.10],
                  [0.30, 0.0, 0.25, 0.35],
                  [0.10, 0.0, 0.25, 0.10]])
_TREND = np.array([[0.0, -0.01, 0.0, 0.0],       # an idle machine cools slowly
                   [0.0, 0.0, 0.0, 0.0],
                   [0.0, 0.01, 0.0, 0.0],
                   [0.0, 0.10, 0.03, 0.0]])      # overheating: temperature (and current) climb
_SPIKE = np.array([[0.0, 0.0, 0.0, 0.0],
                   [0.01, 0.0, 0.0, 0.0],
                   [0.12, 0.0, 0.02, 0.08],      # bearing knocks: impulses on vibration / sound
                   [0.01, 0.0, 0.0, 0.0]])
_NOISE_STD = 0.6      # white sensor noise
_SPIKE_STD = 3.0      # impulse size
_GAIN_STD = 0.15      # node drift: one gain per sample (sensor calibration)
_OFFSET_STD = 0.3     # node drift: one offset per sample and channel


def _state_table(n_classes: int, n_channels: int) -> tuple[np.ndarray, ...]:
    """(level, amp, freq, trend, spike) tables of shape (n_classes, n_channels).

    The four named states come from the constants above; further states (n_classes > 4)
    are fixed random mixtures drawn from a constant seed, so they do not change with the
    data seed either.
    """
    tables = [t.copy() for t in (_LEVEL, _AMP, _FREQ, _TREND, _SPIKE)]
    extra = n_classes - len(SENSOR_STATES)
    if extra > 0:
        rng = np.random.default_rng(20240917)
        tables[0] = np.vstack([tables[0], rng.uniform(0.0, 1.4, (extra, 4))])
        tables[1] = np.vstack([tables[1], rng.uniform(0.0, 1.5, (extra, 4))])
        tables[2] = np.vstack([tables[2], rng.uniform(0.05, 0.4, (extra, 4))])
        tables[3] = np.vstack([tables[3], rng.normal(0.0, 0.03, (extra, 4))])
        tables[4] = np.vstack([tables[4], rng.uniform(0.0, 0.1, (extra, 4))])
    roles = np.arange(n_channels) % len(SENSOR_CHANNELS)
    return tuple(t[:n_classes][:, roles] for t in tables)


def load_sensors(seed: int = 0, n_samples: int = 2400, window: int = 16, n_channels: int = 4,
                 n_classes: int = 4, test_fraction: float = 0.25) -> Dataset:
    """Synthetic multi-sensor windows of machine states, as IoT nodes record them.

    Each sample is ``n_channels`` sensor traces of ``window`` time steps; channel ``c``
    plays the role ``SENSOR_CHANNELS[c % 4]`` (vibration, temperature, motor current,
    acoustic). Labels are machine states ``SENSOR_STATES`` (idle, normal,
    vibration_fault, overheating; extra states for ``n_classes > 4``), balanced.

    Per state and channel a trace is ``level + amp * sin(2 pi freq t + phase) +
    trend * (t - centre) + spikes``: idle is flat and quiet; normal runs with a slow
    vibration, warm and drawing current; a vibration fault vibrates harder at a higher
    frequency with impulses (knocks) on vibration and sound; overheating has temperature
    and current climbing through the window. Then every sample gets a random phase per
    channel, white noise (std 0.6) and a node drift: ``gain * trace + offset`` with one
    gain ~ N(1, 0.15^2) per sample and one offset ~ N(0, 0.3^2) per channel, so nodes
    (and samples) differ the way uncalibrated sensors do.

    Windows are flattened channel-major to ``n_channels * window`` features (channel 0's
    time steps first), split stratified, then standardised per feature with the training
    mean and standard deviation. The state definitions are fixed; ``seed`` draws the
    samples and the split, and the same seed gives the same arrays.

    Learnable but not trivially: with the defaults softmax regression reaches 84-90 %
    test accuracy (seeds 0-11, 10 epochs; tested > 80 %), a 64-32-4 MLP about 94 %; idle
    and overheating are easy, normal and vibration fault overlap for a linear model.
    """
    seed = _int("seed", seed, 0)
    n_samples = _int("n_samples", n_samples, 1)
    window = _int("window", window, 4)
    n_channels = _int("n_channels", n_channels, 1)
    n_classes = _int("n_classes", n_classes, 2)
    test_fraction = _fraction(test_fraction)
    if n_samples < 10 * n_classes:
        raise InvalidInput(f"n_samples must be >= 10 * n_classes = {10 * n_classes} so every "
                           f"class reaches both splits, got {n_samples}")

    level, amp, freq, trend, spike = _state_table(n_classes, n_channels)
    rng = np.random.default_rng([seed, 0x5E45])
    y = np.arange(n_samples) % n_classes
    rng.shuffle(y)
    t = np.arange(window, dtype=np.float64)
    shape = (n_samples, n_channels, window)
    phase = rng.uniform(0.0, 2.0 * np.pi, (n_samples, n_channels, 1))
    X = (level[y][..., None]
         + amp[y][..., None] * np.sin(2.0 * np.pi * freq[y][..., None] * t + phase)
         + trend[y][..., None] * (t - (window - 1) / 2.0))
    X += (rng.random(shape) < spike[y][..., None]) * rng.normal(0.0, _SPIKE_STD, shape)
    X += rng.normal(0.0, _NOISE_STD, shape)
    gain = rng.normal(1.0, _GAIN_STD, (n_samples, 1, 1))
    offset = rng.normal(0.0, _OFFSET_STD, (n_samples, n_channels, 1))
    X = gain * X + offset

    ds = _split("sensors", X.reshape(n_samples, n_channels * window), y, n_classes, seed,
                test_fraction)
    mu = ds.X_train.astype(np.float64).mean(axis=0)
    sd = ds.X_train.astype(np.float64).std(axis=0)
    sd[sd < 1e-12] = 1.0
    return Dataset(ds.name, ((ds.X_train - mu) / sd).astype(np.float32), ds.y_train,
                   ((ds.X_test - mu) / sd).astype(np.float32), ds.y_test, ds.n_features,
                   ds.n_classes)


# ---- partitions ------------------------------------------------------------------------------

_SCHEMES = ("iid", "dirichlet", "shards")
_DIRICHLET_TRIES = 100


def partition(y: np.ndarray, n_clients: int, scheme: str = "iid", *, alpha: float = 1.0,
              shards_per_client: int = 2, seed: int = 0, min_size: int = 5) -> list[np.ndarray]:
    """Split the sample indices ``0 .. len(y) - 1`` over ``n_clients`` clients.

    Returns one sorted int64 index array per client; the arrays are disjoint and together
    cover every sample. The same ``(y, n_clients, scheme, alpha, shards_per_client,
    seed)`` gives the same split on every machine.

    ``scheme``
        ``"iid"``: a seeded shuffle cut into ``n_clients`` near-equal parts (sizes differ
        by at most one).

        ``"dirichlet"``: label skew as in Hsu, Qi and Brown (2019), in the per-class form
        most FL code uses (Yurochkin et al. 2019; Wang et al. 2020): for every class,
        draw shares ``q ~ Dirichlet(alpha * 1_n_clients)`` and give client ``k`` the
        fraction ``q_k`` of that class's (shuffled) samples. Small ``alpha`` (0.1) gives
        each client few classes, large ``alpha`` (100) is close to IID. Client sizes vary
        too. The whole draw is repeated until every client holds at least
        ``min(min_size, len(y) // n_clients)`` samples; after 100 failed draws the call
        raises :class:`~qora.errors.InvalidInput`.

        ``"shards"``: McMahan et al.'s pathological non-IID split: sort the samples by
        label (stable), cut them into ``n_clients * shards_per_client`` contiguous
        near-equal shards and give every client ``shards_per_client`` shards drawn at
        random without replacement, so each client sees about ``shards_per_client``
        labels (more when a shard straddles a label boundary).

    Raises :class:`~qora.errors.InvalidInput` (a ``ValueError``) naming the problem for
    an unknown scheme, ``n_clients`` outside ``[1, len(y)]``, ``alpha <= 0`` or not
    finite, too few samples for the shards, and :class:`~qora.errors.InvalidType` for
    non-integer labels or counts.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise InvalidInput(f"y must be a 1-D array of labels, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise InvalidType(f"y must hold integer class labels, got dtype {labels.dtype}")
    n = int(labels.size)
    if n == 0:
        raise InvalidInput("y is empty: nothing to partition")
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)):
        raise InvalidType(f"n_clients must be an int, got {type(n_clients).__name__}")
    if not 1 <= n_clients <= n:
        raise InvalidInput(f"n_clients must be in [1, {n}] (one sample each at least), "
                           f"got {n_clients}")
    n_clients = int(n_clients)
    seed = _int("seed", seed, 0)
    if scheme not in _SCHEMES:
        raise InvalidInput(f"unknown partition scheme {scheme!r}; expected one of "
                           f"{', '.join(_SCHEMES)}")
    rng = np.random.default_rng([seed, 0x9A27])

    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), n_clients)

    elif scheme == "dirichlet":
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
            raise InvalidType(f"alpha must be a number, got {type(alpha).__name__}")
        if not (math.isfinite(alpha) and alpha > 0):
            raise InvalidInput(f"alpha must be > 0 and finite, got {alpha}")
        min_size = _int("min_size", min_size, 0)
        floor = min(min_size, n // n_clients)
        by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        smallest = 0
        for _ in range(_DIRICHLET_TRIES):
            chunks: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
            for idx in by_class:
                idx = rng.permutation(idx)
                shares = rng.dirichlet(np.full(n_clients, float(alpha)))
                cuts = np.floor(np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
                for k, piece in enumerate(np.split(idx, cuts)):
                    chunks[k].append(piece)
            parts = [np.concatenate(c) for c in chunks]
            smallest = min(len(p) for p in parts)
            if smallest >= floor:
                break
        else:
            raise InvalidInput(
                f"dirichlet partition (alpha={alpha}, {n_clients} clients, {n} samples): "
                f"{_DIRICHLET_TRIES} draws all left a client with fewer than {floor} samples "
                f"(last draw: {smallest}); use fewer clients, a larger alpha or a smaller "
                "min_size")

    else:  # shards
        shards_per_client = _int("shards_per_client", shards_per_client, 1)
        n_shards = n_clients * shards_per_client
        if n_shards > n:
            raise InvalidInput(f"shards: n_clients * shards_per_client = {n_shards} shards "
                               f"need at least that many samples, got {n}")
        shards = np.array_split(np.argsort(labels, kind="stable"), n_shards)
        pick = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
        parts = [np.concatenate([shards[j] for j in row]) for row in pick]

    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
