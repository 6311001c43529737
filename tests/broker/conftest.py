"""Fixtures for broker tests: a synchronous paho-mqtt test client, and a real Mosquitto started on
a free loopback port with a provisioned fleet's files (the system broker on 1883 is never used)."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from qora.mqtt_url import free_port
from qora.provision import ProvisionResult, provision

TIMEOUT = 5.0


class Client:
    """A paho client whose connect/subscribe/publish wait for the broker's answer and return it."""

    def __init__(self, port: int, client_id: str, *, username: str | None = None,
                 password: str | None = None, v5: bool = False, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.v5 = host, port, v5
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._acks: dict[int, object] = {}
        self._cond = threading.Condition()
        self._connack = None
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_publish = self._on_ack
        self.mqtt.on_subscribe = self._on_ack
        self.mqtt.on_message = lambda c, u, m: self.messages.put(m)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self._connack = reason_code
            self._cond.notify_all()

    def _on_ack(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            self._acks[mid] = reason_code  # PUBACK: one code; SUBACK: a list, one per filter
            self._cond.notify_all()

    def _wait(self, ready) -> None:
        with self._cond:
            assert self._cond.wait_for(ready, TIMEOUT), "no answer from the broker"

    def connect(self):
        """Return the CONNACK reason code. A refused client is stopped (paho would retry)."""
        self.mqtt.connect(self.host, self.port, keepalive=30)
        self.mqtt.loop_start()
        self._wait(lambda: self._connack is not None)
        if self._connack.is_failure:
            self.close()
        return self._connack

    def subscribe(self, topic: str, qos: int = 1) -> list:
        result, mid = self.mqtt.subscribe(topic, qos=qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: mid in self._acks)
        return self._acks[mid]

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False):
        """Return the PUBACK reason code (QoS 1)."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: info.mid in self._acks)
        return self._acks[info.mid]

    def expect(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None

    def drain(self, seconds: float = 0.3) -> list[mqtt.MQTTMessage]:
        """Every message arriving within `seconds` (used to show that nothing else came)."""
        end, got = time.monotonic() + seconds, []
        while (left := end - time.monotonic()) > 0:
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients():
    """Factory for Client objects; all are closed after the test."""
    made: list[Client] = []

    def make(*args, **kwargs) -> Client:
        made.append(Client(*args, **kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _mosquitto_binary() -> str:
    # /usr/sbin is not on every user's PATH, and Debian installs the broker there.
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.skip("mosquitto is not installed")
    return path


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port} within 10 s:\n{log.read_text()}")


class Mosquitto:
    """A real Mosquitto for one provisioned fleet directory, restartable (to reload the files)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port, self.proc = workdir, free_port(), None

    def provision(self, fleet: str, nodes: list[str], **kwargs) -> ProvisionResult:
        return provision(fleet, nodes, self.workdir / "fleet", port=self.port,
                         bind_address="127.0.0.1", **kwargs)

    def start(self, result: ProvisionResult) -> int:
        # The generated snippet, as an operator would run it; when the tests run as root,
        # `user root` stops Mosquitto from switching to user mosquitto, who cannot enter tmp_path.
        conf = self.workdir / "test-mosquitto.conf"
        prefix = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(prefix + "persistence false\n" + result.conf_path.read_text())
        log = self.workdir / "mosquitto.log"
        self.proc = subprocess.Popen([_mosquitto_binary(), "-c", str(conf)], stdout=log.open("ab"),
                                     stderr=subprocess.STDOUT)
        _wait_for_port(self.port, self.proc, log)
        return self.port

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path):
    """A stopped Mosquitto on a free port: .provision(fleet, nodes), then .start(result)."""
    _mosquitto_binary()
    broker = Mosquitto(tmp_path)
    yield broker
    broker.stop()
