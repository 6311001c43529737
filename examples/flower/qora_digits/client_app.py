"""ClientApp: train softmax regression on this SuperNode's digits partition.

The SuperNode's node config says which partition it holds (``partition-id``,
``num-partitions``); partitions listed in the run config's ``byzantine`` attack: they train
honestly, then send the global model moved ``attack-scale`` times against their update (a
scaled sign flip). Every reply also carries a ConfigRecord ``node`` with the partition id,
which the ServerApp uses only to label its log.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from qora_digits import task

app = ClientApp()


def _partition(context: Context) -> tuple[int, int]:
    return int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])


@app.train()
def train(msg: Message, context: Context) -> Message:
    pid, n = _partition(context)
    cfg = context.run_config
    X, y, _, _ = task.client_data(pid, n)
    server_round = int(msg.content["config"]["server-round"])
    global_params = task.from_record(msg.content["arrays"])
    params = task.MODEL.train(global_params, X, y, epochs=int(cfg["local-epochs"]),
                              lr=float(cfg["learning-rate"]), seed=1000 * server_round + pid)
    _, loss = task.accuracy_and_loss(params, X, y)
    if pid in task.byzantine_ids(str(cfg["byzantine"])):
        params = task.attack(global_params, params, float(cfg["attack-scale"]))
    content = RecordDict({
        "arrays": task.to_record(params),
        "metrics": MetricRecord({"train-loss": loss, "num-examples": len(y)}),
        "node": ConfigRecord({"partition-id": pid}),
    })
    return Message(content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    pid, n = _partition(context)
    _, _, X, y = task.client_data(pid, n)
    acc, loss = task.accuracy_and_loss(task.from_record(msg.content["arrays"]), X, y)
    metrics = MetricRecord({"accuracy": acc, "loss": loss, "num-examples": len(y)})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
