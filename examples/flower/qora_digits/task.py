"""What the ServerApp and the ClientApp share: data, model, (de)serialisation, the attack.

Data: scikit-learn's 8x8 digits (shipped with scikit-learn, nothing is downloaded), split
stratified into 1,347 training and 450 test images (seed 0). Partition ``i`` of ``n`` holds an
IID ``1/n`` of the training images and of the test images. Model: softmax regression
(64 -> 10) from ``qora.models``, its flat parameters kept as two named arrays, ``weight``
(10, 64) and ``bias`` (10,), the layout of ``torch.nn.Linear``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from flwr.app import Array, ArrayRecord

from qora.models import SoftmaxRegression
from qora.sim.data import Dataset, load_digits, partition

MODEL = SoftmaxRegression(64, 10)


@lru_cache(maxsize=1)
def dataset() -> Dataset:
    return load_digits(seed=0)


def client_data(partition_id: int, num_partitions: int) -> tuple[np.ndarray, ...]:
    """(X_train, y_train, X_test, y_test) of one partition."""
    d = dataset()
    train = partition(d.y_train, num_partitions, "iid", seed=0)[partition_id]
    test = partition(d.y_test, num_partitions, "iid", seed=0)[partition_id]
    return d.X_train[train], d.y_train[train], d.X_test[test], d.y_test[test]


def to_record(params: np.ndarray) -> ArrayRecord:
    ((weight, bias),) = MODEL.unflatten(np.asarray(params, dtype=np.float32))
    return ArrayRecord({"weight": Array(np.ascontiguousarray(weight)), "bias": Array(bias.copy())})


def from_record(record: ArrayRecord) -> np.ndarray:
    return MODEL.flatten([(record["weight"].numpy(), record["bias"].numpy())]).astype(np.float32)


def byzantine_ids(spec: str) -> set[int]:
    """Partition ids from the run config's ``byzantine`` string, e.g. "4,5"."""
    return {int(p) for p in str(spec).replace(" ", "").split(",") if p}


def attack(global_params: np.ndarray, honest_params: np.ndarray, scale: float) -> np.ndarray:
    """Scaled sign flip: the model moved ``scale`` times against the honest update."""
    return (global_params - scale * (honest_params - global_params)).astype(np.float32)


def accuracy_and_loss(params: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    loss, _ = MODEL.loss_and_grad(params, X, y)
    return float(np.mean(MODEL.predict(params, X) == y)), float(loss)
