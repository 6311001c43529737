"""Datasets and partitions: complete, disjoint, deterministic, skewed as asked."""

from __future__ import annotations

import numpy as np
import pytest

from qora.models import SoftmaxRegression
from qora.sim.data import load_digits, load_sensors, partition


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_partitions_are_complete_disjoint_and_deterministic(scheme):
    y = load_digits().y_train
    parts = partition(y, 10, scheme, alpha=0.5, seed=3)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(y)))
    assert [p.tolist() for p in parts] == [p.tolist() for p in partition(y, 10, scheme, alpha=0.5, seed=3)]


def label_entropy(y, parts):
    ent = []
    for p in parts:
        c = np.bincount(y[p], minlength=10) / len(p)
        c = c[c > 0]
        ent.append(-(c * np.log(c)).sum())
    return float(np.mean(ent))


def test_small_alpha_is_more_skewed_and_shards_hold_few_labels():
    y = load_digits().y_train
    low = label_entropy(y, partition(y, 10, "dirichlet", alpha=0.1, seed=0))
    high = label_entropy(y, partition(y, 10, "dirichlet", alpha=100.0, seed=0))
    assert low < high - 0.5
    shards = partition(y, 10, "shards", shards_per_client=2, seed=0)
    assert max(len(np.unique(y[p])) for p in shards) <= 4


def test_bad_partition_arguments():
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="unknown partition scheme"):
        partition(y, 2, "random")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        partition(y, 2, "dirichlet", alpha=0)
    with pytest.raises(ValueError, match="n_clients"):
        partition(y, 0)


def test_digits_and_sensors_shapes_determinism_and_learnability():
    d = load_digits()
    assert d.X_train.shape[1] == 64 and d.n_classes == 10 and d.X_train.max() <= 1.0
    s, s2 = load_sensors(seed=1), load_sensors(seed=1)
    np.testing.assert_array_equal(s.X_train, s2.X_train)
    assert s.X_train.shape[1] == 64 and s.n_classes == 4
    m = SoftmaxRegression(s.n_features, s.n_classes)
    p = m.train(m.init_params(0), s.X_train, s.y_train, epochs=10, lr=0.1)
    acc = float(np.mean(m.predict(p, s.X_test) == s.y_test))
    assert 0.8 < acc < 1.0, acc
