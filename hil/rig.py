"""The HIL rig: boards + gateway + broker + aggregator service, and the host's own replay.

``Rig(kinds=[...])`` provisions a fleet, writes each board's config blob (its key, a digits
shard, training settings, an attack for Byzantine boards, mesh peers in mesh mode), starts
the boards, one ``qora gateway`` (in process) for all of them and — unless in mesh mode — the
aggregator service (Q16.16). ``check_replay()`` recomputes, on the host, the update every
board should have sent for every closed round (the integer training step, bit-exact with the
firmware) and compares it with what the aggregator stored, then runs ``qora verify``'s replay
of each aggregate: together, the published model is the host's own Q16.16 replay bit for bit.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hil.boards import Board, PosixBoard, QemuBoard, RealBoard, build_firmware
from qora import native
from qora.gateway import Gateway
from qora.mqtt_url import parse_broker_url
from qora.nodeconfig import NodeConfig, round_seed
from qora.provision import load_keys, provision
from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store, verify_store
from qora.service.compute import assemble_input, tensor_from_bytes
from qora.sim import data as data_lib
from qora.sim.fixed import Q16Model, mul_q16, sub_q16
from qora.sim.models import make_model

SIZES = (64, 10)          # softmax regression: fast enough for emulated boards
ROWS = 40
EPOCHS, BATCH, LR_Q = 1, 8, 32768
ATTACK_SCALE = 4 * 65536


@dataclass
class Rig:
    workdir: Path
    kinds: list[str]                       # one entry per board: posix, qemu-m4, qemu-rv32, real:<device>
    broker: str = "mqtt://127.0.0.1:1883"
    byzantine: set[int] = field(default_factory=set)   # board indices that attack
    mesh: bool = False
    method: str = "trimmed_mean"
    trim_fraction: float = 0.25
    round_seconds: float = 60.0
    seed: int = 0
    boards: list[Board] = field(default_factory=list)
    closed: list = field(default_factory=list)

    # ---- setup -----------------------------------------------------------------------------
    def __enter__(self) -> "Rig":
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _setup(self) -> None:
        if any(k.startswith("real:") for k in self.kinds):
            return self._setup_real()
        self.fleet = f"hil-{uuid.uuid4().hex[:8]}"
        self.nodes = [f"b{i}" for i in range(len(self.kinds))]
        keys_dir = self.workdir / "fleet"
        provision(self.fleet, self.nodes, keys_dir)
        self.keys = load_keys(keys_dir / "keys.json").nodes
        ds = data_lib.load_digits(seed=self.seed)
        shards = data_lib.partition(ds.y_train, len(self.nodes), "iid", seed=self.seed)
        self.configs: dict[str, NodeConfig] = {}
        mesh = tuple((n, self.keys[n]) for n in self.nodes) if self.mesh else ()
        for i, node in enumerate(self.nodes):
            idx = shards[i][:ROWS]
            X_q = native.to_q16(ds.X_train[idx].astype(np.float32))[0]
            self.configs[node] = NodeConfig(
                fleet=self.fleet, node=node, key=self.keys[node], X_q=X_q, y=ds.y_train[idx], sizes=SIZES,
                epochs=EPOCHS, batch=BATCH, seed=1000 + i, lr_q=LR_Q,
                attack="sign_flip" if i in self.byzantine else "none", attack_scale=ATTACK_SCALE,
                mesh=mesh, mesh_method="trimmed_mean", mesh_f=1)
        self.init = native.to_q16(np.asarray(make_model("softmax", "float32").init_params(self.seed),
                                             np.float32))[0]
        images = {}
        for kind in set(self.kinds):
            target = {"posix": "posix", "qemu-m4": "qemu-mps2", "qemu-rv32": "qemu-riscv"}.get(kind)
            if target:
                images[kind] = build_firmware(target, self.workdir / "build")
        for node, kind in zip(self.nodes, self.kinds):
            bdir = self.workdir / "boards" / node
            bdir.mkdir(parents=True, exist_ok=True)
            blob = bdir / "node.blob"
            blob.write_bytes(self.configs[node].blob())
            if kind == "posix":
                board = PosixBoard(node, bdir, images[kind], blob)
            elif kind.startswith("qemu"):
                board = QemuBoard(node, bdir, kind, images[kind], blob)
            else:
                board = RealBoard(node, bdir, kind.split(":", 1)[1])
            self.boards.append(board.start())
        self.gateway = Gateway([b.url for b in self.boards], parse_broker_url(self.broker),
                               credentials=keys_dir / "nodes", mesh=self.mesh).start()
        self.service = None
        if not self.mesh:
            self._start_service(keys_dir)

    def _setup_real(self) -> None:
        """Boards flashed beforehand: their blobs (QORA_HIL_BLOBS, one per port) say who they are."""
        from hil.boards import real_blobs
        from qora.nodeconfig import parse_blob

        blobs = real_blobs()
        if len(blobs) != len(self.kinds):
            raise RuntimeError(f"QORA_HIL_BLOBS names {len(blobs)} blobs for {len(self.kinds)} boards")
        self.configs = {}
        for path in blobs:
            cfg = parse_blob(Path(path).read_bytes())
            self.configs[cfg.node] = cfg
        fleets = {c.fleet for c in self.configs.values()}
        if len(fleets) != 1:
            raise RuntimeError(f"the blobs belong to several fleets: {sorted(fleets)}")
        self.fleet = fleets.pop()
        self.nodes = list(self.configs)
        self.keys = {n: c.key for n, c in self.configs.items()}
        self.byzantine = {i for i, n in enumerate(self.nodes) if self.configs[n].attack != "none"}
        self.init = native.to_q16(np.asarray(make_model("softmax", "float32").init_params(self.seed),
                                             np.float32))[0]
        for node, kind in zip(self.nodes, self.kinds):
            self.boards.append(RealBoard(node, self.workdir / "boards" / node, kind.split(":", 1)[1]).start())
        self.gateway = Gateway([b.url for b in self.boards], parse_broker_url(self.broker), mesh=self.mesh).start()
        self.service = None
        if not self.mesh:
            self._start_service(None)

    def _start_service(self, keys_dir: Path | None) -> None:
        config = FleetConfig(fleet=self.fleet, method=self.method, trim_fraction=self.trim_fraction,
                             mode="q16_16", quorum=max(1, len(self.nodes) - 1),
                             round_seconds=self.round_seconds, chunk_elements=1024, layout=SIZES)
        self.store = Store(self.workdir / f"{self.fleet}.db")
        self.signer = Signer.load_or_create(self.workdir / "agg.key")
        self.engine = RoundEngine(self.store, config, self.keys, self.signer, initial_model=self.init)
        self._closed_event = threading.Condition()
        self.service = AggregatorService(self.engine, parse_broker_url(self.broker), on_round=self._on_round)
        self._thread = threading.Thread(target=self.service.run, daemon=True, name="hil-aggregator")
        self._thread.start()

    def _on_round(self, closed) -> None:
        with self._closed_event:
            self.closed.append(closed)
            self._closed_event.notify_all()

    # ---- running ---------------------------------------------------------------------------
    def wait_rounds(self, n: int, timeout: float = 120.0) -> list:
        end = time.monotonic() + timeout
        with self._closed_event:
            while len(self.closed) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(self.describe(f"only {len(self.closed)} of {n} rounds closed"))
                self._closed_event.wait(min(left, 1.0))
        return self.closed[:n]

    def describe(self, what: str) -> str:
        lines = [what, f"aggregator: round {self.engine.round if self.service else '-'}, "
                       f"complete {self.engine.complete_nodes() if self.service else '-'}, "
                       f"rejects {dict(self.engine.rejects_total) if self.service else '-'}"]
        for link in self.gateway.links:
            s = link.stats
            lines.append(f"gateway {s.port} node {s.node} up {s.up} down {s.down} refused {s.refused} "
                         f"frames {s.decoder.frames_ok} crc {s.decoder.crc_errors} cobs {s.decoder.cobs_errors}")
        for b in self.boards:
            lines.append(f"--- {b.node} ({b.kind}) log tail:\n{b.log()[-600:]}")
        return "\n".join(lines)

    def gateway_logs(self, node: str) -> list[str]:
        return [line for link in self.gateway.links if link.stats.node == node for line in link.stats.logs]

    # ---- the host's replay -------------------------------------------------------------------
    def expected_update(self, node: str, round_: int, model_in: np.ndarray) -> np.ndarray:
        """The delta the board must have sent: the integer training step, on the host."""
        cfg = self.configs[node]
        local = Q16Model(SIZES).train_node(model_in, cfg.X_q, cfg.y, cfg.epochs, cfg.batch, cfg.lr_q,
                                           round_seed(cfg.seed, round_, cfg.epochs))
        delta = sub_q16(local, model_in)
        if cfg.attack == "sign_flip":
            delta = mul_q16(delta, -cfg.attack_scale)   # node.c: qora_q16_mul(d, -attack_scale)
        return delta

    def check_replay(self) -> dict:
        """Every stored update equals the host's replay; every aggregate replays bit for bit."""
        checked = 0
        for closed in self.closed:
            rec = closed.record
            model_in = tensor_from_bytes(self.store.model(rec["model_in"]["version"])[1], "q16_16")
            by_node: dict[str, list[bytes]] = {}
            for node, _i, msg in self.store.chunks(rec["round"]):
                by_node.setdefault(node, []).append(msg)
            for item in rec["inputs"]:
                got = assemble_input(item["node"], by_node[item["node"]], "q16_16").values
                want = self.expected_update(item["node"], rec["round"], model_in)
                if not np.array_equal(got, want):
                    bad = int(np.argmax(got != want))
                    raise AssertionError(f"round {rec['round']} {item['node']}: the board's update differs "
                                         f"from the host's replay at [{bad}]: {got[bad]} != {want[bad]}")
                checked += 1
        report = verify_store(self.store.path, public_key=self.signer.public_key, keys=self.keys)
        assert report.ok, "\n".join(map(str, report.findings))
        return {"updates": checked, "rounds": report.rounds, "replayed": report.replayed_q16}

    # ---- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "service", None) is not None:
            self.service.stop()
            self._thread.join(timeout=15)
        if getattr(self, "gateway", None) is not None:
            self.gateway.stop()
        for b in self.boards:
            b.stop()
        if getattr(self, "store", None) is not None:
            self.store.close()
            self.store = None
