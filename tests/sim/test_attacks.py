"""Each attack produces what its definition says (hand-computed values on tiny matrices)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from qora.errors import InvalidInput, InvalidType
from qora.sim import attacks as A

# 3 honest clients, 2 Byzantine, d = 2. By hand:
#   mean(honest) = [2, 3]
#   population std: column 0 (1, 3, 2) -> sqrt(2/3) = 0.8164966; column 1 (2, 2, 5) -> sqrt(2)
#   distances to the mean: |(-1,-1)| = 1.4142136, |(1,-1)| = 1.4142136, |(0, 2)| = 2 -> median sqrt(2)
HONEST = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]], np.float32)
OWN = np.array([[0.5, 0.5], [1.0, -1.0]], np.float32)
MU = np.array([2.0, 3.0])
STD = np.array([math.sqrt(2 / 3), math.sqrt(2)])

REQUIRED = ["none", "noise", "gaussian", "random_weights", "sign_flip", "opposite", "scaling",
            "label_flip", "alie", "alie_1.5", "ipm_0.1", "ipm_2", "mimic", "build_then_strike",
            "on_off", "slow_drift", "sybil"]


def ctx(r=0, n=5, seed=0, honest=HONEST, own=OWN):
    return A.AttackContext(honest=honest, own=own, round_index=r, rng=np.random.default_rng(seed),
                           n_total=n)


def both(row):
    return np.array([row, row], dtype=np.float64)


# ---- the definitions --------------------------------------------------------------------------


def test_none_returns_own_unchanged_and_a_copy():
    c = ctx()
    out = A.get_attack("none").updates(c)
    np.testing.assert_array_equal(out, OWN)
    out[0, 0] = 99.0
    assert c.own[0, 0] == 0.5


def test_sign_flip_byzfl_and_the_scaled_default():
    np.testing.assert_allclose(A.SignFlip(1.0).updates(ctx()), both([-2.0, -3.0]))
    np.testing.assert_allclose(A.get_attack("sign_flip_1").updates(ctx()), both([-2.0, -3.0]))
    # default: scale = 1.25 * h / b = 1.25 * 3 / 2 = 1.875
    out = A.get_attack("sign_flip").updates(ctx())
    np.testing.assert_allclose(out, both([-3.75, -5.625]), rtol=1e-7)
    # ... so the plain mean of all 5 updates points backwards: -0.25 * h / n * mean = -0.15 * mean
    fedavg = np.vstack([HONEST, out]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(fedavg, -0.15 * MU, rtol=1e-6)


def test_ipm_is_minus_epsilon_mean():
    np.testing.assert_allclose(A.get_attack("ipm_0.1").updates(ctx()), both([-0.2, -0.3]), rtol=1e-6)
    np.testing.assert_allclose(A.get_attack("ipm_2").updates(ctx()), both([-4.0, -6.0]))
    np.testing.assert_allclose(A.IPM(0.5).updates(ctx()), both([-1.0, -1.5]))


def test_opposite_scaling_mimic():
    np.testing.assert_array_equal(A.get_attack("opposite").updates(ctx()), -OWN)
    np.testing.assert_array_equal(A.Opposite(2.0).updates(ctx()), -2 * OWN)
    np.testing.assert_allclose(A.get_attack("scaling").updates(ctx()), [[5.0, 5.0], [10.0, -10.0]])
    np.testing.assert_array_equal(A.get_attack("mimic").updates(ctx()), both([1.0, 2.0]))
    np.testing.assert_array_equal(A.Mimic(2).updates(ctx()), both([2.0, 5.0]))
    with pytest.raises(InvalidInput, match="mimic target 3"):
        A.Mimic(3).updates(ctx())


@pytest.mark.parametrize("n, f, s, z", [
    (5, 2, 1, 0.8416212335729143),      # Phi^-1(4/5)
    (10, 3, 3, 0.5244005127080407),     # Phi^-1(7/10)
    (20, 4, 7, 0.38532046640756773),    # Phi^-1(13/20)
    (50, 24, 2, 1.7506860712521692),    # Phi^-1(48/50), Baruch et al.'s n = 50, m = 24
    (5, 0, 3, -0.2533471031357997),     # Phi^-1(2/5): no attackers, a negative shift
])
def test_alie_z_max_matches_hand_computed_quantiles(n, f, s, z):
    assert math.floor(n / 2 + 1) - f == s
    assert NormalDist().inv_cdf((n - s) / n) == pytest.approx(z, abs=1e-12)
    assert A.alie_z_max(n, f) == pytest.approx(z, abs=1e-12)


def test_alie_z_max_rejects_a_byzantine_majority():
    with pytest.raises(InvalidInput, match="undefined for n=10, f=6"):
        A.alie_z_max(10, 6)      # s = 0
    with pytest.raises(InvalidInput, match="undefined"):
        A.alie_z_max(2, 0)       # p = 0
    with pytest.raises(InvalidInput, match="f must be <= n"):
        A.alie_z_max(3, 4)


def test_alie_is_mean_plus_tau_population_std():
    z = 0.8416212335729143                     # n = 5, f = 2 (the context: 3 honest + 2 attackers)
    expected = MU + z * STD                    # [2.6871809, 4.1902322]
    np.testing.assert_allclose(expected, [2.6871809, 4.1902322], rtol=1e-7)
    np.testing.assert_allclose(A.get_attack("alie").updates(ctx()), both(expected), rtol=1e-6)
    np.testing.assert_allclose(A.get_attack("alie_1.5").updates(ctx()), both(MU + 1.5 * STD),
                               rtol=1e-6)
    # z follows the round's n and b: 3 honest + 2 attackers counted in n_total = 10
    np.testing.assert_allclose(A.ALIE().updates(ctx(n=10)),
                               both(MU + A.alie_z_max(10, 2) * STD), rtol=1e-6)


def test_label_flip_maps_y_to_c_minus_1_minus_y():
    lf = A.get_attack("label_flip")
    assert lf.data_level and not A.get_attack("alie").data_level
    out = lf.poison_labels(np.array([0, 3, 9]), 10, None)
    assert out.tolist() == [9, 6, 0] and out.dtype == np.int64
    assert lf.poison_labels(np.arange(4), 4, None).tolist() == [3, 2, 1, 0]
    y = np.random.default_rng(0).integers(0, 7, 100)
    np.testing.assert_array_equal(lf.poison_labels(lf.poison_labels(y, 7, None), 7, None), y)
    np.testing.assert_array_equal(lf.updates(ctx()), OWN)   # sends what it trained on poison
    with pytest.raises(InvalidInput, match="labels must be in"):
        lf.poison_labels(np.array([0, 10]), 10, None)


def test_noise_gaussian_random_weights_have_their_scale():
    big_own = np.random.default_rng(5).normal(3.0, 1.0, (2, 20000)).astype(np.float32)
    big_honest = np.ones((3, 20000), np.float32)
    c = ctx(honest=big_honest, own=big_own, seed=1)
    assert np.array_equal(A.Noise(0.0).updates(ctx()), OWN)
    resid = A.Noise(2.0).updates(c) - big_own
    assert resid.std() == pytest.approx(2.0, rel=0.02) and abs(resid.mean()) < 0.05
    g = A.get_attack("gaussian").updates(c)
    assert g.std() == pytest.approx(200.0, rel=0.02) and abs(g.mean()) < 5.0
    rw = A.get_attack("random_weights").updates(ctx())
    np.testing.assert_allclose(np.linalg.norm(rw, axis=1), [10 * math.sqrt(13)] * 2, rtol=1e-6)
    assert not np.allclose(rw[0], rw[1])
    np.testing.assert_allclose(np.linalg.norm(A.RandomWeights(2.0).updates(ctx()), axis=1),
                               [2 * math.sqrt(13)] * 2, rtol=1e-6)


def test_build_then_strike_switches_at_the_round():
    bts = A.get_attack("build_then_strike")
    assert bts.build_rounds == 10
    for r in range(10):
        np.testing.assert_array_equal(bts.updates(ctx(r)), OWN)
    for r in (10, 11, 50):
        np.testing.assert_array_equal(bts.updates(ctx(r)), A.SignFlip().updates(ctx(r)))
    custom = A.BuildThenStrike(build_rounds=3, strike=A.IPM(2.0))
    np.testing.assert_array_equal(custom.updates(ctx(2)), OWN)
    np.testing.assert_allclose(custom.updates(ctx(3)), both([-4.0, -6.0]))


def test_on_off_attacks_in_the_first_half_of_every_period():
    oo = A.get_attack("on_off")
    boosted = (10 * OWN).tolist()
    pattern = ["on" if oo.updates(ctx(r)).tolist() == boosted else
               "off" if oo.updates(ctx(r)).tolist() == OWN.tolist() else "?" for r in range(12)]
    assert pattern == ["on", "on", "off", "off"] * 3
    odd = A.OnOff(period=5, attack=A.SignFlip(1.0))
    assert [odd.is_on(r) for r in range(10)] == [True, True, True, False, False] * 2
    with pytest.raises(InvalidInput, match="period must be >= 2"):
        A.OnOff(period=1)


def test_slow_drift_stays_inside_the_honest_spread_in_a_fixed_direction():
    sd = A.get_attack("slow_drift")
    rng = np.random.default_rng(3)
    u0 = None
    for r in range(6):
        honest = rng.normal(0.0, 1.0 + r, (7, 40)).astype(np.float32)
        c = ctx(r, n=10, honest=honest, own=np.zeros((3, 40), np.float32), seed=r)
        out = sd.updates(c)
        mu = honest.astype(np.float64).mean(axis=0)
        dists = np.linalg.norm(honest - mu, axis=1)
        spread = float(np.median(dists))
        moved = np.linalg.norm(out - mu, axis=1)
        assert np.all(moved <= 0.5 * spread * (1 + 1e-5) + 1e-6), (moved, spread)
        np.testing.assert_allclose(moved, 0.5 * spread, rtol=1e-4)
        assert np.sum(dists > moved[0]) >= 4        # closer to the mean than most honest clients
        u = (out[0] - mu) / np.linalg.norm(out[0] - mu)
        if u0 is None:
            u0 = u
        np.testing.assert_allclose(u, u0, atol=1e-4)  # the same direction every round
    # hand-made case: mean [2, 3], median distance sqrt(2) -> moved by 0.5 * sqrt(2)
    out = A.SlowDrift(0.5).updates(ctx())
    np.testing.assert_allclose(np.linalg.norm(out - MU, axis=1), [0.5 * math.sqrt(2)] * 2, rtol=1e-6)


def test_slow_drift_direction_is_seeded():
    a, b = A.SlowDrift(seed=None), A.SlowDrift(seed=None)
    np.testing.assert_array_equal(a.updates(ctx(seed=9)), b.updates(ctx(seed=9)))
    assert not np.array_equal(a.direction(2, None), A.SlowDrift().direction(2, np.random.default_rng(8)))
    s1, s2 = A.SlowDrift(seed=4), A.SlowDrift(seed=4)
    np.testing.assert_array_equal(s1.updates(ctx(seed=0)), s2.updates(ctx(seed=1)))


def test_sybil_swarm_sends_one_update():
    out = A.get_attack("sybil").updates(ctx())
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out, both(-4 * MU))
    np.testing.assert_allclose(A.Sybil(2.0).updates(ctx()), both(-MU))


# ---- shapes, dtypes, determinism, registry ----------------------------------------------------


def test_registry_holds_the_required_names():
    assert set(REQUIRED) <= set(A.ATTACKS)
    for name in A.ATTACKS:
        attack = A.get_attack(name)
        assert isinstance(attack, A.Attack) and attack.name == name


@pytest.mark.parametrize("name", sorted(A.ATTACKS))
def test_every_attack_returns_b_by_d_float32_deterministically(name):
    rng = np.random.default_rng(11)
    honest = rng.normal(0, 0.1, (7, 50))           # float64 in: coerced, float32 out
    own = rng.normal(0, 0.1, (3, 50))
    outs = []
    for _ in range(2):
        attack = A.get_attack(name)
        outs.append([attack.updates(ctx(r, n=10, honest=honest, own=own, seed=42)) for r in (0, 1, 12)])
    for out in outs[0]:
        assert out.shape == (3, 50) and out.dtype == np.float32, name
        assert np.all(np.isfinite(out)), name
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_unknown_names_and_bad_contexts_fail_clearly():
    with pytest.raises(InvalidInput, match=r"unknown attack 'nope'; expected one of none, noise"):
        A.get_attack("nope")
    with pytest.raises(InvalidInput, match="same width d"):
        ctx(own=np.zeros((2, 3), np.float32))
    with pytest.raises(InvalidInput, match="n_total"):
        ctx(n=4)
    with pytest.raises(InvalidInput, match="2-D"):
        ctx(own=np.zeros(2, np.float32))
    with pytest.raises(InvalidType, match="rng"):
        A.AttackContext(HONEST, OWN, 0, 0, 5)
    with pytest.raises(InvalidInput, match="at least one honest"):
        A.IPM().updates(ctx(honest=np.zeros((0, 2), np.float32), n=2))
    with pytest.raises(InvalidInput, match="sigma must be >= 0"):
        A.Gaussian(-1.0)
