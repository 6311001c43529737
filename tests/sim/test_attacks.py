"""Each attack produces what its definition says."""

from __future__ import annotations

import numpy as np
import pytest

from qora.sim import attacks as A

HONEST = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]], np.float32)
OWN = np.array([[0.5, 0.5], [1.0, -1.0]], np.float32)


def ctx(r=0, n=5):
    return A.AttackContext(honest=HONEST, own=OWN, round_index=r, rng=np.random.default_rng(0), n_total=n)


def test_sign_flip_ipm_mimic_scaling_opposite():
    mu = HONEST.mean(axis=0)
    np.testing.assert_allclose(A.SignFlip(1.0).updates(ctx()), [-mu, -mu])
    np.testing.assert_allclose(A.SignFlip().updates(ctx()), [-1.25 * 3 / 2 * mu] * 2, rtol=1e-6)
    np.testing.assert_allclose(A.get_attack("ipm_0.1").updates(ctx()), [-0.1 * mu] * 2, rtol=1e-6)
    np.testing.assert_allclose(A.get_attack("ipm_2").updates(ctx()), [-2 * mu] * 2, rtol=1e-6)
    np.testing.assert_allclose(A.Mimic(1).updates(ctx()), [HONEST[1]] * 2)
    np.testing.assert_allclose(A.Scaling(10).updates(ctx()), 10 * OWN)
    np.testing.assert_allclose(A.Opposite().updates(ctx()), -OWN)
    assert A.get_attack("none").updates(ctx()).tolist() == OWN.tolist()


def test_alie_is_mean_plus_z_max_std():
    # n = 5, f = 2: s = floor(3.5) - 2 = 1, z = Phi^-1(4/5) = 0.8416
    assert A.alie_z_max(5, 2) == pytest.approx(0.841621, abs=1e-5)
    expected = HONEST.mean(axis=0) + A.alie_z_max(5, 2) * HONEST.std(axis=0)
    np.testing.assert_allclose(A.ALIE().updates(ctx()), [expected] * 2, rtol=1e-6)
    fixed = HONEST.mean(axis=0) + 1.5 * HONEST.std(axis=0)
    np.testing.assert_allclose(A.get_attack("alie_1.5").updates(ctx()), [fixed] * 2, rtol=1e-6)


def test_label_flip_poisons_labels_only():
    lf = A.LabelFlip()
    assert lf.data_level
    assert lf.poison_labels(np.array([0, 3, 9]), 10, None).tolist() == [9, 6, 0]


def test_noise_gaussian_random_weights_have_their_scale():
    g = A.Gaussian(200.0).updates(A.AttackContext(HONEST, np.zeros((2, 20000), np.float32), 0,
                                                  np.random.default_rng(1), 5))
    assert g.std() == pytest.approx(200.0, rel=0.02)
    rw = A.RandomWeights().updates(ctx())
    np.testing.assert_allclose(np.linalg.norm(rw, axis=1), 10 * np.linalg.norm(HONEST.mean(axis=0)), rtol=1e-5)
    assert A.Noise(0.0).updates(ctx()).tolist() == OWN.tolist()


def test_reputation_attacks_switch_by_round():
    bts = A.BuildThenStrike(build_rounds=3)
    assert bts.updates(ctx(2)).tolist() == OWN.tolist()
    assert bts.updates(ctx(3)).tolist() != OWN.tolist()
    oo = A.OnOff(period=4)
    pattern = [oo.updates(ctx(r)).tolist() == OWN.tolist() for r in range(8)]
    assert pattern == [False, False, True, True] * 2


def test_slow_drift_stays_inside_the_honest_spread():
    mu = HONEST.mean(axis=0)
    spread = np.median(np.linalg.norm(HONEST - mu, axis=1))
    out = A.SlowDrift(0.5).updates(ctx())
    assert np.all(np.linalg.norm(out - mu, axis=1) <= 0.5 * spread + 1e-5)
    np.testing.assert_array_equal(out, A.SlowDrift(0.5).updates(ctx(4)))  # fixed direction


def test_sybil_swarm_sends_one_update():
    out = A.Sybil().updates(ctx())
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out[0], -4 * HONEST.mean(axis=0), rtol=1e-6)


def test_every_registered_attack_runs_and_unknown_names_fail():
    for name in A.ATTACKS:
        out = A.get_attack(name).updates(ctx())
        assert out.shape == OWN.shape and out.dtype == np.float32, name
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        A.get_attack("nope")
