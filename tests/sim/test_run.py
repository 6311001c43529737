"""The simulated federated loop: it learns, attacks hurt FedAvg, defences hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qora.sim.run import RunConfig, simulate

BASE = RunConfig(dataset="digits", model="softmax", n_clients=10, rounds=20, seed=0)


def test_clean_fedavg_learns_digits():
    res = simulate(replace(BASE, attack="none", defence="fedavg", byzantine_fraction=0.0))
    assert len(res.accuracy) == 20
    assert res.final_accuracy >= 0.90, res.accuracy
    assert res.accuracy[-1] > res.accuracy[0]


def test_sign_flip_at_30_percent_breaks_fedavg_and_not_the_defences():
    attacked = replace(BASE, attack="sign_flip", byzantine_fraction=0.3)
    fedavg = simulate(replace(attacked, defence="fedavg")).final_accuracy
    best = max(simulate(replace(attacked, defence=d)).final_accuracy
               for d in ("momentum_cc", "trimmed_mean", "momentum_arc_nnm_tm"))
    assert best >= 0.85
    assert best - fedavg >= 0.3, (best, fedavg)


def test_runs_are_deterministic_for_a_seed():
    cfg = replace(BASE, attack="alie", defence="median", byzantine_fraction=0.2, rounds=5)
    assert simulate(cfg).accuracy == simulate(cfg).accuracy


@pytest.mark.parametrize("defence", ["mi_filter", "rep_trimmed_mean", "krum", "multi_krum"])
def test_every_defence_runs_under_attack(defence):
    res = simulate(replace(BASE, attack="scaling", defence=defence, byzantine_fraction=0.2, rounds=6))
    assert res.final_accuracy > 0.5


def test_sybil_identities_are_fresh_every_round():
    res = simulate(replace(BASE, attack="sybil", defence="rep_trimmed_mean", byzantine_fraction=0.2, rounds=4))
    assert len(res.accuracy) == 4


def test_client_compresses_what_it_sends():
    import numpy as np

    from qora.compression import get_compressor
    from qora.sim.client import Client

    rng = np.random.default_rng(0)
    c = Client("n0", np.zeros((4, 2), np.float32), np.zeros(4, np.int64), model=None,
               compressor=get_compressor("int8"))
    delta = rng.normal(size=500).astype(np.float32)
    msg = c.message(delta, 3)
    assert msg.round_index == 3 and msg.n_samples == 4
    assert msg.sent_bytes < delta.size * 4 / 3
    scale = np.abs(delta).max() / 127
    assert np.abs(msg.update - delta).max() <= scale / 2 + 1e-6
    plain = Client("n1", np.zeros((4, 2), np.float32), np.zeros(4, np.int64), model=None).message(delta, 0)
    assert plain.sent_bytes == delta.size * 4 and plain.update is delta


def test_worker_momentum_is_the_ema_of_deltas():
    import numpy as np

    from qora.sim.client import Client

    c = Client("n0", np.zeros((1, 1), np.float32), np.zeros(1, np.int64), model=None, momentum=0.5)
    a, b = np.ones(3, np.float32), np.full(3, 3.0, np.float32)
    np.testing.assert_allclose(c.with_momentum(a), a)
    np.testing.assert_allclose(c.with_momentum(b), 0.5 * a + 0.5 * b)
