"""Datasets and partitions: complete, disjoint, deterministic, skewed as asked, learnable."""

from __future__ import annotations

import numpy as np
import pytest

from qora.errors import InvalidInput, InvalidType
from qora.models import SoftmaxRegression
from qora.sim.data import Dataset, load_digits, load_sensors, partition


@pytest.fixture(scope="module")
def y_digits():
    return load_digits().y_train


def label_entropy(y, parts, n_classes=10):
    """Mean over clients of the entropy (nats) of the client's label distribution."""
    ent = []
    for p in parts:
        c = np.bincount(y[p], minlength=n_classes) / len(p)
        c = c[c > 0]
        ent.append(float(-(c * np.log(c)).sum()))
    return float(np.mean(ent))


# ---- partitions ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_partitions_are_complete_disjoint_sorted_and_deterministic(scheme, y_digits):
    parts = partition(y_digits, 10, scheme, alpha=0.5, seed=3)
    assert len(parts) == 10
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)
    joined = np.concatenate(parts)
    assert len(joined) == len(y_digits)                        # disjoint ...
    assert np.array_equal(np.sort(joined), np.arange(len(y_digits)))   # ... and complete
    again = partition(y_digits, 10, scheme, alpha=0.5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = partition(y_digits, 10, scheme, alpha=0.5, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_iid_is_an_equal_split_with_every_label(y_digits):
    parts = partition(y_digits, 7, "iid", seed=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert label_entropy(y_digits, parts) > 0.95 * np.log(10)


def test_small_alpha_is_more_skewed_than_large_alpha(y_digits):
    ent = {a: label_entropy(y_digits, partition(y_digits, 10, "dirichlet", alpha=a, seed=0))
           for a in (0.1, 1.0, 100.0)}
    assert ent[0.1] < ent[1.0] < ent[100.0], ent
    assert ent[0.1] < 1.2 and ent[100.0] > 0.95 * np.log(10), ent
    for a in (0.1, 1.0, 100.0):   # min_size = 5 holds
        assert min(len(p) for p in partition(y_digits, 10, "dirichlet", alpha=a, seed=0)) >= 5


def test_dirichlet_gives_up_with_a_clear_error():
    y = np.arange(20) % 2
    with pytest.raises(InvalidInput, match=r"dirichlet partition .* fewer than 5 samples"):
        partition(y, 4, "dirichlet", alpha=0.001, seed=0)
    assert len(partition(y, 4, "dirichlet", alpha=0.001, seed=0, min_size=0)) == 4


def test_shards_give_each_client_about_shards_per_client_labels(y_digits):
    for spc in (1, 2, 3):
        parts = partition(y_digits, 10, "shards", shards_per_client=spc, seed=0)
        n_labels = [len(np.unique(y_digits[p])) for p in parts]
        # a shard (~135 samples) holds one label, or 2-3 when it straddles label boundaries
        # (digit classes hold 131-137 training samples); two shards may share a label
        assert all(1 <= k <= 3 * spc for k in n_labels), (spc, n_labels)
        assert spc - 0.5 <= np.mean(n_labels) <= spc + 1.0, (spc, n_labels)
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= spc
    # two label-sorted shards each: far from the IID entropy log(10)
    shards = partition(y_digits, 10, "shards", shards_per_client=2, seed=0)
    assert label_entropy(y_digits, shards) < 0.5 * np.log(10)


def test_bad_partition_arguments_name_the_problem():
    y = np.arange(20) % 2
    with pytest.raises(InvalidInput, match="unknown partition scheme 'random'"):
        partition(y, 2, "random")
    for alpha in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="alpha must be > 0"):
            partition(y, 2, "dirichlet", alpha=alpha)
    for n in (0, 21):
        with pytest.raises(InvalidInput, match=r"n_clients must be in \[1, 20\]"):
            partition(y, n)
    with pytest.raises(InvalidType, match="n_clients must be an int"):
        partition(y, 2.0)
    with pytest.raises(InvalidInput, match="30 shards"):
        partition(y, 10, "shards", shards_per_client=3)
    with pytest.raises(InvalidType, match="integer class labels"):
        partition(np.linspace(0, 1, 20), 2)
    with pytest.raises(InvalidInput, match="empty"):
        partition(np.array([], dtype=np.int64), 1)


# ---- datasets --------------------------------------------------------------------------------


def test_load_digits_shapes_range_and_stratified_split():
    d = load_digits()
    assert isinstance(d, Dataset) and d.name == "digits"
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.n_features == 64 and d.n_classes == 10
    assert d.X_train.min() >= 0.0 and d.X_train.max() <= 1.0 and d.X_train.max() == 1.0
    train_share = np.bincount(d.y_train) / len(d.y_train)
    test_share = np.bincount(d.y_test) / len(d.y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    assert np.array_equal(load_digits(seed=0).y_test, d.y_test)
    assert not np.array_equal(load_digits(seed=1).y_test, d.y_test)
    assert load_digits(test_fraction=0.5).X_test.shape[0] in (898, 899)
    with pytest.raises(InvalidInput, match="test_fraction"):
        load_digits(test_fraction=1.0)


def test_load_sensors_shapes_standardisation_and_determinism():
    s = load_sensors(seed=1)
    assert s.name == "sensors" and s.n_features == 64 and s.n_classes == 4
    assert s.X_train.shape == (1800, 64) and s.X_test.shape == (600, 64)
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert np.bincount(s.y_train).tolist() == [450] * 4
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1.0, atol=1e-3)
    again = load_sensors(seed=1)
    for field in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(s, field), getattr(again, field))
    assert not np.array_equal(load_sensors(seed=2).X_train, s.X_train)
    big = load_sensors(seed=0, n_samples=600, window=32, n_channels=6, n_classes=6)
    assert big.X_train.shape == (450, 192) and big.n_classes == 6
    assert set(np.unique(big.y_test)) == set(range(6))
    with pytest.raises(InvalidInput, match="window must be >= 4"):
        load_sensors(window=2)
    with pytest.raises(InvalidInput, match="n_samples must be >= 10"):
        load_sensors(n_samples=30)


@pytest.mark.parametrize("seed", [0, 1])
def test_sensors_are_learnable_but_not_trivial(seed):
    s = load_sensors(seed=seed)
    model = SoftmaxRegression(s.n_features, s.n_classes)
    params = model.train(model.init_params(0), s.X_train, s.y_train, epochs=10, lr=0.1)
    acc = float(np.mean(model.predict(params, s.X_test) == s.y_test))
    assert 0.8 < acc < 0.98, acc
