"""Reputation in a real federated loop: digits, softmax regression, non-IID shards.

100 clean rounds must ban nobody; with boosted sign-flip attackers (each sends -10 times its
own honest update, a model-replacement style attack) the attackers are banned and the model
still learns. A sign flip that keeps an honest-sized norm (e.g. -4 x the mean update) lands
inside the honest spread on non-IID data: no distance-based reputation can tell it apart, and
it is the trimmed mean's job, not reputation's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from qora import ByzantineAggregator
from qora.models import SoftmaxRegression

N_CLIENTS = 10


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    X, y = d.data / 16.0, d.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, train = order[:300], order[300:]
    # Dirichlet(0.3) label skew: each client sees a few classes mostly
    parts = [[] for _ in range(N_CLIENTS)]
    for c in range(10):
        idx = rng.permutation(train[y[train] == c])
        cuts = (np.cumsum(rng.dirichlet([0.3] * N_CLIENTS)) * len(idx)).astype(int)[:-1]
        for k, part in enumerate(np.split(idx, cuts)):
            parts[k].extend(part.tolist())
    return X, y, test, [np.array(p) for p in parts]


def run(data, rounds, attackers=0, seed=1, method="trimmed_mean"):
    X, y, test, shards = data
    model = SoftmaxRegression(64, 10)
    g = model.init_params(seed)
    agg = ByzantineAggregator(method, 0.2, ban_threshold=0.2)
    ids = [f"node{i}" for i in range(N_CLIENTS)]
    lowest = {i: 0.5 for i in ids}
    for r in range(rounds):
        updates = []
        for k, shard in enumerate(shards):
            delta = model.train(g, X[shard], y[shard], epochs=1, lr=0.1, seed=seed + r * 31 + k) - g \
                if len(shard) else np.zeros_like(g)
            updates.append(delta.astype(np.float32))
        for k in range(N_CLIENTS - attackers, N_CLIENTS):
            updates[k] = -10.0 * updates[k]
        g = g + agg.aggregate(updates, client_ids=ids)
        for i in ids:
            lowest[i] = min(lowest[i], agg.get_reputation(i))
    acc = float(np.mean(model.predict(g, X[test]) == y[test]))
    return agg, lowest, acc


def test_no_honest_client_is_banned_in_100_clean_non_iid_rounds(data):
    agg, lowest, acc = run(data, 100)
    assert not any(agg.reputation.is_banned(i) for i in lowest)
    assert min(lowest.values()) >= 0.2
    assert acc > 0.8


def test_boosted_sign_flip_attackers_are_banned_and_the_model_still_learns(data):
    agg, lowest, acc = run(data, 30, attackers=2)
    assert agg.reputation.is_banned("node8") and agg.reputation.is_banned("node9")
    assert not any(agg.reputation.is_banned(f"node{i}") for i in range(8))
    # the attackers' shards (and, non-IID, most of some classes) are lost once they are
    # banned, so the model learns from 8 shards: well above chance (0.1), below the clean run
    assert acc > 0.4
