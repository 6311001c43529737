#!/usr/bin/env python3
"""End-to-end speed of the MQTT aggregator service: round time and intake, 100 and 1,000 nodes.

For each fleet size N it provisions a fleet in a temporary directory, runs N simulated nodes in
``--procs`` worker processes (every node has its own MQTT connection) and an aggregator in a
thread of this process, against a real broker (Mosquitto at mqtt://127.0.0.1:1883 by default).
The model is the 64-32-10 MLP of the demo (2,410 parameters), so with the default
chunk_elements = 1024 an update (and the model) travels as 3 chunks.

Scenarios (``--scenarios``):

* ``full``: every node behaves as docs/protocol.md section 9 says: it subscribes to ROUND and
  MODEL (QoS 1), waits for the whole model with the announced digest, "trains" (returns a fixed
  per-node delta: no training cost is measured), and publishes its sealed update chunks (QoS 1).
  With ``--driver threads`` the nodes are ``qora.sim.mqtt_node.MqttNode`` (the demo's node, one
  paho network thread each); with ``--driver loop`` they are paho clients on one selector loop
  per process (the same procedure, re-implemented here because 500 threads per process is not
  a realistic load generator). ``auto``: threads up to 200 nodes, loop above.
* ``fanin``: updates only. Every node precomputes its sealed messages for every round with
  ``qora.protocol.make_update`` before the run; one watcher per process subscribes to ROUND and
  every node of that process publishes its messages as soon as the round opens.

Aggregators (``--aggregators``):

* ``q16_16`` / ``float32``: ``qora.service.AggregatorService`` over a ``RoundEngine`` with a
  SQLite store (trimmed mean 0.2, quorum 1, round_seconds ``--round-seconds``); it closes a round
  as soon as every node's update is complete.
* ``sink``: the broker's own ceiling: a plain paho subscriber on ``update/+`` (QoS 1, automatic
  acks) that only counts messages, and publishes the next model + ROUND once it has counted
  all N x 3 chunks of the round. Ratios in the table are qora / sink.

Measured per round r (times with time.time(), the same clock in every process):
round time = aggregator publishes ROUND r -> it publishes model r (with ROUND r+1); intake
messages/s = update messages handled / (last handled - first arrived at the aggregator);
handle = engine.handle per message (decode, HMAC, checks, SQLite insert + commit), of which
commit = the per-message ``store.transaction()``; close = engine.close (compute_round =
aggregation + reputation; sign; persist = the closing transaction); fan-out = ROUND published ->
last node holding the model; CPU seconds of the broker (/proc), the aggregator process and the
node processes. Message loss is counted (a broker drops QoS 1 messages for a client once
max_queued_messages are queued for it).

    python bench/bench_service.py --nodes 100 --rounds 10 --doc docs/benchmarks.md
    python bench/bench_service.py --nodes 1000 --rounds 5 --doc docs/benchmarks.md
    python bench/bench_service.py --quick          # 20 nodes, 2 rounds, no doc

``--doc`` rewrites only this script's block for that N inside the section
"MQTT service: round time and intake" of the file (it creates the section if missing).
``--spawn-broker`` runs a private Mosquitto (the provisioned password file and ACL, plus
``--broker-option`` lines) on a free loopback port instead of using ``--broker``.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import secrets
import selectors
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SECTION = "## MQTT service: round time and intake"
LAYOUT = (64, 32, 10)
CHUNK_ELEMENTS = 1024
SAMPLES = 100
MOSQUITTO_LOG = Path("/var/log/mosquitto/mosquitto.log")
MOSQUITTO_PIDFILE = Path("/run/mosquitto/mosquitto.pid")


# ---- shared helpers ---------------------------------------------------------------------------


def initial_model(mode: str, seed: int = 0) -> np.ndarray:
    from qora import native
    from qora.sim.models import make_model
    params = np.asarray(make_model("mlp", "float32", LAYOUT[0], LAYOUT[-1], hidden=LAYOUT[1]).init_params(seed),
                        dtype=np.float32)
    return native.to_q16(params)[0] if mode == "q16_16" else params


def node_delta(node: str, elements: int, seed: int) -> np.ndarray:
    """The update a node sends (every round): small i.i.d. noise, float32."""
    rng = np.random.default_rng([seed, int.from_bytes(node.encode()[-8:].rjust(8, b"\0"), "big")])
    return (rng.standard_normal(elements) * 0.01).astype(np.float32)


def wire_values(delta: np.ndarray, mode: str):
    from qora import native
    from qora.protocol import Encoding
    if mode == "q16_16":
        return native.to_q16(delta)[0], Encoding.Q16
    return delta, Encoding.F32


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


# ---- node side: worker processes ----------------------------------------------------------------


@dataclasses.dataclass
class WorkerSpec:
    host: str
    port: int
    fleet: str
    scenario: str          # "full" or "fanin"
    driver: str            # "threads" or "loop"
    mode: str
    rounds: int
    elements: int
    seed: int
    nodes: list            # [(node, key hex, mqtt password)]


class _NodeTimes:
    """Per node and round: model ready (full) and update sent, time.time()."""

    def __init__(self) -> None:
        self.ready: dict[int, float] = {}
        self.sent: dict[int, float] = {}


def _summarize(times: list[_NodeTimes]) -> dict:
    out: dict[int, dict] = {}
    rounds = sorted({r for t in times for r in t.sent} | {r for t in times for r in t.ready})
    for r in rounds:
        ready = [t.ready[r] for t in times if r in t.ready]
        sent = [t.sent[r] for t in times if r in t.sent]
        out[r] = {"ready": [min(ready), max(ready), len(ready)] if ready else None,
                  "sent": [min(sent), max(sent), len(sent)] if sent else None}
    return out


def worker_main(spec: WorkerSpec, results: mp.Queue, stop: mp.Event) -> None:
    import logging
    logging.getLogger("qora").setLevel(logging.ERROR)
    cpu0 = time.process_time()
    try:
        if spec.driver == "threads":
            summary = _run_threads(spec, results, stop)
        else:
            summary = _run_loop(spec, results, stop)
        results.put(("done", os.getpid(), summary, time.process_time() - cpu0))
    except BaseException as e:  # noqa: BLE001 (reported by the main process)
        import traceback
        results.put(("error", os.getpid(), f"{type(e).__name__}: {e}\n{traceback.format_exc()}", 0.0))


def _precompute(spec: WorkerSpec) -> dict[str, dict[int, list[bytes]]]:
    from qora.protocol import make_update
    pre = {}
    for node, key_hex, _pw in spec.nodes:
        values, enc = wire_values(node_delta(node, spec.elements, spec.seed), spec.mode)
        pre[node] = {r: make_update(spec.fleet, node, r, values, enc, SAMPLES, CHUNK_ELEMENTS, bytes.fromhex(key_hex))
                     for r in range(1, spec.rounds + 1)}
    return pre


def _run_threads(spec: WorkerSpec, results: mp.Queue, stop: mp.Event) -> dict:
    """Each node with its own paho client and network thread (qora's MqttNode for ``full``)."""
    from qora.mqtt_client import make_client
    from qora.mqtt_url import BrokerAddress
    from qora.protocol import RoundAnnouncement, Status, round_topic, status_topic, update_topic
    from qora.sim.mqtt_node import MqttNode

    jobs: queue.Queue = queue.Queue()
    times = {n: _NodeTimes() for n, _k, _p in spec.nodes}
    clients = []
    nodes = []
    t0 = time.time()
    if spec.scenario == "full":
        class TimedNode(MqttNode):
            def send(self, update, ann):
                super().send(update, ann)
                times[self.node].sent[ann.round] = time.time()

        for node, key_hex, pw in spec.nodes:
            delta = node_delta(node, spec.elements, spec.seed)

            def compute(params, ann, node=node, delta=delta):
                if ann.round > spec.rounds:
                    return None
                times[node].ready[ann.round] = time.time()
                return delta

            n = TimedNode(BrokerAddress(spec.host, spec.port, node, pw), spec.fleet, node, bytes.fromhex(key_hex),
                          compute, jobs.put, samples=SAMPLES, protocol="5")
            nodes.append(n)
            clients.append(n.client)
    else:
        pre = _precompute(spec)
        by_node = {}
        for node, _key, pw in spec.nodes:
            c = make_client(BrokerAddress(spec.host, spec.port, node, pw), f"{spec.fleet}-{node}", protocol="5",
                            will=(status_topic(spec.fleet, node), Status(spec.fleet, node, False).encode()))
            by_node[node] = c
            clients.append(c)
        fired: set[int] = set()

        def fire(r: int) -> None:
            for node, c in by_node.items():
                for m in pre[node][r]:
                    c.publish(update_topic(spec.fleet, node), m, qos=1)
                times[node].sent[r] = time.time()

        def on_round(msg) -> None:
            r = RoundAnnouncement.decode(bytes(msg.payload)).round
            if r <= spec.rounds and r not in fired:
                fired.add(r)
                jobs.put(lambda r=r: fire(r))

        first, _k, first_pw = spec.nodes[0]  # a node's login may read ROUND (the ACL)
        watcher = make_client(BrokerAddress(spec.host, spec.port, first, first_pw), f"{spec.fleet}-watch-{os.getpid()}",
                              subscriptions=[(round_topic(spec.fleet), 1)], on_message=on_round, protocol="5")
        clients.append(watcher)
    deadline = time.time() + 120
    while not all(c.is_connected() for c in clients):
        if time.time() > deadline:
            raise RuntimeError(f"only {sum(c.is_connected() for c in clients)} of {len(clients)} clients connected")
        time.sleep(0.05)
    time.sleep(1.0)  # SUBACKs
    results.put(("ready", os.getpid(), len(spec.nodes), time.time() - t0))
    while not stop.is_set():
        try:
            job = jobs.get(timeout=0.05)
        except queue.Empty:
            continue
        job()
    for n in nodes:
        n.close()
    for c in clients[len(nodes):]:
        c.disconnect()
        c.loop_stop()
    return _summarize(list(times.values()))


def _run_loop(spec: WorkerSpec, results: mp.Queue, stop: mp.Event) -> dict:
    """Many paho clients on one selector loop (no thread per client): the node procedure of
    docs/protocol.md section 9 for ``full``, precomputed updates for ``fanin``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from qora import native
    from qora.mqtt_client import expiry_properties
    from qora.protocol import (
        ModelChunk,
        ProtocolError,
        RoundAnnouncement,
        Status,
        assemble_model,
        make_update,
        round_topic,
        status_topic,
        subscription,
        update_topic,
    )

    sel = selectors.DefaultSelector()
    work: collections.deque = collections.deque()
    dirty: set = set()
    rtopic = round_topic(spec.fleet)
    mprefix = f"qora/v1/{spec.fleet}/model/"
    pre = _precompute(spec) if spec.scenario == "fanin" else {}

    class St:
        __slots__ = (
            "ann",
            "chunks",
            "client",
            "connected",
            "delta",
            "key",
            "node",
            "started",
            "subscribed",
            "times",
            "utopic",
        )

    def on_connect(client, st, flags, rc, props):
        if rc.is_failure:
            raise RuntimeError(f"{st.node}: broker refused the connection: {rc}")
        st.connected = True
        if st.node is None:  # the watcher
            client.subscribe([(rtopic, 1)])
            return
        client.publish(status_topic(spec.fleet, st.node), Status(spec.fleet, st.node, True).encode(), qos=1,
                       retain=True)
        if spec.scenario == "full":
            client.subscribe([(rtopic, 1), (subscription(spec.fleet, "model"), 1)])
        else:
            st.subscribed = True

    def on_subscribe(client, st, mid, rcs, props):
        st.subscribed = True

    fired: set[int] = set()

    def on_message(client, st, msg):
        payload = bytes(msg.payload)
        if st.node is None:  # watcher (fanin)
            r = RoundAnnouncement.decode(payload).round
            if r <= spec.rounds and r not in fired:
                fired.add(r)
                work.append(("fire", r))
            return
        try:
            if msg.topic == rtopic:
                ann = RoundAnnouncement.decode(payload)
                if st.ann is None or ann.round >= st.ann.round:
                    st.ann = ann
            elif msg.topic.startswith(mprefix):
                chunk = ModelChunk.decode(payload)
                st.chunks.setdefault(chunk.version, {})[chunk.index] = chunk
                for v in [v for v in st.chunks if v < chunk.version - 1]:
                    del st.chunks[v]
            else:
                return
        except ProtocolError:
            return
        ann = st.ann
        if ann is None or ann.round in st.started or ann.round > spec.rounds:
            return
        chunks = st.chunks.get(ann.version, {})
        if len(chunks) < ann.model_chunks:
            return
        try:
            model = assemble_model(chunks.values(), expected_digest=ann.digest)
        except ProtocolError:
            return
        st.started.add(ann.round)
        st.times.ready[ann.round] = time.time()
        work.append(("train", st, model, ann))

    def new_client(client_id, st, username=None, password=None, will=None):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5,
                        userdata=st)
        if username:
            c.username_pw_set(username, password)
        if will:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.max_queued_messages_set(0)
        c.on_connect, c.on_message, c.on_subscribe = on_connect, on_message, on_subscribe
        st.client, st.connected, st.subscribed = c, False, False
        return c

    def connect(st):
        for attempt in range(20):
            try:
                st.client.connect(spec.host, spec.port, keepalive=120)
                break
            except OSError:
                time.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError(f"cannot connect {st.node}")
        sel.register(st.client.socket(), selectors.EVENT_READ, st)

    def pump(timeout: float) -> None:
        for key, _mask in sel.select(timeout):
            st = key.data
            st.client.loop_read()
            if st.client.want_write():
                dirty.add(st)
        for st in list(dirty):
            st.client.loop_write()
            if not st.client.want_write():
                dirty.discard(st)

    states = []
    for node, key_hex, pw in spec.nodes:
        st = St()
        st.node, st.key, st.ann, st.chunks, st.started, st.times = node, bytes.fromhex(key_hex), None, {}, set(), _NodeTimes()
        st.delta = node_delta(node, spec.elements, spec.seed)
        st.utopic = update_topic(spec.fleet, node)
        new_client(f"{spec.fleet}-{node}", st, node, pw,
                   (status_topic(spec.fleet, node), Status(spec.fleet, node, False).encode()))
        states.append(st)
    watcher = None
    if spec.scenario == "fanin":
        watcher = St()
        watcher.node = None
        new_client(f"{spec.fleet}-watch-{os.getpid()}", watcher, spec.nodes[0][0], spec.nodes[0][2])  # a node may read ROUND
    t0 = time.time()
    batch = 25  # connect in small batches: the broker's listen backlog is finite
    everyone = states + ([watcher] if watcher else [])
    for i in range(0, len(everyone), batch):
        group = everyone[i:i + batch]
        for st in group:
            connect(st)
        end = time.time() + 30
        while not all(st.subscribed for st in group):
            if time.time() > end:
                raise RuntimeError(f"{sum(st.subscribed for st in group)} of {len(group)} clients subscribed")
            pump(0.05)
    results.put(("ready", os.getpid(), len(states), time.time() - t0))
    v5_props = {}
    last_misc = time.time()
    while not stop.is_set():
        pump(0.005 if (work or dirty) else 0.05)
        while work:
            item = work.popleft()
            if item[0] == "train":
                _kind, st, model, ann = item
                _params = native.from_q16(model) if ann.mode == "q16_16" else model  # what a node trains on
                values, enc = wire_values(st.delta, ann.mode)
                if ann.round not in v5_props:
                    v5_props[ann.round] = expiry_properties(max(5, ann.deadline - int(time.time()) + 60))
                for m in make_update(spec.fleet, st.node, ann.round, values, enc, SAMPLES, ann.chunk_elements, st.key):
                    st.client.publish(st.utopic, m, qos=1, properties=v5_props[ann.round])
                st.times.sent[ann.round] = time.time()
                if st.client.want_write():
                    dirty.add(st)
            else:
                r = item[1]
                for st in states:
                    for m in pre[st.node][r]:
                        st.client.publish(st.utopic, m, qos=1)
                    st.times.sent[r] = time.time()
                    if st.client.want_write():
                        dirty.add(st)
                pump(0)
        if time.time() - last_misc > 5:
            last_misc = time.time()
            for st in everyone:
                st.client.loop_misc()
    for st in everyone:
        st.client.disconnect()
    end = time.time() + 5
    while dirty and time.time() < end:
        pump(0.01)
    for st in everyone:
        with contextlib.suppress(Exception):
            sel.unregister(st.client.socket())
    return _summarize([st.times for st in states])


# ---- aggregator side --------------------------------------------------------------------------


class TimedQueue(queue.Queue):
    """The service's inbox, recording when each message arrived from paho's network thread."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.max_depth = 0

    def put(self, item, block=True, timeout=None):
        self.arrivals.append(time.time())
        super().put(item, block, timeout)
        d = self.qsize()
        self.max_depth = max(self.max_depth, d)


class Probe:
    """Timing wrappers around one engine / service instance (instance attributes only)."""

    def __init__(self) -> None:
        self.handles: list[tuple[float, float, bool]] = []   # (start, end, accepted), time.time()
        self.commits: list[tuple[float, float]] = []         # per-message transactions (intake)
        self.closes: list[dict] = []
        self.publish_times: list[float] = []
        self._in_close = None

    def attach(self, svc, engine_module) -> None:
        engine = svc.engine
        store = engine.store
        probe = self

        orig_handle = engine.handle

        def handle(topic, payload):
            t0 = time.time()
            v = orig_handle(topic, payload)
            probe.handles.append((t0, time.time(), v.accepted))
            return v
        engine.handle = handle

        orig_tx = store.transaction

        @contextlib.contextmanager
        def transaction():
            t0 = time.perf_counter()
            with orig_tx() as s:
                yield s
                t1 = time.perf_counter()  # the body is done: what follows is the COMMIT
            if probe._in_close is not None:
                probe._in_close["persist_s"] += time.perf_counter() - t0
            else:  # intake: per message, or per burst inside engine.intake(); the COMMIT only
                probe.commits.append((time.time(), time.perf_counter() - t1))
        store.transaction = transaction

        orig_sign = engine.signer.sign

        def sign(body):
            t0 = time.perf_counter()
            out = orig_sign(body)
            if probe._in_close is not None:
                probe._in_close["sign_s"] += time.perf_counter() - t0
            return out
        engine.signer.sign = sign

        orig_state = engine.state_publications

        def state_publications():
            t0 = time.perf_counter()
            out = orig_state()
            if probe._in_close is not None:
                probe._in_close["model_chunks_s"] += time.perf_counter() - t0
            return out
        engine.state_publications = state_publications

        orig_compute = engine_module.compute_round

        def compute_round(*a, **kw):
            t0 = time.perf_counter()
            out = orig_compute(*a, **kw)
            if probe._in_close is not None:
                probe._in_close["compute_s"] += time.perf_counter() - t0
            return out
        self._restore = (engine_module, orig_compute)
        engine_module.compute_round = compute_round

        orig_close = engine.close

        def close():
            probe._in_close = rec = {"compute_s": 0.0, "sign_s": 0.0, "persist_s": 0.0, "model_chunks_s": 0.0}
            t0 = time.perf_counter()
            try:
                closed = orig_close()
            finally:
                probe._in_close = None
            rec["total_s"] = time.perf_counter() - t0
            rec["round"] = closed.round
            rec["inputs"] = len(closed.record["inputs"])
            rec["incomplete"] = len(closed.record["incomplete"])
            rec["excluded"] = len(closed.excluded)
            probe.closes.append(rec)
            return closed
        engine.close = close

        orig_publish = svc._publish_state

        def publish_state():
            probe.publish_times.append(time.time())
            return orig_publish()
        svc._publish_state = publish_state

    def detach(self) -> None:
        mod, orig = self._restore
        mod.compute_round = orig


class SinkAggregator:
    """A plain paho subscriber that only counts update messages; it publishes the model and the
    ROUND like the aggregator, and opens the next round once it has counted N x chunks."""

    def __init__(self, address, fleet: str, mode: str, model: np.ndarray, expected: int, rounds: int,
                 timeout: float) -> None:
        self.address, self.fleet, self.mode, self.model = address, fleet, mode, model
        self.expected, self.rounds, self.timeout = expected, rounds, timeout
        self.inbox = TimedQueue()  # only its arrival list is used
        self.arrivals = self.inbox.arrivals
        self.publish_times: list[float] = []
        self.short: dict[int, int] = {}
        self.rounds_closed = 0
        self._hit = threading.Event()
        self._target = expected
        self._base = 0

    def _count(self, msg) -> None:
        self.arrivals.append(time.time())
        if len(self.arrivals) >= self._target:
            self._hit.set()

    def _publish(self, r: int) -> None:
        from qora.protocol import (
            RoundAnnouncement,
            make_model_chunks,
            model_digest,
            model_topic,
            round_topic,
        )
        chunks = make_model_chunks(self.fleet, r - 1, self.model, self.mode, CHUNK_ELEMENTS)
        self.publish_times.append(time.time())
        for m in chunks:
            self.client.publish(model_topic(self.fleet, m.index), m.encode(), qos=1, retain=True)
        ann = RoundAnnouncement(fleet=self.fleet, round=r, version=r - 1, digest=model_digest(self.model, self.mode),
                                deadline=int(time.time() + 600), method="count", mode=self.mode,
                                chunk_elements=CHUNK_ELEMENTS, quorum=1, elements=int(self.model.size),
                                layout=LAYOUT, model_chunks=len(chunks))
        self.client.publish(round_topic(self.fleet), ann.encode(), qos=1, retain=True)

    def run(self) -> None:
        from qora.mqtt_client import make_client
        from qora.protocol import subscription
        up = threading.Event()
        self.client = make_client(self.address, f"qora-sink-{self.fleet}", protocol="5",
                                  subscriptions=[(subscription(self.fleet, "update"), 1)], on_message=self._count,
                                  on_connected=lambda ok: ok and up.set())
        if not up.wait(10):
            raise RuntimeError("sink: no connection")
        time.sleep(0.5)  # SUBACK
        try:
            for r in range(1, self.rounds + 1):
                self._target = len(self.arrivals) + self.expected
                self._hit.clear()
                self._publish(r)
                if not self._hit.wait(self.timeout):
                    self.short[r] = self._target - len(self.arrivals)
                self.rounds_closed = r
            self._publish(self.rounds + 1)
            time.sleep(0.2)
        finally:
            self.client.disconnect()
            self.client.loop_stop()


# ---- one run ----------------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    nodes: int
    scenario: str
    aggregator: str
    driver: str
    rounds: list[dict]
    connect_s: float
    cpu: dict
    lost: int
    expected_per_round: int
    broker_log: dict
    error: str | None = None
    passes: int = 1

    def merge(self, other: RunResult) -> RunResult:
        """This row and a repeat of it: rounds pooled, CPU and losses added."""
        cpu = {k: (None if self.cpu.get(k) is None or other.cpu.get(k) is None else self.cpu[k] + other.cpu[k])
               for k in self.cpu}
        logs = collections.Counter(self.broker_log) + collections.Counter(other.broker_log)
        return dataclasses.replace(self, rounds=self.rounds + other.rounds, cpu=cpu, lost=self.lost + other.lost,
                                   connect_s=max(self.connect_s, other.connect_s), broker_log=dict(logs),
                                   error=self.error or other.error, passes=self.passes + other.passes)

    def summary(self) -> dict:
        rs = [r for r in self.rounds if r.get("round_s") is not None]
        msgs = sum(r.get("handled", r.get("arrived", 0)) for r in rs)
        s = {"agg_cpu_us": 1e6 * self.cpu["aggregator_s"] / msgs if msgs and self.cpu.get("aggregator_s") else None,
             "round_med_ms": 1e3 * statistics.median([r["round_s"] for r in rs]) if rs else float("nan"),
             "round_p95_ms": 1e3 * pct([r["round_s"] for r in rs], 95) if rs else float("nan"),
             "intake_med": statistics.median([r["intake_rate"] for r in rs if r.get("intake_rate")]) if rs else float("nan")}
        for k in ("fanout_s", "handle_us", "commit_us", "close_ms", "compute_ms", "persist_ms", "sign_ms",
                  "busy", "tail_s", "max_queue"):
            vals = [r[k] for r in rs if r.get(k) is not None]
            s[k] = statistics.median(vals) if vals else None
        return s


def _round_stats(publish_times, arrivals, handles, commits, closes, node_rounds, expected, n_rounds) -> list[dict]:
    import bisect
    out = []
    arrivals = sorted(arrivals)
    handles = sorted(handles)
    hstarts = [h[0] for h in handles]
    cts = sorted(commits)
    cstarts = [c[0] for c in cts]
    for r in range(1, n_rounds + 1):
        if r >= len(publish_times):
            break
        t0, t1 = publish_times[r - 1], publish_times[r]
        a = arrivals[bisect.bisect_left(arrivals, t0):bisect.bisect_left(arrivals, t1)]
        hs = handles[bisect.bisect_left(hstarts, t0):bisect.bisect_left(hstarts, t1)]
        cs = cts[bisect.bisect_left(cstarts, t0):bisect.bisect_left(cstarts, t1)]
        rec = {"round": r, "round_s": t1 - t0, "arrived": len(a)}
        if hs:
            rec["handled"] = len(hs)
            rec["accepted"] = sum(1 for h in hs if h[2])
            window = hs[-1][1] - (a[0] if a else hs[0][0])
            rec["intake_rate"] = len(hs) / window if window > 0 else None
            busy = sum(h[1] - h[0] for h in hs)
            rec["handle_us"] = 1e6 * busy / len(hs)
            rec["busy"] = busy / window if window > 0 else None
            rec["commit_us"] = 1e6 * sum(c[1] for c in cs) / len(hs) if cs else None
            rec["tail_s"] = t1 - hs[-1][1]
        elif a:
            window = a[-1] - a[0]
            rec["intake_rate"] = len(a) / window if window > 0 else None
            rec["tail_s"] = t1 - a[-1]
        nr = node_rounds.get(r, {})
        if nr.get("ready"):
            rec["fanout_s"] = nr["ready"][1] - t0
            rec["nodes_ready"] = nr["ready"][2]
        if nr.get("sent"):
            rec["first_sent_s"] = nr["sent"][0] - t0
            rec["last_sent_s"] = nr["sent"][1] - t0
            rec["nodes_sent"] = nr["sent"][2]
        c = next((c for c in closes if c["round"] == r), None)
        if c:
            rec.update(close_ms=1e3 * c["total_s"], compute_ms=1e3 * c["compute_s"], persist_ms=1e3 * c["persist_s"],
                       sign_ms=1e3 * c["sign_s"], model_chunks_ms=1e3 * c["model_chunks_s"], inputs=c["inputs"],
                       incomplete=c["incomplete"], excluded=c["excluded"])
        rec["max_queue"] = None
        out.append(rec)
    return out


def broker_pid(spawned) -> int | None:
    if spawned is not None:
        return spawned.pid
    try:
        return int(MOSQUITTO_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None


def log_offset(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def log_findings(path: Path | None, offset: int, fleet: str) -> dict:
    """Mosquitto log lines since ``offset`` that say it dropped or refused something."""
    if path is None:
        return {}
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return {}
    counts: collections.Counter = collections.Counter()
    for line in text.splitlines():
        low = line.lower()
        if fleet.lower() not in low:  # only this run's clients (client ids contain the fleet)
            continue
        for pat in ("dropped", "exceeded", "out of memory", "refused", "too many", "error"):
            if pat in low:
                counts[pat] += 1
    return dict(counts)


def cleanup_broker(address, fleet: str, nodes: list[str], agg_client_id: str | None) -> None:
    """Remove the run's retained messages and the aggregator's persistent session."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from qora.protocol import ledger_topic, model_topic, round_topic, status_topic

    def client(cid, clean=True):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=MQTTProtocolVersion.MQTTv5)
        if address.username:
            c.username_pw_set(address.username, address.password)
        c.max_queued_messages_set(0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        c.connect(address.host, address.port, keepalive=30, clean_start=clean, properties=props)
        c.loop_start()
        return c

    c = client(f"qora-bench-cleanup-{secrets.token_hex(3)}")
    infos = [c.publish(t, b"", qos=1, retain=True) for t in
             [round_topic(fleet), ledger_topic(fleet)] + [model_topic(fleet, i) for i in range(8)] +
             [status_topic(fleet, n) for n in nodes]]
    for i in infos:
        with contextlib.suppress(Exception):
            i.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()
    if agg_client_id:  # a clean start with expiry 0 ends the persistent session
        c = client(agg_client_id)
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()


def run_one(n: int, scenario: str, aggregator: str, args, broker, spawned, console, progress) -> RunResult:
    import qora.service.engine as engine_module
    from qora.mqtt_url import BrokerAddress
    from qora.provision import load_keys, provision
    from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store

    base, _, variant = aggregator.partition("/")
    mode = "q16_16" if base == "sink" else base
    driver = args.driver if args.driver != "auto" else ("threads" if n <= 200 else "loop")
    tag = {"q16_16": "q16", "float32": "f32", "sink": "sink"}[base] + ("-" + variant if variant else "")
    fleet = f"bench-{n}-{scenario}-{tag}-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="qora-bench-"))
    node_ids = [f"n{i:04d}" for i in range(n)]
    try:
        prov = provision(fleet, node_ids, work / "fleet")
        keys = load_keys(prov.keys_path)
        creds = {}
        for node in node_ids:
            creds[node] = json.loads(prov.node_paths[node].read_text())["mqtt_password"]
        model = initial_model(mode)
        elements = int(model.size)
        agg_addr = BrokerAddress(broker.host, broker.port, keys.aggregator_username, keys.aggregator_password)
        if spawned is not None:
            spawned.add_fleet(prov)
        log_path = spawned.log_path if spawned is not None else (MOSQUITTO_LOG if os.access(MOSQUITTO_LOG, os.R_OK) else None)
        log_off = log_offset(log_path)

        ctx = mp.get_context("spawn")
        results: mp.Queue = ctx.Queue()
        stop = ctx.Event()
        procs = []
        parts = np.array_split(np.arange(n), args.procs)
        for part in parts:
            if len(part) == 0:
                continue
            spec = WorkerSpec(broker.host, broker.port, fleet, scenario, driver, mode, args.rounds, elements,
                              args.seed, [(node_ids[i], keys.nodes[node_ids[i]].hex(), creds[node_ids[i]]) for i in part])
            p = ctx.Process(target=worker_main, args=(spec, results, stop), daemon=True)
            p.start()
            procs.append(p)
        connect_s = 0.0
        ready = 0
        end = time.time() + 180
        while ready < len(procs):
            try:
                kind, pid, payload, extra = results.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                raise RuntimeError("node workers did not get ready in 180 s") from None
            if kind == "error":
                raise RuntimeError(f"worker {pid}: {payload}")
            if kind == "ready":
                ready += 1
                connect_s = max(connect_s, extra)
        bpid = broker_pid(spawned)
        cpu_b0 = proc_cpu_seconds(bpid) if bpid else None
        cpu_a0 = time.process_time()
        expected = n * math.ceil(elements / CHUNK_ELEMENTS)
        task = progress.add_task(f"N={n} {scenario:5s} {aggregator:8s}", total=args.rounds)
        probe = None
        error = None
        if base == "sink":
            agg = SinkAggregator(agg_addr, fleet, mode, model, expected, args.rounds, args.round_seconds)
            th = threading.Thread(target=agg.run, daemon=True)
            th.start()
            while th.is_alive():
                progress.update(task, completed=agg.rounds_closed)
                th.join(0.1)
            progress.update(task, completed=agg.rounds_closed)
            publish_times, arrivals, handles, commits, closes = agg.publish_times, agg.arrivals, [], [], []
            lost = sum(agg.short.values())
            max_depth = None
            agg_client_id = f"qora-sink-{fleet}"
        else:
            config = FleetConfig(fleet=fleet, method="trimmed_mean", trim_fraction=0.2, mode=mode, quorum=1,
                                 round_seconds=args.round_seconds, layout=LAYOUT, chunk_elements=CHUNK_ELEMENTS)
            store = Store(work / "aggregator.db")
            engine = RoundEngine(store, config, keys.nodes, Signer.generate(), initial_model=model)
            svc = AggregatorService(engine, agg_addr, protocol="5")
            svc._inbox = inbox = TimedQueue()
            if variant == "permsg":  # the service as it was: one commit and ack per message
                svc._handle_batch = lambda msgs: [svc._handle(m) for m in msgs]
            elif variant:
                raise SystemExit(f"unknown aggregator variant {aggregator!r}")
            probe = Probe()
            probe.attach(svc, engine_module)
            box: dict = {}

            def run_service():
                try:
                    svc.run(rounds=args.rounds, timeout=args.rounds * args.round_seconds * 3 + 60)
                except BaseException as e:  # noqa: BLE001 (reported in the table)
                    box["error"] = e
            th = threading.Thread(target=run_service, daemon=True, name="aggregator")
            th.start()
            while th.is_alive():
                progress.update(task, completed=engine.rounds_closed)
                th.join(0.1)
            progress.update(task, completed=engine.rounds_closed)
            probe.detach()
            store.close()
            if "error" in box:
                error = f"{type(box['error']).__name__}: {box['error']}"
            publish_times, arrivals, handles = probe.publish_times, inbox.arrivals, probe.handles
            commits, closes = probe.commits, probe.closes
            accepted = sum(1 for h in handles if h[2])
            lost = max(0, expected * len(closes) - accepted)
            max_depth = inbox.max_depth
            agg_client_id = svc.client_id
        cpu_agg = time.process_time() - cpu_a0
        cpu_b1 = proc_cpu_seconds(bpid) if bpid else None
        progress.remove_task(task)
        stop.set()
        node_rounds: dict[int, dict] = {}
        cpu_nodes = 0.0
        done = 0
        end = time.time() + 60
        while done < len(procs) and time.time() < end:
            try:
                kind, pid, payload, extra = results.get(timeout=1)
            except queue.Empty:
                continue
            if kind == "error":
                error = (error or "") + f" worker {pid}: {payload}"
                done += 1
            elif kind == "done":
                done += 1
                cpu_nodes += extra
                for r, v in payload.items():
                    cur = node_rounds.setdefault(int(r), {"ready": None, "sent": None})
                    for k in ("ready", "sent"):
                        if v[k] is None:
                            continue
                        if cur[k] is None:
                            cur[k] = list(v[k])
                        else:
                            cur[k] = [min(cur[k][0], v[k][0]), max(cur[k][1], v[k][1]), cur[k][2] + v[k][2]]
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        rounds = _round_stats(publish_times, arrivals, handles, commits, closes, node_rounds, expected, args.rounds)
        for rec in rounds:
            rec["max_queue"] = max_depth
        findings = log_findings(log_path, log_off, fleet)
        with contextlib.suppress(Exception):
            cleanup_broker(agg_addr, fleet, node_ids, agg_client_id)
        cpu = {"broker_s": None if cpu_b0 is None or cpu_b1 is None else cpu_b1 - cpu_b0,
               "aggregator_s": cpu_agg, "nodes_s": cpu_nodes,
               "wall_s": (publish_times[-1] - publish_times[0]) if len(publish_times) > 1 else None}
        return RunResult(n, scenario, aggregator, driver, rounds, connect_s, cpu, lost, expected, findings, error)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- a private Mosquitto ------------------------------------------------------------------------


class SpawnedBroker:
    """mosquitto on a free loopback port with the fleets' password files and ACLs."""

    def __init__(self, options: list[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="qora-bench-broker-"))
        self.options = options
        self.passwd: list[str] = []
        self.acl: list[str] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = self.dir / "mosquitto.log"
        self.proc = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def add_fleet(self, prov) -> None:
        self.passwd = [line for line in prov.passwd_path.read_text().splitlines() if line]
        self.acl = prov.acl_path.read_text().splitlines()
        self._restart()

    def _restart(self) -> None:
        (self.dir / "passwd").write_text("\n".join(self.passwd) + "\n")
        (self.dir / "acl").write_text("\n".join(self.acl) + "\n")
        conf = [f"listener {self.port} 127.0.0.1", "allow_anonymous false", f"password_file {self.dir / 'passwd'}",
                f"acl_file {self.dir / 'acl'}", "persistence false", "user root",
                f"log_dest file {self.log_path}", "log_type error", "log_type warning", "log_type notice",
                *self.options]
        (self.dir / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("spawned mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- report -----------------------------------------------------------------------------------


def fmt(v, spec: str = ".0f", none: str = "—") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, spec)


def sig(v) -> str:
    """3 significant digits with thousands separators."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{round(v, digits):,.{digits}f}"


LOAD_AT_START = os.getloadavg()


def machine_lines(broker_desc: str) -> list[str]:
    import importlib.metadata as md
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=False).stdout.strip()
        dirty = [line[3:] for line in subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "host/qora"], capture_output=True, text=True,
            timeout=10, check=False).stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "?", ""
    try:
        mver = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        mver = "mosquitto ?"
    vers = ", ".join(f"{p} {md.version(p)}" for p in ("paho-mqtt", "cbor2", "numpy", "cryptography"))
    a = LOAD_AT_START
    return [(f"CPU: {cpu}, {os.cpu_count()} cores; load average (1/5/15 min) {a[0]:.2f}/{a[1]:.2f}/{a[2]:.2f} "
            f"at the start, {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} at the end (other work shares the machine)"),
            f"Python {platform.python_version()}, {vers}; {mver}; broker {broker_desc}",
            f"Qora Edge commit {commit}" + (f" with uncommitted changes in {', '.join(dirty[:6])}"
                                             + (" ..." if len(dirty) > 6 else "") if dirty else " (host/qora clean)")]


def render_block(key: str, results: list[RunResult], command: str, machine: list[str], rounds: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"<!-- bench_service {key} start -->", f"### {key.replace('N=', 'N = ', 1)}", "",
             f"Generated by `bench/bench_service.py` on {when}:", "", "```", command, "```", ""]
    lines += [f"- {m}" for m in machine]
    drivers = sorted({r.driver for r in results})
    passes = max(r.passes for r in results)
    total = rounds * passes
    lines += [f"- node driver: {', '.join(drivers)}; {rounds} rounds per row"
              + (f" x {passes} interleaved passes = {total} rounds pooled" if passes > 1 else "")
              + f"; p95 over {total} rounds by linear interpolation"
              + (" (close to the slowest round)" if total < 20 else ""), ""]
    sinks = {r.scenario: r.summary() for r in results if r.aggregator == "sink" and not r.error}
    names = {"sink": "sink (counts only)", "q16_16": "qora q16_16", "float32": "qora float32",
             "q16_16/permsg": "qora q16_16, commit per message", "float32/permsg": "qora float32, commit per message"}
    lines += [("| scenario | aggregator | round time median (ms) | p95 (ms) | × sink | intake (msg/s) | × sink | "
              "handle µs/msg | commit µs/msg | aggregator CPU µs/msg | close (ms) | aggregate | persist | fan-out (ms) | lost msgs | "
              "CPU s/round broker · aggregator · nodes |"),
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        s = r.summary()
        sink = sinks.get(r.scenario)
        nr = max(1, len([x for x in r.rounds if x.get("round_s")]))
        cpu = " · ".join(fmt(None if v is None else v / nr, ".2f") for v in
                         (r.cpu["broker_s"], r.cpu["aggregator_s"], r.cpu["nodes_s"]))
        name = names.get(r.aggregator, r.aggregator)
        ratio_round = "—" if sink is None or r.aggregator == "sink" else f"{s['round_med_ms'] / sink['round_med_ms']:.2f}×"
        ratio_intake = "—" if sink is None or r.aggregator == "sink" or not sink["intake_med"] else \
            f"{s['intake_med'] / sink['intake_med']:.2f}×"
        lines.append(
            f"| {r.scenario} | {name}{' **ERROR**' if r.error else ''} | {sig(s['round_med_ms'])} | {sig(s['round_p95_ms'])} | "
            f"{ratio_round} | {sig(s['intake_med'])} | {ratio_intake} | {sig(s['handle_us'])} | "
            f"{sig(s['commit_us'])} | {sig(s['agg_cpu_us'])} | {sig(s['close_ms'])} | {sig(s['compute_ms'])} | {sig(s['persist_ms'])} | "
            f"{sig(None if s['fanout_s'] is None else 1e3 * s['fanout_s'])} | {r.lost} | {cpu} |")
    lines += ["", ("Per round (ms, the first 10): round time; in brackets, from ROUND published: last node holding the model · "
              "first · last update sent; then the tail from the last update handled to the next ROUND."), ""]
    for r in results:
        per = "; ".join(
            f"{1e3 * x['round_s']:.0f} [{fmt(None if x.get('fanout_s') is None else 1e3 * x['fanout_s'])} · "
            f"{fmt(None if x.get('first_sent_s') is None else 1e3 * x['first_sent_s'])} · "
            f"{fmt(None if x.get('last_sent_s') is None else 1e3 * x['last_sent_s'])}] "
            f"tail {fmt(None if x.get('tail_s') is None else 1e3 * x['tail_s'])}"
            for x in r.rounds[:10]) + (f"; … ({len(r.rounds) - 10} more)" if len(r.rounds) > 10 else "")
        extra = f"; connect {r.connect_s:.1f} s; max inbox depth {r.rounds[0]['max_queue'] if r.rounds else '—'}"
        if r.broker_log:
            extra += f"; broker log: {r.broker_log}"
        if r.error:
            extra += f"; error: {r.error[:200]}"
        lines.append(f"- {r.scenario} / {r.aggregator}: {per}{extra}")
    lines += ["", f"<!-- bench_service {key} end -->"]
    return "\n".join(lines)


def write_doc(path: Path, key: str, block: str) -> None:
    text = path.read_text() if path.exists() else ""
    start, end = f"<!-- bench_service {key} start -->", f"<!-- bench_service {key} end -->"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n"
    if start in text and end in text:
        a = text.index(start)
        b = text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        # after the section's other blocks (before the next "## " section, if any)
        a = text.index(SECTION) + len(SECTION)
        nxt = text.find("\n## ", a)
        if nxt == -1:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        else:
            text = text[:nxt].rstrip("\n") + "\n\n" + block + "\n" + text[nxt:]
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="MQTT broker URL (default %(default)s)")
    ap.add_argument("--spawn-broker", action="store_true",
                    help="run a private mosquitto (provisioned password file and ACL) on a free port instead")
    ap.add_argument("--broker-option", action="append", default=[],
                    help="extra mosquitto.conf line for --spawn-broker, e.g. 'max_queued_messages 10000'")
    ap.add_argument("--nodes", type=int, nargs="+", default=[100, 1000], help="fleet sizes (default 100 1000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scenarios", default="full,fanin")
    ap.add_argument("--aggregators", default="q16_16,float32,sink",
                    help="q16_16, float32, sink; q16_16/permsg = the service with a commit and ack per message")
    ap.add_argument("--procs", type=int, default=2, help="node worker processes (default 2)")
    ap.add_argument("--driver", choices=("auto", "threads", "loop"), default="auto")
    ap.add_argument("--round-seconds", type=float, default=30.0,
                    help="deadline: a round missing messages closes then (quorum 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every row this many times, interleaved, and pool the rounds (noisy machines)")
    ap.add_argument("--doc", type=Path, help="write the results into this markdown file (e.g. docs/benchmarks.md)")
    ap.add_argument("--json", type=Path, help="also dump every run's numbers as JSON")
    ap.add_argument("--label", default="", help="names this run's block in --doc (beside N), e.g. 'queue 10000'")
    ap.add_argument("--quick", action="store_true", help="20 nodes, 2 rounds, no doc")
    args = ap.parse_args(argv)
    if args.quick:
        args.nodes, args.rounds, args.doc = [20], 2, None

    from qora.mqtt_url import parse_broker_url
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    spawned = SpawnedBroker(args.broker_option) if args.spawn_broker else None
    if spawned is not None:
        broker = parse_broker_url(f"mqtt://127.0.0.1:{spawned.port}")
        broker_desc = f"private mosquitto on 127.0.0.1:{spawned.port} (password file + ACL" + \
            (", " + "; ".join(args.broker_option) if args.broker_option else "") + ")"
    else:
        broker = parse_broker_url(args.broker)
        broker_desc = f"{args.broker}"
    scenarios = [s for s in args.scenarios.split(",") if s]
    aggregators = [a for a in args.aggregators.split(",") if a]
    shown = list(argv or sys.argv[1:])
    if "--json" in shown:  # a scratch file, not part of what the doc records
        i = shown.index("--json")
        del shown[i:i + 2]
    command = "cd /work/main && python bench/bench_service.py " + " ".join(shlex.quote(a) for a in shown)
    all_results: dict[int, list[RunResult]] = {}
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} rounds"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            for n in args.nodes:
                merged: dict[tuple[str, str], RunResult] = {}
                for rep in range(args.repeat):  # repeats interleaved: load from elsewhere hits every row alike
                    for scenario in scenarios:
                        for aggregator in aggregators:
                            r = run_one(n, scenario, aggregator, args, broker, spawned, console, progress)
                            s = r.summary()
                            console.print(f"N={n} {scenario} {aggregator}{f' (pass {rep + 1})' if args.repeat > 1 else ''}: "
                                          f"round {sig(s['round_med_ms'])} ms median, {sig(s['round_p95_ms'])} p95; "
                                          f"intake {sig(s['intake_med'])} msg/s; lost {r.lost}"
                                          + (f"; [red]{r.error}[/red]" if r.error else ""))
                            key = (scenario, aggregator)
                            merged[key] = r if key not in merged else merged[key].merge(r)
                all_results[n] = list(merged.values())
    finally:
        if spawned is not None:
            spawned.stop()
    machine = machine_lines(broker_desc)
    for n, results in all_results.items():
        t = Table(title=f"N = {n}: round time and intake ({args.rounds} rounds)")
        for col in ("scenario", "aggregator", "round med ms", "p95 ms", "intake msg/s", "handle µs", "commit µs",
                    "close ms", "fan-out ms", "lost"):
            t.add_column(col, justify="right" if col not in ("scenario", "aggregator") else "left")
        for r in results:
            s = r.summary()
            t.add_row(r.scenario, r.aggregator, sig(s["round_med_ms"]), sig(s["round_p95_ms"]), sig(s["intake_med"]),
                      sig(s["handle_us"]), sig(s["commit_us"]), sig(s["close_ms"]),
                      sig(None if s["fanout_s"] is None else 1e3 * s["fanout_s"]), str(r.lost))
        console.print(t)
        if args.doc:
            key = f"N={n}" + (f", {args.label}" if args.label else "")
            write_doc(args.doc, key, render_block(key, results, command, machine, args.rounds))
            console.print(f"wrote {key} into {args.doc}")
    if args.json:
        args.json.write_text(json.dumps({str(n): [dataclasses.asdict(r) for r in rs] for n, rs in all_results.items()},
                                        indent=1, default=str))
    return 1 if any(r.error for rs in all_results.values() for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main())
