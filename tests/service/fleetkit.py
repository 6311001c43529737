"""Test helpers for the service: a provisioned fleet, node updates, an engine on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qora import native
from qora.protocol import Encoding, make_update, update_topic
from qora.provision import load_keys, provision
from qora.service import FleetConfig, RoundEngine, Signer, Store

FLEET = "testfleet"
D = 300  # model elements: 3 chunks of 128


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Fleet:
    dir: Path
    nodes: list[str]
    keys: dict[str, bytes]
    signer: Signer

    def engine(self, db: Path | None = None, clock=None, init=None, **cfg) -> RoundEngine:
        settings = dict(fleet=FLEET, method="trimmed_mean", trim_fraction=0.2, mode="q16_16", quorum=3,
                        round_seconds=30.0, chunk_elements=128)
        settings.update(cfg)
        config = FleetConfig(**settings)
        store = Store(db or self.dir / "fleet.db")
        if init is None:
            init = initial_model(settings["mode"])
        return RoundEngine(store, config, self.keys, self.signer, initial_model=init, clock=clock or Clock())


def initial_model(mode: str = "q16_16", d: int = D, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 0.1, d).astype(np.float32)
    return native.to_q16(x)[0] if mode == "q16_16" else x


def make_fleet(tmp_path: Path, n: int = 5) -> Fleet:
    nodes = [f"n{i}" for i in range(n)]
    provision(FLEET, nodes, tmp_path / "keys")
    keys = load_keys(tmp_path / "keys" / "keys.json").nodes
    return Fleet(tmp_path, nodes, keys, Signer.load_or_create(tmp_path / "agg.key"))


def update_values(node_index: int, round_: int, mode: str = "q16_16", d: int = D, scale: float = 0.01,
                  byzantine: bool = False) -> np.ndarray:
    rng = np.random.default_rng([node_index, round_])
    x = rng.normal(0.0, scale, d).astype(np.float32)
    if byzantine:
        x = np.full(d, 20.0, np.float32)
    return native.to_q16(x)[0] if mode == "q16_16" else x


def messages(fleet: Fleet, node: str, round_: int, values: np.ndarray, *, samples: int = 10,
             chunk_elements: int = 128, encoding: Encoding | None = None, key: bytes | None = None) -> list[bytes]:
    enc = encoding if encoding is not None else (Encoding.Q16 if values.dtype == np.int32 else Encoding.F32)
    return make_update(FLEET, node, round_, values, enc, samples, chunk_elements, key or fleet.keys[node])


def send_all(engine: RoundEngine, fleet: Fleet, round_: int, byzantine: set[str] = frozenset(),
             mode: str = "q16_16") -> None:
    for i, node in enumerate(fleet.nodes):
        vals = update_values(i, round_, mode, byzantine=node in byzantine)
        for m in messages(fleet, node, round_, vals):
            v = engine.handle(update_topic(FLEET, node), m)
            assert v.accepted, (node, v)
