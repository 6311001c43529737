"""``QoraStrategy``: Qora's robust aggregation and reputation on Flower's Message API.

A subclass of ``flwr.serverapp.strategy.FedAvg`` that replaces how training replies are
aggregated and nothing else: sampling (``fraction_train``, ``min_train_nodes``,
``min_available_nodes``), message construction (``arrayrecord_key``, ``configrecord_key``),
``weighted_by_key``, the metric aggregation functions and ``start()`` are FedAvg's.

Differences from FedAvg's ``aggregate_train``, all on purpose:

* Replies are never all-or-nothing. FedAvg raises ``InconsistentMessageReplies`` (and the
  ServerApp stops) when one reply lacks its ArrayRecord or ``num-examples``; here that reply
  is excluded as ``malformed``, its node penalised, and the others are aggregated. The same
  holds for NaN / Inf values (``non_finite``) and arrays of another name, shape or dtype
  (``mismatch``).
* The model is aggregated by :class:`qora.flower.QoraAggregation` (ByzantineAggregator with
  reputation keyed by node id); its metrics (``qora.*``, see :mod:`qora.flower.core`) are
  added to the aggregated client metrics, which are computed over the aggregated replies
  only. Client metrics whose key starts with ``qora.`` are dropped: a node cannot forge them.
* ``aggregate_evaluate`` drops evaluation replies without exactly one usable weight instead
  of raising (not penalised: evaluation does not touch the model).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from logging import INFO, WARNING
from typing import Any

from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.supercore import log

from qora.flower.core import QoraAggregation, QoraRound, Rejected

__all__ = ["QoraStrategy"]


class QoraStrategy(FedAvg):
    """Flower strategy (Message API) with Qora's Byzantine-robust aggregation and reputation.

    Parameters
    ----------
    aggregation_method, trim_fraction, reputation_threshold, reputation_decay_rate,
    norm_bound, mode, reputation_path
        As :class:`qora.flower.QoraAggregation` (defaults: ``"trimmed_mean"``, 0.2, 0.2, 0.0,
        None, ``"float32"``, None).
    **kwargs
        Every ``flwr.serverapp.strategy.FedAvg`` parameter: ``fraction_train``,
        ``fraction_evaluate``, ``min_train_nodes``, ``min_evaluate_nodes``,
        ``min_available_nodes``, ``weighted_by_key``, ``arrayrecord_key``,
        ``configrecord_key``, ``train_metrics_aggr_fn``, ``evaluate_metrics_aggr_fn``.

    ``qora`` is the :class:`QoraAggregation` behind it (reputation, last round's report).
    """

    def __init__(self, *, aggregation_method: str = "trimmed_mean", trim_fraction: float = 0.2,
                 reputation_threshold: float = 0.2, reputation_decay_rate: float = 0.0,
                 norm_bound: float | None = None, mode: str = "float32",
                 reputation_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.qora = QoraAggregation(aggregation_method, trim_fraction, reputation_threshold,
                                    reputation_decay_rate, norm_bound, mode, reputation_path)
        self._reference: dict[str, Any] | None = None

    def summary(self) -> None:
        """Log the Qora settings, then FedAvg's."""
        log(INFO, "\t├──> Qora settings:")
        items = list(self.qora.config.items())
        for i, (name, value) in enumerate(items):
            log(INFO, "\t│\t%s── %s: %s", "└" if i == len(items) - 1 else "├", name, value)
        super().summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        """FedAvg's, remembering the global model's layout (it breaks layout ties)."""
        try:
            self._reference = {name: arr.numpy() for name, arr in arrays.items()}
        except Exception:  # noqa: BLE001  (an undecodable global model only loses the tie-break)
            self._reference = None
        return super().configure_train(server_round, arrays, config, grid)

    # ---- decoding --------------------------------------------------------------------------
    def _decode(self, msg: Message) -> tuple[int, Any, Any]:
        """(node id, arrays or Rejected, num_examples) of one reply."""
        node = int(msg.metadata.src_node_id)
        if msg.has_error():
            return node, Rejected("failed", f"error reply: {msg.error.reason}"), 0
        if not msg.has_content():
            return node, Rejected("malformed", "reply without content"), 0
        content = msg.content
        records = content.array_records
        if self.arrayrecord_key in records:
            record = records[self.arrayrecord_key]
        elif len(records) == 1:
            record = next(iter(records.values()))
        else:
            what = "no ArrayRecord" if not records else \
                f"{len(records)} ArrayRecords, none under '{self.arrayrecord_key}'"
            return node, Rejected("malformed", what), 0
        metrics = [m for m in content.metric_records.values() if self.weighted_by_key in m]
        if len(metrics) != 1:
            what = "no" if not metrics else f"{len(metrics)}"
            return node, Rejected("malformed", f"{what} MetricRecord with '{self.weighted_by_key}'"), 0
        arrays = {}
        for name, arr in record.items():
            try:
                arrays[name] = arr.numpy()
            except Exception as exc:  # noqa: BLE001  (bytes from the network: anything can fail)
                return node, Rejected("malformed", f"array {name!r} cannot be decoded: {exc}"), 0
        return node, arrays, metrics[0][self.weighted_by_key]

    # ---- training --------------------------------------------------------------------------
    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Aggregate the replies' ArrayRecords with Qora; metrics as described in the module."""
        replies = list(replies)
        if not replies:
            return None, None
        decoded = [self._decode(msg) for msg in replies]
        result = self.qora.aggregate(decoded, reference=self._reference)
        self._log_round(server_round, result)

        chosen = set(result.aggregated)
        contents = [msg.content for msg, (node, _, _) in zip(replies, decoded) if node in chosen]
        metrics = MetricRecord()
        if contents:
            try:
                client = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
            except Exception as exc:  # noqa: BLE001  (client metrics must not stop the round)
                log(WARNING, "qora: round %s: client train metrics not aggregated: %r", server_round, exc)
            else:
                for k, v in client.items():
                    if not k.startswith("qora."):
                        metrics[k] = v
        for k, v in result.metrics.items():
            metrics[k] = v
        arrays = None
        if result.arrays is not None:
            arrays = ArrayRecord({name: Array(a) for name, a in result.arrays.items()})
        return arrays, metrics

    @staticmethod
    def _log_round(server_round: int, result: QoraRound) -> None:
        lines = result.describe()
        level = WARNING if result.refused is not None else INFO
        log(level, "qora: round %s: %s", server_round, lines[0])
        for line in lines[1:]:
            log(INFO, "\t> %s", line)

    # ---- evaluation ------------------------------------------------------------------------
    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """FedAvg's, but replies without one finite weight >= 0 are dropped, not fatal."""
        usable: list[RecordDict] = []
        dropped = 0
        for msg in replies:
            if msg.has_error() or not msg.has_content():
                dropped += 1
                continue
            records = list(msg.content.metric_records.values())
            w = records[0].get(self.weighted_by_key) if len(records) == 1 else None
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                dropped += 1
                continue
            usable.append(msg.content)
        log(INFO, "aggregate_evaluate: %s usable replies, %s dropped", len(usable), dropped)
        if not usable or sum(float(c.metric_records[next(iter(c.metric_records))][self.weighted_by_key])
                             for c in usable) <= 0:
            return None
        try:
            return self.evaluate_metrics_aggr_fn(usable, self.weighted_by_key)
        except Exception as exc:  # noqa: BLE001  (client metrics must not stop the run)
            log(WARNING, "qora: round %s: evaluation metrics not aggregated: %r", server_round, exc)
            return None
