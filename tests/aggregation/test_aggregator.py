"""ByzantineAggregator: the Qora-FL surface, exact counts and Krum, gating, reports,
persistence, and every option of the round pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora import AggregationMethod, ByzantineAggregator, InvalidInput, InvalidType, ReputationManager
from qora import native
from qora.methods import parse_method, trim_count

SETTINGS = settings(max_examples=40, deadline=None)


def scalars(*values, dtype=np.float32):
    return [np.array([v], dtype=dtype) for v in values]


# ---- Qora-FL README, as written ---------------------------------------------------


def test_qora_fl_readme_standalone_example():
    agg = ByzantineAggregator("trimmed_mean", 0.3)
    updates = [np.array([[1.0, 2.0]], dtype=np.float32) for _ in range(7)]
    updates += [np.array([[100.0, 200.0]], dtype=np.float32) for _ in range(3)]
    result = agg.aggregate(updates)
    assert result.dtype == np.float32 and result.shape == (1, 2)
    np.testing.assert_array_equal(result, [[1.0, 2.0]])


def test_qora_fl_readme_norm_bound_example():
    agg = ByzantineAggregator("median", 0.0, norm_bound=10.0)
    assert agg.norm_bound == 10.0
    assert ByzantineAggregator("median", 0.0).norm_bound is None


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_norm_bound_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match="norm_bound must be finite and > 0"):
        ByzantineAggregator("median", 0.0, norm_bound=bad)


# ---- methods and counts -------------------------------------------------------------


def test_krum_is_exact_and_picks_the_lowest_index():
    assert ByzantineAggregator("krum").aggregate(scalars(0, 1, 2, 3, 4)).tolist() == [1.0]
    assert ByzantineAggregator("krum", mode="q16_16").aggregate(scalars(0, 1, 2, 3, 4)).tolist() == [1.0]


@pytest.mark.parametrize("n, beta, k", [(10, 0.3, 3), (100, 0.3, 30), (30, 0.1, 3), (5, 0.0, 0), (7, 0.2, 2)])
def test_trim_count_is_the_exact_ceiling(n, beta, k):
    assert trim_count(n, beta) == k
    agg = ByzantineAggregator("trimmed_mean", beta)
    agg.aggregate(scalars(*range(n)))
    assert agg.last_report.trimmed_per_side == k


def test_trimming_everything_is_an_error():
    with pytest.raises(ValueError, match="fewer than one value would be kept"):
        ByzantineAggregator("trimmed_mean", 0.5).aggregate(scalars(1, 2, 3, 4))


@pytest.mark.parametrize("spec, f, m", [("krum", 1, None), ("krum:3", 3, None), ("multi_krum", 1, None),
                                        ("multi_krum:2", 2, None), ("multi_krum:2:5", 2, 5),
                                        ("Multi-Krum:1:2", 1, 2)])
def test_method_spellings(spec, f, m):
    parsed = parse_method(spec)
    assert (parsed.f, parsed.m) == (f, m)


def test_bare_multi_krum_selects_min_3_and_n_minus_2f_minus_2():
    agg = ByzantineAggregator("multi_krum")
    agg.aggregate(scalars(*range(10)))
    assert len(agg.last_report.selected) == 3
    agg.aggregate(scalars(*range(6)))  # n - 2f - 2 = 2
    assert len(agg.last_report.selected) == 2


def test_enum_and_string_are_the_same_method():
    x = scalars(3, 1, 2, 9, 5)
    assert ByzantineAggregator(AggregationMethod.MEDIAN).aggregate(x) == ByzantineAggregator("median").aggregate(x)


def test_krum_bounds_are_named():
    with pytest.raises(ValueError, match=r"krum needs n >= 2f\+3: n=4, f=1"):
        ByzantineAggregator("krum").aggregate(scalars(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"multi_krum needs 1 <= m <= n-2f-2: n=7, f=1, m=4"):
        ByzantineAggregator("multi_krum:1:4").aggregate(scalars(*range(7)))


@pytest.mark.parametrize("bad", ["mean", "krum:x", "krum:1:2", "median:1", "multi_krum:1:0"])
def test_unknown_or_malformed_methods_are_refused(bad):
    with pytest.raises(ValueError):
        ByzantineAggregator(bad)


@SETTINGS
@given(hnp.arrays(np.float32, st.tuples(st.integers(3, 15), st.integers(1, 6)),
                  elements=st.floats(-100, 100, width=32)), st.sampled_from(["float32", "q16_16"]))
def test_methods_match_the_native_core(x, mode):
    n = x.shape[0]
    updates = list(x)
    k = trim_count(n, 0.2)
    got = ByzantineAggregator("trimmed_mean", 0.2, mode=mode).aggregate(updates)
    np.testing.assert_array_equal(got, native.trimmed_mean(x, k, mode=mode).value)
    got = ByzantineAggregator("median", mode=mode).aggregate(updates)
    np.testing.assert_array_equal(got, native.median(x, mode=mode).value)
    got = ByzantineAggregator("fedavg", mode=mode).aggregate(updates)
    np.testing.assert_array_equal(got, native.fedavg(x, mode=mode).value)
    if n >= 5:
        got = ByzantineAggregator("krum:1", mode=mode).aggregate(updates)
        np.testing.assert_array_equal(got, native.krum(x, 1, mode=mode).value)


# ---- shapes and dtypes ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 2)])
def test_result_has_the_shape_and_dtype_of_the_input(dtype, shape):
    rng = np.random.default_rng(0)
    updates = [rng.normal(size=shape).astype(dtype) for _ in range(6)]
    out = ByzantineAggregator("median").aggregate(updates)
    assert out.shape == shape and out.dtype == dtype
    expected = np.median(np.stack(updates).astype(np.float32), axis=0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_layer_lists_are_aggregated_layer_by_layer():
    rng = np.random.default_rng(1)
    clients = [[rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
               for _ in range(7)]
    out = ByzantineAggregator("trimmed_mean", 0.2).aggregate(clients)
    assert [a.shape for a in out] == [(3, 2), (2,)]
    for j in range(2):
        layer = np.stack([c[j] for c in clients]).reshape(7, -1)
        np.testing.assert_array_equal(out[j].reshape(-1), native.trimmed_mean(layer, 2).value)
    agg = ByzantineAggregator("krum:1")
    agg.aggregate(clients)
    assert len(agg.last_report.selected) == 2  # one choice per layer


@pytest.mark.parametrize("updates, error, message", [
    ([], InvalidInput, "no updates"),
    ([np.zeros(2, np.float32), np.zeros(3, np.float32)], InvalidInput, r"update 1 has shape \(3,\), expected \(2,\)"),
    ([np.zeros(2, np.int64)], InvalidType, "must be float32 or float64, got int64"),
    ([np.zeros(2, np.float32), np.zeros(2, np.float64)], InvalidType, "mix dtypes"),
    ("abc", InvalidType, "must be a list of numpy arrays"),
    ([[1.0, 2.0]], InvalidType, "must be a numpy array, got float"),
    ([np.array([1e300]), np.array([1.0])], InvalidInput, "outside float32's range"),
])
def test_malformed_updates_are_refused_with_a_clear_error(updates, error, message):
    with pytest.raises(error, match=message):
        ByzantineAggregator("median").aggregate(updates)


@pytest.mark.parametrize("bad, shown", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "-Inf")])
def test_non_finite_values_are_located(bad, shown):
    updates = [np.zeros((1, 2), np.float32) for _ in range(3)]
    updates[1][0, 0] = bad
    with pytest.raises(ValueError, match=rf"Non-finite value {shown} in update 1 at \[0, 0\]"):
        ByzantineAggregator("median").aggregate(updates)


@pytest.mark.parametrize("weights, message", [([1, -1, 1], r"weights must be >= 0, got -1"),
                                              ([0, 0, 0], "weights are all zero"),
                                              ([1, 1], r"shape \(3,\)")])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        ByzantineAggregator("fedavg").aggregate(scalars(1, 2, 3), weights=weights)


def test_fedavg_weights_by_sample_count():
    out = ByzantineAggregator("fedavg").aggregate(scalars(0, 10), weights=[3, 1])
    assert out.tolist() == [2.5]


# ---- reputation gating, reports, fail closed -------------------------------------------


def test_banned_clients_are_excluded_and_reported():
    agg = ByzantineAggregator("median", 0.0, ban_threshold=0.2)
    for _ in range(4):
        agg.reputation.penalize("bad", 0.08)
    out = agg.aggregate(scalars(1, 2, 1000), client_ids=["a", "b", "bad"])
    assert out.tolist() == [1.5]
    rep = agg.last_report
    assert rep.excluded == {2: "banned"} and rep.accepted == [0, 1]


def test_everyone_excluded_fails_closed():
    agg = ByzantineAggregator("median", 0.0, ban_threshold=0.6)  # above the 0.5 start
    with pytest.raises(ValueError, match="all 2 updates were excluded"):
        agg.aggregate(scalars(1, 2), client_ids=["a", "b"])


def test_norm_bound_excludes_without_touching_reputation():
    agg = ByzantineAggregator("median", 0.0, norm_bound=10.0)
    out = agg.aggregate(scalars(1, 2, 3, 10, 11), client_ids=list("abcde"))
    assert out.tolist() == [2.5]  # 11 excluded, 10 kept (inclusive)
    assert agg.last_report.excluded == {4: "norm_bound"}
    assert "e" not in agg.last_report.reputation
    assert agg.get_reputation("e") == 0.5


def test_report_lists_deviations_and_krum_choices():
    agg = ByzantineAggregator("krum:1")
    agg.aggregate(scalars(0, 1, 2, 3, 40), client_ids=list("abcde"))
    rep = agg.last_report
    assert rep.selected == [1]
    assert rep.deviation[4] == pytest.approx(39.0)
    json.dumps(rep.as_dict())  # serialisable


def test_reputation_follows_deviations_and_bans_a_persistent_attacker():
    rng = np.random.default_rng(7)
    agg = ByzantineAggregator("trimmed_mean", 0.2, ban_threshold=0.2)
    ids = [f"node{i}" for i in range(10)]
    for _ in range(12):
        honest = [rng.normal(0, 0.1, 50).astype(np.float32) for _ in range(8)]
        attack = [rng.normal(0, 0.1, 50).astype(np.float32) + 25 for _ in range(2)]
        agg.aggregate(honest + attack, client_ids=ids)
    assert agg.reputation.is_banned("node8") and agg.reputation.is_banned("node9")
    assert not any(agg.reputation.is_banned(i) for i in ids[:8])
    assert agg.last_report.excluded == {8: "banned", 9: "banned"}


def test_without_client_ids_reputation_is_untouched():
    agg = ByzantineAggregator("median")
    agg.aggregate(scalars(1, 2, 300))
    assert agg.reputation.all_scores() == {}


def test_json_round_trip_keeps_configuration_and_reputation():
    agg = ByzantineAggregator("multi_krum:1:2", 0.25, 0.2, True, 50.0, "q16_16")
    agg.reputation.reward("a", 0.1)
    back = ByzantineAggregator.from_json(agg.to_json())
    assert back.method == "multi_krum:1:2" and back.trim_fraction == 0.25 and back.mode == "q16_16"
    assert back.norm_bound == 50.0 and back.get_reputation("a") == pytest.approx(0.6)
    assert json.loads(agg.to_json())["format"] == "qora-aggregator"
    with pytest.raises(ValueError, match="not a qora-aggregator document"):
        ByzantineAggregator.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="unsupported qora-aggregator version"):
        ByzantineAggregator.from_json('{"format": "qora-aggregator", "version": 99}')


def test_decay_and_reset_reputations():
    agg = ByzantineAggregator("median")
    agg.reputation.set_score("a", 0.9)
    agg.decay_reputations(0.5)
    assert agg.get_reputation("a") == pytest.approx(0.7)
    agg.reset_reputation()
    assert agg.get_reputation("a") == 0.5


# ---- options ---------------------------------------------------------------------------


def test_adaptive_trim_trims_more_when_more_updates_are_outliers():
    rng = np.random.default_rng(3)
    honest = [rng.normal(0, 1, 20).astype(np.float32) for _ in range(14)]
    attackers = [np.full(20, 50.0, np.float32) for _ in range(6)]
    fixed = ByzantineAggregator("trimmed_mean", 0.1)
    adaptive = ByzantineAggregator("trimmed_mean", 0.1, adaptive_trim=True)
    a, b = fixed.aggregate(honest + attackers), adaptive.aggregate(honest + attackers)
    assert fixed.last_report.trimmed_per_side == 2
    assert adaptive.last_report.trimmed_per_side == 6
    assert np.abs(b).max() < 2.0 and np.abs(a).max() > 10.0
    adaptive.aggregate(honest)  # clean round: back to the floor
    assert adaptive.last_report.trimmed_per_side == 2


def test_adaptive_trim_never_keeps_nothing():
    agg = ByzantineAggregator("trimmed_mean", 0.1, adaptive_trim=True)
    agg.aggregate(scalars(0, 0, 0, 1e4, 2e4, 3e4, 4e4))
    assert 7 - 2 * agg.last_report.trimmed_per_side >= 1


def test_reputation_weighting_bounds_a_sybil_swarm():
    """Ten established honest clients; then twelve fresh identities push one value.
    The newcomer budget caps the swarm's weight, so the weighted trimmed mean stays
    with the established clients while the unweighted one is captured."""
    rng = np.random.default_rng(11)
    established = [f"h{i}" for i in range(10)]
    weighted = ByzantineAggregator("trimmed_mean", 0.25, weighting="reputation")
    for _ in range(8):
        weighted.aggregate([rng.normal(0, 0.1, 5).astype(np.float32) for _ in established],
                           client_ids=established)
    sybils = [f"s{i}" for i in range(12)]
    updates = [rng.normal(0, 0.1, 5).astype(np.float32) for _ in established]
    updates += [np.full(5, 10.0, np.float32) for _ in sybils]
    plain = ByzantineAggregator("trimmed_mean", 0.25).aggregate(updates)
    out = weighted.aggregate(updates, client_ids=established + sybils)
    assert np.abs(out).max() < 0.5
    assert np.abs(plain).max() > 5


def test_weighting_needs_ids_and_a_weightable_method():
    with pytest.raises(ValueError, match="works with fedavg, trimmed_mean and median"):
        ByzantineAggregator("krum", weighting="reputation")
    with pytest.raises(ValueError, match="needs client_ids"):
        ByzantineAggregator("median", weighting="reputation").aggregate(scalars(1, 2, 3))


@pytest.mark.parametrize("steps", [["nnm"], ["arc"], ["clip:5"], ["bucketing:2"], ["arc", "nnm"]])
@pytest.mark.parametrize("mode", ["float32", "q16_16"])
def test_preaggregation_keeps_the_result_with_the_honest_clients(steps, mode):
    rng = np.random.default_rng(5)
    honest = [rng.normal(0, 0.1, 8).astype(np.float32) for _ in range(16)]
    attackers = [np.full(8, 100.0, np.float32) for _ in range(4)]
    # Bucketing multiplies the share of contaminated rows (each attacker spoils a
    # bucket), so it is paired with the median, as in Karimireddy et al.
    method = "median" if steps == ["bucketing:2"] else "trimmed_mean"
    agg = ByzantineAggregator(method, 0.2, mode=mode, preaggregation=steps)
    out = agg.aggregate(honest + attackers)
    assert np.abs(out).max() < 1.0


def test_unknown_preaggregation_step_is_refused():
    with pytest.raises(ValueError, match="unknown pre-aggregation step"):
        ByzantineAggregator("median", preaggregation=["magic"])


@pytest.mark.parametrize("mode", ["float32", "q16_16"])
def test_centered_clipping_resists_large_attackers_over_rounds(mode):
    rng = np.random.default_rng(9)
    agg = ByzantineAggregator("centered_clipping", mode=mode, centered_clipping_tau=1.0)
    for _ in range(5):
        honest = [rng.normal(1.0, 0.1, 6).astype(np.float32) for _ in range(12)]
        out = agg.aggregate(honest + [np.full(6, -500.0, np.float32) for _ in range(3)])
    assert np.abs(out - 1.0).max() < 0.6


def test_q16_mode_is_deterministic_bit_for_bit():
    rng = np.random.default_rng(2)
    updates = [rng.normal(size=40).astype(np.float32) for _ in range(9)]
    a = ByzantineAggregator("trimmed_mean", 0.2, mode="q16_16").aggregate(updates)
    b = ByzantineAggregator("trimmed_mean", 0.2, mode="q16_16").aggregate(updates[::-1])
    assert a.tobytes() == b.tobytes()


def test_an_explicit_reputation_manager_is_shared():
    rep = ReputationManager(ban_threshold=0.3)
    agg = ByzantineAggregator("median", reputation=rep)
    agg.aggregate(scalars(1, 2, 3), client_ids=["a", "b", "c"])
    assert rep.rounds_seen("a") == 1


def test_centered_clipping_centres_each_layer_on_the_previous_result():
    """With a tiny radius the result barely leaves the centre, so round 2 returns round 1's
    result, layer by layer (not the median of round 2's updates)."""
    rng = np.random.default_rng(4)
    first = [[rng.normal(size=(2, 2)).astype(np.float32), rng.normal(size=3).astype(np.float32)]
             for _ in range(5)]
    agg = ByzantineAggregator("centered_clipping", centered_clipping_tau=1e-6, centered_clipping_iterations=1)
    r1 = agg.aggregate(first)
    second = [[a + 100, b - 100] for a, b in first]
    r2 = agg.aggregate(second)
    for a, b in zip(r1, r2):
        np.testing.assert_allclose(a, b, atol=1e-5)
