"""``QoraLegacyStrategy``: the same aggregation for code on Flower's legacy strategy API.

A subclass of ``flwr.server.strategy.FedAvg`` overriding ``aggregate_fit`` (and
``configure_fit``, only to remember the global model's layout), for ``ServerApp(server_fn=...)``
code and for users of Qora-FL's ``QoraStrategy``, which had the same parameters on the same base
class. Everything else (sampling, ``on_fit_config_fn``, ``evaluate_fn``, ``accept_failures``,
``fit_metrics_aggregation_fn`` ...) is FedAvg's. The work is done by
:class:`qora.flower.QoraAggregation`, as in :class:`qora.flower.QoraStrategy`: the same inputs
give the same aggregate and the same reputation in both.

The node key is ``ClientProxy.node_id`` (the Flower node id, as in the Message API), or
``cid`` for proxies without one, so one ``reputation_path`` file serves both adapters.
"""

from __future__ import annotations

import os
from logging import INFO, WARNING
from typing import Any

from flwr.common import (
    FitRes,
    Parameters,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from qora.flower.core import QoraAggregation, Rejected

__all__ = ["QoraLegacyStrategy"]


def _node_key(proxy: ClientProxy) -> int | str:
    node_id = getattr(proxy, "node_id", None)
    if isinstance(node_id, int) and not isinstance(node_id, bool):
        return node_id
    return str(proxy.cid)


class QoraLegacyStrategy(FedAvg):
    """Flower strategy (legacy ``aggregate_fit`` API) with Qora's robust aggregation.

    Parameters
    ----------
    aggregation_method, trim_fraction, reputation_threshold, reputation_decay_rate,
    norm_bound, mode, reputation_path
        As :class:`qora.flower.QoraAggregation`.
    **kwargs
        Every ``flwr.server.strategy.FedAvg`` parameter (``fraction_fit``, ``min_fit_clients``,
        ``min_available_clients``, ``evaluate_fn``, ``on_fit_config_fn``, ``accept_failures``,
        ``initial_parameters``, ``fit_metrics_aggregation_fn`` ...).
    """

    def __init__(self, *, aggregation_method: str = "trimmed_mean", trim_fraction: float = 0.2,
                 reputation_threshold: float = 0.2, reputation_decay_rate: float = 0.0,
                 norm_bound: float | None = None, mode: str = "float32",
                 reputation_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.qora = QoraAggregation(aggregation_method, trim_fraction, reputation_threshold,
                                    reputation_decay_rate, norm_bound, mode, reputation_path)
        self._reference: list[Any] | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.qora.config.items())
        return f"QoraLegacyStrategy({args}, accept_failures={self.accept_failures})"

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, Any]]:
        """FedAvg's, remembering the global model's layout (it breaks layout ties)."""
        try:
            self._reference = parameters_to_ndarrays(parameters)
        except Exception:  # noqa: BLE001  (an undecodable global model only loses the tie-break)
            self._reference = None
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures: list[tuple[ClientProxy, FitRes] | BaseException]
                      ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate the fit results with Qora; metrics as in :mod:`qora.flower.core`."""
        if not results:
            return None, {}
        if not self.accept_failures and failures:
            return None, {}
        updates: list[tuple[int | str, Any, Any]] = []
        for proxy, res in results:
            try:
                arrays: Any = parameters_to_ndarrays(res.parameters)
            except Exception as exc:  # noqa: BLE001  (bytes from the network: anything can fail)
                arrays = Rejected("malformed", f"parameters cannot be decoded: {exc}")
            updates.append((_node_key(proxy), arrays, res.num_examples))
        for failure in failures:
            if isinstance(failure, tuple):
                proxy, res = failure
                updates.append((_node_key(proxy), Rejected("failed", f"status {res.status.message!r}"), 0))
        result = self.qora.aggregate(updates, reference=self._reference)
        lines = result.describe()
        log(WARNING if result.refused is not None else INFO, "qora: round %s: %s", server_round, lines[0])
        for line in lines[1:]:
            log(INFO, "\t> %s", line)

        metrics: dict[str, Scalar] = {}
        if self.fit_metrics_aggregation_fn is not None:
            chosen = set(result.aggregated)
            fit_metrics = [(res.num_examples, res.metrics) for proxy, res in results
                           if _node_key(proxy) in chosen]
            if fit_metrics:
                try:
                    client = self.fit_metrics_aggregation_fn(fit_metrics)
                except Exception as exc:  # noqa: BLE001  (client metrics must not stop the round)
                    log(WARNING, "qora: round %s: client fit metrics not aggregated: %r", server_round, exc)
                else:
                    metrics.update({k: v for k, v in client.items() if not str(k).startswith("qora.")})
        metrics.update(result.metrics)
        params = None if result.arrays is None else ndarrays_to_parameters(list(result.arrays))
        return params, metrics
