"""A simulated fleet: node processes that train on real data and talk real MQTT.

``FleetSpec`` says who is who; ``run_nodes(spec, ids)`` runs some of its nodes in the
calling process (each with its own MQTT connection, for every fleet in ``spec.fleets``)
until ``stop`` is set; ``spawn(spec, processes)`` starts them as separate processes.
Byzantine nodes collude inside their process: each round they pool the updates they
would send honestly and send what the attack (qora.sim.attacks) makes of them. The
``mischief`` node also sends a few invalid messages each round (a replay of its last
message, an update for another node, a NaN update), which the aggregator must reject.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import zlib
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qora.errors import InvalidInput
from qora.mqtt_url import parse_broker_url
from qora.protocol import Encoding, RoundAnnouncement, make_update
from qora.provision import load_node_credentials
from qora.sim import attacks as attack_lib
from qora.sim import data as data_lib
from qora.sim.client import Client
from qora.sim.models import make_model
from qora.sim.mqtt_node import MqttNode

log = logging.getLogger("qora.fleet")


@dataclass(frozen=True)
class FleetSpec:
    broker: str                              # mqtt://host:port
    fleets: tuple[str, ...]                  # the same nodes serve every fleet listed
    credentials: str                         # `qora provision --out` dir, or a dir of them named by fleet
    nodes: tuple[str, ...]
    byzantine: tuple[str, ...] = ()
    attack: str = "sign_flip"
    mischief: str | None = None              # a Byzantine node that also sends invalid messages
    dataset: str = "digits"
    model: str = "mlp"
    partition: str = "dirichlet"
    alpha: float = 1.0
    seed: int = 0
    epochs: int = 2
    lr: float = 0.5
    batch_size: int = 32
    encoding: str = "auto"                   # float32 fleets: "auto" (float32) or "int8"
    mqtt_version: str = "auto"               # "auto", "5" or "3.1.1"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.byzantine) - set(self.nodes))
        if unknown:
            raise InvalidInput(f"byzantine nodes {unknown} are not in the fleet's nodes")
        attack_lib.get_attack(self.attack)


def _dataset(spec: FleetSpec) -> data_lib.Dataset:
    return data_lib.load_digits(seed=spec.seed) if spec.dataset == "digits" else data_lib.load_sensors(seed=spec.seed)


def make_clients(spec: FleetSpec) -> dict[str, Client]:
    """Every node's Client (data shard + model), the same in every process for a seed."""
    ds = _dataset(spec)
    model = make_model(spec.model, "float32", ds.n_features, ds.n_classes)
    shards = data_lib.partition(ds.y_train, len(spec.nodes), spec.partition, alpha=spec.alpha, seed=spec.seed)
    return {node: Client(node, ds.X_train[s], ds.y_train[s], model, epochs=spec.epochs, lr=spec.lr,
                         batch_size=spec.batch_size) for node, s in zip(spec.nodes, shards)}


class _Colluders:
    """The Byzantine nodes of one process: one attack computation per (fleet, round)."""

    def __init__(self, spec: FleetSpec, clients: dict[str, Client]) -> None:
        self.spec = spec
        self.members = [n for n in spec.nodes if n in spec.byzantine]
        self.clients = clients
        self.attack = attack_lib.get_attack(spec.attack)
        self.rng = np.random.default_rng([spec.seed, 31337])
        self.n_total = len(spec.nodes)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        n_classes = clients[self.members[0]].model.n_classes if self.members else 0
        self.labels = {n: self.attack.poison_labels(clients[n].y, n_classes, self.rng)
                       for n in self.members} if self.attack.data_level else {}

    def update_for(self, fleet: str, node: str, params: np.ndarray, ann: RoundAnnouncement) -> np.ndarray:
        with self._lock:
            key = (fleet, ann.round)
            if key not in self._cache:
                seed = self.spec.seed * 1_000_003 + ann.round * 1009
                own = np.stack([self.clients[n].local_delta(params.astype(np.float64), seed + 500 + k,
                                                            self.labels.get(n))
                                for k, n in enumerate(self.members)])
                if self.attack.data_level:
                    rows = own
                else:
                    # the colluders see only their own data: their honest estimate is their own
                    # updates, standing in for the n - b honest nodes they cannot observe
                    honest = np.resize(own, (max(1, self.n_total - len(self.members)), own.shape[1]))
                    ctx = attack_lib.AttackContext(honest=honest, own=own, round_index=ann.round - 1,
                                                   rng=self.rng, n_total=self.n_total,
                                                   global_params=params.astype(np.float32))
                    rows = np.asarray(self.attack.updates(ctx), dtype=np.float32)
                self._cache = {k: v for k, v in self._cache.items() if k[1] >= ann.round - 1}
                self._cache[key] = dict(zip(self.members, rows))
            return self._cache[key][node]


def _honest(client: Client, seed: int):
    def compute(params: np.ndarray, ann: RoundAnnouncement) -> np.ndarray:
        node_seed = zlib.crc32(str(client.client_id).encode()) % 997
        return client.local_delta(params.astype(np.float64), seed * 1_000_003 + ann.round * 1009 + node_seed)
    return compute


def _mischief(node: MqttNode, others: list[str]):
    """Invalid messages after each real update: replay, forged sender, NaN values."""
    last: dict[str, bytes] = {}

    def after(update: np.ndarray, ann: RoundAnnouncement) -> None:
        enc = Encoding.Q16 if ann.mode == "q16_16" else Encoding.F32
        if node.fleet in last:
            node.publish_raw(last[node.fleet], ann)                              # old round: wrong_round
        victim = others[0] if others else node.node
        forged = make_update(node.fleet, victim, ann.round, np.zeros(ann.elements, np.int32 if enc == Encoding.Q16
                                                                     else np.float32), enc, 1,
                             ann.chunk_elements, node.key)
        node.publish_raw(forged[0], ann)                                         # bad_tag / forged sender
        if enc == Encoding.F32:
            bad = np.full(ann.elements, np.nan, np.float32)
            node.publish_raw(make_update(node.fleet, node.node, ann.round, bad, enc, 1, ann.chunk_elements,
                                         node.key)[0], ann)                      # non_finite
        else:
            node.publish_raw(b"\xa1\x00", ann)                                   # malformed
        last[node.fleet] = make_update(node.fleet, node.node, ann.round, np.zeros(ann.elements,
                                       np.int32 if enc == Encoding.Q16 else np.float32), enc, 1,
                                       ann.chunk_elements, node.key)[0]
    return after


def run_nodes(spec: FleetSpec, ids: list[str], stop: threading.Event | mp.synchronize.Event,
              ready: mp.synchronize.Event | None = None) -> None:
    """Run nodes ``ids`` of the spec here until ``stop`` is set."""
    logging.getLogger("qora").setLevel(logging.WARNING)
    broker = parse_broker_url(spec.broker)
    clients = make_clients(spec)
    colluders = _Colluders(spec, clients) if any(n in spec.byzantine for n in ids) else None
    jobs: queue.Queue = queue.Queue()
    nodes: list[MqttNode] = []
    for fleet in spec.fleets:
        for node_id in ids:
            cred = load_node_credentials(_credentials_dir(spec, fleet) / f"{node_id}.json")
            # each node logs in as itself: with a provisioned Mosquitto the ACL then holds it
            # to its own topics; brokers that allow anonymous clients accept it as well
            addr = dataclasses.replace(broker, username=cred.mqtt_username, password=cred.mqtt_password)
            client = clients[node_id]
            if node_id in spec.byzantine:
                def compute(params, ann, fleet=fleet, node_id=node_id):
                    return colluders.update_for(fleet, node_id, params, ann)
            else:
                compute = _honest(client, spec.seed)
            node = MqttNode(addr, fleet, node_id, cred.key, compute, jobs.put, samples=max(1, client.n_samples),
                            encoding=spec.encoding, protocol=spec.mqtt_version)
            if node_id == spec.mischief:
                after = _mischief(node, [n for n in spec.nodes if n != node_id])
                inner = node.compute

                def compute_and_mischief(params, ann, inner=inner, after=after, node=node):
                    update = inner(params, ann)
                    node.send(update, ann)
                    after(update, ann)
                    return None
                node.compute = compute_and_mischief
            nodes.append(node)
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            try:
                job = jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                job()
            except Exception:  # a node's failure must not take the others down
                log.exception("node job failed")
    finally:
        for node in nodes:
            node.close()


def _credentials_dir(spec: FleetSpec, fleet: str) -> Path:
    """``credentials`` is one fleet's `qora provision --out` directory, or holds one per fleet."""
    base = Path(spec.credentials)
    return base / fleet / "nodes" if (base / fleet / "nodes").is_dir() else base / "nodes"


def spawn(spec: FleetSpec, processes: int = 2) -> tuple[list[mp.Process], mp.synchronize.Event]:
    """Start the fleet's nodes in ``processes`` honest processes plus one for the attackers."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    honest = [n for n in spec.nodes if n not in spec.byzantine]
    groups = [honest[i::processes] for i in range(processes)]
    if spec.byzantine:
        groups.append(list(spec.byzantine))
    procs = []
    for g in groups:
        if not g:
            continue
        p = ctx.Process(target=run_nodes, args=(spec, g, stop), daemon=True, name=f"qora-nodes-{g[0]}")
        p.start()
        procs.append(p)
    return procs, stop
