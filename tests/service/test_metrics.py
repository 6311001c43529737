"""Prometheus metrics of the aggregator: counters after a round, read over HTTP.

In process (``Metrics.serve`` on a free port, the service feeding it) and from ``qora serve
--metrics-port`` as a subprocess.
"""

from __future__ import annotations

import urllib.request

import pytest
import qora.service.metrics as metrics_module
from fleetkit import initial_model
from mqttkit import Raw, Serve, ServiceRunner, Swarm, Watcher, wait_until
from prometheus_client.parser import text_string_to_metric_families
from qora.mqtt_url import free_port
from qora.protocol import Encoding, make_update, new_key, update_topic
from qora.service.metrics import Metrics

pytestmark = pytest.mark.mqtt

NODES = ["m0", "m1", "m2", "m3"]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def _announced(broker, fleet, cleanup):
    """Wait for round 1's announcement: the aggregator subscribed before it sent it."""
    watcher = Watcher(broker, fleet.name, topics=("round",))
    cleanup.callback(watcher.close)
    wait_until(lambda: watcher.latest_round() is not None, what="round 1 announced")


def _send_junk(raw, fleet):
    topic = update_topic(fleet.name, NODES[0])
    raw.publish(topic, b"\xff not cbor")
    raw.publish(topic, b"")
    forged = make_update(fleet.name, NODES[0], 1, initial_model("q16_16"), Encoding.Q16, 1, 128, new_key())
    raw.publish(topic, forged[0])                                     # bad_tag


@pytest.fixture
def served_metrics(monkeypatch, cleanup):
    """Metrics.serve, with the HTTP server it starts shut down after the test."""
    servers = []
    real = metrics_module.start_http_server

    def start(*args, **kwargs):
        result = real(*args, **kwargs)
        servers.append(result)
        return result
    monkeypatch.setattr(metrics_module, "start_http_server", start)

    def stop():
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(5)
    cleanup.callback(stop)


def test_metrics_count_accepted_and_rejected_messages_after_a_round(embedded_broker, new_fleet, cleanup,
                                                                    served_metrics):
    broker = embedded_broker
    fleet = new_fleet("metrics", NODES, broker)
    engine = fleet.engine(initial_model("q16_16"))
    cleanup.callback(engine.store.close)
    metrics = Metrics(fleet.name)
    port = free_port()
    metrics.serve(port)
    runner = ServiceRunner(engine, broker, metrics=metrics)
    cleanup.callback(runner.close)
    runner.start()
    raw = Raw(broker)
    cleanup.callback(raw.close)
    _announced(broker, fleet, cleanup)
    _send_junk(raw, fleet)
    wait_until(lambda: sum(engine.rejects_total.values()) == 3, what="3 rejects")
    swarm = Swarm(broker, fleet, last_round=1)
    cleanup.callback(swarm.close)
    runner.wait_closed(1)

    f = {"fleet": fleet.name}

    def settled():
        s = scrape(port)
        return s if _value(s, "qora_round", **f) == 2 else None
    s = wait_until(settled, what="the status gauges after round 1")
    assert _value(s, "qora_update_chunks_accepted_total", **f) == 3 * len(NODES)    # 300 elements, 128 per chunk
    assert _value(s, "qora_update_messages_rejected_total", reason="malformed", **f) == 2
    assert _value(s, "qora_update_messages_rejected_total", reason="bad_tag", **f) == 1
    assert _value(s, "qora_rounds_closed_total", **f) == 1
    assert _value(s, "qora_broker_connected", **f) == 1
    assert _value(s, "qora_round_complete_updates", **f) == 0                      # round 2 has none yet
    rejected = {k[1]: v for k, v in s.items() if k[0] == "qora_update_messages_rejected_total"}
    assert sum(rejected.values()) == 3


def test_qora_serve_metrics_port(mosquitto_1883, new_fleet, tmp_path, cleanup):
    fleet = new_fleet("servemetrics", NODES, mosquitto_1883)
    serve = Serve(mosquitto_1883, fleet, tmp_path)
    cleanup.callback(serve.close)
    port = free_port()
    serve.start(None, "--metrics-port", str(port))
    f = {"fleet": fleet.name}

    def up():
        try:
            s = scrape(port)
        except OSError:
            return None
        return s if _value(s, "qora_broker_connected", **f) == 1 else None
    wait_until(up, what="qora serve's metrics endpoint, connected")
    _announced(mosquitto_1883, fleet, cleanup)
    raw = Raw(mosquitto_1883)
    cleanup.callback(raw.close)
    _send_junk(raw, fleet)
    swarm = Swarm(mosquitto_1883, fleet, last_round=1)
    cleanup.callback(swarm.close)

    def closed():
        s = scrape(port)
        return s if _value(s, "qora_rounds_closed_total", **f) == 1 and _value(s, "qora_round", **f) == 2 else None
    s = wait_until(closed, what="round 1 closed, seen in the metrics")
    assert _value(s, "qora_update_chunks_accepted_total", **f) == 3 * len(NODES)   # 2410 parameters, 1024 per chunk
    assert _value(s, "qora_update_messages_rejected_total", reason="malformed", **f) == 2
    assert _value(s, "qora_update_messages_rejected_total", reason="bad_tag", **f) == 1
