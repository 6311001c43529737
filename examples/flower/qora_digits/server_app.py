"""ServerApp: QoraStrategy over the SuperNodes, the global model checked on held-out digits.

After each training round it logs one line per node (partition, role, what Qora did, its
reputation), read from the ``qora.*`` metrics the strategy returns; the partition ids come
from the replies' ``node`` ConfigRecord and are only labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging import INFO

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid, ServerApp

from qora.flower import REASON_CODES, QoraStrategy
from qora_digits import task

app = ServerApp()
REASONS = {code: name for name, code in REASON_CODES.items()}


class DigitsStrategy(QoraStrategy):
    """QoraStrategy that also logs a per-node table (an example of reading its metrics)."""

    def __init__(self, byzantine: set[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.byzantine = byzantine
        self.partition_of: dict[int, int] = {}

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        for msg in replies:
            if msg.has_content() and "node" in msg.content.config_records:
                pid = msg.content.config_records["node"].get("partition-id")
                if isinstance(pid, int):
                    self.partition_of[msg.metadata.src_node_id] = pid
        arrays, metrics = super().aggregate_train(server_round, replies)
        if metrics is not None:
            self._log_table(server_round, replies, metrics)
        return arrays, metrics

    def _log_table(self, server_round: int, replies: list[Message], m: MetricRecord) -> None:
        nodes = sorted((msg.metadata.src_node_id for msg in replies),
                       key=lambda node: self.partition_of.get(node, 1 << 30))
        log(INFO, "qora-digits: round %s, per node:", server_round)
        for node in nodes:
            pid = self.partition_of.get(node)
            role = "byzantine" if pid in self.byzantine else "honest"
            code = m.get(f"qora.excluded.{node}")
            what = "aggregated" if code is None else f"excluded: {REASONS.get(int(code), code)}"
            action = {1: "rewarded", -1: "penalised"}.get(m.get(f"qora.action.{node}", 0))
            if action:
                what += f", {action}"
            log(INFO, "  partition %s  node %20s  %-9s  %-35s reputation %.2f",
                pid, node, role, what, m[f"qora.reputation.{node}"])


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    nodes = int(cfg["min-nodes"])
    strategy = DigitsStrategy(
        byzantine=task.byzantine_ids(str(cfg["byzantine"])),
        aggregation_method=str(cfg["aggregation-method"]),
        trim_fraction=float(cfg["trim-fraction"]),
        reputation_threshold=float(cfg["reputation-threshold"]),
        reputation_decay_rate=float(cfg["reputation-decay-rate"]),
        mode=str(cfg["mode"]),
        reputation_path=str(cfg["reputation-path"]) or None,
        fraction_evaluate=float(cfg["fraction-evaluate"]),
        min_available_nodes=nodes, min_train_nodes=nodes, min_evaluate_nodes=nodes,
    )
    d = task.dataset()

    def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        acc, loss = task.accuracy_and_loss(task.from_record(arrays), d.X_test, d.y_test)
        return MetricRecord({"accuracy": acc, "loss": loss})

    result = strategy.start(grid=grid, initial_arrays=task.to_record(task.MODEL.init_params(seed=0)),
                            num_rounds=int(cfg["num-server-rounds"]), train_config=ConfigRecord(),
                            evaluate_fn=central_evaluate)
    final = result.evaluate_metrics_serverapp.get(int(cfg["num-server-rounds"]))
    if final is not None:
        log(INFO, "qora-digits: final accuracy on the 450 held-out digits: %.3f", final["accuracy"])
