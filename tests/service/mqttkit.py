"""Helpers for the service tests that run over real MQTT.

    unique_fleet(tag)      a fleet name no other test (or run) uses: brokers keep retained state
    provision_fleet(...)   keys on disk + the aggregator's signer
    ServiceRunner          an AggregatorService in a thread, stopped and joined on close()
    Recorder               a Metrics stand-in that records every verdict and connection change
    Swarm                  simulated nodes (qora.sim.mqtt_node.MqttNode) with a trivial, gated compute
    Watcher / Raw          paho clients: one reads the fleet's topics, one publishes arbitrary bytes
    cleanup_fleet(...)     clears a fleet's retained messages and the aggregator's persistent session
    OwnMosquitto           a Mosquitto of the test's own, stoppable and restartable
    Serve, read_store      ``qora serve`` as a subprocess; its SQLite store read while it runs
    wait_until(...)        poll with a deadline
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from qora.errors import InvalidInput
from qora.mqtt_url import BrokerAddress
from qora.protocol import (
    LedgerHead,
    ModelChunk,
    ProtocolError,
    RoundAnnouncement,
    assemble_model,
    parse_topic,
)
from qora.provision import load_keys, provision
from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store
from qora.sim.mqtt_node import MqttNode

TIMEOUT = 20.0        # the longest any single wait may take before the test fails


def unique_fleet(tag: str) -> str:
    return f"t-{tag}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT, interval: float = 0.02,
               what: str = "condition") -> object:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


# ---- brokers ------------------------------------------------------------------------------------
@dataclass
class Broker:
    kind: str                    # "mosquitto" (127.0.0.1:1883), "embedded" (amqtt) or "own" (a Mosquitto we run)
    address: BrokerAddress
    protocol: str                # "5" or "3.1.1": passed to every client (no probe per client)

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class OwnMosquitto:
    """A Mosquitto on a port of our own (anonymous, persistence off), stoppable and restartable."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port, self.proc = workdir, port, None
        self.log = workdir / "mosquitto.log"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        prefix = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(prefix + "persistence false\n"
                        f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > end:
                raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


# ---- a provisioned fleet and its aggregator -------------------------------------------------------
@dataclass
class FleetSetup:
    name: str
    dir: Path
    nodes: list[str]
    keys: dict[str, bytes]
    signer: Signer

    @property
    def db(self) -> Path:
        return self.dir / f"{self.name}.db"

    @property
    def keys_path(self) -> Path:
        return self.dir / "keys" / "keys.json"

    def engine(self, init: np.ndarray, clock: Callable[[], float] = time.time, **cfg) -> RoundEngine:
        settings = {"fleet": self.name, "method": "trimmed_mean", "trim_fraction": 0.2, "mode": "q16_16",
                    "quorum": 3, "round_seconds": 60.0, "chunk_elements": 128}
        settings.update(cfg)
        return RoundEngine(Store(self.db), FleetConfig(**settings), self.keys, self.signer,
                           initial_model=init, clock=clock)


def provision_fleet(tmp_path: Path, fleet: str, nodes: list[str]) -> FleetSetup:
    provision(fleet, nodes, tmp_path / "keys")
    keys = load_keys(tmp_path / "keys" / "keys.json").nodes
    return FleetSetup(fleet, tmp_path, list(nodes), keys, Signer.load_or_create(tmp_path / "agg.key"))


class SkewClock:
    """Wall time plus an offset the test moves (to reach a deadline without waiting for it)."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


class Recorder:
    """Duck-typed ``Metrics``: the service reports every verdict and connection change here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.verdicts: list = []
        self.connections: list[bool] = []
        self.closed: list = []

    def message(self, verdict) -> None:
        with self._lock:
            self.verdicts.append(verdict)

    def round_closed(self, closed) -> None:
        with self._lock:
            self.closed.append(closed)

    def status(self, status) -> None:
        pass

    def connected(self, ok: bool) -> None:
        with self._lock:
            self.connections.append(ok)

    @property
    def processed(self) -> int:
        with self._lock:
            return len(self.verdicts)

    def accepted(self) -> int:
        with self._lock:
            return sum(1 for v in self.verdicts if v.accepted)

    def reasons(self, start: int = 0) -> Counter:
        with self._lock:
            return Counter(v.reason for v in self.verdicts[start:] if not v.accepted)


class ServiceRunner:
    """``AggregatorService.run`` in a thread; ``close()`` stops it and joins (always call it)."""

    def __init__(self, engine: RoundEngine, broker: Broker, *, rounds: int | None = None,
                 metrics=None, client_id: str | None = None) -> None:
        self.engine = engine
        self.recorder = metrics if metrics is not None else Recorder()
        self.service = AggregatorService(engine, broker.address, metrics=self.recorder,
                                         protocol=broker.protocol, client_id=client_id)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(rounds,), daemon=True,
                                        name=f"agg-{engine.config.fleet}")

    def _run(self, rounds) -> None:
        try:
            self.service.run(rounds=rounds, timeout=120)
        except BaseException as e:  # noqa: BLE001 - reported by check()
            self.error = e

    def start(self) -> ServiceRunner:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the aggregator service failed: {self.error!r}") from self.error

    def wait_closed(self, rounds: int, timeout: float = TIMEOUT) -> None:
        def done():
            self.check()
            return self.engine.rounds_closed >= rounds
        wait_until(done, timeout, what=f"{rounds} closed rounds (closed {self.engine.rounds_closed})")

    def join(self, timeout: float = TIMEOUT) -> None:
        """Wait for ``run(rounds=...)`` to return by itself."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the aggregator service did not finish"
        self.check()

    def close(self) -> None:
        self.service.stop()
        self._thread.join(15)
        if self._thread.is_alive():
            raise AssertionError("the aggregator service thread did not stop within 15 s")


# ---- simulated nodes ------------------------------------------------------------------------------
def node_index(node: str) -> int:
    return zlib.crc32(node.encode())


def small_update(node: str, round_: int, elements: int, scale: float = 0.01) -> np.ndarray:
    """The deterministic update a simulated node sends (float32; Q16.16-converted by the node)."""
    rng = np.random.default_rng([node_index(node), round_])
    return rng.normal(0.0, scale, elements).astype(np.float32)


class Swarm:
    """Simulated nodes over MQTT. Each round's compute waits for the node's gate (if it has one)."""

    def __init__(self, broker: Broker, fleet: FleetSetup, nodes: list[str] | None = None, *,
                 gated: tuple[str, ...] = (), encoding: Callable[[str], str] = lambda n: "auto",
                 samples: int = 10, last_round: int | None = None) -> None:
        self.broker, self.fleet = broker, fleet
        self.last_round = last_round          # rounds after it: the node trains but sends nothing
        self.gates = {n: threading.Event() for n in gated}
        self._jobs: list[threading.Thread] = []
        self._closing = threading.Event()
        self.infos: dict[str, list] = {}
        self.started: dict[str, list[int]] = {}      # rounds whose compute began (holding the model)
        self.computed: dict[str, list[int]] = {}     # rounds whose compute got past the gate
        self.nodes: dict[str, MqttNode] = {}
        try:
            for n in nodes if nodes is not None else fleet.nodes:
                self.started[n], self.computed[n] = [], []
                node = MqttNode(broker.address, fleet.name, n, fleet.keys[n], self._compute_for(n), self._submit,
                                samples=samples, encoding=encoding(n), protocol=broker.protocol)
                self._track(node)
                self.nodes[n] = node
        except BaseException:
            self.close()
            raise

    def _track(self, node: MqttNode) -> None:
        """Keep every publish's MQTTMessageInfo (to wait for the broker's PUBACKs)."""
        infos = self.infos.setdefault(node.node, [])
        publish = node.client.publish

        def tracked(*args, **kwargs):
            info = publish(*args, **kwargs)
            infos.append(info)
            return info
        node.client.publish = tracked

    def _compute_for(self, n: str):
        def compute(params: np.ndarray, ann: RoundAnnouncement):
            self.started[n].append(ann.round)
            gate = self.gates.get(n)
            if gate is not None:
                while not gate.wait(0.1):
                    if self._closing.is_set():
                        return None
            if self._closing.is_set() or (self.last_round is not None and ann.round > self.last_round):
                return None
            self.computed[n].append(ann.round)
            return small_update(n, ann.round, ann.elements)
        return compute

    def _submit(self, job: Callable[[], None]) -> None:
        t = threading.Thread(target=job, daemon=True)
        self._jobs.append(t)
        t.start()

    def release(self, *nodes: str) -> None:
        for n in nodes or list(self.gates):
            self.gates[n].set()

    def sent(self, node: str) -> list[int]:
        return list(self.nodes[node].rounds_sent)

    def wait_sent(self, round_: int, nodes=None, timeout: float = TIMEOUT) -> None:
        names = list(nodes if nodes is not None else self.nodes)
        wait_until(lambda: all(round_ in self.nodes[n].rounds_sent for n in names), timeout,
                   what=f"round {round_} updates from {len(names)} nodes")

    def wait_acked(self, nodes=None, timeout: float = TIMEOUT) -> None:
        """Every QoS 1 publish of these nodes so far has its PUBACK."""
        names = list(nodes if nodes is not None else self.nodes)

        def acked():
            try:
                return all(i.is_published() for n in names for i in list(self.infos[n]))
            except (RuntimeError, ValueError):
                return False
        wait_until(acked, timeout, what="PUBACKs for the nodes' publishes")

    def connected(self, nodes=None) -> bool:
        return all(self.nodes[n].client.is_connected() for n in (nodes or self.nodes))

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        for t in list(self._jobs):
            t.join(10)
        for node in self.nodes.values():
            try:
                node.client.disconnect()
            finally:
                node.client.loop_stop()


# ---- raw paho clients -----------------------------------------------------------------------------
def paho_client(broker: Broker, client_id: str = "") -> mqtt.Client:
    proto = MQTTProtocolVersion.MQTTv5 if broker.v5 else MQTTProtocolVersion.MQTTv311
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
                    protocol=proto)
    c.max_inflight_messages_set(100)
    return c


class Watcher:
    """Subscribes to everything of a fleet except updates; keeps each topic's messages in order."""

    def __init__(self, broker: Broker, fleet: str, topics: tuple[str, ...] = ("round", "model/+", "ledger")) -> None:
        self.fleet = fleet
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self._last = time.monotonic()
        self.client = paho_client(broker)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(f"qora/v1/{fleet}/{t}", 1) for t in topics])
        self.client.connect(broker.address.host, broker.address.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise AssertionError("the watcher could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._last = time.monotonic()

    def of(self, kind: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.messages if p and parse_topic(t).kind == kind]

    def rounds(self) -> list[RoundAnnouncement]:
        return [RoundAnnouncement.decode(p) for p in self.of("round")]

    def latest_round(self) -> RoundAnnouncement | None:
        r = self.rounds()
        return r[-1] if r else None

    def ledger_heads(self) -> list[LedgerHead]:
        return [LedgerHead.decode(p) for p in self.of("ledger")]

    def model(self, ann: RoundAnnouncement) -> np.ndarray | None:
        """The model the announcement names, put together from the model chunks received."""
        chunks = {}
        for p in self.of("model"):
            c = ModelChunk.decode(p)
            if c.version == ann.version and c.digest == ann.digest:
                chunks[c.index] = c
        if len(chunks) < ann.model_chunks:
            return None
        try:
            return assemble_model(chunks.values(), expected_digest=ann.digest)
        except ProtocolError:
            return None

    def settle(self, quiet: float = 0.3, timeout: float = 3.0) -> None:
        """Wait until nothing has arrived for ``quiet`` seconds (amqtt, left with QoS 1 deliveries
        in flight to a client that disconnected, holds that connection open for 5 s)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and time.monotonic() - self._last < quiet:
            time.sleep(0.05)

    def close(self) -> None:
        self.settle()
        self.client.disconnect()
        self.client.loop_stop()


def retained_state(broker: Broker, fleet: str, timeout: float = TIMEOUT):
    """What a late joiner finds: (ROUND, model values, LEDGER head or None), read by a fresh client."""
    w = Watcher(broker, fleet)
    try:
        def complete():
            ann = w.latest_round()
            return ann is not None and w.model(ann) is not None
        wait_until(complete, timeout, what="the retained round and model")
        ann = w.latest_round()
        heads = w.ledger_heads()
        return ann, w.model(ann), (heads[-1] if heads else None)
    finally:
        w.close()


class Raw:
    """A plain paho client that publishes whatever bytes it is given (QoS 1, waits for PUBACK)."""

    def __init__(self, broker: Broker) -> None:
        self.client = paho_client(broker)
        self.client.connect(broker.address.host, broker.address.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, wait: bool = True):
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published(), f"no PUBACK for {topic}"
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def cleanup_fleet(broker: Broker, fleet: str, aggregator_client_id: str | None = None) -> None:
    """Clear the fleet's retained messages and drop the aggregator's persistent session (shared brokers)."""
    if not port_open(broker.address.host, broker.address.port):
        return
    seen: set[str] = set()
    got = threading.Event()
    c = paho_client(broker)
    c.on_message = lambda cl, u, m: seen.add(m.topic) if m.retain else None
    c.on_subscribe = lambda *a: got.set()
    try:
        c.connect(broker.address.host, broker.address.port, keepalive=30)
        c.loop_start()
        c.subscribe(f"qora/v1/{fleet}/#", qos=1)
        got.wait(5)
        time.sleep(0.3)  # retained messages follow the SUBACK
        infos = [c.publish(t, b"", qos=1, retain=True) for t in sorted(seen)]
        for i in infos:
            i.wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    # connect once more as the aggregator with a clean start and no session expiry: the broker
    # forgets its persistent session (its subscription and anything queued for it)
    cid = aggregator_client_id or f"qora-aggregator-{fleet}"
    kwargs = {} if broker.v5 else {"clean_session": True}
    s = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid,
                    protocol=MQTTProtocolVersion.MQTTv5 if broker.v5 else MQTTProtocolVersion.MQTTv311, **kwargs)
    done = threading.Event()
    s.on_connect = lambda *a: done.set()
    try:
        if broker.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0
            s.connect(broker.address.host, broker.address.port, keepalive=30, clean_start=True, properties=props)
        else:
            s.connect(broker.address.host, broker.address.port, keepalive=30)
        s.loop_start()
        done.wait(5)
    finally:
        s.disconnect()
        s.loop_stop()


# ---- qora serve as a process ---------------------------------------------------------------------
class Serve:
    """``python -m qora.cli serve`` for one fleet; every process it starts is killed at clean-up."""

    def __init__(self, broker: Broker, fleet, tmp_path) -> None:
        self.broker, self.fleet, self.dir = broker, fleet, tmp_path
        self.procs: list[subprocess.Popen] = []

    def start(self, rounds: int | None = None, *extra: str) -> subprocess.Popen:
        url = f"mqtt://{self.broker.address.host}:{self.broker.address.port}"
        args = [sys.executable, "-m", "qora.cli", "serve", "--broker", url, "--fleet", self.fleet.name, "--keys", str(self.fleet.keys_path),
                "--db", str(self.fleet.db), "--signing-key", str(self.dir / "ledger.key"), "--log-json",
                "--quorum", "3", "--round-seconds", "120"]
        if rounds is not None:
            args += ["--rounds", str(rounds)]
        args += list(extra)
        log = (self.dir / f"serve-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, i: int) -> str:
        return (self.dir / f"serve-{i}.log").read_text(errors="replace")

    def kill9(self, proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL

    def wait_exit(self, proc: subprocess.Popen, timeout: float = 30) -> None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"qora serve did not finish:\n{self.log(self.procs.index(proc))}") from None
        assert proc.returncode == 0, self.log(self.procs.index(proc))

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def read_store(db, query):
    """Read the store of a running (or killed) aggregator without writing to it."""
    if not db.exists():
        return None
    try:
        store = Store(db, readonly=True)
    except (InvalidInput, sqlite3.Error):  # not there yet, or mid-creation
        return None
    try:
        return query(store)
    except sqlite3.Error:
        return None
    finally:
        store.close()
