#!/usr/bin/env python3
"""Write one MicroPython node's data shard and config.json (host side, CPython + qora).

    python firmware/micropython/make_shard.py \\
        --credentials fleet/nodes/node-1.json --broker mqtt://192.168.1.10:1883 \\
        --wifi-ssid MyWifi --wifi-password secret --out build/node-1

The shard is the node's part of qora.sim.data's training set, split over the fleet's nodes
exactly as qora.sim.fleet.make_clients splits it (same dataset, partition, alpha and seed),
its first --max-rows rows (an ESP32 has about 100 KB of heap), converted to Q16.16 with the
numeric contract's conversion. --nodes lists the fleet's nodes in the order the simulation
uses; by default, every nodes/*.json beside the credentials file, sorted.

shard.bin (little-endian)::

    0   4s  magic b"QSH1"       8   u32 rows m           16  m * n_features int32: features
    4   u16 format 1           12   u16 n_classes            (Q16.16, row-major)
    6   u16 n_features         14   u16 reserved 0           m uint8: labels

config.json holds the node's secrets (HMAC key, MQTT and Wi-Fi passwords): it is written
with mode 0600. Both files go onto the board with deploy.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SHARD_MAGIC = b"QSH1"
SHARD_HEADER = "<4sHHIHH"


def write_shard(path: Path, X_q: np.ndarray, y: np.ndarray, n_classes: int) -> int:
    """Write shard.bin; return its size in bytes."""
    X_q = np.ascontiguousarray(X_q, dtype="<i4")
    y = np.asarray(y)
    m, nf = X_q.shape
    if not 1 <= m < 2**32 or not 1 <= nf < 2**16 or len(y) != m:
        raise ValueError(f"shard: bad shape {X_q.shape} with {len(y)} labels")
    if not 2 <= n_classes <= 256 or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"shard: labels must lie in 0 .. {n_classes - 1} (at most 256 classes)")
    data = struct.pack(SHARD_HEADER, SHARD_MAGIC, 1, nf, m, n_classes, 0) + X_q.tobytes() \
        + y.astype(np.uint8).tobytes()
    Path(path).write_bytes(data)
    return len(data)


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(X_q int32 (m, n_features), y uint8 (m,), n_classes) of a shard.bin."""
    data = Path(path).read_bytes()
    magic, fmt, nf, m, n_classes, _ = struct.unpack_from(SHARD_HEADER, data)
    if magic != SHARD_MAGIC or fmt != 1 or len(data) != 16 + 4 * m * nf + m:
        raise ValueError(f"{path}: not a format-1 shard")
    X_q = np.frombuffer(data, dtype="<i4", count=m * nf, offset=16).reshape(m, nf).astype(np.int32)
    y = np.frombuffer(data, dtype=np.uint8, count=m, offset=16 + 4 * m * nf).copy()
    return X_q, y, n_classes


def node_shard(node: str, nodes: list[str], *, dataset: str, partition: str, alpha: float,
               seed: int, max_rows: int | None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(X float32, y, n_features, n_classes) of `node`, split as qora.sim.fleet.make_clients."""
    from qora.sim.fleet import FleetSpec, make_clients

    spec = FleetSpec(broker="mqtt://127.0.0.1:1883", fleets=("shard",), credentials=".",
                     nodes=tuple(nodes), dataset=dataset, partition=partition, alpha=alpha,
                     seed=seed)
    client = make_clients(spec)[node]
    X, y = client.X, client.y
    if max_rows is not None:
        X, y = X[:max_rows], y[:max_rows]
    return X.astype(np.float32), y.astype(np.int64), int(X.shape[1]), _n_classes(dataset, seed)


def _n_classes(dataset: str, seed: int) -> int:
    from qora.sim import data as data_lib  # the dataset make_clients loads (qora.sim.fleet)

    ds = data_lib.load_digits(seed=seed) if dataset == "digits" else data_lib.load_sensors(seed=seed)
    return ds.n_classes


def q16(x: np.ndarray) -> np.ndarray:
    from qora.native import to_q16

    return to_q16(np.asarray(x, dtype=np.float32))[0]


def build(args: argparse.Namespace) -> dict:
    from qora.mqtt_url import parse_broker_url
    from qora.provision import load_node_credentials

    cred_path = Path(args.credentials)
    cred = load_node_credentials(cred_path)
    nodes = args.nodes.split(",") if args.nodes else sorted(p.stem for p in cred_path.parent.glob("*.json"))
    if cred.node not in nodes:
        raise SystemExit(f"make_shard: node {cred.node!r} is not in the fleet's nodes {nodes}")
    broker = parse_broker_url(args.broker)
    if broker.tls:
        raise SystemExit("make_shard: the MicroPython node speaks plain MQTT (mqtt://); "
                         "mqtts is not supported yet")
    X, y, nf, ncls = node_shard(cred.node, nodes, dataset=args.dataset, partition=args.partition,
                                alpha=args.alpha, seed=args.seed, max_rows=args.max_rows)
    layout = [nf, ncls] if args.model == "softmax" else [nf, args.hidden, ncls]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = write_shard(out / "shard.bin", q16(X), y, ncls)
    train_seed = args.train_seed if args.train_seed is not None else zlib.crc32(cred.node.encode())
    cfg = {
        "fleet": cred.fleet,
        "node": cred.node,
        "key": cred.key.hex(),
        "mqtt": {"host": broker.host, "port": broker.port, "user": cred.mqtt_username,
                 "password": cred.mqtt_password, "keepalive": args.keepalive},
        "wifi": {"ssid": args.wifi_ssid, "password": args.wifi_password},
        "training": {"layout": layout, "epochs": args.epochs, "batch_size": args.batch_size,
                     "lr_q": int(q16(np.array([args.lr], dtype=np.float32))[0]),
                     "seed": train_seed},
        "data": "shard.bin",
        "state": "qora_state.json",
        "retry_delay_s": 5,
        "reset_delay_s": 10,
    }
    cfg_path = out / "config.json"
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.chmod(cfg_path, 0o600)
    print(f"{out / 'shard.bin'}: node {cred.node} of {cred.fleet}, {len(y)} rows x {nf} features, "
          f"{ncls} classes, {size} bytes")
    print(f"{cfg_path}: broker {broker.host}:{broker.port}, layout {layout}, "
          f"{args.epochs} epoch(s), batch {args.batch_size}, lr {args.lr}")
    if size > 48 * 1024:
        print("warning: a shard above 48 KB may not fit an ESP32 without PSRAM; use --max-rows",
              file=sys.stderr)
    return cfg


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--credentials", required=True, help="the node's nodes/<node>.json from qora provision")
    p.add_argument("--broker", required=True, help="mqtt://host[:port] as the board reaches it")
    p.add_argument("--wifi-ssid", required=True)
    p.add_argument("--wifi-password", default="")
    p.add_argument("--out", required=True, help="directory for shard.bin and config.json")
    p.add_argument("--nodes", help="the fleet's nodes, comma-separated, in the simulation's order")
    p.add_argument("--dataset", choices=("digits", "sensors"), default="digits")
    p.add_argument("--partition", choices=("iid", "dirichlet", "shards"), default="dirichlet")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0, help="dataset / partition seed")
    p.add_argument("--max-rows", type=int, default=100, help="rows kept (default 100; 0 = all)")
    p.add_argument("--model", choices=("softmax", "mlp"), default="softmax")
    p.add_argument("--hidden", type=int, default=32, help="MLP hidden width")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--train-seed", type=int, help="base seed of the node's visiting order "
                                                 "(default: CRC-32 of the node id)")
    p.add_argument("--keepalive", type=int, default=120, help="MQTT keepalive in seconds")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.max_rows == 0:
        args.max_rows = None
    build(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
