"""QoraStrategy (Flower Message API) on hand-built replies: exclusion, reputation, metrics,
Q16.16 determinism, bad replies, and FedAvg's parameters."""

from __future__ import annotations

from unittest.mock import Mock

import numpy as np
import pytest

from qora import ByzantineAggregator
from qora.flower import REASON_CODES, QoraStrategy

HONEST = [11, 12, 13, 14, 15, 16]
ATTACKERS = [21, 22]


def honest_models(rng, n=len(HONEST)):
    return [[rng.normal(0, 0.1, (3, 4)).astype(np.float32), rng.normal(0, 0.1, 4).astype(np.float32)]
            for _ in range(n)]


def attack(models):
    """Scaled sign flip of the honest mean, as a colluding pair would send."""
    mean = [np.mean([m[j] for m in models], axis=0) for j in range(2)]
    return [(-20 * a).astype(np.float32) for a in mean]


def round_replies(replies, rng, attackers=ATTACKERS):
    models = honest_models(rng)
    out = [replies.reply(node, m, 50) for node, m in zip(HONEST, models)]
    out += [replies.reply(node, attack(models), 50) for node in attackers]
    return out, models


def arrays_of(record):
    return [record[k].numpy() for k in record.keys()]


# ---- Byzantine replies are excluded -------------------------------------------------------------


def test_trimmed_mean_penalises_attackers_each_round_and_bans_them_in_round_five(replies):
    # Prepare
    strategy = QoraStrategy()
    rng = np.random.default_rng(0)

    for server_round in range(1, 7):
        # Execute
        msgs, models = round_replies(replies, rng)
        arrays, metrics = strategy.aggregate_train(server_round, msgs)

        # Assert
        assert arrays is not None and metrics["qora.received"] == 8
        for node in ATTACKERS:
            score = metrics[f"qora.reputation.{node}"]
            if server_round <= 4:  # aggregated (the trimmed mean cuts them) but penalised
                assert f"qora.excluded.{node}" not in metrics
                assert metrics[f"qora.action.{node}"] == -1
                assert score == pytest.approx(0.5 - 0.08 * server_round)
            else:  # 0.18 < 0.2: banned, gated before the aggregation
                assert metrics[f"qora.excluded.{node}"] == REASON_CODES["banned"] == 1
                assert score == pytest.approx(0.18)
        for node in HONEST:
            assert f"qora.excluded.{node}" not in metrics
            assert metrics[f"qora.action.{node}"] == 1
            assert metrics[f"qora.reputation.{node}"] == pytest.approx(0.5 + 0.02 * server_round)
    assert metrics["qora.excluded"] == 2 and metrics["qora.aggregated"] == 6
    assert metrics["qora.trimmed-per-side"] == 2  # ceil(0.2 * 6)
    # the banned round aggregates exactly the honest models
    expected = ByzantineAggregator("trimmed_mean", 0.2).aggregate(
        [np.concatenate([a.ravel() for a in m]) for m in models])
    got = np.concatenate([a.ravel() for a in arrays_of(arrays)])
    np.testing.assert_array_equal(got, expected)


def test_multi_krum_leaves_out_the_models_it_does_not_pick(replies):
    # Prepare: n = 8, f = 2 -> m = min(3, 8 - 4 - 2) = 2 models picked
    strategy = QoraStrategy(aggregation_method="multi_krum:2")
    msgs, _ = round_replies(replies, np.random.default_rng(1))

    # Execute
    arrays, metrics = strategy.aggregate_train(1, msgs)

    # Assert
    report = strategy.qora.last_round
    assert metrics["qora.aggregated"] == 2 and len(report.aggregated) == 2
    assert set(report.aggregated) <= set(HONEST)
    for node in ATTACKERS:
        assert metrics[f"qora.excluded.{node}"] == REASON_CODES["not_selected"] == 2
        assert metrics[f"qora.action.{node}"] == -1  # far from the result: penalised too
    assert metrics["qora.excluded"] == 6
    assert "qora.trimmed-per-side" not in metrics
    picked = [m for m in msgs if m.metadata.src_node_id in report.aggregated]
    mean = np.mean([np.concatenate([a.ravel() for a in arrays_of(m.content["arrays"])]) for m in picked], axis=0)
    got = np.concatenate([a.ravel() for a in arrays_of(arrays)])
    np.testing.assert_allclose(got, mean, rtol=1e-6, atol=1e-7)


def test_reputation_in_metrics_is_the_managers_and_covers_every_node(replies):
    strategy = QoraStrategy(reputation_threshold=0.3)
    msgs, _ = round_replies(replies, np.random.default_rng(2))
    msgs.append(replies.error_reply(31))

    _, metrics = strategy.aggregate_train(1, msgs)

    rep = strategy.qora.reputation
    for node in HONEST + ATTACKERS + [31]:
        assert metrics[f"qora.reputation.{node}"] == rep.get_score(node)
    assert rep.ban_threshold == 0.3
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())


# ---- Q16.16 --------------------------------------------------------------------------------------


def test_q16_mode_gives_identical_bytes_in_two_strategies(replies):
    # Prepare: float64 arrays with values that do not sit on the Q16.16 grid
    rng = np.random.default_rng(3)
    rounds = [[[rng.normal(0, 3, (5, 7)), rng.normal(0, 3, (7,))] for _ in range(7)] for _ in range(3)]
    a, b = QoraStrategy(mode="q16_16"), QoraStrategy(mode="q16_16")

    for r, models in enumerate(rounds, start=1):
        # Execute: the same replies, built twice
        out_a, met_a = a.aggregate_train(r, [replies.reply(n, m) for n, m in enumerate(models, 100)])
        out_b, met_b = b.aggregate_train(r, [replies.reply(n, m) for n, m in enumerate(models, 100)])

        # Assert
        assert [out_a[k].data for k in out_a.keys()] == [out_b[k].data for k in out_b.keys()]
        assert out_a.object_id == out_b.object_id
        assert dict(met_a) == dict(met_b)
        got = arrays_of(out_a)
        assert [g.dtype for g in got] == [np.float64, np.float64]  # the layout's dtype is kept
        for g in got:  # every value is on the Q16.16 grid
            np.testing.assert_array_equal(g * 65536, np.round(g * 65536))


# ---- bad replies ---------------------------------------------------------------------------------


def test_bad_replies_are_excluded_with_a_reason_and_penalised(replies):
    # Prepare
    rng = np.random.default_rng(4)
    good = honest_models(rng, 1)[0]
    nan = [good[0].copy(), good[1].copy()]
    nan[0][1, 2] = np.nan
    inf = [good[0].copy(), np.full(4, np.inf, np.float32)]
    f64 = [good[0].astype(np.float64), good[1].astype(np.float64)]
    bad_bytes = replies.ArrayRecord({"0": replies.Array(good[0]), "1": replies.Array(
        dtype="float32", shape=(4,), stype="numpy.ndarray", data=b"not an npy file")})
    two_records = replies.RecordDict({"a": replies.ArrayRecord(good), "b": replies.ArrayRecord(good),
                                      "metrics": replies.MetricRecord({"num-examples": 5})})
    only_metrics = replies.RecordDict({"metrics": replies.MetricRecord({"num-examples": 5})})
    bad = {
        31: (replies.reply(31, nan), "non_finite"),
        32: (replies.reply(32, inf), "non_finite"),
        33: (replies.reply(33, f64), "mismatch"),  # float64 where the round sends float32
        34: (replies.reply(34, [good[0][:2], good[1]]), "mismatch"),  # wrong shape
        35: (replies.reply(35, [good[0]]), "mismatch"),  # an array missing
        36: (replies.reply(36, content=only_metrics), "malformed"),  # no ArrayRecord
        37: (replies.reply(37, content=two_records), "malformed"),  # two, none under "arrays"
        38: (replies.reply(38, good, num_examples=-3), "malformed"),
        39: (replies.reply(39, good, num_examples=float("nan")), "malformed"),
        40: (replies.reply(40, bad_bytes), "malformed"),  # undecodable array
        41: (replies.reply(41, [np.ones((3, 4), bool), good[1]]), "malformed"),  # bool dtype
        42: (replies.reply(42, content=replies.RecordDict(
            {"arrays": replies.ArrayRecord(good), "metrics": replies.MetricRecord({"loss": 1.0})})), "malformed"),
        43: (replies.error_reply(43), "failed"),
    }
    msgs = [replies.reply(n, m) for n, m in zip(HONEST, honest_models(rng))] + [m for m, _ in bad.values()]
    strategy = QoraStrategy()

    # Execute
    arrays, metrics = strategy.aggregate_train(1, msgs)

    # Assert: the honest six are aggregated, every bad reply has its reason
    assert arrays is not None and metrics["qora.aggregated"] == 6
    assert metrics["qora.excluded"] == len(bad)
    for node, (_, reason) in bad.items():
        assert metrics[f"qora.excluded.{node}"] == REASON_CODES[reason], node
        penalised = reason != "failed"
        assert metrics[f"qora.reputation.{node}"] == pytest.approx(0.42 if penalised else 0.5)
        assert metrics.get(f"qora.action.{node}") == (-1 if penalised else None)
    details = strategy.qora.last_round.details
    assert details[31] == "NaN in array '0' at [1, 2]"
    assert details[32] == "Inf in array '1' at [0]"
    assert "error reply: ClientApp crashed" in details[43]


def test_values_beyond_float32s_range_are_non_finite(replies):
    rng = np.random.default_rng(10)
    models = [[rng.normal(size=(2, 3))] for _ in range(5)]  # float64, as numpy makes them
    models[4][0][1, 0] = -1e300
    strategy = QoraStrategy()
    _, metrics = strategy.aggregate_train(1, [replies.reply(n, m) for n, m in enumerate(models, 1)])
    assert metrics["qora.excluded.5"] == REASON_CODES["non_finite"]
    assert strategy.qora.last_round.details[5] == "-1e+300 (beyond float32's range) in array '0' at [1, 0]"


def test_a_node_that_keeps_sending_nan_is_banned_after_four_rounds(replies):
    strategy = QoraStrategy()
    rng = np.random.default_rng(5)
    for server_round in range(1, 6):
        models = honest_models(rng)
        broken = [np.full((3, 4), np.nan, np.float32), models[0][1]]
        _, metrics = strategy.aggregate_train(
            server_round, [replies.reply(n, m) for n, m in zip(HONEST, models)] + [replies.reply(31, broken)])
    assert strategy.qora.reputation.is_banned(31)
    assert metrics["qora.excluded.31"] == REASON_CODES["non_finite"]  # still reported by what it sent


def test_layout_is_the_majoritys_and_the_global_model_breaks_ties(replies):
    rng = np.random.default_rng(6)
    small = [rng.normal(size=(2, 2)).astype(np.float32) for _ in range(2)]
    large = [rng.normal(size=(3, 3)).astype(np.float32) for _ in range(3)]
    strategy = QoraStrategy(trim_fraction=0.0)

    # majority: three (3, 3) against two (2, 2)
    _, metrics = strategy.aggregate_train(1, [replies.reply(n, [a]) for n, a in zip([1, 2], small)]
                                          + [replies.reply(n, [a]) for n, a in zip([3, 4, 5], large)])
    assert metrics["qora.excluded.1"] == metrics["qora.excluded.2"] == REASON_CODES["mismatch"]

    # a tie, two against two: the layout of the model the server sent wins
    grid = Mock()
    grid.get_node_ids.return_value = [6, 7, 8, 9]
    strategy.configure_train(2, replies.ArrayRecord([np.zeros((2, 2), np.float32)]), replies.ConfigRecord(), grid)
    _, metrics = strategy.aggregate_train(2, [replies.reply(n, [a]) for n, a in zip([6, 7], small)]
                                          + [replies.reply(n, [a]) for n, a in zip([8, 9], large[:2])])
    assert metrics["qora.excluded.8"] == metrics["qora.excluded.9"] == REASON_CODES["mismatch"]
    assert "qora.excluded.6" not in metrics


def test_a_round_with_no_usable_reply_keeps_the_global_model(replies):
    strategy = QoraStrategy()
    arrays, metrics = strategy.aggregate_train(1, [replies.error_reply(1), replies.reply(
        2, [np.array([np.nan], np.float32)])])
    assert arrays is None
    assert metrics["qora.refused"] == 1 and metrics["qora.aggregated"] == 0
    assert metrics["qora.excluded.1"] == REASON_CODES["failed"]
    assert strategy.aggregate_train(2, []) == (None, None)


def test_a_round_the_method_cannot_run_is_refused_not_fatal(replies):
    # krum:1 needs n >= 5
    strategy = QoraStrategy(aggregation_method="krum:1")
    rng = np.random.default_rng(7)
    arrays, metrics = strategy.aggregate_train(1, [replies.reply(n, m) for n, m in zip(HONEST[:3], honest_models(rng, 3))])
    assert arrays is None and metrics["qora.refused"] == 1
    assert {metrics[f"qora.excluded.{n}"] for n in HONEST[:3]} == {REASON_CODES["refused"]}
    assert "krum needs n >= 2f+3" in strategy.qora.last_round.refused
    assert all(metrics[f"qora.reputation.{n}"] == 0.5 for n in HONEST[:3])  # nobody's fault


# ---- metrics -------------------------------------------------------------------------------------


def test_client_metrics_come_from_the_aggregated_replies_and_cannot_forge_qora_keys(replies):
    strategy = QoraStrategy(aggregation_method="multi_krum:2")
    rng = np.random.default_rng(8)
    models = honest_models(rng)
    msgs = [replies.reply(n, m, 10, metrics={"loss": 1.0}) for n, m in zip(HONEST, models)]
    msgs += [replies.reply(n, attack(models), 10, metrics={"loss": 1000.0, "qora.excluded": 0.0,
                                                            "qora.reputation.99": 1.0}) for n in ATTACKERS]

    _, metrics = strategy.aggregate_train(1, msgs)

    assert metrics["loss"] == pytest.approx(1.0)  # the attackers' loss is not averaged in
    assert metrics["qora.excluded"] == 6
    assert "qora.reputation.99" not in metrics


def test_fedavg_parameters_keep_working(replies):
    # Prepare
    strategy = QoraStrategy(aggregation_method="fedavg", fraction_train=0.5, min_train_nodes=2,
                            min_available_nodes=2, weighted_by_key="n", arrayrecord_key="model",
                            configrecord_key="cfg")
    grid = Mock()
    grid.get_node_ids.return_value = [1, 2, 3, 4, 5, 6]

    # Execute
    sent = list(strategy.configure_train(3, replies.ArrayRecord([np.zeros(2, np.float32)]),
                                         replies.ConfigRecord({"lr": 0.1}), grid))
    content = [replies.RecordDict({"model": replies.ArrayRecord([np.array([v, v], np.float32)]),
                                   "metrics": replies.MetricRecord({"n": w})}) for v, w in [(0.0, 1), (3.0, 2)]]
    arrays, metrics = strategy.aggregate_train(3, [replies.reply(n, content=c) for n, c in zip([1, 2], content)])

    # Assert
    assert len(sent) == 3  # int(6 * 0.5)
    assert set(sent[0].content.keys()) == {"model", "cfg"}
    assert sent[0].content["cfg"]["server-round"] == 3
    np.testing.assert_allclose(arrays["0"].numpy(), [2.0, 2.0])  # (0 * 1 + 3 * 2) / 3
    assert metrics["qora.aggregated"] == 2


def test_aggregate_evaluate_drops_replies_without_a_usable_weight(replies):
    strategy = QoraStrategy()
    ok = [replies.reply(n, content=replies.RecordDict({"metrics": replies.MetricRecord(
        {"accuracy": acc, "num-examples": 10})})) for n, acc in [(1, 0.8), (2, 0.6)]]
    broken = [replies.reply(3, content=replies.RecordDict({"metrics": replies.MetricRecord({"accuracy": 0.0})})),
              replies.reply(4, content=replies.RecordDict({"metrics": replies.MetricRecord(
                  {"accuracy": 0.0, "num-examples": float("nan")})})),
              replies.error_reply(5)]

    metrics = strategy.aggregate_evaluate(1, ok + broken)

    assert metrics["accuracy"] == pytest.approx(0.7)
    assert strategy.aggregate_evaluate(2, broken) is None


def test_decay_moves_scores_back_toward_one_half(replies):
    strategy = QoraStrategy(reputation_decay_rate=0.5)
    msgs, _ = round_replies(replies, np.random.default_rng(9))
    _, metrics = strategy.aggregate_train(1, msgs)
    # attackers: 0.42 after the penalty, then half way back to 0.5
    assert metrics[f"qora.reputation.{ATTACKERS[0]}"] == pytest.approx(0.46)
    assert metrics[f"qora.reputation.{HONEST[0]}"] == pytest.approx(0.51)


def test_bad_settings_are_refused_at_construction():
    with pytest.raises(ValueError, match="reputation_decay_rate"):
        QoraStrategy(reputation_decay_rate=2.0)
    with pytest.raises(ValueError, match="mode"):
        QoraStrategy(mode="float16")
    with pytest.raises(ValueError):
        QoraStrategy(aggregation_method="average")
    with pytest.raises(TypeError):
        QoraStrategy(fraction_fit=0.5)  # a legacy FedAvg name: FedAvg itself refuses it


def test_norm_bound_excludes_large_models_without_penalty(replies):
    rng = np.random.default_rng(11)
    models = honest_models(rng, 5)  # norms well below 1
    big = [np.full((3, 4), 2.0, np.float32), np.zeros(4, np.float32)]  # norm 6.9
    strategy = QoraStrategy(norm_bound=1.0)

    _, metrics = strategy.aggregate_train(1, [replies.reply(n, m) for n, m in enumerate(models, 1)]
                                          + [replies.reply(9, big)])

    assert metrics["qora.excluded.9"] == REASON_CODES["norm_bound"] == 3
    assert metrics["qora.reputation.9"] == 0.5 and "qora.action.9" not in metrics
    assert metrics["qora.aggregated"] == 5
