"""Full rounds over real MQTT: 20 simulated nodes, the aggregator service, Mosquitto and amqtt.

The nodes are qora.sim.mqtt_node.MqttNode (the firmware's procedure: retained ROUND and MODEL
chunks in, digest checked, signed update chunks out) with a trivial compute; the aggregator is
AggregatorService in a thread. A fresh paho client then reads what a late joiner would find.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from fleetkit import initial_model
from mqttkit import ServiceRunner, Swarm, Watcher, retained_state
from qora.protocol import Encoding, UpdateChunk, open_envelope
from qora.service import verify_store
from qora.service.ledger import signature_ok

pytestmark = pytest.mark.mqtt

N_NODES = 20
NODES = [f"n{i:02d}" for i in range(N_NODES)]


def _run(broker, new_fleet, cleanup, tag, rounds, mode, encoding=lambda n: "auto"):
    fleet = new_fleet(tag, NODES, broker)
    engine = fleet.engine(initial_model(mode), mode=mode)
    cleanup.callback(engine.store.close)
    watcher = Watcher(broker, fleet.name)
    cleanup.callback(watcher.close)
    # the nodes send nothing after the last round: no update is in flight when the aggregator leaves
    swarm = Swarm(broker, fleet, encoding=encoding, last_round=rounds)
    cleanup.callback(swarm.close)
    runner = ServiceRunner(engine, broker, rounds=rounds)
    cleanup.callback(runner.close)
    runner.start()
    runner.join(timeout=60)           # run(rounds=...) returns after closing them
    return fleet, engine, watcher, swarm, runner


def _check_published_state(broker, fleet, engine, watcher, rounds):
    # every round closed with all 20 complete updates
    closed = engine.store.ledger()
    assert [row.round for row in closed] == list(range(1, rounds + 1))
    # what a late joiner finds: the next round, the model the engine holds, the ledger head
    ann, model, head = retained_state(broker, fleet.name)
    assert (ann.round, ann.version) == (rounds + 1, rounds)
    assert model.dtype == engine.model.dtype and np.array_equal(model, engine.model)
    stored = engine.store.ledger_head()
    assert head is not None and (head.round, head.hash, head.signature) == (stored.round, stored.hash,
                                                                            stored.signature)
    assert head.public_key == fleet.signer.public_key
    assert signature_ok(head.public_key, stored.record, head.signature)
    # the announcement advanced one round at a time, never backwards
    seen = [a.round for a in watcher.rounds()]
    assert seen == sorted(seen) and sorted(set(seen)) == list(range(1, rounds + 2))
    heads = {(h.round, h.hash) for h in watcher.ledger_heads()}
    assert {r for r, _h in heads} == set(range(1, rounds + 1))
    assert len(heads) == rounds                                  # one head per round, never two
    report = verify_store(fleet.db, public_key=fleet.signer.public_key, keys=fleet.keys)
    assert report.ok, report.findings
    assert report.rounds == rounds
    return closed


def test_twenty_nodes_run_three_q16_rounds(broker, new_fleet, cleanup):
    fleet, engine, watcher, swarm, runner = _run(broker, new_fleet, cleanup, "rounds", 3, "q16_16")
    for closed in runner.recorder.closed:
        rec = closed.record
        assert [i["node"] for i in rec["inputs"]] == NODES, closed.round
        assert rec["incomplete"] == [] and rec["rejects"] == {} and rec["model_out"]["version"] == closed.round
    assert [c.round for c in runner.recorder.closed] == [1, 2, 3]
    assert runner.recorder.reasons() == Counter()
    assert runner.recorder.accepted() == 3 * N_NODES * 3        # 300 elements in chunks of 128: 3 chunks
    for n in NODES:
        assert swarm.sent(n)[:3] == [1, 2, 3]
    _check_published_state(broker, fleet, engine, watcher, 3)
    assert verify_store(fleet.db).replayed_q16 == 3


def test_float32_fleet_round_with_int8_updates(broker, new_fleet, cleanup):
    int8 = set(NODES[::2])
    fleet, engine, watcher, _swarm, runner = _run(
        broker, new_fleet, cleanup, "f32", 2, "float32", encoding=lambda n: "int8" if n in int8 else "auto")
    for closed in runner.recorder.closed:
        assert [i["node"] for i in closed.record["inputs"]] == NODES
    assert runner.recorder.reasons() == Counter()
    encodings = {}
    for node, _idx, message in engine.store.chunks(1):
        payload, _tag = open_envelope(message)
        encodings.setdefault(node, set()).add(UpdateChunk.decode(payload).encoding)
    assert encodings == {n: {Encoding.I8 if n in int8 else Encoding.F32} for n in NODES}
    _check_published_state(broker, fleet, engine, watcher, 2)
    assert engine.model.dtype == np.float32
    assert verify_store(fleet.db).replayed_float == 2


def test_two_fleets_with_the_same_node_ids_stay_apart_on_one_broker(broker, new_fleet, cleanup):
    """Like the demo's two fleets. A node must ignore another fleet's ROUND and MODEL messages: amqtt
    0.11 even sends a new client every retained message that matches anyone's subscription."""
    nodes = NODES[:5]
    a = new_fleet("fleet-a", nodes, broker, subdir="a")
    b = new_fleet("fleet-b", nodes, broker, subdir="b")
    engine_a = a.engine(initial_model("q16_16", seed=1))
    cleanup.callback(engine_a.store.close)
    watch_a = Watcher(broker, a.name)                    # keeps a subscription to fleet a's topics alive
    cleanup.callback(watch_a.close)
    swarm_a = Swarm(broker, a, last_round=2)
    cleanup.callback(swarm_a.close)
    runner_a = ServiceRunner(engine_a, broker, rounds=2)
    cleanup.callback(runner_a.close)
    runner_a.start()
    runner_a.join(timeout=60)                            # fleet a now has round 3 retained
    swarm_a.close()

    engine_b = b.engine(initial_model("q16_16", seed=2))
    cleanup.callback(engine_b.store.close)
    runner_b = ServiceRunner(engine_b, broker, rounds=1)
    cleanup.callback(runner_b.close)
    runner_b.start()
    swarm_b = Swarm(broker, b, last_round=1)
    cleanup.callback(swarm_b.close)
    runner_b.join(timeout=60)
    assert [i["node"] for i in runner_b.recorder.closed[0].record["inputs"]] == nodes
    rejected = [v for v in runner_b.recorder.verdicts if not v.accepted]
    if broker.kind == "embedded":
        # amqtt's replay reaches the aggregator too; it counts fleet a's retained messages as
        # wrong_fleet (the engine's verdict on a topic it did not subscribe to), nothing else
        assert all(v.reason == "wrong_fleet" and a.name in v.detail for v in rejected), rejected
    else:
        assert rejected == []
    assert all(swarm_b.sent(n) == [1] for n in nodes)
    ann, model, _head = retained_state(broker, b.name)
    assert (ann.fleet, ann.round) == (b.name, 2) and np.array_equal(model, engine_b.model)
