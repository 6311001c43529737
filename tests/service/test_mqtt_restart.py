"""Restarts mid-round: ``kill -9`` of a ``qora serve`` process, and a broker that goes away.

(a) ``qora serve`` runs as a subprocess against Mosquitto on 1883 and is killed with SIGKILL while
a round is open; what it accepted is in SQLite, what nodes send while it is down waits in its
persistent MQTT session (clean session off), and the restarted process finishes the round with
every input, once. (b) A Mosquitto of our own (persistence off) is stopped and started again
mid-round; the aggregator and the nodes reconnect by themselves and the round completes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fleetkit import initial_model
from mqttkit import (
    Broker,
    OwnMosquitto,
    Serve,
    ServiceRunner,
    Swarm,
    Watcher,
    mosquitto_binary,
    port_open,
    read_store,
    retained_state,
    wait_until,
)
from qora.mqtt_url import BrokerAddress, free_port
from qora.service import Signer
from qora.service.compute import assemble_input

pytestmark = pytest.mark.mqtt

NODES = [f"n{i}" for i in range(6)]
EARLY, LATE = NODES[:3], NODES[3:]
MODEL_CHUNKS = 3                  # qora serve's default model: 2410 parameters in chunks of 1024


# ---- (a) kill -9 of qora serve ----------------------------------------------------------------
def _stored_nodes(db, round_):
    """Nodes with a complete update stored for the round."""
    chunks = read_store(db, lambda s: list(s.chunks(round_))) or []
    per_node: dict[str, int] = {}
    for node, _idx, _m in chunks:
        per_node[node] = per_node.get(node, 0) + 1
    return {n for n, c in per_node.items() if c == MODEL_CHUNKS}


def _ledger(db):
    return read_store(db, lambda s: [(row.round, json.loads(row.record)) for row in s.ledger()]) or []


def _verify(fleet, serve):
    """``qora verify`` with the ledger key pinned and every stored update's tag re-checked."""
    public = Signer.load_or_create(serve.dir / "ledger.key").public_key.hex()
    out = subprocess.run([sys.executable, "-m", "qora.cli", "verify", str(fleet.db), "--keys", str(fleet.keys_path),
                          "--public-key", public], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ledger OK" in out.stdout
    return out.stdout


@pytest.fixture
def served(mosquitto_1883, new_fleet, tmp_path, cleanup):
    fleet = new_fleet("restart", NODES, mosquitto_1883)
    serve = Serve(mosquitto_1883, fleet, tmp_path)
    cleanup.callback(serve.close)
    watcher = Watcher(mosquitto_1883, fleet.name)     # every ROUND / LEDGER the aggregators publish
    cleanup.callback(watcher.close)
    return mosquitto_1883, fleet, serve, watcher


def test_kill9_mid_round_then_restart_loses_nothing_and_publishes_each_round_once(served, cleanup):
    broker, fleet, serve, watcher = served
    first = serve.start()
    swarm = Swarm(broker, fleet, gated=tuple(LATE), last_round=2)
    cleanup.callback(swarm.close)
    # the early nodes' updates are accepted: stored in SQLite (and acknowledged) before the kill
    wait_until(lambda: _stored_nodes(fleet.db, 1) == set(EARLY), timeout=30, what="the early updates stored")
    serve.kill9(first)
    before = set(read_store(fleet.db, lambda s: list(s.chunks(1))))

    second = serve.start(rounds=1)     # resumes round 1 with the stored chunks; leaves after closing it
    swarm.release()                    # the other nodes send now
    serve.wait_exit(second)
    ledger = _ledger(fleet.db)
    assert [r for r, _rec in ledger] == [1]
    record = ledger[0][1]
    assert [i["node"] for i in record["inputs"]] == NODES
    stored = read_store(fleet.db, lambda s: list(s.chunks(1)))
    assert before <= set(stored)       # accepted before the kill: still there, byte for byte...
    for node in EARLY:                 # ...and in the record
        digest = assemble_input(node, [m for n, _i, m in stored if n == node], "q16_16").digest.hex()
        assert digest == next(i["digest"] for i in record["inputs"] if i["node"] == node)
    assert set(record["rejects"]) <= {f"replay/{n}" for n in NODES}   # a QoS 1 redelivery at most

    # round 2 is announced; every node sends while no aggregator runs (the broker queues it)
    swarm.wait_sent(2, timeout=30)
    swarm.wait_acked()
    third = serve.start(rounds=1)
    serve.wait_exit(third)
    ledger = _ledger(fleet.db)
    assert [r for r, _rec in ledger] == [1, 2]
    assert [i["node"] for i in ledger[1][1]["inputs"]] == NODES
    # one ledger head per round on the ledger topic, whatever was re-published on restarts
    heads = {(h.round, h.hash) for h in watcher.ledger_heads()}
    hashes = read_store(fleet.db, lambda s: {(row.round, row.hash) for row in s.ledger()})
    assert heads == hashes
    rounds_seen = [a.round for a in watcher.rounds()]
    assert rounds_seen == sorted(rounds_seen) and set(rounds_seen) == {1, 2, 3}
    assert 'round_closed' in serve.log(1) and serve.log(1).count('"round_closed"') == 1
    assert serve.log(2).count('"round_closed"') == 1
    _verify(fleet, serve)


def test_updates_sent_while_the_killed_aggregator_is_down_are_delivered_after_restart(served, cleanup):
    broker, fleet, serve, _watcher = served
    first = serve.start()
    swarm = Swarm(broker, fleet, gated=tuple(LATE), last_round=1)
    cleanup.callback(swarm.close)
    wait_until(lambda: _stored_nodes(fleet.db, 1) == set(EARLY), timeout=30, what="the early updates stored")
    serve.kill9(first)
    swarm.release()
    swarm.wait_sent(1, LATE)
    swarm.wait_acked(LATE)             # the broker holds them now, for the aggregator's session
    assert _stored_nodes(fleet.db, 1) == set(EARLY)
    second = serve.start(rounds=1)
    serve.wait_exit(second)
    ledger = _ledger(fleet.db)
    assert [r for r, _rec in ledger] == [1]
    assert [i["node"] for i in ledger[0][1]["inputs"]] == NODES
    assert set(ledger[0][1]["rejects"]) <= {f"replay/{n}" for n in NODES}
    _verify(fleet, serve)


# ---- (b) the broker restarts mid-round -----------------------------------------------------------
@pytest.fixture
def own_broker(tmp_path, cleanup):
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = OwnMosquitto(workdir, free_port())
    cleanup.callback(broker.stop)
    broker.start()
    return broker


def test_broker_restart_mid_round_both_sides_reconnect_and_the_round_completes(own_broker, new_fleet, cleanup):
    broker = Broker("own", BrokerAddress("127.0.0.1", own_broker.port), "5")
    fleet = new_fleet("brokerrestart", NODES, broker)
    engine = fleet.engine(initial_model("q16_16"), round_seconds=120.0)
    cleanup.callback(engine.store.close)
    runner = ServiceRunner(engine, broker)
    cleanup.callback(runner.close)
    runner.start()
    swarm = Swarm(broker, fleet, gated=tuple(LATE), last_round=1)
    cleanup.callback(swarm.close)
    rec = runner.recorder
    wait_until(lambda: rec.accepted() == 3 * len(EARLY), what="the early updates")
    wait_until(lambda: all(swarm.started[n] == [1] for n in LATE) and swarm.connected(),
               what="the other nodes holding round 1's model, waiting to send")

    own_broker.stop()                                    # retained state and sessions are gone with it
    wait_until(lambda: not runner.service.status().connected and not any(
        node.client.is_connected() for node in swarm.nodes.values()), what="both sides to notice")
    assert not port_open("127.0.0.1", own_broker.port)
    own_broker.start()                                   # same port, empty
    wait_until(lambda: runner.service.status().connected and swarm.connected(), timeout=30,
               what="the aggregator and every node reconnected")
    assert rec.connections[:2] == [True, False] and rec.connections[-1] is True
    # the aggregator re-published the retained round and model: a late joiner finds them
    ann, model, _head = retained_state(broker, fleet.name)
    assert (ann.round, ann.version) == (1, 0) and (model == engine.model).all()

    swarm.release()                                      # the nodes that had not sent do it now
    runner.wait_closed(1, timeout=30)
    record = rec.closed[0].record
    assert [i["node"] for i in record["inputs"]] == NODES
    for n in NODES:                                      # trained once: the early ones did not resend
        assert swarm.computed[n] == [1]
    assert set(record["rejects"]) <= {f"replay/{n}" for n in NODES}
    ann, model, head = retained_state(broker, fleet.name)
    assert ann.round == 2 and (model == engine.model).all() and head.round == 1
