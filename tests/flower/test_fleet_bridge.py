"""A whole MQTT fleet as one Flower client, against Mosquitto with simulated devices."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest

from qora.provision import provision
from qora.service import verify_store
from qora.sim import data as data_lib
from qora.sim.fleet import FleetSpec, run_nodes
from qora.sim.models import make_model

BROKER = "mqtt://127.0.0.1:1883"
pytestmark = pytest.mark.mqtt


@pytest.fixture()
def site(tmp_path):
    """A provisioned site with 6 devices (one Byzantine) running on the real broker."""
    from qora.flower import FleetSite
    from qora.flower.fleet import site_paths

    fleet = f"site-{uuid.uuid4().hex[:8]}"
    nodes = [f"dev-{i}" for i in range(6)]
    provision(fleet, nodes, tmp_path)
    spec = FleetSpec(broker=BROKER, fleets=(fleet,), credentials=str(tmp_path), nodes=tuple(nodes),
                     byzantine=("dev-5",), attack="sign_flip", model="softmax", seed=3)
    stop = threading.Event()
    devices = threading.Thread(target=run_nodes, args=(spec, list(nodes), stop), daemon=True)
    devices.start()
    yield FleetSite(broker=BROKER, fleet=fleet, quorum=4, round_seconds=20, timeout=60,
                    **site_paths(tmp_path, fleet))
    stop.set()
    devices.join(timeout=10)


def _global_arrays(seed=0):
    params = np.asarray(make_model("softmax", "float32").init_params(seed), np.float32)
    return [params[:640].reshape(10, 64), params[640:]]   # W (10, 64), b (10,)


def _accuracy(arrays):
    ds = data_lib.load_digits(seed=0)
    flat = np.concatenate([a.ravel() for a in arrays]).astype(np.float32)
    return float(np.mean(make_model("softmax", "float32").predict(flat, ds.X_test) == ds.y_test))


def test_each_flower_round_is_one_fleet_round_with_the_robust_aggregate(site):
    from qora.flower import FleetBridge

    bridge = FleetBridge(site)
    arrays = _global_arrays()
    before = _accuracy(arrays)
    results = []
    for _ in range(3):                  # three Flower rounds: Flower's model goes in each time
        result = bridge.train(arrays)
        results.append(result)
        assert [a.shape for a in result.arrays] == [(10, 64), (10,)]
        arrays = result.arrays
    assert [r.record["round"] for r in results] == [1, 2, 3]
    for r in results:
        assert len(r.record["inputs"]) == 6 and r.metrics["fleet.inputs"] == 6
        assert r.num_examples == sum(i["samples"] for i in r.record["inputs"])
    assert _accuracy(arrays) > before + 0.2       # trimmed mean kept the sign flip out
    report = verify_store(site.db)
    assert report.ok and report.rounds == 3 and report.replayed_q16 == 3


def test_the_client_app_replies_with_the_fleet_model_and_its_samples(site, replies):
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

    from qora.flower import fleet_client_app

    app = fleet_client_app()
    node_config = {"fleet-broker": site.broker, "fleet-name": site.fleet, "fleet-keys": site.keys,
                   "fleet-db": site.db, "fleet-signing-key": site.signing_key, "fleet-quorum": 4,
                   "fleet-round-seconds": 20.0, "fleet-timeout": 60.0}
    context = Context(run_id=7, node_id=42, node_config=node_config, state=RecordDict(), run_config={})
    arrays = _global_arrays()
    msg = Message(RecordDict({"arrays": ArrayRecord(arrays), "config": ConfigRecord({"server-round": 1})}),
                  dst_node_id=42, message_type=MessageType.TRAIN)
    reply = app(msg, context)
    out = reply.content["arrays"].to_numpy_ndarrays()
    assert [a.shape for a in out] == [(10, 64), (10,)]
    assert not np.array_equal(out[0], arrays[0])
    assert reply.content["metrics"]["num-examples"] > 0
    assert reply.content["metrics"]["fleet.inputs"] == 6


def test_fleet_settings_are_checked():
    from qora.errors import QoraError
    from qora.flower import FleetSite

    with pytest.raises(QoraError, match="fleet-keys"):
        FleetSite.from_config({"fleet-broker": BROKER, "fleet-name": "x", "fleet-db": "a",
                               "fleet-signing-key": "k"})
    with pytest.raises(QoraError, match="unknown fleet setting"):
        FleetSite.from_config({"fleet-brokr": BROKER})
