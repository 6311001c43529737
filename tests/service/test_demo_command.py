"""``qora demo`` itself, small: both fleets over real MQTT, the table, the plot, the verified ledgers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.mqtt

DEMO_FLEETS = ("demo-robust", "demo-fedavg")     # qora.demo's labels; fleet names add a run tag


@pytest.fixture(params=["embedded", "mosquitto"])
def demo_broker(request):
    """[] for the embedded broker, or the --broker option for Mosquitto on 1883. Each demo run
    names its fleets afresh and clears them from the broker at the end, so runs never meet."""
    if request.param == "embedded":
        return []
    broker = request.getfixturevalue("mosquitto_1883")
    return ["--broker", f"mqtt://127.0.0.1:{broker.address.port}"]


def retained_topics(pattern: str, wait: float = 1.0) -> list[str]:
    """Topics with a retained message on the shared broker (1883) matching ``pattern``."""
    import threading
    import time

    import paho.mqtt.client as mqtt

    seen: list[str] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        if msg.retain and msg.payload:
            with lock:
                seen.append(msg.topic)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = on_message
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    c.subscribe(pattern, qos=1)
    time.sleep(wait)
    c.loop_stop()
    c.disconnect()
    return sorted(set(seen))


def run_demo(args: list[str], timeout: float = 180) -> tuple[int, str]:
    """``python -m qora.cli demo ARGS`` in its own process group: on a timeout the demo and the node
    processes it spawned are killed together."""
    proc = subprocess.Popen([sys.executable, "-m", "qora.cli", "demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"qora demo did not finish within {timeout} s:\n{out}") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out


def test_qora_demo_runs_to_the_end(demo_broker, tmp_path):
    out = tmp_path / "demo"
    code, text = run_demo(["--nodes", "6", "--byzantine", "1", "--rounds", "3", "--processes", "1",
                           "--out", str(out), *demo_broker])
    assert code == 0, text
    assert ("on an embedded broker" in text) == (not demo_broker)
    # the accuracy table: one row per round, both fleets' accuracies
    assert "Test accuracy after each round" in text
    rows = re.findall(r"│\s+(\d)\s+│\s+(0\.\d{3})\s+│\s+(0\.\d{3})\s+│", text)
    assert [r[0] for r in rows] == ["1", "2", "3"], text
    assert "Rejected messages (by reason)" in text and "Reputation after the last round" in text
    assert text.count("Byzantine") >= 2 and "node-05" in text
    for fleet in DEMO_FLEETS:
        assert re.search(rf"{fleet}: ledger ok: 3 records, 3 replayed", text), text
    plot = out / "demo_accuracy.png"
    assert f"wrote {plot}" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    for fleet in DEMO_FLEETS:
        assert len(list((out / "work").glob(f"{fleet}-*.db"))) == 1   # one store per fleet (run-tagged name)
    if demo_broker:   # a shared broker keeps nothing of the run: no retained state of its fleets
        tag = next((out / "work").glob("demo-robust-*.db")).stem.rsplit("-", 1)[1]
        left = [t for t in retained_topics("qora/v1/#") if t.split("/")[2].endswith(f"-{tag}")]
        assert left == [], left
