"""QoraLegacyStrategy (``aggregate_fit``) against QoraStrategy: one implementation, two adapters."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.common import Code, FitRes, Parameters, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy

from qora.flower import REASON_CODES, QoraLegacyStrategy, QoraStrategy


class Proxy(ClientProxy):
    """A client proxy as ServerApp(server_fn=...) has one: cid = str(node_id)."""

    def __init__(self, node_id: int) -> None:
        super().__init__(str(node_id))
        self.node_id = node_id

    def get_properties(self, ins, timeout, group_id):  # pragma: no cover - never called
        raise NotImplementedError

    get_parameters = fit = evaluate = reconnect = get_properties


def fit_res(arrays, n=10, metrics=None):
    return FitRes(Status(Code.OK, "ok"), ndarrays_to_parameters(arrays), n, metrics or {})


def scenario(seed, rounds=6):
    """Per round: 5 honest two-array models, 2 sign-flipping attackers, one NaN sender."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        honest = [[rng.normal(0, 0.1, (4, 3)).astype(np.float32), rng.normal(0, 0.1, 3).astype(np.float32)]
                  for _ in range(5)]
        mean = [np.mean([m[j] for m in honest], axis=0) for j in range(2)]
        flip = [(-15 * a).astype(np.float32) for a in mean]
        nan = [np.full((4, 3), np.nan, np.float32), mean[1]]
        out.append(list(zip(range(1, 9), honest + [flip, flip, nan], [10, 20, 30, 40, 50, 60, 70, 80])))
    return out


@pytest.mark.parametrize("kwargs", [{}, {"aggregation_method": "multi_krum:1", "mode": "q16_16"},
                                    {"aggregation_method": "median", "reputation_decay_rate": 0.1},
                                    {"aggregation_method": "fedavg"}])
def test_legacy_and_message_adapters_agree_bit_for_bit(replies, kwargs):
    # Prepare
    message, legacy = QoraStrategy(**kwargs), QoraLegacyStrategy(**kwargs)

    for server_round, updates in enumerate(scenario(0), start=1):
        # Execute
        arrays, m_metrics = message.aggregate_train(
            server_round, [replies.reply(node, a, n) for node, a, n in updates])
        params, l_metrics = legacy.aggregate_fit(
            server_round, [(Proxy(node), fit_res(a, n)) for node, a, n in updates], [])

        # Assert
        got_m = [arrays[k].numpy() for k in arrays.keys()]
        got_l = parameters_to_ndarrays(params)
        assert [a.tobytes() for a in got_m] == [a.tobytes() for a in got_l]
        assert [a.dtype for a in got_l] == [np.float32, np.float32]
        assert dict(m_metrics) == l_metrics
    assert message.qora.reputation.to_json() == legacy.qora.reputation.to_json()
    assert l_metrics["qora.excluded.8"] == REASON_CODES["non_finite"]


def test_legacy_keys_reputation_by_node_id_and_reports_failures_without_penalty():
    rng = np.random.default_rng(1)
    strategy = QoraLegacyStrategy()
    results = [(Proxy(n), fit_res([rng.normal(size=3).astype(np.float32)])) for n in (5, 6, 7)]
    failed = FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "no fit"), Parameters([], ""), 0, {})

    params, metrics = strategy.aggregate_fit(1, results, [(Proxy(9), failed), RuntimeError("lost")])

    assert params is not None
    assert set(strategy.qora.reputation.all_scores()) == {5, 6, 7}  # a failure leaves no trace
    assert metrics["qora.excluded.9"] == REASON_CODES["failed"]
    assert metrics["qora.reputation.9"] == 0.5


def test_legacy_undecodable_parameters_are_malformed():
    rng = np.random.default_rng(2)
    strategy = QoraLegacyStrategy()
    results = [(Proxy(n), fit_res([rng.normal(size=3).astype(np.float32)])) for n in (1, 2, 3)]
    garbage = FitRes(Status(Code.OK, "ok"), Parameters([b"\x00garbage"], "numpy.ndarray"), 10, {})

    _, metrics = strategy.aggregate_fit(1, results + [(Proxy(4), garbage)], [])

    assert metrics["qora.excluded.4"] == REASON_CODES["malformed"]
    assert metrics["qora.reputation.4"] == pytest.approx(0.42)


def test_legacy_keeps_fedavgs_behaviour_around_aggregation():
    rng = np.random.default_rng(3)
    seen = []

    def fit_metrics(pairs):
        seen.extend(pairs)
        return {"loss": sum(n * m["loss"] for n, m in pairs) / sum(n for n, _ in pairs), "qora.refused": 7}

    strategy = QoraLegacyStrategy(aggregation_method="multi_krum:1", accept_failures=False,
                                  fit_metrics_aggregation_fn=fit_metrics, min_fit_clients=3)
    results = [(Proxy(n), fit_res([rng.normal(size=3).astype(np.float32)], 10, {"loss": 1.0})) for n in range(1, 6)]
    results.append((Proxy(6), fit_res([np.full(3, 1e6, np.float32)], 10, {"loss": 99.0})))

    assert strategy.aggregate_fit(1, results, [RuntimeError("lost")]) == (None, {})  # accept_failures=False
    assert strategy.aggregate_fit(1, [], []) == (None, {})
    _, metrics = strategy.aggregate_fit(1, results, [])
    assert metrics["loss"] == 1.0 and len(seen) == 2  # multi_krum:1 picked 2, only theirs are averaged
    assert metrics["qora.refused"] == 0  # a client metric cannot overwrite ours
    assert strategy.min_fit_clients == 3
    assert "multi_krum:1" in repr(strategy)
