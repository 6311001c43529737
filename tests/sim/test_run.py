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
